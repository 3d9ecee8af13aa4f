"""Per-student and per-group overrides, and the deadlines of running attempts they move."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.db import begin_write
from quizapp.domain.timing import AttemptState, recomputed_deadline
from quizapp.models import Attempt, Quiz, QuizOverride, User, UserGroup
from quizapp.services import audit
from quizapp.services.catalog import rules_for
from quizapp.services.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class OverrideChange:
    """What staff ask for; None leaves a field as the quiz (or group) has it."""

    opens_at: datetime | None = None
    closes_at: datetime | None = None
    time_limit: timedelta | None = None
    max_attempts: int | None = None
    reason: str = ""

    def check(self, quiz: Quiz) -> None:
        opens = self.opens_at or quiz.opens_at
        if self.closes_at is not None and self.closes_at <= opens:
            raise InvalidInput("The override closes before it opens.")
        if self.time_limit is not None and self.time_limit <= timedelta(0):
            raise InvalidInput("The time limit must be more than 0 minutes.")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise InvalidInput("A student needs at least 1 attempt.")
        if not any((self.opens_at, self.closes_at, self.time_limit, self.max_attempts)):
            raise InvalidInput("The override changes nothing.")


def set_override(
    session: Session,
    quiz_id: int,
    change: OverrideChange,
    now: datetime,
    *,
    user_id: int | None = None,
    group_name: str | None = None,
    by: User | None = None,
) -> list[Attempt]:
    """Create or replace one student's or one group's override, then move the deadline
    of every running attempt it affects. Returns the attempts whose deadline moved."""
    if (user_id is None) == (group_name is None):
        raise InvalidInput("An override is for one student or one group.")
    quiz = session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")
    if user_id is not None and session.get(User, user_id) is None:
        raise NotFound("No such student.")
    change.check(quiz)
    begin_write(session)
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
    row.time_limit_seconds = int(change.time_limit.total_seconds()) if change.time_limit else None
    row.max_attempts = change.max_attempts
    row.reason = change.reason
    row.created_by = by.id if by else None
    row.created_at = now
    session.flush()
    moved = _recompute(session, quiz, user_id, group_name, now)
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
        time_limit_minutes=change.time_limit.total_seconds() / 60 if change.time_limit else None,
        max_attempts=change.max_attempts,
        moved={str(a.id): a.deadline_at.isoformat() if a.deadline_at else None for a in moved},
    )
    session.commit()
    return moved


def _recompute(
    session: Session, quiz: Quiz, user_id: int | None, group_name: str | None, now: datetime
) -> list[Attempt]:
    query = select(Attempt).where(
        Attempt.quiz_id == quiz.id, Attempt.state == AttemptState.IN_PROGRESS
    )
    if user_id is not None:
        query = query.where(Attempt.user_id == user_id)
    else:
        query = query.where(
            Attempt.user_id.in_(select(UserGroup.user_id).where(UserGroup.name == group_name))
        )
    moved = []
    for attempt in session.scalars(query.with_for_update()):
        timing = rules_for(session, quiz, attempt.user).timing
        deadline = recomputed_deadline(timing, attempt.started_at, now)
        if deadline != attempt.deadline_at:
            attempt.deadline_at = deadline
            moved.append(attempt)
    return moved


def recompute_deadlines_for_users(
    session: Session, user_ids: Iterable[int], now: datetime
) -> list[Attempt]:
    """Move the deadline of every running attempt (any quiz) of these students, after
    their accommodation changed. Same rule as for an override: never earlier than now.

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
        for quiz_id, user_id in pairs:
            quiz = session.get(Quiz, quiz_id)
            if quiz is not None:
                moved.extend(_recompute(session, quiz, user_id, None, now))
    return moved
