"""One attempt can never stall another: grading happens outside the write transaction,
a failing answer is contained to that answer, the sweeper goes on past a failing
attempt, and answers refused as late are kept as evidence that staff can accept."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from quizapp.domain.qtypes.base import GradeStatus
from quizapp.domain.qtypes.numeric import Numeric
from quizapp.domain.timing import AttemptState
from quizapp.models import AnswerLog, Attempt, AuditEvent, LogOutcome, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services import grading, late_answers
from quizapp.services.catalog import attempt_questions
from quizapp.services.errors import Conflict
from tests.conftest import QUIZ1_OPENS

GRACE = timedelta(seconds=10)
NOW = QUIZ1_OPENS + timedelta(hours=1)


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


def _numeric_slot(session, attempt) -> int:
    for entry, question in attempt_questions(session, attempt):
        if question.key == "cnn-output-width":
            return entry.slot
    raise AssertionError("no CNN question")


def _start(session, quiz, users, name, now=NOW):
    return svc.start_attempt(session, quiz.id, session.get(User, users[name]), now, GRACE)


@pytest.fixture
def exploding_numeric(monkeypatch):
    """Grading of the numeric answer "boom" raises, as a bug in a question type would."""
    original = Numeric.grade

    def grade(self, variant, response):
        if response == "boom":
            raise RuntimeError("a bug in the numeric type")
        return original(self, variant, response)

    monkeypatch.setattr(Numeric, "grade", grade)


def test_a_failing_answer_finishes_the_attempt_marked_for_staff(
    session, quiz, users, exploding_numeric, caplog
):
    attempt = _start(session, quiz, users, "alice")
    slot = _numeric_slot(session, attempt)
    svc.save_answers(session, attempt.id, {slot: ["boom"]}, 1, NOW, GRACE)
    assert svc.submit_attempt(session, attempt, NOW, GRACE)
    assert attempt.state is AttemptState.SUBMITTED and attempt.score == 0
    marks = svc.current_marks(session, attempt.id)
    assert marks[slot].status == GradeStatus.GRADING_FAILED.value
    assert "staff will mark it" in marks[slot].feedback
    assert all(m.status != GradeStatus.GRADING_FAILED.value for s, m in marks.items() if s != slot)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "submit")).one()
    assert event.details["grading_failed"] == [slot]
    assert f"attempt {attempt.id} slot {slot}" in caplog.text


def test_grading_past_its_budget_is_stopped_and_marked_for_staff(session, quiz, users, monkeypatch):
    def slow(self, variant, response):
        time.sleep(5)
        raise AssertionError("not interrupted")

    monkeypatch.setattr(Numeric, "grade", slow)
    monkeypatch.setattr(grading, "SLOT_BUDGET_SECONDS", 0.2)
    attempt = _start(session, quiz, users, "alice")
    slot = _numeric_slot(session, attempt)
    svc.save_answers(session, attempt.id, {slot: ["16"]}, 1, NOW, GRACE)
    began = time.monotonic()
    # (the default is bound at definition time: pass the budget through the module)
    questions = attempt_questions(session, attempt)
    graded = grading.grade_answers(attempt.id, questions, {slot: "16"}, slot_budget=0.2)
    assert time.monotonic() - began < 2
    assert {g.entry.slot: g.grade.status for g in graded}[slot] is GradeStatus.GRADING_FAILED


def test_an_attempts_budget_bounds_all_its_answers(session, quiz, users, monkeypatch):
    attempt = _start(session, quiz, users, "alice")
    questions = attempt_questions(session, attempt)
    values = {entry.slot: "x" for entry, _ in questions}
    graded = grading.grade_answers(attempt.id, questions, values, attempt_budget=0)
    assert {g.grade.status for g in graded} == {GradeStatus.GRADING_FAILED}


def test_grading_holds_no_lock_other_students_saves_go_on(app, quiz, users, monkeypatch):
    """Alice's submit is stuck inside grading; Bob's autosave must not wait for it."""
    database = app.extensions["quizapp_db"]
    with database.new_session() as s:
        alice_attempt = _start(s, quiz, users, "alice")
        bob_attempt = _start(s, quiz, users, "bob")
        slot = _numeric_slot(s, alice_attempt)
        svc.save_answers(s, alice_attempt.id, {slot: ["16"]}, 1, NOW, GRACE)
    inside, release = threading.Event(), threading.Event()
    original = Numeric.grade

    def stuck(self, variant, response):
        inside.set()
        assert release.wait(20)
        return original(self, variant, response)

    monkeypatch.setattr(Numeric, "grade", stuck)
    errors: list[BaseException] = []

    def submit_alice() -> None:
        try:
            with database.new_session() as s:
                svc.submit_attempt(s, s.get(Attempt, alice_attempt.id), NOW, GRACE)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=submit_alice)
    thread.start()
    try:
        assert inside.wait(10), "grading never started"
        began = time.monotonic()
        with database.new_session() as s:
            bob_slot = _numeric_slot(s, bob_attempt)
            outcome = svc.save_answers(s, bob_attempt.id, {bob_slot: ["15"]}, 1, NOW, GRACE)
        waited = time.monotonic() - began
        assert outcome.results[0].status is svc.SaveStatus.SAVED
        assert waited < 5, f"Bob's save waited {waited:.1f} s for Alice's grading"
    finally:
        release.set()
        thread.join(20)
    assert errors == []
    with database.new_session() as s:
        assert s.get(Attempt, alice_attempt.id).state is AttemptState.SUBMITTED


def test_a_save_landing_during_grading_is_graded_too(app, quiz, users, monkeypatch):
    """The marks written are always those of the answers stored at the claim."""
    database = app.extensions["quizapp_db"]
    with database.new_session() as s:
        attempt = _start(s, quiz, users, "alice")
        slot = _numeric_slot(s, attempt)
        svc.save_answers(s, attempt.id, {slot: ["99"]}, 1, NOW, GRACE)
    original = svc.grade_answers
    calls = []

    def grade_then_other_tab_saves(*args, **kwargs):
        graded = original(*args, **kwargs)
        if not calls:
            with database.new_session() as other:
                svc.save_answers(other, attempt.id, {slot: ["16"]}, 2, NOW, GRACE)
        calls.append(1)
        return graded

    monkeypatch.setattr(svc, "grade_answers", grade_then_other_tab_saves)
    with database.new_session() as s:
        mine = s.get(Attempt, attempt.id)
        assert svc.submit_attempt(s, mine, NOW, GRACE)
        assert len(calls) == 2  # graded again from the newer snapshot
        assert svc.current_marks(s, attempt.id)[slot].status == "correct"
        assert mine.score == 2


def test_the_sweeper_goes_on_past_an_attempt_it_cannot_finish(
    app, quiz, users, monkeypatch, caplog
):
    database = app.extensions["quizapp_db"]
    with database.new_session() as s:
        ids = [_start(s, quiz, users, name).id for name in ("alice", "bob", "carol")]
        deadline = s.get(Attempt, ids[0]).deadline_at
    doomed = ids[0]
    original = svc.receipt_code

    def receipt(attempt, answers):
        if attempt.id == doomed:
            raise RuntimeError("disk on fire")
        return original(attempt, answers)

    monkeypatch.setattr(svc, "receipt_code", receipt)
    with database.new_session() as s:
        assert svc.finalise_expired(s, deadline + GRACE + timedelta(seconds=1), GRACE) == 2
    with database.new_session() as s:
        states = {i: s.get(Attempt, i).state for i in ids}
    assert states[doomed] is AttemptState.IN_PROGRESS
    assert {states[i] for i in ids[1:]} == {AttemptState.TIMED_OUT}
    assert f"could not finalise attempt {doomed}" in caplog.text


def test_a_late_answer_is_recorded_audited_and_can_be_accepted(session, quiz, users):
    attempt = _start(session, quiz, users, "alice")
    slot = _numeric_slot(session, attempt)
    svc.save_answers(session, attempt.id, {slot: ["15"]}, 1, NOW, GRACE)
    deadline = attempt.deadline_at
    typed = deadline - timedelta(seconds=15)
    arrived = deadline + timedelta(seconds=20)
    with pytest.raises(Conflict) as refused:
        svc.save_answers(session, attempt.id, {slot: ["16"]}, 2, arrived, GRACE, typed_at=typed)
    assert refused.value.details == {"recorded": True}
    assert "recorded" in refused.value.message
    session.refresh(attempt)
    assert attempt.state is AttemptState.TIMED_OUT and attempt.score == 0
    (late,) = late_answers.refused_answers(session, [attempt.id])
    assert (late.slot, late.value, late.outcome) == (slot, "16", LogOutcome.LATE)
    assert late.typed_at == typed and late.received_at == arrived
    assert late.accepted_at is None
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "refused_save")).one()
    assert event.details["outcome"] == "late" and event.details["slots"] == [slot]

    staff = session.get(User, users["staff"])
    with pytest.raises(Exception, match="reason"):
        late_answers.accept_refused_answer(session, late.log_id, arrived, staff, "  ")
    later = arrived + timedelta(hours=1)
    accepted = late_answers.accept_refused_answer(
        session, late.log_id, later, staff, "network outage confirmed by IT"
    )
    assert accepted.score == 2
    assert svc.current_answers(session, attempt.id)[slot].value == "16"
    (late,) = late_answers.refused_answers(session, [attempt.id])
    assert late.accepted_at == later and late.accepted_by == "staff"
    with pytest.raises(Conflict, match="accepted already"):
        late_answers.accept_refused_answer(session, late.log_id, later, staff, "again")
    rows = session.scalars(select(AnswerLog).where(AnswerLog.attempt_id == attempt.id)).all()
    assert [(r.value, r.outcome) for r in rows] == [
        ("15", None),
        ("16", LogOutcome.LATE),
        ("16", None),  # the staff acceptance, logged like a save
    ]


def test_a_save_after_submit_is_kept_as_evidence(session, quiz, users):
    attempt = _start(session, quiz, users, "alice")
    slot = _numeric_slot(session, attempt)
    svc.submit_attempt(session, attempt, NOW, GRACE)
    with pytest.raises(Conflict, match="already been submitted"):
        svc.save_answers(session, attempt.id, {slot: ["16"]}, 5, NOW, GRACE)
    (row,) = late_answers.refused_answers(session, [attempt.id])
    assert row.outcome is LogOutcome.AFTER_FINISH and row.value == "16"


def test_a_refused_save_that_fits_no_question_is_not_recorded(session, quiz, users):
    attempt = _start(session, quiz, users, "alice")
    svc.submit_attempt(session, attempt, NOW, GRACE)
    with pytest.raises(Conflict) as refused:
        svc.save_answers(session, attempt.id, {999: ["16"]}, 5, NOW, GRACE)
    assert refused.value.details == {"recorded": False}
    assert late_answers.refused_answers(session, [attempt.id]) == []


def test_a_save_after_staff_finished_the_attempt_is_after_finish_not_late(session, quiz, users):
    from quizapp.services import interventions

    attempt = _start(session, quiz, users, "alice")
    slot = _numeric_slot(session, attempt)
    staff = session.get(User, users["staff"])
    interventions.finalise_now(session, attempt.id, NOW, GRACE, staff, "suspected misconduct")
    with pytest.raises(Conflict, match="Staff have finished this attempt"):
        svc.save_answers(session, attempt.id, {slot: ["16"]}, 5, NOW, GRACE)
    (row,) = late_answers.refused_answers(session, [attempt.id])
    assert row.outcome is LogOutcome.AFTER_FINISH


def test_a_page_about_one_quiz_sweeps_only_that_quiz(session, quiz, users):
    attempt = _start(session, quiz, users, "alice")
    other = session.scalars(select(Quiz).where(Quiz.id != quiz.id)).first()
    after = attempt.deadline_at + GRACE + timedelta(seconds=1)
    assert svc.finalise_expired(session, after, GRACE, quiz_id=other.id) == 0
    session.refresh(attempt)
    assert attempt.state is AttemptState.IN_PROGRESS
    assert svc.finalise_expired(session, after, GRACE, quiz_id=quiz.id) == 1
    session.refresh(attempt)
    assert attempt.state is AttemptState.TIMED_OUT
