"""Constants and helpers shared by the browser journeys (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect
from sqlalchemy.orm import Session

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "demo-password"  # `quizapp demo` accounts: alice, bob, chen, dana, staff
SECRET_KEY = "browser-tests-secret-key"
GRACE_SECONDS = 2
SHORT_QUIZ = "browser-one-minute"
SHORT_TITLE = "One-minute check"
EVERY_TYPE_QUIZ = "browser-every-type"
EVERY_TYPE_TITLE = "Every question type"
POLL_SECONDS = 3  # the attempt page's status poll and the staff live table, in the tests
# Students beyond `quizapp demo`'s, one per journey so that each starts from nothing.
EXTRA_STUDENTS = [
    ("erin", "Erin Evans"),  # every question type, reload, flag, submit, review
    ("fred", "Fred Fox"),  # keyboard only
    ("gwen", "Gwen Green"),  # staff journey: monitored, given extra time
    ("hugo", "Hugo Hill"),  # a finished attempt for the accessibility and layout checks
    ("ines", "Ines Ito"),  # the countdown's spoken warnings
    ("jack", "Jack Jones"),  # an open attempt for the accessibility and layout checks
    ("kate", "Kate Kerr"),  # the requests an attempt page makes
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}

expect.set_options(timeout=10_000)


@dataclass
class LiveServer:
    url: str
    database_url: str
    env: dict[str, str]
    log: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `quizapp ARGS` against the server's database (same environment)."""
        result = subprocess.run(
            [str(BIN / "quizapp"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (
            f"quizapp {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
        return result

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Student:
    """A student with an attempt, logged in: new_context(storage_state=student.state)
    opens a browser with their session."""

    username: str
    attempt_id: int
    state: Any  # Playwright's storage state (the session cookie)


def screenshot(
    page: Page, name: str, width: int = DESKTOP["width"], full_page: bool = True
) -> Path:
    """A screenshot at `width` px, of the full page or the viewport (then back to the
    desktop size)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size or DESKTOP
    if width != size["width"]:
        page.set_viewport_size({"width": width, "height": 800})
    page.screenshot(path=str(path), full_page=full_page)
    if width != size["width"]:
        page.set_viewport_size(size)
    return path


def login(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My quizzes", level=1)).to_be_visible()


def start_quiz(page: Page, title: str) -> int:
    """From the dashboard: the quiz's start page, confirm, and land on the attempt page."""
    page.get_by_role("link", name=f"Start {title}").click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    page.get_by_role("button", name="Start the quiz now").click()
    expect(page).to_have_url(re.compile(r"/attempt/\d+$"))
    return attempt_id(page)


def attempt_id(page: Page) -> int:
    return int(page.locator("#attempt-form").get_attribute("data-attempt-id") or "0")


def question(page: Page, number: int) -> Locator:
    return page.locator(f"#q{number}")


def slot_of(page: Page, number: int) -> str:
    return question(page, number).locator(".save-state").get_attribute("data-slot") or ""


def save_state(page: Page, number: int) -> Locator:
    return question(page, number).locator(".save-state")


SAVED = re.compile(r"^\s*Saved \d\d:\d\d:\d\d\b")


def server_status(page: Page) -> dict[str, Any]:
    """GET the attempt's status from the page itself (its session cookie)."""
    url = page.locator("#attempt-form").get_attribute("data-status-url")
    return page.evaluate(
        "url => fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}})"
        ".then(r => r.json())",
        url,
    )


def pending_queue(page: Page) -> dict[str, Any]:
    """The page's local queue of unacknowledged answers (localStorage)."""
    raw = page.evaluate(
        "id => window.localStorage.getItem('quizapp:attempt:' + id + ':pending')", attempt_id(page)
    )
    return json.loads(raw) if raw else {}


def logout(page: Page) -> None:
    page.get_by_role("button", name=re.compile(r"^Log out ")).click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


@contextmanager
def server_session(server: LiveServer) -> Iterator[Session]:
    """A session on the live server's database, from the test process: to read what the
    server stored, or to prepare what no page does. Reads see what requests committed
    (each `with` is a fresh snapshot)."""
    from quizapp import create_app

    app = create_app({"QUIZAPP_DATABASE_URL": server.database_url, "SECRET_KEY": SECRET_KEY})
    database = app.extensions["quizapp_db"]
    try:
        with app.app_context(), database.new_session() as session:
            yield session
    finally:
        database.remove()
        database.engine.dispose()


@dataclass
class ModelAnswer:
    """What a student who knows the answers puts in the form for one question."""

    number: int
    slot: int
    qtype: str
    values: list[str]  # form values, in the order of the question's controls


ESSAY = (
    "The network is overfitting: it fits the noise of its training set, so the training "
    "loss keeps falling while the validation loss rises. Early stopping keeps the weights "
    "from the best validation epoch; data augmentation makes memorising images impossible."
)


def model_answers(server: LiveServer, attempt: int) -> list[ModelAnswer]:
    """The model answer of every question of an attempt (its own variant: option order,
    parameters, draws), as form values; an essay gets a short paragraph."""
    from quizapp.models import Attempt
    from quizapp.services.catalog import layout_of, question_of, versions_by_id

    out = []
    with server_session(server) as session:
        row = session.get(Attempt, attempt)
        assert row is not None
        layout = layout_of(row)
        versions = versions_by_id(session, (entry.version_id for entry in layout))
        for number, entry in enumerate(layout, start=1):
            q = question_of(versions[entry.version_id])
            body = q.body
            if q.type_name == "essay":
                values = [ESSAY]
            else:
                values = body.form_values(entry.variant, body.model_response(entry.variant))
            out.append(ModelAnswer(number, entry.slot, q.type_name, [str(v) for v in values]))
    return out


def answer_controls(page: Page, number: int) -> Locator:
    return question(page, number).locator('[name^="slot-"]')


def fill_answer(page: Page, answer: ModelAnswer) -> None:
    """Answer with the mouse and keyboard as Playwright does: tick the options, choose in
    each list, type in each box (each fires the events the page listens to)."""
    controls = answer_controls(page, answer.number)
    kinds = controls.evaluate_all("els => els.map(e => e.type)")
    if all(kind in ("radio", "checkbox") for kind in kinds):
        for value in answer.values:
            question(page, answer.number).locator(
                f'[name="slot-{answer.slot}"][value="{value}"]'
            ).check()
        return
    assert len(kinds) == len(answer.values), (answer, kinds)
    for i, (kind, value) in enumerate(zip(kinds, answer.values, strict=True)):
        if kind.startswith("select"):
            controls.nth(i).select_option(value)
        else:
            controls.nth(i).fill(value)


def expect_answer(page: Page, answer: ModelAnswer) -> None:
    """The question's controls hold exactly `answer` (after a reload, from the server)."""
    controls = answer_controls(page, answer.number)
    kinds = controls.evaluate_all("els => els.map(e => e.type)")
    if all(kind in ("radio", "checkbox") for kind in kinds):
        checked = controls.evaluate_all("els => els.filter(e => e.checked).map(e => e.value)")
        assert sorted(checked) == sorted(answer.values), (answer, checked)
        return
    for i, value in enumerate(answer.values):
        expect(controls.nth(i)).to_have_value(value)


def no_horizontal_scroll(page: Page) -> None:
    """Nothing wider than the viewport: the page never scrolls sideways (WCAG 1.4.10)."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    if widths[0] > widths[1]:
        wide = page.evaluate(
            """() => { const w = document.documentElement.clientWidth;
              return [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > w + 0.5)
                .slice(0, 8).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                  (e.className && typeof e.className === 'string' ? '.' + e.className.trim()
                   .replace(/\\s+/g, '.') : '') + ' right=' + Math.round(e.getBoundingClientRect().right)); }"""
        )
        raise AssertionError(
            f"{page.url}: scrollWidth {widths[0]} > clientWidth {widths[1]}; too wide: {wide}"
        )


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Until a server started for a browser test answers /login with 200 (its log in the
    error if it exits or never does)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited {proc.returncode}:\n{log.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(url + "/login", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout} s:\n{log.read_text(errors='replace')}")
