"""LTI 1.3 core launch end to end: the platform of tests/lti/platform.py (its keys served
on 127.0.0.1, fetched by the app over HTTP) and the app through Flask's test client.
Login initiation → redirect with state and nonce → the platform's signed ID token
posted back → signed in and landed, or a clear page and an `lti_refused` audit event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quizapp import create_app
from quizapp.models import AuditEvent, LtiNonce, LtiPerson, Quiz, Role
from quizapp.services.lti import add_platform
from quizapp.services.users import create_user
from tests.lti.platform import DROP, INSTRUCTOR, LTI, Person, Platform, new_key, running_platform

LAUNCH = "http://localhost/lti/launch"
CONTACT = "the course office, quiz-help@uni.example"
ALICE = Person("sub-alice", email="Alice@Uni.Example", name="Alice A", username="alice")
SAM = Person("sub-sam", email="sam@uni.example", name="Sam Staff", roles=(INSTRUCTOR,))
ZOE = Person("sub-zoe", email="zoe@uni.example", name="Zoe Nobody")


@pytest.fixture
def platform(clock: Any) -> Iterator[Platform]:
    with running_platform(clock) as running:
        yield running


@pytest.fixture
def make_app(app: Flask, database_url: str, clock: Any) -> Iterator[Callable[..., Flask]]:
    """Apps with LTI settings (the `app` fixture empties the database afterwards)."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        config = {
            "TESTING": True,
            "SECRET_KEY": "lti-test-secret",
            "QUIZAPP_DATABASE_URL": database_url,
            "QUIZAPP_CLOCK": clock,
            "QUIZAPP_LTI_CONTACT": CONTACT,
            "QUIZAPP_LTI_JWKS_REFETCH_SECONDS": 0,
            **overrides,
        }
        made.append(create_app(config))
        return made[-1]

    yield make
    for each in made:
        each.extensions["quizapp_login_throttle"].close()
        each.extensions["quizapp_db"].remove()
        each.extensions["quizapp_db"].engine.dispose()


@pytest.fixture
def lti_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def roster(session: Session, platform: Platform, clock: Any, sample_bank: Any) -> None:
    create_user(session, "alice", None, name="Alice A", email="alice@uni.example")
    create_user(session, "sam", None, name="Sam", email="sam@uni.example", role=Role.STAFF)
    create_user(session, "pat", None, name="Pat Student", email="pat@uni.example")
    add_platform(
        session,
        issuer=platform.issuer,
        client_id=platform.client_id,
        auth_login_url=platform.auth_login_url,
        auth_token_url=platform.auth_token_url,
        jwks_url=platform.jwks_url,
        deployments=[platform.deployment_id],
        now=clock(),
        name="Test VLE",
    )


@pytest.fixture
def browser(lti_app: Flask, roster: None) -> FlaskClient:
    return lti_app.test_client()


def start_login(client: FlaskClient, platform: Platform, method: str = "GET") -> str:
    params = platform.login_params(LAUNCH)
    if method == "GET":
        response = client.get("/lti/login", query_string=params)
    else:
        response = client.post("/lti/login", data=params)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def launch(client: FlaskClient, platform: Platform, person: Person, **hooks: Any):
    """The whole launch for one person; the app's answer to the posted form."""
    redirect_uri, form = platform.authorize(start_login(client, platform), person, **hooks)
    assert redirect_uri == LAUNCH
    return client.post("/lti/launch", data=form)


def audit_actions(session: Session) -> list[tuple[str, dict[str, Any]]]:
    session.rollback()
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.action, e.details) for e in events]


def refusals(session: Session) -> list[str]:
    return [d["reason"] for action, d in audit_actions(session) if action == "lti_refused"]


def quiz_id(session: Session, key: str = "quiz1-foundations") -> int:
    found = session.scalars(select(Quiz.id).where(Quiz.key == key)).one()
    return int(found)


# --- Login initiation ----------------------------------------------------------------


