"""The staff page of registered VLEs: the list with deployments and the URLs to give
the VLE, adding and editing a platform by a form (CSRF), through add_platform, audited
with who did it."""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.models import AuditEvent, LtiPlatform, Role
from quizapp.services.lti import deployment_ids
from quizapp.services.users import create_user
from tests.conftest import PASSWORD, Auth
from tests.functional.helpers import csrf_of


def _text(response) -> str:
    return re.sub(r"\s+", " ", unescape(response.get_data(as_text=True)))


@pytest.fixture
def staff(lti_app: Flask, session: Session, roster: None) -> FlaskClient:
    create_user(session, "staffer", PASSWORD, name="Stef Staffer", role=Role.STAFF)
    client = lti_app.test_client()
    Auth(client).login("staffer")
    return client


FORM = {
    "name": "Canvas",
    "issuer": "https://canvas.instructure.com",
    "client_id": "10000000000042",
    "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
    "auth_token_url": "https://sso.canvaslms.com/login/oauth2/token",
    "jwks_url": "https://sso.canvaslms.com/api/lti/security/jwks",
    "deployments": "12:abc\n13:def",
}


def test_the_page_lists_platforms_and_the_urls_for_the_vle(staff, platform):
    assert "/staff/lti/" in staff.get("/staff/").get_data(as_text=True)
    page = _text(staff.get("/staff/lti/"))
    assert "Test VLE" in page and platform.issuer in page and "dep-1" in page
    assert "http://localhost/lti/register" in page
    assert "http://localhost/lti/login" in page and "http://localhost/lti/jwks.json" in page


def test_add_a_platform_by_the_form(staff, session):
    page = staff.get("/staff/lti/platforms/new").get_data(as_text=True)
    done = staff.post("/staff/lti/platforms/new", data=FORM | {"csrf_token": csrf_of(page)})
    assert done.status_code == 302, done.get_data(as_text=True)
    assert "Saved the platform Canvas" in _text(staff.get(done.headers["Location"]))
    session.rollback()
    stored = session.scalars(select(LtiPlatform).where(LtiPlatform.issuer == FORM["issuer"])).one()
    assert deployment_ids(session, stored.id) == ["12:abc", "13:def"]
    [saved] = [
        e
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "lti_platform_added")
        )
        if e.details["client_id"] == "10000000000042"
    ]
    assert saved.details["source"] == "staff_page" and saved.actor_id is not None


def test_edit_updates_urls_and_adds_deployments(staff, session, platform):
    session.rollback()
    stored = session.scalars(select(LtiPlatform)).one()
    url = f"/staff/lti/platforms/{stored.id}"
    form = staff.get(url)
    assert platform.jwks_url in form.get_data(as_text=True)
    done = staff.post(
        url,
        data={
            "csrf_token": csrf_of(form.get_data(as_text=True)),
            "name": "Renamed VLE",
            "issuer": "https://ignored.example",  # the registration's name cannot change
            "auth_login_url": platform.auth_login_url,
            "auth_token_url": platform.auth_token_url,
            "jwks_url": platform.url + "/keys-v2",
            "deployments": "dep-2",
        },
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    session.rollback()
    [again] = session.scalars(select(LtiPlatform)).all()
    assert again.name == "Renamed VLE" and again.jwks_url == platform.url + "/keys-v2"
    assert again.issuer == platform.issuer
    assert deployment_ids(session, again.id) == ["dep-1", "dep-2"]


def test_a_bad_url_is_refused_with_the_form_kept(staff, session):
    page = staff.get("/staff/lti/platforms/new").get_data(as_text=True)
    bad = FORM | {"jwks_url": "http://vle.example/jwks", "csrf_token": csrf_of(page)}
    response = staff.post("/staff/lti/platforms/new", data=bad)
    assert response.status_code == 400
    assert "must be an https:// URL" in _text(response)
    assert 'value="10000000000042"' in response.get_data(as_text=True)


def test_without_csrf_nothing_is_saved(staff, session):
    response = staff.post("/staff/lti/platforms/new", data=FORM)
    assert response.status_code == 400
    session.rollback()
    assert session.scalars(select(LtiPlatform).where(LtiPlatform.name == "Canvas")).all() == []


def test_students_cannot_see_the_platforms(lti_app, session, roster):
    create_user(session, "student", PASSWORD, name="A Student")
    client = lti_app.test_client()
    Auth(client).login("student")
    assert client.get("/staff/lti/").status_code == 403
    assert client.get("/staff/lti/platforms/new").status_code == 403
