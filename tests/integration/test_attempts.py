"""The attempt lifecycle on a real database: start, save, submit, finalise."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from quizapp.domain.timing import AttemptState
from quizapp.models import (
    Answer,
    AnswerLog,
    Attempt,
    AuditEvent,
    LogOutcome,
    Mark,
    Quiz,
    User,
)
from quizapp.services import attempts as svc
from quizapp.services.catalog import attempt_questions
from quizapp.services.errors import Conflict, InvalidInput, NotFound
from tests.conftest import QUIZ1_OPENS

GRACE = timedelta(seconds=10)


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


@pytest.fixture
def alice(session, users) -> User:
    return session.get(User, users["alice"])


def _numeric_slot(session, attempt):
    for entry, question in attempt_questions(session, attempt):
        if question.key == "cnn-output-width":
            return entry.slot
    raise AssertionError("no CNN question")


def test_start_is_idempotent_and_respects_the_window(session, quiz, alice):
    before = QUIZ1_OPENS - timedelta(minutes=1)
    with pytest.raises(Conflict, match="not opened yet"):
        svc.start_attempt(session, quiz.id, alice, before, GRACE)
    now = QUIZ1_OPENS + timedelta(hours=2)
    first = svc.start_attempt(session, quiz.id, alice, now, GRACE)
    again = svc.start_attempt(session, quiz.id, alice, now + timedelta(seconds=1), GRACE)
    assert again.id == first.id
    assert first.deadline_at == now + timedelta(hours=1)
    with pytest.raises(Conflict, match="closed"):
        svc.start_attempt(session, quiz.id, alice, QUIZ1_OPENS + timedelta(hours=25), GRACE)


def test_concurrent_starts_give_one_attempt(app, quiz, users):
    """Tabs pressing Start at the same moment: the database lets one in and every tab
    gets that attempt. Many rounds, because one round passing proves little about a race."""
    database = app.extensions["quizapp_db"]
    now = QUIZ1_OPENS + timedelta(hours=1)
    for _round in range(25):
        ids, errors = [], []
        barrier = threading.Barrier(4)

        def start(barrier=barrier, ids=ids, errors=errors) -> None:
            with database.new_session() as s:
                user = s.get(User, users["alice"])
                barrier.wait()
                try:
                    ids.append(svc.start_attempt(s, quiz.id, user, now, GRACE).id)
                except Exception as exc:  # pragma: no cover - reported below
                    errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(set(ids)) == 1
        with database.new_session() as s:
            assert s.scalar(select(func.count()).select_from(Attempt)) == 1
            s.execute(delete(AuditEvent))
            s.execute(delete(Attempt))
            s.commit()


def test_a_start_committed_between_the_checks_is_returned_not_refused(
    app, quiz, users, monkeypatch
):
    """The interleaving that made the PostgreSQL run flaky, forced: this tab reads the
    student's attempts (none), then another tab's start commits, then this tab inserts
    attempt number one. It must return the other tab's attempt, not an error."""
    database = app.extensions["quizapp_db"]
    now = QUIZ1_OPENS + timedelta(hours=1)
    read = svc._attempts_of_student
    other: list[int] = []

    def other_tab_starts_after_the_read(session, quiz_id, user_id):
        rows = read(session, quiz_id, user_id)
        if not other:
            monkeypatch.setattr(svc, "_attempts_of_student", read)
            with database.new_session() as s:
                other.append(svc.start_attempt(s, quiz_id, s.get(User, user_id), now, GRACE).id)
        return rows

    monkeypatch.setattr(svc, "_attempts_of_student", other_tab_starts_after_the_read)
    with database.new_session() as s:
        mine = svc.start_attempt(s, quiz.id, s.get(User, users["alice"]), now, GRACE)
    assert other and mine.id == other[0]


def test_highest_sequence_wins_and_repeats_are_idempotent(session, quiz, alice):
    now = QUIZ1_OPENS + timedelta(hours=1)
    attempt = svc.start_attempt(session, quiz.id, alice, now, GRACE)
    slot = _numeric_slot(session, attempt)
    newer = svc.save_answers(session, attempt.id, {slot: ["16"]}, 20, now, GRACE).results
    assert newer[0].status is svc.SaveStatus.SAVED
    late_old = svc.save_answers(session, attempt.id, {slot: ["15"]}, 10, now, GRACE).results
    assert late_old[0].status is svc.SaveStatus.STALE and late_old[0].seq == 20
    repeat = svc.save_answers(session, attempt.id, {slot: ["16"]}, 20, now, GRACE).results
    assert repeat[0].status is svc.SaveStatus.UNCHANGED
    assert session.scalars(select(Answer.value).where(Answer.attempt_id == attempt.id)).all() == [
        "16"
    ]
    log = session.scalars(select(AnswerLog).where(AnswerLog.attempt_id == attempt.id)).all()
    # The stale save is kept as evidence, marked as such; the repeat adds nothing.
    assert [(e.value, e.seq, e.outcome) for e in log] == [
        ("16", 20, None),
        ("15", 10, LogOutcome.STALE),
    ]


def test_saves_are_accepted_until_the_grace_ends_then_refused_and_finalised(session, quiz, alice):
    start = QUIZ1_OPENS + timedelta(hours=1)
    attempt = svc.start_attempt(session, quiz.id, alice, start, GRACE)
    slot = _numeric_slot(session, attempt)
    deadline = attempt.deadline_at
    svc.save_answers(session, attempt.id, {slot: ["16"]}, 1, deadline + GRACE, GRACE)
    with pytest.raises(Conflict, match="time for this attempt is over"):
        svc.save_answers(
            session, attempt.id, {slot: ["99"]}, 2, deadline + GRACE + timedelta(seconds=1), GRACE
        )
    session.refresh(attempt)
    assert attempt.state is AttemptState.TIMED_OUT and attempt.finished_at == deadline
    assert attempt.score == 2  # the 2-mark CNN question saved within the grace
    with pytest.raises(Conflict, match="time for this attempt is over"):
        svc.save_answers(session, attempt.id, {slot: ["99"]}, 3, deadline, GRACE)


