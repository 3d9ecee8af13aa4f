"""Every YAML example in docs/question-bank.md is a complete bank file that validates."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "question-bank.md"
FENCE = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _examples() -> list[str]:
    return FENCE.findall(DOC.read_text(encoding="utf-8"))


def test_the_document_has_an_example_of_every_type_and_of_quizzes():
    from quizapp.domain.qtypes import QUESTION_TYPES

    text = "\n".join(_examples())
    for name in QUESTION_TYPES:
        assert f"type: {name}\n" in text, f"no example of {name}"
    for key in (
        "open_for:",
        "closes:",
        "time_limit:",
        "attempts:",
        "grading:",
        "shuffle_questions:",
        "extend_close_for_accommodation:",
        "release:",
        "pool:",
        "draw:",
        "](images/",
    ):
        assert key in text, key
    assert len(_examples()) >= 15


def test_every_example_validates(tmp_path):
    folder = tmp_path / "questions"
    folder.mkdir()
    # The asset example refers to images/conv.png next to its YAML, as in the sample bank.
    shutil.copytree(ROOT / "question_bank" / "questions" / "images", folder / "images")
    for number, example in enumerate(_examples()):
        (folder / f"example-{number:02d}.yaml").write_text(example, encoding="utf-8")
    bank = load_bank(tmp_path)
    assert [str(p) for p in validate_bank(bank, seeds=20)] == []
    assert set(bank.quizzes) == {"doc-quiz", "doc-quiz-fixed-window"}
    assert len(bank.questions) == 18


def test_a_broken_example_would_be_caught(tmp_path):
    """The check above can fail: the same examples with one answer changed do not validate."""
    folder = tmp_path / "questions"
    folder.mkdir()
    shutil.copytree(ROOT / "question_bank" / "questions" / "images", folder / "images")
    for number, example in enumerate(_examples()):
        example = example.replace('answer: "w - lr*g"', 'answer: "w - lr*g/(lr - 0.1)"')
        (folder / f"example-{number:02d}.yaml").write_text(example, encoding="utf-8")
    problems = [str(p) for p in validate_bank(load_bank(tmp_path), seeds=5)]
    assert len(problems) == 1 and "division by zero" in problems[0]
