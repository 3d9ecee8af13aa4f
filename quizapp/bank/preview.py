"""Staff previews: one variant of a question, or of a whole quiz, from a seed.

Seeds mean the same thing everywhere staff meet them: `quizapp bank validate` reports
"seed 17", and the preview page `/staff/preview/question/<id>?seed=17` shows that very
variant (`question_variant`). A quiz preview with `--seed N` draws the quiz exactly as
an attempt with seed N does (`build_layout`), so a student's attempt can be reproduced
from its stored seed while the bank is unchanged.

A preview shows the answer: it is for staff only and says so.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from quizapp.bank.loader import Bank, LoadedQuestion
from quizapp.domain.layout import Candidate, build_layout
from quizapp.domain.qtypes.base import Choice, StudentView, Variant
from quizapp.domain.questions import Question, canonical_json, question_from_spec
from quizapp.domain.render import render_markdown

Rewrite = Callable[[str], str]


def canonical_question(loaded: LoadedQuestion) -> Question:
    """The question exactly as an imported version rebuilds it (`catalog.question_of`),
    from canonical JSON (sorted keys), so a seed draws exactly what an attempt would."""
    return _canonical(canonical_json(loaded.spec))


_CACHE: dict[str, Question] = {}


def _canonical(spec_json: str) -> Question:
    if spec_json not in _CACHE:
        if len(_CACHE) > 4096:
            _CACHE.clear()
        _CACHE[spec_json] = question_from_spec(json.loads(spec_json))
    return _CACHE[spec_json]


def question_variant(question: Question, seed: int) -> Variant:
    """The variant the validator and the question preview page call "seed N"."""
    return question.body.make_variant(random.Random(f"quizapp:preview:{seed}"))


def auto_graded(question: Question) -> bool:
    return question.body.auto_graded


@dataclass(frozen=True)
class PreviewItem:
    """One question as the student sees it, plus what only staff may see."""

    number: int
    slot: int
    key: str
    title: str
    type_name: str
    marks: Fraction
    variant: Variant
    stem_html: str
    view: StudentView
    answer: str  # describe_answer (plain text)
    answer_html: str  # describe_answer_html (author's labels rendered, typed answers escaped)
    model_values: list[str]  # the form values of the model answer (to fill a widget)
    feedback_html: str
    parameters: dict[str, str]
    auto_graded: bool
    notes: list[str] = field(default_factory=list)  # problems with this variant
    marking_guide_html: str = ""

    def widget(
        self, values: list[str] | None = None, slot: int | str | None = None
    ) -> dict[str, Any]:
        """The `q` mapping the answer widget macro expects."""
        return {
            "number": self.number,
            "slot": self.slot if slot is None else slot,
            "view": self.view,
            "values": values if values is not None else [],
        }


def _identity(fragment: str) -> str:
    return fragment


def rewrite_view(view: StudentView, rewrite: Rewrite) -> StudentView:
    """The view with `rewrite` applied to every HTML fragment (for image addresses)."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return rewrite(value) if "<img" in value else value
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return replace(
        view,
        choices=[Choice(c.value, rewrite(c.html)) for c in view.choices],
        extra=walk(dict(view.extra)),
    )


def preview_question(
    question: Question,
    variant: Variant,
    *,
    number: int = 1,
    slot: int = 1,
    marks: Fraction | None = None,
    rewrite: Rewrite = _identity,
) -> PreviewItem:
    body = question.body
    graded = auto_graded(question)
    notes = list(body.render_problems(variant))
    model = body.model_response(variant)
    values: list[str] = []
    if model is not None:
        values = body.form_values(variant, model)
    elif graded:
        notes.append("this variant has no model answer")
    guide = str(getattr(body, "marking_guide", "") or "")
    answer = body.describe_answer(variant)
    return PreviewItem(
        number=number,
        slot=slot,
        key=question.key,
        title=question.title,
        type_name=question.type_name,
        marks=question.marks if marks is None else marks,
        variant=variant,
        stem_html=rewrite(question.stem_html(variant)),
        view=rewrite_view(body.view(variant), rewrite),
        answer=answer,
        answer_html=rewrite(body.describe_answer_html(variant)),
        model_values=values,
        feedback_html=rewrite(render_markdown(question.feedback)) if question.feedback else "",
        parameters=body.text_params(variant),
        auto_graded=graded,
        notes=notes,
        marking_guide_html=rewrite(render_markdown(guide)) if guide else "",
    )


@dataclass(frozen=True)
class QuizPreview:
    key: str
    title: str
    description: str
    seed: int
    items: list[PreviewItem]

    @property
    def total_marks(self) -> Fraction:
        return sum((i.marks for i in self.items), Fraction(0))


class PreviewError(LookupError):
    pass


def preview_quiz(
    bank: Bank, quiz_key: str, seed: int, rewrite_for: Callable[[str], Rewrite] | None = None
) -> QuizPreview:
    """The quiz as an attempt with `seed` would show it.

    `rewrite_for(file)` gives the HTML rewrite for questions from bank file `file`
    (image addresses); by default HTML is left as rendered.
    """
    loaded = bank.quizzes.get(quiz_key)
    if loaded is None:
        known = ", ".join(sorted(bank.quizzes)) or "none"
        raise PreviewError(f"no quiz {quiz_key!r} in {bank.root} (quizzes: {known})")
    current = {k: Candidate(0, canonical_question(q)) for k, q in bank.questions.items()}
    layout = build_layout(loaded.slots, current, seed, shuffle_slots=loaded.quiz.shuffle_slots)
    items = []
    for number, entry in enumerate(layout, start=1):
        source = bank.questions[entry.question_key]
        rewrite = rewrite_for(source.file) if rewrite_for is not None else _identity
        items.append(
            preview_question(
                current[entry.question_key].question,
                entry.variant,
                number=number,
                slot=entry.slot,
                marks=entry.marks,
                rewrite=rewrite,
            )
        )
    quiz = loaded.quiz
    return QuizPreview(quiz.key, quiz.title, quiz.description, seed, items)
