"""A late answer is kept and shown, never silently dropped: the walkthrough of a student
who typed an answer offline 15 s before the deadline and reconnected 20 s after it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from quizapp.models import AnswerLog, Attempt, AuditEvent, LogOutcome
from tests.functional.helpers import csrf_of, seq_base, slot_of, start_attempt

CNN = "cnn-output-width"  # numeric, 2 marks, answer 16


@pytest.fixture
def attempt(client, auth, users, sample_bank, session):
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    return {
        "id": attempt_id,
        "token": csrf_of(page),
        "base": seq_base(page),
        "slot": slot_of(session, attempt_id, CNN),
    }


def test_a_late_answer_is_recorded_shown_to_the_student_and_accepted_by_staff(
    client, auth, attempt, session, clock
):
    deadline = session.get(Attempt, attempt["id"]).deadline_at
    typed = deadline - timedelta(seconds=15)
    clock.set(deadline + timedelta(seconds=20))  # beyond the 10 s grace
    response = client.put(
        f"/api/attempts/{attempt['id']}/answers/{attempt['slot']}",
        json={"value": "16", "seq": attempt["base"] + 1, "typed_at": typed.isoformat()},
        headers={"X-CSRFToken": attempt["token"]},
    )
    assert response.status_code == 409
    body = response.get_json()
    assert body["recorded"] is True and "recorded for staff" in body["error"]

    result = client.get(f"/attempt/{attempt['id']}/result").get_data(as_text=True)
    number = _question_number(session, attempt)
    assert "Answers that arrived too late" in result
    # 11:59:45 typed by the browser's clock, 12:00:20 received (GMT in January)
    assert (
        f"Question {number}: sent 11:59:45 GMT (your browser's clock), arrived 12:00:20 GMT"
        in result
    )
    assert "not counted" in result

    client.post("/logout", data={"csrf_token": csrf_of(result)})
    auth.login("staff")
    user_id = session.get(Attempt, attempt["id"]).user_id
    overview = client.get(f"/staff/quiz/{_quiz_id(session, attempt)}").get_data(as_text=True)
    assert "Needs staff" in overview and "1 answer(s) arrived too late" in overview
    page = client.get(f"/staff/quiz/student/{user_id}").get_data(as_text=True)
    assert "Answers that arrived too late" in page
    log_id = int(re.search(r"/late-answer/(\d+)/accept", page).group(1))
    url = f"/staff/quiz/student/{user_id}/late-answer/{log_id}/accept"
    # No CSRF token: refused, nothing changes.
    assert client.post(url, data={"reason": "outage"}).status_code == 400
    # No reason: refused with a message, nothing changes.
    client.post(url, data={"csrf_token": csrf_of(page), "reason": ""})
    session.rollback()
    assert session.get(Attempt, attempt["id"]).score == 0
    done = client.post(url, data={"csrf_token": csrf_of(page), "reason": "campus network outage"})
    assert done.status_code == 302
    session.rollback()
    assert session.get(Attempt, attempt["id"]).score == 2
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "accept_late_answer")
    ).one()
    assert event.details["reason"] == "campus network outage"
    page = client.get(f"/staff/quiz/student/{user_id}").get_data(as_text=True)
    assert "accepted by staff" in page and "campus network outage" in page

    client.post("/logout", data={"csrf_token": csrf_of(page)})
    auth.login("alice")
    result = client.get(f"/attempt/{attempt['id']}/result").get_data(as_text=True)
    assert "accepted by staff" in result and "counted" in result


def test_a_late_answer_is_in_the_audit_trail_csv(client, auth, attempt, session, clock):
    deadline = session.get(Attempt, attempt["id"]).deadline_at
    clock.set(deadline + timedelta(minutes=1))
    client.put(
        f"/api/attempts/{attempt['id']}/answers/{attempt['slot']}",
        json={"value": "17", "seq": attempt["base"] + 1},
        headers={"X-CSRFToken": attempt["token"]},
    )
    page = client.get(f"/attempt/{attempt['id']}/result").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_of(page)})
    auth.login("staff")
    audit = client.get("/staff/audit.csv?student=alice").get_data(as_text=True)
    assert "save (late)" in audit and "refused_save" in audit


def _question_number(session, attempt) -> int:
    layout = session.get(Attempt, attempt["id"]).layout
    return next(n for n, raw in enumerate(layout, start=1) if raw["slot"] == attempt["slot"])


def _quiz_id(session, attempt) -> int:
    return session.get(Attempt, attempt["id"]).quiz_id


def test_a_late_form_post_keeps_what_changed_as_evidence(client, attempt, session, clock):
    """Without JavaScript the page posts every answer: after the deadline, the one the
    student changed is kept as evidence (the untouched ones are not logged again), and
    the page says it was recorded instead of silently dropping it."""
    deadline = session.get(Attempt, attempt["id"]).deadline_at
    slot = attempt["slot"]
    client.put(
        f"/api/attempts/{attempt['id']}/answers/{slot}",
        json={"value": "15", "seq": attempt["base"] + 1},
        headers={"X-CSRFToken": attempt["token"]},
    )
    clock.set(deadline + timedelta(minutes=2))
    form = {
        "csrf_token": attempt["token"],
        "seq": str(attempt["base"] + 2),
        f"present-{slot}": "1",
        f"slot-{slot}": "16",
    }
    other = next(
        int(raw["slot"])
        for raw in session.get(Attempt, attempt["id"]).layout
        if int(raw["slot"]) != slot
    )
    form[f"present-{other}"] = "1"  # shown, left blank: nothing to keep
    response = client.post(f"/attempt/{attempt['id']}", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith("/result")
    result = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "recorded for staff to see" in result
    assert "Answers that arrived too late" in result
    session.rollback()
    rows = session.scalars(
        select(AnswerLog).where(AnswerLog.attempt_id == attempt["id"]).order_by(AnswerLog.id)
    ).all()
    assert [(r.slot, r.value, r.outcome) for r in rows] == [
        (slot, "15", None),
        (slot, "16", LogOutcome.LATE),
    ]


@pytest.mark.parametrize(
    ("seq", "values"),
    [
        ("9999999999999999999999999", ["16"]),  # was an OverflowError: a 500
        (str(2**53), ["16"]),
        ("1", ["1"] * 201),
        ("1", ["x" * 100_001]),
    ],
)
def test_a_form_post_beyond_the_bounds_is_refused_with_400(client, attempt, session, seq, values):
    slot = attempt["slot"]
    response = client.post(
        f"/attempt/{attempt['id']}",
        data={
            "csrf_token": attempt["token"],
            "seq": seq,
            f"present-{slot}": "1",
            f"slot-{slot}": values,
        },
    )
    assert response.status_code == 400
    session.rollback()
    assert session.scalars(select(AnswerLog)).all() == []
