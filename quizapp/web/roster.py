"""Staff roster pages: the student list, roster import (upload → preview → confirm) and
new staff accounts.

The preview carries the file to the confirm step in a hidden field, with an HMAC-SHA-256
of its text (keyed by the app's secret) and the fingerprint of the previewed plan. The
confirm step checks the HMAC, parses and validates the text again, and applies it only
if the database would change exactly as previewed. Everything posts with a CSRF token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from itsdangerous import Signer
from werkzeug.datastructures import FileStorage
from wtforms import EmailField, HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length

from quizapp.domain.roster import (
    MAX_BYTES,
    Accommodation,
    ParsedRoster,
    normalise_text,
    parse_roster,
    parse_roster_bytes,
)
from quizapp.services.errors import Conflict, InvalidInput
from quizapp.services.progress import Steps
from quizapp.services.roster import (
    MIN_STAFF_PASSWORD,
    RosterInvalid,
    RosterPlan,
    apply_roster_steps,
    create_staff_account,
    plan_roster,
    plan_roster_steps,
    roster_page,
)
from quizapp.web import db_session, now, progress
from quizapp.web.input_guard import int_arg
from quizapp.web.progress import Outcome
from quizapp.web.security import current_account, staff_required

bp = Blueprint("roster", __name__, url_prefix="/staff/roster")

PAGE_SIZE = 200
MAX_PAGE = 100_000  # 20 million students: beyond any roster
MAX_QUERY_CHARS = 200
# A roster may be up to MAX_BYTES; the app's default body limit is far smaller. The
# upload carries the file (or pasted text), the confirm step carries it back.
_BODY_LIMIT = 2 * MAX_BYTES + 1_000_000


class RosterUploadForm(FlaskForm):
    file = FileField("CSV file")
    text = TextAreaField("…or paste the CSV text")


class RosterConfirmForm(FlaskForm):
    csv_text = HiddenField()
    digest = HiddenField(validators=[DataRequired()])
    plan = HiddenField(validators=[DataRequired()])
    source = HiddenField()


class StaffAccountForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=150)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        f"Password (at least {MIN_STAFF_PASSWORD} characters)",
        validators=[DataRequired(), Length(min=MIN_STAFF_PASSWORD, max=1024)],
    )
    confirm = PasswordField(
        "Password again", validators=[EqualTo("password", "The passwords differ.")]
    )


@bp.url_value_preprocessor
def _allow_large_rosters(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # Runs before every before_request hook, so before CSRFProtect reads the form; only
    # a logged-in staff member gets the larger limit, on the two roster posts.
    if request.endpoint in ("roster.preview", "roster.apply") and _is_staff():
        request.max_content_length = _BODY_LIMIT
        request.max_form_memory_size = _BODY_LIMIT


def _is_staff() -> bool:
    return bool(current_user.is_authenticated and current_account().is_staff)


def _signer() -> Signer:
    # The previewed file travels back through the browser: signed (with the one signing
    # scheme the app uses, itsdangerous) so what is applied is exactly what was shown.
    return Signer(current_app.config["SECRET_KEY"], salt="quizapp-roster-preview")


def _mac(text: str) -> str:
    return _signer().get_signature(text.encode()).decode()


@bp.route("/")
@staff_required
def index() -> Any:
    return _render_index(RosterUploadForm(), StaffAccountForm())


def _render_index(upload: RosterUploadForm, staff_form: StaffAccountForm, status: int = 200) -> Any:
    query = request.args.get("q", "").strip()[:MAX_QUERY_CHARS]
    # Bounded before it reaches OFFSET: ?page=99999999999999999999 overflowed the driver.
    listing = roster_page(db_session(), query, int_arg("page", 1, 1, MAX_PAGE), PAGE_SIZE)
    rows, groups, staff = listing.students, listing.groups, listing.staff
    total, page, pages = listing.total, listing.page, listing.pages
    page_html = render_template(
        "staff/roster.html",
        students=rows,
        groups=groups,
        staff=staff,
        total=total,
        page=page,
        pages=pages,
        query=query,
        upload=upload,
        staff_form=staff_form,
        max_mb=MAX_BYTES // 1_000_000,
        accommodation=lambda u: Accommodation(u.time_factor, u.extra_minutes).describe(),
    )
    return (page_html, status) if status != 200 else page_html


@bp.route("/preview", methods=["POST"])
@staff_required
def preview() -> Any:
    """The dry run of an upload; with progress for a page that asks for it."""
    form = RosterUploadForm()
    if not form.validate_on_submit():
        page = _render_index(form, StaffAccountForm(), 400)[0]
        return progress.answer(Outcome.refused("Check the form below.", page))
    upload = form.file.data
    if isinstance(upload, FileStorage) and upload.filename:
        source = upload.filename[:200]
        data = upload.read(MAX_BYTES + 1)
        parsed = parse_roster_bytes(data)
        text = normalise_text(data.decode("utf-8-sig")) if parsed.ok else ""
    elif (form.text.data or "").strip():
        source = "pasted text"
        parsed = parse_roster(form.text.data or "")
        text = normalise_text(form.text.data or "") if parsed.ok else ""
    else:
        message = "Choose a CSV file or paste its text."
        flash(message, "error")
        page = _render_index(form, StaffAccountForm(), 400)[0]
        return progress.answer(Outcome.refused(message, page))

    def work() -> Steps[Outcome]:
        plan = None
        if parsed.ok:
            plan = yield from plan_roster_steps(db_session(), parsed)
        return _preview_outcome(parsed, text, source, plan=plan)

    return progress.respond(work())


def _preview_outcome(
    parsed: ParsedRoster,
    text: str,
    source: str,
    message: str = "",
    *,
    plan: RosterPlan | None = None,
) -> Outcome:
    """The preview page: a plan to confirm, or every problem (refused: 400), or the new
    plan after a conflict (`message`; refused: 409)."""
    if plan is None and parsed.ok:
        plan = plan_roster(db_session(), parsed)
    problems = plan.problems if plan is not None else list(parsed.problems)
    confirm = RosterConfirmForm(
        formdata=None,
        csv_text=text,
        digest=_mac(text),
        plan=plan.fingerprint if plan else "",
        source=source,
    )
    page = render_template(
        "staff/roster_preview.html",
        parsed=parsed,
        plan=plan,
        problems=problems,
        confirm=confirm,
        source=source,
        message=message,
    )
    if problems:
        return Outcome.refused(
            f"The file has {len(problems)} problem(s); nothing was applied.", page, 400
        )
    if message:
        return Outcome.refused(message, page, 409)
    return Outcome.page(page)


@bp.route("/apply", methods=["POST"])
@staff_required
def apply() -> Any:
    """Apply exactly what was previewed, all or nothing; with progress for a page that
    asks for it."""
    form = RosterConfirmForm()
    if not form.validate_on_submit():
        raise InvalidInput("The confirmation was incomplete; upload the file again.")
    text = normalise_text(form.csv_text.data or "")
    if not _signer().verify_signature(text.encode(), (form.digest.data or "").encode()):
        raise InvalidInput("The previewed file was altered on its way back; upload it again.")
    source = (form.source.data or "")[:200]
    parsed = parse_roster(text)
    if not parsed.ok:
        return progress.answer(_preview_outcome(parsed, text, source))
    expected, by, moment = form.plan.data or "", current_account(), now()

    def work() -> Steps[Outcome]:
        try:
            result = yield from apply_roster_steps(
                db_session(), parsed, by, moment, expected=expected, source=source
            )
        except RosterInvalid:
            return _preview_outcome(parsed, text, source)
        except Conflict as exc:
            return _preview_outcome(parsed, text, source, exc.message)
        return Outcome.done(
            url_for("roster.index"),
            f"Roster imported from {source or 'the file'}: {result.summary()}",
        )

    return progress.respond(work())


@bp.route("/staff", methods=["POST"])
@staff_required
def create_staff() -> Any:
    form = StaffAccountForm()
    if not form.validate_on_submit():
        return _render_index(RosterUploadForm(), form, 400)
    try:
        user = create_staff_account(
            db_session(),
            form.username.data or "",
            form.name.data or "",
            form.email.data or "",
            form.password.data or "",
            current_account(),
            now(),
        )
    except InvalidInput as exc:
        flash(exc.message, "error")
        return _render_index(RosterUploadForm(), form, 400)
    flash(f"Created staff account {user.username}.", "success")
    return redirect(url_for("roster.index"))
