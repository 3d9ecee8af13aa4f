"""quizapp/heartbeat.py: streamed responses touch gunicorn's worker heartbeat as they make
progress (at most once a second), and nothing happens outside gunicorn.

The real thing (a gunicorn with a 3 s timeout and a slow client) is
tests/fault/test_slow_download.py."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from quizapp import heartbeat
from quizapp.services.progress import Step


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTime]:
    fake = FakeTime()
    monkeypatch.setattr(heartbeat, "time", SimpleNamespace(monotonic=fake.monotonic))
    yield fake
    heartbeat.install(None)


def test_beat_does_nothing_outside_gunicorn(fake_time: FakeTime) -> None:
    heartbeat.install(None)
    heartbeat.beat()  # no notify installed: no error, nothing to call


def test_beat_touches_the_heartbeat_at_most_once_a_second(fake_time: FakeTime) -> None:
    touched: list[float] = []
    heartbeat.install(lambda: touched.append(fake_time.now))
    for _ in range(50):  # 50 calls 0.1 s apart: 5 seconds
        heartbeat.beat()
        fake_time.now += 0.1
    assert len(touched) == 5
    assert all(
        b - a >= heartbeat.INTERVAL - 1e-9 for a, b in zip(touched, touched[1:], strict=False)
    )


def test_a_failing_notify_does_not_break_the_response(fake_time: FakeTime) -> None:
    def gone() -> None:
        raise OSError("bad file descriptor")

    heartbeat.install(gone)
    heartbeat.beat()


def test_the_streamed_csv_beats_as_rows_flow(app, fake_time: FakeTime) -> None:  # type: ignore[no-untyped-def]
    """Each row takes 0.25 s (of the fake clock): the heartbeat is touched every fourth
    row or so while the download runs, not once at the end."""
    from quizapp.web.staff import _streamed_csv

    produced = 0
    touched_at_row: list[int] = []
    heartbeat.install(lambda: touched_at_row.append(produced))

    def rows(session: object) -> Iterator[list[object]]:
        nonlocal produced
        yield ["n"]
        for n in range(40):
            fake_time.now += 0.25
            produced += 1
            yield [n]

    with app.test_request_context("/staff/audit.csv"):
        response = _streamed_csv("x.csv", rows)
        body = iter(response.response)
        first_half = [next(body) for _ in range(22)]  # BOM, header, 20 rows
        assert 4 <= len(touched_at_row) <= 6, touched_at_row
        rest = list(body)
    assert "".join(first_half + rest).count("\r\n") == 41
    assert touched_at_row[-1] == 40, "a last touch when the body is done"
    assert 10 <= len(touched_at_row) <= 12, touched_at_row
    assert touched_at_row == sorted(touched_at_row)
    gaps = [b - a for a, b in zip(touched_at_row, touched_at_row[1:], strict=False)]
    assert max(gaps) <= 5, f"rows between touches: {gaps}"


def test_the_progress_stream_beats_on_every_step_shown_or_not(app, fake_time: FakeTime) -> None:  # type: ignore[no-untyped-def]
    """A regrade's steps come faster than the lines it shows (one per 1 %): the
    heartbeat follows the work, not the lines."""
    from quizapp.web.progress import NDJSON, Outcome, stream

    touched: list[int] = []
    done_so_far = 0
    heartbeat.install(lambda: touched.append(done_so_far))

    def work() -> Iterator[Step]:
        nonlocal done_so_far
        for done in range(1, 31):
            fake_time.now += 0.5
            done_so_far = done
            yield Step(done, 30)
        return Outcome.done("/staff/")

    with app.test_request_context("/staff/", headers={"Accept": NDJSON}):
        lines = list(stream(work()).response)
    assert lines[-1].startswith('{"done":true')
    # 15 s of work, a touch a second, and one when the answer is complete.
    assert touched == [*range(1, 31, 2), 30], touched


def test_paced_waits_for_room_beating_while_the_client_reads_not_while_it_stalls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real loopback connection with small buffers, written as gunicorn writes (one
    sendall per chunk): the client reads, stops for a second, then reads the rest. The
    heartbeat is touched while it reads, never while it stalls, and no sendall blocks
    for the stall (the wait happens in `paced`, where it can beat)."""
    monkeypatch.setattr(heartbeat, "INTERVAL", 0.1)
    touched: list[float] = []
    heartbeat.install(lambda: touched.append(time.monotonic()))
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    client.connect(listener.getsockname())
    server, _ = listener.accept()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32_768)
    chunk, count = "x" * 4096, 300  # 1.2 MB: far more than both buffers
    received = bytearray()
    stall: list[float] = []

    def read() -> None:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:  # about 800 KB/s
            received.extend(client.recv(4096))
            time.sleep(0.005)
        stall.append(time.monotonic())
        time.sleep(1.0)
        stall.append(time.monotonic())
        while data := client.recv(65536):
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    blocked = 0.0
    try:
        for piece in heartbeat.paced(iter([chunk] * count), {"gunicorn.socket": server}):
            start = time.monotonic()
            server.sendall(piece.encode())
            blocked = max(blocked, time.monotonic() - start)
        server.shutdown(socket.SHUT_WR)
        reader.join(10)
    finally:
        heartbeat.install(None)
        for sock in (server, client, listener):
            sock.close()
    assert len(received) == len(chunk) * count
    assert blocked < 0.5, f"a sendall blocked for {blocked:.2f} s"
    start, end = stall
    while_reading = [t for t in touched if t < start]
    while_stalled = [t for t in touched if start + 0.15 < t < end]
    assert len(while_reading) >= 3, touched
    assert while_stalled == [], (
        f"touched {len(while_stalled)} time(s) while the client read nothing"
    )
