"""Long staff operations show their progress in the page (issue #5): the roster preview
and import, and a CSV download, through progress.js in a real browser.

With JavaScript the form is posted with fetch() and the server streams NDJSON progress
lines (quizapp/web/progress.py); the result is swapped into the same document. A CSV
link is fetched as a stream, its rows counted against X-Total-Rows, and saved under the
server's file name.
"""

from __future__ import annotations

import csv
import io

from playwright.sync_api import Page, Request, expect
from sqlalchemy import func, select

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from quizapp.models import User
from tests.browser.helpers import LiveServer, server_session

STUDENTS = 300  # enough rows for several progress steps
PREFIX = "progress-"


def login_staff(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill("demo-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Quizzes", level=1)).to_be_visible()


def test_roster_import_and_a_csv_download_show_progress(
    page: Page, live_server: LiveServer
) -> None:
    streamed: list[Request] = []
    page.on(
        "request",
        lambda r: streamed.append(r) if "ndjson" in (r.headers.get("accept") or "") else None,
    )
    login_staff(page)
    page.goto("/staff/roster")
    page.evaluate("() => { window.__sameDocument = true; }")
    rows = "\n".join(
        f"{PREFIX}{i:03d},Progress Student {i},{PREFIX}{i:03d}@example.ac.uk"
        for i in range(STUDENTS)
    )
    page.get_by_label("…or paste the CSV text").fill(f"username,name,email\n{rows}\n")
    page.get_by_role("button", name="Preview the import").click()

    expect(page.get_by_role("heading", name=f"New students ({STUDENTS})")).to_be_visible()
    panel = page.locator(".progress-panel")
    expect(panel.locator("progress")).to_have_count(1)
    expect(panel.locator(".progress-status")).to_have_attribute("aria-live", "polite")
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
    assert len(streamed) == 1 and streamed[0].method == "POST"

    page.get_by_role("button", name="Apply these changes").click()
    expect(page.get_by_text("Roster imported")).to_be_visible()
    assert len(streamed) == 2
    with server_session(live_server) as session:
        imported = session.scalar(
            select(func.count()).select_from(User).where(User.username.like(f"{PREFIX}%"))
        )
    assert imported == STUDENTS

    # The scores CSV of quiz 1 through the progress download: one row per rostered
    # student, the new ones included.
    page.goto("/staff/")
    link = page.locator("a[data-progress-download]", has_text="scores").first
    with (
        page.expect_response(lambda r: "/scores.csv" in r.url) as answered,
        page.expect_download() as downloading,
    ):
        link.click()
    total_rows = int(answered.value.headers["x-total-rows"])
    download = downloading.value
    assert download.suggested_filename.endswith(".csv")
    text = download.path().read_text(encoding="utf-8-sig")
    records = list(csv.reader(io.StringIO(text)))
    assert len(records) - 1 == total_rows
    assert sum(1 for r in records if r and r[0].startswith(PREFIX)) == STUDENTS
    expect(page.locator(".progress-status").last).to_contain_text("rows")
