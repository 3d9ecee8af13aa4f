"""Staff marking pages: the manual-marking queue (by slot), a form per answer, each
attempt's mark history, and fix-and-regrade (choose → dry-run table → confirm).

Views parse the form and call one service (services/marking.py, services/regrade.py);
every post carries a CSRF token (Flask-WTF). The regrade confirm step carries the dry
run's fingerprint: if anything changed since, nothing is written and the new dry run is
shown instead.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # web/forms.py
from wtforms.validators import DataRequired, Length, Optional

from quizapp.domain.scoring import format_mark
from quizapp.models import Quiz
from quizapp.services import marking as marking_service
from quizapp.services import regrade as regrade_service
from quizapp.services.catalog import attempt_in_quiz, quiz_or_404
from quizapp.services.errors import Conflict, InvalidInput, NotFound
from quizapp.services.progress import Steps
from quizapp.web import db_session, grace, now, progress
from quizapp.web.progress import Outcome
from quizapp.web.security import current_account, staff_required

bp = Blueprint("marking", __name__, url_prefix="/staff/marking")

MODE_LABELS = [
    SelectChoice("regrade", "Regrade against the corrected question"),
    SelectChoice("accept", "Regrade, and also accept these answers as full marks"),
    SelectChoice("full_marks", "Full marks for everyone"),
]


class MarkForm(FlaskForm):
    """One answer's mark; each form on the slot page has its own prefix (a<attempt id>)."""

    mark = StringField("Mark", validators=[DataRequired("Enter a mark."), Length(max=20)])
    comment = TextAreaField("Comment (the student sees it)", validators=[Length(max=5000)])
    based_on = HiddenField()


class RegradeForm(FlaskForm):
    question = SelectField("Question", validators=[DataRequired()])
    mode = RadioField("What to do", choices=MODE_LABELS, default="regrade")
    accept = TextAreaField(
        "Answers to accept (one a line: option keys for choice questions, exact stored "
        "answers otherwise; for multiple response, the keys of one accepted selection)",
        validators=[Optional(), Length(max=5000)],
    )
    never_lower = BooleanField("Never lower a mark (keep the current one if higher)")


class RegradeConfirmForm(FlaskForm):
    question = HiddenField(validators=[DataRequired()])
    mode = HiddenField(validators=[DataRequired()])
    accept = HiddenField()
    never_lower = HiddenField()
    fingerprint = HiddenField(validators=[DataRequired()])


def _quiz(quiz_id: int) -> Quiz:
    return quiz_or_404(db_session(), quiz_id)


@bp.route("/quiz/<id:quiz_id>")
@staff_required
def queue(quiz_id: int) -> str:
    overview = marking_service.queue_overview(db_session(), quiz_id, now(), grace())
    return render_template("staff/marking_queue.html", overview=overview)


def _slot_forms(page: marking_service.SlotPage) -> dict[int, MarkForm]:
    forms = {}
    for group in page.groups:
        for item in group.items:
            form = MarkForm(prefix=f"a{item.attempt.id}", formdata=None)
            form.based_on.data = str(item.mark.id) if item.mark else ""
            if item.mark is not None and item.mark.source == "manual":
                form.comment.data = item.mark.feedback
            forms[item.attempt.id] = form
    return forms


def _render_slot(
    quiz_id: int, slot: int, everything: bool, failed: tuple[int, MarkForm, str] | None = None
) -> Any:
    page = marking_service.slot_page(db_session(), quiz_id, slot, everything=everything)
    forms = _slot_forms(page)
    status = 200
    if failed is not None:
        attempt_id, form, message = failed
        forms[attempt_id] = form
        if message:
            form.mark.errors = [*form.mark.errors, message]
        status = 400
    html = render_template(
        "staff/marking_slot.html",
        page=page,
        forms=forms,
        everything=everything,
        failed_attempt=failed[0] if failed else None,
    )
    return html, status


@bp.route("/quiz/<id:quiz_id>/slot/<id:slot>")
@staff_required
def slot(quiz_id: int, slot: int) -> Any:
    everything = request.args.get("all") == "1"
    return _render_slot(quiz_id, slot, everything)


@bp.route("/quiz/<id:quiz_id>/slot/<id:slot>/attempt/<id:attempt_id>", methods=["POST"])
@staff_required
def mark(quiz_id: int, slot: int, attempt_id: int) -> Any:
    everything = request.args.get("all") == "1"
    form = MarkForm(prefix=f"a{attempt_id}")
    if not form.validate_on_submit():
        return _render_slot(quiz_id, slot, everything, (attempt_id, form, ""))
    session = db_session()
    attempt = attempt_in_quiz(session, quiz_id, attempt_id)
    based_on_text = form.based_on.data or ""
    based_on = int(based_on_text) if based_on_text.isdigit() else None
    try:
        row = marking_service.mark_answer(
            session,
            attempt_id,
            slot,
            form.mark.data or "",
            form.comment.data or "",
            current_account().id,
            now(),
            based_on=based_on,
            ip=request.remote_addr or "",
        )
    except (InvalidInput, Conflict) as exc:
        return _render_slot(quiz_id, slot, everything, (attempt_id, form, exc.message))
    flash(
        f"Saved {attempt.user.username}'s mark for question {slot}: "
        f"{format_mark(row.marks)}; the attempt's total is now {format_mark(attempt.score)}.",
        "success",
    )
    if everything:
        target = url_for("marking.slot", quiz_id=quiz_id, slot=slot, all="1")
        return redirect(f"{target}#answer-{attempt_id}")
    return redirect(url_for("marking.slot", quiz_id=quiz_id, slot=slot))


