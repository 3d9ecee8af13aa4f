"""LTI launches in Chromium: from a VLE page into an iframe, into a new window, and with
third-party cookies blocked (the new-window page and its button).

Two sites, as in real life: the VLE on `localhost` and quizapp (gunicorn) on `127.0.0.1`
(ports do not make sites differ; hosts do), so quizapp's cookies inside the VLE's page are
third-party cookies. Both are plain http: Chromium counts http://localhost and
http://127.0.0.1 as secure contexts and keeps `Secure` cookies from them.

The VLE is tests/lti/platform.py's `Platform` (its keys, its signed ID tokens) behind a
small browser-facing server written here from the spec (Security Framework 5.1.1): the
course page (the link in an iframe, or opening a new window), the auto-submitted login
initiation form, and the authorization endpoint that checks the tool's request and
auto-submits the ID token to the redirect URI. `login_hint` names the person and
`lti_message_hint` the quiz key (both are opaque to the tool, as the spec has it).

Chromium's cookie setting is a profile preference (`profile.cookie_controls_mode`: 0
allows third-party cookies, 1 blocks them); Playwright's ordinary contexts block them
(they are incognito profiles), so each test runs a persistent profile with the setting
written into its Preferences file.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from quizapp.models import AuditEvent
from tests.browser.helpers import BIN, CHROMIUM, CHROMIUM_ARGS, DESKTOP, ROOT, wait_ready
from tests.lti.platform import INSTRUCTOR, Person, Platform
from tests.sso.provider import free_port

QUIZ_KEY = "quiz1-foundations"
QUIZ_TITLE = "Quiz 1: Foundations"
PEOPLE = {
    "sub-alice": Person("sub-alice", name="Alice Adeyemi", username="alice"),
    "sub-bob": Person("sub-bob", name="Bob Björk", username="bob"),
    "sub-chen": Person("sub-chen", name="Chen Wei", username="chen"),
    "sub-staff": Person("sub-staff", name="Dr Sam Staff", username="staff", roles=(INSTRUCTOR,)),
}


@dataclass
class Vle:
    """The test VLE's browser-facing side; `platform` signs, `tool` is quizapp's URL."""

    platform: Platform
    tool: str

    def course_page(self, sub: str, mode: str) -> str:
        launch = "/launch?" + urlencode({"who": sub, "quiz": QUIZ_KEY})
        if mode == "iframe":
            body = (
                f'<iframe id="tool" title="quizapp" src="{html.escape(launch)}" '
                'width="1100" height="750"></iframe>'
            )
        else:
            body = f'<a href="{html.escape(launch)}" target="_blank">Open {QUIZ_TITLE}</a>'
        return f"<!doctype html><title>ML101 in the VLE</title><h1>ML101</h1>{body}"

    def login_form(self, sub: str, quiz: str) -> str:
        """The third-party-initiated login, posted by the browser (5.1.1.1)."""
        fields = {
            "iss": self.platform.issuer,
            "login_hint": sub,
            "target_link_uri": self.tool + "/lti/launch",
            "lti_message_hint": quiz,
            "client_id": self.platform.client_id,
            "lti_deployment_id": self.platform.deployment_id,
        }
        return _auto_post(self.tool + "/lti/login", fields)

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """The authentication response (5.1.1.3), checked as a platform must."""
        expected = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": self.platform.client_id,
            "redirect_uri": self.tool + "/lti/launch",
        }
        wrong = [k for k, v in expected.items() if query.get(k) != v]
        person = PEOPLE.get(query.get("login_hint", ""))
        if wrong or person is None or not query.get("state") or not query.get("nonce"):
            return 400, f"bad authentication request: {wrong or query.get('login_hint')}"
        custom = {"quiz": query["lti_message_hint"]} if query.get("lti_message_hint") else None
        token = self.platform.id_token(person, query["nonce"], custom=custom)
        return 200, _auto_post(query["redirect_uri"], {"id_token": token, "state": query["state"]})


def _auto_post(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        f'<!doctype html><form method="post" action="{html.escape(action)}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    )


class _VleHandler(BaseHTTPRequestHandler):
    vle: Vle

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/jwks":
            self._send(200, json.dumps(self.vle.platform.jwks()), "application/json")
        elif parts.path == "/course":
            self._send(200, self.vle.course_page(query["who"], query.get("mode", "iframe")))
        elif parts.path == "/launch":
            self._send(200, self.vle.login_form(query["who"], query["quiz"]))
        elif parts.path == "/auth":
            self._send(*self.vle.authorize(query))
        else:
            self._send(404, "not here")

    def _send(self, status: int, body: str, kind: str = "text/html; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@dataclass
class LtiServer:
    tool: str
    vle: str
    database_url: str
    log: Path


@pytest.fixture(scope="module")
def lti_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LtiServer]:
    """The VLE on localhost, and quizapp on 127.0.0.1 with the demo accounts and the
    sample bank, the VLE registered (found by username: the demo accounts have no
    e-mail)."""
    base = tmp_path_factory.mktemp("lti-browser")
    port = free_port()
    tool = f"http://127.0.0.1:{port}"
    platform = Platform(clock=lambda: datetime.now(UTC))
    vle_server = ThreadingHTTPServer(("127.0.0.1", 0), _VleHandler)
    platform.url = f"http://localhost:{vle_server.server_address[1]}"
    _VleHandler.vle = Vle(platform, tool)
    threading.Thread(target=vle_server.serve_forever, daemon=True).start()
    database_url = f"sqlite:///{base / 'quizapp.db'}"
    env = {
        **os.environ,
        "QUIZAPP_DATABASE_URL": database_url,
        "QUIZAPP_INSTANCE_PATH": str(base / "instance"),
        "QUIZAPP_SECRET_KEY": "lti-browser-secret",
        "QUIZAPP_BANK_PATH": str(ROOT / "question_bank"),
        "QUIZAPP_LTI_MATCH": "username",
    }
    env.pop("QUIZAPP_TEST_DATABASE_URL", None)
    log = base / "server.log"
    proc = None

    def cli(*args: str) -> None:
        subprocess.run(
            [str(BIN / "quizapp"), *args], cwd=ROOT, env=env, check=True, capture_output=True
        )

    try:
        cli("demo")
        cli(
            "lti", "platform", "add",
            "--issuer", platform.issuer,
            "--client-id", platform.client_id,
            "--auth-login-url", platform.auth_login_url,
            "--auth-token-url", platform.auth_token_url,
            "--jwks-url", platform.jwks_url,
            "--deployment", platform.deployment_id,
            "--name", "Test VLE",
        )  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    # Threads: Chromium's speculative connections would hold a
                    # single sync worker until its timeout.
                    "--worker-class",
                    "gthread",
                    "--threads",
                    "4",
                    "-w",
                    "1",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "quizapp:create_app()",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_ready(tool, proc, log)
        yield LtiServer(tool, platform.url, database_url, log)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        vle_server.shutdown()
        vle_server.server_close()


@pytest.fixture
def chromium(
    playwright_instance: Playwright, tmp_path: Path
) -> Iterator[Callable[..., BrowserContext]]:
    """A Chromium with its own profile; `third_party_cookies=False` blocks them as the
    browser's setting does."""
    contexts: list[BrowserContext] = []

    def start(*, third_party_cookies: bool = True) -> BrowserContext:
        profile = tmp_path / f"profile-{len(contexts)}"
        (profile / "Default").mkdir(parents=True)
        mode = 0 if third_party_cookies else 1
        (profile / "Default" / "Preferences").write_text(
            json.dumps({"profile": {"cookie_controls_mode": mode}})
        )
        context = playwright_instance.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=DESKTOP,
            locale="en-GB",
            timezone_id="Europe/London",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield start
    for context in contexts:
        context.close()


