"""Staff pages: the quiz list and the scores CSV."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, current_app, render_template
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
        select(Attempt.quiz_id, Attempt.state, func.count()).group_by(
            Attempt.quiz_id, Attempt.state
        )
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
    filename = f"{quiz.key}-scores-{now():%Y%m%dT%H%MZ}.csv"
    moment, grace_period = now(), grace()
    database = current_app.extensions["quizapp_db"]

    def stream() -> Iterator[str]:
        # Its own session, closed when the last row is sent or the client goes away,
        # so a long download never leaves a transaction open behind it.
        with database.new_session() as export_session:
            yield from csv_lines(scores_rows(export_session, quiz_id, moment, grace_period))

    return Response(
        stream(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