@bp.route("/attempt/<id:attempt_id>/history")
@staff_required
def history(attempt_id: int) -> str:
    found = marking_service.attempt_history(db_session(), attempt_id)
    return render_template("staff/marking_history.html", history=found)


def _regrade_form(quiz_id: int) -> tuple[RegradeForm, list[regrade_service.QuestionChoice]]:
    questions = regrade_service.regradable_questions(db_session(), quiz_id)
    form = RegradeForm()
    form.question.choices = [
        (q.key, f"{q.key} (question {', '.join(map(str, q.slots))}, {q.qtype})") for q in questions
    ]
    return form, questions


def _options(
    question: str, mode: str, accept: str, never_lower: bool
) -> regrade_service.RegradeOptions:
    lines = tuple(line.strip() for line in accept.splitlines() if line.strip())
    return regrade_service.RegradeOptions(
        question_key=question,
        mode=regrade_service.parse_mode(mode),
        accept=lines,
        never_lower=never_lower,
    )


@bp.route("/quiz/<id:quiz_id>/regrade", methods=["GET", "POST"])
@staff_required
def regrade(quiz_id: int) -> Any:
    """GET: choose the question, mode and options. POST: the dry run (writes nothing),
    with progress for a page that asks for it (web/progress.py)."""
    quiz = _quiz(quiz_id)
    form, questions = _regrade_form(quiz_id)

    def form_page() -> str:
        return render_template(
            "staff/regrade.html", quiz=quiz, form=form, questions=questions, plan=None
        )

    if request.method == "GET":
        return form_page()
    if not form.validate_on_submit():
        return progress.answer(Outcome.refused("Check the form below.", form_page()))
    try:
        options = _options(
            form.question.data or "",
            form.mode.data or "",
            form.accept.data or "",
            bool(form.never_lower.data),
        )
    except InvalidInput as exc:
        form.question.errors = [*form.question.errors, exc.message]
        return progress.answer(Outcome.refused(exc.message, form_page()))

    def work() -> Steps[Outcome]:
        try:
            plan = yield from regrade_service.plan_regrade_steps(
                db_session(), quiz_id, options, now(), grace()
            )
        except (InvalidInput, NotFound) as exc:
            form.question.errors = [*form.question.errors, exc.message]
            return Outcome.refused(exc.message, form_page())
        return Outcome.page(_render_plan(quiz, plan))

    return progress.respond(work())


def _render_plan(quiz: Quiz, plan: regrade_service.RegradePlan) -> str:
    confirm = RegradeConfirmForm(formdata=None)
    confirm.question.data = plan.options.question_key
    confirm.mode.data = plan.options.mode.value
    confirm.accept.data = "\n".join(plan.options.accept)
    confirm.never_lower.data = "1" if plan.options.never_lower else ""
    confirm.fingerprint.data = plan.fingerprint
    return render_template("staff/regrade_plan.html", quiz=quiz, plan=plan, confirm=confirm)


@bp.route("/quiz/<id:quiz_id>/regrade/commit", methods=["POST"])
@staff_required
def regrade_commit(quiz_id: int) -> Any:
    """Apply exactly the dry run the examiner saw (its fingerprint), in one transaction;
    with progress for a page that asks for it."""
    quiz = _quiz(quiz_id)
    form = RegradeConfirmForm()
    if not form.validate_on_submit():
        raise InvalidInput("The confirmation is incomplete: start the regrade again.")
    options = _options(
        form.question.data or "",
        form.mode.data or "",
        form.accept.data or "",
        form.never_lower.data == "1",
    )
    session = db_session()
    actor_id, ip = current_account().id, request.remote_addr or ""

    def work() -> Steps[Outcome]:
        try:
            plan = yield from regrade_service.commit_regrade_steps(
                session,
                quiz_id,
                options,
                actor_id,
                now(),
                grace(),
                expected=form.fingerprint.data,
                ip=ip,
            )
        except Conflict as exc:
            # Nothing was written: show the dry run as it is now, to confirm again.
            fresh = yield from regrade_service.plan_regrade_steps(
                session, quiz_id, options, now(), grace()
            )
            flash(exc.message, "warning")
            return Outcome.refused(exc.message, _render_plan(quiz, fresh), 409)
        return Outcome.done(
            url_for("marking.regrade", quiz_id=quiz_id),
            f"Regraded {options.question_key}. {plan.message}",
        )

    return progress.respond(work())
