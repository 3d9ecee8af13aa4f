"""axe-core on every page a student or an examiner uses, at WCAG 2.2 levels A and AA, on
a desktop and again at 360 px (each page state is checked at both widths), with the
pages' real Content-Security-Policy in force (axe_required.py serves axe from
the app's origin). Each test visits several pages and reports every violation it found,
page by page, before failing, so one run shows all there is to fix.

hugo has finished an attempt at "Every question type" (all twelve question types, marks
and answers released: the review shows correct answers and feedback); jack has one open.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from tests.browser.axe_required import assert_no_violations, check_accessibility
from tests.browser.helpers import (
    EVERY_TYPE_QUIZ,
    EVERY_TYPE_TITLE,
    SAVED,
    LiveServer,
    Student,
    attempt_id,
    model_answers,
    question,
    server_session,
)

QUIZ1 = "Quiz 1: Foundations"
NARROW = {"width": 360, "height": 740}


def check(page: Page, label: str) -> list[str]:
    """axe on the page as it is, at its own width (desktop) and again at 360 px: what
    scrolls sideways, wraps or turns into cards on a phone is checked too (a box that
    scrolls must take focus, labels must still name their fields). The page is resized,
    not reloaded, so the state under test is the same."""
    found = check_accessibility(page, label)
    size = page.viewport_size
    page.set_viewport_size(NARROW)
    try:
        found += check_accessibility(page, f"{label}, at 360 px")
    finally:
        if size is not None:
            page.set_viewport_size(size)
    return found


def test_student_pages_have_no_axe_violations(
    new_context, finished_attempt: Student, open_attempt: Student
) -> None:  # type: ignore[no-untyped-def]
    found: list[str] = []

    page = new_context().new_page()
    page.goto("/login")
    found += check(page, "login")
    page.get_by_label("Username").fill("jack")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".flash-error")).to_be_visible()
    found += check(page, "login, failed")

    page = new_context(storage_state=open_attempt.state).new_page()
    page.goto("/")
    found += check(page, "dashboard")
    page.get_by_role("link", name=f"Start {QUIZ1}").click()
    expect(page.get_by_role("button", name="Start the quiz now")).to_be_visible()
    found += check(page, "start page")
    page.goto(f"/attempt/{open_attempt.attempt_id}")
    assert attempt_id(page) == open_attempt.attempt_id
    expect(page.locator("#save-summary")).to_have_text("All answers saved.")
    found += check(page, "attempt page (every question type)")
    flag = page.locator("#q2").get_by_role("button", name="Flag for review")
    flag.click()
    expect(flag).to_have_attribute("aria-pressed", "true")
    found += check(page, "attempt page, a question flagged")
    page.goto(f"/attempt/{open_attempt.attempt_id}/submit")
    # With warnings: unanswered and flagged questions listed, each a link back.
    expect(page.locator("ul.submit-checks li", has_text="flagged for review")).to_have_count(1)
    found += check(page, "confirm submit, with questions to look at again")
    page.goto("/no/such/page")
    found += check(page, "not found")

    page = new_context(storage_state=finished_attempt.state).new_page()
    page.goto(f"/attempt/{finished_attempt.attempt_id}/result")
    found += check(page, "result")
    page.goto(f"/attempt/{finished_attempt.attempt_id}/review")
    expect(page.locator(".review").first).to_be_visible()
    found += check(page, "review")
    page.goto("/")
    found += check(page, "dashboard, attempt finished")

    assert_no_violations(found)


def test_attempt_page_notices_have_no_axe_violations(
    new_context, open_attempt: Student, live_server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    """The attempt page's notices, in one state: staff have moved the deadline (the
    banner) and another tab's answer won (the offer to keep this page's answer)."""
    from quizapp.models import Quiz, User
    from quizapp.services.overrides import OverrideChange, set_override

    context = new_context(storage_state=open_attempt.state)
    older, newer = context.new_page(), context.new_page()
    # The older tab hears of the other tab only through its own refused save.
    older.route(re.compile(rf"/api/attempts/{open_attempt.attempt_id}$"), lambda r: r.abort())
    for page in (older, newer):
        page.goto(f"/attempt/{open_attempt.attempt_id}")
        expect(page.locator("#save-summary")).to_have_text("All answers saved.")
    # jack answered questions 1 to 3: a numeric question after them.
    number = next(
        a.number
        for a in model_answers(live_server, open_attempt.attempt_id)[3:]
        if a.qtype == "numeric"
    )
    box = 'input[name^="slot-"]'

    with server_session(live_server) as session:
        quiz = session.scalars(select(Quiz).where(Quiz.key == EVERY_TYPE_QUIZ)).one()
        jack = session.scalars(select(User).where(User.username == open_attempt.username)).one()
        set_override(
            session,
            quiz.id,
            OverrideChange(time_limit=timedelta(minutes=65), reason="browser test: banner"),
            datetime.now(UTC),
            user_id=jack.id,
        )
    question(newer, number).locator(box).fill("1")
    expect(question(newer, number).locator(".save-state")).to_have_text(SAVED)
    question(older, number).locator(box).fill("2")  # typed later, in the older tab: it loses
    expect(older.locator("#deadline-banner")).to_have_text(re.compile(r"\(\+5 min\)$"))
    offer = question(older, number).get_by_role("button", name="Keep the saved answer")
    expect(offer).to_be_visible()
    found = check(older, "attempt page, deadline moved and another tab's answer")
    offer.click()
    expect(older.locator("#save-summary")).to_have_text("All answers saved.")
    assert_no_violations(found)


def test_staff_pages_have_no_axe_violations(
    new_context, finished_attempt: Student, open_attempt: Student
) -> None:  # type: ignore[no-untyped-def]
    found: list[str] = []
    page = new_context().new_page()
    page.goto("/login")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill("demo-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Quizzes", level=1)).to_be_visible()
    found += check(page, "staff: quizzes")

    page.get_by_role("link", name=EVERY_TYPE_TITLE, exact=True).click()
    expect(page.locator("#live-body")).to_contain_text(open_attempt.username)
    quiz_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    found += check(page, "staff: monitor")

    page.get_by_role("link", name="Preflight check").click()
    found += check(page, "staff: preflight")
    page.goto(f"/staff/quiz/{quiz_id}")
    page.locator("#live-body").get_by_role("link", name=open_attempt.username, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(open_attempt.username)
    found += check(page, "staff: one student")
    page.get_by_role("link", name=re.compile("^Extra time or attempt")).first.click()
    found += check(page, "staff: extra time form")
    page.get_by_role("button", name="Apply").click()  # no reason given: errors shown
    expect(page.locator(".flash-error").first).to_be_visible()
    found += check(page, "staff: extra time form with errors")
    page.goto(f"/staff/quiz/{quiz_id}/release")
    found += check(page, "staff: release policy")
    page.goto(f"/staff/quiz/attempt/{open_attempt.attempt_id}/finalise")
    found += check(page, "staff: finalise form")
    page.goto(f"/staff/quiz/attempt/{finished_attempt.attempt_id}/reopen")
    found += check(page, "staff: reopen form")

    page.goto("/staff/roster/")
    found += check(page, "staff: roster")
    page.get_by_label("…or paste the CSV text").fill(
        "username,name,email,extra_time_percent,groups\n"
        "kim,Kim Kay,kim@example.ac.uk,25,lab-a\n"
        "bad user,,not-an-email,x,\n"
    )
    page.get_by_role("button", name="Preview the import").click()
    found += check(page, "staff: roster preview with errors")

    page.goto(f"/staff/marking/quiz/{quiz_id}")
    found += check(page, "staff: marking queue")
    page.get_by_role("link", name=re.compile(r"^Mark question")).first.click()
    found += check(page, "staff: marking one question")
    page.goto(f"/staff/marking/attempt/{finished_attempt.attempt_id}/history")
    found += check(page, "staff: marks history")
    page.goto(f"/staff/marking/quiz/{quiz_id}/regrade")
    found += check(page, "staff: regrade")
    page.get_by_role("button", name="Dry run").click()
    found += check(page, "staff: regrade dry run")

    page.goto(f"/staff/stats/quiz/{quiz_id}")
    found += check(page, "staff: statistics")
    page.goto(f"/staff/audit?quiz={EVERY_TYPE_QUIZ}")
    found += check(page, "staff: audit trail")
    page.goto("/staff/preview/")
    found += check(page, "staff: preview index")
    page.goto("/staff/preview/question/jacobian-softmax")
    found += check(page, "staff: preview one question")

    assert_no_violations(found)
