"""Timing rules: when a student may start, when their attempt must end.

The deadline rule (DESIGN.md):

    deadline = min(started_at + time_limit_for(student), closes_at_for(student))

An accommodation (a time factor such as 1.25, or extra minutes) lengthens the time
limit and, unless the quiz turns it off, pushes the student's window close out by
the same extra time, so that starting late does not silently eat the extra time.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TypeVar

_T = TypeVar("_T", datetime, timedelta, int)


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
    """A quiz window as it applies to one student, after overrides and accommodations.

    `base_time_limit` and `base_closes_at` are the values before the accommodation (the
    quiz's, or an override's), `extra` what the accommodation added: the parts staff see
    in the per-student "why" text."""

    opens_at: datetime
    closes_at: datetime | None
    time_limit: timedelta | None
    base_time_limit: timedelta | None = None
    base_closes_at: datetime | None = None
    extra: timedelta = timedelta(0)

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


@dataclass(frozen=True)
class Override:
    """Staff changes to a quiz for one student or one group; None keeps the quiz's value.
    `no_time_limit` and `no_close` say "unlimited" (Moodle's override semantics have
    both): no limit at all, or a window that never closes."""

    opens_at: datetime | None = None
    closes_at: datetime | None = None
    time_limit: timedelta | None = None
    max_attempts: int | None = None
    no_time_limit: bool = False
    no_close: bool = False

    @property
    def sets_time_limit(self) -> bool:
        return self.no_time_limit or self.time_limit is not None

    @property
    def sets_close(self) -> bool:
        return self.no_close or self.closes_at is not None


NO_OVERRIDE = Override()


def most_generous(overrides: Iterable[Override]) -> Override:
    """Several group overrides combine field by field, the most generous winning
    (Moodle's rule): earliest open, latest close, longest time, most attempts; an
    unlimited time or a window that never closes beats any value."""
    items = list(overrides)

    def pick(values: list[_T | None], choose: Callable[[list[_T]], _T]) -> _T | None:
        present = [v for v in values if v is not None]
        return choose(present) if present else None

    no_limit = any(o.no_time_limit for o in items)
    no_close = any(o.no_close for o in items)
    return Override(
        opens_at=pick([o.opens_at for o in items], min),
        closes_at=None if no_close else pick([o.closes_at for o in items], max),
        time_limit=None if no_limit else pick([o.time_limit for o in items], max),
        max_attempts=pick([o.max_attempts for o in items], max),
        no_time_limit=no_limit,
        no_close=no_close,
    )


def combine(student: Override | None, groups: Iterable[Override] = ()) -> Override:
    """The student's own override wins, field by field, over their groups' overrides."""
    group = most_generous(groups)
    own = student or NO_OVERRIDE
    limit_from = own if own.sets_time_limit else group
    close_from = own if own.sets_close else group
    return Override(
        opens_at=own.opens_at if own.opens_at is not None else group.opens_at,
        closes_at=close_from.closes_at,
        time_limit=limit_from.time_limit,
        max_attempts=own.max_attempts if own.max_attempts is not None else group.max_attempts,
        no_time_limit=limit_from.no_time_limit,
        no_close=close_from.no_close,
    )


def timing_for(
    window: Window,
    accommodation: Accommodation = NO_ACCOMMODATION,
    student_override: Override | None = None,
    group_overrides: Iterable[Override] = (),
) -> StudentTiming:
    """A quiz window as it applies to one student.

    One rule for every case (README, "Deadlines"): an override replaces the quiz's
    values for that student or group (the student's own wins over their groups', the
    most generous group wins among groups); the accommodation then applies to whatever
    applies, exactly as it would to the quiz's own values: it lengthens the time limit
    (a factor and/or extra minutes) and, unless the quiz turns it off, pushes the close
    out by the same extra time. So an override can never take an accommodation away:
    70 minutes for a student with +25 % means 87 min 30 s.
    """
    chosen = combine(student_override, group_overrides)
    opens_at = chosen.opens_at or window.opens_at
    if chosen.no_time_limit:
        base_limit: timedelta | None = None
    else:
        base_limit = chosen.time_limit if chosen.time_limit is not None else window.time_limit
    if chosen.no_close:
        base_close: datetime | None = None
    else:
        base_close = chosen.closes_at if chosen.closes_at is not None else window.closes_at

    extra = timedelta(0)
    if base_limit is not None and not accommodation.is_none:
        extra = accommodation.extra_time(base_limit)
    time_limit = base_limit + extra if base_limit is not None else None
    closes_at = base_close
    if base_close is not None and window.extend_close_for_accommodation and extra > timedelta(0):
        closes_at = base_close + extra
    return StudentTiming(opens_at, closes_at, time_limit, base_limit, base_close, extra)


def recomputed_deadline(
    timing: StudentTiming, started_at: datetime, now: datetime
) -> datetime | None:
    """The deadline of a running attempt after staff changed an override.

    Never earlier than `now`: a shortened limit cannot take back time already used, so
    an attempt that would already be over ends now (its saved answers kept).
    """
    deadline = timing.deadline_if_started_at(started_at)
    if deadline is None:
        return None
    return max(deadline, now)


def is_expired(deadline_at: datetime | None, now: datetime, grace: timedelta) -> bool:
    """An attempt is over once its deadline plus the grace period has passed."""
    return deadline_at is not None and now > deadline_at + grace


def accepts_saves(deadline_at: datetime | None, now: datetime, grace: timedelta) -> bool:
    """Saves arriving up to `grace` after the deadline still count (network latency)."""
    return not is_expired(deadline_at, now, grace)
