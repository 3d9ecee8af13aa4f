"""Staff statistics pages: quiz and item statistics, with charts drawn on the server.

The charts are inline SVG built from geometry computed here: no JavaScript, and no
style attributes (the CSP forbids inline style), only SVG presentation attributes. Each
chart has a <title> and <desc>, and the same numbers are in the tables next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from flask import Blueprint, Response, render_template, request

from quizapp.domain.scoring import format_mark
from quizapp.domain.statistics import MIN_ATTEMPTS_TO_JUDGE, Flag, QuizStatistics, histogram
from quizapp.services.exports import csv_lines
from quizapp.services.statistics import (
    StatisticsReport,
    WhichAttempts,
    quiz_statistics,
    statistics_rows,
)
from quizapp.web import db_session, grace, now
from quizapp.web.security import staff_required

bp = Blueprint("stats", __name__, url_prefix="/staff/stats")


def number(value: float | Fraction | None, places: int = 2) -> str:
    return "—" if value is None else format_mark(Fraction(value), places)


def percent(value: float | Fraction | None, places: int = 1) -> str:
    return "—" if value is None else format_mark(Fraction(value) * 100, places) + " %"


# --------------------------------------------------------------------------- chart geometry


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # under the bar
    value: str  # above the bar (or "n/a")
    value_y: float
    kind: str = ""


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float
    baseline: float
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]


def histogram_chart(stats: QuizStatistics, bins: int = 10) -> Chart:
    """Number of attempts per tenth of the maximum total."""
    width, height, left, right, top, bottom = 640.0, 260.0, 48.0, 12.0, 16.0, 44.0
    counts = histogram(stats.totals, stats.max_total, bins)
    highest = max((b.count for b in counts), default=0) or 1
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / bins
    baseline = top + plot_h
    bars = []
    for i, b in enumerate(counts):
        h = plot_h * b.count / highest
        bars.append(
            Bar(
                x=left + i * step + 2,
                y=baseline - h,
                width=step - 4,
                height=h,
                label=f"{int(b.low * 100)}–{int(b.high * 100)}",
                value=str(b.count),
                value_y=baseline - h - 4,
            )
        )
    ticks = tuple(
        Tick(baseline - plot_h * c / highest, str(c)) for c in sorted({0, highest // 2, highest})
    )
    return Chart(width, height, left, right, top, bottom, baseline, tuple(bars), ticks)


def item_chart(stats: QuizStatistics) -> Chart:
    """Per slot: facility (0 to 100 %) and discrimination index (-100 to 100 %),
    on one axis from -100 % to 100 % with the zero line in the middle."""
    slot_w = 44.0
    left, right, top, bottom = 48.0, 12.0, 16.0, 36.0
    width = max(320.0, left + right + slot_w * len(stats.slots))
    height = 300.0
    plot_h = height - top - bottom
    baseline = top + plot_h / 2
    scale = plot_h / 2  # pixels per 100 %
    bars = []
    for i, slot in enumerate(stats.slots):
        x0 = left + i * slot_w + 4
        facility = slot.stats.facility
        if facility is not None:
            f = float(facility)
            bars.append(
                Bar(
                    x=x0,
                    y=baseline - max(f, 0) * scale,
                    width=16,
                    height=abs(f) * scale,
                    label=str(slot.slot),
                    value=f"{round(f * 100)}",
                    value_y=baseline - max(f, 0) * scale - 3,
                    kind="facility",
                )
            )
        d = slot.stats.discrimination
        bars.append(
            Bar(
                x=x0 + 18,
                y=baseline - max(d, 0) * scale if d is not None else baseline,
                width=16,
                height=abs(d) * scale if d is not None else 0,
                label=str(slot.slot),
                value="n/a" if d is None else f"{round(d * 100)}",
                value_y=(baseline - max(d, 0) * scale - 3) if d is not None else baseline - 3,
                kind="discrimination",
            )
        )
    ticks = tuple(Tick(baseline - p * scale / 100, f"{p}") for p in (-100, -50, 0, 50, 100))
    return Chart(width, height, left, right, top, bottom, baseline, tuple(bars), ticks)


# --------------------------------------------------------------------------- views


def _report(quiz_id: int) -> StatisticsReport:
    which = WhichAttempts.parse(request.args.get("attempts"))
    return quiz_statistics(db_session(), quiz_id, now(), grace(), which)


@bp.route("/quiz/<id:quiz_id>")
@staff_required
def quiz(quiz_id: int) -> str:
    report = _report(quiz_id)
    return render_template(
        "staff/statistics.html",
        report=report,
        s=report.stats,
        histogram=histogram_chart(report.stats),
        items=item_chart(report.stats),
        choices=list(WhichAttempts),
        min_attempts=MIN_ATTEMPTS_TO_JUDGE,
        too_few=Flag.TOO_FEW_ATTEMPTS,
        number=number,
        percent=percent,
    )


@bp.route("/quiz/<id:quiz_id>.csv")
@staff_required
def quiz_csv(quiz_id: int) -> Response:
    # Small (one row per slot), so computed before the response rather than streamed.
    report = _report(quiz_id)
    body = "".join(csv_lines(statistics_rows(report)))
    filename = f"{report.quiz.key}-statistics-{report.which.value}-{now():%Y%m%dT%H%MZ}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
