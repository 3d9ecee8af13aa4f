"""The quizapp app as it was before quizapp/heartbeat.py, for the control case of
tests/fault/test_slow_download.py: `heartbeat.install` is replaced by a function that
installs nothing, so gunicorn.conf.py's post_worker_init hook leaves `beat()` a no-op
and a sync worker touches its heartbeat only between requests. gunicorn loads it as
`tests.fault.no_heartbeat_app:create_app()`. Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    from quizapp import create_app as real_create_app
    from quizapp import heartbeat

    heartbeat.install = lambda notify: None
    heartbeat.install(None)
    return real_create_app(config)
