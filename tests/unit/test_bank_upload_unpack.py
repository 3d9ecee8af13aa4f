"""The bounds of a bank upload (services/bank_upload.py): a zip from staff is still
untrusted input. Zip bombs, path traversal, absolute paths, symbolic links and too many
files are refused before anything is written; other file types are left out; the
temporary folder is gone afterwards."""

from __future__ import annotations

import io
import stat
import tempfile
import zipfile
from pathlib import Path

import pytest

from quizapp.services import bank_upload
from quizapp.services.bank_upload import (
    MAX_FILES,
    MAX_MEMBER_BYTES,
    UploadRefused,
    check_upload,
    collect_files,
    opened_bank,
    unpack_zip,
)
from tests.upload_banks import BROKEN_LINE, bank_files, bank_zip, zip_of


def _zip_with(info: zipfile.ZipInfo, data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(info, data)
    return buffer.getvalue()


def test_a_bank_zip_unpacks_its_yaml_and_images_and_leaves_out_the_rest():
    unpacked = unpack_zip(bank_zip())
    assert sorted(unpacked.files) == [
        "upload-bank/questions/images/pixel.png",
        "upload-bank/questions/upload.yaml",
    ]
    assert unpacked.skipped == ["upload-bank/README.md"]


def test_the_canonical_archive_is_the_same_bytes_for_the_same_files():
    first = unpack_zip(bank_zip()).archive()
    again = collect_files(bank_files().items()).archive()
    assert first == again
    assert unpack_zip(first).files == unpack_zip(again).files


@pytest.mark.parametrize(
    "name",
    ["../evil.yaml", "bank/../../evil.yaml", "/etc/evil.yaml", "C:/evil.yaml", "..\\evil.yaml"],
)
def test_paths_that_leave_the_bank_are_refused(name):
    with pytest.raises(UploadRefused, match="refused"):
        unpack_zip(zip_of({name: b"questions: []\n"}))
    with pytest.raises(UploadRefused, match="refused"):
        collect_files([(name, b"questions: []\n")])


def test_a_symbolic_link_is_refused():
    info = zipfile.ZipInfo("bank/link.yaml")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(UploadRefused, match="symbolic links"):
        unpack_zip(_zip_with(info, b"/etc/passwd"))


def test_a_zip_bomb_stops_at_the_per_file_bound_whatever_its_header_says():
    # 50 MB of zeros compress to about 50 KB; the header's size is not trusted either.
    data = zip_of({"bank/bomb.yaml": b"\0" * (MAX_MEMBER_BYTES * 25)})
    assert len(data) < 200_000
    with pytest.raises(UploadRefused, match="larger than 2 MB once unpacked"):
        unpack_zip(data)


def test_the_total_unpacked_size_is_bounded(monkeypatch):
    monkeypatch.setattr(bank_upload, "MAX_UNPACKED_BYTES", 3_000_000)
    files = {f"bank/q{i}.yaml": b"#" * 1_000_000 for i in range(4)}
    with pytest.raises(UploadRefused, match="once unpacked"):
        unpack_zip(zip_of(files))
    with pytest.raises(UploadRefused, match="once unpacked"):
        collect_files(files.items())


def test_too_many_files_are_refused():
    files = {f"bank/q{i}.yaml": b"" for i in range(MAX_FILES + 1)}
    with pytest.raises(UploadRefused, match=f"More than {MAX_FILES} files"):
        unpack_zip(zip_of(files))
    with pytest.raises(UploadRefused, match=f"More than {MAX_FILES} files"):
        collect_files(files.items())


def test_an_upload_over_the_size_bound_is_refused(monkeypatch):
    monkeypatch.setattr(bank_upload, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(UploadRefused, match="larger than"):
        unpack_zip(b"PK" + b"\0" * 1000)
    with pytest.raises(UploadRefused, match="larger than"):
        collect_files([("bank/a.yaml", b"#" * 600), ("bank/b.yaml", b"#" * 600)])


def test_not_a_zip_and_encrypted_members_are_refused():
    with pytest.raises(UploadRefused, match="not a readable zip"):
        unpack_zip(b"questions: []\n")
    info = zipfile.ZipInfo("bank/secret.yaml")
    data = bytearray(_zip_with(info))
    # Set the "encrypted" flag in the local and central headers.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    with pytest.raises(UploadRefused, match="encrypted"):
        unpack_zip(bytes(data))


def test_duplicate_names_are_refused():
    with pytest.raises(UploadRefused, match="appears twice"):
        collect_files([("bank/a.yaml", b""), ("bank//a.yaml", b"")])


def test_hidden_files_and_macos_folders_are_left_out_silently():
    unpacked = collect_files(
        [
            ("bank/.git/config.yaml", b""),
            ("__MACOSX/bank/._a.yaml", b""),
            ("bank/a.yaml", b"questions: []\n"),
        ]
    )
    assert list(unpacked.files) == ["bank/a.yaml"]
    assert unpacked.skipped == []


def test_the_temporary_folder_is_removed_afterwards_even_on_error():
    seen: list[Path] = []
    with pytest.raises(RuntimeError), opened_bank(unpack_zip(bank_zip()), "Europe/London") as bank:
        seen.append(bank.root)
        assert (bank.root / "upload-bank/questions/images/pixel.png").is_file()
        raise RuntimeError("boom")
    assert not seen[0].exists()
    assert not seen[0].parent.exists()
    assert seen[0].parent.parent == Path(tempfile.gettempdir())


def test_the_report_names_file_and_line_and_lists_what_loaded():
    checked = check_upload(unpack_zip(bank_zip(broken=True)), "Europe/London", seeds=5)
    assert not checked.ok
    assert [str(p).split(": ")[0] for p in checked.problems] == [BROKEN_LINE]
    assert [key for key, _, _ in checked.questions] == ["upload-choice"]
    fixed = check_upload(unpack_zip(bank_zip()), "Europe/London", seeds=5)
    assert fixed.ok
    assert [key for key, _, _ in fixed.questions] == ["upload-choice", "upload-sum"]


def test_an_upload_without_bank_files_is_refused():
    with pytest.raises(UploadRefused, match="no bank files"):
        check_upload(collect_files([("notes/readme.txt", b"hello")]), "Europe/London")
