"""Moodle XML (Moodle's "Moodle XML format" export) → spec dicts for this project's YAML.

Parsed with defusedxml's SAX reader: no DTD, no entity expansion, no external
references (a "billion laughs" or an XXE file is refused, not expanded); the file size, the
nesting depth and the number of questions are bounded as the YAML loader bounds its files.

Types that map (see docs/question-bank.md, "Bringing banks from Moodle"): multichoice
(single → single_choice with partial fractions, multiple → multiple_response), truefalse,
shortanswer (`*` wildcards become patterns), numerical (tolerance, the unit with
multiplier 1), matching, ordering (qtype_ordering), calculated and calculatedsimple (the
dataset items become the parameter's values), multianswer/cloze (→ multi_part), essay.
`description` is not a question: it is skipped and reported. Every other type, and
anything that would change what a student is asked or how they are marked, is reported
with the question's source line.
"""

from __future__ import annotations

import ast
import base64
import binascii
import html
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler
from xml.sax.xmlreader import AttributesImpl, Locator

# defusedxml ships no types (types-defusedxml is not a dependency): two calls are used.
import defusedxml.sax
from defusedxml import DefusedXmlException

from quizapp.bank.formats import (
    MAX_IMAGE_BYTES,
    MAX_INPUT_BYTES,
    MAX_QUESTIONS,
    Converted,
    ConvertedQuestion,
    ConvertError,
    IdMaker,
    Note,
    slug,
)
from quizapp.bank.formats.html_markdown import escape_text, html_to_markdown, text_with_maths
from quizapp.domain.expressions import ExpressionError, parse_expression
from quizapp.domain.questions import QUESTION_ID

MAX_DEPTH = 40
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_TAGS = re.compile(r"<[a-zA-Z/][^>]*>")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[Node] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def first(self, tag: str) -> Node | None:
        return next((c for c in self.children if c.tag == tag), None)

    def all(self, tag: str) -> list[Node]:
        return [c for c in self.children if c.tag == tag]

    def value(self, tag: str, default: str = "") -> str:
        node = self.first(tag)
        return node.text.strip() if node is not None else default

    def inner(self, tag: str) -> str:
        """The <text> of child `tag` (Moodle's <name><text>..</text></name> shape)."""
        node = self.first(tag)
        return node.value("text") if node is not None else ""

    def walk(self) -> list[Node]:
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


class _Builder(ContentHandler):
    def __init__(self) -> None:
        super().__init__()
        self.root: Node | None = None
        self.stack: list[Node] = []
        self.locator: Locator | None = None
        self.questions = 0

    def setDocumentLocator(self, locator: Locator) -> None:  # noqa: N802 (SAX's name)
        self.locator = locator

    def startElement(self, name: str, attrs: AttributesImpl) -> None:  # noqa: N802
        line = (self.locator.getLineNumber() or 0) if self.locator is not None else 0
        if len(self.stack) >= MAX_DEPTH:
            raise ConvertError(f"line {line}: nested more than {MAX_DEPTH} levels deep")
        if name == "question":
            self.questions += 1
            if self.questions > MAX_QUESTIONS:
                raise ConvertError(f"more than {MAX_QUESTIONS} questions in one file")
        node = Node(name, {k: attrs.getValue(k) for k in attrs.getNames()}, line)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def endElement(self, name: str) -> None:  # noqa: N802
        self.stack.pop()

    def characters(self, content: str) -> None:
        if self.stack:
            self.stack[-1].parts.append(content)


def parse_xml(data: bytes) -> Node:
    if len(data) > MAX_INPUT_BYTES:
        raise ConvertError(f"larger than {MAX_INPUT_BYTES // 1_000_000} MB")
    builder = _Builder()
    try:
        defusedxml.sax.parseString(data, builder, forbid_dtd=True)
    except SAXParseException as exc:
        where = f"line {exc.getLineNumber()}"
        raise ConvertError(f"{where}: not well-formed XML: {exc.getMessage()}") from None
    except DefusedXmlException as exc:
        kind = type(exc).__name__
        raise ConvertError(f"refused: {kind} (DTDs and entities are not read)") from None
    if builder.root is None:
        raise ConvertError("empty document")
    return builder.root


