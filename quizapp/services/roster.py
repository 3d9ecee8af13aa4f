"""Roster import: a dry run (plan_roster) and the import itself (apply_roster).

The import is all or nothing, in one write transaction, and idempotent: importing the
same file again changes nothing. Students are matched by username and updated in place;
students missing from the file are left alone (never deleted or deactivated).

New students get no password (``password_hash`` is None, so no password logs them in):
they are expected to log in through single sign-on, or staff give them a password
later. A roster never carries passwords; a ``password`` column is ignored.

An accommodation change moves the deadline of the student's running attempts at once
(the same rule as an override: never earlier than now), and is audited per student.

Progress (services/progress.py): plan_roster_steps reports each chunk of rows checked;
apply_roster_steps checks the file in a read transaction first, then writes it with
apply_roster in one short write transaction that never waits on a client.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quizapp.db import discard, unit_of_work
from quizapp.domain.roster import (
    Accommodation,
    ParsedRoster,
    RosterProblem,
    RosterRow,
    email_problem,
    username_problem,
)
from quizapp.models import Attempt, Role, User, UserGroup
from quizapp.services import audit
from quizapp.services.errors import Conflict, InvalidInput
from quizapp.services.overrides import recompute_deadlines_for_users
from quizapp.services.progress import Progress, Step, Steps, run
from quizapp.services.users import hash_password

_CHUNK = 500  # bounded IN lists on every engine
MIN_STAFF_PASSWORD = 12
CHANGED_SINCE_PREVIEW = (
    "The students in the database changed since this preview; "
    "look at the new preview and confirm again."
)


class RosterInvalid(InvalidInput):
    """A roster with problems: nothing was applied."""

    def __init__(self, problems: Sequence[RosterProblem]):
        self.problems = list(problems)
        super().__init__(f"The roster has {len(self.problems)} problem(s); nothing was applied.")


@dataclass(frozen=True)
class FieldChange:
    field: str  # name, email, accommodation
    old: str
    new: str


@dataclass(frozen=True)
class StudentPlan:
    """What the import does to one student of the file."""

    line: int
    username: str
    name: str
    is_new: bool
    changes: tuple[FieldChange, ...] = ()
    groups_added: tuple[str, ...] = ()
    groups_removed: tuple[str, ...] = ()
    # (old, new) when the import changes the accommodation (or gives a new student one).
    accommodation: tuple[Accommodation, Accommodation] | None = None

    def as_json(self) -> list[object]:
        return [
            self.username,
            self.is_new,
            [[c.field, c.old, c.new] for c in self.changes],
            list(self.groups_added),
            list(self.groups_removed),
        ]


@dataclass
class RosterPlan:
    """A dry run: who is new, who changes and how, who is unchanged, who is left alone."""

    rows: list[RosterRow]
    new: list[StudentPlan] = field(default_factory=list)
    changed: list[StudentPlan] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[RosterProblem] = field(default_factory=list)
    absent: int = 0  # students in the database but not in the file: left alone

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changes_anything(self) -> bool:
        return bool(self.new or self.changed)

    @property
    def accommodation_changes(self) -> list[StudentPlan]:
        return [s for s in self.new + self.changed if s.accommodation is not None]

    @property
    def fingerprint(self) -> str:
        """A digest of what would change: the confirm step applies only what was previewed."""
        data = [s.as_json() for s in self.new + self.changed]
        return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()

    def counts(self) -> dict[str, int]:
        return {
            "rows": len(self.rows),
            "created": len(self.new),
            "updated": len(self.changed),
            "unchanged": len(self.unchanged),
            "accommodation_changed": len(self.accommodation_changes),
            "groups_added": sum(len(s.groups_added) for s in self.new + self.changed),
            "groups_removed": sum(len(s.groups_removed) for s in self.changed),
            "absent_left_alone": self.absent,
        }


@dataclass(frozen=True)
class RosterResult:
    counts: dict[str, int]
    moved: list[Attempt]

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['created']} new, {c['updated']} updated, {c['unchanged']} unchanged; "
            f"{c['accommodation_changed']} accommodation change(s), "
            f"{c['deadlines_moved']} running attempt deadline(s) moved; "
            f"{c['absent_left_alone']} student(s) not in the file left alone."
        )


def _rows_of(source: RosterPlan | ParsedRoster | Iterable[RosterRow]) -> list[RosterRow]:
    if isinstance(source, RosterPlan | ParsedRoster):
        if isinstance(source, ParsedRoster) and source.problems:
            raise RosterInvalid(source.problems)
        return list(source.rows)
    return list(source)


def _accommodation_of(user: User) -> Accommodation:
    return Accommodation(user.time_factor, user.extra_minutes)


def plan_roster_steps(
    session: Session, rows: ParsedRoster | Iterable[RosterRow]
) -> Steps[RosterPlan]:
    """What importing these rows would do, without changing anything; a Step after each
    chunk of rows."""
    rows = _rows_of(rows)
    plan = RosterPlan(rows=rows)
    in_file = 0
    yield Step(0, len(rows))
    for start in range(0, len(rows), _CHUNK):
        part = rows[start : start + _CHUNK]
        users = _users_by_username(session, [r.username for r in part])
        groups = _groups_by_user(session, [u.id for u in users.values()])
        for row in part:
            _plan_row(plan, row, users.get(row.username), groups)
        in_file += sum(1 for u in users.values() if u.role is Role.STUDENT)
        yield Step(start + len(part), len(rows))
    plan.problems.sort(key=lambda p: p.line)
    students = session.scalar(select(func.count(User.id)).where(User.role == Role.STUDENT)) or 0
    plan.absent = students - in_file
    return plan


def plan_roster(
    session: Session,
    rows: ParsedRoster | Iterable[RosterRow],
    progress: Progress | None = None,
) -> RosterPlan:
    """What importing these rows would do (plan_roster_steps), reporting progress."""
    return run(plan_roster_steps(session, rows), progress)


def _plan_row(
    plan: RosterPlan, row: RosterRow, user: User | None, groups: dict[int, list[str]]
) -> None:
    if user is None:
        accommodation = row.accommodation
        plan.new.append(
            StudentPlan(
                row.line,
                row.username,
                row.name,
                is_new=True,
                groups_added=row.groups or (),
                accommodation=(Accommodation(), accommodation)
                if accommodation is not None and not accommodation.is_none
                else None,
            )
        )
        return
    if user.role is not Role.STUDENT:
        plan.problems.append(
            RosterProblem(
                row.line,
                "username",
                f'"{row.username}" is a {user.role.value} account; a roster lists students only',
            )
        )
        return
    changes = [
        FieldChange(name, old, new)
        for name, old, new in (
            ("name", user.name, row.name),
            ("email", user.email, row.email),
        )
        if old != new
    ]
    accommodation_change = None
    if row.accommodation is not None:
        old_accommodation = _accommodation_of(user)
        if old_accommodation != row.accommodation:
            accommodation_change = (old_accommodation, row.accommodation)
            changes.append(
                FieldChange(
                    "accommodation",
                    old_accommodation.describe(),
                    row.accommodation.describe(),
                )
            )
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if row.groups is not None:
        current = groups.get(user.id, [])
        added = tuple(g for g in row.groups if g not in current)
        removed = tuple(g for g in current if g not in row.groups)
    if changes or added or removed:
        plan.changed.append(
            StudentPlan(
                row.line,
                row.username,
                row.name,
                is_new=False,
                changes=tuple(changes),
                groups_added=added,
                groups_removed=removed,
                accommodation=accommodation_change,
            )
        )
    else:
        plan.unchanged.append(row.username)


def apply_roster_steps(
    session: Session,
    rows: ParsedRoster | Iterable[RosterRow],
    by: User | None,
    now: datetime,
    *,
    expected: str | None = None,
    source: str = "",
    also: Callable[[Session], None] | None = None,
) -> Steps[RosterResult]:
    """Import a roster, compute first and write at the end: the plan is worked out in a
    read transaction (step by step), then apply_roster writes it in one short write
    transaction that checks the plan again (Conflict if the students changed meanwhile)
    and never yields, so no client holds the database's write lock."""
    rows = _rows_of(rows)
    try:
        plan = yield from plan_roster_steps(session, rows)
    finally:
        discard(session)  # end the read transaction (also when the client went away)
    if plan.problems:
        raise RosterInvalid(plan.problems)
    if expected is not None and plan.fingerprint != expected:
        raise Conflict(CHANGED_SINCE_PREVIEW)
    yield Step(stage=f"Saving {len(plan.new)} new and {len(plan.changed)} changed student(s)")
    return apply_roster(session, rows, by, now, expected=plan.fingerprint, source=source, also=also)