def _course(page: Page, server: LtiServer, sub: str, mode: str) -> None:
    page.goto(f"{server.vle}/course?who={sub}&mode={mode}", wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="ML101")).to_be_visible()


def _refusals(server: LtiServer) -> list[dict[str, Any]]:
    engine = create_engine(server.database_url)
    try:
        with Session(engine) as session:
            events = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "lti_refused").order_by(AuditEvent.id)
            )
            return [dict(e.details) for e in events]
    finally:
        engine.dispose()


def test_a_student_launched_in_the_vle_iframe_lands_signed_in_on_the_quiz(
    chromium: Callable[..., BrowserContext], lti_server: LtiServer
) -> None:
    context = chromium()
    page = context.new_page()
    _course(page, lti_server, "sub-alice", "iframe")
    frame = page.frame_locator("#tool")
    expect(frame.get_by_role("heading", name=QUIZ_TITLE, level=1)).to_be_visible()
    expect(frame.get_by_role("button", name="Log out alice")).to_be_visible()
    tool_frame = next(f for f in page.frames if f.url.startswith(lti_server.tool))
    assert "/quiz/" in tool_frame.url
    session = next(c for c in context.cookies(lti_server.tool) if c["name"] == "session")
    assert session["sameSite"] == "None" and session["secure"] and session["httpOnly"]
    # The session works on the next page in the frame too.
    frame.get_by_role("link", name="My quizzes").click()
    expect(frame.get_by_role("heading", name="My quizzes", level=1)).to_be_visible()
    assert page.url.startswith(lti_server.vle)  # the VLE page stayed where it was


