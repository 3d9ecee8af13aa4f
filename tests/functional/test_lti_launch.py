"""LTI 1.3 core launch end to end: the platform of tests/lti/platform.py (its keys served
on 127.0.0.1, fetched by the app over HTTP) and the app through Flask's test client.
Login initiation → redirect with state and nonce → the platform's signed ID token
posted back → signed in and landed, or a clear page and an `lti_refused` audit event.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from quizapp.models import LtiNonce, LtiPerson
from quizapp.services.lti import add_platform
from tests.lti.fixtures import (
    ALICE,
    LAUNCH,
    SAM,
    ZOE,
    audit_actions,
    launch,
    quiz_id,
    refusals,
    start_login,
)
from tests.lti.platform import DROP, INSTRUCTOR, LTI, Person, new_key

# --- Login initiation ----------------------------------------------------------------


def test_login_sends_the_browser_to_the_platform_with_state_and_nonce(lti_client, platform):
    for method in ("GET", "POST"):
        location = start_login(lti_client, platform, method)
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert location.startswith(platform.auth_login_url + "?")
        assert query["redirect_uri"] == LAUNCH and query["client_id"] == platform.client_id
        assert query["response_type"] == "id_token" and query["response_mode"] == "form_post"
        assert query["scope"] == "openid" and query["prompt"] == "none"
        assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
        assert query["lti_message_hint"] == "link-1"
    cookie = lti_client.get_cookie("quizapp_lti_state", path="/lti/")
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
    lti_client, platform, session, change, reason
):
    params = {**platform.login_params(LAUNCH), **change}
    response = lti_client.get("/lti/login", query_string=params)
    assert response.status_code == 400
    assert "did not work" in response.get_data(as_text=True)
    assert refusals(session) == [reason]


# --- Good launches -------------------------------------------------------------------


def test_a_learner_lands_on_the_linked_quiz_and_is_linked_for_next_time(
    lti_client, platform, session
):
    response = launch(lti_client, platform, ALICE, custom={"quiz": "quiz1-foundations"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == f"/quiz/{quiz_id(session)}"
    page = lti_client.get(response.headers["Location"])
    assert page.status_code == 200 and "Quiz 1: Foundations" in page.get_data(as_text=True)
    actions = audit_actions(session)
    linked = [d for a, d in actions if a == "lti_linked"]
    assert linked and linked[0]["sub"] == "sub-alice" and linked[0]["match"] == "email"
    assert any(a == "login" and d.get("method") == "lti" for a, d in actions), actions
    # Next time the platform's subject decides, whatever the e-mail says now.
    moved = Person("sub-alice", email="alice.new@uni.example")
    again = launch(lti_client, platform, moved, custom={"quiz": "quiz1-foundations"})
    assert again.status_code == 302 and again.headers["Location"].startswith("/quiz/")
    assert session.scalar(select(func.count()).select_from(LtiPerson)) == 1


def test_an_instructor_with_a_staff_account_lands_on_the_staff_pages(lti_client, platform):
    response = launch(lti_client, platform, SAM, custom={"quiz": "quiz1-foundations"})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    assert lti_client.get("/staff/").status_code == 200


def test_an_instructor_role_never_makes_a_student_account_staff(lti_client, platform):
    pat = Person("sub-pat", email="pat@uni.example", roles=(INSTRUCTOR,))
    response = launch(lti_client, platform, pat)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert lti_client.get("/staff/").status_code == 403


@pytest.mark.parametrize("custom", [None, {}, {"quiz": "no-such-quiz"}])
def test_a_learner_without_a_known_linked_quiz_lands_on_the_dashboard(lti_client, platform, custom):
    response = launch(lti_client, platform, ALICE, custom=custom)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert lti_client.get("/").status_code == 200


def test_matching_by_username_when_configured(make_app, roster, platform, session):
    client = make_app(QUIZAPP_LTI_MATCH="username").test_client()
    person = Person("sub-a2", email="", username="alice")
    response = launch(client, platform, person, custom={"quiz": "quiz1-foundations"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/quiz/")
    nobody = Person("sub-x", email="alice@uni.example")  # no username claim
    refused = launch(client, platform, nobody)
    assert refused.status_code == 403 and refusals(session) == ["username_missing"]


# --- Refusals ------------------------------------------------------------------------


def test_someone_not_on_the_roster_gets_a_clear_page(lti_client, platform, session):
    response = launch(lti_client, platform, ZOE)
    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert "not on this course" in text and "quiz-help@uni.example" in text
    assert refusals(session) == ["unknown_person"]
    assert session.scalar(select(func.count()).select_from(LtiPerson)) == 0
    assert lti_client.get("/").status_code == 302  # not signed in


@pytest.mark.parametrize(
    ("hooks", "reason"),
    [
        ({"claims": {"aud": "another-tool", "azp": DROP}}, "wrong_audience"),
        ({"claims": {"aud": ["quizapp-tool", "x"], "azp": DROP}}, "azp_missing"),
        ({"claims": {"iss": "https://other.example"}}, "wrong_issuer"),
        ({"claims": {LTI + "deployment_id": "dep-unknown"}}, "unknown_deployment"),
        ({"claims": {LTI + "message_type": "LtiSubmissionReviewRequest"}}, "wrong_message_type"),
        ({"claims": {LTI + "version": "1.1.0"}}, "wrong_version"),
        ({"claims": {"nonce": "not-the-one-we-sent"}}, "nonce_mismatch"),
        ({"claims": {"sub": DROP}}, "sub_missing"),
        ({"kid": "never-published"}, "unknown_kid"),
    ],
)
def test_a_launch_that_fails_a_check_is_refused_and_audited(
    lti_client, platform, session, hooks, reason
):
    response = launch(lti_client, platform, ALICE, **hooks)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "did not work" in response.get_data(as_text=True)
    assert refusals(session) == [reason]
    assert lti_client.get("/").status_code == 302  # not signed in


def test_an_expired_token_is_refused(lti_client, platform, session, clock):
    location = start_login(lti_client, platform)
    redirect_uri, form = platform.authorize(location, ALICE)
    clock.advance(seconds=300 + 61)  # exp is iat + 5 min; one minute of leeway
    response = lti_client.post("/lti/launch", data=form)
    assert response.status_code == 400 and refusals(session) == ["expired"]


def test_a_token_signed_by_another_key_is_refused(lti_client, platform, session):
    forger = new_key(str(platform.keys[0].kid))  # the published kid, another key
    response = launch(lti_client, platform, ALICE, sign_with=forger)
    assert response.status_code == 400 and refusals(session) == ["bad_signature"]


def test_a_replayed_nonce_is_refused_even_with_the_old_state_cookie(lti_client, platform, session):
    location = start_login(lti_client, platform)
    _, form = platform.authorize(location, ALICE)
    state_cookie = lti_client.get_cookie("quizapp_lti_state", path="/lti/")
    assert state_cookie is not None
    assert lti_client.post("/lti/launch", data=form).status_code == 302
    # An attacker holding a copy of the cookie and the posted form tries again.
    replay = lti_client.application.test_client()
    replay.set_cookie("quizapp_lti_state", state_cookie.value, path="/lti/")
    response = replay.post("/lti/launch", data=form)
    assert response.status_code == 400 and refusals(session) == ["nonce_replayed"]
    assert session.scalar(select(func.count()).select_from(LtiNonce)) == 1


def test_a_state_this_browser_does_not_hold_is_refused(lti_client, platform, session):
    location = start_login(lti_client, platform)
    _, form = platform.authorize(location, ALICE)
    other_browser = lti_client.application.test_client()
    assert other_browser.post("/lti/launch", data=form).status_code == 400
    wrong_state = lti_client.post("/lti/launch", data={**form, "state": "made-up"})
    assert wrong_state.status_code == 400
    assert refusals(session) == ["state_mismatch", "state_mismatch"]
    # The right lti_client with the right state still works, once.
    assert lti_client.post("/lti/launch", data=form).status_code == 302
    assert lti_client.post("/lti/launch", data=form).status_code == 400
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
def test_broken_posts_are_a_page_never_a_500(lti_client, platform, session, form, reason):
    location = start_login(lti_client, platform)
    state = parse_qs(urlsplit(location).query)["state"][0]
    data = {"state": state, **form} if form else {}
    response = lti_client.post("/lti/launch", data=data)
    assert response.status_code == 400 and refusals(session) == [reason]


def test_platform_key_rotation_is_followed_by_one_refetch(lti_client, platform, session):
    assert launch(lti_client, platform, ALICE).status_code == 302
    assert platform.jwks_requests == 1
    assert launch(lti_client, platform, ALICE).status_code == 302
    assert platform.jwks_requests == 1  # cached
    platform.rotate()
    assert launch(lti_client, platform, ALICE).status_code == 302
    assert platform.jwks_requests == 2  # the unknown kid fetched the new set once
    assert refusals(session) == []


def test_keys_that_cannot_be_fetched_are_a_503_page(lti_client, platform, session, clock):
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
    response = launch(lti_client, platform, ALICE)
    assert response.status_code == 503 and refusals(session) == ["platform_keys_unavailable"]
