"""The gunicorn worker's heartbeat, beaten by long streamed responses.

gunicorn's master kills a worker that has not touched its heartbeat (`worker.notify`,
a utime on the worker's temporary file) for `timeout` seconds: "WORKER TIMEOUT". A sync
worker touches it only between requests, so a long download to a slow client (a
responses CSV of several MB at 100 KB/s) was cut at the timeout and still logged as 200.

gunicorn.conf.py's `post_worker_init` hook calls `install(worker.notify)` in each worker.
Then:

- `beat()` touches the heartbeat (at most once every `INTERVAL` seconds): call it on
  every bit of progress (a progress step of a regrade);
- `paced(chunks, environ)` wraps a streamed body: it beats for each chunk, and before
  handing a chunk to gunicorn it waits until the connection can take it, beating while
  the client drains the send queue. Beating between chunks alone is not enough: the
  kernel's send buffer grows to megabytes (tcp_wmem), and a blocked send() wakes only
  once a third of it has drained, so at 200 KB/s one send() blocked for longer than a
  3 s timeout (measured: cut after 3 s with 4 MB queued). Progress is what the kernel
  says: the bytes still queued on the socket (SIOCOUTQ) went down.

Outside gunicorn (`flask run`, the test client, the CLI) nothing is installed: `beat()`
does nothing and `paced` passes the chunks through. Without SIOCOUTQ (not Linux) or the
socket (another server), `paced` only beats between chunks.

What this does not cover, on purpose: a client that stops reading entirely leaves the
queue as it is, so nothing beats and the worker is killed at the timeout. That is the
timeout doing its job (a stuck worker is freed); only a response that makes progress is
kept alive.

Thread- and process-safe: `install` runs in each worker after the fork, so every
process has its own; with gthread workers several threads may beat at once, which is
harmless: notify is a cheap, idempotent utime (WorkerTmp.notify), and a race on
`_next` only means one extra or one skipped touch within the same second.
"""

from __future__ import annotations

import fcntl
import select
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from typing import Any

INTERVAL = 1.0  # seconds between touches: well under any sensible timeout, cheap
_OUTQ = 0x5411  # SIOCOUTQ (= TIOCOUTQ) on Linux: bytes queued on a socket, not yet acked

_notify: Callable[[], object] | None = None
_next = 0.0


def install(notify: Callable[[], object] | None) -> None:
    """Beat with `notify` from now on (None: back to doing nothing)."""
    global _notify, _next
    _notify = notify
    _next = 0.0


def beat(*, now: bool = False) -> None:
    """Tell the server this worker is alive and making progress (throttled: call it as
    often as you like, e.g. once per row; `now` skips the throttle)."""
    global _next
    notify = _notify
    if notify is None:
        return
    moment = time.monotonic()
    if moment < _next and not now:
        return
    _next = moment + INTERVAL
    # The heartbeat file gone (the worker shutting down) must not break the response;
    # the master decides about the worker as it would anyway.
    with suppress(OSError):
        notify()


def paced(chunks: Iterator[str], environ: Mapping[str, Any]) -> Iterator[str]:
    """`chunks`, each handed on only when the connection can take it without blocking,
    beating while the client drains what is queued (see the module's docstring). Closing
    this closes `chunks`."""
    connection = environ.get("gunicorn.socket")
    fd = connection.fileno() if connection is not None and _notify is not None else -1
    poller = None
    if fd >= 0 and _queued(fd) is not None:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
    try:
        for chunk in chunks:
            beat()
            if poller is not None:
                _wait_until_writable(poller, fd)
            yield chunk
        if poller is not None:
            # gunicorn writes the last (chunked) piece after this: it must not block.
            _wait_until_writable(poller, fd)
        # gunicorn lingers up to 2 s closing the connection: start it with a full timeout.
        beat(now=True)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _wait_until_writable(poller: select.poll, fd: int) -> None:
    """Return when the socket takes more data; beat whenever the queue moved meanwhile.
    A client that reads nothing moves nothing: no beat, and the master's timeout ends it."""
    if poller.poll(0):  # the usual case: room in the send buffer (or the client is gone)
        return
    last = _queued(fd)
    while not poller.poll(int(INTERVAL * 1000)):
        queued = _queued(fd)
        if queued != last:
            last = queued
            beat()


def _queued(fd: int) -> int | None:
    """Bytes written to the socket and not yet taken by the client (None: unknown)."""
    try:
        (count,) = struct.unpack("i", fcntl.ioctl(fd, _OUTQ, b"\0\0\0\0"))
    except OSError:
        return None
    return int(count)
