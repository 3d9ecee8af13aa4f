"""The quizapp app with one injected fault, for tests/fault/test_hostile_student.py:
grading a short-text answer that contains GRADING_FAILURE_SENTINEL raises.

Every question type bounds the work an answer can cause, so no real answer makes grading
fail; this is how the test proves what happens when grading does fail anyway (a bug, a
question type that raises): the attempt is still finished, with that answer marked
"needs staff: grading failed". gunicorn loads it as `tests.fault.hostile_app:create_app()`
(the harness puts the checkout on PYTHONPATH). Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

GRADING_FAILURE_SENTINEL = "trigger-grading-failure"
FAULTY_TYPE = "short_text"


class InjectedGradingFault(RuntimeError):
    pass


def _inject_fault() -> None:
    from quizapp.domain.qtypes import QUESTION_TYPES

    cls = QUESTION_TYPES[FAULTY_TYPE]
    if getattr(cls.grade, "injected_fault", False):
        return
    original = cls.grade

    def grade(self: Any, variant: Any, response: Any) -> Any:
        if isinstance(response, str) and GRADING_FAILURE_SENTINEL in response:
            raise InjectedGradingFault(f"injected by the fault test: {response!r}")
        return original(self, variant, response)

    grade.injected_fault = True  # type: ignore[attr-defined]
    cls.grade = grade  # type: ignore[method-assign]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    from quizapp import create_app as quizapp_app

    _inject_fault()
    return quizapp_app(config)
