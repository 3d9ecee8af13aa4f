"""Using the quiz without a mouse, without sight of the countdown, on a phone, zoomed in,
and on paper.

- fred completes an attempt at "Every question type" with the keyboard only (Tab,
  Shift+Tab, arrows, Space, Enter, typing), and every element that takes focus shows it
  and is not hidden under the sticky bar with the countdown.
- The countdown warns through a polite live region, a few times, never every second.
- At 360 px and at 200 % zoom (a 1280 px screen zoomed to 640 CSS px) no page scrolls
  sideways; the review prints without navigation or buttons.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect
from sqlalchemy import select

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from tests.browser.helpers import (
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
    no_horizontal_scroll,
    question,
    save_state,
    screenshot,
    server_session,
    server_status,
    start_quiz,
)

LONDON = ZoneInfo("Europe/London")
# What the element with focus looks like: it must show a focus indicator (an outline of
# at least 2 px or a box shadow) and must not be covered by the sticky attempt bar
# (WCAG 2.4.11): the points just inside its top edge and at its centre must show the
# element itself (or its label), not the bar.
FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return {tag: 'body'}; }
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
    || style.boxShadow !== 'none';
  const box = el.getBoundingClientRect();
  const bar = document.getElementById('attempt-bar');
  const x = box.left + box.width / 2;
  const covered = [box.top + 2, box.top + box.height / 2].some(y => {
    const top = document.elementFromPoint(x, y);
    return !!(top && bar && bar.contains(top) && !bar.contains(el));
  });
  return {
    tag: el.tagName.toLowerCase(), id: el.id, name: el.name || '', value: el.value || '',
    type: el.type || '', text: (el.innerText || '').trim().slice(0, 40),
    visible: el.matches(':focus-visible') && ring, covered: covered,
    onscreen: box.bottom > 0 && box.top < window.innerHeight,
  };
}"""


