"""Formulas in labels: browsers leave MathML out of a control's accessible name, so a label
carries a text reading of each formula for screen readers (domain.render.labelled_maths)."""

from __future__ import annotations

import pytest

from quizapp.domain.render import labelled_maths, latex_to_text, render_inline


@pytest.mark.parametrize(
    ("latex", "reading"),
    [
        (r"\tanh(x)", "tanh(x)"),
        (r"\max(0.01x,\, x)", "max(0.01x, x)"),
        (r"\ln(1 + e^{x})", "ln(1 + e^x)"),
        (r"\dfrac{1}{1 + e^{-x}}", "1/(1 + e^(-x))"),
        (r"1 - \tanh^2(x)", "1 - tanh^2(x)"),
        (r"W_{ij} \sim \mathcal{N}(0,\, 2/n)", "W_ij ~N(0, 2/n)"),
        (r"\partial L / \partial w_2", "∂L / ∂w_2"),
        (r"\operatorname{Var}(W_{ij}) = 2/n", "Var(W_ij) = 2/n"),
        (r"\hat y", "y-hat"),
        (r"\sqrt{\hat v_t} + \epsilon", "√(v-hat_t) + ε"),
        (r"\ln x", "ln x"),
    ],
)
def test_a_formula_reads_as_plain_text(latex: str, reading: str) -> None:
    assert latex_to_text(latex) == reading


def test_a_label_keeps_the_mathml_for_the_eye_and_adds_the_reading_for_the_ear() -> None:
    html = labelled_maths(render_inline(r"Softplus, $\ln(1 + e^{x})$ & <b>"))
    assert html.startswith("Softplus, ")
    hidden, _, reading = html.partition("</math></span>")
    assert '<span aria-hidden="true"><math alttext="\\ln(1 + e^{x})"' in hidden
    assert reading.startswith('<span class="visually-hidden">ln(1 + e^x)</span>')
    assert "&amp; &lt;b&gt;" in reading  # the rest stays escaped


def test_a_label_without_maths_is_unchanged() -> None:
    html = render_inline("Adam, *with* bias correction")
    assert labelled_maths(html) == html
