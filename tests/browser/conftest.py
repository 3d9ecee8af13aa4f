"""Real-browser journeys: Debian's Chromium driven by Playwright against a real gunicorn
server in a subprocess, on a fresh SQLite database prepared with the `quizapp` CLI.

Without /usr/bin/chromium the whole folder is skipped with one line, except on CI
(CI=true), where a missing browser is a failure: a CI run must not pass by skipping.

The server runs on the real clock (a fake clock cannot cross processes), so the timed
journeys use a tiny bank written at test time: a 1-minute quiz whose window opened an
hour ago. QUIZAPP_GRACE_SECONDS=2 keeps the waits past a deadline short, and the attempt
page's status poll and the staff live table refresh every 3 seconds instead of 30 and 15
(QUIZAPP_STATUS_POLL_SECONDS, QUIZAPP_MONITOR_POLL_SECONDS), so a deadline moved by staff
reaches an open page in seconds.

A second quiz, "Every question type", has quiz 2's slots (every question type) with marks,
correct answers and feedback released at once, so a journey can end on a full review.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.browser.helpers import (
    BIN,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    EVERY_TYPE_QUIZ,
    EVERY_TYPE_TITLE,
    EXTRA_STUDENTS,
    GRACE_SECONDS,
    PASSWORD,
    POLL_SECONDS,
    ROOT,
    SECRET_KEY,
    SHORT_QUIZ,
    SHORT_TITLE,
    LiveServer,
    Student,
    fill_answer,
    login,
    model_answers,
    start_quiz,
    wait_ready,
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Without Chromium every browser module is skipped at collection, which pytest counts
    as "no tests collected" (exit 5): a skip, not a failure, so exit 0 (not on CI, where
    chromium_required.py fails the collection instead)."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and not Path(CHROMIUM).exists():
        session.exitstatus = pytest.ExitCode.OK


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _short_bank(folder: Path) -> Path:
    """A 1-minute quiz with two numeric questions, open since an hour ago (UTC offset
    written out, so the course zone plays no part)."""
    opens = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    (folder / "questions").mkdir(parents=True)
    (folder / "quizzes").mkdir()
    (folder / "questions" / "browser.yaml").write_text(
        """questions:
  - id: browser-sum
    type: numeric
    tags: [browser]
    stem: What is $2 + 3$?
    answer: 5
    tolerance: 0
  - id: browser-product
    type: numeric
    tags: [browser]
    stem: What is $6 \\times 7$?
    answer: 42
    tolerance: 0
""",
        encoding="utf-8",
    )
    (folder / "quizzes" / "one-minute.yaml").write_text(
        f"""quiz:
  id: {SHORT_QUIZ}
  title: "{SHORT_TITLE}"
  opens: "{opens.isoformat()}"
  open_for: 24h
  time_limit: 1
  attempts: 1
  release:
    marks: immediately
  slots:
    - question: browser-sum
    - question: browser-product
