"""Essays: stored as typed, always left for staff to mark."""

from __future__ import annotations

from fractions import Fraction

import pytest

from quizapp.domain.qtypes import QUESTION_TYPES
from quizapp.domain.qtypes.base import GradeStatus, InvalidSubmission
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems


def read(**spec):
    problems = Problems()
    question = read_question({"id": "q", "stem": "Stem", "type": "essay", **spec}, (), problems)
    return (question.body if question else None), [str(p) for p in problems.items]


def body(**spec):
    result, problems = read(**spec)
    assert not problems
    return result


@pytest.mark.parametrize(
    ("response", "status", "feedback"),
    [
        ("Backpropagation applies the chain rule.", GradeStatus.NEEDS_MARKING, ""),
        ("Too short.", GradeStatus.NEEDS_MARKING, "2 words (at least 5 asked)."),
        ("word " * 11, GradeStatus.NEEDS_MARKING, "11 words (at most 10 asked)."),
        ("x " * 25_000, GradeStatus.NEEDS_MARKING, "25000 words (at most 10 asked)."),
        ("x" * 10_000_000, GradeStatus.NEEDS_MARKING, "Longer than 50000 characters"),
        ("", GradeStatus.UNANSWERED, ""),
        ("  \n ", GradeStatus.UNANSWERED, ""),
        (None, GradeStatus.UNANSWERED, ""),
        (["odd"], GradeStatus.NEEDS_MARKING, ""),
    ],
)
def test_grading_never_decides(response, status, feedback):
    grade = body(min_words=5, max_words=10).grade({}, response)
    assert (grade.fraction, grade.status) == (Fraction(0), status)
    assert feedback in grade.feedback


def test_not_auto_graded_and_sample_answer():
    q = body(sample_answer="The chain rule, applied layer by layer.", marking_guide="Secret")
    assert getattr(type(q), "auto_graded", True) is False
    assert all(getattr(t, "auto_graded", True) for n, t in QUESTION_TYPES.items() if n != "essay")
    assert q.model_response({}) == "The chain rule, applied layer by layer."
    assert q.describe_answer({}) == "The chain rule, applied layer by layer."
    assert body().model_response({}) is None
    assert body().describe_answer({}) == "(marked by staff)"


def test_accept_and_view():
    q = body(min_words=5, sample_answer="Sample", marking_guide="Guide")
    assert q.accept({}, ["  text  "]) == "  text  "
    assert q.accept({}, [" "]) is None
    with pytest.raises(InvalidSubmission):
        q.accept({}, ["a", "b"])
    view = q.view({})
    assert (view.input, view.extra) == ("essay", {"min_words": 5})
    assert "Sample" not in str(view) and "Guide" not in str(view)
    assert body().view({}).extra == {}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"min_words": 0}, "min_words: must be at least 1"),
        ({"max_words": "many"}, "max_words: expected a whole number"),
        ({"min_words": 10, "max_words": 5}, "max_words: must not be less than min_words"),
        ({"answer": "x"}, "answer: unknown field"),
    ],
)
def test_spec_problems_have_field_paths(spec, expected):
    result, problems = read(**spec)
    assert result is None
    assert any(p.startswith(expected) for p in problems), problems
