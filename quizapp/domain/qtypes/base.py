"""The one small interface every question type implements.

A question type reads its part of the YAML spec, draws a variant from a seeded random
generator, says what the student sees (never the answer), turns submitted form values
into a stored response, and grades a response to an exact fraction of the marks.
"""

from __future__ import annotations

import enum
import html
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar, Self

from quizapp.domain.spec import SpecReader

# What is stored for one answer: plain JSON data, defined by each type.
Response = Any
# What is fixed per attempt for one question (option order, parameter values): plain JSON.
Variant = dict[str, Any]


class GradeStatus(enum.StrEnum):
    CORRECT = "correct"
    PARTIAL = "partial"
    INCORRECT = "incorrect"
    UNANSWERED = "unanswered"
    UNREADABLE = "unreadable"  # stored as given, scored 0, explained at review
    NEEDS_MARKING = "needs_marking"  # essays: staff decide
    GRADING_FAILED = "grading_failed"  # automatic grading failed: staff decide (0 until then)


@dataclass(frozen=True)
class Grade:
    fraction: Fraction
    status: GradeStatus
    feedback: str = ""

    @classmethod
    def from_fraction(cls, fraction: Fraction, feedback: str = "") -> Grade:
        if fraction >= 1:
            return cls(Fraction(1), GradeStatus.CORRECT, feedback)
        if fraction <= 0:
            return cls(Fraction(0), GradeStatus.INCORRECT, feedback)
        return cls(fraction, GradeStatus.PARTIAL, feedback)


UNANSWERED = Grade(Fraction(0), GradeStatus.UNANSWERED)


def unreadable(reason: str) -> Grade:
    return Grade(Fraction(0), GradeStatus.UNREADABLE, f"Could not read this answer: {reason}")


class InvalidSubmission(ValueError):
    """A submission that does not fit the question's form at all (e.g. an unknown option).

    Distinct from an unreadable answer such as `abc` for a number, which is stored as
    given and scored 0: this one is rejected with a 4xx and nothing is written.
    """


class AnswerOutOfBounds(InvalidSubmission):
    """A value a student could type but that exceeds what the question type will do work
    on (a number's digits or exponent, a matrix's size, an expression's length): refused
    at save time (422) with a message saying the limit, so grading stays milliseconds."""


def accept_single_text(submitted: Sequence[str]) -> str | None:
    """The answer of a question with one text box: stored exactly as typed (an
    unreadable answer is still the student's answer), None when left blank."""
    if len(submitted) > 1:
        raise InvalidSubmission("one answer only")
    text = submitted[0] if submitted else ""
    return text if text.strip() else None


@dataclass(frozen=True)
class Choice:
    """One option shown to the student: the form value and its rendered label."""

    value: str
    html: str


@dataclass(frozen=True)
class StudentView:
    """Everything the page needs to show one question: no answers, no grading rules."""

    input: str  # "radio", "checkbox", "text", ...
    choices: Sequence[Choice] = ()
    extra: dict[str, Any] = field(default_factory=dict)


class QuestionType(ABC):
    """Type-specific body of a question. Subclasses are frozen dataclasses."""

    type_name: ClassVar[str]
    # False for types that staff mark by hand (essays): the validator does not expect
    # the model answer to score full marks, and regrades leave their marks alone.
    auto_graded: ClassVar[bool] = True
    # Spec keys the common question reader handles for every type.
    COMMON_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"id", "type", "stem", "marks", "tags", "feedback", "title"}
    )

    @classmethod
    @abstractmethod
    def read(cls, spec: SpecReader) -> Self:
        """Read and validate this type's fields, recording every problem in `spec`."""

    def make_variant(self, rng: random.Random) -> Variant:
        """What is fixed for one attempt (option order, parameters). Default: nothing."""
        return {}

    def text_params(self, variant: Variant) -> dict[str, str]:
        """Values substituted for `{{name}}` in the stem (calculated questions)."""
        return {}

    @abstractmethod
    def view(self, variant: Variant) -> StudentView:
        """What the student sees, in the variant's order. Must never reveal the answer."""

    @abstractmethod
    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        """Turn submitted form values into the stored response (None: no answer).

        Raises InvalidSubmission for values no honest form could send.
        """

    @abstractmethod
    def grade(self, variant: Variant, response: Response) -> Grade:
        """Grade a stored response. Never raises on odd input: unreadable scores 0."""

    def form_values(self, variant: Variant, response: Response) -> list[str]:
        """The form values that reproduce `response` on the page (inverse of accept)."""
        if response is None:
            return []
        return [str(response)]

    @abstractmethod
    def model_response(self, variant: Variant) -> Response:
        """A response that must score full marks (the validator proves it)."""

    def wrong_responses(self, variant: Variant) -> list[Response]:
        """Responses that must not score full marks (listed distractors)."""
        return []

    @abstractmethod
    def describe_response(self, variant: Variant, response: Response) -> str:
        """The response in words, for review pages and CSV exports."""

    @abstractmethod
    def describe_answer(self, variant: Variant) -> str:
        """The correct answer in words (shown only after release)."""

    # The HTML descriptions are for pages (review, marking, regrade, preview); the plain
    # ones above stay for CSV exports and messages. Types whose descriptions include
    # author-written labels (Markdown with maths) override these to render them; whatever
    # a student typed is always escaped, never read as Markdown, maths or HTML.
    def describe_response_html(self, variant: Variant, response: Response) -> str:
        """describe_response as sanitised HTML. Default: the plain text, escaped."""
        return html.escape(self.describe_response(variant, response))

    def describe_answer_html(self, variant: Variant) -> str:
        """describe_answer as sanitised HTML. Default: the plain text, escaped."""
        return html.escape(self.describe_answer(variant))

    def render_problems(self, variant: Variant) -> list[str]:
        """Problems with this variant that the validator should report (e.g. duplicate options)."""
        return []
