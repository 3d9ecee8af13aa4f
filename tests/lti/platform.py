"""A small LTI 1.3 platform for the tests, written from the specification (1EdTech
Security Framework 1.0 §5.1, LTI Core 1.3 §5): it holds RSA keys (joserfc), serves its
JWK set on 127.0.0.1 over HTTP (the tool really fetches it), starts third-party logins,
answers the tool's authentication request the way a platform does (checking what the
spec requires of it), and signs ID tokens for a resource link launch.

Hooks for the tests: `claims=` overrides or removes (`DROP`) any claim of the token;
`sign_with=` signs with another key (a bad signature under a published kid); `kid=`
names another key id; `rotate()` replaces the published key (the tool holds the old set
and must fetch again). `jwks_requests` counts the fetches.

Services (LTI Advantage): the platform answers over HTTP through `routes`, a table of
(method, path) -> handler that tests and other fixtures extend. Built in: `/jwks`, and
`/token`, the OAuth 2.0 client-credentials endpoint (Security Framework §4.1) that
checks the tool's JWT client assertion against the tool's key set (`tool_jwks`, set by
the test) and hands out bearer tokens for the scopes asked; `bearer_scopes(request)`
says what a request's token grants. Every request is kept in `requests`. Launches carry
the AGS endpoint claim (line item `/lineitems/1`) and the NRPS claim (`/memberships`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
DROP = object()  # in `claims=`: leave this claim out
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_SERVICE = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class Request:
    """One HTTP request the platform received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON; None sends no body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class Person:
    """Someone at the platform."""

    sub: str
    email: str = ""
    name: str = ""
    roles: tuple[str, ...] = (LEARNER,)
    username: str = ""


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})


