"""CSV exports, streamed row by row and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Iterator, Mapping
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
from quizapp.services.attempts import finalise_expired
from quizapp.services.catalog import question_of, quiz_or_404, versions_by_id
from quizapp.services.marking import (
    NOTHING_PENDING,
    Pending,
    chunks,
    pending_for_score,
    pending_marks,
)
from quizapp.services.marks import newest_mark_ids

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """Neutralise text a spreadsheet would run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_lines(
    rows: Iterable[Iterable[object]], *, bom: bool = True, quote_all: bool = False
) -> Iterator[str]:
    """Rows → CSV text chunks; a BOM first so Excel reads UTF-8 names correctly (the VLE
    files go without: see VLE_FILES), every cell quoted when `quote_all`."""
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    if bom:
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
    elif kind in VLE_FILES:  # at most one row per student with a finished attempt
        query = (
            select(func.count(func.distinct(Attempt.user_id)))
            .join(User, User.id == Attempt.user_id)
            .where(
                Attempt.quiz_id == quiz_id,
                Attempt.state != AttemptState.IN_PROGRESS,
                User.role == Role.STUDENT,
            )
        )
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
    "username", "name", "state", "started", "finished", "score", "maximum", "pending_marks",
    "needs_staff",
]  # fmt: skip


@dataclass(frozen=True)
class StudentScore:
    student: Row[Any]  # id, username, name, email
    shown: Row[Any] | None  # the attempt that decides the state shown, if any
    score: Fraction | None
    maximum: Fraction
    # Marks still to be marked that could change `score` (marking.pending_for_score):
    # while any are, the score is provisional.
    pending: Pending = NOTHING_PENDING

    @property
    def provisional(self) -> bool:
        return self.pending.provisional


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
    finalise_expired(session, now, grace, quiz_id=quiz_id)
    policy = GradingPolicy(quiz.grading)
    quiz_max = quiz_max_mark(quiz)
    waiting = pending_marks(session, quiz_id=quiz.id)  # only attempts with something pending
    for student, attempts in _students_with_attempts(session, quiz.id):
        yield _student_score(policy, quiz_max, student, attempts, waiting)


def scores_of_students(
    session: Session, quiz: Quiz, user_ids: Collection[int]
) -> dict[int, StudentScore]:
    """The score that counts for these students (user id -> StudentScore), by the same
    definition as student_scores, inside the caller's transaction: nothing is finalised
    first (the LTI score outbox calls this where a mark has just been written)."""
    policy = GradingPolicy(quiz.grading)
    quiz_max = quiz_max_mark(quiz)
    found: dict[int, StudentScore] = {}
    for part in chunks(sorted(set(user_ids))):
        grouped = list(_students_with_attempts(session, quiz.id, user_ids=part))
        attempt_ids = [a.attempt_id for _, attempts in grouped for a in attempts]
        waiting = pending_marks(session, attempt_ids=attempt_ids)
        for student, attempts in grouped:
            found[student.id] = _student_score(policy, quiz_max, student, attempts, waiting)
    return found


def _student_score(
    policy: GradingPolicy,
    quiz_max: Fraction,
    student: Row[Any],
    attempts: list[Row[Any]],
    waiting: Mapping[int, Pending],
) -> StudentScore:
    """One student's score that counts, from their attempts at the quiz (in order)."""
    finished = [a for a in attempts if a.state is not AttemptState.IN_PROGRESS]
    score = overall_score(policy, [a.score or Fraction(0) for a in finished])
    shown = _counting_attempt(policy, attempts, finished, score)
    maximum = attempts[0].max_score if attempts else quiz_max
    pending = pending_for_score(
        policy, [(a.attempt_id, a.score or Fraction(0)) for a in finished], waiting
    )
    return StudentScore(student, shown, score, maximum, pending)


