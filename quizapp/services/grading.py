"""Grading an attempt's answers outside any transaction, within a time budget.

The question types bound the work any answer can cause (domain/qtypes), so grading an
attempt takes milliseconds. This module is the safety net around that promise: if one
answer's grading raises, or runs past its budget, that answer is marked
GRADING_FAILED (0 marks, waiting in the marking queue) and the error is logged with the
attempt and slot; the attempt still finishes and every other attempt goes on.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from types import FrameType
from typing import Any

from quizapp.domain.layout import LayoutEntry
from quizapp.domain.qtypes.base import UNANSWERED, Grade, GradeStatus
from quizapp.domain.questions import Question
from quizapp.domain.scoring import slot_mark

log = logging.getLogger(__name__)

# Per answer and per attempt. Generous: every type grades a worst-case answer in well
# under 5 ms (bench/grading_worst.py); a budget is reached only by a bug.
SLOT_BUDGET_SECONDS = 2.0
ATTEMPT_BUDGET_SECONDS = 10.0

GRADING_FAILED_FEEDBACK = (
    "This answer could not be marked automatically; staff will mark it. It counts 0 until they do."
)


GRADING_FAILED = Grade(Fraction(0), GradeStatus.GRADING_FAILED, GRADING_FAILED_FEEDBACK)


class GradingTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block with GradingTimeout after `seconds` of wall time.

    A real interruption needs a signal, so only in the main thread of a process on a
    platform with SIGALRM (a gunicorn sync worker's requests, the CLI sweeper); elsewhere
    the block runs unbounded and the caller's elapsed-time check is the only guard.
    Any timer the process already had is put back afterwards.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise GradingTimeout(f"grading took longer than {seconds:.1f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if previous_timer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, *previous_timer)


@dataclass(frozen=True)
class GradedSlot:
    entry: LayoutEntry
    grade: Grade
    mark: Fraction


def grade_answers(
    attempt_id: int,
    questions: Sequence[tuple[LayoutEntry, Question]],
    values: Mapping[int, Any],
    *,
    slot_budget: float = SLOT_BUDGET_SECONDS,
    attempt_budget: float = ATTEMPT_BUDGET_SECONDS,
) -> list[GradedSlot]:
    """Each slot's grade and mark. Never raises for a question's sake: a failing or
    overlong answer is GRADING_FAILED and logged; once the attempt's budget is spent, the
    remaining answers are too (so one attempt cannot hold a sweeper for long)."""
    started = time.monotonic()
    graded = []
    for entry, question in questions:
        if entry.slot not in values:
            grade = UNANSWERED
        else:
            remaining = attempt_budget - (time.monotonic() - started)
            grade = _grade_one(
                attempt_id, entry, question, values[entry.slot], min(slot_budget, remaining)
            )
        graded.append(GradedSlot(entry, grade, slot_mark(entry.marks, grade)))
    return graded


def _grade_one(
    attempt_id: int, entry: LayoutEntry, question: Question, value: Any, budget: float
) -> Grade:
    if budget <= 0:
        log.error(
            "grading skipped: attempt %s slot %s: the attempt's grading budget is spent",
            attempt_id,
            entry.slot,
        )
        return GRADING_FAILED
    try:
        with time_limit(budget):
            return question.body.grade(entry.variant, value)
    except Exception as exc:  # any failure of one answer is contained to that answer
        log.exception(
            "grading failed: attempt %s slot %s question %s: %s",
            attempt_id,
            entry.slot,
            entry.question_key,
            exc,
        )
        return GRADING_FAILED
