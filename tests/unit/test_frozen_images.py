"""Freezing image addresses into a question spec (bank/assets.py): pure, no database."""

from __future__ import annotations

import hashlib
from pathlib import Path

from quizapp.bank.assets import freeze_images, frozen_address, frozen_digests

PNG = b"\x89PNG\r\n\x1a\nnot really"
DIGEST = hashlib.sha256(PNG).hexdigest()


def _bank(tmp_path: Path) -> Path:
    (tmp_path / "questions" / "images").mkdir(parents=True)
    (tmp_path / "questions" / "images" / "k.png").write_bytes(PNG)
    return tmp_path


def test_image_addresses_get_the_files_digest(tmp_path):
    base = _bank(tmp_path)
    spec = {
        "id": "q",
        "stem": 'See ![a kernel](images/k.png "title") and ![again](<images/k.png>).',
        "feedback": "![ref][k]\n\n[k]: images/k.png\n",
        "options": [{"key": "a", "text": "![](images/missing.png)"}],
        "marks": 2,
    }
    frozen, files = freeze_images(spec, base, "questions/q.yaml")
    stamp = f"images/k.png#sha256={DIGEST}"
    assert frozen["stem"] == f'See ![a kernel]({stamp} "title") and ![again](<{stamp}>).'
    assert frozen["feedback"] == f"![ref][k]\n\n[k]: {stamp}\n"
    assert frozen["options"][0]["text"] == "![](images/missing.png)"  # the validator says why
    assert frozen["marks"] == 2 and spec["stem"].startswith("See ![a kernel](images/k.png ")
    assert files == {DIGEST: (base / "questions" / "images" / "k.png").resolve()}
    assert frozen_digests(str(frozen)) == {DIGEST}
    # Freezing a frozen spec changes nothing.
    assert freeze_images(frozen, base, "questions/q.yaml") == (frozen, {})


def test_a_frozen_address_names_the_digest_and_the_file_in_the_bank():
    src = f"images/k.png#sha256={DIGEST}"
    assert frozen_address("questions/q.yaml", src) == (DIGEST, "questions/images/k.png")
    assert frozen_address("questions/q.yaml", f"../shared/k.png#sha256={DIGEST}") == (
        DIGEST,
        "shared/k.png",
    )
    assert frozen_address("questions/q.yaml", "images/k.png") is None  # not frozen
    assert frozen_address("q.yaml", f"../../etc/k.png#sha256={DIGEST}") is None
    assert frozen_address("q.yaml", f"https://x.org/k.png#sha256={DIGEST}") is None
    assert frozen_address("q.yaml", f"k.svg#sha256={DIGEST}") is None
