"""Deep Linking 2.0 on the test platform (tests/lti/platform.py): the request and the
return URL, written from the specification (LTI Deep Linking 2.0 §4.4, §4.5).

- `request_claims(...)`: the `claims=` overrides that turn the platform's resource link
  launch into an LtiDeepLinkingRequest (message type, no resource link, the
  `deep_linking_settings` claim with the return URL on the platform).
- `ReturnUrl(platform)`: installs `POST /deep_link_return` in the platform's route
  table. It verifies the answer as a platform must: the `JWT` form field signed by a key
  of the tool's published set (`platform.tool_jwks()`) named by its `kid`, `iss` = the
  tool's client id, `aud` = the platform's issuer, `exp`/`iat` sane, a nonce never seen
  before, message type LtiDeepLinkingResponse, version 1.3.0, the deployment, and `data`
  exactly as sent. Good answers are kept in `received`, refusals in `refused`.
- `post_back(page)`: what the browser does with the tool's self-submitting form.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.lti.platform import DROP, LTI, Platform, Reply, Request

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
SETTINGS = DL + "deep_linking_settings"
CONTENT_ITEMS = DL + "content_items"
DATA = DL + "data"
MSG = DL + "msg"
RETURN_PATH = "/deep_link_return"
SENT_DATA = "vle-opaque-7f3a"  # what the platform sends as `data` unless told otherwise
ABSENT = object()  # in `data=`: the request carries no `data`


def request_claims(
    platform: Platform,
    *,
    accept_multiple: bool = True,
    accept_types: tuple[str, ...] = ("link", "ltiResourceLink"),
    accept_lineitem: bool | None = True,
    data: Any = SENT_DATA,
    **changes: Any,
) -> dict[str, Any]:
    """Overrides for `Platform.id_token`/`authorize` making an LtiDeepLinkingRequest."""
    settings: dict[str, Any] = {
        "deep_link_return_url": platform.url + RETURN_PATH,
        "accept_types": list(accept_types),
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_multiple": accept_multiple,
        "auto_create": True,
        "title": "Add quizapp content",
    }
    if accept_lineitem is not None:
        settings["accept_lineitem"] = accept_lineitem
    if data is not ABSENT:
        settings["data"] = data
    return {
        LTI + "message_type": "LtiDeepLinkingRequest",
        LTI + "resource_link": DROP,
        LTI + "target_link_uri": "http://localhost/lti/launch",
        SETTINGS: settings,
        **changes,
    }


@dataclass
class ReturnUrl:
    """The platform's deep-linking return URL, checking what the tool posts to it."""

    platform: Platform
    data: Any = SENT_DATA  # what the answer must echo (ABSENT: no `data` claim at all)
    deployment_id: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _nonces: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.deployment_id = self.deployment_id or self.platform.deployment_id
        self.platform.routes[("POST", RETURN_PATH)] = self.answer

    @property
    def url(self) -> str:
        return self.platform.url + RETURN_PATH

    def answer(self, request: Request) -> Reply:
        problem = self._problem(request.form().get("JWT", ""))
        if problem:
            self.refused.append(problem)
            return Reply(400, {"error": problem})
        return Reply(200, {"ok": True})

    def _problem(self, token: str) -> str:
        if not token or self.platform.tool_jwks is None:
            return "no JWT"
        try:
            decoded = jwt.decode(token, KeySet.import_key_set(self.platform.tool_jwks()))
        except (JoseError, ValueError) as error:
            return f"signature: {error}"
        header, claims = dict(decoded.header), dict(decoded.claims)
        now = self.platform.clock().timestamp()
        checks = {
            "kid": bool(header.get("kid")) and header.get("alg") == "RS256",
            "iss": claims.get("iss") == self.platform.client_id,
            "aud": claims.get("aud") == self.platform.issuer
            or claims.get("aud") == [self.platform.issuer],
            "exp": isinstance(claims.get("exp"), int) and claims["exp"] > now,
            "iat": isinstance(claims.get("iat"), int) and claims["iat"] <= now + 60,
            "nonce": bool(claims.get("nonce")) and claims.get("nonce") not in self._nonces,
            "message_type": claims.get(LTI + "message_type") == "LtiDeepLinkingResponse",
            "version": claims.get(LTI + "version") == "1.3.0",
            "deployment": claims.get(LTI + "deployment_id") == self.deployment_id,
            "data": (DATA not in claims)
            if self.data is ABSENT
            else (DATA in claims and claims[DATA] == self.data),
            "content_items": isinstance(claims.get(CONTENT_ITEMS, []), list),
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            return "claims: " + ", ".join(failed)
        self._nonces.add(claims["nonce"])
        self.received.append(claims)
        self.headers.append(header)
        return ""

    @property
    def items(self) -> list[dict[str, Any]]:
        """The content items of the last answer received."""
        assert self.received, f"nothing received (refused: {self.refused})"
        items: list[dict[str, Any]] = self.received[-1].get(CONTENT_ITEMS, [])
        return items


@dataclass(frozen=True)
class SelfSubmittingForm:
    action: str
    fields: dict[str, str]


def form_of(page: str) -> SelfSubmittingForm:
    """The tool's self-submitting form: where it posts and what."""
    found = re.search(r"<form\b[^>]*data-lti-auto-submit[^>]*>(.*?)</form>", page, re.S)
    assert found, "no self-submitting form on the page"
    action = re.search(r'action="([^"]*)"', found.group(0))
    assert action, "the form has no action"
    fields = {
        unescape(name): unescape(value)
        for name, value in re.findall(
            r'<input\b[^>]*name="([^"]+)"[^>]*value="([^"]*)"', found.group(1)
        )
    }
    return SelfSubmittingForm(unescape(action.group(1)), fields)


def post_back(page: str) -> int:
    """The browser submits the form to the platform; the platform's status."""
    form = form_of(page)
    body = urllib.parse.urlencode(form.fields).encode()
    request = urllib.request.Request(form.action, data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
