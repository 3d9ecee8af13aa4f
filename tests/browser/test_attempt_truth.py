"""What the attempt page and the submit page say is true, in a real browser (issue 16,
items 4, 5 and 7). mia has one open attempt at "Every question type" for the module:

1. staff give her 10 more minutes: within one status poll the countdown, the bar's end
   time, a visible banner ("Your deadline is now 14:41 GMT (+10 min)", the course's
   zone and 24-hour clock) and the screen-reader announcement all agree; when staff
   shorten it, the banner says it was moved earlier, and by how much;
2. she has the attempt open in two tabs; the older tab's later click loses to the newer
   tab's answer: the older tab shows the answer the server holds, offers to keep its
   own, and its summary does not say "All answers saved." until she has chosen; keeping
   it wins on the server, and the other tab follows at its next poll;
3. the submit page lists her flagged question and her too-short essay, each a link back.

The live server polls every POLL_SECONDS (3 s) in these tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from quizapp.services.attempts import SEQ_PAGE_FACTOR
from tests.browser.helpers import (
    DESKTOP,
    EVERY_TYPE_QUIZ,
    EVERY_TYPE_TITLE,
    PASSWORD,
    POLL_SECONDS,
    SAVED,
    LiveServer,
    ModelAnswer,
    Student,
    login,
    model_answers,
    question,
    save_state,
    screenshot,
    server_session,
    server_status,
    start_quiz,
)

STUDENT = "mia"
LONDON = ZoneInfo("Europe/London")
POLL_MS = POLL_SECONDS * 1000


@pytest.fixture(scope="module")
def mia(browser: Browser, live_server: LiveServer) -> Iterator[Student]:
    """mia, created here, with an attempt at "Every question type" (60 minutes) started."""
    from quizapp.services.users import create_user

    with server_session(live_server) as session:
        create_user(session, STUDENT, PASSWORD, name="Mia Moss")
    context = browser.new_context(
        base_url=live_server.url, viewport=DESKTOP, locale="en-GB", timezone_id="Europe/London"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    login(page, STUDENT)
    number = start_quiz(page, EVERY_TYPE_TITLE)
    yield Student(STUDENT, number, context.storage_state())
    context.close()


def open_attempt_page(page: Page, student: Student) -> None:
    page.goto(f"/attempt/{student.attempt_id}")
    expect(page.locator("#save-summary")).to_have_text("All answers saved.")


def countdown_seconds(page: Page) -> int:
    parts = [int(p) for p in page.locator("#countdown").inner_text().split(":")]
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def test_extra_time_moves_the_end_time_with_the_countdown_and_says_so(
    new_context, mia: Student, live_server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    from quizapp.models import Quiz, User
    from quizapp.services.overrides import OverrideChange, set_override

    page = new_context(storage_state=mia.state).new_page()
    open_attempt_page(page, mia)
    countdown = page.locator("#countdown")
    ends = page.locator("#deadline-local")
    banner = page.locator("#deadline-banner")
    before = datetime.fromisoformat(countdown.get_attribute("data-deadline") or "")
    expect(ends).to_have_text(before.astimezone(LONDON).strftime("%H:%M:%S %Z"))
    expect(banner).to_be_hidden()

    with server_session(live_server) as session:
        quiz = session.scalars(select(Quiz).where(Quiz.key == EVERY_TYPE_QUIZ)).one()
        user = session.scalars(select(User).where(User.username == STUDENT)).one()
        moved = set_override(
            session,
            quiz.id,
            OverrideChange(time_limit=timedelta(minutes=70), reason="browser test: extra time"),
            datetime.now(UTC),
            user_id=user.id,
        )
        assert [a.id for a in moved] == [mia.attempt_id]
        after = moved[0].deadline_at
    assert after == before + timedelta(minutes=10)

    # Within one poll: the banner, in the course's zone and 24-hour clock, seen and heard.
    said = f"Your deadline is now {after.astimezone(LONDON):%H:%M %Z} (+10 min)"
    expect(banner).to_have_text(said, timeout=POLL_MS + 5000)
    expect(banner).to_be_visible()
    expect(page.locator("#countdown-announcer")).to_have_text(said)
    # The bar's end time moved with the countdown, and the two agree.
    expect(ends).to_have_text(after.astimezone(LONDON).strftime("%H:%M:%S %Z"))
    expect(countdown).to_have_text(re.compile(r"^1:(0\d|10):\d\d$"))
    left = (after - datetime.now(UTC)).total_seconds()
    assert abs(countdown_seconds(page) - left) <= 3, (countdown.inner_text(), left)
    # No time written in the browser's own 12-hour style anywhere in the bar.
    assert not re.search(r"\b(AM|PM|am|pm)\b", page.locator("#attempt-bar").inner_text())
    screenshot(page, "attempt-deadline-moved", full_page=False)

    # Staff shorten it again (confirmed, as the service requires): said as plainly.
    with server_session(live_server) as session:
        (shortened,) = set_override(
            session,
            quiz.id,
            OverrideChange(time_limit=timedelta(minutes=55), reason="browser test: shorter"),
            datetime.now(UTC),
            user_id=user.id,
            allow_shorter=True,
        )
        earlier = shortened.deadline_at
    assert earlier == after - timedelta(minutes=15)
    said = (
        f"Your deadline has been moved earlier: it is now {earlier.astimezone(LONDON):%H:%M %Z}"
        " (15 min less)"
    )
    expect(banner).to_have_text(said, timeout=POLL_MS + 5000)
    expect(banner).to_have_class(re.compile(r"\bearlier\b"))
    expect(page.locator("#countdown-announcer")).to_have_text(said)
    expect(ends).to_have_text(earlier.astimezone(LONDON).strftime("%H:%M:%S %Z"))
    left = (earlier - datetime.now(UTC)).total_seconds()
    assert abs(countdown_seconds(page) - left) <= 3, (countdown.inner_text(), left)


def _first_choice_question(answers: list[ModelAnswer]) -> ModelAnswer:
    return next(a for a in answers if a.qtype == "single_choice")


def test_two_tabs_the_older_tabs_later_answer_loses_and_the_page_says_so(
    new_context, mia: Student, live_server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    target = _first_choice_question(model_answers(live_server, mia.attempt_id))
    context = new_context(storage_state=mia.state)
    older, newer = context.new_page(), context.new_page()
    # The older tab's idle status polls are held back (as with the default 30 s poll), so
    # that it learns of the newer tab's answer only from its own refused save.
    older.route(re.compile(rf"/api/attempts/{mia.attempt_id}$"), lambda route: route.abort())
    open_attempt_page(older, mia)
    open_attempt_page(newer, mia)
    bases = [
        int(p.locator("#attempt-form").get_attribute("data-seq-base") or 0) for p in (older, newer)
    ]
    assert bases[0] < bases[1], bases

    def option(page: Page, letter: str):  # type: ignore[no-untyped-def]
        return question(page, target.number).locator(
            f'[name="slot-{target.slot}"][value="{letter}"]'
        )

    # The newer tab chooses A and saves; then, in the older tab, B: the later click.
    option(newer, "A").check()
    expect(save_state(newer, target.number)).to_have_text(SAVED)
    option(older, "B").check()

    # The older tab shows what the server holds (A), says why, and offers its own (B).
    state = save_state(older, target.number)
    expect(state).to_have_text(
        re.compile(
            r"^Another window saved a different answer at \d\d:\d\d:\d\d \S+: "
            r"it is shown above\. This page had “B”\.$"
        )
    )
    expect(option(older, "A")).to_be_checked()
    expect(option(older, "B")).not_to_be_checked()
    keep_mine = question(older, target.number).get_by_role(
        "button", name="Keep the answer on this page"
    )
    expect(keep_mine).to_be_visible()
    expect(
        question(older, target.number).get_by_role("button", name="Keep the saved answer")
    ).to_be_visible()
    summary = older.locator("#save-summary")
    expect(summary).to_have_text(
        f"Question {target.number} has a newer answer from another window: "
        "check it and choose which to keep."
    )
    expect(older.locator(f"#nav-{target.slot}")).to_have_class(re.compile(r"\banswered\b"))
    stored = server_status(newer)["answers"][str(target.slot)]
    assert stored["seq"] > bases[1], stored  # the newer tab's answer is the one held
    older.wait_for_timeout(500)
    expect(summary).not_to_have_text("All answers saved.")
    question(older, target.number).scroll_into_view_if_needed()
    screenshot(older, "attempt-other-window-answer", full_page=False)

    # She keeps the older tab's answer: sent again above the newer tab's sequence, it wins.
    keep_mine.click()
    expect(option(older, "B")).to_be_checked()
    expect(state).to_have_text(SAVED)
    expect(summary).to_have_text("All answers saved.")
    expect(keep_mine).to_have_count(0)
    kept = server_status(newer)["answers"][str(target.slot)]
    assert kept["seq"] > stored["seq"], (kept, stored)
    # Not merely the newer tab's sequence + 1, which that tab would reach by counting on
    # (a tie that neither wins): restarted from the server's time, as a page loaded now.
    assert kept["seq"] // SEQ_PAGE_FACTOR > bases[1] // SEQ_PAGE_FACTOR, (kept, bases)

    # The newer tab, idle, follows at its next poll: it shows B and says where it came from.
    expect(option(newer, "B")).to_be_checked(timeout=POLL_MS + 4000)
    expect(save_state(newer, target.number)).to_have_text(
        re.compile(r"^Changed in another window: saved \d\d:\d\d:\d\d \S+$")
    )
    expect(newer.locator("#save-summary")).to_have_text("All answers saved.")


def test_submit_page_lists_a_flagged_question_and_a_short_essay_with_links_back(
    new_context, mia: Student, live_server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    answers = model_answers(live_server, mia.attempt_id)
    essay = next(a for a in answers if a.qtype == "essay")
    flagged = next(a for a in answers if a.qtype not in ("essay", "single_choice"))
    page = new_context(storage_state=mia.state).new_page()
    open_attempt_page(page, mia)
    question(page, essay.number).locator("textarea").fill(
        "Overfitting: the training loss falls while the validation loss rises."
    )
    expect(save_state(page, essay.number)).to_have_text(SAVED)
    flag = question(page, flagged.number).get_by_role("button", name="Flag for review")
    with page.expect_response(lambda r: f"/flags/{flagged.slot}" in r.url and r.ok):
        flag.click()

    page.get_by_role("button", name="Save and finish…").click()
    expect(page.get_by_role("heading", name="Finish and submit?")).to_be_visible()
    main = page.locator("main")
    expect(main).not_to_contain_text("answered all")
    checks = page.locator("ul.submit-checks")
    expect(checks.locator("li", has_text=f"Question {essay.number}:")).to_have_text(
        f"Question {essay.number}: 10 words; at least 80 asked"
    )
    expect(checks.locator("li", has_text=f"Question {flagged.number}:")).to_contain_text(
        "flagged for review"
    )
    expect(page.locator(".notice")).to_contain_text(
        f"1 essay is outside the length asked (question {essay.number})."
    )
    screenshot(page, "confirm-submit-warnings")

    # Each line links back to its question on the attempt page.
    checks.get_by_role("link", name=f"Question {essay.number}", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/attempt/{mia.attempt_id}#q{essay.number}$"))
    expect(question(page, essay.number)).to_be_in_viewport()
