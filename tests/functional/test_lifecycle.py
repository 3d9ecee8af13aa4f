"""Walkthroughs of the timed attempt that a student would recognise."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from quizapp import create_app
from quizapp.models import Attempt
from tests.conftest import Auth
from tests.functional.helpers import csrf_of, first_quiz_id, model_form, seq_base, start_attempt


def test_the_start_page_says_how_long_you_will_really_have(
    client, auth, users, sample_bank, clock, session
):
    auth.login("alice")
    quiz_id = first_quiz_id(client)
    clock.set(datetime(2027, 1, 19, 9, 23, tzinfo=UTC))  # the window closes at 10:00 GMT
    page = client.get(f"/quiz/{quiz_id}").get_data(as_text=True)
    assert "you will have <strong>37 minutes</strong>" in page
    assert "The window closes at 10:00 GMT, so you will have" in page and "not 1 hour" in page


def test_two_tabs_pressing_start_get_one_attempt(client, auth, users, sample_bank, session):
    auth.login("alice")
    quiz_id = first_quiz_id(client)
    page = client.get(f"/quiz/{quiz_id}").get_data(as_text=True)
    token = csrf_of(page)
    first = client.post(f"/quiz/{quiz_id}/start", data={"csrf_token": token})
    second = client.post(f"/quiz/{quiz_id}/start", data={"csrf_token": token})
    assert first.headers["Location"] == second.headers["Location"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Attempt)) == 1


def test_a_closed_window_refuses_a_forged_start(client, auth, users, sample_bank, clock):
    auth.login("alice")
    quiz_id = first_quiz_id(client)
    token = csrf_of(client.get(f"/quiz/{quiz_id}").get_data(as_text=True))
    clock.set(datetime(2027, 1, 19, 10, 0, tzinfo=UTC))
    response = client.post(f"/quiz/{quiz_id}/start", data={"csrf_token": token})
    assert response.status_code == 409 and "This quiz has closed." in response.get_data(
        as_text=True
    )


def test_no_attempts_left_refuses_a_second_start(client, auth, users, sample_bank, session):
    auth.login("alice")
    quiz_id = first_quiz_id(client)
    attempt_id, page = start_attempt(client, quiz_id)
    client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": csrf_of(page)})
    response = client.post(f"/quiz/{quiz_id}/start", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 409 and "no attempts left" in response.get_data(as_text=True)


def test_a_student_who_never_returns_is_finalised_by_the_sweeper_and_scored(
    app, client, auth, users, sample_bank, session, clock
):
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    form = model_form(session, attempt_id)
    form.update(csrf_token=[csrf_of(page)], seq=[str(seq_base(page))])
    client.post(f"/attempt/{attempt_id}", data=form)
    # The laptop closes. Nobody touches the attempt again; cron runs the sweeper.
    clock.advance(hours=2)
    result = app.test_cli_runner().invoke(args=["attempts", "finalise-expired"])
    assert result.exit_code == 0 and "Finalised 1 expired attempt(s)." in result.output
    again = app.test_cli_runner().invoke(args=["attempts", "finalise-expired"])
    assert "Finalised 0 expired attempt(s)." in again.output

    session.rollback()
    attempt = session.get(Attempt, attempt_id)
    assert attempt.state.value == "timed_out" and attempt.score == 21 and attempt.receipt
    quiz_key = "quiz1-foundations"
    exported = app.test_cli_runner().invoke(args=["export", "scores", quiz_key])
    rows = {r[0]: r for r in csv.reader(io.StringIO(exported.output.lstrip("\ufeff")))}
    assert rows["alice"][2] == "timed_out" and rows["alice"][5] == "21"


def test_resume_after_a_server_restart_same_variant_same_answers_clock_running(
    app, client, auth, users, sample_bank, session, clock, database_url
):
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    form = model_form(session, attempt_id)
    form.update(csrf_token=[csrf_of(page)], seq=[str(seq_base(page))])
    client.post(f"/attempt/{attempt_id}", data=form)
    before = client.get(f"/attempt/{attempt_id}").get_data(as_text=True)

    # A new process: a new app object on the same database and secret key.
    restarted = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "QUIZAPP_DATABASE_URL": database_url,
            "QUIZAPP_CLOCK": clock,
        }
    )
    other_device = restarted.test_client()
    Auth(other_device).login("alice")
    clock.advance(minutes=10)
    dashboard = other_device.get("/").get_data(as_text=True)
    assert "Continue your attempt" in dashboard
    after = other_device.get(f"/attempt/{attempt_id}").get_data(as_text=True)

    def questions(html: str) -> str:
        """The questions part of the page, without the per-page token and sequence."""
        part = html[
            html.index('<form method="post" id="attempt-form"') : html.index('class="actions"')
        ]
        return "\n".join(
            line for line in part.splitlines() if "csrf" not in line and "seq" not in line
        )

    assert questions(before) == questions(after)  # same questions, same option order, same answers
    assert 'data-deadline="2027-01-18T12:00:00+00:00"' in after  # the clock kept running
    assert 'data-server-now="2027-01-18T11:10:00+00:00"' in after
    restarted.extensions["quizapp_db"].engine.dispose()
    restarted.extensions["quizapp_login_throttle"].close()


def test_time_up_form_post_saves_the_last_answers_then_finishes(
    client, auth, users, sample_bank, session, clock
):
    """Without the API (the page's fallback), the countdown's final post still counts."""
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    form = model_form(session, attempt_id)
    form.update(csrf_token=[csrf_of(page)], seq=[str(seq_base(page))], action=["time-up"])
    clock.set(datetime(2027, 1, 18, 12, 0, 3, tzinfo=UTC))  # 3 s after the deadline
    response = client.post(f"/attempt/{attempt_id}", data=form)
    assert response.headers["Location"].endswith("/result")
    session.rollback()
    attempt = session.get(Attempt, attempt_id)
    assert attempt.state.value == "timed_out" and attempt.score == 21
    assert attempt.finished_at == datetime(2027, 1, 18, 12, 0, tzinfo=UTC)
    assert timedelta(0) == attempt.finished_at - attempt.deadline_at


def test_staff_grant_extra_time_from_the_command_line(
    app, client, auth, users, sample_bank, session, clock
):
    auth.login("alice")
    attempt_id, _ = start_attempt(client)
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "overrides",
            "set",
            "quiz1-foundations",
            "--student",
            "alice",
            "--time-limit",
            "80",
            "--reason",
            "power cut at 11:40",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "1 running attempt(s) got a new deadline" in result.output
    status = client.get(f"/api/attempts/{attempt_id}").get_json()
    assert status["deadline"] == "2027-01-18T12:20:00+00:00"
    bad = runner.invoke(
        args=[
            "overrides",
            "set",
            "quiz1-foundations",
            "--student",
            "alice",
            "--closes",
            "2027-01-18 09:00",
            "--reason",
            "typo",
        ]
    )
    assert bad.exit_code != 0 and "closes before it opens" in bad.output
    nobody = runner.invoke(
        args=[
            "overrides",
            "set",
            "quiz1-foundations",
            "--student",
            "zed",
            "--reason",
            "x",
            "--attempts",
            "2",
        ]
    )
    assert nobody.exit_code != 0 and "No user 'zed'" in nobody.output


def test_staff_verify_a_receipt_against_the_stored_answers(
    app, client, auth, users, sample_bank, session
):
    from quizapp.models import Answer

    auth.login("alice")
    attempt_id, page = start_attempt(client)
    session.rollback()
    form = model_form(session, attempt_id)
    form.update(csrf_token=[csrf_of(page)], seq=[str(seq_base(page))])
    client.post(f"/attempt/{attempt_id}", data=form)
    client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": csrf_of(page)})
    session.rollback()
    code = session.get(Attempt, attempt_id).receipt
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["attempts", "verify-receipt", str(attempt_id), code.lower()])
    assert ok.exit_code == 0 and "OK" in ok.output
    assert (
        runner.invoke(
            args=["attempts", "verify-receipt", str(attempt_id), "AAAA-BBBB-CCCC"]
        ).exit_code
        == 1
    )
    # Someone alters a stored answer afterwards: the recomputed code no longer matches.
    answer = session.scalars(select(Answer).where(Answer.attempt_id == attempt_id)).first()
    answer.value = "tampered"
    session.commit()
    tampered = runner.invoke(args=["attempts", "verify-receipt", str(attempt_id), code])
    assert tampered.exit_code == 1 and "MISMATCH" in tampered.output
