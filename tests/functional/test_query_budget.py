"""SQL statements per request on the exam-day hot paths, counted (never timed).

The statement count is the part of a request's cost that a code change can silently
multiply (an N+1 load, a lazy relationship in a loop). These budgets are what the
requests need today; bench/README.md has the measured time. Counts include BEGIN.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from tests.functional.helpers import csrf_of, first_quiz_id, seq_base, slot_of, start_attempt

# Counted on SQLite; PostgreSQL runs the same statements (FOR SHARE instead of the
# BEGIN IMMEDIATE that SQLite needs), so the same budgets hold.
BUDGET = {
    "save": 9,  # user, lock attempt+quiz, versions, stored answer, other client, upsert, log
    "attempt page": 8,
    "start": 11,
    "dashboard": 7,
    "status": 6,
}


@contextmanager
def counting(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    engine = app.extensions["quizapp_db"].engine
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def student(client, auth, users, sample_bank):  # type: ignore[no-untyped-def]
    auth.login("alice")
    return client


def test_an_autosave_stays_within_its_statement_budget(app, student, session) -> None:  # type: ignore[no-untyped-def]
    attempt_id, page = start_attempt(student)
    slot = slot_of(session, attempt_id, "cnn-output-width")
    token, base = csrf_of(page), seq_base(page)
    counts = []
    for i, value in enumerate(["15", "16", "17", "16"], start=1):
        with counting(app) as statements:
            response = student.put(
                f"/api/attempts/{attempt_id}/answers/{slot}",
                json={"value": value, "seq": base + i},
                headers={"X-CSRFToken": token},
            )
        assert response.status_code == 200 and response.json["status"] == "saved"
        counts.append(len(statements))
    assert max(counts) <= BUDGET["save"], counts


def test_the_journey_pages_stay_within_their_budgets(app, student) -> None:  # type: ignore[no-untyped-def]
    with counting(app) as statements:
        assert student.get("/").status_code == 200
    assert len(statements) <= BUDGET["dashboard"], statements

    quiz_path = first_quiz_path(student)
    token = csrf_of(student.get(quiz_path).text)
    with counting(app) as statements:
        response = student.post(f"{quiz_path}/start", data={"csrf_token": token})
    assert response.status_code == 302
    assert len(statements) <= BUDGET["start"], "\n".join(s.split("\n")[0][:90] for s in statements)
    attempt_path = response.headers["Location"]

    student.get(attempt_path)  # the question cache is per process: count a warm page
    with counting(app) as statements:
        assert student.get(attempt_path).status_code == 200
    assert len(statements) <= BUDGET["attempt page"], statements

    attempt_id = attempt_path.rsplit("/", 1)[1]
    with counting(app) as statements:
        assert student.get(f"/api/attempts/{attempt_id}").status_code == 200
    assert len(statements) <= BUDGET["status"], statements


def first_quiz_path(client) -> str:  # type: ignore[no-untyped-def]
    return f"/quiz/{first_quiz_id(client)}"
