"""The web layer: blueprints, forms, templates; thin views that call one service each."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

# The app's session, clock, grace and zone live in quizapp.context (shared with the
# command line); re-exported here for the views.
from quizapp.context import course_zone, db_session, grace, now

__all__ = ["course_zone", "db_session", "grace", "now", "init_web", "check_access_rules"]


class IdConverter(IntegerConverter):
    """Database ids in URLs: positive and within a 32-bit integer column, so an absurd id
    is a plain 404 from routing rather than an overflow in the database driver."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=2**31 - 1)


def init_web(app: Flask) -> None:
    from quizapp.web import (
        api,
        assets,
        auth,
        bank_upload,
        errors,
        filters,
        input_guard,
        invitations,
        lti,
        lti_admin,
        lti_deep_linking,
        lti_scores,
        marking,
        monitor,
        preview,
        progress,
        release,
        roster,
        security,
        sso,
        staff,
        static_files,
        stats,
        student,
        throttle,
    )  # fmt: skip

    app.url_map.converters["id"] = IdConverter
    security.init_app(app)
    filters.init_app(app)
    errors.init_app(app)
    input_guard.init_app(app)
    progress.init_app(app)
    static_files.init_app(app)
    blueprints = (
        auth, student, api, staff, preview, assets, stats, roster, monitor, marking, release,
        throttle,
        invitations,
        sso,
        bank_upload,
        lti,
        lti_admin,
        lti_deep_linking,
        lti_scores,
    )  # fmt: skip
    for module in blueprints:
        app.register_blueprint(module.bp)


def check_access_rules(app: Flask) -> None:
    """Fail closed at start-up: every view must say who may reach it (security.py)."""
    from quizapp.web.security import ACCESS_LEVELS

    for endpoint, view in app.view_functions.items():
        if endpoint == "static":
            continue
        if getattr(view, "access", None) not in ACCESS_LEVELS:
            raise RuntimeError(
                f"view {endpoint!r} has no access rule: decorate it with public, "
                "user_required or staff_required"
            )
