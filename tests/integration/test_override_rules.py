"""Issue 16, items 1-3, through the services on a real database: a roster change of
groups moves running deadlines, an override never silently shortens a running attempt,
and overrides can say "no time limit" and "no close"."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from quizapp.domain.roster import parse_roster
from quizapp.models import Attempt, AuditEvent, Quiz, QuizOverride, User, UserGroup
from quizapp.services import attempts as attempt_service
from quizapp.services.catalog import rules_for
from quizapp.services.overrides import OverrideChange, ShortensRunningAttempts, set_override
from quizapp.services.roster import apply_roster
from tests.conftest import QUIZ1_OPENS

GRACE = timedelta(seconds=10)
START = QUIZ1_OPENS + timedelta(hours=1)  # 11:00 GMT
HEADER = "username,name,email,extra_time_percent,extra_minutes,groups\n"


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


def _user(session, users, name) -> User:
    return session.get(User, users[name])


def _start(session, quiz, user) -> Attempt:
    return attempt_service.start_attempt(session, quiz.id, user, START, GRACE)


def test_leaving_a_group_mid_attempt_moves_the_deadline(session, quiz, users):
    alice = _user(session, users, "alice")
    session.add(UserGroup(user_id=alice.id, name="lab-b"))
    session.add(
        QuizOverride(quiz_id=quiz.id, group_name="lab-b", time_limit_seconds=75 * 60, reason="r")
    )
    session.commit()
    attempt = _start(session, quiz, alice)
    assert attempt.deadline_at == START + timedelta(minutes=75)

    later = START + timedelta(minutes=10)
    result = apply_roster(session, parse_roster(HEADER + "alice,Alice,a@x.org,,,\n"), None, later)
    assert [a.id for a in result.moved] == [attempt.id]
    assert "1 running attempt deadline(s) moved" in result.summary()
    session.expire_all()
    assert session.get(Attempt, attempt.id).deadline_at == START + timedelta(minutes=60)

    # And joining it again gives the longer deadline back.
    apply_roster(session, parse_roster(HEADER + "alice,Alice,a@x.org,,,lab-b\n"), None, later)
    session.expire_all()
    assert session.get(Attempt, attempt.id).deadline_at == START + timedelta(minutes=75)


def test_an_override_for_an_accommodated_student_is_scaled_never_shorter(session, quiz, users):
    """The issue's acc2: +25 % and mid-attempt; `--time-limit 70` moved 11:15 to 11:10."""
    acc2 = _user(session, users, "bob")
    acc2.time_factor = Fraction(5, 4)
    session.commit()
    attempt = _start(session, quiz, acc2)
    assert attempt.deadline_at == START + timedelta(minutes=75)
    moved = set_override(
        session, quiz.id, OverrideChange(time_limit=timedelta(minutes=70), reason="r"),
        START + timedelta(minutes=5), user_id=acc2.id,
    )  # fmt: skip
    assert [a.id for a in moved] == [attempt.id]
    session.refresh(attempt)
    assert attempt.deadline_at == START + timedelta(minutes=87, seconds=30)


def test_a_change_that_shortens_a_running_attempt_needs_confirmation(session, quiz, users):
    alice = _user(session, users, "alice")
    attempt = _start(session, quiz, alice)
    change = OverrideChange(time_limit=timedelta(minutes=40), reason="wrong quiz length")
    with pytest.raises(ShortensRunningAttempts) as refused:
        set_override(session, quiz.id, change, START + timedelta(minutes=5), user_id=alice.id)
    (short,) = refused.value.shortened
    assert (short.username, short.old_deadline, short.new_deadline) == (
        "alice",
        START + timedelta(minutes=60),
        START + timedelta(minutes=40),
    )
    # Nothing was written: no override, the same deadline, no audit event.
    session.expire_all()
    assert session.scalars(select(QuizOverride)).all() == []
    assert session.get(Attempt, attempt.id).deadline_at == START + timedelta(minutes=60)
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "override")).all() == []

    set_override(
        session, quiz.id, change, START + timedelta(minutes=5), user_id=alice.id,
        allow_shorter=True,
    )  # fmt: skip
    session.expire_all()
    assert session.get(Attempt, attempt.id).deadline_at == START + timedelta(minutes=40)
    (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "override"))
    assert event.details["shortened"] == [attempt.id]


