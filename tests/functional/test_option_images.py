"""An image inside a choice option is shown from its frozen address on the attempt page,
as an image in a stem is (it used to keep the bank-relative `images/…` src, a broken
image)."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from quizapp.bank.loader import load_bank
from quizapp.models import Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.bank_import import import_bank
from tests.conftest import SAMPLE_BANK

OPENS = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
GRACE = timedelta(seconds=10)
BANK = """\
quiz:
  id: option-images
  title: Option images
  opens: 2027-03-01 09:00
  closes: 2027-03-08 09:00
  slots:
    - question: kernel-picture
questions:
  - id: kernel-picture
    type: single_choice
    stem: Which picture shows a 3×3 kernel?
    shuffle: false
    options:
      - text: "![A 3×3 kernel on a 5×5 input](images/conv.png)"
        correct: true
      - text: A 1×1 kernel
"""


def test_an_option_image_is_served_from_its_frozen_address(
    client, auth, session, users, app, tmp_path: Path
) -> None:
    bank = tmp_path / "bank"
    (bank / "images").mkdir(parents=True)
    conv = SAMPLE_BANK / "questions" / "images" / "conv.png"
    shutil.copy(conv, bank / "images" / "conv.png")
    (bank / "quiz.yaml").write_text(BANK, encoding="utf-8")
    app.config["QUIZAPP_BANK_PATH"] = str(bank)
    loaded = load_bank(bank)
    assert loaded.ok, loaded.problems
    import_bank(session, loaded)
    quiz = session.scalars(select(Quiz).where(Quiz.key == "option-images")).one()
    attempt = svc.start_attempt(session, quiz.id, session.get(User, users["alice"]), OPENS, GRACE)

    auth.login("alice")
    page = client.get(f"/attempt/{attempt.id}").get_data(as_text=True)
    digest = hashlib.sha256(conv.read_bytes()).hexdigest()
    url = f"/assets/{digest}/images/conv.png"
    option = re.search(r'<span class="choice-text">(.*?)</span>\s*</label>', page, re.S)
    assert option is not None
    assert f'<img src="{url}"' in option.group(1), option.group(1)
    assert 'src="images/' not in page
    image = client.get(url)
    assert image.status_code == 200 and image.data == conv.read_bytes()
