"""Ordering with a partial order: `before:` chains, every valid order correct, precedences."""

from __future__ import annotations

import random
import textwrap
from fractions import Fraction

import pytest

from quizapp.bank.loader import load_bank
from quizapp.bank.validate import validate_bank
from quizapp.domain.qtypes.base import GradeStatus
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

# zero_grad may come first, or after the forward pass or the loss, but before backward.
ITEMS = [
    {"id": "zero", "text": "zero the gradients"},
    {"id": "forward", "text": "forward pass"},
    {"id": "loss", "text": "compute loss"},
    {"id": "backward", "text": "backward pass"},
    {"id": "step", "text": "update weights"},
]
BEFORE = [["forward", "loss", "backward", "step"], ["zero", "backward"]]
# Precedences: forward<loss, forward<backward, forward<step, loss<backward, loss<step,
# backward<step, zero<backward, zero<step: 8.


def read(**spec):
    problems = Problems()
    question = read_question({"id": "q", "stem": "Stem", "type": "ordering", **spec}, (), problems)
    return (question.body if question else None), [str(p) for p in problems.items]


def body(**spec):
    result, problems = read(**{"items": ITEMS, "before": BEFORE, **spec})
    assert not problems, problems
    return result


def keys(*indices):
    return [str(i) for i in indices]


@pytest.mark.parametrize(
    ("order", "fraction"),
    [
        (keys(0, 1, 2, 3, 4), Fraction(1)),  # the model answer
        (keys(1, 0, 2, 3, 4), Fraction(1)),  # zeroing after the forward pass
        (keys(1, 2, 0, 3, 4), Fraction(1)),  # ... or after the loss
        (keys(1, 2, 3, 0, 4), Fraction(7, 8)),  # too late: zero<backward broken
        (keys(1, 2, 3, 4, 0), Fraction(6, 8)),  # zero<backward and zero<step broken
        (keys(0, 2, 1, 3, 4), Fraction(7, 8)),  # forward<loss broken
        (keys(4, 3, 2, 1, 0), Fraction(0)),
        (["0", "1", None, "3", "4"], Fraction(5, 8)),  # the 3 precedences of loss lost
        (keys(0, 1, 2, 3, 3), Fraction(1, 8)),  # backward twice keeps none of its 5
    ],
)
def test_precedences_scoring(order, fraction):
    assert body().grade({}, order).fraction == fraction


def test_all_or_nothing_accepts_every_valid_order():
    q = body(scoring="all_or_nothing")
    assert q.grade({}, keys(1, 2, 0, 3, 4)).status is GradeStatus.CORRECT
    assert q.grade({}, keys(1, 2, 3, 0, 4)).fraction == 0


def test_precedences_on_a_single_order_counts_every_pair():
    q, problems = read(items=["a", "b", "c", "d"], scoring="precedences")
    assert not problems
    assert q.grade({}, keys(0, 1, 2, 3)).fraction == 1
    assert q.grade({}, keys(1, 0, 2, 3)).fraction == Fraction(5, 6)
    assert q.grade({}, keys(3, 0, 1, 2)).fraction == Fraction(3, 6)


def test_the_single_order_form_is_unchanged():
    plain, problems = read(items=["a", "b", "c"])
    assert not problems and plain.scoring == "adjacent_pairs" and plain.precedences == ()
    assert plain.grade({}, keys(1, 2, 0)).fraction == Fraction(1, 2)
    # Items with ids but no before: still one order, the same variants as plain text.
    named, problems = read(items=[{"id": x, "text": x} for x in "abc"])
    assert not problems and named.items == plain.items
    for seed in range(20):
        rng_a, rng_b = random.Random(seed), random.Random(seed)
        assert plain.make_variant(rng_a) == named.make_variant(rng_b)


def test_variants_never_show_a_valid_order_and_the_model_round_trips():
    for scoring in ("precedences", "all_or_nothing"):
        q = body(scoring=scoring)
        for seed in range(200):
            variant = q.make_variant(random.Random(seed))
            assert q.grade(variant, variant["order"]).fraction < 1
            values = q.form_values(variant, q.model_response(variant))
            assert q.grade(variant, q.accept(variant, values)).status is GradeStatus.CORRECT
            assert all(q.grade(variant, w).fraction == 0 for w in q.wrong_responses(variant))


