"""Short free-text answers: exact texts (normalised) and regular expressions.

Spec::

    type: short_text
    answers:
      - {text: "gradient descent", fraction: 1, feedback: "..."}
      - {pattern: "grad(ient)? desc(ent)?", fraction: 0.5}
    case_sensitive: false      # default
    model_answer: "..."        # optional; default the first text answer with fraction 1
    wrong_answers: ["..."]     # optional distractors the validator checks

Texts are compared after Unicode NFKC normalisation, collapsing runs of whitespace and
trimming, and (unless `case_sensitive`) case folding. Patterns must match the whole
normalised answer (case-insensitively unless `case_sensitive`). The best fraction among
the matching answers wins. Answers longer than MAX_ANSWER_LENGTH are not matched at all
(unreadable), and patterns with nested unbounded repetition such as `(a+)+` are refused at
read time: together they keep the regex engine away from catastrophic backtracking.

Form: one text value. Stored response: the text exactly as typed (None if blank).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Self

from quizapp.domain.qtypes import register
from quizapp.domain.qtypes.base import (
    UNANSWERED,
    Grade,
    GradeStatus,
    QuestionType,
    Response,
    StudentView,
    Variant,
    accept_single_text,
    unreadable,
)
from quizapp.domain.spec import SpecReader

MAX_ANSWER_LENGTH = 500
MAX_PATTERN_LENGTH = 300
_WHITESPACE = re.compile(r"\s+")


def normalise_text(text: str, *, case_sensitive: bool) -> str:
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return text if case_sensitive else text.casefold()


def item_reader(spec: SpecReader, key: str, index: int, item: Any) -> SpecReader:
    """A reader for `spec[key][index]`, sharing the problem list."""
    return SpecReader(item, spec.path + (key, index), spec.problems)


def risky_pattern(pattern: str) -> bool:
    """True when a repeated group contains repetition or alternation: `(a+)+`, `(a|aa)*`.

    A conservative heuristic against catastrophic backtracking (it may refuse a few
    harmless patterns; authors can always rewrite them).
    """
    stack = [False]  # per open group: does it contain a quantifier?
    after_repeating_group = False
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            i += 2
            after_repeating_group = False
            continue
        if char == "[":  # skip a character class
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            after_repeating_group = False
            continue
        if char in "*+{":
            if after_repeating_group:
                return True
            stack[-1] = True
        elif char == "|":  # (a|aa)+ backtracks as badly as (a+)+
            stack[-1] = True
        elif char == ")" and len(stack) > 1:
            inner = stack.pop()
            stack[-1] = stack[-1] or inner
            after_repeating_group = inner
            i += 1
            continue
        elif char == "(":
            stack.append(False)
        after_repeating_group = False
        i += 1
    return False


@dataclass(frozen=True)
class TextAnswer:
    fraction: Fraction
    text: str | None = None  # the normalised exact text, or
    pattern: re.Pattern[str] | None = None  # a compiled full-match pattern
    source: str = ""  # as the author wrote it
    feedback: str = ""

    def matches(self, normalised: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(normalised) is not None
        return normalised == self.text


def read_text_answers(spec: SpecReader, *, case_sensitive: bool) -> tuple[TextAnswer, ...]:
    answers: list[TextAnswer] = []
    for i, item in enumerate(spec.items("answers", min_items=1)):
        sub = item_reader(spec, "answers", i, item)
        fraction = sub.exact("fraction", required=False, default=Fraction(1))
        assert fraction is not None
        if not 0 <= fraction <= 1:
            sub.problem("fraction", "must be between 0 and 1")
            fraction = Fraction(0)
        feedback = sub.text("feedback", required=False)
        if sub.has("text") == sub.has("pattern"):
            sub.problem(None, "give either text or pattern")
            sub.raw("text")
            sub.raw("pattern")
        elif sub.has("text"):
            source = sub.text("text")
            answers.append(
                TextAnswer(
                    fraction,
                    text=normalise_text(source, case_sensitive=case_sensitive),
                    source=source,
                    feedback=feedback,
                )
            )
        else:
            source = sub.text("pattern")
            compiled = _compile(sub, source, case_sensitive)
            if compiled is not None:
                answers.append(
                    TextAnswer(fraction, pattern=compiled, source=source, feedback=feedback)
                )
        sub.reject_unknown()
    return tuple(answers)


def _compile(sub: SpecReader, source: str, case_sensitive: bool) -> re.Pattern[str] | None:
    if len(source) > MAX_PATTERN_LENGTH:
        sub.problem("pattern", f"at most {MAX_PATTERN_LENGTH} characters")
        return None
    if risky_pattern(source):
        sub.problem(
            "pattern",
            "a repeated group contains repetition (such as (a+)+): this can make matching "
            "take forever; rewrite it without nesting * or + inside a repeated group",
        )
        return None
    try:
        return re.compile(source, 0 if case_sensitive else re.IGNORECASE)
    except re.error as exc:
        sub.problem("pattern", f"not a valid regular expression: {exc}")
        return None


@register
@dataclass(frozen=True)
class ShortText(QuestionType):
    """A short typed answer. See the module docstring for the spec and matching rules."""

    answers: tuple[TextAnswer, ...]
    case_sensitive: bool
    model_answer: str
    wrong_answers: tuple[str, ...]

    type_name: ClassVar[str] = "short_text"

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        case_sensitive = spec.boolean("case_sensitive", default=False)
        answers = read_text_answers(spec, case_sensitive=case_sensitive)
        model = spec.text("model_answer", required=False)
        if not model:
            model = next((a.source for a in answers if a.fraction == 1 and a.text is not None), "")
        wrong = tuple(spec.text_list("wrong_answers"))
        made = cls(answers, case_sensitive, model, wrong)
        if answers and not model:
            spec.problem(
                "answers", "give a text answer with fraction 1, or a model_answer that scores 1"
            )
        elif answers and made.best(model)[0] != 1:
            spec.problem("model_answer", "does not match any answer with fraction 1")
        return made

    def best(self, text: str) -> tuple[Fraction, str]:
        """The best fraction earned by `text`, with that answer's feedback."""
        normalised = normalise_text(text, case_sensitive=self.case_sensitive)
        best: TextAnswer | None = None
        for answer in self.answers:
            if answer.matches(normalised) and (best is None or answer.fraction > best.fraction):
                best = answer
        return (best.fraction, best.feedback) if best else (Fraction(0), "")

    def view(self, variant: Variant) -> StudentView:
        return StudentView(input="text", extra={"max_length": MAX_ANSWER_LENGTH})

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        return accept_single_text(submitted)

    def grade(self, variant: Variant, response: Response) -> Grade:
        if response is None or (isinstance(response, str) and not response.strip()):
            return UNANSWERED
        if not isinstance(response, str):
            return unreadable("it is not text")
        if len(response) > MAX_ANSWER_LENGTH:
            return unreadable(f"it is longer than {MAX_ANSWER_LENGTH} characters")
        fraction, feedback = self.best(response)
        if fraction == 0:
            return Grade(Fraction(0), GradeStatus.INCORRECT, feedback)
        return Grade.from_fraction(fraction, feedback)

    def model_response(self, variant: Variant) -> Response:
        return self.model_answer

    def wrong_responses(self, variant: Variant) -> list[Response]:
        return list(self.wrong_answers)

    def describe_response(self, variant: Variant, response: Response) -> str:
        return "(no answer)" if response is None else str(response)

    def describe_answer(self, variant: Variant) -> str:
        return self.model_answer
