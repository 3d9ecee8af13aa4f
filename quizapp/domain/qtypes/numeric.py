"""Numeric answers with absolute or relative tolerance and optional significant figures.

Students may type `0.001`, `1e-3`, `1E-3`, `+.001` or use a Unicode minus sign.
Comparison is exact (Fractions), so an answer exactly on the tolerance boundary is
accepted on every machine, with no binary-float surprises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import ClassVar, Self

from quizapp.domain.qtypes import register
from quizapp.domain.qtypes.base import (
    UNANSWERED,
    Grade,
    GradeStatus,
    QuestionType,
    Response,
    StudentView,
    Variant,
    accept_single_text,
    unreadable,
)
from quizapp.domain.spec import SpecReader, parse_exact

MAX_NUMBER_LENGTH = 64
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class UnreadableNumber(ValueError):
    pass


def read_number(text: str) -> Decimal:
    """Parse a student's number exactly as typed; raise UnreadableNumber with a reason."""
    cleaned = text.strip().replace("\u2212", "-").replace(" ", "")
    if not cleaned:
        raise UnreadableNumber("it is empty")
    if len(cleaned) > MAX_NUMBER_LENGTH:
        raise UnreadableNumber("it is too long to be a number")
    if "," in cleaned:
        raise UnreadableNumber("use a decimal point, not a comma (for example 0.25)")
    if not _NUMBER.match(cleaned):
        raise UnreadableNumber(f"{cleaned[:20]!r} is not a number")
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        raise UnreadableNumber(f"{cleaned[:20]!r} is not a number") from None


def significant_figures(text: str) -> tuple[int, int]:
    """The fewest and most significant figures `text` can be read as.

    Trailing zeros of a whole number are ambiguous ("1200" has 2, 3 or 4), so a range.
    """
    cleaned = text.strip().replace("\u2212", "-").lstrip("+-")
    mantissa = re.split(r"[eE]", cleaned)[0]
    digits = mantissa.replace(".", "").lstrip("0")
    if not digits:
        return (1, 1)
    if "." in mantissa:
        return (len(digits), len(digits))
    stripped = digits.rstrip("0")
    return (len(stripped), len(digits))


@register
@dataclass(frozen=True)
class Numeric(QuestionType):
    """A single number. `answer`, and `tolerance` (absolute) or `relative_tolerance`."""

    answer: Fraction
    tolerance: Fraction
    relative: bool
    sig_figs: int | None
    units: str
    wrong_answers: tuple[Fraction, ...]

    type_name: ClassVar[str] = "numeric"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        answer = spec.exact("answer") or Fraction(0)
        absolute = spec.exact("tolerance", required=False, non_negative=True)
        relative = spec.exact("relative_tolerance", required=False, non_negative=True)
        if absolute is not None and relative is not None:
            spec.problem("relative_tolerance", "give tolerance or relative_tolerance, not both")
        sig_figs = spec.integer("significant_figures", required=False, default=0, minimum=1)
        units = spec.text("units", required=False)
        wrong = []
        for i, raw in enumerate(spec.items("wrong_answers", required=False)):
            try:
                wrong.append(parse_exact(raw))
            except (ValueError, ZeroDivisionError) as exc:
                spec.problems.add(spec.path + ("wrong_answers", i), str(exc))
        return cls(
            answer=answer,
            tolerance=relative if relative is not None else (absolute or Fraction(0)),
            relative=relative is not None,
            sig_figs=sig_figs or None,
            units=units,
            wrong_answers=tuple(wrong),
        )

    def view(self, variant: Variant) -> StudentView:
        return StudentView(input="number", extra={"units": self.units})

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        return accept_single_text(submitted)

    def tolerance_for(self, answer: Fraction) -> Fraction:
        return self.tolerance * abs(answer) if self.relative else self.tolerance

    def grade(self, variant: Variant, response: Response) -> Grade:
        if response is None or not str(response).strip():
            return UNANSWERED
        try:
            given = Fraction(read_number(str(response)))
        except UnreadableNumber as exc:
            return unreadable(str(exc))
        answer = self.answer
        if abs(given - answer) > self.tolerance_for(answer):
            return Grade(Fraction(0), GradeStatus.INCORRECT)
        if self.sig_figs is not None:
            low, high = significant_figures(str(response))
            if not low <= self.sig_figs <= high:
                return Grade(
                    Fraction(0),
                    GradeStatus.INCORRECT,
                    f"Give your answer to {self.sig_figs} significant figures.",
                )
        return Grade(Fraction(1), GradeStatus.CORRECT)

    def model_response(self, variant: Variant) -> Response:
        return format_exact(self.answer, self.sig_figs)

    def wrong_responses(self, variant: Variant) -> list[Response]:
        return [format_exact(w, None) for w in self.wrong_answers]

    def describe_response(self, variant: Variant, response: Response) -> str:
        if response is None:
            return "(no answer)"
        return f"{response} {self.units}".strip()

    def describe_answer(self, variant: Variant) -> str:
        tol = self.tolerance
        if tol == 0:
            bound = ""
        elif self.relative:
            bound = f" (± {format_exact(tol * 100, None)} %)"
        else:
            bound = f" (± {format_exact(tol, None)})"
        return f"{format_exact(self.answer, self.sig_figs)} {self.units}".strip() + bound


def format_exact(value: Fraction, sig_figs: int | None) -> str:
    """A Fraction as a plain decimal string (to `sig_figs` significant figures if given)."""
    if sig_figs is not None:
        if value == 0:
            return "0" if sig_figs == 1 else "0." + "0" * (sig_figs - 1)
        return f"{Decimal(value.numerator) / Decimal(value.denominator):.{sig_figs}g}"
    dec = Decimal(value.numerator) / Decimal(value.denominator)
    text = format(dec.normalize(), "f")
    return text
