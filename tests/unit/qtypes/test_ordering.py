"""Ordering: shuffled items, letters in the student's order, three named scoring rules."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from quizapp.domain.qtypes.base import GradeStatus, InvalidSubmission
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

ITEMS = ["forward pass", "compute loss", "backward pass", "update weights", "zero gradients"]


def read(**spec):
    problems = Problems()
    question = read_question({"id": "q", "stem": "Stem", "type": "ordering", **spec}, (), problems)
    return (question.body if question else None), [str(p) for p in problems.items]


def body(**spec):
    result, problems = read(**{"items": ITEMS, **spec})
    assert not problems
    return result


def keys(*indices):
    return [str(i) for i in indices]


@pytest.mark.parametrize(
    ("scoring", "order", "fraction"),
    [
        ("adjacent_pairs", keys(0, 1, 2, 3, 4), Fraction(1)),
        ("adjacent_pairs", keys(1, 2, 3, 4, 0), Fraction(3, 4)),  # 1-2, 2-3, 3-4 kept
        ("adjacent_pairs", keys(0, 1, 3, 2, 4), Fraction(1, 4)),  # only 0-1
        ("adjacent_pairs", keys(4, 3, 2, 1, 0), Fraction(0)),
        ("adjacent_pairs", ["0", "1", None, "3", "4"], Fraction(2, 4)),
        ("adjacent_pairs", keys(0, 1, 0, 1, 0), Fraction(1, 4)),  # duplicates earn once
        ("all_or_nothing", keys(0, 1, 2, 3, 4), Fraction(1)),
        ("all_or_nothing", keys(1, 2, 3, 4, 0), Fraction(0)),
        ("positions", keys(0, 1, 2, 3, 4), Fraction(1)),
        ("positions", keys(0, 1, 3, 2, 4), Fraction(3, 5)),
        ("positions", keys(1, 2, 3, 4, 0), Fraction(0)),
        ("positions", keys(4, 3, 2, 1, 0), Fraction(1, 5)),
    ],
)
def test_scoring_rules(scoring, order, fraction):
    q = body(scoring=scoring)
    assert q.grade({}, order).fraction == fraction


def test_model_answer_round_trips_and_reversed_is_wrong_for_many_seeds():
    for scoring in ("adjacent_pairs", "all_or_nothing", "positions"):
        q = body(scoring=scoring)
        for seed in range(200):
            variant = q.make_variant(random.Random(seed))
            assert variant["order"] != keys(0, 1, 2, 3, 4)  # never shown already solved
            values = q.form_values(variant, q.model_response(variant))
            assert q.grade(variant, q.accept(variant, values)).status is GradeStatus.CORRECT
            assert all(q.grade(variant, w).fraction < 1 for w in q.wrong_responses(variant))


def test_two_items_are_always_shown_swapped():
    q = body(items=["a", "b"])
    assert {tuple(q.make_variant(random.Random(s))["order"]) for s in range(20)} == {("1", "0")}


def test_variants_are_deterministic():
    q = body()
    assert q.make_variant(random.Random(42)) == q.make_variant(random.Random(42))


def test_accept_maps_letters_to_items():
    q = body()
    variant = {"order": keys(2, 0, 4, 1, 3)}  # A=backward, B=forward, C=zero, D=loss, E=update
    assert q.accept(variant, ["B", "D", "A", "E", "C"]) == keys(0, 1, 2, 3, 4)
    assert q.accept(variant, ["B", "", "A", "E", "C"]) == ["0", None, "2", "3", "4"]
    assert q.accept(variant, []) is None
    assert q.accept(variant, [""] * 5) is None
    for bad in (["A"], ["A"] * 6, ["Z", "A", "B", "C", "D"], ["AB", "A", "B", "C", "D"]):
        with pytest.raises(InvalidSubmission):
            q.accept(variant, bad)
    assert q.form_values(variant, keys(0, 1, 2, 3, 4)) == ["B", "D", "A", "E", "C"]


@pytest.mark.parametrize("response", [None, [], "0,1,2", {"0": 1}, [1, 2, 3], ["9", "x"]])
def test_odd_responses_never_raise(response):
    q = body()
    grade = q.grade({}, response)
    assert grade.fraction < 1
    q.describe_response({}, response)
    q.form_values({"order": keys(0, 1, 2, 3, 4)}, response)


def test_empty_answer_is_unanswered():
    assert body().grade({}, None).status is GradeStatus.UNANSWERED


def test_view_shows_items_in_variant_order_only():
    q = body()
    variant = {"order": keys(2, 0, 4, 1, 3)}
    view = q.view(variant)
    assert view.input == "ordering"
    assert [c.html for c in view.choices] == [ITEMS[i] for i in (2, 0, 4, 1, 3)]
    assert [c.value for c in view.choices] == list("ABCDE")
    assert q.describe_answer(variant) == " → ".join(ITEMS)
    assert q.describe_response(variant, ["1", None]) == "compute loss → (empty)"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"items": None}, "items: is required"),
        ({"items": ["only"]}, "items: needs at least 2 items"),
        ({"items": ["a", "b", "a"]}, "items[2]: two items have the same text"),
        ({"items": ["a", " "]}, "items[1]: must not be empty"),
        ({"items": ["a", {"x": 1}]}, "items[1]: expected text"),
        ({"scoring": "kendall"}, "scoring: must be one of"),
        ({"shuffle": True}, "shuffle: unknown field"),
    ],
)
def test_spec_problems_have_field_paths(spec, expected):
    question, problems = read(**{"items": ITEMS, **spec})
    assert question is None
    assert any(p.startswith(expected) for p in problems), problems