@dataclass
class Platform:
    clock: Callable[[], datetime]
    client_id: str = "quizapp-tool"
    deployment_id: str = "dep-1"
    keys: list[RSAKey] = field(default_factory=lambda: [new_key("platform-key-1")])
    jwks_requests: int = 0
    url: str = ""
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    # The tool's public key set, for checking its client assertions (set by the test,
    # e.g. `lambda: tool_jwks(session)`); tokens issued, with the scopes each grants.
    tool_jwks: Callable[[], dict[str, Any]] | None = None
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    token_requests: int = 0
    _used_jtis: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.routes[("GET", "/jwks")] = lambda request: Reply(body=self.jwks())
        self.routes[("POST", "/token")] = self.token_endpoint

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def auth_login_url(self) -> str:
        return self.url + "/auth"

    @property
    def auth_token_url(self) -> str:
        return self.url + "/token"

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    def jwks(self) -> dict[str, Any]:
        self.jwks_requests += 1
        return KeySet(self.keys).as_dict(private=False)

    def token_endpoint(self, request: Request) -> Reply:
        """Client credentials with a JWT assertion (RFC 7523), checked as a platform must:
        signed by a key of the tool's set, iss = sub = our client id, aud = this token
        URL, not expired, jti not seen before."""
        self.token_requests += 1
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        if form.get("client_assertion_type") != ASSERTION_TYPE or self.tool_jwks is None:
            return Reply(400, {"error": "invalid_client"})
        try:
            token = jwt.decode(
                form.get("client_assertion", ""), KeySet.import_key_set(self.tool_jwks())
            )
        except (JoseError, ValueError):
            return Reply(401, {"error": "invalid_client", "error_description": "bad signature"})
        claims = token.claims
        now = self.clock().timestamp()
        if (
            claims.get("iss") != self.client_id
            or claims.get("sub") != self.client_id
            or self.auth_token_url
            not in (
                [claims.get("aud")] if isinstance(claims.get("aud"), str) else claims.get("aud", [])
            )
            or claims.get("exp", 0) < now
            or not claims.get("jti")
            or claims["jti"] in self._used_jtis
        ):
            return Reply(401, {"error": "invalid_client", "error_description": "bad assertion"})
        self._used_jtis.add(claims["jti"])
        scopes = frozenset(form.get("scope", "").split())
        value = f"token-{self.token_requests}-{len(self.tokens)}"
        self.tokens[value] = scopes
        return Reply(
            body={
                "access_token": value,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": " ".join(sorted(scopes)),
            }
        )

    def bearer_scopes(self, request: Request) -> frozenset[str]:
        """What the request's bearer token grants (empty: no valid token)."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return frozenset()
        return self.tokens.get(header[len("Bearer ") :], frozenset())

    def rotate(self) -> RSAKey:
        """A new signing key replaces the published one."""
        key = new_key(f"platform-key-{len(self.keys) + 1}-{self.jwks_requests}")
        self.keys = [key]
        return key

    # --- the conversation ----------------------------------------------------------

    def login_params(
        self, target_link_uri: str, login_hint: str = "opaque-hint", message_hint: str = "link-1"
    ) -> dict[str, str]:
        """Third-party-initiated login (Security Framework 5.1.1.1)."""
        return {
            "iss": self.issuer,
            "login_hint": login_hint,
            "target_link_uri": target_link_uri,
            "lti_message_hint": message_hint,
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }

    def authorize(
        self,
        location: str,
        person: Person,
        *,
        custom: dict[str, str] | None = None,
        claims: dict[str, Any] | None = None,
        sign_with: RSAKey | None = None,
        kid: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """The platform's answer to the tool's authentication request (5.1.1.2-3): checks
        the request as a platform must, and returns (redirect_uri, the form it posts)."""
        parts = urlsplit(location)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.auth_login_url, location
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["scope"] == "openid"
        assert query["response_type"] == "id_token"
        assert query["response_mode"] == "form_post"
        assert query["prompt"] == "none"
        assert query["client_id"] == self.client_id
        assert query["login_hint"] == "opaque-hint"
        assert query["lti_message_hint"] == "link-1"
        assert query["state"] and query["nonce"]
        token = self.id_token(
            person, query["nonce"], custom=custom, claims=claims, sign_with=sign_with, kid=kid
        )
        return query["redirect_uri"], {"id_token": token, "state": query["state"]}

    def id_token(
        self,
        person: Person,
        nonce: str,
        *,
        custom: dict[str, str] | None = None,
        claims: dict[str, Any] | None = None,
        sign_with: RSAKey | None = None,
        kid: str | None = None,
    ) -> str:
        """A signed LtiResourceLinkRequest ID token (LTI Core 5.3, 5.4)."""
        now = int(self.clock().timestamp())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "sub": person.sub,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "name": person.name,
            "email": person.email,
            LTI + "message_type": "LtiResourceLinkRequest",
            LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id,
            LTI + "target_link_uri": "http://localhost/lti/launch",
            LTI + "resource_link": {"id": "link-1", "title": "Quiz 1"},
            LTI + "roles": list(person.roles),
            LTI + "context": {"id": "course-1", "label": "ML101", "title": "Machine learning"},
            AGS_ENDPOINT: {
                "scope": AGS_SCOPES,
                "lineitems": self.url + "/lineitems",
                "lineitem": self.url + "/lineitems/1",
            },
            NRPS_SERVICE: {
                "context_memberships_url": self.url + "/memberships",
                "service_versions": ["2.0"],
            },
        }
        if person.username:
            body["preferred_username"] = person.username
        if custom is not None:
            body[LTI + "custom"] = custom
        for name, value in (claims or {}).items():
            if value is DROP:
                body.pop(name, None)
            else:
                body[name] = value
        key = sign_with or self.keys[0]
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or str(self.keys[0].kid)}
        return jwt.encode(header, body, key)


class _Handler(BaseHTTPRequestHandler):
    platform: Platform

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            self.command,
            parts.path,
            {k: v[0] for k, v in parse_qs(parts.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        self.platform.requests.append(request)
        handler = self.platform.routes.get((self.command, parts.path))
        if handler is None:
            self.send_error(404)
            return
        reply = handler(request)
        body = json.dumps(reply.body).encode() if reply.body is not None else b""
        self.send_response(reply.status)
        if body:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 (the http.server names)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextmanager
def running_platform(clock: Callable[[], datetime]) -> Iterator[Platform]:
    """A platform whose JWK set is served on 127.0.0.1 while the block runs."""
    platform = Platform(clock=clock)
    handler = type("Handler", (_Handler,), {"platform": platform})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    platform.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield platform
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
