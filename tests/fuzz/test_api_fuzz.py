"""Property-based fuzzing of the autosave API from its OpenAPI document (schemathesis
generates the requests, valid and deliberately invalid): whatever arrives, the answer
is a documented status with a JSON body, never a 500, and nothing is written by a
refused request. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from quizapp.models import AnswerLog
from tests.functional.helpers import csrf_of, start_attempt

SPEC = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(SPEC)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
EXAMPLES = 60


def _documented(operation) -> set[int]:
    return {int(code) for code in operation.definition.raw["responses"]}


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_no_request_breaks_the_api(operation, mode, client, auth, users, sample_bank, session):
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    token = csrf_of(page)
    documented = _documented(operation) | {400, 401, 404, 405, 413}

    def log_size() -> int:
        session.rollback()  # a fresh snapshot each time
        return session.scalar(select(func.count()).select_from(AnswerLog))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        real=st.booleans(),
        slot=st.integers(1, 16),
    )
    def check(case, real, slot):
        path = case.formatted_path
        if real:  # aim at the student's own attempt too, not only at random ids
            params = dict(case.path_parameters or {}, attempt_id=attempt_id)
            if "slot" in params:
                params["slot"] = slot
            path = operation.path.format(**params)
        headers = {"X-CSRFToken": token} if real else dict(case.headers or {})
        kwargs = {}
        if not isinstance(case.body, schemathesis.core.NotSet):
            body = case.body
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            kwargs = {"data": raw, "content_type": case.media_type or "application/json"}
        before = log_size()
        response = client.open(path, method=case.method, headers=headers, **kwargs)
        assert response.status_code < 500, (case.method, path, case.body)
        if response.status_code != 200:
            assert log_size() == before, ("a refused request wrote to the log", path, case.body)
        assert response.status_code in documented | {200}, (response.status_code, path, case.body)
        assert response.is_json, (path, response.status_code)

    check()
