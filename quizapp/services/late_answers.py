"""Answers that reached the server after their attempt stopped taking them.

They are kept in the answer log (outcome "late" or "after_finish") when they arrive;
here the student's result page and staff's per-student page read them, and staff may
accept one: it becomes the slot's answer and the slot is graded again, audited with a
reason. Nothing is ever deleted: the log row stays as it arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from quizapp.db import end_snapshot, unit_of_work
from quizapp.domain.timing import AttemptState
from quizapp.models import Answer, AnswerLog, Attempt, AuditEvent, LogOutcome, Mark, User
from quizapp.services import audit
from quizapp.services.attempts import Arrival, upsert_answer
from quizapp.services.catalog import attempt_questions
from quizapp.services.errors import Conflict, InvalidInput, NotFound
from quizapp.services.grading import grade_answers
from quizapp.services.lti_scores import queue_scores
from quizapp.services.marking import lock_attempts, recompute_scores

REFUSED = (LogOutcome.LATE, LogOutcome.AFTER_FINISH)
ACCEPT_ACTION = "accept_late_answer"


@dataclass(frozen=True)
class RefusedAnswer:
    log_id: int
    attempt_id: int
    slot: int
    value: Any
    outcome: LogOutcome
    typed_at: datetime | None  # the browser's claim
    received_at: datetime
    accepted_at: datetime | None  # when staff accepted it, if they did
    accepted_by: str | None
    accepted_reason: str | None


def refused_answers(session: Session, attempt_ids: Iterable[int]) -> list[RefusedAnswer]:
    """Every refused (late, or after the attempt finished) answer of these attempts, in
    the order they arrived, with staff's acceptance if any."""
    ids = list(attempt_ids)
    if not ids:
        return []
    rows = session.scalars(
        select(AnswerLog)
        .where(AnswerLog.attempt_id.in_(ids), AnswerLog.outcome.in_(REFUSED))
        .order_by(AnswerLog.received_at, AnswerLog.id)
    ).all()
    accepted: dict[int, tuple[datetime, str | None, str | None]] = {}
    if rows:
        for event, username in session.execute(
            select(AuditEvent, User.username)
            .outerjoin(User, User.id == AuditEvent.actor_id)
            .where(AuditEvent.attempt_id.in_(ids), AuditEvent.action == ACCEPT_ACTION)
        ):
            accepted[int(event.details["log_id"])] = (
                event.at,
                username,
                event.details.get("reason"),
            )
    return [
        RefusedAnswer(
            r.id,
            r.attempt_id,
            r.slot,
            r.value,
            r.outcome or LogOutcome.LATE,
            r.typed_at,
            r.received_at,
            *accepted.get(r.id, (None, None, None)),
        )
        for r in rows
    ]


def refused_answers_of_quiz(session: Session, quiz_id: int) -> list[RefusedAnswer]:
    ids = session.scalars(
        select(AnswerLog.attempt_id)
        .join(Attempt, Attempt.id == AnswerLog.attempt_id)
        .where(Attempt.quiz_id == quiz_id, AnswerLog.outcome.in_(REFUSED))
        .distinct()
    ).all()
    return refused_answers(session, ids)


def accept_refused_answer(
    session: Session,
    log_id: int,
    now: datetime,
    by: User,
    reason: str,
    ip: str = "",
    *,
    student_id: int | None = None,
) -> Attempt:
    """Make a refused answer the slot's answer and grade that slot again.

    Only for a finished attempt (a running one takes saves by itself). The answer is
    stored with a sequence above everything stored, logged as a save by staff, the slot
    graded outside the write transaction, and the whole change audited with the reason,
    the old and the new value and mark.
    """
    why = reason.strip()
    if not why:
        raise InvalidInput("Give a reason: it is kept in the audit log.")
    row = session.get(AnswerLog, log_id)
    if row is None or row.outcome not in REFUSED:
        raise NotFound("No such refused answer.")
    attempt = session.get(Attempt, row.attempt_id)
    assert attempt is not None
    if student_id is not None and attempt.user_id != student_id:
        raise NotFound("No such refused answer for this student.")
    if attempt.state is AttemptState.IN_PROGRESS:
        raise Conflict("This attempt is still in progress: the student can save the answer.")
    entries = {
        entry.slot: (entry, question) for entry, question in attempt_questions(session, attempt)
    }
    if row.slot not in entries:
        raise NotFound("This attempt has no such question.")
    graded = grade_answers(attempt.id, [entries[row.slot]], {row.slot: row.value})[0]
    end_snapshot(session)  # graded with no lock held; the write below is short

    with unit_of_work(session):
        (attempt,) = lock_attempts(session, [attempt.id])
        if attempt.state is AttemptState.IN_PROGRESS:
            raise Conflict("This attempt was reopened meanwhile: the student can save the answer.")
        if _accepted_already(session, attempt.id, log_id):
            raise Conflict("This answer was accepted already.")
        before = session.scalars(
            select(Answer).where(Answer.attempt_id == attempt.id, Answer.slot == row.slot)
        ).first()
        old_value = before.value if before is not None else None
        seq = max(row.seq, (before.seq if before is not None else 0) + 1)
        upsert_answer(session, attempt.id, row.slot, row.value, seq, now)
        session.connection().execute(
            insert(AnswerLog),
            [Arrival(seq, now, ip, "staff").log_row(attempt.id, row.slot, row.value, None)],
        )
        entry = graded.entry
        session.add(
            Mark(
                attempt_id=attempt.id,
                slot=row.slot,
                version_id=entry.version_id,
                fraction=graded.grade.fraction,
                marks=graded.mark,
                status=graded.grade.status.value,
                feedback=graded.grade.feedback,
                source="auto",
                created_at=now,
                created_by=by.id,
            )
        )
        old_total = attempt.score
        recompute_scores(session, [attempt])
        # The new score to the VLE's gradebook, through the outbox (lti_scores.py).
        queue_scores(session, attempt.quiz_id, [attempt.user_id], now)
        audit.record(
            session,
            ACCEPT_ACTION,
            now,
            actor_id=by.id,
            subject_id=attempt.user_id,
            quiz_id=attempt.quiz_id,
            attempt_id=attempt.id,
            ip=ip,
            reason=why[:500],
            log_id=row.id,
            slot=row.slot,
            outcome=row.outcome.value if row.outcome else None,
            received_at=row.received_at.isoformat(),
            old_value=old_value,
            value=row.value,
            mark=str(graded.mark),
            old_total=str(old_total) if old_total is not None else None,
            total=str(attempt.score),
        )
    return attempt


def _accepted_already(session: Session, attempt_id: int, log_id: int) -> bool:
    events = session.scalars(
        select(AuditEvent.details).where(
            AuditEvent.attempt_id == attempt_id, AuditEvent.action == ACCEPT_ACTION
        )
    )
    return any(int(details.get("log_id", 0)) == log_id for details in events)
