"""The gunicorn worker's heartbeat, beaten by long streamed responses.

gunicorn's master kills a worker that has not touched its heartbeat (`worker.notify`,
a utime on the worker's temporary file) for `timeout` seconds: "WORKER TIMEOUT". A sync
worker touches it only between requests, so a long download to a slow client (a
responses CSV of several MB at 100 KB/s) was cut at the timeout and still logged as 200.

gunicorn.conf.py's `post_worker_init` hook calls `install(worker.notify)` in each worker;
a streamed response calls `beat()` as it makes progress (a CSV row, a progress step),
which touches the heartbeat at most once every `INTERVAL` seconds. Outside gunicorn
(`flask run`, the test client, the CLI) nothing is installed and `beat()` does nothing.

What this does not cover, on purpose: a client that stops reading entirely leaves the
worker blocked in send() with no row going out, so no beat, and the worker is still
killed at the timeout. That is the timeout doing its job (a stuck worker is freed);
only a response that makes progress is kept alive.

Thread- and process-safe: `install` runs in each worker after the fork, so every
process has its own; with gthread workers several threads may beat at once, which is
harmless: notify is a cheap, idempotent utime (WorkerTmp.notify), and a race on
`_next` only means one extra or one skipped touch within the same second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress

INTERVAL = 1.0  # seconds between touches: well under any sensible timeout, cheap

_notify: Callable[[], object] | None = None
_next = 0.0


def install(notify: Callable[[], object] | None) -> None:
    """Beat with `notify` from now on (None: back to doing nothing)."""
    global _notify, _next
    _notify = notify
    _next = 0.0


def beat() -> None:
    """Tell the server this worker is alive and making progress (throttled: call it as
    often as you like, e.g. once per row)."""
    global _next
    notify = _notify
    if notify is None:
        return
    moment = time.monotonic()
    if moment < _next:
        return
    _next = moment + INTERVAL
    # The heartbeat file gone (the worker shutting down) must not break the response;
    # the master decides about the worker as it would anyway.
    with suppress(OSError):
        notify()
