"""Staff interventions during a quiz: extra time, a later close, an extra attempt,
reopening a finished attempt, finalising a running one. Each is one transaction that
carries its own audit event (who, when, why), so nothing is ever half-applied or
applied without a record.

Time, attempts and close all go through overrides.set_override, which keeps the
student's (or group's) other override fields, moves the deadline of running attempts
and writes the "override" audit event with the reason. Reopen and finalise-now are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quizapp.db import rows_matched, unit_of_work
from quizapp.domain.quiz import ambiguous_offsets
from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, FinishReason, Quiz, QuizOverride, User, UserGroup
from quizapp.services import attempts as attempt_service
from quizapp.services import audit
from quizapp.services.catalog import rules_for
from quizapp.services.errors import Conflict, InvalidInput, NotFound
from quizapp.services.overrides import OverrideChange, set_override

MAX_EXTRA_MINUTES = 7 * 24 * 60
MAX_REASON = 500


def local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time typed by staff in the course's zone, as aware UTC.

    A time skipped when the clocks go forward is refused, and so is a time that happens
    twice when they go back (the form has no way to say which of the two is meant).
    """
    if ambiguous_offsets(naive.replace(tzinfo=None), zone):
        raise InvalidInput(
            f"{naive:%d %b %Y %H:%M} happens twice in {zone.key} (the clocks go back "
            "then); choose a time outside the repeated hour."
        )
    moment = naive.replace(tzinfo=zone, fold=0)
    back = moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != naive.replace(tzinfo=None):
        raise InvalidInput(
            f"{naive:%d %b %Y %H:%M} does not exist in {zone.key} (the clocks go forward "
            "then); choose another time."
        )
    return moment.astimezone(UTC)


def _reason(text: str) -> str:
    reason = (text or "").strip()
    if not reason:
        raise InvalidInput("Give a reason: it is kept in the audit trail.")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"Keep the reason under {MAX_REASON} characters.")
    return reason


@dataclass(frozen=True)
class Grant:
    """What staff give: extra minutes, a later close, one more attempt (any together)."""

    extra_minutes: int | None = None
    closes_at: datetime | None = None
    extra_attempt: bool = False
    reason: str = ""
    no_time_limit: bool = False  # "unlimited"
    no_close: bool = False


@dataclass(frozen=True)
class GrantResult:
    change: OverrideChange
    moved: list[Attempt]
    target: str
    user_id: int | None  # None for a group


def _existing(
    session: Session, quiz_id: int, user_id: int | None, group: str | None
) -> QuizOverride | None:
    return session.scalars(
        select(QuizOverride).where(
            QuizOverride.quiz_id == quiz_id,
            QuizOverride.user_id == user_id
            if user_id is not None
            else QuizOverride.group_name == group,
        )
    ).first()


def grant(
    session: Session,
    quiz_id: int,
    request: Grant,
    now: datetime,
    by: User,
    *,
    username: str | None = None,
    group: str | None = None,
) -> GrantResult:
    """Extra time, a later close and/or an extra attempt for one student or one group.

    Builds on what applies now, keeping any fields of an existing override:
    - extra time: the limit that applies before the accommodation (their own override's,
      their group's or the quiz's) plus the minutes, set as their own limit; for a group,
      the group's limit (or the quiz's) plus the minutes. Each student's accommodation
      applies on top, as to every limit: 10 extra minutes for a student with +25 % give
      12 min 30 s, and extra minutes of an accommodation are added once;
    - unless a close is given, the close moves out by the same minutes (like an
      accommodation, and unless the quiz turns that off), so extra time is not lost to
      the window end;
    - an extra attempt: the attempts allowed now, plus one.
    One set_override call: one transaction, with its audit event, or nothing.
    """
    reason = _reason(request.reason)
    if (username is None) == (group is None):
        raise InvalidInput("Choose one student or one group.")
    if not (
        request.extra_minutes is not None
        or request.closes_at is not None
        or request.extra_attempt
        or request.no_time_limit
        or request.no_close
    ):
        raise InvalidInput("Choose extra time, a later close, an extra attempt, or unlimited.")
    if request.no_time_limit and request.extra_minutes is not None:
        raise InvalidInput("Choose extra time or no time limit, not both.")
    if request.no_close and request.closes_at is not None:
        raise InvalidInput("Choose a later close or no close, not both.")
    if request.extra_minutes is not None and not 0 < request.extra_minutes <= MAX_EXTRA_MINUTES:
        raise InvalidInput(f"Extra time must be 1 to {MAX_EXTRA_MINUTES} minutes.")
    if request.closes_at is not None and request.closes_at <= now:
        raise InvalidInput("The new close is in the past.")
    quiz = session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")

    user: User | None = None
    if username is not None:
        user = session.scalars(select(User).where(User.username == username.strip())).first()
        if user is None:
            raise InvalidInput(f"No student with username {username.strip()!r}.")
        rules = rules_for(session, quiz, user)
        # The values before the accommodation: it applies on top of the override, as it
        # does to the quiz's own (domain/timing.py), so it is not counted twice.
        limit, close, attempts = (
            rules.timing.base_time_limit,
            rules.timing.base_closes_at,
            rules.max_attempts,
        )
        row = _existing(session, quiz.id, user.id, None)
        target = user.username
    else:
        assert group is not None
        group = group.strip()
        if not session.scalars(select(UserGroup.id).where(UserGroup.name == group)).first():
            raise InvalidInput(f"No group named {group!r}.")
        row = _existing(session, quiz.id, None, group)
        limit = _seconds(row.time_limit_seconds if row else None) or _seconds(
            quiz.time_limit_seconds
        )
        close = (row.closes_at if row else None) or quiz.closes_at
        attempts = (row.max_attempts if row and row.max_attempts else None) or quiz.max_attempts
        target = f"group {group}"

    opens_at = row.opens_at if row else None
    new_limit = _seconds(row.time_limit_seconds) if row else None
    new_close = row.closes_at if row else None
    new_attempts = row.max_attempts if row else None
    if request.extra_minutes is not None:
        if limit is None:
            raise InvalidInput("This quiz has no time limit: give a later close instead.")
        extra = timedelta(minutes=request.extra_minutes)
        new_limit = limit + extra
        if request.closes_at is None and close is not None and quiz.extend_close_for_accommodation:
            new_close = close + extra
    if request.closes_at is not None:
        if close is not None and request.closes_at <= close:
            raise InvalidInput("The new close is not later than the close that applies now.")
        new_close = request.closes_at
    if request.extra_attempt:
        new_attempts = attempts + 1
    no_limit = request.no_time_limit or (row is not None and row.no_time_limit)
    no_close = request.no_close or (row is not None and row.no_close)
    change = OverrideChange(
        opens_at=opens_at,
        closes_at=None if no_close else new_close,
        time_limit=None if no_limit else new_limit,
        max_attempts=new_attempts,
        reason=reason,
        no_time_limit=no_limit,
        no_close=no_close,
    )
    moved = set_override(
        session,
        quiz.id,
        change,
        now,
        user_id=user.id if user is not None else None,
        group_name=group if user is None else None,
        by=by,
    )
    return GrantResult(change, moved, target, user.id if user is not None else None)


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


