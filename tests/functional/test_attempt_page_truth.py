"""What the attempt page and the submit page say must be true (issue 16, items 4, 5, 7).

- Every API response carries the deadline already formatted as the page shows it, in the
  course's zone (`deadline_local`), so a moved deadline is written the same way in the
  bar, the banner and the announcement, whatever the browser's locale.
- The status call can return the stored answers' form values (`?form_values=1`): what a
  page needs to show the answer another window saved. Only the student's own values,
  never anything about correctness.
- The submit page lists unanswered, flagged and out-of-range essays, each linking back.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from quizapp.models import Attempt, Quiz
from quizapp.services.catalog import attempt_questions
from quizapp.services.overrides import OverrideChange, set_override
from tests.conftest import Auth
from tests.functional.helpers import csrf_of, seq_base, slot_of, start_attempt

CNN = "cnn-output-width"  # numeric, answer 16
QUIZ2 = "quiz2-gradients-and-shapes"  # every question type; the essay asks 80 to 300 words
QUIZ2_OPENS = datetime(2027, 1, 25, 10, 0, tzinfo=UTC)


def local(moment: datetime, zone: str = "Europe/London") -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S %Z")


@pytest.fixture
def alice(client, auth, users, sample_bank, session):  # type: ignore[no-untyped-def]
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    return {"id": attempt_id, "page": page, "token": csrf_of(page), "base": seq_base(page)}


def put(client, attempt, slot: int, value, seq: int):  # type: ignore[no-untyped-def]
    return client.put(
        f"/api/attempts/{attempt['id']}/answers/{slot}",
        json={"value": value, "seq": seq},
        headers={"X-CSRFToken": attempt["token"]},
    )


# ---------- item 4: the deadline, formatted by the server ----------


def test_every_response_and_the_page_write_the_deadline_the_same_way(
    client, alice, session, users, clock
) -> None:  # type: ignore[no-untyped-def]
    attempt = session.get(Attempt, alice["id"])
    deadline = attempt.deadline_at
    shown = local(deadline)
    assert shown == "12:00:00 GMT"  # started 11:00, one hour
    # The page's bar: the same text the API gives, in an element the script updates.
    assert f'<span id="deadline-local">{shown}</span>' in alice["page"]
    assert re.search(
        r'<p id="deadline-banner" class="deadline-banner" hidden>\s*</p>', alice["page"]
    )

    slot = slot_of(session, alice["id"], CNN)
    status = client.get(f"/api/attempts/{alice['id']}").get_json()
    saved = put(client, alice, slot, "16", alice["base"] + 1).get_json()
    flagged = client.put(
        f"/api/attempts/{alice['id']}/flags/{slot}",
        json={"flagged": True},
        headers={"X-CSRFToken": alice["token"]},
    ).get_json()
    for body in (status, saved, flagged):
        assert body["deadline"] == deadline.isoformat()
        assert body["deadline_local"] == shown

    # Staff give 10 more minutes: the next response says the new end, as the page will.
    quiz_id = session.scalars(select(Quiz.id).where(Quiz.id == attempt.quiz_id)).one()
    moved = set_override(
        session,
        quiz_id,
        OverrideChange(time_limit=timedelta(minutes=70), reason="extra time"),
        clock(),
        user_id=users["alice"],
    )
    assert [a.id for a in moved] == [alice["id"]]
    after = client.get(f"/api/attempts/{alice['id']}").get_json()
    assert after["deadline_local"] == "12:10:00 GMT"
    assert after["deadline"] == (deadline + timedelta(minutes=10)).isoformat()
    assert "12:10:00 GMT" in client.get(f"/attempt/{alice['id']}").get_data(as_text=True)


def test_the_deadline_is_written_in_the_course_zone_not_utc(app, client, alice, session) -> None:  # type: ignore[no-untyped-def]
    app.config["QUIZAPP_TIMEZONE"] = "Europe/Berlin"
    body = client.get(f"/api/attempts/{alice['id']}").get_json()
    assert body["deadline_local"] == "13:00:00 CET"  # 12:00 UTC
    page = client.get(f"/attempt/{alice['id']}").get_data(as_text=True)
    assert '<span id="deadline-local">13:00:00 CET</span>' in page


# ---------- item 5: the answers the server holds, as form values ----------


def test_status_gives_the_stored_form_values_only_when_asked(client, alice, session) -> None:  # type: ignore[no-untyped-def]
    attempt = session.get(Attempt, alice["id"])
    types = {e.slot: q.type_name for e, q in attempt_questions(session, attempt)}
    choice = next(slot for slot, t in types.items() if t == "single_choice")
    multi = next(slot for slot, t in types.items() if t == "multiple_response")
    numeric = slot_of(session, alice["id"], CNN)
    base = alice["base"]
    # Options are shown as letters (in the attempt's own order): the student's choices.
    assert put(client, alice, choice, "B", base + 1).status_code == 200
    assert put(client, alice, multi, ["C", "A"], base + 2).status_code == 200
    assert put(client, alice, numeric, "15", base + 3).status_code == 200

    plain = client.get(f"/api/attempts/{alice['id']}").get_json()
    assert "form_values" not in plain  # the idle poll stays as cheap as it was

    body = client.get(f"/api/attempts/{alice['id']}?form_values=1").get_json()
    assert body["form_values"] == {str(choice): ["B"], str(multi): ["A", "C"], str(numeric): ["15"]}
    # The same answers, with their sequence numbers: the page pairs them.
    assert {k: v["seq"] for k, v in body["answers"].items()} == {
        str(choice): base + 1,
        str(multi): base + 2,
        str(numeric): base + 3,
    }
    # Nothing about correctness anywhere in the response.
    assert set(body) == {
        "attempt_id",
        "state",
        "deadline",
        "deadline_local",
        "server_now",
        "grace_seconds",
        "result_url",
        "answers",
        "flags",
        "form_values",
    }
    text = str(body).lower()
    for word in ("correct", "mark", "score", "fraction", "grade", "feedback"):
        assert word not in text, word

    # A cleared answer is an empty form.
    assert put(client, alice, numeric, "", base + 4).status_code == 200
    body = client.get(f"/api/attempts/{alice['id']}?form_values=1").get_json()
    assert body["form_values"][str(numeric)] == []
    assert body["answers"][str(numeric)]["seq"] == base + 4


def test_the_page_carries_each_answers_sequence(client, alice, session) -> None:  # type: ignore[no-untyped-def]
    slot = slot_of(session, alice["id"], CNN)
    assert f'data-slot="{slot}" data-seq=""' in alice["page"]
    put(client, alice, slot, "16", alice["base"] + 7)
    page = client.get(f"/attempt/{alice['id']}").get_data(as_text=True)
    assert f'data-slot="{slot}" data-seq="{alice["base"] + 7}"' in page


def test_form_values_are_only_for_the_students_own_attempt(app, alice) -> None:  # type: ignore[no-untyped-def]
    other = app.test_client()
    Auth(other).login("bob")
    assert other.get(f"/api/attempts/{alice['id']}?form_values=1").status_code == 404


# ---------- item 7: the submit page warns ----------


@pytest.fixture
def quiz2_attempt(client, auth, users, sample_bank, session, clock):  # type: ignore[no-untyped-def]
    clock.set(QUIZ2_OPENS + timedelta(hours=1))
    auth.login("alice")
    quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == QUIZ2)).one()
    attempt_id, page = start_attempt(client, quiz_id)
    session.rollback()  # a fresh snapshot: the attempt the request committed
    attempt = session.get(Attempt, attempt_id)
    return {
        "id": attempt_id,
        "token": csrf_of(page),
        "base": seq_base(page),
        "pairs": attempt_questions(session, attempt),
    }


def answer_everything(client, attempt, essay_words: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Model answers for every question, an essay of `essay_words` words; returns the
    question number of each type."""
    numbers = {}
    for number, (entry, question) in enumerate(attempt["pairs"], start=1):
        body = question.body
        numbers[question.type_name] = number
        if question.type_name == "essay":
            values = [" ".join(["word"] * essay_words)]
        else:
            values = body.form_values(entry.variant, body.model_response(entry.variant))
        response = put(client, attempt, entry.slot, values, attempt["base"] + number)
        assert response.status_code == 200, response.get_json()
    return numbers


