"""quizapp: timed online quizzes for university courses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from quizapp.config import private_sqlite_files, settings_from_env
from quizapp.db import Database
from quizapp.models import utcnow


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application factory. `config` overrides settings from the environment."""
    instance = os.environ.get("QUIZAPP_INSTANCE_PATH")
    app = Flask(__name__, instance_path=str(Path(instance).resolve()) if instance else None)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(settings_from_env(Path(app.instance_path)))
    app.config["QUIZAPP_CLOCK"] = utcnow  # replaced by tests; rules never read the clock
    if config:
        app.config.update(config)

    private_sqlite_files(app.config["QUIZAPP_DATABASE_URL"])
    database = Database()
    database.init_app(app)

    from datetime import timedelta

    from quizapp.domain.throttle import ThrottlePolicy
    from quizapp.ratelimit import LoginThrottle, default_storage_uri

    config = app.config
    app.extensions["quizapp_login_throttle"] = LoginThrottle(
        config.get("QUIZAPP_RATELIMIT_STORAGE_URI")
        or default_storage_uri(config["QUIZAPP_DATABASE_URL"]),
        ThrottlePolicy(
            free_account_failures=int(config["QUIZAPP_LOGIN_FREE_FAILURES"]),
            max_account_delay=timedelta(seconds=int(config["QUIZAPP_LOGIN_MAX_DELAY_SECONDS"])),
            free_address_failures=int(config["QUIZAPP_LOGIN_ADDRESS_FREE_FAILURES"]),
            max_address_delay=timedelta(
                seconds=int(config["QUIZAPP_LOGIN_ADDRESS_MAX_DELAY_SECONDS"])
            ),
        ),
    )

    from quizapp.web import check_access_rules, init_web

    init_web(app)
    check_access_rules(app)

    if hops := app.config["QUIZAPP_TRUSTED_PROXIES"]:
        # Behind nginx every request comes from the proxy: without this the per-address
        # login limit would count a whole cohort as one address and the answer log would
        # record the proxy. Only the given number of hops is trusted, so a student cannot
        # choose their address with a forged X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from quizapp.cli import register_commands

    register_commands(app)
    return app
