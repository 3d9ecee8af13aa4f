"""Ordering: put items into the right sequence.

Spec, one correct order::

    type: ordering
    items: ["forward pass", "compute loss", "backward pass", "update weights"]  # correct order
    scoring: adjacent_pairs   # or all_or_nothing, positions, precedences

Spec, a partial order (several correct orders)::

    type: ordering
    items:                    # one correct order: the model answer
      - {id: zero, text: "`optimizer.zero_grad()`"}
      - {id: forward, text: forward pass}
      - {id: loss, text: compute loss}
      - {id: backward, text: "`loss.backward()`"}
    before:                   # chains of item ids, each first to last
      - [forward, loss, backward]
      - [zero, backward]      # zeroing may come first or after the forward pass
    scoring: precedences      # the default with before:; or all_or_nothing

Every order that keeps all the constraints is correct. A constraint naming an unknown
id, a cycle, an `items` order that breaks a constraint, or an item in no constraint (it
could go anywhere, and nothing would check it) is a problem at its field.

Scoring rules (named, so authors and students can be told exactly):

- all_or_nothing: full marks only for a correct order.
- adjacent_pairs (default without before:): each of the n-1 consecutive pairs of the
  correct order (item k immediately followed by item k+1) that appears, in that order and
  immediately adjacent, in the answer earns 1/(n-1).
- positions: each item in its correct position earns 1/n.
- precedences (default with before:): a precedence is a pair "x comes before y" that
  the constraints require, directly or through a chain (a before b and b before c also
  require a before c); without before:, every pair of the one correct order. Each
  precedence the answer keeps (x and y each placed once, x anywhere before y) earns an
  equal share.

adjacent_pairs and positions need one correct order, so they are refused with before:.

The variant shuffles the items (never leaving them already in a correct order).

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
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Self

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
from quizapp.domain.spec import Path, Problems, SpecReader

LETTERS = string.ascii_uppercase
ORDERING_RULES = ("adjacent_pairs", "all_or_nothing", "positions", "precedences")
PARTIAL_ORDER_RULES = ("precedences", "all_or_nothing")
ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


@register
@dataclass(frozen=True)
class Ordering(QuestionType):
    """See the module docstring for the spec, scoring rules and form values."""

    items: tuple[str, ...]
    scoring: str = "adjacent_pairs"
    # With before: every (i, j) of item indices such that item i must come before item j,
    # directly or through a chain (the transitive closure), sorted. Empty: `items` is the
    # one correct order.
    precedences: tuple[tuple[int, int], ...] = ()

    type_name: ClassVar[str] = "ordering"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        items, ids = _read_items(spec)
        if len(items) > len(LETTERS):
            spec.problem("items", f"at most {len(LETTERS)} items")
        stripped = [t.strip() for t in items]
        for i, text in enumerate(stripped):
            if not text:
                spec.problems.add(spec.path + ("items", i), "must not be empty")
            elif stripped.index(text) != i:
                spec.problems.add(spec.path + ("items", i), "two items have the same text")
        partial = spec.has("before")
        precedences = _read_before(spec, ids) if partial else ()
        default = "precedences" if partial else "adjacent_pairs"
        scoring = spec.one_of("scoring", ORDERING_RULES, default=default)
        if partial and scoring not in PARTIAL_ORDER_RULES:
            spec.problem(
                "scoring",
                f"with before: use {' or '.join(PARTIAL_ORDER_RULES)} "
                f"({scoring} needs one correct order)",
            )
        return cls(tuple(items), scoring, precedences)

    def _keys(self) -> list[str]:
        return [str(i) for i in range(len(self.items))]

    def _required(self) -> tuple[tuple[int, int], ...]:
        """The precedences: with before:, the closure; otherwise every pair of the order."""
        if self.precedences:
            return self.precedences
        n = len(self.items)
        return tuple((i, j) for i in range(n) for j in range(i + 1, n))

    def _kept(self, given: Sequence[object]) -> int:
        """How many precedences `given` keeps (both items placed once, in that order)."""
        where: dict[object, int] = {}
        twice: set[object] = set()
        for position, key in enumerate(given):
            if key in where:
                twice.add(key)
            where[key] = position
        kept = 0
        for a, b in self._required():
            x, y = str(a), str(b)
            if x in where and y in where and x not in twice and y not in twice:
                kept += where[x] < where[y]
        return kept

    def _solves(self, order: list[str]) -> bool:
        if not self.precedences:
            return order == self._keys()
        return self._kept(order) == len(self.precedences)

    def make_variant(self, rng: random.Random) -> Variant:
        order = self._keys()
        if len(order) > 1:
            while self._solves(order):
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
        if self.precedences or self.scoring == "precedences":
            required = self._required()
            kept = self._kept(given)
            if self.scoring == "all_or_nothing":
                return Grade.from_fraction(Fraction(int(kept == len(required))))
            return Grade.from_fraction(Fraction(kept, len(required)))
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

    def _also(self, label: Callable[[str], str] = str) -> str:
        """For a partial order: which constraints any correct order keeps (direct ones)."""
        if not self.precedences:
            return ""
        closure = set(self.precedences)
        direct = [
            (a, b)
            for a, b in self.precedences
            if not any((a, c) in closure and (c, b) in closure for c in range(len(self.items)))
        ]
        kept = ", ".join(f"{label(self.items[a])} before {label(self.items[b])}" for a, b in direct)
        return f" (or any order with {kept})"

    def describe_answer(self, variant: Variant) -> str:
        return " → ".join(self.items) + self._also()

    def describe_response_html(self, variant: Variant, response: Response) -> str:
        if not isinstance(response, list) or not response:
            return "(no answer)"
        return self._describe(response, render_label)

    def describe_answer_html(self, variant: Variant) -> str:
        return " → ".join(render_label(item) for item in self.items) + self._also(render_label)

    def render_problems(self, variant: Variant) -> list[str]:
        rendered = [c.html for c in self.view(variant).choices]
        if len(set(rendered)) != len(rendered):
            return ["two items render the same"]
        return []


def _read_items(spec: SpecReader) -> tuple[list[str], list[str | None]]:
    """The items' texts in the author's order, and their ids (None for plain text)."""
    raw = spec.raw("items")
    if raw is None:
        spec.problem("items", "is required")
        return [], []
    if not isinstance(raw, list):
        spec.problem("items", f"expected a list, got {type(raw).__name__}")
        return [], []
    if len(raw) < 2:
        spec.problem("items", "needs at least 2 items")
    texts: list[str] = []
    ids: list[str | None] = []
    for i, item in enumerate(raw):
        path = spec.path + ("items", i)
        if isinstance(item, dict) and ("id" in item or "text" in item):
            sub = SpecReader(item, path, spec.problems)
            item_id = sub.text("id")
            texts.append(sub.text("text"))
            sub.reject_unknown()
            if item_id and not ITEM_ID.match(item_id):
                sub.problem("id", "use letters, digits, '-', '_' or '.' (at most 40)")
            elif item_id and item_id in ids:
                sub.problem("id", f"two items have the id {item_id!r}")
            ids.append(item_id or None)
        elif isinstance(item, bool) or not isinstance(item, str | int | float):
            what = "a mapping without id and text" if isinstance(item, dict) else _kind(item)
            spec.problems.add(path, f"expected text, or {{id: ..., text: ...}}; got {what}")
        else:
            texts.append(str(item))
            ids.append(None)
    return texts, ids


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _read_before(spec: SpecReader, ids: list[str | None]) -> tuple[tuple[int, int], ...]:
    """The precedences `before:` requires (transitive closure); () after any problem."""
    problems: Problems = spec.problems
    count = len(problems.items)
    index = {item_id: i for i, item_id in enumerate(ids) if item_id is not None}
    known = ", ".join(sorted(index)) if index else "none: write items as {id: ..., text: ...}"
    edges: dict[tuple[int, int], Path] = {}  # each direct constraint, where first written
    for c, chain in enumerate(spec.items("before", min_items=1)):
        path = spec.path + ("before", c)
        if not isinstance(chain, list) or len(chain) < 2:
            problems.add(path, "expected a list of at least 2 item ids, first to last")
            continue
        found: list[int | None] = []
        for k, name in enumerate(chain):
            key = str(name) if isinstance(name, str | int) and not isinstance(name, bool) else None
            if key is None or key not in index:
                problems.add(path + (k,), f"unknown item id {name!r} (ids: {known})")
            found.append(index.get(key) if key is not None else None)
        for a, b in zip(found, found[1:], strict=False):
            if a is not None and b is not None:
                if a == b:
                    problems.add(path, f"{ids[a]!r} cannot come before itself")
                else:
                    edges.setdefault((a, b), path)
    if len(problems.items) > count or not edges:
        return ()
    cycle = _find_cycle(len(ids), list(edges))
    if cycle is not None:
        # Start at the item listed first, as the author reads it.
        first = cycle.index(min(cycle))
        cycle = cycle[first:-1] + cycle[:first] + [cycle[first]]
        shown = " → ".join(str(ids[i]) for i in cycle)
        problems.add(
            edges[(cycle[0], cycle[1])],
            f"the constraints form a cycle, {shown}: no order can keep them all",
        )
        return ()
    for (a, b), path in edges.items():
        if a > b:
            problems.add(
                path,
                f"items lists {ids[b]!r} before {ids[a]!r}, but this constraint puts "
                f"{ids[a]!r} first: items must be one correct order (the model answer)",
            )
    constrained = {i for edge in edges for i in edge}
    for i in range(len(ids)):
        if i not in constrained:
            problems.add(
                spec.path + ("items", i),
                "is in no constraint of before: it could go anywhere and nothing would "
                "check it (give it an id and put it in a constraint)",
            )
    if len(problems.items) > count:
        return ()
    return tuple(sorted(_closure(len(ids), list(edges))))


def _closure(n: int, edges: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """Every (a, b) with a path from a to b."""
    after: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in edges:
        after[a].add(b)
    closure: set[tuple[int, int]] = set()
    for start in range(n):
        seen: set[int] = set()
        stack = list(after[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(after[node])
        closure.update((start, node) for node in seen)
    return closure


def _find_cycle(n: int, edges: list[tuple[int, int]]) -> list[int] | None:
    """One cycle as [a, b, ..., a] (following the constraints), or None."""
    after: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in edges:
        after[a].append(b)
    state = [0] * n  # 0 unseen, 1 on the current path, 2 done
    path: list[int] = []

    def visit(node: int) -> list[int] | None:
        state[node] = 1
        path.append(node)
        for nxt in after[node]:
            if state[nxt] == 1:
                return path[path.index(nxt) :] + [nxt]
            if state[nxt] == 0:
                found = visit(nxt)
                if found is not None:
                    return found
        state[node] = 2
        path.pop()
        return None

    for start in range(n):
        if state[start] == 0:
            found = visit(start)
            if found is not None:
                return found
    return None
