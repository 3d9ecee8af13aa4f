"""The fast statistics (integer sums on a common denominator) against the definitions.

`reference` below is the straightforward computation the module used to do: every
statistic from its definition, in Fractions, column by column (alpha-if-deleted sums the
other columns again). On random mark matrices the two must give equal results: the same
exact Fractions, and the same floats (each is the square root of the same exact ratio,
correctly rounded either way), so whole QuizStatistics objects compare equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction as F

from hypothesis import given, settings
from hypothesis import strategies as hs

from quizapp.domain import statistics as st


def _alpha(columns: Sequence[Sequence[F]], n: int) -> tuple[F | None, str]:
    if n == 0:
        return None, st.NO_ATTEMPTS
    if n < 2:
        return None, st.TOO_FEW_ATTEMPTS
    if len(columns) < 2:
        return None, st.TOO_FEW_SLOTS
    totals = [sum(row, F(0)) for row in zip(*columns, strict=True)]
    total_variance = st.sample_variance(totals)
    assert total_variance is not None
    if total_variance == 0:
        return None, st.TOTAL_ZERO_VARIANCE
    variances = [st.sample_variance(column) for column in columns]
    return st.cronbach_alpha([v for v in variances if v is not None], total_variance), ""


def reference(
    marks: list[list[F]],
    max_marks: list[F],
    labels: list[list[str]] | None,
    min_attempts: int,
) -> st.QuizStatistics:
    k, n = len(max_marks), len(marks)
    columns = [[row[j] for row in marks] for j in range(k)]
    totals = [sum(row, F(0)) for row in marks]
    variance = st.sample_variance(totals)
    sd = st.sqrt(variance)
    alpha, reason = _alpha(columns, n)
    error_ratio = None if alpha is None else math.sqrt(1 - alpha)
    slots = []
    for j in range(k):
        rest = [t - m for t, m in zip(totals, columns[j], strict=True)]
        item = st.item_statistics(columns[j], rest, max_marks[j], min_attempts)
        if k - 1 < 2:
            deleted: tuple[F | None, str] = (None, st.TOO_FEW_SLOTS)
        else:
            deleted = _alpha(columns[:j] + columns[j + 1 :], n)
        variants = []
        if labels is not None:
            groups: dict[str, list[int]] = {}
            for i in range(n):
                groups.setdefault(labels[i][j], []).append(i)
            for label in sorted(groups):
                rows = groups[label]
                variants.append(
                    st.VariantStatistics(
                        label,
                        st.item_statistics(
                            [columns[j][i] for i in rows],
                            [rest[i] for i in rows],
                            max_marks[j],
                            min_attempts,
                        ),
                    )
                )
        slots.append(st.SlotStatistics(j + 1, item, *deleted, variants=tuple(variants)))
    return st.QuizStatistics(
        n=n,
        max_total=sum(max_marks, F(0)),
        mean=st.mean(totals),
        median=st.median(totals),
        variance=variance,
        sd=sd,
        minimum=min(totals) if totals else None,
        maximum=max(totals) if totals else None,
        alpha=alpha,
        alpha_undefined_because=reason,
        error_ratio=error_ratio,
        standard_error=None if error_ratio is None or sd is None else error_ratio * sd,
        totals=tuple(totals),
        slots=tuple(slots),
    )


MARKS = hs.builds(F, hs.integers(-3, 12), hs.sampled_from([1, 1, 1, 2, 3, 4, 6, 7]))


@hs.composite
def quizzes(draw: hs.DrawFn) -> tuple[list[list[F]], list[F], list[list[str]] | None, int]:
    k = draw(hs.integers(0, 5))
    n = draw(hs.integers(0, 14))
    # Few distinct values per column, so zero variances and ties happen often.
    palettes = [draw(hs.lists(MARKS, min_size=1, max_size=3)) for _ in range(k)]
    marks = [[draw(hs.sampled_from(palettes[j])) for j in range(k)] for _ in range(n)]
    max_marks = [draw(hs.sampled_from([F(0), F(1), F(2), F(7, 3), F(5)])) for _ in range(k)]
    labels = None
    if draw(hs.booleans()):
        labels = [[draw(hs.sampled_from("pq")) for _ in range(k)] for _ in range(n)]
    return marks, max_marks, labels, draw(hs.sampled_from([1, 3, st.MIN_ATTEMPTS_TO_JUDGE]))


@settings(max_examples=300, deadline=None)
@given(quizzes())
def test_sums_agree_with_the_definitions(case) -> None:  # type: ignore[no-untyped-def]
    marks, max_marks, labels, min_attempts = case
    fast = st.quiz_statistics(marks, max_marks, labels=labels, min_attempts=min_attempts)
    assert fast == reference(marks, max_marks, labels, min_attempts)


@settings(max_examples=100, deadline=None)
@given(quizzes())
def test_scaled_columns_with_a_larger_denominator_give_the_same(case) -> None:  # type: ignore[no-untyped-def]
    """Any common denominator, not only the least, gives the same results."""
    marks, max_marks, labels, min_attempts = case
    exact = st.quiz_statistics(marks, max_marks, labels=labels, min_attempts=min_attempts)
    d = 5 * st.common_denominator(m for row in marks for m in row)
    columns = [[int(row[j] * d) for row in marks] for j in range(len(max_marks))]
    by_column = None if labels is None else [list(c) for c in zip(*labels, strict=True)]
    if labels is not None and not marks:
        by_column = [[] for _ in max_marks]
    scaled = st.scaled_statistics(
        columns,
        d,
        max_marks,
        labels=by_column,
        min_attempts=min_attempts,
        attempts=len(marks),
    )
    assert scaled == exact


def test_a_perfect_correlation_is_exactly_one() -> None:
    # Slot 1 equals slot 2 in every attempt: each is perfectly correlated with the rest.
    marks = [[F(m, 3), F(m, 3)] for m in (0, 1, 2, 3, 1)]
    quiz = st.quiz_statistics(marks, [F(1), F(1)])
    assert [s.stats.discrimination for s in quiz.slots] == [1.0, 1.0]


def test_scaled_statistics_checks_its_input() -> None:
    import pytest

    with pytest.raises(ValueError):
        st.scaled_statistics([[1, 2]], 0, [F(1)])
    with pytest.raises(ValueError):
        st.scaled_statistics([[1, 2], [1]], 1, [F(1), F(1)])
    with pytest.raises(ValueError):
        st.scaled_statistics([[1, 2]], 1, [F(1)], attempts=3)


@settings(max_examples=200, deadline=None)
@given(
    hs.lists(hs.builds(F, hs.integers(-20, 80), hs.integers(1, 12)), max_size=30),
    hs.builds(F, hs.integers(-2, 40), hs.integers(1, 6)),
    hs.integers(1, 12),
)
def test_histogram_in_integers_matches_the_definition(totals, max_total, bins) -> None:  # type: ignore[no-untyped-def]
    counts = [0] * bins
    for value in totals:
        share = F(0) if max_total <= 0 else value / max_total
        counts[min(max(math.floor(share * bins), 0), bins - 1)] += 1
    assert [b.count for b in st.histogram(totals, max_total, bins)] == counts