def test_the_answer_names_the_direct_constraints():
    text = body().describe_answer({})
    assert text.startswith("zero the gradients → forward pass → compute loss → ")
    assert "(or any order with zero the gradients before backward pass, " in text
    assert "forward pass before backward pass" not in text  # implied through compute loss
    assert "<code>" in body(
        items=[{"id": "a", "text": "`a`"}, {"id": "b", "text": "b"}], before=[["a", "b"]]
    ).describe_answer_html({})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"before": [["forward", "lose"]]}, "before[0][1]: unknown item id 'lose' (ids: "),
        ({"before": [["forward"]]}, "before[0]: expected a list of at least 2 item ids"),
        ({"before": "forward"}, "before: expected a list"),
        ({"before": []}, "before: needs at least 1 item"),
        ({"before": [["zero", "zero"]]}, "before[0]: 'zero' cannot come before itself"),
        (
            {"before": [*BEFORE, ["step", "forward"]]},
            "before[0]: the constraints form a cycle, forward → loss → backward → step → "
            "forward: no order can keep them all",
        ),
        (
            {"before": [["loss", "forward"], ["forward", "backward", "step"], ["zero", "loss"]]},
            "before[0]: items lists 'forward' before 'loss', but this constraint puts 'loss'",
        ),
        (
            {"before": [["forward", "loss", "backward", "step"]]},
            "items[0]: is in no constraint of before",
        ),
        ({"scoring": "adjacent_pairs"}, "scoring: with before: use precedences or all_or_nothing"),
        ({"scoring": "positions"}, "scoring: with before: use precedences or all_or_nothing"),
        ({"items": [*ITEMS, "log the loss"]}, "items[5]: is in no constraint of before"),
        ({"items": [*ITEMS[:4], {"id": "loss", "text": "x"}]}, "items[4].id: two items have"),
        ({"items": [*ITEMS[:4], {"id": "a b", "text": "x"}]}, "items[4].id: use letters"),
        ({"items": [*ITEMS[:4], {"id": "step"}]}, "items[4].text: is required"),
        ({"items": [*ITEMS[:4], {"id": "s", "text": "x", "w": 1}]}, "items[4].w: unknown field"),
        ({"items": ITEMS[:4] + [{"x": 1}]}, "items[4]: expected text, or {id: ..., text: ...}"),
    ],
)
def test_spec_problems_have_field_paths(spec, expected):
    question, problems = read(**{"items": ITEMS, "before": BEFORE, **spec})
    assert question is None
    assert any(p.startswith(expected) for p in problems), problems


def test_bank_problems_are_reported_at_file_and_line(tmp_path):
    (tmp_path / "q.yaml").write_text(
        textwrap.dedent(
            """
            questions:
              - id: cyclic
                type: ordering
                stem: Order them.
                items:
                  - {id: a, text: A}
                  - {id: b, text: B}
                  - {id: c, text: C}
                before:
                  - [a, b]
                  - [b, c]
                  - [c, a]
                  - [a, d]
            """
        )
    )
    bank = load_bank(tmp_path)
    assert [str(p) for p in bank.problems] == [
        "q.yaml:14: questions[0].before[3][1]: unknown item id 'd' (ids: a, b, c)"
    ]
    del_d = (tmp_path / "q.yaml").read_text().replace("      - [a, d]\n", "")
    (tmp_path / "q.yaml").write_text(del_d)
    assert [str(p) for p in load_bank(tmp_path).problems] == [
        "q.yaml:11: questions[0].before[0]: the constraints form a cycle, a → b → c → a: "
        "no order can keep them all"
    ]


def test_a_valid_partial_order_validates_with_maths_checked_in_item_texts(tmp_path):
    (tmp_path / "q.yaml").write_text(
        textwrap.dedent(
            """
            questions:
              - id: order
                type: ordering
                stem: Order them.
                items:
                  - {id: a, text: "$\\\\sqrt{x}$"}
                  - {id: b, text: "$\\\\left( x$"}
                  - {id: c, text: C}
                before: [[a, c], [b, c]]
            """
        )
    )
    bank = load_bank(tmp_path)
    assert bank.ok, bank.problems
    problems = [str(p) for p in validate_bank(bank, seeds=10)]
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        "q.yaml:8: questions[0].items[1].text: cannot render maths $\\left( x$"
    )