def apply_roster(
    session: Session,
    plan_or_rows: RosterPlan | ParsedRoster | Iterable[RosterRow],
    by: User | None,
    now: datetime,
    *,
    expected: str | None = None,
    source: str = "",
    also: Callable[[Session], None] | None = None,
) -> RosterResult:
    """Import a roster in one transaction: all of it, or nothing.

    The plan is computed again inside the write transaction. When a RosterPlan (or an
    `expected` fingerprint) is given and the database has changed since that plan was
    made, nothing is applied and Conflict is raised, so staff apply exactly what they
    previewed. `also` writes in the same transaction after the roster (the VLE roster
    sync links accounts to the VLE's people there); if it raises, nothing is applied.
    """
    rows = _rows_of(plan_or_rows)
    if expected is None and isinstance(plan_or_rows, RosterPlan):
        expected = plan_or_rows.fingerprint
    try:
        with unit_of_work(session):
            plan = plan_roster(session, rows)
            if plan.problems:
                raise RosterInvalid(plan.problems)
            if expected is not None and plan.fingerprint != expected:
                raise Conflict(CHANGED_SINCE_PREVIEW)
            result = _apply(session, plan, by, now, source)
            if also is not None:
                also(session)
    except IntegrityError as exc:
        # Another import or account created the same username meanwhile (PostgreSQL).
        raise Conflict("Someone changed the students meanwhile; preview again.") from exc
    return result


