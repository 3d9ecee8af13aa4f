"""A long CSV download to a slow client is not cut by gunicorn's worker timeout (issue 17).

A real gunicorn (gunicorn.conf.py, sync workers) with GUNICORN_TIMEOUT=3, a quiz with
thousands of finished attempts (one real attempt, answered and graded, bulk-copied), and
a staff client that reads /staff/quiz/<id>/responses.csv slowly: small receive buffer,
small chunks, sleeps, so the worker spends several timeouts blocked on the client.

1. control: the same server without the heartbeat (tests/fault/no_heartbeat_app.py, the
   app as it was): the master kills the worker ("WORKER TIMEOUT") and the download is
   cut short. This proves the download really outlasts the timeout (the kernel's buffers
   do not swallow the whole CSV), so that the second case means something;
2. the real app: every row arrives (X-Total-Rows rows after the header, each with every
   column, the last line complete) and no worker timed out.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tests.fault.harness import (
    GRACE_SECONDS,
    PASSWORD,
    AppServer,
    _form_token,
    prepare_database,
    server_env,
)

TIMEOUT = 3  # GUNICORN_TIMEOUT, seconds
# x 3 slots: 42,000 rows, 8 MB of CSV: twice what the kernel's buffers take in at once
# (tcp_wmem's 4 MB for the server's autotuned send buffer), so the worker spends most of
# the download waiting for the client
ATTEMPTS = 14_000
RATE = 400_000  # bytes a second the client reads: 20 s for the whole CSV
CHUNK = 16_384
RECEIVE_BUFFER = 32_768  # the client's SO_RCVBUF: no autotuned multi-MB window on loopback
STAFF = "examiner"


def big_quiz(url: str, tmp_path: Path) -> int:
    """A staff account, and ATTEMPTS students who each finished the quiz: the first
    through the services (a real layout, two answers, graded), the rest copies of its
    attempt, answers and marks."""
    from quizapp.db import make_engine
    from quizapp.models import Answer, Attempt, FinishReason, Mark, Role, User
    from quizapp.services.attempts import finalise_attempt, start_attempt
    from quizapp.services.users import hash_password

    quiz_id, names = prepare_database(url, tmp_path / "bank", ATTEMPTS)
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            session.add(
                User(
                    username=STAFF,
                    name="Slow Examiner",
                    role=Role.STAFF,
                    password_hash=hash_password(PASSWORD),
                )
            )
            users = session.scalars(
                select(User.id).where(User.username.in_(names)).order_by(User.id)
            ).all()
            first_user = session.get(User, users[0])
            assert first_user is not None
            grace = timedelta(seconds=GRACE_SECONDS)
            first = start_attempt(session, quiz_id, first_user, now - timedelta(minutes=4), grace)
            session.execute(
                insert(Answer),
                [
                    {
                        "attempt_id": first.id,
                        "slot": slot,
                        "value": value,
                        "seq": 1,
                        "saved_at": now,
                    }
                    for slot, value in ((1, "2"), (2, "5"))
                ],
            )
            session.commit()
            assert finalise_attempt(session, first, now, FinishReason.SUBMITTED)

            def columns(table, row, leave_out):  # type: ignore[no-untyped-def]
                return {c.key: row[c.key] for c in table.columns if c.key not in leave_out}

            attempts, answers, marks = Attempt.__table__, Answer.__table__, Mark.__table__
            one = session.execute(select(attempts).where(attempts.c.id == first.id)).mappings()
            attempt = columns(attempts, one.one(), {"id", "user_id"})
            first_answers = [
                columns(answers, row, {"id", "attempt_id"})
                for row in session.execute(
                    select(answers).where(answers.c.attempt_id == first.id)
                ).mappings()
            ]
            first_marks = [
                columns(marks, row, {"id", "attempt_id"})
                for row in session.execute(
                    select(marks).where(marks.c.attempt_id == first.id)
                ).mappings()
            ]
            assert len(first_marks) == 3, first_marks
            ids = session.scalars(
                insert(Attempt).returning(Attempt.id),
                [{**attempt, "user_id": user} for user in users[1:]],
            ).all()
            session.execute(
                insert(answers), [{**a, "attempt_id": i} for i in ids for a in first_answers]
            )
            session.execute(
                insert(marks), [{**m, "attempt_id": i} for i in ids for m in first_marks]
            )
            session.commit()
    finally:
        engine.dispose()
    return quiz_id


def staff_client(base_url: str) -> httpx.Client:
    transport = httpx.HTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)]
    )
    client = httpx.Client(
        base_url=base_url, transport=transport, timeout=httpx.Timeout(20.0, connect=5.0)
    )
    form = client.get("/login").text
    done = client.post(
        "/login",
        data={"csrf_token": _form_token(form), "username": STAFF, "password": PASSWORD},
    )
    assert done.status_code == 302, (done.status_code, done.text[:300])
    return client


@dataclass
class Download:
    status: int
    total_rows: int  # X-Total-Rows
    body: bytes
    seconds: float
    error: str  # why the transfer ended early ("" if it did not)

    def rows(self) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.body.decode("utf-8-sig"), newline="")))


def slow_download(
    base_url: str, quiz_id: int, hurry: Callable[[], bool] = lambda: False
) -> Download:
    """Read the responses CSV at about RATE bytes a second, CHUNK bytes at a time (at
    full speed once `hurry()` says so: the control case, once the worker is gone)."""
    body = bytearray()
    error = ""
    started = time.monotonic()
    client = staff_client(base_url)
    try:
        with client.stream("GET", f"/staff/quiz/{quiz_id}/responses.csv") as response:
            total = int(response.headers.get("X-Total-Rows", "-1"))
            try:
                for chunk in response.iter_raw(CHUNK):
                    body += chunk
                    if not hurry():
                        time.sleep(len(chunk) / RATE)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            status = response.status_code
    finally:
        client.close()
    return Download(status, total, bytes(body), time.monotonic() - started, error)


def serve(name: str, env: dict[str, str], tmp_path: Path, app: str, processes) -> AppServer:  # type: ignore[no-untyped-def]
    server = AppServer(name, env, tmp_path / f"{name}.log", app=app)
    processes.append(server)
    server.start()
    return server


def test_a_slow_client_gets_every_row_of_a_long_csv(tmp_path, processes, summary) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'slow.db'}"
    t0 = time.monotonic()
    quiz_id = big_quiz(url, tmp_path)
    prepared = time.monotonic() - t0
    env = {**server_env(url, tmp_path), "GUNICORN_TIMEOUT": str(TIMEOUT)}

    # 1. control: without the heartbeat, the worker is killed mid-download.
    control = serve(
        "no-heartbeat", env, tmp_path, "tests.fault.no_heartbeat_app:create_app()", processes
    )
    cut = slow_download(
        control.url, quiz_id, hurry=lambda: "WORKER TIMEOUT" in control.log.read_text()
    )
    control.stop()
    cut_rows = max(0, len(cut.body.rstrip(b"\r\n").split(b"\r\n")) - 1)
    assert "WORKER TIMEOUT" in control.log.read_text(), (
        f"the control download was not cut ({cut.seconds:.1f} s, {len(cut.body):,} bytes): "
        "the test does not outlast the timeout, so it proves nothing"
    )
    assert cut.error and cut_rows < cut.total_rows, (cut.error, cut_rows, cut.total_rows)

    # 2. with the heartbeat: every row.
    server = serve("heartbeat", env, tmp_path, "quizapp:create_app()", processes)
    whole = slow_download(server.url, quiz_id)
    log = server.log.read_text()
    assert whole.status == 200
    assert not whole.error, (
        f"cut after {whole.seconds:.1f} s, {len(whole.body):,} bytes: {whole.error}"
    )
    assert "WORKER TIMEOUT" not in log, server.tail()
    assert whole.seconds >= 3 * TIMEOUT, f"only {whole.seconds:.1f} s: not a slow download"
    assert whole.body.endswith(b"\r\n"), whole.body[-200:]
    rows = whole.rows()
    assert len(rows) == whole.total_rows + 1 == 3 * ATTEMPTS + 1, (len(rows), whole.total_rows)
    assert all(len(row) == len(rows[0]) for row in rows), "a row with missing columns"
    assert rows[-1][0] == f"fault{ATTEMPTS - 1:03d}", rows[-1]

    summary(
        f"slow download (gunicorn timeout {TIMEOUT} s, client {RATE // 1000} KB/s, "
        f"{len(whole.body) / 1e6:.1f} MB, {whole.total_rows:,} rows; data {prepared:.1f} s): "
        f"without heartbeat cut at {cut.seconds:.1f} s after {cut_rows:,} rows "
        f"({len(cut.body) / 1e6:.2f} MB, {cut.error.split(':')[0]}); "
        f"with heartbeat {len(rows) - 1:,} of {whole.total_rows:,} rows in {whole.seconds:.1f} s"
    )
