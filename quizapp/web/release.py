"""Staff change a quiz's release policy in the browser: when students see their marks,
and when they see the correct answers with feedback (immediately, after the window has
closed for everyone, from a set time, or never), and whether released marks show per
question while someone may still be working. Audited; every post carries a CSRF token.
What a later import of the YAML does with it: domain.release.policy_after_import.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # web/forms.py
from wtforms.validators import DataRequired, Length

from quizapp.domain.quiz import parse_local_time
from quizapp.domain.release import QuestionMarks, ReleasePolicy, ReleaseRule, ReleaseWhen
from quizapp.models import Quiz
from quizapp.services.catalog import quiz_or_404, release_policy
from quizapp.services.release import released, set_in_browser, set_release_policy
from quizapp.web import db_session, now
from quizapp.web.security import current_account, staff_required

bp = Blueprint("release", __name__, url_prefix="/staff/quiz")

WHEN_CHOICES = [
    SelectChoice(ReleaseWhen.IMMEDIATELY.value, "As soon as the student's attempt is finished"),
    SelectChoice(ReleaseWhen.AFTER_CLOSE.value, "After the window has closed for everyone"),
    SelectChoice(ReleaseWhen.AT.value, "From a set time"),
    SelectChoice(ReleaseWhen.NEVER.value, "Never"),
]
QUESTION_MARK_CHOICES = [
    SelectChoice(
        QuestionMarks.AFTER_CLOSE.value,
        "Only the total until the window has closed for everyone (recommended)",
    ),
    SelectChoice(
        QuestionMarks.WITH_TOTAL.value,
        "The mark of every question with the total, even while others are still working",
    ),
]
_CHOSEN = DataRequired("Choose when.")
_INPUT_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows


class ReleaseForm(FlaskForm):
    marks = RadioField("Marks", choices=WHEN_CHOICES, validators=[_CHOSEN])
    marks_at = StringField(
        "Marks from (date and time)",
        validators=[Length(max=40)],
        render_kw={"type": "datetime-local"},
    )
    answers = RadioField("Correct answers and feedback", choices=WHEN_CHOICES, validators=[_CHOSEN])
    answers_at = StringField(
        "Answers and feedback from (date and time)",
        validators=[Length(max=40)],
        render_kw={"type": "datetime-local"},
    )
    question_marks = RadioField(
        "Marks per question",
        choices=QUESTION_MARK_CHOICES,
        default=QuestionMarks.AFTER_CLOSE.value,
        validators=[DataRequired("Choose what released marks show.")],
    )


def _fill(form: ReleaseForm, policy: ReleasePolicy, zone: ZoneInfo) -> None:
    for name, rule in (("marks", policy.marks), ("answers", policy.answers)):
        form[name].data = rule.when.value
        at = rule.at.astimezone(zone).strftime(_INPUT_FORMAT) if rule.at else ""
        form[f"{name}_at"].data = at
    form.question_marks.data = policy.question_marks.value


def _rule(form: ReleaseForm, name: str, label: str, zone: ZoneInfo) -> ReleaseRule | None:
    """The rule chosen for `name`, or None with an error on the form."""
    when = ReleaseWhen(form[name].data)
    if when is not ReleaseWhen.AT:
        return ReleaseRule(when)
    field = form[f"{name}_at"]
    text = (field.data or "").strip()
    if not text:
        field.errors = [*field.errors, f"{label}: give the date and time to release from."]
        return None
    try:
        return ReleaseRule(when, parse_local_time(text, zone))
    except ValueError as exc:
        field.errors = [*field.errors, f"{label}: {exc}."]
        return None


def _page(quiz: Quiz, form: ReleaseForm, status: int = 200) -> Any:
    moment = now()
    html = render_template(
        "staff/release.html",
        quiz=quiz,
        form=form,
        policy=release_policy(quiz),
        visible=released(db_session(), quiz, moment),
        set_in_browser=set_in_browser(quiz),
        zone=quiz.timezone,
    )
    db_session().rollback()
    return html, status


@bp.route("/<id:quiz_id>/release", methods=["GET", "POST"])
@staff_required
def edit(quiz_id: int) -> Any:
    """GET: the current policy and what students see now. POST: change it."""
    quiz = quiz_or_404(db_session(), quiz_id)
    zone = ZoneInfo(quiz.timezone)
    form = ReleaseForm()
    if request.method == "GET":
        _fill(form, release_policy(quiz), zone)
        return _page(quiz, form)
    if not form.validate_on_submit():
        return _page(quiz, form, 400)
    marks = _rule(form, "marks", "Marks", zone)
    answers = _rule(form, "answers", "Answers and feedback", zone)
    if marks is None or answers is None:
        return _page(quiz, form, 400)
    changed = set_release_policy(
        db_session(),
        quiz_id,
        ReleasePolicy(
            marks=marks,
            answers=answers,
            question_marks=QuestionMarks(form.question_marks.data),
        ),
        current_account().id,
        now(),
        ip=request.remote_addr or "",
    )
    if changed:
        flash(f"Release policy of {quiz.title} saved; the change is in the audit trail.", "success")
    else:
        flash("That is already the release policy: nothing was changed.", "success")
    return redirect(url_for("release.edit", quiz_id=quiz_id))
