"""`quizapp bank validate` beyond loading: every problem at its file, line and field."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from quizapp.bank.loader import load_bank
from quizapp.bank.validate import markdown_fields, validate_bank, validate_question

BROKEN = Path(__file__).resolve().parents[1] / "data" / "broken_bank"


@pytest.fixture(scope="module")
def broken() -> list[str]:
    bank = load_bank(BROKEN)
    assert bank.ok, bank.problems  # everything below is invisible to the loader
    return [str(p) for p in validate_bank(bank, seeds=20)]


def _one(problems: list[str], prefix: str) -> str:
    found = [p for p in problems if p.startswith(prefix)]
    assert len(found) == 1, (prefix, problems)
    return found[0]


@pytest.mark.parametrize(
    ("prefix", "fragment"),
    [
        ("questions/broken.yaml:13: questions[1].stem: ", "'images/missing.png' not found"),
        ("questions/broken.yaml:21: questions[2].stem: ", "outside the bank folder"),
        (
            "questions/broken.yaml:31: questions[3].options[1].text: ",
            r"cannot render maths $\left( x$",
        ),
        (
            "questions/broken.yaml:33: questions[3].options[2].feedback: ",
            r"cannot render maths $\sqrt$",
        ),
        ("questions/broken.yaml:35: questions[4]: ", "two options render the same"),
        (
            "questions/broken.yaml:48: questions[5].wrong_answers: ",
            "the wrong answer 'x + x' scores full marks",
        ),
        (
            "questions/broken.yaml:55: questions[6].wrong_answers: ",
            "the wrong answer '0.333' scores full marks",
        ),
        (
            "questions/broken.yaml:57: questions[7]: ",
            "cannot be computed for a = 3, b = 3: division by zero",
        ),
        ("questions/broken.yaml:68: questions[8].stem: ", "{{c}} is not a parameter"),
        ("questions/broken.yaml:74: questions[9]: ", "5 words (at least 20 asked)"),
        ("quizzes/quiz.yaml:3: quiz.slots: ", "seed 0: slot 3 has no question left to draw"),
    ],
)
def test_each_problem_is_reported_once_where_it_is(broken, prefix, fragment):
    assert fragment in _one(broken, prefix)


def test_feedback_images_must_be_local_raster_files(broken):
    feedback = [
        p for p in broken if p.startswith("questions/broken.yaml:23: questions[2].feedback: ")
    ]
    assert len(feedback) == 2
    assert any("'https://example.com/a.png' is not in the bank" in p for p in feedback)
    assert any("'images/diagram.svg'" in p and "SVG can carry script" in p for p in feedback)


def test_clean_questions_have_no_problems_and_nothing_else_is_reported(broken):
    assert not [p for p in broken if "questions[0]" in p]  # an existing image is fine
    assert not [p for p in broken if "questions[1" in p and "questions[1]" not in p]  # pooled-a/b
    assert len(broken) == 13


def test_a_recurring_problem_says_how_often(broken):
    # 1/(a - b) with a in {1, 2, 3} and b in {3, 4}: only a = 3, b = 3 breaks, and every
    # combination is checked on top of the seeds, so it is found even if no seed drew it.
    line = _one(broken, "questions/broken.yaml:57: ")
    assert "more of 26 variants checked" in line  # 20 seeds + 6 combinations
    assert "no model answer" not in " ".join(broken)  # the degenerate variant already says why


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "q.yaml"
    path.write_text(textwrap.dedent(text))
    return tmp_path


def test_a_calculated_question_whose_model_answer_loses_marks_is_reported(tmp_path):
    # Exact answers with zero tolerance and 2 significant figures: 1/3 → "0.33" is not 1/3.
    bank = load_bank(
        _write(
            tmp_path,
            """
            questions:
              - id: thirds
                type: calculated
                stem: What is $1/{{n}}$?
                parameters:
                  n: {values: [2, 3]}
                answer: "1/n"
                significant_figures: 2
            """,
        )
    )
    assert bank.ok, bank.problems
    problems = [str(p) for p in validate_question(bank.questions["thirds"], seeds=5, base=tmp_path)]
    assert len(problems) == 1
    assert problems[0].startswith("q.yaml:3: questions[0]: ")
    assert "for n = 3 the answer 0.33 does not score full marks" in problems[0]


def test_maths_in_a_calculated_stem_is_checked_after_substitution(tmp_path):
    bank = load_bank(
        _write(
            tmp_path,
            """
            questions:
              - id: roots
                type: calculated
                stem: |
                  What is $\\sqrt{ {{n}} }$ and $\\left( {{n}}$?
                parameters:
                  n: {values: [4, 9]}
                answer: "sqrt(n)"
                tolerance: 0
            """,
        )
    )
    problems = [str(p) for p in validate_bank(bank, seeds=3)]
    assert len(problems) == 1
    assert problems[0].startswith(
        "q.yaml:5: questions[0].stem: seed 0: cannot render maths $\\left( 9$"
    )
    assert "(and 4 more of 5 variants checked)" in problems[0]  # 3 seeds + 2 values, all broken


def test_the_model_answer_must_survive_the_form(tmp_path):
    """A matching answer is entered as one choice per left: the round trip must score 1."""
    bank = load_bank(
        _write(
            tmp_path,
            """
            questions:
              - id: m
                type: matching
                stem: Match.
                pairs:
                  - {left: a, right: "1"}
                  - {left: b, right: "2"}
            """,
        )
    )
    assert validate_bank(bank, seeds=10) == []


def test_markdown_fields_skip_accepted_answers_but_keep_their_feedback():
    spec = {
        "stem": "S",
        "answers": [{"text": "$5", "feedback": "F"}],
        "parts": [{"label": "L", "answers": [{"text": "x"}]}],
        "items": ["I0", "I1"],
        "answer": "2*x",
    }
    assert dict(markdown_fields(spec)) == {
        ("stem",): "S",
        ("answers", 0, "feedback"): "F",
        ("parts", 0, "label"): "L",
        ("items", 0): "I0",
        ("items", 1): "I1",
    }


def test_validation_never_crashes_on_a_question_type_that_raises(tmp_path, monkeypatch):
    bank = load_bank(
        _write(tmp_path, "questions:\n  - {id: n, type: numeric, stem: S, answer: 1}\n")
    )
    body = type(bank.questions["n"].question.body)

    def boom(self, variant):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaputt")

    monkeypatch.setattr(body, "describe_answer", boom)
    problems = [str(p) for p in validate_bank(bank, seeds=4)]
    # (a question without random parts has one variant: no "and 3 more of 4" count)
    assert problems == ["q.yaml:2: questions[0]: seed 0: checking raised RuntimeError: kaputt"]


def test_a_single_file_bank_resolves_images_next_to_it(tmp_path):
    shutil.copytree(BROKEN / "questions" / "images", tmp_path / "images")
    path = tmp_path / "one.yaml"
    path.write_text(
        "questions:\n  - id: a\n    type: numeric\n    answer: 1\n"
        "    stem: '![k](images/ok.png) and ![m](images/nope.png)'\n"
    )
    problems = [str(p) for p in validate_bank(load_bank(path), seeds=1)]
    assert problems == [
        "one.yaml:5: questions[0].stem: image 'images/nope.png' not found "
        "(looked for images/nope.png)"
    ]
