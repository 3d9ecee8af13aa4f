"""Logging in and out."""

from __future__ import annotations

import secrets
import unicodedata
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
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from quizapp.models import User
from quizapp.services import audit, identity
from quizapp.services.users import authenticate
from quizapp.web import db_session, now
from quizapp.web.forms import ConfirmForm, LoginForm
from quizapp.web.security import public, student_required

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
def login() -> str | Response | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(url_for("student.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        session_db = db_session()
        username = form.username.data or ""
        address = request.remote_addr or ""
        throttle = current_app.extensions["quizapp_login_throttle"]
        if not throttle.allows(username, address):
            audit.record_now(
                session_db, "login_throttled", now(), ip=address, username=username[:150]
            )
            return render_template("auth/login.html", form=form, throttled=True), 429
        user = authenticate(session_db, username, form.password.data or "")
        if user is not None:
            sign_in(user, "password")
            default = url_for("staff.index") if user.is_staff else url_for("student.dashboard")
            return redirect(_safe_next(request.args.get("next")) or default)
        throttle.failed(username, address)
        audit.record_now(session_db, "login_failed", now(), ip=address, username=username[:150])
        flash("The username or password is incorrect.", "error")
    return render_template("auth/login.html", form=form)


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
@student_required
def logout() -> Response:
    form = ConfirmForm()
    if form.validate_on_submit():
        identity.close_session(db_session(), current_user, session.get("sid"), now())
        logout_user()
        session.clear()
        flash("You have logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/logout/everywhere", methods=["POST"])
@student_required
def logout_everywhere() -> Response:
    """End every session of this account, on every device (a lost laptop, a shared
    computer left signed in)."""
    form = ConfirmForm()
    if form.validate_on_submit():
        identity.end_all_sessions(
            db_session(),
            current_user.id,
            now(),
            reason="signed out everywhere",
            ip=request.remote_addr or "",
        )
        logout_user()
        session.clear()
        flash("You have signed out on every device.", "info")
    return redirect(url_for("auth.login"))
