"""Find, and on request repair, text stored before the boundary refused it.

Until web/input_guard.py existed, an autosave could store a lone surrogate ("\\ud800"),
NUL or a Unicode non-character. The row itself stores fine (JSON columns keep the escape),
and the failure comes when it is read: the attempt page, submit, the sweeper and the CSV
exports all stopped on it. `quizapp doctor text` lists every such row (dry run), and with
--apply replaces each offending character by U+FFFD in one transaction, with an audit event
per row that records what was there, so the evidence of what the student sent is kept.

Scanning reads in batches without a write lock (an exam may be running); the repair then
re-reads each row it found inside the write transaction and repairs what is there now,
so a save that arrived in between is neither lost nor left broken.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from quizapp.db import discard, unit_of_work
from quizapp.domain.text_checks import describe, invalid_characters, repaired
from quizapp.models import (
    Answer,
    AnswerLog,
    Attempt,
    AuditEvent,
    Base,
    Mark,
    QuizOverride,
    User,
    UserGroup,
)
from quizapp.services import audit

BATCH = 1000


@dataclass(frozen=True)
class Column:
    """A column people can fill: students (answers, the logs of what they sent, a typed
    username in a failed login's audit details) or staff (feedback, reasons, rosters)."""

    model: type[Base]
    name: str
    is_json: bool
    attempt: str | None = None  # the column naming the attempt, if the row has one

    @property
    def table(self) -> str:
        return str(self.model.__tablename__)

    def attribute(self, name: str) -> InstrumentedAttribute[Any]:
        attribute: InstrumentedAttribute[Any] = getattr(self.model, name)
        return attribute


COLUMNS: tuple[Column, ...] = (
    Column(Answer, "value", True, "attempt_id"),
    Column(AnswerLog, "value", True, "attempt_id"),
    Column(AuditEvent, "details", True, "attempt_id"),
    Column(Mark, "feedback", False, "attempt_id"),
    Column(QuizOverride, "reason", False),
    Column(User, "username", False),
    Column(User, "name", False),
    Column(User, "email", False),
    Column(UserGroup, "name", False),
)


@dataclass(frozen=True)
class BadCharacter:
    where: str  # inside a JSON value: "[1]", "username", "key of x"; "" for plain text
    position: int  # 1-based, as in the guard's messages
    code_point: int

    def __str__(self) -> str:
        inside = f"{self.where} " if self.where else ""
        return f"{inside}position {self.position}: {describe(self.code_point)}"


@dataclass(frozen=True)
class BadRow:
    column: Column
    row_id: int
    attempt_id: int | None
    characters: tuple[BadCharacter, ...]

    def __str__(self) -> str:
        attempt = f" (attempt {self.attempt_id})" if self.attempt_id is not None else ""
        found = "; ".join(str(c) for c in self.characters)
        return f"{self.column.table}.{self.column.name} id {self.row_id}{attempt}: {found}"


@dataclass
class TextReport:
    scanned: int = 0
    rows: list[BadRow] = field(default_factory=list)
    repaired: int = 0


def scan_text(session: Session) -> TextReport:
    """Every stored value with a character that cannot be stored, read in batches."""
    report = TextReport()
    for column in COLUMNS:
        for row_id, attempt_id, value in _rows(session, column):
            report.scanned += 1
            found = tuple(_bad_characters(value))
            if found:
                report.rows.append(BadRow(column, row_id, attempt_id, found))
        discard(session)  # end the read snapshot between tables
    return report


def repair_text(session: Session, report: TextReport, now: datetime) -> int:
    """Replace every bad character of the rows in `report` by U+FFFD, all in one
    transaction, each row audited with what was found. Returns the rows changed."""
    discard(session)  # end the scan's snapshot
    changed = 0
    with unit_of_work(session):
        for bad in report.rows:
            column = bad.column
            current = session.execute(
                select(column.attribute(column.name)).where(column.attribute("id") == bad.row_id)
            ).scalar_one_or_none()
            fixed = _repaired_value(current)
            if fixed == current:
                continue  # replaced by a good value since the scan
            session.execute(
                update(column.model)
                .where(column.attribute("id") == bad.row_id)
                .values({column.name: fixed})
            )
            audit.record(
                session,
                "text_repaired",
                now,
                **_audit_target(session, bad),
                table=column.table,
                column=column.name,
                row_id=bad.row_id,
                replaced=[str(c) for c in _bad_characters(current)],
                replacement="U+FFFD",
            )
            changed += 1
    report.repaired = changed
    return changed


def _rows(session: Session, column: Column) -> Iterator[tuple[int, int | None, Any]]:
    """(id, attempt id, value) of every row, BATCH at a time by id: a big answer log is
    never held in memory, and no statement runs for long."""
    ident = column.attribute("id")
    attempt = column.attribute(column.attempt) if column.attempt else None
    after = 0
    while True:
        statement = (
            select(ident, attempt if attempt is not None else ident, column.attribute(column.name))
            .where(ident > after)
            .order_by(ident)
            .limit(BATCH)
        )
        batch = session.execute(statement).all()
        for row_id, attempt_id, value in batch:
            yield row_id, attempt_id if attempt is not None else None, value
        if len(batch) < BATCH:
            return
        after = batch[-1][0]


def _bad_characters(value: Any, where: str = "") -> Iterator[BadCharacter]:
    """Every bad character in a stored value: a string, or JSON at any depth (keys too).
    Iterative, so a deeply nested stored value cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            for index, code_point in invalid_characters(node):
                yield BadCharacter(path, index + 1, code_point)
        elif isinstance(node, dict):
            for key, item in reversed(list(node.items())):
                stack.append((_join(path, repaired(key)), item))
                stack.append((f"key of {_join(path, repaired(key))}", str(key)))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(node))))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _repaired_value(value: Any) -> Any:
    if isinstance(value, str):
        return repaired(value)
    if isinstance(value, dict):
        return {repaired(str(k)): _repaired_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_repaired_value(v) for v in value]
    return value


def _audit_target(session: Session, bad: BadRow) -> dict[str, Any]:
    """Whose record was changed, so the repair shows on that student's timeline."""
    if bad.attempt_id is not None:
        found = session.execute(
            select(Attempt.user_id, Attempt.quiz_id).where(Attempt.id == bad.attempt_id)
        ).first()
        if found is not None:
            return {"attempt_id": bad.attempt_id, "subject_id": found[0], "quiz_id": found[1]}
        return {}
    if bad.column.model is User:
        return {"subject_id": bad.row_id}
    return {}
