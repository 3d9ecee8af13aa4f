"""Logging in and out."""

from __future__ import annotations

import math
import secrets
import unicodedata
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from quizapp.models import User
from quizapp.services import audit, identity
from quizapp.services.quizzes import only_open_quiz
from quizapp.services.users import authenticate
from quizapp.web import db_session, devices, grace, now
from quizapp.web.forms import ConfirmForm, LoginForm
from quizapp.web.security import current_account, public, user_required
from quizapp.web.sso import password_login_refused

bp = Blueprint("auth", __name__)


MAX_NEXT_CHARS = 2000


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths: never an open redirect, never a header the server
    cannot send. Control characters (a CR LF in ?next= made a correct login a 500),
    spaces and backslashes (browsers read "/\\evil.example" as "//evil.example") mean
    the value did not come from this site: it is ignored and the login goes to the
    default page."""
    if not target or len(target) > MAX_NEXT_CHARS:
        return None
    if any(c.isspace() or c == "\\" or unicodedata.category(c)[0] == "C" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("student.dashboard"))
    if refused := password_login_refused():
        return refused
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data or ""
        account = username.strip().lower()[:150]
        address = _client_address()
        throttle = current_app.extensions["quizapp_login_throttle"]
        device = devices.device_for(request, account)
        decision = throttle.decide(username, address, device)
        if not decision.allowed:
            return _throttled(username, address, decision.wait, decision.reason, form)
        user = authenticate(db_session(), username, form.password.data or "")
        if user is not None:
            throttle.succeeded(username, address)
            sign_in(user, "password")
            response = redirect(_safe_next(request.args.get("next")) or landing_page(user))
            devices.remember(request, response, account)
            return response
        throttle.failed(username, address, device)
        audit.record_now(
            db_session(),
            "login_failed",
            now(),
            ip=request.remote_addr or "",
            username=username[:150],
            known_device=device is not None,
        )
        flash("The username or password is incorrect.", "error")
    return render_template("auth/login.html", form=form)


def landing_page(user: User) -> str:
    """Where a sign-in goes when no `next` says otherwise: staff to their index; a
    student with exactly one quiz open that they can start or resume straight to it (its
    start page, or the running attempt), one page fewer in the first minute of an exam;
    anyone else to the dashboard."""
    if user.is_staff:
        return url_for("staff.index")
    card = only_open_quiz(db_session(), user, now(), grace())
    if card is None:
        return url_for("student.dashboard")
    if card.in_progress is not None:
        return url_for("student.attempt_page", attempt_id=card.in_progress.id)
    return url_for("student.start_page", quiz_id=card.quiz.id)


def _client_address() -> str | None:
    """The client's address for the per-address throttle, or None when requests come
    through a proxy nobody declared (QUIZAPP_TRUSTED_PROXIES=0 while X-Forwarded-For is
    set): every student would then share the proxy's address, and throttling them as one
    would lock out a whole cohort. Said loudly in the log and on the staff page instead."""
    if request.headers.get("X-Forwarded-For") and not current_app.config["QUIZAPP_TRUSTED_PROXIES"]:
        if current_app.extensions["quizapp_login_throttle"].note_undeclared_proxy():
            current_app.logger.warning(
                "Requests carry X-Forwarded-For but QUIZAPP_TRUSTED_PROXIES is 0: the "
                "per-address sign-in throttle is off until the proxy is declared "
                "(docs/sign-in.md)."
            )
        return None
    return request.remote_addr or None


def _throttled(
    username: str, address: str | None, wait: timedelta, reason: str, form: LoginForm
) -> tuple[str, int, dict[str, str]]:
    seconds = max(1, math.ceil(wait.total_seconds()))
    audit.record_now(
        db_session(),
        "login_throttled",
        now(),
        ip=request.remote_addr or "",
        username=username[:150],
        reason=reason,
        wait_seconds=seconds,
    )
    page = render_template(
        "auth/login.html", form=form, throttled=True, wait_seconds=seconds, reason=reason
    )
    return page, 429, {"Retry-After": str(seconds)}


def sign_in(user: User, method: str, **details: Any) -> None:
    """Open a server-side session for `user` and bind this browser to it (every way of
    signing in ends here: password, SSO, invitation, LTI)."""
    session_id = identity.open_session(
        db_session(), user, method, now(), request.remote_addr or "", **details
    )
    # A fresh session at sign-in: nothing planted before it survives.
    session.clear()
    session.permanent = True
    session["sid"] = session_id
    # Names this browser session in the answer log (two at once get flagged).
    session["client"] = secrets.token_hex(8)
    login_user(user)


@bp.route("/logout", methods=["POST"])
@user_required
def logout() -> Response:
    form = ConfirmForm()
    if form.validate_on_submit():
        identity.close_session(db_session(), current_account(), session.get("sid"), now())
        logout_user()
        session.clear()
        flash("You have logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/logout/everywhere", methods=["POST"])
@user_required
def logout_everywhere() -> Response:
    """End every session of this account, on every device (a lost laptop, a shared
    computer left signed in)."""
    form = ConfirmForm()
    if form.validate_on_submit():
        identity.end_all_sessions(
            db_session(),
            current_account().id,
            now(),
            reason="signed out everywhere",
            ip=request.remote_addr or "",
        )
        logout_user()
        session.clear()
        flash("You have signed out on every device.", "info")
    return redirect(url_for("auth.login"))
