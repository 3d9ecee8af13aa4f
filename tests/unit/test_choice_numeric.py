"""Grading tables for single choice, multiple response, true/false and numeric."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from quizapp.domain.qtypes.base import GradeStatus, InvalidSubmission
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems


def q(**spec):
    problems = Problems()
    base = {"id": "q", "stem": "Stem"}
    question = read_question({**base, **spec}, (), problems)
    assert not problems, problems.items
    return question.body


MR_OPTIONS = [
    {"text": "a", "correct": True},
    {"text": "b", "correct": True},
    {"text": "c"},
    {"text": "d"},
]


@pytest.mark.parametrize(
    ("scoring", "chosen", "expected"),
    [
        ("all_or_nothing", ["0", "1"], Fraction(1)),
        ("all_or_nothing", ["0"], Fraction(0)),
        ("all_or_nothing", ["0", "1", "2"], Fraction(0)),
        ("right_minus_wrong", ["0"], Fraction(1, 2)),
        ("right_minus_wrong", ["0", "2"], Fraction(0)),
        ("right_minus_wrong", ["2", "3"], Fraction(0)),  # floored at 0
        ("right_minus_wrong", ["0", "1", "2"], Fraction(1, 2)),
        ("per_option", ["0"], Fraction(3, 4)),
        ("per_option", ["2", "3"], Fraction(0)),
        ("per_option", ["0", "1", "2"], Fraction(3, 4)),
    ],
)
def test_multiple_response_partial_credit(scoring, chosen, expected):
    body = q(type="multiple_response", options=MR_OPTIONS, scoring=scoring)
    assert body.grade({}, chosen).fraction == expected


def test_options_are_shuffled_per_seed_and_letters_map_back_to_stable_keys():
    options = [{"text": "w1"}, {"text": "right", "correct": True}, {"text": "w2"}, {"text": "w3"}]
    body = q(type="single_choice", options=options)
    orders = {tuple(body.make_variant(random.Random(seed))["order"]) for seed in range(30)}
    assert len(orders) > 5
    variant = body.make_variant(random.Random(7))
    letter = body.form_values(variant, body.model_response(variant))
    assert body.grade(variant, body.accept(variant, letter)).status is GradeStatus.CORRECT
    assert body.accept(variant, []) is None
    with pytest.raises(InvalidSubmission):
        body.accept(variant, ["Z"])
    with pytest.raises(InvalidSubmission):
        body.accept(variant, ["A", "B"])


def test_student_view_does_not_reveal_which_option_is_correct():
    body = q(
        type="single_choice",
        options=[{"text": "right", "correct": True, "feedback": "FB"}, {"text": "wrong"}],
    )
    for seed in range(10):
        view = body.view(body.make_variant(random.Random(seed)))
        assert "correct" not in repr(view).lower() and "FB" not in repr(view)
        assert [c.value for c in view.choices] == ["A", "B"]


def test_true_false():
    body = q(type="true_false", answer=False)
    assert body.grade({}, "false").status is GradeStatus.CORRECT
    assert body.grade({}, "true").status is GradeStatus.INCORRECT
    assert body.grade({}, None).status is GradeStatus.UNANSWERED


@pytest.mark.parametrize(
    ("spec", "typed", "status"),
    [
        ({"answer": 0.25, "tolerance": 0.01}, "0.26", GradeStatus.CORRECT),  # exactly on the edge
        ({"answer": 0.25, "tolerance": 0.01}, "0.2600001", GradeStatus.INCORRECT),
        ({"answer": 0.25, "tolerance": 0.01}, "0.24", GradeStatus.CORRECT),
        ({"answer": 0.001, "tolerance": 0}, "1e-3", GradeStatus.CORRECT),
        ({"answer": 0.001, "tolerance": 0}, "1E-3", GradeStatus.CORRECT),
        ({"answer": 0.001, "tolerance": 0}, " .001 ", GradeStatus.CORRECT),
        ({"answer": -2, "tolerance": 0}, "\u22122", GradeStatus.CORRECT),  # Unicode minus
        ({"answer": 100, "relative_tolerance": 0.01}, "101", GradeStatus.CORRECT),
        ({"answer": 100, "relative_tolerance": 0.01}, "101.01", GradeStatus.INCORRECT),
        ({"answer": 0.1, "tolerance": 0}, "0.1", GradeStatus.CORRECT),  # no binary-float surprise
        ({"answer": 1, "tolerance": 0}, "abc", GradeStatus.UNREADABLE),
        ({"answer": 1, "tolerance": 0}, "0,5", GradeStatus.UNREADABLE),
        ({"answer": 1, "tolerance": 0}, "   ", GradeStatus.UNANSWERED),
        ({"answer": 1, "tolerance": 0}, "inf", GradeStatus.UNREADABLE),
        ({"answer": 1, "tolerance": 0}, "nan", GradeStatus.UNREADABLE),
        (
            {"answer": 0.0123, "tolerance": 0.00001, "significant_figures": 3},
            "0.0123",
            GradeStatus.CORRECT,
        ),
        (
            {"answer": 0.0123, "tolerance": 0.00001, "significant_figures": 3},
            "0.01230",
            GradeStatus.INCORRECT,
        ),
        ({"answer": 1200, "tolerance": 0, "significant_figures": 2}, "1200", GradeStatus.CORRECT),
        ({"answer": 1200, "tolerance": 0, "significant_figures": 2}, "1.2e3", GradeStatus.CORRECT),
    ],
)
def test_numeric_grading(spec, typed, status):
    body = q(type="numeric", **spec)
    stored = body.accept({}, [typed])
    assert stored == (typed if typed.strip() else None)  # stored exactly as typed
    assert body.grade({}, stored).status is status


def test_unreadable_number_explains_itself():
    grade = q(type="numeric", answer=1).grade({}, "abc")
    assert grade.fraction == 0 and grade.feedback.startswith("Could not read this answer")


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        (
            {"type": "single_choice", "options": [{"text": "a"}, {"text": "b"}]},
            "options",
            "exactly one",
        ),
        (
            {"type": "single_choice", "options": [{"text": "a", "correct": True}, {"text": "a"}]},
            "options[1].text",
            "same text",
        ),
        (
            {"type": "single_choice", "options": [{"text": "a", "correct": "yes"}, {"text": "b"}]},
            "options[0].correct",
            "true or false",
        ),
        ({"type": "numeric", "answer": "x"}, "answer", "expected a number"),
        ({"type": "numeric", "answer": 1, "tolerence": 1}, "tolerence", "unknown field"),
        ({"type": "numeric", "answer": 1, "tolerance": -1}, "tolerance", "must not be negative"),
        (
            {
                "type": "multiple_response",
                "options": [{"text": "a"}, {"text": "b"}],
                "scoring": "x",
            },
            "scoring",
            "must be one of",
        ),
        ({"type": "essayish"}, "type", "unknown type"),
        ({"type": "numeric", "answer": 1, "marks": 0}, "marks", "greater than 0"),
    ],
)
def test_spec_problems_name_the_field(spec, path, message):
    from quizapp.domain.spec import format_path

    problems = Problems()
    assert read_question({"id": "q", "stem": "S", **spec}, (), problems) is None
    found = [(format_path(p.path), p.message) for p in problems.items]
    assert any(p == path and message in m for p, m in found), found
