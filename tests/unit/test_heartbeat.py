"""quizapp/heartbeat.py: streamed responses touch gunicorn's worker heartbeat as they make
progress (at most once a second), and nothing happens outside gunicorn.

The real thing (a gunicorn with a 3 s timeout and a slow client) is
tests/fault/test_slow_download.py."""

from __future__ import annotations

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
    assert 9 <= len(touched_at_row) <= 11, touched_at_row
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
    assert len(touched) == 15, touched  # 15 s of work, a touch a second
    assert touched == list(range(1, 31, 2))
