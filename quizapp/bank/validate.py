"""Deep validation of a loaded bank: what loading alone cannot prove.

For every question and many seeds (and, for calculated questions with few enough
parameter combinations, every combination):

- the stem renders: no unknown `{{placeholder}}`, no maths that fails to render;
- the options (or items, or right-hand sides) render distinctly (`render_problems`);
- the variant is not degenerate (a calculated answer that divides by zero, ...);
- a calculated answer declared `integer: true` is a whole number;
- the model answer scores full marks, both as stored and after a round trip through
  the form the student fills in (`form_values` → `accept`): skipped for types that are
  not graded automatically (essays);
- no listed wrong answer or distractor scores full marks.

Once per question: maths in every other Markdown field (options, feedback, labels ...)
renders, and every image it references exists inside the bank (see bank/assets.py).
For every quiz and seed: every slot can be filled (`build_layout`).

Every problem is a BankProblem with the question's file, the line of the field, the
field path and a message; a problem that recurs across seeds is reported once, with
the first seed and how many seeds showed it. The validator never raises on an odd
question: an exception inside a question type is itself a problem.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quizapp.bank.assets import AssetError, image_sources, resolve_asset
from quizapp.bank.loader import Bank, BankProblem, LoadedQuestion, LoadedQuiz, _Lines, _yaml
from quizapp.bank.preview import auto_graded, canonical_question, question_variant
from quizapp.domain.layout import Candidate, LayoutError, build_layout
from quizapp.domain.qtypes.base import InvalidSubmission, QuestionType, Variant
from quizapp.domain.qtypes.calculated import Calculated
from quizapp.domain.qtypes.numeric import ListedAnswer, format_exact
from quizapp.domain.questions import Question
from quizapp.domain.render import math_problems
from quizapp.domain.spec import Path as SpecPath
from quizapp.domain.spec import format_path

DEFAULT_SEEDS = 50
# Calculated questions with at most this many parameter combinations are checked for
# every combination, not only for the seeds.
MAX_EXHAUSTIVE = 2000

# Spec fields that hold Markdown, wherever they appear (options, pairs, parts ...).
MARKDOWN_KEYS = frozenset(
    {
        "stem",
        "feedback",
        "feedback_true",
        "feedback_false",
        "text",
        "left",
        "right",
        "label",
        "shape_hint",
        "sample_answer",
        "marking_guide",
    }
)
# Lists whose items are Markdown.
MARKDOWN_LISTS = frozenset({"distractors", "items", "labels"})
# Under these lists, `text` is an accepted answer, not Markdown.
ANSWER_LISTS = frozenset({"answers"})
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def markdown_fields(spec: Any, path: SpecPath = ()) -> Iterator[tuple[SpecPath, str]]:
    """Every Markdown text of a question spec with its path inside the question."""
    if isinstance(spec, dict):
        for key, value in spec.items():
            sub = path + (str(key),)
            if isinstance(value, str):
                in_answers = len(path) >= 2 and path[-2] in ANSWER_LISTS
                if key in MARKDOWN_KEYS and not (key == "text" and in_answers):
                    yield sub, value
            elif key in MARKDOWN_LISTS and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, str):
                        yield sub + (i,), item
                    else:  # an ordering item written as {id: ..., text: ...}
                        yield from markdown_fields(item, sub + (i,))
            else:
                yield from markdown_fields(value, sub)
    elif isinstance(spec, list):
        for i, item in enumerate(spec):
            yield from markdown_fields(item, path + (i,))


class _Locator:
    """Lines of fields inside the bank's files (each file parsed at most once)."""

    def __init__(self, base: Path):
        self.base = base
        self.files: dict[str, tuple[_Lines, dict[str, int]] | None] = {}

    def _file(self, name: str) -> tuple[_Lines, dict[str, int]] | None:
        if name not in self.files:
            try:
                document = _yaml().load((self.base / name).read_text(encoding="utf-8"))
            except Exception:  # the loader already reported an unreadable file
                document = None
            if isinstance(document, dict):
                index = {}
                for i, raw in enumerate(document.get("questions") or []):
                    if isinstance(raw, dict) and "id" in raw:
                        index[str(raw["id"])] = i
                self.files[name] = (_Lines(document), index)
            else:
                self.files[name] = None
        return self.files[name]

    def question_path(self, loaded: LoadedQuestion) -> SpecPath | None:
        found = self._file(loaded.file)
        if found is None or loaded.question.key not in found[1]:
            return None
        return ("questions", found[1][loaded.question.key])

    def line(self, file: str, path: SpecPath, default: int) -> int:
        found = self._file(file)
        return found[0].line_of(path) if found is not None else default


