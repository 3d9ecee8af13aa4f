"""Single choice, multiple response and true/false questions.

Options carry a stable key (their `id`, or their position in the YAML). Students
never see keys: the form uses letters in the variant's shuffled order, so neither
option ids nor their order can give the answer away (a known leak elsewhere).
"""

from __future__ import annotations

import html
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Self

from quizapp.domain.qtypes import register
from quizapp.domain.qtypes.base import (
    UNANSWERED,
    AnswerOutOfBounds,
    Choice,
    Grade,
    GradeStatus,
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
# A form value is one letter; anything much longer is refused before it is even trimmed.
MAX_VALUE_LENGTH = 8


@dataclass(frozen=True)
class Option:
    key: str
    text: str
    fraction: Fraction  # credit for choosing it (single choice) / 1 if correct (multiple)
    feedback: str = ""

    @property
    def correct(self) -> bool:
        return self.fraction == 1


def read_options(spec: SpecReader, *, allow_fraction: bool) -> tuple[Option, ...]:
    options: list[Option] = []
    raw = spec.items("options", min_items=2)
    if len(raw) > len(LETTERS):
        spec.problem("options", f"at most {len(LETTERS)} options")
    for i, item in enumerate(raw):
        opt = _option_reader(spec, i, item)
        key = opt.text("id", required=False, default=str(i))
        text = opt.text("text")
        correct = opt.boolean("correct", default=False)
        fraction = Fraction(1) if correct else Fraction(0)
        if allow_fraction and opt.has("fraction"):
            value = opt.exact("fraction", required=False, default=Fraction(0))
            assert value is not None
            if not 0 <= value <= 1:
                opt.problem("fraction", "must be between 0 and 1")
            elif correct and value != 1:
                opt.problem("fraction", "a correct option always earns 1")
            else:
                fraction = value
        feedback = opt.text("feedback", required=False)
        opt.reject_unknown()
        options.append(Option(key, text, fraction, feedback))
    keys = [o.key for o in options]
    for i, key in enumerate(keys):
        if keys.index(key) != i:
            spec.problems.add(spec.path + ("options", i, "id"), f"duplicate option id {key!r}")
    texts = [o.text.strip() for o in options]
    for i, text in enumerate(texts):
        if text and texts.index(text) != i:
            spec.problems.add(spec.path + ("options", i, "text"), "two options have the same text")
    return tuple(options)


def _option_reader(spec: SpecReader, index: int, item: Any) -> SpecReader:
    return SpecReader(item, spec.path + ("options", index), spec.problems)


@dataclass(frozen=True)
class _ChoiceBase(QuestionType):
    options: tuple[Option, ...]
    shuffle: bool

    input_kind: ClassVar[str] = "radio"

    def make_variant(self, rng: random.Random) -> Variant:
        order = [o.key for o in self.options]
        if self.shuffle:
            rng.shuffle(order)
        return {"order": order}

    def _ordered(self, variant: Variant) -> list[Option]:
        by_key = {o.key: o for o in self.options}
        order = variant.get("order") or list(by_key)
        # A key missing after a question fix falls back to the end: nothing is lost.
        shown = [by_key[k] for k in order if k in by_key]
        shown += [o for o in self.options if o.key not in order]
        return shown

    def view(self, variant: Variant) -> StudentView:
        return StudentView(
            input=self.input_kind,
            choices=[
                Choice(LETTERS[i], render_inline(o.text))
                for i, o in enumerate(self._ordered(variant))
            ],
        )

    def _keys_from_letters(self, variant: Variant, submitted: Sequence[str]) -> list[str]:
        shown = self._ordered(variant)
        if len(submitted) > len(shown):
            raise AnswerOutOfBounds(
                f"This question has {len(shown)} options: at most {len(shown)} choices "
                f"can be sent, not {len(submitted)}."
            )
        keys = []
        for value in submitted:
            if len(value) > MAX_VALUE_LENGTH:
                raise InvalidSubmission(f"{value[:20]!r} is not one of the options")
            value = value.strip()
            if value == "":
                continue
            if len(value) != 1 or value not in LETTERS[: len(shown)]:
                raise InvalidSubmission(f"{value[:20]!r} is not one of the options")
            keys.append(shown[LETTERS.index(value)].key)
        return keys

    def form_values(self, variant: Variant, response: Response) -> list[str]:
        # Only option keys (text) can be chosen: anything else stored (an old or damaged
        # row) shows as nothing chosen rather than failing the page.
        given = response if isinstance(response, list) else [response]
        chosen = {r for r in given if isinstance(r, str)}
        return [LETTERS[i] for i, o in enumerate(self._ordered(variant)) if o.key in chosen]

    def _label(self, variant: Variant, key: str) -> str:
        for i, o in enumerate(self._ordered(variant)):
            if o.key == key:
                return f"{LETTERS[i]}. {o.text}"
        return f"(option {key} no longer exists)"

    def _label_html(self, variant: Variant, key: str) -> str:
        """_label as HTML: the option's Markdown and maths rendered."""
        for i, o in enumerate(self._ordered(variant)):
            if o.key == key:
                return f"{LETTERS[i]}. {render_label(o.text)}"
        return html.escape(f"(option {key} no longer exists)")

    def render_problems(self, variant: Variant) -> list[str]:
        rendered = [c.html for c in self.view(variant).choices]
        if len(set(rendered)) != len(rendered):
            return ["two options render the same"]
        return []


@register
@dataclass(frozen=True)
class SingleChoice(_ChoiceBase):
    type_name: ClassVar[str] = "single_choice"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        options = read_options(spec, allow_fraction=True)
        shuffle = spec.boolean("shuffle", default=True)
        if options and sum(1 for o in options if o.correct) != 1:
            spec.problem("options", "exactly one option must be marked correct: true")
        return cls(options, shuffle)

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        keys = self._keys_from_letters(variant, submitted)
        if len(keys) > 1:
            raise InvalidSubmission("choose one option only")
        return keys[0] if keys else None

    def grade(self, variant: Variant, response: Response) -> Grade:
        if response is None:
            return UNANSWERED
        for o in self.options:
            if o.key == response:
                return Grade.from_fraction(o.fraction, o.feedback)
        return Grade(Fraction(0), GradeStatus.INCORRECT)

    def model_response(self, variant: Variant) -> Response:
        return next(o.key for o in self.options if o.correct)

    def wrong_responses(self, variant: Variant) -> list[Response]:
        return [o.key for o in self.options if not o.correct]

    def describe_response(self, variant: Variant, response: Response) -> str:
        return "(no answer)" if response is None else self._label(variant, str(response))

    def describe_answer(self, variant: Variant) -> str:
        return self._label(variant, self.model_response(variant))

    def describe_response_html(self, variant: Variant, response: Response) -> str:
        if response is None:
            return "(no answer)"
        return self._label_html(variant, str(response))

    def describe_answer_html(self, variant: Variant) -> str:
        return self._label_html(variant, self.model_response(variant))


@register
@dataclass(frozen=True)
class TrueFalse(SingleChoice):
    """A single choice between True and False; `answer: true` or `answer: false`."""

    type_name: ClassVar[str] = "true_false"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        answer = spec.raw("answer")
        if not isinstance(answer, bool):
            spec.problem("answer", "must be true or false")
            answer = True
        feedback_true = spec.text("feedback_true", required=False)
        feedback_false = spec.text("feedback_false", required=False)
        options = (
            Option("true", "True", Fraction(int(answer)), feedback_true),
            Option("false", "False", Fraction(int(not answer)), feedback_false),
        )
        return cls(options, shuffle=False)


MULTIPLE_RESPONSE_RULES = ("all_or_nothing", "right_minus_wrong", "per_option")


@register
@dataclass(frozen=True)
class MultipleResponse(_ChoiceBase):
    """Choose all that apply, with a named partial-credit rule.

    - all_or_nothing: full marks only for exactly the correct set.
    - right_minus_wrong: (right chosen - wrong chosen) / number correct, floored at 0.
    - per_option: each option judged rightly (ticked if correct, unticked if not) earns 1/n.
    """

    scoring: str = "right_minus_wrong"
    type_name: ClassVar[str] = "multiple_response"
    input_kind: ClassVar[str] = "checkbox"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        options = read_options(spec, allow_fraction=False)
        shuffle = spec.boolean("shuffle", default=True)
        scoring = spec.one_of("scoring", MULTIPLE_RESPONSE_RULES, default="right_minus_wrong")
        if options and not any(o.correct for o in options):
            spec.problem("options", "at least one option must be marked correct: true")
        return cls(options, shuffle, scoring)

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        keys = set(self._keys_from_letters(variant, submitted))
        # Canonical order (the author's), so equal answers are stored equally.
        chosen = [o.key for o in self.options if o.key in keys]
        return chosen or None

    def grade(self, variant: Variant, response: Response) -> Grade:
        if not response:
            return UNANSWERED
        if not isinstance(response, list):
            return Grade(Fraction(0), GradeStatus.INCORRECT)
        if len(response) > len(self.options):
            # accept() never stores more keys than options: a row from elsewhere.
            return unreadable(f"it has more choices than the {len(self.options)} options")
        chosen = set(map(str, response))
        correct = {o.key for o in self.options if o.correct}
        wrong = {o.key for o in self.options} - correct
        if self.scoring == "all_or_nothing":
            fraction = Fraction(int(chosen == correct))
        elif self.scoring == "right_minus_wrong":
            fraction = max(
                Fraction(0), Fraction(len(chosen & correct) - len(chosen & wrong), len(correct))
            )
        else:
            judged_right = len(chosen & correct) + len(wrong - chosen)
            fraction = Fraction(judged_right, len(self.options))
        feedback = " ".join(o.feedback for o in self.options if o.key in chosen and o.feedback)
        return Grade.from_fraction(fraction, feedback)

    def model_response(self, variant: Variant) -> Response:
        return [o.key for o in self.options if o.correct]

    def wrong_responses(self, variant: Variant) -> list[Response]:
        return [[o.key] for o in self.options if not o.correct]

    def describe_response(self, variant: Variant, response: Response) -> str:
        if not response:
            return "(no answer)"
        keys = response if isinstance(response, list) else [response]
        return "; ".join(self._label(variant, str(k)) for k in keys)

    def describe_answer(self, variant: Variant) -> str:
        return self.describe_response(variant, self.model_response(variant))

    def describe_response_html(self, variant: Variant, response: Response) -> str:
        if not response:
            return "(no answer)"
        keys = response if isinstance(response, list) else [response]
        return "; ".join(self._label_html(variant, str(k)) for k in keys)

    def describe_answer_html(self, variant: Variant) -> str:
        return self.describe_response_html(variant, self.model_response(variant))
