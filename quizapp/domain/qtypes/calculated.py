"""Calculated questions: a numeric answer computed from parameters drawn per attempt.

Spec::

    type: calculated
    stem: "With learning rate {{lr}} and gradient {{g}}, what is the step?"
    parameters:
      lr: {range: [0.01, 0.1], step: 0.01}   # lo + k*step for k = 0, 1, ... up to hi
      g: {values: [-2, -1, 0.5, 3]}
    answer: "-lr * g"                         # a formula (quizapp.domain.expressions)
    relative_tolerance: 0.01                  # or tolerance: (absolute), as for numeric
    significant_figures: 3                    # optional, as for numeric
    units: ""                                 # optional
    wrong_answers:                            # optional distractor formulas, or with
      - "lr * g"                              # feedback and partial credit:
      - {answer: "-g", feedback: "Multiply by the learning rate", fraction: 0.25}
    integer: true                             # optional: a whole number for every draw

The drawn values are stored in the variant as exact decimal strings and shown in the
stem through `{{name}}`. The answer is computed exactly where it can be (Fractions;
floats for sqrt, exp, ... and fractional powers) and students' numbers are compared with
it exactly as in numeric questions. A distractor formula that happens to give a correct
value for some variant is skipped for that variant. With `integer: true` the validator
proves the answer is a whole number for every variant it checks (`integer_problem`).
A listed formula with `feedback:` (and optionally `fraction:`) gives a response within
the question's tolerance of its value that feedback and credit, as numeric
`wrong_answers` entries do.

View: input "number" (like numeric), extra {"units": ...}. Form: one text value.
Stored response: the text exactly as typed, or None.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar, Self

from quizapp.domain.expressions import (
    FUNCTIONS,
    Expression,
    ExpressionError,
    parse_expression,
)
from quizapp.domain.qtypes import register
from quizapp.domain.qtypes.base import (
    Grade,
    GradeStatus,
    QuestionType,
    Response,
    StudentView,
    Variant,
)
from quizapp.domain.qtypes.numeric import (
    ListedAnswer,
    Numeric,
    WrongNumber,
    format_exact,
    read_answer_feedback,
)
from quizapp.domain.spec import SpecReader, parse_exact

PARAMETER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,29}$")
MAX_VALUES = 10**12
MAX_DISPLAY_DIGITS = 28
MAX_PLAIN_LENGTH = 32


@dataclass(frozen=True)
class Parameter:
    name: str
    values: tuple[Fraction, ...] = ()  # an explicit list, or
    low: Fraction = Fraction(0)  # a range: low + k*step, k = 0 .. count-1
    step: Fraction = Fraction(1)
    count: int = 0

    def draw(self, rng: random.Random) -> Fraction:
        if self.values:
            return rng.choice(self.values)
        return self.low + self.step * rng.randrange(self.count)


def _read_parameter(spec: SpecReader, name: str, data: Any) -> Parameter | None:
    sub = spec.child(name, data)
    if not PARAMETER_NAME.match(name):
        spec.problem(name, "use a letter followed by letters, digits or _ (at most 30)")
    elif name in FUNCTIONS:
        spec.problem(name, f"{name} is a function name; choose another parameter name")
    if sub.has("values") == sub.has("range"):
        sub.problem(None, "give either range (with step) or values")
        for key in ("values", "range", "step"):
            sub.raw(key)
        sub.reject_unknown()
        return None
    if sub.has("values"):
        values = []
        for i, raw in enumerate(sub.items("values", min_items=1)):
            try:
                values.append(parse_exact(raw))
            except (ValueError, ZeroDivisionError) as exc:
                sub.problems.add(sub.path + ("values", i), str(exc))
        sub.reject_unknown()
        return Parameter(name, values=tuple(values)) if values else None
    bounds = sub.items("range")
    step = sub.exact("step", required=False, default=Fraction(1), positive=True)
    sub.reject_unknown()
    if len(bounds) != 2:
        sub.problem("range", "expected [low, high]")
        return None
    try:
        low, high = parse_exact(bounds[0]), parse_exact(bounds[1])
    except (ValueError, ZeroDivisionError) as exc:
        sub.problem("range", str(exc))
        return None
    if step is None or step <= 0:
        return None
    if high < low:
        sub.problem("range", "high must not be less than low")
        return None
    count = int((high - low) / step) + 1
    if count > MAX_VALUES:
        sub.problem("step", f"gives more than {MAX_VALUES} values; use a larger step")
        return None
    return Parameter(name, low=low, step=step, count=count)


@dataclass(frozen=True)
class WrongFormula:
    """A listed wrong formula with its own feedback and, optionally, credit."""

    index: int
    formula: Expression
    fraction: Fraction | None
    feedback: str


@register
@dataclass(frozen=True)
class Calculated(QuestionType):
    """See the module docstring for the spec."""

    parameters: tuple[Parameter, ...]
    formula: Expression
    numeric: Numeric  # tolerance, significant figures, units; its answer is unused
    wrong_formulas: tuple[Expression, ...]
    integer: bool = False  # the author says the answer is a whole number for every draw
    feedback_formulas: tuple[WrongFormula, ...] = ()

    type_name: ClassVar[str] = "calculated"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        parameters: list[Parameter] = []
        raw = spec.raw("parameters")
        if raw is None:
            spec.problem("parameters", "is required")
        elif not isinstance(raw, dict) or not raw:
            spec.problem("parameters", "expected a mapping of parameter names")
        else:
            params = spec.child("parameters", raw)
            for name, data in raw.items():
                parameter = _read_parameter(params, str(name), data)
                if parameter is not None:
                    parameters.append(parameter)
        names = [p.name for p in parameters]
        formula = _read_formula(spec, "answer", spec.text("answer"), names)
        wrong = []
        listed = []
        for i, raw_wrong in enumerate(spec.items("wrong_answers", required=False)):
            if isinstance(raw_wrong, dict):
                sub = SpecReader(raw_wrong, spec.path + ("wrong_answers", i), spec.problems)
                expr = _read_formula(sub, "answer", sub.text("answer"), names)
                fraction, feedback = read_answer_feedback(sub)
                sub.reject_unknown()
                if expr is not None:
                    wrong.append(expr)
                    listed.append(WrongFormula(i, expr, fraction, feedback))
                continue
            if isinstance(raw_wrong, bool) or not isinstance(raw_wrong, str | int | float):
                spec.problems.add(spec.path + ("wrong_answers", i), "expected a formula")
                continue
            expr = _read_formula(spec, ("wrong_answers", i), str(raw_wrong), names)
            if expr is not None:
                wrong.append(expr)
        numeric = _read_numeric(spec)
        integer = spec.boolean("integer", default=False)
        return cls(
            tuple(parameters),
            formula or parse_expression("0"),
            numeric,
            tuple(wrong),
            integer,
            tuple(listed),
        )

    def make_variant(self, rng: random.Random) -> Variant:
        # Drawn in name order: the YAML's key order is not kept by a stored version's
        # canonical JSON, and a seed must give the same variant from either.
        ordered = sorted(self.parameters, key=lambda p: p.name)
        return {"params": {p.name: format_exact(p.draw(rng), None) for p in ordered}}

    def text_params(self, variant: Variant) -> dict[str, str]:
        params = variant.get("params") if isinstance(variant, dict) else None
        if not isinstance(params, dict):
            return {}
        return {str(k): str(v) for k, v in params.items()}

    def _env(self, variant: Variant) -> dict[str, Fraction | float]:
        params = self.text_params(variant)
        env: dict[str, Fraction | float] = {}
        for p in self.parameters:
            if p.name not in params:
                raise ExpressionError(f"the variant has no value for {p.name}")
            env[p.name] = Fraction(Decimal(params[p.name]))
        return env

    def answer(self, variant: Variant) -> Fraction:
        """The exact answer for this variant; raise ExpressionError if it has none."""
        try:
            env = self._env(variant)
        except (ArithmeticError, ValueError) as exc:  # e.g. a stored value that is not a number
            raise ExpressionError(str(exc) or "the variant's values are not numbers") from None
        return self.formula.evaluate_exact(env)

    def _numeric(self, variant: Variant) -> Numeric:
        n = self.numeric
        return Numeric(
            self.answer(variant),
            n.tolerance,
            n.relative,
            n.sig_figs,
            n.units,
            (),
            tuple(
                WrongNumber(e.index, value, None, False, e.fraction, e.feedback)
                for e, value in self._listed_values(variant)
            ),
        )

    def _listed_values(self, variant: Variant) -> list[tuple[WrongFormula, Fraction]]:
        """Each listed formula with feedback and its value for this variant (if any)."""
        out = []
        for entry in self.feedback_formulas:
            try:
                out.append((entry, entry.formula.evaluate_exact(self._env(variant))))
            except (ExpressionError, ArithmeticError, ValueError):
                continue
        return out

    def listed_answers(self, variant: Variant) -> list[ListedAnswer]:
        """The listed formulas with feedback or credit, valued for this variant; skipped
        where one gives the right value or the value of one listed before it."""
        out: list[ListedAnswer] = []
        seen: list[Fraction] = []
        for entry, value in self._listed_values(variant):
            text = format_exact(value, None)
            if value in seen or self.grade(variant, text).fraction >= 1:
                continue
            seen.append(value)
            out.append(ListedAnswer(entry.index, text, entry.fraction, entry.feedback))
        return out

    def view(self, variant: Variant) -> StudentView:
        return StudentView(input="number", extra={"units": self.numeric.units})

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        return self.numeric.accept(variant, submitted)

    def grade(self, variant: Variant, response: Response) -> Grade:
        try:
            numeric = self._numeric(variant)
        except (ExpressionError, ValueError, ArithmeticError) as exc:
            # A broken variant: the validator reports these, so this should not happen.
            return Grade(
                Fraction(0),
                GradeStatus.INCORRECT,
                f"This question could not be marked automatically ({exc}); staff will check it.",
            )
        return numeric.grade(variant, response)

    def model_response(self, variant: Variant) -> Response:
        try:
            numeric = self._numeric(variant)
        except ExpressionError:
            return None  # render_problems explains why
        if numeric.sig_figs is not None:
            return numeric.model_response(variant)
        return _short_decimal(numeric.answer, numeric.tolerance_for(numeric.answer))

    def wrong_responses(self, variant: Variant) -> list[Response]:
        out = []
        for formula in self.wrong_formulas:
            try:
                value = formula.evaluate_exact(self._env(variant))
            except ExpressionError:
                continue
            text = format_exact(value, None)
            if self.grade(variant, text).fraction < 1:
                out.append(text)
        return out

    def describe_response(self, variant: Variant, response: Response) -> str:
        return self.numeric.describe_response(variant, response)

    def describe_answer(self, variant: Variant) -> str:
        try:
            self.answer(variant)
        except ExpressionError as exc:
            return f"(no answer for this variant: {exc})"
        model = self.model_response(variant)
        n = self.numeric
        shown = Numeric(Fraction(Decimal(model)), n.tolerance, n.relative, None, n.units, ())
        text = shown.describe_answer(variant)
        return text.replace(format_exact(shown.answer, None), model, 1)

    def integer_problem(self, variant: Variant) -> str | None:
        """Why this variant breaks `integer: true` (None when it keeps it or has no answer:
        render_problems reports the latter)."""
        if not self.integer:
            return None
        try:
            value = self.answer(variant)
        except ExpressionError:
            return None
        if value.denominator == 1:
            return None
        where = ", ".join(f"{k} = {v}" for k, v in self.text_params(variant).items())
        shown = _short_decimal(value, Fraction(0))
        return f"integer: true, but for {where} the answer is {shown}, not a whole number"

    def render_problems(self, variant: Variant) -> list[str]:
        params = self.text_params(variant)
        where = ", ".join(f"{k} = {v}" for k, v in params.items())
        try:
            self.answer(variant)
        except ExpressionError as exc:
            return [f"the answer cannot be computed for {where}: {exc}"]
        model = self.model_response(variant)
        if self.grade(variant, model).fraction != 1:
            return [
                f"for {where} the answer {model} does not score full marks: "
                "give a tolerance (or fewer significant figures)"
            ]
        return []


def _read_formula(
    spec: SpecReader, key: str | tuple[str, int], text: str, names: list[str]
) -> Expression | None:
    if not text.strip():
        return None
    try:
        return parse_expression(text, variables=names)
    except ExpressionError as exc:
        if isinstance(key, tuple):
            spec.problems.add(spec.path + key, str(exc))
        else:
            spec.problem(key, str(exc))
        return None


def _read_numeric(spec: SpecReader) -> Numeric:
    absolute = spec.exact("tolerance", required=False, non_negative=True)
    relative = spec.exact("relative_tolerance", required=False, non_negative=True)
    if absolute is not None and relative is not None:
        spec.problem("relative_tolerance", "give tolerance or relative_tolerance, not both")
    sig_figs = spec.integer("significant_figures", required=False, default=0, minimum=1)
    units = spec.text("units", required=False)
    return Numeric(
        answer=Fraction(0),
        tolerance=relative if relative is not None else (absolute or Fraction(0)),
        relative=relative is not None,
        sig_figs=sig_figs or None,
        units=units,
        wrong_answers=(),
    )


def _short_decimal(value: Fraction, tolerance: Fraction) -> str:
    """The shortest decimal (at least 4 significant figures) within tolerance/1000 of value.

    So `1/3` with tolerance 0.01 is shown as `0.33333`, not with 28 threes; an exact
    answer (tolerance 0) is written out in full.
    """
    exact = _typeable(Decimal(value.numerator) / Decimal(value.denominator))
    if value == 0 or tolerance == 0:
        return exact
    dec = Decimal(value.numerator) / Decimal(value.denominator)
    for digits in range(4, MAX_DISPLAY_DIGITS):
        text = _typeable(Decimal(f"{dec:.{digits}g}"))
        if len(text) >= len(exact):
            break
        if abs(Fraction(Decimal(text)) - value) * 1000 <= tolerance:
            return text
    return exact


def _typeable(dec: Decimal) -> str:
    """Plain notation, or scientific (`1.5E-30`) when plain would be very long."""
    dec = dec.normalize()
    plain = format(dec, "f")
    return plain if len(plain) <= MAX_PLAIN_LENGTH else str(dec)
