"""A quiz definition: window, time limit, attempts, release policy and slots."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from quizapp.domain.questions import QUESTION_ID
from quizapp.domain.release import (
    DEFAULT_RELEASE,
    QuestionMarks,
    ReleasePolicy,
    ReleaseRule,
    ReleaseWhen,
)
from quizapp.domain.scoring import GradingPolicy
from quizapp.domain.spec import Path, Problems, SpecReader
from quizapp.domain.timing import Window


@dataclass(frozen=True)
class SlotSpec:
    """One entry of a quiz's `slots:` list: a fixed question, or `draw` from a pool."""

    marks: Fraction | None  # None: the question's own marks
    question: str | None
    pool: str | None
    draw: int
    path: Path


@dataclass(frozen=True)
class QuizDef:
    key: str
    title: str
    description: str
    window: Window
    max_attempts: int
    grading: GradingPolicy
    shuffle_slots: bool
    release: ReleasePolicy
    slots: tuple[SlotSpec, ...]
    timezone: str
    flag_concurrent_use: bool = True


class ClockChangeError(ValueError):
    """A local time that a clock change skips or repeats: the message says what to write."""


def parse_local_time(value: Any, zone: ZoneInfo) -> datetime:
    """A YAML time (a timestamp or text) as an aware datetime; naive means `zone` local time.

    Local times that do not exist (skipped when clocks go forward) are refused rather
    than silently moved by an hour, and so are local times that happen twice (when
    clocks go back) unless they carry their offset, e.g. 2026-10-25 01:30+01:00.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        raise ValueError("give a time as well as a date, for example 2026-12-01 09:00")
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date and time such as 2026-12-01 09:00") from None
    else:
        raise ValueError(f"expected a date and time, got {type(value).__name__}")
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    local = moment.replace(tzinfo=zone)
    roundtrip = local.astimezone(UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != moment:
        raise ClockChangeError(
            f"{moment:%Y-%m-%d %H:%M} does not exist in {zone.key} (clocks change)"
        )
    offsets = ambiguous_offsets(moment, zone)
    if offsets:
        first, second = offsets
        raise ClockChangeError(
            f"{moment:%Y-%m-%d %H:%M} happens twice in {zone.key} (the clocks go back): "
            f"write {moment:%Y-%m-%d %H:%M}{first} for the first or "
            f"{moment:%Y-%m-%d %H:%M}{second} for the second"
        )
    # UTC at once: Python adds a timedelta to a zoned datetime in wall-clock time, so
    # "opens + 24h" across a clock change would otherwise be 23 or 25 real hours.
    return local.astimezone(UTC)


def ambiguous_offsets(naive: datetime, zone: ZoneInfo) -> tuple[str, str] | tuple[()]:
    """The two UTC offsets (`+01:00`, `+00:00`) of a local time that happens twice in
    `zone` (when the clocks go back), first occurrence first; () for any other time."""
    first = naive.replace(tzinfo=zone, fold=0).utcoffset()
    second = naive.replace(tzinfo=zone, fold=1).utcoffset()
    # The offsets differ in a gap too (a time skipped when the clocks go forward), but
    # there the later one is larger; a repeated hour is where the offset goes down.
    if first is None or second is None or first <= second:
        return ()
    return (_offset(first), _offset(second))


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")


def parse_minutes(value: Any) -> timedelta:
    """`60`, `"90m"`, `"1h30m"` or `"24h"` as a timedelta."""
    if isinstance(value, bool):
        raise ValueError("expected minutes, got true/false")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("must be more than 0 minutes")
        return timedelta(minutes=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            hours, minutes = (int(g or 0) for g in match.groups())
            if hours or minutes:
                return timedelta(hours=hours, minutes=minutes)
    raise ValueError(f"expected minutes (60) or a duration such as 1h30m, got {value!r}")


def read_release_rule(
    spec: SpecReader, key: str, zone: ZoneInfo, default: ReleaseRule
) -> ReleaseRule:
    if not spec.has(key):
        return default
    value = spec.raw(key)
    if isinstance(value, str) and value in {
        w.value for w in ReleaseWhen if w is not ReleaseWhen.AT
    }:
        return ReleaseRule(ReleaseWhen(value))
    try:
        return ReleaseRule(ReleaseWhen.AT, parse_local_time(value, zone))
    except ClockChangeError as exc:
        spec.problem(key, str(exc))
        return default
    except ValueError:
        spec.problem(key, "must be immediately, after_close, never, or a date and time")
        return default


def read_quiz(data: Any, path: Path, problems: Problems, course_zone: str) -> QuizDef | None:
    spec = SpecReader(data, path, problems)
    before = len(problems.items)
    key = spec.text("id")
    if key and not QUESTION_ID.match(key):
        spec.problem("id", "use lower-case letters, digits, '-', '_' or '.'")
    title = spec.text("title")
    description = spec.text("description", required=False)
    zone_name = spec.text("timezone", required=False, default=course_zone)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        spec.problem("timezone", f"unknown time zone {zone_name!r}")
        zone = ZoneInfo("UTC")

    opens_at = _time_field(spec, "opens", zone, required=True)
    closes_at = _time_field(spec, "closes", zone, required=False)
    if spec.has("open_for"):
        if closes_at is not None:
            spec.problem("open_for", "give closes or open_for, not both")
        elif opens_at is not None:
            try:
                # Absolute hours: a 24h window across a clock change is still 24 hours.
                closes_at = opens_at + parse_minutes(spec.raw("open_for"))
            except ValueError as exc:
                spec.problem("open_for", str(exc))
    if opens_at and closes_at and closes_at <= opens_at:
        spec.problem("closes", "the window closes before it opens")

    time_limit = None
    if spec.raw("time_limit") is not None:
        try:
            time_limit = parse_minutes(spec.raw("time_limit"))
        except ValueError as exc:
            spec.problem("time_limit", str(exc))
    extend = spec.boolean("extend_close_for_accommodation", default=True)
    attempts = spec.integer("attempts", required=False, default=1, minimum=1)
    grading = GradingPolicy(
        spec.one_of("grading", [g.value for g in GradingPolicy], default="highest")
    )
    shuffle = spec.boolean("shuffle_questions", default=False)
    flag_concurrent = spec.boolean("flag_concurrent_use", default=True)

    release = DEFAULT_RELEASE
    if spec.has("release"):
        rel = spec.child("release", spec.raw("release"))
        question_marks = QuestionMarks.AFTER_CLOSE
        if rel.has("question_marks"):
            raw = rel.raw("question_marks")
            choices = {q.value for q in QuestionMarks}
            if raw in choices:
                question_marks = QuestionMarks(raw)
            else:
                rel.problem("question_marks", f"must be one of {', '.join(sorted(choices))}")
        release = ReleasePolicy(
            marks=read_release_rule(rel, "marks", zone, DEFAULT_RELEASE.marks),
            answers=read_release_rule(rel, "answers", zone, DEFAULT_RELEASE.answers),
            question_marks=question_marks,
        )
        rel.reject_unknown()

    slots = []
    for i, item in enumerate(spec.items("slots", min_items=1)):
        slot = SpecReader(item, path + ("slots", i), problems)
        marks = slot.exact("marks", required=False, positive=True)
        question = slot.text("question", required=False) or None
        pool = slot.text("pool", required=False) or None
        draw = slot.integer("draw", required=False, default=1, minimum=1)
        if (question is None) == (pool is None):
            slot.problem(None, "give either question: ID or pool: TAG")
        if question is not None and slot.has("draw"):
            slot.problem("draw", "draw only applies to a pool")
        slot.reject_unknown()
        slots.append(SlotSpec(marks, question, pool, draw, path + ("slots", i)))
    spec.reject_unknown()

    if len(problems.items) > before or opens_at is None:
        return None
    window = Window(opens_at, closes_at, time_limit, extend)
    return QuizDef(
        key,
        title,
        description,
        window,
        attempts,
        grading,
        shuffle,
        release,
        tuple(slots),
        zone.key,
        flag_concurrent,
    )


def _time_field(spec: SpecReader, key: str, zone: ZoneInfo, *, required: bool) -> datetime | None:
    value = spec.raw(key)
    if value is None:
        if required:
            spec.problem(key, "is required")
        return None
    try:
        return parse_local_time(value, zone)
    except ValueError as exc:
        spec.problem(key, str(exc))
        return None
