"""The examiner's side in a real browser, next to a student's open attempt page.

Staff open the live monitor of quiz 1 before gwen starts; her attempt appears in the
table by itself (the table polls, the page is never reloaded). Staff open her page and
grant 15 minutes of extra time from the browser; her open attempt page's countdown moves
to the new deadline without a reload and says so politely. She submits; staff download
the scores CSV and find her row with her score.

The live table and the attempt page poll every 3 seconds in these tests (conftest.py).
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from tests.browser.helpers import (
    POLL_SECONDS,
    SAVED,
    login,
    question,
    save_state,
    screenshot,
    start_quiz,
)

QUIZ1 = "Quiz 1: Foundations"
POLL_MS = POLL_SECONDS * 1000
LONDON = ZoneInfo("Europe/London")


def login_staff(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill("demo-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Quizzes", level=1)).to_be_visible()


def mark_document(page: Page) -> None:
    """Tag the loaded document: a reload or a navigation would lose the tag."""
    page.evaluate("() => { window.__sameDocument = true; }")


def same_document(page: Page) -> bool:
    return bool(page.evaluate("() => window.__sameDocument === true"))


def test_monitor_extra_time_from_the_browser_and_scores_csv(new_context) -> None:  # type: ignore[no-untyped-def]
    staff = new_context().new_page()
    login_staff(staff)
    screenshot(staff, "staff-index", full_page=False)
    staff.get_by_role("link", name=QUIZ1, exact=True).click()
    expect(staff.get_by_role("heading", name=QUIZ1, level=1)).to_be_visible()
    live = staff.locator("#live-body")
    in_progress = staff.locator('[data-count="in_progress"]')
    before = int(in_progress.inner_text())
    expect(live).not_to_contain_text("gwen")
    mark_document(staff)

    # gwen starts and answers question 1 (right) while the monitor stays open.
    student = new_context().new_page()
    login(student, "gwen")
    start_quiz(student, QUIZ1)
    mark_document(student)
    countdown = student.locator("#countdown")
    expect(countdown).to_have_text(re.compile(r"^(59|60):\d\d$"))
    first_deadline = datetime.fromisoformat(countdown.get_attribute("data-deadline") or "")
    question(student, 1).locator("label.choice", has_text="small constant multiple").locator(
        "input"
    ).check()
    expect(save_state(student, 1)).to_have_text(SAVED)

    row = live.locator("tr", has_text="gwen")
    expect(row).to_be_visible(timeout=2 * POLL_MS + 2000)
    expect(row.locator("th")).to_have_text(re.compile(r"^gwen\s+Gwen Green$"))
    expect(row).to_contain_text("1 of 15", timeout=2 * POLL_MS + 2000)
    expect(in_progress).to_have_text(str(before + 1))
    expect(staff.locator("#live-status")).to_have_text(re.compile(r"^As of \d\d:\d\d:\d\d \S+$"))
    assert same_document(staff), "the monitor reloaded instead of refreshing its table"
    screenshot(staff, "staff-monitor", full_page=False)
    # The refresh time is not read out at every refresh; a failure is, once, and so is
    # the recovery.
    assert staff.evaluate(
        "() => !document.getElementById('live-status').closest('[aria-live], [role=status]')"
    )
    problem = staff.locator("#live-problem")
    expect(problem).to_have_attribute("aria-live", "polite")
    expect(problem).to_be_empty()
    staff.context.set_offline(True)
    expect(problem).to_have_text(
        "The table could not be refreshed; trying again.", timeout=POLL_MS + 2000
    )
    staff.context.set_offline(False)
    expect(problem).to_have_text("The table is being refreshed again.", timeout=POLL_MS + 2000)

    # Extra time from the browser: her page, then the form, prefilled with her name.
    row.get_by_role("link", name="gwen").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text(re.compile(r"^gwen\s+Gwen Green$"))
    staff.get_by_role("link", name=f"Extra time or attempt for {QUIZ1}").click()
    expect(staff.get_by_label("Student username")).to_have_value("gwen")
    staff.get_by_label("Extra time (minutes)").fill("15")
    staff.get_by_label("Reason").fill("Fire alarm in exam room 2")
    staff.get_by_role("button", name="Apply").click()
    # The close moves by the same 15 minutes, so the window end cannot eat them.
    expect(staff.locator(".flash-success")).to_have_text(
        re.compile(
            r"^Override for gwen: time limit 75 min, close .+; 1 running attempt\(s\) moved\.$"
        )
    )
    moved = first_deadline + timedelta(minutes=15)
    expect(staff.locator("tbody tr", has_text=QUIZ1)).to_contain_text(
        moved.astimezone(LONDON).strftime("%d %b %H:%M:%S %Z")
    )

    # The open attempt page follows within one status poll, without a reload, and says
    # so once, politely.
    expect(countdown).to_have_text(re.compile(r"^1:1[45]:\d\d$"), timeout=POLL_MS + 3000)
    expect(student.locator("#countdown-announcer")).to_have_text(
        f"Your deadline is now {moved.astimezone(LONDON):%H:%M %Z} (+15 min)"
    )
    expect(student.locator("#deadline-banner")).to_have_text(
        f"Your deadline is now {moved.astimezone(LONDON):%H:%M %Z} (+15 min)"
    )
    expect(student.locator("#deadline-local")).to_have_text(
        moved.astimezone(LONDON).strftime("%H:%M:%S %Z")
    )
    # Still the document rendered before the grant (its deadline attribute is the old one).
    assert countdown.get_attribute("data-deadline") == first_deadline.isoformat()
    assert same_document(student), "the attempt page reloaded to show the extra time"

    student.get_by_role("button", name="Save and finish…").click()
    student.get_by_role("button", name="Submit my answers").click()
    expect(student.locator(".score")).to_have_text(re.compile(r"^Score: 1 out of 21$"))

    # The scores CSV, downloaded from the quiz list: her row, submitted, with her mark.
    staff.get_by_role("link", name="Staff", exact=True).click()
    with staff.expect_download() as download_info:
        staff.get_by_role("link", name=f"scores for {QUIZ1}").click()
    download = download_info.value
    assert re.fullmatch(r"quiz1-foundations-scores-\d{8}T\d{4}Z\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8-sig", newline="") as f:  # BOM for Excel
        rows = {row["username"]: row for row in csv.DictReader(f)}
    assert rows["gwen"]["name"] == "Gwen Green"
    assert rows["gwen"]["state"] == "submitted"
    assert rows["gwen"]["score"] == "1" and rows["gwen"]["maximum"] == "21"

    staff.goto("/staff/")
    staff.get_by_role("link", name=f"Statistics for {QUIZ1}").click()
    expect(staff.get_by_role("heading", level=1)).to_contain_text(QUIZ1)
    expect(staff.get_by_role("heading", name="Score distribution")).to_be_visible()
    screenshot(staff, "staff-statistics")
    staff.locator("#histogram-heading").evaluate("heading => heading.scrollIntoView()")
    screenshot(staff, "staff-statistics-charts", full_page=False)
