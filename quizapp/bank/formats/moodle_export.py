"""A loaded YAML bank → a Moodle XML file (Moodle's "Moodle XML format" import).

The reverse of `moodle_xml.read_moodle_xml`, written so that reading the file back with it
gives the same questions: each question's id goes into Moodle's `<idnumber>`, its
folder in the bank becomes the category `$course$/top/<folder>/<subfolder>`, its tags
Moodle tags. Markdown becomes HTML with the maths left as LaTeX between `\\( \\)` and
`\\[ \\]` (Moodle's MathJax filter draws it; the importer reads it back as `$ $`), and
images travel inside the file as base64 `<file>` elements named by `@@PLUGINFILE@@`.

What maps (docs/question-bank.md, "Taking a bank to Moodle"): single_choice and
multiple_response (multichoice; right minus wrong is Moodle's own arithmetic with a
negative fraction on each wrong option), true_false, numeric (numerical, with per-answer
feedback and partial credit), short_text (shortanswer; a pattern only when it is a
`*` wildcard), matching, ordering (qtype_ordering), calculated (the parameters become
datasets), multi_part (a Cloze question), essay. algebraic and matrix questions, partial
orders, and anything else Moodle cannot say are reported per question (`Note`), never
dropped silently: a question whose marking Moodle would change for a student who answers
correctly is not exported; one that loses something smaller (a stated scoring rule, a
significant-figures check) is exported and the loss is reported.

The XML is built with xml.etree (never by joining strings).
"""

from __future__ import annotations

import ast
import base64
import html
import itertools
import math
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from quizapp.bank.assets import AssetError, resolve_asset, rewrite_images
from quizapp.bank.formats.html_markdown import PLUGINFILE
from quizapp.bank.loader import Bank, LoadedQuestion
from quizapp.domain.expressions import normalise_source
from quizapp.domain.qtypes.calculated import Calculated, Parameter

# Moodle keeps at most this many dataset items per wildcard (its editing form's limit).
MAX_DATASET_ITEMS = 100
# Moodle's grade options (question_bank::fraction_options_full): its import refuses any
# other answer fraction unless "nearest grade" is chosen.
MOODLE_GRADES = frozenset(
    Fraction(n, d) for d in range(1, 11) for n in range(0, d + 1) if d in (1, 2, 3, 4, 5, 6, 10)
) | frozenset({Fraction(1, 7), Fraction(1, 8), Fraction(1, 9), Fraction(1, 20), Fraction(9, 10)})
_NOT_EXPORTED = {
    "algebraic": "Moodle has no algebraic-expression answer (core types compare numbers or texts)",
    "matrix": "Moodle has no vector or matrix answer",
}


@dataclass(frozen=True, order=True)
class Note:
    """One line of the export report. `skipped`: the question is not in the file."""

    file: str
    line: int
    question: str
    message: str
    skipped: bool = False

    def render(self) -> str:
        kind = "not exported" if self.skipped else "exported with a change"
        return f"{self.file}:{self.line}: {self.question}: {kind}: {self.message}"


@dataclass
class Exported:
    xml: bytes
    questions: list[str] = field(default_factory=list)  # ids written, in order
    notes: list[Note] = field(default_factory=list)
    quizzes: list[str] = field(default_factory=list)  # quiz files: Moodle XML has none

    @property
    def skipped(self) -> list[Note]:
        return [n for n in self.notes if n.skipped]

    def report_lines(self) -> list[str]:
        return [n.render() for n in sorted(self.notes)]


class Unexportable(Exception):
    """This question cannot be written in Moodle XML; the message says why."""


# ---------------------------------------------------------------- Markdown → Moodle HTML


def _latex(content: str, options: dict[str, object]) -> str:
    text = html.escape(content, quote=False)
    return f"\\[{text}\\]" if options.get("display_mode") else f"\\({text}\\)"


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    dollarmath_plugin(md, allow_space=True, double_inline=True, renderer=_latex)
    return md


_MD = _parser()
# `$$x$$` inside a paragraph: dollarmath wraps it in a div, which would split the paragraph.
_INLINE_DISPLAY = re.compile(r'<div class="math inline">(.*?)</div>', re.DOTALL)


