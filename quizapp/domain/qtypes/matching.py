"""Matching: pair each left-hand item with one right-hand item.

Spec::

    type: matching
    pairs:
      - {left: "ReLU", right: "$\\max(0, x)$"}
      - {left: "sigmoid", right: "$1/(1+e^{-x})$"}
    distractors: ["$\\tanh x$"]   # optional extra right-hand items that match nothing
    shuffle: true                   # shuffle the right-hand list per attempt (default)

Two lefts may share a right (write the same text twice): it is shown once. Lefts are
shown in the author's order; rights in the variant's order, labelled A, B, C ...

View: input "matching"; extra = {"lefts": [html, ...],
"rights": [{"value": "A", "html": ...}, ...]}; `choices` holds the same rights.

Form values: exactly one value per left, in the order of `extra["lefts"]`: the letter of
the chosen right, or "" for no choice (e.g. one <select> per left with an empty first
option, all under the same field name). No values at all means no answer.

Stored response: {"<left index>": "<right key>"} for the lefts answered (right keys are
stable "r0", "r1" ..., not letters), or None. Credit: the fraction of lefts matched right.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar, Self

from quizapp.domain.qtypes import register
from quizapp.domain.qtypes.base import (
    UNANSWERED,
    Choice,
    Grade,
    InvalidSubmission,
    QuestionType,
    Response,
    StudentView,
    Variant,
)
from quizapp.domain.qtypes.text import item_reader
from quizapp.domain.render import render_inline, render_label
from quizapp.domain.spec import SpecReader

LETTERS = string.ascii_uppercase


@register
@dataclass(frozen=True)
class Matching(QuestionType):
    """See the module docstring for the spec, form values and stored response."""

    lefts: tuple[str, ...]
    rights: tuple[str, ...]  # unique right texts; key of rights[i] is f"r{i}"
    answer: tuple[int, ...]  # answer[left index] = index into rights
    shuffle: bool

    type_name: ClassVar[str] = "matching"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        lefts: list[str] = []
        rights: list[str] = []
        answer: list[int] = []
        for i, item in enumerate(spec.items("pairs", min_items=2)):
            sub = item_reader(spec, "pairs", i, item)
            left = sub.text("left")
            right = sub.text("right")
            sub.reject_unknown()
            if left.strip() in (x.strip() for x in lefts):
                sub.problem("left", "two pairs have the same left")
            lefts.append(left)
            stripped = [r.strip() for r in rights]
            if right.strip() in stripped:
                answer.append(stripped.index(right.strip()))
            else:
                answer.append(len(rights))
                rights.append(right)
        for i, extra in enumerate(spec.text_list("distractors")):
            if extra.strip() in (r.strip() for r in rights):
                spec.problems.add(spec.path + ("distractors", i), "repeats a right-hand item")
            else:
                rights.append(extra)
        if len(rights) > len(LETTERS):
            spec.problem("pairs", f"at most {len(LETTERS)} different right-hand items")
        if lefts and len(rights) < 2:
            spec.problem("pairs", "needs at least two different right-hand items")
        shuffle = spec.boolean("shuffle", default=True)
        return cls(tuple(lefts), tuple(rights), tuple(answer), shuffle)

    @staticmethod
    def key(index: int) -> str:
        return f"r{index}"

    def make_variant(self, rng: random.Random) -> Variant:
        order = [self.key(i) for i in range(len(self.rights))]
        if self.shuffle:
            rng.shuffle(order)
        return {"rights": order}

    def _shown(self, variant: Variant) -> list[str]:
        """Right keys in the order shown; unknown keys dropped, missing ones appended."""
        keys = [self.key(i) for i in range(len(self.rights))]
        order = variant.get("rights") if isinstance(variant, dict) else None
        shown = [k for k in order if k in keys] if isinstance(order, list) else []
        return shown + [k for k in keys if k not in shown]

    def _text(self, key: str) -> str:
        return self.rights[int(key[1:])]

    def view(self, variant: Variant) -> StudentView:
        rights = [
            Choice(LETTERS[i], render_inline(self._text(k)))
            for i, k in enumerate(self._shown(variant))
        ]
        return StudentView(
            input="matching",
            choices=rights,
            extra={
                "lefts": [render_inline(left) for left in self.lefts],
                "rights": [{"value": c.value, "html": c.html} for c in rights],
            },
        )

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        if not submitted:
            return None
        if len(submitted) != len(self.lefts):
            raise InvalidSubmission(f"expected {len(self.lefts)} choices, got {len(submitted)}")
        shown = self._shown(variant)
        response: dict[str, str] = {}
        for i, value in enumerate(submitted):
            value = value.strip()
            if not value:
                continue
            if len(value) != 1 or value not in LETTERS[: len(shown)]:
                raise InvalidSubmission(f"{value[:20]!r} is not one of the options")
            response[str(i)] = shown[LETTERS.index(value)]
        return response or None

    def _correct_count(self, response: dict[object, object]) -> int:
        return sum(
            1 for i, right in enumerate(self.answer) if response.get(str(i)) == self.key(right)
        )

    def grade(self, variant: Variant, response: Response) -> Grade:
        if not response:
            return UNANSWERED
        if not isinstance(response, dict):
            return Grade.from_fraction(Fraction(0))
        return Grade.from_fraction(Fraction(self._correct_count(response), len(self.lefts)))

    def form_values(self, variant: Variant, response: Response) -> list[str]:
        if not isinstance(response, dict):
            return []
        letters = {k: LETTERS[i] for i, k in enumerate(self._shown(variant))}
        return [letters.get(str(response.get(str(i))), "") for i in range(len(self.lefts))]

    def model_response(self, variant: Variant) -> Response:
        return {str(i): self.key(r) for i, r in enumerate(self.answer)}

    def wrong_responses(self, variant: Variant) -> list[Response]:
        if len(self.rights) < 2:
            return []
        # Every left paired with a right that is not its own.
        return [{str(i): self.key(0 if r != 0 else 1) for i, r in enumerate(self.answer)}]

    def _describe(
        self,
        variant: Variant,
        response: dict[object, object],
        label: Callable[[str], str] = str,
    ) -> str:
        """Each left with its chosen right; `label` turns an author's text into the output
        format (unchanged for plain text, render_label for HTML)."""
        letters = {k: LETTERS[i] for i, k in enumerate(self._shown(variant))}
        parts = []
        for i, left in enumerate(self.lefts):
            key = response.get(str(i))
            if isinstance(key, str) and key in letters:
                parts.append(f"{label(left)} → {letters[key]}. {label(self._text(key))}")
            else:
                parts.append(f"{label(left)} → (none)")
        return "; ".join(parts)

    def describe_response(self, variant: Variant, response: Response) -> str:
        if not isinstance(response, dict) or not response:
            return "(no answer)"
        return self._describe(variant, response)

    def describe_answer(self, variant: Variant) -> str:
        return self._describe(variant, self.model_response(variant))

    def describe_response_html(self, variant: Variant, response: Response) -> str:
        if not isinstance(response, dict) or not response:
            return "(no answer)"
        return self._describe(variant, response, render_label)

    def describe_answer_html(self, variant: Variant) -> str:
        return self._describe(variant, self.model_response(variant), render_label)

    def render_problems(self, variant: Variant) -> list[str]:
        rendered = [c.html for c in self.view(variant).choices]
        if len(set(rendered)) != len(rendered):
            return ["two right-hand items render the same"]
        return []
