"""LTI Dynamic Registration: the VLE opens /lti/register with its OpenID configuration
URL and a registration token; staff (signed in first if need be) confirm; quizapp
registers itself at the platform, stores the client id and deployment id, and tells
the VLE to close. A configuration whose issuer is on another site is refused."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.models import LtiPlatform, Role
from quizapp.services.lti import deployment_ids
from quizapp.services.users import create_user
from tests.conftest import PASSWORD, Auth
from tests.functional.helpers import csrf_of
from tests.lti.fixtures import audit_actions
from tests.lti.platform import Platform
from tests.lti.registration_service import (
    NRPS_SCOPE,
    SCORE_SCOPE,
    TOOL_CONFIGURATION,
    install_registration,
)


def _text(response) -> str:
    return re.sub(r"\s+", " ", unescape(response.get_data(as_text=True)))


@pytest.fixture
def client(lti_app: Flask, session: Session) -> FlaskClient:
    create_user(session, "staffer", PASSWORD, name="Stef Staffer", role=Role.STAFF)
    create_user(session, "student", PASSWORD, name="A Student")
    return lti_app.test_client()


def _start_url(service, token: str | None = None) -> str:
    query = {"openid_configuration": service.configuration_url}
    query["registration_token"] = service.token if token is None else token
    return "/lti/register?" + urlencode(query)


def _platforms(session: Session) -> list[LtiPlatform]:
    session.rollback()
    return list(session.scalars(select(LtiPlatform)))


def test_the_whole_registration_signing_in_first(client, platform: Platform, session):
    service = install_registration(platform)
    start = _start_url(service)
    # Not signed in: to the sign-in form, and back to the same registration afterwards.
    first = client.get(start)
    assert first.status_code == 302 and "/login?next=" in first.headers["Location"]
    login_page = client.get(first.headers["Location"])
    token = csrf_of(login_page.get_data(as_text=True))
    signed_in = client.post(
        first.headers["Location"],
        data={"username": "staffer", "password": PASSWORD, "csrf_token": token},
    )
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == start

    confirm = client.get(start)
    page = _text(confirm)
    assert confirm.status_code == 200, page
    assert "Register quizapp in Moodle (127.0.0.1)?" in page
    assert platform.auth_login_url in page and platform.jwks_url in page
    assert service.configuration_requests[-1].headers["authorization"] == "Bearer reg-token-123"
    assert _platforms(session) == [], "nothing is stored before staff confirm"

    done = client.post(
        "/lti/register",
        data={
            "csrf_token": csrf_of(confirm.get_data(as_text=True)),
            "openid_configuration": service.configuration_url,
            "registration_token": service.token,
        },
    )
    page = _text(done)
    assert done.status_code == 200, page
    assert "quizapp is registered" in page and "dr-client-1" in page and "dr-dep-1" in page
    assert "/static/lti_close.js" in page  # posts org.imsglobal.lti.close to the VLE

    [sent] = service.registrations
    assert sent["initiate_login_uri"] == "http://localhost/lti/login"
    assert sent["redirect_uris"] == ["http://localhost/lti/launch"]
    assert sent["jwks_uri"] == "http://localhost/lti/jwks.json"
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    # Only the scopes the platform offers, of those quizapp wants.
    assert set(sent["scope"].split()) == {NRPS_SCOPE, SCORE_SCOPE}
    tool = sent[TOOL_CONFIGURATION]
    assert tool["domain"] == "localhost" and tool["target_link_uri"] == sent["redirect_uris"][0]
    assert "email" in tool["claims"] and "family_name" not in tool["claims"]
    assert [m["type"] for m in tool["messages"]] == ["LtiDeepLinkingRequest"]

    [stored] = _platforms(session)
    assert stored.issuer == platform.issuer and stored.client_id == "dr-client-1"
    assert stored.auth_login_url == platform.auth_login_url
    assert stored.auth_token_url == platform.auth_token_url
    assert stored.jwks_url == platform.jwks_url
    assert deployment_ids(session, stored.id) == ["dr-dep-1"]
    saved = [d for a, d in audit_actions(session) if a == "lti_platform_added"]
    assert saved and saved[-1]["source"] == "dynamic_registration"


def test_the_close_script_posts_the_lti_close_message(client):
    response = client.get("/static/lti_close.js")
    script = response.get_data(as_text=True)
    response.close()
    assert 'subject: "org.imsglobal.lti.close"' in script
    assert "window.opener" in script and "window.parent" in script


def test_an_issuer_on_another_site_is_refused(client, platform, session):
    service = install_registration(platform, issuer="https://evil.example")
    Auth(client).login("staffer")
    response = client.get(_start_url(service))
    page = _text(response)
    assert response.status_code == 400
    assert "quizapp was not registered" in page
    assert "issuer is https://evil.example" in page and "same site" in page
    # And the POST checks again: a forged confirmation cannot skip the check.
    posted = client.post(
        "/lti/register",
        data={
            "csrf_token": csrf_of(client.get("/staff/lti/").get_data(as_text=True)),
            "openid_configuration": service.configuration_url,
            "registration_token": service.token,
        },
    )
    assert posted.status_code == 400 and service.registrations == []
    assert _platforms(session) == []


def test_a_wrong_token_or_a_refusal_is_a_clear_page(client, platform, session):
    service = install_registration(platform)
    Auth(client).login("staffer")
    wrong = client.get(_start_url(service, token="not-it"))
    assert wrong.status_code == 400 and "HTTP 401" in _text(wrong)
    service.refuse = True
    confirm = client.get(_start_url(service))
    refused = client.post(
        "/lti/register",
        data={
            "csrf_token": csrf_of(confirm.get_data(as_text=True)),
            "openid_configuration": service.configuration_url,
            "registration_token": service.token,
        },
    )
    page = _text(refused)
    assert refused.status_code == 400
    assert "The VLE refused quizapp's registration" in page and "HTTP 400" in page
    assert _platforms(session) == []


def test_a_platform_that_makes_no_deployment_is_stored_without_one(client, platform, session):
    service = install_registration(platform, deployment_id=None)
    Auth(client).login("staffer")
    confirm = client.get(_start_url(service))
    done = client.post(
        "/lti/register",
        data={
            "csrf_token": csrf_of(confirm.get_data(as_text=True)),
            "openid_configuration": service.configuration_url,
            "registration_token": service.token,
        },
    )
    assert "none yet" in _text(done)
    [stored] = _platforms(session)
    assert deployment_ids(session, stored.id) == []


def test_students_cannot_register_a_platform(client, platform):
    service = install_registration(platform)
    Auth(client).login("student")
    assert client.get(_start_url(service)).status_code == 403
    assert service.configuration_requests == []


def test_without_parameters_the_page_explains_where_the_url_goes(client):
    Auth(client).login("staffer")
    page = _text(client.get("/lti/register"))
    assert "Paste it into the VLE" in page and "http://localhost/lti/register" in page


FRAMED = {"Sec-Fetch-Dest": "iframe"}


def _frame_ancestors(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    return next(p.strip() for p in policy.split(";") if p.strip().startswith("frame-ancestors"))


def test_inside_the_vles_frame_the_registration_moves_to_a_window_of_its_own(
    client, platform: Platform, session
):
    service = install_registration(platform)
    start = _start_url(service)
    framed = client.get(start, headers=FRAMED)
    page = _text(framed)
    assert framed.status_code == 200, page
    assert "Register quizapp in a new window" in page
    # The link opens the same registration top-level, keeping the opener for the relay.
    assert 'target="_blank" rel="opener"' in framed.get_data(as_text=True)
    assert "/static/lti_register_relay.js" in page
    # This page alone may be framed by the registering VLE (nobody else may yet).
    assert _frame_ancestors(framed) == f"frame-ancestors 'self' {platform.url}"
    assert "X-Frame-Options" not in framed.headers
    other = client.get("/login", headers=FRAMED)
    assert _frame_ancestors(other) == "frame-ancestors 'none'"
    assert other.headers["X-Frame-Options"] == "DENY"
    assert _platforms(session) == [] and service.configuration_requests == []
    # Other signed-in pages keep the sign-in redirect, framed or not.
    staff_page = client.get("/staff/", headers=FRAMED)
    assert staff_page.status_code == 302 and "/login" in staff_page.headers["Location"]


def test_the_confirm_and_done_pages_may_be_framed_by_the_registering_vle(
    client, platform: Platform, session
):
    service = install_registration(platform)
    start = _start_url(service)
    login = client.get("/login")
    client.post(
        "/login",
        data={"username": "staffer", "password": PASSWORD, "csrf_token": csrf_of(login.text)},
    )
    confirm = client.get(start, headers=FRAMED)
    assert confirm.status_code == 200
    assert _frame_ancestors(confirm) == f"frame-ancestors 'self' {platform.url}"
    done = client.post(
        "/lti/register",
        data={
            "csrf_token": csrf_of(confirm.get_data(as_text=True)),
            "openid_configuration": service.configuration_url,
            "registration_token": service.token,
        },
        headers=FRAMED,
    )
    assert done.status_code == 200 and "quizapp is registered" in _text(done)
    assert platform.url in _frame_ancestors(done)


def test_a_student_signed_in_gets_403_not_the_registration(client, platform: Platform):
    service = install_registration(platform)
    login = client.get("/login")
    client.post(
        "/login",
        data={"username": "student", "password": PASSWORD, "csrf_token": csrf_of(login.text)},
    )
    assert client.get(_start_url(service)).status_code == 403
    assert service.configuration_requests == []