def markdown_html(text: str, *, inline: bool = False) -> str:
    rendered = _MD.renderInline(text) if inline else _MD.render(text)
    return _INLINE_DISPLAY.sub(r"\1", rendered).strip()


# ---------------------------------------------------------------- formulas


def _moodle_call(name: str, args: list[ast.expr]) -> ast.expr:
    def call(fn: str, *a: ast.expr) -> ast.expr:
        return ast.Call(ast.Name(fn, ast.Load()), list(a), [])

    def binop(left: ast.expr, op: ast.operator, right: ast.expr) -> ast.expr:
        return ast.BinOp(left, op, right)

    one = ast.Constant(1)
    if name in ("sigma", "sigmoid"):
        neg = ast.UnaryOp(ast.USub(), args[0])
        return binop(one, ast.Div(), binop(one, ast.Add(), call("exp", neg)))
    if name == "relu":
        return call("max", ast.Constant(0), args[0])
    if name == "ln":
        return call("log", args[0])
    if name == "log" and len(args) == 2:
        return binop(call("log", args[0]), ast.Div(), call("log", args[1]))
    if name == "mod":
        a, b = args
        return binop(a, ast.Sub(), binop(b, ast.Mult(), call("floor", binop(a, ast.Div(), b))))
    if name == "round" and len(args) == 1:
        return call("round", args[0], ast.Constant(0))
    if name in ("min", "max") and len(args) == 1:
        return args[0]
    return call(name, *args)


