"""JSON over HTTP from another service (an identity provider, a VLE), bounded: a
timeout, a size limit on the answer, and one error type saying what went wrong, so each
caller turns it into its own clear refusal. urllib: no extra dependency at run time."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
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
    request = urllib.request.Request(
        url, data=data, headers={"Accept": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
    except urllib.error.HTTPError as error:
        try:
            parsed = json.loads(error.read(max_bytes))
        except ValueError:
            parsed = {}
        answer = parsed if isinstance(parsed, dict) else {}
        raise HttpJsonError(f"{url}: HTTP {error.code}", error.code, answer) from error
    except (urllib.error.URLError, OSError) as error:
        raise HttpJsonError(f"{url}: {error}") from error
    if len(body) > max_bytes:
        raise HttpJsonError(f"{url}: answer larger than {max_bytes} bytes")
    try:
        parsed = json.loads(body)
    except ValueError as error:
        raise HttpJsonError(f"{url}: not JSON") from error
    if not isinstance(parsed, dict):
        raise HttpJsonError(f"{url}: not a JSON object")
    return parsed
