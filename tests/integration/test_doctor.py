"""`quizapp doctor text`: rows stored before the boundary refused unstorable text (put
here directly, bypassing the guard) are listed by a dry run, repaired by --apply in one
audited transaction, and the attempt they broke renders again. Runs on SQLite, and on
PostgreSQL when QUIZAPP_TEST_DATABASE_URL is set."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from quizapp.models import Answer, AnswerLog, Attempt, AuditEvent, Mark, Quiz, User
from quizapp.services import attempts as svc
from quizapp.services.catalog import attempt_questions
from quizapp.services.doctor import repair_text, scan_text

GRACE = timedelta(seconds=10)


@pytest.fixture
def broken(session, sample_bank, users, clock):
    """Alice's attempt with a lone surrogate saved as her answer (issue 12's reproduction),
    the same value in the answer log, a NUL in a failed login's audit details, and a
    non-character in staff feedback; plus a good answer that must not be touched."""
    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
    alice = session.get(User, users["alice"])
    attempt = svc.start_attempt(session, quiz.id, alice, clock(), GRACE)
    slots = {q.type_name: e.slot for e, q in attempt_questions(session, attempt)}
    # A numeric box shows the stored text back to the student: the page encodes it.
    bad_slot, good_slot = slots["numeric"], slots["multiple_response"]
    moment = clock()
    session.add_all(
        [
            Answer(attempt_id=attempt.id, slot=bad_slot, value="\ud800abc", seq=1, saved_at=moment),
            Answer(attempt_id=attempt.id, slot=good_slot, value=["A"], seq=1, saved_at=moment),
            AnswerLog(attempt_id=attempt.id, slot=bad_slot, value="\ud800abc", seq=1, received_at=moment),
            AnswerLog(attempt_id=attempt.id, slot=bad_slot, value=["ok", "x\U0010ffff"], seq=2, received_at=moment),
        ]
    )  # fmt: skip
    event = AuditEvent(
        at=moment, action="login_failed", details={"username": "bob\x00", "ok": "fine"}
    )
    session.add(event)
    session.commit()
    return {"attempt": attempt.id, "bad_slot": bad_slot, "good_slot": good_slot, "event": event.id}


def _page_status(client, url: str) -> int:
    try:
        return client.get(url).status_code
    except Exception:  # the test client re-raises what a server would answer 500 to
        return 500


def test_dry_run_lists_every_bad_row_and_changes_nothing(app, session, broken):
    result = app.test_cli_runner().invoke(args=["doctor", "text"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    attempt = broken["attempt"]
    assert lines[:4] == [
        f"answers.value id 1 (attempt {attempt}): position 1: U+D800, half of a surrogate pair (a high surrogate without its partner)",
        f"answer_log.value id 1 (attempt {attempt}): position 1: U+D800, half of a surrogate pair (a high surrogate without its partner)",
        f"answer_log.value id 2 (attempt {attempt}): [1] position 2: U+10FFFF, a Unicode non-character",
        f"audit_log.details id {broken['event']}: username position 4: U+0000, a NUL character",
    ]
    assert "4 row(s) of" in lines[4] and "Dry run: nothing changed" in lines[4]
    session.rollback()
    assert session.scalars(select(Answer.value).where(Answer.slot == broken["bad_slot"])).one() == (
        "\ud800abc"
    )


def test_apply_repairs_in_place_audits_and_the_attempt_page_renders_again(
    app, client, auth, session, broken
):
    auth.login("alice")
    page = f"/attempt/{broken['attempt']}"
    assert _page_status(client, page) == 500  # what the stored surrogate did

    result = app.test_cli_runner().invoke(args=["doctor", "text", "--apply"])
    assert result.exit_code == 0, result.output
    assert "Repaired 4 row(s)" in result.output

    session.rollback()
    answers = dict(session.execute(select(Answer.slot, Answer.value)).all())
    assert answers == {broken["bad_slot"]: "\ufffdabc", broken["good_slot"]: ["A"]}
    log = session.scalars(select(AnswerLog.value).order_by(AnswerLog.id)).all()
    assert log == ["\ufffdabc", ["ok", "x\ufffd"]]
    details = session.scalars(
        select(AuditEvent.details).where(AuditEvent.action == "login_failed")
    ).one()
    assert details == {"username": "bob\ufffd", "ok": "fine"}

    repairs = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "text_repaired").order_by(AuditEvent.id)
    ).all()
    assert [(e.details["table"], e.details["row_id"]) for e in repairs] == [
        ("answers", 1),
        ("answer_log", 1),
        ("answer_log", 2),
        ("audit_log", broken["event"]),
    ]
    first = repairs[0]
    assert first.attempt_id == broken["attempt"]
    assert first.subject_id == session.get(Attempt, broken["attempt"]).user_id
    assert first.details["replaced"] == [
        "position 1: U+D800, half of a surrogate pair (a high surrogate without its partner)"
    ]

    rendered = client.get(page)
    assert rendered.status_code == 200
    assert "\ufffdabc" in rendered.get_data(as_text=True)

    again = app.test_cli_runner().invoke(args=["doctor", "text"])
    assert again.exit_code == 0 and "all text can be stored and read" in again.output


def test_staff_text_columns_are_scanned_too(session, broken, users, clock):
    version_id = session.execute(
        select(Attempt.layout).where(Attempt.id == broken["attempt"])
    ).scalar_one()[0]["version_id"]
    session.add(
        Mark(
            attempt_id=broken["attempt"],
            slot=broken["good_slot"],
            version_id=version_id,
            fraction=0,
            marks=0,
            status="manual",
            feedback="See \ufdd0 me",
            created_at=clock(),
        )
    )
    user = session.get(User, users["bob"])
    user.name = "Bob \uffff"
    session.commit()
    report = scan_text(session)
    found = {(r.column.table, r.column.name): [str(c) for c in r.characters] for r in report.rows}
    assert found[("marks", "feedback")] == ["position 5: U+FDD0, a Unicode non-character"]
    assert found[("users", "name")] == ["position 5: U+FFFF, a Unicode non-character"]
    assert repair_text(session, report, clock()) == 6
    session.rollback()
    assert session.get(User, users["bob"]).name == "Bob \ufffd"
    assert scan_text(session).rows == []


def test_a_row_fixed_since_the_scan_is_left_alone(session, broken, clock):
    report = scan_text(session)
    session.rollback()
    answer = session.scalars(select(Answer).where(Answer.slot == broken["bad_slot"])).one()
    answer.value = "a newer, good answer"
    session.commit()
    assert repair_text(session, report, clock()) == len(report.rows) - 1
    session.rollback()
    assert session.get(Answer, answer.id).value == "a newer, good answer"


def test_nothing_to_repair_on_a_clean_database(app, session, sample_bank, users):
    result = app.test_cli_runner().invoke(args=["doctor", "text", "--apply"])
    assert result.exit_code == 0
    assert "all text can be stored and read" in result.output
    assert (
        session.scalars(select(AuditEvent).where(AuditEvent.action == "text_repaired")).all() == []
    )


def test_the_scan_reads_in_batches(session, broken, monkeypatch):
    from quizapp.services import doctor

    monkeypatch.setattr(doctor, "BATCH", 1)
    assert [str(row) for row in scan_text(session).rows] == [
        str(row) for row in _unbatched(session, monkeypatch)
    ]


def _unbatched(session, monkeypatch):
    from quizapp.services import doctor

    monkeypatch.setattr(doctor, "BATCH", 1000)
    return scan_text(session).rows
