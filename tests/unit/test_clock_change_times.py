"""Local times that a clock change repeats (or skips) are refused where they are written:
in a quiz file (file:line) and in the staff intervention form."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from quizapp.bank.loader import load_bank
from quizapp.domain.quiz import ClockChangeError, ambiguous_offsets, parse_local_time
from quizapp.services.errors import InvalidInput
from quizapp.services.interventions import local_to_utc

LONDON = ZoneInfo("Europe/London")


def test_a_fall_back_time_is_refused_with_both_offsets_to_choose_from() -> None:
    with pytest.raises(ClockChangeError) as caught:
        parse_local_time("2026-10-25 01:30", LONDON)
    message = str(caught.value)
    assert "happens twice in Europe/London" in message
    assert "2026-10-25 01:30+01:00" in message and "2026-10-25 01:30+00:00" in message


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-10-25 01:30+01:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("2026-10-25 01:30+00:00", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
        ("2026-10-25 02:30", datetime(2026, 10, 25, 2, 30, tzinfo=UTC)),
        ("2026-10-25 00:59", datetime(2026, 10, 24, 23, 59, tzinfo=UTC)),
    ],
)
def test_an_explicit_offset_or_an_unrepeated_time_is_accepted(text: str, utc: datetime) -> None:
    assert parse_local_time(text, LONDON) == utc


def test_ambiguous_offsets_only_for_the_repeated_hour() -> None:
    assert ambiguous_offsets(datetime(2026, 10, 25, 1, 0), LONDON) == ("+01:00", "+00:00")
    assert ambiguous_offsets(datetime(2026, 10, 25, 2, 0), LONDON) == ()
    assert ambiguous_offsets(datetime(2026, 7, 1, 1, 30), LONDON) == ()
    # a time skipped when the clocks go forward is not "twice" (it is "does not exist")
    assert ambiguous_offsets(datetime(2026, 3, 29, 1, 30), LONDON) == ()


QUIZ = """\
quiz:
  id: q
  title: Q
  opens: 2026-10-20 09:00
  closes: {closes}
  release:
    marks: {release}
  slots:
    - question: a
questions:
  - id: a
    type: true_false
    stem: Yes?
    answer: true
"""


def test_the_bank_reports_a_repeated_time_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "quiz.yaml").write_text(
        QUIZ.format(closes="2026-10-25 01:30", release="2026-10-25 01:15"), encoding="utf-8"
    )
    bank = load_bank(tmp_path)
    shown = [str(p) for p in bank.problems]
    assert any(
        s.startswith("quiz.yaml:5: quiz.closes: 2026-10-25 01:30 happens twice") for s in shown
    ), shown
    assert any(
        s.startswith("quiz.yaml:7: quiz.release.marks: 2026-10-25 01:15 happens") for s in shown
    )


def test_the_bank_accepts_a_repeated_time_with_its_offset(tmp_path: Path) -> None:
    (tmp_path / "quiz.yaml").write_text(
        QUIZ.format(closes="2026-10-25 01:30+00:00", release="after_close"), encoding="utf-8"
    )
    bank = load_bank(tmp_path)
    assert bank.ok, bank.problems
    assert bank.quizzes["q"].quiz.window.closes_at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_the_staff_form_refuses_a_repeated_time() -> None:
    with pytest.raises(InvalidInput, match="happens twice in Europe/London"):
        local_to_utc(datetime(2026, 10, 25, 1, 30), LONDON)
    assert local_to_utc(datetime(2026, 10, 25, 2, 30), LONDON) == datetime(
        2026, 10, 25, 2, 30, tzinfo=UTC
    )
