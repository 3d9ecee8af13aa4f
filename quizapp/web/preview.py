"""Staff preview of imported questions: every variant, as the student sees it, with the answer.

`/staff/preview` lists the current version of every imported question;
`/staff/preview/question/<id>?seed=N` shows seed N's variant (the same variant
`quizapp bank validate` calls "seed N") with disabled inputs, then the correct answer,
the model answer in the widget, and the feedback.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template
from sqlalchemy.orm import Session

from quizapp.bank.preview import preview_question, question_variant
from quizapp.domain.questions import Question
from quizapp.models import QuestionVersion
from quizapp.services.catalog import current_version, current_versions, question_of
from quizapp.web import db_session
from quizapp.web.assets import asset_rewriter
from quizapp.web.input_guard import int_arg
from quizapp.web.security import staff_required

bp = Blueprint("preview", __name__, url_prefix="/staff/preview")

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Listed:
    version: QuestionVersion
    question: Question


def _current_versions(session: Session) -> list[Listed]:
    return [Listed(version, question) for version, question in current_versions(session)]


@bp.route("/")
@staff_required
def index() -> str:
    return render_template("staff/preview_index.html", listed=_current_versions(db_session()))


@bp.route("/question/<key>")
@staff_required
def question(key: str) -> str:
    seed = int_arg("seed", 0, 0, MAX_SEED)
    version = current_version(db_session(), key)
    domain_question = question_of(version)
    item = preview_question(
        domain_question,
        question_variant(domain_question, seed),
        rewrite=asset_rewriter(version.source),
    )
    return render_template(
        "staff/preview_question.html", item=item, version=version, seed=seed, max_seed=MAX_SEED
    )
