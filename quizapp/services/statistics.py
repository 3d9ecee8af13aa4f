"""Quiz statistics for staff: load the mark matrix of a quiz, let the domain compute.

Which attempts count (the `which` choice, default FIRST):

- FIRST (default, Moodle's convention): each student's first finished attempt. Item
  analysis assumes one independent sitting per student; later attempts build on the
  first. With one attempt allowed (the usual exam) every choice gives the same data.
- GRADED: the attempts the quiz's grading policy counts: highest (the highest-scoring
  attempt; the earliest of equals), first, last, or average (all finished attempts).
- LAST: each student's last finished attempt.
- ALL: every finished attempt, each treated as independent (Moodle's "all attempts",
  statistically dubious but useful with few students).

Only finished attempts (submitted or timed out) are read, after finalising any whose
time is over. The mark of a slot is its current mark: the newest row (highest id) in the
append-only marks table for that attempt and slot; a slot without a mark row counts 0
(Moodle's treatment of an omitted item). A slot's maximum is taken from the attempts'
own layouts (what those students were marked out of); the quiz's current slots are used
only to list slots nobody has attempted yet.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Protocol, TypeVar

from sqlalchemy import String, literal_column, select, type_coerce
from sqlalchemy.orm import Session

from quizapp.domain import statistics as stats
from quizapp.domain.scoring import GradingPolicy, format_mark
from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, Mark, Quiz, QuizSlot
from quizapp.services.attempts import finalise_expired
from quizapp.services.errors import InvalidInput, NotFound
from quizapp.services.exports import spreadsheet_safe
from quizapp.services.marks import is_current_mark

FINISHED = (AttemptState.SUBMITTED, AttemptState.TIMED_OUT)


class WhichAttempts(enum.StrEnum):
    FIRST = "first"
    GRADED = "graded"
    LAST = "last"
    ALL = "all"

    @classmethod
    def parse(cls, text: str | None) -> WhichAttempts:
        if not text:
            return cls.FIRST
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(c.value for c in cls)
            raise InvalidInput(f"Unknown choice of attempts {text!r}: use {choices}.") from None

    @property
    def label(self) -> str:
        return {
            WhichAttempts.FIRST: "each student's first finished attempt",
            WhichAttempts.GRADED: "the attempts the quiz's grading method counts",
            WhichAttempts.LAST: "each student's last finished attempt",
            WhichAttempts.ALL: "every finished attempt",
        }[self]


@dataclass(frozen=True)
class SlotInfo:
    slot: int
    max_mark: Fraction
    questions: tuple[str, ...]  # question keys drawn into this slot, sorted
    max_marks_differ: bool  # attempts were marked out of different maxima (re-import)


@dataclass(frozen=True)
class StatisticsReport:
    quiz: Quiz
    which: WhichAttempts
    finished_attempts: int  # before choosing which count
    slots: tuple[SlotInfo, ...]
    stats: stats.QuizStatistics

    def slot_info(self, slot: int) -> SlotInfo:
        return next(s for s in self.slots if s.slot == slot)


class _Finished(Protocol):
    @property
    def score(self) -> Fraction | None: ...


_A = TypeVar("_A", bound=_Finished)


def counted_attempts(attempts: list[_A], which: WhichAttempts, policy: GradingPolicy) -> list[_A]:
    """From one student's finished attempts (in order of number), those that count."""
    if not attempts:
        return []
    if which is WhichAttempts.ALL:
        return attempts
    if which is WhichAttempts.FIRST:
        return attempts[:1]
    if which is WhichAttempts.LAST:
        return attempts[-1:]
    if policy is GradingPolicy.HIGHEST:
        best = max(a.score or Fraction(0) for a in attempts)
        return [next(a for a in attempts if (a.score or Fraction(0)) == best)]
    if policy is GradingPolicy.FIRST:
        return attempts[:1]
    if policy is GradingPolicy.LAST:
        return attempts[-1:]
    return attempts


def _label(key: str, version_id: int) -> str:
    return f"{key} (version {version_id})"