def test_an_instructor_launched_in_the_vle_iframe_lands_on_the_staff_pages(
    chromium: Callable[..., BrowserContext], lti_server: LtiServer
) -> None:
    page = chromium().new_page()
    _course(page, lti_server, "sub-staff", "iframe")
    frame = page.frame_locator("#tool")
    expect(frame.get_by_role("heading", name="Quizzes", level=1)).to_be_visible()
    expect(frame.get_by_role("button", name="Log out staff")).to_be_visible()


def test_a_launch_into_a_new_window_lands_signed_in(
    chromium: Callable[..., BrowserContext], lti_server: LtiServer
) -> None:
    context = chromium()
    page = context.new_page()
    _course(page, lti_server, "sub-bob", "window")
    with context.expect_page() as opened:
        page.get_by_role("link", name=f"Open {QUIZ_TITLE}").click()
    window = opened.value
    expect(window.get_by_role("heading", name=QUIZ_TITLE, level=1)).to_be_visible()
    expect(window.get_by_role("button", name="Log out bob")).to_be_visible()
    assert window.url.startswith(lti_server.tool + "/quiz/")


def test_blocked_third_party_cookies_get_the_new_window_page_whose_button_signs_in(
    chromium: Callable[..., BrowserContext], lti_server: LtiServer
) -> None:
    context = chromium(third_party_cookies=False)
    page = context.new_page()
    _course(page, lti_server, "sub-chen", "iframe")
    frame = page.frame_locator("#tool")
    expect(
        frame.get_by_role("heading", name="Open quizapp in a new window", level=1)
    ).to_be_visible()
    expect(frame.get_by_text("Reference number for IT")).to_be_visible()
    assert _refusals(lti_server)[-1]["reason"] == "cookies_blocked"
    with context.expect_page() as opened:
        frame.get_by_role("link", name="Open quizapp in a new window").click()
    window = opened.value
    expect(window.get_by_role("heading", name=QUIZ_TITLE, level=1)).to_be_visible()
    expect(window.get_by_role("button", name="Log out chen")).to_be_visible()
    assert window.url.startswith(lti_server.tool + "/quiz/")
    window.reload()  # a real session, first-party in its own window
    expect(window.get_by_role("button", name="Log out chen")).to_be_visible()
