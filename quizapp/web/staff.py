"""Staff pages: the quiz list and the scores CSV."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, stream_with_context
from sqlalchemy import func, select

from quizapp.models import Attempt, Quiz
from quizapp.services.attempts import finalize_expired
from quizapp.services.errors import NotFound
from quizapp.services.exports import csv_lines, scores_rows
from quizapp.web import db_session, grace, now
from quizapp.web.security import staff_required

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.route("/")
@staff_required
def index() -> str:
    session = db_session()
    finalize_expired(session, now(), grace())
    counts: dict[int, dict[str, int]] = {}
    for quiz_id, state, n in session.execute(
        select(Attempt.quiz_id, Attempt.state, func.count()).group_by(Attempt.quiz_id, Attempt.state)
    ):
        counts.setdefault(quiz_id, {})[state.value] = n
    quizzes = session.scalars(select(Quiz).order_by(Quiz.opens_at)).all()
    return render_template("staff/index.html", quizzes=quizzes, counts=counts, now=now())


@bp.route("/quiz/<int:quiz_id>/scores.csv")
@staff_required
def scores_csv(quiz_id: int) -> Response:
    session = db_session()
    quiz = session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")
    rows = scores_rows(session, quiz_id, now(), grace())
    filename = f"{quiz.key}-scores-{now():%Y%m%dT%H%MZ}.csv"
    return Response(
        stream_with_context(csv_lines(rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
