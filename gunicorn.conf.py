"""gunicorn settings for quizapp (the production path; `make run` uses them too).

Sync workers: measured on this kind of machine, threaded workers gave no more
throughput and a worse p99 on writes (DESIGN.md). Override with GUNICORN_* variables.
"""

import multiprocessing
import os

workers = int(os.environ.get("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count())))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
