"""Numeric answers with absolute or relative tolerance and optional significant figures.

Students may type `0.001`, `1e-3`, `1E-3`, `+.001` or use a Unicode minus sign.
Comparison is exact (Fractions), so an answer exactly on the tolerance boundary is
accepted on every machine, with no binary-float surprises.

Exact arithmetic is only as cheap as its numbers are small: `Fraction(Decimal("1e999999999"))`
builds an integer of 3.3 billion bits (minutes of CPU) from 11 characters. So a number is
read within bounds, checked on the Decimal (whose exponent is a plain int) *before* any
Fraction exists: at most MAX_DIGITS digits and a decimal exponent (of its leading digit)
from -MAX_EXPONENT to MAX_EXPONENT. Every type that reads a student's number (numeric,
calculated, matrix, multi-part) goes through read_number, and refuses an out-of-bounds
number at save time (AnswerOutOfBounds, with NUMBER_BOUNDS in the message).
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
    AnswerOutOfBounds,
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

# Bounds on a student's number (see the module docstring). 30 digits is more than any
# measurement or hand calculation carries (the model answers shown are at most 28);
# 10^±1000 is beyond any physical quantity yet keeps every Fraction under ~3,500 bits.
MAX_NUMBER_LENGTH = 64  # characters, once spaces are removed
MAX_TEXT_LENGTH = 200  # characters as typed, spaces included
MAX_DIGITS = 30
MAX_EXPONENT = 1000
NUMBER_BOUNDS = (
    f"numbers may have at most {MAX_DIGITS} digits and an exponent from "
    f"-{MAX_EXPONENT} to {MAX_EXPONENT}, in at most {MAX_NUMBER_LENGTH} characters"
)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def looks_like_number(token: str) -> bool:
    """A quick test, for many tokens at once (matrix entries), that `token` (no spaces)
    is written like a number of at most MAX_NUMBER_LENGTH characters; read_number still
    decides, and checks the bounds."""
    return len(token) <= MAX_NUMBER_LENGTH and bool(_NUMBER.match(token.replace("\u2212", "-")))


class UnreadableNumber(ValueError):
    pass


class NumberOutOfBounds(UnreadableNumber):
    """A number, or something as long as one can be, beyond the bounds: unreadable when
    graded, refused when saved. The message states the bounds."""

    def __init__(self, reason: str):
        super().__init__(f"{reason} ({NUMBER_BOUNDS})")


def read_number(text: str) -> Decimal:
    """Parse a student's number exactly as typed; raise UnreadableNumber with a reason.

    The Decimal returned is within the bounds, so Fraction(result) is cheap.
    """
    if len(text) > MAX_TEXT_LENGTH:
        raise NumberOutOfBounds(f"it is longer than {MAX_TEXT_LENGTH} characters")
    cleaned = text.strip().replace("\u2212", "-").replace(" ", "")
    if not cleaned:
        raise UnreadableNumber("it is empty")
    if len(cleaned) > MAX_NUMBER_LENGTH:
        raise NumberOutOfBounds("it is too long to be a number")
    if "," in cleaned:
        raise UnreadableNumber("use a decimal point, not a comma (for example 0.25)")
    if not _NUMBER.match(cleaned):
        raise UnreadableNumber(f"{cleaned[:20]!r} is not a number")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        raise UnreadableNumber(f"{cleaned[:20]!r} is not a number") from None
    if len(cleaned) <= MAX_DIGITS and "e" not in cleaned and "E" not in cleaned:
        return number  # too short for too many digits, and no exponent
    # adjusted() is the exponent of the leading digit; the Decimal keeps it as an int,
    # so this check costs nothing whatever was typed.
    if len(number.as_tuple().digits) > MAX_DIGITS or abs(number.adjusted()) > MAX_EXPONENT:
        raise NumberOutOfBounds(f"{cleaned[:20]!r} is too large or too precise")
    return number


def check_number_bounds(text: str) -> None:
    """Raise AnswerOutOfBounds if `text` is a number beyond the bounds (or too long to be
    one). Text that is simply not a number passes: it is stored and graded unreadable."""
    try:
        read_number(text)
    except NumberOutOfBounds as exc:
        raise AnswerOutOfBounds(_sentence(str(exc))) from None
    except UnreadableNumber:
        pass


def _sentence(reason: str) -> str:
    return f"This number cannot be accepted: {reason}."


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


@dataclass(frozen=True)
class ListedAnswer:
    """An answer the author listed under `wrong_answers:` with what it must earn: the
    validator proves it scores `fraction` (any score below full marks when None) and
    that its `feedback` is part of the grade's. `index` is its place in the list."""

    index: int
    response: Response
    fraction: Fraction | None
    feedback: str


def read_answer_feedback(spec: SpecReader) -> tuple[Fraction | None, str]:
    """`fraction:` (0 up to, not including, 1) and `feedback:` of one listed wrong answer
    written as a mapping; at least one of them is required."""
    fraction = spec.exact("fraction", required=False)
    if fraction is not None and not 0 <= fraction < 1:
        spec.problem("fraction", "must be at least 0 and less than 1 (it is a wrong answer)")
        fraction = None
    feedback = spec.text("feedback", required=False)
    if fraction is None and not feedback.strip():
        spec.problem(None, "give feedback: and/or fraction: (or list the answer on its own)")
    return fraction, feedback


