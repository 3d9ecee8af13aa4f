"""Bank images are frozen per question version: an attempt keeps showing the image it
was started with after the file is edited and the bank imported again; the edited image
makes a new version for new attempts."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quizapp.bank.loader import load_bank
from quizapp.models import BankAsset, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.bank_import import import_bank
from tests.conftest import SAMPLE_BANK

KEY = "cnn-output-shape-vector"  # in quiz 2; its stem shows images/conv.png
QUIZ2_OPEN = datetime(2027, 1, 25, 11, 0, tzinfo=UTC)
GRACE = timedelta(seconds=10)
IMAGE = re.compile(r'<img src="(/assets/([0-9a-f]+)/questions/images/conv\.png)"')


@pytest.fixture
def bank(app, tmp_path) -> Path:
    copy = tmp_path / "bank"
    shutil.copytree(SAMPLE_BANK, copy)
    app.config["QUIZAPP_BANK_PATH"] = str(copy)
    return copy


def _import(session, bank: Path):
    loaded = load_bank(bank)
    assert loaded.ok, loaded.problems
    return import_bank(session, loaded)


def _image_of(client, path: str) -> tuple[str, str]:
    page = client.get(path).get_data(as_text=True)
    match = IMAGE.search(page)
    assert match, f"no conv.png image on {path}"
    return match.group(1), match.group(2)


def test_an_attempt_keeps_the_image_it_was_shown_after_the_file_is_edited(
    client, auth, session, users, bank, clock
):
    conv = bank / "questions" / "images" / "conv.png"
    old_bytes = conv.read_bytes()
    _import(session, bank)
    clock.set(QUIZ2_OPEN)
    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz2-gradients-and-shapes")).one()
    attempt = svc.start_attempt(
        session, quiz.id, session.get(User, users["alice"]), QUIZ2_OPEN, GRACE
    )

    auth.login("alice")
    old_url, old_digest = _image_of(client, f"/attempt/{attempt.id}")
    assert old_digest == hashlib.sha256(old_bytes).hexdigest()  # the whole SHA-256
    response = client.get(old_url)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data == old_bytes
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert client.get(old_url, headers={"If-None-Match": f'"{old_digest}"'}).status_code == 304

    # The author edits the image (and nothing else) and imports the bank again.
    new_bytes = old_bytes + b"\x00edited"
    conv.write_bytes(new_bytes)
    report = _import(session, bank)
    assert report.new_versions == [KEY], "an edited image is a new version of its question"

    # The running attempt still shows, and gets, the image it was started with.
    assert _image_of(client, f"/attempt/{attempt.id}") == (old_url, old_digest)
    assert client.get(old_url).data == old_bytes

    # The current version (new attempts, the staff preview) shows the edited one.
    client.post("/logout", data={"csrf_token": _csrf(client)})
    auth.login("staff")
    new_url, new_digest = _image_of(client, f"/staff/preview/question/{KEY}")
    assert new_digest == hashlib.sha256(new_bytes).hexdigest() != old_digest
    assert client.get(new_url).data == new_bytes
    session.rollback()
    assert session.scalar(select(func.count()).select_from(BankAsset)) == 2

    # Importing the same bank again changes nothing.
    assert not _import(session, bank).changed


def test_frozen_images_need_a_login_and_a_matching_name(client, auth, session, users, bank):
    _import(session, bank)
    digest = session.scalars(select(BankAsset.digest)).one()
    url = f"/assets/{digest}/questions/images/conv.png"
    assert client.get(url).status_code == 302  # to the login page
    auth.login("alice")
    assert client.get(url).status_code == 200
    for path in (
        f"/assets/{digest}/questions/images/conv.yaml",  # not an image name
        f"/assets/{digest}/questions/images/conv.jpg",  # not its type
        f"/assets/{'0' * 64}/questions/images/conv.png",  # no such image
    ):
        assert client.get(path).status_code == 404, path


def _csrf(client) -> str:
    from tests.functional.helpers import csrf_of

    return csrf_of(client.get("/").get_data(as_text=True))
