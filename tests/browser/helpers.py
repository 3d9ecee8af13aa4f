"""Constants and helpers shared by the browser journeys (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "demo-password"  # `quizapp demo` accounts: alice, bob, chen, dana, staff
SECRET_KEY = "browser-tests-secret-key"
GRACE_SECONDS = 2
SHORT_QUIZ = "browser-one-minute"
SHORT_TITLE = "One-minute check"
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