def _attempt(session: Session, attempt_id: int) -> Attempt:
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        raise NotFound("No such attempt.")
    return attempt


def reopen(
    session: Session,
    attempt_id: int,
    deadline: datetime,
    now: datetime,
    by: User,
    reason: str,
    ip: str = "",
) -> Attempt:
    """Put a finished attempt back in progress until `deadline`.

    finished_at, finish_reason, score and receipt are cleared (the audit event keeps
    their old values); marks stay as history and the next finalisation adds new ones,
    the newest counting. The partial unique index refuses a second attempt in progress
    for the same student and quiz: that IntegrityError becomes a clear refusal.
    A later override change for this student recomputes the deadline from the rules
    like any running attempt's (never earlier than that moment).
    """
    why = _reason(reason)
    if deadline <= now:
        raise InvalidInput("The new deadline is in the past.")
    attempt = _attempt(session, attempt_id)
    if attempt.state is AttemptState.IN_PROGRESS:
        raise Conflict("This attempt is still in progress: give extra time instead.")
    before: dict[str, Any] = {
        "previous_state": attempt.state.value,
        "previous_finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "previous_finish_reason": attempt.finish_reason.value if attempt.finish_reason else None,
        "previous_score": str(attempt.score) if attempt.score is not None else None,
        "previous_receipt": attempt.receipt,
        "previous_deadline": attempt.deadline_at.isoformat() if attempt.deadline_at else None,
    }
    with unit_of_work(session):
        try:
            changed = rows_matched(
                session.execute(
                    update(Attempt)
                    .where(Attempt.id == attempt.id, Attempt.state != AttemptState.IN_PROGRESS)
                    .values(
                        state=AttemptState.IN_PROGRESS,
                        finished_at=None,
                        finish_reason=None,
                        deadline_at=deadline,
                        score=None,
                        receipt=None,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
        except IntegrityError:
            raise Conflict(
                "The student already has another attempt at this quiz in progress; "
                "finalise it first."
            ) from None
        if changed != 1:
            raise Conflict("This attempt was reopened meanwhile.")
        audit.record(
            session,
            "reopen",
            now,
            actor_id=by.id,
            subject_id=attempt.user_id,
            quiz_id=attempt.quiz_id,
            attempt_id=attempt.id,
            ip=ip,
            reason=why,
            deadline=deadline.isoformat(),
            **before,
        )
    session.refresh(attempt)
    return attempt


def finalise_now(
    session: Session,
    attempt_id: int,
    now: datetime,
    grace: timedelta,
    by: User,
    reason: str,
    ip: str = "",
) -> bool:
    """Finalise a running attempt now, grading what was saved (FinishReason.STAFF).

    Returns False when the attempt's own deadline had already passed: it is then
    finalised as timed out (FinishReason.DEADLINE), as any request would have.
    """
    why = _reason(reason)
    attempt = _attempt(session, attempt_id)
    if attempt_service.finalise_if_expired(session, attempt, now, grace):
        return False
    if attempt.state is not AttemptState.IN_PROGRESS:
        raise Conflict("This attempt has already finished.")
    done = attempt_service.finalise_attempt(
        session,
        attempt,
        now,
        FinishReason.STAFF,
        staff_audit={"actor_id": by.id, "ip": ip[:64], "reason": why},
    )
    if not done:
        raise Conflict("This attempt has already finished.")
    return True
