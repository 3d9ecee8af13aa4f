"""Exact scoring: marks are Fractions from the YAML to the CSV, never summed as floats."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from quizapp.domain.qtypes.base import Grade


class GradingPolicy(enum.StrEnum):
    """Which attempt counts when a quiz allows several (Moodle's options)."""

    HIGHEST = "highest"
    FIRST = "first"
    LAST = "last"
    AVERAGE = "average"


def slot_mark(marks: Fraction, grade: Grade) -> Fraction:
    return marks * grade.fraction


def total(marks: Iterable[Fraction]) -> Fraction:
    return sum(marks, Fraction(0))


def overall_score(policy: GradingPolicy, scores: Sequence[Fraction]) -> Fraction | None:
    """The score that counts, from finished attempts' scores in the order they were taken."""
    if not scores:
        return None
    if policy is GradingPolicy.HIGHEST:
        return max(scores)
    if policy is GradingPolicy.FIRST:
        return scores[0]
    if policy is GradingPolicy.LAST:
        return scores[-1]
    return total(scores) / len(scores)


def format_mark(value: Fraction | None, places: int = 2) -> str:
    """A mark for people: rounded half-up to `places`, trailing zeros dropped ("1.5", "2")."""
    if value is None:
        return ""
    quantum = Decimal(1).scaleb(-places)
    dec = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        quantum, rounding=ROUND_HALF_UP
    )
    text = format(dec, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
