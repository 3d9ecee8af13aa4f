"""LTI Deep Linking 2.0 (docs/lti.md "Deep Linking"): the instructor's quiz picker in the
VLE's "add content" flow.

/lti/launch hands a checked LtiDeepLinkingRequest here (`start`, called once the
instructor is signed in; services/lti.py `launch` has already refused anyone but an
instructor with a quizapp staff account). Its settings (return URL, `data`, one or
several items) are kept in the signed session cookie with the user and the server-side
session id they belong to, for `PICK_SECONDS`: the picker's form carries only the quizzes
picked and the CSRF token, never the settings. The answer (`answer`, POST) is signed by
services/lti.py `deep_linking_answer` and taken back to the VLE by a form that submits
itself (a visible button without JavaScript) to the request's return URL; the pending
request is then spent, so a reload cannot send a second answer. Cancel sends an empty
answer with a message.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, render_template, request, session, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectMultipleField, SubmitField

from quizapp.domain.lti import DeepLinkingSettings
from quizapp.services.errors import ServiceError
from quizapp.services.lti import LaunchResult, deep_linking_answer, deep_linking_choices
from quizapp.web import db_session, now
from quizapp.web.security import csp_for, current_account, framing, origin_of, staff_required

bp = Blueprint("lti_deep_linking", __name__, url_prefix="/lti/deep-linking")

PENDING_KEY = "lti_deep_linking"
PICK_SECONDS = 60 * 60  # time to choose; the VLE's own dialog rarely lasts longer
CANCEL_MESSAGE = "No quiz was added from quizapp."


class PickForm(FlaskForm):
    """The picker: which quizzes (checkboxes, or radio buttons when the VLE takes one),
    for which pending request; add or cancel."""

    request_id = HiddenField()
    quiz = SelectMultipleField(coerce=int)
    add = SubmitField("Add to the VLE")
    cancel = SubmitField("Cancel")


def start(result: LaunchResult) -> str:
    """Keep a deep-linking request for the instructor just signed in; the picker's URL."""
    settings = result.deep_linking
    assert settings is not None, "start() is for deep-linking requests"
    session[PENDING_KEY] = {
        "id": secrets.token_urlsafe(16),
        "user": result.user.id,
        "sid": session.get("sid"),
        "platform": result.platform_id,
        "deployment": result.launch.deployment_id,
        "at": now().timestamp(),
        "settings": settings.as_dict(),
    }
    return url_for("lti_deep_linking.pick")


def _pending() -> dict[str, Any] | None:
    """This signed-in person's pending request, if it is theirs, of this session, and
    recent enough."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if pending.get("user") != current_account().id or pending.get("sid") != session.get("sid"):
        return None
    if now().timestamp() - float(pending.get("at", 0)) > PICK_SECONDS:
        return None
    return pending


def _nothing_pending() -> tuple[str, int]:
    return render_template(
        "lti_deep_linking/none.html",
        minutes=PICK_SECONDS // 60,
    ), 400


def _form(pending: dict[str, Any]) -> tuple[PickForm, list[Any]]:
    choices = deep_linking_choices(db_session())
    form = PickForm()
    form.quiz.choices = [(c.id, c.title) for c in choices]
    if not form.is_submitted():
        form.request_id.data = pending["id"]
    return form, choices


def _picker(
    form: PickForm, choices: list[Any], settings: DeepLinkingSettings, status: int = 200
) -> tuple[str, int]:
    return render_template(
        "lti_deep_linking/pick.html",
        form=form,
        choices=choices,
        settings=settings,
        chosen=set(form.quiz.data or []),
    ), status


@bp.route("/", methods=["GET"])
@staff_required
def pick() -> tuple[str, int]:
    """The quizzes, to pick one or several for the VLE."""
    pending = _pending()
    if pending is None:
        return _nothing_pending()
    form, choices = _form(pending)
    return _picker(form, choices, DeepLinkingSettings.from_dict(pending["settings"]))


@bp.route("/", methods=["POST"])
@staff_required
def answer() -> Response | tuple[str, int]:
    """Sign the answer (the quizzes picked, or none on cancel) and take it to the VLE."""
    pending = _pending()
    if pending is None:
        return _nothing_pending()
    settings = DeepLinkingSettings.from_dict(pending["settings"])
    form, choices = _form(pending)
    if not form.validate_on_submit() or form.request_id.data != pending["id"]:
        form.quiz.errors = [*form.quiz.errors, "Pick again from this list."]
        form.request_id.data = pending["id"]  # the list shown now is the pending request's
        return _picker(form, choices, settings, 400)
    cancelled = bool(form.cancel.data)
    try:
        signed = deep_linking_answer(
            db_session(),
            platform_id=int(pending["platform"]),
            deployment_id=str(pending["deployment"]),
            settings=settings,
            quiz_ids=[] if cancelled else form.quiz.data or [],
            launch_url=url_for("lti.launch", _external=True),
            user=current_account(),
            now=now(),
            ip=request.remote_addr or "",
            cancel_message=CANCEL_MESSAGE if cancelled else "",
        )
    except ServiceError as error:
        form.quiz.errors = [*form.quiz.errors, str(error)]
        return _picker(form, choices, settings, error.status)
    session.pop(PENDING_KEY, None)  # spent: a reload cannot answer twice
    response = Response(
        render_template(
            "lti_deep_linking/return.html",
            signed=signed,
            cancelled=cancelled,
            titles=[c.title for c in choices if c.key in signed.quiz_keys],
        ),
        mimetype="text/html",
    )
    # The page's form goes to the VLE: its origin joins `form-action` for this page only.
    target = origin_of(signed.return_url)
    if target:
        policy = csp_for(framing())
        response.headers["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {target}"
        )
    return response
