"""Algebraic answers: the student types an expression, graded by equivalence.

Spec::

    type: algebraic
    answer: "sigma(x) * (1 - sigma(x))"
    variables: [x]                  # or a mapping with sampling ranges: {x: [-3, 3], w: [0.5, 2]}
    forbid: [sigma]                 # optional: functions the student may not use
    relative_tolerance: 1e-6        # optional (default 1e-6)
    tolerance: 1e-9                 # optional absolute tolerance (default 1e-9)
    wrong_answers:                  # optional distractor expressions, or with feedback:
      - "sigma(x)"
      - {answer: "sigma(x)^2", feedback: "Check the chain rule", fraction: 0.25}

Students write expressions in the safe language of quizapp.domain.expressions
(`2*x*sigma(x)*(1-sigma(x))`, `x^2`, `exp(-x)/(1+exp(-x))^2`).

Equivalence: both expressions are evaluated at POINTS points drawn from a fixed,
deterministic generator over the variables' ranges (default [-3, 3]); points where the
model answer itself is undefined are skipped. The answer is correct when at every point
|student - model| <= tolerance + relative_tolerance * max(|student|, |model|). An
expression that does not parse, or uses unknown variables or functions, or a forbidden
function, is unreadable (score 0, with the reason). A response that is not equivalent to
the answer but is to a listed wrong answer given as a mapping (by the same rule, at the
points where that expression is defined) earns its `fraction` (default 0) and feedback.

View: input "text"; extra = {"variables": [...], "functions": [allowed function names],
"max_length": 500}.
Form: one text value. Stored response: the text exactly as typed, or None.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar, Self

from quizapp.domain.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    EvaluationError,
    Expression,
    ExpressionError,
    ExpressionTooLarge,
    Number,
    parse_expression,
)
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
from quizapp.domain.qtypes.numeric import ListedAnswer, read_answer_feedback
from quizapp.domain.spec import SpecReader, parse_exact

EXPRESSION_BOUNDS = (
    f"an expression may have at most {MAX_LENGTH} characters, {MAX_NODES} numbers, names "
    f"and operations, and {MAX_DEPTH} levels of nesting"
)
POINTS = 12
MAX_TRIES = 20 * POINTS
DEFAULT_RANGE = (-3.0, 3.0)
VARIABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,29}$")

Point = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class WrongExpression:
    """A listed wrong expression with its own feedback and, optionally, credit."""

    index: int
    source: str
    values: tuple[float | None, ...]  # at each point; None where it is undefined
    fraction: Fraction | None
    feedback: str


@register
@dataclass(frozen=True)
class Algebraic(QuestionType):
    """See the module docstring for the spec and the equivalence rule."""

    answer: Expression
    variables: tuple[str, ...]
    forbid: tuple[str, ...]
    relative_tolerance: float
    tolerance: float
    points: tuple[Point, ...]
    expected: tuple[float, ...]  # the answer's value at each point
    wrong_answers: tuple[str, ...]
    feedback_answers: tuple[WrongExpression, ...] = ()

    type_name: ClassVar[str] = "algebraic"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        ranges = _read_variables(spec)
        names = [name for name, _ in ranges]
        forbid = tuple(spec.text_list("forbid"))
        rel = spec.exact(
            "relative_tolerance", required=False, default=Fraction(1, 10**6), non_negative=True
        )
        tol = spec.exact("tolerance", required=False, default=Fraction(1, 10**9), non_negative=True)
        source = spec.text("answer")
        answer = parse_expression("0")
        if source.strip():
            try:
                answer = parse_expression(source, variables=names, forbid=forbid)
            except ExpressionError as exc:
                spec.problem("answer", str(exc))
        points, expected = _sample(answer, ranges, source)
        if source.strip() and len(points) < POINTS:
            spec.problem(
                "answer",
                "is undefined at too many points of the variables' ranges; "
                "adjust the ranges under variables",
            )
        wrong: list[str] = []
        listed: list[WrongExpression] = []
        for i, raw in enumerate(spec.items("wrong_answers", required=False)):
            where = spec.path + ("wrong_answers", i)
            sub = SpecReader(raw, where, spec.problems) if isinstance(raw, dict) else None
            if sub is not None:
                text = sub.text("answer")
            elif isinstance(raw, bool) or not isinstance(raw, str | int | float):
                spec.problems.add(where, "expected text or {answer: ..., feedback: ...}")
                continue
            else:
                text = str(raw)
            try:
                expr = parse_expression(text, variables=names, forbid=forbid)
            except ExpressionError as exc:
                spec.problems.add(where + (("answer",) if sub is not None else ()), str(exc))
                continue
            wrong.append(text)
            if sub is not None:
                fraction, feedback = read_answer_feedback(sub)
                sub.reject_unknown()
                values = tuple(_value_at(expr, point) for point in points)
                if sum(v is not None for v in values) < len(points) // 2:
                    sub.problem("answer", "is undefined at most points of the variables' ranges")
                listed.append(WrongExpression(i, text, values, fraction, feedback))
        return cls(
            answer,
            tuple(names),
            forbid,
            float(rel or 0),
            float(tol or 0),
            tuple(points),
            tuple(expected),
            tuple(wrong),
            tuple(listed),
        )

    def view(self, variant: Variant) -> StudentView:
        allowed = sorted(f for f in FUNCTIONS if f not in self.forbid)
        return StudentView(
            input="text",
            extra={
                "variables": list(self.variables),
                "functions": allowed,
                "max_length": MAX_LENGTH,
            },
        )

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        text = accept_single_text(submitted)
        if text is None:
            return None
        # Parsing (bounded by the length check it starts with) tells a too-large
        # expression, refused, from a mistyped one, stored and graded unreadable.
        try:
            parse_expression(text, variables=self.variables, forbid=self.forbid)
        except ExpressionTooLarge as exc:
            raise AnswerOutOfBounds(
                f"This expression cannot be accepted: {exc} ({EXPRESSION_BOUNDS})."
            ) from None
        except ExpressionError:
            pass
        return text

    def grade(self, variant: Variant, response: Response) -> Grade:
        if response is None or (isinstance(response, str) and not response.strip()):
            return UNANSWERED
        if not isinstance(response, str):
            return unreadable("it is not text")
        try:
            given = parse_expression(response, variables=self.variables, forbid=self.forbid)
        except ExpressionError as exc:
            return unreadable(str(exc))
        got = [_value_at(given, point) for point in self.points]
        if all(
            g is not None and self._close(g, want)
            for g, want in zip(got, self.expected, strict=True)
        ):
            return Grade(Fraction(1), GradeStatus.CORRECT)
        for entry in self.feedback_answers:
            if all(
                w is None or (g is not None and self._close(g, w))
                for g, w in zip(got, entry.values, strict=True)
            ):
                return Grade.from_fraction(entry.fraction or Fraction(0), entry.feedback)
        for g, point in zip(got, self.points, strict=True):
            if g is None:
                return Grade(Fraction(0), GradeStatus.INCORRECT, _undefined_at(point))
        return Grade(Fraction(0), GradeStatus.INCORRECT)

    def _close(self, got: float, want: float) -> bool:
        scale = max(abs(got), abs(want))
        return abs(got - want) <= self.tolerance + self.relative_tolerance * scale

    def model_response(self, variant: Variant) -> Response:
        return self.answer.source

    def wrong_responses(self, variant: Variant) -> list[Response]:
        return list(self.wrong_answers)

    def listed_answers(self, variant: Variant) -> list[ListedAnswer]:
        """The wrong answers listed with feedback or credit, with what each must earn."""
        return [
            ListedAnswer(e.index, e.source, e.fraction, e.feedback) for e in self.feedback_answers
        ]

    def describe_response(self, variant: Variant, response: Response) -> str:
        return "(no answer)" if response is None else str(response)

    def describe_answer(self, variant: Variant) -> str:
        return self.answer.source


def _value_at(expression: Expression, point: Point) -> float | None:
    """The expression's finite value at `point`, or None where it has none."""
    try:
        value = float(expression.evaluate(dict(point)))
    except (EvaluationError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _undefined_at(point: Point) -> str:
    where = ", ".join(f"{name} = {value:.3g}" for name, value in point)
    return f"Your expression has no value at {where}." if where else ""


def _read_variables(spec: SpecReader) -> list[tuple[str, tuple[float, float]]]:
    raw = spec.raw("variables")
    out: list[tuple[str, tuple[float, float]]] = []
    if raw is None:
        return out  # an expression without variables (a constant) is allowed
    if isinstance(raw, list):
        entries: list[tuple[object, object]] = [(name, None) for name in raw]
    elif isinstance(raw, dict):
        entries = list(raw.items())
    else:
        spec.problem("variables", "expected a list of names or a mapping name: [low, high]")
        return out
    for index, (name, bounds) in enumerate(entries):
        key: str | int = index if isinstance(raw, list) else str(name)
        path = spec.path + ("variables", key)
        if not isinstance(name, str) or not VARIABLE_NAME.match(name):
            spec.problems.add(path, "use a letter followed by letters, digits or _ (at most 30)")
            continue
        if name in FUNCTIONS or name in ("pi", "e"):
            spec.problems.add(path, f"{name} is a function or constant name")
            continue
        if any(name == n for n, _ in out):
            spec.problems.add(path, f"duplicate variable {name!r}")
            continue
        low, high = DEFAULT_RANGE
        if bounds is not None:
            if not isinstance(bounds, list) or len(bounds) != 2:
                spec.problems.add(path, "expected [low, high]")
                continue
            try:
                low, high = float(parse_exact(bounds[0])), float(parse_exact(bounds[1]))
            except (ValueError, ZeroDivisionError, OverflowError) as exc:
                spec.problems.add(path, str(exc))
                continue
            if not low < high:
                spec.problems.add(path, "low must be less than high")
                continue
        out.append((name, (low, high)))
    return out


def _sample(
    answer: Expression, ranges: list[tuple[str, tuple[float, float]]], seed: str
) -> tuple[list[Point], list[float]]:
    """POINTS points where `answer` is defined, from a generator seeded by the answer text."""
    rng = random.Random(f"quizapp-algebraic:{seed}")
    points: list[Point] = []
    values: list[float] = []
    for _ in range(MAX_TRIES):
        point = tuple((name, rng.uniform(low, high)) for name, (low, high) in ranges)
        env: dict[str, Number] = dict(point)
        try:
            value = float(answer.evaluate(env))
        except (EvaluationError, OverflowError):
            continue
        if math.isfinite(value):
            points.append(point)
            values.append(value)
        if len(points) == POINTS:
            break
    return points, values
