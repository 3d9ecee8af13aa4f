"""Staff pages on a phone and zoomed in, and question text by keyboard (issue 16, item 9).

- The live monitor at 360 px and at 200 % zoom (a 1280 px screen at 640 CSS px): each
  row is a card whose cells show their column's header, in the rows the server drew and
  in the rows monitor.js draws at every refresh; the header row is still there for screen
  readers and the drawn labels are not read a second time; nothing scrolls sideways.
- A running attempt's row leads to extra time and to finalise now, and each of those
  pages states the student's current deadline before anything is applied.
- The audit trail fits a 1280 px screen and shows details as "key: value" lines.
- At 360 px a formula too wide for the screen scrolls in its own box, which Tab reaches
  and the arrow keys scroll (axe: scrollable-region-focusable).

jack has an attempt in progress at "Every question type" (conftest.open_attempt).
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from tests.browser.helpers import (
    DESKTOP,
    EVERY_TYPE_QUIZ,
    EVERY_TYPE_TITLE,
    POLL_SECONDS,
    Student,
    no_horizontal_scroll,
    screenshot,
)

NARROW = {"width": 360, "height": 740}
ZOOMED = {"width": 640, "height": 450}  # a 1280 × 900 screen at 200 % zoom
HEADERS = [
    "Student", "Started", "Deadline", "Time left", "Last save", "Answered",
    "Device or address changed", "Actions",
]  # fmt: skip
# Each cell of a row: the label drawn before it (CSS ::before), whether that is shown,
# and whether the cell lies within the viewport.
CELLS = """row => [...row.children].map(cell => {
  const before = getComputedStyle(cell, '::before');
  const box = cell.getBoundingClientRect();
  return {label: cell.dataset.label || '', drawn: before.content,
          shown: before.display !== 'none' && before.content !== 'none',
          inside: box.left >= 0 && box.right <= document.documentElement.clientWidth + 0.5,
          text: cell.innerText.trim()};
})"""


def login_staff(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill("demo-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Quizzes", level=1)).to_be_visible()


def open_monitor(page: Page, username: str) -> Locator:
    page.goto("/staff/")
    page.get_by_role("link", name=EVERY_TYPE_TITLE, exact=True).click()
    row = page.locator("#live-body tr", has_text=username)
    expect(row).to_have_count(1)
    return row


def assert_labelled_cards(page: Page, row: Locator) -> None:
    cells = row.evaluate(CELLS)
    assert [c["label"] for c in cells] == HEADERS, cells
    for cell in cells:
        # Drawn as "Deadline: ", with empty alternative text (not read twice).
        assert cell["shown"] and cell["label"] + ": " in cell["drawn"], cell
        assert cell["inside"], cell
    # The header row is hidden from the eye only: screen readers still have every column
    # header, and a cell's name is its content, without the drawn label.
    for header in HEADERS:
        expect(page.get_by_role("columnheader", name=header, exact=True)).to_have_count(1)
    deadline = cells[HEADERS.index("Deadline")]["text"]
    assert re.fullmatch(r"\d\d:\d\d:\d\d \S+", deadline), deadline
    expect(row.get_by_role("cell", name=deadline, exact=True)).to_have_count(1)
    no_horizontal_scroll(page)


def test_the_monitor_is_readable_at_360_px_and_at_200_percent_zoom(
    new_context, open_attempt: Student
) -> None:  # type: ignore[no-untyped-def]
    for viewport, name in ((NARROW, "360"), (ZOOMED, "zoom-200")):
        page = new_context(viewport=viewport).new_page()
        login_staff(page)
        row = open_monitor(page, open_attempt.username)
        assert_labelled_cards(page, row)  # as the server drew it
        page.locator("#live-body").evaluate("b => b.closest('table').scrollIntoView()")
        screenshot(page, f"monitor-{name}", width=viewport["width"], full_page=False)
        # monitor.js redraws the rows from live.json: the labels come back with them.
        row.evaluate("tr => { tr.dataset.drawnByServer = 'yes'; }")
        expect(page.locator("#live-body tr[data-drawn-by-server]")).to_have_count(
            0, timeout=(2 * POLL_SECONDS + 5) * 1000
        )
        redrawn = page.locator("#live-body tr", has_text=open_attempt.username)
        assert_labelled_cards(page, redrawn)
        for name in ("Extra time", "Finalise now"):
            expect(
                redrawn.get_by_role("link", name=name, exact=True)
            ).to_have_accessible_description(re.compile(rf"^{open_attempt.username}\b"))
        page.context.close()

    # On a desktop the table has its header row, and no cell draws a label.
    page = new_context(viewport=DESKTOP).new_page()
    login_staff(page)
    row = open_monitor(page, open_attempt.username)
    expect(page.locator(".table thead th").first).to_be_visible()
    assert not any(cell["shown"] for cell in row.evaluate(CELLS))


def test_a_monitor_row_leads_to_extra_time_and_finalise_with_the_current_deadline(
    new_context, open_attempt: Student
) -> None:  # type: ignore[no-untyped-def]
    page = new_context(viewport=NARROW).new_page()
    login_staff(page)
    jack = open_attempt.username
    row = open_monitor(page, jack)
    deadline = row.locator('td[data-label="Deadline"]').inner_text().strip()

    extra = row.get_by_role("link", name="Extra time", exact=True)
    finalise = row.get_by_role("link", name="Finalise now", exact=True)
    # Each is described by its row's student (a screen reader's list of links).
    expect(extra).to_have_accessible_description(re.compile(rf"^{jack}\b"))
    expect(finalise).to_have_accessible_description(re.compile(rf"^{jack}\b"))
    extra.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^Extra time"))
    expect(page.get_by_label("Student username")).to_have_value(jack)
    current = page.locator("#current-deadline")
    expect(current.get_by_role("heading", name=f"{jack}: current deadline")).to_be_visible()
    expect(current.locator("dd strong")).to_have_text(deadline)
    no_horizontal_scroll(page)

    page.go_back()
    row = page.locator("#live-body tr", has_text=jack)
    row.get_by_role("link", name="Finalise now", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(rf"^Finalise attempt \d+ of {jack} now$")
    )
    # The finalise page gives the deadline with the date ("Mon 03 Mar 2025, 14:31 GMT").
    hours_minutes = deadline[:5]
    expect(page.locator("dd strong")).to_contain_text(hours_minutes)
    no_horizontal_scroll(page)  # nothing is submitted: jack's attempt stays open


def test_the_audit_trail_fits_a_1280_px_screen(new_context, open_attempt: Student) -> None:  # type: ignore[no-untyped-def]
    page = new_context(viewport=DESKTOP).new_page()
    login_staff(page)
    page.goto(f"/staff/audit?quiz={EVERY_TYPE_QUIZ}")
    table = page.locator("table.audit-table")
    expect(table.locator("tbody tr", has_text=open_attempt.username).first).to_be_visible()
    no_horizontal_scroll(page)
    fits = table.evaluate(
        "t => t.getBoundingClientRect().right <= document.documentElement.clientWidth"
        " && t.scrollWidth <= t.parentElement.clientWidth"
    )
    assert fits
    # A save reads "slot: 3", "seq: 2", "value: …", one per line; no JSON braces.
    details = table.locator("td[data-label=Details]").first
    expect(details.locator(".detail-key").first).to_be_visible()
    assert not details.inner_text().lstrip().startswith("{")
    screenshot(page, "audit-1280", full_page=False)


def test_a_wide_formula_is_reached_by_tab_and_scrolled_by_keys_at_360_px(
    new_context, open_attempt: Student
) -> None:  # type: ignore[no-untyped-def]
    page = new_context(storage_state=open_attempt.state, viewport=NARROW).new_page()
    page.goto(f"/attempt/{open_attempt.attempt_id}")
    expect(page.locator("#save-summary")).to_have_text("All answers saved.")
    no_horizontal_scroll(page)
    # Every box in the question text that scrolls sideways is a focusable, named region.
    scrolling = page.evaluate(
        """() => [...document.querySelectorAll('main *')]
          .filter(e => e.scrollWidth > e.clientWidth + 1
                   && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
          .map(e => ({tag: e.tagName.toLowerCase(), role: e.getAttribute('role'),
                      tabindex: e.getAttribute('tabindex'),
                      label: e.getAttribute('aria-label'), id: e.id}))"""
    )
    assert scrolling, "no formula or code wider than 360 px: the test checks nothing"
    for box in scrolling:
        assert box["role"] == "region" and box["tabindex"] == "0", box
        assert box["label"].endswith(", may scroll sideways"), box
    # Tab from the top of the page reaches the first of them.
    page.evaluate(
        """() => { window.__target = [...document.querySelectorAll('main [role=region]')]
                     .find(e => e.scrollWidth > e.clientWidth + 1); }"""
    )
    for _ in range(150):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement === window.__target"):
            break
    else:
        raise AssertionError("Tab never reached the wide formula")
    assert page.evaluate("() => document.activeElement.matches(':focus-visible')")
    assert page.evaluate("() => window.__target.scrollLeft") == 0
    page.keyboard.press("ArrowRight")
    page.keyboard.press("End")
    page.wait_for_function("() => window.__target.scrollLeft > 0")
    screenshot(page, "formula-focused-360", width=360, full_page=False)
