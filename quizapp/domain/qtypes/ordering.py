"""Ordering: put items into the right sequence.

Spec::

    type: ordering
    items: ["forward pass", "compute loss", "backward pass", "update weights"]  # correct order
    scoring: adjacent_pairs   # or all_or_nothing, or positions

Scoring rules (named, so authors and students can be told exactly):

- all_or_nothing: full marks only for exactly the right order.
- adjacent_pairs (default): each of the n-1 consecutive pairs of the correct order
  (item k immediately followed by item k+1) that appears, in that order and
  immediately adjacent, in the answer earns 1/(n-1).
- positions: each item in its correct position earns 1/n.

The variant shuffles the items (never leaving them already in the correct order).

View: input "ordering"; `choices` = the items in the shuffled order shown, each with a
letter value (A, B, ...) and html.

Form values: the letters in the order the student arranged them, one per position,
exactly as many as there are items (e.g. hidden inputs that a drag-and-drop list keeps
in DOM order, or one <select> per position; "" for an empty position). No values at all
means no answer (so the template should only submit once the student has ordered).

Stored response: the item keys ("0", "1", ... in the author's order) per position, with
None for empty positions; None for no answer.
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
    unreadable,
)
from quizapp.domain.render import render_inline, render_label
from quizapp.domain.spec import SpecReader

LETTERS = string.ascii_uppercase
ORDERING_RULES = ("adjacent_pairs", "all_or_nothing", "positions")


@register
@dataclass(frozen=True)
class Ordering(QuestionType):
    """See the module docstring for the spec, scoring rules and form values."""

    items: tuple[str, ...]
    scoring: str = "adjacent_pairs"

    type_name: ClassVar[str] = "ordering"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        items = spec.text_list("items")
        raw = spec.raw("items")
        if raw is None:
            spec.problem("items", "is required")
        elif isinstance(raw, list) and len(raw) < 2:
            spec.problem("items", "needs at least 2 items")
        if len(items) > len(LETTERS):
            spec.problem("items", f"at most {len(LETTERS)} items")
        stripped = [t.strip() for t in items]
        for i, text in enumerate(stripped):
            if not text:
                spec.problems.add(spec.path + ("items", i), "must not be empty")
            elif stripped.index(text) != i:
                spec.problems.add(spec.path + ("items", i), "two items have the same text")
        scoring = spec.one_of("scoring", ORDERING_RULES, default="adjacent_pairs")
        return cls(tuple(items), scoring)

    def _keys(self) -> list[str]:
        return [str(i) for i in range(len(self.items))]

    def make_variant(self, rng: random.Random) -> Variant:
        order = self._keys()
        if len(order) > 1:
            while order == self._keys():
                rng.shuffle(order)
        return {"order": order}

    def _shown(self, variant: Variant) -> list[str]:
        keys = self._keys()
        order = variant.get("order") if isinstance(variant, dict) else None
        shown = [k for k in order if k in keys] if isinstance(order, list) else []
        return shown + [k for k in keys if k not in shown]

    def view(self, variant: Variant) -> StudentView:
        return StudentView(
            input="ordering",
            choices=[
                Choice(LETTERS[i], render_inline(self.items[int(k)]))
                for i, k in enumerate(self._shown(variant))
            ],
        )

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        if not submitted or all(not v.strip() for v in submitted):
            return None
        if len(submitted) != len(self.items):
            raise InvalidSubmission(f"expected {len(self.items)} positions, got {len(submitted)}")
        shown = self._shown(variant)
        response: list[str | None] = []
        for value in submitted:
            value = value.strip()
            if not value:
                response.append(None)
                continue
            if len(value) != 1 or value not in LETTERS[: len(shown)]:
                raise InvalidSubmission(f"{value[:20]!r} is not one of the items")
            response.append(shown[LETTERS.index(value)])
        return response

    def grade(self, variant: Variant, response: Response) -> Grade:
        if not response:
            return UNANSWERED
        if not isinstance(response, list):
            return Grade.from_fraction(Fraction(0))
        if len(response) > len(self.items):
            # accept() stores exactly one entry per item: a row from elsewhere.
            return unreadable(f"it has more positions than the {len(self.items)} items")
        given = [k if isinstance(k, str) else None for k in response]
        correct = self._keys()
        if self.scoring == "all_or_nothing":
            return Grade.from_fraction(Fraction(int(given == correct)))
        if self.scoring == "positions":
            right = sum(1 for i, k in enumerate(correct) if i < len(given) and given[i] == k)
            return Grade.from_fraction(Fraction(right, len(correct)))
        wanted = set(zip(correct, correct[1:], strict=False))
        found = set(zip(given, given[1:], strict=False)) & wanted
        return Grade.from_fraction(Fraction(len(found), len(wanted)))

    def form_values(self, variant: Variant, response: Response) -> list[str]:
        if not isinstance(response, list):
            return []
        letters = {k: LETTERS[i] for i, k in enumerate(self._shown(variant))}
        return [letters.get(k, "") if isinstance(k, str) else "" for k in response]

    def model_response(self, variant: Variant) -> Response:
        return self._keys()

    def wrong_responses(self, variant: Variant) -> list[Response]:
        return [list(reversed(self._keys()))]

    def _describe(self, response: list[object], label: Callable[[str], str] = str) -> str:
        """The items in the given order; `label` as in Matching._describe."""
        texts = []
        for k in response:
            if isinstance(k, str) and k.isdigit() and int(k) < len(self.items):
                texts.append(label(self.items[int(k)]))
            else:
                texts.append("(empty)")
        return " → ".join(texts)

    def describe_response(self, variant: Variant, response: Response) -> str:
        if not isinstance(response, list) or not response:
            return "(no answer)"
        return self._describe(response)

    def describe_answer(self, variant: Variant) -> str:
        return " → ".join(self.items)

    def describe_response_html(self, variant: Variant, response: Response) -> str:
        if not isinstance(response, list) or not response:
            return "(no answer)"
        return self._describe(response, render_label)

    def describe_answer_html(self, variant: Variant) -> str:
        return " → ".join(render_label(item) for item in self.items)

    def render_problems(self, variant: Variant) -> list[str]:
        rendered = [c.html for c in self.view(variant).choices]
        if len(set(rendered)) != len(rendered):
            return ["two items render the same"]
        return []
