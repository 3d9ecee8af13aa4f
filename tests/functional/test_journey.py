"""The walking skeleton, end to end through the Flask test client."""

from __future__ import annotations

import csv
import io
import re

from tests.conftest import PASSWORD
from tests.functional.helpers import csrf_of as _csrf
from tests.functional.helpers import first_quiz_id as _quiz_id
from tests.functional.helpers import model_form as _model_answers
from tests.functional.helpers import start_attempt as _start


def test_student_takes_the_quiz_and_staff_downloads_the_score(
    client, auth, sample_bank, users, session, clock
):
    assert auth.login("alice").status_code == 302
    dashboard = client.get("/").get_data(as_text=True)
    assert "Quiz 1: Foundations" in dashboard and "Open now" in dashboard

    quiz_id = _quiz_id(client)
    start_page = client.get(f"/quiz/{quiz_id}").get_data(as_text=True)
    assert "1 hour" in start_page and "Start the quiz now" in start_page

    attempt_id, page = _start(client, quiz_id)
    assert page.count('class="card question"') == 15
    assert 'data-deadline="2027-01-18T12:00:00+00:00"' in page  # started 11:00, one hour

    # Answer everything perfectly except one 2-mark numeric question, left wrong.
    form = _model_answers(session, attempt_id)
    wrong_slot = next(k for k, v in form.items() if k.startswith("slot-") and v == ["-0.25"])
    form[wrong_slot] = ["0.25"]
    form["csrf_token"] = [_csrf(page)]
    form["seq"] = [re.search(r'id="seq" name="seq" type="hidden" value="(\d+)"', page).group(1)]
    clock.advance(minutes=20)
    saved = client.post(f"/attempt/{attempt_id}", data={**form, "action": ["submit"]})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/submit")

    confirm = client.get(f"/attempt/{attempt_id}/submit").get_data(as_text=True)
    assert "You have answered all 15 questions" in confirm
    done = client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": _csrf(confirm)})
    assert done.status_code == 302
    result = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Score: <strong>19</strong> out of 21" in result
    assert re.search(r"[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}", result)

    # Submitting again is a clear no-op.
    again = client.post(
        f"/attempt/{attempt_id}/submit", data={"csrf_token": _csrf(confirm)}, follow_redirects=True
    )
    assert "already finished; nothing was changed" in again.get_data(as_text=True)

    client.post("/logout", data={"csrf_token": _csrf(result)})
    auth.login("staff")
    staff_page = client.get("/staff/").get_data(as_text=True)
    assert "scores<span" in staff_page
    response = client.get(f"/staff/quiz/{quiz_id}/scores.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == [
        "username", "name", "state", "started", "finished", "score", "maximum", "pending_marks",
        "needs_staff",
    ]  # fmt: skip
    by_user = {r[0]: r for r in rows[1:]}
    assert by_user["alice"][2:] == [
        "submitted",
        "2027-01-18T11:00:00+00:00",
        "2027-01-18T11:20:00+00:00",
        "19",
        "21",
        "0",
        "",
    ]
    assert by_user["bob"][2] == "not_started" and by_user["bob"][5] == ""
    assert by_user["carol"][1].startswith("'=")  # spreadsheet formula neutralised
    assert "staff" not in by_user


def test_wrong_password_gets_a_generic_message(client, auth, users):
    for username, password in [("alice", "nope"), ("nobody", PASSWORD)]:
        page = auth.login(username, password).get_data(as_text=True)
        assert "The username or password is incorrect." in page
    assert client.get("/").status_code == 302  # still logged out


def test_a_student_cannot_open_staff_pages(client, auth, users, sample_bank):
    auth.login("alice")
    assert client.get("/staff/").status_code == 403
    assert client.get("/staff/quiz/1/scores.csv").status_code == 403


def test_another_students_attempt_is_not_found(client, auth, users, sample_bank):
    auth.login("alice")
    attempt_id, _ = _start(client, _quiz_id(client))
    client.get("/")  # keep the session warm
    other = client.application.test_client()
    from tests.conftest import Auth

    Auth(other).login("bob")
    for path in (
        f"/attempt/{attempt_id}",
        f"/attempt/{attempt_id}/result",
        f"/attempt/{attempt_id}/submit",
    ):
        assert other.get(path).status_code == 404


def test_forged_form_post_without_csrf_is_refused(client, auth, users, sample_bank):
    auth.login("alice")
    response = client.post(f"/quiz/{_quiz_id(client)}/start", data={})
    assert response.status_code == 400
    assert "form has expired or was not sent by this site" in response.get_data(as_text=True)


def test_expired_attempt_is_finalised_on_the_next_request(
    client, auth, users, sample_bank, clock, session
):
    auth.login("alice")
    attempt_id, page = _start(client, _quiz_id(client))
    form = _model_answers(session, attempt_id)
    form["csrf_token"] = [_csrf(page)]
    form["seq"] = [re.search(r'name="seq" type="hidden" value="(\d+)"', page).group(1)]
    client.post(f"/attempt/{attempt_id}", data=form)
    clock.advance(hours=1, seconds=11)  # past the deadline and the 10 s grace
    response = client.get(f"/attempt/{attempt_id}")
    assert response.status_code == 302 and response.headers["Location"].endswith("/result")
    result = client.get(f"/attempt/{attempt_id}/result").get_data(as_text=True)
    assert "ended at its deadline" in result
    assert "Score: <strong>21</strong> out of 21" in result
