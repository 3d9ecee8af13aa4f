"""The review page follows the release policy: marks when released, answers and
feedback only once the window has closed for everyone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from quizapp.models import User
from tests.functional.helpers import csrf_of, model_form, seq_base, start_attempt

CLOSE = datetime(2027, 1, 19, 10, 0, tzinfo=UTC)  # quiz 1: marks immediately, answers after close
FEEDBACK = "Reverse mode propagates one adjoint"  # option feedback of a quiz-1 question
GENERAL = "backpropagation makes training networks"  # general feedback of the same question


def _take_and_submit(client, session) -> int:
    attempt_id, page = start_attempt(client)
    session.rollback()
    form = model_form(session, attempt_id)
    form.update(csrf_token=[csrf_of(page)], seq=[str(seq_base(page))])
    client.post(f"/attempt/{attempt_id}", data=form)
    confirm = client.get(f"/attempt/{attempt_id}/submit").get_data(as_text=True)
    client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": csrf_of(confirm)})
    return attempt_id


def test_review_before_and_after_the_window_closes_for_everyone(client, auth, users, sample_bank, session, clock):
    bob = session.get(User, users["bob"])
    bob.time_factor = Fraction(3, 2)  # his window closes 30 minutes later
    session.commit()
    auth.login("alice")
    attempt_id = _take_and_submit(client, session)

    during = client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)
    assert "Score: <strong>21</strong> out of 21" in during
    assert "Your answer" in during and "<dt>Correct answer</dt>" not in during
    assert FEEDBACK not in during and GENERAL not in during
    assert "Correct answers and feedback are not released yet" in during
    assert "19 Jan 2027, 10:30 GMT" in during  # after Bob's accommodated close, not 10:00

    clock.set(CLOSE + timedelta(minutes=5))  # closed for Alice, not for Bob
    assert "<dt>Correct answer</dt>" not in client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)

    clock.set(CLOSE + timedelta(minutes=30))
    after = client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)
    assert "<dt>Correct answer</dt>" in after and FEEDBACK in after and GENERAL in after


def test_marks_released_never_shows_no_score(client, auth, users, sample_bank, session, clock):
    from sqlalchemy import select

    from quizapp.models import Quiz

    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
    quiz.release = {"marks": {"when": "never", "at": None}, "answers": {"when": "never", "at": None}}
    session.commit()
    auth.login("alice")
    attempt_id = _take_and_submit(client, session)
    clock.set(CLOSE + timedelta(days=30))
    page = client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)
    assert "Score:" not in page and "<dt>Correct answer</dt>" not in page and "Marks are not released" in page
    result = client.get(f"/attempt/{attempt_id}/result").get_data(as_text=True)
    assert "not released online" in result


def test_an_unreadable_answer_is_explained_at_review(client, auth, users, sample_bank, session):
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    from tests.functional.helpers import slot_of

    slot = slot_of(session, attempt_id, "cnn-output-width")
    client.put(
        f"/api/attempts/{attempt_id}/answers/{slot}",
        json={"value": "sixteen", "seq": seq_base(page) + 1},
        headers={"X-CSRFToken": csrf_of(page)},
    )
    confirm = client.get(f"/attempt/{attempt_id}/submit").get_data(as_text=True)
    client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": csrf_of(confirm)})
    review = client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)
    assert "sixteen" in review and "Could not read this answer" in review


def test_another_students_review_is_not_found(app, client, auth, users, sample_bank, session):
    from tests.conftest import Auth

    auth.login("alice")
    attempt_id = _take_and_submit(client, session)
    other = app.test_client()
    Auth(other).login("bob")
    assert other.get(f"/attempt/{attempt_id}/review").status_code == 404
