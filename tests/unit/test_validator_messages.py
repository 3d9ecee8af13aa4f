"""The validator's messages say what is wrong once, where it is (issue 15): a broken
question is not also "no question with id" in the quiz that uses it, a bad indentation is
one located sentence, and a question with one variant is not "and 49 more of 50"."""

from __future__ import annotations

from pathlib import Path

from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank

QUIZ = """\
quiz:
  id: q
  title: Q
  opens: 2027-01-25 10:00
  slots:
    - question: a
    - question: b
    - question: c
"""
GOOD = """\
  - id: {key}
    type: numeric
    stem: How many?
    answer: 3
"""


def _shown(root: Path, seeds: int = 5) -> list[str]:
    return [str(p) for p in validate_bank(load_bank(root), seeds=seeds)]


def test_a_broken_question_is_not_also_missing_from_the_quiz(tmp_path: Path) -> None:
    (tmp_path / "quiz.yaml").write_text(QUIZ, encoding="utf-8")
    broken = GOOD.format(key="b").replace("answer: 3", "answer: three")
    text = "questions:\n" + GOOD.format(key="a") + broken + GOOD.format(key="c")
    (tmp_path / "questions.yaml").write_text(text, encoding="utf-8")
    shown = _shown(tmp_path)
    assert not any("no question with id" in s for s in shown), shown
    assert shown == [
        "questions.yaml:9: questions[1].answer: expected a number, got 'three'",
        "quiz.yaml:5: quiz.slots: uses 1 question(s) with problems reported above: "
        "'b' (questions.yaml:6)",
    ]


def test_a_missing_question_is_still_reported_as_missing(tmp_path: Path) -> None:
    (tmp_path / "quiz.yaml").write_text(QUIZ, encoding="utf-8")
    text = "questions:\n" + GOOD.format(key="a") + GOOD.format(key="c")
    (tmp_path / "questions.yaml").write_text(text, encoding="utf-8")
    assert _shown(tmp_path) == ["quiz.yaml:7: quiz.slots[1].question: no question with id 'b'"]


def test_a_bad_indentation_is_one_located_sentence(tmp_path: Path) -> None:
    (tmp_path / "quiz.yaml").write_text(QUIZ, encoding="utf-8")
    text = "questions:\n" + GOOD.format(key="a") + GOOD.format(key="b") + GOOD.format(key="c")
    text = text.replace("    answer: 3\n  - id: b", "     answer: 3\n  - id: b")
    (tmp_path / "questions.yaml").write_text(text, encoding="utf-8")
    shown = _shown(tmp_path)
    assert len(shown) == 2, shown
    assert shown[0] == (
        "questions.yaml:5: (yaml): bad indentation: this line ('answer: 3') does not line up "
        "with the lines above it; the fields of one question (or one list item) must start "
        "in the same column"
    )
    # The quiz's slots say once that their questions are in the unreadable file.
    assert shown[1].startswith("quiz.yaml:5: quiz.slots: uses 3 question(s) with problems")
    assert "questions.yaml, which could not be read" in shown[1]


def test_a_question_without_random_parts_is_reported_once(tmp_path: Path) -> None:
    text = "questions:\n" + GOOD.format(key="a").replace(
        "answer: 3", "answer: 3\n    wrong_answers: [3]"
    )
    (tmp_path / "questions.yaml").write_text(text, encoding="utf-8")
    assert _shown(tmp_path, seeds=50) == [
        "questions.yaml:6: questions[0].wrong_answers: seed 0: the wrong answer '3' "
        "scores full marks"
    ]
