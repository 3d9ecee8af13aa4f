"""The examples in docs/question-bank.md import into a real database, and a student can
start the documented quiz (the format is not only valid on paper)."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from quizapp.bank.loader import load_bank
from quizapp.models import Quiz, User
from quizapp.services.attempts import start_attempt
from quizapp.services.bank_import import import_bank

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_documented_examples_import_and_start(tmp_path, session, users):
    folder = tmp_path / "questions"
    folder.mkdir()
    shutil.copytree(ROOT / "question_bank" / "questions" / "images", folder / "images")
    examples = FENCE.findall((ROOT / "docs" / "question-bank.md").read_text(encoding="utf-8"))
    for number, example in enumerate(examples):
        (folder / f"example-{number:02d}.yaml").write_text(example, encoding="utf-8")
    bank = load_bank(tmp_path)
    report = import_bank(session, bank)
    assert sorted(report.new_quizzes) == sorted(bank.quizzes)
    assert not import_bank(session, load_bank(tmp_path)).changed  # idempotent
    for quiz in session.scalars(select(Quiz)):
        alice = session.get(User, users["alice"])
        moment = quiz.opens_at + timedelta(minutes=1)
        attempt = start_attempt(session, quiz.id, alice, moment, timedelta(seconds=10))
        assert len(attempt.layout) == len(quiz.slots) > 0
