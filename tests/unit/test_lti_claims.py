"""quizapp/domain/lti.py: every launch claim check, one row each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from quizapp.domain import lti
from quizapp.domain.lti import ExpectedLaunch, LtiClaimProblem, check_launch, role_of

NOW = datetime(2027, 1, 18, 11, 0, tzinfo=UTC)
T = int(NOW.timestamp())
ISS = "https://vle.example.ac.uk"
CLIENT = "quizapp-client"
EXPECTED = ExpectedLaunch(ISS, CLIENT, frozenset({"dep-1", "dep-2"}))
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": CLIENT,
        "sub": "user-7",
        "exp": T + 300,
        "iat": T - 5,
        "nonce": "n-1",
        "email": "alice@uni.example",
        lti.MESSAGE_TYPE: "LtiResourceLinkRequest",
        lti.VERSION: "1.3.0",
        lti.DEPLOYMENT_ID: "dep-1",
        lti.RESOURCE_LINK: {"id": "link-1"},
        lti.ROLES: [LEARNER],
        lti.CUSTOM: {"quiz": "quiz1"},
    }
    for name, value in changes.items():
        key = {
            "message_type": lti.MESSAGE_TYPE,
            "version": lti.VERSION,
            "deployment_id": lti.DEPLOYMENT_ID,
            "resource_link": lti.RESOURCE_LINK,
            "roles": lti.ROLES,
            "custom": lti.CUSTOM,
        }.get(name, name)
        if value is DROP:
            base.pop(key, None)
        else:
            base[key] = value
    return base


DROP = object()

REFUSED = [
    ("other issuer", {"iss": "https://evil.example"}, "wrong_issuer"),
    ("no issuer", {"iss": DROP}, "wrong_issuer"),
    ("other audience", {"aud": "another-tool"}, "wrong_audience"),
    ("audience list without us", {"aud": ["a", "b"], "azp": "a"}, "wrong_audience"),
    ("no audience", {"aud": DROP}, "aud_missing"),
    ("audience of the wrong type", {"aud": 7}, "aud_missing"),
    ("several audiences, no azp", {"aud": [CLIENT, "other"]}, "azp_missing"),
    ("several audiences, azp of another", {"aud": [CLIENT, "other"], "azp": "other"}, "wrong_azp"),
    ("azp of another, one audience", {"azp": "other"}, "wrong_azp"),
    ("expired beyond the leeway", {"exp": T - 61}, "expired"),
    ("no exp", {"exp": DROP}, "exp_missing"),
    ("exp as text", {"exp": str(T + 300)}, "exp_missing"),
    ("exp as a boolean", {"exp": True}, "exp_missing"),
    ("issued in the future beyond the leeway", {"iat": T + 61}, "issued_in_future"),
    ("no iat", {"iat": DROP}, "iat_missing"),
    ("no nonce", {"nonce": DROP}, "nonce_missing"),
    ("empty nonce", {"nonce": ""}, "nonce_missing"),
    ("anonymous (no sub)", {"sub": DROP}, "sub_missing"),
    ("deep linking message", {"message_type": "LtiDeepLinkingRequest"}, "wrong_message_type"),
    ("no message type", {"message_type": DROP}, "wrong_message_type"),
    ("LTI 1.1 version", {"version": "1.1"}, "wrong_version"),
    ("unknown deployment", {"deployment_id": "dep-9"}, "unknown_deployment"),
    ("no deployment", {"deployment_id": DROP}, "unknown_deployment"),
    ("no resource link", {"resource_link": DROP}, "resource_link_missing"),
    ("resource link without id", {"resource_link": {"title": "x"}}, "resource_link_missing"),
    ("no roles", {"roles": DROP}, "roles_missing"),
    ("roles not a list", {"roles": INSTRUCTOR}, "roles_missing"),
]


@pytest.mark.parametrize(("case", "changes", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_launches_say_why(case: str, changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(LtiClaimProblem) as refused:
        check_launch(claims(**changes), EXPECTED, NOW)
    assert refused.value.reason == reason, case
    assert refused.value.message


ACCEPTED = [
    ("plain", {}),
    ("audience as a one-element list", {"aud": [CLIENT]}),
    ("several audiences with our azp", {"aud": [CLIENT, "other"], "azp": CLIENT}),
    ("expired within the leeway", {"exp": T - 59}),
    ("issued in the future within the leeway", {"iat": T + 59}),
    ("the other deployment", {"deployment_id": "dep-2"}),
    ("no custom parameters", {"custom": DROP}),
    ("empty roles (a learner)", {"roles": []}),
]


@pytest.mark.parametrize(("case", "changes"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_launches(case: str, changes: dict[str, Any]) -> None:
    launch = check_launch(claims(**changes), EXPECTED, NOW)
    assert launch.sub == "user-7" and launch.nonce == "n-1" and launch.issuer == ISS
    assert launch.resource_link_id == "link-1"


def test_a_launch_reads_what_quizapp_uses() -> None:
    launch = check_launch(claims(name=" Alice A "), EXPECTED, NOW)
    assert launch.role == "learner"
    assert launch.email == "alice@uni.example" and launch.name == "Alice A"
    assert launch.custom == {"quiz": "quiz1"}
    assert launch.deployment_id == "dep-1" and launch.expires_at == T + 300


def test_the_leeway_is_a_parameter() -> None:
    with pytest.raises(LtiClaimProblem, match="expired"):
        check_launch(claims(exp=T - 10), EXPECTED, NOW, leeway=5)


ROLES = [
    ([LEARNER], "learner"),
    ([INSTRUCTOR], "instructor"),
    ([LEARNER, INSTRUCTOR], "instructor"),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"], "instructor"),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"], "instructor"),
    (["Instructor"], "instructor"),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"], "learner"),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"], "learner"),
    (["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"], "learner"),
    (["https://evil.example/#Instructor"], "learner"),
    ([], "learner"),
]  # fmt: skip


@pytest.mark.parametrize(("roles", "role"), ROLES)
def test_roles(roles: list[str], role: str) -> None:
    assert role_of(roles) == role


USERNAMES = [
    ({"preferred_username": " alice "}, "preferred_username", "alice"),
    ({lti.LIS: {"person_sourcedid": "s123"}}, "person_sourcedid", "s123"),
    ({lti.CUSTOM: {"username": "bob"}}, "custom:username", "bob"),
    ({}, "preferred_username", ""),
    ({lti.LIS: "odd"}, "person_sourcedid", ""),
    ({"preferred_username": 7}, "preferred_username", ""),
]


@pytest.mark.parametrize(("given", "name", "value"), USERNAMES)
def test_username_claim(given: dict[str, Any], name: str, value: str) -> None:
    assert lti.username_claim(given, name) == value


AGS = {
    "scope": [lti.AGS_SCORE_SCOPE, lti.AGS_LINEITEM_SCOPE],
    "lineitems": "https://vle.example.ac.uk/ags/course-1/lineitems",
    "lineitem": "https://vle.example.ac.uk/ags/course-1/lineitems/7",
}


def test_the_services_a_launch_offers_are_read() -> None:
    launch = check_launch(
        claims(
            **{
                lti.AGS_ENDPOINT: AGS,
                lti.NRPS_SERVICE: {"context_memberships_url": "https://vle.example.ac.uk/m/1"},
                lti.CONTEXT: {"id": "course-1", "title": "Deep learning"},
                "resource_link": {"id": "link-1", "title": "Quiz 1"},
            }
        ),
        EXPECTED,
        NOW,
    )
    assert launch.grade_service == lti.GradeService(
        AGS["lineitem"], AGS["lineitems"], (lti.AGS_SCORE_SCOPE, lti.AGS_LINEITEM_SCOPE)
    )
    assert launch.grade_service.can_post_scores
    assert launch.memberships_url == "https://vle.example.ac.uk/m/1"
    assert (launch.context_id, launch.context_title) == ("course-1", "Deep learning")
    assert launch.resource_link_title == "Quiz 1"


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        (None, None),
        ("lineitem", None),
        ({"scope": "score", "lineitem": "javascript:alert(1)"}, None),
        ({"lineitem": "https://vle/x" + "y" * 600, "scope": [lti.AGS_SCORE_SCOPE]}, None),
        (
            {"lineitem": "https://vle/li/1", "scope": "not a list"},
            lti.GradeService("https://vle/li/1", "", ()),
        ),
    ],
)
def test_a_malformed_grade_service_claim_is_no_service(
    claim: Any, expected: lti.GradeService | None
) -> None:
    changes = {} if claim is None else {lti.AGS_ENDPOINT: claim}
    launch = check_launch(claims(**changes), EXPECTED, NOW)  # still signs the person in
    assert launch.grade_service == expected
    assert launch.grade_service is None or not launch.grade_service.can_post_scores


def test_without_the_score_scope_no_score_can_be_posted() -> None:
    read_only = {**AGS, "scope": [lti.AGS_LINEITEM_READONLY_SCOPE]}
    launch = check_launch(claims(**{lti.AGS_ENDPOINT: read_only}), EXPECTED, NOW)
    assert launch.grade_service is not None and not launch.grade_service.can_post_scores
    no_item = {**AGS, "lineitem": None}
    launch = check_launch(claims(**{lti.AGS_ENDPOINT: no_item}), EXPECTED, NOW)
    assert launch.grade_service is not None and not launch.grade_service.can_post_scores