def _apply(
    session: Session, plan: RosterPlan, by: User | None, now: datetime, source: str
) -> RosterResult:
    by_username = {r.username: r for r in plan.rows}
    for student in plan.new:
        row = by_username[student.username]
        accommodation = row.accommodation or Accommodation()
        session.add(
            User(
                username=row.username,
                name=row.name,
                email=row.email,
                role=Role.STUDENT,
                password_hash=None,  # SSO later, or staff set one
                time_factor=accommodation.time_factor,
                extra_minutes=accommodation.extra_minutes,
                created_at=now,
            )
        )
    session.flush()
    users = _users_by_username(session, [s.username for s in plan.new + plan.changed])
    for student in plan.changed:
        row, user = by_username[student.username], users[student.username]
        user.name, user.email = row.name, row.email
        if row.accommodation is not None:
            user.time_factor = row.accommodation.time_factor
            user.extra_minutes = row.accommodation.extra_minutes
        if student.groups_removed:
            session.execute(
                delete(UserGroup).where(
                    UserGroup.user_id == user.id, UserGroup.name.in_(student.groups_removed)
                )
            )
    session.add_all(
        UserGroup(user_id=users[s.username].id, name=g)
        for s in plan.new + plan.changed
        for g in s.groups_added
    )
    session.flush()
    # Groups carry overrides: a student moved in or out of a group gets the deadline the
    # rules now give, like one whose accommodation changed (issue 16: a student taken out
    # of a 75-minute group mid-attempt kept the longer deadline).
    moved_users = [
        users[s.username].id
        for s in plan.changed
        if s.accommodation is not None or s.groups_added or s.groups_removed
    ]
    moved = recompute_deadlines_for_users(session, moved_users, now)
    actor_id = by.id if by is not None else None
    for student in plan.accommodation_changes:
        assert student.accommodation is not None
        old, new = student.accommodation
        user = users[student.username]
        audit.record(
            session,
            "accommodation",
            now,
            actor_id=actor_id,
            subject_id=user.id,
            old=_accommodation_json(old),
            new=_accommodation_json(new),
            source="roster_import",
            moved={
                str(a.id): a.deadline_at.isoformat() if a.deadline_at else None
                for a in moved
                if a.user_id == user.id
            },
        )
    counts = plan.counts() | {"deadlines_moved": len(moved)}
    audit.record(session, "roster_import", now, actor_id=actor_id, source=source, counts=counts)
    return RosterResult(counts, moved)


