"""LTI 1.3 endpoints (docs/lti.md): the login initiation, the launch, the tool's keys,
and the steps that make a launch work inside the VLE's page (an iframe).

/lti/login (GET or POST, from the platform): checked against a registered platform
(services/lti.py `login_redirect`), a fresh state and nonce are kept in a signed cookie
bound to this browser, and the browser goes to the platform's authorization endpoint.
/lti/launch (POST, the platform's auto-submitted form): the state must be one this
browser holds (taken out: each works once), the ID token is verified and its nonce
spent (services/lti.py `launch`), the person signed in, and sent on: instructors with a
staff account to the staff pages, learners to the quiz named by the link's custom
parameter `quiz` (else the dashboard). /lti/jwks.json: the tool's public keys.

A refusal is audited (`lti_refused`) and is a page (templates/lti/refused.html) saying
what happened, what to do, and a reference number (the audit entry's id) for IT: 400
for a broken or replayed exchange, 403 for a person quizapp does not let in, 503 when
the platform's keys cannot be fetched. Never a 500.

Inside an iframe (the browser says so with `Sec-Fetch-Dest: iframe`) quizapp's cookies
are third-party cookies, which many browsers block (Safari always, Chrome in incognito
or by setting). The state cookie is `SameSite=None; Secure` (the launch is a cross-site
POST), and so is the session cookie while LTI is in use (web/security.py). Two checks
find a browser that drops them anyway, and show a page (templates/lti/new_window.html)
whose button opens the same login in a new top-level window, where the cookies are
first-party:
- /lti/login answers a framed login with a hop to /lti/login/check, which goes on to the
  platform only if the state cookie came back (else the launch would fail with
  `state_mismatch`); the hop's signed token carries the platform's URL and the login's
  parameters for the button (`restart`, 15 minutes);
- a framed launch goes on to /lti/launch/check, which lands the person only if the new
  session cookie came back.
A login started outside a frame (a new window, a test client) takes neither hop. The
LTI client-side postMessage storage (lti_storage_target) is not built.
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
# Browsers keep cookies up to about 4 KB: the login parameters kept for the new-window
# button are dropped from older logins first when a long lti_message_hint would not fit.
MAX_STATE_COOKIE_CHARS = 3800
CHECK_SALT = "quizapp-lti-login-check"
LAUNCH_CHECK_SALT = "quizapp-lti-launch-check"
RESTART_SALT = "quizapp-lti-restart"
LAUNCH_CHECK_SECONDS = 2 * 60
RESTART_SECONDS = 15 * 60
# What the new-window button sends to /lti/login again (LTI Security Framework 5.1.1.1).
RESTART_PARAMS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "client_id",
    "lti_deployment_id",
)
MAX_RESTART_VALUE = 2000

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


def _serializer(salt: str = STATE_SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=salt)


def _unsigned(salt: str, token: str, max_age: int) -> dict[str, Any] | None:
    """A token this app signed with `salt` within `max_age` seconds, else None."""
    try:
        value = _serializer(salt).loads(token, max_age=max_age)
    except BadSignature:
        return None
    return value if isinstance(value, dict) else None


def _in_frame() -> bool:
    """The browser says this navigation is inside a frame (Fetch Metadata; every current
    browser sends it). Without the header the checks are skipped, never guessed."""
    return request.headers.get("Sec-Fetch-Dest", "") in ("iframe", "frame")


def _restart_params(params: dict[str, str]) -> dict[str, str]:
    return {
        name: params[name][:MAX_RESTART_VALUE]
        for name in RESTART_PARAMS
        if isinstance(params.get(name), str) and params[name]
    }


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


def _fitting(pending: list[dict[str, Any]]) -> str:
    """The state cookie's value: the newest logins, within a browser's cookie size."""
    entries = [dict(p) for p in pending[-MAX_PENDING:]]
    value = _serializer().dumps(entries)
    while len(value) > MAX_STATE_COOKIE_CHARS:
        older = [e for e in entries[:-1] if "restart" in e]
        if older:
            del older[0]["restart"]
        elif len(entries) > 1:
            entries = entries[1:]
        elif "restart" in entries[0]:
            del entries[0]["restart"]
        else:
            break
        value = _serializer().dumps(entries)
    return value


def _keep(response: Response, pending: list[dict[str, Any]]) -> Response:
    if not pending:
        response.delete_cookie(STATE_COOKIE, path="/lti/", secure=True, samesite="None")
        return response
    response.set_cookie(
        STATE_COOKIE,
        _fitting(pending),
        max_age=PENDING_SECONDS,
        path="/lti/",
        secure=True,
        httponly=True,
        samesite="None",
    )
    return response


def _record_refusal(refusal: LtiRefused, **details: Any) -> int:
    """The `lti_refused` audit event, and its id: the reference number on the page."""
    return lti_service.record_refusal(
        db_session(), refusal, now(), request.remote_addr or "", **details
    )


def _refused(refusal: LtiRefused, **details: Any) -> tuple[str, int]:
    reference = _record_refusal(refusal, **details)
    return render_template(
        "lti/refused.html",
        title=_TITLES.get(refusal.status, _TITLES[400]),
        message=refusal.message,
        status=refusal.status,
        reason=refusal.reason,
        reference=reference,
    ), refusal.status


def _cookies_blocked(step: str, restart: Any, *, again: bool = False) -> Response:
    """The new-window page: this browser dropped quizapp's cookie inside the VLE's page.
    Audited (`lti_refused`, reason `cookies_blocked`) so IT can see how often it happens."""
    top_level = again or not _in_frame()
    reference = _record_refusal(
        LtiRefused("cookies_blocked", "The browser did not send quizapp's cookie back."),
        step=step,
        fetch_dest=request.headers.get("Sec-Fetch-Dest", "")[:20],
        new_window=again,
    )
    restart_url = None
    if isinstance(restart, dict) and restart and not top_level:
        token = _serializer(RESTART_SALT).dumps(restart)
        restart_url = url_for("lti.login", restart=token)
    body = render_template(
        "lti/new_window.html",
        restart_url=restart_url,
        top_level=top_level,
        host=request.host,
        reference=reference,
    )
    return Response(body, status=200, mimetype="text/html")


# The platform may POST the login initiation from its own page: no CSRF token of ours.
# Nothing is changed here but this browser's state cookie; the platform then answers
# for whoever is signed in to it in this same browser (prompt=none).
@csrf.exempt
@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | tuple[str, int]:
    """The platform's third-party-initiated login: on to its authorization endpoint
    (through /lti/login/check when framed). `?restart=` is the new-window page's button:
    the same login's parameters, signed, in a top-level window."""
    params = {k: v for k, v in request.values.items() if isinstance(v, str)}
    again = "restart" in request.args
    if again:
        restored = _unsigned(RESTART_SALT, request.args["restart"], RESTART_SECONDS)
        if restored is None:
            return _refused(
                LtiRefused(
                    "restart_expired",
                    "This link to open quizapp in a new window has expired. Open the link "
                    "in the VLE again.",
                )
            )
        params = {k: v for k, v in restored.items() if isinstance(v, str)}
    try:
        sent = login_redirect(db_session(), params, url_for("lti.launch", _external=True))
    except LtiRefused as refusal:
        return _refused(refusal)
    restart = _restart_params(params)
    pending = _pending()
    pending.append(
        {
            "state": sent.state,
            "nonce": sent.nonce,
            "platform": sent.platform_id,
            "at": now().timestamp(),
            "restart": restart,
        }
    )
    if not _in_frame():
        return _keep(redirect(sent.url), pending)
    check = _serializer(CHECK_SALT).dumps(
        {"go": sent.url, "state": sent.state, "restart": restart, "again": again}
    )
    return _keep(redirect(url_for("lti.login_check", t=check)), pending)


