"""LTI 1.3 launch claims: what a verified ID token must say before quizapp acts on it.

Pure: the claims come in already decoded and their signature verified (services/lti.py);
the expected platform and the clock are parameters. Each failure is an `LtiClaimProblem`
with a short `reason` for the audit log and a sentence for the page.

Checked (1EdTech Security Framework 5.1.3, LTI Core 5.3): `iss` is the platform's issuer;
`aud` is our client id (a string, or a list holding it; with several audiences `azp` is
required and must be our client id); `exp` not passed and `iat` not in the future, each
within the leeway; a `nonce` (its single use is the service's job); `sub` (the person;
anonymous launches cannot sign anyone in); version `1.3.0`, a known deployment id, a
roles list; and the message type: `LtiResourceLinkRequest` with a resource link id, or
`LtiDeepLinkingRequest` (Deep Linking 2.0 §4.4) with its settings. Those common checks
are `_check_common`, one place for both kinds.

Deep Linking (an instructor picks quizzes in the VLE's "add content" flow): the request's
`deep_linking_settings` must name a return URL and accept `ltiResourceLink` items;
`deep_linking_response` builds the claims of the answer (the tool signs them), one
`ltiResourceLink` per quiz with its custom parameter and its line item.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI + "message_type"
VERSION = LTI + "version"
DEPLOYMENT_ID = LTI + "deployment_id"
ROLES = LTI + "roles"
CUSTOM = LTI + "custom"
RESOURCE_LINK = LTI + "resource_link"
TARGET_LINK_URI = LTI + "target_link_uri"
LIS = LTI + "lis"
CONTEXT = LTI + "context"
# The services a launch may offer (LTI AGS 2.0 §3.1, NRPS 2.0 §3.6.1): where the link's
# line item (gradebook column) is and what the tool may do there; where the course's
# membership list is.
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_SERVICE = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
AGS_LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
AGS_LINEITEM_READONLY_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MAX_URL_LENGTH = 500  # what the tables hold; a longer service URL is treated as absent

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
MESSAGE_TYPES = (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST)
LTI_VERSION = "1.3.0"
DEFAULT_LEEWAY_SECONDS = 60

# Deep Linking 2.0 (§4.4 the request's settings, §4.5 the response's claims).
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
DEEP_LINKING_SETTINGS = DL + "deep_linking_settings"
CONTENT_ITEMS = DL + "content_items"
DL_DATA = DL + "data"
DL_MSG = DL + "msg"
DL_LOG = DL + "log"
DL_ERRORMSG = DL + "errormsg"
DL_ERRORLOG = DL + "errorlog"
RESOURCE_LINK_ITEM = "ltiResourceLink"
LINE_ITEM_TAG = "quizapp"  # marks quizapp's line items among the course's columns
DEEP_LINKING_RESPONSE_SECONDS = 600  # the response's `exp`: the platform reads it at once
# The settings are kept in the signed session cookie between the launch and the picker's
# answer (a browser keeps about 4 KB): a return URL or `data` longer than this is refused
# with a clear page rather than losing the cookie. Real platforms send a few hundred.
MAX_RETURN_URL_LENGTH = 2048
MAX_DATA_LENGTH = 1500

# LIS role URIs (LTI Core, appendix A) that make a launch an instructor's: the context
# (course membership) role and the institution role, plus the short form LTI 1.1 used
# and some platforms still send. Sub-roles (`membership/Instructor#TeachingAssistant`)
# are the instructor's too. Everything else (Learner, Mentor, ...) is a learner's.
INSTRUCTOR_ROLES = frozenset(
    {
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor",
        "Instructor",
    }
)
INSTRUCTOR_SUBROLE_PREFIX = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#"

Role = Literal["instructor", "learner"]


@dataclass(frozen=True)
class GradeService:
    """The AGS endpoint claim: the link's own line item (may be absent when the platform
    only lets the tool manage line items itself), the context's line item container,
    and the scopes granted."""

    lineitem: str
    lineitems: str
    scopes: tuple[str, ...]

    @property
    def can_post_scores(self) -> bool:
        return bool(self.lineitem) and AGS_SCORE_SCOPE in self.scopes


class LtiClaimProblem(Exception):
    """A launch that must be refused: `reason` for the audit log, `message` for people."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ExpectedLaunch:
    """What this platform's launches must say."""

    issuer: str
    client_id: str
    deployment_ids: Collection[str]