class _ToMoodle(ast.NodeTransformer):
    """Our expression tree → Moodle's formula language (PHP functions, `{x}` wildcards)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = set(names)

    def visit_Name(self, node: ast.Name) -> ast.expr:  # noqa: N802 (ast's name)
        if node.id in self.names:
            return ast.Name(f"__wildcard_{node.id}", ast.Load())
        if node.id == "pi":
            return ast.Call(ast.Name("pi", ast.Load()), [], [])
        if node.id == "e":
            return ast.Call(ast.Name("exp", ast.Load()), [ast.Constant(1)], [])
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:  # noqa: N802
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow):
            return ast.Call(ast.Name("pow", ast.Load()), [node.left, node.right], [])
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:  # noqa: N802
        self.generic_visit(node)
        assert isinstance(node.func, ast.Name)  # parse_expression allows plain names only
        return _moodle_call(node.func.id, list(node.args))


_WILDCARD = re.compile(r"__wildcard_([A-Za-z0-9_]+)")


def moodle_formula(source: str, names: Iterable[str]) -> str:
    """A formula of our expression language (already checked) in Moodle's syntax:
    `w - lr*g` → `{w} - {lr} * {g}`, `x^2` → `pow({x}, 2)`, `sigma(x)` written out."""
    tree = ast.parse(normalise_source(source), mode="eval")
    converted = ast.fix_missing_locations(_ToMoodle(names).visit(tree))
    return _WILDCARD.sub(r"{\1}", ast.unparse(converted))


# ---------------------------------------------------------------- numbers


def number_text(value: Fraction) -> str:
    """An exact decimal if there is one, otherwise 15 significant figures."""
    dec = Decimal(value.numerator) / Decimal(value.denominator)
    if Fraction(dec) == value:
        text = format(dec.normalize(), "f")
        return text if len(text) <= 40 else str(dec.normalize())
    return f"{float(value):.15g}"


def percent_text(fraction: Fraction) -> str:
    """Moodle writes answer fractions as percentages with at most 7 digits of precision
    (1/3 → 33.33333), as its own export does."""
    percent = fraction * 100
    if percent.denominator == 1:
        return str(percent.numerator)
    text = f"{float(percent):.5f}".rstrip("0").rstrip(".")
    return text


# ---------------------------------------------------------------- one question


class _Writer:
    """Writes one question; collects the changes to report."""

    def __init__(self, bank: Bank, loaded: LoadedQuestion) -> None:
        self.bank = bank
        self.loaded = loaded
        self.spec = loaded.spec
        self.changes: list[str] = []
        self.base = bank.root if bank.root.is_dir() else bank.root.parent

    # -- text

    def text_element(
        self, parent: ET.Element, tag: str, markdown: str, *, inline: bool = False
    ) -> ET.Element:
        """<tag format="html"><text>HTML</text><file .../></tag>, images embedded."""
        element = ET.SubElement(parent, tag, {"format": "html"})
        files: dict[str, bytes] = {}

        def address(src: str) -> str | None:
            try:
                path = resolve_asset(self.base, self.loaded.file, src)
            except AssetError as exc:
                self.changes.append(f"{exc}: left out")
                return None
            data = path.read_bytes()
            name = _unique_name(PurePosixPath(path.name), data, files)
            files[name] = data
            return PLUGINFILE + name

        rendered = rewrite_images(markdown_html(markdown, inline=inline), address)
        ET.SubElement(element, "text").text = rendered
        for name, data in files.items():
            attrs = {"name": name, "path": "/", "encoding": "base64"}
            ET.SubElement(element, "file", attrs).text = base64.b64encode(data).decode()
        return element

    def feedback(self, parent: ET.Element, markdown: str) -> None:
        self.text_element(parent, "feedback", markdown)

    def answer(
        self,
        parent: ET.Element,
        fraction: Fraction,
        text: str,
        feedback: str = "",
        *,
        markdown: bool = False,
    ) -> ET.Element:
        if fraction not in MOODLE_GRADES and -fraction not in MOODLE_GRADES:
            self.changes.append(
                f"the credit {percent_text(fraction)} % is not one of Moodle's grades: "
                "import with 'Match grades: nearest grade if not listed'"
            )
        attrs = {"fraction": percent_text(fraction)}
        if markdown:
            node = self.text_element(parent, "answer", text, inline=True)
            node.attrib.update(attrs)
        else:
            node = ET.SubElement(parent, "answer", {**attrs, "format": "moodle_auto_format"})
            ET.SubElement(node, "text").text = text
        self.feedback(node, feedback)
        return node

    # -- the question

    def common(self, qtype: str) -> ET.Element:
        spec = self.spec
        question = ET.Element("question", {"type": qtype})
        ET.SubElement(ET.SubElement(question, "name"), "text").text = (
            spec.get("title") or spec["id"]
        )
        self.text_element(question, "questiontext", spec["stem"])
        self.text_element(question, "generalfeedback", spec.get("feedback", ""))
        marks = self.loaded.question.marks
        grade = number_text(marks)
        if Fraction(Decimal(grade)) != marks:
            grade = f"{float(marks):.7f}"
            self.changes.append(f"marks {marks} written as {grade}")
        ET.SubElement(question, "defaultgrade").text = grade
        ET.SubElement(question, "penalty").text = "0"
        ET.SubElement(question, "hidden").text = "0"
        ET.SubElement(question, "idnumber").text = spec["id"]
        return question

    def tags(self, question: ET.Element) -> None:
        tags = list(self.loaded.question.tags)
        if tags:
            element = ET.SubElement(question, "tags")
            for tag in tags:
                ET.SubElement(ET.SubElement(element, "tag"), "text").text = tag

    def write(self) -> ET.Element:
        kind = self.loaded.question.type_name
        if kind in _NOT_EXPORTED:
            raise Unexportable(_NOT_EXPORTED[kind])
        writer = _WRITERS.get(kind)
        if writer is None:
            raise Unexportable(f"the type {kind!r} has no Moodle equivalent")
        question = writer(self)
        self.tags(question)
        return question


def _unique_name(name: PurePosixPath, data: bytes, taken: dict[str, bytes]) -> str:
    candidate, n = name.name, 1
    while candidate in taken and taken[candidate] != data:
        n += 1
        candidate = f"{name.stem}-{n}{name.suffix}"
    return candidate


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _choice(w: _Writer) -> ET.Element:
    spec = w.spec
    single = spec["type"] == "single_choice"
    question = w.common("multichoice")
    ET.SubElement(question, "single").text = _bool_text(single)
    ET.SubElement(question, "shuffleanswers").text = _bool_text(spec.get("shuffle", True))
    ET.SubElement(question, "answernumbering").text = "abc"
    options = spec["options"]
    correct = sum(1 for o in options if o.get("correct"))
    if not single:
        scoring = spec.get("scoring", "right_minus_wrong")
        if scoring != "right_minus_wrong":
            w.changes.append(
                f"scoring {scoring} has no Moodle equivalent: Moodle scores right minus "
                "wrong (each correct option +1/n, each wrong one -1/n)"
            )
    for option in options:
        if single:
            fraction = Fraction(1) if option.get("correct") else _exact(option.get("fraction", 0))
        else:
            share = Fraction(1, correct)
            fraction = share if option.get("correct") else -share
        w.answer(question, fraction, option["text"], option.get("feedback", ""), markdown=True)
    return question


def _exact(value: Any) -> Fraction:
    return Fraction(str(value)) if not isinstance(value, Fraction) else value


def _true_false(w: _Writer) -> ET.Element:
    spec = w.spec
    question = w.common("truefalse")
    for value in (True, False):
        name = _bool_text(value)
        fraction = Fraction(int(spec["answer"] is value))
        w.answer(question, fraction, name, spec.get(f"feedback_{name}", ""))
    return question


def _tolerance(w: _Writer, spec: dict[str, Any], answer: Fraction) -> Fraction:
    """Moodle's numerical tolerance is absolute: a relative one is worked out for the answer."""
    if "relative_tolerance" in spec:
        return _exact(spec["relative_tolerance"]) * abs(answer)
    return _exact(spec.get("tolerance", 0))


