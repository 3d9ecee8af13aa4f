"""Sign-in for students without single sign-on: the staff page (who has never signed
in, who has no password; invite one, invite many, reset a password; the mail-merge CSV)
and the public page where a student sets a password from an invitation link.

Tokens exist only in the response that creates them (a CSV download, a page showing
one link, or e-mail): the database keeps their SHA-256, so the CSV cannot be
downloaded again later; making new links is the way to get new ones.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response as WerkzeugResponse

from quizapp.domain.passwords import MIN_LENGTH, RULE
from quizapp.models import User
from quizapp.services.errors import InvalidInput, NotFound
from quizapp.services.exports import csv_lines
from quizapp.services.invitations import (
    STATE_MESSAGES,
    IssuedInvitation,
    LinkInfo,
    LinkNotUsable,
    LinkState,
    MailReport,
    Scope,
    absolute_link,
    csv_rows,
    find_user,
    invite,
    invitees,
    latest_invitations,
    look_up,
    redeem,
    reset_password,
    send_invitations,
    sign_in_report,
    users_by_username,
)
from quizapp.services.mail import smtp_settings
from quizapp.web import course_zone, db_session, now
from quizapp.web.forms import InviteManyForm, InviteOneForm, ResetPasswordForm, SetPasswordForm
from quizapp.web.security import current_account, public, staff_required

bp = Blueprint("invitations", __name__)

_RULE = {"text": RULE, "min": MIN_LENGTH}


def _base_url() -> str:
    return current_app.config.get("QUIZAPP_BASE_URL") or request.host_url


def _default_days() -> int:
    return int(current_app.config.get("QUIZAPP_INVITATION_DAYS") or 7)


def _ip() -> str:
    return request.remote_addr or ""


# --- staff -------------------------------------------------------------------------------


@bp.route("/staff/sign-in")
@staff_required
def index() -> Any:
    return _render_index()


def _render_index(
    many: InviteManyForm | None = None, one: InviteOneForm | None = None, status: int = 200
) -> Any:
    session = db_session()
    days = _default_days()
    many = many or InviteManyForm(formdata=None, days=days)
    one = one or InviteOneForm(formdata=None, days=days)
    student = None
    student_invitation = None
    if username := request.args.get("student", "").strip()[:150]:
        student = find_user(session, username)
        student_invitation = latest_invitations(session, [student.id]).get(student.id)
        one = InviteOneForm(formdata=None, days=days, username=student.username)
    report = sign_in_report(session, now())
    page = render_template(
        "staff/signin.html",
        report=report,
        many=many,
        one=one,
        reset_form=lambda username: ResetPasswordForm(formdata=None, username=username, days=days),
        student=student,
        student_invitation=student_invitation,
        mail=smtp_settings(current_app.config) is not None,
        now=now(),
    )
    return (page, status) if status != 200 else page


@bp.route("/staff/sign-in/invite", methods=["POST"])
@staff_required
def invite_many() -> Any:
    """New links for everyone in the chosen group: a CSV to download, or e-mail."""
    form = InviteManyForm()
    if not form.validate_on_submit():
        return _render_index(many=form, status=400)
    session = db_session()
    users = invitees(session, Scope(form.scope.data))
    if not users:
        flash("Nobody to invite: everyone in that group has signed in already.", "info")
        return redirect(url_for("invitations.index"))
    issued = invite(
        session, users, now(), by_id=current_account().id, days=form.days.data, ip=_ip()
    )
    return _deliver(issued, send=bool(form.send.data), many=True)


@bp.route("/staff/sign-in/one", methods=["POST"])
@staff_required
def invite_one() -> Any:
    form = InviteOneForm()
    if not form.validate_on_submit():
        return _render_index(one=form, status=400)
    session = db_session()
    try:
        users = users_by_username(session, [form.username.data or ""])
    except (NotFound, InvalidInput) as exc:
        flash(exc.message, "error")
        return _render_index(one=form, status=exc.status)
    issued = invite(
        session, users, now(), by_id=current_account().id, days=form.days.data, ip=_ip()
    )
    return _deliver(issued, send=bool(form.send.data), many=False)


@bp.route("/staff/sign-in/reset", methods=["POST"])
@staff_required
def reset() -> Any:
    """The student's password stops working, every session of theirs ends, and a new
    link is made (shown, or e-mailed)."""
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        flash("The reset form was incomplete; try again.", "error")
        return _render_index(status=400)
    session = db_session()
    user = find_user(session, form.username.data or "")
    issued = reset_password(
        session, user.id, now(), by=current_account(), days=form.days.data, ip=_ip()
    )
    flash(
        f"{user.username}'s password no longer works and every session of theirs has "
        "ended; they set a new one with the link below.",
        "success",
    )
    return _deliver([issued], send=bool(form.send.data), many=False)


def _deliver(issued: list[IssuedInvitation], *, send: bool, many: bool) -> Any:
    settings = smtp_settings(current_app.config)
    report: MailReport | None = None
    if send and settings is not None:
        report = send_invitations(
            db_session(),
            issued,
            settings,
            _base_url(),
            course_zone(),
            now(),
            by=current_account(),
            ip=_ip(),
        )
        if not report.failed:
            flash(f"E-mailed {report.sent} link(s).", "success")
            student = None if many else issued[0].username
            return redirect(url_for("invitations.index", student=student))
    elif many:
        return _csv(issued)
    failed = {d.key: d.error for d in report.failed} if report else {}
    shown = [i for i in issued if i.invitation_id in failed] if report else issued
    return render_template(
        "staff/signin_links.html",
        issued=shown,
        report=report,
        failed=failed,
        link=lambda item: absolute_link(_base_url(), item.token),
    )


def _csv(issued: list[IssuedInvitation]) -> Response:
    stamp = now().astimezone(course_zone()).strftime("%Y%m%d-%H%M")
    body = "".join(csv_lines(csv_rows(issued, _base_url(), course_zone())))
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="invitations-{stamp}.csv"'},
    )


# --- the student's page ------------------------------------------------------------------


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@public
def set_password(token: str) -> Any:
    """Set a password from an invitation link. Opening the page changes nothing (mail
    scanners open links); posting a password that meets the rule uses the link up."""
    session = db_session()
    info = look_up(session, token, now())
    if info.state is not LinkState.VALID:
        return _link_not_usable(info)
    assert info.user is not None
    if current_user.is_authenticated and current_account().id != info.user.id:
        # A staff member checking a link must not use it up, nor sign in as the student.
        return render_template("auth/set_password_other.html", info=info), 409
    form = SetPasswordForm()
    error = None
    if form.validate_on_submit():
        try:
            user = redeem(session, token, form.password.data or "", now(), ip=_ip())
        except LinkNotUsable as exc:
            return _link_not_usable(exc.info)
        except InvalidInput as exc:
            error = exc.message
        else:
            return _signed_in(user, info)
    status = 400 if request.method == "POST" else 200
    page = render_template("auth/set_password.html", form=form, info=info, error=error, rule=_RULE)
    return page, status


def _signed_in(user: User, info: LinkInfo) -> WerkzeugResponse:
    # Signed in at once: the link holder has just chosen the password, so this grants
    # nothing they could not do by typing it on the login page; it spares a student
    # doing this minutes before a quiz a second form. Recorded as method "invitation".
    from quizapp.web.auth import sign_in

    assert info.invitation is not None
    sign_in(user, "invitation", invitation_id=info.invitation.id)
    flash(
        f"Your password is set and you are signed in. Next time, sign in with the username "
        f"{user.username} and this password.",
        "success",
    )
    return redirect(url_for("staff.index") if user.is_staff else url_for("student.dashboard"))


def _link_not_usable(info: LinkInfo) -> tuple[str, int]:
    status = 404 if info.state is LinkState.UNKNOWN else 410
    page = render_template(
        "auth/set_password_invalid.html", info=info, message=STATE_MESSAGES[info.state]
    )
    return page, status
