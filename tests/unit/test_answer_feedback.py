"""Listed wrong answers with their own feedback and optional partial credit (issue 15):
numeric, calculated, matrix/vector and algebraic questions; the validator proves each
listed answer earns its stated fraction and shows its feedback."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank
from quizapp.domain.qtypes import QUESTION_TYPES
from quizapp.domain.qtypes.base import GradeStatus, QuestionType
from quizapp.domain.spec import SpecReader


def _read(spec: dict[str, Any]) -> QuestionType:
    reader = SpecReader(spec)
    body = QUESTION_TYPES[spec.pop("type")].read(reader)
    assert not reader.problems, reader.problems.items
    return body


NUMERIC = {
    "type": "numeric",
    "answer": 9.81,
    "tolerance": 0.01,
    "wrong_answers": [
        98.1,
        {"answer": 981, "relative_tolerance": 0.01, "feedback": "Check your units."},
        {"answer": 9.7, "tolerance": 0.05, "fraction": 0.5, "feedback": "Rounded too early."},
    ],
}


@pytest.mark.parametrize(
    ("typed", "fraction", "status", "feedback"),
    [
        ("9.81", 1, GradeStatus.CORRECT, ""),
        ("985", 0, GradeStatus.INCORRECT, "Check your units."),
        ("9.68", Fraction(1, 2), GradeStatus.PARTIAL, "Rounded too early."),
        ("98.1", 0, GradeStatus.INCORRECT, ""),  # a plain distractor: no feedback
        ("1", 0, GradeStatus.INCORRECT, ""),
    ],
)
def test_numeric_listed_answers(typed: str, fraction: Any, status: GradeStatus, feedback: str):
    grade = _read(dict(NUMERIC)).grade({}, typed)
    assert (grade.fraction, grade.status, grade.feedback) == (fraction, status, feedback)


SHAPE = {
    "type": "matrix",
    "answer": [3, 4],
    "wrong_answers": [
        {"answer": [4, 3], "feedback": "Rows and columns swapped?"},
        {"answer": [1, 3, 4], "fraction": 0.5, "feedback": "No batch axis for one image."},
    ],
}


@pytest.mark.parametrize(
    ("typed", "fraction", "feedback"),
    [
        ("[3, 4]", 1, ""),
        ("[4, 3]", 0, "Rows and columns swapped?"),
        ("4\n3", 0, "Rows and columns swapped?"),  # typed as a column
        ("1×3×4", Fraction(1, 2), "No batch axis for one image."),  # another shape
        ("[3, 5]", 0, ""),
        ("3 4 5 6", 0, "Expected a vector of 2 entries, got 4 entries."),
    ],
)
def test_matrix_shape_hints(typed: str, fraction: Any, feedback: str):
    grade = _read(dict(SHAPE)).grade({}, typed)
    assert (grade.fraction, grade.feedback) == (fraction, feedback)


def test_per_element_scoring_keeps_its_score_when_no_fraction_is_given():
    body = _read(
        {
            "type": "matrix",
            "answer": [[1, 2], [3, 4]],
            "scoring": "per_element",
            "wrong_answers": [{"answer": [[1, 2], [4, 3]], "feedback": "Row 2 is reversed."}],
        }
    )
    grade = body.grade({}, "1 2; 4 3")
    assert (grade.fraction, grade.feedback) == (Fraction(1, 2), "Row 2 is reversed.")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"answer": 3}, "give feedback: and/or fraction:"),
        ({"answer": 3, "fraction": 1, "feedback": "x"}, "less than 1"),
        ({"answer": 3, "feedback": "x", "fraktion": 0.5}, "unknown field"),
        ({"feedback": "x"}, "is required"),
    ],
)
def test_a_listed_answer_is_checked_when_read(entry: dict[str, Any], message: str):
    reader = SpecReader({"answer": 1, "wrong_answers": [entry]})
    QUESTION_TYPES["numeric"].read(reader)
    assert any(message in str(p) for p in reader.problems.items), reader.problems.items


BANK = """\
questions:
  - id: n
    type: numeric
    stem: g?
    answer: 9.81
    tolerance: 0.01
    wrong_answers:
      - {answer: 9.8, fraction: 0.5, feedback: Two decimals.}
      - {answer: 98, tolerance: 1, fraction: 0.5, feedback: Units.}
      - {answer: 98.5, fraction: 0.25, feedback: Never seen.}
  - id: m
    type: matrix
    stem: Shape?
    answer: [3, 4]
    wrong_answers:
      - {answer: [4, 3], fraction: 0.25, feedback: Swapped.}
"""


def test_the_validator_proves_fractions_and_feedback(tmp_path: Path):
    (tmp_path / "q.yaml").write_text(BANK, encoding="utf-8")
    shown = [str(p) for p in validate_bank(load_bank(tmp_path), seeds=3)]
    assert shown == [
        # Within the question's tolerance of 9.81: right, not half right.
        "q.yaml:7: questions[0].wrong_answers: seed 0: the wrong answer '9.8' scores full marks",
        # Caught by the entry above it (98 ± 1).
        "q.yaml:10: questions[0].wrong_answers[2]: seed 0: the listed answer '98.5' "
        "does not get its feedback (an earlier listed answer catches it first?)",
        "q.yaml:10: questions[0].wrong_answers[2]: seed 0: the listed answer '98.5' "
        "scores 1/2, not its fraction 1/4",
    ]


DERIVATIVE = {
    "type": "algebraic",
    "answer": "sigma(x)*(1 - sigma(x))",
    "variables": ["x"],
    "wrong_answers": [
        "sigma(x)",
        {"answer": "sigma(x)^2", "fraction": 0.25, "feedback": "Check the chain rule."},
        {"answer": "1/x", "feedback": "That is the derivative of log(x)."},
    ],
}


@pytest.mark.parametrize(
    ("typed", "fraction", "feedback"),
    [
        ("sigma(x) - sigma(x)^2", 1, ""),
        ("sigma(x)*sigma(x)", Fraction(1, 4), "Check the chain rule."),
        ("x^-1", 0, "That is the derivative of log(x)."),  # undefined at 0: still matches
        ("sigma(x)", 0, ""),
    ],
)
def test_algebraic_listed_expressions(typed: str, fraction: Any, feedback: str):
    grade = _read(dict(DERIVATIVE)).grade({}, typed)
    assert (grade.fraction, grade.feedback) == (fraction, feedback)


STEP = {
    "type": "calculated",
    "parameters": {"lr": {"values": [0.1, 0.5]}, "g": {"values": [2, 4]}},
    "answer": "-lr * g",
    "tolerance": 0.001,
    "wrong_answers": [
        "lr * g",
        {"answer": "-g", "fraction": 0.25, "feedback": "Multiply by the learning rate."},
    ],
}


def test_calculated_listed_formulas_are_valued_per_variant():
    body = _read(dict(STEP))
    variant = {"params": {"lr": "0.5", "g": "4"}}
    grade = body.grade(variant, "-4")
    assert (grade.fraction, grade.feedback) == (Fraction(1, 4), "Multiply by the learning rate.")
    assert body.grade(variant, "2").feedback == ""  # lr * g: a plain distractor
    [listed] = body.listed_answers(variant)  # type: ignore[attr-defined]
    assert (listed.index, listed.response, listed.fraction) == (1, "-4", Fraction(1, 4))
