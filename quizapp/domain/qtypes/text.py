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
the matching answers wins.

Patterns run on RE2 (google-re2), whose matching time is linear in the answer's length
whatever the pattern: `(a+)+b` or `.*\\d+.*\\d+.*kg`, which backtrack for minutes in
Python's `re`, take microseconds. RE2 has no backreferences or lookaround; a pattern it
cannot compile is a spec problem at the pattern's field (so `bank validate` reports it at
file:line). Answers are bounded: at most MAX_ANSWER_LENGTH characters as typed (refused at
save time beyond) and MAX_MATCH_LENGTH once normalised (NFKC can turn one character into
18), which keeps even RE2's worst case (a pattern whose DFA blows up) well under a
millisecond.

Form: one text value. Stored response: the text exactly as typed (None if blank).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Protocol, Self

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from quizapp.domain.qtypes import register
from quizapp.domain.qtypes.base import (
    UNANSWERED,
    AnswerOutOfBounds,
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

MAX_ANSWER_LENGTH = 500  # characters as typed
MAX_MATCH_LENGTH = 1_000  # characters once normalised: what a pattern is run on
MAX_PATTERN_LENGTH = 300
TEXT_BOUNDS = f"a short answer may have at most {MAX_ANSWER_LENGTH} characters"
_WHITESPACE = re.compile(r"\s+")


def normalise_text(text: str, *, case_sensitive: bool) -> str:
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return text if case_sensitive else text.casefold()


def item_reader(spec: SpecReader, key: str, index: int, item: Any) -> SpecReader:
    """A reader for `spec[key][index]`, sharing the problem list."""
    return SpecReader(item, spec.path + (key, index), spec.problems)


class Matcher(Protocol):
    """A compiled pattern (an RE2 regular expression)."""

    def fullmatch(self, text: bytes) -> object | None: ...


@dataclass(frozen=True)
class TextAnswer:
    fraction: Fraction
    text: str | None = None  # the normalised exact text, or
    pattern: Matcher | None = None  # a compiled full-match pattern
    source: str = ""  # as the author wrote it
    feedback: str = ""

    def matches(self, normalised: str) -> bool:
        if self.pattern is not None:
            # Bytes, not str: the wrapper would otherwise map every match offset back to
            # characters, and a lone surrogate (stored before the API refused them) would
            # make encoding raise inside grading. RE2 reads the bytes as UTF-8 either way.
            text = normalised.encode("utf-8", "surrogatepass")
            return self.pattern.fullmatch(text) is not None
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


def _re2_options(case_sensitive: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    # Grading asks only "does it match": without capture groups RE2 answers with its DFA
    # alone, never its slower submatch engines.
    options.never_capture = True
    options.log_errors = False  # the problem goes to the author, not to stderr
    return options


# The start of what RE2 says, and what the author should know about it.
_RE2_HINTS = (
    ("invalid perl operator: (?=", "lookahead (?=...) is not supported"),
    ("invalid perl operator: (?!", "negative lookahead (?!...) is not supported"),
    ("invalid perl operator: (?<=", "lookbehind (?<=...) is not supported"),
    ("invalid perl operator: (?<!", "negative lookbehind (?<!...) is not supported"),
    ("invalid perl operator: (?#", "comments (?#...) are not supported"),
    ("invalid perl operator: (?>", "atomic groups (?>...) are not supported"),
    ("invalid escape sequence: \\Z", "the whole answer is matched anyway: leave \\Z out"),
    ("invalid escape sequence: \\", "backreferences such as \\1 are not supported"),
    ("invalid repetition size", "a counted repetition {n} may be at most 1000"),
    ("bad repetition operator", "possessive repetitions such as a++ are not supported"),
    ("pattern too large", "the pattern is too large once compiled; simplify it"),
)


def _re2_message(error: Exception) -> str:
    raw = error.args[0] if error.args else ""
    detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    hint = next((why for start, why in _RE2_HINTS if detail.startswith(start)), "")
    if "backreferences" in hint and not detail[-1:].isdigit():
        hint = ""  # an escape RE2 does not know, such as \Q...
    return (
        f"not a pattern the matching engine (RE2) accepts: {detail}"
        + (f" ({hint})" if hint else "")
        + "; see the pattern syntax in docs/question-bank.md"
    )


def _compile(sub: SpecReader, source: str, case_sensitive: bool) -> Matcher | None:
    if len(source) > MAX_PATTERN_LENGTH:
        sub.problem("pattern", f"at most {MAX_PATTERN_LENGTH} characters")
        return None
    try:
        compiled: Matcher = re2.compile(source, _re2_options(case_sensitive))
    except re2.error as exc:
        sub.problem("pattern", _re2_message(exc))
        return None
    except UnicodeEncodeError:
        sub.problem("pattern", "contains a character that is not valid Unicode text")
        return None
    return compiled


def text_bounds_problem(text: str) -> str | None:
    """Why `text` is beyond the bounds of a short answer, or None."""
    if len(text) > MAX_ANSWER_LENGTH:
        return f"it is longer than {MAX_ANSWER_LENGTH} characters"
    # Checked as typed first, so NFKC only ever runs on a bounded text.
    if len(unicodedata.normalize("NFKC", text)) > MAX_MATCH_LENGTH:
        return f"it is longer than {MAX_MATCH_LENGTH} characters once normalised"
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
        text = accept_single_text(submitted)
        problem = None if text is None else text_bounds_problem(text)
        if problem is not None:
            raise AnswerOutOfBounds(f"This answer cannot be accepted: {problem} ({TEXT_BOUNDS}).")
        return text

    def grade(self, variant: Variant, response: Response) -> Grade:
        if response is None or (isinstance(response, str) and not response.strip()):
            return UNANSWERED
        if not isinstance(response, str):
            return unreadable("it is not text")
        problem = text_bounds_problem(response)
        if problem is not None:
            return unreadable(problem)
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