def test_a_group_change_that_would_shorten_names_every_student(session, quiz, users):
    alice, bob = _user(session, users, "alice"), _user(session, users, "bob")
    for user in (alice, bob):
        session.add(UserGroup(user_id=user.id, name="lab-c"))
    session.commit()
    _start(session, quiz, alice)
    _start(session, quiz, bob)
    change = OverrideChange(time_limit=timedelta(minutes=50), reason="r")
    with pytest.raises(ShortensRunningAttempts) as refused:
        set_override(session, quiz.id, change, START, group_name="lab-c")
    assert sorted(s.username for s in refused.value.shortened) == ["alice", "bob"]


def test_no_time_limit_and_no_close(session, quiz, users):
    alice = _user(session, users, "alice")
    attempt = _start(session, quiz, alice)
    set_override(
        session, quiz.id, OverrideChange(no_time_limit=True, reason="r"), START, user_id=alice.id
    )
    session.refresh(attempt)
    assert attempt.deadline_at == quiz.closes_at  # the close decides now
    set_override(
        session, quiz.id, OverrideChange(no_time_limit=True, no_close=True, reason="r"), START,
        user_id=alice.id,
    )  # fmt: skip
    session.refresh(attempt)
    assert attempt.deadline_at is None
    timing = rules_for(session, quiz, alice).timing
    assert timing.time_limit is None and timing.closes_at is None
    # The attempt never expires: the sweeper leaves it, saves are taken a week later.
    week = START + timedelta(days=7)
    assert attempt_service.finalise_expired(session, week, GRACE) == 0
    assert not attempt_service.finalise_if_expired(session, attempt, week, GRACE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (OverrideChange(time_limit=timedelta(0)), "more than 0 minutes"),
        (
            OverrideChange(time_limit=timedelta(minutes=5), no_time_limit=True),
            "not both",
        ),
        (OverrideChange(), "changes nothing"),
    ],
)
def test_bad_override_changes_are_refused(session, quiz, users, change, message):
    with pytest.raises(Exception, match=message):
        set_override(session, quiz.id, change, START, user_id=users["alice"])


def test_the_command_line_names_who_would_be_cut_short_and_changes_nothing(
    app, session, quiz, users, clock
):
    alice = _user(session, users, "alice")
    clock.set(START)
    attempt = _start(session, quiz, alice)
    runner = app.test_cli_runner()
    args = ["overrides", "set", "quiz1-foundations", "--student", "alice", "--reason", "typo"]
    refused = runner.invoke(args=[*args, "--time-limit", "30"])
    assert refused.exit_code != 0
    assert "alice: ends 12:00:00 GMT now, would end 11:30:00 GMT" in refused.output
    assert "--allow-shorter" in refused.output
    session.rollback()  # end the snapshot: see what the command committed
    assert _deadline(session, attempt.id) == START + timedelta(hours=1)
    done = runner.invoke(args=[*args, "--time-limit", "30", "--allow-shorter"])
    assert done.exit_code == 0, done.output
    unlimited = runner.invoke(args=[*args, "--no-time-limit", "--no-close"])
    assert unlimited.exit_code == 0, unlimited.output
    session.rollback()  # end the snapshot: see what the command committed
    assert _deadline(session, attempt.id) is None


def _deadline(session, attempt_id):
    session.rollback()  # a new snapshot: what the command committed
    return session.scalar(select(Attempt.deadline_at).where(Attempt.id == attempt_id))


def test_staff_give_no_time_limit_from_the_intervention_page(
    client, auth, session, quiz, users, clock
):
    from tests.functional.helpers import csrf_of

    clock.set(START)
    attempt = _start(session, quiz, _user(session, users, "alice"))
    auth.login("staff")
    page = client.get(f"/staff/quiz/{quiz.id}/intervene?student=alice").get_data(as_text=True)
    assert "No time limit at all" in page and "No close" in page
    response = client.post(
        f"/staff/quiz/{quiz.id}/intervene",
        data={
            "csrf_token": csrf_of(page),
            "student": "alice",
            "no_time_limit": "y",
            "reason": "adjustment agreed by the board",
        },
    )
    assert response.status_code == 302
    assert _deadline(session, attempt.id) == quiz.closes_at
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "no time limit" in shown
