"""Multi-part: numeric and text blanks, graded each, combined by weight."""

from __future__ import annotations

from fractions import Fraction

import pytest

from quizapp.domain.qtypes.base import AnswerOutOfBounds, GradeStatus, InvalidSubmission
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

PARTS = [
    {"id": "h", "label": "Output height $H'$", "answer": 14, "units": "px", "wrong_answers": [15]},
    {"id": "lr", "label": "Learning rate", "answer": 0.01, "tolerance": 0.001, "weight": 2},
    {
        "id": "name",
        "label": "Layer",
        "answers": [{"text": "max pooling"}, {"pattern": "max ?pool", "fraction": 0.5}],
        "wrong_answers": ["average pooling"],
    },
]


def read(**spec):
    problems = Problems()
    question = read_question(
        {"id": "q", "stem": "Stem", "type": "multi_part", **spec}, (), problems
    )
    return (question.body if question else None), [str(p) for p in problems.items]


def body(**spec):
    result, problems = read(**{"parts": PARTS, **spec})
    assert not problems
    return result


@pytest.mark.parametrize(
    ("values", "fraction", "status"),
    [
        (["14", "0.01", "max pooling"], Fraction(1), GradeStatus.CORRECT),
        (["14", "0.011", "Max  Pooling"], Fraction(1), GradeStatus.CORRECT),  # on the edge
        (["14", "0.0111", "max pooling"], Fraction(2, 4), GradeStatus.PARTIAL),
        (["15", "0.01", "max pooling"], Fraction(3, 4), GradeStatus.PARTIAL),
        (["14", "", ""], Fraction(1, 4), GradeStatus.PARTIAL),
        (["", "", "maxpool"], Fraction(1, 8), GradeStatus.PARTIAL),
        (["abc", "0,01", "x"], Fraction(0), GradeStatus.INCORRECT),
        (["", "", ""], Fraction(0), GradeStatus.UNANSWERED),
    ],
)
def test_weighted_partial_credit(values, fraction, status):
    q = body()
    grade = q.grade({}, q.accept({}, values))
    assert (grade.fraction, grade.status) == (fraction, status)


def test_unreadable_parts_are_explained_per_part():
    q = body()
    grade = q.grade({}, q.accept({}, ["abc", "0,01", ""]))
    assert grade.fraction == 0
    assert "Output height $H'$: Could not read this answer:" in grade.feedback
    assert "Learning rate: Could not read this answer: use a decimal point" in grade.feedback


def test_huge_input_is_refused_at_save_and_unreadable_if_stored():
    q = body()
    with pytest.raises(AnswerOutOfBounds, match=r"^Output height \$H'\$: This number cannot"):
        q.accept({}, ["1" * 10_000_000, "x", "y"])
    with pytest.raises(AnswerOutOfBounds, match=r"^Layer: .*at most 500 characters"):
        q.accept({}, ["1", "2", "y" * 10_000_000])
    stored = {"h": "1" * 10_000_000, "lr": "x" * 10_000_000, "name": "y" * 10_000_000}
    grade = q.grade({}, stored)
    assert grade.fraction == 0
    assert grade.feedback.count("Could not read this answer") == 3


def test_accept_and_form_values():
    q = body()
    assert q.accept({}, ["14", "", "max pooling"]) == {"h": "14", "name": "max pooling"}
    assert q.accept({}, []) is None
    assert q.accept({}, ["", " ", ""]) is None
    with pytest.raises(InvalidSubmission):
        q.accept({}, ["14"])
    with pytest.raises(InvalidSubmission):
        q.accept({}, ["1", "2", "3", "4"])
    assert q.form_values({}, {"h": "14", "name": "x"}) == ["14", "", "x"]
    assert q.form_values({}, None) == []


@pytest.mark.parametrize("response", ["14", ["14"], {"h": 14}, {"zz": "1"}, 3.5])
def test_odd_stored_responses_never_raise(response):
    q = body()
    assert q.grade({}, response).fraction < 1
    q.describe_response({}, response)
    q.form_values({}, response)


def test_model_and_wrong_responses():
    q = body()
    model = q.model_response({})
    assert model == {"h": "14", "lr": "0.01", "name": "max pooling"}
    assert q.grade({}, model).fraction == 1
    wrong = q.wrong_responses({})
    assert len(wrong) == 2
    assert all(q.grade({}, w).fraction < 1 for w in wrong)
    assert q.describe_answer({}) == (
        "Output height $H'$: 14 px; Learning rate: 0.01 (± 0.001); Layer: max pooling"
    )


def test_view_lists_parts_without_answers():
    view = body().view({})
    assert view.input == "multi_part"
    assert [(p["id"], p["kind"], p["units"]) for p in view.extra["parts"]] == [
        ("h", "number", "px"),
        ("lr", "number", ""),
        ("name", "text", ""),
    ]
    assert "<math" in view.extra["parts"][0]["label_html"]
    text = str(view)
    for secret in ("14", "0.01", "0.001", "pooling", "max ?pool", "weight"):
        assert secret not in text


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (None, "parts: is required"),
        ([], "parts: needs at least 1 item"),
        ([{"answer": 1}], "parts[0].id: is required"),
        ([{"id": "a b", "answer": 1}], "parts[0].id: use letters"),
        ([{"id": "a", "answer": 1}, {"id": "a", "answer": 2}], "parts[1].id: duplicate"),
        ([{"id": "a"}], "parts[0]: give answer (a number) or answers"),
        ([{"id": "a", "answer": 1, "answers": [{"text": "x"}]}], "parts[0]: give answer"),
        ([{"id": "a", "answer": "ten"}], "parts[0].answer: expected a number"),
        ([{"id": "a", "answer": 1, "tolerence": 1}], "parts[0].tolerence: unknown field"),
        ([{"id": "a", "answer": 1, "weight": 0}], "parts[0].weight: must be greater than 0"),
        ([{"id": "a", "answers": [{"pattern": "("}]}], "parts[0].answers[0].pattern: not a"),
        ([{"id": "a", "answers": [{"text": "x"}], "units": "m"}], "parts[0].units: unknown"),
    ],
)
def test_spec_problems_have_field_paths(parts, expected):
    question, problems = read(parts=parts)
    assert question is None
    assert any(p.startswith(expected) for p in problems), problems
