"""Per-student and per-group overrides, and the deadlines of running attempts they move."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.db import unit_of_work
from quizapp.domain.timing import AttemptState, recomputed_deadline
from quizapp.models import Attempt, Quiz, QuizOverride, User, UserGroup
from quizapp.services import audit
from quizapp.services.catalog import rules_for_users
from quizapp.services.errors import Conflict, InvalidInput, NotFound


@dataclass(frozen=True)
class OverrideChange:
    """What staff ask for; None leaves a field as the quiz (or group) has it."""

    opens_at: datetime | None = None
    closes_at: datetime | None = None
    time_limit: timedelta | None = None
    max_attempts: int | None = None
    reason: str = ""
    no_time_limit: bool = False  # "unlimited": no time limit at all
    no_close: bool = False  # the window never closes for them

    def check(self, quiz: Quiz) -> None:
        opens = self.opens_at or quiz.opens_at
        if self.closes_at is not None and self.closes_at <= opens:
            raise InvalidInput("The override closes before it opens.")
        if self.time_limit is not None and self.time_limit <= timedelta(0):
            raise InvalidInput(
                "The time limit must be more than 0 minutes (for no limit at all, choose "
                "'no time limit')."
            )
        if self.no_time_limit and self.time_limit is not None:
            raise InvalidInput("Give a time limit or 'no time limit', not both.")
        if self.no_close and self.closes_at is not None:
            raise InvalidInput("Give a close or 'no close', not both.")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise InvalidInput("A student needs at least 1 attempt.")
        changes = (self.opens_at, self.closes_at, self.time_limit, self.max_attempts)
        if not any(changes) and not self.no_time_limit and not self.no_close:
            raise InvalidInput("The override changes nothing.")


@dataclass(frozen=True)
class Shortened:
    """A running attempt that a change would end earlier than it ends now."""

    attempt_id: int
    username: str
    old_deadline: datetime | None  # None: it had no deadline
    new_deadline: datetime


class ShortensRunningAttempts(Conflict):
    """The change would end running attempts earlier: staff must confirm it, having
    been told whom it concerns and both times (`shortened`)."""

    def __init__(self, message: str, shortened: list[Shortened]):
        super().__init__(message)
        self.shortened = shortened


def set_override(
    session: Session,
    quiz_id: int,
    change: OverrideChange,
    now: datetime,
    *,
    user_id: int | None = None,
    group_name: str | None = None,
    by: User | None = None,
    allow_shorter: bool = False,
) -> list[Attempt]:
    """Create or replace one student's or one group's override, then move the deadline
    of every running attempt it affects. Returns the attempts whose deadline moved.

    A change that would end any running attempt earlier than it ends now is refused
    with ShortensRunningAttempts (naming each student and both times) unless
    `allow_shorter`: staff confirm it knowingly, or not at all."""
    if (user_id is None) == (group_name is None):
        raise InvalidInput("An override is for one student or one group.")
    quiz = session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")
    if user_id is not None and session.get(User, user_id) is None:
        raise NotFound("No such student.")
    change.check(quiz)
    with unit_of_work(session):
        row = session.scalars(
            select(QuizOverride).where(
                QuizOverride.quiz_id == quiz_id,
                QuizOverride.user_id == user_id
                if user_id is not None
                else QuizOverride.group_name == group_name,
            )
        ).first()
        if row is None:
            row = QuizOverride(quiz_id=quiz_id, user_id=user_id, group_name=group_name)
            session.add(row)
        row.opens_at = change.opens_at
        row.closes_at = change.closes_at
        row.time_limit_seconds = (
            int(change.time_limit.total_seconds()) if change.time_limit else None
        )
        row.max_attempts = change.max_attempts
        row.no_time_limit = change.no_time_limit
        row.no_close = change.no_close
        row.reason = change.reason
        row.created_by = by.id if by else None
        row.created_at = now
        session.flush()
        moves = _recompute(session, quiz, user_id, group_name, now)
        shortened = [m for m in moves if m.shortens]
        if shortened and not allow_shorter:
            raise ShortensRunningAttempts(
                f"This would end {len(shortened)} running attempt(s) earlier; confirm to apply it.",
                [m.as_shortened() for m in shortened],
            )
        were_shortened = [m.as_shortened() for m in shortened]
        moved = [m.apply() for m in moves]
        audit.record(
            session,
            "override",
            now,
            actor_id=by.id if by else None,
            subject_id=user_id,
            quiz_id=quiz_id,
            group=group_name,
            reason=change.reason,
            opens_at=change.opens_at.isoformat() if change.opens_at else None,
            closes_at=change.closes_at.isoformat() if change.closes_at else None,
            time_limit_minutes=change.time_limit.total_seconds() / 60
            if change.time_limit
            else None,
            max_attempts=change.max_attempts,
            no_time_limit=change.no_time_limit,
            no_close=change.no_close,
            shortened=[m.attempt_id for m in were_shortened] or None,
            moved={str(a.id): a.deadline_at.isoformat() if a.deadline_at else None for a in moved},
        )
    return moved


@dataclass
class _Move:
    attempt: Attempt
    username: str
    deadline: datetime | None

    @property
    def shortens(self) -> bool:
        old = self.attempt.deadline_at
        return self.deadline is not None and (old is None or self.deadline < old)

    def as_shortened(self) -> Shortened:
        assert self.deadline is not None
        return Shortened(self.attempt.id, self.username, self.attempt.deadline_at, self.deadline)

    def apply(self) -> Attempt:
        self.attempt.deadline_at = self.deadline
        return self.attempt


def _recompute(
    session: Session,
    quiz: Quiz,
    user_id: int | None,
    group_name: str | None,
    now: datetime,
    *,
    user_ids: Iterable[int] | None = None,
) -> list[_Move]:
    """The new deadline of every running attempt of this quiz that the change touches
    (one student, a group's members, or `user_ids`), not yet applied. The rules of all
    of them are assembled in two queries (catalog.rules_for_users), under the attempts'
    locks."""
    query = select(Attempt).where(
        Attempt.quiz_id == quiz.id, Attempt.state == AttemptState.IN_PROGRESS
    )
    if user_ids is not None:
        query = query.where(Attempt.user_id.in_(sorted(set(user_ids))))
    elif user_id is not None:
        query = query.where(Attempt.user_id == user_id)
    else:
        query = query.where(
            Attempt.user_id.in_(select(UserGroup.user_id).where(UserGroup.name == group_name))
        )
    attempts = session.scalars(query.order_by(Attempt.id).with_for_update()).all()
    if not attempts:
        return []
    users = {u.id: u for u in session.scalars(
        select(User).where(User.id.in_({a.user_id for a in attempts}))
    )}  # fmt: skip
    rules = rules_for_users(session, quiz, users.values())
    moves = []
    for attempt in attempts:
        deadline = recomputed_deadline(rules[attempt.user_id].timing, attempt.started_at, now)
        if deadline != attempt.deadline_at:
            moves.append(_Move(attempt, users[attempt.user_id].username, deadline))
    return moves


def recompute_deadlines_for_users(
    session: Session, user_ids: Iterable[int], now: datetime
) -> list[Attempt]:
    """Move the deadline of every running attempt (any quiz) of these students, after
    their accommodation or their groups changed. Same rule as for an override: never
    earlier than now. (A roster import shows these moves in its preview, and applying
    the previewed import is the confirmation.)

    Runs in the caller's write transaction (begin_write first); the caller audits and
    commits. Returns the attempts whose deadline moved.
    """
    wanted = sorted(set(user_ids))
    moved: list[Attempt] = []
    for start in range(0, len(wanted), 500):  # bounded IN lists on every engine
        pairs = session.execute(
            select(Attempt.quiz_id, Attempt.user_id)
            .where(
                Attempt.state == AttemptState.IN_PROGRESS,
                Attempt.user_id.in_(wanted[start : start + 500]),
            )
            .distinct()
            .order_by(Attempt.quiz_id, Attempt.user_id)
        ).all()
        by_quiz: dict[int, list[int]] = {}
        for quiz_id, user_id in pairs:
            by_quiz.setdefault(quiz_id, []).append(user_id)
        for quiz_id, users_of_quiz in by_quiz.items():
            quiz = session.get(Quiz, quiz_id)
            if quiz is not None:
                moves = _recompute(session, quiz, None, None, now, user_ids=users_of_quiz)
                moved.extend(m.apply() for m in moves)
    return moved
