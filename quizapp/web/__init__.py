"""The web layer: blueprints, forms, templates; thin views that call one service each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy.orm import Session

from quizapp.db import Database


def db_session() -> Session:
    database: Database = current_app.extensions["quizapp_db"]
    return database.session


def now() -> datetime:
    """The server's current time (UTC, aware): the only clock that decides anything."""
    return current_app.config["QUIZAPP_CLOCK"]()


def grace() -> timedelta:
    return current_app.config["QUIZAPP_GRACE"]


def course_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["QUIZAPP_TIMEZONE"])


def init_web(app: Flask) -> None:
    from quizapp.web import api, auth, errors, filters, security, staff, student

    security.init_app(app)
    filters.init_app(app)
    errors.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(student.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(api.bp)
    from quizapp.web import assets, preview  # bank images; staff question preview

    app.register_blueprint(preview.bp)
    app.register_blueprint(assets.bp)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
