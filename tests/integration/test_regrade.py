"""Fix and regrade on a real database: a question is corrected in its YAML, re-imported,
and every finished attempt's stored answer is marked again (dry run first)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quizapp.bank.loader import load_bank
from quizapp.models import Attempt, AuditEvent, Mark, Question, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.bank_import import import_bank
from quizapp.services.catalog import attempt_questions
from quizapp.services.errors import Conflict, InvalidInput
from quizapp.services.marking import current_marks_of, mark_answer
from quizapp.services.progress import Step
from quizapp.services.regrade import (
    RegradeMode,
    RegradeOptions,
    commit_regrade,
    plan_regrade,
)
from quizapp.services.users import create_user
from tests.conftest import PASSWORD, QUIZ1_OPENS, SAMPLE_BANK

GRACE = timedelta(seconds=10)
KEY = "cnn-output-width"  # numeric, 2 marks in quiz 1; the right answer is 16
STARTED = QUIZ1_OPENS + timedelta(hours=1)
REGRADED = QUIZ1_OPENS + timedelta(hours=3)


def _bank_with(tmp_path: Path, old: str, new: str) -> Path:
    bank = tmp_path / "bank"
    if not bank.exists():
        shutil.copytree(SAMPLE_BANK, bank)
    path = bank / "questions" / "cnn.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return bank


def _import(session, bank: Path) -> None:
    loaded = load_bank(bank)
    assert loaded.ok, loaded.problems
    import_bank(session, loaded)


def _answer(session, attempt: Attempt, key: str, response, seq: int = 1) -> int:
    """Save `response` (a stored value) for question `key` as the student's form would."""
    for entry, question in attempt_questions(session, attempt):
        if question.key == key:
            values = question.body.form_values(entry.variant, response)
            svc.save_answers(session, attempt.id, {entry.slot: values}, seq, STARTED, GRACE)
            return entry.slot
    raise AssertionError(f"{key} not in attempt {attempt.id}")


def _take(session, user_id: int, answers: dict[str, object]) -> Attempt:
    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
    attempt = svc.start_attempt(session, quiz.id, session.get(User, user_id), STARTED, GRACE)
    for key, response in answers.items():
        _answer(session, attempt, key, response)
    assert svc.submit_attempt(session, attempt, STARTED + timedelta(minutes=10), GRACE)
    return attempt


def _slot_mark(session, attempt: Attempt, key: str = KEY) -> Mark:
    session.rollback()
    slot = next(
        e.slot
        for e, q in attempt_questions(session, session.get(Attempt, attempt.id))
        if q.key == key
    )
    return current_marks_of(session, [attempt.id])[(attempt.id, slot)]


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _marks_sum(session, attempt_id: int) -> Fraction:
    return sum((m.marks for m in current_marks_of(session, [attempt_id]).values()), Fraction(0))


@pytest.fixture
def broken(session, users, tmp_path):
    """Quiz 1 imported with a wrong key (15 instead of 16); alice answers 16 (right, but
    scored 0), bob 15 (wrong, but scored full), carol 14 (wrong either way)."""
    bank = _bank_with(tmp_path, "answer: 16\n", "answer: 15\n")
    _import(session, bank)
    attempts = {
        "alice": _take(session, users["alice"], {KEY: "16", "autodiff-reverse-mode-cost": "1"}),
        "bob": _take(session, users["bob"], {KEY: "15", "autodiff-reverse-mode-cost": "0"}),
        "carol": _take(session, users["carol"], {KEY: "14"}),
    }
    return bank, attempts


def _fix(session, bank: Path) -> int:
    _bank_with(bank.parent, "answer: 15\n", "answer: 16\n")
    _import(session, bank)
    return session.scalars(select(Question).where(Question.key == KEY)).one().current_version_id


def _quiz_id(session) -> int:
    return session.scalars(select(Quiz.id).where(Quiz.key == "quiz1-foundations")).one()