def test_bad_saves_write_nothing(session, quiz, alice):
    now = QUIZ1_OPENS + timedelta(hours=1)
    attempt = svc.start_attempt(session, quiz.id, alice, now, GRACE)
    slot = _numeric_slot(session, attempt)
    with pytest.raises(InvalidInput, match="not part of this attempt"):
        svc.save_answers(session, attempt.id, {slot: ["16"], 999: ["1"]}, 1, now, GRACE)
    with pytest.raises(InvalidInput):
        svc.save_answers(session, attempt.id, {slot: ["16"]}, -1, now, GRACE)
    assert session.scalar(select(func.count()).select_from(Answer)) == 0


def test_another_students_attempt_is_not_found(session, quiz, alice, users):
    attempt = svc.start_attempt(session, quiz.id, alice, QUIZ1_OPENS, GRACE)
    bob = session.get(User, users["bob"])
    with pytest.raises(NotFound):
        svc.attempt_for_student(session, attempt.id, bob, QUIZ1_OPENS, GRACE)


def test_submit_twice_is_a_no_op_and_marks_are_written_once(session, quiz, alice):
    now = QUIZ1_OPENS + timedelta(hours=1)
    attempt = svc.start_attempt(session, quiz.id, alice, now, GRACE)
    assert svc.submit_attempt(session, attempt, now, GRACE) is True
    assert svc.submit_attempt(session, attempt, now, GRACE) is False
    with pytest.raises(Conflict, match="already been submitted"):
        svc.save_answers(session, attempt.id, {1: ["A"]}, 1, now, GRACE)
    assert attempt.state is AttemptState.SUBMITTED and attempt.score == 0
    marks = session.scalar(
        select(func.count()).select_from(Mark).where(Mark.attempt_id == attempt.id)
    )
    assert marks == len(attempt.layout)


def test_finalise_expired_from_several_machines_finalises_each_attempt_once(
    app, session, quiz, users
):
    database = app.extensions["quizapp_db"]
    start = QUIZ1_OPENS + timedelta(hours=1)
    for name in ("alice", "bob", "carol"):
        svc.start_attempt(session, quiz.id, session.get(User, users[name]), start, GRACE)
    later = start + timedelta(hours=2)
    counts: list[int] = []
    barrier = threading.Barrier(3)

    def sweep() -> None:
        with database.new_session() as s:
            barrier.wait()
            counts.append(svc.finalise_expired(s, later, GRACE))

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 3
    with database.new_session() as s:
        states = s.scalars(select(Attempt.state)).all()
        assert states == [AttemptState.TIMED_OUT] * 3
        marks = s.scalar(select(func.count()).select_from(Mark))
        assert marks == 3 * 15  # graded exactly once each
    assert svc.finalise_expired(session, later, GRACE) == 0


def test_acknowledged_saves_survive_a_restart(app, session, quiz, alice, database_url):
    """A new engine (a restarted server) sees every save that was acknowledged."""
    from quizapp.db import Database

    now = QUIZ1_OPENS + timedelta(hours=1)
    attempt = svc.start_attempt(session, quiz.id, alice, now, GRACE)
    slot = _numeric_slot(session, attempt)
    svc.save_answers(session, attempt.id, {slot: ["16"]}, 5, now, GRACE)
    app.extensions["quizapp_db"].engine.dispose()
    fresh = Database()
    fresh.configure(database_url)
    with fresh.new_session() as s:
        assert s.scalars(select(Answer.value).where(Answer.attempt_id == attempt.id)).all() == [
            "16"
        ]
    fresh.engine.dispose()


def test_a_password_hashed_with_old_parameters_is_upgraded_at_login(session, users):
    from argon2 import PasswordHasher

    from quizapp.services.users import authenticate, hash_password
    from tests.conftest import PASSWORD

    alice = session.get(User, users["alice"])
    alice.password_hash = PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=4).hash(
        PASSWORD
    )
    session.commit()
    assert authenticate(session, "alice", PASSWORD) is not None
    session.refresh(alice)
    assert alice.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert alice.password_hash != hash_password(PASSWORD)  # salted
    assert authenticate(session, "alice", "wrong") is None


def test_flagging_from_several_tabs_at_once_never_fails(app, quiz, users):
    """Was "SELECT the flag; INSERT if missing": concurrent flags raced into a
    uniqueness error (a 500) on PostgreSQL."""
    database = app.extensions["quizapp_db"]
    now = QUIZ1_OPENS + timedelta(hours=1)
    with database.new_session() as s:
        attempt = svc.start_attempt(s, quiz.id, s.get(User, users["alice"]), now, GRACE)
        slot = int(attempt.layout[0]["slot"])
    for flagged in (True, False, True):
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def flag(flagged=flagged, errors=errors, barrier=barrier) -> None:
            with database.new_session() as s:
                mine = s.get(Attempt, attempt.id)
                barrier.wait()
                try:
                    svc.set_flag(s, mine, slot, flagged)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

        threads = [threading.Thread(target=flag) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with database.new_session() as s:
            assert svc.flagged_slots(s, attempt.id) == ({slot} if flagged else set())
