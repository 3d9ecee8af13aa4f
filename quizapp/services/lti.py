"""LTI 1.3 core launch (issue 14, docs/lti.md): the platform registry, the OIDC
third-party-initiated login, the launch, the person behind it, and the tool's keys.

- `add_platform`/`list_platforms`: the VLEs quizapp trusts, each with its deployments.
- `login_redirect`: the platform's login initiation (issuer, login hint, target link) is
  checked against a registered platform; a fresh `state` and `nonce` are made and the
  browser is sent to the platform's authorization endpoint. The web layer keeps
  state+nonce in a signed cookie bound to this browser.
- `launch`: the ID token the platform posts back is verified with the platform's keys
  (its JWKS over HTTP, cached, fetched again once when a token names a key id we do not
  hold: the platform rotated), its claims checked by `domain/lti.py`, its nonce compared
  with the one sent for this browser's login and spent for good in `lti_nonces` (unique),
  and the person found: by (platform, sub) once linked, else on the roster by e-mail or a
  username claim (QUIZAPP_LTI_MATCH), then linked. Nobody is created.
- `rotate_tool_key`/`tool_jwks`: quizapp's own RSA keys (deep-linking responses and
  the AGS token requests are signed with them).
- Deep Linking 2.0: `launch` also takes an LtiDeepLinkingRequest, from an instructor
  with a quizapp staff account only (`deep_linking_refused` otherwise), and returns its
  settings in `LaunchResult.deep_linking`; `deep_linking_choices` lists the quizzes for
  the picker; `deep_linking_response` signs the answer (one `ltiResourceLink` per quiz,
  with its line item out of the quiz's maximum mark) and audits it.

Every refusal is an `LtiRefused` (a reason for the audit log, a sentence for the page,
a status); `record_refusal` writes the `lti_refused` audit event.
"""

from __future__ import annotations

import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from authlib.common.urls import add_params_to_uri
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from quizapp.db import discard, end_snapshot, unit_of_work
from quizapp.domain.lti import (
    DEFAULT_LEEWAY_SECONDS,
    DeepLinkingSettings,
    ExpectedLaunch,
    Launch,
    LinkedQuiz,
    LtiClaimProblem,
    check_launch,
    deep_linking_response,
    username_claim,
)
from quizapp.models import (
    LtiContext,
    LtiDeployment,
    LtiNonce,
    LtiPerson,
    LtiPlatform,
    LtiResourceLink,
    LtiToolKey,
    Quiz,
    User,
)
from quizapp.services import audit
from quizapp.services.errors import Conflict, InvalidInput
from quizapp.services.exports import quiz_max_mark
from quizapp.services.http_json import HttpJsonError, fetch_json

# RS256 is what LTI requires every platform to support; the others are as strong.
SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
HTTP_TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 1_000_000
JWKS_TTL_SECONDS = 3600  # platforms rotate keys; an unknown key id also refetches at once
TOOL_KEY_BITS = 2048
MATCHES = ("email", "username")


@dataclass(frozen=True)
class LtiSettings:
    match: str = "email"  # how a first launch finds the roster's account
    username_claim: str = "preferred_username"
    contact: str = ""
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS
    # An unknown key id refetches the platform's keys, at most this often (a stream of
    # made-up key ids must not turn quizapp into a load generator against the VLE).
    jwks_refetch_seconds: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LtiSettings:
        match = str(config.get("QUIZAPP_LTI_MATCH") or "email").strip().lower()
        if match not in MATCHES:
            raise RuntimeError(f"QUIZAPP_LTI_MATCH must be email or username (got {match!r})")
        return cls(
            match=match,
            username_claim=str(
                config.get("QUIZAPP_LTI_USERNAME_CLAIM") or "preferred_username"
            ).strip(),
            contact=str(config.get("QUIZAPP_LTI_CONTACT") or "").strip(),
            leeway_seconds=int(config.get("QUIZAPP_LTI_LEEWAY_SECONDS", DEFAULT_LEEWAY_SECONDS)),
            jwks_refetch_seconds=float(config.get("QUIZAPP_LTI_JWKS_REFETCH_SECONDS", 10)),
        )

    def ask(self) -> str:
        return f"Contact {self.contact}." if self.contact else "Contact the course team."


