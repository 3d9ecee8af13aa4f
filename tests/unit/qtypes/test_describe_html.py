"""Answers described as HTML for pages: the author's labels are Markdown with maths and are
rendered; whatever the student typed is shown exactly as typed. The plain-text
descriptions (CSV exports) stay as they were."""

from __future__ import annotations

import random

import pytest

from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

# A student typing markup, Markdown and maths: all of it must come out literally.
TYPED = "<b>bold</b> *x* $y$"
TYPED_ESCAPED = "&lt;b&gt;bold&lt;/b&gt; *x* $y$"


def body(**spec):
    problems = Problems()
    question = read_question({"id": "q", "stem": "Stem", **spec}, (), problems)
    assert not problems.items, problems.items
    assert question is not None
    return question.body


def assert_rendered_maths(fragment: str) -> None:
    assert "<math" in fragment
    assert "$x^2$" not in fragment  # no LaTeX source left to read
    # labelled_maths: the formula is read out as text, the MathML hidden from readers.
    assert '<span aria-hidden="true"><math' in fragment
    assert '<span class="visually-hidden">x^2</span>' in fragment


def test_single_choice_renders_its_option_labels():
    q = body(
        type="single_choice",
        shuffle=False,
        options=[{"text": "Square: $x^2$", "correct": True}, {"text": "*Not* this"}],
    )
    answer = q.describe_answer_html({})
    assert answer.startswith("A. Square: ")
    assert_rendered_maths(answer)
    assert q.describe_response_html({}, "1") == "B. <em>Not</em> this"
    assert q.describe_response_html({}, None) == "(no answer)"
    assert q.describe_response_html({}, "gone") == "(option gone no longer exists)"
    # The plain text, for CSV exports, is unchanged.
    assert q.describe_answer({}) == "A. Square: $x^2$"
    assert q.describe_response({}, "1") == "B. *Not* this"


def test_an_option_label_cannot_inject_markup():
    q = body(
        type="single_choice",
        shuffle=False,
        options=[{"text": "<script>alert(1)</script> $x$", "correct": True}, {"text": "no"}],
    )
    assert "<script" not in q.describe_answer_html({})


def test_true_false_is_plain_words():
    q = body(type="true_false", answer=False)
    assert q.describe_answer_html({}) == "B. False"


def test_multiple_response_renders_every_chosen_label():
    q = body(
        type="multiple_response",
        shuffle=False,
        options=[
            {"id": "sq", "text": "$x^2$", "correct": True},
            {"id": "lin", "text": "**linear**", "correct": True},
            {"id": "no", "text": "neither"},
        ],
    )
    answer = q.describe_answer_html({})
    assert_rendered_maths(answer)
    assert answer.endswith("; B. <strong>linear</strong>")
    assert q.describe_response_html({}, ["no"]) == "C. neither"
    assert q.describe_response_html({}, []) == "(no answer)"
    assert q.describe_answer({}) == "A. $x^2$; B. **linear**"


def test_matching_renders_lefts_and_rights():
    q = body(
        type="matching",
        shuffle=False,
        pairs=[{"left": "square $x^2$", "right": "*parabola*"}, {"left": "id", "right": "line"}],
    )
    answer = q.describe_answer_html({})
    assert_rendered_maths(answer)
    assert "→ A. <em>parabola</em>; id → B. line" in answer
    assert q.describe_response_html({}, {"1": "r0"}).endswith("id → A. <em>parabola</em>")
    assert "→ (none)" in q.describe_response_html({}, {"1": "r0"})
    assert q.describe_response_html({}, None) == "(no answer)"
    assert q.describe_answer({}) == "square $x^2$ → A. *parabola*; id → B. line"


def test_ordering_renders_its_items():
    q = body(type="ordering", items=["first $x^2$", "then *this*", "last"])
    variant = q.make_variant(random.Random(1))
    answer = q.describe_answer_html(variant)
    assert_rendered_maths(answer)
    assert answer.endswith(" → then <em>this</em> → last")
    assert q.describe_response_html(variant, ["2", None]) == "last → (empty)"
    assert q.describe_response_html(variant, None) == "(no answer)"
    assert q.describe_answer(variant) == "first $x^2$ → then *this* → last"
    assert q.describe_response(variant, ["1"]) == "then *this*"


def test_multi_part_renders_labels_and_escapes_what_was_typed():
    q = body(
        type="multi_part",
        parts=[
            {"id": "a", "label": "Area $x^2$", "answer": 4, "units": "cm"},
            {"id": "b", "label": "*Name*", "answers": [{"text": "max"}]},
        ],
    )
    response = {"a": "<b>4</b>", "b": TYPED}
    html = q.describe_response_html({}, response)
    assert_rendered_maths(html)
    assert ": &lt;b&gt;4&lt;/b&gt; cm; <em>Name</em>: " + TYPED_ESCAPED in html
    assert html.endswith(TYPED_ESCAPED)
    assert "<b>" not in html
    answer = q.describe_answer_html({})
    assert_rendered_maths(answer)
    assert answer.endswith(": 4 cm; <em>Name</em>: max")
    assert q.describe_response({}, response) == f"Area $x^2$: <b>4</b> cm; *Name*: {TYPED}"
    assert q.describe_answer({}) == "Area $x^2$: 4 cm; *Name*: max"


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "short_text", "answers": [{"text": "Adam"}]},
        {"type": "numeric", "answer": 2},
        {"type": "algebraic", "answer": "x^2", "variables": ["x"]},
        {"type": "essay"},
        {"type": "matrix", "answer": [[1, 2], [3, 4]]},
    ],
    ids=lambda spec: spec["type"],
)
def test_typed_answers_are_shown_exactly_as_typed(spec):
    q = body(**spec)
    variant = q.make_variant(random.Random(0))
    html = q.describe_response_html(variant, TYPED)
    assert TYPED_ESCAPED in html
    assert "<b>" not in html and "<em>" not in html and "<math" not in html
    assert TYPED in q.describe_response(variant, TYPED)


def test_an_essay_sample_answer_is_the_author_s_markdown():
    q = body(type="essay", sample_answer="The **chain rule**: $x^2$.")
    html = q.describe_answer_html({})
    assert "<strong>chain rule</strong>" in html and "<math" in html
    assert q.describe_answer({}) == "The **chain rule**: $x^2$."
    assert body(type="essay").describe_answer_html({}) == "(marked by staff)"
