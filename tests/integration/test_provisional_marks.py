"""Provisional marks (issue 16, item 6) and the VLE uploads (item 10), through the
services on a real database: one function decides what is still to be marked, every CSV
says so, and no VLE file carries a provisional score as if it were final."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from quizapp.domain.scoring import GradingPolicy
from quizapp.models import Attempt, Mark, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.catalog import attempt_questions
from quizapp.services.exports import (
    VleTarget,
    blackboard_rows,
    canvas_rows,
    csv_lines,
    csv_style,
    gradebook_rows,
    moodle_rows,
    scores_rows,
    vle_report,
)
from quizapp.services.marking import (
    NOTHING_PENDING,
    Pending,
    grading_failures,
    mark_answer,
    pending_for_score,
    pending_marks,
)

GRACE = timedelta(seconds=10)
QUIZ2_OPENS = datetime(2027, 1, 25, 10, 0, tzinfo=UTC)
STARTED = QUIZ2_OPENS + timedelta(hours=1)
LATER = QUIZ2_OPENS + timedelta(hours=3)
ESSAY = "reg-overfitting-essay"  # 5 marks of quiz 2's 26


def _quiz2(session) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz2-gradients-and-shapes")).one()


def _take(session, user_id: int, essay: str | None) -> Attempt:
    """Every automatically graded question answered right; the essay as given."""
    quiz = _quiz2(session)
    attempt = svc.start_attempt(session, quiz.id, session.get(User, user_id), STARTED, GRACE)
    submitted = {}
    for entry, question in attempt_questions(session, attempt):
        body = question.body
        if question.key == ESSAY:
            if essay is not None:
                submitted[entry.slot] = [essay]
        else:
            submitted[entry.slot] = body.form_values(
                entry.variant, body.model_response(entry.variant)
            )
    svc.save_answers(session, attempt.id, submitted, 1, STARTED, GRACE)
    assert svc.submit_attempt(session, attempt, STARTED + timedelta(minutes=20), GRACE)
    return attempt


def _essay_slot(session, attempt: Attempt) -> int:
    return next(e.slot for e, q in attempt_questions(session, attempt) if q.key == ESSAY)


@pytest.fixture
def taken(session, users, sample_bank):
    return {
        "alice": _take(
            session, users["alice"], "Overfitting: weight decay, dropout, early stopping."
        ),
        "bob": _take(session, users["bob"], None),  # no essay: nothing to mark, 21 of 26 is final
    }


def _by_user(rows) -> dict[str, dict[str, str]]:
    header, *body = list(rows)
    return {r[0]: dict(zip(header, r, strict=True)) for r in body}


def test_an_unmarked_essay_is_pending_until_staff_mark_it(session, users, taken):
    alice, bob = taken["alice"], taken["bob"]
    slot = _essay_slot(session, alice)
    pending = pending_marks(session, quiz_id=_quiz2(session).id)
    assert set(pending) == {alice.id}  # Bob left the essay blank: unanswered is final
    assert pending[alice.id] == Pending(needs_marking=(slot,), grading_failed=(), marks=Fraction(5))
    assert pending[alice.id].provisional and pending[alice.id].answers == 1
    assert pending_marks(session, attempt_ids=[bob.id]) == {}
    assert grading_failures(session, quiz_id=_quiz2(session).id) == {}

    scores = _by_user(scores_rows(session, _quiz2(session).id, LATER, GRACE))
    assert (scores["alice"]["score"], scores["alice"]["pending_marks"]) == ("21", "5")
    assert scores["alice"]["needs_staff"] == ""  # an essay waiting is no fault
    assert (scores["bob"]["score"], scores["bob"]["pending_marks"]) == ("21", "0")
    assert scores["carol"]["pending_marks"] == ""  # never started: no score at all
    book = _by_user(gradebook_rows(session, _quiz2(session).id, LATER, GRACE))
    assert book["alice"]["Pending marks"] == "5" and book["bob"]["Pending marks"] == "0"

    mark_answer(session, alice.id, slot, "4", "Good.", users["staff"], LATER)
    assert pending_marks(session, quiz_id=_quiz2(session).id) == {}
    scores = _by_user(scores_rows(session, _quiz2(session).id, LATER, GRACE))
    assert (scores["alice"]["score"], scores["alice"]["pending_marks"]) == ("25", "0")


def test_a_failed_grading_is_pending_and_still_says_needs_staff(session, users, taken):
    bob = taken["bob"]
    entry, _ = next(
        (e, q) for e, q in attempt_questions(session, bob) if q.key == "optim-name-rmsprop"
    )
    session.add(
        Mark(attempt_id=bob.id, slot=entry.slot, version_id=entry.version_id, fraction=Fraction(0),
             marks=Fraction(0), status="grading_failed", feedback="", source="auto", created_at=LATER)
    )  # fmt: skip
    session.commit()
    pending = pending_marks(session, quiz_id=_quiz2(session).id)[bob.id]
    assert pending.grading_failed == (entry.slot,) and pending.needs_marking == ()
    assert pending.marks == entry.marks
    assert grading_failures(session, quiz_id=_quiz2(session).id) == {bob.id: [entry.slot]}
    bob_row = _by_user(scores_rows(session, _quiz2(session).id, LATER, GRACE))["bob"]
    assert bob_row["needs_staff"] == "grading failed: 1 answer(s) to mark"
    assert bob_row["pending_marks"] == str(entry.marks)


def test_only_attempts_that_can_still_change_the_score_make_it_provisional():
    five, two = Pending(needs_marking=(13,), marks=Fraction(5)), Pending((13,), (), Fraction(2))
    pending = {1: five, 2: two}
    finished = [(1, Fraction(10)), (2, Fraction(20)), (3, Fraction(15))]
    # Highest: attempt 2 counts (20); attempt 1 could reach only 15: not pending for the score.
    assert pending_for_score(GradingPolicy.HIGHEST, finished, pending) == two
    # 15 + 5 can only tie 20: the score cannot change; 16 + 5 could overtake it.
    assert (
        pending_for_score(GradingPolicy.HIGHEST, [(1, Fraction(15)), (3, Fraction(20))], pending)
        == NOTHING_PENDING
    )
    assert (
        pending_for_score(GradingPolicy.HIGHEST, [(1, Fraction(16)), (3, Fraction(20))], pending)
        == five
    )
    assert pending_for_score(GradingPolicy.FIRST, finished, pending) == five
    assert pending_for_score(GradingPolicy.LAST, finished, pending) == NOTHING_PENDING
    assert pending_for_score(GradingPolicy.AVERAGE, finished, pending).marks == 7
    assert pending_for_score(GradingPolicy.HIGHEST, [], pending) == NOTHING_PENDING


# --- VLE files ---------------------------------------------------------------------------


def _text(kind: str, rows) -> str:
    return "".join(csv_lines(rows, **csv_style(kind)))


def test_blackboard_file_keys_by_username_and_never_carries_a_provisional_score(
    session, users, taken
):
    quiz = _quiz2(session)
    text = _text("blackboard", blackboard_rows(session, quiz.id, LATER, GRACE))
    # Blackboard's layout: a header row, comma-delimited with every value in quotes.
    assert not text.startswith("\ufeff")
    lines = text.split("\r\n")
    assert (
        lines[0]
        == '"Last Name","First Name","Username","Quiz 2: Gradients and shapes [Total Pts: 26 Score]"'
    )
    assert lines[1] == '"Björk","Bob","bob","21"'
    assert lines[2:] == [""]  # Alice (essay unmarked) and Carol (not started) are left out

    target = VleTarget.parse("Quiz 2", "123456")
    header = next(iter(blackboard_rows(session, quiz.id, LATER, GRACE, target)))
    assert header[-1] == "Quiz 2 [Total Pts: 26 Score] |123456"  # fills that existing column

    report = vle_report(session, quiz.id, LATER, GRACE)
    assert (report.final, report.not_finished) == (1, 1)
    assert [(r.username, r.score, r.pending.marks) for r in report.provisional] == [
        ("alice", Fraction(21), Fraction(5))
    ]
    mark_answer(session, taken["alice"].id, _essay_slot(session, taken["alice"]), "2.5", "",
                users["staff"], LATER)  # fmt: skip
    rows = list(blackboard_rows(session, quiz.id, LATER, GRACE))
    assert rows[1] == ["Adeyemi", "Alice", "alice", "23.5"]


def test_canvas_file_has_canvas_columns_and_points_possible(session, users, taken):
    quiz = _quiz2(session)
    rows = list(
        csv.reader(io.StringIO(_text("canvas", canvas_rows(session, quiz.id, LATER, GRACE))))
    )
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "Quiz 2: Gradients and shapes",
    ]
    assert rows[1] == ["Points Possible", "", "", "", "", "26"]
    assert rows[2:] == [["Björk, Bob", "", "", "bob", "", "21"]]
    header = next(iter(canvas_rows(session, quiz.id, LATER, GRACE, VleTarget.parse("", "987"))))
    assert header[-1] == "Quiz 2: Gradients and shapes (987)"


def test_moodle_file_has_moodle_user_columns(session, users, taken):
    quiz = _quiz2(session)
    session.get(User, users["bob"]).email = "bob@example.ac.uk"
    session.commit()
    rows = list(
        csv.reader(io.StringIO(_text("moodle", moodle_rows(session, quiz.id, LATER, GRACE))))
    )
    assert rows == [
        ["First name", "Last name", "Username", "Email address", "Quiz 2: Gradients and shapes"],
        ["Bob", "Björk", "bob", "bob@example.ac.uk", "21"],
    ]


@pytest.mark.parametrize(
    ("column", "column_id", "message"),
    [
        ("", "12a", "is not a column id"),
        ("", "1" * 21, "at most 20 digits"),
        ("Quiz |99", "", "cannot contain"),
        ("x" * 101, "", "at most 100 characters"),
    ],
)
def test_a_column_that_would_be_misread_is_refused(column, column_id, message):
    with pytest.raises(ValueError, match=message):
        VleTarget.parse(column, column_id)
