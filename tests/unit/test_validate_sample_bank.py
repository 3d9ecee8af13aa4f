"""The sample bank is clean for 200 seeds: the property test behind `bank validate` in CI.

For every sample question and seeds 0..199 (and every parameter combination of its
calculated questions), the model answer scores full marks, also when typed into the form;
no listed wrong answer does; stems, options and feedback render; images exist; and every
quiz can be filled for every seed.
"""

from __future__ import annotations

from pathlib import Path

from quizapp.bank.loader import load_bank
from quizapp.bank.preview import auto_graded
from quizapp.bank.validate import validate_bank
from quizapp.domain.qtypes import QUESTION_TYPES

SAMPLE = Path(__file__).resolve().parents[2] / "question_bank"
QUIZ2 = "quiz2-gradients-and-shapes"


def test_every_sample_question_is_sound_for_200_seeds():
    bank = load_bank(SAMPLE)
    assert bank.ok, bank.problems
    assert [str(p) for p in validate_bank(bank, seeds=200)] == []


def test_quiz2_uses_every_question_type_in_its_window():
    bank = load_bank(SAMPLE)
    loaded = bank.quizzes[QUIZ2]
    quiz = loaded.quiz
    assert quiz.title == "Quiz 2: Gradients and shapes"
    assert quiz.window.opens_at.isoformat() == "2027-01-25T10:00:00+00:00"  # GMT in January
    assert (quiz.window.closes_at - quiz.window.opens_at).total_seconds() == 24 * 3600
    assert quiz.window.time_limit is not None and quiz.window.time_limit.total_seconds() == 3600
    assert quiz.release.marks.when.value == "immediately"
    types = {
        bank.questions[key].question.type_name for plan in loaded.slots for key in plan.candidates
    }
    assert types == set(QUESTION_TYPES)
    essays = [
        plan
        for plan in loaded.slots
        if not auto_graded(bank.questions[plan.candidates[0]].question)
    ]
    assert len(essays) == 1 and essays[0].marks == 5
    assert sum(p.marks for p in loaded.slots) == 26


def test_the_validator_would_catch_a_slip_in_the_sample_bank(tmp_path):
    """Not vacuous: a slip in one hand-checked answer (L = 16, forgetting the 1/2, which is
    a listed wrong answer) makes the same check fail, at the question's position."""
    import shutil

    shutil.copytree(SAMPLE, tmp_path / "bank")
    path = tmp_path / "bank" / "questions" / "gradients.yaml"
    text = path.read_text()
    assert text.count("        answer: 8\n") == 1
    path.write_text(text.replace("        answer: 8\n", "        answer: 16\n"))
    problems = [str(p) for p in validate_bank(load_bank(tmp_path / "bank"), seeds=3)]
    assert len(problems) == 1
    assert problems[0].startswith("questions/gradients.yaml:")
    assert "questions[2].wrong_answers: seed 0: the wrong answer " in problems[0]
