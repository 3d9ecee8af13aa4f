"""Staff interventions on a real database: extra time, a later close, an extra attempt,
reopen, finalise now; each audited in its own transaction, nothing half-applied."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from quizapp.domain.timing import AttemptState
from quizapp.models import (
    Attempt,
    AuditEvent,
    FinishReason,
    Mark,
    Quiz,
    QuizOverride,
    User,
    UserGroup,
)
from quizapp.services import attempts as svc
from quizapp.services import interventions as iv
from quizapp.services.catalog import attempt_questions, rules_for
from quizapp.services.errors import Conflict, InvalidInput, NotFound
from tests.conftest import QUIZ1_OPENS

GRACE = timedelta(seconds=10)
NOW = QUIZ1_OPENS + timedelta(hours=1)
CLOSE = QUIZ1_OPENS + timedelta(hours=24)
LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


@pytest.fixture
def staff(session, users) -> User:
    return session.get(User, users["staff"])


@pytest.fixture
def alice(session, users) -> User:
    return session.get(User, users["alice"])


def _numeric_slot(session, attempt) -> int:
    for entry, question in attempt_questions(session, attempt):
        if question.key == "cnn-output-width":
            return entry.slot
    raise AssertionError("no numeric question")


def _events(session, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_extra_time_moves_a_running_deadline_and_the_close(session, quiz, alice, staff):
    attempt = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    result = iv.grant(
        session,
        quiz.id,
        iv.Grant(extra_minutes=20, reason="fire alarm"),
        NOW + timedelta(minutes=5),
        staff,
        username="alice",
    )
    assert result.user_id == alice.id and [a.id for a in result.moved] == [attempt.id]
    session.refresh(attempt)
    assert attempt.deadline_at == NOW + timedelta(minutes=80)
    rules = rules_for(session, quiz, alice)
    assert rules.timing.time_limit == timedelta(minutes=80)
    assert rules.timing.closes_at == CLOSE + timedelta(minutes=20)
    (event,) = _events(session, "override")
    assert event.actor_id == staff.id and event.subject_id == alice.id
    assert event.details["reason"] == "fire alarm"
    assert event.at == NOW + timedelta(minutes=5)


def test_extra_time_builds_on_the_accommodation(session, quiz, alice, staff):
    alice.extra_minutes = 15
    session.commit()
    iv.grant(session, quiz.id, iv.Grant(extra_minutes=10, reason="r"), NOW, staff, username="alice")
    assert rules_for(session, quiz, alice).timing.time_limit == timedelta(minutes=85)
    # twice: the accommodation's 15 minutes are still added once, never twice
    iv.grant(session, quiz.id, iv.Grant(extra_minutes=10, reason="r"), NOW, staff, username="alice")
    assert rules_for(session, quiz, alice).timing.time_limit == timedelta(minutes=95)


def test_extra_time_for_a_student_with_a_factor_is_scaled_like_all_their_time(
    session, quiz, alice, staff
):
    alice.time_factor = Fraction(5, 4)
    session.commit()
    iv.grant(session, quiz.id, iv.Grant(extra_minutes=10, reason="r"), NOW, staff, username="alice")
    assert rules_for(session, quiz, alice).timing.time_limit == timedelta(minutes=87, seconds=30)


def test_an_extra_attempt_keeps_the_other_override_fields(session, quiz, alice, staff):
    later = CLOSE + timedelta(hours=2)
    iv.grant(
        session, quiz.id, iv.Grant(closes_at=later, reason="ill"), NOW, staff, username="alice"
    )
    first = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    svc.submit_attempt(session, first, NOW + timedelta(minutes=1), GRACE)
    with pytest.raises(Conflict, match="no attempts left"):
        svc.start_attempt(session, quiz.id, alice, NOW + timedelta(minutes=2), GRACE)

    iv.grant(
        session, quiz.id, iv.Grant(extra_attempt=True, reason="crash"), NOW, staff, username="alice"
    )
    row = session.scalars(select(QuizOverride).where(QuizOverride.user_id == alice.id)).one()
    assert row.max_attempts == 2 and row.closes_at == later
    second = svc.start_attempt(session, quiz.id, alice, NOW + timedelta(minutes=3), GRACE)
    assert second.number == 2
    assert [e.details["reason"] for e in _events(session, "override")] == ["ill", "crash"]


def test_extra_time_for_a_group_applies_to_its_members(session, quiz, users, staff):
    bob = session.get(User, users["bob"])
    bob.extra_minutes = 10
    session.add_all([UserGroup(user_id=bob.id, name="lab-b")])
    session.commit()
    running = svc.start_attempt(session, quiz.id, bob, NOW, GRACE)
    result = iv.grant(
        session, quiz.id, iv.Grant(extra_minutes=30, reason="late room"), NOW, staff, group="lab-b"
    )
    assert result.user_id is None and result.target == "group lab-b"
    row = session.scalars(select(QuizOverride).where(QuizOverride.group_name == "lab-b")).one()
    assert row.time_limit_seconds == 90 * 60 and row.closes_at == CLOSE + timedelta(minutes=30)
    session.refresh(running)
    assert running.deadline_at == NOW + timedelta(minutes=100)  # 90 + bob's own 10
    alice_rules = rules_for(session, quiz, session.get(User, users["alice"]))
    assert alice_rules.timing.time_limit == timedelta(minutes=60)


@pytest.mark.parametrize(
    ("grant", "target", "message"),
    [
        (iv.Grant(extra_minutes=10, reason="  "), {"username": "alice"}, "Give a reason"),
        (iv.Grant(reason="r"), {"username": "alice"}, "Choose extra time"),
        (iv.Grant(extra_minutes=0, reason="r"), {"username": "alice"}, "Extra time must be"),
        (
            iv.Grant(closes_at=NOW - timedelta(minutes=1), reason="r"),
            {"username": "alice"},
            "in the past",
        ),
        (
            iv.Grant(closes_at=CLOSE - timedelta(hours=1), reason="r"),
            {"username": "alice"},
            "not later",
        ),
        (iv.Grant(extra_minutes=5, reason="r"), {"username": "nobody"}, "No student"),
        (iv.Grant(extra_minutes=5, reason="r"), {"group": "no-such-group"}, "No group"),
        (
            iv.Grant(extra_minutes=5, reason="r"),
            {"username": "alice", "group": "g"},
            "one student or one group",
        ),
    ],
)
def test_bad_grants_are_refused_and_change_nothing(
    session, quiz, alice, staff, grant, target, message
):
    with pytest.raises(InvalidInput, match=message):
        iv.grant(session, quiz.id, grant, NOW, staff, **target)
    session.rollback()
    assert _count(session, QuizOverride) == 0 and _count(session, AuditEvent) == 0


def test_an_override_that_ends_before_it_starts_is_refused(session, quiz, alice, staff):
    iv.grant(
        session, quiz.id, iv.Grant(extra_attempt=True, reason="r"), NOW, staff, username="alice"
    )
    session.execute(QuizOverride.__table__.update().values(opens_at=CLOSE + timedelta(days=3)))
    session.commit()
    with pytest.raises(InvalidInput, match="closes before it opens"):
        iv.grant(
            session,
            quiz.id,
            iv.Grant(closes_at=CLOSE + timedelta(days=1), reason="r"),
            NOW,
            staff,
            username="alice",
        )
    session.rollback()
    assert _count(session, AuditEvent) == 1


def test_reopen_puts_a_submitted_attempt_back_and_keeps_its_marks(session, quiz, alice, staff):
    attempt = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    slot = _numeric_slot(session, attempt)
    svc.save_answers(session, attempt.id, {slot: ["15"]}, 1, NOW, GRACE)
    svc.submit_attempt(session, attempt, NOW + timedelta(minutes=10), GRACE)
    old_score, old_receipt = attempt.score, attempt.receipt
    marks_before = _count(session, Mark)

    when = NOW + timedelta(hours=3)
    deadline = when + timedelta(minutes=30)
    iv.reopen(session, attempt.id, deadline, when, staff, "power cut", ip="192.0.2.1")
    session.refresh(attempt)
    assert attempt.state is AttemptState.IN_PROGRESS
    assert attempt.deadline_at == deadline
    assert attempt.finished_at is None and attempt.finish_reason is None
    assert attempt.score is None and attempt.receipt is None
    assert _count(session, Mark) == marks_before
    (event,) = _events(session, "reopen")
    assert event.actor_id == staff.id and event.subject_id == alice.id
    assert event.attempt_id == attempt.id and event.ip == "192.0.2.1"
    assert event.details["reason"] == "power cut"
    assert event.details["previous_score"] == str(old_score)
    assert event.details["previous_receipt"] == old_receipt
    assert event.details["previous_finish_reason"] == "submitted"

    # The student carries on, and the attempt is graded again; old marks are history.
    svc.save_answers(session, attempt.id, {slot: ["16"]}, 2, when + timedelta(minutes=1), GRACE)
    svc.submit_attempt(session, attempt, when + timedelta(minutes=2), GRACE)
    assert attempt.state is AttemptState.SUBMITTED and attempt.receipt is not None
    assert _count(session, Mark) == 2 * marks_before
    assert svc.current_marks(session, attempt.id)[slot].id > marks_before


def test_reopen_refuses_when_another_attempt_is_in_progress(session, quiz, alice, staff):
    first = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    svc.submit_attempt(session, first, NOW + timedelta(minutes=1), GRACE)
    iv.grant(
        session, quiz.id, iv.Grant(extra_attempt=True, reason="r"), NOW, staff, username="alice"
    )
    second = svc.start_attempt(session, quiz.id, alice, NOW + timedelta(minutes=2), GRACE)
    with pytest.raises(Conflict, match="another attempt"):
        iv.reopen(session, first.id, NOW + timedelta(hours=1), NOW, staff, "r")
    session.refresh(first)
    session.refresh(second)
    assert first.state is AttemptState.SUBMITTED and second.state is AttemptState.IN_PROGRESS
    assert _events(session, "reopen") == []


def test_reopen_refuses_bad_input(session, quiz, alice, staff):
    attempt = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    with pytest.raises(Conflict, match="still in progress"):
        iv.reopen(session, attempt.id, NOW + timedelta(hours=1), NOW, staff, "r")
    svc.submit_attempt(session, attempt, NOW, GRACE)
    with pytest.raises(InvalidInput, match="in the past"):
        iv.reopen(session, attempt.id, NOW - timedelta(minutes=1), NOW, staff, "r")
    with pytest.raises(InvalidInput, match="Give a reason"):
        iv.reopen(session, attempt.id, NOW + timedelta(hours=1), NOW, staff, "")
    with pytest.raises(NotFound):
        iv.reopen(session, 999_999, NOW + timedelta(hours=1), NOW, staff, "r")
    assert _events(session, "reopen") == []


def test_finalise_now_grades_and_records_who_and_why(session, quiz, alice, staff):
    attempt = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    svc.save_answers(session, attempt.id, {_numeric_slot(session, attempt): ["15"]}, 1, NOW, GRACE)
    when = NOW + timedelta(minutes=20)
    assert iv.finalise_now(session, attempt.id, when, GRACE, staff, "left the room", ip="h")
    session.refresh(attempt)
    assert attempt.state is AttemptState.TIMED_OUT
    assert attempt.finish_reason is FinishReason.STAFF
    assert attempt.finished_at == when and attempt.receipt is not None
    (staff_event,) = _events(session, "staff_finalise")
    (finalise,) = _events(session, "finalise")
    assert staff_event.actor_id == staff.id and staff_event.details["reason"] == "left the room"
    assert staff_event.attempt_id == attempt.id and staff_event.at == when
    assert finalise.details["reason"] == "staff"
    # A second press changes nothing and records nothing.
    with pytest.raises(Conflict, match="already finished"):
        iv.finalise_now(session, attempt.id, when, GRACE, staff, "again")
    assert len(_events(session, "staff_finalise")) == 1
    assert not session.info  # the hook's marker is gone


def test_finalise_now_of_an_expired_attempt_ends_it_at_its_deadline(session, quiz, alice, staff):
    attempt = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    late = NOW + timedelta(hours=2)
    assert iv.finalise_now(session, attempt.id, late, GRACE, staff, "r") is False
    session.refresh(attempt)
    assert attempt.finish_reason is FinishReason.DEADLINE
    assert attempt.finished_at == NOW + timedelta(hours=1)
    assert _events(session, "staff_finalise") == []


def test_finalise_now_then_reopen_round_trip(session, quiz, alice, staff):
    attempt = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    iv.finalise_now(session, attempt.id, NOW, GRACE, staff, "wrong room")
    iv.reopen(session, attempt.id, NOW + timedelta(hours=1), NOW, staff, "right room now")
    session.refresh(attempt)
    assert attempt.state is AttemptState.IN_PROGRESS
    assert (
        session.scalar(
            select(func.count())
            .select_from(Attempt)
            .where(Attempt.state == AttemptState.IN_PROGRESS)
        )
        == 1
    )


def test_local_times_in_the_course_zone():
    # 01:30 on 29 March 2026 does not exist in London (clocks go forward at 01:00 GMT).
    with pytest.raises(InvalidInput, match="does not exist"):
        iv.local_to_utc(datetime(2026, 3, 29, 1, 30), LONDON)
    # 01:30 on 25 October 2026 happens twice: refused rather than guessed.
    with pytest.raises(InvalidInput, match="happens twice"):
        iv.local_to_utc(datetime(2026, 10, 25, 1, 30), LONDON)
    assert iv.local_to_utc(datetime(2027, 1, 18, 10, 0), LONDON) == QUIZ1_OPENS
