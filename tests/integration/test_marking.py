"""Manual marking on a real database: the essay queue, marks with comments, exact
totals, refusals that write nothing, and the history of every mark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from quizapp.models import Attempt, AuditEvent, Mark, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.catalog import attempt_questions
from quizapp.services.errors import Conflict, InvalidInput
from quizapp.services.marking import (
    attempt_history,
    current_marks_of,
    mark_answer,
    parse_mark,
    queue_overview,
    slot_page,
)

GRACE = timedelta(seconds=10)
QUIZ2_OPENS = datetime(2027, 1, 25, 10, 0, tzinfo=UTC)
STARTED = QUIZ2_OPENS + timedelta(hours=1)
MARKED = QUIZ2_OPENS + timedelta(hours=3)
ESSAY = "reg-overfitting-essay"
ESSAY_TEXT = "The network overfits.\n\n<b>Remedies</b>: weight decay & early stopping. " * 40


def _quiz2(session) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz2-gradients-and-shapes")).one()


def _slot(session, attempt: Attempt, key: str) -> int:
    return next(e.slot for e, q in attempt_questions(session, attempt) if q.key == key)


def _take(session, user_id: int, essay: str | None) -> Attempt:
    quiz = _quiz2(session)
    attempt = svc.start_attempt(session, quiz.id, session.get(User, user_id), STARTED, GRACE)
    if essay is not None:
        slot = _slot(session, attempt, ESSAY)
        svc.save_answers(session, attempt.id, {slot: [essay]}, 1, STARTED, GRACE)
    assert svc.submit_attempt(session, attempt, STARTED + timedelta(minutes=20), GRACE)
    return attempt


@pytest.fixture
def essays(session, users, sample_bank):
    return {
        "alice": _take(session, users["alice"], ESSAY_TEXT),
        "bob": _take(session, users["bob"], "Too short."),
        "carol": _take(session, users["carol"], None),  # no answer: nothing to mark
    }


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_the_queue_lists_essays_and_a_mark_of_2_5_updates_the_total_exactly(session, users, essays):
    quiz = _quiz2(session)
    alice = essays["alice"]
    slot = _slot(session, alice, ESSAY)
    overview = queue_overview(session, quiz.id, MARKED, GRACE)
    essay_row = next(s for s in overview.slots if s.slot == slot)
    assert essay_row.question_keys == (ESSAY,) and essay_row.marks == 5
    assert (essay_row.answered, essay_row.to_mark, essay_row.marked_by_hand) == (3, 2, 0)
    assert overview.left == 2 and overview.finished == 3

    page = slot_page(session, quiz.id, slot)
    assert page.to_mark == 2 and page.shown == 2 and len(page.groups) == 1  # one stem
    assert [i.student.username for i in page.groups[0].items] == ["alice", "bob"]
    assert page.groups[0].items[0].response == ESSAY_TEXT  # as given; the page escapes it

    before = session.get(Attempt, alice.id).score
    row = mark_answer(
        session, alice.id, slot, "2.5", "Good diagnosis; remedies thin.", users["staff"], MARKED
    )
    assert (row.marks, row.fraction, row.status) == (Fraction(5, 2), Fraction(1, 2), "partial")
    assert (row.source, row.created_by, row.feedback) == (
        "manual",
        users["staff"],
        "Good diagnosis; remedies thin.",
    )
    session.rollback()
    fresh = session.get(Attempt, alice.id)
    assert fresh.score == before + Fraction(5, 2)
    assert fresh.score == sum(m.marks for m in current_marks_of(session, [alice.id]).values())
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "manual_mark")).one()
    assert event.attempt_id == alice.id and event.actor_id == users["staff"]
    assert event.details["mark"] == "5/2" and event.details["old_status"] == "needs_marking"

    overview = queue_overview(session, quiz.id, MARKED, GRACE)
    essay_row = next(s for s in overview.slots if s.slot == slot)
    assert (essay_row.to_mark, essay_row.marked_by_hand) == (1, 1)
    assert [
        i.student.username for g in slot_page(session, quiz.id, slot).groups for i in g.items
    ] == ["bob"]
    everything = slot_page(session, quiz.id, slot, everything=True)
    assert everything.shown == 3 and everything.to_mark == 1


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("6", "between 0 and 5"),
        ("-1", "between 0 and 5"),
        ("abc", "not a mark"),
        ("NaN", "not a mark"),
        ("1/0", "not a mark"),
    ],
)
def test_an_invalid_mark_is_refused_and_nothing_is_written(session, users, essays, typed, message):
    alice = essays["alice"]
    slot = _slot(session, alice, ESSAY)
    marks, events = _count(session, Mark), _count(session, AuditEvent)
    score = session.get(Attempt, alice.id).score
    with pytest.raises(InvalidInput, match=message):
        mark_answer(session, alice.id, slot, typed, "", users["staff"], MARKED)
    session.rollback()
    assert _count(session, Mark) == marks and _count(session, AuditEvent) == events
    assert session.get(Attempt, alice.id).score == score


def test_exact_marks_parse_from_decimals_and_fractions():
    assert parse_mark(" 2.5 ", Fraction(5)) == Fraction(5, 2)
    assert parse_mark("7/3", Fraction(5)) == Fraction(7, 3)
    assert parse_mark("0.1", Fraction(1)) == Fraction(1, 10)  # never a binary float
    assert parse_mark("5", Fraction(5)) == 5


def test_an_auto_mark_can_be_overridden_and_history_keeps_every_row(session, users, essays):
    bob = essays["bob"]
    slot = _slot(session, bob, "init-he-relu")
    auto = current_marks_of(session, [bob.id])[(bob.id, slot)]
    mark_answer(session, bob.id, slot, "1", "Accepted on appeal.", users["staff"], MARKED)
    mark_answer(
        session,
        bob.id,
        slot,
        "0.5",
        "Half, on second thoughts.",
        users["staff"],
        MARKED + timedelta(minutes=1),
    )
    session.rollback()
    history = attempt_history(session, bob.id)
    rows = [r for r in history.rows if r.mark.slot == slot]
    assert [(r.mark.source, r.mark.marks, r.by, r.current) for r in rows] == [
        ("auto", auto.marks, "", False),
        ("manual", 1, "staff", False),
        ("manual", Fraction(1, 2), "staff", True),
    ]
    assert [r.mark.id for r in history.rows] == sorted(r.mark.id for r in history.rows)
    assert session.get(Attempt, bob.id).score == sum(
        m.marks for m in current_marks_of(session, [bob.id]).values()
    )


def test_a_mark_based_on_a_stale_view_is_refused(session, users, essays):
    alice = essays["alice"]
    slot = _slot(session, alice, ESSAY)
    seen = current_marks_of(session, [alice.id])[(alice.id, slot)].id
    mark_answer(session, alice.id, slot, "3", "", users["staff"], MARKED, based_on=seen)
    with pytest.raises(Conflict, match="Someone else marked"):
        mark_answer(session, alice.id, slot, "4", "", users["staff"], MARKED, based_on=seen)
    session.rollback()
    assert current_marks_of(session, [alice.id])[(alice.id, slot)].marks == 3


def test_in_progress_attempts_cannot_be_marked(session, users, sample_bank):
    quiz = _quiz2(session)
    attempt = svc.start_attempt(session, quiz.id, session.get(User, users["alice"]), STARTED, GRACE)
    slot = _slot(session, attempt, ESSAY)
    with pytest.raises(Conflict, match="still in progress"):
        mark_answer(session, attempt.id, slot, "1", "", users["staff"], STARTED)
    overview = queue_overview(session, quiz.id, STARTED, GRACE)
    assert overview.in_progress == 1 and overview.finished == 0
