"""What the web layer and the command line both need from the running app: its database
session, its clock, the grace period and the course's zone. One module both import, so
the command line never imports the web layer (issue 18) and neither decides these twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy.orm import Session

from quizapp.db import Database


def db_session() -> Session:
    database: Database = current_app.extensions["quizapp_db"]
    return database.session


def now() -> datetime:
    """The server's current time (UTC, aware): the only clock that decides anything."""
    moment: datetime = current_app.config["QUIZAPP_CLOCK"]()
    return moment


def grace() -> timedelta:
    period: timedelta = current_app.config["QUIZAPP_GRACE"]
    return period


def course_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["QUIZAPP_TIMEZONE"])
