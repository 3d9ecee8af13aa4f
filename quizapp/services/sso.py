"""Single sign-on with OpenID Connect (docs/sign-in.md).

Two halves:

- The conversation with the university's identity provider (`OidcClient`): discovery
  from the issuer, an authorization request with PKCE (S256), `state` and `nonce`, the
  code exchange, and the ID token's signature (joserfc, keys from the provider's JWKS)
  and claims (Authlib's OpenID Connect rules: iss, aud, azp when present, exp, iat,
  nonce, at_hash) checked against the server's clock.
- The account rules (`account_for`): who a verified person is in quizapp. The stored
  subject ("<issuer> <sub>") first, then the username claim against the roster's
  usernames; the subject is linked at the first sign-in. Nothing is created unless
  self-enrolment is on. The staff claim never turns a student account into a staff one.

Every refusal is an `SsoRefused` carrying a reason for the audit log and a message for
the person; the view records it with `record_refusal` and shows the page.

HTTP goes through urllib with a timeout rather than Authlib's Flask client: that client
needs `requests` at run time, and it checks the ID token's audience only through `azp`,
so a token issued to another client without `azp` would pass its checks.
"""

from __future__ import annotations

import base64
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quizapp.db import discard, rows_matched, unit_of_work
from quizapp.domain.roster import username_problem
from quizapp.models import Role, User
from quizapp.services import audit
from quizapp.services.http_json import HttpJsonError, fetch_json

SCOPES = "openid profile email"
# Asymmetric signatures only: an HS256 token would be checked with the client secret,
# which every holder of that secret could forge.
SIGNING_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
CLOCK_LEEWAY_SECONDS = 60  # the provider's clock and ours may differ a little
HTTP_TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 1_000_000
METADATA_TTL_SECONDS = 3600  # keys rotate; an unknown key id also refetches at once
JWKS_REFETCH_SECONDS = 60  # at most one refetch a minute for unknown key ids