class _Parsed(dict[str, Fraction]):
    """Mark text ("7/3") to Fraction, each distinct text parsed once: a quiz's marks
    take a handful of values, so 150,000 cells cost a dictionary look-up each."""

    def __missing__(self, text: str) -> Fraction:
        value = self[text] = Fraction(text)
        return value


@dataclass(frozen=True, eq=False)
class _Planned:
    """What statistics need of one layout entry (not the variant, which can be large).
    Each distinct entry is made once (`_Plans`), so identity is equality here."""

    slot: int
    marks: Fraction
    key: str
    version_id: int


@dataclass(frozen=True)
class _Row:
    """A finished attempt as read: plain values, no ORM object."""

    id: int
    user_id: int
    score: Fraction | None
    plan: tuple[_Planned, ...]


# A layout reduced by the database to [[slot, marks, question_key, version_id], ...]:
# the variants (most of a layout's kilobytes) are never sent, and attempts that drew
# the same questions share the text, so it is parsed once per distinct plan.
_COMPACT_LAYOUT = {
    # json_extract with several paths returns them as one array: one parse per entry.
    "sqlite": "(SELECT json_group_array(json_extract(e.value, '$.slot', '$.marks', "
    "'$.question_key', '$.version_id')) FROM json_each(attempts.layout) AS e)",
    # json_to_recordset parses each entry once (e -> 'field' would parse it per field).
    "postgresql": "(SELECT CAST(json_agg(json_build_array(e.slot, e.marks, e.question_key, "
    "e.version_id)) AS TEXT) FROM json_to_recordset(attempts.layout) "
    "AS e(slot integer, marks text, question_key text, version_id integer))",
}


def _compact(layout: list[dict[str, Any]]) -> str:
    """What _COMPACT_LAYOUT computes, in Python (for another database)."""
    return json.dumps([[e["slot"], e["marks"], e["question_key"], e["version_id"]] for e in layout])


class _Plans:
    """Compact layouts to tuples of `_Planned`, each distinct text parsed once and each
    distinct entry made once: 10,000 attempts drawn from a bank share most of them."""

    def __init__(self, parsed: _Parsed) -> None:
        self.parsed = parsed
        self.entries: dict[tuple[Any, ...], _Planned] = {}
        self.plans: dict[str, tuple[_Planned, ...]] = {}

    def __call__(self, compact: str | None) -> tuple[_Planned, ...]:
        text = compact or "[]"
        plan = self.plans.get(text)
        if plan is not None:
            return plan
        entries = []
        for slot, marks, key, version_id in json.loads(text):
            raw = (slot, str(marks), key, version_id)
            planned = self.entries.get(raw)
            if planned is None:
                planned = self.entries[raw] = _Planned(
                    int(slot), self.parsed[str(marks)], str(key), int(version_id)
                )
            entries.append(planned)
        plan = self.plans[text] = tuple(entries)
        return plan


NOT_IN_ATTEMPT = "(not in this attempt)"
# Rows fetched at a time (a server-side cursor on PostgreSQL), so memory stays flat:
# a parsed layout holds every variant (kilobytes), and only its `_Planned` entries stay.
ATTEMPTS_CHUNK = 500
MARKS_CHUNK = 5000


