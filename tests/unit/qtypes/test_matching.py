"""Matching: shuffled rights, letters per left, credit per correct left."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from quizapp.domain.qtypes.base import GradeStatus, InvalidSubmission
from quizapp.domain.questions import read_question
from quizapp.domain.render import render_inline
from quizapp.domain.spec import Problems

PAIRS = [
    {"left": "ReLU", "right": "max(0, x)"},
    {"left": "sigmoid", "right": "1/(1+exp(-x))"},
    {"left": "tanh", "right": "(e^x - e^-x)/(e^x + e^-x)"},
    {"left": "leaky ReLU", "right": "max(0.01x, x)"},
]


def read(**spec):
    problems = Problems()
    question = read_question({"id": "q", "stem": "Stem", "type": "matching", **spec}, (), problems)
    return (question.body if question else None), [str(p) for p in problems.items]


def body(**spec):
    result, problems = read(**{"pairs": PAIRS, **spec})
    assert not problems
    return result


def letters_for(q, variant, rights):
    """The form values that choose, for each left, the right with the given text."""
    shown = {c.html: c.value for c in q.view(variant).choices}
    return [shown[r] if r else "" for r in rights]


def test_model_response_round_trips_through_the_form_for_many_seeds():
    q = body(distractors=["x^2"])
    for seed in range(200):
        variant = q.make_variant(random.Random(seed))
        values = q.form_values(variant, q.model_response(variant))
        assert q.grade(variant, q.accept(variant, values)).fraction == 1
        assert all(q.grade(variant, w).fraction < 1 for w in q.wrong_responses(variant))


def test_variant_is_deterministic_and_shuffles():
    q = body()
    assert q.make_variant(random.Random(5)) == q.make_variant(random.Random(5))
    orders = {tuple(q.make_variant(random.Random(s))["rights"]) for s in range(40)}
    assert len(orders) > 5
    assert body(shuffle=False).make_variant(random.Random(1))["rights"] == ["r0", "r1", "r2", "r3"]


@pytest.mark.parametrize(
    ("chosen", "fraction", "status"),
    [
        (
            ["max(0, x)", "1/(1+exp(-x))", "(e^x - e^-x)/(e^x + e^-x)", "max(0.01x, x)"],
            Fraction(1),
            GradeStatus.CORRECT,
        ),
        (
            ["max(0, x)", "1/(1+exp(-x))", "max(0.01x, x)", "(e^x - e^-x)/(e^x + e^-x)"],
            Fraction(1, 2),
            GradeStatus.PARTIAL,
        ),
        (["max(0, x)", "", "", ""], Fraction(1, 4), GradeStatus.PARTIAL),
        (["x^2", "x^2", "x^2", "x^2"], Fraction(0), GradeStatus.INCORRECT),
        (["", "", "", ""], Fraction(0), GradeStatus.UNANSWERED),
    ],
)
def test_partial_credit(chosen, fraction, status):
    q = body(distractors=["x^2"])
    variant = q.make_variant(random.Random(3))
    rendered = [render_inline(c) if c else "" for c in chosen]
    response = q.accept(variant, letters_for(q, variant, rendered))
    grade = q.grade(variant, response)
    assert (grade.fraction, grade.status) == (fraction, status)


def test_accept_and_stored_response():
    q = body(shuffle=False)
    variant = q.make_variant(random.Random(0))
    assert q.accept(variant, ["B", "", "A", "D"]) == {"0": "r1", "2": "r0", "3": "r3"}
    assert q.accept(variant, []) is None
    assert q.accept(variant, ["", "", "", ""]) is None
    for bad in (["Z", "", "", ""], ["AB", "", "", ""], ["A"], ["A"] * 5):
        with pytest.raises(InvalidSubmission):
            q.accept(variant, bad)
    assert q.form_values(variant, {"0": "r1", "2": "r0"}) == ["B", "", "A", ""]
    assert q.form_values(variant, None) == []


@pytest.mark.parametrize("response", ["A", ["r0"], 7, {"0": 5, "x": "r1"}, {"0": None}])
def test_odd_stored_responses_never_raise(response):
    q = body()
    variant = q.make_variant(random.Random(0))
    assert q.grade(variant, response).fraction == 0
    q.describe_response(variant, response)
    q.form_values(variant, response)


def test_shared_rights_are_shown_once():
    q = body(
        pairs=[
            {"left": "cat", "right": "mammal"},
            {"left": "dog", "right": "mammal"},
            {"left": "trout", "right": "fish"},
        ]
    )
    variant = q.make_variant(random.Random(0))
    assert len(q.view(variant).choices) == 2
    assert q.grade(variant, q.model_response(variant)).fraction == 1


def test_view_has_lefts_and_rights_but_not_the_pairing():
    q = body(shuffle=False)
    variant = q.make_variant(random.Random(0))
    view = q.view(variant)
    assert view.input == "matching"
    assert view.extra["lefts"] == ["ReLU", "sigmoid", "tanh", "leaky ReLU"]
    assert [r["value"] for r in view.extra["rights"]] == ["A", "B", "C", "D"]
    assert "r0" not in str(view)  # stable keys stay on the server
    assert "ReLU → A. max(0, x)" in q.describe_answer(variant)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"pairs": None}, "pairs: is required"),
        ({"pairs": [PAIRS[0]]}, "pairs: needs at least 2 items"),
        ({"pairs": [PAIRS[0], {"left": "x"}]}, "pairs[1].right: is required"),
        ({"pairs": [PAIRS[0], {"left": "ReLU", "right": "y"}]}, "pairs[1].left: two pairs"),
        ({"pairs": [PAIRS[0], {**PAIRS[1], "colour": 1}]}, "pairs[1].colour: unknown field"),
        (
            {"pairs": [PAIRS[0], {"left": "b", "right": "max(0, x)"}]},
            "pairs: needs at least two different right",
        ),
        ({"distractors": ["max(0, x)"]}, "distractors[0]: repeats"),
        ({"shuffle": "yes"}, "shuffle: expected true or false"),
    ],
)
def test_spec_problems_have_field_paths(spec, expected):
    question, problems = read(**{"pairs": PAIRS, **spec})
    assert question is None
    assert any(p.startswith(expected) for p in problems), problems
