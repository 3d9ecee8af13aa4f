"""While anyone may still be working, a student whose marks are released immediately
sees only their total, not which answers were right (issue 16, item 8); staff may choose
per-question marks, warned of what that reveals; after the window has closed for
everyone, every mark shows."""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction
from html import unescape

from sqlalchemy import select

from quizapp.models import AuditEvent, Quiz, User
from tests.functional.helpers import csrf_of
from tests.functional.test_review import CLOSE, _take_and_submit

PER_QUESTION = "<dt>Mark</dt><dd>1 out of 1"  # a right answer's mark on the review page


def _post_policy(client, quiz_id: int, question_marks: str):
    page = client.get(f"/staff/quiz/{quiz_id}/release").get_data(as_text=True)
    return client.post(
        f"/staff/quiz/{quiz_id}/release",
        data={"csrf_token": csrf_of(page), "marks": "immediately", "marks_at": "",
              "answers": "after_close", "answers_at": "", "question_marks": question_marks},
    )  # fmt: skip


def test_only_the_total_while_classmates_work_unless_staff_choose_otherwise(
    app, client, auth, users, sample_bank, session, clock
):
    bob = session.get(User, users["bob"])
    bob.time_factor = Fraction(3, 2)  # his window closes at 10:30, not 10:00
    session.commit()
    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
    auth.login("alice")
    attempt_id = _take_and_submit(client, session)
    review = f"/attempt/{attempt_id}/review"

    during = unescape(client.get(review).get_data(as_text=True))
    assert "Score: <strong>21</strong> out of 21" in during
    assert "<dt>Mark</dt>" not in during
    assert "Only your total is shown while other students may still be working" in during
    assert "after Tue 19 Jan 2027, 10:30 GMT, when the quiz has closed for everyone" in during

    clock.set(CLOSE + timedelta(minutes=5))  # closed for Alice, Bob may still be working
    assert "<dt>Mark</dt>" not in client.get(review).get_data(as_text=True)

    # Staff choose per-question marks, having been told what that reveals.
    staff = app.test_client()
    from tests.conftest import Auth

    Auth(staff).login("staff")
    page = unescape(staff.get(f"/staff/quiz/{quiz.id}/release").get_data(as_text=True))
    assert "Marks per question: only the total until the window has closed for everyone" in page
    assert "What the mark of each question reveals:" in page
    assert "knows which answers are right" in page and "answer key" in page
    # The safe choice is the one selected.
    assert re.search(r'<input checked id="question_marks-0"[^>]*value="after_close"', page)
    done = _post_policy(staff, quiz.id, "with_total")
    assert done.status_code == 302
    session.rollback()
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "release_policy"))
    assert event.details["new"]["question_marks"] == "with_total"
    assert "question_marks" not in event.details["old"]
    chosen = unescape(client.get(review).get_data(as_text=True))
    assert PER_QUESTION in chosen and "Only your total is shown" not in chosen

    # Back to the safe choice: hidden again until the window has closed for Bob too.
    assert _post_policy(staff, quiz.id, "after_close").status_code == 302
    assert "<dt>Mark</dt>" not in client.get(review).get_data(as_text=True)
    clock.set(CLOSE + timedelta(minutes=30))
    after = unescape(client.get(review).get_data(as_text=True))
    assert PER_QUESTION in after and "Only your total is shown" not in after


def test_a_made_up_choice_is_refused(client, auth, users, sample_bank, session):
    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
    auth.login("staff")
    refused = _post_policy(client, quiz.id, "always")
    assert refused.status_code == 400 and "Not a valid choice" in refused.get_data(as_text=True)
