"""Several blanks in one question, each a number or a short text, graded separately.

Spec::

    type: multi_part
    parts:
      - id: a
        label: "Output height $H'$"
        answer: 14                 # a number part: every numeric field works here
        tolerance: 0               # (tolerance | relative_tolerance, significant_figures,
        units: px                  #  units, wrong_answers)
      - id: b
        label: "Name of the layer"
        answers: [{text: "max pooling"}]   # a text part: every short_text field works here
        weight: 2                  # optional, default 1

Fraction = sum(weight * part fraction) / sum(weights).

View: input "multi_part"; extra = {"parts": [{"id", "label_html", "kind", "units"}]}, with
kind "number" or "text" (the widget for that blank).

Form values: exactly one value per part, in the order of `extra["parts"]` ("" for a
blank left empty). No values at all means no answer.

Stored response: {"<part id>": "<text as typed>"} for the parts answered, or None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar, Self

from quizapp.domain.qtypes import register
from quizapp.domain.qtypes.base import (
    UNANSWERED,
    AnswerOutOfBounds,
    Grade,
    GradeStatus,
    InvalidSubmission,
    QuestionType,
    Response,
    StudentView,
    Variant,
)
from quizapp.domain.qtypes.numeric import Numeric
from quizapp.domain.qtypes.text import ShortText, item_reader
from quizapp.domain.render import render_inline, render_label
from quizapp.domain.spec import SpecReader

PART_ID = re.compile(r"^[A-Za-z0-9_-]{1,30}$")
PART_KEYS = ("id", "label", "weight")


@dataclass(frozen=True)
class Part:
    id: str
    label: str
    weight: Fraction
    body: Numeric | ShortText

    @property
    def kind(self) -> str:
        return "number" if isinstance(self.body, Numeric) else "text"


@register
@dataclass(frozen=True)
class MultiPart(QuestionType):
    """See the module docstring for the spec, form values and stored response."""

    parts: tuple[Part, ...]

    type_name: ClassVar[str] = "multi_part"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        parts: list[Part] = []
        seen: set[str] = set()
        for i, item in enumerate(spec.items("parts", min_items=1)):
            sub = item_reader(spec, "parts", i, item)
            part_id = sub.text("id")
            if part_id and not PART_ID.match(part_id):
                sub.problem("id", "use letters, digits, '-' or '_' (at most 30)")
            elif part_id in seen:
                sub.problem("id", f"duplicate part id {part_id!r}")
            seen.add(part_id)
            label = sub.text("label", required=False, default=part_id)
            weight = sub.exact("weight", required=False, default=Fraction(1), positive=True)
            assert weight is not None
            body: Numeric | ShortText
            if sub.has("answers") and sub.has("answer"):
                sub.problem(None, "give answer (a number) or answers (texts), not both")
                continue
            if sub.has("answers"):
                body = ShortText.read(sub)
            elif sub.has("answer"):
                body = Numeric.read(sub)
            else:
                sub.problem(None, "give answer (a number) or answers (accepted texts)")
                continue
            sub.reject_unknown()
            parts.append(Part(part_id, label, weight, body))
        return cls(tuple(parts))

    def view(self, variant: Variant) -> StudentView:
        return StudentView(
            input="multi_part",
            extra={
                "parts": [
                    {
                        "id": p.id,
                        "label_html": render_inline(p.label),
                        "kind": p.kind,
                        "units": p.body.units if isinstance(p.body, Numeric) else "",
                    }
                    for p in self.parts
                ]
            },
        )

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        if not submitted:
            return None
        if len(submitted) != len(self.parts):
            raise InvalidSubmission(f"expected {len(self.parts)} answers, got {len(submitted)}")
        response: dict[str, str] = {}
        for part, value in zip(self.parts, submitted, strict=True):
            try:
                typed = part.body.accept(variant, [value])
            except AnswerOutOfBounds as exc:
                raise AnswerOutOfBounds(f"{part.label}: {exc}") from None
            if typed is not None:
                response[part.id] = value
        return response or None

    def grade(self, variant: Variant, response: Response) -> Grade:
        if not response:
            return UNANSWERED
        if not isinstance(response, dict):
            return Grade.from_fraction(Fraction(0))
        total = sum((p.weight for p in self.parts), Fraction(0))
        earned = Fraction(0)
        notes = []
        answered = False
        for part in self.parts:
            value = response.get(part.id)
            grade = part.body.grade(variant, value if isinstance(value, str) else None)
            answered = answered or grade.status != GradeStatus.UNANSWERED
            earned += part.weight * grade.fraction
            if grade.feedback:
                notes.append(f"{part.label}: {grade.feedback}")
        if not answered:
            return UNANSWERED
        return Grade.from_fraction(earned / total if total else Fraction(0), " ".join(notes))

    def form_values(self, variant: Variant, response: Response) -> list[str]:
        if not isinstance(response, dict):
            return []
        return [str(response.get(p.id, "")) for p in self.parts]

    def model_response(self, variant: Variant) -> Response:
        return {p.id: p.body.model_response(variant) for p in self.parts}

    def wrong_responses(self, variant: Variant) -> list[Response]:
        model = self.model_response(variant)
        wrong = []
        for part in self.parts:
            for value in part.body.wrong_responses(variant)[:1]:
                wrong.append({**model, part.id: value})
        return wrong

    def describe_response(self, variant: Variant, response: Response) -> str:
        if not isinstance(response, dict) or not response:
            return "(no answer)"
        return "; ".join(
            f"{p.label}: {p.body.describe_response(variant, response.get(p.id))}"
            for p in self.parts
        )

    def describe_answer(self, variant: Variant) -> str:
        return "; ".join(f"{p.label}: {p.body.describe_answer(variant)}" for p in self.parts)

    def describe_response_html(self, variant: Variant, response: Response) -> str:
        """Each part's label rendered, and what was typed in it escaped (its own html)."""
        if not isinstance(response, dict) or not response:
            return "(no answer)"
        return "; ".join(
            f"{render_label(p.label)}: {p.body.describe_response_html(variant, response.get(p.id))}"
            for p in self.parts
        )

    def describe_answer_html(self, variant: Variant) -> str:
        return "; ".join(
            f"{render_label(p.label)}: {p.body.describe_answer_html(variant)}" for p in self.parts
        )