class Keyboard:
    """Drives a page with keys only, checking the focus indicator at every stop."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.stops = 0

    def focus(self) -> dict:  # type: ignore[type-arg]
        return self.page.evaluate(FOCUS_STATE)

    def check_focus(self) -> dict:  # type: ignore[type-arg]
        state = self.focus()
        assert state["tag"] != "body", "focus was lost"
        assert state["visible"], f"no visible focus indicator on {state}"
        assert state["onscreen"], f"focused element scrolled out of view: {state}"
        assert not state["covered"], f"focused element under the sticky bar: {state}"
        return state

    def press(self, key: str) -> dict:  # type: ignore[type-arg]
        self.page.keyboard.press(key)
        self.stops += 1
        return self.check_focus()

    def tab_to(self, selector: str, key: str = "Tab", limit: int = 80) -> dict:  # type: ignore[type-arg]
        """Press Tab (or Shift+Tab) until the element matching `selector` has focus."""
        for _ in range(limit):
            state = self.press(key)
            if self.page.evaluate("s => document.activeElement.matches(s)", selector):
                return state
        raise AssertionError(f"{key} never reached {selector}; stuck at {self.focus()}")

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)

    def answer(self, answer: ModelAnswer) -> None:
        """Answer one question from its first control on, with the keys a student uses
        for each kind of control."""
        scope = f"#q{answer.number}"
        name = f'[name="slot-{answer.slot}"]'
        kinds = self.page.locator(f"{scope} {name}").evaluate_all(
            "els => els.map(e => [e.type, e.id, e.value])"
        )
        types = {kind for kind, _, _ in kinds}
        if types == {"radio"}:
            # Tab enters the group on its first option; the arrows move and choose.
            self.tab_to(f"{scope} {name}")
            (target,) = answer.values
            for _ in range(len(kinds)):
                if self.page.evaluate("() => document.activeElement.value") == target:
                    break
                self.press("ArrowDown")
            self.press("Space")  # choose the one with focus (a no-op if already chosen)
            expect(self.page.locator(f"{scope} {name}:checked")).to_have_value(target)
        elif types == {"checkbox"}:
            for _, _, value in kinds:
                self.tab_to(f'{scope} {name}[value="{value}"]')
                if value in answer.values:
                    self.press("Space")
        else:
            for (kind, control_id, _), value in zip(kinds, answer.values, strict=True):
                self.tab_to(f"#{control_id}")
                if kind.startswith("select"):
                    for _ in range(30):  # arrows change a closed list's choice
                        if self.page.evaluate("() => document.activeElement.value") == value:
                            break
                        self.press("ArrowDown")
                    expect(self.page.locator(f"#{control_id}")).to_have_value(value)
                else:
                    self.type(value)  # a textarea takes "\n" as a new line


def test_an_attempt_completed_with_the_keyboard_only(page: Page, live_server: LiveServer) -> None:
    keys = Keyboard(page)
    page.goto("/login")
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus
    keys.check_focus()
    keys.type("fred")
    keys.press("Tab")
    keys.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="My quizzes", level=1)).to_be_visible()

    # The skip link comes first; after it, Tab continues in the content, past the header.
    state = keys.press("Tab")
    assert state["text"] == "Skip to content"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    keys.press("Tab")
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)")
    start = page.get_by_role("link", name=f"Start {EVERY_TYPE_TITLE}").get_attribute("href")
    keys.tab_to(f'a[href="{start}"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=EVERY_TYPE_TITLE, level=1)).to_be_visible()
    assert keys.tab_to("main button[type=submit]")["text"] == "Start the quiz now"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/attempt/\d+$"))
    number = int(page.locator("#attempt-form").get_attribute("data-attempt-id") or "0")
    answers = model_answers(live_server, number)

    # Every question in page order, from its first control.
    for answer in answers:
        keys.answer(answer)
    # Shift+Tab goes back: from the last box to the essay's flag button, the one before.
    essay = answers[-1]
    keys.tab_to(f"#q{essay.number} .flag-button", key="Shift+Tab")
    keys.press("Space")
    expect(question(page, essay.number).locator(".flag-button")).to_have_attribute(
        "aria-pressed", "true"
    )
    for answer in answers:
        expect(save_state(page, answer.number)).to_have_text(SAVED)
    expect(page.locator("#save-summary")).to_have_text("All answers saved.")

    # The question list jumps; the next Tab continues inside the question jumped to.
    target = answers[5]
    keys.tab_to(f"#nav-{target.slot}", key="Shift+Tab", limit=200)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"#q{target.number}$"))
    state = keys.press("Tab")
    assert page.evaluate(
        "n => document.getElementById('q' + n).contains(document.activeElement)", target.number
    ), state

    status = server_status(page)
    assert sorted(status["answers"]) == sorted(str(a.slot) for a in answers)
    assert status["flags"] == [essay.slot]

    # Finish: Save and finish, then Submit, by keyboard.
    keys.tab_to("button[value=submit]", limit=300)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Finish and submit?")).to_be_visible()
    assert keys.tab_to("main button[type=submit]")["text"] == "Submit my answers"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/attempt/\d+/result$"))
    expect(page.locator(".score")).to_have_text(
        re.compile(r"^Score: 21 out of 26 — provisional: 5 marks still to be marked\s*$")
    )  # (the essay waits for a hand mark)
    assert keys.stops > 60  # the whole attempt went through the keyboard


def test_the_countdown_warns_politely_and_not_every_second(
    page: Page, live_server: LiveServer
) -> None:
    from quizapp.models import Quiz, User
    from quizapp.services.overrides import OverrideChange, set_override

    login(page, "ines")
    start_quiz(page, EVERY_TYPE_TITLE)
    announcer = page.locator("#countdown-announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    assert announcer.get_attribute("role") is None  # not an alert: it waits its turn
    # The ticking countdown is in no live region (it would be read every second).
    assert page.evaluate(
        """() => !document.getElementById('countdown').closest(
             '[aria-live]:not([aria-live="off"]), [role=status], [role=alert], [role=log], [role=timer]')"""
    )
    page.evaluate(
        """() => {
          window.__spoken = []; window.__ticks = 0;
          new MutationObserver(() => window.__spoken.push(
              document.getElementById('countdown-announcer').textContent))
            .observe(document.getElementById('countdown-announcer'),
                     {childList: true, characterData: true, subtree: true});
          new MutationObserver(() => { window.__ticks += 1; })
            .observe(document.getElementById('countdown'),
                     {childList: true, characterData: true, subtree: true});
        }"""
    )

    # Staff close ines's window 5 minutes and 3 seconds from now (her deadline follows).
    closes = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5, seconds=3)
    with server_session(live_server) as session:
        quiz = session.scalars(select(Quiz).where(Quiz.key == EVERY_TYPE_QUIZ)).one()
        ines = session.scalars(select(User).where(User.username == "ines")).one()
        moved = set_override(
            session,
            quiz.id,
            OverrideChange(closes_at=closes, reason="browser test: warnings"),
            datetime.now(UTC),
            user_id=ines.id,
            allow_shorter=True,  # it ends her attempt earlier: staff confirm that
        )
        assert len(moved) == 1

    page.wait_for_function(
        "() => window.__spoken.includes('5 minutes left.')",
        timeout=(POLL_SECONDS + 8) * 1000,
        polling=200,
    )
    page.wait_for_timeout(2500)  # a few more ticks: nothing more is said
    spoken = page.evaluate("() => window.__spoken")
    ticks = page.evaluate("() => window.__ticks")
    assert len(spoken) == 2 and spoken[1] == "5 minutes left.", spoken
    assert re.fullmatch(
        rf"Your deadline has been moved earlier: it is now "
        rf"{closes.astimezone(LONDON):%H:%M %Z} \(.+ less\)",
        spoken[0],
    ), spoken
    assert ticks >= 4, ticks
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^4:5\d$"))
    expect(page.locator("#countdown")).to_have_class(re.compile(r"\bwarning\b"))


NARROW = {"width": 360, "height": 740}
ZOOMED = {"width": 640, "height": 450}  # a 1280 × 900 screen at 200 % zoom


def test_no_sideways_scrolling_at_360_px_or_200_percent_zoom(
    new_context, finished_attempt: Student, open_attempt: Student
) -> None:  # type: ignore[no-untyped-def]
    pages = [
        (None, "/login"),
        (open_attempt, "/"),
        (open_attempt, f"/attempt/{open_attempt.attempt_id}"),
        (open_attempt, f"/attempt/{open_attempt.attempt_id}/submit"),
        (finished_attempt, "/"),
        (finished_attempt, f"/attempt/{finished_attempt.attempt_id}/result"),
        (finished_attempt, f"/attempt/{finished_attempt.attempt_id}/review"),
    ]
    for viewport, scale in ((NARROW, 3), (ZOOMED, 2)):
        for student in (None, open_attempt, finished_attempt):
            context = new_context(
                storage_state=student.state if student else None,
                viewport=viewport,
                device_scale_factor=scale,
            )
            page = context.new_page()
            for path in (path for who, path in pages if who is student):
                page.goto(path)
                no_horizontal_scroll(page)
            if viewport is NARROW and student is finished_attempt:
                screenshot(page, "review-360", width=360, full_page=False)
            context.close()


def test_the_review_prints_answers_without_navigation_or_buttons(
    new_context, finished_attempt: Student
) -> None:  # type: ignore[no-untyped-def]
    # About the printable width of an A4 page (210 mm less margins, at 96 px per inch).
    page = new_context(
        storage_state=finished_attempt.state, viewport={"width": 640, "height": 900}
    ).new_page()
    page.goto(f"/attempt/{finished_attempt.attempt_id}/review")
    header = page.locator(".site-header")
    back = page.get_by_role("link", name="Back to my quizzes")
    expect(header).to_be_visible()
    expect(back).to_be_visible()
    page.emulate_media(media="print")
    expect(header).to_be_hidden()
    expect(back).to_be_hidden()
    expect(page.locator(".skip-link")).to_be_hidden()
    assert page.locator("button:visible, nav:visible").count() == 0
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator(".score")).to_be_visible()
    responses = page.locator("dd.response")
    expect(responses).to_have_count(13)
    for i in range(13):
        expect(responses.nth(i)).to_be_visible()
    expect(page.locator(".feedback").first).to_be_visible()
    # Paper does not scroll: no code or formula is cut off at the edge of a box.
    cut = page.evaluate(
        """() => [...document.querySelectorAll('main .stem, main pre, main .feedback')]
             .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.outerHTML.slice(0, 80))"""
    )
    assert cut == [], cut
    # Paper is white: no page background is printed.
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == (
        "rgb(255, 255, 255)"
    )
