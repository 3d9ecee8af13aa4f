"""Markdown with LaTeX maths to safe HTML, entirely on the server.

Maths becomes MathML (latex2mathml), which browsers draw natively and screen readers
read, so exam day depends on no CDN and no client-side maths library. Fenced code is
highlighted by Pygments. Everything passes through nh3 (ammonia) last, so a stem can
never inject script, whatever an author or a parameter value contains.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
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


# ---------- blocks that may scroll sideways ----------
# A code block, a display formula or a table wider than a phone's screen scrolls inside its
# own box (app.css) rather than pushing the page sideways (WCAG 1.4.10). A box that scrolls
# must be reachable by keyboard, or a keyboard user can never see the rest (WCAG 2.1.1;
# axe's scrollable-region-focusable): each such block takes focus (tabindex="0", then the
# arrow keys scroll it) and is a named region, so a screen reader says what has focus.
# The attributes are added after sanitising, to fixed tags, with fixed text.
SCROLL_LABELS = {
    "code": "code, may scroll sideways",
    "equation": "equation, may scroll sideways",
    "table": "table, may scroll sideways",
}


def _region(kind: str) -> str:
    return f'role="region" tabindex="0" aria-label="{SCROLL_LABELS[kind]}"'


_PRE = re.compile(r"<pre(?=[\s>])")
_MATH_DIV = re.compile(r'<div class="math (?:block|inline)"')
_TABLE_OPEN = re.compile(r"<table(?=[\s>])")


def scroll_regions(fragment: str) -> str:
    """Sanitised HTML with each code block, display formula and table made a focusable,
    named region: `<pre>` and the `<div class="math block">` around a display formula get
    the attributes themselves, a table is wrapped in `<div class="scroll-x">`."""
    fragment = _PRE.sub(lambda m: f"<pre {_region('code')}", fragment)
    fragment = _MATH_DIV.sub(lambda m: f"{m[0]} {_region('equation')}", fragment)
    if "<table" in fragment:
        fragment = _TABLE_OPEN.sub(
            lambda m: f'<div class="scroll-x" {_region("table")}><table', fragment
        )
        fragment = fragment.replace("</table>", "</table></div>")
    return fragment


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Block Markdown (paragraphs, lists, code, display maths) to sanitised HTML, with the
    blocks that may scroll sideways reachable by keyboard (scroll_regions)."""
    return scroll_regions(sanitise(_MD.render(text)))


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


# ---------- maths in the names of form controls ----------
# Browsers leave MathML out of the accessible name they compute for a label (Chromium
# names a select labelled only by $\tanh(x)$ with nothing, and one labelled "ReLU, $\max(0,
# x)$" just "ReLU,"), so a screen reader announcing an option or an answer box would drop
# the formula. Labels therefore carry a text version of each formula for assistive
# technology next to the MathML drawn for the eye (labelled_maths below).
_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε",
    "varepsilon": "ε", "zeta": "ζ", "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ",
    "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ",
    "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ",
    "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ", "Phi": "Φ", "Omega": "Ω",
    "times": "×", "cdot": "·", "partial": "∂", "nabla": "∇", "sim": "~", "in": "∈",
    "to": "→", "rightarrow": "→", "leftarrow": "←", "infty": "∞", "le": "≤", "leq": "≤",
    "ge": "≥", "geq": "≥", "neq": "≠", "ne": "≠", "approx": "≈", "pm": "±", "top": "ᵀ",
    "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "lVert": "‖", "rVert": "‖",
    "Vert": "‖", "vert": "|", "lvert": "|", "rvert": "|", "sum": "∑", "prod": "∏",
    "int": "∫", "ldots": "…", "cdots": "⋯", "dots": "…",
}  # fmt: skip
_GROUP = r"\{([^{}]*)\}"
_FRACTION = re.compile(r"\\[dt]?frac\s*" + _GROUP + r"\s*" + _GROUP)
_STYLED = re.compile(
    r"\\(?:operatorname|mathrm|mathcal|mathbf|mathbb|mathit|mathsf|boldsymbol|text)\s*" + _GROUP
)
_ACCENT = re.compile(r"\\(hat|bar|tilde|vec|dot)\s*(?:" + _GROUP + r"|(\\?[A-Za-z]))")
_SQRT = re.compile(r"\\sqrt\s*" + _GROUP)
_SCRIPT = re.compile(r"([\^_])" + _GROUP)
_SPACING = re.compile(r"\\(?:[,;:! ]|q?quad\b)|\\(?:left|right|big|Big|bigg|Bigg)\b")
_COMMAND = re.compile(r"\\([A-Za-z]+)( ?)")
_COMPOUND = re.compile(r"[\s+\-*/=,<>]")


def _grouped(part: str) -> str:
    """A fraction's or a script's part, in brackets when it has more than one term."""
    part = part.strip()
    return f"({part})" if _COMPOUND.search(part) else part


def _symbol(match: re.Match[str]) -> str:
    name, space = match[1], match[2]
    symbol = _SYMBOLS.get(name)
    return symbol if symbol is not None else name + space  # \ln x keeps its space


def latex_to_text(latex: str) -> str:
    """A plain-text reading of a LaTeX formula for a screen reader ("∂L/∂w_2",
    "1/(1 + e^(-x))", "W_ij ~ N(0, 2/n)"): symbols as Unicode, fractions and scripts
    written out, styling dropped. Not a renderer: just enough for labels to be heard."""
    rules: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
        (_FRACTION, lambda m: f"{_grouped(m[1])}/{_grouped(m[2])}"),
        (_STYLED, lambda m: m[1]),
        (_ACCENT, lambda m: f"{m[2] or m[3]}-{m[1]}"),
        (_SQRT, lambda m: f"√({m[1].strip()})"),
        (_SCRIPT, lambda m: m[1] + _grouped(m[2])),
    ]
    text, previous = latex, None
    while previous != text:  # innermost groups first, until nothing changes
        previous = text
        for pattern, replace in rules:
            text = pattern.sub(replace, text)
    text = _SPACING.sub(" ", text)
    text = _COMMAND.sub(_symbol, text)
    text = text.replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", text).strip()


_MATH_ELEMENT = re.compile(r'<math\b[^>]*?\balttext="([^"]*)"[^>]*>.*?</math>', re.DOTALL)


@lru_cache(maxsize=4096)
def labelled_maths(fragment: str) -> str:
    """Sanitised HTML for a label: each formula drawn as MathML but hidden from assistive
    technology, followed by its text reading (latex_to_text) hidden from the eye."""

    def replace(match: re.Match[str]) -> str:
        reading = html.escape(latex_to_text(html.unescape(match[1])), quote=False)
        return (
            f'<span aria-hidden="true">{match[0]}</span>'
            f'<span class="visually-hidden">{reading}</span>'
        )

    return _MATH_ELEMENT.sub(replace, fragment)


def render_label(text: str) -> str:
    """An author's one-line label (an option, a matching item, a part's name) as sanitised
    HTML for a page that describes an answer: render_inline, then labelled_maths."""
    return labelled_maths(render_inline(text))
