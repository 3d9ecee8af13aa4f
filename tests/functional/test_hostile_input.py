"""Hostile input at the HTTP boundary (issue 12): every reproduction is refused with a
clear 400 (or made harmless) before anything is stored, and none of them is a 500.

- text that cannot be stored (lone surrogates, NUL, non-characters) in JSON, forms and
  query strings;
- JSON nested deeper than the guard's limit (100,000 "[" used to be a RecursionError);
- a ?next= with control characters (a correct login used to be a 500);
- an absurd ?page= (an overflow in the database driver);
- the instance folder and SQLite files readable by other users of the machine.
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from quizapp.models import Answer, AnswerLog, Attempt, AuditEvent, Quiz
from quizapp.services.catalog import attempt_questions
from tests.conftest import PASSWORD
from tests.functional.helpers import csrf_of, seq_base, start_attempt

QUIZ2 = "quiz2-gradients-and-shapes"
MAX_JSON_DEPTH = 32  # quizapp.web.input_guard's, checked below
QUIZ2_OPENS = datetime(2027, 1, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def attempt(client, auth, users, sample_bank, session, clock):
    """Alice mid-way through quiz 2, which has one question of every type."""
    clock.set(QUIZ2_OPENS + timedelta(hours=1))
    auth.login("alice")
    quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == QUIZ2)).one()
    attempt_id, page = start_attempt(client, quiz_id)
    session.rollback()  # see the attempt the request committed
    slots = {
        question.type_name: entry.slot
        for entry, question in attempt_questions(session, session.get(Attempt, attempt_id))
    }
    return {"id": attempt_id, "token": csrf_of(page), "base": seq_base(page), "slots": slots}


def put_raw(client, attempt, raw: bytes | str, slot: int):
    return client.put(
        f"/api/attempts/{attempt['id']}/answers/{slot}",
        data=raw,
        content_type="application/json",
        headers={"X-CSRFToken": attempt["token"]},
    )


def nothing_stored(session, attempt_id: int) -> bool:
    session.rollback()  # a fresh snapshot: what the requests committed
    answers = session.scalar(
        select(func.count()).select_from(Answer).where(Answer.attempt_id == attempt_id)
    )
    logged = session.scalar(
        select(func.count()).select_from(AnswerLog).where(AnswerLog.attempt_id == attempt_id)
    )
    return answers == 0 and logged == 0


# Bodies as sent on the wire: json.dumps writes "\ud800" as the escape a browser would.
UNSTORABLE_BODIES = {
    "lone surrogate (issue 12's reproduction)": ('{"value": "\\ud800abc", "seq": 1}', 1),
    "lone low surrogate at the end": ('{"value": "abc\\udfff", "seq": 1}', 4),
    "surrogate as raw UTF-8 bytes": (b'{"value": "ab\xed\xa0\x80", "seq": 1}', 3),
    "NUL": ('{"value": "1\\u00006", "seq": 1}', 2),
    "U+FFFE": ('{"value": "x\\ufffe", "seq": 1}', 2),
    "U+FDD0": ('{"value": "\\ufdd0", "seq": 1}', 1),
    "U+10FFFF as a surrogate pair": ('{"value": "ok \\udbff\\udfff", "seq": 1}', 4),
    "in the second of several values": ('{"value": ["a", "b\\ud800"], "seq": 1}', 2),
}


@pytest.mark.parametrize("name", list(UNSTORABLE_BODIES))
def test_an_autosave_with_text_that_cannot_be_stored_is_400_and_stores_nothing(
    client, attempt, session, name
):
    raw, position = UNSTORABLE_BODIES[name]
    response = put_raw(client, attempt, raw, attempt["slots"]["short_text"])
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert message.startswith("Your answer contains a character that cannot be stored")
    assert f"position {position}:" in message
    assert nothing_stored(session, attempt["id"])
    # The attempt goes on: its page renders and a good save still works.
    assert client.get(f"/attempt/{attempt['id']}").status_code == 200
    good = put_raw(
        client, attempt, '{"value": "RMSprop", "seq": 2}', attempt["slots"]["short_text"]
    )
    assert good.status_code == 200


def test_keys_and_unknown_fields_are_checked_too(client, attempt, session):
    slot = attempt["slots"]["short_text"]
    response = put_raw(client, attempt, '{"value": "a", "seq": 1, "\\ud800": 1}', slot)
    assert response.status_code == 400
    assert "cannot be stored (position 1: U+D800" in response.get_json()["error"]
    nested = put_raw(client, attempt, '{"value": "a", "seq": 1, "x": {"y": ["\\u0000"]}}', slot)
    assert nested.status_code == 400
    assert "The field 'x' contains a character that cannot be stored" in nested.get_json()["error"]
    assert nothing_stored(session, attempt["id"])


def test_essays_keep_their_newlines_tabs_and_everything_else(client, attempt, session):
    essay = "First line\r\nSecond\tline\n\n中文, ÜML, 😀, \x07, \ufffd and [[[{{{ brackets"
    response = client.put(
        f"/api/attempts/{attempt['id']}/answers/{attempt['slots']['essay']}",
        json={"value": essay, "seq": attempt["base"] + 1},
        headers={"X-CSRFToken": attempt["token"]},
    )
    assert response.status_code == 200, response.get_json()
    session.rollback()
    assert session.scalars(
        select(Answer.value).where(Answer.attempt_id == attempt["id"])
    ).all() == [essay]


def test_a_form_post_with_text_that_cannot_be_stored_is_400(client, attempt, session):
    page = client.get(f"/attempt/{attempt['id']}").get_data(as_text=True)
    slot = attempt["slots"]["short_text"]
    response = client.post(
        f"/attempt/{attempt['id']}",
        data={
            "csrf_token": csrf_of(page),
            "seq": str(attempt["base"] + 1),
            f"present-{slot}": "1",
            f"slot-{slot}": "RMS\ufffeprop",
        },
    )
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Your answer contains a character that cannot be stored (position 4: U+FFFE" in body
    assert nothing_stored(session, attempt["id"])


def test_a_login_form_with_nul_is_400_before_anything_is_written(client, auth, users, session):
    token = auth.csrf("/login")
    response = client.post(
        "/login", data={"username": "alice\x00", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 400
    assert "The field 'username' contains a character that cannot be stored" in html.unescape(
        response.get_data(as_text=True)
    )
    session.rollback()
    # Not even a failed-login audit row: PostgreSQL would have refused the NUL there.
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


@pytest.mark.parametrize(
    "query",
    ["x=%00", "next=%EF%BF%BF", "%ED%A0%80=1&q=%F4%8F%BF%BE"],
    ids=["NUL value", "U+FFFF value", "U+10FFFE"],
)
def test_a_query_string_with_text_that_cannot_be_stored_is_400(client, query):
    response = client.get(f"/login?{query}")
    assert response.status_code == 400
    assert "contains a character that cannot be stored" in response.get_data(as_text=True)


def test_a_json_error_for_api_clients_and_a_page_for_browsers(client, attempt):
    api = client.get(f"/api/attempts/{attempt['id']}?x=%00")
    assert api.status_code == 400 and api.is_json
    assert "cannot be stored" in api.get_json()["error"]
    page = client.get(f"/attempt/{attempt['id']}?x=%00")
    assert page.status_code == 400 and page.mimetype == "text/html"


# ---------------------------------------------------------------- JSON depth


def test_100000_open_brackets_are_400_not_a_recursion_error(client, attempt, session):
    response = put_raw(client, attempt, "[" * 100_000, attempt["slots"]["short_text"])
    assert response.status_code == 400
    assert response.get_json()["error"] == (
        f"The request is nested more than {MAX_JSON_DEPTH} levels deep."
    )
    closed = put_raw(client, attempt, "[" * 50_000 + "]" * 50_000, attempt["slots"]["essay"])
    assert closed.status_code == 400 and "nested" in closed.get_json()["error"]
    assert nothing_stored(session, attempt["id"])


def test_the_depth_limit_counts_levels_exactly(client, attempt):
    def nested(levels: int) -> str:
        # {"value": [[...]]}: the object is one level, each list another.
        return '{"value": ' + "[" * (levels - 1) + "]" * (levels - 1) + ', "seq": 1}'

    at_limit = put_raw(client, attempt, nested(MAX_JSON_DEPTH), attempt["slots"]["essay"])
    assert at_limit.status_code == 400  # the view refuses the shape, not the guard
    assert "nested" not in at_limit.get_json()["error"]
    beyond = put_raw(client, attempt, nested(MAX_JSON_DEPTH + 1), attempt["slots"]["essay"])
    assert beyond.status_code == 400
    assert "nested more than" in beyond.get_json()["error"]


def test_brackets_inside_strings_are_text_not_depth(client, attempt):
    essay = "[" * 1000 + '\\"{' * 100 + "]"
    response = put_raw(
        client,
        attempt,
        '{"value": "' + essay + '", "seq": ' + str(attempt["base"] + 1) + "}",
        attempt["slots"]["essay"],
    )
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    ("raw", "deep"),
    [
        (b"[" * 33, True),
        (b"[" * 32 + b"]" * 32, False),
        (b'["' + b"[" * 100 + b'"]', False),
        (b'["\\"' + b"[" * 100 + b'"]', False),
        (b'["\\\\"' + b"[" * 100, True),  # the escape ends before the quote: brackets count
        (b'{"a":' * 33, True),
        (b"[]" * 100_000, False),
        (b'"' + b'\\"' * 100_000, False),  # an unterminated string: scanned once, not n^2
        (json.dumps({"v": [[["x"]]] * 40}).encode(), False),
    ],
)
def test_depth_is_measured_on_the_raw_bytes(raw, deep):
    from quizapp.web.input_guard import MAX_JSON_DEPTH as limit
    from quizapp.web.input_guard import json_too_deep

    assert limit == MAX_JSON_DEPTH
    assert json_too_deep(raw) is deep


# ---------------------------------------------------------------- login ?next=


@pytest.mark.parametrize(
    "next_value",
    [
        "%2F%0D%0ASet-Cookie:%20x=1",  # issue 12: CR LF in next made a correct login a 500
        "/%09/evil.example",
        "/%5Cevil.example",  # /\evil.example: browsers read it as //evil.example
        "//evil.example",
        "https://evil.example/",
        "/%20x",
    ],
)
def test_an_unsafe_next_is_ignored_and_the_login_goes_to_the_default_page(
    client, auth, users, next_value
):
    token = auth.csrf("/login")
    response = client.post(
        f"/login?next={next_value}",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_a_safe_next_is_still_followed(client, auth, users):
    token = auth.csrf("/login")
    response = client.post(
        "/login?next=%2Fquiz%2F1%3Fx%3D1",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/quiz/1?x=1"


# ---------------------------------------------------------------- page parameters


@pytest.mark.parametrize(
    "page", ["99999999999999999999", "9" * 5000, "-5", "0", "abc", "", "2", "1e9"]
)
def test_an_absurd_roster_page_shows_a_real_page(client, auth, users, page):
    auth.login("staff")
    response = client.get(f"/staff/roster/?page={page}")
    assert response.status_code == 200
    assert "alice" in response.get_data(as_text=True)  # one page: every page is the last


def test_an_absurd_preview_seed_is_clamped(client, auth, users, sample_bank):
    auth.login("staff")
    for seed in ("99999999999999999999", "9" * 5000, "-1", "x"):
        response = client.get(f"/staff/preview/question/cnn-output-width?seed={seed}")
        assert response.status_code == 200, seed


# ---------------------------------------------------------------- file permissions


def test_the_instance_folder_and_sqlite_files_are_private(tmp_path, monkeypatch):
    from quizapp import create_app
    from quizapp.cli import migrate

    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    monkeypatch.setenv("QUIZAPP_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("QUIZAPP_DATABASE_URL", raising=False)
    monkeypatch.delenv("QUIZAPP_SECRET_KEY", raising=False)
    old_umask = os.umask(0o022)
    try:
        app = create_app()
        migrate(app.config["QUIZAPP_DATABASE_URL"])
        database = app.extensions["quizapp_db"]
        with database.engine.begin() as conn:  # WAL mode: -wal and -shm appear
            conn.execute(text("SELECT count(*) FROM users"))
            files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in instance.iterdir()}
        database.engine.dispose()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert {"quizapp.db", "quizapp.db-wal", "quizapp.db-shm", "secret_key"} <= set(files)
    assert all(mode == 0o600 for mode in files.values()), files


def test_an_existing_world_readable_database_is_tightened(tmp_path, monkeypatch):
    from quizapp import create_app

    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    database = instance / "quizapp.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    monkeypatch.setenv("QUIZAPP_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("QUIZAPP_DATABASE_URL", raising=False)
    app = create_app()
    app.extensions["quizapp_db"].engine.dispose()
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


# ---------------------------------------------------------------- the API's documented limits

SPEC = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.yaml"


def _save_operation() -> tuple[dict, dict]:
    from ruamel.yaml import YAML

    spec = YAML(typ="safe").load(SPEC.read_text(encoding="utf-8"))
    return spec, spec["paths"]["/api/attempts/{attempt_id}/answers/{slot}"]["put"]


def test_the_openapi_file_states_exactly_the_servers_limits(tmp_path, monkeypatch):
    from quizapp.config import settings_from_env
    from quizapp.domain.text_checks import is_forbidden
    from quizapp.web import api
    from quizapp.web.input_guard import MAX_JSON_DEPTH as guard_depth

    spec, save = _save_operation()
    body = save["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    seq = schema["properties"]["seq"]
    assert (seq["minimum"], seq["maximum"]) == (0, api.MAX_SEQ) == (0, 2**53 - 1)
    answer_text = spec["components"]["schemas"]["AnswerText"]
    value = schema["properties"]["value"]["oneOf"]
    assert value[0] == {"$ref": "#/components/schemas/AnswerText"}
    assert value[1]["maxItems"] == api.MAX_VALUES
    assert value[1]["items"] == {"$ref": "#/components/schemas/AnswerText"}
    assert answer_text["maxLength"] == api.MAX_VALUE_CHARS
    monkeypatch.delenv("QUIZAPP_MAX_BODY_BYTES", raising=False)
    assert body["x-max-body-bytes"] == settings_from_env(tmp_path)["MAX_CONTENT_LENGTH"]
    assert f"nested more than {guard_depth} levels" in spec["info"]["description"]
    assert guard_depth == MAX_JSON_DEPTH
    assert {"400", "413", "422"} <= set(save["responses"])
    # The pattern and the server's rule agree on every code point, both ways.
    pattern = re.compile(answer_text["pattern"])
    disagree = [
        hex(c) for c in range(0x110000) if (pattern.search("a" + chr(c)) is None) != is_forbidden(c)
    ]
    assert disagree == []


def _limit_cases() -> list[tuple[str, str, object, str]]:
    """(name, question type, value or seq, expected) at each bound and one beyond it."""
    from quizapp.domain.text_checks import FORBIDDEN_RANGES, is_forbidden
    from quizapp.web.api import MAX_SEQ, MAX_VALUE_CHARS, MAX_VALUES

    cases = [
        ("seq 0", "seq", 0, "accepted"),
        ("seq 2^53-1", "seq", MAX_SEQ, "accepted"),
        ("seq 2^53", "seq", MAX_SEQ + 1, "'seq' must be a whole number from 0 to"),
        ("seq -1", "seq", -1, "'seq' must be a whole number from 0 to"),
        (f"{MAX_VALUES} values", "multiple_response", ["A"] * MAX_VALUES, "passed on"),
        (f"{MAX_VALUES + 1} values", "multiple_response", ["A"] * (MAX_VALUES + 1), f"At most {MAX_VALUES} values"),
        (f"{MAX_VALUE_CHARS} characters", "essay", "x" * MAX_VALUE_CHARS, "passed on"),
        (f"{MAX_VALUE_CHARS + 1} characters", "essay", "x" * (MAX_VALUE_CHARS + 1), f"at most {MAX_VALUE_CHARS} characters"),
    ]  # fmt: skip
    for first, last, _why in FORBIDDEN_RANGES:
        for code_point in {first - 1, first, last, last + 1}:
            if 0 <= code_point < 0x110000:
                expected = "cannot be stored" if is_forbidden(code_point) else "accepted"
                cases.append((f"U+{code_point:04X}", "short_text", f"a{chr(code_point)}", expected))
    return cases


def test_each_limit_at_the_bound_is_accepted_and_one_beyond_is_refused(client, attempt, session):
    seq = attempt["base"]
    for name, kind, sent, expected in _limit_cases():
        seq += 1
        body = {"value": ["A"], "seq": sent} if kind == "seq" else {"value": sent, "seq": seq}
        slot = attempt["slots"]["multiple_response" if kind == "seq" else kind]
        response = client.put(
            f"/api/attempts/{attempt['id']}/answers/{slot}",
            json=body,
            headers={"X-CSRFToken": attempt["token"]},
        )
        error = (response.get_json() or {}).get("error", "")
        if expected == "accepted":
            assert response.status_code == 200, (name, error)
        elif expected == "passed on":
            # Within the API's bound, so the question type decides: it may have its own,
            # smaller, bound (an essay's length, a choice's number of options), answered
            # with 422; the API's own refusal is a 400.
            assert response.status_code in (200, 422), (name, response.status_code, error)
        else:
            assert response.status_code == 400, (name, response.status_code)
            assert expected in error, (name, error)


def test_the_body_limit_at_the_bound_is_read_and_one_byte_beyond_is_413(client, attempt, app):
    limit = app.config["MAX_CONTENT_LENGTH"]
    _spec, save = _save_operation()
    assert save["requestBody"]["x-max-body-bytes"] == limit
    head = '{"value": "' + "x" * 1000 + '", "seq": ' + str(attempt["base"] + 1) + "}"
    at_limit = head + " " * (limit - len(head))  # JSON allows trailing whitespace
    slot = attempt["slots"]["essay"]
    assert len(at_limit.encode()) == limit
    assert put_raw(client, attempt, at_limit, slot).status_code == 200
    beyond = put_raw(client, attempt, at_limit + " ", slot)
    assert beyond.status_code == 413 and beyond.is_json
