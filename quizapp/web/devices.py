"""Device cookies (OWASP): a browser that has signed in to an account before carries a
signed cookie naming that account and a random device id, so failures from elsewhere
never slow its owner down. One cookie holds a few accounts (a shared family laptop); it
is signed with the app's secret key, so it cannot be forged, and it is only a hint to
the throttle, never a credential.
"""

from __future__ import annotations

import secrets

from flask import Request, current_app
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.wrappers import Response

COOKIE = "quizapp_device"
MAX_ACCOUNTS = 5
MAX_AGE_SECONDS = 365 * 24 * 3600


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="quizapp-device")


def _entries(request: Request) -> list[list[str]]:
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 4096:
        return []
    try:
        data = _serializer().loads(raw)
    except BadSignature:
        return []
    if not isinstance(data, list):
        return []
    return [e for e in data if isinstance(e, list) and len(e) == 2][:MAX_ACCOUNTS]


def device_for(request: Request, account: str) -> str | None:
    """The device id this browser holds for `account`, if it has signed in to it before."""
    return next((device for name, device in _entries(request) if name == account), None)


def remember(request: Request, response: Response, account: str) -> None:
    """After a successful sign-in: this browser is a known device of `account`."""
    entries = [e for e in _entries(request) if e[0] != account]
    device = device_for(request, account) or secrets.token_urlsafe(16)
    entries = [[account, device], *entries][:MAX_ACCOUNTS]
    response.set_cookie(
        COOKIE,
        _serializer().dumps(entries),
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        samesite="Lax",
    )
