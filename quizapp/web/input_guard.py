"""The boundary check every request passes before any view runs.

Two kinds of input are refused here, once for every blueprint, rather than in each view:

- Text that cannot be stored (domain/text_checks.py): a lone surrogate, NUL or a Unicode
  non-character anywhere in the query string, a form post (names and values) or a JSON
  body (every string and every key, at any depth). Such text is accepted by Python and
  fails only later, when encoded for the database, a page or a CSV: one autosaved
  ``"\\ud800"`` used to break the attempt page, submit, the sweeper and the exports.
- JSON nested deeper than MAX_JSON_DEPTH. Python's json module recurses once per level,
  so 100,000 ``[`` (well inside the body limit) raised RecursionError, a 500. The depth
  is measured on the raw bytes, without recursion, before anything parses them.

The body size itself is bounded by MAX_CONTENT_LENGTH (config.py) before this runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest

from quizapp.domain.text_checks import invalid_text_reason, repaired
from quizapp.web.errors import error_response

# The attempt API's bodies are two levels deep ({"value": [...]}); 32 leaves room for any
# form the app will ever post while keeping the parser's recursion far from Python's limit.
MAX_JSON_DEPTH = 32

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_SPECIAL = re.compile(rb'["\[\]{}]')
# The rest of a JSON string after its opening quote. Matched once per string, from a
# position that only moves forward, so the scan is linear in the body's length.
_STRING_TAIL = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def init_app(app: Flask) -> None:
    app.before_request(check_request)


def check_request() -> Any:
    """A before_request hook: None to go on, or a 400 response that names the problem."""
    problem = _text_problem(_query_fields()) or _text_problem(_form_fields())
    if problem is None and request.is_json:
        problem = _json_problem(request.get_data(cache=True))
    return error_response(400, problem) if problem else None


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `data` nests arrays and objects more than `limit` deep.

    Brackets inside strings do not count. Invalid JSON is measured up to its first
    unterminated string, which is as far as any parser could get into it."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    position = 0
    while found := _SPECIAL.search(data, position):
        char = data[found.start()]
        position = found.end()
        if char == ord('"'):
            tail = _STRING_TAIL.match(data, position)
            if tail is None:
                return False
            position = tail.end()
        elif char in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole-number query parameter, clamped to [minimum, maximum]; the default when it
    is missing or not a number. An absurd page number is a harmless last page, never an
    overflow in the database driver."""
    raw = request.args.get(name, "").strip()
    if len(raw) > 20:
        # More digits than any bound, and int() of thousands of digits costs real time.
        return maximum if raw.isdecimal() else default
    try:
        value = int(raw)
    except ValueError:
        return default
    return min(max(value, minimum), maximum)


def _query_fields() -> Iterator[tuple[str, str]]:
    for key, value in request.args.items(multi=True):
        yield key, key
        yield key, value


def _form_fields() -> Iterator[tuple[str, str]]:
    if request.mimetype not in _FORM_TYPES:
        return
    for key, value in request.form.items(multi=True):
        yield key, key
        yield key, value
    for key, upload in request.files.items(multi=True):
        yield key, key
        yield key, upload.filename or ""


def _json_problem(data: bytes) -> str | None:
    if json_too_deep(data):
        return f"The request is nested more than {MAX_JSON_DEPTH} levels deep."
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        # Malformed JSON is the view's to refuse (with its own message); nothing here
        # has been parsed or stored.
        return None
    return _text_problem(_json_strings(document))


def _json_strings(document: Any) -> Iterator[tuple[str, str]]:
    """(field, text) for every key and string in a parsed JSON document, iteratively: the
    field is the top-level key, which names what the client sent (e.g. "value")."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        field, node = stack.pop()
        if isinstance(node, str):
            yield field, node
        elif isinstance(node, dict):
            for key, value in node.items():
                name = field or key
                yield name, key
                stack.append((name, value))
        elif isinstance(node, list):
            stack.extend((field, item) for item in node)


def _text_problem(fields: Iterable[tuple[str, str]]) -> str | None:
    try:
        for field, text in fields:
            if reason := invalid_text_reason(text):
                return _message(field, reason)
    except BadRequest:
        # A form the parser refuses is the view's (or CSRF's) to answer.
        return None
    return None


def _message(field: str, reason: str) -> str:
    if field == "value" or field.startswith("slot-"):
        return (
            f"Your answer contains a character that cannot be stored ({reason}). "
            "Delete that character and save again; the rest of your answer is fine."
        )
    # The name itself may hold the bad character: the message must be storable too.
    name = repaired(field[:60])
    what = f"The field {name!r}" if name else "What you sent"
    return f"{what} contains a character that cannot be stored ({reason}). Remove it and try again."
