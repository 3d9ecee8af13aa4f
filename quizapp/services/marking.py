"""Manual marking: the queue of answers staff mark by hand, marks entered with a comment,
and the full history of an attempt's marks.

Marks are append-only rows (models.Mark): a manual mark is one more row (source "manual",
feedback = the comment, created_by = the examiner); the newest row per slot counts, and
the attempt's score is recomputed as the exact sum of the marks that count. Regrades
(services/regrade.py) share the helpers at the top of this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache
from typing import Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from quizapp.db import unit_of_work
from quizapp.domain.layout import LayoutEntry
from quizapp.domain.qtypes.base import Grade, GradeStatus
from quizapp.domain.questions import Question
from quizapp.domain.render import render_markdown
from quizapp.domain.scoring import GradingPolicy, total
from quizapp.domain.timing import AttemptState
from quizapp.models import Answer, Attempt, Mark, Quiz, User
from quizapp.services import audit
from quizapp.services.attempts import finalise_expired
from quizapp.services.catalog import layout_of, question_of, quiz_or_404, versions_by_id
from quizapp.services.errors import Conflict, InvalidInput, NotFound
from quizapp.services.lti_scores import queue_scores
from quizapp.services.marks import newest_mark_ids

FINISHED = (AttemptState.SUBMITTED, AttemptState.TIMED_OUT)
NEEDS_MARKING = GradeStatus.NEEDS_MARKING.value
# Bound parameters per IN (...) list: well under SQLite's and PostgreSQL's limits.
CHUNK = 500


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def current_marks_of(session: Session, attempt_ids: Sequence[int]) -> dict[tuple[int, int], Mark]:
    """The mark that counts for every slot of these attempts, by (attempt id, slot): the
    newest row (the highest id; rows are never updated, so the id orders them)."""
    found: dict[tuple[int, int], Mark] = {}
    for part in chunks(list(attempt_ids)):
        newest = newest_mark_ids(attempt_ids=part)
        for mark in session.scalars(
            select(Mark).where(Mark.id.in_(newest)).execution_options(populate_existing=True)
        ):
            found[(mark.attempt_id, mark.slot)] = mark
    return found


# Marks are few distinct texts ("0", "1", "1/2"...): parsing each once keeps reading
# thousands of marks cheap (Fraction is immutable, so sharing one is safe).
parse_fraction = lru_cache(maxsize=4096)(Fraction)


GRADING_FAILED = GradeStatus.GRADING_FAILED.value


PENDING_STATUSES = (NEEDS_MARKING, GRADING_FAILED)


@dataclass(frozen=True)
class Pending:
    """What still needs marking in one attempt: the score shown for it is provisional
    until staff have marked these answers (each counts 0 until then)."""

    needs_marking: tuple[int, ...] = ()  # slots waiting for a hand mark (essays)
    grading_failed: tuple[int, ...] = ()  # slots whose automatic grading failed
    marks: Fraction = Fraction(0)  # what those slots are worth together

    @property
    def answers(self) -> int:
        return len(self.needs_marking) + len(self.grading_failed)

    @property
    def provisional(self) -> bool:
        return self.answers > 0

    def __add__(self, other: Pending) -> Pending:
        return Pending(
            self.needs_marking + other.needs_marking,
            self.grading_failed + other.grading_failed,
            self.marks + other.marks,
        )


NOTHING_PENDING = Pending()


def pending_marks(
    session: Session, *, quiz_id: int | None = None, attempt_ids: Sequence[int] = ()
) -> dict[int, Pending]:
    """Attempts (of a quiz, or these ones) whose current mark for some slot still needs
    staff: an essay not marked yet, or an answer whose automatic grading failed.

    attempt id -> Pending; attempts with nothing pending are left out. The one place
    that decides "provisional": the result and review pages, the staff overview and
    per-student page, and every CSV read it from here. Two queries (the marks, then the
    layouts of the attempts concerned, for what each slot is worth)."""
    if quiz_id is not None:
        newest = newest_mark_ids(quiz_id=quiz_id)
    else:
        if not attempt_ids:
            return {}
        newest = newest_mark_ids(attempt_ids=attempt_ids)
    waiting: dict[int, list[tuple[int, str]]] = {}
    for attempt_id, slot, status in session.execute(
        select(Mark.attempt_id, Mark.slot, Mark.status)
        .where(Mark.id.in_(newest), Mark.status.in_(PENDING_STATUSES))
        .order_by(Mark.attempt_id, Mark.slot)
    ):
        waiting.setdefault(attempt_id, []).append((slot, status))
    worth: dict[tuple[int, int], Fraction] = {}
    for part in chunks(sorted(waiting)):
        for attempt_id, layout in session.execute(
            select(Attempt.id, Attempt.layout).where(Attempt.id.in_(part))
        ):
            for entry in layout or []:
                worth[(attempt_id, int(entry["slot"]))] = Fraction(entry["marks"])
    return {
        attempt_id: Pending(
            needs_marking=tuple(s for s, status in slots if status == NEEDS_MARKING),
            grading_failed=tuple(s for s, status in slots if status == GRADING_FAILED),
            marks=sum((worth.get((attempt_id, s), Fraction(0)) for s, _ in slots), Fraction(0)),
        )
        for attempt_id, slots in waiting.items()
    }


def pending_for_score(
    policy: GradingPolicy,
    finished: Sequence[tuple[int, Fraction]],
    pending: Mapping[int, Pending],
) -> Pending:
    """What is pending for a student's overall score: the pending marks of every finished
    attempt (id, score; in the order taken) that marking could still change the score
    through under the quiz's grading policy. First or last: that attempt only. Average:
    every attempt. Highest: the counting attempt, and any other whose score plus its
    pending marks could overtake it."""
    if not finished:
        return NOTHING_PENDING
    if policy is GradingPolicy.FIRST:
        relevant = [finished[0]]
    elif policy is GradingPolicy.LAST:
        relevant = [finished[-1]]
    elif policy is GradingPolicy.AVERAGE:
        relevant = list(finished)
    else:
        best = max(score for _, score in finished)
        counting = next(i for i, score in finished if score == best)
        relevant = [
            (i, score)
            for i, score in finished
            if i == counting or score + pending.get(i, NOTHING_PENDING).marks > best
        ]
    result = NOTHING_PENDING
    for attempt_id, _ in relevant:
        result = result + pending.get(attempt_id, NOTHING_PENDING)
    return result


def grading_failures(
    session: Session, *, quiz_id: int | None = None, attempt_ids: Sequence[int] = ()
) -> dict[int, list[int]]:
    """Attempts (of a quiz, or these ones) whose automatic grading failed for some answer
    that staff have not marked since: attempt id -> its slots waiting ("needs staff").
    The grading-failure part of pending_marks."""
    return {
        attempt_id: list(p.grading_failed)
        for attempt_id, p in pending_marks(
            session, quiz_id=quiz_id, attempt_ids=attempt_ids
        ).items()
        if p.grading_failed
    }


def current_totals(session: Session, attempt_ids: Sequence[int]) -> dict[int, Fraction]:
    """The exact sum of the marks that count, per attempt (0 for an attempt without
    marks), from plain (attempt id, mark text) rows: a regrade totals thousands."""
    sums: dict[int, list[Fraction]] = {attempt_id: [] for attempt_id in attempt_ids}
    for part in chunks(list(attempt_ids)):
        newest = newest_mark_ids(attempt_ids=part)
        for attempt_id, marks in session.execute(
            select(Mark.attempt_id, type_coerce(Mark.marks, String)).where(Mark.id.in_(newest))
        ):
            sums[attempt_id].append(parse_fraction(marks))
    return {attempt_id: total(values) for attempt_id, values in sums.items()}


def recompute_scores(session: Session, attempts: Iterable[Attempt]) -> None:
    """Set each attempt's score to the exact Fraction sum of its current marks (after the
    caller's new rows are flushed)."""
    by_id = {a.id: a for a in attempts}
    session.flush()
    for attempt_id, score in current_totals(session, list(by_id)).items():
        by_id[attempt_id].score = score


