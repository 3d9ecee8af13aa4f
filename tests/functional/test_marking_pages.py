"""Staff marking and regrade pages through the test client: the queue, a mark per answer,
refusals, the history, and regrade's choose → dry run → confirm."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from quizapp.models import Attempt, AuditEvent, Mark, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.catalog import attempt_questions
from quizapp.services.marking import current_marks_of
from tests.conftest import QUIZ1_OPENS
from tests.functional.helpers import csrf_of

GRACE = timedelta(seconds=10)
QUIZ2_OPENS = datetime(2027, 1, 25, 10, 0, tzinfo=UTC)
ESSAY = "reg-overfitting-essay"
ESSAY_TEXT = "Overfitting.\n<script>alert(1)</script> & <b>early stopping</b>"


def _slot(session, attempt: Attempt, key: str) -> int:
    return next(e.slot for e, q in attempt_questions(session, attempt) if q.key == key)


def _take(session, quiz_key: str, user_id: int, start, answers: dict[str, list[str]]) -> Attempt:
    quiz = session.scalars(select(Quiz).where(Quiz.key == quiz_key)).one()
    attempt = svc.start_attempt(session, quiz.id, session.get(User, user_id), start, GRACE)
    values = {_slot(session, attempt, key): value for key, value in answers.items()}
    if values:
        svc.save_answers(session, attempt.id, values, 1, start, GRACE)
    assert svc.submit_attempt(session, attempt, start + timedelta(minutes=5), GRACE)
    return attempt


@pytest.fixture
def essay(session, users, sample_bank, clock):
    start = QUIZ2_OPENS + timedelta(hours=1)
    attempt = _take(
        session, "quiz2-gradients-and-shapes", users["alice"], start, {ESSAY: [ESSAY_TEXT]}
    )
    clock.set(start + timedelta(hours=2))
    return attempt, _slot(session, attempt, ESSAY)


def _count(session, model) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model))


def test_staff_mark_an_essay_from_the_queue(client, auth, session, users, essay):
    attempt, slot = essay
    auth.login("staff")
    quiz_id = attempt.quiz_id
    index = client.get("/staff/").get_data(as_text=True)
    assert (
        f"/staff/marking/quiz/{quiz_id}" in index
        and f"/staff/marking/quiz/{quiz_id}/regrade" in index
    )

    queue = client.get(f"/staff/marking/quiz/{quiz_id}").get_data(as_text=True)
    assert "1 answer left to mark" in queue
    assert f"/staff/marking/quiz/{quiz_id}/slot/{slot}" in queue

    page = client.get(f"/staff/marking/quiz/{quiz_id}/slot/{slot}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('class="stem"') == 1 and "Diagnosing overfitting" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;early stopping&lt;/b&gt;" in html
    assert "<script>alert(1)" not in html
    # The sample answer is the author's Markdown, drawn as such.
    assert (
        '<summary>Sample answer</summary><div class="review correct-answer"><p>The network' in html
    )
    prefix = f"a{attempt.id}"
    url = f"/staff/marking/quiz/{quiz_id}/slot/{slot}/attempt/{attempt.id}"
    based_on = re.search(rf'name="{prefix}-based_on" type="hidden" value="(\d+)"', html).group(1)

    marks = _count(session, Mark)
    refused = client.post(
        url,
        data={
            "csrf_token": csrf_of(html),
            f"{prefix}-mark": "6",
            f"{prefix}-comment": "Too generous",
            f"{prefix}-based_on": based_on,
        },
    )
    assert refused.status_code == 400
    assert "The mark must be between 0 and 5." in refused.get_data(as_text=True)
    assert "Too generous" in refused.get_data(as_text=True)  # what was typed is kept
    assert _count(session, Mark) == marks

    saved = client.post(
        url,
        data={
            "csrf_token": csrf_of(html),
            f"{prefix}-mark": "2.5",
            f"{prefix}-comment": "Clear, but only one remedy.",
            f"{prefix}-based_on": based_on,
        },
    )
    assert saved.status_code == 302
    followed = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Saved alice&#39;s mark for question" in followed and ": 2.5;" in followed
    assert "Nothing is left to mark" in followed
    session.rollback()
    mark = current_marks_of(session, [attempt.id])[(attempt.id, slot)]
    assert (mark.source, str(mark.marks), mark.feedback, mark.created_by) == (
        "manual",
        "5/2",
        "Clear, but only one remedy.",
        users["staff"],
    )
    assert session.get(Attempt, attempt.id).score == sum(
        m.marks for m in current_marks_of(session, [attempt.id]).values()
    )

    history = client.get(f"/staff/marking/attempt/{attempt.id}/history").get_data(as_text=True)
    assert (
        "needs marking" in history
        and "manual" in history
        and "Clear, but only one remedy." in history
    )
    assert history.index("needs marking") < history.index(
        "Clear, but only one remedy."
    )  # oldest first


def test_marking_pages_need_staff_and_a_csrf_token(client, auth, session, users, essay):
    attempt, slot = essay
    url = f"/staff/marking/quiz/{attempt.quiz_id}/slot/{slot}/attempt/{attempt.id}"
    auth.login("alice")
    for path in (
        f"/staff/marking/quiz/{attempt.quiz_id}",
        f"/staff/marking/quiz/{attempt.quiz_id}/slot/{slot}",
        f"/staff/marking/attempt/{attempt.id}/history",
        f"/staff/marking/quiz/{attempt.quiz_id}/regrade",
    ):
        assert client.get(path).status_code == 403, path
    token = csrf_of(client.get("/").get_data(as_text=True))
    assert (
        client.post(url, data={"csrf_token": token, f"a{attempt.id}-mark": "5"}).status_code == 403
    )
    client.post("/logout", data={"csrf_token": token})

    auth.login("staff")
    marks = _count(session, Mark)
    missing = client.post(url, data={f"a{attempt.id}-mark": "5"})
    assert missing.status_code == 400 and "This form has expired" in missing.get_data(as_text=True)
    commit = client.post(
        f"/staff/marking/quiz/{attempt.quiz_id}/regrade/commit",
        data={"question": ESSAY, "mode": "full_marks", "fingerprint": "x"},
    )
    assert commit.status_code == 400
    assert _count(session, Mark) == marks
    assert client.get(f"/staff/marking/quiz/{attempt.quiz_id}/slot/99").status_code == 404
    assert client.get("/staff/marking/quiz/999").status_code == 404


@pytest.fixture
def quiz1_attempts(session, users, sample_bank):
    start = QUIZ1_OPENS + timedelta(minutes=30)
    return {
        name: _take(session, "quiz1-foundations", users[name], start, {"cnn-output-width": [value]})
        for name, value in (("alice", "16"), ("bob", "15"))
    }


def test_regrade_dry_run_then_confirm(client, auth, session, users, quiz1_attempts):
    quiz_id = quiz1_attempts["alice"].quiz_id
    auth.login("staff")
    form = client.get(f"/staff/marking/quiz/{quiz_id}/regrade").get_data(as_text=True)
    assert 'value="cnn-output-width"' in form and "Dry run" in form
    marks, events = _count(session, Mark), _count(session, AuditEvent)

    dry = client.post(
        f"/staff/marking/quiz/{quiz_id}/regrade",
        data={
            "csrf_token": csrf_of(form),
            "question": "cnn-output-width",
            "mode": "accept",
            "accept": "15\n",
        },
    )
    assert dry.status_code == 200
    html = dry.get_data(as_text=True)
    assert "Nothing has been written yet" in html
    assert "2 finished attempt(s): 1 up, 0 down, 1 unchanged" in html
    assert "Bob Björk" in html and "+2" in html
    assert _count(session, Mark) == marks and _count(session, AuditEvent) == events

    fields = dict(re.findall(r'<input id="(\w+)" name="\w+" type="hidden" value="([^"]*)"', html))
    confirm = {
        "csrf_token": csrf_of(html),
        "question": fields["question"],
        "mode": fields["mode"],
        "accept": "15",
        "never_lower": "",
        "fingerprint": fields["fingerprint"],
    }
    done = client.post(f"/staff/marking/quiz/{quiz_id}/regrade/commit", data=confirm)
    assert done.status_code == 302
    assert "Regraded cnn-output-width" in client.get(done.headers["Location"]).get_data(
        as_text=True
    )
    session.rollback()
    bob = quiz1_attempts["bob"]
    slot = _slot(session, bob, "cnn-output-width")
    current = current_marks_of(session, [bob.id])[(bob.id, slot)]
    assert (current.source, current.marks, current.created_by) == ("regrade", 2, users["staff"])
    assert _count(session, AuditEvent) == events + 1

    # The same confirmation again no longer matches: a fresh dry run is shown instead.
    again = client.post(f"/staff/marking/quiz/{quiz_id}/regrade/commit", data=confirm)
    assert again.status_code == 409 and "changed since the dry run" in again.get_data(as_text=True)


def test_regrade_of_a_question_nobody_answered_says_so(client, auth, session, users, sample_bank):
    quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == "quiz1-foundations")).one()
    auth.login("staff")
    form = client.get(f"/staff/marking/quiz/{quiz_id}/regrade").get_data(as_text=True)
    page = client.post(
        f"/staff/marking/quiz/{quiz_id}/regrade",
        data={"csrf_token": csrf_of(form), "question": "cnn-output-width", "mode": "regrade"},
    ).get_data(as_text=True)
    assert "has question cnn-output-width: there is nothing to regrade" in page
    assert "Apply this regrade" not in page
    refused = client.post(
        f"/staff/marking/quiz/{quiz_id}/regrade",
        data={
            "csrf_token": csrf_of(form),
            "question": "autodiff-reverse-mode-cost",
            "mode": "accept",
            "accept": "9",
        },
    )
    assert refused.status_code == 400 and "No option 9" in refused.get_data(as_text=True)


def test_marking_and_regrade_pages_draw_the_maths_of_options(
    client, auth, session, users, sample_bank, clock
):
    start = QUIZ2_OPENS + timedelta(hours=1)
    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz2-gradients-and-shapes")).one()
    attempt = svc.start_attempt(session, quiz.id, session.get(User, users["alice"]), start, GRACE)
    entry, question = next(
        (e, q) for e, q in attempt_questions(session, attempt) if q.key == "init-he-relu"
    )
    lecun = question.body.form_values(entry.variant, "1")  # $W_{ij} \sim \mathcal{N}(0,\, 1/n)$
    svc.save_answers(session, attempt.id, {entry.slot: lecun}, 1, start, GRACE)
    assert svc.submit_attempt(session, attempt, start + timedelta(minutes=5), GRACE)
    clock.set(start + timedelta(hours=2))
    auth.login("staff")

    page = client.get(f"/staff/marking/quiz/{quiz.id}/slot/{entry.slot}?all=1")
    cell = re.search(r'<dd class="response">(.*?)</dd>', page.get_data(as_text=True), re.DOTALL)
    assert cell and cell[1].startswith(f"{lecun[0]}. ")
    assert "<math" in cell[1] and "$" not in cell[1] and "N(0, 1/n)" in cell[1]

    form = client.get(f"/staff/marking/quiz/{quiz.id}/regrade").get_data(as_text=True)
    dry = client.post(
        f"/staff/marking/quiz/{quiz.id}/regrade",
        data={"csrf_token": csrf_of(form), "question": "init-he-relu", "mode": "regrade"},
    ).get_data(as_text=True)
    cell = re.search(r'<span class="response">(.*?)</span></td>', dry, re.DOTALL)
    assert cell and "<math" in cell[1] and "$" not in cell[1] and "N(0, 1/n)" in cell[1]
