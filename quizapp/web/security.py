"""Login manager, CSRF, response headers, and the access policy used by every view.

Framing and the session cookie follow LTI (docs/lti.md "Inside the VLE's page"): while
no VLE is registered (or QUIZAPP_LTI_IFRAME=0) pages refuse every frame
(`frame-ancestors 'none'`, `X-Frame-Options: DENY`) and the session cookie is
`SameSite=Lax`. Once one is (or QUIZAPP_LTI_IFRAME=1), the registered platforms' origins
(issuer and authorization URL) and QUIZAPP_LTI_FRAME_ANCESTORS may frame quizapp, and
the session cookie is `SameSite=None; Secure`, which a browser sends inside a cross-site
iframe; CSRF tokens (required on every state-changing request) are then the defence
against cross-site posts. The origins are read from `lti_platforms` at most once a
minute per process (`Embedding`), never per request.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, abort, current_app, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_required
from flask_wtf.csrf import CSRFProtect

from quizapp.models import User
from quizapp.services.lti import list_platforms

login_manager = LoginManager()
csrf = CSRFProtect()

F = TypeVar("F", bound=Callable[..., Any])

# Who may reach a view: anyone, any logged-in user (their own data only, decided by the
# services), or staff. Every view carries one of these; the app refuses to start otherwise.
ACCESS_LEVELS = ("public", "user", "staff")

# Content-Security-Policy: no inline script anywhere; everything from our own origin.
# Who may frame the pages is added per response (`csp_for`).
CSP_BASE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
CSP = f"{CSP_BASE}; frame-ancestors 'none'"

log = logging.getLogger(__name__)

# How long a process trusts its list of registered platforms: a platform added with
# `quizapp lti platform add` may frame quizapp (and get iframe cookies) within a minute.
EMBEDDING_TTL_SECONDS = 60.0
IFRAME_MODES = ("auto", "1", "0")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
# A CSP host-source we accept in QUIZAPP_LTI_FRAME_ANCESTORS: scheme, host (a leading
# `*.` allowed), optional port. Nothing that could end the directive (`;`, `,`, spaces).
_ORIGIN = re.compile(
    r"^https?://(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$"
)


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, lower-case; None for anything else."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}"
    return f"{origin}:{port}" if port is not None else origin


def frame_ancestors_setting(value: str) -> tuple[str, ...]:
    """QUIZAPP_LTI_FRAME_ANCESTORS as origins; a malformed entry stops the app at start."""
    found: list[str] = []
    for entry in re.split(r"[\s,]+", value.strip()):
        if not entry:
            continue
        origin = entry.rstrip("/").lower()
        if not _ORIGIN.match(origin):
            raise RuntimeError(
                "QUIZAPP_LTI_FRAME_ANCESTORS takes origins such as https://vle.uni.example "
                f"or https://*.instructure.com, separated by spaces; got {entry!r}"
            )
        if origin not in found:
            found.append(origin)
    return tuple(found)


@dataclass(frozen=True)
class Framing:
    """Who may frame quizapp's pages now, and whether the session cookie must work
    inside a cross-site iframe."""

    ancestors: tuple[str, ...] = ()
    iframe_cookies: bool = False


class Embedding:
    """The framing decision of one app process, from QUIZAPP_LTI_IFRAME,
    QUIZAPP_LTI_FRAME_ANCESTORS and the registered platforms (read at most every
    `ttl_seconds`; `forget()` reads them at the next request)."""

    def __init__(
        self,
        mode: str,
        extra: Iterable[str],
        load: Callable[[], list[tuple[str, str]]],
        ttl_seconds: float = EMBEDDING_TTL_SECONDS,
    ):
        if mode not in IFRAME_MODES:
            raise RuntimeError(f"QUIZAPP_LTI_IFRAME must be auto, 1 or 0 (got {mode!r})")
        self.mode = mode
        self.extra = tuple(extra)
        self.ttl_seconds = ttl_seconds
        self.loads = 0
        self._load = load
        self._lock = threading.Lock()
        self._cached: tuple[Framing, float] | None = None

    def forget(self) -> None:
        with self._lock:
            self._cached = None

    def current(self) -> Framing:
        if self.mode == "0":
            return Framing()
        with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[1] < self.ttl_seconds:
                return cached[0]
            try:
                platforms = self._load()
            except Exception:  # noqa: BLE001 (a header must never turn a page into a 500)
                log.exception("could not read the registered LTI platforms; framing refused")
                if cached is not None:
                    return cached[0]
                platforms = []
            self.loads += 1
            framing = self._decide(platforms)
            self._cached = (framing, time.monotonic())
            return framing

    def _decide(self, platforms: list[tuple[str, str]]) -> Framing:
        origins: list[str] = []
        for issuer, auth_login_url in platforms:
            for url in (issuer, auth_login_url):
                origin = origin_of(url)
                if origin and origin not in origins:
                    origins.append(origin)
        in_use = self.mode == "1" or bool(platforms)
        if not in_use:
            return Framing()
        ancestors = tuple(origins) + tuple(o for o in self.extra if o not in origins)
        return Framing(ancestors=ancestors, iframe_cookies=True)


def _platform_origins(app: Flask) -> Callable[[], list[tuple[str, str]]]:
    def load() -> list[tuple[str, str]]:
        # Its own short session: the request's may be mid-transaction or failed.
        with app.extensions["quizapp_db"].new_session() as session:
            return [(p.issuer, p.auth_login_url) for p, _ in list_platforms(session)]

    return load


def framing() -> Framing:
    """This process's current framing decision (cached; see `Embedding`)."""
    embedding: Embedding = current_app.extensions["quizapp_embedding"]
    return embedding.current()