def test_login_sends_the_browser_to_the_platform_with_state_and_nonce(browser, platform):
    for method in ("GET", "POST"):
        location = start_login(browser, platform, method)
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert location.startswith(platform.auth_login_url + "?")
        assert query["redirect_uri"] == LAUNCH and query["client_id"] == platform.client_id
        assert query["response_type"] == "id_token" and query["response_mode"] == "form_post"
        assert query["scope"] == "openid" and query["prompt"] == "none"
        assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
        assert query["lti_message_hint"] == "link-1"
    cookie = browser.get_cookie("quizapp_lti_state", path="/lti/")
    assert cookie is not None and cookie.secure and cookie.http_only
    assert cookie.same_site == "None"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://unknown-vle.example"}, "unknown_platform"),
        ({"iss": ""}, "iss_missing"),
        ({"login_hint": ""}, "login_hint_missing"),
        ({"target_link_uri": ""}, "target_link_uri_missing"),
        ({"target_link_uri": "https://evil.example/lti/launch"}, "target_link_uri_foreign"),
        ({"client_id": "someone-else"}, "unknown_platform"),
        ({"lti_deployment_id": "dep-unknown"}, "unknown_deployment"),
    ],
)
def test_a_login_initiation_that_does_not_fit_is_refused(
    browser, platform, session, change, reason
):
    params = {**platform.login_params(LAUNCH), **change}
    response = browser.get("/lti/login", query_string=params)
    assert response.status_code == 400
    assert "did not work" in response.get_data(as_text=True)
    assert refusals(session) == [reason]


# --- Good launches -------------------------------------------------------------------