def _numeric_answers(
    w: _Writer, spec: dict[str, Any], answer: Fraction
) -> list[tuple[Fraction, Fraction, Fraction, str]]:
    """(fraction, value, tolerance, feedback) for the answer and each listed wrong one."""
    tolerance = _tolerance(w, spec, answer)
    if "relative_tolerance" in spec:
        w.changes.append(
            f"the relative tolerance {number_text(_exact(spec['relative_tolerance']))} is "
            f"written as the absolute {number_text(tolerance)} (Moodle's numerical has no "
            "relative one): the same answers are right"
        )
    rows = [(Fraction(1), answer, tolerance, "")]
    for entry in spec.get("wrong_answers", []):
        if isinstance(entry, dict):
            value = _exact(entry["answer"])
            if "tolerance" in entry:
                entry_tolerance = _exact(entry["tolerance"])
            elif "relative_tolerance" in entry:
                entry_tolerance = _exact(entry["relative_tolerance"]) * abs(value)
            else:
                entry_tolerance = _tolerance(w, spec, value)
            fraction = _exact(entry.get("fraction", 0))
            rows.append((fraction, value, entry_tolerance, entry.get("feedback", "")))
        else:
            rows.append((Fraction(0), _exact(entry), Fraction(0), ""))
    if spec.get("significant_figures"):
        w.changes.append(
            f"significant_figures {spec['significant_figures']} has no Moodle equivalent: "
            "any number within the tolerance is right"
        )
    return rows


def _units(w: _Writer, question: ET.Element, units: str) -> None:
    ET.SubElement(question, "unitgradingtype").text = "0"
    ET.SubElement(question, "unitpenalty").text = "0.1000000"
    ET.SubElement(question, "showunits").text = "3"
    ET.SubElement(question, "unitsleft").text = "0"
    if units:
        element = ET.SubElement(question, "units")
        unit = ET.SubElement(element, "unit")
        ET.SubElement(unit, "multiplier").text = "1"
        ET.SubElement(unit, "unit_name").text = units


def _numeric(w: _Writer) -> ET.Element:
    spec = w.spec
    question = w.common("numerical")
    answer = _exact(spec["answer"])
    for fraction, value, tolerance, feedback in _numeric_answers(w, spec, answer):
        node = w.answer(question, fraction, number_text(value), feedback)
        ET.SubElement(node, "tolerance").text = number_text(tolerance)
    _units(w, question, spec.get("units", ""))
    return question


_WILDCARD_PATTERN = re.compile(r"(?:\\.|[^\\.*+?()\[\]{}|^$])*")


