"""Load a question bank folder: YAML → domain objects, every problem with file and line.

The pipeline is load → validate → sync (PrairieLearn's): this module never touches
the database, and reports every problem of the whole bank in one run, as
``file:line: field: message``.

A bank file is a YAML mapping with ``questions:`` (a list of questions), ``quiz:``
(one quiz), or both.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, ScalarEvent

from quizapp.bank.assets import freeze_images
from quizapp.domain.layout import SlotPlan
from quizapp.domain.questions import Question, content_hash, read_question
from quizapp.domain.quiz import QuizDef, read_quiz
from quizapp.domain.spec import Path as SpecPath
from quizapp.domain.spec import Problems, format_path
from quizapp.domain.text_checks import invalid_text_reason

MAX_FILE_BYTES = 2_000_000
TOP_LEVEL_KEYS = {"questions", "quiz"}
# A question is a few levels deep (questions > item > parts > options > field); the
# composer and every walk over the document recurse once per level.
MAX_YAML_DEPTH = 50
# Explicit tags that change nothing (a container spelled out, "!" for plain text).
# Every other tag either runs a constructor the format does not need (!!python/...,
# !!binary, !!set), can fail outside the parser (!!int x), or, as !!str does in
# round-trip mode, gives a tagged object instead of text: quotes make text ("007").
ALLOWED_TAGS = {"!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


@dataclass(frozen=True, order=True)
class BankProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass(frozen=True)
class LoadedQuestion:
    question: Question
    spec: dict[str, Any]  # plain data, as stored in a question version
    hash: str
    file: str
    line: int


@dataclass(frozen=True)
class LoadedQuiz:
    quiz: QuizDef
    slots: tuple[SlotPlan, ...]
    file: str
    line: int


@dataclass
class Bank:
    root: Path
    questions: dict[str, LoadedQuestion] = field(default_factory=dict)
    quizzes: dict[str, LoadedQuiz] = field(default_factory=dict)
    problems: list[BankProblem] = field(default_factory=list)
    assets: dict[str, Path] = field(default_factory=dict)  # image files by SHA-256
    # Ids of questions written in the bank but not loaded, because they have problems of
    # their own or their file could not be read: where they are (already reported), so
    # a quiz slot using one does not also say there is no such question.
    unusable: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def pool(self, tag: str) -> list[str]:
        return sorted(k for k, q in self.questions.items() if tag in q.question.tags)


class _Lines:
    """Maps a field path inside one YAML document to its 1-based line number."""

    def __init__(self, root: Any, base_line: int = 1):
        self.lines: dict[SpecPath, int] = {(): base_line}
        self._walk(root, ())

    def _walk(self, node: Any, path: SpecPath) -> None:
        if isinstance(node, CommentedMap):
            for key in node:
                line = node.lc.key(key)[0] + 1
                self.lines[path + (str(key),)] = line
                self._walk(node[key], path + (str(key),))
        elif isinstance(node, CommentedSeq):
            for i, item in enumerate(node):
                self.lines[path + (i,)] = node.lc.item(i)[0] + 1
                self._walk(item, path + (i,))

    def line_of(self, path: SpecPath) -> int:
        while path not in self.lines:
            path = path[:-1]
        return self.lines[path]


def to_plain(node: Any) -> Any:
    """ruamel's commented containers and timestamps → plain dicts, lists and ISO strings."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, dt.datetime | dt.date):
        return node.isoformat()
    return node


