"""Errors a service raises for the web layer to turn into a message and a status code."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        # Facts a client acts on (e.g. `recorded`: a refused answer was kept as evidence).
        self.details = details


class NotFound(ServiceError):
    """Also used for another student's attempt: its existence is not confirmed."""

    status = 404


class Conflict(ServiceError):
    """The request is well formed but the state forbids it (window closed, time over)."""

    status = 409


class InvalidInput(ServiceError):
    status = 400


class Unprocessable(InvalidInput):
    """Well-formed, but a value is beyond a documented bound (a number too large to
    grade, an answer too long): 422, with the bound in the message."""

    status = 422