def scores_rows(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> Iterator[list[str]]:
    """The staff scores CSV: one row per rostered student, including non-starters."""
    yield SCORE_COLUMNS
    for row in student_scores(session, quiz_id, now, grace):
        shown = row.shown
        failed = len(row.pending.grading_failed)
        yield [
            spreadsheet_safe(row.student.username),
            spreadsheet_safe(row.student.name),
            shown.state.value if shown else "not_started",
            _iso(shown.started_at) if shown else "",
            _iso(shown.finished_at) if shown else "",
            format_mark(row.score, 4),
            format_mark(row.maximum, 4),
            format_mark(row.pending.marks, 4) if row.score is not None else "",
            f"grading failed: {failed} answer(s) to mark" if failed else "",
        ]


def _students_with_attempts(
    session: Session, quiz_id: int, *, user_ids: Collection[int] | None = None
) -> Iterator[tuple[Row[Any], list[Row[Any]]]]:
    """Every student (by username) with their attempts at one quiz, streamed (or only
    these students)."""
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
    if user_ids is not None:
        stmt = stmt.where(User.id.in_(list(user_ids)))
    for _, rows in groupby(session.execute(stmt), key=lambda r: r.id):
        # Row is generic over its columns: *tuple[Any, ...] is "any width", which the
        # many-column row of this select fits (Row[Any] would mean one column).
        group: list[Row[*tuple[Any, ...]]] = list(rows)
        yield group[0], [r for r in group if r.attempt_id is not None]


GRADEBOOK_COLUMNS = ["Username", "Email", "Score", "Maximum", "Percent", "Pending marks"]


def gradebook_rows(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> Iterator[list[str]]:
    """The university gradebook's upload: the score that counts, per student (blank
    when not started), and the marks still to be marked (the score is provisional while
    that is not 0); the columns are documented in docs/exports.md."""
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
            format_mark(row.pending.marks, 4) if row.score is not None else "",
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
    finalise_expired(session, now, grace, quiz_id=quiz_id)
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
    newest = newest_mark_ids(quiz_id=quiz.id)
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


def quiz_max_mark(quiz: Quiz) -> Fraction:
    """A quiz's maximum mark: the scores CSV's Maximum, the VLE files' points possible,
    the gradebook column's maximum in deep linking and AGS."""
    return sum((s.marks for s in quiz.slots), Fraction(0))


# --- VLE gradebook uploads ----------------------------------------------------------
# Files each VLE's own gradebook import reads without editing, laid out as that VLE's
# documentation shows (docs/exports.md cites the pages). A provisional score (marks still
# to be marked, marking.pending_for_score) is never written as if final: the student's
# row is left out, so an upload never touches their grade in the VLE, and vle_report
# lists them for the staff page and the CLI. So is a student without a finished attempt.

_NOT_IN_A_COLUMN_NAME = str.maketrans({c: " " for c in "|[]()\r\n\t\"'"})
MAX_COLUMN_NAME = 100


@dataclass(frozen=True)
class VleTarget:
    """The gradebook column a VLE file fills: its name (default: the quiz's title) and,
    to fill a column that already exists, the VLE's id for it (Blackboard's Column ID,
    Canvas's assignment id)."""

    column: str = ""
    column_id: str = ""

    @classmethod
    def parse(cls, column: str = "", column_id: str = "") -> VleTarget:
        """From what staff typed; ValueError with a sentence when it cannot be used."""
        column_id = column_id.strip()
        if column_id and not (column_id.isascii() and column_id.isdigit()):
            raise ValueError(
                f"{column_id[:20]!r} is not a column id: give the digits the VLE shows "
                "(Blackboard: Quick Column Information; Canvas: the number at the end of "
                "the assignment's address)."
            )
        if len(column_id) > 20:
            raise ValueError("A column id has at most 20 digits.")
        column = column.strip()
        if len(column) > MAX_COLUMN_NAME:
            raise ValueError(f"A column name has at most {MAX_COLUMN_NAME} characters.")
        if column != column.translate(_NOT_IN_A_COLUMN_NAME):
            raise ValueError(
                "A column name cannot contain | [ ] ( ) or quotes: the VLEs read them as "
                "part of the column's id."
            )
        return cls(column, column_id)


def _column_name(quiz: Quiz, target: VleTarget) -> str:
    name = target.column or quiz.title
    return " ".join(name.translate(_NOT_IN_A_COLUMN_NAME).split())[:MAX_COLUMN_NAME]


def _split_name(name: str) -> tuple[str, str]:
    """(first, last) from the roster's one name field: the last word is the last name."""
    parts = name.split()
    if not parts:
        return "", ""
    return " ".join(parts[:-1]), parts[-1]


def _final_scores(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> Iterator[StudentScore]:
    """The students whose score may go to a VLE: a finished attempt, nothing pending."""
    for row in student_scores(session, quiz_id, now, grace):
        if row.score is not None and not row.provisional:
            yield row


def blackboard_rows(
    session: Session,
    quiz_id: int,
    now: datetime,
    grace: timedelta,
    target: VleTarget = VleTarget(),
) -> Iterator[list[str]]:
    """Blackboard Learn's Grade Centre upload (Work Offline → Upload): students keyed by
    Username, one column named as Blackboard names it, "<name> [Total Pts: <max> Score]",
    followed by " |<Column ID>" to fill an existing column (without an id Blackboard
    creates a new column). Every cell quoted, as Blackboard asks of comma files."""
    quiz = quiz_or_404(session, quiz_id)
    points = format_mark(quiz_max_mark(quiz), 4)
    header = f"{_column_name(quiz, target)} [Total Pts: {points} Score]"
    if target.column_id:
        header += f" |{target.column_id}"
    yield ["Last Name", "First Name", "Username", header]
    for row in _final_scores(session, quiz_id, now, grace):
        first, last = _split_name(row.student.name)
        yield [
            spreadsheet_safe(last),
            spreadsheet_safe(first),
            row.student.username,
            format_mark(row.score, 4),
        ]


CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def canvas_rows(
    session: Session,
    quiz_id: int,
    now: datetime,
    grace: timedelta,
    target: VleTarget = VleTarget(),
) -> Iterator[list[str]]:
    """Canvas's gradebook import (Grades → Import): the layout of Canvas's own export,
    students keyed by SIS Login ID (our username), then the "Points Possible" row and one
    assignment column, "<name> (<assignment id>)" to fill an existing assignment
    (without an id Canvas matches by name, or creates a new assignment)."""
    quiz = quiz_or_404(session, quiz_id)
    header = _column_name(quiz, target)
    if target.column_id:
        header += f" ({target.column_id})"
    yield [*CANVAS_COLUMNS, header]
    yield ["Points Possible", "", "", "", "", format_mark(quiz_max_mark(quiz), 4)]
    for row in _final_scores(session, quiz_id, now, grace):
        first, last = _split_name(row.student.name)
        sortable = f"{last}, {first}" if first else last
        yield [
            spreadsheet_safe(sortable),
            "",
            "",
            row.student.username,
            "",
            format_mark(row.score, 4),
        ]


MOODLE_COLUMNS = ["First name", "Last name", "Username", "Email address"]


def moodle_rows(
    session: Session,
    quiz_id: int,
    now: datetime,
    grace: timedelta,
    target: VleTarget = VleTarget(),
) -> Iterator[list[str]]:
    """Moodle's grade import (Grades → Import → CSV file): the user columns of Moodle's
    own grade export, then one grade column. Moodle always asks which column identifies
    the user and which grade item the column fills: "Username" → username."""
    quiz = quiz_or_404(session, quiz_id)
    yield [*MOODLE_COLUMNS, _column_name(quiz, target)]
    for row in _final_scores(session, quiz_id, now, grace):
        first, last = _split_name(row.student.name)
        yield [
            spreadsheet_safe(first),
            spreadsheet_safe(last),
            row.student.username,
            row.student.email,
            format_mark(row.score, 4),
        ]


@dataclass(frozen=True)
class VleFile:
    kind: str
    vle: str  # the VLE's name, for people
    rows: Any  # (session, quiz_id, now, grace, target) -> rows
    column_id: str  # what the VLE calls the id of an existing column ("" if none is used)
    quote_all: bool = False


VLE_FILES = {
    "blackboard": VleFile("blackboard", "Blackboard Learn", blackboard_rows, "Column ID", True),
    "canvas": VleFile("canvas", "Canvas", canvas_rows, "assignment id"),
    "moodle": VleFile("moodle", "Moodle", moodle_rows, ""),
}


def csv_style(kind: str) -> dict[str, bool]:
    """csv_lines options for an export: the VLE files go without a BOM (the VLEs read
    the first header as it is), Blackboard's with every cell quoted."""
    vle = VLE_FILES.get(kind)
    if vle is None:
        return {"bom": True, "quote_all": False}
    return {"bom": False, "quote_all": vle.quote_all}


@dataclass(frozen=True)
class LeftOut:
    username: str
    name: str
    score: Fraction
    pending: Pending


@dataclass(frozen=True)
class VleReport:
    """What a VLE file holds and what it leaves out, said to staff beside the download."""

    final: int  # students with a final score: one row each
    provisional: list[LeftOut]  # left out: marks still to be marked
    not_finished: int  # left out: no finished attempt (never started, or still working)


def vle_report(session: Session, quiz_id: int, now: datetime, grace: timedelta) -> VleReport:
    final = not_finished = 0
    provisional: list[LeftOut] = []
    for row in student_scores(session, quiz_id, now, grace):
        if row.score is None:
            not_finished += 1
        elif row.provisional:
            provisional.append(
                LeftOut(row.student.username, row.student.name, row.score, row.pending)
            )
        else:
            final += 1
    return VleReport(final, provisional, not_finished)


# Every CSV a quiz can be downloaded as (the staff pages and `quizapp export csv`):
# kind -> rows(session, quiz_id, now, grace[, target]).
EXPORTS: dict[str, Any] = {
    "scores": scores_rows,  # one row per student, including non-starters
    "responses": responses_rows,  # one row per attempt and slot
    "gradebook": gradebook_rows,  # the university gradebook's upload
    # Each VLE's own gradebook import (final scores only; provisional ones left out):
    "blackboard": VLE_FILES["blackboard"].rows,
    "canvas": VLE_FILES["canvas"].rows,
    "moodle": VLE_FILES["moodle"].rows,
}
