"""Exports: the responses CSV (long format), the gradebook CSV, and scores that stream
with flat memory over 10,000 attempts."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sqlalchemy import insert, select

from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, FinishReason, Quiz, Role, User
from quizapp.services import attempts as svc
from quizapp.services.catalog import attempt_questions
from quizapp.services.exports import gradebook_rows, responses_rows, scores_rows

GRACE = timedelta(seconds=10)
START = datetime(2027, 1, 18, 11, 0, tzinfo=UTC)


def _quiz(session) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


def _answer_perfectly(session, attempt) -> None:
    submitted = {}
    for entry, question in attempt_questions(session, attempt):
        body = question.body
        submitted[entry.slot] = body.form_values(entry.variant, body.model_response(entry.variant))
    svc.save_answers(session, attempt.id, submitted, 1, START, GRACE)


def test_responses_and_gradebook(session, sample_bank, users):
    quiz = _quiz(session)
    alice, bob = session.get(User, users["alice"]), session.get(User, users["bob"])
    bob.extra_minutes = 20
    session.commit()
    first = svc.start_attempt(session, quiz.id, alice, START, GRACE)
    _answer_perfectly(session, first)
    svc.submit_attempt(session, first, START + timedelta(minutes=30), GRACE)
    second = svc.start_attempt(session, quiz.id, bob, START, GRACE)
    slot = next(
        e.slot for e, q in attempt_questions(session, second) if q.key == "cnn-output-width"
    )
    svc.save_answers(session, second.id, {slot: ["sixteen"]}, 1, START, GRACE)

    rows = list(responses_rows(session, quiz.id, START + timedelta(minutes=40), GRACE))
    header, body = rows[0], rows[1:]
    assert len(body) == 2 * 15
    records = [dict(zip(header, row, strict=True)) for row in body]
    alice_rows = [r for r in records if r["username"] == "alice"]
    assert sum(Fraction(r["mark"]) for r in alice_rows) == 21
    assert {r["state"] for r in alice_rows} == {"submitted"}
    assert all(json.loads(r["variant"]) is not None for r in records)
    bob_cnn = next(
        r for r in records if r["username"] == "bob" and r["question"] == "cnn-output-width"
    )
    assert bob_cnn["answer_as_given"] == "sixteen" and bob_cnn["mark"] == ""  # still in progress
    assert bob_cnn["accommodation"] == "+20 min"
    assert bob_cnn["deadline_utc"] == "2027-01-18T12:20:00+00:00"
    assert bob_cnn["started_utc"] == "2027-01-18T11:00:00+00:00"

    book = list(gradebook_rows(session, quiz.id, START + timedelta(minutes=40), GRACE))
    assert book[0] == ["Username", "Email", "Score", "Maximum", "Percent", "Pending marks"]
    by_user = {row[0]: row for row in book[1:]}
    assert by_user["alice"][2:] == ["21", "21", "100", "0"]
    assert by_user["carol"][2:] == ["", "21", "", ""]


def _synthetic(session, quiz: Quiz, count: int, offset: int) -> None:
    """`count` students, each with one finished attempt at `quiz`, inserted in bulk."""
    users = [
        {"username": f"syn{offset + i:06d}", "name": f"Student {i}", "email": "", "role": Role.STUDENT,
         "active": True, "time_factor": Fraction(1), "extra_minutes": 0, "created_at": START}
        for i in range(count)
    ]  # fmt: skip
    session.execute(insert(User), users)
    ids = session.scalars(
        select(User.id).where(User.username.like("syn%")).order_by(User.id).offset(offset)
    ).all()
    session.execute(
        insert(Attempt),
        [
            {"quiz_id": quiz.id, "user_id": uid, "number": 1, "state": AttemptState.SUBMITTED,
             "seed": 1, "layout": [], "started_at": START, "deadline_at": START + timedelta(hours=1),
             "finished_at": START + timedelta(minutes=50), "finish_reason": FinishReason.SUBMITTED,
             "score": Fraction(uid % 22), "max_score": Fraction(21), "receipt": "X"}
            for uid in ids
        ],
    )  # fmt: skip
    session.commit()


def _peak_bytes(session, quiz_id: int) -> tuple[int, int]:
    tracemalloc.start()
    rows = 0
    for _ in scores_rows(session, quiz_id, START + timedelta(days=2), GRACE):
        rows += 1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    session.rollback()
    return rows, peak


def test_scores_export_of_10000_attempts_streams_with_flat_memory(session, sample_bank, users):
    quiz = _quiz(session)
    _synthetic(session, quiz, 2_000, 0)
    rows_small, peak_small = _peak_bytes(session, quiz.id)
    _synthetic(session, quiz, 8_000, 2_000)
    rows_large, peak_large = _peak_bytes(session, quiz.id)
    assert rows_small == 1 + 2_000 + 3 and rows_large == 1 + 10_000 + 3  # + alice, bob, carol
    # Five times the rows, not five times the memory: rows are read in batches and dropped.
    assert peak_large < 2 * peak_small, (peak_small, peak_large)
