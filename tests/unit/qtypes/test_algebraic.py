"""Algebraic: equivalence at deterministic random points, safe parsing of student input."""

from __future__ import annotations

import random

import pytest

from quizapp.domain.qtypes.base import GradeStatus, InvalidSubmission
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

DSIGMA = {
    "answer": "sigma(x) * (1 - sigma(x))",
    "variables": ["x"],
    "wrong_answers": ["sigma(x)", "sigma(x)^2", "x*(1-x)"],
}


def read(**spec):
    problems = Problems()
    question = read_question({"id": "q", "stem": "Stem", "type": "algebraic", **spec}, (), problems)
    return (question.body if question else None), [str(p) for p in problems.items]


def body(**spec):
    result, problems = read(**spec)
    assert not problems
    return result


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("sigma(x) * (1 - sigma(x))", GradeStatus.CORRECT),
        ("sigmoid(x)*(1-sigmoid(x))", GradeStatus.CORRECT),
        ("sigma(x) - sigma(x)^2", GradeStatus.CORRECT),
        ("exp(-x)/(1+exp(-x))^2", GradeStatus.CORRECT),
        ("exp(x) / (1 + exp(x))**2", GradeStatus.CORRECT),
        ("1/(2 + exp(x) + exp(-x))", GradeStatus.CORRECT),
        ("  sigma(x)·(1 − sigma(x))  ", GradeStatus.CORRECT),
        ("sigma(x)", GradeStatus.INCORRECT),
        ("sigma(x)*(1-sigma(x)) + 1e-3", GradeStatus.INCORRECT),
        ("sigma(x)*(1-sigma(x))*1.00001", GradeStatus.INCORRECT),  # beyond 1e-6 relative
        ("sigma(x)*(1-sigma(x))*1.0000001", GradeStatus.CORRECT),  # within 1e-6 relative
        ("0.25", GradeStatus.INCORRECT),
        ("1/(x-x)", GradeStatus.INCORRECT),  # undefined everywhere
        ("9^9^9", GradeStatus.INCORRECT),
        ("", GradeStatus.UNANSWERED),
        ("   ", GradeStatus.UNANSWERED),
        (None, GradeStatus.UNANSWERED),
    ],
)
def test_equivalence(answer, status):
    assert body(**DSIGMA).grade({}, answer).status is status


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("abc", "unknown variable 'abc' (use x)"),
        ("sigma(y)", "unknown variable 'y' (use x)"),
        ("diff(sigma(x), x)", "unknown function 'diff'"),
        ("2x", "write * for multiplication"),
        ("sigma(x", "brackets do not match"),
        ("__import__('os').system('ls')", "quotes"),
        ("x.__class__", "attribute access"),
        ("x" * 10_000_000, "longer than 500"),
        (["x"], "not text"),
    ],
)
def test_unreadable_with_reason(answer, reason):
    grade = body(**DSIGMA).grade({}, answer)
    assert grade.status is GradeStatus.UNREADABLE
    assert grade.fraction == 0
    assert reason in grade.feedback


def test_forbidden_function():
    q = body(answer="exp(-x)/(1+exp(-x))^2", variables=["x"], forbid=["sigma", "sigmoid", "diff"])
    grade = q.grade({}, "sigma(x)*(1-sigma(x))")
    assert grade.status is GradeStatus.UNREADABLE
    assert "sigma() may not be used" in grade.feedback
    assert q.grade({}, "1/(2+exp(x)+exp(-x))").status is GradeStatus.CORRECT
    assert "sigma" not in q.view({}).extra["functions"]


def test_undefined_points_of_the_answer_are_skipped_and_student_domains_matter():
    q = body(answer="log(x)", variables=["x"])  # default range [-3, 3]: half undefined
    assert q.grade({}, "ln(x)").status is GradeStatus.CORRECT
    assert q.grade({}, "log(abs(x))").status is GradeStatus.CORRECT  # same where defined
    grade = q.grade({}, "log(x - 1)")
    assert grade.status is GradeStatus.INCORRECT


def test_student_undefined_where_answer_defined_is_incorrect_with_feedback():
    q = body(answer="x", variables={"x": [0.5, 2]})
    grade = q.grade({}, "sqrt(x - 1)^2")
    assert grade.status is GradeStatus.INCORRECT
    assert "no value at x =" in grade.feedback


def test_several_variables_with_ranges_and_x_squared():
    q = body(answer="w^2 * x + b", variables={"w": [1, 2], "x": None, "b": [-1, 1]})
    assert q.grade({}, "b + x*w*w").status is GradeStatus.CORRECT
    assert q.grade({}, "b + x*w^2 + 0*b").status is GradeStatus.CORRECT
    assert q.grade({}, "b + x*w").status is GradeStatus.INCORRECT
    assert q.view({}).extra["variables"] == ["w", "x", "b"]


def test_deterministic_points_and_model_answer_for_many_seeds():
    a, b = body(**DSIGMA), body(**DSIGMA)
    assert a.points == b.points and len(a.points) == 12
    for seed in range(200):
        variant = a.make_variant(random.Random(seed))
        assert a.grade(variant, a.model_response(variant)).fraction == 1
        assert all(a.grade(variant, w).fraction < 1 for w in a.wrong_responses(variant))


def test_constant_answer_without_variables():
    q = body(answer="sqrt(2)/2")
    assert q.grade({}, "1/sqrt(2)").status is GradeStatus.CORRECT
    assert q.grade({}, "sin(pi/4)").status is GradeStatus.CORRECT
    assert q.grade({}, "0.7071").status is GradeStatus.INCORRECT


def test_accept_and_view_hide_the_answer():
    q = body(**DSIGMA)
    assert q.accept({}, [" x^2 "]) == " x^2 "
    assert q.accept({}, [""]) is None
    with pytest.raises(InvalidSubmission):
        q.accept({}, ["a", "b"])
    view = q.view({})
    assert view.input == "text"
    assert view.extra["variables"] == ["x"]
    assert "sigma(x) * (1" not in str(view) and "1e-06" not in str(view)
    assert q.describe_answer({}) == "sigma(x) * (1 - sigma(x))"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"answer": None}, "answer: is required"),
        ({"answer": "sigma(y)"}, "answer: unknown variable 'y'"),
        ({"answer": "sigma(x"}, "answer: the brackets do not match"),
        ({"answer": "sqrt(-1 - x^2)"}, "answer: is undefined at too many points"),
        ({"forbid": ["sigma"]}, "answer: sigma() may not be used"),
        ({"variables": "x"}, "variables: expected a list of names or a mapping"),
        ({"variables": ["x", "x"]}, "variables[1]: duplicate variable"),
        ({"variables": ["x", "1y"]}, "variables[1]: use a letter"),
        ({"variables": ["x", "sqrt"]}, "variables[1]: sqrt is a function or constant"),
        ({"variables": {"x": [1]}}, "variables.x: expected [low, high]"),
        ({"variables": {"x": [2, 1]}}, "variables.x: low must be less than high"),
        ({"variables": {"x": ["a", 1]}}, "variables.x: expected a number"),
        ({"wrong_answers": ["sigma(z)"]}, "wrong_answers[0]: unknown variable 'z'"),
        ({"relative_tolerance": -1}, "relative_tolerance: must not be negative"),
        ({"tolerence": 1}, "tolerence: unknown field"),
    ],
)
def test_spec_problems_have_field_paths(spec, expected):
    result, problems = read(**{**DSIGMA, **spec})
    assert result is None
    assert any(p.startswith(expected) for p in problems), problems
