"""The pure parts of sending marks to a VLE gradebook (quizapp/domain/lti_scores.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from quizapp.domain.lti_scores import (
    ActivityProgress,
    GradingProgress,
    Score,
    activity_progress,
    decimal_mark,
    grading_progress,
    marks_hidden_until_later,
    retry_delay,
    score_message,
    scores_url,
    short_error,
    worth_retrying,
)
from quizapp.domain.release import ReleaseRule, ReleaseWhen

NOW = datetime(2027, 1, 18, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lineitem", "expected"),
    [
        ("https://vle.example/li/1", "https://vle.example/li/1/scores"),
        ("https://vle.example/li/1/", "https://vle.example/li/1/scores"),
        ("https://vle.example/li/1?type_id=7", "https://vle.example/li/1/scores?type_id=7"),
        ("https://vle.example/api/lti/courses/3/line_items/9?a=1&b=2",
         "https://vle.example/api/lti/courses/3/line_items/9/scores?a=1&b=2"),
    ],
)  # fmt: skip
def test_scores_go_to_the_line_item_scores_before_any_query(lineitem, expected):
    assert scores_url(lineitem) == expected


def test_backoff_doubles_from_a_minute_to_at_most_an_hour():
    waits = [retry_delay(n) for n in range(1, 10)]
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert max(waits) == timedelta(hours=1) and retry_delay(1000) == timedelta(hours=1)
    assert waits == sorted(waits)


@pytest.mark.parametrize(
    ("status", "retry", "expected"),
    [(None, True, True), (500, True, True), (503, True, True), (429, True, True),
     (401, True, True), (400, True, False), (404, True, False), (422, True, False),
     (403, True, False), (None, False, False), (500, False, False)],
)  # fmt: skip
def test_which_failures_are_tried_again(status, retry, expected):
    assert worth_retrying(status, retry) is expected


def test_the_score_message_carries_the_marks_timestamp_and_exact_rounding():
    score = Score(
        Fraction(23, 3),
        Fraction(26),
        ActivityProgress.COMPLETED,
        GradingProgress.PENDING_MANUAL,
    )
    message = score_message(score, "sub-1", NOW)
    assert message == {
        "userId": "sub-1",
        "scoreGiven": 7.6667,
        "scoreMaximum": 26.0,
        "activityProgress": "Completed",
        "gradingProgress": "PendingManual",
        "timestamp": "2027-01-18T11:00:00.000+00:00",
    }
    empty = Score(None, Fraction(26), ActivityProgress.IN_PROGRESS, GradingProgress.FULLY_GRADED)
    assert "scoreGiven" not in score_message(empty, "sub-1", NOW)
    assert decimal_mark(Fraction(1, 8)) == 0.125 and decimal_mark(Fraction(1, 20000)) == 0.0001


def test_progress_from_the_attempts():
    assert activity_progress(1, False, 1) is ActivityProgress.COMPLETED
    assert activity_progress(1, False, 3) is ActivityProgress.SUBMITTED
    assert activity_progress(1, True, 3) is ActivityProgress.IN_PROGRESS
    assert grading_progress(True) is GradingProgress.PENDING_MANUAL
    assert grading_progress(False) is GradingProgress.FULLY_GRADED


def test_a_first_look_at_the_release_policy_holds_only_what_is_surely_hidden():
    closes = NOW + timedelta(hours=2)
    assert not marks_hidden_until_later(ReleaseRule(ReleaseWhen.IMMEDIATELY), NOW, closes)
    assert marks_hidden_until_later(ReleaseRule(ReleaseWhen.NEVER), NOW, closes)
    assert marks_hidden_until_later(ReleaseRule(ReleaseWhen.AFTER_CLOSE), NOW, closes)
    assert marks_hidden_until_later(ReleaseRule(ReleaseWhen.AFTER_CLOSE), NOW, None)
    # Past the quiz's own close: maybe released (the sender checks overrides and all).
    assert not marks_hidden_until_later(ReleaseRule(ReleaseWhen.AFTER_CLOSE), closes, closes)
    at = ReleaseRule(ReleaseWhen.AT, NOW + timedelta(days=1))
    assert marks_hidden_until_later(at, NOW, closes)
    assert not marks_hidden_until_later(at, NOW + timedelta(days=2), closes)


def test_errors_are_one_bounded_line():
    assert short_error("a\n  b\tc") == "a b c"
    assert len(short_error("x" * 2000)) == 500