class _BankComposer(Composer):
    """ruamel's composer with a bank's limits, each refused where it is written.

    Anchors and aliases are refused outright: a bank never needs them, and nine aliases
    of nine aliases (a "billion laughs") expand to 10^9 nodes in every walk over the
    document (3 GB and 40 s measured here). Text that cannot be stored (a "\\ud800"
    escape, "\\0") is refused here too: it would only fail later, on a page or in a CSV.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        mark = event.start_mark
        if isinstance(event, AliasEvent):
            raise ComposerError(None, None, _NO_ALIASES + f" (found *{event.anchor})", mark)
        if event.anchor is not None:
            raise ComposerError(None, None, _NO_ALIASES + f" (found &{event.anchor})", mark)
        tag = event.ctag
        if tag is not None and str(tag) not in ALLOWED_TAGS:
            raise ComposerError(
                None,
                None,
                f"the YAML tag {_short_tag(str(tag))} is not allowed in a bank "
                '(put text in quotes instead, e.g. "007")',
                mark,
            )
        if self.depth >= MAX_YAML_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", mark)
        if isinstance(event, ScalarEvent) and (reason := invalid_text_reason(event.value)):
            raise ComposerError(None, None, f"a character that cannot be stored ({reason})", mark)
        return super().compose_node(parent, index)


_NO_ALIASES = (
    "YAML anchors and aliases (&name, *name) are not allowed in a bank: write the value out"
)


def _short_tag(tag: str) -> str:
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix) :] if tag.startswith(prefix) else tag


class _BankConstructor(RoundTripConstructor):
    """Values the resolver recognised but Python cannot build (2027-13-45, an integer of
    5,000 digits) become located YAML errors instead of a traceback."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            problem = f"cannot read this value: {str(exc).split(':')[0]}"
            raise ConstructorError(None, None, problem, node.start_mark) from None


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Composer = _BankComposer
    yaml.Constructor = _BankConstructor
    return yaml


def bank_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.suffix in {".yaml", ".yml"} and path.is_file() and not path.name.startswith("."):
            yield path


def load_bank(root: Path | str, *, course_zone: str = "Europe/London") -> Bank:
    """Read every YAML file under `root`; the result lists all problems found."""
    root = Path(root)
    bank = Bank(root)
    if not root.exists():
        bank.problems.append(BankProblem(str(root), 0, "(path)", "no such file or folder"))
        return bank
    base = root if root.is_dir() else root.parent
    quiz_sources: list[tuple[str, _Lines, QuizDef]] = []
    for path in bank_files(root):
        name = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
        document = _read_yaml(path, name, bank)
        if document is None:
            for key in _written_ids(path):
                bank.unusable.setdefault(key, f"{name}, which could not be read")
            continue
        lines = _Lines(document)
        problems = Problems()
        if not isinstance(document, dict):
            problems.add((), "a bank file must be a mapping with questions: and/or quiz:")
        else:
            for key in document:
                if key not in TOP_LEVEL_KEYS:
                    problems.add((str(key),), "unknown field (expected questions or quiz)")
            raw_questions = document.get("questions")
            if raw_questions is not None and not isinstance(raw_questions, list):
                problems.add(("questions",), "expected a list of questions")
            elif raw_questions is not None:
                for i, raw in enumerate(raw_questions):
                    _add_question(bank, raw, ("questions", i), problems, name, lines)
            if "quiz" in document:
                quiz = read_quiz(to_plain(document["quiz"]), ("quiz",), problems, course_zone)
                if quiz is not None:
                    quiz_sources.append((name, lines, quiz))
        _record(bank, problems, name, lines)

    for name, lines, quiz in quiz_sources:
        problems = Problems()
        slots = _plan_slots(bank, quiz, problems)
        if quiz.key in bank.quizzes:
            first = bank.quizzes[quiz.key]
            problems.add(
                ("quiz", "id"), f"duplicate quiz id {quiz.key!r} (also {first.file}:{first.line})"
            )
        elif not problems:
            bank.quizzes[quiz.key] = LoadedQuiz(quiz, slots, name, lines.line_of(("quiz",)))
        _record(bank, problems, name, lines)
    bank.problems.sort()
    return bank


def _read_yaml(path: Path, name: str, bank: Bank) -> Any:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            bank.problems.append(BankProblem(name, 0, "(file)", "larger than 2 MB"))
            return None
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        bank.problems.append(BankProblem(name, 0, "(file)", "is not UTF-8 text"))
        return None
    except OSError as exc:
        bank.problems.append(BankProblem(name, 0, "(file)", f"cannot be read: {exc.strerror}"))
        return None
    try:
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        last_line = len(text.rstrip().splitlines()) - 1
        if exc.context_mark is not None and mark is not None and mark.line > last_line:
            # Parsing gave up at the end of the file: where the construct began helps more.
            mark = exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if _is_indentation(str(exc.problem or "")) and mark is not None:
            message = _indentation_message(text, mark.line)
        bank.problems.append(BankProblem(name, line, "(yaml)", message or "malformed YAML"))
    except YAMLError as exc:
        bank.problems.append(BankProblem(name, 0, "(yaml)", str(exc).splitlines()[0]))
    return None


