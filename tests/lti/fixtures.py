"""LTI test fixtures shared by the launch, service (AGS, NRPS) and deep-linking tests:
a running platform (tests/lti/platform.py), apps with LTI settings, a roster with the
platform registered and a tool key (so the platform can check the tool's client
assertions), and the launch conversation as one call. Loaded for every test as a
pytest plugin (tests/conftest.py), so test modules name the fixtures without importing them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp import create_app
from quizapp.models import AuditEvent, Quiz, Role
from quizapp.services.lti import add_platform, rotate_tool_key, tool_jwks
from quizapp.services.users import create_user
from tests.lti.platform import INSTRUCTOR, Person, Platform, running_platform

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


def register_platform(session: Session, platform: Platform, clock: Any) -> None:
    """The test platform registered with quizapp, with its deployment."""
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
def roster(session: Session, platform: Platform, clock: Any, sample_bank: Any) -> None:
    create_user(session, "alice", None, name="Alice A", email="alice@uni.example")
    create_user(session, "sam", None, name="Sam", email="sam@uni.example", role=Role.STAFF)
    create_user(session, "pat", None, name="Pat Student", email="pat@uni.example")
    register_platform(session, platform, clock)
    rotate_tool_key(session, clock())
    platform.tool_jwks = lambda: tool_jwks(session)


@pytest.fixture
def lti_client(lti_app: Flask, roster: None) -> FlaskClient:
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
