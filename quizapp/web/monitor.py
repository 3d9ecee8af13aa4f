"""Staff running a quiz: the overview with its live table (and the JSON it polls), the
preflight check, one student's attempts, and interventions (extra time, a later close,
an extra attempt, reopen, finalise now), each with a required reason for the audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, DateTimeLocalField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from quizapp.domain.scoring import format_mark
from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, Quiz
from quizapp.services import interventions, late_answers
from quizapp.services import monitor as monitor_service
from quizapp.services.catalog import quiz_or_404
from quizapp.services.errors import NotFound, ServiceError
from quizapp.web import course_zone, db_session, grace, now
from quizapp.web.security import current_account, staff_required

bp = Blueprint("monitor", __name__, url_prefix="/staff/quiz")

_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
_REASON = [
    DataRequired("Give a reason: it is kept in the audit trail."),
    Length(max=interventions.MAX_REASON),
]


class GrantForm(FlaskForm):
    student = StringField("Student username", validators=[Optional(), Length(max=150)])
    group = StringField("…or group", validators=[Optional(), Length(max=100)])
    extra_minutes = IntegerField(
        "Extra time (minutes)",
        validators=[Optional(), NumberRange(1, interventions.MAX_EXTRA_MINUTES)],
    )
    closes_at = DateTimeLocalField(
        "Later close (course time)", validators=[Optional()], format=_FORMATS
    )
    extra_attempt = BooleanField("One more attempt")
    no_time_limit = BooleanField("No time limit at all")
    no_close = BooleanField("No close: the window stays open for them")
    reason = TextAreaField("Reason", validators=_REASON)


class ReopenForm(FlaskForm):
    deadline = DateTimeLocalField(
        "New deadline (course time)",
        validators=[DataRequired("Give the new deadline as a date and time.")],
        format=_FORMATS,
    )
    reason = TextAreaField("Reason", validators=_REASON)


class FinaliseForm(FlaskForm):
    reason = TextAreaField("Reason", validators=_REASON)


class AcceptLateForm(FlaskForm):
    reason = TextAreaField("Reason for accepting", validators=_REASON)


def _local(moment: datetime | None, fmt: str = "%H:%M:%S %Z") -> str:
    return moment.astimezone(course_zone()).strftime(fmt) if moment else ""


def time_left(seconds: int | None) -> str:
    if seconds is None:
        return "no limit"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _row_json(row: monitor_service.LiveRow, moment: datetime) -> dict[str, Any]:
    seconds = row.seconds_left(moment)
    return {
        "attempt_id": row.attempt_id,
        "student": {
            "id": row.user_id,
            "username": row.username,
            "name": row.name,
            "url": url_for("monitor.student", user_id=row.user_id),
        },
        "started_at": row.started_at.isoformat(),
        "started_local": _local(row.started_at),
        "deadline": row.deadline_at.isoformat() if row.deadline_at else None,
        "deadline_local": _local(row.deadline_at),
        "seconds_left": seconds,
        "time_left": time_left(seconds),
        "last_save": row.last_save_at.isoformat() if row.last_save_at else None,
        "last_save_local": _local(row.last_save_at),
        "answered": row.answered,
        "slots": row.slots,
        "addresses": row.addresses,
        "clients": row.clients,
        "device_changed": row.device_changed,
    }


@bp.route("/<id:quiz_id>")
@staff_required
def overview(quiz_id: int) -> str:
    moment = now()
    view = monitor_service.overview(db_session(), quiz_id, moment, grace())
    return render_template(
        "staff/monitor.html",
        quiz=view.quiz,
        counts=view.counts,
        rows=[_row_json(r, moment) for r in view.rows],
        needs_staff=monitor_service.needs_staff(db_session(), quiz_id),
        now=moment,
        poll_seconds=current_app.config["QUIZAPP_MONITOR_POLL_SECONDS"],
    )


@bp.route("/<id:quiz_id>/live.json")
@staff_required
def live(quiz_id: int) -> Response:
    moment = now()
    view = monitor_service.overview(db_session(), quiz_id, moment, grace())
    return jsonify(
        quiz_id=view.quiz.id,
        server_now=moment.isoformat(),
        updated_local=_local(moment),
        counts=view.counts.as_json(),
        attempts=[_row_json(r, moment) for r in view.rows],
    )


@bp.route("/<id:quiz_id>/preflight")
@staff_required
def preflight(quiz_id: int) -> str:
    report = monitor_service.preflight(db_session(), quiz_id, course_zone())
    return render_template("staff/preflight.html", report=report, quiz=report.quiz)


@bp.route("/student/<id:user_id>")
@staff_required
def student(user_id: int) -> str:
    history = monitor_service.student_history(db_session(), user_id, now(), grace(), course_zone())
    return render_template(
        "staff/student.html",
        history=history,
        user=history.user,
        in_progress=AttemptState.IN_PROGRESS,
    )


@bp.route("/student/<id:user_id>/late-answer/<id:log_id>/accept", methods=["POST"])
@staff_required
def accept_late(user_id: int, log_id: int) -> Any:
    """Count an answer that arrived too late: it becomes the slot's answer and is graded
    (audited with the reason). The per-student page shows the refused answers."""
    form = AcceptLateForm()
    if not form.validate_on_submit():
        flash("Give a reason for accepting the answer: it is kept in the audit trail.", "error")
        return redirect(url_for("monitor.student", user_id=user_id))
    accepted = late_answers.accept_refused_answer(
        db_session(),
        log_id,
        now(),
        current_account(),
        form.reason.data or "",
        request.remote_addr or "",
        student_id=user_id,
    )
    flash(
        f"The late answer now counts; attempt {accepted.number} scores "
        f"{format_mark(accepted.score, 4)}.",
        "success",
    )
    return redirect(url_for("monitor.student", user_id=user_id))


def _local_input(value: datetime | None) -> datetime | None:
    return interventions.local_to_utc(value, course_zone()) if value is not None else None


def _running_row(quiz_id: int, username: str | None) -> dict[str, Any] | None:
    """The student's attempt in progress at this quiz as the live table shows it, so the
    intervention form can state their current deadline before anything is applied."""
    username = (username or "").strip()
    if not username:
        return None
    moment = now()
    view = monitor_service.overview(db_session(), quiz_id, moment, grace())
    row = next((r for r in view.rows if r.username == username), None)
    return _row_json(row, moment) if row is not None else None


def _intervene_form(quiz: Quiz, form: GrantForm, status: int = 200) -> Any:
    page = render_template(
        "staff/intervene.html",
        quiz=quiz,
        form=form,
        running=_running_row(quiz.id, form.student.data),
    )
    return (page, status) if status != 200 else page


@bp.route("/<id:quiz_id>/intervene", methods=["GET", "POST"])
@staff_required
def intervene(quiz_id: int) -> Any:
    session = db_session()
    quiz = quiz_or_404(session, quiz_id)
    form = GrantForm()
    if request.method == "GET":
        form.student.data = request.args.get("student", "")[:150]
        form.group.data = request.args.get("group", "")[:100]
        return _intervene_form(quiz, form)
    if not form.validate_on_submit():
        return _intervene_form(quiz, form, 400)
    student_name = (form.student.data or "").strip() or None
    group = (form.group.data or "").strip() or None
    try:
        result = interventions.grant(
            session,
            quiz.id,
            interventions.Grant(
                extra_minutes=form.extra_minutes.data,
                closes_at=_local_input(form.closes_at.data),
                extra_attempt=bool(form.extra_attempt.data),
                reason=form.reason.data or "",
                no_time_limit=bool(form.no_time_limit.data),
                no_close=bool(form.no_close.data),
            ),
            now(),
            current_account(),
            username=student_name,
            group=group,
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _intervene_form(quiz, form, exc.status)
    flash(_grant_message(result), "success")
    if result.user_id is not None:
        return redirect(url_for("monitor.student", user_id=result.user_id))
    return redirect(url_for("monitor.overview", quiz_id=quiz.id))


def _grant_message(result: interventions.GrantResult) -> str:
    change, parts = result.change, []
    if change.no_time_limit:
        parts.append("no time limit")
    if change.no_close:
        parts.append("no close")
    if change.time_limit is not None:
        parts.append(f"time limit {int(change.time_limit.total_seconds() // 60)} min")
    if change.closes_at is not None:
        parts.append(f"close {_local(change.closes_at, '%a %d %b %H:%M %Z')}")
    if change.max_attempts is not None:
        parts.append(f"{change.max_attempts} attempt(s)")
    moved = f"; {len(result.moved)} running attempt(s) moved" if result.moved else ""
    return f"Override for {result.target}: {', '.join(parts)}{moved}."


def _attempt(attempt_id: int) -> Attempt:
    attempt = db_session().get(Attempt, attempt_id)
    if attempt is None:
        raise NotFound("No such attempt.")
    return attempt


@bp.route("/attempt/<id:attempt_id>/reopen", methods=["GET", "POST"])
@staff_required
def reopen(attempt_id: int) -> Any:
    attempt = _attempt(attempt_id)
    form = ReopenForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _intervene_page("staff/intervene_reopen.html", attempt, form, 400)
        try:
            interventions.reopen(
                db_session(),
                attempt.id,
                _local_input(form.deadline.data) or now(),
                now(),
                current_account(),
                form.reason.data or "",
                request.remote_addr or "",
            )
        except ServiceError as exc:
            flash(exc.message, "error")
            return _intervene_page("staff/intervene_reopen.html", attempt, form, exc.status)
        until = _local(attempt.deadline_at, "%a %d %b %H:%M %Z")
        flash(f"Attempt {attempt.number} reopened until {until}.", "success")
        return redirect(url_for("monitor.student", user_id=attempt.user_id))
    if form.deadline.data is None:
        suggested = now() + timedelta(minutes=30)
        form.deadline.data = suggested.astimezone(course_zone()).replace(
            tzinfo=None, second=0, microsecond=0
        )
    return _intervene_page("staff/intervene_reopen.html", attempt, form)


@bp.route("/attempt/<id:attempt_id>/finalise", methods=["GET", "POST"])
@staff_required
def finalise(attempt_id: int) -> Any:
    attempt = _attempt(attempt_id)
    form = FinaliseForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _intervene_page("staff/intervene_finalise.html", attempt, form, 400)
        try:
            by_staff = interventions.finalise_now(
                db_session(),
                attempt.id,
                now(),
                grace(),
                current_account(),
                form.reason.data or "",
                request.remote_addr or "",
            )
        except ServiceError as exc:
            flash(exc.message, "error")
            return _intervene_page("staff/intervene_finalise.html", attempt, form, exc.status)
        flash(
            f"Attempt {attempt.number} finalised."
            if by_staff
            else "Its time had already run out: it was finalised at its deadline.",
            "success",
        )
        return redirect(url_for("monitor.student", user_id=attempt.user_id))
    return _intervene_page("staff/intervene_finalise.html", attempt, form)


def _intervene_page(template: str, attempt: Attempt, form: FlaskForm, status: int = 200) -> Any:
    page = render_template(
        template, attempt=attempt, quiz=attempt.quiz, user=attempt.user, form=form
    )
    return (page, status) if status != 200 else page