# What ruamel's parser says when a line is indented more or less than its neighbours.
_INDENTATION_PROBLEMS = (
    "mapping values are not allowed here",
    "expected <block end>",
    "could not find expected ':'",
    "did not find expected key",
    "did not find expected '-' indicator",
)


def _is_indentation(problem: str) -> bool:
    return any(phrase in problem for phrase in _INDENTATION_PROBLEMS)


def _indentation_message(text: str, line: int) -> str:
    """One sentence for a parser error caused by indentation, quoting the line."""
    lines = text.splitlines()
    shown = lines[line].strip() if 0 <= line < len(lines) else ""
    quoted = f" ({shown[:60]!r})" if shown else ""
    return (
        f"bad indentation: this line{quoted} does not line up with the lines above it; "
        "the fields of one question (or one list item) must start in the same column"
    )


def _add_question(
    bank: Bank, raw: Any, path: SpecPath, problems: Problems, name: str, lines: _Lines
) -> None:
    spec = to_plain(raw)
    question = read_question(spec, path, problems)
    if question is None:
        key = spec.get("id") if isinstance(spec, dict) else None
        if isinstance(key, str) and key not in bank.questions:
            bank.unusable.setdefault(key, f"{name}:{lines.line_of(path)}")
        return
    if question.key in bank.questions:
        first = bank.questions[question.key]
        problems.add(
            path + ("id",), f"duplicate id {question.key!r} (also {first.file}:{first.line})"
        )
        return
    # Images are frozen into the spec (their SHA-256 in the address), so an edited image
    # is a new version of the question: see bank/assets.py.
    base = bank.root if bank.root.is_dir() else bank.root.parent
    stored, images = freeze_images(spec, base, name)
    bank.assets.update(images)
    bank.questions[question.key] = LoadedQuestion(
        question, stored, content_hash(stored), name, lines.line_of(path)
    )


def _plan_slots(bank: Bank, quiz: QuizDef, problems: Problems) -> tuple[SlotPlan, ...]:
    """Expand `draw: N from pool` into N slots and check every reference."""
    plans: list[SlotPlan] = []
    drawn_from: dict[str, int] = {}
    broken: list[str] = []
    for spec in quiz.slots:
        if spec.question is not None:
            loaded = bank.questions.get(spec.question)
            if loaded is None and spec.question in bank.unusable:
                broken.append(spec.question)
                continue
            if loaded is None:
                problems.add(spec.path + ("question",), f"no question with id {spec.question!r}")
                continue
            marks = spec.marks if spec.marks is not None else loaded.question.marks
            plans.append(SlotPlan(len(plans) + 1, marks, (spec.question,)))
            continue
        assert spec.pool is not None
        members = bank.pool(spec.pool)
        drawn_from[spec.pool] = drawn_from.get(spec.pool, 0) + spec.draw
        if len(members) < drawn_from[spec.pool]:
            problems.add(
                spec.path + ("draw",),
                f"pool {spec.pool!r} has {len(members)} question(s), fewer than the "
                f"{drawn_from[spec.pool]} drawn from it",
            )
            continue
        marks_set = {bank.questions[k].question.marks for k in members}
        if spec.marks is None and len(marks_set) > 1:
            problems.add(spec.path, f"questions in pool {spec.pool!r} differ in marks; set marks:")
            continue
        marks = spec.marks if spec.marks is not None else next(iter(marks_set), Fraction(1))
        for _ in range(spec.draw):
            plans.append(SlotPlan(len(plans) + 1, marks, tuple(members), spec.pool))
    if broken:
        # One line for them all: each question's own problems are reported where it is.
        where = "; ".join(f"{key!r} ({bank.unusable[key]})" for key in dict.fromkeys(broken))
        problems.add(
            ("quiz", "slots"),
            f"uses {len(set(broken))} question(s) with problems reported above: {where}",
        )
    return tuple(plans)


_WRITTEN_ID = re.compile(r"""^\s*-?\s*id:\s*["']?([A-Za-z0-9_.-]+)""", re.MULTILINE)


def _written_ids(path: Path) -> list[str]:
    """The question ids a file that could not be parsed appears to define (`- id: x`
    lines; a quiz's own id is among them, which does no harm)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return _WRITTEN_ID.findall(text)


def _record(bank: Bank, problems: Problems, name: str, lines: _Lines) -> None:
    for p in problems.items:
        bank.problems.append(
            BankProblem(name, lines.line_of(p.path), format_path(p.path), p.message)
        )