class Skip(Exception):
    """This question does not map; the message says why."""


_CATEGORY_PREFIX = re.compile(r"^\$(course|system|module|cat\d*)\$/?")


def category_folder(path: str) -> tuple[str, ...]:
    """'$course$/top/Default for C1/Week 1' → ('default-for-c1', 'week-1')."""
    path = _CATEGORY_PREFIX.sub("", path.strip())
    # Moodle escapes a '/' inside a category name as '//'.
    names = [p.replace("\0", "/") for p in path.replace("//", "\0").split("/")]
    names = [n for n in names if n.strip()]
    if names and names[0] == "top":
        names = names[1:]
    return tuple(slug(n, "category") for n in names)


def _number(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise Skip(f"{what} {text!r} is not a number") from None
    if not value.is_finite() or abs(value.adjusted()) > 100:
        raise Skip(f"{what} {text!r} is out of range")
    return value


def plain_number(value: Decimal) -> int | float | str:
    """A Decimal as the YAML number a person would write (exact: a string if a float
    would not print the same digits)."""
    value = value.normalize() if value != 0 else Decimal(0)
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else format(value, "f")


# Moodle's grade options that are not exact decimals, as Moodle writes them (7 digits of
# the fraction): 33.33333 % is 1/3, so a round trip keeps the exact credit.
_REPEATING = {
    Decimal(f"{n / d:.7f}"): f"{n}/{d}"
    for d in (3, 6, 7, 9, 11, 12)
    for n in range(1, d)
    if math.gcd(n, d) == 1 and (10**7 * n) % d
}


def credit(value: Decimal) -> int | float | str:
    """A credit (0..1, Moodle's percentage / 100) as YAML writes it: '1/3' for Moodle's
    33.33333 %, otherwise the decimal."""
    exact = _REPEATING.get(abs(value).quantize(Decimal("1e-7")))
    if exact is not None:
        return exact if value > 0 else "-" + exact
    return plain_number(value)


def fraction_of(node: Node) -> Decimal:
    """An <answer fraction="50">'s credit as 0..1 (Moodle writes percentages)."""
    return _number(node.attrs.get("fraction", "0"), "fraction") / 100


class _Question:
    """Converts one <question>; collects notes about what changed."""

    def __init__(self, node: Node, key: str, folder: tuple[str, ...], out: Converted) -> None:
        self.node = node
        self.key = key
        self.folder = folder
        self.out = out
        self.changes: list[str] = []
        self.files: dict[str, bytes] = {}
        for n in node.walk():
            if n.tag == "file" and n.attrs.get("encoding") == "base64":
                try:
                    self.files[n.attrs.get("name", "")] = base64.b64decode(n.text, validate=False)
                except (binascii.Error, ValueError):
                    self.changes.append(f"the file {n.attrs.get('name')!r} is not valid base64")

    def image(self, name: str) -> str | None:
        data = self.files.get(name)
        if data is None or not name.lower().endswith(IMAGE_TYPES):
            return None
        if len(data) > MAX_IMAGE_BYTES:
            self.changes.append(f"the image {name!r} is larger than 2 MB")
            return None
        filename = f"{self.key}-{slug(Path(name).stem, 'image')}{Path(name).suffix.lower()}"
        self.out.images[(self.folder, filename)] = data
        return f"images/{filename}"

    def markdown(self, node: Node | None, where: str) -> str:
        """The Markdown of a Moodle text element (<questiontext format=".."><text>..)."""
        if node is None:
            return ""
        raw = node.value("text") if node.first("text") is not None else node.text.strip()
        fmt = node.attrs.get("format", "html")
        if fmt == "markdown":
            return raw
        if fmt == "html" or (fmt == "moodle_auto_format" and _TAGS.search(raw)):
            text, lost = html_to_markdown(raw, self.image)
            for tag in sorted(lost):
                self.changes.append(f"{where}: formatting of <{tag}> dropped, its text kept")
            return text
        if fmt == "plain_text":
            return escape_text(raw)
        return "\n\n".join(text_with_maths(p) for p in re.split(r"\n\s*\n", raw) if p.strip())

    def common(self, type_name: str) -> dict[str, Any]:
        q = self.node
        spec: dict[str, Any] = {"id": self.key, "type": type_name}
        name = q.inner("name").strip()
        if name and name != self.key:
            spec["title"] = name
        tags_node = q.first("tags")
        tags = [t.value("text") for t in tags_node.all("tag")] if tags_node is not None else []
        tags += [self.folder[-1]] if self.folder else []
        tags = list(dict.fromkeys(t for t in tags if t))
        if tags:
            spec["tags"] = tags
        grade = q.value("defaultgrade", "1")
        marks = _number(grade, "defaultgrade")
        if marks <= 0:
            self.changes.append(f"defaultgrade {grade} is not positive: marks 1")
        elif marks != 1:
            spec["marks"] = plain_number(marks)
        spec["stem"] = self.markdown(q.first("questiontext"), "questiontext")
        if not spec["stem"].strip():
            raise Skip("the question text is empty")
        feedback = self.markdown(q.first("generalfeedback"), "generalfeedback")
        if feedback:
            spec["feedback"] = feedback
        for tag in ("correctfeedback", "partiallycorrectfeedback", "incorrectfeedback"):
            if q.inner(tag) and tag not in _STANDARD_COMBINED.get(q.inner(tag), ()):
                self.changes.append(f"{tag} is not carried over (feedback per option is)")
        if q.all("hint"):
            self.changes.append("hints are for Moodle's interactive mode: not carried over")
        return spec

    def answers(self) -> list[Node]:
        return self.node.all("answer")


# Moodle's default combined feedback: dropping it loses nothing.
_STANDARD_COMBINED = {
    "Your answer is correct.": ("correctfeedback",),
    "Your answer is partially correct.": ("partiallycorrectfeedback",),
    "Your answer is incorrect.": ("incorrectfeedback",),
    "<p>Your answer is correct.</p>": ("correctfeedback",),
    "<p>Your answer is partially correct.</p>": ("partiallycorrectfeedback",),
    "<p>Your answer is incorrect.</p>": ("incorrectfeedback",),
}


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes")


def _multichoice(c: _Question) -> dict[str, Any]:
    single = _truthy(c.node.value("single", "true"))
    spec = c.common("single_choice" if single else "multiple_response")
    options: list[dict[str, Any]] = []
    positives: set[Decimal] = set()
    for i, answer in enumerate(c.answers()):
        fraction = fraction_of(answer)
        option: dict[str, Any] = {"text": c.markdown(answer, f"answer {i + 1}")}
        if single:
            if fraction >= 1:
                option["correct"] = True
            elif fraction > 0:
                option["fraction"] = credit(fraction)
            elif fraction < 0:
                c.changes.append(f"answer {i + 1}: negative credit {fraction:.0%} became 0")
        elif fraction > 0:
            option["correct"] = True
            positives.add(fraction)
        feedback = c.markdown(answer.first("feedback"), f"answer {i + 1} feedback")
        if feedback:
            option["feedback"] = feedback
        options.append(option)
    if single and sum(1 for o in options if o.get("correct")) != 1:
        raise Skip("a single-answer multichoice needs exactly one answer worth 100 %")
    if not single:
        if not positives:
            raise Skip("no answer has positive credit")
        spec["scoring"] = "right_minus_wrong"
        if not any(fraction_of(a) < 0 for a in c.answers()):
            c.changes.append(
                "Moodle took nothing off for a wrong choice; here each wrong choice cancels "
                "a right one (right minus wrong)"
            )
        if len(positives) > 1:
            c.changes.append(
                "the correct answers had different weights; each now counts the same "
                "(right minus wrong)"
            )
    spec["options"] = options
    if not _truthy(c.node.value("shuffleanswers", "1")):
        spec["shuffle"] = False
    return spec


def _truefalse(c: _Question) -> dict[str, Any]:
    spec = c.common("true_false")
    answer: bool | None = None
    for node in c.answers():
        value = node.value("text").lower()
        if value not in ("true", "false"):
            raise Skip(f"a true/false answer is {value!r}")
        if fraction_of(node) >= 1:
            answer = value == "true"
        feedback = c.markdown(node.first("feedback"), f"{value} feedback")
        if feedback:
            spec[f"feedback_{value}"] = feedback
    if answer is None:
        raise Skip("neither true nor false is worth 100 %")
    spec["answer"] = answer
    return spec


def wildcard_pattern(text: str) -> str:
    """Moodle's shortanswer '*' (any characters) as an RE2 pattern."""
    return ".*".join(re.escape(part) for part in text.split("*"))


def _text_answers(
    c: _Question, nodes: list[Node], where: str
) -> tuple[list[dict[str, Any]], list[str]]:
    answers: list[dict[str, Any]] = []
    wrong: list[str] = []
    for i, node in enumerate(nodes):
        text = node.value("text")
        fraction = fraction_of(node)
        if fraction <= 0:
            if "*" in text:
                c.changes.append(f"{where} {i + 1}: the catch-all '{text}' (0 %) is implied")
            elif text:
                wrong.append(text)
            continue
        entry: dict[str, Any] = (
            {"pattern": wildcard_pattern(text)} if "*" in text else {"text": text}
        )
        if fraction < 1:
            entry["fraction"] = credit(fraction)
        feedback = c.markdown(node.first("feedback"), f"{where} {i + 1} feedback")
        if feedback:
            entry["feedback"] = feedback
        answers.append(entry)
    return answers, wrong


def _shortanswer(c: _Question) -> dict[str, Any]:
    spec = c.common("short_text")
    answers, wrong = _text_answers(c, c.answers(), "answer")
    if not any("text" in a and "fraction" not in a for a in answers):
        raise Skip("no plain answer (without *) is worth 100 %")
    if _truthy(c.node.value("usecase", "0")):
        spec["case_sensitive"] = True
    spec["answers"] = answers
    if wrong:
        spec["wrong_answers"] = wrong
    return spec


def _numeric_fields(c: _Question, nodes: list[Node], where: str = "answer") -> dict[str, Any]:
    fields: dict[str, Any] = {}
    best = [n for n in nodes if fraction_of(n) >= 1 and n.value("text") != "*"]
    if not best:
        raise Skip("no numeric answer is worth 100 %")
    first = best[0]
    answer = _number(first.value("text"), where)
    fields["answer"] = plain_number(answer)
    tolerance = _number(first.value("tolerance", "0") or "0", "tolerance")
    fields["tolerance"] = plain_number(abs(tolerance))
    feedback = c.markdown(first.first("feedback"), f"{where} feedback")
    if feedback:
        c.changes.append(f"the feedback of the correct {where} is not carried over")
    wrong: list[Any] = []
    for i, node in enumerate(nodes):
        if node is first:
            continue
        text, fraction = node.value("text"), fraction_of(node)
        if text == "*":
            continue
        if fraction >= 1:
            c.changes.append(f"another correct {where} {text} is dropped (one answer kept)")
            continue
        value = _number(text, where)
        note = c.markdown(node.first("feedback"), f"{where} {i + 1} feedback")
        if fraction <= 0 and not note:
            if abs(value - answer) > abs(tolerance):
                wrong.append(plain_number(value))
            continue
        entry: dict[str, Any] = {"answer": plain_number(value)}
        if fraction > 0:
            entry["fraction"] = credit(fraction)
        if note:
            entry["feedback"] = note
        own = abs(_number(node.value("tolerance", "0") or "0", "tolerance"))
        if own != abs(tolerance):
            entry["tolerance"] = plain_number(own)
        wrong.append(entry)
    if wrong:
        fields["wrong_answers"] = wrong
    return fields


def _units(c: _Question) -> str:
    units = c.node.first("units")
    if units is None:
        return ""
    base = ""
    for unit in units.all("unit"):
        name = unit.value("unit_name")
        if Decimal(unit.value("multiplier", "1") or "1") == 1 and not base:
            base = name
        else:
            c.changes.append(f"the unit {name!r} (other multipliers) is not accepted")
    return base


def _numerical(c: _Question) -> dict[str, Any]:
    spec = c.common("numeric")
    spec.update(_numeric_fields(c, c.answers()))
    units = _units(c)
    if units:
        spec["units"] = units
    return spec


def _matching(c: _Question) -> dict[str, Any]:
    spec = c.common("matching")
    pairs: list[dict[str, str]] = []
    distractors: list[str] = []
    for i, sub in enumerate(c.node.all("subquestion")):
        left = c.markdown(sub, f"subquestion {i + 1}")
        answer = sub.first("answer")
        # Moodle shows these as plain text; \( \) maths (as quizapp's export writes it)
        # is kept as maths.
        right = text_with_maths(answer.value("text")) if answer is not None else ""
        if not right:
            continue
        if left:
            pairs.append({"left": left, "right": right})
        elif right not in distractors:
            distractors.append(right)
    rights = {p["right"] for p in pairs}
    distractors = [d for d in distractors if d not in rights]
    if len(pairs) < 2:
        raise Skip("fewer than two pairs")
    spec["pairs"] = pairs
    if distractors:
        spec["distractors"] = distractors
    return spec


_ORDERING_RULES = {
    "-1": "all_or_nothing",
    "all_or_nothing": "all_or_nothing",
    "0": "positions",
    "absolute_position": "positions",
    "1": "adjacent_pairs",
    "relative_next_exclude_last": "adjacent_pairs",
    "": "adjacent_pairs",
}


def _ordering(c: _Question) -> dict[str, Any]:
    spec = c.common("ordering")
    nodes = sorted(c.answers(), key=lambda n: _number(n.attrs.get("fraction", "0"), "order"))
    items = [c.markdown(n, f"item {i + 1}") for i, n in enumerate(nodes)]
    if len(items) < 2:
        raise Skip("fewer than two items")
    spec["items"] = items
    grading = c.node.value("gradingtype").lower()
    spec["scoring"] = _ORDERING_RULES.get(grading, "adjacent_pairs")
    if grading not in _ORDERING_RULES:
        c.changes.append(f"grading type {grading!r} is scored as adjacent pairs")
    select = c.node.value("selecttype").lower()
    if select not in ("", "0", "all", "selectall"):
        c.changes.append("Moodle showed a subset of the items; all are shown")
    return spec


_DATASET_REF = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")


class _FromMoodle(ast.NodeTransformer):
    """Moodle's PHP functions that the expression language writes otherwise."""

    def visit_Call(self, node: ast.Call) -> ast.expr:  # noqa: N802 (ast's name)
        self.generic_visit(node)
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name == "pow" and len(node.args) == 2 and not node.keywords:
            return ast.BinOp(node.args[0], ast.Pow(), node.args[1])
        if name == "log10" and len(node.args) == 1 and not node.keywords:
            return ast.Call(node.func, [node.args[0], ast.Constant(10)], [])
        return node


def _from_moodle(formula: str) -> str:
    if not re.search(r"\b(pow|log10)\s*\(", formula):
        return formula
    try:
        tree = ast.parse(formula, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return formula  # parse_expression below says what is wrong with it
    converted = ast.fix_missing_locations(_FromMoodle().visit(tree))
    return ast.unparse(converted).replace(" ** ", "^")


def _formula(text: str, names: list[str]) -> str:
    formula = _DATASET_REF.sub(r"\1", text.strip())
    formula = re.sub(r"\bpi\(\)", "pi", formula)
    formula = _from_moodle(formula)
    try:
        parse_expression(formula, variables=names)
    except ExpressionError as exc:
        raise Skip(f"the formula {text!r} cannot be used: {exc}") from None
    return formula


def _calculated(c: _Question) -> dict[str, Any]:
    spec = c.common("calculated")
    if re.search(r"\{=", spec["stem"]):
        raise Skip("the text computes {=...} expressions, which have no equivalent")
    parameters: dict[str, Any] = {}
    definitions = c.node.first("dataset_definitions")
    for definition in definitions.all("dataset_definition") if definitions else []:
        name = definition.inner("name")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,29}", name):
            raise Skip(f"the wildcard name {name!r} cannot be a parameter name")
        items = definition.first("dataset_items")
        values = [
            plain_number(_number(item.value("value"), f"value of {name}"))
            for item in (items.all("dataset_item") if items else [])
        ]
        if values:
            parameters[name] = {"values": list(dict.fromkeys(values))}
        else:
            low = _number(definition.inner("minimum"), "minimum")
            high = _number(definition.inner("maximum"), "maximum")
            decimals = int(definition.inner("decimals") or "0")
            step = Decimal(1).scaleb(-min(max(decimals, 0), 10))
            parameters[name] = {
                "range": [plain_number(low), plain_number(high)],
                "step": plain_number(step),
            }
    if not parameters:
        raise Skip("no wildcards (datasets)")
    spec["stem"] = _DATASET_REF.sub(
        lambda m: "{{" + m.group(1) + "}}" if m.group(1) in parameters else m.group(0),
        spec["stem"],
    )
    if "feedback" in spec:
        spec["feedback"] = _DATASET_REF.sub(
            lambda m: "{{" + m.group(1) + "}}" if m.group(1) in parameters else m.group(0),
            spec["feedback"],
        )
    spec["parameters"] = parameters
    answers = c.answers()
    best = [a for a in answers if fraction_of(a) >= 1]
    if not best:
        raise Skip("no answer formula is worth 100 %")
    names = list(parameters)
    spec["answer"] = _formula(best[0].value("text"), names)
    tolerance = _number(best[0].value("tolerance", "0") or "0", "tolerance")
    kind = best[0].value("tolerancetype", "1")
    if kind == "1":
        spec["relative_tolerance"] = plain_number(abs(tolerance))
    elif kind == "2":
        spec["tolerance"] = plain_number(abs(tolerance))
    else:
        raise Skip("geometric tolerance has no equivalent")
    wrong: list[Any] = []
    for i, node in enumerate(answers):
        fraction = fraction_of(node)
        if node is best[0] or fraction >= 1:
            if node is not best[0]:
                c.changes.append("only the first correct formula is kept")
            continue
        formula = _formula(node.value("text"), names)
        note = c.markdown(node.first("feedback"), f"answer {i + 1} feedback")
        if fraction <= 0 and not note:
            wrong.append(formula)
            continue
        entry: dict[str, Any] = {"answer": formula}
        if fraction > 0:
            entry["fraction"] = credit(fraction)
        if note:
            entry["feedback"] = note
        wrong.append(entry)
    if wrong:
        spec["wrong_answers"] = wrong
    units = _units(c)
    if units:
        spec["units"] = units
    return spec


def _essay(c: _Question) -> dict[str, Any]:
    spec = c.common("essay")
    for tag, key in (("minwordlimit", "min_words"), ("maxwordlimit", "max_words")):
        value = c.node.value(tag)
        if value.isdigit() and int(value) > 0:
            spec[key] = int(value)
    guide = c.markdown(c.node.first("graderinfo"), "graderinfo")
    if guide:
        spec["marking_guide"] = guide
    if c.node.inner("responsetemplate"):
        c.changes.append("the response template is not carried over")
    if c.node.value("attachments") not in ("", "0"):
        c.changes.append("file attachments are not supported: text only")
    return spec


# quizapp's export writes a multi_part question's parts after its stem, one paragraph each
# (the label, then the gap), so that they come back as parts with their ids and labels.
_PARTS_BLOCK = re.compile(r'\s*<div class="quizapp-parts">(.*)</div>\s*$', re.DOTALL)
_PART = re.compile(r'<p data-part="([^"]*)">(.*?)</p>', re.DOTALL)


def _multianswer(c: _Question) -> dict[str, Any]:
    from quizapp.bank.formats.cloze import TOKEN, cloze_parts

    spec = c.common("multi_part")
    text = c.node.first("questiontext")
    assert text is not None  # common() refuses an empty text
    source = text.value("text")
    block = _PARTS_BLOCK.search(source)
    labelled = block is not None and bool(_PART.findall(block.group(1)))
    if block is not None and labelled:
        source = source[: block.start()]
    marked, parts, changes = cloze_parts(source) if not labelled else (source, [], [])
    if labelled:
        assert block is not None
        for part_id, paragraph in _PART.findall(block.group(1)):
            label_html, gaps, part_changes = cloze_parts(paragraph)
            if len(gaps) != 1:
                raise Skip(f"part {html.unescape(part_id)!r} has {len(gaps)} gaps, not one")
            label, lost = html_to_markdown(label_html.replace(TOKEN.format(0), ""), c.image)
            for tag in sorted(lost):
                c.changes.append(f"part label: formatting of <{tag}> dropped, its text kept")
            part = gaps[0]
            part["id"] = html.unescape(part_id)
            part["label"] = label.strip()
            parts.append(part)
            changes.extend(part_changes)
    fake = Node("questiontext", dict(text.attrs), text.line)
    fake.children.append(Node("text", {}, text.line, parts=[marked]))
    stem = c.markdown(fake, "questiontext")
    if not labelled:
        for i, part in enumerate(parts):
            stem = stem.replace(TOKEN.format(i), f"**({part['id']})**")
    spec["stem"] = stem
    spec["parts"] = parts
    c.changes.extend(changes)
    return spec


CONVERTERS = {
    "multichoice": _multichoice,
    "truefalse": _truefalse,
    "shortanswer": _shortanswer,
    "numerical": _numerical,
    "matching": _matching,
    "ordering": _ordering,
    "calculated": _calculated,
    "calculatedsimple": _calculated,
    "cloze": _multianswer,
    "multianswer": _multianswer,
    "essay": _essay,
}

UNMAPPED = {
    "description": "a description is text, not a question: put it in the quiz's description",
    "random": "a random slot belongs in a quiz file (a pool slot), not in a bank",
    "randomsamatch": "random short-answer matching has no equivalent",
    "calculatedmulti": "calculated multiple choice has no equivalent",
    "ddwtos": "drag and drop into text has no equivalent",
    "gapselect": "select missing words has no equivalent",
    "ddimageortext": "drag and drop onto image has no equivalent",
    "ddmarker": "drag and drop markers has no equivalent",
}


def read_moodle_xml(data: bytes, source: str = "moodle.xml") -> Converted:
    """Convert a Moodle XML export; raises ConvertError if the file cannot be read."""
    root = parse_xml(data)
    if root.tag != "quiz":
        raise ConvertError(f"the root element is <{root.tag}>, not <quiz>")
    out = Converted(source)
    ids = IdMaker()
    folder: tuple[str, ...] = ()
    for node in root.all("question"):
        kind = node.attrs.get("type", "")
        name = node.inner("name").strip() or f"question at line {node.line}"
        if kind == "category":
            folder = category_folder(node.inner("category"))
            continue
        convert = CONVERTERS.get(kind)
        if convert is None:
            reason = UNMAPPED.get(kind, f"the question type {kind!r} has no equivalent")
            out.notes.append(Note(node.line, name, reason, skipped=True))
            continue
        # Moodle's own stable id (idnumber, which quizapp's export writes) when it is a
        # valid question id; otherwise one made from the name.
        idnumber = node.value("idnumber")
        if QUESTION_ID.match(idnumber) and idnumber not in ids.used:
            key = idnumber
            ids.used.add(key)
        else:
            key = ids.make(name)
        question = _Question(node, key, folder, out)
        images_before = dict(out.images)
        try:
            spec = convert(question)
        except Skip as exc:
            out.images = images_before
            ids.used.discard(key)
            out.notes.append(Note(node.line, name, str(exc), skipped=True))
            continue
        out.questions.append(ConvertedQuestion(spec, folder, node.line))
        for change in dict.fromkeys(question.changes):
            out.notes.append(Note(node.line, name, change))
    return out
