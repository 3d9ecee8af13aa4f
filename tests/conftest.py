"""Shared fixtures: a real database (SQLite file, or PostgreSQL when
QUIZAPP_TEST_DATABASE_URL is set), an injected clock, the app, and helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from quizapp import create_app
from quizapp.bank.loader import load_bank
from quizapp.cli import migrate
from quizapp.models import Base, Role
from quizapp.services.bank_import import import_bank
from quizapp.services.users import create_user

# The LTI fixtures (a running platform, apps with LTI settings, a registered roster)
# serve the launch, grade-service, roster-sync and deep-linking tests alike.
pytest_plugins = ["tests.lti.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_BANK = ROOT / "question_bank"
# The sample quiz opens 2027-01-18 10:00 Europe/London (GMT) for 24 hours.
QUIZ1_OPENS = datetime(2027, 1, 18, 10, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


class FakeClock:
    """The server's clock, set by tests: before the window, mid-attempt, past the deadline."""

    def __init__(self, start: datetime):
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment

    def advance(self, **kwargs: float) -> datetime:
        self.current += timedelta(**kwargs)
        return self.current


def _reset_schema(url: str) -> None:
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("QUIZAPP_TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    _reset_schema(url)
    migrate(url)
    return url


@pytest.fixture(scope="session", autouse=True)
def _instance_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["QUIZAPP_INSTANCE_PATH"] = str(tmp_path_factory.mktemp("instance"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(QUIZ1_OPENS + timedelta(hours=1))


@pytest.fixture
def app(database_url: str, clock: FakeClock) -> Iterator:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "QUIZAPP_DATABASE_URL": database_url,
            "QUIZAPP_CLOCK": clock,
        }
    )
    yield app
    app.extensions["quizapp_login_throttle"].close()
    database = app.extensions["quizapp_db"]
    database.remove()
    _empty_all_tables(database.engine)
    database.engine.dispose()


def _empty_all_tables(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            # A test that leaves a transaction open fails loudly instead of hanging CI.
            conn.execute(text("SET LOCAL lock_timeout = '15s'"))
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            conn.execute(text("UPDATE questions SET current_version_id = NULL"))
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def session(app) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    with app.extensions["quizapp_db"].new_session() as session:
        yield session


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def sample_bank(session: Session):  # type: ignore[no-untyped-def]
    bank = load_bank(SAMPLE_BANK)
    assert bank.ok, bank.problems
    import_bank(session, bank)
    return bank


@pytest.fixture
def users(session: Session) -> dict[str, int]:
    created = {
        "alice": create_user(session, "alice", PASSWORD, name="Alice Adeyemi"),
        "bob": create_user(session, "bob", PASSWORD, name="Bob Björk"),
        "carol": create_user(session, "carol", PASSWORD, name='=HYPERLINK("x")'),
        "staff": create_user(session, "staff", PASSWORD, name="Sam Staff", role=Role.STAFF),
    }
    return {name: user.id for name, user in created.items()}


class Auth:
    def __init__(self, client):  # type: ignore[no-untyped-def]
        self.client = client

    def csrf(self, path: str = "/login") -> str:
        import re

        page = self.client.get(path).get_data(as_text=True)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', page
        )
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
        token = self.csrf("/login")
        return self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )


@pytest.fixture
def auth(client) -> Auth:  # type: ignore[no-untyped-def]
    return Auth(client)


class Inbox:
    """What a local SMTP server received; addresses containing "bounce" are refused at
    RCPT (550), as a real server refuses an unknown mailbox."""

    def __init__(self) -> None:
        self.messages: list = []
        self.host = "127.0.0.1"
        self.port = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if "bounce" in address:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def settings(self) -> dict[str, object]:
        """App settings that send mail here (plain SMTP: no TLS on the test server)."""
        return {
            "QUIZAPP_SMTP_HOST": self.host,
            "QUIZAPP_SMTP_PORT": self.port,
            "QUIZAPP_SMTP_STARTTLS": False,
            "QUIZAPP_MAIL_FROM": "quizapp@uni.example",
        }


@pytest.fixture
def smtp_server() -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, for this test only."""
    import socket

    from aiosmtpd.controller import Controller

    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        inbox.port = probe.getsockname()[1]
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Hand the skip reasons to `make test`'s closing line (tests/skip_report.py)."""
    report = os.environ.get("QUIZAPP_SKIP_REPORT")
    if not report:
        return
    from tests.skip_report import record

    reasons = []
    for rep in terminalreporter.stats.get("skipped", []):
        longrepr = rep.longrepr
        reasons.append(str(longrepr[2] if isinstance(longrepr, tuple) else longrepr))
    record(report, reasons)