class LtiRefused(Exception):
    """A login or launch that cannot go on: `reason` for the audit log, `message` for
    the person, `status` for the page."""

    def __init__(self, reason: str, message: str, status: int = 400, **details: Any):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.details = details


# --- The platform registry --------------------------------------------------------------


def _check_url(name: str, url: str) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise InvalidInput(
            f"{name} must be an https:// URL (plain http only on this machine), got {url!r}"
        )
    return url.strip()


def add_platform(
    session: Session,
    *,
    issuer: str,
    client_id: str,
    auth_login_url: str,
    auth_token_url: str,
    jwks_url: str,
    deployments: Iterable[str],
    now: datetime,
    name: str = "",
    actor_id: int | None = None,
    source: str = "cli",
) -> LtiPlatform:
    """Register a platform with its deployment ids; for a platform already registered
    (same issuer and client id) the URLs are updated and new deployment ids added.
    Audited with who did it and how (`cli`, `staff_page`, `dynamic_registration`)."""
    issuer, client_id = issuer.strip(), client_id.strip()
    if not issuer or not client_id:
        raise InvalidInput("a platform needs an issuer and a client id")
    urls = {
        "auth_login_url": _check_url("--auth-login-url", auth_login_url),
        "auth_token_url": _check_url("--auth-token-url", auth_token_url),
        "jwks_url": _check_url("--jwks-url", jwks_url),
    }
    wanted = [d.strip() for d in deployments if d.strip()]
    with unit_of_work(session):
        platform = session.scalars(
            select(LtiPlatform).where(
                LtiPlatform.issuer == issuer, LtiPlatform.client_id == client_id
            )
        ).first()
        if platform is None:
            platform = LtiPlatform(issuer=issuer, client_id=client_id, name=name, created_at=now)
            session.add(platform)
        for key, value in urls.items():
            setattr(platform, key, value)
        if name:
            platform.name = name
        session.flush()
        known = set(deployment_ids(session, platform.id))
        for deployment in wanted:
            if deployment not in known:
                session.add(LtiDeployment(platform_id=platform.id, deployment_id=deployment))
                known.add(deployment)
        audit.record(
            session,
            "lti_platform_added",
            now,
            actor_id=actor_id,
            source=source,
            platform_id=platform.id,
            issuer=issuer,
            client_id=client_id,
            deployments=sorted(known),
        )
    return platform


def deployment_ids(session: Session, platform_id: int) -> list[str]:
    return list(
        session.scalars(
            select(LtiDeployment.deployment_id)
            .where(LtiDeployment.platform_id == platform_id)
            .order_by(LtiDeployment.id)
        )
    )


def list_platforms(session: Session) -> list[tuple[LtiPlatform, list[str]]]:
    platforms = session.scalars(select(LtiPlatform).order_by(LtiPlatform.id)).all()
    return [(p, deployment_ids(session, p.id)) for p in platforms]


def _platform_for(session: Session, issuer: str, client_id: str) -> LtiPlatform:
    query = select(LtiPlatform).where(LtiPlatform.issuer == issuer)
    if client_id:
        query = query.where(LtiPlatform.client_id == client_id)
    found = session.scalars(query.limit(2)).all()
    if not found:
        raise LtiRefused(
            "unknown_platform",
            "This VLE is not registered with quizapp: ask IT to register it (docs/lti.md).",
            iss=issuer[:255],
            client_id=client_id[:255],
        )
    if len(found) > 1:
        raise LtiRefused(
            "client_id_missing",
            "quizapp is registered several times in this VLE and the VLE did not say "
            "which registration this is (no client_id).",
            iss=issuer[:255],
        )
    return found[0]


# --- Login initiation -------------------------------------------------------------------


@dataclass(frozen=True)
class LoginRedirect:
    url: str
    state: str
    nonce: str
    platform_id: int