def _accommodation_json(accommodation: Accommodation) -> dict[str, object]:
    return {
        "time_factor": str(accommodation.time_factor),
        "extra_minutes": accommodation.extra_minutes,
        "text": accommodation.describe(),
    }


def _users_by_username(session: Session, usernames: Sequence[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for start in range(0, len(usernames), _CHUNK):
        chunk = usernames[start : start + _CHUNK]
        for user in session.scalars(select(User).where(User.username.in_(chunk))):
            found[user.username] = user
    return found


def _groups_by_user(session: Session, user_ids: Sequence[int]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for start in range(0, len(user_ids), _CHUNK):
        chunk = user_ids[start : start + _CHUNK]
        for user_id, name in session.execute(
            select(UserGroup.user_id, UserGroup.name)
            .where(UserGroup.user_id.in_(chunk))
            .order_by(UserGroup.name)
        ):
            groups.setdefault(user_id, []).append(name)
    return groups


@dataclass(frozen=True)
class RosterPage:
    students: list[User]
    groups: dict[int, list[str]]
    staff: list[User]
    total: int
    page: int
    pages: int


def roster_page(session: Session, query: str, page: int, page_size: int) -> RosterPage:
    """One page of the student list, optionally searched by username or name (the
    search text is matched literally: % and _ are not wildcards), and every staff account."""
    students = select(User).where(User.role == Role.STUDENT)
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        students = students.where(
            or_(
                User.username.ilike(pattern, escape="\\"),
                User.name.ilike(pattern, escape="\\"),
            )
        )
    total = session.scalar(select(func.count()).select_from(students.subquery())) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    rows = list(
        session.scalars(
            students.order_by(User.username).offset((page - 1) * page_size).limit(page_size)
        )
    )
    staff = list(
        session.scalars(select(User).where(User.role == Role.STAFF).order_by(User.username))
    )
    return RosterPage(rows, groups_of(session, [u.id for u in rows]), staff, total, page, pages)


def groups_of(session: Session, user_ids: Sequence[int]) -> dict[int, list[str]]:
    """Group names per student, for the roster page."""
    return _groups_by_user(session, user_ids)


def create_staff_account(
    session: Session,
    username: str,
    name: str,
    email: str,
    password: str,
    by: User | None,
    now: datetime,
) -> User:
    """A new staff account, created by another staff member; audited."""
    username, name, email = username.strip(), name.strip(), email.strip()
    for label, problem in (
        ("Username", username_problem(username)),
        ("Email", email_problem(email)),
    ):
        if problem:
            raise InvalidInput(f"{label}: {problem}.")
    if not name or len(name) > 200:
        raise InvalidInput("Name: 1 to 200 characters.")
    if len(password) < MIN_STAFF_PASSWORD:
        raise InvalidInput(f"A staff password needs at least {MIN_STAFF_PASSWORD} characters.")
    with unit_of_work(session):
        if session.scalars(select(User.id).where(User.username == username)).first():
            raise InvalidInput(f"User {username!r} already exists.")
        user = add_staff_account(
            session,
            username=username,
            name=name,
            email=email,
            password_hash=hash_password(password),
            now=now,
            actor_id=by.id if by is not None else None,
        )
    return user


def add_staff_account(
    session: Session,
    *,
    username: str,
    name: str,
    email: str,
    password_hash: str | None,
    now: datetime,
    actor_id: int | None,
    **details: Any,
) -> User:
    """A staff account and its `staff_created` audit event, in the caller's unit of
    work (a staff member's form, the VLE roster sync)."""
    user = User(
        username=username,
        name=name,
        email=email,
        role=Role.STAFF,
        password_hash=password_hash,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        "staff_created",
        now,
        actor_id=actor_id,
        subject_id=user.id,
        username=username,
        **details,
    )
    return user