def lock_attempts(session: Session, attempt_ids: Sequence[int]) -> list[Attempt]:
    """The attempts, re-read and locked for update (PostgreSQL; SQLite's write lock is
    already held after begin_write), so a concurrent mark or regrade waits for us."""
    rows: list[Attempt] = []
    for part in chunks(list(attempt_ids)):
        rows.extend(
            session.scalars(
                select(Attempt)
                .where(Attempt.id.in_(part))
                .order_by(Attempt.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
    return rows


def entry_for_slot(attempt: Attempt, slot: int) -> LayoutEntry | None:
    return next((e for e in layout_of(attempt) if e.slot == slot), None)


def parse_mark(text: str, maximum: Fraction) -> Fraction:
    """A mark typed by staff: a decimal such as 2.5 (or a fraction such as 7/3), from 0 to
    the slot's maximum, kept exact."""
    raw = text.strip()
    try:
        if "/" in raw:
            top, _, bottom = raw.partition("/")
            value = Fraction(int(top.strip()), int(bottom.strip()))
        else:
            number = Decimal(raw)
            if not number.is_finite():
                raise InvalidOperation
            value = Fraction(number)
    except (ValueError, ZeroDivisionError, InvalidOperation):
        raise InvalidInput(
            f"{raw[:20]!r} is not a mark: enter a number such as 2 or 2.5."
        ) from None
    if not 0 <= value <= maximum:
        raise InvalidInput(f"The mark must be between 0 and {_plain(maximum)}.")
    return value


def _plain(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f").rstrip("0")


# ---------------------------------------------------------------------------------------
# The queue


@dataclass(frozen=True)
class SlotQueue:
    """One slot of a quiz in the marking overview."""

    slot: int
    marks: Fraction
    question_keys: tuple[str, ...]
    answered: int  # finished attempts with this slot
    to_mark: int  # current mark still needs_marking
    marked_by_hand: int  # current mark is manual


@dataclass(frozen=True)
class QueueOverview:
    quiz: Quiz
    slots: list[SlotQueue]
    finished: int
    in_progress: int

    @property
    def left(self) -> int:
        return sum(s.to_mark for s in self.slots)


def _finished_attempts(session: Session, quiz_id: int) -> list[Attempt]:
    return list(
        session.scalars(
            select(Attempt)
            .where(Attempt.quiz_id == quiz_id, Attempt.state.in_(FINISHED))
            .order_by(Attempt.id)
        )
    )


def queue_overview(
    session: Session, quiz_id: int, now: datetime, grace: timedelta
) -> QueueOverview:
    """Per slot: how many finished answers there are, how many still need marking (essays
    not yet marked), and how many have a manual mark. Expired attempts are finalised first."""
    quiz = quiz_or_404(session, quiz_id)
    finalise_expired(session, now, grace, quiz_id=quiz_id)
    attempts = _finished_attempts(session, quiz_id)
    marks = current_marks_of(session, [a.id for a in attempts])
    slots: dict[int, dict[str, Any]] = {}
    for attempt in attempts:
        for entry in layout_of(attempt):
            info = slots.setdefault(
                entry.slot,
                {"marks": entry.marks, "keys": [], "answered": 0, "to_mark": 0, "manual": 0},
            )
            if entry.question_key not in info["keys"]:
                info["keys"].append(entry.question_key)
            info["answered"] += 1
            mark = marks.get((attempt.id, entry.slot))
            if mark is not None and mark.status in (NEEDS_MARKING, GRADING_FAILED):
                info["to_mark"] += 1
            if mark is not None and mark.source == "manual":
                info["manual"] += 1
    in_progress = session.scalar(
        select(func.count())
        .select_from(Attempt)
        .where(Attempt.quiz_id == quiz_id, Attempt.state == AttemptState.IN_PROGRESS)
    )
    return QueueOverview(
        quiz=quiz,
        slots=[
            SlotQueue(
                slot,
                info["marks"],
                tuple(sorted(info["keys"])),
                info["answered"],
                info["to_mark"],
                info["manual"],
            )
            for slot, info in sorted(slots.items())
        ],
        finished=len(attempts),
        in_progress=in_progress or 0,
    )


@dataclass(frozen=True)
class MarkingItem:
    """One student's answer in one slot, with the mark that counts now."""

    attempt: Attempt
    student: User
    entry: LayoutEntry
    question: Question
    value: Any  # the stored answer (None: no answer)
    response: str  # the answer in words, as given
    response_html: str  # the same as sanitised HTML (labels rendered, typed text escaped)
    mark: Mark | None

    @property
    def needs_marking(self) -> bool:
        return self.mark is None or self.mark.status in (NEEDS_MARKING, GRADING_FAILED)


@dataclass
class StemGroup:
    """Answers to the same question shown the same way: the stem is rendered once."""

    question: Question
    source: str
    stem_html: str
    items: list[MarkingItem] = field(default_factory=list)
    sample_answer_html: str = ""  # essays: the author's sample answer and guide, rendered
    marking_guide_html: str = ""


@dataclass(frozen=True)
class SlotPage:
    quiz: Quiz
    slot: int
    marks: Fraction
    groups: list[StemGroup]
    shown: int
    to_mark: int
    answered: int


def slot_page(session: Session, quiz_id: int, slot: int, *, everything: bool = False) -> SlotPage:
    """The answers of one slot that still need marking, grouped by stem (or, with
    `everything`, every finished attempt's answer, for staff to override any)."""
    quiz = quiz_or_404(session, quiz_id)
    attempts = [a for a in _finished_attempts(session, quiz_id) if entry_for_slot(a, slot)]
    if not attempts:
        raise NotFound(f"No finished attempt has a question {slot}.")
    ids = [a.id for a in attempts]
    marks = current_marks_of(session, ids)
    answers: dict[int, Any] = {}
    for part in chunks(ids):
        for attempt_id, value in session.execute(
            select(Answer.attempt_id, Answer.value).where(
                Answer.attempt_id.in_(part), Answer.slot == slot
            )
        ):
            answers[attempt_id] = value
    entries = {a.id: entry_for_slot(a, slot) for a in attempts}
    versions = versions_by_id(session, (e.version_id for e in entries.values() if e))
    students = {
        u.id: u
        for u in session.scalars(select(User).where(User.id.in_({a.user_id for a in attempts})))
    }
    groups: dict[tuple[int, str], StemGroup] = {}
    to_mark = 0
    maximum = Fraction(0)
    for attempt in sorted(attempts, key=lambda a: (students[a.user_id].username, a.number)):
        entry = entries[attempt.id]
        assert entry is not None
        maximum = entry.marks
        version = versions[entry.version_id]
        question = question_of(version)
        value = answers.get(attempt.id)
        item = MarkingItem(
            attempt=attempt,
            student=students[attempt.user_id],
            entry=entry,
            question=question,
            value=value,
            response=question.body.describe_response(entry.variant, value),
            response_html=question.body.describe_response_html(entry.variant, value),
            mark=marks.get((attempt.id, slot)),
        )
        if item.needs_marking:
            to_mark += 1
        elif not everything:
            continue
        stem = question.stem_html(entry.variant)
        group = groups.get((version.id, stem))
        if group is None:
            sample = getattr(question.body, "sample_answer", "")
            guide = getattr(question.body, "marking_guide", "")
            group = groups[(version.id, stem)] = StemGroup(
                question,
                version.source,
                stem,
                sample_answer_html=question.body.describe_answer_html(entry.variant)
                if sample
                else "",
                marking_guide_html=render_markdown(guide) if guide else "",
            )
        group.items.append(item)
    return SlotPage(
        quiz=quiz,
        slot=slot,
        marks=maximum,
        groups=list(groups.values()),
        shown=sum(len(g.items) for g in groups.values()),
        to_mark=to_mark,
        answered=len(attempts),
    )


# ---------------------------------------------------------------------------------------
# Entering a mark


def mark_answer(
    session: Session,
    attempt_id: int,
    slot: int,
    mark_text: str,
    comment: str,
    actor_id: int,
    now: datetime,
    *,
    based_on: int | None = None,
    ip: str = "",
) -> Mark:
    """Record staff's mark for one answer: a new Mark row (source "manual", the comment as
    feedback), the attempt's new total, and an audit event, in one transaction.

    `based_on` is the id of the mark the examiner saw: if someone else marked the answer
    since, nothing is written (Conflict) rather than silently replacing their mark.
    """
    with unit_of_work(session):
        locked = lock_attempts(session, [attempt_id])
        if not locked:
            raise NotFound("No such attempt.")
        attempt = locked[0]
        if attempt.state not in FINISHED:
            raise Conflict("This attempt is still in progress: mark it after it has finished.")
        entry = entry_for_slot(attempt, slot)
        if entry is None:
            raise NotFound(f"This attempt has no question {slot}.")
        value = parse_mark(mark_text, entry.marks)
        current = current_marks_of(session, [attempt.id]).get((attempt.id, slot))
        if based_on is not None and (current is None or current.id != based_on):
            raise Conflict(
                "Someone else marked this answer while you were looking at it: "
                "check their mark below and enter yours again if needed."
            )
        old_total = attempt.score
        fraction = value / entry.marks if entry.marks else Fraction(0)
        grade = Grade.from_fraction(fraction)
        row = Mark(
            attempt_id=attempt.id,
            slot=slot,
            version_id=entry.version_id,
            fraction=grade.fraction,
            marks=value,
            status=grade.status.value,
            feedback=comment.strip(),
            source="manual",
            created_at=now,
            created_by=actor_id,
        )
        session.add(row)
        recompute_scores(session, [attempt])
        audit.record(
            session,
            "manual_mark",
            now,
            actor_id=actor_id,
            subject_id=attempt.user_id,
            quiz_id=attempt.quiz_id,
            attempt_id=attempt.id,
            ip=ip,
            slot=slot,
            question=entry.question_key,
            old_mark=str(current.marks) if current is not None else None,
            old_status=current.status if current is not None else None,
            mark=str(value),
            old_total=str(old_total) if old_total is not None else None,
            total=str(attempt.score),
            comment=comment.strip()[:500],
        )
        # The new score to the VLE's gradebook, through the outbox (services/lti_scores.py).
        queue_scores(session, attempt.quiz_id, [attempt.user_id], now)
    return row


# ---------------------------------------------------------------------------------------
# History


@dataclass(frozen=True)
class HistoryRow:
    mark: Mark
    question_key: str
    by: str  # username of the staff member, or "" for automatic marks
    current: bool


@dataclass(frozen=True)
class AttemptHistory:
    attempt: Attempt
    student: User
    rows: list[HistoryRow]  # every mark row, oldest first


def attempt_history(session: Session, attempt_id: int) -> AttemptHistory:
    """Every mark row of an attempt, oldest first, with who wrote it and which counts."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        raise NotFound("No such attempt.")
    rows = session.execute(
        select(Mark, User.username)
        .outerjoin(User, User.id == Mark.created_by)
        .where(Mark.attempt_id == attempt_id)
        .order_by(Mark.id)
    ).all()
    current = {m.id for m in current_marks_of(session, [attempt_id]).values()}
    versions = versions_by_id(session, {m.version_id for m, _ in rows})
    return AttemptHistory(
        attempt=attempt,
        student=attempt.user,
        rows=[
            HistoryRow(
                mark=m,
                question_key=versions[m.version_id].question_key,
                by=username or "",
                current=m.id in current,
            )
            for m, username in rows
        ],
    )
