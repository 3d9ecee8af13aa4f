"""Markdown with LaTeX maths to safe HTML, entirely on the server.

Maths becomes MathML (latex2mathml), which browsers draw natively and screen readers
read, so exam day depends on no CDN and no client-side maths library. Fenced code is
highlighted by Pygments. Everything passes through nh3 (ammonia) last, so a stem can
never inject script, whatever an author or a parameter value contains.
"""

from __future__ import annotations

import html
from functools import lru_cache

import latex2mathml.converter
import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_MATHML_TAGS = {
    "math", "semantics", "annotation", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace",
    "msub", "msup", "msubsup", "mfrac", "msqrt", "mroot", "mstyle", "mpadded", "mphantom",
    "menclose", "mtable", "mtr", "mtd", "munder", "mover", "munderover", "merror",
}  # fmt: skip
_HTML_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "span", "div", "blockquote", "ul", "ol",
    "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "h3", "h4", "h5", "h6",
    "sub", "sup", "del",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"class"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "math": {"display", "xmlns", "alttext"},
    "mo": {
        "stretchy",
        "fence",
        "form",
        "lspace",
        "rspace",
        "separator",
        "largeop",
        "movablelimits",
    },
    "mi": {"mathvariant"},
    "mn": {"mathvariant"},
    "mstyle": {"displaystyle", "scriptlevel", "mathvariant"},
    "mspace": {"width"},
    "mtable": {"columnalign", "rowspacing", "columnspacing"},
    "mtd": {"columnalign"},
    "menclose": {"notation"},
    "mfrac": {"linethickness"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
}


class MathError(ValueError):
    """LaTeX that cannot be turned into MathML."""


def latex_to_mathml(latex: str, *, display: bool) -> str:
    try:
        mathml = latex2mathml.converter.convert(latex, display="block" if display else "inline")
    except Exception as exc:  # the converter raises many private exception types
        raise MathError(f"cannot render maths ${latex}$: {exc}") from exc
    # The LaTeX source as alternative text: screen readers without MathML support read it.
    alt = html.escape(latex, quote=True)
    return mathml.replace("<math ", f'<math alttext="{alt}" ', 1)


def _math_renderer(content: str, options: dict[str, object]) -> str:
    display = bool(options.get("display_mode"))
    try:
        return latex_to_mathml(content, display=display)
    except MathError:
        return f'<code class="math-error">{html.escape(content)}</code>'


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it falls back to plain escaped code
    return str(highlight(code, lexer, HtmlFormatter(nowrap=True, classprefix="hl-")))


def _build_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight}).enable("table")
    dollarmath_plugin(md, allow_space=True, double_inline=True, renderer=_math_renderer)
    return md


_MD = _build_parser()


def sanitise(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=_HTML_TAGS | _MATHML_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer",
    )


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Block Markdown (paragraphs, lists, code, display maths) to sanitised HTML."""
    return sanitise(_MD.render(text))


@lru_cache(maxsize=4096)
def render_inline(text: str) -> str:
    """One line of Markdown (an option, a label) to sanitised HTML without a <p> wrapper."""
    return sanitise(_MD.renderInline(text))


def math_problems(text: str) -> list[str]:
    """Every piece of maths in `text` that fails to render: the validator reports these."""
    problems = []
    for token in _MD.parse(text):
        for child in [token, *(token.children or [])]:
            if child.type in {"math_inline", "math_block", "math_inline_double"}:
                try:
                    latex_to_mathml(child.content, display=child.type != "math_inline")
                except MathError as exc:
                    problems.append(str(exc))
    return problems
