"""Registering VLEs: by staff on the platforms page (through the same
`services/lti.add_platform` as `quizapp lti platform add`), and by LTI Dynamic
Registration 1.0 (1EdTech), where staff paste quizapp's registration URL into the VLE.

Dynamic Registration (spec §3): the VLE opens `/lti/register?openid_configuration=<url>
&registration_token=<token>` in the staff member's browser. quizapp
1. fetches the platform's OpenID configuration (`read_configuration`; bounded, with the
   registration token as bearer, which Canvas requires) and checks it (`check_configuration`):
   its `issuer` must have the configuration URL's origin (scheme, host, port: §3.5.1,
   so a configuration cannot speak for another platform), and it must name the
   authorization, token, JWKS and registration endpoints;
2. shows staff what will be registered; on their confirmation POSTs the tool's client
   registration (`tool_registration`: redirect URIs, login initiation URI, JWKS URI,
   the AGS and NRPS scopes the platform offers, and the LTI tool configuration with the
   domain, target link URI, claims and messages incl. LtiDeepLinkingRequest) to the
   `registration_endpoint` with the registration token as bearer (`register`);
3. stores the returned `client_id` (and `deployment_id`, when the platform made one)
   with `add_platform`, audited with who did it. The page then tells the VLE to close
   its window (`org.imsglobal.lti.close`).

No HTTP request is made while a database transaction is open.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from quizapp.db import end_snapshot
from quizapp.domain.lti import (
    AGS_LINEITEM_READONLY_SCOPE,
    AGS_LINEITEM_SCOPE,
    AGS_SCORE_SCOPE,
    NRPS_SCOPE,
)
from quizapp.models import LtiPlatform, User
from quizapp.services.errors import InvalidInput, NotFound, ServiceError
from quizapp.services.http_json import HttpJsonError, call_json, fetch_json
from quizapp.services.lti import add_platform, deployment_ids

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
AGS_RESULT_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
CANVAS_PRIVACY_LEVEL = "https://canvas.instructure.com/lti/privacy_level"
# What quizapp asks for: marks into the gradebook (AGS) and the course list (NRPS).
WANTED_SCOPES = (
    AGS_LINEITEM_SCOPE,
    AGS_LINEITEM_READONLY_SCOPE,
    AGS_RESULT_SCOPE,
    AGS_SCORE_SCOPE,
    NRPS_SCOPE,
)
# The person claims a launch needs (the e-mail finds the roster's account).
WANTED_CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email")
MAX_CONFIGURATION_BYTES = 200_000
MAX_TOKEN_CHARS = 4000
TOOL_NAME = "quizapp"


class RegistrationRefused(ServiceError):
    """Dynamic registration cannot go on: `message` says why, for the page."""

    status = 400


def _is_web_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    return bool(parts.hostname) and (
        parts.scheme == "https" or (parts.scheme == "http" and loopback)
    )


def origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port or default)


@dataclass(frozen=True)
class PlatformConfiguration:
    """What a platform's OpenID configuration says, as far as registration needs it."""

    url: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    product: str = ""
    version: str = ""
    scopes_supported: tuple[str, ...] = ()
    claims_supported: tuple[str, ...] = ()
    messages_supported: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        host = urllib.parse.urlsplit(self.issuer).hostname or self.issuer
        return f"{self.product.capitalize()} ({host})" if self.product else host

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes to ask for: ours, less those the platform says it lacks."""
        if not self.scopes_supported:
            return WANTED_SCOPES
        return tuple(s for s in WANTED_SCOPES if s in self.scopes_supported)

    @property
    def claims(self) -> tuple[str, ...]:
        if not self.claims_supported:
            return WANTED_CLAIMS
        return tuple(c for c in WANTED_CLAIMS if c in self.claims_supported or c == "iss")


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def check_configuration(document: Mapping[str, Any], url: str) -> PlatformConfiguration:
    """The configuration, or RegistrationRefused naming what is wrong with it."""
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise RegistrationRefused("The VLE's OpenID configuration names no issuer.")
    if origin_of(issuer) != origin_of(url):
        raise RegistrationRefused(
            f"The VLE's configuration says its issuer is {issuer[:200]}, but it was fetched "
            f"from {url[:200]}: the issuer must be on the same site as the configuration "
            "URL (LTI Dynamic Registration §3.5.1), so quizapp refused to register it. "
            "Check the VLE's site address (its wwwroot or domain setting)."
        )
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"):
        value = document.get(name)
        if not isinstance(value, str) or not _is_web_url(value):
            raise RegistrationRefused(
                f"The VLE's OpenID configuration has no usable {name} (an https:// URL)."
            )
        endpoints[name] = value
    lti = document.get(PLATFORM_CONFIGURATION)
    lti = lti if isinstance(lti, dict) else {}
    messages = lti.get("messages_supported")
    message_types = tuple(
        m["type"]
        for m in (messages if isinstance(messages, list) else [])
        if isinstance(m, dict) and isinstance(m.get("type"), str)
    )
    product, version = lti.get("product_family_code"), lti.get("version")
    return PlatformConfiguration(
        url=url,
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        registration_endpoint=endpoints["registration_endpoint"],
        product=product[:100] if isinstance(product, str) else "",
        version=version[:100] if isinstance(version, str) else "",
        scopes_supported=_strings(document.get("scopes_supported")),
        claims_supported=_strings(document.get("claims_supported")),
        messages_supported=message_types,
    )


def _check_token(token: str) -> str:
    if len(token) > MAX_TOKEN_CHARS or any(c.isspace() for c in token):
        raise RegistrationRefused("The registration token from the VLE is malformed.")
    return token


def read_configuration(url: str, token: str = "") -> PlatformConfiguration:
    """Fetch and check the platform's OpenID configuration."""
    if not url or not _is_web_url(url):
        raise RegistrationRefused(
            "The VLE sent no usable openid_configuration URL (an https:// address). Start "
            "the registration again from the VLE."
        )
    headers = {"Authorization": f"Bearer {_check_token(token)}"} if token else {}
    try:
        document = fetch_json(url, headers=headers, max_bytes=MAX_CONFIGURATION_BYTES)
    except HttpJsonError as error:
        raise RegistrationRefused(
            f"quizapp could not read the VLE's OpenID configuration: {error.detail}"
        ) from error
    return check_configuration(document, url)


