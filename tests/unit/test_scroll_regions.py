"""Code blocks, display formulas and tables that may scroll sideways on a phone are
reachable by keyboard: each is a focusable, named region (issue 16, item 9)."""

from __future__ import annotations

import re

from quizapp.domain.render import SCROLL_LABELS, render_inline, render_markdown, scroll_regions

REGION = 'role="region" tabindex="0" aria-label="{}"'


def test_a_code_block_is_a_focusable_named_region():
    html = render_markdown("Look:\n\n```python\nnn.Conv2d(3, 24, kernel_size=5)\n```\n")
    assert f"<pre {REGION.format(SCROLL_LABELS['code'])}><code" in html
    assert SCROLL_LABELS["code"] == "code, may scroll sideways"


def test_an_indented_code_block_too():
    html = render_markdown("Look:\n\n    x = 1\n")
    assert html.count('role="region"') == 1 and "<pre role=" in html


def test_display_maths_on_its_own_line_and_within_text():
    block = render_markdown("Adam:\n\n$$m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t$$\n")
    assert f'<div class="math block" {REGION.format(SCROLL_LABELS["equation"])}>' in block
    within = render_markdown("so $$v_t = \\beta_2 v_{t-1}$$ and so on")
    assert f'<div class="math inline" {REGION.format(SCROLL_LABELS["equation"])}>' in within


def test_inline_maths_and_plain_text_are_left_alone():
    html = render_markdown("What is $2 + 3$? Use `pre` and <pre>.")
    assert 'role="region"' not in html and "tabindex" not in html
    assert "&lt;pre&gt;" in html  # typed tags stay text (html is off, nh3 escapes)
    assert 'role="region"' not in render_inline("an option with $$x$$")


def test_a_table_is_wrapped_in_a_scrolling_region():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert html.startswith(f'<div class="scroll-x" {REGION.format(SCROLL_LABELS["table"])}><table>')
    assert html.rstrip().endswith("</table></div>")


def test_each_block_once_and_nothing_from_the_author_becomes_an_attribute():
    text = (
        "```\n<pre onclick=alert(1)>\n```\n\n$$x$$\n\n"
        '| <table> | "><script> |\n|---|---|\n| `<pre>` | x |\n'
    )
    html = render_markdown(text)
    assert html.count('role="region"') == 3
    assert len(re.findall(r"<pre\b", html)) == 1
    assert "&lt;pre onclick=alert(1)&gt;" in html  # the author's text stays text
    assert "<script" not in html


def test_scroll_regions_on_a_fragment_without_blocks_is_the_identity():
    fragment = '<p>Plain <code>code</code> and <span class="math inline">x</span></p>'
    assert scroll_regions(fragment) == fragment
