"""Which stored answers the regrade's accept mode treats as full marks (no database)."""

from __future__ import annotations

import pytest

from quizapp.domain.questions import question_from_spec
from quizapp.services.errors import InvalidInput
from quizapp.services.regrade import RegradeMode, _is_accepted, parse_mode

SINGLE = question_from_spec(
    {
        "id": "s",
        "type": "single_choice",
        "stem": "Pick",
        "options": [{"text": "a", "correct": True}, {"text": "b"}, {"text": "c"}],
    }
)
MULTIPLE = question_from_spec(
    {
        "id": "m",
        "type": "multiple_response",
        "stem": "Pick",
        "options": [
            {"id": "x", "text": "a", "correct": True},
            {"id": "y", "text": "b"},
            {"id": "z", "text": "c"},
        ],
    }
)
NUMERIC = question_from_spec({"id": "n", "type": "numeric", "stem": "N?", "answer": 16})


@pytest.mark.parametrize(
    ("question", "accepted", "value", "expected"),
    [
        (SINGLE, ["1"], "1", True),  # an option key
        (SINGLE, ["1"], "2", False),
        (SINGLE, ["1"], None, False),  # no answer is never accepted
        (MULTIPLE, ["x", "y"], ["x", "y"], True),  # one accepted selection, exactly
        (MULTIPLE, ["x", "y"], ["y"], False),
        (MULTIPLE, ["x", "y"], ["x", "y", "z"], False),
        (NUMERIC, ["15"], "15", True),  # the stored text, exactly as typed
        (NUMERIC, ["15"], "15.0", False),
        (NUMERIC, ["15"], " 15", False),
        (NUMERIC, ['{"a": 1}'], {"a": 1}, True),  # a structured answer by its JSON
        (NUMERIC, ['{"a": 1}'], '{"a": 1}', True),
        (NUMERIC, ["not json"], {"a": 1}, False),
    ],
)
def test_accepted_answers(question, accepted, value, expected):
    assert _is_accepted(question, accepted, value) is expected


def test_modes_by_name():
    assert parse_mode("full_marks") is RegradeMode.FULL_MARKS
    with pytest.raises(InvalidInput, match="use one of regrade, accept, full_marks"):
        parse_mode("everything")
