"""What staff watch while a quiz runs, on a real database: counts, the live table (with
the device-change flag, in a fixed number of queries), preflight flags, one student's
history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from quizapp.models import AnswerLog, Attempt, Quiz, QuizOverride, User, UserGroup
from quizapp.services import attempts as svc
from quizapp.services import monitor
from quizapp.services.catalog import attempt_questions, rules_for, rules_for_users
from quizapp.services.users import create_user
from tests.conftest import QUIZ1_OPENS

GRACE = timedelta(seconds=10)
LONDON = ZoneInfo("Europe/London")
NOW = QUIZ1_OPENS + timedelta(hours=1)


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


def _user(session, users, name) -> User:
    return session.get(User, users[name])


def _first_slot(session, attempt) -> int:
    """The numeric question's slot: it accepts any number, so saves are easy to vary."""
    for entry, question in attempt_questions(session, attempt):
        if question.key == "cnn-output-width":
            return entry.slot
    raise AssertionError("no numeric question")


class QueryCounter:
    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args):
        self.count += 1


def test_counts_each_student_once_by_their_latest_attempt(session, quiz, users):
    alice, bob = _user(session, users, "alice"), _user(session, users, "bob")
    staff = _user(session, users, "staff")
    svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    done = svc.start_attempt(session, quiz.id, bob, NOW, GRACE)
    svc.submit_attempt(session, done, NOW + timedelta(minutes=5), GRACE)
    svc.start_attempt(session, quiz.id, staff, NOW, GRACE)  # staff are not on the roster
    counts = monitor.quiz_counts(session, quiz.id)
    assert counts.as_json() == {
        "roster": 3,
        "not_started": 1,
        "in_progress": 1,
        "submitted": 1,
        "timed_out": 0,
    }


def test_overview_finalises_expired_attempts_before_counting(session, quiz, users):
    svc.start_attempt(session, quiz.id, _user(session, users, "alice"), NOW, GRACE)
    later = NOW + timedelta(hours=1, minutes=1)
    view = monitor.overview(session, quiz.id, later, GRACE)
    assert view.rows == []
    assert view.counts.timed_out == 1 and view.counts.in_progress == 0


def test_live_rows_show_saves_answers_and_a_change_of_address(session, quiz, users):
    alice, bob = _user(session, users, "alice"), _user(session, users, "bob")
    a = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    b = svc.start_attempt(session, quiz.id, bob, NOW + timedelta(minutes=2), GRACE)
    slot = _first_slot(session, a)
    svc.save_answers(
        session, a.id, {slot: ["15"]}, 1, NOW + timedelta(minutes=1), GRACE, "10.0.0.1"
    )
    svc.save_answers(
        session, a.id, {slot: ["16"]}, 2, NOW + timedelta(minutes=9), GRACE, "10.0.0.2"
    )
    svc.save_answers(
        session,
        b.id,
        {_first_slot(session, b): ["15"]},
        1,
        NOW + timedelta(minutes=3),
        GRACE,
        "10.0.0.9",
    )
    rows = {r.username: r for r in monitor.live_rows(session, quiz.id)}
    assert set(rows) == {"alice", "bob"}
    ra, rb = rows["alice"], rows["bob"]
    assert ra.attempt_id == a.id and ra.started_at == NOW
    assert ra.deadline_at == NOW + timedelta(hours=1)
    assert ra.last_save_at == NOW + timedelta(minutes=9)
    assert ra.answered == 1 and ra.slots == len(a.layout)
    assert ra.addresses == 2 and ra.device_changed
    assert rb.addresses == 1 and not rb.device_changed
    assert ra.seconds_left(NOW + timedelta(minutes=30)) == 30 * 60
    assert ra.seconds_left(NOW + timedelta(hours=2)) == 0


def test_a_second_browser_session_or_the_concurrent_flag_also_counts(session, quiz, users):
    a = svc.start_attempt(session, quiz.id, _user(session, users, "alice"), NOW, GRACE)
    b = svc.start_attempt(session, quiz.id, _user(session, users, "bob"), NOW, GRACE)
    for client in ("tab-one", "tab-two"):
        session.add(
            AnswerLog(
                attempt_id=a.id, slot=1, value="x", seq=1, received_at=NOW, ip="h", client=client
            )
        )
    session.get(Attempt, b.id).concurrent_use_at = NOW
    session.commit()
    rows = {r.username: r for r in monitor.live_rows(session, quiz.id)}
    assert rows["alice"].clients == 2 and rows["alice"].device_changed
    assert rows["bob"].addresses == 0 and rows["bob"].device_changed


def test_the_live_table_takes_the_same_queries_for_one_or_many_attempts(app, session, quiz, users):
    engine = app.extensions["quizapp_db"].engine
    svc.start_attempt(session, quiz.id, _user(session, users, "alice"), NOW, GRACE)
    session.commit()
    with QueryCounter(engine) as one:
        monitor.live_rows(session, quiz.id)
        monitor.quiz_counts(session, quiz.id)
    for name in ("bob", "carol"):
        a = svc.start_attempt(session, quiz.id, _user(session, users, name), NOW, GRACE)
        svc.save_answers(session, a.id, {_first_slot(session, a): ["15"]}, 1, NOW, GRACE, "h")
    session.commit()
    with QueryCounter(engine) as many:
        assert len(monitor.live_rows(session, quiz.id)) == 3
        monitor.quiz_counts(session, quiz.id)
    assert many.count == one.count <= 4