def wildcard_of(pattern: str) -> str | None:
    """The Moodle `*` answer a pattern came from (`frog.*toad` → `frog*toad`), or None
    when the pattern is more than literal text and `.*`."""
    pieces = pattern.split(".*")
    if not all(_WILDCARD_PATTERN.fullmatch(p) for p in pieces):
        return None
    texts = [re.sub(r"\\(.)", r"\1", p) for p in pieces]
    if any("*" in t for t in texts):
        return None
    return "*".join(texts)


def _text_answers(w: _Writer, spec: dict[str, Any], where: str) -> list[tuple[Fraction, str, str]]:
    """(fraction, Moodle answer text, feedback) of a short-text spec; reports patterns
    Moodle cannot match."""
    rows: list[tuple[Fraction, str, str]] = []
    for entry in spec["answers"]:
        fraction = _exact(entry.get("fraction", 1))
        if "text" in entry:
            text = str(entry["text"])
            if "*" in text:
                w.changes.append(f"{where}: the answer {text!r} has a '*', a wildcard in Moodle")
        else:
            wildcard = wildcard_of(str(entry["pattern"]))
            if wildcard is None:
                w.changes.append(
                    f"{where}: the pattern {entry['pattern']!r} has no Moodle equivalent "
                    "(Moodle matches text with * wildcards only): left out"
                )
                continue
            text = wildcard
        rows.append((fraction, text, entry.get("feedback", "")))
    for wrong in spec.get("wrong_answers", []):
        rows.append((Fraction(0), str(wrong), ""))
    if not any(f == 1 and "*" not in t for f, t, _ in rows):
        raise Unexportable(f"{where}: no answer worth full marks is plain text")
    model = spec.get("model_answer")
    if model and model != next(t for f, t, _ in rows if f == 1 and "*" not in t):
        w.changes.append(f"{where}: model_answer {model!r} is not kept (Moodle shows the first)")
    return rows


def _short_text(w: _Writer) -> ET.Element:
    spec = w.spec
    question = w.common("shortanswer")
    ET.SubElement(question, "usecase").text = "1" if spec.get("case_sensitive") else "0"
    for fraction, text, feedback in _text_answers(w, spec, "answers"):
        w.answer(question, fraction, text, feedback)
    return question


def _plain(w: _Writer, markdown: str, where: str) -> str:
    """Moodle shows the right-hand items of a matching question as plain text (in a menu):
    Markdown formatting is dropped (reported), maths kept as \\( \\)."""
    rendered = markdown_html(markdown, inline=True)
    if re.search(r"<(?!/?span\b)[a-z]", rendered):
        w.changes.append(f"{where}: formatting dropped (Moodle shows plain text in a menu)")
    return html.unescape(re.sub(r"<[^>]*>", "", rendered))


def _matching(w: _Writer) -> ET.Element:
    spec = w.spec
    question = w.common("matching")
    ET.SubElement(question, "shuffleanswers").text = _bool_text(spec.get("shuffle", True))
    for i, pair in enumerate(spec["pairs"]):
        sub = w.text_element(question, "subquestion", pair["left"], inline=True)
        answer = ET.SubElement(sub, "answer")
        ET.SubElement(answer, "text").text = _plain(w, pair["right"], f"pair {i + 1}")
    for i, extra in enumerate(spec.get("distractors", [])):
        sub = ET.SubElement(question, "subquestion", {"format": "html"})
        ET.SubElement(sub, "text").text = ""
        answer = ET.SubElement(sub, "answer")
        ET.SubElement(answer, "text").text = _plain(w, extra, f"distractor {i + 1}")
    return question


_ORDERING_GRADING = {
    "all_or_nothing": "ALL_OR_NOTHING",
    "positions": "ABSOLUTE_POSITION",
    "adjacent_pairs": "RELATIVE_NEXT_EXCLUDE_LAST",
}


