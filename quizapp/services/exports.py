"""CSV exports, streamed row by row and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from itertools import groupby
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from quizapp.domain.questions import canonical_json
from quizapp.domain.scoring import GradingPolicy, format_mark, overall_score
from quizapp.domain.timing import AttemptState
from quizapp.models import Answer, Attempt, Mark, Quiz, Role, User
from quizapp.services.attempts import finalize_expired
from quizapp.services.catalog import question_of, quiz_or_404, versions_by_id
from quizapp.services.marking import grading_failures

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """Neutralise text a spreadsheet would run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_lines(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Rows → CSV text chunks; a BOM first so Excel reads UTF-8 names correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    yield "\ufeff"
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def data_rows(session: Session, kind: str, quiz_id: int) -> int:
    """How many rows (after the header) an export of `kind` will have, from one COUNT
    query: the total a progress bar or the CLI counts against. Read before the export
    itself, so a student added meanwhile may make it one off; a progress display clamps."""
    if kind in ("scores", "gradebook"):  # one row per rostered student
        query = select(func.count(User.id)).where(User.role == Role.STUDENT)
    elif kind == "responses":  # one row per attempt and slot of its layout
        query = select(func.coalesce(func.sum(func.json_array_length(Attempt.layout)), 0)).where(
            Attempt.quiz_id == quiz_id
        )
    else:
        raise ValueError(f"unknown export {kind!r}")
    return int(session.scalar(query) or 0)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


SCORE_COLUMNS = [
    "username", "name", "state", "started", "finished", "score", "maximum", "needs_staff",
]  # fmt: skip


@dataclass(frozen=True)
class StudentScore:
    student: Row[Any]  # id, username, name, email
    shown: Row[Any] | None  # the attempt that decides the state shown, if any
    score: Fraction | None
    maximum: Fraction


def student_scores(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> Iterator[StudentScore]:
    """The score that counts for every rostered student, including those who never
    started, streamed in username order.

    Expired attempts are finalised before anything is read, so nothing shows "in
    progress" whose time is long over. One query, read in batches: memory stays flat
    however many students and attempts there are.
    """
    quiz = quiz_or_404(session, quiz_id)
    finalize_expired(session, now, grace)
    policy = GradingPolicy(quiz.grading)
    quiz_max = _quiz_max(quiz)
    for student, attempts in _students_with_attempts(session, quiz.id):
        finished = [a for a in attempts if a.state is not AttemptState.IN_PROGRESS]
        score = overall_score(policy, [a.score or Fraction(0) for a in finished])
        shown = _counting_attempt(policy, attempts, finished, score)
        maximum = attempts[0].max_score if attempts else quiz_max
        yield StudentScore(student, shown, score, maximum)


def scores_rows(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> Iterator[list[str]]:
    """The staff scores CSV: one row per rostered student, including non-starters."""
    yield SCORE_COLUMNS
    finalize_expired(session, now, grace)  # first: an attempt swept now may need staff
    failed = grading_failures(session, quiz_id=quiz_id)
    for row in student_scores(session, quiz_id, now, grace):
        shown = row.shown
        waiting = failed.get(shown.attempt_id, []) if shown else []
        yield [
            spreadsheet_safe(row.student.username),
            spreadsheet_safe(row.student.name),
            shown.state.value if shown else "not_started",
            _iso(shown.started_at) if shown else "",
            _iso(shown.finished_at) if shown else "",
            format_mark(row.score, 4),
            format_mark(row.maximum, 4),
            f"grading failed: {len(waiting)} answer(s) to mark" if waiting else "",
        ]


def _students_with_attempts(
    session: Session, quiz_id: int
) -> Iterator[tuple[Row[Any], list[Row[Any]]]]:
    """Every student (by username) with their attempts at one quiz, streamed."""
    stmt = (
        select(
            User.id,
            User.username,
            User.name,
            User.email,
            Attempt.id.label("attempt_id"),
            Attempt.number,
            Attempt.state,
            Attempt.started_at,
            Attempt.finished_at,
            Attempt.score,
            Attempt.max_score,
        )
        .outerjoin(Attempt, (Attempt.user_id == User.id) & (Attempt.quiz_id == quiz_id))
        .where(User.role == Role.STUDENT)
        .order_by(User.username, Attempt.number)
        .execution_options(yield_per=1000)
    )
    for _, rows in groupby(session.execute(stmt), key=lambda r: r.id):
        group = list(rows)
        yield group[0], [r for r in group if r.attempt_id is not None]


GRADEBOOK_COLUMNS = ["Username", "Email", "Score", "Maximum", "Percent"]


def gradebook_rows(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> Iterator[list[str]]:
    """The university gradebook's upload: the score that counts, per student (blank
    when not started); the columns are documented in docs/exports.md."""
    yield GRADEBOOK_COLUMNS
    for row in student_scores(session, quiz_id, now, grace):
        percent = ""
        if row.score is not None and row.maximum > 0:
            percent = format_mark(row.score / row.maximum * 100, 2)
        yield [
            spreadsheet_safe(row.student.username),
            spreadsheet_safe(row.student.email),
            format_mark(row.score, 4),
            format_mark(row.maximum, 4),
            percent,
        ]


RESPONSE_COLUMNS = [
    "username", "name", "quiz", "attempt", "state", "finish_reason", "started_utc",
    "finished_utc", "deadline_utc", "accommodation", "seed", "slot", "question",
    "question_version", "variant", "answer_as_given", "answer", "mark", "max_mark",
    "mark_status", "mark_source",
]  # fmt: skip


def responses_rows(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> Iterator[list[Any]]:
    """One row per attempt and slot ("long" format), streamed: three ordered queries
    (attempts, answers, current marks) merged by attempt id, so memory stays flat."""
    quiz = quiz_or_404(session, quiz_id)
    finalize_expired(session, now, grace)
    yield RESPONSE_COLUMNS
    attempts = session.execute(
        select(Attempt, User.username, User.name, User.time_factor, User.extra_minutes)
        .join(User, User.id == Attempt.user_id)
        .where(Attempt.quiz_id == quiz.id)
        .order_by(Attempt.id)
        .execution_options(yield_per=500)
    )
    answers = _by_attempt(
        session.execute(
            select(Answer.attempt_id, Answer.slot, Answer.value)
            .join(Attempt, Attempt.id == Answer.attempt_id)
            .where(Attempt.quiz_id == quiz.id)
            .order_by(Answer.attempt_id)
            .execution_options(yield_per=2000)
        )
    )
    newest = (
        select(func.max(Mark.id))
        .join(Attempt, Attempt.id == Mark.attempt_id)
        .where(Attempt.quiz_id == quiz.id)
        .group_by(Mark.attempt_id, Mark.slot)
    )
    marks = _by_attempt(
        session.execute(
            select(Mark.attempt_id, Mark.slot, Mark.marks, Mark.status, Mark.source)
            .where(Mark.id.in_(newest))
            .order_by(Mark.attempt_id)
            .execution_options(yield_per=2000)
        )
    )
    versions: dict[int, Any] = {}
    for attempt, username, name, factor, extra in attempts:
        given = answers.take(attempt.id)
        marked = marks.take(attempt.id)
        accommodation = _accommodation(factor, extra)
        for entry in attempt.layout:
            slot = int(entry["slot"])
            version_id = int(entry["version_id"])
            if version_id not in versions:
                versions.update(versions_by_id(session, [version_id]))
            question = question_of(versions[version_id])
            value = given[slot].value if slot in given else None
            as_given = "" if value is None else value if isinstance(value, str) else None
            mark = marked.get(slot)
            yield [
                spreadsheet_safe(username), spreadsheet_safe(name), quiz.key, attempt.number,
                attempt.state.value, attempt.finish_reason.value if attempt.finish_reason else "",
                _iso(attempt.started_at), _iso(attempt.finished_at), _iso(attempt.deadline_at),
                accommodation, attempt.seed, slot, entry["question_key"], version_id,
                spreadsheet_safe(canonical_json(entry["variant"])),
                spreadsheet_safe(as_given if as_given is not None else canonical_json(value)),
                spreadsheet_safe(question.body.describe_response(entry["variant"], value)),
                format_mark(mark.marks, 4) if mark else "",
                format_mark(Fraction(entry["marks"]), 4),
                mark.status if mark else "", mark.source if mark else "",
            ]  # fmt: skip


def _accommodation(factor: Fraction, extra: int) -> str:
    parts = []
    if factor != 1:
        parts.append(f"x{format_mark(factor, 4)}")
    if extra:
        parts.append(f"+{extra} min")
    return " ".join(parts)


class _by_attempt:  # noqa: N801 - used like a function
    """Rows ordered by attempt id, handed out one attempt at a time (a merge join)."""

    def __init__(self, rows: Iterable[Row[Any]]):
        self._rows = iter(rows)
        self._next: Row[Any] | None = next(self._rows, None)

    def take(self, attempt_id: int) -> dict[int, Row[Any]]:
        found = {}
        while self._next is not None and self._next.attempt_id <= attempt_id:
            if self._next.attempt_id == attempt_id:
                found[self._next.slot] = self._next
            self._next = next(self._rows, None)
        return found


def _counting_attempt(
    policy: GradingPolicy,
    attempts: list[Row[Any]],
    finished: list[Row[Any]],
    score: Fraction | None,
) -> Row[Any] | None:
    in_progress = [a for a in attempts if a.state is AttemptState.IN_PROGRESS]
    if in_progress:
        return in_progress[0]
    if not finished:
        return None
    if policy is GradingPolicy.HIGHEST:
        return next(a for a in finished if (a.score or 0) == score)
    if policy is GradingPolicy.FIRST:
        return finished[0]
    return finished[-1]


def _quiz_max(quiz: Quiz) -> Fraction:
    return sum((s.marks for s in quiz.slots), Fraction(0))
