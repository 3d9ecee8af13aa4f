"""What an open attempt page asks of the server: on exam day every request is multiplied
by the cohort (docs/scaling.md counts them per student-hour).

- Typing an answer and then leaving the field sends it once: the change event that
  follows the typing does not send the same value again.
- A page whose saves keep reaching the server needs no status polls: the poll timer
  restarts with every reply, so polls happen only after a quiet spell.
"""

from __future__ import annotations

import time

from playwright.sync_api import Page, Request, expect

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from tests.browser.helpers import POLL_SECONDS, SAVED, login, question, save_state, start_quiz

QUIZ1 = "Quiz 1: Foundations"


def test_a_typed_answer_is_sent_once_and_saving_replaces_polling(page: Page) -> None:
    requests: list[tuple[float, str, str]] = []

    def record(request: Request) -> None:
        if "/api/attempts/" in request.url:
            requests.append((time.monotonic(), request.method, request.url))

    login(page, "kate")
    start_quiz(page, QUIZ1)
    page.on("request", record)

    box = question(page, 2).get_by_label("Your answer")
    box.fill("0.9689")
    expect(save_state(page, 2)).to_have_text(SAVED)
    box.press("Tab")  # leaves the field: a change event with the value already saved
    page.wait_for_timeout(1000)
    puts = [r for r in requests if r[1] == "PUT"]
    assert len(puts) == 1, puts

    # Saves every second for three poll periods: the replies keep the clock fresh, so
    # the page never polls meanwhile.
    requests.clear()
    began = time.monotonic()
    value = 1
    while time.monotonic() - began < 3 * POLL_SECONDS:
        value += 1
        box.fill(f"0.{value}")
        box.press("Tab")
        page.wait_for_timeout(1000)
    assert [r for r in requests if r[1] == "PUT"], requests
    assert not [r for r in requests if r[1] == "GET"], requests

    # Left alone, the page polls again within one period of its last reply.
    requests.clear()
    page.wait_for_timeout((POLL_SECONDS + 2) * 1000)
    assert [r for r in requests if r[1] == "GET"], requests
