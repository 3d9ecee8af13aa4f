"""The audit log: append-only evidence of logins, starts, submissions, finalisations and
every staff intervention (saves have their own log, answer_log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from quizapp.db import unit_of_work
from quizapp.models import AuditEvent


def record(
    session: Session,
    action: str,
    at: datetime,
    *,
    actor_id: int | None = None,
    subject_id: int | None = None,
    quiz_id: int | None = None,
    attempt_id: int | None = None,
    ip: str = "",
    **details: Any,
) -> AuditEvent:
    """Add an event to the caller's transaction (it commits with the change it explains)."""
    event = AuditEvent(
        at=at,
        action=action,
        actor_id=actor_id,
        subject_id=subject_id,
        quiz_id=quiz_id,
        attempt_id=attempt_id,
        ip=ip[:64],
        details=details,
    )
    session.add(event)
    return event


def record_now(session: Session, action: str, at: datetime, **kwargs: Any) -> int:
    """Record an event that is a transaction of its own (a login, a failed login);
    returns its id (a reference number a refusal page can show)."""
    with unit_of_work(session):
        event = record(session, action, at, **kwargs)
        session.flush()
        return event.id
