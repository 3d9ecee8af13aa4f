"""What a process keeps of the catalog (services/catalog.py start_plan, _version_facts):
used while nothing changed, and given up as soon as another process (another gunicorn
worker, the command line) imports a changed bank, reverts it, or changes a quiz."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from quizapp import create_app
from quizapp.bank.loader import load_bank
from quizapp.models import Question, Quiz
from quizapp.services import attempts as attempt_service
from quizapp.services.bank_import import import_bank
from quizapp.services.catalog import start_plan
from quizapp.services.overrides import OverrideChange, set_override
from quizapp.services.users import create_user
from tests.conftest import QUIZ1_OPENS, SAMPLE_BANK

KEY = "optim-sgd-step"  # a candidate of quiz 1's optimisers pool
GRACE = timedelta(seconds=10)


@contextmanager
def counting(session: Session) -> Iterator[list[str]]:
    engine = session.get_bind()
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def bank_dir(tmp_path: Path) -> Path:
    target = tmp_path / "bank"
    shutil.copytree(SAMPLE_BANK, target)
    return target


@pytest.fixture
def other(app) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    """A session of another app on the same database: another process, as far as the
    per-process cache can tell (its own engine, so its own cache)."""
    second = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "QUIZAPP_DATABASE_URL": app.config["QUIZAPP_DATABASE_URL"],
        }
    )
    database = second.extensions["quizapp_db"]
    with database.new_session() as session:
        yield session
    second.extensions["quizapp_login_throttle"].close()
    database.engine.dispose()


def _quiz1(session: Session) -> int:
    return session.scalars(select(Quiz.id).where(Quiz.key == "quiz1-foundations")).one()


def _current(session: Session, key: str) -> int:
    version = session.scalars(select(Question.current_version_id).where(Question.key == key)).one()
    assert version is not None
    return version


def _plan_version(session: Session, quiz_id: int, key: str) -> int:
    session.rollback()  # a new read, as a new request would make
    return start_plan(session, quiz_id).candidates[key].version_id


def test_a_kept_plan_costs_one_statement(session, bank_dir) -> None:  # type: ignore[no-untyped-def]
    import_bank(session, load_bank(bank_dir))
    quiz_id = _quiz1(session)
    first = start_plan(session, quiz_id)
    session.rollback()
    with counting(session) as statements:
        again = start_plan(session, quiz_id)
    # The quiz row with the catalog's version; SQLite's BEGIN aside, nothing else.
    assert len([s for s in statements if s != "BEGIN"]) == 1, statements
    assert again.slots == first.slots and again.candidates == first.candidates


def test_an_import_or_a_revert_in_another_process_is_seen_at_the_next_start(  # type: ignore[no-untyped-def]
    session, other, bank_dir
) -> None:
    import_bank(session, load_bank(bank_dir))
    quiz_id = _quiz1(session)
    original = _current(session, KEY)
    assert _plan_version(session, quiz_id, KEY) == original  # kept by this process now

    path = bank_dir / "questions" / "optimisers.yaml"
    text = path.read_text()
    path.write_text(text.replace("answer: 1.7", "answer: 1.70001"))
    import_bank(other, load_bank(bank_dir))  # the other process imports a change
    changed = _current(other, KEY)
    assert changed != original
    assert _plan_version(session, quiz_id, KEY) == changed

    path.write_text(text)
    import_bank(other, load_bank(bank_dir))  # and reverts it: the old version again
    assert _current(other, KEY) == original
    assert _plan_version(session, quiz_id, KEY) == original


def test_a_changed_quiz_in_another_process_is_seen_at_the_next_start(  # type: ignore[no-untyped-def]
    session, other, bank_dir
) -> None:
    import_bank(session, load_bank(bank_dir))
    quiz_id = _quiz1(session)
    before = start_plan(session, quiz_id)
    path = bank_dir / "quizzes" / "quiz1-foundations.yaml"
    path.write_text(
        path.read_text().replace(
            "    - question: cnn-pooling-shape\n",
            "    - question: cnn-pooling-shape\n      marks: 3\n",
        )
    )
    import_bank(other, load_bank(bank_dir))
    session.rollback()
    after = start_plan(session, quiz_id)
    assert after.slots != before.slots
    assert after.slots[-1].marks == 3 and before.slots[-1].marks == 1

    # A window moved by a direct update (no import: `quizapp demo` does this) is read
    # too: the quiz row itself is read at every start.
    moved = QUIZ1_OPENS + timedelta(days=3)
    other.execute(update(Quiz).where(Quiz.id == quiz_id).values(opens_at=moved))
    other.commit()
    session.rollback()
    assert start_plan(session, quiz_id).quiz.opens_at == moved


def test_an_override_made_in_another_process_applies_to_the_next_start(  # type: ignore[no-untyped-def]
    session, other, bank_dir
) -> None:
    import_bank(session, load_bank(bank_dir))
    quiz_id = _quiz1(session)
    alice = create_user(session, "alice", "correct horse battery staple")
    bob = create_user(session, "bob", "correct horse battery staple")
    now = QUIZ1_OPENS + timedelta(hours=1)
    first = attempt_service.start_attempt(session, quiz_id, alice, now, GRACE)
    assert first.deadline_at == now + timedelta(minutes=60)

    set_override(
        other,
        quiz_id,
        OverrideChange(time_limit=timedelta(minutes=90), reason="extra time"),
        now,
        user_id=bob.id,
    )
    session.rollback()
    second = attempt_service.start_attempt(session, quiz_id, bob, now, GRACE)
    assert second.deadline_at == now + timedelta(minutes=90)
