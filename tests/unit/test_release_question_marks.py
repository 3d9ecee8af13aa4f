"""Marks per question while someone may still be working (issue 16, item 8): the rule,
and a stored policy from before the option keeps meaning the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quizapp.domain.release import (
    DEFAULT_RELEASE,
    QuestionMarks,
    ReleasePolicy,
    ReleaseRule,
    ReleaseWhen,
    policy_after_import,
)

CLOSED = datetime(2027, 1, 19, 10, 30, tzinfo=UTC)  # closed for everyone
BEFORE, AFTER = CLOSED - timedelta(minutes=1), CLOSED
IMMEDIATELY = ReleaseRule(ReleaseWhen.IMMEDIATELY)
AFTER_CLOSE = ReleaseRule(ReleaseWhen.AFTER_CLOSE)


@pytest.mark.parametrize(
    ("question_marks", "now", "closes", "marks", "answers", "shown"),
    [
        (QuestionMarks.AFTER_CLOSE, BEFORE, CLOSED, True, False, False),  # the safe default
        (QuestionMarks.AFTER_CLOSE, AFTER, CLOSED, True, False, True),
        (QuestionMarks.AFTER_CLOSE, BEFORE, CLOSED, True, True, True),  # answers out anyway
        (QuestionMarks.AFTER_CLOSE, AFTER, None, True, False, False),  # never closes
        (QuestionMarks.WITH_TOTAL, BEFORE, CLOSED, True, False, True),  # staff's choice
        (QuestionMarks.WITH_TOTAL, BEFORE, CLOSED, False, False, False),  # no marks at all
        (QuestionMarks.AFTER_CLOSE, AFTER, CLOSED, False, True, False),
    ],
)
def test_marks_per_question(question_marks, now, closes, marks, answers, shown):
    policy = ReleasePolicy(IMMEDIATELY, AFTER_CLOSE, question_marks)
    assert policy.shows_question_marks(now, closes, marks=marks, answers=answers) is shown


def test_the_default_is_the_safe_one_and_old_stored_policies_read_the_same():
    assert DEFAULT_RELEASE.question_marks is QuestionMarks.AFTER_CLOSE
    old = {
        "marks": {"when": "immediately", "at": None},
        "answers": {"when": "after_close", "at": None},
    }
    policy = ReleasePolicy.from_json(old)
    assert policy.question_marks is QuestionMarks.AFTER_CLOSE
    assert policy.to_json() == old  # the default is not written: old JSON stays equal
    chosen = ReleasePolicy(IMMEDIATELY, AFTER_CLOSE, QuestionMarks.WITH_TOTAL)
    assert chosen.to_json()["question_marks"] == "with_total"
    assert ReleasePolicy.from_json(chosen.to_json()) == chosen


def test_an_import_keeps_a_browser_choice_stored_before_the_option_existed():
    yaml = {
        "marks": {"when": "immediately", "at": None},
        "answers": {"when": "after_close", "at": None},
    }
    stored = {
        **ReleasePolicy(IMMEDIATELY, AFTER_CLOSE, QuestionMarks.WITH_TOTAL).to_json(),
        "yaml": yaml,
    }
    # The YAML's policy read now carries the default explicitly: still the same policy.
    again = {**yaml, "question_marks": "after_close"}
    assert policy_after_import(stored, again) == stored
    changed = {**yaml, "answers": {"when": "never", "at": None}}
    assert policy_after_import(stored, changed) == changed