def test_a_learner_lands_on_the_linked_quiz_and_is_linked_for_next_time(browser, platform, session):
    response = launch(browser, platform, ALICE, custom={"quiz": "quiz1-foundations"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == f"/quiz/{quiz_id(session)}"
    page = browser.get(response.headers["Location"])
    assert page.status_code == 200 and "Quiz 1: Foundations" in page.get_data(as_text=True)
    actions = audit_actions(session)
    linked = [d for a, d in actions if a == "lti_linked"]
    assert linked and linked[0]["sub"] == "sub-alice" and linked[0]["match"] == "email"
    assert any(a == "login" and d.get("method") == "lti" for a, d in actions), actions
    # Next time the platform's subject decides, whatever the e-mail says now.
    moved = Person("sub-alice", email="alice.new@uni.example")
    again = launch(browser, platform, moved, custom={"quiz": "quiz1-foundations"})
    assert again.status_code == 302 and again.headers["Location"].startswith("/quiz/")
    assert session.scalar(select(func.count()).select_from(LtiPerson)) == 1


def test_an_instructor_with_a_staff_account_lands_on_the_staff_pages(browser, platform):
    response = launch(browser, platform, SAM, custom={"quiz": "quiz1-foundations"})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    assert browser.get("/staff/").status_code == 200


def test_an_instructor_role_never_makes_a_student_account_staff(browser, platform):
    pat = Person("sub-pat", email="pat@uni.example", roles=(INSTRUCTOR,))
    response = launch(browser, platform, pat)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert browser.get("/staff/").status_code == 403


@pytest.mark.parametrize("custom", [None, {}, {"quiz": "no-such-quiz"}])
def test_a_learner_without_a_known_linked_quiz_lands_on_the_dashboard(browser, platform, custom):
    response = launch(browser, platform, ALICE, custom=custom)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert browser.get("/").status_code == 200


def test_matching_by_username_when_configured(make_app, roster, platform, session):
    client = make_app(QUIZAPP_LTI_MATCH="username").test_client()
    person = Person("sub-a2", email="", username="alice")
    response = launch(client, platform, person, custom={"quiz": "quiz1-foundations"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/quiz/")
    nobody = Person("sub-x", email="alice@uni.example")  # no username claim
    refused = launch(client, platform, nobody)
    assert refused.status_code == 403 and refusals(session) == ["username_missing"]


# --- Refusals ------------------------------------------------------------------------


def test_someone_not_on_the_roster_gets_a_clear_page(browser, platform, session):
    response = launch(browser, platform, ZOE)
    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert "not on this course" in text and "quiz-help@uni.example" in text
    assert refusals(session) == ["unknown_person"]
    assert session.scalar(select(func.count()).select_from(LtiPerson)) == 0
    assert browser.get("/").status_code == 302  # not signed in


@pytest.mark.parametrize(
    ("hooks", "reason"),
    [
        ({"claims": {"aud": "another-tool", "azp": DROP}}, "wrong_audience"),
        ({"claims": {"aud": ["quizapp-tool", "x"], "azp": DROP}}, "azp_missing"),
        ({"claims": {"iss": "https://other.example"}}, "wrong_issuer"),
        ({"claims": {LTI + "deployment_id": "dep-unknown"}}, "unknown_deployment"),
        ({"claims": {LTI + "message_type": "LtiDeepLinkingRequest"}}, "wrong_message_type"),
        ({"claims": {LTI + "version": "1.1.0"}}, "wrong_version"),
        ({"claims": {"nonce": "not-the-one-we-sent"}}, "nonce_mismatch"),
        ({"claims": {"sub": DROP}}, "sub_missing"),
        ({"kid": "never-published"}, "unknown_kid"),
    ],
)
def test_a_launch_that_fails_a_check_is_refused_and_audited(
    browser, platform, session, hooks, reason
):
    response = launch(browser, platform, ALICE, **hooks)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "did not work" in response.get_data(as_text=True)
    assert refusals(session) == [reason]
    assert browser.get("/").status_code == 302  # not signed in


def test_an_expired_token_is_refused(browser, platform, session, clock):
    location = start_login(browser, platform)
    redirect_uri, form = platform.authorize(location, ALICE)
    clock.advance(seconds=300 + 61)  # exp is iat + 5 min; one minute of leeway
    response = browser.post("/lti/launch", data=form)
    assert response.status_code == 400 and refusals(session) == ["expired"]


def test_a_token_signed_by_another_key_is_refused(browser, platform, session):
    forger = new_key(str(platform.keys[0].kid))  # the published kid, another key
    response = launch(browser, platform, ALICE, sign_with=forger)
    assert response.status_code == 400 and refusals(session) == ["bad_signature"]


def test_a_replayed_nonce_is_refused_even_with_the_old_state_cookie(browser, platform, session):
    location = start_login(browser, platform)
    _, form = platform.authorize(location, ALICE)
    state_cookie = browser.get_cookie("quizapp_lti_state", path="/lti/")
    assert state_cookie is not None
    assert browser.post("/lti/launch", data=form).status_code == 302
    # An attacker holding a copy of the cookie and the posted form tries again.
    replay = browser.application.test_client()
    replay.set_cookie("quizapp_lti_state", state_cookie.value, path="/lti/")
    response = replay.post("/lti/launch", data=form)
    assert response.status_code == 400 and refusals(session) == ["nonce_replayed"]
    assert session.scalar(select(func.count()).select_from(LtiNonce)) == 1


def test_a_state_this_browser_does_not_hold_is_refused(browser, platform, session):
    location = start_login(browser, platform)
    _, form = platform.authorize(location, ALICE)
    other_browser = browser.application.test_client()
    assert other_browser.post("/lti/launch", data=form).status_code == 400
    wrong_state = browser.post("/lti/launch", data={**form, "state": "made-up"})
    assert wrong_state.status_code == 400
    assert refusals(session) == ["state_mismatch", "state_mismatch"]
    # The right browser with the right state still works, once.
    assert browser.post("/lti/launch", data=form).status_code == 302
    assert browser.post("/lti/launch", data=form).status_code == 400
    assert refusals(session)[-1] == "state_mismatch"


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({}, "state_mismatch"),
        ({"error": "login_required", "error_description": "no session"}, "platform_error"),
        ({"id_token": "not.a.token"}, "token_unreadable"),
        ({"id_token": ""}, "id_token_missing"),
    ],
)
def test_broken_posts_are_a_page_never_a_500(browser, platform, session, form, reason):
    location = start_login(browser, platform)
    state = parse_qs(urlsplit(location).query)["state"][0]
    data = {"state": state, **form} if form else {}
    response = browser.post("/lti/launch", data=data)
    assert response.status_code == 400 and refusals(session) == [reason]


def test_platform_key_rotation_is_followed_by_one_refetch(browser, platform, session):
    assert launch(browser, platform, ALICE).status_code == 302
    assert platform.jwks_requests == 1
    assert launch(browser, platform, ALICE).status_code == 302
    assert platform.jwks_requests == 1  # cached
    platform.rotate()
    assert launch(browser, platform, ALICE).status_code == 302
    assert platform.jwks_requests == 2  # the unknown kid fetched the new set once
    assert refusals(session) == []


def test_keys_that_cannot_be_fetched_are_a_503_page(browser, platform, session, clock):
    add_platform(
        session,
        issuer=platform.issuer,
        client_id=platform.client_id,
        auth_login_url=platform.auth_login_url,
        auth_token_url=platform.auth_token_url,
        jwks_url="http://127.0.0.1:9/jwks",  # nothing answers there
        deployments=[],
        now=clock(),
    )
    response = launch(browser, platform, ALICE)
    assert response.status_code == 503 and refusals(session) == ["platform_keys_unavailable"]
