"""GIFT → YAML bank: Moodle's own GIFT test files convert, and the bank validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from quizapp.bank.formats.gift import read_gift
from quizapp.bank.formats.yaml_writer import write_bank
from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank

DATA = Path(__file__).resolve().parent.parent / "data" / "gift"


@pytest.mark.parametrize("fixture", sorted(DATA.glob("*.txt")), ids=lambda p: p.name)
def test_moodles_gift_fixtures_convert_into_a_bank_that_validates(
    fixture: Path, tmp_path: Path
) -> None:
    converted = read_gift(fixture.read_bytes(), fixture.name)
    write_bank(converted, tmp_path)
    bank = load_bank(tmp_path)
    assert bank.problems == []
    assert validate_bank(bank, seeds=5) == []
    assert len(bank.questions) == len(converted.questions) > 0


def specs(text: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {q.spec["id"]: q.spec for q in read_gift(text.encode()).questions}


def test_every_documented_answer_block() -> None:
    got = specs(
        """// comment
$CATEGORY: $course$/top/Week 1

::Essay:: Explain {}

::TF:: The sky is blue {T#No, it is.#Yes.}

::Num:: Pi to two places? {#3.14:0.005}

::Range:: A number from 1 to 5 {#1..5}

::Pick:: Which? {=right#good ~wrong#bad ~%50%half}

::Many:: Which? {~%50%a ~%50%b ~%-100%c}

::Pairs:: Match {=cat -> mammal =frog -> amphibian = -> insect}

::Words:: Name it {=Paris =%50%paris france =Par*}

::Escapes:: a \\{b\\} c\\: d\\=e {=x\\~y}
"""
    )
    assert got["essay"]["type"] == "essay" and got["essay"]["tags"] == ["week-1"]
    assert got["tf"] | {} == {
        "id": "tf",
        "type": "true_false",
        "title": "TF",
        "tags": ["week-1"],
        "stem": "The sky is blue",
        "answer": True,
        "feedback_false": "No, it is.",
        "feedback_true": "Yes.",
    }
    assert (got["num"]["answer"], got["num"]["tolerance"]) == (3.14, 0.005)
    assert (got["range"]["answer"], got["range"]["tolerance"]) == (3, 2)
    assert got["pick"]["options"] == [
        {"text": "right", "correct": True, "feedback": "good"},
        {"text": "wrong", "feedback": "bad"},
        {"text": "half", "fraction": 0.5},
    ]
    assert got["many"]["type"] == "multiple_response"
    assert [o.get("correct", False) for o in got["many"]["options"]] == [True, True, False]
    assert got["pairs"]["pairs"][1] == {"left": "frog", "right": "amphibian"}
    assert got["pairs"]["distractors"] == ["insect"]
    assert got["words"]["answers"] == [
        {"text": "Paris"},
        {"text": "paris france", "fraction": 0.5},
        {"pattern": "Par.*"},
    ]
    assert got["escapes"]["stem"] == "a {b} c: d=e"
    assert got["escapes"]["answers"] == [{"text": "x~y"}]


def test_what_does_not_map_is_reported_with_its_line() -> None:
    converted = read_gift(
        b"::Ok:: fine {T}\n\n\n::NoBlock:: no answers here\n\n::Bad:: {=%50%half}\n"
    )
    assert [q.spec["id"] for q in converted.questions] == ["ok"]
    assert [(n.line, n.question, n.skipped) for n in converted.notes] == [
        (4, "NoBlock", True),
        (6, "Bad", True),
    ]
    assert converted.report_lines()[0].startswith("questions.gift:4: NoBlock: not converted:")
