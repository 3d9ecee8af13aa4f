"""The student's side in a real browser, against a real gunicorn server (see conftest.py).

Accounts come from `quizapp demo`: alice and bob take the sample quizzes (60 minutes);
chen and dana take the 1-minute quiz written by the live_server fixture. The two
1-minute attempts run at the same time (dana's is started, then its page closed, just
before chen's), so the suite waits out one minute, not two.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, Route, expect
from sqlalchemy import select

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from tests.browser.helpers import (
    GRACE_SECONDS,
    POLL_SECONDS,
    SAVED,
    SHORT_TITLE,
    LiveServer,
    login,
    pending_queue,
    question,
    save_state,
    screenshot,
    server_status,
    slot_of,
    start_quiz,
)

QUIZ1 = "Quiz 1: Foundations"
QUIZ2 = "Quiz 2: Gradients and shapes"
LONDON = ZoneInfo("Europe/London")


def local_minute(moment: datetime) -> str:
    """A time as the result page and dashboard show it (the `local` filter)."""
    return moment.astimezone(LONDON).strftime("%a %d %b %Y, %H:%M %Z")


def test_log_in_answer_reload_flag_and_submit(page: Page) -> None:
    page.goto("/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot(page, "login")
    login(page, "alice")
    expect(page.get_by_role("heading", name="Open now")).to_be_visible()
    expect(page.locator(".quiz-card", has_text=QUIZ1)).to_contain_text("Time limit: 1 hour")
    screenshot(page, "dashboard")

    # The start page states the real time available and asks for confirmation.
    page.get_by_role("link", name=f"Start {QUIZ1}").click()
    expect(page.locator("dl.facts")).to_contain_text("1 hour")
    expect(page.locator(".notice")).to_contain_text("you will have 1 hour")
    screenshot(page, "start")
    page.get_by_role("button", name="Start the quiz now").click()
    expect(page).to_have_url(re.compile(r"/attempt/\d+$"))
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^(59|60):\d\d$"))
    total = page.locator(".question-nav a").count()
    assert total == 15  # 14 slots, one drawing 2 from a pool

    # A radio, a numeric box and a checkbox group: each is autosaved.
    question(page, 1).locator("label.choice", has_text="small constant multiple").locator(
        "input"
    ).check()
    question(page, 2).get_by_label("Your answer").fill("0.9689")
    q3 = question(page, 3)
    q3.locator("label.choice", has_text="Jacobian").locator("input").check()
    q3.locator("label.choice", has_text="dual numbers").locator("input").check()
    for number in (1, 2, 3):
        expect(save_state(page, number)).to_have_text(SAVED)
    expect(page.locator("#save-summary")).to_have_text("All answers saved.")
    status = server_status(page)
    assert sorted(status["answers"]) == sorted(slot_of(page, n) for n in (1, 2, 3))
    assert pending_queue(page) == {}
    screenshot(page, "attempt")
    screenshot(page, "attempt-viewport", full_page=False)
    screenshot(page, "attempt-360", width=360)

    # A reload shows what the server holds.
    page.reload()
    expect(
        question(page, 1)
        .locator("label.choice", has_text="small constant multiple")
        .locator("input")
    ).to_be_checked()
    expect(question(page, 2).get_by_label("Your answer")).to_have_value("0.9689")
    expect(q3.locator("label.choice", has_text="Jacobian").locator("input")).to_be_checked()
    expect(q3.locator("label.choice", has_text="dual numbers").locator("input")).to_be_checked()
    expect(q3.locator("label.choice", has_text="scalar loss").locator("input")).not_to_be_checked()
    for number in (1, 2, 3):
        expect(save_state(page, number)).to_have_text(SAVED)
    expect(page.locator(".question-nav a.answered")).to_have_count(3)

    # The question nav jumps; the flag is a toggle button and shows in the nav.
    slot5 = slot_of(page, 5)
    nav5 = page.locator(f"#nav-{slot5}")
    nav5.click()
    expect(page).to_have_url(re.compile(r"#q5$"))
    flag = question(page, 5).get_by_role("button", name="Flag for review")
    expect(flag).to_have_attribute("aria-pressed", "false")
    with page.expect_response(lambda r: f"/flags/{slot5}" in r.url and r.status == 200):
        flag.click()
    expect(flag).to_have_attribute("aria-pressed", "true")
    expect(nav5).to_have_class(re.compile(r"\bflagged\b"))
    expect(nav5.locator(".visually-hidden")).to_have_text(", flagged")
    assert server_status(page)["flags"] == [int(slot5)]
    page.reload()
    expect(question(page, 5).get_by_role("button", name="Flag for review")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator(f"#nav-{slot5}")).to_have_class(re.compile(r"\bflagged\b"))

    # Save and finish: the confirmation counts the unanswered questions.
    page.get_by_role("button", name="Save and finish…").click()
    expect(page.get_by_role("heading", name="Finish and submit?")).to_be_visible()
    unanswered = ", ".join(str(n) for n in range(4, total + 1))
    expect(page.locator(".notice")).to_contain_text(
        f"You have not answered {total - 3} of {total} questions (questions {unanswered})."
    )
    page.get_by_role("button", name="Submit my answers").click()
    expect(page).to_have_url(re.compile(r"/attempt/\d+/result$"))
    expect(page.locator("main")).to_contain_text("You submitted this attempt")
    expect(page.locator(".receipt")).to_have_text(re.compile(r"\S{6,}"))
    # 1 (single choice) + 2 (numeric, 2 marks) + 1 (both right options, none wrong).
    expect(page.locator(".score")).to_have_text(re.compile(r"Score: 4 out of 21\b"))
    screenshot(page, "result")


def test_lost_connection_keeps_answers_and_resends_them(page: Page) -> None:
    login(page, "bob")
    start_quiz(page, QUIZ1)
    box = question(page, 2).get_by_label("Your answer")
    box.fill("0.5")
    expect(save_state(page, 2)).to_have_text(SAVED)
    slot2, slot1 = slot_of(page, 2), slot_of(page, 1)

    page.context.set_offline(True)
    box.fill("0.9689")
    question(page, 1).locator("label.choice").first.locator("input").check()
    for number in (1, 2):
        expect(save_state(page, number)).to_have_text(
            "Not saved yet: no connection. Kept on this device; retrying."
        )
    expect(page.locator("#save-summary")).to_have_text(
        re.compile(r"^No connection: 2 answers kept on this device and not saved yet")
    )
    queued = pending_queue(page)
    assert queued[slot2]["values"] == ["0.9689"]
    assert queued[slot1]["values"] == [
        question(page, 1).locator("input:checked").get_attribute("value")
    ]

    page.context.set_offline(False)
    for number in (1, 2):
        expect(save_state(page, number)).to_have_text(SAVED)
    expect(page.locator("#save-summary")).to_have_text("All answers saved.")
    assert pending_queue(page) == {}
    status = server_status(page)
    assert status["answers"][slot2]["seq"] == queued[slot2]["seq"]
    assert status["answers"][slot1]["seq"] == queued[slot1]["seq"]

    # Nothing left on the device: after a reload the value comes from the server.
    page.reload()
    expect(box).to_have_value("0.9689")
    expect(save_state(page, 2)).to_have_text(SAVED)


@dataclass
class ClosedAttempt:
    attempt_id: int
    deadline: datetime


@pytest.fixture(scope="module")
def closed_page_attempt(browser, live_server: LiveServer) -> Iterator[ClosedAttempt]:  # type: ignore[no-untyped-def]
    """dana starts the 1-minute quiz, saves one answer (right) and closes the page."""
    context = browser.new_context(base_url=live_server.url, locale="en-GB")
    page = context.new_page()
    login(page, "dana")
    number = start_quiz(page, SHORT_TITLE)
    question(page, 1).get_by_label("Your answer").fill("5")
    expect(save_state(page, 1)).to_have_text(SAVED)
    deadline = datetime.fromisoformat(
        page.locator("#countdown").get_attribute("data-deadline") or ""
    )
    context.close()
    yield ClosedAttempt(number, deadline)


def test_countdown_reaching_zero_saves_and_finishes(
    page: Page, closed_page_attempt: ClosedAttempt
) -> None:
    login(page, "chen")
    start_quiz(page, SHORT_TITLE)
    countdown = page.locator("#countdown")
    expect(countdown).to_have_text(re.compile(r"^(0:5\d|1:00)$"))
    deadline = datetime.fromisoformat(countdown.get_attribute("data-deadline") or "")
    # Warnings go to a polite live region, once each; the ticking countdown is not in it.
    announcer = page.locator("#countdown-announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_text("1 minute left.")
    page.evaluate(
        """() => {
          window.__spoken = []; window.__ticks = 0;
          const watch = (id, seen) => new MutationObserver(seen).observe(
            document.getElementById(id), {childList: true, characterData: true, subtree: true});
          watch('countdown-announcer', () => window.__spoken.push(
            document.getElementById('countdown-announcer').textContent));
          watch('countdown', () => { window.__ticks += 1; });
        }"""
    )
    question(page, 1).get_by_label("Your answer").fill("5")
    expect(save_state(page, 1)).to_have_text(SAVED)

    # The last autosave travels slowly: it leaves before the deadline and is held on the
    # way until just after it (well within the grace period). The page must not ask the
    # server to finish the attempt while that save is still on its way.
    slot2 = slot_of(page, 2)
    held: list[Route] = []
    time_up: list[float] = []

    def slow_last_save(route: Route) -> None:
        if route.request.method == "PUT" and route.request.url.endswith(f"/answers/{slot2}"):
            held.append(route)
        else:
            route.continue_()

    page.route("**/api/attempts/*/answers/*", slow_last_save)
    page.on("request", lambda r: time_up.append(time.monotonic()) if "/time-up" in r.url else None)

    # About 2 seconds before the end, type the last answer and leave the page alone.
    page.wait_for_function(
        "() => /^0:0[0-2]$/.test(document.getElementById('countdown').textContent.trim())",
        timeout=75_000,
        polling=100,
    )
    question(page, 2).get_by_label("Your answer").fill("42")
    _pump_until(page, lambda: bool(held), 5)
    assert held, "the last answer was never sent"
    expect(countdown).to_have_text("0:00", timeout=5_000)
    page.wait_for_function("() => window.__spoken.length > 0", timeout=3_000, polling=50)
    assert page.evaluate("() => window.__spoken") == [
        "Time is up. Your last answers are being saved."
    ]
    assert page.evaluate("() => window.__ticks") >= 45  # a minute of ticks, said once
    _pump_until(page, lambda: bool(time_up), 1)  # an early time-up would show here
    released = time.monotonic()
    held[0].continue_()
    expect(page).to_have_url(re.compile(r"/attempt/\d+/result$"), timeout=20_000)
    main = page.locator("main")
    expect(main).to_contain_text(f"This attempt ended at its deadline on {local_minute(deadline)}")
    expect(page.locator(".receipt")).to_have_text(re.compile(r"\S{6,}"))
    expect(page.locator(".score")).to_have_text(re.compile(r"Score: 2 out of 2\b"))
    assert not time_up or time_up[0] > released, (
        "the page asked the server to finish while the last autosave was still on its way"
    )


def _pump_until(page: Page, done: Callable[[], bool], seconds: float) -> None:
    """Let Playwright deliver events (routes, requests) until done() or the time is up."""
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        page.wait_for_timeout(50)


def test_page_closed_past_deadline_is_finalised_by_the_sweeper(
    new_context, live_server: LiveServer, closed_page_attempt: ClosedAttempt
) -> None:  # type: ignore[no-untyped-def]
    past = closed_page_attempt.deadline + timedelta(seconds=GRACE_SECONDS + 1)
    time.sleep(max(0.0, (past - datetime.now(UTC)).total_seconds()))
    result = live_server.cli("attempts", "finalise-expired")
    assert result.stdout.strip() == "Finalised 1 expired attempt(s)."

    page = new_context().new_page()
    login(page, "dana")
    card = page.locator(".quiz-card", has_text=SHORT_TITLE)
    line = card.locator("ul.attempts li")
    expect(line).to_have_count(1)
    expect(line).to_contain_text(
        f"Attempt 1: ended at the deadline {local_minute(closed_page_attempt.deadline)}"
    )
    expect(line.locator("code")).to_have_text(re.compile(r"\S{6,}"))
    expect(line).to_contain_text("score 1 / 2")
    assert not card.get_by_role("link", name=re.compile("Continue|Start")).count()


def test_extra_time_reaches_the_open_page_without_a_reload(
    page: Page, live_server: LiveServer
) -> None:
    from quizapp import create_app
    from quizapp.models import Quiz, User
    from quizapp.services.overrides import OverrideChange, set_override

    login(page, "bob")
    start_quiz(page, QUIZ2)
    countdown = page.locator("#countdown")
    expect(countdown).to_have_text(re.compile(r"^(59|60):\d\d$"))
    loaded = page.evaluate("Date.now()")

    app = create_app({"QUIZAPP_DATABASE_URL": live_server.database_url, "SECRET_KEY": "x"})
    database = app.extensions["quizapp_db"]
    try:
        with app.app_context(), database.new_session() as session:
            quiz = session.scalars(
                select(Quiz).where(Quiz.key == "quiz2-gradients-and-shapes")
            ).one()
            bob = session.scalars(select(User).where(User.username == "bob")).one()
            moved = set_override(
                session,
                quiz.id,
                OverrideChange(time_limit=timedelta(minutes=90), reason="browser test"),
                datetime.now(UTC),
                user_id=bob.id,
            )
            assert len(moved) == 1
    finally:
        database.remove()
        database.engine.dispose()

    # The page polls the status API (every 30 s by default, every POLL_SECONDS here):
    # the countdown follows within one poll.
    expect(countdown).to_have_text(
        re.compile(r"^1:(29|30):\d\d$"), timeout=(POLL_SECONDS + 5) * 1000
    )
    assert page.evaluate("Date.now()") - loaded < (POLL_SECONDS + 6) * 1000
    expect(page.locator("#countdown-announcer")).to_have_text(
        re.compile(r"^Your deadline is now \d\d:\d\d \S+ \(\+30 min\)$")
    )