def test_a_corrected_question_regrades_right_answers_up_and_keeps_the_history(
    session, users, broken
):
    bank, attempts = broken
    alice, bob = attempts["alice"], attempts["bob"]
    old_version = _slot_mark(session, alice).version_id
    assert _slot_mark(session, alice).marks == 0 and _slot_mark(session, bob).marks == 2
    old_scores = {name: session.get(Attempt, a.id).score for name, a in attempts.items()}
    new_version = _fix(session, bank)
    assert new_version != old_version
    options = RegradeOptions(KEY)

    # The dry run: the table and summary, and nothing written.
    marks_before, audit_before = _count(session, Mark), _count(session, AuditEvent)
    plan = plan_regrade(session, _quiz_id(session), options, REGRADED, GRACE)
    assert [r.username for r in plan.rows] == ["alice", "bob", "carol"]
    by_name = {r.username: r for r in plan.rows}
    assert (by_name["alice"].old_mark, by_name["alice"].new_mark) == (0, 2)
    assert (by_name["bob"].old_mark, by_name["bob"].new_mark) == (2, 0)
    assert by_name["carol"].direction == "unchanged"
    assert by_name["alice"].new_total == old_scores["alice"] + 2
    assert by_name["bob"].new_total == old_scores["bob"] - 2
    assert plan.counts == {"up": 1, "down": 1, "unchanged": 1}
    assert "1 up, 1 down, 1 unchanged" in plan.message
    session.rollback()
    assert _count(session, Mark) == marks_before and _count(session, AuditEvent) == audit_before
    assert session.get(Attempt, alice.id).layout == alice.layout

    done = commit_regrade(
        session,
        _quiz_id(session),
        options,
        users["staff"],
        REGRADED,
        GRACE,
        expected=plan.fingerprint,
    )
    assert done.committed and done.written == 3  # carol's row records the new version too
    session.rollback()
    for name, change in (("alice", 2), ("bob", -2), ("carol", 0)):
        attempt = session.get(Attempt, attempts[name].id)
        assert attempt.score == old_scores[name] + change
        assert attempt.score == _marks_sum(session, attempt.id)  # exact sum of current marks
        current = _slot_mark(session, attempt)
        assert current.source == "regrade" and current.created_by == users["staff"]
        assert current.version_id == new_version
        entry = next(e for e in attempt.layout if e["question_key"] == KEY)
        assert entry["version_id"] == new_version  # moved on commit
        assert (
            entry["variant"]
            == next(e for e in attempts[name].layout if e["question_key"] == KEY)["variant"]
        )
    # History: the automatic rows are still there, unchanged.
    rows = session.scalars(
        select(Mark)
        .where(Mark.attempt_id == alice.id, Mark.slot == current_slot(alice))
        .order_by(Mark.id)
    ).all()
    assert [(r.source, r.marks, r.version_id) for r in rows] == [
        ("auto", 0, old_version),
        ("regrade", 2, new_version),
    ]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "regrade")).one()
    assert event.actor_id == users["staff"]
    assert event.details["question"] == KEY and event.details["mode"] == "regrade"
    assert (event.details["up"], event.details["down"], event.details["unchanged"]) == (1, 1, 1)
    assert event.details["written"] == 3

    # Regrading again changes nothing and writes nothing.
    again = commit_regrade(session, _quiz_id(session), options, users["staff"], REGRADED, GRACE)
    assert again.written == 0 and again.counts == {"up": 0, "down": 0, "unchanged": 3}


def current_slot(attempt: Attempt) -> int:
    return next(e["slot"] for e in attempt.layout if e["question_key"] == KEY)


def test_never_lower_keeps_a_higher_current_mark(session, users, broken):
    bank, attempts = broken
    _fix(session, bank)
    bob_before = session.get(Attempt, attempts["bob"].id).score
    plan = commit_regrade(
        session,
        _quiz_id(session),
        RegradeOptions(KEY, never_lower=True),
        users["staff"],
        REGRADED,
        GRACE,
    )
    by_name = {r.username: r for r in plan.rows}
    assert by_name["bob"].new_mark == 2 and by_name["bob"].note == "kept: never lower"
    assert not by_name["bob"].writes
    assert plan.counts == {"up": 1, "down": 0, "unchanged": 2}
    session.rollback()
    assert session.get(Attempt, attempts["bob"].id).score == bob_before
    assert _slot_mark(session, attempts["bob"]).source == "auto"
    assert _slot_mark(session, attempts["alice"]).marks == 2


