"""Login manager, CSRF, response headers, and the access policy used by every view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, abort, request
from flask_login import LoginManager, current_user, login_required
from flask_wtf.csrf import CSRFProtect

from quizapp.models import User

login_manager = LoginManager()
csrf = CSRFProtect()

F = TypeVar("F", bound=Callable[..., Any])

# Who may reach a view: anyone, any logged-in user (their own data only, decided by the
# services), or staff. Every view carries one of these; the app refuses to start otherwise.
ACCESS_LEVELS = ("public", "user", "staff")

# Content-Security-Policy: no inline script anywhere; everything from our own origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "basic"
    csrf.init_app(app)

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        # The API answers 401 in JSON; pages send the browser to the login form.
        from flask import redirect, url_for

        from quizapp.web.errors import error_response, wants_json

        if wants_json():
            return error_response(401, "Please log in again; your session has ended.")
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
        response.headers.setdefault("Content-Security-Policy", CSP)
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


def public(view: F) -> F:
    """Reachable without logging in (login page, health check)."""
    view.access = "public"  # type: ignore[attr-defined]
    return view
