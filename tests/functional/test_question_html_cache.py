"""The attempt page's per-process cache of untouched questions (web/question_html.py):
a page made from the cache is the page rendered afresh, and a question with an answer is
never served from it."""

from __future__ import annotations

import re

import pytest

from quizapp.web import question_html
from tests.functional.helpers import csrf_of, seq_base, slot_of, start_attempt


@pytest.fixture
def student(client, auth, users, sample_bank):  # type: ignore[no-untyped-def]
    auth.login("alice")
    return client


def _questions(client, path: str) -> str:  # type: ignore[no-untyped-def]
    """The page's questions (its clock, sequence base and tokens differ at every load)."""
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return html[html.index('<section class="card question"') : html.index('<div class="actions">')]


def test_a_page_from_the_cache_is_the_page_rendered_afresh(app, student, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    attempt_id, _ = start_attempt(student)
    path = f"/attempt/{attempt_id}"
    cache = app.extensions["quizapp_question_html"]
    cache.clear()
    fresh = _questions(student, path)
    assert len(cache) == fresh.count('<section class="card question"')
    assert _questions(student, path) == fresh  # every question from the cache

    monkeypatch.setattr(question_html, "CACHE_SIZE", 0)  # nothing kept: all rendered
    cache.clear()
    assert _questions(student, path) == fresh and not cache

    monkeypatch.setattr(question_html, "CACHE_SIZE", 2)  # bounded: the newest kept
    assert _questions(student, path) == fresh and len(cache) == 2


def test_an_answered_question_is_rendered_every_time(app, student, session) -> None:  # type: ignore[no-untyped-def]
    attempt_id, page = start_attempt(student)
    slot = slot_of(session, attempt_id, "cnn-output-width")
    response = student.put(
        f"/api/attempts/{attempt_id}/answers/{slot}",
        json={"value": "15", "seq": seq_base(page) + 1},
        headers={"X-CSRFToken": csrf_of(page)},
    )
    assert response.status_code == 200 and response.json["status"] == "saved"
    cache = app.extensions["quizapp_question_html"]
    cache.clear()
    html = _questions(student, f"/attempt/{attempt_id}")
    assert re.search(rf'id="save-state-{slot}"[^>]*>\s*Saved ', html)
    assert re.search(rf'name="slot-{slot}"\s+value="15"', html)
    assert cache and all(key[3] != slot for key in cache)