@dataclass(frozen=True)
class SsoSettings:
    issuer: str
    client_id: str
    client_secret: str
    username_claim: str = "preferred_username"
    staff_claim: str = ""
    staff_value: str = ""
    self_enrol: bool = False
    contact: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SsoSettings | None:
        """The settings, or None when single sign-on is off (no issuer)."""
        issuer = (config.get("QUIZAPP_SSO_ISSUER") or "").strip()
        if not issuer:
            return None
        settings = cls(
            issuer=issuer,
            client_id=(config.get("QUIZAPP_SSO_CLIENT_ID") or "").strip(),
            client_secret=config.get("QUIZAPP_SSO_CLIENT_SECRET") or "",
            username_claim=(config.get("QUIZAPP_SSO_USERNAME_CLAIM") or "preferred_username"),
            staff_claim=(config.get("QUIZAPP_SSO_STAFF_CLAIM") or "").strip(),
            staff_value=(config.get("QUIZAPP_SSO_STAFF_VALUE") or "").strip(),
            self_enrol=bool(config.get("QUIZAPP_SSO_SELF_ENROL")),
            contact=(config.get("QUIZAPP_SSO_CONTACT") or "").strip(),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse at start-up what would fail at every sign-in, or leak."""
        if not self.client_id or not self.client_secret:
            raise RuntimeError(
                "QUIZAPP_SSO_ISSUER is set: QUIZAPP_SSO_CLIENT_ID and "
                "QUIZAPP_SSO_CLIENT_SECRET must be set too"
            )
        parts = urllib.parse.urlsplit(self.issuer)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise RuntimeError(
                f"QUIZAPP_SSO_ISSUER must be an https:// URL (got {self.issuer!r}); "
                "plain http is accepted only on this machine (tests)"
            )


class SsoRefused(Exception):
    """A sign-in that cannot go on: `reason` for the audit log, `message` for the person."""

    def __init__(self, reason: str, message: str, status: int = 400, **details: Any):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.details = details


def _unreachable(what: str) -> SsoRefused:
    return SsoRefused(
        "provider_unreachable",
        "The university sign-in service cannot be reached just now. Wait a minute and try again.",
        status=503,
        detail=what[:300],
    )


def _http_json(
    url: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    try:
        return fetch_json(
            url,
            data=data,
            headers=headers,
            timeout=HTTP_TIMEOUT_SECONDS,
            max_bytes=MAX_RESPONSE_BYTES,
        )
    except HttpJsonError as error:
        if error.status is None:
            raise _unreachable(error.detail) from error
        raise SsoRefused(
            "provider_refused",
            "The university sign-in service did not accept this sign-in. Start again.",
            url=url[:200],
            http_status=error.status,
            error=str(error.answer.get("error", ""))[:100],
            error_description=str(error.answer.get("error_description", ""))[:300],
        ) from error


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what this browser must keep until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def _token_problem(error: Exception) -> SsoRefused:
    reason = "token_expired" if isinstance(error, ExpiredTokenError) else "token_invalid"
    claim = getattr(error, "claim", None)
    return SsoRefused(
        reason,
        "The sign-in could not be verified: the university's answer was not valid "
        + ("any more" if reason == "token_expired" else "for this site")
        + ". Start again.",
        problem=(f"{claim}: {error}" if claim else str(error))[:300],
    )


class OidcClient:
    """One per app process: the provider's metadata and keys are cached."""

    def __init__(self, settings: SsoSettings) -> None:
        self.settings = settings
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    def metadata(self) -> dict[str, Any]:
        """The discovery document, whose `issuer` must be the configured one exactly
        (OpenID Connect Discovery 4.3: a provider cannot speak for another)."""
        if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_TTL_SECONDS:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = _http_json(url)
            if document.get("issuer") != self.settings.issuer:
                raise _unreachable(f"{url} names issuer {str(document.get('issuer'))[:100]!r}")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(document.get(key), str):
                    raise _unreachable(f"{url} has no {key}")
            self._metadata, self._metadata_at = document, time.monotonic()
            self._keys = None
        return self._metadata

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        stale = time.monotonic() - self._keys_at > JWKS_REFETCH_SECONDS
        if self._keys is None or (refresh and stale):
            document = _http_json(self.metadata()["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as error:
                raise _unreachable(f"unreadable JWKS: {error}") from error
            self._keys_at = time.monotonic()
        return self._keys

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 allows 43-128
        url = add_params_to_uri(
            self.metadata()["authorization_endpoint"],
            [
                ("response_type", "code"),
                ("client_id", self.settings.client_id),
                ("redirect_uri", redirect_uri),
                ("scope", SCOPES),
                ("state", state),
                ("nonce", nonce),
                ("code_challenge", create_s256_code_challenge(code_verifier)),
                ("code_challenge_method", "S256"),
            ],
        )
        return AuthorizationRequest(url, state, nonce, code_verifier)

    def finish(
        self, code: str, redirect_uri: str, code_verifier: str, nonce: str, now: datetime
    ) -> dict[str, Any]:
        """Exchange the code and return the verified claims of the person."""
        metadata = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" in methods:
            # RFC 6749 2.3.1: both parts form-encoded before Basic.
            pair = (
                f"{urllib.parse.quote_plus(self.settings.client_id)}:"
                f"{urllib.parse.quote_plus(self.settings.client_secret)}"
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.settings.client_id
            form["client_secret"] = self.settings.client_secret
        token = _http_json(
            metadata["token_endpoint"],
            data=urllib.parse.urlencode(form).encode(),
            headers=headers,
        )
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoRefused(
                "token_invalid",
                "The university sign-in service sent no identity token. Start again.",
            )
        access_token = token.get("access_token")
        claims = self.verify_id_token(
            id_token, nonce, access_token if isinstance(access_token, str) else None, now
        )
        return self._with_userinfo(claims, access_token)

    def verify_id_token(
        self, id_token: str, nonce: str, access_token: str | None, now: datetime
    ) -> dict[str, Any]:
        """The claims of an ID token issued by our provider to us for this sign-in."""
        supported = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in supported if a in SIGNING_ALGORITHMS]
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                token = jwt.decode(id_token, self._key_set(), registry=registry)
            except InvalidKeyIdError:
                # The provider rotated its keys since we cached them.
                token = jwt.decode(id_token, self._key_set(refresh=True), registry=registry)
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise _token_problem(error) from error
        params: dict[str, Any] = {"nonce": nonce, "client_id": self.settings.client_id}
        if access_token:
            params["access_token"] = access_token
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": self.settings.issuer},
                "aud": {"essential": True, "value": self.settings.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "nonce": {"essential": True, "value": nonce},
            },
            params,
        )
        try:
            claims.validate(now=int(now.timestamp()), leeway=CLOCK_LEEWAY_SECONDS)
        except (JoseError, ValueError, TypeError) as error:
            raise _token_problem(error) from error
        return dict(claims)

    def _with_userinfo(self, claims: dict[str, Any], access_token: Any) -> dict[str, Any]:
        """Providers that keep the profile out of the ID token (OpenID Connect's default
        for the code flow) give it at the userinfo endpoint: asked only when a claim we
        need is missing, and only for the same subject (Core 5.3.2)."""
        wanted = [self.settings.username_claim]
        if self.settings.staff_claim:
            wanted.append(self.settings.staff_claim)
        endpoint = self.metadata().get("userinfo_endpoint")
        if all(name in claims for name in wanted) or not endpoint or not access_token:
            return claims
        info = _http_json(endpoint, headers={"Authorization": f"Bearer {access_token}"})
        if info.get("sub") != claims["sub"]:
            raise SsoRefused(
                "userinfo_subject_mismatch",
                "The university sign-in service answered for another person. Start again.",
            )
        return {**info, **claims}


# --- Who the verified person is in quizapp ----------------------------------------------


@dataclass(frozen=True)
class Person:
    """What the provider vouches for, reduced to what the account rules use."""

    subject: str  # "<issuer> <sub>": stable where usernames and e-mails may change
    username: str  # the username claim; "" when the provider sent none
    name: str
    email: str
    staff: bool  # the staff claim marks this person as course staff


def _text_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""


def is_staff_claim(value: Any, expected: str) -> bool:
    """A list claim (groups, roles) contains the value; a text claim equals it; with no
    value configured, a claim that is true."""
    if not expected:
        return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "yes"))
    if isinstance(value, list):
        return expected in value
    return isinstance(value, str) and value == expected