@dataclass(frozen=True)
class DeepLinkingSettings:
    """What a deep-linking request asks of the answer (Deep Linking 2.0 §4.4.1): where to
    post it, whether several items may come back, whether the platform makes line items
    (None: it did not say), and the opaque `data` to echo (`has_data`: it was sent)."""

    return_url: str
    accept_multiple: bool = False
    accept_lineitem: bool | None = None
    data: Any = None
    has_data: bool = False
    title: str = ""
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON, for keeping between the launch and the answer."""
        return {
            "return_url": self.return_url,
            "accept_multiple": self.accept_multiple,
            "accept_lineitem": self.accept_lineitem,
            "data": self.data,
            "has_data": self.has_data,
            "title": self.title,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DeepLinkingSettings:
        accept_lineitem = raw.get("accept_lineitem")
        return cls(
            return_url=str(raw["return_url"]),
            accept_multiple=raw.get("accept_multiple") is True,
            accept_lineitem=accept_lineitem if isinstance(accept_lineitem, bool) else None,
            data=raw.get("data"),
            has_data=raw.get("has_data") is True,
            title=str(raw.get("title") or ""),
            text=str(raw.get("text") or ""),
        )


@dataclass(frozen=True)
class Launch:
    """The parts of a checked launch quizapp uses. A deep-linking request has no
    resource link (`resource_link_id` is "") and has `deep_linking`."""

    issuer: str
    sub: str
    nonce: str
    deployment_id: str
    role: Role
    roles: tuple[str, ...]
    resource_link_id: str
    expires_at: float  # `exp`, seconds since the epoch
    message_type: str = RESOURCE_LINK_REQUEST
    deep_linking: DeepLinkingSettings | None = None
    email: str = ""
    name: str = ""
    custom: Mapping[str, str] = field(default_factory=dict)
    claims: Mapping[str, Any] = field(default_factory=dict)
    context_id: str = ""
    context_title: str = ""
    resource_link_title: str = ""
    grade_service: GradeService | None = None
    memberships_url: str = ""  # NRPS: the course's membership list


def role_of(roles: Collection[str]) -> Role:
    """ "instructor" when any role is an instructor's (LIS membership or institution
    Instructor, or one of its sub-roles), otherwise "learner"."""
    for role in roles:
        if role in INSTRUCTOR_ROLES or role.startswith(INSTRUCTOR_SUBROLE_PREFIX):
            return "instructor"
    return "learner"


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LtiClaimProblem(
            f"{name}_missing", f"The launch has no valid '{name}' time: start again from the VLE."
        )
    return float(value)


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value if isinstance(value, str) else ""


def _service_url(value: Any) -> str:
    """A service URL from a claim, or "" when it is not a usable http(s) URL."""
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        return ""
    return value if value.startswith(("https://", "http://")) else ""


def grade_service(claims: Mapping[str, Any]) -> GradeService | None:
    """The AGS endpoint claim, read leniently: a malformed claim is no service (the
    launch still signs the person in; marks then stay in quizapp's CSV)."""
    raw = claims.get(AGS_ENDPOINT)
    if not isinstance(raw, dict):
        return None
    scopes = raw.get("scope")
    scope_list = tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else ()
    service = GradeService(
        _service_url(raw.get("lineitem")), _service_url(raw.get("lineitems")), scope_list
    )
    return service if service.lineitem or service.lineitems else None


def memberships_url(claims: Mapping[str, Any]) -> str:
    raw = claims.get(NRPS_SERVICE)
    return _service_url(raw.get("context_memberships_url")) if isinstance(raw, dict) else ""


def _part(claims: Mapping[str, Any], claim: str, name: str, limit: int = 255) -> str:
    raw = claims.get(claim)
    value = raw.get(name) if isinstance(raw, dict) else None
    return value.strip()[:limit] if isinstance(value, str) else ""


def check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise LtiClaimProblem("aud_missing", "The launch names no audience.")
    if client_id not in audiences:
        raise LtiClaimProblem(
            "wrong_audience", "The launch was meant for another tool, not quizapp."
        )
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise LtiClaimProblem(
            "azp_missing", "The launch names several audiences but no authorised party."
        )
    if azp is not None and azp != client_id:
        raise LtiClaimProblem(
            "wrong_azp", "The launch was authorised for another tool, not quizapp."
        )


def check_times(claims: Mapping[str, Any], now: datetime, leeway: float) -> float:
    """`exp` and `iat` against the server's clock; returns `exp`."""
    moment = now.timestamp()
    exp = _number(claims, "exp")
    iat = _number(claims, "iat")
    if exp + leeway < moment:
        raise LtiClaimProblem(
            "expired", "The launch has expired (or the clocks disagree): start again from the VLE."
        )
    if iat - leeway > moment:
        raise LtiClaimProblem(
            "issued_in_future",
            "The launch was issued in the future (the VLE's clock or ours is wrong).",
        )
    return exp


def _check_common(
    claims: Mapping[str, Any], expected: ExpectedLaunch, now: datetime, leeway: float
) -> tuple[float, str, str, str, list[str]]:
    """The checks every message takes, whatever its type; returns
    (exp, nonce, sub, deployment id, roles)."""
    if claims.get("iss") != expected.issuer:
        raise LtiClaimProblem("wrong_issuer", "The launch came from another platform.")
    check_audience(claims, expected.client_id)
    exp = check_times(claims, now, leeway)
    nonce = _text(claims, "nonce")
    if not nonce:
        raise LtiClaimProblem("nonce_missing", "The launch carries no nonce.")
    sub = _text(claims, "sub")
    if not sub:
        raise LtiClaimProblem(
            "sub_missing", "The VLE did not say who you are (an anonymous launch)."
        )
    if claims.get(MESSAGE_TYPE) not in MESSAGE_TYPES:
        raise LtiClaimProblem(
            "wrong_message_type",
            "The VLE sent a kind of message quizapp does not take "
            f"({str(claims.get(MESSAGE_TYPE))[:60]!r}).",
        )
    if claims.get(VERSION) != LTI_VERSION:
        raise LtiClaimProblem(
            "wrong_version",
            f"The VLE speaks LTI version {str(claims.get(VERSION))[:20]!r}, not 1.3.0.",
        )
    deployment_id = _text(claims, DEPLOYMENT_ID)
    if not deployment_id or deployment_id not in expected.deployment_ids:
        raise LtiClaimProblem(
            "unknown_deployment",
            "This course's link to quizapp is not registered here (unknown deployment id): "
            "ask IT to register it.",
        )
    raw_roles = claims.get(ROLES)
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise LtiClaimProblem("roles_missing", "The launch does not say what your role is.")
    return exp, nonce, sub, deployment_id, raw_roles


def check_deep_linking_settings(claims: Mapping[str, Any]) -> DeepLinkingSettings:
    """The `deep_linking_settings` claim of an LtiDeepLinkingRequest (§4.4.1): a return
    URL (http(s)), `accept_types` holding `ltiResourceLink` (the only kind quizapp
    makes); `accept_multiple`, `accept_lineitem`, `data` as sent."""
    raw = claims.get(DEEP_LINKING_SETTINGS)
    if not isinstance(raw, dict):
        raise LtiClaimProblem(
            "deep_linking_settings_missing",
            "The VLE asked to pick content but did not say where to send it back.",
        )
    return_url = raw.get("deep_link_return_url")
    if (
        not isinstance(return_url, str)
        or not return_url.startswith(("https://", "http://"))
        or len(return_url) > MAX_RETURN_URL_LENGTH
    ):
        raise LtiClaimProblem(
            "deep_link_return_url_invalid",
            "The VLE asked to pick content but gave no usable address to send it back to.",
        )
    accept_types = raw.get("accept_types")
    if not isinstance(accept_types, list) or RESOURCE_LINK_ITEM not in accept_types:
        raise LtiClaimProblem(
            "resource_links_not_accepted",
            "This place in the VLE does not take links to a tool's activities (LTI resource "
            "links), which is what quizapp adds: use the VLE's 'add an external tool' or "
            "'add activity' menu instead.",
        )
    has_data = "data" in raw
    data = raw.get("data")
    if has_data and len(json.dumps(data)) > MAX_DATA_LENGTH:
        raise LtiClaimProblem(
            "deep_linking_data_too_long",
            "The VLE's content selection request carries more data than quizapp keeps "
            f"({MAX_DATA_LENGTH} characters): tell IT (docs/lti.md).",
        )
    accept_lineitem = raw.get("accept_lineitem")
    title, text = raw.get("title"), raw.get("text")
    return DeepLinkingSettings(
        return_url=return_url,
        accept_multiple=raw.get("accept_multiple") is True,
        accept_lineitem=accept_lineitem if isinstance(accept_lineitem, bool) else None,
        data=data,
        has_data=has_data,
        title=title.strip()[:255] if isinstance(title, str) else "",
        text=text.strip()[:1000] if isinstance(text, str) else "",
    )


def check_launch(
    claims: Mapping[str, Any],
    expected: ExpectedLaunch,
    now: datetime,
    leeway: float = DEFAULT_LEEWAY_SECONDS,
) -> Launch:
    """The launch these verified claims describe (a resource link launch or a
    deep-linking request), or LtiClaimProblem."""
    exp, nonce, sub, deployment_id, raw_roles = _check_common(claims, expected, now, leeway)
    message_type = str(claims.get(MESSAGE_TYPE))
    link_id = ""
    deep_linking = None
    if message_type == RESOURCE_LINK_REQUEST:
        link = claims.get(RESOURCE_LINK)
        found = link.get("id") if isinstance(link, dict) else None
        if not isinstance(found, str) or not found:
            raise LtiClaimProblem("resource_link_missing", "The launch names no resource link.")
        link_id = found
    else:
        deep_linking = check_deep_linking_settings(claims)
    raw_custom = claims.get(CUSTOM)
    custom = (
        {k: v for k, v in raw_custom.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(raw_custom, dict)
        else {}
    )
    return Launch(
        issuer=expected.issuer,
        sub=sub,
        nonce=nonce,
        deployment_id=deployment_id,
        role=role_of(raw_roles),
        roles=tuple(raw_roles),
        resource_link_id=link_id,
        expires_at=exp,
        message_type=message_type,
        deep_linking=deep_linking,
        email=_text(claims, "email").strip(),
        name=_text(claims, "name").strip(),
        custom=custom,
        claims=dict(claims),
        context_id=_part(claims, CONTEXT, "id"),
        context_title=_part(claims, CONTEXT, "title"),
        resource_link_title=_part(claims, RESOURCE_LINK, "title") if link_id else "",
        grade_service=grade_service(claims),
        memberships_url=memberships_url(claims),
    )


# --- The deep-linking response -------------------------------------------------------


@dataclass(frozen=True)
class LinkedQuiz:
    """A quiz the instructor picked, as the VLE's link and gradebook column describe it."""

    key: str
    title: str
    text: str
    max_mark: Fraction


def _json_number(value: Fraction) -> int | float:
    return value.numerator if value.denominator == 1 else float(value)


def resource_link_item(
    quiz: LinkedQuiz, launch_url: str, *, line_item: bool = True
) -> dict[str, Any]:
    """One `ltiResourceLink` content item (§3.1): the link opens the quiz through its
    custom parameter `quiz`; its line item (the gradebook column) is out of the quiz's
    maximum mark.

    No `available` or `submission` window: the VLE would enforce it itself, and a
    student whose close is later (an accommodation, an override, a reopened attempt)
    would find the link locked while quizapp still lets them answer. quizapp's timing
    rules are the one place that decides when a student may work."""
    item: dict[str, Any] = {
        "type": RESOURCE_LINK_ITEM,
        "title": quiz.title,
        "url": launch_url,
        "custom": {"quiz": quiz.key},
    }
    if quiz.text.strip():
        item["text"] = quiz.text.strip()[:1000]
    if line_item:
        item["lineItem"] = {
            "scoreMaximum": _json_number(quiz.max_mark),
            "label": quiz.title,
            "resourceId": quiz.key,
            "tag": LINE_ITEM_TAG,
        }
    return item


def deep_linking_response(
    settings: DeepLinkingSettings,
    quizzes: Sequence[LinkedQuiz],
    *,
    client_id: str,
    platform_issuer: str,
    deployment_id: str,
    launch_url: str,
    now: datetime,
    nonce: str,
    msg: str = "",
    lifetime_seconds: int = DEEP_LINKING_RESPONSE_SECONDS,
) -> dict[str, Any]:
    """The claims of an LtiDeepLinkingResponse (§4.5) carrying `quizzes` (none: the
    instructor cancelled; `msg` tells the platform's user). ValueError when the request
    takes one item and more were picked."""
    if len(quizzes) > 1 and not settings.accept_multiple:
        raise ValueError("This VLE takes one quiz at a time here: pick one.")
    moment = int(now.timestamp())
    line_items = settings.accept_lineitem is not False  # False: the platform ignores them
    claims: dict[str, Any] = {
        "iss": client_id,
        "aud": platform_issuer,
        "iat": moment,
        "exp": moment + lifetime_seconds,
        "nonce": nonce,
        MESSAGE_TYPE: DEEP_LINKING_RESPONSE,
        VERSION: LTI_VERSION,
        DEPLOYMENT_ID: deployment_id,
        CONTENT_ITEMS: [resource_link_item(q, launch_url, line_item=line_items) for q in quizzes],
    }
    if settings.has_data:
        claims[DL_DATA] = settings.data
    if msg:
        claims[DL_MSG] = msg
    return claims


def username_claim(claims: Mapping[str, Any], name: str) -> str:
    """The username-like value the roster is matched on: a top-level claim
    (`preferred_username`), `person_sourcedid` from the LIS claim, or `custom:<key>`
    for a custom parameter the VLE fills (e.g. `$User.username` in Canvas)."""
    if name == "person_sourcedid":
        lis = claims.get(LIS)
        value = lis.get("person_sourcedid") if isinstance(lis, dict) else None
    elif name.startswith("custom:"):
        custom = claims.get(CUSTOM)
        value = custom.get(name[len("custom:") :]) if isinstance(custom, dict) else None
    else:
        value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""