def test_accept_gives_full_marks_to_listed_values_and_option_keys(session, users, broken):
    bank, attempts = broken
    _fix(session, bank)
    quiz_id = _quiz_id(session)
    plan = commit_regrade(
        session,
        quiz_id,
        RegradeOptions(KEY, RegradeMode.ACCEPT, accept=("15",)),
        users["staff"],
        REGRADED,
        GRACE,
    )
    by_name = {r.username: r for r in plan.rows}
    assert (by_name["alice"].new_mark, by_name["bob"].new_mark, by_name["carol"].new_mark) == (
        2,
        2,
        0,
    )
    assert _slot_mark(session, attempts["bob"]).feedback.startswith("This answer was also accepted")

    # A choice question: option key "1" (alice's choice) is accepted too; "0" was right.
    choice = "autodiff-reverse-mode-cost"
    assert _slot_mark(session, attempts["alice"], choice).marks == 0
    plan = commit_regrade(
        session,
        quiz_id,
        RegradeOptions(choice, RegradeMode.ACCEPT, ("1",)),
        users["staff"],
        REGRADED,
        GRACE,
    )
    by_name = {r.username: r for r in plan.rows}
    assert by_name["alice"].new_mark == 1 and by_name["bob"].new_mark == 1
    assert by_name["carol"].new_mark == 0  # no answer
    assert _slot_mark(session, attempts["alice"], choice).marks == 1
    with pytest.raises(InvalidInput, match="No option 9"):
        plan_regrade(
            session, quiz_id, RegradeOptions(choice, RegradeMode.ACCEPT, ("9",)), REGRADED, GRACE
        )
    with pytest.raises(InvalidInput, match="at least one"):
        plan_regrade(session, quiz_id, RegradeOptions(choice, RegradeMode.ACCEPT), REGRADED, GRACE)


def test_full_marks_for_everyone_keeps_the_layout_version(session, users, broken):
    _bank, attempts = broken
    quiz_id = _quiz_id(session)
    plan = commit_regrade(
        session,
        quiz_id,
        RegradeOptions(KEY, RegradeMode.FULL_MARKS),
        users["staff"],
        REGRADED,
        GRACE,
    )
    assert plan.counts == {"up": 2, "down": 0, "unchanged": 1}
    session.rollback()
    for attempt in attempts.values():
        fresh = session.get(Attempt, attempt.id)
        current = _slot_mark(session, fresh)
        assert current.marks == 2 and current.source == "regrade"
        assert fresh.layout == attempt.layout  # no grading against another version
        assert current.version_id == next(
            e["version_id"] for e in attempt.layout if e["question_key"] == KEY
        )
        assert fresh.score == _marks_sum(session, fresh.id)


def test_a_question_without_attempts_writes_nothing_and_says_so(session, users, sample_bank):
    quiz_id = _quiz_id(session)
    marks, events = _count(session, Mark), _count(session, AuditEvent)
    plan = commit_regrade(session, quiz_id, RegradeOptions(KEY), users["staff"], REGRADED, GRACE)
    assert plan.rows == [] and not plan.committed
    assert "No finished attempt of quiz1-foundations has question cnn-output-width" in plan.message
    assert "nothing was written" in plan.message
    session.rollback()
    assert _count(session, Mark) == marks and _count(session, AuditEvent) == events


def test_in_progress_attempts_are_left_alone_and_expired_ones_finalised_first(
    session, users, broken
):
    bank, _attempts = broken
    _fix(session, bank)
    quiz_id = _quiz_id(session)
    dave = create_user(session, "dave", PASSWORD)
    late = svc.start_attempt(session, quiz_id, dave, REGRADED - timedelta(minutes=5), GRACE)
    _answer(session, late, KEY, "16")
    plan = plan_regrade(session, quiz_id, RegradeOptions(KEY), REGRADED, GRACE)
    assert plan.in_progress == 1 and len(plan.rows) == 3
    assert "1 attempt(s) with this question are still in progress" in plan.message
    # After dave's deadline and grace, the regrade finalises his attempt and includes it.
    after = REGRADED + timedelta(hours=1)
    plan = commit_regrade(session, quiz_id, RegradeOptions(KEY), users["staff"], after, GRACE)
    assert plan.in_progress == 0 and "dave" in [r.username for r in plan.rows]
    session.rollback()
    assert session.get(Attempt, late.id).state.value == "timed_out"


def test_a_commit_whose_outcome_differs_from_the_dry_run_writes_nothing(session, users, broken):
    bank, attempts = broken
    _fix(session, bank)
    quiz_id = _quiz_id(session)
    plan = plan_regrade(session, quiz_id, RegradeOptions(KEY), REGRADED, GRACE)
    # Meanwhile someone marks bob's answer by hand.
    mark_answer(
        session,
        attempts["bob"].id,
        current_slot(attempts["bob"]),
        "1",
        "half",
        users["staff"],
        REGRADED,
    )
    marks = _count(session, Mark)
    with pytest.raises(Conflict, match="changed since the dry run"):
        commit_regrade(
            session,
            quiz_id,
            RegradeOptions(KEY),
            users["staff"],
            REGRADED,
            GRACE,
            expected=plan.fingerprint,
        )
    session.rollback()
    assert _count(session, Mark) == marks
    # The manual mark is an examiner's judgement: the regrade keeps it.
    plan = commit_regrade(session, quiz_id, RegradeOptions(KEY), users["staff"], REGRADED, GRACE)
    bob = next(r for r in plan.rows if r.username == "bob")
    assert bob.note == "manual mark kept" and bob.new_mark == 1
    assert _slot_mark(session, attempts["bob"]).source == "manual"


