"""floor, ceil, round, mod, abs, min, max: exact on exact inputs, bounded, one rounding rule."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import pytest

from quizapp.domain.expressions import (
    MAX_ROUND_DIGITS,
    EvaluationError,
    ExpressionSyntaxError,
    parse_expression,
)


def value(text, **env):
    return parse_expression(text, variables=env).evaluate({k: Fraction(v) for k, v in env.items()})


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        # The textbook convolution output size.
        ("floor((W + 2*p - k)/s) + 1", {"W": 32, "p": 1, "k": 4, "s": 2}, Fraction(16)),
        ("floor((W + 2*p - k)/s) + 1", {"W": 32, "p": 1, "k": 3, "s": 2}, Fraction(16)),
        ("floor(-0.5)", {}, Fraction(-1)),
        ("ceil(-0.5)", {}, Fraction(0)),
        ("ceil(x/3)", {"x": 7}, Fraction(3)),
        # round: halves away from zero, on the exact value.
        ("round(2.5)", {}, Fraction(3)),
        ("round(-2.5)", {}, Fraction(-3)),
        ("round(0.5)", {}, Fraction(1)),
        ("round(1.49999)", {}, Fraction(1)),
        ("round(2.675, 2)", {}, Fraction(268, 100)),  # not 2.67 as binary floats give
        ("round(-0.125, 2)", {}, Fraction(-13, 100)),
        ("round(1234.5, -2)", {}, Fraction(1200)),
        ("round(1/3, 3)", {}, Fraction(333, 1000)),
        # mod: a - b*floor(a/b), with the sign of b.
        ("mod(7, 3)", {}, Fraction(1)),
        ("mod(-7, 3)", {}, Fraction(2)),
        ("mod(7, -3)", {}, Fraction(-2)),
        ("mod(7.5, 2)", {}, Fraction(3, 2)),
        ("mod(x, 1/3)", {"x": 1}, Fraction(0)),
        ("abs(-3/4)", {}, Fraction(3, 4)),
        ("min(3, x, 1/2)", {"x": 2}, Fraction(1, 2)),
        ("max(-1, -x)", {"x": 2}, Fraction(-1)),
    ],
)
def test_exact_inputs_give_exact_values(text, env, expected):
    result = value(text, **env)
    assert isinstance(result, Fraction)
    assert result == expected


def test_float_inputs():
    assert value("floor(sqrt(2)*10)") == Fraction(14)  # exact integer from a float
    assert value("round(sqrt(2), 3)") == Fraction(1414, 1000)
    assert value("ceil(exp(1))") == Fraction(3)
    assert math.isclose(value("mod(sqrt(2), 1)"), math.sqrt(2) - 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mod(1, 0)", "mod() is not defined here (division by zero)"),
        ("mod(sqrt(2), 0)", "mod() is not defined here (division by zero)"),
        ("round(2, 0.5)", "round(x, n) needs a whole number n"),
        (f"round(2, {MAX_ROUND_DIGITS + 1})", "round(x, n) needs a whole number n"),
        ("round(2, -31)", "round(x, n) needs a whole number n"),
    ],
)
def test_evaluation_errors(text, message):
    with pytest.raises(EvaluationError, match=re.escape(message)):
        value(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("floor()", "floor() takes 1 argument(s), got 0"),
        ("floor(1, 2)", "floor() takes 1 argument(s), got 2"),
        ("round(1, 2, 3)", "round() takes 1 to 2 argument(s), got 3"),
        ("mod(1)", "mod() takes 2 argument(s), got 1"),
        ("trunc(1)", "unknown function 'trunc' (available: abs, ceil, cos,"),
        ("floor", "floor is a function: write floor(...)"),
    ],
)
def test_misuse_is_refused_before_evaluation(text, message):
    with pytest.raises(ExpressionSyntaxError, match=re.escape(message)):
        parse_expression(text)


def test_huge_values_stay_bounded_and_fast():
    # A float's floor is at most 1024 bits; rounding to 30 digits keeps an exact value
    # within MAX_EXACT_BITS (or falls back to a float), never a slow giant integer.
    assert value("floor(1e308)") == Fraction(10**308)
    assert value("round(2^1000 / 3, 30)") == Fraction(round(Fraction(2**1000 * 10**30, 3)), 10**30)
    assert value("mod(2^1000, 7)") == Fraction(2**1000 % 7)
