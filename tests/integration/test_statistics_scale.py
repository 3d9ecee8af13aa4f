"""The statistics service at a few hundred attempts: values equal to the definitions, no
ORM object per attempt or mark, a fixed number of statements, and memory that grows with
the attempts only by a small constant per cell (speed itself is measured by
bench/statistics.py, not here)."""

from __future__ import annotations

import json
import random
import tracemalloc
from datetime import timedelta
from fractions import Fraction

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, FinishReason, Mark, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services import statistics as statistics_service
from quizapp.services.catalog import attempt_questions
from quizapp.services.statistics import quiz_statistics
from quizapp.services.users import create_user
from tests.conftest import PASSWORD, QUIZ1_OPENS
from tests.unit.test_statistics_sums import reference

GRACE = timedelta(seconds=10)
START = QUIZ1_OPENS + timedelta(hours=1)
LATER = START + timedelta(hours=3)


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


def _template(session: Session, quiz: Quiz) -> Attempt:
    """One attempt taken through the service: model answers to every other slot."""
    user = create_user(session, "template", PASSWORD)
    attempt = svc.start_attempt(session, quiz.id, user, START, GRACE)
    form = {}
    for entry, question in attempt_questions(session, attempt):
        model = question.body.model_response(entry.variant)
        if model is not None and entry.slot % 2:
            form[entry.slot] = question.body.form_values(entry.variant, model)
    svc.save_answers(session, attempt.id, form, 1, START, GRACE)
    assert svc.submit_attempt(session, attempt, START + timedelta(minutes=5), GRACE)
    return attempt


def _copies(session: Session, template: Attempt, count: int, seed: int) -> None:
    """`count` more students with finished copies of the template, whose marks are random
    thirds and quarters of each slot's maximum (a newer manual row over the automatic)."""
    rng = random.Random(seed)
    first = session.scalar(select(User.id).order_by(User.id.desc())) or 0
    session.execute(
        insert(User),
        [{"username": f"copy{first + i}", "name": "Copy"} for i in range(count)],
    )
    user_ids = session.scalars(select(User.id).where(User.id > first).order_by(User.id)).all()
    marks = session.scalars(select(Mark).where(Mark.attempt_id == template.id)).all()
    maxima = {int(e["slot"]): Fraction(e["marks"]) for e in template.layout}
    ids = session.scalars(
        insert(Attempt).returning(Attempt.id, sort_by_parameter_order=True),
        [
            {
                "quiz_id": template.quiz_id,
                "user_id": user_id,
                "number": 1,
                "state": AttemptState.TIMED_OUT,
                "seed": template.seed,
                "layout": template.layout,
                "started_at": START,
                "deadline_at": template.deadline_at,
                "finished_at": START + timedelta(minutes=9),
                "finish_reason": FinishReason.DEADLINE,
                "max_score": template.max_score,
            }
            for user_id in user_ids
        ],
    ).all()
    rows = []
    for attempt_id in ids:
        for mark in marks:
            base = {
                "attempt_id": attempt_id,
                "slot": mark.slot,
                "version_id": mark.version_id,
                "fraction": mark.fraction,
                "marks": mark.marks,
                "status": mark.status,
                "created_at": START,
            }
            rows.append(base)
            step = rng.choice((3, 4))
            value = maxima[mark.slot] * Fraction(rng.randint(0, step), step)
            rows.append(base | {"marks": value, "source": "manual"})
    session.execute(insert(Mark), rows)
    session.commit()


def _measure(session: Session, quiz_id: int) -> tuple[int, int, int]:
    """(SELECT statements, ORM attempts/marks loaded, peak bytes allocated) of one call,
    after a call that fills SQLAlchemy's caches of compiled statements."""
    quiz_statistics(session, quiz_id, LATER, GRACE)
    session.expire_all()
    statements: list[str] = []
    loaded: list[object] = []
    engine = session.get_bind()

    def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    def on_load(target, context) -> None:  # type: ignore[no-untyped-def]
        loaded.append(target)

    event.listen(engine, "before_cursor_execute", record)
    event.listen(Attempt, "load", on_load)
    event.listen(Mark, "load", on_load)
    tracemalloc.start()
    try:
        quiz_statistics(session, quiz_id, LATER, GRACE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        event.remove(engine, "before_cursor_execute", record)
        event.remove(Attempt, "load", on_load)
        event.remove(Mark, "load", on_load)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    return len(selects), len(loaded), peak


def _definitions(session: Session, quiz_id: int):  # type: ignore[no-untyped-def]
    """The statistics from their definitions, on marks read the obvious way."""
    attempts = session.scalars(
        select(Attempt).where(Attempt.quiz_id == quiz_id).order_by(Attempt.user_id)
    ).all()
    slots = sorted({int(e["slot"]) for a in attempts for e in a.layout})
    maxima = {int(e["slot"]): Fraction(e["marks"]) for a in attempts for e in a.layout}
    matrix, labels = [], []
    for attempt in attempts:
        rows = session.scalars(
            select(Mark).where(Mark.attempt_id == attempt.id).order_by(Mark.id)
        ).all()
        newest = {m.slot: m for m in rows}
        keys = {int(e["slot"]): e["question_key"] for e in attempt.layout}
        matrix.append([newest[s].marks for s in slots])
        labels.append([f"{keys[s]} (version {newest[s].version_id})" for s in slots])
    return reference(matrix, [maxima[s] for s in slots], labels, 10)


def test_hundreds_of_attempts_exact_without_orm_objects_in_bounded_memory(
    session, quiz, monkeypatch
):
    # Small chunks, so the rows being read (a parsed layout is kilobytes) weigh the same
    # in both measurements and the difference is what is kept per attempt.
    monkeypatch.setattr(statistics_service, "ATTEMPTS_CHUNK", 50)
    monkeypatch.setattr(statistics_service, "MARKS_CHUNK", 500)
    template = _template(session, quiz)
    _copies(session, template, 150, seed=1)
    selects_small, loaded_small, peak_small = _measure(session, quiz.id)
    _copies(session, template, 450, seed=2)
    selects_large, loaded_large, peak_large = _measure(session, quiz.id)

    report = quiz_statistics(session, quiz.id, LATER, GRACE)
    assert report.stats.n == 601
    assert report.stats == _definitions(session, quiz.id)
    assert report.stats.alpha is not None

    assert selects_small == selects_large <= 5
    # The quiz itself is an ORM object; no attempt and no mark is.
    assert loaded_small == loaded_large == 0
    # 450 more attempts x 15 slots: the growth per cell is a few machine words (two
    # column entries and a share of the row's bookkeeping), far from a Fraction or an
    # ORM object per cell, which cost several hundred bytes each.
    per_cell = (peak_large - peak_small) / (450 * 15)
    assert per_cell < 100, per_cell
    assert peak_large < 4_000_000, peak_large  # measured: under 1 MB for 601 attempts


def test_the_compact_layout_is_the_same_from_the_database_and_from_python(session, quiz):
    """The database reduces each layout to [slot, marks, key, version] entries; for any
    other database the service does the same in Python."""
    from sqlalchemy import String, literal_column

    template = _template(session, quiz)
    dialect = session.get_bind().dialect.name
    compact = session.scalar(
        select(literal_column(statistics_service._COMPACT_LAYOUT[dialect], String)).where(
            Attempt.id == template.id
        )
    )
    assert compact is not None
    from_python = json.loads(statistics_service._compact(template.layout))
    assert json.loads(compact) == from_python
    assert len(from_python) == 15 and all(len(entry) == 4 for entry in from_python)