def _ordering(w: _Writer) -> ET.Element:
    spec = w.spec
    if "before" in spec:
        raise Unexportable(
            "a partial order (before:) has no Moodle equivalent: qtype_ordering accepts one "
            "order only, so a student's other correct orders would lose marks"
        )
    scoring = spec.get("scoring", "adjacent_pairs")
    grading = _ORDERING_GRADING.get(scoring)
    if grading is None:
        grading = "RELATIVE_ALL_PREVIOUS_AND_NEXT"
        w.changes.append(
            f"scoring {scoring} has no Moodle equivalent: graded as "
            "'relative to all the previous and next items'"
        )
    question = w.common("ordering")
    ET.SubElement(question, "layouttype").text = "VERTICAL"
    ET.SubElement(question, "selecttype").text = "ALL"
    ET.SubElement(question, "selectcount").text = "0"
    ET.SubElement(question, "gradingtype").text = grading
    ET.SubElement(question, "showgrading").text = "SHOW"
    ET.SubElement(question, "numberingstyle").text = "none"
    for position, item in enumerate(spec["items"], start=1):
        text = item["text"] if isinstance(item, dict) else str(item)
        node = w.text_element(question, "answer", text, inline=True)
        node.attrib["fraction"] = f"{position}.0000000"
    return question


def parameter_values(parameter: Parameter, limit: int = MAX_DATASET_ITEMS) -> list[Fraction]:
    """A parameter's values; of a long range, `limit` of them (seeded, both ends kept)."""
    if parameter.values:
        return list(parameter.values)
    if parameter.count <= limit:
        return [parameter.low + parameter.step * k for k in range(parameter.count)]
    picks = random.Random(parameter.name).sample(range(1, parameter.count - 1), limit - 2)
    indices = [0, *sorted(picks), parameter.count - 1]
    return [parameter.low + parameter.step * k for k in indices]


def _dataset_rows(values: list[list[Fraction]]) -> list[tuple[Fraction, ...]]:
    """Moodle draws item k of every dataset together. Every combination when they fit in
    MAX_DATASET_ITEMS, otherwise MAX_DATASET_ITEMS rows (seeded) in which every value of
    every parameter appears."""
    if math.prod(len(v) for v in values) <= MAX_DATASET_ITEMS:
        return list(itertools.product(*values))
    rng = random.Random(0)
    columns = []
    for column in values:
        cycle = list(column)
        rng.shuffle(cycle)
        columns.append([cycle[k % len(cycle)] for k in range(MAX_DATASET_ITEMS)])
    return list(zip(*columns, strict=True))


def _decimals(values: Iterable[Fraction]) -> int:
    places = 0
    for value in values:
        text = number_text(value)
        if "." in text and "e" not in text.lower():
            places = max(places, len(text.split(".")[1]))
    return min(places, 10)


