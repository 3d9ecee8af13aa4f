"""Calculated: parameters drawn per seed, a safe formula, numeric comparison."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest

from quizapp.domain.qtypes.base import GradeStatus
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

SGD = {
    "stem": "Weight {{w}}, learning rate {{lr}}, gradient {{g}}: the new weight?",
    "parameters": {
        "w": {"range": [-1, 1], "step": 0.25},
        "lr": {"values": [0.1, 0.01, "1e-3"]},
        "g": {"range": [-2, 2], "step": 0.5},
    },
    "answer": "w - lr * g",
    "wrong_answers": ["w + lr * g", "lr * g"],
}


def read(**spec):
    problems = Problems()
    data = {"id": "q", "stem": "Stem", "type": "calculated", **spec}
    question = read_question(data, (), problems)
    return question, [str(p) for p in problems.items]


def question(**spec):
    result, problems = read(**spec)
    assert not problems
    return result


def test_model_answer_scores_one_for_200_seeds_and_distractors_less():
    q = question(**SGD)
    for seed in range(200):
        variant = q.body.make_variant(random.Random(seed))
        assert q.body.render_problems(variant) == []
        assert q.body.grade(variant, q.body.model_response(variant)).fraction == 1
        assert all(q.body.grade(variant, w).fraction < 1 for w in q.body.wrong_responses(variant))


def test_float_formula_model_answer_scores_one_for_200_seeds():
    q = question(
        parameters={"x": {"range": [-3, 3], "step": 0.1}, "a": {"values": [1, 2, 3]}},
        answer="a * sigma(x) * (1 - sigma(x)) + sqrt(a) - log(a + x^2) / exp(tanh(x))",
        relative_tolerance=0.001,
    )
    for seed in range(200):
        variant = q.body.make_variant(random.Random(seed))
        assert q.body.render_problems(variant) == []
        model = q.body.model_response(variant)
        assert len(model) < 20  # shortened within the tolerance, not 17+ digits
        assert q.body.grade(variant, model).fraction == 1


def test_variants_are_deterministic_exact_decimal_strings_in_range():
    q = question(**SGD)
    a = q.body.make_variant(random.Random(7))
    assert a == q.body.make_variant(random.Random(7))
    values = a["params"]
    assert set(values) == {"w", "lr", "g"}
    assert Decimal(values["lr"]) in {Decimal("0.1"), Decimal("0.01"), Decimal("0.001")}
    assert Fraction(Decimal(values["w"])) * 4 == int(Fraction(Decimal(values["w"])) * 4)
    assert -2 <= Decimal(values["g"]) <= 2
    seen = {q.body.make_variant(random.Random(s))["params"]["w"] for s in range(200)}
    assert seen == {"-1", "-0.75", "-0.5", "-0.25", "0", "0.25", "0.5", "0.75", "1"}


def test_parameters_appear_in_the_stem():
    q = question(**SGD)
    variant = {"params": {"w": "0.5", "lr": "0.1", "g": "-2"}}
    assert q.stem_text(variant) == "Weight 0.5, learning rate 0.1, gradient -2: the new weight?"


@pytest.mark.parametrize(
    ("tolerance", "answer", "status"),
    [
        ({"tolerance": "0.01"}, "0.71", GradeStatus.CORRECT),  # exactly on the edge
        ({"tolerance": "0.01"}, "0.69", GradeStatus.CORRECT),
        ({"tolerance": "0.01"}, "0.7100001", GradeStatus.INCORRECT),
        ({"relative_tolerance": "0.1"}, "0.77", GradeStatus.CORRECT),  # 0.7 ± 0.07
        ({"relative_tolerance": "0.1"}, "0.7701", GradeStatus.INCORRECT),
        ({}, "0.7", GradeStatus.CORRECT),
        ({}, "0.70", GradeStatus.CORRECT),
        ({}, "7e-1", GradeStatus.CORRECT),
        ({}, "0.7000001", GradeStatus.INCORRECT),
        ({}, "abc", GradeStatus.UNREADABLE),
        ({}, "0,7", GradeStatus.UNREADABLE),
        ({}, "1" * 10_000_000, GradeStatus.UNREADABLE),
        ({}, "", GradeStatus.UNANSWERED),
        ({}, None, GradeStatus.UNANSWERED),
    ],
)
def test_tolerance_boundaries_and_malformed_input(tolerance, answer, status):
    q = question(**{**SGD, **tolerance})
    variant = {"params": {"w": "0.5", "lr": "0.1", "g": "-2"}}  # 0.5 + 0.2 = 0.7 exactly
    assert q.body.grade(variant, answer).status is status


def test_significant_figures_and_units():
    q = question(
        parameters={"r": {"values": [2]}},
        answer="pi * r^2",
        relative_tolerance=0.01,
        significant_figures=3,
        units="cm²",
    )
    variant = q.body.make_variant(random.Random(0))
    assert q.body.model_response(variant) == "12.6"
    assert q.body.grade(variant, "12.6").status is GradeStatus.CORRECT
    assert q.body.grade(variant, "12.57").status is GradeStatus.INCORRECT  # 4 s.f.
    assert q.body.describe_answer(variant).startswith("12.6 cm²")
    assert q.body.view(variant).extra == {"units": "cm²"}


@pytest.mark.parametrize(
    ("parameters", "answer", "message"),
    [
        ({"a": {"values": [0, 1]}}, "1 / a", "division by zero"),
        ({"a": {"values": [-1, 1]}}, "sqrt(a)", "math domain error"),
        ({"a": {"values": [0, 1]}}, "log(a)", "math domain error"),
        ({"a": {"values": [800, 1]}}, "exp(a)", "number too large"),
    ],
)
def test_degenerate_variants_are_reported_and_grading_never_raises(parameters, answer, message):
    q = question(parameters=parameters, answer=answer, tolerance=0.01)
    bad = {"params": {"a": str(parameters["a"]["values"][0])}}
    problems = q.body.render_problems(bad)
    assert len(problems) == 1 and message in problems[0], problems
    assert f"a = {parameters['a']['values'][0]}" in problems[0]
    assert q.body.grade(bad, "1").fraction == 0
    assert q.body.model_response(bad) is None
    assert "no answer for this variant" in q.body.describe_answer(bad)
    good = {"params": {"a": "1"}}
    assert q.body.render_problems(good) == []


@pytest.mark.parametrize("variant", [{}, {"params": {}}, {"params": {"a": "x"}}, {"params": 3}])
def test_broken_variants_never_raise(variant):
    q = question(parameters={"a": {"values": [1]}}, answer="a")
    assert q.body.grade(variant, "1").fraction == 0
    assert q.body.render_problems(variant)


def test_exact_answer_that_cannot_be_typed_needs_a_tolerance():
    q = question(parameters={"a": {"values": [3]}}, answer="1 / a")
    variant = q.body.make_variant(random.Random(0))
    assert "give a tolerance" in q.body.render_problems(variant)[0]
    q2 = question(parameters={"a": {"values": [3]}}, answer="1 / a", tolerance=0.001)
    assert q2.body.render_problems(variant) == []
    assert q2.body.model_response(variant) == "0.333333"


def test_view_never_reveals_formula_tolerance_or_values():
    q = question(**{**SGD, "tolerance": "0.0123", "units": "kg"})
    variant = {"params": {"w": "0.5", "lr": "0.1", "g": "-2"}}
    view = q.body.view(variant)
    assert view.input == "number"
    text = str(view)
    for secret in ("0.7", "0.0123", "lr", "w -", "0.5", "params"):
        assert secret not in text


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"parameters": None}, "parameters: is required"),
        ({"parameters": [1, 2]}, "parameters: expected a mapping"),
        ({"parameters": {"lr": {"range": [0.1]}}}, "parameters.lr.range: expected [low, high]"),
        ({"parameters": {"lr": {"range": [1, 0]}}}, "parameters.lr.range: high must not be"),
        ({"parameters": {"lr": {"range": ["a", 1]}}}, "parameters.lr.range: expected a number"),
        ({"parameters": {"lr": {"range": [0, 1], "step": 0}}}, "parameters.lr.step: must be"),
        ({"parameters": {"lr": {"range": [0, 1], "step": "1e-13"}}}, "parameters.lr.step: gives"),
        ({"parameters": {"lr": {"range": [0, 1], "values": [1]}}}, "parameters.lr: give either"),
        ({"parameters": {"lr": {}}}, "parameters.lr: give either"),
        ({"parameters": {"lr": 5}}, "parameters.lr: expected a mapping"),
        ({"parameters": {"lr": {"values": []}}}, "parameters.lr.values: needs at least 1"),
        ({"parameters": {"lr": {"values": [1, "x"]}}}, "parameters.lr.values[1]: expected a"),
        ({"parameters": {"lr": {"values": [1], "stepp": 1}}}, "parameters.lr.stepp: unknown"),
        ({"parameters": {"2x": {"values": [1]}}}, "parameters.2x: use a letter"),
        ({"parameters": {"sqrt": {"values": [1]}}}, "parameters.sqrt: sqrt is a function"),
        ({"answer": "w - lr * h"}, "answer: unknown variable 'h'"),
        ({"answer": "__import__('os')"}, "answer: text in quotes"),
        ({"answer": None}, "answer: is required"),
        ({"wrong_answers": ["w +"]}, "wrong_answers[0]: it is not a valid"),
        ({"tolerance": 0.1, "relative_tolerance": 0.1}, "relative_tolerance: give tolerance"),
        ({"tolerance": -1}, "tolerance: must not be negative"),
        ({"significant_figures": 0}, "significant_figures: must be at least 1"),
    ],
)
def test_spec_problems_have_field_paths(spec, expected):
    result, problems = read(**{**SGD, **spec})
    assert result is None
    assert any(p.startswith(expected) for p in problems), problems
