"""Single sign-on against a real OpenID provider (oidc-provider on 127.0.0.1, from
tests/sso): the app's side through Flask's test client, the person's side at the
provider with plain HTTP. The app really fetches discovery, keys and tokens from the
provider; a bad token is made by the provider itself (tests/sso/provider.mjs, `tamper`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quizapp import create_app
from quizapp.models import AuditEvent, Role, User
from quizapp.services.users import create_user
from tests.conftest import PASSWORD, Auth
from tests.sso.provider import OpenIdProvider, ProviderUser, free_port, start_provider

CLIENT_ID = "quizapp-tests"
CLIENT_SECRET = "quizapp-tests-secret-4f9a"
OTHER_CLIENT_ID = "another-app"  # registered at the same provider: its tokens are not ours
CALLBACK = "http://localhost/login/sso/callback"
CONTACT = "the course office, quiz-help@uni.example"
ACCOUNTS: dict[str, dict[str, Any]] = {
    "sub-alice": {"preferred_username": "alice", "email": "alice@uni.example", "name": "Alice A"},
    # A second university account claiming the same username (a reused name).
    "sub-alice-2": {"preferred_username": "alice", "name": "Another Alice"},
    "sub-staff": {"preferred_username": "staff", "groups": ["all-staff", "quiz-staff"]},
    "sub-staff-left": {"preferred_username": "staff", "groups": ["all-staff"]},
    "sub-bob": {"preferred_username": "bob", "groups": ["quiz-staff"]},
    "sub-zoe": {"preferred_username": "zoe", "email": "zoe@uni.example", "name": "Zoe Zhang"},
    "sub-nina": {"preferred_username": "nina", "name": "Nina Staff", "groups": ["quiz-staff"]},
    "sub-dana": {"preferred_username": "d1", "email": "Dana.Doe@Uni.Example", "name": "Dana"},
    "sub-anon": {"name": "No Username"},
}


def _clients(*callbacks: str) -> list[dict[str, Any]]:
    return [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": list(callbacks)},
        {"client_id": OTHER_CLIENT_ID, "client_secret": "other", "redirect_uris": list(callbacks)},
    ]


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    running = start_provider(tmp_path_factory.mktemp("sso"), _clients(CALLBACK), ACCOUNTS)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def make_app(
    app: Flask, database_url: str, clock: Any, provider: OpenIdProvider
) -> Iterator[Callable[..., Flask]]:
    """Apps with single sign-on on the test provider (the `app` fixture empties the
    database afterwards). ID tokens carry the provider's real time, so the server's clock
    starts at the real now."""
    clock.set(datetime.now(UTC))
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        config = {
            "TESTING": True,
            "SECRET_KEY": "sso-test-secret",
            "QUIZAPP_DATABASE_URL": database_url,
            "QUIZAPP_CLOCK": clock,
            "QUIZAPP_SSO_ISSUER": provider.url,
            "QUIZAPP_SSO_CLIENT_ID": CLIENT_ID,
            "QUIZAPP_SSO_CLIENT_SECRET": CLIENT_SECRET,
            "QUIZAPP_SSO_STAFF_CLAIM": "groups",
            "QUIZAPP_SSO_STAFF_VALUE": "quiz-staff",
            "QUIZAPP_SSO_CONTACT": CONTACT,
            "QUIZAPP_SSO_LABEL": "Sign in with University account",
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
def sso_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


def start(client: FlaskClient, provider: OpenIdProvider, path: str = "/login/sso") -> str:
    response = client.get(path)
    assert response.status_code == 302, response.get_data(as_text=True)
    authorization = response.headers["Location"]
    assert authorization.startswith(f"{provider.url}/auth?")
    return authorization


def dance(client: FlaskClient, provider: OpenIdProvider, account: str, path: str = "/login/sso"):
    """The whole redirect dance for one person; (callback URL, the app's answer to it)."""
    back = ProviderUser(provider.url).sign_in(start(client, provider, path), account)
    assert back.startswith(CALLBACK + "?"), back
    return back, client.get(back)


def audit_actions(session: Session) -> list[tuple[str, dict[str, Any]]]:
    session.rollback()
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.action, e.details) for e in events]