def login_redirect(session: Session, params: Mapping[str, str], launch_url: str) -> LoginRedirect:
    """The platform's third-party-initiated login (LTI Security Framework 5.1.1):
    where to send the browser, with the state and nonce to remember for it."""
    issuer = params.get("iss", "").strip()
    login_hint = params.get("login_hint", "")
    target = params.get("target_link_uri", "")
    if not issuer:
        raise LtiRefused("iss_missing", "The VLE's login request names no issuer.")
    if not login_hint:
        raise LtiRefused("login_hint_missing", "The VLE's login request has no login hint.")
    if not target:
        raise LtiRefused("target_link_uri_missing", "The VLE's login request names no target.")
    ours = urllib.parse.urlsplit(launch_url)
    theirs = urllib.parse.urlsplit(target)
    if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
        raise LtiRefused(
            "target_link_uri_foreign",
            "The VLE asked to open another site, not quizapp: check the tool's URLs in the VLE.",
            target_link_uri=target[:300],
        )
    platform = _platform_for(session, issuer, params.get("client_id", "").strip())
    deployment = params.get("lti_deployment_id", "")
    if deployment and deployment not in deployment_ids(session, platform.id):
        raise LtiRefused(
            "unknown_deployment",
            "This course's link to quizapp is not registered here (unknown deployment id): "
            "ask IT to register it.",
            iss=issuer[:255],
            deployment_id=deployment[:255],
        )
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    query = [
        ("scope", "openid"),
        ("response_type", "id_token"),
        ("response_mode", "form_post"),
        ("prompt", "none"),
        ("client_id", platform.client_id),
        ("redirect_uri", launch_url),
        ("login_hint", login_hint),
        ("state", state),
        ("nonce", nonce),
    ]
    if hint := params.get("lti_message_hint"):
        query.append(("lti_message_hint", hint))
    return LoginRedirect(
        add_params_to_uri(platform.auth_login_url, query), state, nonce, platform.id
    )


# --- Platform keys ----------------------------------------------------------------------


def _fetch_json(url: str) -> dict[str, Any]:
    try:
        return fetch_json(url, timeout=HTTP_TIMEOUT_SECONDS, max_bytes=MAX_RESPONSE_BYTES)
    except HttpJsonError as error:
        raise _unreachable(error.detail) from error


def _unreachable(detail: str) -> LtiRefused:
    return LtiRefused(
        "platform_keys_unavailable",
        "quizapp could not fetch the VLE's signing keys just now. Wait a minute and open "
        "the link in the VLE again.",
        status=503,
        detail=detail[:300],
    )


