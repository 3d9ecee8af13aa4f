"""Staff see the marks on their way to the VLE's gradebook (LTI AGS): per quiz, how many
wait for each VLE and the last error, each student's score and where it is, and a
Resend button (POST, CSRF, audited) that makes refused scores due again. The sending
itself is `quizapp lti scores send`, never a request (services/lti_scores.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import Optional, Regexp

from quizapp.services.lti_scores import outbox, resend
from quizapp.web import db_session, now
from quizapp.web.security import current_account, staff_required

bp = Blueprint("lti_scores", __name__, url_prefix="/staff/quiz")


class ResendForm(FlaskForm):
    """Resend every refused score of the quiz, or one (`score_id`)."""

    score_id = HiddenField(validators=[Optional(), Regexp(r"^\d{1,9}$")])


@bp.route("/<id:quiz_id>/vle-gradebook")
@staff_required
def page(quiz_id: int) -> Any:
    """The quiz's scores for the VLE gradebooks, with their state and errors."""
    session = db_session()
    html = render_template(
        "staff/lti_scores.html", box=outbox(session, quiz_id), form=ResendForm(), now=now()
    )
    session.rollback()
    return html


@bp.route("/<id:quiz_id>/vle-gradebook/resend", methods=["POST"])
@staff_required
def resend_scores(quiz_id: int) -> Any:
    """Make refused scores (or one) due at the next send."""
    form = ResendForm()
    if not form.validate_on_submit():
        abort(400)
    ids = [int(form.score_id.data)] if form.score_id.data else None
    count = resend(
        db_session(),
        quiz_id,
        current_account().id,
        now(),
        score_ids=ids,
        ip=request.remote_addr or "",
    )
    if count:
        flash(
            f"{count} score(s) will be sent again at the next `quizapp lti scores send`.",
            "success",
        )
    else:
        flash("Nothing to resend: no score was refused or waiting to be tried again.", "info")
    return redirect(url_for("lti_scores.page", quiz_id=quiz_id))