def refusals(session: Session) -> list[dict[str, Any]]:
    return [details for action, details in audit_actions(session) if action == "sso_refused"]


def signed_in_as(client: FlaskClient) -> str | None:
    """Who the app thinks this browser is: the dashboard or the login page."""
    response = client.get("/")
    if response.status_code == 302:
        return None
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "My quizzes" in page
    return page


def test_good_login_lands_on_the_dashboard_with_a_working_session(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    client = sso_app.test_client()
    authorization = start(client, provider)
    query = parse_qs(urlsplit(authorization).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["scope"] == ["openid profile email"] and query["redirect_uri"] == [CALLBACK]
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32

    back = ProviderUser(provider.url).sign_in(authorization, "sub-alice")
    response = client.get(back)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in_as(client)

    alice = session.get(User, users["alice"])
    assert alice is not None
    session.refresh(alice)
    assert alice.sso_subject == f"{provider.url} sub-alice"
    assert alice.last_login_at is not None
    actions = audit_actions(session)
    assert [a for a, _ in actions] == ["sso_linked", "login"]
    assert actions[0][1] == {"claim": "preferred_username", "value": "alice"}
    assert actions[1][1]["method"] == "sso"

    # The next sign-in finds the account by its subject: no second link.
    other_browser = sso_app.test_client()
    _, response = dance(other_browser, provider, "sub-alice")
    assert response.status_code == 302 and signed_in_as(other_browser)
    assert [a for a, _ in audit_actions(session)] == ["sso_linked", "login", "login"]


def test_next_is_kept_through_the_dance_and_only_a_local_path(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int]
) -> None:
    client = sso_app.test_client()
    _, response = dance(client, provider, "sub-alice", "/login/sso?next=/attempts/x")
    assert response.headers["Location"] == "/attempts/x"
    client = sso_app.test_client()
    _, response = dance(client, provider, "sub-alice", "/login/sso?next=//evil.example/")
    assert response.headers["Location"] == "/"


BAD_TOKENS = [
    ("wrong audience", {"claims": {"aud": OTHER_CLIENT_ID}}, "token_invalid", "aud"),
    (
        "another client's token naming us too, without azp",
        {"claims": {"aud": [OTHER_CLIENT_ID, CLIENT_ID]}},
        "token_invalid",
        "azp",
    ),
    (
        "issued to another party",
        {"claims": {"azp": OTHER_CLIENT_ID}},
        "token_invalid",
        "azp",
    ),
    ("another issuer", {"claims": {"iss": "https://evil.example"}}, "token_invalid", "iss"),
    ("nonce mismatch", {"claims": {"nonce": "not-the-nonce-we-sent"}}, "token_invalid", "nonce"),
    ("no nonce", {"claims": {"nonce": None}}, "token_invalid", "nonce"),
    ("expired", "expired", "token_expired", "exp"),
    ("issued in the future", "future", "token_invalid", "iat"),
    ("no expiry", {"claims": {"exp": None}}, "token_invalid", "exp"),
    ("signed by another key", {"wrong_key": True}, "token_invalid", "signature"),
]


@pytest.mark.parametrize(
    ("case", "tampering", "reason", "problem"), [pytest.param(*c, id=c[0]) for c in BAD_TOKENS]
)
def test_a_bad_id_token_is_refused_with_400_and_audited(
    sso_app: Flask,
    provider: OpenIdProvider,
    users: dict[str, int],
    session: Session,
    case: str,
    tampering: Any,
    reason: str,
    problem: str,
) -> None:
    now = int(time.time())
    if tampering == "expired":
        tampering = {"claims": {"iat": now - 3600, "exp": now - 600}}
    elif tampering == "future":
        tampering = {"claims": {"iat": now + 3600, "exp": now + 7200}}
    client = sso_app.test_client()
    authorization = start(client, provider)
    back = ProviderUser(provider.url).sign_in(authorization, "sub-alice")
    provider.tamper(tampering.get("claims"), wrong_key=tampering.get("wrong_key", False))
    response = client.get(back)

    assert response.status_code == 400, case
    page = response.get_data(as_text=True)
    assert "Sign-in did not work" in page and "could not be verified" in page
    assert signed_in_as(client) is None
    [refused] = refusals(session)
    assert refused["reason"] == reason and problem in refused["problem"].lower(), refused
    alice = session.get(User, users["alice"])
    assert alice is not None and alice.sso_subject is None  # nothing linked


def test_the_servers_clock_decides_that_a_token_has_expired(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session, clock: Any
) -> None:
    """A token still valid by the provider's clock and ours a moment ago, expired by the
    time it arrives (the leeway for clock skew is a minute)."""
    client = sso_app.test_client()
    back = ProviderUser(provider.url).sign_in(start(client, provider), "sub-alice")
    provider.tamper({"exp": int(time.time()) + 100})
    clock.advance(minutes=3)
    response = client.get(back)
    assert response.status_code == 400
    assert [r["reason"] for r in refusals(session)] == ["token_expired"]


def test_a_sign_in_left_unfinished_for_long_cannot_be_finished(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session, clock: Any
) -> None:
    client = sso_app.test_client()
    back = ProviderUser(provider.url).sign_in(start(client, provider), "sub-alice")
    clock.advance(minutes=16)
    assert client.get(back).status_code == 400
    assert [r["reason"] for r in refusals(session)] == ["state_unknown"]


def test_a_callback_url_used_twice_is_refused_the_second_time(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    client = sso_app.test_client()
    back, response = dance(client, provider, "sub-alice")
    assert response.status_code == 302
    again = client.get(back)
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    # Nor does it work in another browser (someone who saw the URL), which never started
    # a sign-in: this is also what stops a forged sign-in into the attacker's account.
    stranger = sso_app.test_client()
    assert stranger.get(back).status_code == 400
    assert signed_in_as(stranger) is None
    assert [r["reason"] for r in refusals(session)] == ["state_unknown", "state_unknown"]
    assert [a for a, _ in audit_actions(session)].count("login") == 1


def test_a_callback_without_state_or_with_a_bad_issuer_is_refused(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    client = sso_app.test_client()
    back = ProviderUser(provider.url).sign_in(start(client, provider), "sub-alice")
    query = parse_qs(urlsplit(back).query)
    assert query["iss"] == [provider.url]  # RFC 9207: the provider names itself
    no_state = client.get(f"/login/sso/callback?code={query['code'][0]}")
    assert no_state.status_code == 400
    mixed_up = client.get(back.replace("iss=", "iss=https%3A%2F%2Fevil.example&x="))
    assert mixed_up.status_code == 400
    assert [r["reason"] for r in refusals(session)] == ["state_unknown", "issuer_mismatch"]
    assert signed_in_as(client) is None


def test_cancelling_at_the_provider_gives_a_clear_400(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    client = sso_app.test_client()
    back = ProviderUser(provider.url).cancel(start(client, provider))
    assert parse_qs(urlsplit(back).query)["error"] == ["access_denied"]
    response = client.get(back)
    assert response.status_code == 400
    assert "cancelled or refused" in response.get_data(as_text=True)
    [refused] = refusals(session)
    assert refused["reason"] == "provider_error" and refused["error"] == "access_denied"
    # The state was spent by the error: it cannot be finished later.
    assert client.get(back.replace("error=", "code=x&e=")).status_code == 400
    assert [r["reason"] for r in refusals(session)] == ["provider_error", "state_unknown"]


def test_unknown_person_gets_the_contact_page_and_nothing_is_created(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    count = session.scalar(select(func.count()).select_from(User))
    client = sso_app.test_client()
    _, response = dance(client, provider, "sub-zoe")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "no quizapp account for you" in page and CONTACT in page
    assert "Nothing was created" in page
    assert signed_in_as(client) is None
    session.rollback()
    assert session.scalar(select(func.count()).select_from(User)) == count
    [refused] = refusals(session)
    assert refused["reason"] == "unknown_person" and refused["username"] == "zoe"
    assert refused["subject"] == f"{provider.url} sub-zoe"


def test_self_enrolment_creates_a_student_account(
    make_app: Callable[..., Flask],
    provider: OpenIdProvider,
    users: dict[str, int],
    session: Session,
) -> None:
    client = make_app(QUIZAPP_SSO_SELF_ENROL=True).test_client()
    _, response = dance(client, provider, "sub-zoe")
    assert response.status_code == 302 and signed_in_as(client)
    session.rollback()
    zoe = session.scalars(select(User).where(User.username == "zoe")).one()
    assert zoe.role is Role.STUDENT and zoe.password_hash is None
    assert (zoe.name, zoe.email) == ("Zoe Zhang", "zoe@uni.example")
    assert zoe.sso_subject == f"{provider.url} sub-zoe"
    actions = audit_actions(session)
    assert [a for a, _ in actions] == ["sso_enrolled", "login"]
    assert actions[0][1]["role"] == "student"


def test_staff_claim_on_a_staff_account_signs_in_as_staff(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    client = sso_app.test_client()
    _, response = dance(client, provider, "sub-staff")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200


def test_staff_claim_never_promotes_a_student_account(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    client = sso_app.test_client()
    _, response = dance(client, provider, "sub-bob")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "is a student account" in page and CONTACT in page
    assert signed_in_as(client) is None
    bob = session.get(User, users["bob"])
    assert bob is not None and bob.role is Role.STUDENT and bob.sso_subject is None
    assert [r["reason"] for r in refusals(session)] == ["staff_claim_on_student_account"]


def test_a_staff_account_needs_the_staff_claim(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    """Someone taken out of the university's staff group keeps no staff access."""
    client = sso_app.test_client()
    _, response = dance(client, provider, "sub-staff-left")
    assert response.status_code == 403
    assert "not marked as course staff" in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302
    assert [r["reason"] for r in refusals(session)] == ["staff_claim_missing"]


def test_self_enrolment_with_the_staff_claim_creates_a_staff_account(
    make_app: Callable[..., Flask],
    provider: OpenIdProvider,
    users: dict[str, int],
    session: Session,
) -> None:
    client = make_app(QUIZAPP_SSO_SELF_ENROL=True).test_client()
    _, response = dance(client, provider, "sub-nina")
    assert response.headers["Location"] == "/staff/"
    session.rollback()
    nina = session.scalars(select(User).where(User.username == "nina")).one()
    assert nina.role is Role.STAFF
    assert audit_actions(session)[0] == (
        "sso_enrolled",
        {"role": "staff", "claim": "preferred_username", "value": "nina"},
    )


def test_a_disabled_account_is_refused(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    alice = session.get(User, users["alice"])
    assert alice is not None
    alice.active = False
    session.commit()
    client = sso_app.test_client()
    _, response = dance(client, provider, "sub-alice")
    assert response.status_code == 403 and "is disabled" in response.get_data(as_text=True)
    assert [r["reason"] for r in refusals(session)] == ["account_disabled"]
    session.refresh(alice)
    assert alice.sso_subject is None


def test_an_account_stays_with_the_university_account_it_was_linked_to(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    _, first = dance(sso_app.test_client(), provider, "sub-alice")
    assert first.status_code == 302
    client = sso_app.test_client()
    _, response = dance(client, provider, "sub-alice-2")
    assert response.status_code == 403
    assert "already linked to another university account" in response.get_data(as_text=True)
    assert [r["reason"] for r in refusals(session)] == ["linked_to_another_identity"]


def test_email_usernames_match_whatever_their_case(
    make_app: Callable[..., Flask],
    provider: OpenIdProvider,
    users: dict[str, int],
    session: Session,
) -> None:
    create_user(session, "dana.doe@uni.example", None, name="Dana Doe")
    client = make_app(QUIZAPP_SSO_USERNAME_CLAIM="email").test_client()
    _, response = dance(client, provider, "sub-dana")
    assert response.status_code == 302 and signed_in_as(client)
    assert audit_actions(session)[0] == (
        "sso_linked",
        {"claim": "email", "value": "Dana.Doe@Uni.Example"},
    )


def test_a_person_without_the_username_claim_is_refused(
    sso_app: Flask, provider: OpenIdProvider, users: dict[str, int], session: Session
) -> None:
    _, response = dance(sso_app.test_client(), provider, "sub-anon")
    assert response.status_code == 403
    assert "did not say who you are" in response.get_data(as_text=True)
    assert [r["reason"] for r in refusals(session)] == ["username_claim_missing"]


def test_password_login_turned_off(
    make_app: Callable[..., Flask],
    provider: OpenIdProvider,
    users: dict[str, int],
    session: Session,
) -> None:
    # A login page loaded before IT turned passwords off, posted after.
    before = make_app().test_client()
    token = Auth(before).csrf("/login")
    app = make_app(QUIZAPP_PASSWORD_LOGIN=False)
    client = app.test_client()
    cookie = before.get_cookie("session")
    assert cookie is not None
    client.set_cookie("session", cookie.value)
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with University account" in page and 'href="/login/sso"' in page
    assert 'type="password"' not in page

    refused = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert refused.status_code == 403
    assert "Signing in with a password is turned off" in refused.get_data(as_text=True)
    assert signed_in_as(client) is None
    assert audit_actions(session) == [
        (
            "login_refused",
            {"reason": "password sign-in is turned off", "username": "alice"},
        )
    ]
    _, response = dance(client, provider, "sub-alice")
    assert response.status_code == 302 and signed_in_as(client)


def test_password_login_cannot_be_turned_off_without_sso(database_url: str) -> None:
    with pytest.raises(RuntimeError, match="nobody could sign in"):
        create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "s",
                "QUIZAPP_DATABASE_URL": database_url,
                "QUIZAPP_PASSWORD_LOGIN": False,
            }
        )


def test_both_ways_are_offered_when_sso_is_on(
    sso_app: Flask, users: dict[str, int], session: Session
) -> None:
    page = sso_app.test_client().get("/login").get_data(as_text=True)
    assert "Sign in with University account" in page and 'type="password"' in page
    assert Auth(sso_app.test_client()).login("alice").status_code == 302


def test_a_provider_that_cannot_be_reached_gives_503(
    make_app: Callable[..., Flask], users: dict[str, int], session: Session
) -> None:
    client = make_app(QUIZAPP_SSO_ISSUER=f"http://127.0.0.1:{free_port()}").test_client()
    response = client.get("/login/sso")
    assert response.status_code == 503
    assert "cannot be reached" in response.get_data(as_text=True)
    assert [r["reason"] for r in refusals(session)] == ["provider_unreachable"]


def test_without_sso_the_endpoints_say_so(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "/login/sso" not in page
    for path in ("/login/sso", "/login/sso/callback?code=x&state=y"):
        response = client.get(path)
        assert response.status_code == 400
        assert "does not use single sign-on" in response.get_data(as_text=True)


def test_claims_from_userinfo_when_the_id_token_has_only_the_protocol_claims(
    make_app: Callable[..., Flask],
    users: dict[str, int],
    session: Session,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Providers that follow OpenID Connect's default keep the profile (username, groups)
    out of the ID token of the code flow: the app asks the userinfo endpoint."""
    conforming = start_provider(
        tmp_path_factory.mktemp("sso-userinfo"),
        _clients(CALLBACK),
        ACCOUNTS,
        conform_id_token_claims=True,
    )
    try:
        app = make_app(QUIZAPP_SSO_ISSUER=conforming.url)
        client = app.test_client()
        _, response = dance(client, conforming, "sub-staff")
        assert response.headers["Location"] == "/staff/"
        _, response = dance(app.test_client(), conforming, "sub-bob")
        assert response.status_code == 403  # the staff claim came from userinfo too
    finally:
        conforming.stop()
