"""The bank loader: the sample bank is clean; broken files say file:line: field: message."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from quizapp.bank.loader import load_bank

SAMPLE = Path(__file__).resolve().parents[2] / "question_bank"


def test_sample_bank_is_clean_and_realistic():
    bank = load_bank(SAMPLE)
    assert bank.problems == []
    assert len(bank.questions) >= 12
    types = {q.question.type_name for q in bank.questions.values()}
    assert {"single_choice", "multiple_response", "numeric"} <= types
    assert any("$" in q.question.stem for q in bank.questions.values())
    quiz = bank.quizzes["quiz1-foundations"].quiz
    assert quiz.title == "Quiz 1: Foundations"
    assert quiz.window.time_limit == timedelta(minutes=60)
    assert quiz.window.closes_at - quiz.window.opens_at == timedelta(hours=24)


def _bank(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return [str(p) for p in load_bank(tmp_path).problems]


GOOD_Q = """
questions:
  - id: q1
    type: numeric
    stem: What is 1 + 1?
    answer: 2
"""


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"q.yaml": "questions:\n  - id: q1\n    type: numeric\n    stem: [unclosed\n"},
            "q.yaml:4: (yaml):",
        ),
        (
            {"q.yaml": GOOD_Q + "    tolerence: 0.1\n"},
            "q.yaml:7: questions[0].tolerence: unknown field",
        ),
        (
            {"q.yaml": GOOD_Q.replace("answer: 2", "answer: two")},
            "q.yaml:6: questions[0].answer: expected a number",
        ),
        (
            {"a.yaml": GOOD_Q, "b.yaml": GOOD_Q},
            "b.yaml:3: questions[0].id: duplicate id 'q1' (also a.yaml:3)",
        ),
        (
            {"q.yaml": GOOD_Q + "extra: 1\n"},
            "q.yaml:7: extra: unknown field (expected questions or quiz)",
        ),
        (
            {
                "q.yaml": GOOD_Q,
                "quiz.yaml": "quiz:\n  id: z\n  title: Z\n  opens: 2027-01-01 10:00\n  closes: 2027-01-01 09:00\n  slots:\n    - question: q1\n",
            },
            "quiz.yaml:5: quiz.closes: the window closes before it opens",
        ),
        (
            {
                "q.yaml": GOOD_Q,
                "quiz.yaml": "quiz:\n  id: z\n  title: Z\n  opens: 2027-01-01 10:00\n  slots:\n    - question: nope\n",
            },
            "quiz.yaml:6: quiz.slots[0].question: no question with id 'nope'",
        ),
        (
            {
                "q.yaml": GOOD_Q,
                "quiz.yaml": "quiz:\n  id: z\n  title: Z\n  opens: 2027-01-01 10:00\n  slots:\n    - pool: tagless\n      draw: 2\n",
            },
            "quiz.yaml:7: quiz.slots[0].draw: pool 'tagless' has 0 question(s), fewer than the 2 drawn from it",
        ),
        (
            {
                "q.yaml": GOOD_Q,
                "quiz.yaml": "quiz:\n  id: z\n  title: Z\n  opens: 2027-03-28 01:30\n  slots:\n    - question: q1\n",
            },
            "quiz.yaml:4: quiz.opens: 2027-03-28 01:30 does not exist in Europe/London (clocks change)",
        ),
        ({"q.yaml": "questions:\n  - id: a\n    id: b\n"}, "q.yaml:3: (yaml):"),
    ],
)
def test_problems_are_located(tmp_path, files, expected):
    problems = _bank(tmp_path, files)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_of_the_bank_is_reported_in_one_run(tmp_path):
    problems = _bank(
        tmp_path,
        {
            "one.yaml": GOOD_Q.replace("answer: 2", "answer: x"),
            "two.yaml": "questions:\n  - id: Bad Id\n    type: nope\n    stem: s\n",
        },
    )
    assert len(problems) == 3, problems


def test_a_24_hour_window_across_the_clock_change_is_24_real_hours(tmp_path):
    (tmp_path / "q.yaml").write_text(GOOD_Q)
    (tmp_path / "quiz.yaml").write_text(
        "quiz:\n  id: z\n  title: Z\n  opens: 2026-10-24 12:00\n  open_for: 24h\n  slots:\n    - question: q1\n"
    )
    quiz = load_bank(tmp_path).quizzes["z"].quiz
    opens, closes = quiz.window.opens_at, quiz.window.closes_at
    assert opens == datetime(2026, 10, 24, 11, 0, tzinfo=UTC)  # 12:00 BST
    assert closes.timestamp() - opens.timestamp() == 24 * 3600
    # Shown in London time the close is 11:00 GMT: the clocks went back overnight.
    assert closes.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M %Z") == "11:00 GMT"


QUIZ_WITH_RELEASE = (
    "quiz:\n  id: z\n  title: Z\n  opens: 2027-01-01 10:00\n"
    "  release:\n    marks: immediately\n    question_marks: {value}\n"
    "  slots:\n    - question: q1\n"
)


def test_a_quiz_may_show_marks_per_question_with_the_total(tmp_path):
    from quizapp.domain.release import QuestionMarks

    (tmp_path / "q.yaml").write_text(GOOD_Q)
    (tmp_path / "quiz.yaml").write_text(QUIZ_WITH_RELEASE.format(value="with_total"))
    bank = load_bank(tmp_path)
    assert bank.problems == []
    assert bank.quizzes["z"].quiz.release.question_marks is QuestionMarks.WITH_TOTAL


def test_an_unknown_question_marks_value_is_located(tmp_path):
    problems = _bank(
        tmp_path, {"q.yaml": GOOD_Q, "quiz.yaml": QUIZ_WITH_RELEASE.format(value="always")}
    )
    assert any(
        p.startswith("quiz.yaml:7: quiz.release.question_marks: must be one of") for p in problems
    ), problems
