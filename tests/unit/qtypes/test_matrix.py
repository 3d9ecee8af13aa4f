"""Matrix and vector answers: layout parsing, shape first, then per-element tolerance."""

from __future__ import annotations

from fractions import Fraction

import pytest

from quizapp.domain.qtypes.base import GradeStatus, InvalidSubmission
from quizapp.domain.qtypes.matrix import UnreadableMatrix, parse_matrix
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

GRAD_W = {
    "answer": [[1, 0.5, -2], [0, 2.25, 3]],
    "tolerance": 0.01,
    "shape_hint": "∂L/∂W",
    "wrong_answers": [[[1, 0.5, -2], [0, 2.25, 4]]],
}


def read(**spec):
    problems = Problems()
    question = read_question({"id": "q", "stem": "Stem", "type": "matrix", **spec}, (), problems)
    return (question.body if question else None), [str(p) for p in problems.items]


def body(**spec):
    result, problems = read(**spec)
    assert not problems
    return result


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("1 2\n3 4", ((1, 2), (3, 4))),
        ("1, 2; 3, 4", ((1, 2), (3, 4))),
        ("[[1, 2], [3, 4]]", ((1, 2), (3, 4))),
        ("[1 2]\n\n  [3 4]  \n", ((1, 2), (3, 4))),
        ("1\t2\r\n3\t4", ((1, 2), (3, 4))),
        ("(−1.5, 2e-1)", ((Fraction(-3, 2), Fraction(1, 5)),)),
    ],
)
def test_parse_layouts(text, rows):
    assert parse_matrix(text) == rows


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1 2\n3", "row 2 has 1 entries but row 1 has 2"),
        ("1 abc", "row 1, entry 2: 'abc' is not a number"),
        ("", "it is empty"),
        ("[ ; ]", "it is empty"),
        ("1 " * 3000, "row 1 has more than 500 entries"),
        ("1 2\n" * 600, "more than 1000 entries"),
        ("1\n" * 600, "more than 500 rows"),
        ("1" * 10_000_000, "longer than 20000"),
    ],
)
def test_parse_errors(text, reason):
    with pytest.raises(UnreadableMatrix, match=reason.replace("(", r"\(")):
        parse_matrix(text)


@pytest.mark.parametrize(
    ("text", "fraction", "status", "feedback"),
    [
        ("1 0.5 -2\n0 2.25 3", Fraction(1), GradeStatus.CORRECT, ""),
        ("1.01 0.49 -2.01; -0.01 2.26 2.99", Fraction(1), GradeStatus.CORRECT, ""),  # edges
        ("1.0100001 0.5 -2; 0 2.25 3", Fraction(0), GradeStatus.INCORRECT, ""),
        (
            "1 0\n0.5 2.25\n-2 3",
            Fraction(0),
            GradeStatus.INCORRECT,
            "Expected 2×3, got 3×2: check the layout of ∂L/∂W.",
        ),
        ("1 0.5 -2", Fraction(0), GradeStatus.INCORRECT, "Expected 2×3, got 1×3"),
        ("1 0.5 -2 0 2.25 3", Fraction(0), GradeStatus.INCORRECT, "got 1×6"),
        ("1 0.5\n-2 abc", Fraction(0), GradeStatus.UNREADABLE, "row 2, entry 2"),
        ("1 0.5 -2\n0 2.25", Fraction(0), GradeStatus.UNREADABLE, "row 2 has 2 entries"),
        ("", Fraction(0), GradeStatus.UNANSWERED, ""),
        ("x" * 10_000_000, Fraction(0), GradeStatus.UNREADABLE, "longer than"),
    ],
)
def test_all_or_nothing(text, fraction, status, feedback):
    grade = body(**GRAD_W).grade({}, text)
    assert (grade.fraction, grade.status) == (fraction, status)
    assert feedback in grade.feedback


def test_per_element_partial_credit():
    q = body(**{**GRAD_W, "scoring": "per_element"})
    grade = q.grade({}, "1 0.5 -2\n0 0 0")
    assert (grade.fraction, grade.status) == (Fraction(4, 6), GradeStatus.PARTIAL)
    assert grade.feedback == "4 of 6 entries are correct."
    assert q.grade({}, "9 9 9; 9 9 9").fraction == 0
    assert q.grade({}, "1 0.5; -2 0; 2.25 3").fraction == 0  # wrong shape: nothing