@dataclass(frozen=True)
class ToolUrls:
    """quizapp's own addresses, as the VLE must call them."""

    login: str
    launch: str
    jwks: str
    name: str = TOOL_NAME
    description: str = "Timed quizzes and exams, marked automatically."

    @property
    def domain(self) -> str:
        parts = urllib.parse.urlsplit(self.launch)
        return parts.netloc


def tool_registration(configuration: PlatformConfiguration, tool: ToolUrls) -> dict[str, Any]:
    """The client registration quizapp POSTs (Dynamic Registration §3.6)."""
    lti_tool: dict[str, Any] = {
        "domain": tool.domain,
        "description": tool.description,
        "target_link_uri": tool.launch,
        "claims": list(configuration.claims),
        "messages": [
            {
                "type": "LtiDeepLinkingRequest",
                "target_link_uri": tool.launch,
                "label": f"Add a {tool.name} quiz",
            }
        ],
    }
    if configuration.product == "canvas":
        lti_tool[CANVAS_PRIVACY_LEVEL] = "public"  # otherwise Canvas sends no e-mail
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": tool.login,
        "redirect_uris": [tool.launch],
        "client_name": tool.name,
        "jwks_uri": tool.jwks,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(configuration.scopes),
        TOOL_CONFIGURATION: lti_tool,
    }


@dataclass(frozen=True)
class Registered:
    platform: LtiPlatform
    client_id: str
    deployments: list[str] = field(default_factory=list)
    scopes: str = ""


def register(
    session: Session,
    *,
    configuration_url: str,
    registration_token: str,
    tool: ToolUrls,
    by: User,
    now: datetime,
) -> Registered:
    """Register quizapp with the platform and store the registration; RegistrationRefused
    (nothing stored) when the platform's configuration or answer is not usable."""
    end_snapshot(session)  # hold nothing while the VLE is asked
    configuration = read_configuration(configuration_url, registration_token)
    body = json.dumps(tool_registration(configuration, tool)).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {_check_token(registration_token)}"
    try:
        answer = call_json(
            configuration.registration_endpoint, method="POST", data=body, headers=headers
        )
    except HttpJsonError as error:
        said = error.answer.get("error_description") or error.answer.get("error") or ""
        raise RegistrationRefused(
            f"The VLE refused quizapp's registration: {error.detail}"
            + (f" ({str(said)[:200]})" if said else "")
        ) from error
    answered = answer.body if isinstance(answer.body, dict) else {}
    client_id = answered.get("client_id")
    if isinstance(client_id, int) and not isinstance(client_id, bool):
        client_id = str(client_id)
    if not isinstance(client_id, str) or not client_id.strip() or len(client_id) > 255:
        raise RegistrationRefused("The VLE's answer to the registration has no client_id.")
    lti_tool = answered.get(TOOL_CONFIGURATION)
    deployment = lti_tool.get("deployment_id") if isinstance(lti_tool, dict) else None
    if isinstance(deployment, int) and not isinstance(deployment, bool):
        deployment = str(deployment)
    deployments = [deployment] if isinstance(deployment, str) and deployment.strip() else []
    try:
        platform = add_platform(
            session,
            actor_id=by.id if by is not None else None,
            now=now,
            source="dynamic_registration",
            issuer=configuration.issuer,
            client_id=client_id,
            auth_login_url=configuration.authorization_endpoint,
            auth_token_url=configuration.token_endpoint,
            jwks_url=configuration.jwks_uri,
            deployments=deployments,
            name=configuration.label[:200],
        )
    except InvalidInput as error:
        raise RegistrationRefused(error.message) from error
    granted = answered.get("scope")
    return Registered(
        platform,
        client_id,
        deployment_ids(session, platform.id),
        granted if isinstance(granted, str) else "",
    )


# --- The platforms page -------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformView:
    platform: LtiPlatform
    deployments: list[str]


def platform_details(session: Session, platform_id: int) -> PlatformView:
    platform = session.get(LtiPlatform, platform_id)
    if platform is None:
        raise NotFound("No such platform.")
    return PlatformView(platform, deployment_ids(session, platform.id))
