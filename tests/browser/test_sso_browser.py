"""Single sign-on in a real browser: Chromium follows the whole redirect dance from the
login page's button to the test university's sign-in page (oidc-provider, tests/sso)
and back to the dashboard of a gunicorn server configured for SSO."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import tests.browser.chromium_required  # noqa: F401  (skips or fails without Chromium)
from quizapp.models import AuditEvent, User
from tests.browser.helpers import BIN, DESKTOP, ROOT, wait_ready
from tests.sso.provider import OpenIdProvider, free_port, start_provider

CLIENT_ID = "quizapp-browser"
CLIENT_SECRET = "quizapp-browser-secret-7c1e"
LABEL = "Sign in with University account"


@dataclass
class SsoServer:
    url: str
    database_url: str
    provider: OpenIdProvider


@pytest.fixture(scope="module")
def sso_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoServer]:
    """A fresh database with one rostered student (no password, as the roster import
    makes them), the provider, and gunicorn pointed at it."""
    base = tmp_path_factory.mktemp("sso-browser")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider = start_provider(
        base,
        [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{url}/login/sso/callback"],
            }
        ],
        {"sub-erin": {"preferred_username": "erin", "name": "Erin Evans"}},
    )
    database_url = f"sqlite:///{base / 'quizapp.db'}"
    env = {
        **os.environ,
        "QUIZAPP_DATABASE_URL": database_url,
        "QUIZAPP_INSTANCE_PATH": str(base / "instance"),
        "QUIZAPP_SECRET_KEY": "sso-browser-secret",
        "QUIZAPP_SSO_ISSUER": provider.url,
        "QUIZAPP_SSO_CLIENT_ID": CLIENT_ID,
        "QUIZAPP_SSO_CLIENT_SECRET": CLIENT_SECRET,
        "QUIZAPP_SSO_LABEL": LABEL,
        "QUIZAPP_PASSWORD_LOGIN": "0",
    }
    env.pop("QUIZAPP_TEST_DATABASE_URL", None)
    log = base / "server.log"
    proc = None
    try:
        subprocess.run(
            [str(BIN / "quizapp"), "init-db"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        subprocess.run(
            [str(BIN / "python"), "-c", _ROSTER_STUDENT],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
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
        wait_ready(url, proc, log)
        yield SsoServer(url, database_url, provider)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        provider.stop()


_ROSTER_STUDENT = """
from quizapp import create_app
from quizapp.services.users import create_user
app = create_app()
with app.app_context(), app.extensions["quizapp_db"].new_session() as session:
    create_user(session, "erin", None, name="Erin Evans", email="erin@uni.example")
"""


def test_sign_in_through_the_university_in_chromium(
    browser: Browser, sso_server: SsoServer
) -> None:
    context = browser.new_context(base_url=sso_server.url, viewport=DESKTOP, locale="en-GB")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto("/login")
        expect(page.get_by_label("Password")).to_have_count(0)  # password sign-in is off
        page.get_by_role("link", name=LABEL).click()

        expect(page.get_by_role("heading", name="Test university sign-in")).to_be_visible()
        assert page.url.startswith(sso_server.provider.url + "/interaction/")
        page.get_by_label("Account").fill("sub-erin")
        page.get_by_role("button", name="Sign in").click()

        expect(page.get_by_role("heading", name="My quizzes", level=1)).to_be_visible()
        assert page.url == sso_server.url + "/"
        page.reload()  # the session is the server's, not a one-page thing
        expect(page.get_by_role("heading", name="My quizzes", level=1)).to_be_visible()
    finally:
        context.close()

    engine = create_engine(sso_server.database_url)
    try:
        with Session(engine) as session:
            erin = session.scalars(select(User).where(User.username == "erin")).one()
            assert erin.sso_subject == f"{sso_server.provider.url} sub-erin"
            events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
            assert [e.action for e in events] == ["sso_linked", "login"]
            assert events[1].details["method"] == "sso" and events[1].subject_id == erin.id
    finally:
        engine.dispose()
