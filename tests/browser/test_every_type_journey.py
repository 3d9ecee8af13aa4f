"""The whole student journey through every question type, in a real browser: log in,
start, answer all twelve types (each with its own widget), reload mid-attempt and find
every answer there, navigate and flag, submit, and review with the correct answers once
they are released ("Every question type" releases them as soon as the attempt ends).

erin answers with the model answers of her own variant (option order, draws and
parameters come from her attempt's seed; the test reads them from the database the
server uses), so the score is known: everything but the essay (5 marks, for staff).
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from tests.browser.helpers import (
    EVERY_TYPE_TITLE,
    SAVED,
    LiveServer,
    expect_answer,
    fill_answer,
    login,
    model_answers,
    question,
    save_state,
    screenshot,
    server_status,
    start_quiz,
)

TYPES = {
    "single_choice", "multiple_response", "true_false", "numeric", "matrix", "matching",
    "algebraic", "multi_part", "calculated", "short_text", "ordering", "essay",
}  # fmt: skip


def test_every_question_type_answered_reloaded_flagged_submitted_and_reviewed(
    page: Page, live_server: LiveServer
) -> None:
    login(page, "erin")
    number = start_quiz(page, EVERY_TYPE_TITLE)
    answers = model_answers(live_server, number)
    assert {a.qtype for a in answers} == TYPES
    assert len(answers) == 13  # two matrix questions (a vector and a Jacobian)

    # Every control is named, formulas included (a matching item reads "tanh(x)").
    matching = next(a for a in answers if a.qtype == "matching")
    expect(question(page, matching.number).get_by_role("combobox", name="tanh(x)")).to_have_count(1)
    for answer in answers:
        fill_answer(page, answer)
    for answer in answers:
        expect(save_state(page, answer.number)).to_have_text(SAVED)
    expect(page.locator("#save-summary")).to_have_text("All answers saved.")
    essay = next(a for a in answers if a.qtype == "essay")
    words = len(essay.values[0].split())
    expect(question(page, essay.number).locator(".word-count")).to_have_text(f"{words} words")
    status = server_status(page)
    assert sorted(status["answers"]) == sorted(str(a.slot) for a in answers)
    screenshot(page, "attempt-every-type")

    # A reload mid-attempt: every widget shows what the server holds.
    page.reload()
    for answer in answers:
        expect_answer(page, answer)
        expect(save_state(page, answer.number)).to_have_text(SAVED)
    expect(page.locator(".question-nav a.answered")).to_have_count(13)

    # Navigate with the question list and flag two questions for review.
    for target in (answers[8], answers[11]):
        nav = page.locator(f"#nav-{target.slot}")
        nav.click()
        expect(page).to_have_url(re.compile(rf"#q{target.number}$"))
        expect(question(page, target.number)).to_be_in_viewport()
        flag = question(page, target.number).get_by_role("button", name="Flag for review")
        flag_url = f"/flags/{target.slot}"
        with page.expect_response(lambda r, url=flag_url: url in r.url and r.ok):
            flag.click()
        expect(flag).to_have_attribute("aria-pressed", "true")
        expect(nav).to_have_class(re.compile(r"\bflagged\b"))
        expect(nav.locator(".visually-hidden")).to_have_text(", answered, flagged")
    assert server_status(page)["flags"] == sorted([answers[8].slot, answers[11].slot])

    page.get_by_role("button", name="Save and finish…").click()
    expect(page.get_by_role("heading", name="Finish and submit?")).to_be_visible()
    # Every question answered, two flagged: the page says so instead of "answered all 13".
    flagged = sorted((answers[8].number, answers[11].number))
    expect(page.locator("main")).to_contain_text(
        f"You flagged 2 questions for review (questions {flagged[0]}, {flagged[1]})."
    )
    expect(page.locator("main")).not_to_contain_text("You have answered all 13 questions.")
    page.get_by_role("button", name="Submit my answers").click()
    expect(page).to_have_url(re.compile(r"/attempt/\d+/result$"))
    # (the essay waits for a hand mark: the score says so)
    expect(page.locator(".score")).to_have_text(
        re.compile(r"^Score: 21 out of 26 — provisional: 5 marks still to be marked\s*$")
    )

    expect(page.locator("main")).to_contain_text(
        "Review your answers with the correct answers and feedback"
    )
    page.get_by_role("link", name="Review your answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"{EVERY_TYPE_TITLE}: your answers (attempt 1)"
    )
    items = page.locator("section.review")
    expect(items).to_have_count(13)
    for answer in answers:
        item = items.nth(answer.number - 1)
        marks = re.search(r"\((\d+) marks?\)", item.locator("h2").inner_text())
        assert marks, item.inner_text()
        expect(item.locator("dd.response")).not_to_be_empty()
        expect(item.locator("dt", has_text="Correct answer")).to_have_count(1)
        mark = item.locator("dt", has_text=re.compile("^Mark$")).locator(
            "xpath=following-sibling::dd[1]"
        )
        if answer.qtype == "essay":
            expect(mark).to_have_text(
                re.compile(rf"^Not marked yet \(out of {marks[1]}: staff will mark it; it counts 0")
            )
            expect(item.locator("dd.response")).to_have_text(essay.values[0])
        else:
            expect(mark).to_have_text(re.compile(rf"^{marks[1]} out of {marks[1]}\b"))
    expect(page.locator(".feedback").first).to_be_visible()
    screenshot(page, "review")
    page.locator("section.review").nth(5).scroll_into_view_if_needed()
    screenshot(page, "review-viewport", full_page=False)