def test_relative_tolerance_per_element():
    q = body(answer=[[100, 1]], relative_tolerance=0.01)
    assert q.grade({}, "101 1.01").status is GradeStatus.CORRECT
    assert q.grade({}, "101 1.0101").status is GradeStatus.INCORRECT


def test_cnn_output_shape_vector():
    q = body(answer=[32, 16, 14, 14], labels=["N", "C", "H", "W"], shape_hint="the output")
    for typed in (
        "32 16 14 14",
        "[32, 16, 14, 14]",
        "(32,16,14,14)",
        "32×16×14×14",
        "32 x 16 x 14 x 14",
        "32\n16\n14\n14",
    ):
        assert q.grade({}, typed).status is GradeStatus.CORRECT, typed
    grade = q.grade({}, "32 16 14")
    assert grade.feedback == (
        "Expected a vector of 4 entries, got 3 entries: check the layout of the output."
    )
    assert q.grade({}, "32 16; 14 14").feedback.startswith(
        "Expected a vector of 4 entries, got a 2×2 matrix"
    )
    assert q.grade({}, "32 16 14 15").status is GradeStatus.INCORRECT
    view = q.view({})
    assert view.extra == {
        "rows": 1,
        "cols": 4,
        "vector": True,
        "labels": ["N", "C", "H", "W"],
        "shape_hint_html": "the output",
    }
    assert q.model_response({}) == "32 16 14 14"


def test_model_and_wrong_responses():
    q = body(**GRAD_W)
    assert q.model_response({}) == "1 0.5 -2\n0 2.25 3"
    assert q.grade({}, q.model_response({})).fraction == 1
    wrong = q.wrong_responses({})
    assert len(wrong) == 2  # the listed one and the transpose
    assert all(q.grade({}, w).fraction < 1 for w in wrong)
    assert q.describe_answer({}) == "1 0.5 -2 ; 0 2.25 3 (each entry ± 0.01)"
    assert q.describe_response({}, "1 2\n3 4") == "1 2 ; 3 4"


def test_view_reveals_the_shape_not_the_values():
    q = body(**GRAD_W)
    view = q.view({})
    assert view.input == "matrix"
    assert (view.extra["rows"], view.extra["cols"], view.extra["vector"]) == (2, 3, False)
    text = str(view)
    for secret in ("0.5", "2.25", "0.01", "-2"):
        assert secret not in text


def test_accept():
    q = body(**GRAD_W)
    assert q.accept({}, ["1 2\n3 4"]) == "1 2\n3 4"
    assert q.accept({}, ["  \n "]) is None
    with pytest.raises(InvalidSubmission):
        q.accept({}, ["1", "2"])


@pytest.mark.parametrize("response", [[[1, 2]], 5, {"a": 1}])
def test_odd_stored_responses_never_raise(response):
    assert body(**GRAD_W).grade({}, response).status is GradeStatus.UNREADABLE


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"answer": None}, "answer: is required"),
        ({"answer": []}, "answer: expected a list"),
        ({"answer": "1 2"}, "answer: expected a list"),
        ({"answer": [[1, 2], 3]}, "answer: mixes rows"),
        ({"answer": [[1, 2], [3]]}, "answer[1]: has 1 entries but the first row has 2"),
        ({"answer": [[1, 2], []]}, "answer[1]: an empty row"),
        ({"answer": [[1, "x"]]}, "answer[0][1]: expected a number"),
        ({"answer": [1, "x"]}, "answer[1]: expected a number"),
        ({"scoring": "partial"}, "scoring: must be one of"),
        ({"labels": ["a", "b"]}, "labels: labels are for vectors"),
        ({"answer": [1, 2], "labels": ["a"]}, "labels: expected 2 labels"),
        ({"wrong_answers": [[1, "y"]]}, "wrong_answers[0][1]: expected a number"),
        ({"tolerance": 0.1, "relative_tolerance": 0.1}, "relative_tolerance: give tolerance"),
        ({"shape": [2, 3]}, "shape: unknown field"),
    ],
)
def test_spec_problems_have_field_paths(spec, expected):
    result, problems = read(**{**GRAD_W, **spec})
    assert result is None
    assert any(p.startswith(expected) for p in problems), problems
