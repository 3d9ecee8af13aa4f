"""The documented examples of issue 15's formats mean what docs/question-bank.md says."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "question-bank.md"
FENCE = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _example(question_id: str) -> str:
    found = [e for e in FENCE.findall(DOC.read_text(encoding="utf-8")) if question_id in e]
    assert len(found) == 1, question_id
    return found[0]


def _load(tmp_path: Path, text: str):
    (tmp_path / "example.yaml").write_text(text, encoding="utf-8")
    bank = load_bank(tmp_path)
    assert bank.ok, bank.problems
    return bank


def test_the_partial_order_example_accepts_both_places_of_zeroing(tmp_path):
    bank = _load(tmp_path, _example("id: doc-ordering-partial"))
    assert validate_bank(bank, seeds=50) == []
    body = bank.questions["doc-ordering-partial"].question.body
    zero, forward, loss, backward, step = "0", "1", "2", "3", "4"
    # The two orders of the issue, and zeroing after the loss: all correct.
    for order in (
        [zero, forward, loss, backward, step],
        [forward, zero, loss, backward, step],
        [forward, loss, zero, backward, step],
    ):
        assert body.grade({}, order).fraction == 1
    # The fractions the text states: 8 precedences, 7/8 and 3/4.
    assert len(body.precedences) == 8
    assert body.grade({}, [forward, loss, backward, zero, step]).fraction == Fraction(7, 8)
    assert body.grade({}, [forward, loss, backward, step, zero]).fraction == Fraction(3, 4)


def test_the_integer_example_needs_its_floor(tmp_path):
    text = _example("id: doc-calculated-integer")
    assert validate_bank(_load(tmp_path, text), seeds=50) == []
    broken = text.replace('"floor((W + 2*p - k)/s) + 1"', '"(W + 2*p - k)/s + 1"')
    assert broken != text
    problems = [str(p) for p in validate_bank(_load(tmp_path, broken), seeds=50)]
    assert len(problems) == 1, problems
    assert problems[0].startswith("example.yaml:13: questions[0].answer: seed ")
    assert "integer: true, but for W = " in problems[0]
    assert ", not a whole number (and " in problems[0]


def test_the_documented_function_values(tmp_path):
    from quizapp.domain.expressions import parse_expression

    doc = DOC.read_text(encoding="utf-8")
    for text, value in [
        ("floor(-0.5)", -1),
        ("ceil(-0.5)", 0),
        ("round(1234.5, -2)", 1200),
        ("round(2.5)", 3),
        ("round(-2.5)", -3),
        ("round(2.675, 2)", Fraction(268, 100)),
        ("mod(-7, 3)", 2),
        ("floor(sqrt(2)*10)", 14),
    ]:
        assert f"`{text}`" in doc, text
        assert parse_expression(text).evaluate() == value, text
