"""Single sign-on: the redirect dance with the university's OpenID provider.

GET /login/sso sends the browser to the provider with a fresh state, nonce and PKCE
verifier, kept in this browser's session; GET /login/sso/callback takes them back out
(each state works once), exchanges the code, has the ID token verified and the account
found (services/sso.py), and signs in. A refusal is audited (`sso_refused`) and is a page
that says what happened and whom to ask: 400 for a broken, cancelled or replayed
exchange, 403 for a person quizapp does not let in, 503 when the provider cannot be
reached. Never a 500.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_login import current_user
from werkzeug.wrappers import Response

from quizapp.services import audit
from quizapp.services.sso import (
    OidcClient,
    SsoRefused,
    SsoSettings,
    account_for,
    person_from_claims,
    record_refusal,
)
from quizapp.web import db_session, now
from quizapp.web.security import public

bp = Blueprint("sso", __name__)

PENDING = "sso_pending"
# Sign-ins started in other tabs stay usable, a few and for a while only: the session
# cookie must stay small, and an old authorization response is worth nothing.
MAX_PENDING = 4
PENDING_SECONDS = 15 * 60

_TITLES = {
    400: "Sign-in did not work",
    403: "You cannot sign in here",
    503: "Sign-in is not available just now",
}


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    app = state.app
    settings = SsoSettings.from_config(app.config)
    app.extensions["quizapp_sso"] = OidcClient(settings) if settings else None
    if settings is None and not app.config.get("QUIZAPP_PASSWORD_LOGIN", True):
        raise RuntimeError(
            "QUIZAPP_PASSWORD_LOGIN=0 turns password sign-in off, and single sign-on is "
            "not configured (QUIZAPP_SSO_ISSUER): nobody could sign in"
        )


def _client() -> OidcClient | None:
    client: OidcClient | None = current_app.extensions.get("quizapp_sso")
    return client


def password_login_on() -> bool:
    return bool(current_app.config.get("QUIZAPP_PASSWORD_LOGIN", True))


@bp.app_context_processor
def _login_choices() -> dict[str, Any]:
    client = _client()
    label = current_app.config.get("QUIZAPP_SSO_LABEL") or "Sign in with your university account"
    return {"sso_label": label if client else None, "password_login": password_login_on()}


def password_login_refused() -> tuple[str, int] | None:
    """For the login view: with password sign-in off, a posted password is refused before
    anything looks at it (and audited), with the page that offers single sign-on."""
    if password_login_on() or request.method != "POST":
        return None
    from quizapp.web.forms import LoginForm

    audit.record_now(
        db_session(),
        "login_refused",
        now(),
        ip=request.remote_addr or "",
        reason="password sign-in is turned off",
        username=(request.form.get("username") or "")[:150],
    )
    return render_template("auth/login.html", form=LoginForm(), password_refused=True), 403


def _refused(refusal: SsoRefused, **details: Any) -> tuple[str, int]:
    record_refusal(db_session(), refusal, now(), request.remote_addr or "", **details)
    return render_template(
        "auth/sso_refused.html",
        title=_TITLES.get(refusal.status, "Sign-in did not work"),
        message=refusal.message,
    ), refusal.status


def _not_configured() -> tuple[str, int]:
    return render_template(
        "auth/sso_refused.html",
        title="Single sign-on is not set up",
        message="This site does not use single sign-on: log in with your username and password.",
    ), 400


def _take_pending(state: str) -> dict[str, Any] | None:
    """The sign-in this state belongs to, removed from the session (so a callback URL
    used twice finds nothing the second time), if it is recent."""
    pending: list[dict[str, Any]] = session.get(PENDING, [])
    found = next((p for p in pending if state and p.get("state") == state), None)
    if found is not None:
        session[PENDING] = [p for p in pending if p is not found]
        if now().timestamp() - float(found.get("at", 0)) > PENDING_SECONDS:
            return None
    return found


@bp.route("/login/sso")
@public
def start() -> Response | tuple[str, int]:
    """Send the browser to the university's sign-in page."""
    from quizapp.web.auth import _safe_next

    client = _client()
    if client is None:
        return _not_configured()
    if current_user.is_authenticated:
        return redirect(url_for("student.dashboard"))
    try:
        authorization = client.authorization_request(url_for("sso.callback", _external=True))
    except SsoRefused as refusal:
        return _refused(refusal)
    moment = now().timestamp()
    kept = [
        p for p in session.get(PENDING, []) if moment - float(p.get("at", 0)) <= PENDING_SECONDS
    ]
    kept.append(
        {
            "state": authorization.state,
            "nonce": authorization.nonce,
            "verifier": authorization.code_verifier,
            "next": _safe_next(request.args.get("next")),
            "at": moment,
        }
    )
    session[PENDING] = kept[-MAX_PENDING:]
    return redirect(authorization.url)


@bp.route("/login/sso/callback")
@public
def callback() -> Response | tuple[str, int]:
    """The provider sends the browser back here with a code (or an error)."""
    from quizapp.web.auth import landing_page, sign_in

    client = _client()
    if client is None:
        return _not_configured()
    args = request.args
    pending = _take_pending(args.get("state", ""))
    if error := args.get("error"):
        cancelled = error == "access_denied"
        return _refused(
            SsoRefused(
                "provider_error",
                "Signing in at the university was cancelled or refused, so you are not "
                "signed in here. Start again if you want to sign in."
                if cancelled
                else "The university sign-in service reported a problem "
                f"({error[:100]}). Start again; if it keeps happening, tell the course team.",
                error=error[:100],
                error_description=args.get("error_description", "")[:300],
            )
        )
    if pending is None:
        return _refused(
            SsoRefused(
                "state_unknown",
                "This sign-in link was already used, is too old, or was started in another "
                "browser. Start again from the login page.",
            )
        )
    # RFC 9207: a provider that names itself in the response must be ours (a mix-up
    # attack would bring another provider's code here).
    if "iss" in args and args["iss"] != client.settings.issuer:
        return _refused(
            SsoRefused(
                "issuer_mismatch",
                "The answer came from another sign-in service. Start again.",
                iss=args["iss"][:200],
            )
        )
    code = args.get("code", "")
    if not code:
        return _refused(
            SsoRefused("code_missing", "The university sent no sign-in code. Start again.")
        )
    person = None
    try:
        claims = client.finish(
            code,
            url_for("sso.callback", _external=True),
            str(pending["verifier"]),
            str(pending["nonce"]),
            now(),
        )
        person = person_from_claims(claims, client.settings)
        user = account_for(db_session(), person, client.settings, now(), request.remote_addr or "")
    except SsoRefused as refusal:
        who = {"subject": person.subject[:400], "username": person.username[:150]} if person else {}
        return _refused(refusal, **who)
    sign_in(user, "sso")
    return redirect(pending.get("next") or landing_page(user))
