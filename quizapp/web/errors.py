"""One place that maps service errors and HTTP errors to pages or JSON."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from quizapp.services.errors import ServiceError
from quizapp.web import progress

_TITLES = {
    400: "Bad request",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Not possible now",
    413: "Too large",
    422: "Answer not accepted",
    429: "Too many requests",
    500: "Something went wrong",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json or progress.wanted()


def error_response(status: int, message: str, **details: Any) -> ResponseReturnValue:
    if progress.wanted():
        # A page following a long operation's progress reads one error line.
        return progress.error_line(message, status)
    if wants_json():
        return jsonify(error=message, status=status, **details), status
    return render_template(
        "error.html", status=status, title=_TITLES.get(status, "Error"), message=message
    ), status


def init_app(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> ResponseReturnValue:
        return error_response(exc.status, exc.message, **exc.details)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> ResponseReturnValue:
        return error_response(
            400,
            "This form has expired or was not sent by this site. "
            "Go back, reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        messages = {
            403: "You do not have permission to see this page.",
            404: "There is nothing here. Check the address, or go back to your quizzes.",
            413: "What you sent is too large.",
        }
        return error_response(status, messages.get(status, exc.description or ""))
