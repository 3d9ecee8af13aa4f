"""Roster import on a real database: plan, apply, idempotence, deadlines, all or nothing."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quizapp.domain.roster import parse_roster, parse_roster_bytes
from quizapp.models import Attempt, AuditEvent, Quiz, Role, User, UserGroup
from quizapp.services import attempts as attempt_service
from quizapp.services.errors import Conflict, InvalidInput
from quizapp.services.roster import (
    RosterInvalid,
    apply_roster,
    create_staff_account,
    plan_roster,
)
from quizapp.services.users import authenticate
from tests.conftest import PASSWORD, QUIZ1_OPENS

DATA = Path(__file__).resolve().parent.parent / "data" / "roster"
NOW = QUIZ1_OPENS + timedelta(hours=1)
HEADER = "username,name,email,extra_time_percent,extra_minutes,groups\n"


def _groups(session, username: str) -> list[str]:
    return sorted(
        session.scalars(
            select(UserGroup.name)
            .join(User, User.id == UserGroup.user_id)
            .where(User.username == username)
        )
    )


def _user(session, username: str) -> User:
    return session.scalars(select(User).where(User.username == username)).one()


def _audit(session, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def test_plan_then_apply_creates_updates_and_leaves_others_alone(session, users):
    staff = session.get(User, users["staff"])
    parsed = parse_roster(
        HEADER
        + "alice,Alice A. Adeyemi,alice@example.ac.uk,25,,seminar-a\n"
        + "zoe,Zoë Martin,zoe@example.ac.uk,,10,seminar-a;lab-1\n"
        + "chenwei,陈伟,chen@example.ac.uk,,,\n"
    )
    plan = plan_roster(session, parsed)
    assert plan.ok
    assert [s.username for s in plan.new] == ["zoe", "chenwei"]
    [alice] = plan.changed
    assert {c.field: (c.old, c.new) for c in alice.changes} == {
        "name": ("Alice Adeyemi", "Alice A. Adeyemi"),
        "email": ("", "alice@example.ac.uk"),
        "accommodation": ("none", "+25% time"),
    }
    assert alice.groups_added == ("seminar-a",)
    assert plan.absent == 2  # bob and carol are not in the file: left alone
    assert session.scalar(select(func.count(User.id))) == 4, "a plan changes nothing"

    result = apply_roster(session, plan, staff, NOW, source="students.csv")
    assert result.counts["created"] == 2 and result.counts["updated"] == 1

    zoe = _user(session, "zoe")
    assert (zoe.name, zoe.role, zoe.password_hash) == ("Zoë Martin", Role.STUDENT, None)
    assert (zoe.time_factor, zoe.extra_minutes) == (Fraction(1), 10)
    assert authenticate(session, "zoe", "") is None  # no password: SSO or staff set one
    assert _groups(session, "zoe") == ["lab-1", "seminar-a"]
    assert _user(session, "alice").time_factor == Fraction(5, 4)
    assert _user(session, "bob").name == "Bob Björk"  # absent from the file: untouched

    [event] = _audit(session, "roster_import")
    assert event.actor_id == staff.id
    assert event.details["counts"]["created"] == 2
    accommodation_events = _audit(session, "accommodation")
    assert {e.subject_id for e in accommodation_events} == {users["alice"], zoe.id}
    alice_event = next(e for e in accommodation_events if e.subject_id == users["alice"])
    assert alice_event.details["old"]["text"] == "none"
    assert alice_event.details["new"] == {
        "time_factor": "5/4",
        "extra_minutes": 0,
        "text": "+25% time",
    }


def test_reimporting_the_same_file_changes_nothing(session, users):
    data = (DATA / "students_bom_crlf.csv").read_bytes()
    first = apply_roster(session, parse_roster_bytes(data), None, NOW)
    assert first.counts["created"] == 3
    snapshot = [
        (u.username, u.name, u.email, u.time_factor, u.extra_minutes)
        for u in session.scalars(select(User).order_by(User.username))
    ]
    groups = session.scalar(select(func.count(UserGroup.id)))

    plan = plan_roster(session, parse_roster_bytes(data))
    assert not plan.changes_anything and len(plan.unchanged) == 3
    second = apply_roster(session, parse_roster_bytes(data), None, NOW)
    assert second.counts["created"] == second.counts["updated"] == 0
    session.expire_all()
    assert snapshot == [
        (u.username, u.name, u.email, u.time_factor, u.extra_minutes)
        for u in session.scalars(select(User).order_by(User.username))
    ]
    assert session.scalar(select(func.count(UserGroup.id))) == groups
    assert len(_audit(session, "accommodation")) == 2  # only the first import's


def test_groups_column_sets_membership_and_an_absent_column_leaves_it(session, users):
    apply_roster(session, parse_roster(HEADER + "alice,A,a@x.org,,,g1;g2\n"), None, NOW)
    assert _groups(session, "alice") == ["g1", "g2"]
    plan = plan_roster(session, parse_roster(HEADER + "alice,A,a@x.org,,,g2;g3\n"))
    [change] = plan.changed
    assert (change.groups_added, change.groups_removed) == (("g3",), ("g1",))
    apply_roster(session, plan, None, NOW)
    assert _groups(session, "alice") == ["g2", "g3"]
    # No groups column and no extra-time column: both are left as they are.
    apply_roster(session, parse_roster("username,name,email\nalice,A,a@x.org\n"), None, NOW)
    assert _groups(session, "alice") == ["g2", "g3"]


def test_nothing_is_applied_when_one_row_is_bad(session, users):
    parsed = parse_roster_bytes((DATA / "one_bad_row.csv").read_bytes())
    assert [str(p) for p in parsed.problems] == [
        'line 3: username: "bad user" contains a space',
        'line 4: extra_time_percent: "abc" is not a number',
    ]
    with pytest.raises(RosterInvalid) as caught:
        apply_roster(session, parsed, None, NOW)
    assert len(caught.value.problems) == 2
    assert session.scalar(select(func.count(User.id)).where(User.username == "ok1")) == 0
    assert _audit(session, "roster_import") == []


def test_a_staff_username_in_the_roster_is_a_problem_and_nothing_applies(session, users):
    parsed = parse_roster(HEADER + "new1,N,n@x.org,,,\nstaff,S,s@x.org,50,,\n")
    plan = plan_roster(session, parsed)
    assert [str(p) for p in plan.problems] == [
        'line 3: username: "staff" is a staff account; a roster lists students only'
    ]
    with pytest.raises(RosterInvalid):
        apply_roster(session, parsed, None, NOW)
    assert session.scalar(select(func.count(User.id)).where(User.username == "new1")) == 0
    assert _user(session, "staff").role is Role.STAFF


def test_a_stale_preview_is_refused(session, users):
    parsed = parse_roster(HEADER + "alice,Alice,a@x.org,25,,\n")
    plan = plan_roster(session, parsed)
    _user(session, "alice").time_factor = Fraction(3, 2)  # someone changed her meanwhile
    session.commit()
    with pytest.raises(Conflict, match="changed since this preview"):
        apply_roster(session, plan, None, NOW)
    session.expire_all()
    assert _user(session, "alice").email == ""


def test_an_accommodation_change_moves_a_running_attempts_deadline(session, users, sample_bank):
    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
    alice = session.get(User, users["alice"])
    attempt = attempt_service.start_attempt(session, quiz.id, alice, NOW, timedelta(seconds=10))
    assert attempt.deadline_at == NOW + timedelta(hours=1)
    later = NOW + timedelta(minutes=20)

    result = apply_roster(session, parse_roster(HEADER + "alice,Alice,a@x.org,50,,\n"), None, later)
    assert [a.id for a in result.moved] == [attempt.id]
    session.expire_all()
    assert session.get(Attempt, attempt.id).deadline_at == NOW + timedelta(minutes=90)
    [event] = _audit(session, "accommodation")
    assert event.details["moved"] == {str(attempt.id): (NOW + timedelta(minutes=90)).isoformat()}

    # Extra minutes instead of a factor: 60 + 15 minutes from the start.
    apply_roster(session, parse_roster(HEADER + "alice,Alice,a@x.org,,15,\n"), None, later)
    session.expire_all()
    assert session.get(Attempt, attempt.id).deadline_at == NOW + timedelta(minutes=75)


def test_create_staff_account_is_audited_and_checked(session, users):
    staff = session.get(User, users["staff"])
    with pytest.raises(InvalidInput, match="at least 12"):
        create_staff_account(session, "marker", "M", "m@x.org", "short", staff, NOW)
    with pytest.raises(InvalidInput, match="already exists"):
        create_staff_account(session, "alice", "A", "a@x.org", PASSWORD, staff, NOW)
    user = create_staff_account(session, "marker", "Mo Marker", "m@x.org", PASSWORD, staff, NOW)
    assert user.role is Role.STAFF
    assert authenticate(session, "marker", PASSWORD) is not None
    [event] = _audit(session, "staff_created")
    assert (event.actor_id, event.subject_id) == (staff.id, user.id)


def test_apply_steps_check_the_file_first_then_write_what_they_checked(session, users):
    """Compute first (a read, step by step), write at the end: a change made between
    the two is caught by the write transaction's own check, and nothing is applied."""
    from quizapp.services.progress import Step
    from quizapp.services.roster import apply_roster_steps

    parsed = parse_roster(HEADER + "".join(f"s{i},S {i},s{i}@x.org,,,\n" for i in range(3)))
    steps = apply_roster_steps(session, parsed, None, NOW, source="s.csv")
    assert [next(steps) for _ in range(3)] == [
        Step(0, 3),
        Step(3, 3),
        Step(stage="Saving 3 new and 0 changed student(s)"),
    ]
    with session.get_bind().connect() as other:  # someone else takes one of the names
        other.execute(
            User.__table__.insert().values(
                username="s1", name="Other", email="", role=Role.STUDENT, active=True,
                time_factor="1", extra_minutes=0, created_at=NOW,
            )
        )  # fmt: skip
        other.commit()
    with pytest.raises(Conflict, match="changed since this preview"):
        next(steps)
    assert session.scalar(select(func.count(User.id)).where(User.username.in_(["s0", "s2"]))) == 0
    assert _audit(session, "roster_import") == []


def test_plan_roster_reports_progress_per_chunk(session, users, monkeypatch):
    from quizapp.services import roster as roster_module

    monkeypatch.setattr(roster_module, "_CHUNK", 2)
    parsed = parse_roster(HEADER + "".join(f"s{i},S {i},s{i}@x.org,,,\n" for i in range(5)))
    seen: list[tuple[int, int]] = []
    plan = plan_roster(session, parsed, lambda done, total: seen.append((done, total)))
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)] and len(plan.new) == 5


def test_the_student_search_matches_its_text_literally(session, users):
    from quizapp.services.roster import roster_page

    for name in ("ab_c", "abxc", "50%off", "5000ff"):
        session.add(User(username=name, name=name.upper(), role=Role.STUDENT))
    session.commit()
    assert [u.username for u in roster_page(session, "b_c", 1, 50).students] == ["ab_c"]
    assert [u.username for u in roster_page(session, "0%o", 1, 50).students] == ["50%off"]
    everyone = roster_page(session, "", 1, 50)
    assert everyone.total == 7 and [u.username for u in everyone.staff] == ["staff"]
    assert roster_page(session, "", 99, 2).page == everyone.total // 2 + 1  # clamped
