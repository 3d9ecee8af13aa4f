"""Marks to the VLE's gradebook (LTI Assignment and Grade Services 2.0): the pure parts.

What a score message says (AGS 2.0 §3.4: `scoreGiven`, `scoreMaximum`,
`activityProgress`, `gradingProgress`, `timestamp`, `userId`), where it goes (the line
item's `/scores`, before any query string), how long a failed post waits before it is
tried again, and which failures are worth trying again. No clock is read here: `now` and
the times are parameters.
"""

from __future__ import annotations

import enum
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from quizapp.domain.release import ReleaseRule, ReleaseWhen

SCORE_CONTENT_TYPE = "application/vnd.ims.lis.v1.score+json"
SCORE_PLACES = 4  # decimals sent (like the CSV): 1/3 of a mark is 0.3333

# Backoff after a failure that may pass (the VLE down, slow, overloaded): 1 min, 2, 4 ...
# up to an hour, for as long as it takes; staff see the wait and the error meanwhile.
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)


class ScoreState(enum.StrEnum):
    """Where a score in the outbox is."""

    PENDING = "pending"  # to send, from next_try_at
    HELD = "held"  # the release policy hides marks: sent once released
    SENT = "sent"  # the platform accepted it
    FAILED = "failed"  # the platform refused it for good: staff resend after fixing


class ActivityProgress(enum.StrEnum):
    IN_PROGRESS = "InProgress"
    SUBMITTED = "Submitted"  # finished, and the student may start another attempt
    COMPLETED = "Completed"


class GradingProgress(enum.StrEnum):
    PENDING_MANUAL = "PendingManual"  # answers wait for staff (essays, failed grading)
    FULLY_GRADED = "FullyGraded"


@dataclass(frozen=True)
class Score:
    """The score to send for one student and line item: the quiz's score that counts
    (its grading rule over the finished attempts), out of its maximum."""

    given: Fraction | None  # None: no finished attempt (nothing to grade yet)
    maximum: Fraction
    activity: ActivityProgress
    grading: GradingProgress


def activity_progress(finished: int, in_progress: bool, max_attempts: int) -> ActivityProgress:
    """From the student's attempts: one running → InProgress; otherwise Completed when no
    attempt is left (the quiz's own limit), Submitted when another may be started."""
    if in_progress:
        return ActivityProgress.IN_PROGRESS
    if max_attempts > 0 and finished >= max_attempts:
        return ActivityProgress.COMPLETED
    return ActivityProgress.SUBMITTED


def grading_progress(provisional: bool) -> GradingProgress:
    """PendingManual while any answer that could change the score waits for staff (an
    essay, or an answer whose automatic grading failed: staff will mark it); never
    `Failed`, which would tell the VLE there is no grade to expect."""
    return GradingProgress.PENDING_MANUAL if provisional else GradingProgress.FULLY_GRADED


def decimal_mark(value: Fraction) -> float:
    """A mark as the JSON number the platform reads, rounded half-up to SCORE_PLACES."""
    quantum = Decimal(1).scaleb(-SCORE_PLACES)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


def score_message(score: Score, user_id: str, timestamp: datetime) -> dict[str, Any]:
    """The AGS score JSON (§3.4). `timestamp` is the moment the mark was set, not the
    moment it is sent: the platform ignores a score older than the one it holds, so a
    repeated post of the same score changes nothing and a stale one never wins."""
    message: dict[str, Any] = {
        "userId": user_id,
        "activityProgress": score.activity.value,
        "gradingProgress": score.grading.value,
        "timestamp": timestamp.isoformat(timespec="milliseconds"),
    }
    if score.given is not None:
        message["scoreGiven"] = decimal_mark(score.given)
        message["scoreMaximum"] = decimal_mark(score.maximum)
    return message


def scores_url(lineitem: str) -> str:
    """The line item's score endpoint: `/scores` appended to its path, before any query
    string or fragment (Canvas and Blackboard line item URLs may carry one)."""
    parts = urllib.parse.urlsplit(lineitem)
    path = parts.path.rstrip("/") + "/scores"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def retry_delay(tries: int) -> timedelta:
    """How long to wait after the `tries`-th failed post (1, 2, ...): doubling from a
    minute, capped at an hour."""
    if tries <= 1:
        return FIRST_RETRY
    delay: timedelta = FIRST_RETRY * (2 ** min(tries - 1, 16))
    return min(delay, LAST_RETRY)


def worth_retrying(status: int | None, retry: bool = True) -> bool:
    """Should a failed post be tried again later? Yes for a network error (no status), a
    5xx, a 429 (too many requests) or a 401 (a token refused: the platform may be mid
    key rotation); no for any other 4xx (the platform refuses this score: a user not in
    the course, a deleted line item) or when the caller knows asking again cannot help."""
    if not retry:
        return False
    if status is None or status >= 500:
        return True
    return status in (401, 408, 429) or status < 400


def marks_hidden_until_later(rule: ReleaseRule, now: datetime, closes_at: datetime | None) -> bool:
    """A cheap first look at the release policy, for the moment a score is queued: True
    when the marks are surely not released yet (never; a time still ahead; a window that
    has not closed yet, or never closes). False means "maybe released": the sender checks
    the full rule (closed for everyone) before it posts anything."""
    if rule.when is ReleaseWhen.IMMEDIATELY:
        return False
    if rule.when is ReleaseWhen.NEVER:
        return True
    if rule.when is ReleaseWhen.AT:
        return rule.at is None or now < rule.at
    return closes_at is None or now < closes_at


def short_error(text: str, limit: int = 500) -> str:
    """An error for the table and the staff page: one line, bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
