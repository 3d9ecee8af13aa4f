"""The deadline rule, as a table a student or examiner would recognise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from quizapp.domain.timing import (
    Accommodation,
    Window,
    WindowState,
    accepts_saves,
    is_expired,
    timing_for,
)

OPENS = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CLOSES = OPENS + timedelta(hours=24)
HOUR = timedelta(hours=1)


def at(hours: float = 0, minutes: float = 0) -> datetime:
    return OPENS + timedelta(hours=hours, minutes=minutes)


@pytest.mark.parametrize(
    ("case", "window", "accommodation", "started", "deadline"),
    [
        (
            "early start: the time limit decides",
            Window(OPENS, CLOSES, HOUR),
            Accommodation(),
            at(1),
            at(2),
        ),
        (
            "late start: the window close cuts it",
            Window(OPENS, CLOSES, HOUR),
            Accommodation(),
            at(23, 30),
            at(24),
        ),
        (
            "no time limit: the close decides",
            Window(OPENS, CLOSES, None),
            Accommodation(),
            at(3),
            at(24),
        ),
        (
            "no close: the time limit decides",
            Window(OPENS, None, HOUR),
            Accommodation(),
            at(100),
            at(101),
        ),
        ("neither: no deadline", Window(OPENS, None, None), Accommodation(), at(5), None),
        (
            "factor 1.5 on 60 minutes",
            Window(OPENS, CLOSES, HOUR),
            Accommodation(Fraction(3, 2)),
            at(1),
            at(2, 30),
        ),
        (
            "factor 1.25 on 60 minutes",
            Window(OPENS, CLOSES, HOUR),
            Accommodation(Fraction(5, 4)),
            at(1),
            at(2, 15),
        ),
        (
            "extra 20 minutes",
            Window(OPENS, CLOSES, HOUR),
            Accommodation(extra_minutes=20),
            at(1),
            at(2, 20),
        ),
        (
            "accommodation also pushes the close, so a late start keeps the extra time",
            Window(OPENS, CLOSES, HOUR),
            Accommodation(Fraction(3, 2)),
            at(23),
            at(24, 30),
        ),
        (
            "quiz turns the push off: the close cuts the accommodation",
            Window(OPENS, CLOSES, HOUR, extend_close_for_accommodation=False),
            Accommodation(Fraction(3, 2)),
            at(23),
            at(24),
        ),
        (
            "accommodation with no time limit changes nothing",
            Window(OPENS, CLOSES, None),
            Accommodation(Fraction(2)),
            at(1),
            at(24),
        ),
    ],
)
def test_deadline_rule(case, window, accommodation, started, deadline):
    assert timing_for(window, accommodation).deadline_if_started_at(started) == deadline, case


def test_window_states_are_half_open():
    timing = timing_for(Window(OPENS, CLOSES, HOUR))
    assert timing.state_at(OPENS - timedelta(seconds=1)) is WindowState.UPCOMING
    assert timing.state_at(OPENS) is WindowState.OPEN
    assert timing.state_at(CLOSES - timedelta(microseconds=1)) is WindowState.OPEN
    assert timing.state_at(CLOSES) is WindowState.CLOSED


def test_cut_by_close_is_reported_for_the_start_page():
    timing = timing_for(Window(OPENS, CLOSES, HOUR))
    assert not timing.is_cut_by_close(at(1))
    assert timing.is_cut_by_close(at(23, 23))
    assert timing.deadline_if_started_at(at(23, 23)) - at(23, 23) == timedelta(minutes=37)


def test_grace_accepts_saves_until_deadline_plus_grace_inclusive():
    deadline = at(2)
    grace = timedelta(seconds=10)
    assert accepts_saves(deadline, deadline + grace, grace)
    assert not accepts_saves(deadline, deadline + grace + timedelta(microseconds=1), grace)
    assert is_expired(deadline, deadline + timedelta(seconds=11), grace)
    assert not is_expired(None, at(1000), grace)


def test_window_refuses_naive_times():
    with pytest.raises(ValueError):
        Window(datetime(2026, 1, 1), None, HOUR)


def test_exact_factor_has_no_float_drift():
    extra = Accommodation(Fraction(1, 3)).extra_time(timedelta(minutes=90))
    assert extra == timedelta(minutes=-60)  # a factor below 1 shortens, exactly
    assert Accommodation(Fraction(4, 3)).extra_time(timedelta(minutes=90)) == timedelta(minutes=30)


# --- Overrides: per student, per group (most generous), the student's own winning. ---
from quizapp.domain.timing import Override, combine, most_generous, recomputed_deadline  # noqa: E402

W = Window(OPENS, CLOSES, HOUR)
LATE_CLOSE = CLOSES + timedelta(hours=2)


@pytest.mark.parametrize(
    ("case", "accommodation", "own", "groups", "started", "deadline"),
    [
        (
            "student's own longer limit",
            Accommodation(),
            Override(time_limit=timedelta(minutes=80)),
            [],
            at(1),
            at(2, 20),
        ),
        (
            "an override that shortens",
            Accommodation(),
            Override(time_limit=timedelta(minutes=30)),
            [],
            at(1),
            at(1, 30),
        ),
        (
            "student's later close lets a late start keep its hour",
            Accommodation(),
            Override(closes_at=LATE_CLOSE),
            [],
            at(23, 30),
            at(24, 30),
        ),
        (
            "student's earlier close cuts",
            Accommodation(),
            Override(closes_at=at(2)),
            [],
            at(1, 30),
            at(2),
        ),
        (
            "most generous of two groups",
            Accommodation(),
            None,
            [
                Override(time_limit=timedelta(minutes=70)),
                Override(time_limit=timedelta(minutes=90)),
            ],
            at(1),
            at(2, 30),
        ),
        (
            "own override wins over a more generous group",
            Accommodation(),
            Override(time_limit=timedelta(minutes=45)),
            [Override(time_limit=timedelta(minutes=90))],
            at(1),
            at(1, 45),
        ),
        (
            "accommodation applies on top of a group's limit and close",
            Accommodation(Fraction(3, 2)),
            None,
            [Override(time_limit=timedelta(minutes=40), closes_at=at(10))],
            at(9, 50),
            at(10, 20),  # 60 minutes, but the close (pushed by 20) cuts it
        ),
        (
            "an accommodation applies to the student's own limit too (one rule)",
            Accommodation(Fraction(3, 2)),
            Override(time_limit=timedelta(minutes=100)),
            [],
            at(1),
            at(3, 30),  # 100 minutes x 1.5
        ),
        (
            "issue 16: +25 % and an own limit of 70 minutes is 87 min 30 s, never less",
            Accommodation(Fraction(5, 4)),
            Override(time_limit=timedelta(minutes=70)),
            [],
            at(1),
            at(2, 27.5),
        ),
        (
            "extra minutes of an accommodation are added to an override's limit",
            Accommodation(extra_minutes=15),
            Override(time_limit=timedelta(minutes=70)),
            [],
            at(1),
            at(2, 25),
        ),
        (
            "an own close is pushed by the accommodation like the quiz's",
            Accommodation(Fraction(3, 2)),
            Override(closes_at=at(2)),
            [],
            at(1, 30),
            at(2, 30),  # the close, pushed by 30 (half of the 60-minute limit)
        ),
        (
            "no time limit: the close decides",
            Accommodation(),
            Override(no_time_limit=True),
            [],
            at(1),
            CLOSES,
        ),
        (
            "no close: the limit decides, even when started just before the quiz's close",
            Accommodation(),
            Override(no_close=True),
            [],
            at(23, 50),
            at(24, 50),
        ),
        (
            "no limit and no close: no deadline at all",
            Accommodation(Fraction(3, 2)),
            Override(no_time_limit=True, no_close=True),
            [],
            at(1),
            None,
        ),
        (
            "a group's unlimited time beats another group's longer limit",
            Accommodation(),
            None,
            [Override(time_limit=timedelta(minutes=90)), Override(no_time_limit=True)],
            at(1),
            CLOSES,
        ),
        (
            "the student's own limit wins over a group's unlimited time",
            Accommodation(),
            Override(time_limit=timedelta(minutes=45)),
            [Override(no_time_limit=True)],
            at(1),
            at(1, 45),
        ),
        (
            "the student's own 'no close' wins over a group's close",
            Accommodation(),
            Override(no_close=True),
            [Override(closes_at=at(2))],
            at(1, 30),
            at(2, 30),
        ),
    ],
)
def test_overrides(case, accommodation, own, groups, started, deadline):
    timing = timing_for(W, accommodation, own, groups)
    assert timing.deadline_if_started_at(started) == deadline, case


def test_group_overrides_combine_field_by_field():
    merged = most_generous(
        [Override(opens_at=at(2), max_attempts=2), Override(opens_at=at(1), closes_at=LATE_CLOSE)]
    )
    assert merged == Override(opens_at=at(1), closes_at=LATE_CLOSE, max_attempts=2)
    assert combine(Override(max_attempts=1), [Override(max_attempts=3)]).max_attempts == 1
    assert combine(None, []) == Override()


def test_the_timing_keeps_the_parts_staff_see_in_the_why_text():
    timing = timing_for(
        W, Accommodation(Fraction(5, 4)), Override(time_limit=timedelta(minutes=70))
    )
    assert timing.base_time_limit == timedelta(minutes=70)
    assert timing.extra == timedelta(minutes=17, seconds=30)
    assert timing.time_limit == timedelta(minutes=87, seconds=30)
    assert timing.base_closes_at == CLOSES and timing.closes_at == CLOSES + timing.extra


def test_an_earlier_open_for_one_student():
    timing = timing_for(W, student_override=Override(opens_at=OPENS - HOUR))
    assert timing.state_at(OPENS - timedelta(minutes=30)) is WindowState.OPEN


@pytest.mark.parametrize(
    ("new_limit", "now", "deadline"),
    [
        (timedelta(minutes=80), at(1, 50), at(2, 20)),  # extended mid-attempt
        (timedelta(minutes=30), at(1, 10), at(1, 30)),  # shortened, still in the future
        (timedelta(minutes=30), at(1, 45), at(1, 45)),  # shortened below the time used: ends now
    ],
)
def test_changing_an_override_mid_attempt_recomputes_the_deadline(new_limit, now, deadline):
    timing = timing_for(W, student_override=Override(time_limit=new_limit))
    assert recomputed_deadline(timing, at(1), now) == deadline


def test_recomputed_deadline_with_no_limit_and_no_close_is_none():
    timing = timing_for(Window(OPENS, None, None))
    assert recomputed_deadline(timing, at(1), at(2)) is None
