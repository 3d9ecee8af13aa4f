"""Nothing sent to a student before release reveals a correct answer or a grading rule.

Every student-facing page and API response of both sample quizzes (between them, every
question type) is collected while a student takes them; then every secret of every
question (answers, accepted texts and patterns, tolerances, formulas, feedback, sample
answers, marking guides, correctness flags) and every pool question not drawn must be
absent from all of it. Marks are released immediately in the sample quizzes but answers
only after the window closes, so the result page is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from quizapp.models import Attempt, Quiz
from quizapp.services.attempts import current_answers
from quizapp.services.catalog import attempt_questions
from tests.functional.helpers import csrf_of, seq_base

# Spec fields whose values a student must not see before release.
SECRET_FIELDS = {
    "answer", "answers", "tolerance", "relative_tolerance", "feedback", "feedback_true",
    "feedback_false", "wrong_answers", "sample_answer", "marking_guide", "pattern",
    "fraction", "significant_figures",
}  # fmt: skip
# Spec fields a student is meant to see (the question itself).
VISIBLE_FIELDS = {
    "stem",
    "text",
    "title",
    "left",
    "right",
    "distractors",
    "items",
    "label",
    "units",
    "id",
}

QUIZZES = {
    "quiz1-foundations": datetime(2027, 1, 18, 11, 0, tzinfo=UTC),
    "quiz2-gradients-and-shapes": datetime(2027, 1, 25, 11, 0, tzinfo=UTC),
}


def _walk(data: Any, secret: bool = False) -> Iterator[tuple[bool, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "correct" and value is True:
                yield True, "correct"
            yield from _walk(value, secret or key in SECRET_FIELDS)
    elif isinstance(data, list):
        for item in data:
            yield from _walk(item, secret)
    elif isinstance(data, str | int | float) and not isinstance(data, bool):
        yield secret, str(data)


def _texts(spec: dict, want_secret: bool) -> set[str]:
    return {text.strip() for secret, text in _walk(spec) if secret == want_secret and text.strip()}


def _distinctive(text: str) -> bool:
    """Long enough that finding it in a page cannot be a coincidence."""
    return len(text) >= 6 or (len(text) >= 3 and any(c.isdigit() for c in text) and "." in text)


def _student_pages(client, session, quiz_key: str) -> tuple[list[str], Attempt]:
    quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == quiz_key)).one()
    pages = [client.get("/").get_data(as_text=True)]
    start = client.get(f"/quiz/{quiz_id}").get_data(as_text=True)
    pages.append(start)
    started = client.post(f"/quiz/{quiz_id}/start", data={"csrf_token": csrf_of(start)})
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/attempt/{attempt_id}").get_data(as_text=True)
    pages.append(page)
    token, base = csrf_of(page), seq_base(page)
    session.rollback()  # see the attempt the request just created
    # Answer every question with something plausible but not the key (the student's own
    # typed answers would otherwise be "found" in the page).
    for n, (entry, question) in enumerate(
        attempt_questions(session, session.get(Attempt, attempt_id))
    ):
        view = question.body.view(entry.variant)
        values = [view.choices[-1].value] if view.choices else ["7"]
        reply = client.put(
            f"/api/attempts/{attempt_id}/answers/{entry.slot}",
            json={"value": values, "seq": base + n + 1},
            headers={"X-CSRFToken": token},
        )
        assert reply.status_code in (200, 400)
        pages.append(reply.get_data(as_text=True))
    pages.append(client.get(f"/api/attempts/{attempt_id}").get_data(as_text=True))
    pages.append(client.get(f"/attempt/{attempt_id}").get_data(as_text=True))  # answers filled in
    confirm = client.get(f"/attempt/{attempt_id}/submit").get_data(as_text=True)
    pages.append(confirm)
    done = client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": csrf_of(confirm)})
    pages.append(client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True))
    pages.append(client.get(done.headers["Location"]).get_data(as_text=True))
    pages.append(client.get("/").get_data(as_text=True))
    session.rollback()
    return pages, session.get(Attempt, attempt_id)


@pytest.mark.parametrize("quiz_key", sorted(QUIZZES))
def test_no_student_facing_response_reveals_answers_or_grading_rules(
    quiz_key, client, auth, users, sample_bank, session, clock
):
    clock.set(QUIZZES[quiz_key])
    auth.login("alice")
    pages, attempt = _student_pages(client, session, quiz_key)
    everything = "\n".join(pages)
    assert "Score:" in pages[-2]  # marks are released: the result page was really rendered

    visible: set[str] = set()
    secrets: dict[str, str] = {}
    drawn = {question.key for _, question in attempt_questions(session, attempt)}
    answers = current_answers(session, attempt.id)
    for loaded in sample_bank.questions.values():
        visible |= _texts(loaded.spec, want_secret=False)
    for entry, question in attempt_questions(session, attempt):
        spec = sample_bank.questions[question.key].spec
        for text in _texts(spec, want_secret=True):
            secrets.setdefault(text, question.key)
        # The correct answer in words, as the review page will show it after release
        # (unless the student happened to give it: their own answer is theirs to see).
        described = question.body.describe_answer(entry.variant)
        stored = answers.get(entry.slot)
        own = question.body.describe_response(entry.variant, stored.value if stored else None)
        if described != own and not any(
            described in v or v in described for v in visible if len(v) > 3
        ):
            secrets.setdefault(described, question.key)
            # And as the review page draws it (labels rendered, maths as MathML).
            secrets.setdefault(question.body.describe_answer_html(entry.variant), question.key)

    checked = 0
    for secret, key in secrets.items():
        if not _distinctive(secret) or any(secret in v for v in visible):
            continue  # also part of what students are meant to read
        checked += 1
        assert secret not in everything, f"{key}: {secret!r} was sent to the student"
    assert checked >= 10, "the test checked too little to mean anything"

    # Questions of a pool that were not drawn for this student never reach them.
    quiz_pools = {s.pool for s in sample_bank.quizzes[quiz_key].slots if s.pool}
    hidden = [
        loaded
        for key, loaded in sample_bank.questions.items()
        if key not in drawn and set(loaded.question.tags) & quiz_pools
    ]
    assert hidden, "the sample quiz should draw from a pool"
    for loaded in hidden:
        stem = loaded.question.stem.strip().splitlines()[0][:60]
        assert stem not in everything, f"undrawn pool question {loaded.question.key} leaked"
        assert loaded.question.key not in everything

    # No markup hints either.
    assert not re.search(
        r"data-correct|class=\"[^\"]*\bcorrect\b|aria-[a-z]+=\"correct", everything
    )