def person_from_claims(claims: Mapping[str, Any], settings: SsoSettings) -> Person:
    return Person(
        subject=f"{settings.issuer} {claims['sub']}",
        username=_text_claim(claims, settings.username_claim),
        name=_text_claim(claims, "name")[:200],
        email=_text_claim(claims, "email")[:254],
        staff=bool(settings.staff_claim)
        and is_staff_claim(claims.get(settings.staff_claim), settings.staff_value),
    )


def _ask(settings: SsoSettings) -> str:
    return f"Contact {settings.contact}." if settings.contact else "Contact the course team."


def _by_username(session: Session, username: str) -> list[User]:
    """The roster's account for this username claim: exact first; e-mail-like values
    (which providers and rosters capitalise differently) also ignoring case."""
    exact = list(session.scalars(select(User).where(User.username == username)))
    if exact or "@" not in username:
        return exact
    return list(session.scalars(select(User).where(func.lower(User.username) == username.lower())))


def _refusal_for(user: User, person: Person, settings: SsoSettings) -> SsoRefused | None:
    """Why this matched account may not be used by this person, or None."""
    if not user.active:
        return SsoRefused(
            "account_disabled",
            f"Your quizapp account ({user.username}) is disabled. {_ask(settings)}",
            status=403,
        )
    if settings.staff_claim and user.is_staff and not person.staff:
        # The university decides who is course staff: someone taken out of the staff
        # group keeps no staff access through an account made for them earlier.
        return SsoRefused(
            "staff_claim_missing",
            f"The quizapp account {user.username} is a staff account, but your university "
            f"account is not marked as course staff. {_ask(settings)}",
            status=403,
        )
    if settings.staff_claim and not user.is_staff and person.staff:
        # Never a promotion at sign-in: a directory group would otherwise turn any
        # student account into an examiner's (and one mistaken group membership would
        # let a student see every answer). Staff give staff accounts.
        return SsoRefused(
            "staff_claim_on_student_account",
            f"Your university account marks you as course staff, but the quizapp account "
            f"{user.username} is a student account, and signing in never changes that. "
            f"{_ask(settings)}",
            status=403,
        )
    return None