def _group(session, user_id: int, name: str) -> None:
    session.add(UserGroup(user_id=user_id, name=name))
    session.commit()


def test_batched_rules_agree_with_rules_for(session, quiz, users):
    alice, bob, carol = (_user(session, users, n) for n in ("alice", "bob", "carol"))
    alice.time_factor = Fraction(3, 2)
    bob.extra_minutes = 15
    session.commit()
    _group(session, carol.id, "lab-b")
    _group(session, bob.id, "lab-b")
    session.add_all(
        [
            QuizOverride(quiz_id=quiz.id, group_name="lab-b", time_limit_seconds=5400, reason="r"),
            QuizOverride(quiz_id=quiz.id, user_id=carol.id, max_attempts=3, reason="r"),
        ]
    )
    session.commit()
    report = monitor.preflight(session, quiz.id, LONDON)
    by_name = {row.user.username: row for row in report.rows}
    assert set(by_name) == {"alice", "bob", "carol"}  # staff are not on the roster
    batched = rules_for_users(session, quiz, [row.user for row in report.rows])
    for row in report.rows:
        assert row.rules == rules_for(session, quiz, row.user) == batched[row.user.id]
    assert by_name["bob"].timing.time_limit == timedelta(minutes=105)
    assert by_name["carol"].rules.max_attempts == 3
    assert by_name["alice"].accommodation == "×1.5 time"
    assert any("group lab-b" in o for o in by_name["carol"].overrides)


def test_preflight_flags_a_window_shorter_than_the_time_limit(session, quiz, users):
    bob = _user(session, users, "bob")
    session.add(
        QuizOverride(
            quiz_id=quiz.id,
            user_id=bob.id,
            opens_at=QUIZ1_OPENS + timedelta(hours=23, minutes=30),
            reason="joins late",
        )
    )
    session.commit()
    rows = {r.user.username: r for r in monitor.preflight(session, quiz.id, LONDON).rows}
    assert rows["bob"].short_window and rows["bob"].flagged
    # Latest start for full time (close − limit) is before they can open.
    assert rows["bob"].latest_full_start < rows["bob"].timing.opens_at
    assert not rows["alice"].short_window
    assert rows["alice"].latest_full_start == QUIZ1_OPENS + timedelta(hours=23)


def test_preflight_flags_a_window_across_the_bst_to_gmt_change(session, quiz, users):
    # The clocks go back at 02:00 BST on 25 October 2026 (01:00 UTC).
    quiz.opens_at = datetime(2026, 10, 24, 9, 0, tzinfo=UTC)  # 10:00 BST
    quiz.closes_at = datetime(2026, 10, 25, 10, 0, tzinfo=UTC)  # 10:00 GMT
    session.commit()
    report = monitor.preflight(session, quiz.id, LONDON)
    assert report.dst_crossings == 3
    assert all(r.crosses_dst for r in report.rows)
    # Exactly 25 hours long, though the wall clock says 10:00 to 10:00.
    row = report.rows[0]
    assert row.timing.closes_at - row.timing.opens_at == timedelta(hours=25)

    quiz.opens_at = datetime(2026, 10, 25, 9, 0, tzinfo=UTC)  # after the change
    session.commit()
    assert monitor.preflight(session, quiz.id, LONDON).dst_crossings == 0
    assert not monitor.crosses_dst(QUIZ1_OPENS, QUIZ1_OPENS + timedelta(days=1), LONDON)


def test_preflight_flags_students_who_cannot_log_in_yet(session, quiz, users):
    create_user(session, "dana", None, name="Dana (SSO pending)")
    report = monitor.preflight(session, quiz.id, LONDON)
    rows = {r.user.username: r for r in report.rows}
    assert rows["dana"].cannot_log_in == "no password set yet"
    assert rows["alice"].cannot_log_in == ""
    assert report.cannot_log_in == 1


def test_student_history_explains_each_deadline(session, quiz, users):
    alice, bob = _user(session, users, "alice"), _user(session, users, "bob")
    late = QUIZ1_OPENS + timedelta(hours=23, minutes=40)
    cut = svc.start_attempt(session, quiz.id, alice, late, GRACE)
    svc.save_answers(
        session, cut.id, {_first_slot(session, cut): ["15"]}, 1, late, GRACE, "10.1.1.1"
    )
    history = monitor.student_history(session, alice.id, late, GRACE, LONDON)
    (row,) = history.attempts
    assert row.attempt.id == cut.id
    assert row.deadline_why[0].startswith("Window close")
    assert "cut by the close" in row.deadline_why[0]
    assert [(d.ip, d.saves) for d in row.devices] == [("10.1.1.1", 1)]

    bob.extra_minutes = 30
    session.commit()
    svc.start_attempt(session, quiz.id, bob, NOW, GRACE)
    (row,) = monitor.student_history(session, bob.id, NOW, GRACE, LONDON).attempts
    assert row.deadline_why == [
        "Time limit: start + 60 min + 30 min (accommodation) = 90 min.",
        "Accommodation: +30 min.",
    ]


def test_student_history_finalises_what_has_expired(session, quiz, users):
    alice = _user(session, users, "alice")
    svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    history = monitor.student_history(session, alice.id, NOW + timedelta(hours=2), GRACE, LONDON)
    assert history.attempts[0].attempt.state.value == "timed_out"
