"""Staff pages: the quiz list, the CSV exports, and the VLE gradebook uploads."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import islice
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy.orm import Session

from quizapp.heartbeat import paced
from quizapp.services.catalog import quiz_or_404
from quizapp.services.errors import InvalidInput
from quizapp.services.evidence import TIMELINE_COLUMNS, audit_scope, timeline
from quizapp.services.exports import (
    EXPORTS,
    VLE_FILES,
    VleTarget,
    csv_lines,
    csv_style,
    data_rows,
    spreadsheet_safe,
    vle_report,
)
from quizapp.services.quizzes import staff_overview
from quizapp.web import db_session, grace, now
from quizapp.web.security import staff_required
from quizapp.web.throttle import undeclared_proxy_seen

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.route("/")
@staff_required
def index() -> str:
    overview = staff_overview(db_session(), now(), grace())
    return render_template(
        "staff/index.html",
        quizzes=overview.quizzes,
        counts=overview.counts,
        now=now(),
        undeclared_proxy=undeclared_proxy_seen(),
    )


def _target() -> VleTarget:
    """?column=NAME&column_id=ID of a VLE file; a 400 that says why when unusable."""
    try:
        return VleTarget.parse(
            request.args.get("column", "")[:200], request.args.get("column_id", "")[:40]
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


@bp.route(
    "/quiz/<id:quiz_id>/<any(scores, responses, gradebook, blackboard, canvas, moodle):kind>.csv"
)
@staff_required
def export_csv(quiz_id: int, kind: str) -> Response:
    session = db_session()
    quiz = quiz_or_404(session, quiz_id)
    moment, grace_period = now(), grace()
    rows = EXPORTS[kind]
    if kind in VLE_FILES:
        rows = partial(rows, target=_target())
    response = _streamed_csv(
        f"{quiz.key}-{kind}-{moment:%Y%m%dT%H%MZ}.csv",
        lambda session: rows(session, quiz_id, moment, grace_period),
        **csv_style(kind),
    )
    # What the page's progress bar (static/progress.js) counts the rows against.
    response.headers["X-Total-Rows"] = str(data_rows(session, kind, quiz_id))
    session.rollback()
    return response


@bp.route("/quiz/<id:quiz_id>/vle")
@staff_required
def vle_uploads(quiz_id: int) -> str:
    """The VLE files of a quiz, with the column they fill and the students they leave
    out because their marks are provisional (or they have not finished)."""
    session = db_session()
    quiz = quiz_or_404(session, quiz_id)
    column = request.args.get("column", "")[:200]
    column_id = request.args.get("column_id", "")[:40]
    error = ""
    try:
        target = VleTarget.parse(column, column_id)
    except ValueError as exc:
        error, target = str(exc), VleTarget()
    report = vle_report(session, quiz_id, now(), grace())
    args = {k: v for k, v in (("column", target.column), ("column_id", target.column_id)) if v}
    page = render_template(
        "staff/vle.html",
        quiz=quiz,
        report=report,
        files=VLE_FILES,
        args=args,
        column=column,
        column_id=column_id,
        error=error,
    )
    session.rollback()
    return page


def _streamed_csv(
    filename: str,
    rows: Callable[[Session], Iterable[Iterable[object]]],
    *,
    bom: bool = True,
    quote_all: bool = False,
) -> Response:
    database = current_app.extensions["quizapp_db"]

    def stream() -> Iterator[str]:
        # Its own session, closed when the last row is sent or the client goes away,
        # so a long download never leaves a transaction open behind it.
        with database.new_session() as export_session:
            yield from csv_lines(rows(export_session), bom=bom, quote_all=quote_all)

    return Response(
        # Rows going out to the client keep a sync worker alive past gunicorn's timeout
        # (quizapp/heartbeat.py); a client that stops reading still gets its worker
        # killed at the timeout, as it should.
        paced(stream(), request.environ),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _audit_filters() -> tuple[int | None, int | None, str]:
    """?student=USERNAME&quiz=KEY → ids, and a label; unknown names are a 404."""
    return audit_scope(
        db_session(),
        request.args.get("student", "").strip()[:150],
        request.args.get("quiz", "").strip()[:100],
    )


def _detail_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    # Numbers, booleans, lists and objects as compact JSON (an answer can be any of them).
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def detail_lines(details: str) -> list[tuple[str, str]]:
    """An event's details (canonical JSON, as in the CSV) as "key: value" lines for the
    page, keys with underscores read as words; details that are not an object stay one
    line. The template escapes both halves."""
    try:
        data = json.loads(details) if details else {}
    except ValueError:
        return [("", details)]
    if not isinstance(data, dict):
        return [("", _detail_value(data))]
    return [(str(key).replace("_", " "), _detail_value(value)) for key, value in data.items()]


@bp.route("/audit")
@staff_required
def audit() -> str:
    student_id, quiz_id, label = _audit_filters()
    rows = list(islice(timeline(db_session(), student_id=student_id, quiz_id=quiz_id), 2000))
    return render_template(
        "staff/audit.html", rows=rows, label=label, args=request.args, detail_lines=detail_lines
    )


@bp.route("/audit.csv")
@staff_required
def audit_csv() -> Response:
    student_id, quiz_id, label = _audit_filters()

    def rows(session: Session) -> Iterator[list[object]]:
        yield list(TIMELINE_COLUMNS)
        for row in timeline(session, student_id=student_id, quiz_id=quiz_id):
            yield [spreadsheet_safe(cell) for cell in row.as_csv()]

    return _streamed_csv(f"audit-{label}.csv", rows)
