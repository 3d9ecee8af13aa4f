"""Staff statistics pages through the test client: the page, its charts, the CSV, access."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import select

from quizapp.models import Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.catalog import attempt_questions
from tests.conftest import QUIZ1_OPENS

GRACE = timedelta(seconds=10)


def _submit(session, quiz_id: int, user_id: int, share: float) -> None:
    """A student answers the first `share` of their slots with model answers, submits."""
    now = QUIZ1_OPENS + timedelta(hours=1)
    attempt = svc.start_attempt(session, quiz_id, session.get(User, user_id), now, GRACE)
    pairs = sorted(attempt_questions(session, attempt), key=lambda p: p[0].slot)
    form = {
        entry.slot: question.body.form_values(entry.variant, model)
        for entry, question in pairs[: round(len(pairs) * share)]
        if (model := question.body.model_response(entry.variant)) is not None
    }
    if form:
        svc.save_answers(session, attempt.id, form, 1, now, GRACE)
    svc.submit_attempt(session, attempt, now + timedelta(minutes=5), GRACE)


def _quiz_id(session) -> int:
    return session.scalars(select(Quiz.id).where(Quiz.key == "quiz1-foundations")).one()


def test_staff_sees_statistics_with_charts_and_downloads_the_csv(
    client, auth, session, sample_bank, users
):
    quiz_id = _quiz_id(session)
    for name, share in (("alice", 1.0), ("bob", 0.5), ("carol", 0.2)):
        _submit(session, quiz_id, users[name], share)
    auth.login("staff")

    index = client.get("/staff/").get_data(as_text=True)
    assert f'href="/staff/stats/quiz/{quiz_id}"' in index

    response = client.get(f"/staff/stats/quiz/{quiz_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Statistics: Quiz 1: Foundations" in page
    assert "Cronbach" in page and "Facility" in page and "Discrimination" in page
    # Two server-drawn charts, each with a text alternative, and no inline style or script.
    assert page.count("<svg") == 2
    assert page.count("<title id=") == 2 and page.count("<desc id=") == 2
    assert 'role="img"' in page and "aria-labelledby" in page
    assert "style=" not in page and "<script" not in page
    # Everyone answered slot 1 (the first share of their slots), but three attempts judge
    # nothing (test_statistics_judgement_pages.py has a class large enough to judge).
    assert "<strong>very easy</strong>" not in page
    assert "<strong>discrimination undefined</strong>" not in page
    assert '<em class="muted">too few attempts to judge</em>' in page
    assert "each student&#39;s first finished attempt" in page

    csv_response = client.get(f"/staff/stats/quiz/{quiz_id}.csv")
    assert csv_response.status_code == 200
    assert csv_response.mimetype == "text/csv"
    assert "attachment" in csv_response.headers["Content-Disposition"]
    text = csv_response.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert ["attempts", "3"] in rows
    assert ["attempts counted", "first"] in rows
    header = rows.index([]) + 1
    slot_rows = [r for r in rows[header + 1 :] if r]
    assert rows[header][0] == "slot" and slot_rows[0][0] == "1"
    assert slot_rows[0][5] == "100"  # facility of slot 1, in per cent
    assert slot_rows[0][10] == "too few attempts to judge"


def test_attempts_choice_and_unknown_choice(client, auth, session, sample_bank, users):
    quiz_id = _quiz_id(session)
    auth.login("staff")
    page = client.get(f"/staff/stats/quiz/{quiz_id}?attempts=all").get_data(as_text=True)
    assert re.search(r'<option value="all" selected>', page)
    assert "no finished attempts" in page  # nobody has taken it: said so, not a crash
    assert client.get(f"/staff/stats/quiz/{quiz_id}?attempts=best").status_code == 400
    assert client.get("/staff/stats/quiz/999999").status_code == 404
    assert client.get("/staff/stats/quiz/999999.csv").status_code == 404


def test_students_get_403(client, auth, session, sample_bank, users):
    quiz_id = _quiz_id(session)
    auth.login("alice")
    assert client.get(f"/staff/stats/quiz/{quiz_id}").status_code == 403
    assert client.get(f"/staff/stats/quiz/{quiz_id}.csv").status_code == 403


def test_csv_is_spreadsheet_safe(client, auth, session, sample_bank, users):
    quiz_id = _quiz_id(session)
    quiz = session.get(Quiz, quiz_id)
    quiz.title = '=HYPERLINK("http://evil")'
    session.commit()
    auth.login("staff")
    text = client.get(f"/staff/stats/quiz/{quiz_id}.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert ["title", '\'=HYPERLINK("http://evil")'] in rows
