"""Staff pages for running a quiz: overview, live JSON, preflight, one student, and the
intervention forms (CSRF, clear messages, staff only)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, AuditEvent, FinishReason, Quiz, QuizOverride, User
from quizapp.services import attempts as svc
from tests.conftest import QUIZ1_OPENS, Auth
from tests.functional.helpers import csrf_of

GRACE = timedelta(seconds=10)
NOW = QUIZ1_OPENS + timedelta(hours=1)


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


@pytest.fixture
def running(session, quiz, users) -> Attempt:
    alice = session.get(User, users["alice"])
    attempt = svc.start_attempt(session, quiz.id, alice, NOW, GRACE)
    slot = next(
        e.slot for e, q in svc.attempt_questions(session, attempt) if q.key == "cnn-output-width"
    )
    svc.save_answers(session, attempt.id, {slot: ["15"]}, 1, NOW, GRACE, "10.0.0.1")
    svc.save_answers(session, attempt.id, {slot: ["16"]}, 2, NOW, GRACE, "10.0.0.2")
    return attempt


@pytest.fixture
def staff_client(client, users):
    Auth(client).login("staff")
    return client


def _pages(quiz_id: int, attempt_id: int, user_id: int) -> list[str]:
    return [
        f"/staff/quiz/{quiz_id}",
        f"/staff/quiz/{quiz_id}/live.json",
        f"/staff/quiz/{quiz_id}/preflight",
        f"/staff/quiz/{quiz_id}/intervene",
        f"/staff/quiz/student/{user_id}",
        f"/staff/quiz/attempt/{attempt_id}/reopen",
        f"/staff/quiz/attempt/{attempt_id}/finalise",
    ]


def test_students_get_403_and_strangers_the_login_page(app, quiz, running, users):
    student = app.test_client()
    Auth(student).login("bob")
    stranger = app.test_client()
    for path in _pages(quiz.id, running.id, users["alice"]):
        assert student.get(path).status_code == 403, path
        assert stranger.get(path).status_code == 302, path
    assert student.post(f"/staff/quiz/{quiz.id}/intervene", data={}).status_code in (400, 403)


def test_every_page_renders_for_staff(staff_client, quiz, running, users):
    for path in _pages(quiz.id, running.id, users["alice"]):
        assert staff_client.get(path).status_code == 200, path


def test_the_quiz_list_links_each_title_to_its_overview(staff_client, quiz):
    page = staff_client.get("/staff/").get_data(as_text=True)
    assert f'href="/staff/quiz/{quiz.id}"' in page


def test_overview_shows_counts_and_the_live_table(staff_client, quiz, running, users):
    page = staff_client.get(f"/staff/quiz/{quiz.id}").get_data(as_text=True)
    assert re.search(r'data-count="roster">3<', page)
    assert re.search(r'data-count="in_progress">1<', page)
    assert re.search(r'data-count="not_started">2<', page)
    assert f'href="/staff/quiz/student/{users["alice"]}"' in page
    assert "<strong>changed</strong>" in page
    assert "GMT" in page  # course time zone
    # The refresh is a script file from our origin; no inline script (CSP script-src 'self').
    assert re.search(r'<script src="/static/monitor\.js(\?v=[0-9a-f]+)?"></script>', page)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)


def test_live_json_shape(staff_client, quiz, running, users, clock):
    clock.set(NOW + timedelta(minutes=15))
    response = staff_client.get(f"/staff/quiz/{quiz.id}/live.json")
    assert response.status_code == 200 and response.is_json
    data = response.get_json()
    assert set(data) == {"quiz_id", "server_now", "updated_local", "counts", "attempts"}
    assert data["counts"] == {
        "roster": 3, "not_started": 2, "in_progress": 1, "submitted": 0, "timed_out": 0,
    }  # fmt: skip
    (row,) = data["attempts"]
    assert row["attempt_id"] == running.id
    assert row["student"] == {
        "id": users["alice"],
        "username": "alice",
        "name": "Alice Adeyemi",
        "url": f"/staff/quiz/student/{users['alice']}",
    }
    assert row["seconds_left"] == 45 * 60 and row["time_left"] == "45:00"
    assert row["deadline"] == (NOW + timedelta(hours=1)).isoformat()
    assert row["last_save"] == NOW.isoformat()
    assert row["answered"] == 1 and row["slots"] == len(running.layout)
    assert row["addresses"] == 2 and row["device_changed"] is True
    assert response.headers["Cache-Control"] == "no-store"


def test_live_json_for_an_unknown_quiz_is_404(staff_client, sample_bank):
    assert staff_client.get("/staff/quiz/99999/live.json").status_code == 404


def test_preflight_page_lists_flags(staff_client, session, quiz, users):
    from quizapp.services.users import create_user

    create_user(session, "dana", None)
    page = staff_client.get(f"/staff/quiz/{quiz.id}/preflight").get_data(as_text=True)
    assert "dana" in page and "Cannot log in yet</strong> (no password set yet)" in page
    assert "Latest start for full time" in page


def test_student_page_explains_deadline_and_links_to_audit(staff_client, running, users):
    page = staff_client.get(f"/staff/quiz/student/{users['alice']}").get_data(as_text=True)
    assert "Time limit: start + 60 min." in page
    assert "/staff/audit?student=alice" in page
    assert "10.0.0.1" in page and "10.0.0.2" in page
    assert f"/staff/quiz/attempt/{running.id}/finalise" in page
    assert "How a deadline is worked out" in page and "87 min 30 s" in page


def test_forms_without_csrf_are_refused(staff_client, quiz, running):
    for path, data in [
        (
            f"/staff/quiz/{quiz.id}/intervene",
            {"student": "alice", "extra_minutes": "5", "reason": "r"},
        ),
        (f"/staff/quiz/attempt/{running.id}/finalise", {"reason": "r"}),
        (
            f"/staff/quiz/attempt/{running.id}/reopen",
            {"deadline": "2027-01-18T15:00", "reason": "r"},
        ),
    ]:
        response = staff_client.post(path, data=data)
        assert response.status_code == 400, path
        assert "expired or was not sent by this site" in response.get_data(as_text=True)


def _token(client, path: str) -> str:
    return csrf_of(client.get(path).get_data(as_text=True))


def test_extra_time_from_the_browser(staff_client, session, quiz, running, users):
    path = f"/staff/quiz/{quiz.id}/intervene"
    form = {
        "csrf_token": _token(staff_client, path + "?student=alice"),
        "student": "alice",
        "extra_minutes": "15",
        "reason": "fire alarm",
    }
    response = staff_client.post(path, data=form)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/quiz/student/{users['alice']}"
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Override for alice: time limit 75 min" in page and "1 running attempt(s) moved" in page
    session.rollback()  # a fresh snapshot, and fresh objects
    session.expire_all()
    assert session.get(Attempt, running.id).deadline_at == NOW + timedelta(minutes=75)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "override")).one()
    assert event.actor_id == users["staff"] and event.details["reason"] == "fire alarm"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"student": "alice", "extra_minutes": "15", "reason": ""}, "Give a reason"),
        ({"student": "alice", "extra_minutes": "-5", "reason": "r"}, "Number must be between"),
        (
            {"student": "alice", "reason": "r"},
            "Choose extra time, a later close, an extra attempt, or unlimited",
        ),
        (
            {"student": "alice", "closes_at": "2027-01-18T09:00", "reason": "r"},
            "The new close is in the past",
        ),
        (
            {"student": "alice", "closes_at": "not a date", "reason": "r"},
            "Not a valid datetime value",
        ),
        ({"student": "nobody", "extra_attempt": "y", "reason": "r"}, "No student with username"),
    ],
)
def test_bad_interventions_get_a_clear_message(staff_client, session, quiz, users, fields, message):
    path = f"/staff/quiz/{quiz.id}/intervene"
    response = staff_client.post(path, data={"csrf_token": _token(staff_client, path), **fields})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert session.scalars(select(QuizOverride)).first() is None


def test_finalise_and_reopen_from_the_browser(staff_client, session, running, clock, users):
    clock.set(NOW + timedelta(minutes=10))
    path = f"/staff/quiz/attempt/{running.id}/finalise"
    response = staff_client.post(
        path, data={"csrf_token": _token(staff_client, path), "reason": "left early"}
    )
    assert response.status_code == 302
    session.rollback()  # a fresh snapshot, and fresh objects
    session.expire_all()
    attempt = session.get(Attempt, running.id)
    assert attempt.finish_reason is FinishReason.STAFF

    path = f"/staff/quiz/attempt/{running.id}/reopen"
    page = staff_client.get(path).get_data(as_text=True)
    assert 'value="2027-01-18T11:40"' in page  # a suggestion: now + 30 min, course time
    past = {"csrf_token": csrf_of(page), "deadline": "2027-01-18T10:00", "reason": "r"}
    refused = staff_client.post(path, data=past)
    assert refused.status_code == 400 and "The new deadline is in the past." in refused.get_data(
        as_text=True
    )
    ok = {"csrf_token": csrf_of(page), "deadline": "2027-01-18T12:30", "reason": "came back"}
    response = staff_client.post(path, data=ok)
    assert response.status_code == 302
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "reopened until Mon 18 Jan 12:30 GMT" in page
    assert "Reopened by staff until 18 Jan 12:30 GMT (came back)." in page
    session.rollback()  # a fresh snapshot, and fresh objects
    session.expire_all()
    attempt = session.get(Attempt, running.id)
    assert attempt.state is AttemptState.IN_PROGRESS
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-3:] == ["finalise", "staff_finalise", "reopen"]


def test_reopen_of_a_running_attempt_is_a_409_with_the_form_again(staff_client, running):
    path = f"/staff/quiz/attempt/{running.id}/reopen"
    data = {"csrf_token": _token(staff_client, path), "deadline": "2027-01-18T15:00", "reason": "r"}
    response = staff_client.post(path, data=data)
    assert response.status_code == 409
    assert "still in progress" in response.get_data(as_text=True)