""",
        encoding="utf-8",
    )
    return folder


def _every_type_bank(folder: Path) -> Path:
    """The sample bank's questions with one more quiz: quiz 2's slots, open now, and
    everything released as soon as an attempt is finished. The questions are unchanged,
    so importing them again adds no version."""
    opens = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    shutil.copytree(ROOT / "question_bank" / "questions", folder / "questions")
    (folder / "quizzes").mkdir()
    quiz2 = (ROOT / "question_bank" / "quizzes" / "quiz2-gradients-and-shapes.yaml").read_text(
        encoding="utf-8"
    )
    slots = quiz2[quiz2.index("  slots:") :]
    (folder / "quizzes" / "every-type.yaml").write_text(
        f"""quiz:
  id: {EVERY_TYPE_QUIZ}
  title: "{EVERY_TYPE_TITLE}"
  opens: "{opens.isoformat()}"
  open_for: 24h
  time_limit: 60
  attempts: 1
  release:
    marks: immediately
    answers: immediately
{slots}""",
        encoding="utf-8",
    )
    return folder


def _create_students(server: LiveServer) -> None:
    """More students than `quizapp demo` makes, one per journey, in one process (the CLI
    would start the app once per account)."""
    from quizapp import create_app
    from quizapp.services.users import create_user

    app = create_app({"QUIZAPP_DATABASE_URL": server.database_url, "SECRET_KEY": SECRET_KEY})
    database = app.extensions["quizapp_db"]
    try:
        with app.app_context(), database.new_session() as session:
            for username, name in EXTRA_STUDENTS:
                create_user(session, username, PASSWORD, name=name)
    finally:
        database.remove()
        database.engine.dispose()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("browser")
    database_url = f"sqlite:///{base / 'quizapp.db'}"
    env = {
        **os.environ,
        "QUIZAPP_DATABASE_URL": database_url,
        "QUIZAPP_INSTANCE_PATH": str(base / "instance"),
        "QUIZAPP_SECRET_KEY": SECRET_KEY,
        "QUIZAPP_GRACE_SECONDS": str(GRACE_SECONDS),
        "QUIZAPP_STATUS_POLL_SECONDS": str(POLL_SECONDS),
        "QUIZAPP_MONITOR_POLL_SECONDS": str(POLL_SECONDS),
        "QUIZAPP_BANK_PATH": str(ROOT / "question_bank"),
        "GUNICORN_ACCESSLOG": "-",
    }
    env.pop("QUIZAPP_TEST_DATABASE_URL", None)
    port = _free_port()
    server = LiveServer(f"http://127.0.0.1:{port}", database_url, env, base / "server.log")
    # Migrate, import the sample bank with its windows open now, create the demo
    # accounts; then the 1-minute quiz and the every-type quiz through the ordinary
    # import command.
    server.cli("demo")
    server.cli("bank", "import", str(_short_bank(base / "short_bank")))
    server.cli("bank", "import", str(_every_type_bank(base / "every_type_bank")))
    _create_students(server)

    with server.log.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-w",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "quizapp:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(server.url, proc, server.log)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture
def new_context(browser: Browser, live_server: LiveServer) -> Iterator:
    """Make fresh browser contexts (own cookies and localStorage), closed after the test;
    keyword arguments go to Browser.new_context (storage_state=, viewport=, …)."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        settings = {
            "base_url": live_server.url,
            "viewport": DESKTOP,
            "locale": "en-GB",
            "timezone_id": "Europe/London",
            **options,
        }
        context = browser.new_context(**settings)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context) -> Page:  # type: ignore[no-untyped-def]
    return new_context().new_page()


def _student_context(browser: Browser, server: LiveServer) -> BrowserContext:
    context = browser.new_context(
        base_url=server.url, viewport=DESKTOP, locale="en-GB", timezone_id="Europe/London"
    )
    context.set_default_timeout(15_000)
    return context


@pytest.fixture(scope="session")
def finished_attempt(browser: Browser, live_server: LiveServer) -> Iterator[Student]:
    """hugo answers every question of "Every question type" with its model answer (the
    essay with a paragraph) and submits: a review with marks, answers and feedback."""
    context = _student_context(browser, live_server)
    page = context.new_page()
    login(page, "hugo")
    number = start_quiz(page, EVERY_TYPE_TITLE)
    for answer in model_answers(live_server, number):
        fill_answer(page, answer)
    page.get_by_role("button", name="Save and finish…").click()
    page.get_by_role("button", name="Submit my answers").click()
    expect(page).to_have_url(re.compile(r"/result$"))
    yield Student("hugo", number, context.storage_state())
    context.close()


@pytest.fixture(scope="session")
def open_attempt(browser: Browser, live_server: LiveServer) -> Iterator[Student]:
    """jack has an open attempt at "Every question type" with three answers saved."""
    context = _student_context(browser, live_server)
    page = context.new_page()
    login(page, "jack")
    number = start_quiz(page, EVERY_TYPE_TITLE)
    for answer in model_answers(live_server, number)[:3]:
        fill_answer(page, answer)
    expect(page.locator("#save-summary")).to_have_text("All answers saved.")
    yield Student("jack", number, context.storage_state())
    context.close()
