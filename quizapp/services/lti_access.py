"""Calling a platform's LTI Advantage services (AGS scores, NRPS memberships) as the
tool: an OAuth 2.0 access token from the platform's token endpoint by the client
credentials grant with a JWT client assertion signed by the tool's own key (1EdTech
Security Framework 1.0 §4.1), then bounded JSON requests with it.

Tokens are kept per process until shortly before they expire: a drain of the score
outbox posts many scores with one token, and each process asks at most once an hour per
platform and scope set. A token the platform refuses (401) is dropped and asked for
again once.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy.orm import Session

from quizapp.models import LtiPlatform
from quizapp.services.http_json import HttpJsonError, JsonAnswer, call_json, fetch_json

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 300
TOKEN_MARGIN_SECONDS = 60  # ask again this long before the platform says it expires
MAX_TOKEN_SECONDS = 3600  # a platform that says "a year" is asked again within the hour


class PlatformServiceError(Exception):
    """The platform's service could not be used: `detail` for staff and the log,
    `status` when the platform answered with an HTTP error, `retry` False when asking
    again cannot help (no tool key, a scope not granted)."""

    def __init__(self, detail: str, status: int | None = None, retry: bool = True):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry = retry


@dataclass(frozen=True)
class _Token:
    value: str
    expires: float  # time.monotonic()


class AccessTokens:
    """Tokens per (platform, scopes), for this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[tuple[int, frozenset[str]], _Token] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(
        self, session: Session, platform: LtiPlatform, scopes: Iterable[str], now: datetime
    ) -> str:
        key = (platform.id, frozenset(scopes))
        with self._lock:
            held = self._tokens.get(key)
            if held is not None and held.expires > self._clock():
                return held.value
        token = request_token(session, platform, key[1], now)
        with self._lock:
            self._tokens[key] = token
        return token.value

    def forget(self, platform_id: int, scopes: Iterable[str]) -> None:
        with self._lock:
            self._tokens.pop((platform_id, frozenset(scopes)), None)


TOKENS = AccessTokens()


def client_assertion(session: Session, platform: LtiPlatform, now: datetime) -> str:
    """The JWT that proves to the platform that this request is the tool's (signed by
    the newest active tool key, whose public half the platform has from our JWKS)."""
    from quizapp.services.lti import active_tool_keys  # the key registry lives there

    keys = active_tool_keys(session)
    if not keys:
        raise PlatformServiceError(
            "quizapp has no LTI signing key: run `quizapp lti keys rotate`", retry=False
        )
    stored = keys[0]
    issued = int(now.timestamp())
    claims = {
        "iss": platform.client_id,
        "sub": platform.client_id,
        "aud": platform.auth_token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_SECONDS,
        "jti": secrets.token_urlsafe(24),
    }
    header = {"alg": "RS256", "typ": "JWT", "kid": stored.kid}
    return jwt.encode(header, claims, RSAKey.import_key(stored.private_key_pem))


def request_token(
    session: Session, platform: LtiPlatform, scopes: Iterable[str], now: datetime
) -> _Token:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(session, platform, now),
        "scope": " ".join(sorted(scopes)),
    }
    try:
        answer = fetch_json(
            platform.auth_token_url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    except HttpJsonError as error:
        said = error.answer.get("error_description") or error.answer.get("error") or ""
        detail = f"token request refused: {error.detail}" + (
            f" ({str(said)[:200]})" if said else ""
        )
        raise PlatformServiceError(detail, error.status) from error
    value = answer.get("access_token")
    if not isinstance(value, str) or not value:
        raise PlatformServiceError(f"{platform.auth_token_url}: the answer has no access_token")
    lifetime = answer.get("expires_in", MAX_TOKEN_SECONDS)
    seconds = lifetime if isinstance(lifetime, int | float) and lifetime > 0 else MAX_TOKEN_SECONDS
    seconds = min(float(seconds), MAX_TOKEN_SECONDS) - TOKEN_MARGIN_SECONDS
    return _Token(value, time.monotonic() + max(seconds, 0.0))


def call_service(
    session: Session,
    platform: LtiPlatform,
    url: str,
    scopes: Iterable[str],
    now: datetime,
    *,
    method: str = "GET",
    body: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    accept: str = "application/json",
    tokens: AccessTokens = TOKENS,
) -> JsonAnswer:
    """One request to a platform service with a bearer token; a 401 drops the token and
    tries once more with a fresh one (it may have been revoked or expired early)."""
    scope_set = frozenset(scopes)
    data = json.dumps(body).encode() if body is not None else None

    def send() -> JsonAnswer:
        headers = {
            "Authorization": f"Bearer {tokens.get(session, platform, scope_set, now)}",
            "Accept": accept,
        }
        if data is not None:
            headers["Content-Type"] = content_type
        return call_json(url, method=method, data=data, headers=headers)

    try:
        try:
            return send()
        except HttpJsonError as error:
            if error.status != 401:
                raise
            tokens.forget(platform.id, scope_set)
            return send()
    except HttpJsonError as error:
        raise PlatformServiceError(error.detail, error.status) from error
