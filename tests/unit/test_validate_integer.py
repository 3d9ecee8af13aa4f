"""`integer: true` on a calculated answer: proven for every variant, or reported at file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

CONV = """
questions:
  - id: conv-out
    type: calculated
    stem: Width {{{{W}}}}, padding {{{{p}}}}, kernel {{{{k}}}}, stride {{{{s}}}}. Output width?
    parameters:
      W: {{range: [28, 32]}}
      p: {{values: [0, 1]}}
      k: {{values: [3, 5]}}
      s: {{values: [1, 2]}}
    answer: "{answer}"
    integer: true
    tolerance: 0
"""


def _problems(tmp_path: Path, answer: str, seeds: int = 50, exhaustive: bool = True) -> list[str]:
    text = CONV.format(answer=answer)
    if not exhaustive:  # more combinations than the validator tries one by one
        text = text.replace("W: {range: [28, 32]}", "W: {range: [28, 3000]}")
        text = text.replace("p: {values: [0, 1]}", "p: {range: [0, 9]}")
    (tmp_path / "q.yaml").write_text(textwrap.dedent(text))
    bank = load_bank(tmp_path)
    assert bank.ok, bank.problems
    return [str(p) for p in validate_bank(bank, seeds=seeds)]


def test_a_formula_that_is_not_always_whole_is_reported_at_the_answer_line(tmp_path):
    problems = _problems(tmp_path, "(W + 2*p - k)/s + 1")
    assert len(problems) == 1, problems
    line = problems[0]
    assert line.startswith("q.yaml:11: questions[0].answer: seed ")
    assert "integer: true, but for W = " in line
    assert "not a whole number" in line
    assert ".5, not a whole number" in line  # e.g. 14.5
    assert "more of " in line  # reported once, with how often


def test_the_first_failing_seed_and_its_values_are_named(tmp_path):
    from quizapp.bank.preview import question_variant

    line = _problems(tmp_path, "(W + 2*p - k)/s + 1", exhaustive=False)[0]
    seed = int(line.split(": seed ")[1].split(":")[0])
    bank = load_bank(tmp_path)
    question = bank.questions["conv-out"].question
    for earlier in range(seed):
        assert question.body.integer_problem(question_variant(question, earlier)) is None
    failing = question_variant(question, seed)
    message = question.body.integer_problem(failing)
    assert message is not None and message in line
    for name, value in failing["params"].items():
        assert f"{name} = {value}" in line


def test_floor_makes_it_whole_and_the_question_validates(tmp_path):
    assert _problems(tmp_path, "floor((W + 2*p - k)/s) + 1") == []
    assert _problems(tmp_path, "floor((W + 2*p - k)/s) + 1", exhaustive=False) == []


def test_without_integer_nothing_is_claimed(tmp_path):
    text = textwrap.dedent(CONV.format(answer="(W + 2*p - k)/s + 1"))
    (tmp_path / "q.yaml").write_text(text.replace("    integer: true\n", ""))
    assert validate_bank(load_bank(tmp_path), seeds=20) == []


def _read(**spec):
    problems = Problems()
    data = {
        "id": "q",
        "stem": "S",
        "type": "calculated",
        "parameters": {"n": {"values": [1, 2]}},
        "answer": "n/2",
        **spec,
    }
    question = read_question(data, (), problems)
    return question, [str(p) for p in problems.items]


def test_integer_must_be_true_or_false():
    question, problems = _read(integer="yes")
    assert question is None
    assert problems == ["integer: expected true or false, got the text 'yes'"]


def test_integer_problem_per_variant():
    question, problems = _read(integer=True)
    assert problems == []
    body = question.body
    assert body.integer_problem({"params": {"n": "2"}}) is None
    assert body.integer_problem({"params": {"n": "1"}}) == (
        "integer: true, but for n = 1 the answer is 0.5, not a whole number"
    )
    assert body.integer_problem({"params": {}}) is None  # no answer: render_problems says why
    unclaimed, _ = _read()
    assert unclaimed.body.integer_problem({"params": {"n": "1"}}) is None
