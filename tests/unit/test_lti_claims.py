"""quizapp/domain/lti.py: every launch claim check, one row each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from fractions import Fraction
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
    (
        "a message type quizapp does not take",
        {"message_type": "LtiSubmissionReviewRequest"},
        "wrong_message_type",
    ),
    (
        "deep linking message without its settings",
        {"message_type": "LtiDeepLinkingRequest"},
        "deep_linking_settings_missing",
    ),
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


# --- Deep Linking 2.0 -------------------------------------------------------------------

RETURN_URL = "https://vle.example.ac.uk/deep_link_return?course=4"
SETTINGS = {
    "deep_link_return_url": RETURN_URL,
    "accept_types": ["link", "ltiResourceLink"],
    "accept_presentation_document_targets": ["iframe", "window"],
    "accept_multiple": True,
    "accept_lineitem": True,
    "data": "csrf-token-of-the-vle",
}


def deep_linking(settings: Any = None, **changes: Any) -> dict[str, Any]:
    """A deep-linking request: no resource link, the settings claim instead."""
    body = claims(message_type="LtiDeepLinkingRequest", resource_link=DROP, roles=[INSTRUCTOR])
    if settings is not DROP:
        body[lti.DEEP_LINKING_SETTINGS] = SETTINGS if settings is None else settings
    body.update(changes)
    return body


DEEP_LINKING_REFUSED = [
    ("no settings", DROP, "deep_linking_settings_missing"),
    ("settings not an object", "settings", "deep_linking_settings_missing"),
    ("no return URL", {**SETTINGS, "deep_link_return_url": DROP}, "deep_link_return_url_invalid"),
    ("return URL not http(s)", {**SETTINGS, "deep_link_return_url": "javascript:alert(1)"}, "deep_link_return_url_invalid"),
    ("return URL absurdly long", {**SETTINGS, "deep_link_return_url": RETURN_URL + "x" * 2100}, "deep_link_return_url_invalid"),
    ("only plain links accepted", {**SETTINGS, "accept_types": ["link", "file"]}, "resource_links_not_accepted"),
    ("accept_types missing", {**SETTINGS, "accept_types": DROP}, "resource_links_not_accepted"),
    ("accept_types a string", {**SETTINGS, "accept_types": "ltiResourceLink"}, "resource_links_not_accepted"),
    ("data too long to keep", {**SETTINGS, "data": "d" * 1600}, "deep_linking_data_too_long"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "settings", "reason"), DEEP_LINKING_REFUSED, ids=[r[0] for r in DEEP_LINKING_REFUSED]
)
def test_refused_deep_linking_requests_say_why(case: str, settings: Any, reason: str) -> None:
    if isinstance(settings, dict):
        settings = {k: v for k, v in settings.items() if v is not DROP}
    with pytest.raises(LtiClaimProblem) as refused:
        check_launch(deep_linking(settings), EXPECTED, NOW)
    assert refused.value.reason == reason, case
    assert refused.value.message


@pytest.mark.parametrize(
    ("case", "changes", "reason"),
    [
        ("expired", {"exp": T - 61}, "expired"),
        ("other audience", {"aud": "another-tool"}, "wrong_audience"),
        ("unknown deployment", {lti.DEPLOYMENT_ID: "dep-9"}, "unknown_deployment"),
        ("no nonce", {"nonce": ""}, "nonce_missing"),
        ("LTI 1.1 version", {lti.VERSION: "1.1"}, "wrong_version"),
        ("no roles", {lti.ROLES: "Instructor"}, "roles_missing"),
    ],
)
def test_a_deep_linking_request_takes_every_common_check(
    case: str, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(LtiClaimProblem) as refused:
        check_launch(deep_linking(**changes), EXPECTED, NOW)
    assert refused.value.reason == reason, case


def test_a_deep_linking_request_reads_its_settings() -> None:
    launch = check_launch(deep_linking(), EXPECTED, NOW)
    assert launch.message_type == "LtiDeepLinkingRequest"
    assert launch.resource_link_id == "" and launch.role == "instructor"
    assert launch.deep_linking == lti.DeepLinkingSettings(
        return_url=RETURN_URL,
        accept_multiple=True,
        accept_lineitem=True,
        data="csrf-token-of-the-vle",
        has_data=True,
    )
    assert lti.DeepLinkingSettings.from_dict(launch.deep_linking.as_dict()) == launch.deep_linking
    # A resource link launch has no deep-linking settings.
    assert check_launch(claims(), EXPECTED, NOW).deep_linking is None


def test_deep_linking_settings_defaults_when_left_out() -> None:
    minimal = {"deep_link_return_url": RETURN_URL, "accept_types": ["ltiResourceLink"]}
    settings = check_launch(deep_linking(minimal), EXPECTED, NOW).deep_linking
    assert settings is not None
    assert not settings.accept_multiple and settings.accept_lineitem is None
    assert not settings.has_data and settings.data is None
    # `data` of any JSON shape is echoed as it came, even null.
    settings = check_launch(deep_linking({**minimal, "data": None}), EXPECTED, NOW).deep_linking
    assert settings is not None and settings.has_data and settings.data is None


QUIZ_1 = lti.LinkedQuiz(
    key="quiz1-foundations",
    title="Quiz 1: Foundations",
    text="  Vectors and matrices.  ",
    max_mark=Fraction(12),
)
QUIZ_2 = lti.LinkedQuiz(key="quiz2", title="Quiz 2", text="", max_mark=Fraction(15, 2))
LAUNCH_URL = "https://quiz.uni.example/lti/launch"


def respond(settings: lti.DeepLinkingSettings, quizzes: list[lti.LinkedQuiz], **kw: Any) -> Any:
    return lti.deep_linking_response(
        settings,
        quizzes,
        client_id=CLIENT,
        platform_issuer=ISS,
        deployment_id="dep-1",
        launch_url=LAUNCH_URL,
        now=NOW,
        nonce="fresh-nonce",
        **kw,
    )


def test_the_deep_linking_response_carries_one_resource_link_per_quiz() -> None:
    settings = lti.DeepLinkingSettings(RETURN_URL, accept_multiple=True, data="d-1", has_data=True)
    response = respond(settings, [QUIZ_1, QUIZ_2])
    assert response["iss"] == CLIENT and response["aud"] == ISS
    assert response["iat"] == T and response["exp"] == T + lti.DEEP_LINKING_RESPONSE_SECONDS
    assert response["nonce"] == "fresh-nonce"
    assert response[lti.MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert response[lti.VERSION] == "1.3.0" and response[lti.DEPLOYMENT_ID] == "dep-1"
    assert response[lti.DL_DATA] == "d-1" and lti.DL_MSG not in response
    first, second = response[lti.CONTENT_ITEMS]
    assert first == {
        "type": "ltiResourceLink",
        "title": "Quiz 1: Foundations",
        "text": "Vectors and matrices.",
        "url": LAUNCH_URL,
        "custom": {"quiz": "quiz1-foundations"},
        "lineItem": {
            "scoreMaximum": 12,
            "label": "Quiz 1: Foundations",
            "resourceId": "quiz1-foundations",
            "tag": "quizapp",
        },
    }
    # No window at all (the VLE would lock the link at a close that is not everyone's);
    # no description: no text; a fractional maximum stays exact enough.
    assert "available" not in second and "submission" not in second
    assert "text" not in second and second["lineItem"]["scoreMaximum"] == 7.5
    assert json.loads(json.dumps(response)) == response  # plain JSON, ready to sign


def test_data_is_echoed_only_when_sent_and_line_items_only_when_wanted() -> None:
    plain = respond(lti.DeepLinkingSettings(RETURN_URL), [QUIZ_1])
    assert lti.DL_DATA not in plain and "lineItem" in plain[lti.CONTENT_ITEMS][0]
    ignored = respond(lti.DeepLinkingSettings(RETURN_URL, accept_lineitem=False), [QUIZ_1])
    assert "lineItem" not in ignored[lti.CONTENT_ITEMS][0]
    null_data = respond(lti.DeepLinkingSettings(RETURN_URL, data=None, has_data=True), [QUIZ_1])
    assert null_data[lti.DL_DATA] is None


def test_a_cancelled_pick_is_an_empty_response_with_a_message() -> None:
    settings = lti.DeepLinkingSettings(RETURN_URL, data={"k": 1}, has_data=True)
    response = respond(settings, [], msg="Nothing was added.")
    assert response[lti.CONTENT_ITEMS] == [] and response[lti.DL_MSG] == "Nothing was added."
    assert response[lti.DL_DATA] == {"k": 1}


def test_one_quiz_only_when_the_platform_takes_one() -> None:
    single = lti.DeepLinkingSettings(RETURN_URL, accept_multiple=False)
    assert len(respond(single, [QUIZ_1])[lti.CONTENT_ITEMS]) == 1
    with pytest.raises(ValueError, match="one quiz"):
        respond(single, [QUIZ_1, QUIZ_2])
