"""Essays: free text marked by staff.

Spec::

    type: essay
    min_words: 50            # optional, shown to the student
    max_words: 300           # optional, shown to the student
    sample_answer: "..."     # optional, shown to staff (and to students after release)
    marking_guide: "..."     # optional, for staff only

Grading never decides: a non-empty answer is NEEDS_MARKING with fraction 0 until staff
mark it. Essays set `auto_graded = False` (QuestionType.auto_graded): the bank
validator skips the "model answer scores full marks" and "wrong answers score less"
checks for such types.

View: input "essay"; extra = {"min_words": n, "max_words": n} (only those given).
Form: one text value (a textarea). Stored response: the text exactly as typed, or None.

An essay may have at most MAX_ESSAY_LENGTH characters: longer is refused at save time
(AnswerOutOfBounds). A longer one stored before that bound is left for staff without
counting its words, so grading stays bounded.
"""

from __future__ import annotations

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
    QuestionType,
    Response,
    StudentView,
    Variant,
    accept_single_text,
)
from quizapp.domain.render import render_markdown
from quizapp.domain.spec import SpecReader

# About 8,000 words: several times what anyone writes in a timed essay, and a tenth of
# what the API would carry (web/api.py MAX_VALUE_CHARS).
MAX_ESSAY_LENGTH = 50_000
ESSAY_BOUNDS = f"an essay may have at most {MAX_ESSAY_LENGTH} characters"


def word_count(text: str) -> int:
    return len(text.split())


@register
@dataclass(frozen=True)
class Essay(QuestionType):
    """See the module docstring."""

    min_words: int | None
    max_words: int | None
    sample_answer: str
    marking_guide: str

    type_name: ClassVar[str] = "essay"
    auto_graded: ClassVar[bool] = False

    @classmethod
    def read(cls, spec: SpecReader) -> Self:
        min_words = spec.integer("min_words", required=False, default=0, minimum=1) or None
        max_words = spec.integer("max_words", required=False, default=0, minimum=1) or None
        if min_words and max_words and min_words > max_words:
            spec.problem("max_words", "must not be less than min_words")
        sample = spec.text("sample_answer", required=False)
        guide = spec.text("marking_guide", required=False)
        return cls(min_words, max_words, sample, guide)

    def view(self, variant: Variant) -> StudentView:
        extra: dict[str, int] = {}
        if self.min_words:
            extra["min_words"] = self.min_words
        if self.max_words:
            extra["max_words"] = self.max_words
        return StudentView(input="essay", extra=dict(extra))

    def accept(self, variant: Variant, submitted: Sequence[str]) -> Response:
        text = accept_single_text(submitted)
        if text is not None and len(text) > MAX_ESSAY_LENGTH:
            raise AnswerOutOfBounds(
                f"This essay cannot be accepted: it has {len(text)} characters, and {ESSAY_BOUNDS}."
            )
        return text

    def grade(self, variant: Variant, response: Response) -> Grade:
        if response is None or (isinstance(response, str) and not response.strip()):
            return UNANSWERED
        if not isinstance(response, str):
            # Not something accept() stores; str() of it could be any size.
            return Grade(Fraction(0), GradeStatus.NEEDS_MARKING, "The stored answer is not text.")
        text = response
        if len(text) > MAX_ESSAY_LENGTH:
            return Grade(
                Fraction(0),
                GradeStatus.NEEDS_MARKING,
                f"Longer than {MAX_ESSAY_LENGTH} characters; words not counted.",
            )
        words = word_count(text)
        notes = []
        if self.min_words and words < self.min_words:
            notes.append(f"{words} words (at least {self.min_words} asked).")
        if self.max_words and words > self.max_words:
            notes.append(f"{words} words (at most {self.max_words} asked).")
        return Grade(Fraction(0), GradeStatus.NEEDS_MARKING, " ".join(notes))

    def model_response(self, variant: Variant) -> Response:
        return self.sample_answer or None

    def describe_response(self, variant: Variant, response: Response) -> str:
        return "(no answer)" if response is None else str(response)

    def describe_answer(self, variant: Variant) -> str:
        return self.sample_answer or "(marked by staff)"

    def describe_answer_html(self, variant: Variant) -> str:
        # The sample answer is the author's Markdown (the response, typed by the student,
        # stays escaped by the default describe_response_html).
        if not self.sample_answer:
            return "(marked by staff)"
        return render_markdown(self.sample_answer)
