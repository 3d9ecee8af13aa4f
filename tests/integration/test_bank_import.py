"""Import is all or nothing, versioned by content, and idempotent."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from quizapp.bank.loader import load_bank
from quizapp.models import Question, QuestionVersion, Quiz
from quizapp.services.bank_import import import_bank
from quizapp.services.errors import InvalidInput
from tests.conftest import SAMPLE_BANK


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_importing_twice_changes_nothing(session):
    bank = load_bank(SAMPLE_BANK)
    first = import_bank(session, bank)
    assert sorted(first.new_questions) == sorted(bank.questions)
    assert sorted(first.new_quizzes) == sorted(bank.quizzes)
    versions = _count(session, QuestionVersion)
    second = import_bank(session, load_bank(SAMPLE_BANK))
    assert not second.changed
    assert _count(session, QuestionVersion) == versions


def test_a_changed_question_becomes_a_new_version_and_reverting_reuses_the_old(session, tmp_path):
    bank_dir = tmp_path / "bank"
    shutil.copytree(SAMPLE_BANK, bank_dir)
    import_bank(session, load_bank(bank_dir))
    key = "optim-sgd-step"
    original = session.scalars(select(Question).where(Question.key == key)).one().current_version_id

    path = bank_dir / "questions" / "optimisers.yaml"
    text = path.read_text()
    path.write_text(text.replace("answer: 1.7", "answer: 1.70001"))
    report = import_bank(session, load_bank(bank_dir))
    assert report.new_versions == [key]
    changed = session.scalars(select(Question).where(Question.key == key)).one().current_version_id
    assert changed != original
    assert session.get(QuestionVersion, original).spec["answer"] == 1.7  # old version untouched

    path.write_text(text)
    import_bank(session, load_bank(bank_dir))
    assert (
        session.scalars(select(Question).where(Question.key == key)).one().current_version_id
        == original
    )


def test_a_bank_with_any_problem_imports_nothing(session, tmp_path):
    bank_dir = tmp_path / "bank"
    shutil.copytree(SAMPLE_BANK, bank_dir)
    (bank_dir / "questions" / "broken.yaml").write_text(
        "questions:\n  - id: x\n    type: numeric\n"
    )
    bank = load_bank(bank_dir)
    assert not bank.ok
    with pytest.raises(InvalidInput):
        import_bank(session, bank)
    assert _count(session, Question) == 0 and _count(session, Quiz) == 0