@bp.route("/login/check")
@public
def login_check() -> Response | tuple[str, int]:
    """A framed login's cookie check: the state cookie set a moment ago came back, so
    the launch can work in this frame: on to the platform. Otherwise the new-window page."""
    data = _unsigned(CHECK_SALT, request.args.get("t", ""), PENDING_SECONDS)
    if data is None or not isinstance(data.get("go"), str):
        return _refused(
            LtiRefused(
                "check_expired", "This launch took too long. Open the link in the VLE again."
            )
        )
    if any(p.get("state") == data.get("state") for p in _pending()):
        return redirect(data["go"])
    return _cookies_blocked("login", data.get("restart"), again=bool(data.get("again")))


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
    landing = _landing(user.is_staff, checked.role, checked.custom)
    if result.deep_linking is not None:  # the instructor picks quizzes for the VLE
        from quizapp.web.lti_deep_linking import start

        landing = start(result)
    if not _in_frame():
        return _keep(redirect(landing), rest)
    check = _serializer(LAUNCH_CHECK_SALT).dumps(
        {"to": landing, "user": user.id, "restart": found.get("restart")}
    )
    return _keep(redirect(url_for("lti.launch_check", t=check)), rest)


@bp.route("/launch/check")
@public
def launch_check() -> Response | tuple[str, int]:
    """A framed launch's cookie check: the session cookie set by the launch came back
    with this request, so the pages will work in the frame: on to the landing page.
    Otherwise the new-window page (the person is signed in nowhere that works)."""
    from flask_login import current_user

    data = _unsigned(LAUNCH_CHECK_SALT, request.args.get("t", ""), LAUNCH_CHECK_SECONDS)
    if data is None or not isinstance(data.get("to"), str) or "user" not in data:
        return _refused(
            LtiRefused(
                "check_expired", "This launch took too long. Open the link in the VLE again."
            )
        )
    if current_user.is_authenticated and current_user.get_id() == str(data["user"]):
        return redirect(data["to"])
    return _cookies_blocked("launch", data.get("restart"))


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
