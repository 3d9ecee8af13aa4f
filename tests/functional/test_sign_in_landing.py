"""Where a sign-in lands (issue 17, "a cheaper start"): a student with exactly one quiz
open for them goes straight to it; with none or several, the dashboard; a safe `next`
wins. And a student who signs in before the window opens is told that this sign-in will
do, and can start without signing in again."""

from __future__ import annotations

from datetime import timedelta

from quizapp.services.overrides import OverrideChange, set_override
from tests.conftest import QUIZ1_OPENS
from tests.functional.helpers import csrf_of, first_quiz_id


def _quiz_ids(client) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from quizapp.models import Quiz

    with client.application.extensions["quizapp_db"].new_session() as session:
        return {key: quiz_id for key, quiz_id in session.execute(select(Quiz.key, Quiz.id))}


def test_one_open_quiz_the_sign_in_goes_to_its_start_page(client, auth, users, sample_bank):  # type: ignore[no-untyped-def]
    response = auth.login("alice")
    quiz = _quiz_ids(client)["quiz1-foundations"]
    assert response.status_code == 302
    assert response.headers["Location"] == f"/quiz/{quiz}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Start the quiz now" in page


def test_an_attempt_in_progress_the_sign_in_goes_back_to_it(app, client, auth, users, sample_bank):  # type: ignore[no-untyped-def]
    auth.login("alice")
    quiz_path = f"/quiz/{first_quiz_id(client)}"
    token = csrf_of(client.get(quiz_path).get_data(as_text=True))
    attempt_path = client.post(f"{quiz_path}/start", data={"csrf_token": token}).headers["Location"]

    laptop = app.test_client()  # another browser, signing in afresh
    token = csrf_of(laptop.get("/login").get_data(as_text=True))
    response = laptop.post(
        "/login",
        data={"username": "alice", "password": "correct horse battery staple", "csrf_token": token},
    )
    assert response.headers["Location"] == attempt_path


def test_a_safe_next_wins_over_the_open_quiz(client, auth, users, sample_bank):  # type: ignore[no-untyped-def]
    token = auth.csrf("/login")
    response = client.post(
        "/login?next=/",
        data={"username": "alice", "password": "correct horse battery staple", "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_no_attempts_left_or_several_quizzes_open_the_dashboard(  # type: ignore[no-untyped-def]
    app, client, auth, users, sample_bank, session, clock
):
    ids = _quiz_ids(client)
    # Quiz 2 opened early for alice: two quizzes open for her, so she chooses.
    set_override(
        session,
        ids["quiz2-gradients-and-shapes"],
        OverrideChange(opens_at=clock() - timedelta(minutes=5), reason="sits both today"),
        clock(),
        user_id=users["alice"],
    )
    assert auth.login("alice").headers["Location"] == "/"
    # Bob has used his one attempt of quiz 1: nothing to start or resume.
    bob = app.test_client()
    token = csrf_of(bob.get("/login").get_data(as_text=True))
    data = {"username": "bob", "password": "correct horse battery staple", "csrf_token": token}
    quiz_path = bob.post("/login", data=data).headers["Location"]
    token = csrf_of(bob.get(quiz_path).get_data(as_text=True))
    attempt = bob.post(f"{quiz_path}/start", data={"csrf_token": token}).headers["Location"]
    token = csrf_of(bob.get(f"{attempt}/submit").get_data(as_text=True))
    bob.post(f"{attempt}/submit", data={"csrf_token": token})
    bob.post("/logout", data={"csrf_token": csrf_of(bob.get("/").get_data(as_text=True))})
    token = csrf_of(bob.get("/login").get_data(as_text=True))
    data["csrf_token"] = token
    assert bob.post("/login", data=data).headers["Location"] == "/"


def test_staff_land_on_the_staff_pages(client, auth, users, sample_bank):  # type: ignore[no-untyped-def]
    assert auth.login("staff").headers["Location"] == "/staff/"


def test_signed_in_before_the_window_the_dashboard_says_so_and_start_needs_no_new_sign_in(  # type: ignore[no-untyped-def]
    client, auth, users, sample_bank, clock
):
    clock.set(QUIZ1_OPENS - timedelta(hours=2, minutes=30))  # 07:30 in London (GMT)
    response = auth.login("alice")
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "You are signed in; <strong>Quiz 1: Foundations</strong> opens at\n  10:00." in page
    assert "Quiz 2" not in page.split("Open now")[0]  # a week away: no such line

    clock.set(QUIZ1_OPENS + timedelta(seconds=1))  # the same browser, no new sign-in
    page = client.get("/").get_data(as_text=True)
    assert "You are signed in;" not in page
    quiz_path = f"/quiz/{first_quiz_id(client)}"
    assert f'href="{quiz_path}"' in page
    token = csrf_of(client.get(quiz_path).get_data(as_text=True))
    response = client.post(f"{quiz_path}/start", data={"csrf_token": token})
    assert response.status_code == 302 and "/attempt/" in response.headers["Location"]


def test_a_quiz_opening_after_the_session_would_lapse_gets_no_such_line(  # type: ignore[no-untyped-def]
    app, client, auth, users, sample_bank, clock
):
    lifetime = app.permanent_session_lifetime
    clock.set(QUIZ1_OPENS - lifetime - timedelta(minutes=1))
    auth.login("alice")
    assert "You are signed in;" not in client.get("/").get_data(as_text=True)
    clock.set(QUIZ1_OPENS - lifetime + timedelta(minutes=1))
    page = client.get("/").get_data(as_text=True)
    # The day before (22:01 for a 10:00 opening): the day is named.
    assert "opens at\n  10:00 on Mon 18 Jan." in page
