"""Sessions end on the server: a cookie copied before logout is worthless after it, one
device's logout leaves the other signed in, "sign out everywhere" and a disabled account
end every session at once."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from quizapp.models import AuditEvent, AuthSession, User
from quizapp.services import identity
from tests.conftest import Auth
from tests.functional.helpers import csrf_of


def _cookie(app, client) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return cookie.value


def _browser_with(app, value: str):
    other = app.test_client()
    other.set_cookie(app.config["SESSION_COOKIE_NAME"], value)
    return other


def _signed_in(client) -> bool:
    response = client.get("/")
    return response.status_code == 200 and "/login" not in response.headers.get("Location", "")


@pytest.fixture
def alice_browser(app, client, auth, users):
    assert auth.login("alice").status_code == 302
    return client


def test_a_cookie_replayed_after_logout_gets_the_login_page(app, alice_browser, session):
    copied = _cookie(app, alice_browser)
    assert _signed_in(_browser_with(app, copied))
    page = alice_browser.get("/").get_data(as_text=True)
    alice_browser.post("/logout", data={"csrf_token": csrf_of(page)})
    replay = _browser_with(app, copied)
    response = replay.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    api = replay.get("/api/attempts/1")
    assert api.status_code == 401 and api.get_json()["error"].startswith("Please log in")
    events = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert events == ["login", "logout"]


def test_logging_out_on_one_device_keeps_the_other_signed_in(app, alice_browser, users):
    laptop = app.test_client()
    assert Auth(laptop).login("alice").status_code == 302
    page = alice_browser.get("/").get_data(as_text=True)
    alice_browser.post("/logout", data={"csrf_token": csrf_of(page)})
    assert not _signed_in(alice_browser)
    assert _signed_in(laptop)


def test_sign_out_everywhere_ends_every_session_of_the_account(app, alice_browser, users):
    laptop = app.test_client()
    assert Auth(laptop).login("alice").status_code == 302
    bob = app.test_client()
    assert Auth(bob).login("bob").status_code == 302
    page = alice_browser.get("/").get_data(as_text=True)
    response = alice_browser.post("/logout/everywhere", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 302
    assert not _signed_in(alice_browser) and not _signed_in(laptop)
    assert _signed_in(bob)  # someone else's sessions are untouched
    assert Auth(laptop).login("alice").status_code == 302 and _signed_in(laptop)


def test_a_disabled_account_is_signed_out_at_its_next_request(app, alice_browser, session, users):
    session.execute(update(User).where(User.id == users["alice"]).values(active=False))
    session.commit()
    assert not _signed_in(alice_browser)


def test_a_session_made_before_a_version_bump_is_refused(app, alice_browser, session, users, clock):
    identity.end_all_sessions(session, users["alice"], clock(), reason="password reset")
    assert not _signed_in(alice_browser)
    rows = session.scalars(select(AuthSession)).all()
    assert len(rows) == 1 and rows[0].method == "password"


def test_the_cookie_holds_no_session_id_the_database_could_leak(app, alice_browser, session):
    """The database keeps only a digest: a copy of the table cannot be replayed as cookies."""
    (row,) = session.scalars(select(AuthSession)).all()
    with alice_browser.session_transaction() as cookie_session:
        session_id = cookie_session["sid"]
    assert row.id != session_id and len(row.id) == 64


def test_the_dashboard_offers_sign_out_everywhere(alice_browser):
    page = alice_browser.get("/").get_data(as_text=True)
    assert 'action="/logout/everywhere"' in page and "Sign out on every device" in page
