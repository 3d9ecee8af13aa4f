"""Quiz statistics on a real database: students answer and submit, then the service's
numbers must equal the domain's computation on the marks read back independently."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from sqlalchemy import event, select

from quizapp.domain import statistics as st
from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, Mark, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.catalog import attempt_questions
from quizapp.services.errors import InvalidInput, NotFound
from quizapp.services.statistics import WhichAttempts, quiz_statistics, statistics_rows
from quizapp.services.users import create_user
from tests.conftest import PASSWORD, QUIZ1_OPENS

GRACE = timedelta(seconds=10)
START = QUIZ1_OPENS + timedelta(hours=1)


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


def _answer(session, attempt: Attempt, share: float, seq: int = 1) -> None:
    """Answer the first `share` of the attempt's slots (in slot order) with the model
    answer; the rest are left unanswered."""
    pairs = sorted(attempt_questions(session, attempt), key=lambda p: p[0].slot)
    chosen = pairs[: round(len(pairs) * share)]
    form = {}
    for entry, question in chosen:
        model = question.body.model_response(entry.variant)
        if model is not None:
            form[entry.slot] = question.body.form_values(entry.variant, model)
    if form:
        svc.save_answers(session, attempt.id, form, seq, START, GRACE)


def _take(session, quiz, user_id: int, share: float, at=START) -> Attempt:
    user = session.get(User, user_id)
    attempt = svc.start_attempt(session, quiz.id, user, at, GRACE)
    _answer(session, attempt, share)
    return attempt


def _expected(session, quiz_id: int, attempt_ids: list[int]) -> st.QuizStatistics:
    """The domain computation on marks read the slow, obvious way."""
    attempts = [session.get(Attempt, i) for i in attempt_ids]
    slots = sorted({int(e["slot"]) for a in attempts for e in a.layout})
    maxima = {int(e["slot"]): Fraction(e["marks"]) for a in attempts for e in a.layout}
    matrix, labels = [], []
    for attempt in attempts:
        rows = session.scalars(
            select(Mark).where(Mark.attempt_id == attempt.id).order_by(Mark.id)
        ).all()
        newest = {m.slot: m for m in rows}  # later rows overwrite earlier ones
        keys = {int(e["slot"]): e["question_key"] for e in attempt.layout}
        matrix.append([newest[s].marks for s in slots])
        labels.append([f"{keys[s]} (version {newest[s].version_id})" for s in slots])
    return st.quiz_statistics(matrix, [maxima[s] for s in slots], slots=slots, labels=labels)


def _student_order(session, attempt_id: int) -> int:
    # The service lists attempts by student id, then attempt number.
    return session.get(Attempt, attempt_id).user_id


def _quiz_max(quiz: Quiz) -> Fraction:
    return sum((s.marks for s in quiz.slots), Fraction(0))


def test_statistics_match_the_domain_on_submitted_attempts(session, quiz, users):
    dana = create_user(session, "dana", PASSWORD).id
    shares = {users["alice"]: 1.0, users["bob"]: 0.6, users["carol"]: 0.3, dana: 0.8}
    taken = []
    for user_id, share in shares.items():
        attempt = _take(session, quiz, user_id, share)
        assert svc.submit_attempt(session, attempt, START + timedelta(minutes=10), GRACE)
        taken.append(attempt.id)

    report = quiz_statistics(session, quiz.id, START + timedelta(minutes=20), GRACE)
    expected = _expected(session, quiz.id, sorted(taken, key=lambda i: _student_order(session, i)))
    assert report.stats.n == 4 and report.finished_attempts == 4
    assert report.stats == expected
    # Alice answered everything with the model answers: full marks.
    assert report.stats.maximum == report.stats.max_total == _quiz_max(quiz)
    assert report.stats.alpha is not None
    # Pools: the optimisers slots report which questions were drawn into them.
    assert all(info.questions for info in report.slots)
    assert len(report.slots) == len(quiz.slots) == 15


def test_current_mark_is_the_newest_row_and_unfinished_attempts_are_handled(session, quiz, users):
    a = _take(session, quiz, users["alice"], 1.0)
    svc.submit_attempt(session, a, START + timedelta(minutes=5), GRACE)
    b = _take(session, quiz, users["bob"], 0.5)
    svc.submit_attempt(session, b, START + timedelta(minutes=5), GRACE)
    # Carol's attempt runs out of time: the service finalises it before reading.
    c = _take(session, quiz, users["carol"], 0.2)
    # A staff regrade of Bob's slot 1: a newer mark row; the older stays as history.
    old = session.scalars(
        select(Mark).where(Mark.attempt_id == b.id, Mark.slot == 1).order_by(Mark.id)
    ).first()
    session.add(
        Mark(
            attempt_id=b.id,
            slot=1,
            version_id=old.version_id,
            fraction=Fraction(1, 2),
            marks=Fraction(1, 4),
            status="partial",
            source="manual",
            created_at=START + timedelta(minutes=30),
        )
    )
    session.commit()
    later = START + timedelta(hours=2)
    report = quiz_statistics(session, quiz.id, later, GRACE)
    session.refresh(c)
    assert c.state is AttemptState.TIMED_OUT
    assert report.stats.n == 3
    assert report.stats == _expected(session, quiz.id, [a.id, b.id, c.id])
    # Bob's current slot-1 mark is the manual 1/4, not the automatic full mark.
    assert old.marks == 1
    assert (
        report.stats.totals[1]
        == _sum_of_other_slots(session, b.id) + Fraction(1, 4)
        == b.score - 1 + Fraction(1, 4)
    )
    assert report.stats.slots[0].stats.n == 3


def _sum_of_other_slots(session, attempt_id: int) -> Fraction:
    rows = session.scalars(
        select(Mark).where(Mark.attempt_id == attempt_id).order_by(Mark.id)
    ).all()
    newest = {m.slot: m.marks for m in rows}
    return sum((v for s, v in newest.items() if s != 1), Fraction(0))


def test_an_attempt_in_progress_is_left_out(session, quiz, users):
    a = _take(session, quiz, users["alice"], 1.0)
    svc.submit_attempt(session, a, START + timedelta(minutes=5), GRACE)
    _take(session, quiz, users["bob"], 1.0)  # still within its hour
    report = quiz_statistics(session, quiz.id, START + timedelta(minutes=10), GRACE)
    assert report.stats.n == 1 and report.finished_attempts == 1
    assert report.stats.alpha_undefined_because == st.TOO_FEW_ATTEMPTS


def test_which_attempts_count_with_several_attempts(session, quiz, users):
    quiz.max_attempts = 2
    quiz.grading = "highest"
    session.commit()
    first = _take(session, quiz, users["alice"], 0.2)
    svc.submit_attempt(session, first, START + timedelta(minutes=5), GRACE)
    second = _take(session, quiz, users["alice"], 1.0, at=START + timedelta(minutes=6))
    svc.submit_attempt(session, second, START + timedelta(minutes=9), GRACE)
    bob = _take(session, quiz, users["bob"], 0.5)
    svc.submit_attempt(session, bob, START + timedelta(minutes=9), GRACE)
    moment = START + timedelta(minutes=20)

    def totals(which: WhichAttempts) -> list[Fraction]:
        return list(quiz_statistics(session, quiz.id, moment, GRACE, which).stats.totals)

    assert totals(WhichAttempts.FIRST) == [first.score, bob.score]  # the default
    assert quiz_statistics(session, quiz.id, moment, GRACE).which is WhichAttempts.FIRST
    assert totals(WhichAttempts.LAST) == [second.score, bob.score]
    assert totals(WhichAttempts.GRADED) == [second.score, bob.score]  # highest
    assert totals(WhichAttempts.ALL) == [first.score, second.score, bob.score]
    quiz.grading = "average"
    session.commit()
    assert totals(WhichAttempts.GRADED) == [first.score, second.score, bob.score]


def test_few_queries_however_many_attempts(app, session, quiz, users):
    """Four reads (quiz, attempts, current marks, quiz slots) plus the finaliser's
    sweep: the count does not grow with the number of attempts."""

    def count_queries(n_students: int) -> int:
        quiz_id = quiz.id
        session.expire_all()
        statements: list[str] = []
        engine = session.get_bind()

        def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            report = quiz_statistics(session, quiz_id, START + timedelta(hours=3), GRACE)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert report.stats.n == n_students
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    a = _take(session, quiz, users["alice"], 1.0)
    svc.submit_attempt(session, a, START, GRACE)
    one = count_queries(1)
    for name in ("bob", "carol"):
        attempt = _take(session, quiz, users[name], 0.5)
        svc.submit_attempt(session, attempt, START, GRACE)
    three = count_queries(3)
    assert one == three <= 5


def test_csv_rows_and_errors(session, quiz, users):
    a = _take(session, quiz, users["alice"], 1.0)
    svc.submit_attempt(session, a, START, GRACE)
    report = quiz_statistics(session, quiz.id, START + timedelta(minutes=1), GRACE)
    rows = list(statistics_rows(report))
    assert rows[0] == ["statistic", "value"]
    assert ["attempts", "1"] in rows
    header = rows.index([]) + 1
    assert rows[header][:3] == ["slot", "question", "attempts"]
    assert len(rows) - header - 1 >= 15
    with pytest.raises(NotFound):
        quiz_statistics(session, 999_999, START, GRACE)
    with pytest.raises(InvalidInput):
        WhichAttempts.parse("best")