def quiz_statistics(
    session: Session,
    quiz_id: int,
    now: datetime,
    grace: timedelta,
    which: WhichAttempts = WhichAttempts.FIRST,
) -> StatisticsReport:
    """Statistics of a quiz in four reads after the finaliser's sweep: the quiz, its
    finished attempts (each layout reduced by the database to what is needed), their
    current marks (the newest row per attempt and slot: no newer row exists) and the
    quiz's slots. The count does not grow with attempts.

    Rows are read as plain values in chunks (no ORM objects), each distinct mark text
    and each distinct layout is parsed once, and the marks go into one integer column
    per slot on a common denominator, from which the domain computes every statistic
    with integer sums (`domain.statistics.scaled_statistics`): exact, and fast for
    10,000 attempts."""
    # Finalise first: the sweep ends its transaction, which would expire a loaded quiz.
    finalise_expired(session, now, grace, quiz_id=quiz_id)
    quiz = session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")
    try:
        policy = GradingPolicy(quiz.grading)
    except ValueError:
        policy = GradingPolicy.HIGHEST
    parsed = _Parsed()
    plans = _Plans(parsed)

    connection = session.connection()
    dialect = connection.dialect.name
    layout_column: Any = (
        literal_column(_COMPACT_LAYOUT[dialect], String)
        if dialect in _COMPACT_LAYOUT
        else Attempt.layout
    )
    result = connection.execute(
        select(Attempt.id, Attempt.user_id, type_coerce(Attempt.score, String), layout_column)
        .where(Attempt.quiz_id == quiz.id, Attempt.state.in_(FINISHED))
        .order_by(Attempt.user_id, Attempt.number)
        .execution_options(yield_per=ATTEMPTS_CHUNK)
    )
    finished_count = 0
    counted: list[_Row] = []
    student: list[_Row] = []
    for attempt_id, user_id, score, layout in result:
        finished_count += 1
        if student and student[0].user_id != user_id:
            counted.extend(counted_attempts(student, which, policy))
            student = []
        student.append(
            _Row(
                attempt_id,
                user_id,
                None if score is None else parsed[score],
                plans(layout if dialect in _COMPACT_LAYOUT else _compact(layout)),
            )
        )
    counted.extend(counted_attempts(student, which, policy))
    del student

    # Slots and their maxima from the counted attempts' layouts (plus the quiz's slots).
    maxima: dict[int, set[Fraction]] = {}
    keys: dict[int, set[str]] = {}
    for plan in {attempt.plan for attempt in counted}:
        for planned in plan:
            maxima.setdefault(planned.slot, set()).add(planned.marks)
            keys.setdefault(planned.slot, set()).add(planned.key)
    quiz_slots = session.scalars(select(QuizSlot).where(QuizSlot.quiz_id == quiz.id)).all()
    for quiz_slot in quiz_slots:
        if quiz_slot.number not in maxima:
            maxima[quiz_slot.number] = {quiz_slot.marks}
            keys[quiz_slot.number] = set(quiz_slot.candidates)
    numbers = sorted(maxima)
    infos = tuple(
        SlotInfo(s, max(maxima[s]), tuple(sorted(keys.get(s, ()))), len(maxima[s]) > 1)
        for s in numbers
    )

    # Column-major: texts[slot index][attempt index] and labels likewise; the label is
    # the layout's question and version until a mark row names the version it marked.
    column_of = {slot: j for j, slot in enumerate(numbers)}
    row_of = {attempt.id: i for i, attempt in enumerate(counted)}
    n = len(counted)
    texts: list[list[str]] = [["0"] * n for _ in numbers]
    labels: list[list[str]] = [[NOT_IN_ATTEMPT] * n for _ in numbers]
    named: dict[tuple[str, int], str] = {}
    layout_keys: list[dict[int, str]] = []
    slot_keys: dict[tuple[_Planned, ...], dict[int, str]] = {}
    for i, attempt in enumerate(counted):
        for planned in attempt.plan:
            pair = (planned.key, planned.version_id)
            name = named.get(pair)
            if name is None:
                name = named[pair] = _label(*pair)
            labels[column_of[planned.slot]][i] = name
        by_slot = slot_keys.get(attempt.plan)
        if by_slot is None:
            by_slot = slot_keys[attempt.plan] = {p.slot: p.key for p in attempt.plan}
        layout_keys.append(by_slot)
    del counted

    # The current mark: services/marks.py, as a condition on the rows read here.
    marks = connection.execute(
        select(Mark.attempt_id, Mark.slot, type_coerce(Mark.marks, String), Mark.version_id)
        .join(Attempt, Attempt.id == Mark.attempt_id)
        .where(
            Attempt.quiz_id == quiz.id,
            Attempt.state.in_(FINISHED),
            is_current_mark(),
        )
        .execution_options(yield_per=MARKS_CHUNK)
    )
    for attempt_id, slot, text, version_id in marks:
        row = row_of.get(attempt_id)
        column = column_of.get(slot)
        if row is None or column is None:
            continue  # an attempt that does not count, or a slot we do not report
        texts[column][row] = text
        key = layout_keys[row].get(slot)
        if key is not None:
            pair = (key, version_id)
            name = named.get(pair)
            if name is None:
                name = named[pair] = _label(*pair)
            labels[column][row] = name
    del layout_keys, row_of, slot_keys

    values = {text: parsed[text] for text in {t for column in texts for t in column}}
    denominator = stats.common_denominator(values.values())
    scaled = {
        text: value.numerator * (denominator // value.denominator) for text, value in values.items()
    }
    columns = [[scaled[t] for t in column] for column in texts]
    del texts
    computed = stats.scaled_statistics(
        columns,
        denominator,
        [i.max_mark for i in infos],
        slots=numbers,
        labels=labels,
        attempts=n,
    )
    return StatisticsReport(quiz, which, finished_count, infos, computed)


# --------------------------------------------------------------------------- CSV

QUIZ_COLUMNS = ["statistic", "value"]
SLOT_COLUMNS = [
    "slot",
    "question",
    "attempts",
    "max_mark",
    "mean",
    "facility_percent",
    "sd",
    "sd_percent",
    "discrimination_percent",
    "alpha_if_deleted_percent",
    "flags",
    "note",
]


def _number(value: float | Fraction | None, places: int = 2) -> str:
    """Numbers we format ourselves: no text from users, so no formula risk."""
    if value is None:
        return ""
    return format_mark(Fraction(value), places)


def _percent(value: float | Fraction | None, places: int = 1) -> str:
    return "" if value is None else _number(Fraction(value) * 100, places)


def _slot_row(
    slot: int, question: str, item: stats.ItemStatistics, alpha_deleted: Fraction | None
) -> list[str]:
    return [
        str(slot),
        spreadsheet_safe(question),
        str(item.n),
        _number(item.max_mark, 4),
        _number(item.mean, 4),
        _percent(item.facility),
        _number(item.sd, 4),
        _percent(item.sd_fraction),
        _percent(item.discrimination),
        _percent(alpha_deleted),
        spreadsheet_safe("; ".join(f.value for f in item.flags)),
        spreadsheet_safe(item.discrimination_undefined_because),
    ]


def statistics_rows(report: StatisticsReport) -> Iterator[list[str]]:
    """Quiz rows (statistic, value), a blank line, then one row per slot followed by a
    row per question drawn into it when a slot drew more than one (or a changed version)."""
    s = report.stats
    share = None if s.mean is None or s.max_total == 0 else s.mean / s.max_total
    yield QUIZ_COLUMNS
    quiz_rows: list[tuple[str, str]] = [
        ("quiz", spreadsheet_safe(report.quiz.key)),
        ("title", spreadsheet_safe(report.quiz.title)),
        ("attempts counted", report.which.value),
        ("finished attempts", str(report.finished_attempts)),
        ("attempts", str(s.n)),
        ("maximum mark", _number(s.max_total, 4)),
        ("mean", _number(s.mean, 4)),
        ("median", _number(s.median, 4)),
        ("standard deviation", _number(s.sd, 4)),
        ("minimum", _number(s.minimum, 4)),
        ("maximum", _number(s.maximum, 4)),
        ("mean percent", _percent(share)),
        ("cronbach alpha percent", _percent(s.alpha)),
        ("alpha undefined because", spreadsheet_safe(s.alpha_undefined_because)),
        ("error ratio percent", _percent(s.error_ratio)),
        ("standard error", _number(s.standard_error, 4)),
    ]
    for name, value in quiz_rows:
        yield [name, value]
    yield []
    yield SLOT_COLUMNS
    for slot in s.slots:
        info = report.slot_info(slot.slot)
        yield _slot_row(slot.slot, " | ".join(info.questions), slot.stats, slot.alpha_if_deleted)
        if len(slot.variants) > 1:
            for variant in slot.variants:
                yield _slot_row(slot.slot, variant.label, variant.stats, None)
