"""The JSON API used by the attempt page: status, autosave, review flags, time-up.

Documented in docs/api/openapi.yaml. Every state-changing call needs the CSRF token in
the X-CSRFToken header. Every response carries the server's time and the attempt's
current deadline, so the page's countdown follows the server, including extra time
granted by staff while the page is open.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, jsonify, request, session, url_for
from werkzeug.wrappers import Response

from quizapp.domain.text_checks import invalid_text_reason
from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt
from quizapp.services import attempts as attempt_service
from quizapp.services.errors import InvalidInput
from quizapp.web import course_zone, db_session, grace, now
from quizapp.web.security import current_account, user_required

bp = Blueprint("api", __name__, url_prefix="/api")

# The bounds of a save are the service's (one place decides them for the API and the
# form post); named here too because the OpenAPI test reads them from the API.
MAX_SEQ = attempt_service.MAX_SEQ
MAX_VALUES = attempt_service.MAX_VALUES
MAX_VALUE_CHARS = attempt_service.MAX_VALUE_CHARS


def _body(allowed: Mapping[str, type | tuple[type, ...]], required: set[str]) -> dict[str, Any]:
    """The JSON object of the request, checked strictly: unknown or mistyped fields are
    refused with a message that names them, before anything is written."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown)}.")
    missing = sorted(required - set(data))
    if missing:
        raise InvalidInput(f"Missing field(s): {', '.join(missing)}.")
    for key, kinds in allowed.items():
        if key in data and (
            not isinstance(data[key], kinds)
            or (isinstance(data[key], bool) and bool not in _as_tuple(kinds))
        ):
            raise InvalidInput(f"Field {key!r} has the wrong type.")
    return data


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _clean_text(text: str) -> str:
    if len(text) > MAX_VALUE_CHARS:
        raise InvalidInput(f"An answer may have at most {MAX_VALUE_CHARS} characters.")
    # web/input_guard.py refuses such text for every request already; checked again
    # here so that this view stays safe if it is ever reached another way.
    if reason := invalid_text_reason(text):
        raise InvalidInput(f"Your answer contains a character that cannot be stored ({reason}).")
    return text


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [_clean_text(raw)]
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        if len(raw) > MAX_VALUES:
            raise InvalidInput(f"At most {MAX_VALUES} values per answer.")
        return [_clean_text(v) for v in raw]
    raise InvalidInput("'value' must be a string, a list of strings, or null.")


def _own_attempt(attempt_id: int) -> Attempt:
    return attempt_service.attempt_for_student(
        db_session(), attempt_id, current_account(), now(), grace()
    )


def _clock_fields(attempt: Attempt) -> dict[str, Any]:
    return _clock(attempt.id, attempt.state, attempt.deadline_at)


def _clock(attempt_id: int, state: AttemptState, deadline: datetime | None) -> dict[str, Any]:
    """What every response carries for the page's countdown. `deadline_local` is the
    deadline as the page shows it ("14:41:01 GMT": the course's zone, 24-hour clock, the
    `localtime` filter's format), so the page never formats a time in the browser's
    locale or zone."""
    return {
        "attempt_id": attempt_id,
        "state": state.value,
        "deadline": deadline.isoformat() if deadline else None,
        "deadline_local": _local(deadline),
        "server_now": now().isoformat(),
        "grace_seconds": int(grace().total_seconds()),
        "result_url": url_for("student.result", attempt_id=attempt_id)
        if state is not AttemptState.IN_PROGRESS
        else None,
    }


def _local(moment: Any) -> str | None:
    return moment.astimezone(course_zone()).strftime("%H:%M:%S %Z") if moment else None


@bp.get("/attempts/<id:attempt_id>")
@user_required
def status(attempt_id: int) -> Response:
    """The attempt's clock, its answers' sequence numbers and save times, and its flags.

    With `?form_values=1`, also each stored answer's form values (`form_values`, by
    slot): what the page needs to show the answer another window saved. Only asked for
    when the page finds such an answer, so the idle poll stays as cheap as it was."""
    attempt = _own_attempt(attempt_id)
    session = db_session()
    # The answers and the flags in one statement (the attempt page's), as plain rows.
    answers, flagged = attempt_service.page_answers(session, attempt.id)
    extra: dict[str, Any] = {}
    if request.args.get("form_values") == "1":
        values = attempt_service.answer_form_values(session, attempt, answers)
        extra["form_values"] = {str(slot): v for slot, v in values.items()}
    return jsonify(
        **_clock_fields(attempt),
        answers={
            str(slot): {
                "seq": a.seq,
                "saved_at": a.saved_at.isoformat(),
                "saved_at_local": _local(a.saved_at),
            }
            for slot, a in answers.items()
        },
        flags=sorted(flagged),
        **extra,
    )


@bp.put("/attempts/<id:attempt_id>/answers/<id:slot>")
@user_required
def save_answer(attempt_id: int, slot: int) -> Response:
    body = _body({"value": (str, list, type(None)), "seq": int, "typed_at": str}, {"value", "seq"})
    seq = body["seq"]
    values = _values(body["value"])
    # The save checks ownership itself, in the statement that locks the attempt: the
    # hottest request of exam day loads the attempt once.
    saved = attempt_service.save_answers(
        db_session(),
        attempt_id,
        {slot: values},
        seq,
        now(),
        grace(),
        request.remote_addr or "",
        session.get("client", ""),
        owner_id=current_account().id,
        typed_at=_typed_at(body.get("typed_at")),
    )
    (result,) = saved.results
    return jsonify(
        **_clock(attempt_id, AttemptState.IN_PROGRESS, saved.deadline_at),
        slot=result.slot,
        status=result.status.value,
        seq=result.seq,
        saved_at=result.saved_at.isoformat() if result.saved_at else None,
        saved_at_local=_local(result.saved_at),
    )


def _typed_at(text: str | None) -> datetime | None:
    """When the browser says the value was typed: evidence kept with a refused answer
    ("sent 13:40:49, arrived 13:41:09"), never used to decide anything."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text[:40])
    except ValueError:
        raise InvalidInput("'typed_at' must be an ISO 8601 time with its offset.") from None
    if moment.tzinfo is None:
        raise InvalidInput("'typed_at' must be an ISO 8601 time with its offset.")
    return moment


@bp.put("/attempts/<id:attempt_id>/flags/<id:slot>")
@user_required
def flag(attempt_id: int, slot: int) -> Response:
    body = _body({"flagged": bool}, {"flagged"})
    attempt = _own_attempt(attempt_id)
    attempt_service.set_flag(db_session(), attempt, slot, body["flagged"])
    return jsonify(**_clock_fields(attempt), slot=slot, flagged=body["flagged"])


@bp.post("/attempts/<id:attempt_id>/time-up")
@user_required
def time_up(attempt_id: int) -> Response:
    """The page's countdown reached zero and its pending saves are in: finish now if the
    server agrees the deadline has passed (otherwise nothing happens: the server's clock
    decides, not the browser's)."""
    attempt = _own_attempt(attempt_id)
    attempt_service.finish_if_deadline_reached(db_session(), attempt, now())
    return jsonify(**_clock_fields(attempt))
