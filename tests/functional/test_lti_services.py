"""What a launch leaves behind for the LTI Advantage services (the course, the link and
its line item, the membership list), and the tool's access to those services: an OAuth
token from the platform's token endpoint by a JWT client assertion the platform checks
against the tool's published keys, kept per process, asked again after a 401."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quizapp.domain.lti import AGS_SCORE_SCOPE, NRPS_SCOPE
from quizapp.models import LtiContext, LtiPlatform, LtiResourceLink, LtiToolKey
from quizapp.services.lti_access import AccessTokens, PlatformServiceError, call_service
from tests.lti.fixtures import ALICE, SAM, launch, quiz_id
from tests.lti.platform import AGS_ENDPOINT, LTI, Platform, Reply, Request


def links(session: Session) -> list[LtiResourceLink]:
    session.rollback()
    return list(session.scalars(select(LtiResourceLink).order_by(LtiResourceLink.id)))


def the_platform(session: Session) -> LtiPlatform:
    return session.scalars(select(LtiPlatform)).one()


def test_a_launch_records_the_course_the_link_and_their_services(lti_client, platform, session):
    response = launch(lti_client, platform, ALICE, custom={"quiz": "quiz1-foundations"})
    assert response.status_code == 302
    [link] = links(session)
    assert link.resource_link_id == "link-1" and link.title == "Quiz 1"
    assert link.quiz_id == quiz_id(session)
    assert link.lineitem_url == platform.url + "/lineitems/1"
    assert link.lineitems_url == platform.url + "/lineitems"
    assert AGS_SCORE_SCOPE in link.ags_scopes
    context = session.get(LtiContext, link.context_id)
    assert context is not None and context.context_id == "course-1"
    assert context.title == "Machine learning" and context.deployment_id == "dep-1"
    assert context.memberships_url == platform.url + "/memberships"


def test_a_later_launch_updates_the_link_without_duplicating_it(lti_client, platform, session):
    launch(lti_client, platform, ALICE, custom={"quiz": "quiz1-foundations"})
    moved = {"scope": [AGS_SCORE_SCOPE], "lineitem": platform.url + "/lineitems/9"}
    # An instructor's launch of the same link, now without the custom parameter and
    # with its line item moved: the quiz stays, the line item follows the platform.
    launch(lti_client, platform, SAM, claims={AGS_ENDPOINT: moved})
    [link] = links(session)
    assert link.lineitem_url == platform.url + "/lineitems/9" and link.lineitems_url == ""
    assert link.quiz_id == quiz_id(session)
    assert session.scalar(select(func.count()).select_from(LtiContext)) == 1


def test_a_launch_without_a_context_or_services_still_records_the_link(
    lti_client, platform, session
):
    from tests.lti.platform import DROP, NRPS_SERVICE

    hooks: dict[str, Any] = {AGS_ENDPOINT: DROP, NRPS_SERVICE: DROP, LTI + "context": DROP}
    assert launch(lti_client, platform, ALICE, claims=hooks).status_code == 302
    [link] = links(session)
    assert link.context_id is None and link.lineitem_url == "" and link.ags_scopes == []


# --- The tool's access to the platform's services -----------------------------------


def echo(platform: Platform) -> None:
    """A service on the platform that says what scopes the caller's token grants."""

    def answer(request: Request) -> Reply:
        scopes = platform.bearer_scopes(request)
        if not scopes:
            return Reply(401, {"error": "invalid_token"})
        return Reply(200, {"scopes": sorted(scopes)})

    platform.routes[("GET", "/echo")] = answer


def test_a_service_call_carries_a_token_the_platform_issued_for_the_tool(
    lti_client, platform, session, clock
):
    echo(platform)
    tokens = AccessTokens()
    answer = call_service(
        session, the_platform(session), platform.url + "/echo", [NRPS_SCOPE], clock(), tokens=tokens
    )
    assert answer.status == 200 and answer.body == {"scopes": [NRPS_SCOPE]}
    again = call_service(
        session, the_platform(session), platform.url + "/echo", [NRPS_SCOPE], clock(), tokens=tokens
    )
    assert again.body == answer.body
    assert platform.token_requests == 1  # the token is kept for the next call


def test_a_revoked_token_is_replaced_once(lti_client, platform, session, clock):
    echo(platform)
    tokens = AccessTokens()
    target = platform.url + "/echo"
    call_service(session, the_platform(session), target, [NRPS_SCOPE], clock(), tokens=tokens)
    platform.tokens.clear()  # the platform forgets every token it gave
    answer = call_service(
        session, the_platform(session), target, [NRPS_SCOPE], clock(), tokens=tokens
    )
    assert answer.body == {"scopes": [NRPS_SCOPE]} and platform.token_requests == 2


def test_a_client_assertion_signed_by_an_unpublished_key_is_refused(
    lti_client, platform, session, clock
):
    echo(platform)
    platform.tool_jwks = lambda: {"keys": []}  # the platform holds none of our keys
    with pytest.raises(PlatformServiceError) as refused:
        call_service(
            session,
            the_platform(session),
            platform.url + "/echo",
            [NRPS_SCOPE],
            clock(),
            tokens=AccessTokens(),
        )
    assert refused.value.status == 401 and "bad signature" in refused.value.detail


def test_without_a_tool_key_nothing_is_asked_and_retrying_cannot_help(
    lti_client, platform, session, clock
):
    session.query(LtiToolKey).delete()
    session.commit()
    with pytest.raises(PlatformServiceError) as refused:
        call_service(
            session,
            the_platform(session),
            platform.url + "/echo",
            [NRPS_SCOPE],
            clock(),
            tokens=AccessTokens(),
        )
    assert not refused.value.retry and "keys rotate" in refused.value.detail
    assert platform.token_requests == 0


def test_a_service_error_says_the_status(lti_client, platform, session, clock):
    platform.routes[("GET", "/broken")] = lambda request: Reply(500, {"error": "boom"})
    with pytest.raises(PlatformServiceError) as failed:
        call_service(
            session,
            the_platform(session),
            platform.url + "/broken",
            [NRPS_SCOPE],
            clock(),
            tokens=AccessTokens(),
        )
    assert failed.value.status == 500 and failed.value.retry