def test_essays_are_not_regraded_automatically(session, users, sample_bank):
    quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == "quiz2-gradients-and-shapes")).one()
    with pytest.raises(InvalidInput, match="marked by hand"):
        plan_regrade(session, quiz_id, RegradeOptions("reg-overfitting-essay"), REGRADED, GRACE)
    plan = plan_regrade(
        session,
        quiz_id,
        RegradeOptions("reg-overfitting-essay", RegradeMode.FULL_MARKS),
        REGRADED,
        GRACE,
    )
    assert plan.rows == []


def test_cli_prints_a_dry_run_and_commits_on_request(app, session, users, broken):
    bank, attempts = broken
    _fix(session, bank)
    runner = app.test_cli_runner()
    marks = _count(session, Mark)
    result = runner.invoke(args=["regrade", "quiz1-foundations", "--question", KEY])
    assert result.exit_code == 0, result.output
    assert "alice" in result.output and "+2" in result.output
    assert "1 up, 1 down, 1 unchanged" in result.output
    assert "Dry run: nothing was written" in result.output
    session.rollback()
    assert _count(session, Mark) == marks

    result = runner.invoke(
        args=[
            "regrade",
            "quiz1-foundations",
            "--question",
            KEY,
            "--never-lower",
            "--commit",
            "--by",
            "staff",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "new mark(s) were written" in result.output
    session.rollback()
    assert _slot_mark(session, attempts["alice"]).created_by == users["staff"]
    assert _slot_mark(session, attempts["bob"]).marks == 2  # never lower

    result = runner.invoke(args=["regrade", "quiz1-foundations", "--question", "nope"])
    assert result.exit_code != 0 and "No imported question 'nope'" in result.output
    result = runner.invoke(
        args=["regrade", "quiz1-foundations", "--question", KEY, "--mode", "accept"]
    )
    assert result.exit_code != 0 and "at least one" in result.output


def test_a_change_between_working_out_and_writing_is_caught_and_writes_nothing(
    app, session, users, broken
):
    """Compute first, write at the end: a manual mark arriving while the regrade is being
    worked out (after its read, before its write) makes the write refuse, whole."""
    from quizapp.services.regrade import commit_regrade_steps

    bank, attempts = broken
    _fix(session, bank)
    quiz_id = _quiz_id(session)
    marks, events = _count(session, Mark), _count(session, AuditEvent)
    with app.extensions["quizapp_db"].new_session() as examiner:
        steps = commit_regrade_steps(
            examiner, quiz_id, RegradeOptions(KEY), users["staff"], REGRADED, GRACE
        )
        seen = []
        for step in steps:
            seen.append(step)
            if step.stage:
                break  # worked out; the write comes next
        assert seen[-2:] == [Step(3, 3), Step(stage="Writing 3 new mark(s) and the new totals")]
        # Meanwhile another examiner marks carol's answer by hand.
        mark_answer(
            session,
            attempts["carol"].id,
            current_slot(attempts["carol"]),
            "1",
            "close",
            users["staff"],
            REGRADED,
        )
        with pytest.raises(Conflict, match="changed while the regrade was being worked out"):
            next(steps)
    session.rollback()
    assert _count(session, Mark) == marks + 1  # the manual mark only
    assert _count(session, AuditEvent, AuditEvent.action == "regrade") == 0
    assert _slot_mark(session, attempts["alice"]).marks == 0, "alice still as before"
    assert _count(session, AuditEvent) == events + 1  # the manual mark's event


def test_progress_reports_every_chunk_of_attempts(session, users, broken, monkeypatch):
    from quizapp.services import regrade as regrade_module

    bank, _attempts = broken
    _fix(session, bank)
    monkeypatch.setattr(regrade_module, "CHUNK", 2)
    seen: list[tuple[int, int]] = []
    plan = plan_regrade(
        session,
        _quiz_id(session),
        RegradeOptions(KEY),
        REGRADED,
        GRACE,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(0, 3), (2, 3), (3, 3)] and len(plan.rows) == 3