def account_for(
    session: Session, person: Person, settings: SsoSettings, now: datetime, ip: str = ""
) -> User:
    """The account this person signs in to, linking the subject at the first sign-in or
    (with self-enrolment) creating the account; raises SsoRefused otherwise. Nothing is
    written for a refused sign-in."""
    for _ in range(3):  # a concurrent first sign-in of the same person wins; look again
        user = session.scalars(select(User).where(User.sso_subject == person.subject)).first()
        if user is not None:
            if refusal := _refusal_for(user, person, settings):
                raise refusal
            return user
        try:
            return _link_or_enrol(session, person, settings, now, ip)
        except (_Raced, IntegrityError):
            pass  # another sign-in of the same person won: look again
    raise SsoRefused("conflict", "Signing in collided with another sign-in. Try again.")


class _Raced(Exception):
    pass


def _link_or_enrol(
    session: Session, person: Person, settings: SsoSettings, now: datetime, ip: str
) -> User:
    if not person.username:
        raise SsoRefused(
            "username_claim_missing",
            "Your university account did not say who you are (no "
            f"{settings.username_claim!r} in its answer). {_ask(settings)}",
            status=403,
        )
    candidates = _by_username(session, person.username)
    if len(candidates) > 1:
        raise SsoRefused(
            "ambiguous_username",
            f"More than one quizapp account matches {person.username}. {_ask(settings)}",
            status=403,
        )
    if candidates:
        user = candidates[0]
        if user.sso_subject is not None:
            # Usernames can be reused by the university after someone leaves: the
            # account stays with the person it was first linked to.
            raise SsoRefused(
                "linked_to_another_identity",
                f"The quizapp account {user.username} is already linked to another "
                f"university account. {_ask(settings)}",
                status=403,
            )
        if refusal := _refusal_for(user, person, settings):
            raise refusal
        with unit_of_work(session):
            linked = rows_matched(
                session.execute(
                    update(User)
                    .where(User.id == user.id, User.sso_subject.is_(None))
                    .values(sso_subject=person.subject)
                    .execution_options(synchronize_session=False)
                )
            )
            if linked != 1:
                raise _Raced()
            audit.record(
                session,
                "sso_linked",
                now,
                actor_id=user.id,
                subject_id=user.id,
                ip=ip,
                claim=settings.username_claim,
                value=person.username[:150],
            )
        session.refresh(user)
        return user
    if not settings.self_enrol:
        raise SsoRefused(
            "unknown_person",
            f"You signed in at the university as {person.username}, but there is no "
            f"quizapp account for you: you are not on this course's list. {_ask(settings)} "
            "Nothing was created.",
            status=403,
        )
    if problem := username_problem(person.username):
        raise SsoRefused(
            "username_unusable",
            f"Your university username {problem}, so no quizapp account can be made for "
            f"it. {_ask(settings)}",
            status=403,
        )
    role = Role.STAFF if person.staff else Role.STUDENT
    with unit_of_work(session):
        user = User(
            username=person.username,
            name=person.name,
            email=person.email,
            role=role,
            password_hash=None,
            sso_subject=person.subject,
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            "sso_enrolled",
            now,
            actor_id=user.id,
            subject_id=user.id,
            ip=ip,
            role=role.value,
            claim=settings.username_claim,
            value=person.username[:150],
        )
    return user


def record_refusal(
    session: Session, refusal: SsoRefused, now: datetime, ip: str = "", **details: Any
) -> None:
    """One `sso_refused` audit event, in its own transaction."""
    discard(session)
    audit.record_now(
        session,
        "sso_refused",
        now,
        ip=ip,
        reason=refusal.reason,
        **{**refusal.details, **details},
    )
