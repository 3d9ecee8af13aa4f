"""Long operations with progress in the browser, through the test client: the regrade
dry run and commit and the roster preview and import stream NDJSON progress to a page
that asks for it (static/progress.js), the CSV exports say how many rows are coming, and
nothing is half-applied: an error, a conflict or a client that goes away writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quizapp.models import AuditEvent, Mark, Quiz, Role, User
from quizapp.services import attempts as svc
from quizapp.services import regrade as regrade_service
from quizapp.services import roster as roster_service
from quizapp.services.catalog import attempt_questions
from quizapp.services.users import create_user
from quizapp.web.progress import NDJSON
from tests.conftest import QUIZ1_OPENS
from tests.functional.helpers import csrf_of

GRACE = timedelta(seconds=10)
KEY = "cnn-output-width"  # numeric, 2 marks; the right answer is 16
STREAM = {"Accept": NDJSON}
DATA = Path(__file__).resolve().parent.parent / "data" / "roster"
# The page's script, from our origin (the CSP allows no inline script), fingerprinted.
PROGRESS_SCRIPT = re.compile(r'<script src="/static/progress\.js(\?v=[0-9a-f]+)?" defer></script>')


def lines_of(response) -> list[dict]:
    assert response.mimetype == NDJSON, response.get_data(as_text=True)[:300]
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines() if line]


def _count(session, model, *where) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _students(session) -> int:
    return _count(session, User, User.role == Role.STUDENT)


@pytest.fixture
def quiz1_attempts(session, users, sample_bank, clock):
    """Alice (16, right) and Bob (15, wrong) finished quiz 1 with the CNN question."""
    quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
    start = QUIZ1_OPENS + timedelta(minutes=30)
    attempts = {}
    for name, value in (("alice", "16"), ("bob", "15")):
        attempt = svc.start_attempt(session, quiz.id, session.get(User, users[name]), start, GRACE)
        slot = next(e.slot for e, q in attempt_questions(session, attempt) if q.key == KEY)
        svc.save_answers(session, attempt.id, {slot: [value]}, 1, start, GRACE)
        assert svc.submit_attempt(session, attempt, start + timedelta(minutes=5), GRACE)
        attempts[name] = attempt
    clock.set(start + timedelta(hours=2))
    return quiz.id


def _dry_run(client, quiz_id: int, **fields) -> object:
    form = client.get(f"/staff/marking/quiz/{quiz_id}/regrade").get_data(as_text=True)
    data = {"csrf_token": csrf_of(form), "question": KEY, "mode": "accept", "accept": "15"}
    return client.post(f"/staff/marking/quiz/{quiz_id}/regrade", data=data | fields, headers=STREAM)


def _confirm_fields(page: str, action: str) -> dict[str, str]:
    form = page[page.index(f'action="{action}"') :]
    form = form[: form.index("</form>")]
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag).group(1)
        value = re.search(r'value="([^"]*)"', tag, re.S)
        fields[name] = unescape(value.group(1)) if value else ""
    return fields


# ---- Regrade -------------------------------------------------------------------------


def test_regrade_streams_the_dry_run_then_the_commit_applied_once(
    client, auth, session, users, quiz1_attempts, monkeypatch
):
    monkeypatch.setattr(regrade_service, "CHUNK", 1)  # a step per attempt
    quiz_id = quiz1_attempts
    auth.login("staff")
    marks, events = _count(session, Mark), _count(session, AuditEvent)

    lines = lines_of(_dry_run(client, quiz_id))
    assert lines[:-1] == [
        {"progress": 0, "total": 2},
        {"progress": 1, "total": 2},
        {"progress": 2, "total": 2},
    ]
    final = lines[-1]
    assert final["done"] is True and "redirect" not in final
    page = final["html"]
    assert "Nothing has been written yet" in page
    assert "2 finished attempt(s): 1 up, 0 down, 1 unchanged" in page
    assert 'data-progress="Regrading"' in page and "progress.js" in page
    assert _count(session, Mark) == marks and _count(session, AuditEvent) == events

    action = f"/staff/marking/quiz/{quiz_id}/regrade/commit"
    confirm = _confirm_fields(page, action)
    lines = lines_of(client.post(action, data=confirm, headers=STREAM))
    assert lines[:3] == [{"progress": n, "total": 2} for n in range(3)]
    assert lines[3] == {"stage": "Writing 1 new mark(s) and the new totals"}
    assert len(lines) == 5 and lines[4]["done"] is True
    target = lines[4]["redirect"]
    assert target.startswith(f"/staff/marking/quiz/{quiz_id}/regrade?notice=")
    # The streamed answer could not set a cookie: the notice travels in the URL, signed.
    shown = client.get(target).get_data(as_text=True)
    assert "Regraded cnn-output-width. 2 finished attempt(s): 1 up" in shown
    assert _count(session, Mark, Mark.source == "regrade") == 1
    assert _count(session, AuditEvent, AuditEvent.action == "regrade") == 1

    # The same confirmation again: the marks changed since, nothing more is written and
    # the fresh dry run comes back with the reason.
    lines = lines_of(client.post(action, data=confirm, headers=STREAM))
    assert "changed since the dry run" in lines[-1]["error"]
    assert "Nothing has been written yet" in lines[-1]["html"]
    assert "changed since the dry run" in lines[-1]["html"]  # shown on the page too
    assert _count(session, Mark, Mark.source == "regrade") == 1
    assert _count(session, AuditEvent, AuditEvent.action == "regrade") == 1


def test_a_regrade_refused_by_the_service_is_an_error_line_with_the_form(
    client, auth, session, users, quiz1_attempts
):
    auth.login("staff")
    choice = "autodiff-reverse-mode-cost"  # single choice: accepted answers are option keys
    lines = lines_of(_dry_run(client, quiz1_attempts, question=choice, accept="9"))
    assert "progress" not in lines[-1]
    assert lines[-1]["error"].startswith("No option 9")
    assert "No option 9" in lines[-1]["html"] and "Dry run" in lines[-1]["html"]


def test_a_client_that_goes_away_mid_regrade_writes_nothing(
    app, client, auth, session, users, quiz1_attempts, monkeypatch
):
    monkeypatch.setattr(regrade_service, "CHUNK", 1)
    quiz_id = quiz1_attempts
    auth.login("staff")
    page = lines_of(_dry_run(client, quiz_id))[-1]["html"]
    action = f"/staff/marking/quiz/{quiz_id}/regrade/commit"
    marks = _count(session, Mark)
    real_write, writes = regrade_service._write, []

    def write(*args, **kwargs):
        writes.append(args)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(regrade_service, "_write", write)
    response = client.post(
        action, data=_confirm_fields(page, action), headers=STREAM, buffered=False
    )
    chunks = iter(response.response)
    assert json.loads(next(chunks)) == {"progress": 0, "total": 2}
    response.close()  # the browser tab is closed mid-stream

    assert writes == [], "the work stopped where the client went away"
    assert _count(session, Mark) == marks
    assert _count(session, AuditEvent, AuditEvent.action == "regrade") == 0
    # Nothing is left holding the database: the regrade runs to the end right after.
    lines = lines_of(client.post(action, data=_confirm_fields(page, action), headers=STREAM))
    assert lines[-1]["done"] is True and len(writes) == 1
    assert _count(session, Mark, Mark.source == "regrade") == 1


def test_without_javascript_the_regrade_forms_post_as_before(
    client, auth, session, users, quiz1_attempts
):
    auth.login("staff")
    form = client.get(f"/staff/marking/quiz/{quiz1_attempts}/regrade").get_data(as_text=True)
    assert 'data-progress="Working out the dry run"' in form
    assert PROGRESS_SCRIPT.search(form)
    dry = client.post(
        f"/staff/marking/quiz/{quiz1_attempts}/regrade",
        data={"csrf_token": csrf_of(form), "question": KEY, "mode": "regrade"},
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    )
    assert dry.status_code == 200 and dry.mimetype == "text/html"
    assert "Nothing has been written yet" in dry.get_data(as_text=True)


# ---- Refusals before any work ---------------------------------------------------------


def test_a_forged_post_without_csrf_token_is_a_400_error_line(
    client, auth, session, users, quiz1_attempts
):
    auth.login("staff")
    for path, data in (
        (f"/staff/marking/quiz/{quiz1_attempts}/regrade", {"question": KEY, "mode": "regrade"}),
        (f"/staff/marking/quiz/{quiz1_attempts}/regrade/commit", {"question": KEY}),
        ("/staff/roster/preview", {"text": "username,name,email\nx,X,x@x.org\n"}),
        ("/staff/roster/apply", {"csv_text": "x"}),
    ):
        response = client.post(path, data=data, headers=STREAM)
        assert response.status_code == 400, path
        assert lines_of(response) == [
            {
                "error": "This form has expired or was not sent by this site. "
                "Go back, reload the page and try again."
            }
        ]
    assert _count(session, Mark, Mark.source == "regrade") == 0
    assert session.scalars(select(User).where(User.username == "x")).first() is None


def test_students_get_403_and_strangers_401_as_error_lines(client, auth, users, quiz1_attempts):
    anonymous = client.post("/staff/roster/preview", data={}, headers=STREAM)
    assert anonymous.status_code in (400, 401)  # no session: CSRF or login refuses first
    auth.login("alice")
    token = csrf_of(client.get("/").get_data(as_text=True))
    for path in (
        f"/staff/marking/quiz/{quiz1_attempts}/regrade",
        f"/staff/marking/quiz/{quiz1_attempts}/regrade/commit",
        "/staff/roster/preview",
        "/staff/roster/apply",
    ):
        response = client.post(path, data={"csrf_token": token}, headers=STREAM)
        assert response.status_code == 403, path
        assert lines_of(response) == [{"error": "You do not have permission to see this page."}]


def test_a_notice_in_a_url_is_shown_only_when_signed_by_the_app(client, auth, users):
    auth.login("staff")
    page = client.get("/staff/roster/?notice=You+have+been+hacked").get_data(as_text=True)
    assert "hacked" not in page


# ---- Roster ---------------------------------------------------------------------------


def _roster(count: int, prefix: str = "big") -> bytes:
    rows = "".join(
        f"{prefix}{i:05d},Student {i},s{i}@example.ac.uk,g{i % 3}\n" for i in range(count)
    )
    return ("username,name,email,groups\n" + rows).encode()


def _preview(client, data: bytes):
    token = csrf_of(client.get("/staff/roster/").get_data(as_text=True))
    return client.post(
        "/staff/roster/preview",
        data={"csrf_token": token, "file": (io.BytesIO(data), "big.csv")},
        content_type="multipart/form-data",
        headers=STREAM,
    )


def test_roster_preview_and_import_stream_progress_and_apply_once(client, auth, session, users):
    auth.login("staff")
    before = _students(session)
    lines = lines_of(_preview(client, _roster(1200)))
    assert lines[:-1] == [{"progress": n, "total": 1200} for n in (0, 500, 1000, 1200)]
    page = lines[-1]["html"]
    assert "Nothing has been applied yet" in page and "1200 new" in page
    assert _students(session) == before

    fields = _confirm_fields(page, "/staff/roster/apply")
    lines = lines_of(
        client.post(
            "/staff/roster/apply", data=fields, content_type="multipart/form-data", headers=STREAM
        )
    )
    assert lines[:4] == [{"progress": n, "total": 1200} for n in (0, 500, 1000, 1200)]
    assert lines[4] == {"stage": "Saving 1200 new and 0 changed student(s)"}
    assert lines[5]["done"] is True and lines[5]["redirect"].startswith("/staff/roster/?notice=")
    shown = client.get(lines[5]["redirect"]).get_data(as_text=True)
    assert "Roster imported from big.csv: 1200 new, 0 updated" in shown
    assert _students(session) == before + 1200
    assert _count(session, AuditEvent, AuditEvent.action == "roster_import") == 1

    # Confirming the same preview again: the students changed since, nothing is applied.
    lines = lines_of(
        client.post(
            "/staff/roster/apply", data=fields, content_type="multipart/form-data", headers=STREAM
        )
    )
    assert "changed since this preview" in lines[-1]["error"]
    assert "nothing to apply" in lines[-1]["html"]
    assert _count(session, AuditEvent, AuditEvent.action == "roster_import") == 1


def test_a_bad_roster_through_the_stream_is_an_error_line_and_applies_nothing(
    client, auth, session, users
):
    auth.login("staff")
    before = _students(session)
    lines = lines_of(_preview(client, (DATA / "one_bad_row.csv").read_bytes()))
    assert lines[-1]["error"] == "The file has 2 problem(s); nothing was applied."
    page = unescape(lines[-1]["html"])
    assert 'line 3: username: "bad user" contains a space' in page
    assert 'action="/staff/roster/apply"' not in page
    assert _students(session) == before


def test_a_roster_that_became_invalid_since_the_preview_applies_nothing(
    client, auth, session, users
):
    auth.login("staff")
    before = _students(session)
    page = lines_of(_preview(client, _roster(3, prefix="new")))[-1]["html"]
    create_user(session, "new00001", None, name="Now staff", role=Role.STAFF)
    fields = _confirm_fields(page, "/staff/roster/apply")
    lines = lines_of(
        client.post(
            "/staff/roster/apply", data=fields, content_type="multipart/form-data", headers=STREAM
        )
    )
    assert lines[-1]["error"] == "The file has 1 problem(s); nothing was applied."
    assert '"new00001" is a staff account' in unescape(lines[-1]["html"])
    assert _students(session) == before


def test_an_error_while_writing_the_roster_rolls_everything_back(
    client, auth, session, users, monkeypatch
):
    auth.login("staff")
    before = _students(session)
    page = lines_of(_preview(client, _roster(600)))[-1]["html"]
    real = roster_service.audit.record

    def failing(s, kind, *args, **kwargs):
        if kind == "roster_import":  # the very last write of the transaction
            raise RuntimeError("disk full")
        return real(s, kind, *args, **kwargs)

    monkeypatch.setattr(roster_service.audit, "record", failing)
    lines = lines_of(
        client.post(
            "/staff/roster/apply",
            data=_confirm_fields(page, "/staff/roster/apply"),
            content_type="multipart/form-data",
            headers=STREAM,
        )
    )
    assert lines[-1] == {"error": "Something went wrong on the server; nothing was applied."}
    assert _students(session) == before
    assert _count(session, AuditEvent, AuditEvent.action == "roster_import") == 0


# ---- Exports --------------------------------------------------------------------------


def test_exports_announce_their_row_count_and_stay_plain_downloads(
    client, auth, session, users, quiz1_attempts
):
    auth.login("staff")
    index = client.get("/staff/").get_data(as_text=True)
    assert 'data-progress-download="the scores CSV of' in index
    assert PROGRESS_SCRIPT.search(index)
    for kind, expected in (("scores", 3), ("gradebook", 3), ("responses", 30)):
        response = client.get(f"/staff/quiz/{quiz1_attempts}/{kind}.csv")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith(
            f'attachment; filename="quiz1-foundations-{kind}-'
        )
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
        assert len(rows) - 1 == expected == int(response.headers["X-Total-Rows"]), kind


# ---- The command line -----------------------------------------------------------------


def test_the_cli_prints_progress_to_stderr_for_big_inputs_only(
    app, session, users, quiz1_attempts, tmp_path
):
    runner = app.test_cli_runner()
    big = tmp_path / "big.csv"
    big.write_bytes(_roster(1200))
    result = runner.invoke(args=["users", "import", str(big)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "checked 0/1200 (0 %)…",
        "checked 500/1200 (41 %)…",
        "checked 1000/1200 (83 %)…",
        "checked 1200/1200 (100 %)…",
        "Saving 1200 new and 0 changed student(s)…",
    ]
    assert "Imported" in result.stdout and "checked" not in result.stdout

    small = tmp_path / "small.csv"
    small.write_bytes(_roster(3, prefix="few"))
    result = runner.invoke(args=["users", "import", str(small)])
    assert result.exit_code == 0 and "checked" not in result.stderr

    result = runner.invoke(args=["export", "csv", "scores", "quiz1-foundations"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    assert len(rows) == 1 + 1206  # the header; alice, bob, carol and the 1203 imported
    assert "exported 0/" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "exported 1/1206 (0 %)…" and "exported 1206/1206 (100 %)…" in lines
    assert lines[-1] == "1206 rows written."
    assert len(lines) <= 13, "at most every 10 % (or 2 seconds)"
