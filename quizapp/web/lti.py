"""LTI 1.3 endpoints (docs/lti.md): the login initiation, the launch, the tool's keys.

/lti/login (GET or POST, from the platform): checked against a registered platform
(services/lti.py `login_redirect`), a fresh state and nonce are kept in a signed cookie
bound to this browser, and the browser goes to the platform's authorization endpoint.
/lti/launch (POST, the platform's auto-submitted form): the state must be one this
browser holds (taken out: each works once), the ID token is verified and its nonce
spent (services/lti.py `launch`), the person signed in, and sent on: instructors with a
staff account to the staff pages, learners to the quiz named by the link's custom
parameter `quiz` (else the dashboard). /lti/jwks.json: the tool's public keys.

A refusal is audited (`lti_refused`) and is a page saying what happened and whom to ask:
400 for a broken or replayed exchange, 403 for a person quizapp does not let in, 503
when the platform's keys cannot be fetched. Never a 500.

The state cookie is `SameSite=None; Secure`: the launch is a cross-site POST, which
carries no `Lax` cookie. Browsers keep Secure cookies only over HTTPS (and on
localhost). NOT YET (next slice): the session cookie itself is still `Lax` and pages
refuse framing (`frame-ancestors 'none'`), so launches open in a new window, not in an
iframe; the iframe cookies and the third-party-cookie fallback come next.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from quizapp.services import lti as lti_service
from quizapp.services.lti import (
    LtiRefused,
    LtiSettings,
    PlatformKeys,
    login_redirect,
    record_refusal,
    tool_jwks,
)
from quizapp.web import db_session, now
from quizapp.web.security import csrf, public

bp = Blueprint("lti", __name__, url_prefix="/lti")

STATE_COOKIE = "quizapp_lti_state"
STATE_SALT = "quizapp-lti-state"
# Logins started in other tabs stay usable, a few and for a while only.
MAX_PENDING = 4
PENDING_SECONDS = 10 * 60

_TITLES = {
    400: "The launch from your VLE did not work",
    403: "You cannot sign in here",
    503: "quizapp cannot check this launch just now",
}


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    settings = LtiSettings.from_config(state.app.config)
    state.app.extensions["quizapp_lti"] = (settings, PlatformKeys(settings.jwks_refetch_seconds))


def _lti() -> tuple[LtiSettings, PlatformKeys]:
    configured: tuple[LtiSettings, PlatformKeys] = current_app.extensions["quizapp_lti"]
    return configured


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=STATE_SALT)


def _pending() -> list[dict[str, Any]]:
    raw = request.cookies.get(STATE_COOKIE, "")
    if not raw:
        return []
    try:
        value = _serializer().loads(raw, max_age=PENDING_SECONDS)
    except BadSignature:
        return []
    if not isinstance(value, list):
        return []
    moment = now().timestamp()
    return [
        p
        for p in value
        if isinstance(p, dict) and moment - float(p.get("at", 0)) <= PENDING_SECONDS
    ]


def _keep(response: Response, pending: list[dict[str, Any]]) -> Response:
    if not pending:
        response.delete_cookie(STATE_COOKIE, path="/lti/", secure=True, samesite="None")
        return response
    response.set_cookie(
        STATE_COOKIE,
        _serializer().dumps(pending[-MAX_PENDING:]),
        max_age=PENDING_SECONDS,
        path="/lti/",
        secure=True,
        httponly=True,
        samesite="None",
    )
    return response


def _refused(refusal: LtiRefused, **details: Any) -> tuple[str, int]:
    record_refusal(db_session(), refusal, now(), request.remote_addr or "", **details)
    return render_template(
        "auth/sso_refused.html",
        title=_TITLES.get(refusal.status, _TITLES[400]),
        message=refusal.message,
    ), refusal.status


# The platform may POST the login initiation from its own page: no CSRF token of ours.
# Nothing is changed here but this browser's state cookie; the platform then answers
# for whoever is signed in to it in this same browser (prompt=none).
@csrf.exempt
@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | tuple[str, int]:
    """The platform's third-party-initiated login: on to its authorization endpoint."""
    params = {k: v for k, v in request.values.items() if isinstance(v, str)}
    try:
        sent = login_redirect(db_session(), params, url_for("lti.launch", _external=True))
    except LtiRefused as refusal:
        return _refused(refusal)
    pending = _pending()
    pending.append(
        {
            "state": sent.state,
            "nonce": sent.nonce,
            "platform": sent.platform_id,
            "at": now().timestamp(),
        }
    )
    return _keep(redirect(sent.url), pending)


# The platform's auto-submitted form cannot carry a CSRF token of ours: the launch is
# protected instead by the ID token's signature (made by the platform's key, for our
# client id, with the nonce we sent) and by the state, which must be one this browser
# holds in its signed state cookie.
@csrf.exempt
@bp.route("/launch", methods=["POST"])
@public
def launch() -> Response | tuple[str, int]:
    """The platform posts the ID token (form_post) here."""
    from quizapp.web.auth import sign_in

    form = request.form
    state = form.get("state", "")
    pending = _pending()
    found = next((p for p in pending if state and p.get("state") == state), None)
    rest = [p for p in pending if p is not found]
    if error := form.get("error"):
        page = _refused(
            LtiRefused(
                "platform_error",
                f"The VLE could not complete the launch ({error[:100]}). Open the link in "
                "the VLE again; if it keeps happening, tell the course team.",
                error=error[:100],
                error_description=form.get("error_description", "")[:300],
            )
        )
        return _keep(_page(page), rest)
    if found is None:
        page = _refused(
            LtiRefused(
                "state_mismatch",
                "This launch does not belong to this browser, was already used, or took too "
                "long. Open the link in the VLE again.",
            )
        )
        return _keep(_page(page), rest)
    id_token = form.get("id_token", "")
    if not id_token:
        page = _refused(LtiRefused("id_token_missing", "The VLE sent no launch message."))
        return _keep(_page(page), rest)
    settings, keys = _lti()
    try:
        result = lti_service.launch(
            db_session(),
            id_token=id_token,
            platform_id=int(found.get("platform", 0)),
            expected_nonce=str(found.get("nonce", "")),
            keys=keys,
            settings=settings,
            now=now(),
            ip=request.remote_addr or "",
        )
    except LtiRefused as refusal:
        return _keep(_page(_refused(refusal)), rest)
    user, checked = result.user, result.launch
    sign_in(
        user,
        "lti",
        platform=result.platform_id,
        deployment=checked.deployment_id[:255],
        role=checked.role,
        resource_link=checked.resource_link_id[:255],
    )
    return _keep(redirect(_landing(user.is_staff, checked.role, checked.custom)), rest)


def _landing(is_staff: bool, role: str, custom: Any) -> str:
    if role == "instructor" and is_staff:
        return url_for("staff.index")
    key = custom.get("quiz") if hasattr(custom, "get") else None
    if isinstance(key, str) and key:
        quiz_id = lti_service.quiz_id_for_key(db_session(), key)
        if quiz_id is not None:
            return url_for("student.start_page", quiz_id=quiz_id)
    return url_for("student.dashboard")


def _page(page: tuple[str, int]) -> Response:
    body, status = page
    return Response(body, status=status, mimetype="text/html")


@bp.route("/jwks.json")
@public
def jwks() -> Response:
    """The tool's public keys (active ones: the signing key and the one before it)."""
    response = jsonify(tool_jwks(db_session()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
