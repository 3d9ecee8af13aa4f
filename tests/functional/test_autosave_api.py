"""The autosave API: highest sequence wins, bad input writes nothing, the server's
clock decides, and a page loaded at minute 0 still saves at minute 89."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
import time_machine
from sqlalchemy import func, select

from quizapp.domain.timing import AttemptState
from quizapp.models import Answer, AnswerLog, Attempt, LogOutcome, User
from quizapp.services.overrides import OverrideChange, set_override
from tests.conftest import Auth
from tests.functional.helpers import csrf_of, seq_base, slot_of, start_attempt

CNN = "cnn-output-width"  # a numeric question worth 2 marks, answer 16


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


def put(client, attempt, body, *, slot=None, token=None, **kwargs):
    return client.put(
        f"/api/attempts/{attempt['id']}/answers/{slot if slot is not None else attempt['slot']}",
        json=body,
        headers={"X-CSRFToken": token if token is not None else attempt["token"]},
        **kwargs,
    )


def stored(session, attempt_id):
    session.rollback()  # end the test's read snapshot: see what the requests committed
    return session.scalars(select(Answer.value).where(Answer.attempt_id == attempt_id)).all()


def test_save_out_of_order_repeat_and_status(client, attempt, session, clock):
    base = attempt["base"]
    newer = put(client, attempt, {"value": "16", "seq": base + 2})
    assert newer.status_code == 200
    body = newer.get_json()
    assert body["status"] == "saved" and body["seq"] == base + 2
    assert body["server_now"] == clock().isoformat()
    assert body["deadline"] == "2027-01-18T12:00:00+00:00"
    assert body["saved_at_local"] == "11:00:00 GMT"

    older = put(client, attempt, {"value": "15", "seq": base + 1}).get_json()
    assert older["status"] == "stale" and older["seq"] == base + 2
    repeat = put(client, attempt, {"value": "16", "seq": base + 2}).get_json()
    assert repeat["status"] == "unchanged"
    assert stored(session, attempt["id"]) == ["16"]

    status = client.get(f"/api/attempts/{attempt['id']}").get_json()
    assert status["answers"][str(attempt["slot"])]["seq"] == base + 2
    assert status["state"] == "in_progress" and status["flags"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"value": "16"}, "Missing field(s): seq"),
        ({"value": "16", "seq": "7"}, "'seq' has the wrong type"),
        ({"value": "16", "seq": True}, "'seq' has the wrong type"),
        ({"value": "16", "seq": -1}, "'seq' must be a whole number"),
        ({"value": "16", "seq": 2**70}, "'seq' must be a whole number"),
        ({"value": {"a": 1}, "seq": 1}, "'value' has the wrong type"),
        ({"value": [1, 2], "seq": 1}, "'value' must be a string"),
        ({"value": "1\x006", "seq": 1}, "NUL"),
        ({"value": "16", "seq": 1, "extra": 1}, "Unknown field(s): extra"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_bodies_are_refused_with_a_clear_message_and_nothing_written(
    client, attempt, session, body, message
):
    response = put(client, attempt, body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert stored(session, attempt["id"]) == []


def test_other_refusals(client, attempt, session, app):
    assert put(client, attempt, {"value": "16", "seq": 1}, slot=999).status_code == 400
    no_csrf = put(client, attempt, {"value": "16", "seq": 1}, token="")
    assert no_csrf.status_code == 400 and "form has expired" in no_csrf.get_json()["error"]
    huge = put(client, attempt, {"value": "1" * (300 * 1024), "seq": 1})
    assert huge.status_code == 413 and huge.is_json
    malformed = client.put(
        f"/api/attempts/{attempt['id']}/answers/{attempt['slot']}",
        data="{not json",
        content_type="application/json",
        headers={"X-CSRFToken": attempt["token"]},
    )
    assert malformed.status_code == 400
    assert stored(session, attempt["id"]) == []


def test_another_students_attempt_is_404_and_logged_out_is_401(client, attempt, app, session):
    other = app.test_client()
    Auth(other).login("bob")
    token = csrf_of(
        other.get("/")
        .get_data(as_text=True)
        .replace('name="csrf_token" value', 'name="csrf_token" type="hidden" value')
    )
    response = other.put(
        f"/api/attempts/{attempt['id']}/answers/{attempt['slot']}",
        json={"value": "16", "seq": 1},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 404
    assert other.get(f"/api/attempts/{attempt['id']}").status_code == 404
    assert app.test_client().get(f"/api/attempts/{attempt['id']}").status_code == 401
    assert stored(session, attempt["id"]) == []


def test_saves_across_the_deadline_and_grace(client, attempt, session, clock):
    clock.set(datetime(2027, 1, 18, 12, 0, 10, tzinfo=UTC))  # deadline + exactly the grace
    assert put(client, attempt, {"value": "16", "seq": 5}).get_json()["status"] == "saved"
    clock.advance(seconds=1)
    late = put(client, attempt, {"value": "99", "seq": 6})
    assert late.status_code == 409 and "time for this attempt is over" in late.get_json()["error"]
    session.rollback()
    finished = session.get(Attempt, attempt["id"])
    assert finished.state is AttemptState.TIMED_OUT and finished.score == Fraction(2)
    assert stored(session, attempt["id"]) == ["16"]


def test_time_up_finishes_only_when_the_server_agrees(client, attempt, session, clock):
    put(client, attempt, {"value": "16", "seq": 5})
    url = f"/api/attempts/{attempt['id']}/time-up"
    early = client.post(url, headers={"X-CSRFToken": attempt["token"]}).get_json()
    assert early["state"] == "in_progress"  # the browser's clock does not decide
    clock.set(datetime(2027, 1, 18, 12, 0, 2, tzinfo=UTC))
    done = client.post(url, headers={"X-CSRFToken": attempt["token"]}).get_json()
    assert done["state"] == "timed_out" and done["result_url"].endswith("/result")
    session.rollback()
    assert session.get(Attempt, attempt["id"]).score == Fraction(2)


def test_flags(client, attempt, session):
    url = f"/api/attempts/{attempt['id']}/flags/{attempt['slot']}"
    headers = {"X-CSRFToken": attempt["token"]}
    assert client.put(url, json={"flagged": True}, headers=headers).get_json()["flagged"] is True
    assert client.put(url, json={"flagged": True}, headers=headers).status_code == 200  # idempotent
    assert client.get(f"/api/attempts/{attempt['id']}").get_json()["flags"] == [attempt["slot"]]
    page = client.get(f"/attempt/{attempt['id']}").get_data(as_text=True)
    assert 'aria-pressed="true"' in page
    client.put(url, json={"flagged": False}, headers=headers)
    assert client.get(f"/api/attempts/{attempt['id']}").get_json()["flags"] == []
    assert client.put(url, json={"flagged": "yes"}, headers=headers).status_code == 400


def test_extra_time_granted_mid_attempt_reaches_the_open_page(
    client, attempt, session, users, clock
):
    clock.advance(minutes=50)
    moved = set_override(
        session,
        session.get(Attempt, attempt["id"]).quiz_id,
        OverrideChange(time_limit=timedelta(minutes=80), reason="power cut"),
        clock(),
        user_id=users["alice"],
    )
    assert [a.id for a in moved] == [attempt["id"]]
    status = client.get(f"/api/attempts/{attempt['id']}").get_json()
    assert status["deadline"] == "2027-01-18T12:20:00+00:00"
    clock.set(datetime(2027, 1, 18, 12, 15, tzinfo=UTC))
    assert put(client, attempt, {"value": "16", "seq": 9}).get_json()["status"] == "saved"


def test_a_page_loaded_at_minute_0_saves_at_minute_89_of_a_90_minute_attempt(
    app, client, users, sample_bank, session, clock
):
    """Flask-WTF's default CSRF token lives exactly one hour: the trap DESIGN.md names.
    Real time is moved too (time-machine), because token expiry reads the real clock."""
    bob = session.get(User, users["bob"])
    bob.time_factor = Fraction(3, 2)
    session.commit()
    start = datetime(2027, 1, 18, 11, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        clock.set(start)
        auth = Auth(client)
        auth.login("bob")
        attempt_id, page = start_attempt(client)
        token, slot = csrf_of(page), slot_of(session, attempt_id, CNN)
        assert session.get(Attempt, attempt_id).deadline_at == start + timedelta(minutes=90)
        traveller.move_to(start + timedelta(minutes=89))
        clock.set(start + timedelta(minutes=89))
        response = client.put(
            f"/api/attempts/{attempt_id}/answers/{slot}",
            json={"value": "16", "seq": seq_base(page) + 1},
            headers={"X-CSRFToken": token},
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["status"] == "saved"


def test_every_save_is_logged_with_time_sequence_and_address(client, attempt, session):
    put(client, attempt, {"value": "15", "seq": 1}, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    put(client, attempt, {"value": "16", "seq": 2}, environ_base={"REMOTE_ADDR": "10.0.0.8"})
    put(client, attempt, {"value": "14", "seq": 1})  # stale: logged as such, not stored
    session.rollback()
    log = session.scalars(select(AnswerLog).order_by(AnswerLog.id)).all()
    assert [(e.value, e.seq, e.ip, e.outcome) for e in log] == [
        ("15", 1, "10.0.0.7", None),
        ("16", 2, "10.0.0.8", None),
        ("14", 1, "127.0.0.1", LogOutcome.STALE),
    ]
    assert session.scalar(select(func.count()).select_from(Answer)) == 1
