"""Helpers for functional tests: pages, tokens and starting an attempt as a student."""

from __future__ import annotations

import re

from quizapp.models import Attempt
from quizapp.services.catalog import attempt_questions


def csrf_of(page: str) -> str:
    """The CSRF token of a page: from any csrf_token input, or the csrf-token meta tag."""
    for tag in re.findall(r"<(?:input|meta)\b[^>]*>", page):
        if 'name="csrf_token"' in tag or 'name="csrf-token"' in tag:
            match = re.search(r'(?:value|content)="([^"]+)"', tag)
            if match:
                return match.group(1)
    raise AssertionError("page has no CSRF token")


def first_quiz_id(client) -> int:
    page = client.get("/").get_data(as_text=True)
    return int(re.search(r'href="/quiz/(\d+)"', page).group(1))


def start_attempt(client, quiz_id: int | None = None) -> tuple[int, str]:
    """Start through the pages, as a student would; returns (attempt id, attempt page)."""
    quiz_id = quiz_id or first_quiz_id(client)
    page = client.get(f"/quiz/{quiz_id}").get_data(as_text=True)
    response = client.post(f"/quiz/{quiz_id}/start", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    attempt_id = int(response.headers["Location"].rsplit("/", 1)[1])
    return attempt_id, client.get(f"/attempt/{attempt_id}").get_data(as_text=True)


def slot_of(session, attempt_id: int, question_key: str) -> int:
    attempt = session.get(Attempt, attempt_id)
    for entry, question in attempt_questions(session, attempt):
        if question.key == question_key:
            return entry.slot
    raise AssertionError(f"{question_key} not in attempt {attempt_id}")


def model_form(session, attempt_id: int) -> dict[str, list[str]]:
    """Form values a perfect student would post, from the attempt's own layout."""
    attempt = session.get(Attempt, attempt_id)
    form: dict[str, list[str]] = {}
    for entry, question in attempt_questions(session, attempt):
        body = question.body
        model = body.model_response(entry.variant)
        if model is None or not getattr(type(body), "auto_graded", True):
            continue
        form[f"present-{entry.slot}"] = ["1"]
        form[f"slot-{entry.slot}"] = body.form_values(entry.variant, model)
    return form


def seq_base(page: str) -> int:
    return int(re.search(r'data-seq-base="(\d+)"', page).group(1))
