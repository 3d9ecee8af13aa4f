"""The student's side: dashboard, start page, attempt page, submit, result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as flask_session
from markupsafe import Markup
from werkzeug.wrappers import Response

from quizapp.bank.preview import rewrite_view
from quizapp.domain.qtypes.essay import word_count
from quizapp.domain.render import render_markdown
from quizapp.domain.timing import AttemptState, WindowState
from quizapp.models import Attempt
from quizapp.services import attempts as attempt_service
from quizapp.services import late_answers
from quizapp.services.catalog import (
    attempt_questions,
    quiz_info,
    release_policy,
    version_sources,
)
from quizapp.services.errors import Conflict
from quizapp.services.marking import NOTHING_PENDING, Pending, pending_marks
from quizapp.services.quizzes import dashboard as dashboard_service
from quizapp.services.quizzes import quiz_for_student
from quizapp.services.release import released
from quizapp.web import course_zone, db_session, grace, now
from quizapp.web.assets import asset_rewriter
from quizapp.web.forms import AnswersForm, ConfirmForm
from quizapp.web.security import current_account, user_required

bp = Blueprint("student", __name__)


@bp.route("/")
@user_required
def dashboard() -> str:
    moment = now()
    groups = dashboard_service(db_session(), current_account(), moment, grace())
    # A student who signed in before the window opens is told that this sign-in will do:
    # the session outlives the wait. Flask's cookie lasts PERMANENT_SESSION_LIFETIME
    # (QUIZAPP_SESSION_HOURS, 12 h) from the latest request, the server-side session until
    # logout, and the start form's CSRF token is made when that page is loaded; so any
    # quiz opening within that lifetime is reached without signing in again.
    lifetime = current_app.permanent_session_lifetime
    waiting = [
        card for card in groups[WindowState.UPCOMING] if card.timing.opens_at - moment <= lifetime
    ]
    return render_template("student/dashboard.html", groups=groups, now=moment, waiting=waiting)


@bp.route("/quiz/<id:quiz_id>")
@user_required
def start_page(quiz_id: int) -> str | Response:
    card = quiz_for_student(db_session(), quiz_id, current_account(), now(), grace())
    if card.in_progress is not None:
        return redirect(url_for("student.attempt_page", attempt_id=card.in_progress.id))
    moment = now()
    deadline = card.timing.deadline_if_started_at(moment)
    return render_template(
        "student/start.html",
        card=card,
        now=moment,
        deadline=deadline,
        available=(deadline - moment).total_seconds() if deadline else None,
        cut_by_close=card.timing.is_cut_by_close(moment),
        form=ConfirmForm(),
    )


@bp.route("/quiz/<id:quiz_id>/start", methods=["POST"])
@user_required
def start(quiz_id: int) -> Response:
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    attempt = attempt_service.start_attempt(
        db_session(), quiz_id, current_account(), now(), grace(), request.remote_addr or ""
    )
    return redirect(url_for("student.attempt_page", attempt_id=attempt.id))


def _own_attempt(attempt_id: int) -> Attempt:
    return attempt_service.attempt_for_student(
        db_session(), attempt_id, current_account(), now(), grace()
    )


def _questions_for_page(attempt: Attempt) -> list[dict[str, Any]]:
    session = db_session()
    answers, flagged = attempt_service.page_answers(session, attempt.id)
    pairs = attempt_questions(session, attempt)
    sources = version_sources(session, (entry.version_id for entry, _ in pairs))
    items = []
    for number, (entry, question) in enumerate(pairs, start=1):
        answer = answers.get(entry.slot)
        value = answer.value if answer else None
        items.append(
            {
                "number": number,
                "slot": entry.slot,
                # Immutable: with the variant, the key of web/question_html.py's cache.
                "version_id": entry.version_id,
                "variant": entry.variant,
                "marks": entry.marks,
                "stem_html": question.stem_html(entry.variant),
                # Option labels may hold images, whose src the page rewrites as the
                # stem's (bank_assets in the template) to their served address.
                "view": rewrite_view(
                    question.body.view(entry.variant),
                    asset_rewriter(sources.get(entry.version_id, "")),
                ),
                "values": question.body.form_values(entry.variant, value)
                if value is not None
                else [],
                "saved_at": answer.saved_at if answer and value is not None else None,
                # The sequence of the answer the page shows: attempt.js compares it with
                # the status poll's to notice an answer saved from another window.
                "seq": answer.seq if answer else None,
                "flagged": entry.slot in flagged,
                "source": sources.get(entry.version_id, ""),
            }
        )
    return items


@bp.route("/attempt/<id:attempt_id>")
@user_required
def attempt_page(attempt_id: int) -> str | Response:
    attempt = _own_attempt(attempt_id)
    if attempt.state is not AttemptState.IN_PROGRESS:
        return redirect(url_for("student.result", attempt_id=attempt.id))
    moment = now()
    form = AnswersForm(seq=str(attempt_service.page_sequence_base(moment)))
    return render_template(
        "student/attempt.html",
        attempt=attempt,
        # The quiz's columns as plain values: no ORM load of the quiz for its title.
        quiz=quiz_info(db_session(), attempt.quiz_id),
        questions=_questions_for_page(attempt),
        form=form,
        now=moment,
        # attempt.js restarts its sequence from the server's time after another window's
        # answer, as a page loaded then would.
        seq_factor=attempt_service.SEQ_PAGE_FACTOR,
    )


def _submitted_answers(attempt: Attempt) -> dict[int, Sequence[str]]:
    """Form fields slot-N for every slot the page showed (present-N marks it shown, so an
    untouched checkbox group still counts as "cleared")."""
    slots = {int(entry["slot"]) for entry in attempt.layout}
    submitted: dict[int, Sequence[str]] = {}
    for slot in slots:
        if f"present-{slot}" in request.form:
            submitted[slot] = request.form.getlist(f"slot-{slot}")
    return submitted


@bp.route("/attempt/<id:attempt_id>", methods=["POST"])
@user_required
def save(attempt_id: int) -> Response:
    form = AnswersForm()
    if not form.validate_on_submit():
        abort(400)
    attempt = _own_attempt(attempt_id)
    try:
        seq = int(form.seq.data or "")
    except ValueError:
        abort(400)
    session = db_session()
    moment = now()
    try:
        results = attempt_service.save_answers(
            session,
            attempt.id,
            _submitted_answers(attempt),
            seq,
            moment,
            grace(),
            request.remote_addr or "",
            flask_session.get("client", ""),
        ).results
    except Conflict as exc:
        # Finished (in another tab, or by the deadline): what was posted is kept as
        # evidence by the service, and the message says so.
        flash(exc.message, "warning")
        return redirect(url_for("student.result", attempt_id=attempt.id))
    stale = [r.slot for r in results if r.status is attempt_service.SaveStatus.STALE]
    action = request.form.get("action", "save")
    if action == "time-up":
        attempt_service.finish_if_deadline_reached(session, attempt, moment)
        if attempt.state is not AttemptState.IN_PROGRESS:
            return redirect(url_for("student.result", attempt_id=attempt.id))
    if stale:
        flash(
            "Some answers were changed in another window since this page loaded; "
            "the newer answers are shown.",
            "warning",
        )
    else:
        flash(f"Answers saved at {moment.astimezone(course_zone()):%H:%M:%S}.", "success")
    if action == "submit":
        return redirect(url_for("student.confirm_submit", attempt_id=attempt.id))
    return redirect(url_for("student.attempt_page", attempt_id=attempt.id))


@bp.route("/attempt/<id:attempt_id>/submit")
@user_required
def confirm_submit(attempt_id: int) -> str | Response:
    attempt = _own_attempt(attempt_id)
    if attempt.state is not AttemptState.IN_PROGRESS:
        return redirect(url_for("student.result", attempt_id=attempt.id))
    questions = _questions_for_page(attempt)
    unanswered = [q["number"] for q in questions if not q["values"]]
    flagged = [q["number"] for q in questions if q["flagged"]]
    # Essays whose length is outside the limits the question states (the same count
    # as the hint under the box; only staff decide what a short essay is worth).
    essays: dict[int, str] = {}
    for q in questions:
        view = q["view"]
        if view.input != "essay" or not q["values"]:
            continue
        words = word_count(q["values"][0])
        low, high = view.extra.get("min_words"), view.extra.get("max_words")
        if low and words < low:
            essays[q["number"]] = f"{words} words; at least {low} asked"
        elif high and words > high:
            essays[q["number"]] = f"{words} words; at most {high} asked"
    # One line per question to look at again, with every reason, in question order.
    checks = []
    for q in questions:
        number = q["number"]
        reasons = []
        if number in unanswered:
            reasons.append("not answered")
        if number in essays:
            reasons.append(essays[number])
        if number in flagged:
            reasons.append("flagged for review")
        if reasons:
            checks.append({"number": number, "reasons": reasons})
    return render_template(
        "student/confirm_submit.html",
        attempt=attempt,
        quiz=attempt.quiz,
        total=len(questions),
        unanswered=unanswered,
        flagged=flagged,
        essays=sorted(essays),
        checks=checks,
        form=ConfirmForm(),
        now=now(),
    )


@bp.route("/attempt/<id:attempt_id>/submit", methods=["POST"])
@user_required
def submit(attempt_id: int) -> Response:
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    attempt = _own_attempt(attempt_id)
    if attempt_service.submit_attempt(db_session(), attempt, now(), grace()):
        flash("Your answers have been submitted.", "success")
    else:
        flash("This attempt was already finished; nothing was changed.", "info")
    return redirect(url_for("student.result", attempt_id=attempt.id))


@bp.route("/attempt/<id:attempt_id>/result")
@user_required
def result(attempt_id: int) -> str | Response:
    attempt = _own_attempt(attempt_id)
    if attempt.state is AttemptState.IN_PROGRESS:
        return redirect(url_for("student.attempt_page", attempt_id=attempt.id))
    session = db_session()
    visible = released(session, attempt.quiz, now())
    numbers = {int(raw["slot"]): n for n, raw in enumerate(attempt.layout, start=1)}
    return render_template(
        "student/result.html",
        pending=_pending(session, attempt),
        attempt=attempt,
        refused=[
            (numbers.get(r.slot, r.slot), r)
            for r in late_answers.refused_answers(session, [attempt.id])
        ],
        quiz=attempt.quiz,
        marks_released=visible.marks,
        answers_released=visible.answers,
        release=release_policy(attempt.quiz),
        closes_at=visible.closed_for_everyone_at,
    )


def _pending(session: Any, attempt: Attempt) -> Pending:
    """What is still to be marked: the score is provisional while anything is."""
    return pending_marks(session, attempt_ids=[attempt.id]).get(attempt.id, NOTHING_PENDING)


@bp.route("/attempt/<id:attempt_id>/review")
@user_required
def review(attempt_id: int) -> str | Response:
    """The student's own answers, with marks and with correct answers and feedback only
    as far as the quiz's release policy allows now."""
    attempt = _own_attempt(attempt_id)
    if attempt.state is AttemptState.IN_PROGRESS:
        return redirect(url_for("student.attempt_page", attempt_id=attempt.id))
    session = db_session()
    visible = released(session, attempt.quiz, now())
    answers = attempt_service.current_answers(session, attempt.id)
    marks = attempt_service.current_marks(session, attempt.id) if visible.marks else {}
    pairs = attempt_questions(session, attempt)
    sources = version_sources(session, (entry.version_id for entry, _ in pairs))
    items = []
    for number, (entry, question) in enumerate(pairs, start=1):
        answer = answers.get(entry.slot)
        value = answer.value if answer else None
        mark = marks.get(entry.slot)
        items.append(
            {
                "number": number,
                "marks": entry.marks,
                "stem_html": question.stem_html(entry.variant),
                "source": sources.get(entry.version_id, ""),
                # Sanitised HTML from the domain (author's labels rendered, whatever the
                # student typed escaped), hence Markup.
                "response": Markup(question.body.describe_response_html(entry.variant, value)),
                "mark": mark,
                "correct_answer": Markup(question.body.describe_answer_html(entry.variant))
                if visible.answers
                else None,
                "feedback_html": render_markdown(question.feedback)
                if visible.answers and question.feedback
                else "",
            }
        )
    return render_template(
        "student/review.html",
        pending=_pending(session, attempt),
        attempt=attempt,
        quiz=attempt.quiz,
        items=items,
        visible=visible,
        release=release_policy(attempt.quiz),
    )
