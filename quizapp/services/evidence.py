"""The timeline a misconduct panel reads: audit events and every accepted save, in order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from heapq import merge
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from quizapp.domain.questions import canonical_json
from quizapp.models import AnswerLog, Attempt, AuditEvent, Quiz, User
from quizapp.services.errors import NotFound

TIMELINE_COLUMNS = [
    "time_utc", "action", "student", "actor", "quiz", "attempt", "address", "browser_session",
    "details",
]  # fmt: skip


@dataclass(frozen=True)
class TimelineRow:
    at: datetime
    action: str
    student: str
    actor: str
    quiz: str
    attempt_id: int | None
    ip: str
    client: str
    details: str

    def as_csv(self) -> list[Any]:
        return [
            self.at.isoformat(timespec="seconds"), self.action, self.student, self.actor,
            self.quiz, self.attempt_id or "", self.ip, self.client, self.details,
        ]  # fmt: skip


def timeline(
    session: Session, *, student_id: int | None = None, quiz_id: int | None = None
) -> Iterator[TimelineRow]:
    """Audit events and saves for one student and/or one quiz, oldest first, streamed."""
    subject, actor = aliased(User), aliased(User)
    events = (
        select(AuditEvent, subject.username, actor.username, Quiz.key)
        .outerjoin(subject, subject.id == AuditEvent.subject_id)
        .outerjoin(actor, actor.id == AuditEvent.actor_id)
        .outerjoin(Quiz, Quiz.id == AuditEvent.quiz_id)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    saves = (
        select(AnswerLog, User.username, Quiz.key)
        .join(Attempt, Attempt.id == AnswerLog.attempt_id)
        .join(User, User.id == Attempt.user_id)
        .join(Quiz, Quiz.id == Attempt.quiz_id)
        .order_by(AnswerLog.received_at, AnswerLog.id)
    )
    if student_id is not None:
        events = events.where(AuditEvent.subject_id == student_id)
        saves = saves.where(Attempt.user_id == student_id)
    if quiz_id is not None:
        events = events.where(AuditEvent.quiz_id == quiz_id)
        saves = saves.where(Attempt.quiz_id == quiz_id)

    def event_rows() -> Iterator[TimelineRow]:
        for event, student, who, quiz in session.execute(events).yield_per(500):
            yield TimelineRow(
                event.at,
                event.action,
                student or event.details.get("username", ""),
                who or "",
                quiz or "",
                event.attempt_id,
                event.ip,
                str(event.details.get("client", "")),
                canonical_json(event.details),
            )

    def save_rows() -> Iterator[TimelineRow]:
        for entry, student, quiz in session.execute(saves).yield_per(500):
            details: dict[str, Any] = {"slot": entry.slot, "seq": entry.seq, "value": entry.value}
            if entry.typed_at is not None:
                details["typed_at"] = entry.typed_at.isoformat()
            yield TimelineRow(
                entry.received_at,
                # A refused save reads as such: "save (late)", "save (stale)".
                "save" if entry.outcome is None else f"save ({entry.outcome.value})",
                student,
                student,
                quiz,
                entry.attempt_id,
                entry.ip,
                entry.client,
                canonical_json(details),
            )

    yield from merge(event_rows(), save_rows(), key=lambda row: row.at)


def audit_scope(
    session: Session, username: str, quiz_key: str
) -> tuple[int | None, int | None, str]:
    """A student's username and/or a quiz's key as ids for `timeline`, and a label for
    a file name ("alice-quiz1", or "all"); an unknown name is NotFound."""
    student_id = quiz_id = None
    labels = []
    if username:
        student_id = session.scalars(select(User.id).where(User.username == username)).first()
        if student_id is None:
            raise NotFound(f"No user {username!r}.")
        labels.append(username)
    if quiz_key:
        quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == quiz_key)).first()
        if quiz_id is None:
            raise NotFound(f"No quiz {quiz_key!r}.")
        labels.append(quiz_key)
    return student_id, quiz_id, "-".join(labels) or "all"