@dataclass
class _Collector:
    """Problems of one question, grouped so a recurring one is reported once."""

    loaded: LoadedQuestion
    locator: _Locator
    base_path: SpecPath | None
    first: dict[tuple[SpecPath, str], str] = field(default_factory=dict)
    counts: dict[tuple[SpecPath, str], int] = field(default_factory=dict)

    def add(self, field_path: SpecPath, kind: str, message: str) -> None:
        key = (field_path, kind)
        self.first.setdefault(key, message)
        self.counts[key] = self.counts.get(key, 0) + 1

    def problems(self, runs: int) -> list[BankProblem]:
        out = []
        for (sub, _kind), message in self.first.items():
            count = self.counts[(sub, _kind)]
            if count > 1 and runs > 1:
                message += f" (and {count - 1} more of {runs} variants checked)"
            if self.base_path is None:
                path: SpecPath = sub
                label = f"{self.loaded.question.key}.{format_path(sub)}" if sub else ""
                line = self.loaded.line
            else:
                path = self.base_path + sub
                label = format_path(path)
                line = self.locator.line(self.loaded.file, path, self.loaded.line)
            out.append(
                BankProblem(self.loaded.file, line, label or self.loaded.question.key, message)
            )
        return out


def _variants(question: Question, seeds: int) -> Iterator[tuple[str, Variant]]:
    for seed in range(seeds):
        yield f"seed {seed}", question_variant(question, seed)
    body = question.body
    if isinstance(body, Calculated) and body.parameters:
        ranges = []
        for p in body.parameters:
            values = p.values or tuple(
                p.low + p.step * k for k in range(min(p.count, MAX_EXHAUSTIVE + 1))
            )
            ranges.append([(p.name, format_exact(v, None)) for v in values])
        total = 1
        for r in ranges:
            total *= len(r)
        if total <= MAX_EXHAUSTIVE:
            for combo in itertools.product(*ranges):
                params = dict(combo)
                where = ", ".join(f"{k} = {v}" for k, v in params.items())
                yield where, {"params": params}


def validate_question(
    loaded: LoadedQuestion,
    *,
    seeds: int = DEFAULT_SEEDS,
    base: Path | None = None,
    locator: _Locator | None = None,
) -> list[BankProblem]:
    """Every problem of one loaded question (see the module docstring)."""
    base = base if base is not None else Path(".")
    locator = locator or _Locator(base)
    collector = _Collector(loaded, locator, locator.question_path(loaded))
    _check_static(loaded, base, collector)
    runs = 0
    # The question as imported versions rebuild it: seed N is then the variant the
    # preview page shows for seed N.
    question = canonical_question(loaded)
    distinct: set[str] = set()
    for label, variant in _variants(question, seeds):
        runs += 1
        distinct.add(json.dumps(variant, sort_keys=True, default=str))
        try:
            _check_variant(question, label, variant, collector)
        except Exception as exc:  # a question type must never crash on its own variant
            collector.add((), "crash", f"{label}: checking raised {type(exc).__name__}: {exc}")
    # One variant checked 50 times is one variant: no "and 49 more of 50 variants" for a
    # question with no random parts.
    return collector.problems(runs if len(distinct) > 1 else 1)


def _check_static(loaded: LoadedQuestion, base: Path, collector: _Collector) -> None:
    for sub, text in markdown_fields(loaded.spec):
        if sub != ("stem",) or not _has_placeholders(text):
            for message in math_problems(text):
                collector.add(sub, "maths", message)
        for src in image_sources(text):
            try:
                resolve_asset(base, loaded.file, src)
            except AssetError as exc:
                collector.add(sub, f"image:{src}", str(exc))


def _has_placeholders(text: str) -> bool:
    return _PLACEHOLDER.search(text) is not None


