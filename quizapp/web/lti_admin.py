"""Staff pages for LTI: the registered VLEs (list, add, edit), roster sync from a VLE
course (choose → preview → apply), and the Dynamic Registration page the VLE opens
(`/lti/register`). Every page is staff only; the registration page sends someone who is
not signed in to the sign-in form and back, or, inside the VLE's frame (where a sign-in
cannot keep its cookie), offers a window of its own. The registration pages alone may
be framed by the registering VLE's origin. The work is in services/lti_registration.py
and services/lti_roster.py.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from quizapp.domain.lti_roster import Match
from quizapp.models import LtiPlatform
from quizapp.services.errors import Conflict, ServiceError
from quizapp.services.lti import LtiSettings, add_platform, list_platforms
from quizapp.services.lti_registration import (
    RegistrationRefused,
    ToolUrls,
    platform_details,
    read_configuration,
    register,
)
from quizapp.services.lti_roster import (
    SyncPlan,
    apply_sync,
    courses,
    find_course,
    match_of,
    plan_sync,
)
from quizapp.web import db_session, now
from quizapp.web.security import (
    allow_framing_by,
    current_account,
    origin_of,
    staff_required,
    when_framed_signed_out,
)

bp = Blueprint("lti_admin", __name__)

MAX_URL = 500


class PlatformForm(FlaskForm):
    name = StringField("Name (for people)", validators=[Length(max=200)])
    issuer = StringField("Issuer (platform id)", validators=[Length(max=255)])
    client_id = StringField("Client id", validators=[Length(max=255)])
    auth_login_url = StringField(
        "Authentication request URL (OIDC auth)", validators=[DataRequired(), Length(max=MAX_URL)]
    )
    auth_token_url = StringField(
        "Access token URL", validators=[DataRequired(), Length(max=MAX_URL)]
    )
    jwks_url = StringField(
        "Public keyset URL (JWKS)", validators=[DataRequired(), Length(max=MAX_URL)]
    )
    deployments = TextAreaField(
        "Deployment ids to add (one a line)", validators=[Length(max=10_000)]
    )


class SyncChoiceForm(FlaskForm):
    course = StringField("Course", validators=[DataRequired(), Length(max=20)])
    instructors_as_staff = BooleanField(
        "Create staff accounts for the VLE's instructors who have none"
    )


class SyncConfirmForm(FlaskForm):
    course = HiddenField(validators=[DataRequired(), Length(max=20)])
    instructors_as_staff = HiddenField()
    plan = HiddenField(validators=[DataRequired(), Length(max=100)])


class RegisterForm(FlaskForm):
    openid_configuration = HiddenField(validators=[DataRequired(), Length(max=2000)])
    registration_token = HiddenField(validators=[Length(max=4000)])


def _tool_urls() -> ToolUrls:
    return ToolUrls(
        login=url_for("lti.login", _external=True),
        launch=url_for("lti.launch", _external=True),
        jwks=url_for("lti.jwks", _external=True),
    )


def _match() -> Match:
    return match_of(LtiSettings.from_config(current_app.config).match)


# --- Platforms ------------------------------------------------------------------------------


@bp.route("/staff/lti/")
@staff_required
def platforms() -> Any:
    return render_template(
        "lti_admin/platforms.html",
        platforms=list_platforms(db_session()),
        tool=_tool_urls(),
        register_url=url_for("lti_admin.register_start", _external=True),
    )


def _deployments(text: str) -> list[str]:
    return [d.strip() for d in text.replace(",", "\n").splitlines() if d.strip()]


@bp.route("/staff/lti/platforms/new", methods=["GET", "POST"])
@staff_required
def platform_new() -> Any:
    form = PlatformForm()
    if form.validate_on_submit():
        if not (form.issuer.data or "").strip() or not (form.client_id.data or "").strip():
            flash("A platform needs an issuer and a client id.", "error")
        else:
            return _save(form, form.issuer.data or "", form.client_id.data or "", None, [])
    status = 400 if request.method == "POST" else 200
    return render_template("lti_admin/platform_form.html", form=form, platform=None), status


@bp.route("/staff/lti/platforms/<id:platform_id>", methods=["GET", "POST"])
@staff_required
def platform_edit(platform_id: int) -> Any:
    details = platform_details(db_session(), platform_id)
    stored = details.platform
    form = PlatformForm(obj=stored if request.method == "GET" else None)
    if form.validate_on_submit():
        # The issuer and client id name the registration; a different pair is another
        # registration (add it as a new platform).
        return _save(form, stored.issuer, stored.client_id, stored, details.deployments)
    status = 400 if request.method == "POST" else 200
    return render_template(
        "lti_admin/platform_form.html", form=form, platform=stored, deployments=details.deployments
    ), status


def _save(
    form: PlatformForm,
    issuer: str,
    client_id: str,
    stored: LtiPlatform | None,
    deployments: list[str],
) -> Any:
    try:
        platform = add_platform(
            db_session(),
            actor_id=current_account().id,
            now=now(),
            source="staff_page",
            issuer=issuer,
            client_id=client_id,
            auth_login_url=form.auth_login_url.data or "",
            auth_token_url=form.auth_token_url.data or "",
            jwks_url=form.jwks_url.data or "",
            deployments=_deployments(form.deployments.data or ""),
            name=(form.name.data or "").strip(),
        )
    except ServiceError as error:
        flash(error.message, "error")
        page = render_template(
            "lti_admin/platform_form.html", form=form, platform=stored, deployments=deployments
        )
        return page, 400
    flash(f"Saved the platform {platform.name or platform.issuer}.", "success")
    return redirect(url_for("lti_admin.platforms"))


# --- Roster sync ----------------------------------------------------------------------------


@bp.route("/staff/lti/roster")
@staff_required
def roster_sync() -> Any:
    return render_template(
        "lti_admin/roster_sync.html", courses=courses(db_session()), form=SyncChoiceForm()
    )


def _preview_page(plan: SyncPlan, message: str = "", status: int = 200) -> Any:
    confirm = SyncConfirmForm(
        formdata=None,
        course=str(plan.course.id),
        instructors_as_staff="1" if plan.instructors_as_staff else "",
        plan=plan.fingerprint,
    )
    page = render_template(
        "lti_admin/roster_preview.html", plan=plan, confirm=confirm, message=message
    )
    return page, status


def _refused(error: ServiceError, title: str = "Roster sync refused") -> Any:
    page = render_template(
        "lti_admin/refused.html", title=title, message=error.message, back="roster"
    )
    return page, error.status


@bp.route("/staff/lti/roster/preview", methods=["POST"])
@staff_required
def roster_preview() -> Any:
    form = SyncChoiceForm()
    if not form.validate_on_submit():
        flash("Choose a course.", "error")
        return redirect(url_for("lti_admin.roster_sync"))
    try:
        course = find_course(db_session(), form.course.data or "")
        plan = plan_sync(
            db_session(),
            course,
            now(),
            match=_match(),
            instructors_as_staff=bool(form.instructors_as_staff.data),
        )
    except ServiceError as error:
        return _refused(error)
    return _preview_page(plan)


@bp.route("/staff/lti/roster/apply", methods=["POST"])
@staff_required
def roster_apply() -> Any:
    form = SyncConfirmForm()
    if not form.validate_on_submit():
        flash("The confirmation was incomplete; preview the sync again.", "error")
        return redirect(url_for("lti_admin.roster_sync"))
    as_staff = form.instructors_as_staff.data == "1"
    try:
        course = find_course(db_session(), form.course.data or "")
        result = apply_sync(
            db_session(),
            course,
            current_account(),
            now(),
            expected=form.plan.data or "",
            match=_match(),
            instructors_as_staff=as_staff,
        )
    except Conflict as conflict:
        try:
            plan = plan_sync(
                db_session(), course, now(), match=_match(), instructors_as_staff=as_staff
            )
        except ServiceError as error:
            return _refused(error)
        return _preview_page(plan, conflict.message, 409)
    except ServiceError as error:
        return _refused(error)
    flash(f"Roster synced from {course.label}: {result.summary()}", "success")
    return redirect(url_for("roster.index"))


# --- Dynamic Registration -------------------------------------------------------------------


def _registration_refused(error: ServiceError) -> Any:
    page = render_template(
        "lti_admin/refused.html",
        title="quizapp was not registered",
        message=error.message,
        back="platforms",
    )
    return page, error.status


def _framed_by_vle(page: Any, configuration_url: str) -> Response:
    """The VLE shows the registration in its own frame before it is registered (and so
    before it may frame anything else): these pages alone may be framed by the origin
    of the configuration URL, which the registration requires the issuer to have."""
    return allow_framing_by(make_response(page), origin_of(configuration_url))


def _register_in_a_window() -> Response:
    """The VLE's frame carries no quizapp session (and often may not keep one: third-
    party cookies): sign in and register in a window of its own."""
    page = render_template("lti_admin/register_new_window.html", url=request.url)
    return _framed_by_vle(page, request.args.get("openid_configuration", "")[:2000])


@bp.route("/lti/register", methods=["GET"])
@when_framed_signed_out(_register_in_a_window)
@staff_required
def register_start() -> Any:
    """The registration initiation URL the VLE opens (Dynamic Registration §3.3)."""
    url = request.args.get("openid_configuration", "")[:2000]
    token = request.args.get("registration_token", "")[:4000]
    if not url:
        return render_template(
            "lti_admin/register_help.html", register_url=request.base_url, tool=_tool_urls()
        )
    try:
        configuration = read_configuration(url, token)
    except RegistrationRefused as error:
        return _registration_refused(error)
    form = RegisterForm(formdata=None, openid_configuration=url, registration_token=token)
    page = render_template(
        "lti_admin/register_confirm.html",
        configuration=configuration,
        form=form,
        tool=_tool_urls(),
    )
    return _framed_by_vle(page, url)


@bp.route("/lti/register", methods=["POST"])
@staff_required
def register_finish() -> Any:
    form = RegisterForm()
    if not form.validate_on_submit():
        return _registration_refused(
            RegistrationRefused("The confirmation was incomplete: start again from the VLE.")
        )
    url = form.openid_configuration.data or ""
    try:
        registered = register(
            db_session(),
            configuration_url=url,
            registration_token=form.registration_token.data or "",
            tool=_tool_urls(),
            by=current_account(),
            now=now(),
        )
    except RegistrationRefused as error:
        return _registration_refused(error)
    return _framed_by_vle(render_template("lti_admin/registered.html", registered=registered), url)
