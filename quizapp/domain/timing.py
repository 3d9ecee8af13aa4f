"""Timing rules: when a student may start, when their attempt must end.

The deadline rule (DESIGN.md):

    deadline = min(started_at + time_limit_for(student), closes_at_for(student))

An accommodation (a time factor such as 1.25, or extra minutes) lengthens the time
limit and, unless the quiz turns it off, pushes the student's window close out by
the same extra time, so that starting late does not silently eat the extra time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction


class AttemptState(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    TIMED_OUT = "timed_out"

    @property
    def is_final(self) -> bool:
        return self is not AttemptState.IN_PROGRESS


class WindowState(enum.StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Accommodation:
    """Extra time granted to one student for every quiz: a factor, extra minutes, or both."""

    time_factor: Fraction = Fraction(1)
    extra_minutes: int = 0

    def extra_time(self, time_limit: timedelta) -> timedelta:
        """How much longer than `time_limit` this student may take."""
        # Exact: scale whole microseconds by the Fraction, not by a binary float.
        micros = time_limit // timedelta(microseconds=1)
        scaled = timedelta(microseconds=round(micros * self.time_factor))
        return (scaled - time_limit) + timedelta(minutes=self.extra_minutes)

    @property
    def is_none(self) -> bool:
        return self.time_factor == 1 and self.extra_minutes == 0


NO_ACCOMMODATION = Accommodation()


@dataclass(frozen=True)
class Window:
    """When a quiz may be started, and how long an attempt may last."""

    opens_at: datetime
    closes_at: datetime | None
    time_limit: timedelta | None
    extend_close_for_accommodation: bool = True

    def __post_init__(self) -> None:
        if self.opens_at.tzinfo is None or (self.closes_at and self.closes_at.tzinfo is None):
            raise ValueError("window times must be timezone-aware")


@dataclass(frozen=True)
class StudentTiming:
    """A quiz window as it applies to one student, after accommodations."""

    opens_at: datetime
    closes_at: datetime | None
    time_limit: timedelta | None

    def state_at(self, now: datetime) -> WindowState:
        if now < self.opens_at:
            return WindowState.UPCOMING
        if self.closes_at is not None and now >= self.closes_at:
            return WindowState.CLOSED
        return WindowState.OPEN

    def deadline_if_started_at(self, started_at: datetime) -> datetime | None:
        """The moment an attempt started at `started_at` must end (None: never)."""
        candidates = []
        if self.time_limit is not None:
            candidates.append(started_at + self.time_limit)
        if self.closes_at is not None:
            candidates.append(self.closes_at)
        return min(candidates) if candidates else None

    def is_cut_by_close(self, started_at: datetime) -> bool:
        """True when the window close, not the time limit, decides the deadline."""
        if self.time_limit is None or self.closes_at is None:
            return False
        return self.closes_at < started_at + self.time_limit


def timing_for(window: Window, accommodation: Accommodation = NO_ACCOMMODATION) -> StudentTiming:
    """Apply a student's accommodation to a quiz window."""
    if window.time_limit is None or accommodation.is_none:
        return StudentTiming(window.opens_at, window.closes_at, window.time_limit)
    extra = accommodation.extra_time(window.time_limit)
    closes_at = window.closes_at
    if closes_at is not None and window.extend_close_for_accommodation:
        closes_at = closes_at + extra
    return StudentTiming(window.opens_at, closes_at, window.time_limit + extra)


def is_expired(deadline_at: datetime | None, now: datetime, grace: timedelta) -> bool:
    """An attempt is over once its deadline plus the grace period has passed."""
    return deadline_at is not None and now > deadline_at + grace


def accepts_saves(deadline_at: datetime | None, now: datetime, grace: timedelta) -> bool:
    """Saves arriving up to `grace` after the deadline still count (network latency)."""
    return not is_expired(deadline_at, now, grace)