class PlatformKeys:
    """Platforms' public keys by JWKS URL, shared by the requests of one app process:
    kept an hour, fetched again at once (at most every `refetch_seconds`) when a token
    names a key id the cached set lacks."""

    def __init__(self, refetch_seconds: float = 10.0, ttl_seconds: float = JWKS_TTL_SECONDS):
        self.refetch_seconds = refetch_seconds
        self.ttl_seconds = ttl_seconds
        self._sets: dict[str, tuple[KeySet, float]] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def key_set(self, url: str, *, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._sets.get(url)
            age = time.monotonic() - cached[1] if cached else None
            if cached is not None and age is not None:
                fresh = age <= self.ttl_seconds
                if fresh and not (refresh and age >= self.refetch_seconds):
                    return cached[0]
            document = _fetch_json(url)
            try:
                keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as error:
                raise _unreachable(f"unreadable JWKS at {url}: {error}") from error
            self.fetches += 1
            self._sets[url] = (keys, time.monotonic())
            return keys


def _bad_token(reason: str, message: str, error: Exception | None = None) -> LtiRefused:
    return LtiRefused(reason, message, detail=str(error)[:300] if error else "")


def verify_signature(id_token: str, platform: LtiPlatform, keys: PlatformKeys) -> dict[str, Any]:
    """The claims of an ID token signed by one of the platform's published keys."""
    try:
        header = jws.extract_compact(id_token.encode()).headers()
    except (JoseError, ValueError, TypeError, UnicodeError) as error:
        raise _bad_token(
            "token_unreadable", "The VLE's launch message is unreadable.", error
        ) from error
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise _bad_token("kid_missing", "The VLE's launch message names no signing key.")
    if header.get("alg") not in SIGNING_ALGORITHMS:
        raise _bad_token(
            "algorithm_refused",
            f"The VLE signed the launch with {str(header.get('alg'))[:20]!r}, which quizapp "
            "does not accept.",
        )
    try:
        try:
            token = jwt.decode(
                id_token, keys.key_set(platform.jwks_url), algorithms=SIGNING_ALGORITHMS
            )
        except InvalidKeyIdError:
            # The platform rotated its keys since we cached them: look once more.
            token = jwt.decode(
                id_token,
                keys.key_set(platform.jwks_url, refresh=True),
                algorithms=SIGNING_ALGORITHMS,
            )
    except InvalidKeyIdError as error:
        raise _bad_token(
            "unknown_kid", "The launch is signed with a key the VLE does not publish.", error
        ) from error
    except BadSignatureError as error:
        raise _bad_token(
            "bad_signature", "The launch's signature is not the VLE's: it was refused.", error
        ) from error
    except (JoseError, ValueError, KeyError, TypeError) as error:
        raise _bad_token("token_invalid", "The VLE's launch message is invalid.", error) from error
    return dict(token.claims)


# --- The launch ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchResult:
    user: User
    launch: Launch
    platform_id: int
    quiz_id: int | None = None  # the quiz the link opens (custom parameter `quiz`)

    @property
    def message_type(self) -> str:
        """LtiResourceLinkRequest or LtiDeepLinkingRequest (checked)."""
        return self.launch.message_type

    @property
    def deep_linking(self) -> DeepLinkingSettings | None:
        """A deep-linking request's settings: the instructor picks quizzes next."""
        return self.launch.deep_linking


def launch(
    session: Session,
    *,
    id_token: str,
    platform_id: int,
    expected_nonce: str,
    keys: PlatformKeys,
    settings: LtiSettings,
    now: datetime,
    ip: str = "",
) -> LaunchResult:
    """Verify a launch for the login this browser started, spend its nonce, and find
    the person's account; LtiRefused otherwise."""
    platform = session.get(LtiPlatform, platform_id)
    if platform is None:
        raise LtiRefused("unknown_platform", "This VLE is no longer registered with quizapp.")
    end_snapshot(session)  # hold nothing while the platform's keys may be fetched
    claims = verify_signature(id_token, platform, keys)
    expected = ExpectedLaunch(
        platform.issuer, platform.client_id, frozenset(deployment_ids(session, platform.id))
    )
    try:
        checked = check_launch(claims, expected, now, leeway=settings.leeway_seconds)
    except LtiClaimProblem as problem:
        raise LtiRefused(
            problem.reason,
            problem.message,
            iss=str(claims.get("iss", ""))[:255],
            sub=str(claims.get("sub", ""))[:255],
        ) from problem
    if not secrets.compare_digest(checked.nonce.encode(), expected_nonce.encode()):
        raise LtiRefused(
            "nonce_mismatch",
            "This launch does not belong to the sign-in this browser started. Open the "
            "link in the VLE again.",
            sub=checked.sub[:255],
        )
    _spend_nonce(session, platform.id, checked, now, settings)
    user = _account_for(session, platform, checked, settings, now, ip)
    if checked.deep_linking is not None and not (checked.role == "instructor" and user.is_staff):
        raise LtiRefused(
            "deep_linking_refused",
            "Only course staff can add quizapp quizzes to the VLE: it takes an instructor "
            f"role in the course and a quizapp staff account. {settings.ask()}",
            status=403,
            sub=checked.sub[:255],
            role=checked.role,
        )
    quiz_id = record_link(session, platform.id, checked, now)
    return LaunchResult(user, checked, platform.id, quiz_id)


def quiz_id_for_key(session: Session, key: str) -> int | None:
    """The quiz a resource link's custom parameter `quiz` names, if there is one."""
    return session.scalars(select(Quiz.id).where(Quiz.key == key)).first()


def record_link(session: Session, platform_id: int, checked: Launch, now: datetime) -> int | None:
    """Remember the course and the link this launch came from, with the services the
    platform offers for them (the line item marks go to, the membership list), and
    return the quiz the link opens. Every launch refreshes them: platforms may move
    their service URLs, and a link may be edited to open another quiz. A deep-linking
    request has no link yet: only its course is recorded."""
    key = checked.custom.get("quiz", "") if checked.resource_link_id else ""
    quiz_id = quiz_id_for_key(session, key) if key else None
    grades = checked.grade_service
    for _ in range(3):  # two first launches of one link at once: the second updates
        try:
            with unit_of_work(session):
                context = None
                if checked.context_id:
                    context = session.scalars(
                        select(LtiContext).where(
                            LtiContext.platform_id == platform_id,
                            LtiContext.context_id == checked.context_id,
                        )
                    ).first()
                    if context is None:
                        context = LtiContext(platform_id=platform_id, context_id=checked.context_id)
                        session.add(context)
                    context.deployment_id = checked.deployment_id[:255]
                    context.title = checked.context_title
                    if checked.memberships_url:
                        context.memberships_url = checked.memberships_url
                    context.updated_at = now
                    session.flush()
                if not checked.resource_link_id:
                    return None
                link = session.scalars(
                    select(LtiResourceLink).where(
                        LtiResourceLink.platform_id == platform_id,
                        LtiResourceLink.resource_link_id == checked.resource_link_id[:255],
                    )
                ).first()
                if link is None:
                    link = LtiResourceLink(
                        platform_id=platform_id, resource_link_id=checked.resource_link_id[:255]
                    )
                    session.add(link)
                link.context_id = context.id if context is not None else None
                link.title = checked.resource_link_title
                if quiz_id is not None:
                    link.quiz_id = quiz_id
                link.lineitem_url = grades.lineitem if grades else ""
                link.lineitems_url = grades.lineitems if grades else ""
                link.ags_scopes = list(grades.scopes) if grades else []
                link.updated_at = now
            return quiz_id
        except IntegrityError:
            discard(session)
    raise LtiRefused("conflict", "Signing in collided with another launch. Try again.")


def _spend_nonce(
    session: Session, platform_id: int, checked: Launch, now: datetime, settings: LtiSettings
) -> None:
    """Each nonce works once, on every app process: the unique constraint decides."""
    # Kept until the token could no longer pass the exp check anyway (a day at most:
    # an absurd exp must neither overflow nor keep rows for ever).
    until = min(checked.expires_at, now.timestamp() + 86400)
    expires = datetime.fromtimestamp(until, tz=UTC) + timedelta(seconds=settings.leeway_seconds)
    try:
        with unit_of_work(session):
            session.execute(delete(LtiNonce).where(LtiNonce.expires_at < now))
            session.add(
                LtiNonce(platform_id=platform_id, nonce=checked.nonce[:255], expires_at=expires)
            )
    except IntegrityError as error:
        discard(session)
        raise LtiRefused(
            "nonce_replayed",
            "This launch was already used. Open the link in the VLE again.",
            sub=checked.sub[:255],
        ) from error


def _roster_match(session: Session, checked: Launch, settings: LtiSettings) -> list[User]:
    if settings.match == "email":
        value = checked.email
        if not value:
            raise LtiRefused(
                "email_missing",
                "The VLE did not send your e-mail address, which quizapp needs to find you "
                f"on the course roster. {settings.ask()}",
                status=403,
                sub=checked.sub[:255],
            )
        query = select(User).where(func.lower(User.email) == value.lower())
    else:
        value = username_claim(checked.claims, settings.username_claim)
        if not value:
            raise LtiRefused(
                "username_missing",
                f"The VLE did not say your username ({settings.username_claim}), which "
                f"quizapp needs to find you on the course roster. {settings.ask()}",
                status=403,
                sub=checked.sub[:255],
            )
        query = select(User).where(User.username == value)
        if "@" in value:
            query = select(User).where(func.lower(User.username) == value.lower())
    return list(session.scalars(query.limit(2)))


def _account_for(
    session: Session,
    platform: LtiPlatform,
    checked: Launch,
    settings: LtiSettings,
    now: datetime,
    ip: str,
) -> User:
    for _ in range(3):  # a concurrent first launch of the same person wins; look again
        linked = session.scalars(
            select(User)
            .join(LtiPerson, LtiPerson.user_id == User.id)
            .where(LtiPerson.platform_id == platform.id, LtiPerson.sub == checked.sub)
        ).first()
        if linked is not None:
            _check_active(linked, settings)
            return linked
        candidates = _roster_match(session, checked, settings)
        if not candidates:
            raise LtiRefused(
                "unknown_person",
                "You are not on this course's quizapp roster, so quizapp cannot sign you in. "
                f"{settings.ask()} Nothing was created.",
                status=403,
                sub=checked.sub[:255],
                match=settings.match,
            )
        if len(candidates) > 1:
            raise LtiRefused(
                "ambiguous_person",
                f"More than one quizapp account matches you. {settings.ask()}",
                status=403,
                sub=checked.sub[:255],
            )
        user = candidates[0]
        _check_active(user, settings)
        other = session.scalars(
            select(LtiPerson.sub).where(
                LtiPerson.platform_id == platform.id, LtiPerson.user_id == user.id
            )
        ).first()
        if other is not None:
            raise LtiRefused(
                "linked_to_another_identity",
                f"The quizapp account {user.username} is already linked to another person "
                f"in this VLE. {settings.ask()}",
                status=403,
                sub=checked.sub[:255],
            )
        try:
            with unit_of_work(session):
                session.add(
                    LtiPerson(
                        platform_id=platform.id, sub=checked.sub, user_id=user.id, linked_at=now
                    )
                )
                audit.record(
                    session,
                    "lti_linked",
                    now,
                    actor_id=user.id,
                    subject_id=user.id,
                    ip=ip,
                    iss=platform.issuer,
                    sub=checked.sub[:255],
                    match=settings.match,
                )
        except IntegrityError:
            discard(session)
            continue
        return user
    raise LtiRefused("conflict", "Signing in collided with another launch. Try again.")


def _check_active(user: User, settings: LtiSettings) -> None:
    if not user.active:
        raise LtiRefused(
            "account_disabled",
            f"Your quizapp account ({user.username}) is disabled. {settings.ask()}",
            status=403,
        )


def record_refusal(
    session: Session, refusal: LtiRefused, now: datetime, ip: str = "", **details: Any
) -> int:
    """One `lti_refused` audit event, in its own transaction; its id is the reference
    number the refusal page gives for IT."""
    discard(session)
    return audit.record_now(
        session, "lti_refused", now, ip=ip, reason=refusal.reason, **{**refusal.details, **details}
    )


# --- The tool's own keys ------------------------------------------------------------------


def active_tool_keys(session: Session) -> list[LtiToolKey]:
    """Newest first: the first signs, the others are kept for verification."""
    return list(
        session.scalars(
            select(LtiToolKey)
            .where(LtiToolKey.retired_at.is_(None))
            .order_by(LtiToolKey.created_at.desc(), LtiToolKey.id.desc())
        )
    )


def rotate_tool_key(session: Session, now: datetime) -> LtiToolKey:
    """A new signing key; the one it replaces stays published (platforms that cached our
    key set still verify what it signed), any older one is retired: at most two active."""
    key = RSAKey.generate_key(TOOL_KEY_BITS)
    kid = key.thumbprint()
    pem = key.as_pem(private=True).decode()
    with unit_of_work(session):
        previous = list(
            session.scalars(
                select(LtiToolKey)
                .where(LtiToolKey.retired_at.is_(None))
                .order_by(LtiToolKey.created_at.desc(), LtiToolKey.id.desc())
            )
        )
        retired = []
        for old in previous[1:]:
            old.retired_at = now
            retired.append(old.kid)
        new = LtiToolKey(kid=kid, private_key_pem=pem, created_at=now)
        session.add(new)
        audit.record(session, "lti_key_rotated", now, kid=kid, retired=retired)
    return new


def tool_jwks(session: Session) -> dict[str, Any]:
    """The public halves of the active tool keys, as a JWK set."""
    keys = []
    for stored in active_tool_keys(session):
        public = RSAKey.import_key(stored.private_key_pem).as_dict(private=False)
        keys.append({**public, "kid": stored.kid, "alg": "RS256", "use": "sig"})
    return {"keys": keys}


# --- Deep Linking 2.0 ---------------------------------------------------------------------


@dataclass(frozen=True)
class DeepLinkChoice:
    """A quiz on the deep-linking picker."""

    id: int
    key: str
    title: str
    description: str
    opens_at: datetime
    closes_at: datetime | None
    time_limit_seconds: int | None
    max_mark: Fraction
    questions: int  # slots: a pool slot is one question per attempt


def deep_linking_choices(session: Session) -> list[DeepLinkChoice]:
    """Every quiz an instructor may link, soonest first; the maximum mark is the one the
    scores CSV's maximum column uses (services/exports.py)."""
    quizzes = session.scalars(
        select(Quiz).options(selectinload(Quiz.slots)).order_by(Quiz.opens_at, Quiz.title)
    )
    return [
        DeepLinkChoice(
            id=quiz.id,
            key=quiz.key,
            title=quiz.title,
            description=quiz.description,
            opens_at=quiz.opens_at,
            closes_at=quiz.closes_at,
            time_limit_seconds=quiz.time_limit_seconds,
            max_mark=quiz_max_mark(quiz),
            questions=len(quiz.slots),
        )
        for quiz in quizzes
    ]


@dataclass(frozen=True)
class DeepLinkAnswer:
    """The signed LtiDeepLinkingResponse and where the browser posts it (form field `JWT`)."""

    return_url: str
    jwt: str
    quiz_keys: tuple[str, ...]


def deep_linking_answer(
    session: Session,
    *,
    platform_id: int,
    deployment_id: str,
    settings: DeepLinkingSettings,
    quiz_ids: Iterable[int],
    launch_url: str,
    user: User,
    now: datetime,
    ip: str = "",
    cancel_message: str = "",
) -> DeepLinkAnswer:
    """Sign the answer to a deep-linking request with the tool's newest key (header
    `kid`): one `ltiResourceLink` per quiz picked, in the picker's order, or none when
    the instructor cancelled (`cancel_message` then goes to the platform as `msg`).
    Audited: `lti_deep_link` per quiz linked, or `lti_deep_link_cancelled`."""
    platform = session.get(LtiPlatform, platform_id)
    if platform is None:
        raise InvalidInput("This VLE is no longer registered with quizapp.")
    if deployment_id not in deployment_ids(session, platform.id):
        raise InvalidInput("This course's link to quizapp is no longer registered here.")
    wanted = list(dict.fromkeys(quiz_ids))
    if not wanted and not cancel_message:
        raise InvalidInput("Pick a quiz to add, or cancel.")
    quizzes = {
        q.id: q
        for q in session.scalars(
            select(Quiz).options(selectinload(Quiz.slots)).where(Quiz.id.in_(wanted))
        )
    }
    if len(quizzes) != len(wanted):
        raise InvalidInput("A quiz picked is no longer in quizapp: reload the list.")
    linked = [
        LinkedQuiz(
            key=quizzes[i].key,
            title=quizzes[i].title,
            text=quizzes[i].description,
            max_mark=quiz_max_mark(quizzes[i]),
        )
        for i in wanted
    ]
    keys = active_tool_keys(session)
    if not keys:
        raise Conflict("quizapp has no signing key: IT must run `quizapp lti keys rotate`.")
    try:
        claims = deep_linking_response(
            settings,
            linked,
            client_id=platform.client_id,
            platform_issuer=platform.issuer,
            deployment_id=deployment_id,
            launch_url=launch_url,
            now=now,
            nonce=secrets.token_urlsafe(32),
            msg=cancel_message,
        )
    except ValueError as error:
        raise InvalidInput(str(error)) from error
    signer = keys[0]
    token = jwt.encode(
        {"alg": "RS256", "typ": "JWT", "kid": signer.kid},
        claims,
        RSAKey.import_key(signer.private_key_pem),
    )
    iss, deployment = platform.issuer, deployment_id[:255]
    with unit_of_work(session):
        if not linked:
            audit.record(
                session,
                "lti_deep_link_cancelled",
                now,
                actor_id=user.id,
                ip=ip,
                iss=iss,
                deployment_id=deployment,
            )
        for i, quiz in zip(wanted, linked, strict=True):
            audit.record(
                session,
                "lti_deep_link",
                now,
                actor_id=user.id,
                quiz_id=i,
                ip=ip,
                iss=iss,
                deployment_id=deployment,
                quiz=quiz.key,
                score_maximum=str(quiz.max_mark),
                line_item=settings.accept_lineitem is not False,
            )
    return DeepLinkAnswer(settings.return_url, token, tuple(q.key for q in linked))
