"""Staff change a quiz's release policy in the browser: audited, CSRF-protected, a clear
error for a bad time, seen at once by students, and kept by a later import of the YAML
unless the YAML's own release policy was changed since."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quizapp.bank.loader import load_bank
from quizapp.domain.release import ReleaseWhen
from quizapp.models import AuditEvent, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.bank_import import import_bank
from quizapp.services.catalog import release_policy
from tests.conftest import SAMPLE_BANK
from tests.functional.helpers import csrf_of

GRACE = timedelta(seconds=10)
# The sample YAML: marks immediately, answers after the window closes.


def _quiz(session) -> Quiz:
    session.rollback()
    session.expire_all()  # what the requests committed, not what this session saw before
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


def _events(session) -> list[AuditEvent]:
    session.rollback()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "release_policy")))


def _post(client, quiz_id: int, **fields):
    page = client.get(f"/staff/quiz/{quiz_id}/release").get_data(as_text=True)
    data = {
        "csrf_token": csrf_of(page),
        "marks": "immediately",
        "marks_at": "",
        "answers": "after_close",
        "answers_at": "",
    }
    return client.post(f"/staff/quiz/{quiz_id}/release", data=data | fields)


def test_staff_set_a_release_time_and_students_see_answers_from_then(
    client, auth, session, users, sample_bank, clock
):
    quiz = _quiz(session)
    alice = session.get(User, users["alice"])
    attempt = svc.start_attempt(session, quiz.id, alice, clock(), GRACE)
    assert svc.submit_attempt(session, attempt, clock(), GRACE)

    auth.login("staff")
    page = unescape(client.get(f"/staff/quiz/{quiz.id}/release").get_data(as_text=True))
    assert "Marks: as soon as the student's attempt is finished — students see them now" in page
    assert "after the window has closed for everyone — students do not see them yet" in page
    assert "This is the policy in the quiz's YAML." in page
    assert 'type="datetime-local"' in page

    # Answers from 14:00 London time today (GMT in January), an hour from now.
    done = _post(client, quiz.id, answers="at", answers_at="2027-01-18T12:00")
    assert done.status_code == 302, done.get_data(as_text=True)
    shown = unescape(client.get(done.headers["Location"]).get_data(as_text=True))
    assert "Release policy of Quiz 1: Foundations saved" in shown
    assert "Correct answers and feedback: from Mon 18 Jan 2027, 12:00 GMT" in shown
    assert "This policy was set here, not in the quiz's YAML." in shown
    policy = release_policy(_quiz(session))
    assert policy.answers.when is ReleaseWhen.AT
    assert policy.answers.at == datetime(2027, 1, 18, 12, 0, tzinfo=UTC)

    [event] = _events(session)
    assert event.actor_id == users["staff"] and event.quiz_id == quiz.id
    assert event.details["old"]["answers"] == {"when": "after_close", "at": None}
    assert event.details["new"]["answers"] == {"when": "at", "at": "2027-01-18T12:00:00+00:00"}

    # The student's review page follows the new policy: no answers before 12:00, then yes.
    client.post("/logout", data={"csrf_token": csrf_of(shown)})
    auth.login("alice")
    review = f"/attempt/{attempt.id}/review"
    before = client.get(review).get_data(as_text=True)
    assert "Correct answers and feedback are not released yet: they will be on Mon 18 Jan" in before
    assert "<dt>Correct answer</dt>" not in before
    clock.set(datetime(2027, 1, 18, 12, 0, 1, tzinfo=UTC))
    after = client.get(review).get_data(as_text=True)
    assert "<dt>Correct answer</dt>" in after and "not released yet" not in after


def test_a_bad_time_is_a_clear_error_and_changes_nothing(client, auth, session, users, sample_bank):
    quiz = _quiz(session)
    auth.login("staff")
    for fields, message in (
        (
            {"marks": "at", "marks_at": "2027-13-45T09:00"},
            "Marks: '2027-13-45T09:00' is not a date and time such as 2026-12-01 09:00.",
        ),
        ({"answers": "at", "answers_at": ""}, "Answers and feedback: give the date and time"),
        (
            {"answers": "at", "answers_at": "2027-03-28T01:30"},  # clocks go forward at 01:00
            "Answers and feedback: 2027-03-28 01:30 does not exist in Europe/London",
        ),
        ({"marks": "sometimes"}, "Not a valid choice"),
    ):
        response = _post(client, quiz.id, **fields)
        assert response.status_code == 400, fields
        assert message in unescape(response.get_data(as_text=True)), fields
    assert release_policy(_quiz(session)).marks.when is ReleaseWhen.IMMEDIATELY
    assert _events(session) == []


def test_the_same_policy_again_writes_nothing(client, auth, session, users, sample_bank):
    quiz = _quiz(session)
    auth.login("staff")
    done = _post(client, quiz.id)  # what the YAML says already
    assert "already the release policy" in client.get(done.headers["Location"]).get_data(
        as_text=True
    )
    assert _events(session) == []


def test_release_changes_need_staff_and_a_csrf_token(client, auth, session, users, sample_bank):
    quiz = _quiz(session)
    auth.login("alice")
    assert client.get(f"/staff/quiz/{quiz.id}/release").status_code == 403
    token = csrf_of(client.get("/").get_data(as_text=True))
    refused = client.post(
        f"/staff/quiz/{quiz.id}/release", data={"csrf_token": token, "marks": "never"}
    )
    assert refused.status_code == 403
    client.post("/logout", data={"csrf_token": token})
    auth.login("staff")
    forged = client.post(f"/staff/quiz/{quiz.id}/release", data={"marks": "never"})
    assert forged.status_code == 400
    assert "was not sent by this site" in forged.get_data(as_text=True)
    assert release_policy(_quiz(session)).marks.when is ReleaseWhen.IMMEDIATELY
    assert _events(session) == []


def _bank(tmp_path: Path, old: str = "", new: str = "") -> Path:
    bank = tmp_path / "bank"
    if not bank.exists():
        shutil.copytree(SAMPLE_BANK, bank)
    if old:
        path = bank / "quizzes" / "quiz1-foundations.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return bank


def _import(session, bank: Path):
    loaded = load_bank(bank)
    assert loaded.ok, loaded.problems
    return import_bank(session, loaded)


@pytest.mark.parametrize("browser_answers", ["never", "immediately"])
def test_a_reimport_keeps_the_browser_policy_unless_the_yaml_policy_changed(
    client, auth, session, users, tmp_path, browser_answers
):
    bank = _bank(tmp_path)
    _import(session, bank)
    quiz = _quiz(session)
    auth.login("staff")
    assert _post(client, quiz.id, answers=browser_answers).status_code == 302

    # The YAML changes, but not its release policy: the browser's choice stays.
    _bank(tmp_path, 'title: "Quiz 1: Foundations"', 'title: "Quiz 1: Foundations (v2)"')
    report = _import(session, bank)
    assert report.updated_quizzes == ["quiz1-foundations"]
    assert "release policy set in the browser kept for quiz1-foundations" in report.summary()
    quiz = _quiz(session)
    assert quiz.title == "Quiz 1: Foundations (v2)"
    assert release_policy(quiz).answers.when.value == browser_answers
    # The same bank again: nothing changes at all.
    assert not _import(session, bank).changed
    assert release_policy(_quiz(session)).answers.when.value == browser_answers

    # The YAML's release policy itself changes: the newer decision, the YAML's, applies.
    _bank(tmp_path, "    answers: after_close\n", "    answers: 2027-02-01 09:00\n")
    report = _import(session, bank)
    assert report.release_replaced == ["quiz1-foundations"]
    policy = release_policy(_quiz(session))
    assert policy.answers.at == datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    assert "yaml" not in _quiz(session).release
    page = unescape(client.get(f"/staff/quiz/{quiz.id}/release").get_data(as_text=True))
    assert "This is the policy in the quiz's YAML." in page


def test_choosing_the_yaml_policy_again_makes_it_the_yamls(
    client, auth, session, users, sample_bank
):
    quiz = _quiz(session)
    auth.login("staff")
    _post(client, quiz.id, marks="never")
    assert "yaml" in _quiz(session).release
    _post(client, quiz.id, marks="immediately")
    assert "yaml" not in _quiz(session).release
    assert len(_events(session)) == 2
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) >= 2


def test_the_quiz_pages_link_to_the_release_control(client, auth, users, sample_bank, session):
    quiz = _quiz(session)
    auth.login("staff")
    link = f'href="/staff/quiz/{quiz.id}/release"'
    assert link in client.get("/staff/").get_data(as_text=True)
    assert link in client.get(f"/staff/quiz/{quiz.id}").get_data(as_text=True)
