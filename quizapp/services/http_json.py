"""JSON over HTTP from another service (an identity provider, a VLE), bounded: a
timeout, a size limit on the answer, and one error type saying what went wrong, so each
caller turns it into its own clear refusal. urllib: no extra dependency at run time."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 1_000_000


class HttpJsonError(Exception):
    """The service could not be reached or did not answer with a JSON object.
    `status` and `answer` are set when it answered with an HTTP error (`answer`: its
    JSON body, when it had one)."""

    def __init__(self, detail: str, status: int | None = None, answer: Mapping[str, Any] = {}):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.answer = dict(answer)


def fetch_json(
    url: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> dict[str, Any]:
    """GET (or POST `data` to) `url` and return its JSON object."""
    answer = call_json(
        url,
        method="GET" if data is None else "POST",
        data=data,
        headers={"Accept": "application/json", **(headers or {})},
        timeout=timeout,
        max_bytes=max_bytes,
    )
    if not isinstance(answer.body, dict):
        raise HttpJsonError(f"{url}: not a JSON object")
    return answer.body


@dataclass(frozen=True)
class JsonAnswer:
    """A service's answer: its status, its JSON body (None when it sent none), and its
    headers (paging links, for instance)."""

    status: int
    body: Any
    headers: Message


def call_json(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> JsonAnswer:
    """Any method; the answer may be any JSON value or empty (a 204, a score accepted
    with no body). HTTP errors raise HttpJsonError like fetch_json."""
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(max_bytes + 1)
            status, answer_headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        try:
            parsed = json.loads(error.read(max_bytes))
        except ValueError:
            parsed = {}
        detail = f"{url}: HTTP {error.code}"
        raise HttpJsonError(
            detail, error.code, parsed if isinstance(parsed, dict) else {}
        ) from error
    except (urllib.error.URLError, OSError) as error:
        raise HttpJsonError(f"{url}: {error}") from error
    if len(raw) > max_bytes:
        raise HttpJsonError(f"{url}: answer larger than {max_bytes} bytes")
    if not raw.strip():
        return JsonAnswer(status, None, answer_headers)
    try:
        return JsonAnswer(status, json.loads(raw), answer_headers)
    except ValueError as error:
        raise HttpJsonError(f"{url}: not JSON") from error
