"""Bank upload in Chromium (issue 15, item 4): staff upload a zip of a bank with an
error, read the report (file:line, nothing imported, no axe violations), preview a
question that loaded for another seed, then choose the fixed bank's folder and import it;
the new questions are then in the preview of imported questions.

The bank holds questions only (no quiz), so the journeys sharing this server see no new
quiz on their dashboards."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from tests.browser.axe_required import assert_no_violations, check_accessibility
from tests.browser.helpers import PASSWORD
from tests.upload_banks import BROKEN_LINE, bank_files, bank_zip


def _login_staff(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Quizzes", level=1)).to_be_visible()


def _write_folder(base: Path) -> Path:
    for name, data in bank_files().items():
        target = base / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return base / "upload-bank"


def test_staff_upload_a_broken_bank_then_the_fixed_one_and_import_it(
    page: Page, tmp_path: Path
) -> None:
    broken = tmp_path / "upload-bank.zip"
    broken.write_bytes(bank_zip(broken=True))
    folder = _write_folder(tmp_path / "fixed")

    _login_staff(page)
    page.get_by_role("link", name="Upload a question bank").click()
    expect(page.get_by_role("heading", name="Upload a question bank", level=1)).to_be_visible()
    page.get_by_label("A zip file of the bank").set_input_files(broken)
    page.get_by_role("button", name="Check the bank").click()

    # The report: every problem with file and line, and no way to import.
    expect(page.get_by_role("heading", name="1 problem: nothing can be imported")).to_be_visible()
    expect(page.locator("ul.problems li")).to_have_text(
        [f"{BROKEN_LINE}: questions[0].tolerence: unknown field"]
    )
    expect(page.get_by_role("button", name="Import this bank")).to_have_count(0)
    assert_no_violations(check_accessibility(page, "bank upload report with a problem"))

    # The question that loaded previews for any seed, from the uploaded files.
    page.get_by_label("Question", exact=True).select_option("upload-choice")
    page.get_by_label("Seed", exact=True).fill("7")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name=re.compile(r"Upload choice\s+seed 7"))).to_be_visible()
    page.get_by_role("button", name="Next seed (8)").click()
    expect(page.get_by_role("heading", name=re.compile(r"Upload choice\s+seed 8"))).to_be_visible()
    assert_no_violations(check_accessibility(page, "preview of an uploaded question"))
    page.get_by_role("button", name="Back to the report").click()
    expect(page.locator("ul.problems li")).to_have_count(1)

    # The fixed bank, as a folder.
    page.get_by_role("link", name="Upload another bank").click()
    page.get_by_label("…or the bank's folder").set_input_files(folder)
    page.get_by_role("button", name="Check the bank").click()
    expect(page.get_by_role("heading", name="No problems")).to_be_visible()
    expect(page.get_by_text("upload-bank/README.md")).to_be_visible()  # left out, and said so
    assert_no_violations(check_accessibility(page, "bank upload report, ready to import"))
    page.get_by_role("button", name="Import this bank").click()
    expect(
        page.get_by_role("status").filter(has_text="Bank imported from folder upload-bank")
    ).to_contain_text("questions: 2 new")

    page.goto("/staff/preview/")
    expect(page.get_by_role("link", name="Upload sum")).to_be_visible()
    page.get_by_role("link", name="Upload sum").click()
    expect(page.locator(".stem img")).to_have_attribute("src", re.compile(r"^/assets/"))