def flag(client, attempt, number: int) -> None:  # type: ignore[no-untyped-def]
    slot = attempt["pairs"][number - 1][0].slot
    response = client.put(
        f"/api/attempts/{attempt['id']}/flags/{slot}",
        json={"flagged": True},
        headers={"X-CSRFToken": attempt["token"]},
    )
    assert response.status_code == 200


def checks(page: str) -> list[tuple[str, str, str]]:
    """(link target, link text, reasons) of each line of the submit page's list."""
    return re.findall(r'<li><a href="([^"]+)">([^<]+)</a>: ([^<]+)</li>', page)


def test_submit_page_lists_flagged_questions_and_a_short_essay(client, quiz2_attempt) -> None:  # type: ignore[no-untyped-def]
    numbers = answer_everything(client, quiz2_attempt, essay_words=54)
    flag(client, quiz2_attempt, 2)
    flag(client, quiz2_attempt, 5)
    page = client.get(f"/attempt/{quiz2_attempt['id']}/submit").get_data(as_text=True)

    assert "answered all" not in page
    essay = numbers["essay"]
    back = f"/attempt/{quiz2_attempt['id']}#q"
    expected = sorted(
        [
            (f"{back}2", "Question 2", "flagged for review"),
            (f"{back}5", "Question 5", "flagged for review"),
            (f"{back}{essay}", f"Question {essay}", "54 words; at least 80 asked"),
        ],
        key=lambda line: int(line[1].split()[1]),
    )
    assert checks(page) == expected
    assert "1 essay is outside the length asked\n    (question " + str(essay) + ")." in page
    assert "You flagged 2 questions for review\n    (questions 2, 5)." in page
    assert "You have not answered" not in page


def test_submit_page_lists_unanswered_and_too_long_essays_with_every_reason(
    client, quiz2_attempt
) -> None:  # type: ignore[no-untyped-def]
    numbers = answer_everything(client, quiz2_attempt, essay_words=301)
    first = quiz2_attempt["pairs"][0][0].slot
    assert put(client, quiz2_attempt, first, [], quiz2_attempt["base"] + 100).status_code == 200
    flag(client, quiz2_attempt, 1)
    page = client.get(f"/attempt/{quiz2_attempt['id']}/submit").get_data(as_text=True)
    essay = numbers["essay"]
    lines = checks(page)
    assert lines[0][1:] == ("Question 1", "not answered; flagged for review")
    assert (f"Question {essay}", "301 words; at most 300 asked") in [line[1:] for line in lines]
    assert "You have not answered 1 of 13 questions\n    (question 1)." in page
    assert "answered all" not in page


def test_submit_page_says_all_answered_only_when_nothing_needs_a_look(
    client, quiz2_attempt
) -> None:  # type: ignore[no-untyped-def]
    answer_everything(client, quiz2_attempt, essay_words=80)
    page = client.get(f"/attempt/{quiz2_attempt['id']}/submit").get_data(as_text=True)
    assert "You have answered all 13 questions." in page
    assert checks(page) == []
    assert 'class="notice"' not in page
