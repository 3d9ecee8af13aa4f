"""A question: the fields every type shares, plus its type-specific body."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from quizapp.domain.qtypes import QUESTION_TYPES
from quizapp.domain.qtypes.base import QuestionType, Variant
from quizapp.domain.render import render_markdown
from quizapp.domain.spec import Path, Problems, SpecError, SpecReader

QUESTION_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class Question:
    key: str
    title: str
    stem: str
    marks: Fraction
    tags: tuple[str, ...]
    feedback: str
    body: QuestionType

    @property
    def type_name(self) -> str:
        return self.body.type_name

    def stem_text(self, variant: Variant) -> str:
        params = self.body.text_params(variant)
        if not params:
            return self.stem
        return _PLACEHOLDER.sub(lambda m: params.get(m.group(1), m.group(0)), self.stem)

    def stem_html(self, variant: Variant) -> str:
        return render_markdown(self.stem_text(variant))


def read_question(data: Any, path: Path = (), problems: Problems | None = None) -> Question | None:
    """Read one question mapping; record problems; None when it cannot be used at all."""
    spec = SpecReader(data, path, problems)
    before = len(spec.problems.items)
    key = spec.text("id")
    if key and not QUESTION_ID.match(key):
        spec.problem(
            "id", "use lower-case letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    type_name = spec.text("type")
    qtype = QUESTION_TYPES.get(type_name)
    if type_name and qtype is None:
        spec.problem(
            "type", f"unknown type {type_name!r}; known: {', '.join(sorted(QUESTION_TYPES))}"
        )
    stem = spec.text("stem")
    title = spec.text("title", required=False, default=key)
    marks = spec.exact("marks", required=False, default=Fraction(1), positive=True)
    tags = tuple(spec.text_list("tags"))
    feedback = spec.text("feedback", required=False)
    if qtype is None:
        return None
    body = qtype.read(spec)
    spec.reject_unknown()
    if len(spec.problems.items) > before or not key or not stem:
        return None
    assert marks is not None
    return Question(key, title, stem, marks, tags, feedback, body)


def question_from_spec(spec: Mapping[str, Any]) -> Question:
    """Rebuild a stored (already validated) question version; raise if it no longer reads."""
    problems = Problems()
    question = read_question(spec, (), problems)
    if problems or question is None:
        raise SpecError(problems.items)
    return question


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(spec: Mapping[str, Any]) -> str:
    """Identity of a question version: equal specs, equal hash, whatever the YAML layout."""
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()