def csp_for(decision: Framing) -> str:
    if not decision.ancestors:
        return CSP
    return f"{CSP_BASE}; frame-ancestors 'self' {' '.join(decision.ancestors)}"


def allow_framing_by(response: Response, origin: str | None) -> Response:
    """This response alone may also be framed by `origin`: LTI Dynamic Registration,
    where a VLE that is not registered yet shows quizapp's registration pages in its
    own frame. Everything else keeps the registered platforms' list."""
    if origin:
        decision = framing()
        ancestors = tuple(dict.fromkeys((*decision.ancestors, origin)))
        response.headers["Content-Security-Policy"] = csp_for(Framing(ancestors=ancestors))
    return response


def iframe_cookies_now() -> bool:
    """Whether this response's session cookie is `SameSite=None; Secure`: iframe mode is
    on and the browser keeps a Secure cookie from this request (HTTPS, or this machine:
    browsers treat http://localhost and 127.0.0.1 as secure). On plain http elsewhere the
    cookie stays Lax, so a test server on a LAN address still signs people in (iframes
    cannot work there anyway)."""
    if not has_request_context() or not framing().iframe_cookies:
        return False
    host = (request.host or "").rsplit(":", 1)[0].lower() if request.host else ""
    return (
        request.is_secure
        or bool(current_app.config.get("SESSION_COOKIE_SECURE"))
        or host in LOOPBACK_HOSTS
    )


class EmbeddableSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session whose SameSite and Secure follow `iframe_cookies_now`."""

    def get_cookie_samesite(self, app: Flask) -> str | None:
        if iframe_cookies_now():
            return "None"
        return super().get_cookie_samesite(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        if iframe_cookies_now():
            return True
        return super().get_cookie_secure(app)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "basic"
    csrf.init_app(app)
    app.extensions["quizapp_embedding"] = Embedding(
        str(app.config.get("QUIZAPP_LTI_IFRAME") or "auto").strip().lower(),
        frame_ancestors_setting(str(app.config.get("QUIZAPP_LTI_FRAME_ANCESTORS") or "")),
        _platform_origins(app),
    )
    app.session_interface = EmbeddableSessionInterface()

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        # The API answers 401 in JSON; pages send the browser to the login form.
        from flask import redirect, url_for

        from quizapp.web.errors import error_response, wants_json

        if wants_json():
            return error_response(401, "Please log in again; your session has ended.")
        view = current_app.view_functions.get(request.endpoint or "")
        framed_page = getattr(view, "framed_signed_out", None)
        if framed_page is not None and request.headers.get("Sec-Fetch-Dest") in FRAMES:
            return framed_page()
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        # The user, if this browser's session is still live on the server (not logged
        # out, not ended by "sign out everywhere", a password change or a disabled account).
        from flask import session

        from quizapp.services.identity import user_of_session
        from quizapp.web import db_session

        try:
            uid = int(user_id)
        except ValueError:
            return None
        return user_of_session(db_session(), uid, session.get("sid"))

    @app.after_request
    def security_headers(response: Response) -> Response:
        decision = framing()
        response.headers.setdefault("Content-Security-Policy", csp_for(decision))
        if "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]:
            # With VLEs allowed to frame, X-Frame-Options cannot say so (ALLOW-FROM is
            # gone from browsers) and DENY would contradict the CSP: left out then.
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint and not request.endpoint.startswith("static"):
            # Pages hold personal data and live answers: never from a cache or back button.
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def current_account() -> User:
    """The signed-in user, as a `User`, for views behind user_required or staff_required.
    Flask-Login's `current_user` is a proxy promising only "some user object" (its stub in
    stubs/flask_login); the proxy passes isinstance through, so the object returned is the
    same proxy views have always handed to the services."""
    user = current_user
    if not isinstance(user, User):
        raise RuntimeError("current_account() needs a signed-in user: the view lacks a guard")
    return user


def user_required(view: F) -> F:
    """Signed in, any role (staff may look at the student side too): the student pages
    and the API. Which attempt a user may touch is decided by the services (someone
    else's attempt: 404). Staff-only views use staff_required."""
    wrapped = login_required(view)
    wrapped.access = "user"  # type: ignore[attr-defined]
    return wrapped


def staff_required(view: F) -> F:
    """Logged in as staff; a student gets 403."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_account().is_staff:
            abort(403)
        return view(*args, **kwargs)

    wrapper.access = "staff"  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


FRAMES = ("iframe", "frame")  # Sec-Fetch-Dest of a navigation inside a frame


def when_framed_signed_out(page: Callable[[], Any]) -> Callable[[F], F]:
    """For a signed-in view a VLE opens in its own frame: someone not signed in gets
    `page` there instead of the sign-in form, which a frame often cannot complete
    (browsers keep no third-party cookie). Put it above the access decorator."""

    def mark(view: F) -> F:
        view.framed_signed_out = page  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """Reachable without logging in (login page, health check)."""
    view.access = "public"  # type: ignore[attr-defined]
    return view