@dataclass(frozen=True)
class WrongNumber:
    """A listed wrong (or partly right) number that earns its own feedback and credit."""

    index: int
    value: Fraction
    tolerance: Fraction | None  # None: the question's tolerance
    relative: bool
    fraction: Fraction | None  # None: 0
    feedback: str


@register
@dataclass(frozen=True)
class Numeric(QuestionType):
    """A single number. `answer`, and `tolerance` (absolute) or `relative_tolerance`.

    `wrong_answers:` entries are numbers (distractors that must not score full marks) or
    mappings `{answer: 981, feedback: "Check your units", fraction: 0.5, tolerance: 1}`:
    a response within the entry's tolerance (default: the question's) that is not right
    earns `fraction` (default 0) and the feedback. The first matching entry counts.
    """

    answer: Fraction
    tolerance: Fraction
    relative: bool
    sig_figs: int | None
    units: str
    wrong_answers: tuple[Fraction, ...]
    feedback_answers: tuple[WrongNumber, ...] = ()

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
        listed = []
        for i, raw in enumerate(spec.items("wrong_answers", required=False)):
            if isinstance(raw, dict):
                where = SpecReader(raw, spec.path + ("wrong_answers", i), spec.problems)
                entry = _read_wrong_number(where, i)
                if entry is not None:
                    wrong.append(entry.value)
                    listed.append(entry)
                continue
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
            feedback_answers=tuple(listed),
        )

    def view(self, variant: Variant) -> StudentView:
        return StudentView(input="number", extra={"units": self.units})

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        text = accept_single_text(submitted)
        if text is not None:
            check_number_bounds(text)
        return text

    def tolerance_for(self, answer: Fraction) -> Fraction:
        return self.tolerance * abs(answer) if self.relative else self.tolerance

    def grade(self, variant: Variant, response: Response) -> Grade:
        if response is None:
            return UNANSWERED
        if isinstance(response, bool) or not isinstance(response, str | int | float):
            return unreadable("it is not a number")
        # A JSON number (rows written by hand or by an old version) is read as its text;
        # JSON itself caps an int at 4,300 digits, and read_number at MAX_TEXT_LENGTH.
        text = response if isinstance(response, str) else str(response)
        if not text.strip():
            return UNANSWERED
        try:
            given = Fraction(read_number(text))
        except UnreadableNumber as exc:
            return unreadable(str(exc))
        answer = self.answer
        if abs(given - answer) > self.tolerance_for(answer):
            return self._listed_grade(given)
        if self.sig_figs is not None:
            low, high = significant_figures(text)
            if not low <= self.sig_figs <= high:
                return Grade(
                    Fraction(0),
                    GradeStatus.INCORRECT,
                    f"Give your answer to {self.sig_figs} significant figures.",
                )
        return Grade(Fraction(1), GradeStatus.CORRECT)

    def _listed_grade(self, given: Fraction) -> Grade:
        """The grade of a number that is not right: a listed answer's, or 0."""
        for entry in self.feedback_answers:
            if entry.tolerance is None:
                allowed = self.tolerance_for(entry.value)
            elif entry.relative:
                allowed = entry.tolerance * abs(entry.value)
            else:
                allowed = entry.tolerance
            if abs(given - entry.value) <= allowed:
                return Grade.from_fraction(entry.fraction or Fraction(0), entry.feedback)
        return Grade(Fraction(0), GradeStatus.INCORRECT)

    def model_response(self, variant: Variant) -> Response:
        return format_exact(self.answer, self.sig_figs)

    def wrong_responses(self, variant: Variant) -> list[Response]:
        return [format_exact(w, None) for w in self.wrong_answers]

    def listed_answers(self, variant: Variant) -> list[ListedAnswer]:
        """The wrong answers listed with feedback or credit, with what each must earn."""
        return [
            ListedAnswer(e.index, format_exact(e.value, None), e.fraction, e.feedback)
            for e in self.feedback_answers
        ]

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


def _read_wrong_number(spec: SpecReader, index: int) -> WrongNumber | None:
    value = spec.exact("answer")
    absolute = spec.exact("tolerance", required=False, non_negative=True)
    relative = spec.exact("relative_tolerance", required=False, non_negative=True)
    if absolute is not None and relative is not None:
        spec.problem("relative_tolerance", "give tolerance or relative_tolerance, not both")
    fraction, feedback = read_answer_feedback(spec)
    spec.reject_unknown()
    if value is None:
        return None
    tolerance = relative if relative is not None else absolute
    return WrongNumber(index, value, tolerance, relative is not None, fraction, feedback)


def format_exact(value: Fraction, sig_figs: int | None) -> str:
    """A Fraction as a plain decimal string (to `sig_figs` significant figures if given)."""
    if sig_figs is not None:
        if value == 0:
            return "0" if sig_figs == 1 else "0." + "0" * (sig_figs - 1)
        return f"{Decimal(value.numerator) / Decimal(value.denominator):.{sig_figs}g}"
    dec = Decimal(value.numerator) / Decimal(value.denominator)
    text = format(dec.normalize(), "f")
    if len(Decimal(text).as_tuple().digits) > MAX_DIGITS:
        # 1e40 written out has 41 digits, beyond what a student may type: show it (and
        # offer it as the model answer) the way a student can type it.
        return str(dec.normalize())
    return text
