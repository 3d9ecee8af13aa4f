"""The review page follows the release policy: marks when released, answers and
feedback only once the window has closed for everyone."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sqlalchemy import select

from quizapp.models import Attempt, Quiz, User
from quizapp.services.catalog import attempt_questions
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


def test_review_before_and_after_the_window_closes_for_everyone(
    client, auth, users, sample_bank, session, clock
):
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
    assert "<dt>Correct answer</dt>" not in client.get(f"/attempt/{attempt_id}/review").get_data(
        as_text=True
    )

    clock.set(CLOSE + timedelta(minutes=30))
    after = client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)
    assert "<dt>Correct answer</dt>" in after and FEEDBACK in after and GENERAL in after


def test_marks_released_never_shows_no_score(client, auth, users, sample_bank, session, clock):
    from sqlalchemy import select

    from quizapp.models import Quiz

    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
    quiz.release = {
        "marks": {"when": "never", "at": None},
        "answers": {"when": "never", "at": None},
    }
    session.commit()
    auth.login("alice")
    attempt_id = _take_and_submit(client, session)
    clock.set(CLOSE + timedelta(days=30))
    page = client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)
    assert (
        "Score:" not in page
        and "<dt>Correct answer</dt>" not in page
        and "Marks are not released" in page
    )
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


QUIZ2_MIDDLE = datetime(2027, 1, 25, 11, 0, tzinfo=UTC)  # quiz 2: answers after it closes
QUIZ2_CLOSED = datetime(2027, 1, 26, 12, 0, tzinfo=UTC)
TYPED = "<b>bold</b> *x* and $y$, " * 10  # an essay that looks like markup, Markdown and maths


def _review_cells(page: str, number: int) -> dict[str, str]:
    """The answer cells of question `number` on the review page, by class."""
    section = re.search(
        rf'<section class="card question review" aria-labelledby="r{number}-title">(.*?)</section>',
        page,
        re.DOTALL,
    )
    assert section, f"no question {number} on the review page"
    return dict(
        re.findall(r'<dd class="(response|correct-answer)">(.*?)</dd>', section[1], re.DOTALL)
    )


def test_review_draws_the_maths_of_options_and_shows_typed_text_as_typed(
    client, auth, users, sample_bank, session, clock
):
    clock.set(QUIZ2_MIDDLE)
    quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == "quiz2-gradients-and-shapes")).one()
    auth.login("alice")
    attempt_id, page = start_attempt(client, quiz_id)
    session.rollback()
    numbers, he_letter = {}, ""
    for number, (entry, question) in enumerate(
        attempt_questions(session, session.get(Attempt, attempt_id)), start=1
    ):
        numbers[question.key] = number
        if question.key == "init-he-relu":
            # The options are LaTeX; option "0" (He's) is correct: answer "1" (LeCun's).
            he_letter = question.body.form_values(entry.variant, "0")[0]
            value = question.body.form_values(entry.variant, "1")
        elif question.key == "reg-overfitting-essay":
            value = [TYPED]
        else:
            continue
        reply = client.put(
            f"/api/attempts/{attempt_id}/answers/{entry.slot}",
            json={"value": value, "seq": seq_base(page) + number},
            headers={"X-CSRFToken": csrf_of(page)},
        )
        assert reply.status_code == 200, reply.get_data(as_text=True)
    confirm = client.get(f"/attempt/{attempt_id}/submit").get_data(as_text=True)
    client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": csrf_of(confirm)})
    choice, essay = numbers["init-he-relu"], numbers["reg-overfitting-essay"]

    before = client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)
    cells = _review_cells(before, choice)
    assert set(cells) == {"response"}  # no correct answer before release
    assert "<math" in cells["response"] and "$" not in cells["response"]
    assert "N(0, 1/n)" in cells["response"]  # LeCun's, in the reading for screen readers
    assert "2/n" not in before  # He's option, the correct one, is not given away

    clock.set(QUIZ2_CLOSED)
    after = client.get(f"/attempt/{attempt_id}/review").get_data(as_text=True)
    cells = _review_cells(after, choice)
    assert cells["response"] == _review_cells(before, choice)["response"]
    correct = cells["correct-answer"]
    assert correct.startswith(f"{he_letter}. ")
    assert "<math" in correct and "$" not in correct
    assert "N(0, 2/n)" in correct

    typed = _review_cells(after, essay)["response"]
    assert typed == html.escape(TYPED)  # exactly as typed: no bold, emphasis or maths
