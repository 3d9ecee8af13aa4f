"""The per-attempt layout: which question version fills each slot, and its variant.

Everything is drawn from one seed, so a reload, a review and a regrade all see
exactly the variant the student saw. The layout is stored with the attempt.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from quizapp.domain.qtypes.base import Variant
from quizapp.domain.questions import Question


@dataclass(frozen=True)
class SlotPlan:
    """A quiz slot as imported: a fixed question, or one drawn from candidates."""

    number: int
    marks: Fraction
    candidates: tuple[str, ...]  # question keys; one entry for a fixed question
    pool: str | None = None


@dataclass(frozen=True)
class Candidate:
    version_id: int
    question: Question


@dataclass(frozen=True)
class LayoutEntry:
    slot: int
    question_key: str
    version_id: int
    marks: Fraction
    variant: Variant

    def to_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "question_key": self.question_key,
            "version_id": self.version_id,
            "marks": str(self.marks),
            "variant": self.variant,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayoutEntry:
        return cls(
            slot=int(data["slot"]),
            question_key=str(data["question_key"]),
            version_id=int(data["version_id"]),
            marks=Fraction(data["marks"]),
            variant=dict(data["variant"]),
        )


class LayoutError(ValueError):
    pass


def build_layout(
    slots: Sequence[SlotPlan],
    current: Mapping[str, Candidate],
    seed: int,
    *,
    shuffle_slots: bool = False,
) -> list[LayoutEntry]:
    """Draw each slot's question and variant from `seed`.

    A question is drawn at most once per attempt, even when two slots share a pool.
    Each question's variant uses its own generator derived from the seed and slot, so
    a change to one slot's pool does not reshuffle the variants of the others.
    """
    rng = random.Random(f"quizapp:{seed}:draw")
    used: set[str] = set()
    entries = []
    for plan in slots:
        available = [k for k in plan.candidates if k in current and k not in used]
        if not available:
            raise LayoutError(f"slot {plan.number} has no question left to draw")
        key = available[0] if len(available) == 1 else rng.choice(available)
        used.add(key)
        candidate = current[key]
        variant_rng = random.Random(f"quizapp:{seed}:slot:{plan.number}:{key}")
        entries.append(
            LayoutEntry(
                slot=plan.number,
                question_key=key,
                version_id=candidate.version_id,
                marks=plan.marks,
                variant=candidate.question.body.make_variant(variant_rng),
            )
        )
    if shuffle_slots:
        random.Random(f"quizapp:{seed}:order").shuffle(entries)
    return entries
