"""gunicorn settings for quizapp (the production path; `make run` uses them too).

Sync workers: measured on this kind of machine, threaded workers gave no more
throughput and a worse p99 on writes (DESIGN.md); how many depends on the database
(default_workers). Override with GUNICORN_* variables.

`timeout` is how long a worker may go without touching its heartbeat. A sync worker
touches it between requests only, so long streamed responses (CSV exports, the regrade
and roster progress streams) beat it themselves through quizapp/heartbeat.py, installed
below in every worker: they wait for room on the connection and beat while the client
takes the data, so a download to a slow client is no longer cut at `timeout` while it
makes progress. A client that stops reading altogether still gets its worker killed at
`timeout` (nothing moves, so nothing beats).
"""

import multiprocessing
import os
from typing import Any


def default_workers(database_url: str, cores: int) -> int:
    """Sync workers by the database kind (bench/README.md, "Workers"). PostgreSQL: two per
    core, since a worker waiting on the database leaves its core to another (on 2 cores,
    1 → 2 → 4 workers saved 161 → 216 → 262 times a second). SQLite: one per core, at
    least 2: every write waits for the one writer, so more workers only queue more
    requests behind the lock (4 workers on 2 cores saved no faster, with a worse tail)."""
    if database_url.startswith("postgresql"):
        return 2 * max(1, cores)
    return max(2, cores)


workers = int(
    os.environ.get(
        "GUNICORN_WORKERS",
        default_workers(os.environ.get("QUIZAPP_DATABASE_URL", ""), multiprocessing.cpu_count()),
    )
)
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")


def post_worker_init(worker: Any) -> None:
    """In each worker, after the app is loaded: streamed responses beat its heartbeat."""
    from quizapp import heartbeat

    heartbeat.install(worker.notify)
