"""Launches inside the VLE's page (docs/lti.md "Inside the VLE's page"): who may frame
quizapp (CSP frame-ancestors from the registered platforms, cached per process, and
QUIZAPP_LTI_FRAME_ANCESTORS; X-Frame-Options only when nobody may), the session cookie
(SameSite=None; Secure while LTI is in use, Lax otherwise), CSRF tokens required on every
state-changing request, and the checks that turn blocked third-party cookies into the
new-window page. A framed request is one whose `Sec-Fetch-Dest` is `iframe`, as the
browser sends it; the Chromium journeys are in tests/browser/test_lti_browser.py.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from quizapp.models import AuditEvent, Quiz, Role
from quizapp.services.lti import add_platform
from quizapp.services.users import create_user
from tests.conftest import PASSWORD
from tests.lti.fixtures import register_platform
from tests.lti.platform import INSTRUCTOR, Person, Platform

LAUNCH = "http://localhost/lti/launch"
FRAMED = {"Sec-Fetch-Dest": "iframe"}
ALICE = Person("sub-alice", email="alice@uni.example", name="Alice A")
SAM = Person("sub-sam", email="sam@uni.example", roles=(INSTRUCTOR,))


@pytest.fixture
def roster(session: Session, platform: Platform, clock: Any, sample_bank: Any) -> None:
    create_user(session, "alice", PASSWORD, name="Alice A", email="alice@uni.example")
    create_user(session, "sam", None, name="Sam", email="sam@uni.example", role=Role.STAFF)
    register_platform(session, platform, clock)


def session_cookie(response: TestResponse) -> str:
    found = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert found, response.headers
    return found[-1]


def frame_ancestors(response: TestResponse) -> str:
    match = re.search(r"frame-ancestors ([^;]+)", response.headers["Content-Security-Policy"])
    assert match
    return match.group(1)


def audit_events(session: Session, action: str = "lti_refused") -> list[AuditEvent]:
    session.rollback()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


# --- Framing and the session cookie ----------------------------------------------------


def test_without_a_platform_nobody_may_frame_and_the_cookie_stays_lax(make_app):
    client = make_app().test_client()
    page = client.get("/login")
    assert frame_ancestors(page) == "'none'"
    assert page.headers["X-Frame-Options"] == "DENY"
    cookie = session_cookie(page)
    assert "SameSite=Lax" in cookie and "Secure" not in cookie


def test_registered_platforms_may_frame_and_the_cookie_works_in_their_iframe(
    make_app, session, platform, clock
):
    register_platform(session, platform, clock)
    client = make_app(
        QUIZAPP_LTI_FRAME_ANCESTORS="https://*.instructure.com, https://vle.uni.example/"
    ).test_client()
    page = client.get("/login")
    assert frame_ancestors(page).split() == [
        "'self'",
        platform.url,  # issuer and authorization URL share one origin here
        "https://*.instructure.com",
        "https://vle.uni.example",
    ]
    assert "X-Frame-Options" not in page.headers  # DENY would contradict the CSP
    cookie = session_cookie(page)
    assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    # Every response says the same, pages and static files alike.
    with client.get("/static/app.css") as static:
        assert frame_ancestors(static).startswith("'self' ")


def test_issuer_and_login_url_on_different_hosts_are_both_allowed(make_app, session, clock):
    add_platform(
        session,
        issuer="https://canvas.instructure.com",
        client_id="10000000000001",
        auth_login_url="https://sso.canvaslms.com/api/lti/authorize_redirect",
        auth_token_url="https://sso.canvaslms.com/login/oauth2/token",
        jwks_url="https://sso.canvaslms.com/api/lti/security/jwks",
        deployments=["1:abc"],
        now=clock(),
    )
    page = make_app().test_client().get("/login")
    assert frame_ancestors(page) == (
        "'self' https://canvas.instructure.com https://sso.canvaslms.com"
    )


def test_lti_iframe_0_keeps_framing_refused_and_the_cookie_lax(make_app, session, platform, clock):
    register_platform(session, platform, clock)
    page = make_app(QUIZAPP_LTI_IFRAME="0").test_client().get("/login")
    assert frame_ancestors(page) == "'none'" and page.headers["X-Frame-Options"] == "DENY"
    assert "SameSite=Lax" in session_cookie(page)


def test_lti_iframe_1_turns_iframe_cookies_on_before_any_platform_exists(make_app):
    alone = make_app(QUIZAPP_LTI_IFRAME="1").test_client().get("/login")
    assert "SameSite=None" in session_cookie(alone) and "Secure" in session_cookie(alone)
    assert frame_ancestors(alone) == "'none'"  # nobody listed: nobody may frame
    listed = make_app(
        QUIZAPP_LTI_IFRAME="1", QUIZAPP_LTI_FRAME_ANCESTORS="https://vle.uni.example"
    ).test_client()
    page = listed.get("/login")
    assert frame_ancestors(page) == "'self' https://vle.uni.example"
    assert "X-Frame-Options" not in page.headers


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("QUIZAPP_LTI_FRAME_ANCESTORS", "https://vle.example; script-src *"),
        ("QUIZAPP_LTI_FRAME_ANCESTORS", "vle.uni.example"),
        ("QUIZAPP_LTI_FRAME_ANCESTORS", "*"),
        ("QUIZAPP_LTI_FRAME_ANCESTORS", "https://vle.example/path"),
        ("QUIZAPP_LTI_IFRAME", "maybe"),
    ],
)
def test_a_malformed_setting_stops_the_app(make_app, setting, value):
    with pytest.raises(RuntimeError, match=setting):
        make_app(**{setting: value})


def test_plain_http_away_from_this_machine_keeps_lax_https_gets_none_secure(
    make_app, session, platform, clock
):
    register_platform(session, platform, clock)
    app = make_app()
    # A browser drops a Secure cookie sent over plain http (except to localhost): the
    # session would be lost, so Lax it stays there.
    lan = app.test_client().get("/login", base_url="http://quiz.lan.example")
    assert "SameSite=Lax" in session_cookie(lan) and "Secure" not in session_cookie(lan)
    tls = app.test_client().get("/login", base_url="https://quiz.uni.example")
    assert "SameSite=None" in session_cookie(tls) and "Secure" in session_cookie(tls)


def test_platforms_are_read_once_a_minute_not_per_request(make_app, session, platform, clock):
    app = make_app()
    embedding = app.extensions["quizapp_embedding"]
    client = app.test_client()
    for _ in range(5):
        assert frame_ancestors(client.get("/login")) == "'none'"
    assert embedding.loads == 1
    register_platform(session, platform, clock)
    assert frame_ancestors(client.get("/login")) == "'none'"  # cached for a minute
    assert embedding.loads == 1
    embedding.forget()  # as when the minute is up
    assert platform.url in frame_ancestors(client.get("/login"))
    assert embedding.loads == 2


def test_csrf_tokens_are_required_on_every_state_changing_request(make_app, roster, session):
    """With SameSite=None any site's form can make the browser send the session cookie:
    the CSRF token is then the only defence, so every POST/PUT/PATCH/DELETE needs one,
    signed in or not. Only the two LTI endpoints the platform posts to are exempt (the
    signed ID token and the browser-bound state protect them)."""
    from quizapp.web.security import csrf

    app = make_app()
    assert app.config.get("WTF_CSRF_ENABLED", True) and app.config.get(
        "WTF_CSRF_CHECK_DEFAULT", True
    )
    assert set(csrf._exempt_views) == {"quizapp.web.lti.login", "quizapp.web.lti.launch"}
    client = app.test_client()
    page = client.get("/login")
    assert "SameSite=None" in session_cookie(page)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert token
    signed_in = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token[1]}
    )
    assert signed_in.status_code == 302
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("lti.login", "lti.launch", "static"):
            continue
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            path = re.sub(
                r"<(?:[^:>]+:)?([a-z_]+)>", lambda m: "1" if m[1] != "token" else "x", rule.rule
            )
            response = client.open(path, method=method, json={} if method != "POST" else None)
            assert response.status_code == 400, (rule.endpoint, method, response.status_code)
            checked += 1
    assert checked >= 20
    assert client.get("/").status_code == 200  # still signed in: nothing was refused for that


# --- The launch in a frame ---------------------------------------------------------------


def framed_login(client: FlaskClient, platform: Platform) -> TestResponse:
    response = client.get("/lti/login", query_string=platform.login_params(LAUNCH), headers=FRAMED)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].startswith("/lti/login/check?t=")
    return response


def test_a_framed_launch_checks_both_cookies_and_lands_signed_in(
    make_app, roster, platform, session
):
    client = make_app().test_client()
    check = client.get(framed_login(client, platform).headers["Location"], headers=FRAMED)
    assert check.status_code == 302
    redirect_uri, form = platform.authorize(
        check.headers["Location"], ALICE, custom={"quiz": "quiz1-foundations"}
    )
    assert redirect_uri == LAUNCH
    launched = client.post("/lti/launch", data=form, headers=FRAMED)
    assert launched.status_code == 302
    assert launched.headers["Location"].startswith("/lti/launch/check?t=")
    assert "SameSite=None" in session_cookie(launched)
    landed = client.get(launched.headers["Location"], headers=FRAMED)
    quiz = session.scalars(select(Quiz.id).where(Quiz.key == "quiz1-foundations")).one()
    assert landed.status_code == 302 and landed.headers["Location"] == f"/quiz/{quiz}"
    assert client.get(landed.headers["Location"]).status_code == 200
    assert audit_events(session) == []


def test_an_instructor_framed_launch_lands_on_the_staff_pages(make_app, roster, platform):
    client = make_app().test_client()
    check = client.get(framed_login(client, platform).headers["Location"], headers=FRAMED)
    _, form = platform.authorize(check.headers["Location"], SAM)
    launched = client.post("/lti/launch", data=form, headers=FRAMED)
    landed = client.get(launched.headers["Location"], headers=FRAMED)
    assert landed.headers["Location"] == "/staff/"


def test_a_blocked_state_cookie_shows_the_new_window_page_whose_button_signs_in(
    make_app, roster, platform, session
):
    client = make_app().test_client()
    check_url = framed_login(client, platform).headers["Location"]
    client.delete_cookie("quizapp_lti_state", path="/lti/")  # the browser dropped it
    page = client.get(check_url, headers=FRAMED)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "blocks quizapp's cookies inside the VLE" in text
    [event] = audit_events(session)
    assert event.details["reason"] == "cookies_blocked" and event.details["step"] == "login"
    assert f"Reference number for IT: <strong>{event.id}</strong>" in text
    button = re.search(r'<a class="button primary" href="([^"]+)" target="_blank"', text)
    assert button and "Open quizapp in a new window" in text
    # The new window is top-level: its cookies are first-party, no check needed.
    restart = client.get(button[1].replace("&amp;", "&"), headers={"Sec-Fetch-Dest": "document"})
    assert restart.status_code == 302
    location = restart.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(platform.auth_login_url)
    assert query["login_hint"] == ["opaque-hint"] and query["lti_message_hint"] == ["link-1"]
    _, form = platform.authorize(location, ALICE)
    assert client.post("/lti/launch", data=form).status_code == 302
    assert client.get("/").status_code == 200  # signed in


def test_a_session_cookie_that_does_not_come_back_shows_the_new_window_page(
    make_app, roster, platform, session
):
    client = make_app().test_client()
    check = client.get(framed_login(client, platform).headers["Location"], headers=FRAMED)
    _, form = platform.authorize(check.headers["Location"], ALICE)
    launched = client.post("/lti/launch", data=form, headers=FRAMED)
    client.delete_cookie("session")  # the browser did not keep it
    page = client.get(launched.headers["Location"], headers=FRAMED)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Open quizapp in a new window" in text and "/lti/login?restart=" in text
    [event] = audit_events(session)
    assert event.details["reason"] == "cookies_blocked" and event.details["step"] == "launch"


def test_cookies_refused_even_in_a_window_of_its_own_get_no_button(
    make_app, roster, platform, session
):
    client = make_app().test_client()
    check_url = framed_login(client, platform).headers["Location"]
    client.delete_cookie("quizapp_lti_state", path="/lti/")
    page = client.get(check_url, headers={"Sec-Fetch-Dest": "document"})
    text = page.get_data(as_text=True)
    assert "refuses quizapp's cookies" in text and "Allow cookies for" in text
    assert "restart=" not in text


@pytest.mark.parametrize(
    "path",
    ["/lti/login/check", "/lti/login/check?t=forged", "/lti/launch/check?t=forged",
     "/lti/login?restart=forged"],
)  # fmt: skip
def test_a_forged_or_missing_check_token_is_a_refusal_page_with_a_reference(
    make_app, roster, session, path
):
    page = make_app().test_client().get(path, headers=FRAMED)
    assert page.status_code == 400
    [event] = audit_events(session)
    assert event.details["reason"] in ("check_expired", "restart_expired")
    text = page.get_data(as_text=True)
    assert "What you can do" in text and f"<strong>{event.id}</strong>" in text


def test_a_login_check_token_is_not_a_launch_check_token(make_app, roster, platform):
    client = make_app().test_client()
    token = framed_login(client, platform).headers["Location"].split("t=", 1)[1]
    assert client.get(f"/lti/launch/check?t={token}", headers=FRAMED).status_code == 400


def test_a_refusal_is_the_lti_page_with_what_to_do_and_the_audit_reference(
    make_app, roster, platform, session
):
    client = make_app().test_client()
    response = client.get("/lti/login", query_string=platform.login_params(LAUNCH))
    _, form = platform.authorize(response.headers["Location"], Person("sub-zoe", email="zoe@x"))
    refused = client.post("/lti/launch", data=form)
    assert refused.status_code == 403
    text = refused.get_data(as_text=True)
    [event] = audit_events(session)
    assert event.details["reason"] == "unknown_person"
    assert "not on this course" in text and "What you can do" in text
    assert f"Reference number for IT: <strong>{event.id}</strong>" in text


def test_long_login_parameters_still_fit_a_cookie_and_a_request_line(make_app, roster, platform):
    """Canvas's lti_message_hint is a signed JWT of about a kilobyte: four logins in
    flight must still fit the state cookie, and the check hop the request line gunicorn
    accepts (4094 bytes)."""
    client = make_app().test_client()
    params = {**platform.login_params(LAUNCH), "lti_message_hint": "h" * 1200}
    for _ in range(4):
        response = client.get("/lti/login", query_string=params, headers=FRAMED)
        assert response.status_code == 302
        assert len(f"GET {response.headers['Location']} HTTP/1.1") < 4094
    cookie = client.get_cookie("quizapp_lti_state", path="/lti/")
    assert cookie is not None and len(cookie.value) <= 3800
    # The newest login still holds what its new-window button needs.
    check = response.headers["Location"]
    client.delete_cookie("quizapp_lti_state", path="/lti/")
    assert "restart=" in client.get(check, headers=FRAMED).get_data(as_text=True)