def _check_variant(question: Question, label: str, variant: Variant, collector: _Collector) -> None:
    body = question.body
    stem = question.stem_text(variant)
    for match in _PLACEHOLDER.finditer(stem):
        collector.add(
            ("stem",),
            "placeholder",
            f"{{{{{match.group(1)}}}}} is not a parameter of this question",
        )
    if _has_placeholders(question.stem):
        for message in math_problems(stem):
            collector.add(("stem",), "maths", f"{label}: {message}")
    question.stem_html(variant)
    body.view(variant)
    render = body.render_problems(variant)
    for message in render:
        collector.add((), "render", f"{label}: {message}")
    if isinstance(body, Calculated):
        # `integer: true` is proven for every variant checked; reported at the formula.
        whole = body.integer_problem(variant)
        if whole is not None:
            collector.add(("answer",), "integer", f"{label}: {whole}")
    body.describe_answer(variant)
    if render:  # a degenerate or unreadable variant: its answer cannot be trusted either
        return
    if not auto_graded(question):
        sample = body.model_response(variant)
        if sample is not None:
            note = body.grade(variant, sample).feedback
            if note:
                collector.add((), "sample", f"the sample answer does not fit the question: {note}")
        return
    model = body.model_response(variant)
    if model is None:
        collector.add((), "model", f"{label}: there is no model answer for this variant")
        return
    grade = body.grade(variant, model)
    if grade.fraction != 1:
        collector.add(
            (),
            "model",
            f"{label}: the model answer {body.describe_response(variant, model)!r} scores "
            f"{grade.fraction} ({grade.status.value}), not full marks",
        )
        return
    values = body.form_values(variant, model)
    try:
        typed = body.accept(variant, values)
    except InvalidSubmission as exc:
        collector.add((), "form", f"{label}: the model answer cannot be entered in the form: {exc}")
    else:
        if body.grade(variant, typed).fraction != 1:
            collector.add(
                (),
                "form",
                f"{label}: the model answer entered through the form {values!r} "
                "does not score full marks",
            )
    for wrong in body.wrong_responses(variant):
        if body.grade(variant, wrong).fraction >= 1:
            collector.add(
                ("wrong_answers",),
                "wrong",
                f"{label}: the wrong answer {body.describe_response(variant, wrong)!r} "
                "scores full marks",
            )
    # Listed wrong answers with their own feedback or credit (numeric.ListedAnswer).
    listed = getattr(body, "listed_answers", None)
    for entry in listed(variant) if callable(listed) else ():
        _check_listed(body, label, variant, entry, collector)


def _check_listed(
    body: QuestionType, label: str, variant: Variant, entry: ListedAnswer, collector: _Collector
) -> None:
    """A listed wrong answer earns its stated fraction and shows its feedback."""
    grade = body.grade(variant, entry.response)
    shown = body.describe_response(variant, entry.response)
    where: SpecPath = ("wrong_answers", entry.index)
    if grade.fraction >= 1:
        return  # reported above as a wrong answer that scores full marks
    if entry.fraction is not None and grade.fraction != entry.fraction:
        collector.add(
            where,
            "listed-fraction",
            f"{label}: the listed answer {shown!r} scores {grade.fraction}, not its "
            f"fraction {entry.fraction}",
        )
    if entry.feedback.strip() and entry.feedback.strip() not in grade.feedback:
        collector.add(
            where,
            "listed-feedback",
            f"{label}: the listed answer {shown!r} does not get its feedback "
            "(an earlier listed answer catches it first?)",
        )


def validate_quiz(
    bank: Bank, loaded: LoadedQuiz, *, seeds: int = DEFAULT_SEEDS
) -> list[BankProblem]:
    """Every seed's draw fills every slot of the quiz (seed N is `bank preview --seed N`)."""
    current = {k: Candidate(0, canonical_question(q)) for k, q in bank.questions.items()}
    failures: list[tuple[int, str]] = []
    for seed in range(seeds):
        try:
            build_layout(loaded.slots, current, seed, shuffle_slots=loaded.quiz.shuffle_slots)
        except LayoutError as exc:
            failures.append((seed, str(exc)))
    if not failures:
        return []
    seed, message = failures[0]
    more = f" (and {len(failures) - 1} more of {seeds} seeds)" if len(failures) > 1 else ""
    return [BankProblem(loaded.file, loaded.line, "quiz.slots", f"seed {seed}: {message}{more}")]


def validate_bank(bank: Bank, *, seeds: int = DEFAULT_SEEDS) -> list[BankProblem]:
    """The loader's problems plus every deep problem, sorted by file and line."""
    base = bank.root if bank.root.is_dir() else bank.root.parent
    locator = _Locator(base)
    problems = list(bank.problems)
    for key in sorted(bank.questions):
        problems += validate_question(bank.questions[key], seeds=seeds, base=base, locator=locator)
    for quiz_key in sorted(bank.quizzes):
        problems += validate_quiz(bank, bank.quizzes[quiz_key], seeds=seeds)
    return sorted(set(problems))
