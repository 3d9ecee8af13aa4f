"""CSV exports, streamed row by row and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.domain.scoring import GradingPolicy, format_mark, overall_score
from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, Quiz, Role, User
from quizapp.services.attempts import finalize_expired
from quizapp.services.errors import NotFound

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


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


SCORE_COLUMNS = ["username", "name", "state", "started", "finished", "score", "maximum"]


def scores_rows(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> Iterator[list[str]]:
    """One row per rostered student, including those who never started.

    Expired attempts are finalised before anything is read, so the file never shows
    an attempt "in progress" whose time is long over.
    """
    quiz = session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")
    finalize_expired(session, now, grace)
    policy = GradingPolicy(quiz.grading)
    yield SCORE_COLUMNS
    students = session.scalars(
        select(User).where(User.role == Role.STUDENT).order_by(User.username)
    )
    attempts_by_user: dict[int, list[Attempt]] = {}
    for attempt in session.scalars(
        select(Attempt).where(Attempt.quiz_id == quiz.id).order_by(Attempt.user_id, Attempt.number)
    ):
        attempts_by_user.setdefault(attempt.user_id, []).append(attempt)
    for user in students:
        attempts = attempts_by_user.get(user.id, [])
        finished = [a for a in attempts if a.state is not AttemptState.IN_PROGRESS]
        score = overall_score(policy, [a.score or Fraction(0) for a in finished])
        shown = _counting_attempt(policy, attempts, finished, score)
        yield [
            spreadsheet_safe(user.username),
            spreadsheet_safe(user.name),
            shown.state.value if shown else "not_started",
            _iso(shown.started_at) if shown else "",
            _iso(shown.finished_at) if shown else "",
            format_mark(score, 4),
            format_mark(attempts[0].max_score if attempts else _quiz_max(quiz), 4),
        ]


def _counting_attempt(
    policy: GradingPolicy, attempts: list[Attempt], finished: list[Attempt], score: Fraction | None
) -> Attempt | None:
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