def _calculated(w: _Writer) -> ET.Element:
    spec = w.spec
    body = w.loaded.question.body
    assert isinstance(body, Calculated)
    names = [p.name for p in body.parameters]
    question = w.common("calculated")
    stem = question.find("questiontext/text")
    general = question.find("generalfeedback/text")
    for element in (stem, general):
        if element is not None and element.text:
            element.text = re.sub(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", r"{\1}", element.text)
    ET.SubElement(question, "synchronize").text = "0"
    ET.SubElement(question, "single").text = "0"
    ET.SubElement(question, "answernumbering").text = "abc"
    ET.SubElement(question, "shuffleanswers").text = "1"
    numeric = body.numeric
    relative = numeric.relative
    rows: list[tuple[Fraction, str, str]] = [(Fraction(1), spec["answer"], "")]
    for entry in spec.get("wrong_answers", []):
        if isinstance(entry, dict):
            fraction = _exact(entry.get("fraction", 0))
            rows.append((fraction, str(entry["answer"]), entry.get("feedback", "")))
        else:
            rows.append((Fraction(0), str(entry), ""))
    for fraction, formula, feedback in rows:
        node = w.answer(question, fraction, moodle_formula(formula, names), feedback)
        ET.SubElement(node, "tolerance").text = number_text(numeric.tolerance)
        ET.SubElement(node, "tolerancetype").text = "1" if relative else "2"
        ET.SubElement(node, "correctanswerformat").text = "2"  # significant figures
        ET.SubElement(node, "correctanswerlength").text = "6"
    if numeric.sig_figs:
        w.changes.append(
            f"significant_figures {numeric.sig_figs} has no Moodle equivalent: any number "
            "within the tolerance is right"
        )
    if body.integer:
        w.changes.append("integer: true (a check of the validator's) is not kept")
    _units(w, question, numeric.units)
    values = [parameter_values(p) for p in body.parameters]
    total = math.prod(p.count or len(p.values) for p in body.parameters)
    data_rows = _dataset_rows(values)
    if total > len(data_rows):
        w.changes.append(
            f"the parameters have {total} combinations; Moodle draws from "
            f"{len(data_rows)} dataset items"
        )
    if any(p.count > MAX_DATASET_ITEMS for p in body.parameters):
        w.changes.append(
            f"a range of more than {MAX_DATASET_ITEMS} values keeps {MAX_DATASET_ITEMS} of them"
        )
    definitions = ET.SubElement(question, "dataset_definitions")
    for i, parameter in enumerate(body.parameters):
        low = parameter.low if not parameter.values else min(parameter.values)
        high = (
            parameter.low + parameter.step * (parameter.count - 1)
            if not parameter.values
            else max(parameter.values)
        )
        definition = ET.SubElement(definitions, "dataset_definition")
        ET.SubElement(ET.SubElement(definition, "status"), "text").text = "private"
        ET.SubElement(ET.SubElement(definition, "name"), "text").text = parameter.name
        ET.SubElement(definition, "type").text = "calculated"
        ET.SubElement(ET.SubElement(definition, "distribution"), "text").text = "uniform"
        ET.SubElement(ET.SubElement(definition, "minimum"), "text").text = number_text(low)
        ET.SubElement(ET.SubElement(definition, "maximum"), "text").text = number_text(high)
        decimals = _decimals(values[i])
        ET.SubElement(ET.SubElement(definition, "decimals"), "text").text = str(decimals)
        ET.SubElement(definition, "itemcount").text = str(len(data_rows))
        items = ET.SubElement(definition, "dataset_items")
        for k, row in enumerate(data_rows, start=1):
            item = ET.SubElement(items, "dataset_item")
            ET.SubElement(item, "number").text = str(k)
            ET.SubElement(item, "value").text = number_text(row[i])
        ET.SubElement(definition, "number_of_items").text = str(len(data_rows))
    return question


# Characters with a meaning inside a Cloze marker, escaped with a backslash.
_CLOZE_SPECIAL = re.compile(r"([\\}~#/{])")


def _cloze_text(text: str) -> str:
    return _CLOZE_SPECIAL.sub(r"\\\1", text)


def _cloze_feedback(feedback: str) -> str:
    return "#" + _cloze_text(feedback) if feedback else ""


def _cloze_marker(w: _Writer, part: dict[str, Any], weight: int) -> str:
    where = f"part {part['id']}"
    if "answer" in part:
        answer = _exact(part["answer"])
        entries = []
        for fraction, value, tolerance, feedback in _numeric_answers(w, part, answer):
            prefix = "=" if fraction == 1 else f"%{percent_text(fraction)}%"
            body = f"{number_text(value)}:{number_text(tolerance)}"
            entries.append(prefix + body + _cloze_feedback(feedback))
        if part.get("units"):
            w.changes.append(f"{where}: the unit {part['units']!r} is not shown (Cloze has none)")
        return "{" + f"{weight}:NUMERICAL:" + "~".join(entries) + "}"
    kind = "SHORTANSWER_C" if part.get("case_sensitive") else "SHORTANSWER"
    entries = []
    for fraction, text, feedback in _text_answers(w, part, where):
        prefix = "=" if fraction == 1 else f"%{percent_text(fraction)}%"
        entries.append(prefix + _cloze_text(text) + _cloze_feedback(feedback))
    return "{" + f"{weight}:{kind}:" + "~".join(entries) + "}"


def _multi_part(w: _Writer) -> ET.Element:
    """A Cloze question: the stem, then one paragraph per part (its label, then its
    gap) inside <div class="quizapp-parts">, which the importer reads back as parts."""
    spec = w.spec
    question = w.common("cloze")
    parts = spec["parts"]
    weights = [_exact(p.get("weight", 1)) for p in parts]
    scale = math.lcm(*(x.denominator for x in weights))
    integers = [int(x * scale) for x in weights]
    if scale != 1:
        w.changes.append("the part weights are written as whole numbers in the same ratio")
    stem = question.find("questiontext")
    assert stem is not None
    text = stem.find("text")
    assert text is not None
    paragraphs = []
    for part, weight in zip(parts, integers, strict=True):
        holder = ET.Element("part")
        label = w.text_element(holder, "label", part.get("label", part["id"]), inline=True)
        stem.extend(label.findall("file"))  # a label's images travel with the text
        marker = _cloze_marker(w, part, weight)
        part_id = html.escape(str(part["id"]))
        paragraphs.append(f'<p data-part="{part_id}">{label.findtext("text")} {marker}</p>')
    # Question text is HTML held as XML text: ElementTree escapes it when writing.
    text.text = (text.text or "") + '\n<div class="quizapp-parts">' + "".join(paragraphs) + "</div>"
    return question


def _essay(w: _Writer) -> ET.Element:
    spec = w.spec
    question = w.common("essay")
    ET.SubElement(question, "responseformat").text = "editor"
    ET.SubElement(question, "responserequired").text = "1"
    ET.SubElement(question, "responsefieldlines").text = "15"
    ET.SubElement(question, "minwordlimit").text = str(spec.get("min_words", ""))
    ET.SubElement(question, "maxwordlimit").text = str(spec.get("max_words", ""))
    ET.SubElement(question, "attachments").text = "0"
    ET.SubElement(question, "attachmentsrequired").text = "0"
    guide = spec.get("marking_guide", "")
    if spec.get("sample_answer"):
        w.changes.append(
            "sample_answer has no Moodle field: it is written in the grader information"
        )
        guide = (guide + "\n\n" if guide else "") + "Sample answer:\n\n" + spec["sample_answer"]
    w.text_element(question, "graderinfo", guide)
    w.text_element(question, "responsetemplate", "")
    return question


_WRITERS: dict[str, Callable[[_Writer], ET.Element]] = {
    "single_choice": _choice,
    "multiple_response": _choice,
    "true_false": _true_false,
    "numeric": _numeric,
    "short_text": _short_text,
    "matching": _matching,
    "ordering": _ordering,
    "calculated": _calculated,
    "multi_part": _multi_part,
    "essay": _essay,
}


# ---------------------------------------------------------------- the bank


def category_path(folder: tuple[str, ...]) -> str:
    """('week-1', 'shapes') → '$course$/top/week-1/shapes' ('/' in a name doubled, as
    Moodle escapes it)."""
    return "/".join(["$course$", "top", *(name.replace("/", "//") for name in folder)])


def _folder(bank: Bank, loaded: LoadedQuestion) -> tuple[str, ...]:
    return PurePosixPath(Path(loaded.file).as_posix()).parent.parts


def export_bank(bank: Bank) -> Exported:
    """The bank's questions as one Moodle XML file, and what could not be said."""
    root = ET.Element("quiz")
    exported = Exported(b"")
    by_folder: dict[tuple[str, ...], list[LoadedQuestion]] = {}
    for loaded in sorted(bank.questions.values(), key=lambda q: (q.file, q.line)):
        by_folder.setdefault(_folder(bank, loaded), []).append(loaded)
    for folder, questions in sorted(by_folder.items()):
        written: list[ET.Element] = []
        for loaded in questions:
            writer = _Writer(bank, loaded)
            name = loaded.question.key
            try:
                element = writer.write()
            except Unexportable as exc:
                exported.notes.append(Note(loaded.file, loaded.line, name, str(exc), True))
                continue
            written.append(element)
            exported.questions.append(name)
            for change in dict.fromkeys(writer.changes):
                exported.notes.append(Note(loaded.file, loaded.line, name, change))
        if not written:
            continue
        category = ET.SubElement(root, "question", {"type": "category"})
        ET.SubElement(ET.SubElement(category, "category"), "text").text = category_path(folder)
        root.extend(written)
    exported.quizzes = sorted(q.file for q in bank.quizzes.values())
    ET.indent(root, space="  ")
    exported.xml = ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
    return exported
