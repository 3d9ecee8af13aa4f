"""Staff see and clear the sign-in throttle of an account or an address (audited), and
are told when requests come through a proxy nobody declared."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from quizapp.ratelimit import LoginThrottle
from quizapp.services import audit
from quizapp.web import course_zone, db_session, now
from quizapp.web.security import current_account, staff_required

bp = Blueprint("throttle", __name__, url_prefix="/staff/sign-in/throttle")


class ClearForm(FlaskForm):
    username = StringField("Username", validators=[Optional(), Length(max=150)])
    address = StringField("Address", validators=[Optional(), Length(max=64)])
    reason = TextAreaField(
        "Reason", validators=[DataRequired("Give a reason: it is kept in the audit trail."),
                              Length(max=500)]
    )  # fmt: skip


def _throttle() -> LoginThrottle:
    throttle: LoginThrottle = current_app.extensions["quizapp_login_throttle"]
    return throttle


def undeclared_proxy_seen() -> bool:
    """For the staff pages' warning banner."""
    return bool(_throttle().undeclared_proxy_seen())


@bp.route("")
@staff_required
def index() -> str:
    username = request.args.get("username", "").strip()[:150]
    address = request.args.get("address", "").strip()[:64]
    throttle = _throttle()
    statuses = []
    if username:
        statuses.append(throttle.status(username=username))
    if address:
        statuses.append(throttle.status(address=address))
    zone = course_zone()
    return render_template(
        "staff/throttle.html",
        username=username,
        address=address,
        statuses=[
            (
                s,
                datetime.fromtimestamp(s.waits_until, UTC).astimezone(zone)
                if s.waits_until
                else None,
            )
            for s in statuses
        ],
        form=ClearForm(username=username, address=address),
        undeclared_proxy=throttle.undeclared_proxy_seen(),
        policy=throttle.policy,
    )


@bp.route("/clear", methods=["POST"])
@staff_required
def clear() -> Response:
    form = ClearForm()
    target = {"username": form.username.data or "", "address": form.address.data or ""}
    query: dict[str, Any] = {k: v for k, v in target.items() if v}
    back = redirect(url_for("throttle.index", **query))
    if not form.validate_on_submit() or not (target["username"] or target["address"]):
        flash("Name an account or an address, and give a reason.", "error")
        return back
    throttle = _throttle()
    throttle.clear(username=target["username"].strip(), address=target["address"].strip())
    cleared = [
        throttle.status(**{key: value.strip()}).key for key, value in target.items() if value
    ]
    audit.record_now(
        db_session(),
        "throttle_cleared",
        now(),
        actor_id=current_account().id,
        ip=request.remote_addr or "",
        cleared=", ".join(cleared),
        reason=(form.reason.data or "").strip(),
    )
    flash(f"Cleared: {', '.join(cleared)}.", "success")
    return back
