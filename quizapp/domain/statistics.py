"""Quiz and item statistics (Moodle's "quiz statistics report"), from plain numbers.

The input is a matrix: one row per counted attempt, one column per slot, each cell the
attempt's current mark for that slot as an exact Fraction, plus each slot's maximum mark.
Which attempts count, and which mark is current, is decided by the caller (the service).

Definitions follow Moodle's "Quiz statistics calculations" (docs.moodle.org/dev):

- mean, median, minimum and maximum of the attempt totals: exact Fractions;
- variances are sample variances (divide by n - 1), also exact; standard deviations are
  their square roots, as floats;
- coefficient of internal consistency (Cronbach's alpha), with k slots:
      alpha = k / (k - 1) * (1 - sum(variance of each slot) / variance of the total)
  exact, since it needs no square root; Moodle shows it as a percentage;
- error ratio = sqrt(1 - alpha) and standard error = error ratio * SD(total) (Moodle);
- facility index of a slot = mean mark / maximum mark (Moodle shows it as a percentage;
  with negative marking Moodle rescales from the minimum possible mark, which we do not
  store, so a negative mean gives a negative facility here);
- discrimination index of a slot = the Pearson correlation between the slot's mark and
  the total of the OTHER slots (the corrected item-total correlation), as a percentage;
- alpha if item deleted = alpha of the quiz computed without that slot.

A statistic that cannot be computed is None with a reason, never a division by zero:
fewer than two attempts (no variance), a slot where everyone got the same mark (no
correlation), fewer than two slots (no alpha), a total with zero variance.

Thresholds for flags (Moodle's guidance in its docs on the report: facility 90-94 is
"very easy", 6-10 "very difficult"; a discrimination index of 0-19 is "very weak" and a
negative one means "the question is probably invalid"):
    very easy:      facility > 90 %
    very hard:      facility < 10 %
    negative:       discrimination index < 0
    weak:           0 <= discrimination index < 20 %
    undefined:      the discrimination index cannot be computed (zero variance)

None of these is said of an item answered in fewer than MIN_ATTEMPTS_TO_JUDGE attempts:
one student who got a question wrong makes its facility 0 % ("very hard"), and a
correlation over a handful of attempts is mostly noise. Below the minimum the only flag
is "too few attempts to judge"; the numbers are still shown. Ten follows the usual
advice that item analysis needs a class, not a few students, to mean anything (Moodle
computes from any number, and staff learnt to distrust its flags on small groups).
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

VERY_EASY_ABOVE = Fraction(9, 10)
VERY_HARD_BELOW = Fraction(1, 10)
WEAK_DISCRIMINATION_BELOW = 0.2
# Below this many attempts at an item, no flag judges it: "too few attempts to judge".
MIN_ATTEMPTS_TO_JUDGE = 10

# Reasons a statistic is undefined, shown to staff next to the blank value.
TOO_FEW_ATTEMPTS = "needs at least two attempts"
NO_ATTEMPTS = "no finished attempts"
SLOT_ZERO_VARIANCE = "every attempt has the same mark for this slot"
REST_ZERO_VARIANCE = "the other slots' total is the same in every attempt"
TOO_FEW_SLOTS = "needs at least two slots"
TOTAL_ZERO_VARIANCE = "every attempt has the same total"


class Flag(enum.StrEnum):
    """Something staff should look at in a slot (or one question drawn into it)."""

    VERY_EASY = "very easy"
    VERY_HARD = "very hard"
    NEGATIVE_DISCRIMINATION = "negative discrimination"
    WEAK_DISCRIMINATION = "weak discrimination"
    DISCRIMINATION_UNDEFINED = "discrimination undefined"
    TOO_FEW_ATTEMPTS = "too few attempts to judge"


# --------------------------------------------------------------------------- helpers


def mean(values: Sequence[Fraction]) -> Fraction | None:
    """The arithmetic mean, exact; None for no values."""
    if not values:
        return None
    return sum(values, Fraction(0)) / len(values)


def median(values: Sequence[Fraction]) -> Fraction | None:
    """The middle value, or the mean of the two middle values; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def sample_variance(values: Sequence[Fraction]) -> Fraction | None:
    """Sum of squared deviations / (n - 1), exact; None below two values."""
    if len(values) < 2:
        return None
    centre = sum(values, Fraction(0)) / len(values)
    return sum(((v - centre) ** 2 for v in values), Fraction(0)) / (len(values) - 1)


def sample_covariance(xs: Sequence[Fraction], ys: Sequence[Fraction]) -> Fraction | None:
    """Sum of products of deviations / (n - 1), exact; None below two pairs."""
    if len(xs) != len(ys):
        raise ValueError("covariance needs paired values")
    if len(xs) < 2:
        return None
    mx = sum(xs, Fraction(0)) / len(xs)
    my = sum(ys, Fraction(0)) / len(ys)
    return sum(((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)), Fraction(0)) / (
        len(xs) - 1
    )


def sqrt(value: Fraction | None) -> float | None:
    return None if value is None else math.sqrt(value)


@dataclass(frozen=True)
class Correlation:
    """A Pearson correlation, or None with the reason it is undefined."""

    value: float | None
    undefined_because: str = ""


def pearson(xs: Sequence[Fraction], ys: Sequence[Fraction]) -> Correlation:
    """Pearson's r = cov(x, y) / (sd(x) sd(y)).

    r squared = cov^2 / (var x * var y) is computed exactly and only its square root is
    a float, so a perfect correlation is exactly 1.0.
    """
    if len(xs) < 2:
        return Correlation(None, TOO_FEW_ATTEMPTS)
    vx, vy, cov = sample_variance(xs), sample_variance(ys), sample_covariance(xs, ys)
    assert vx is not None and vy is not None and cov is not None
    if vx == 0:
        return Correlation(None, SLOT_ZERO_VARIANCE)
    if vy == 0:
        return Correlation(None, REST_ZERO_VARIANCE)
    r_squared = cov * cov / (vx * vy)
    return Correlation(math.copysign(math.sqrt(r_squared), cov))


def cronbach_alpha(item_variances: Sequence[Fraction], total_variance: Fraction) -> Fraction:
    """alpha = k / (k - 1) * (1 - sum(item variances) / variance(total)); the caller
    makes sure k >= 2 and variance(total) > 0."""
    k = len(item_variances)
    return Fraction(k, k - 1) * (1 - sum(item_variances, Fraction(0)) / total_variance)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ItemStatistics:
    """Statistics of one slot, or of one question drawn into a slot (a subset of the
    attempts: those that were given that question)."""

    n: int
    max_mark: Fraction
    mean: Fraction | None
    facility: Fraction | None  # mean / max mark, 0..1 (shown as %)
    variance: Fraction | None
    sd: float | None
    discrimination: float | None  # corrected item-total r, -1..1 (shown as %)
    discrimination_undefined_because: str
    flags: tuple[Flag, ...]

    @property
    def sd_fraction(self) -> float | None:
        """The SD as a share of the maximum mark (Moodle shows it as %)."""
        if self.sd is None or self.max_mark == 0:
            return None
        return self.sd / float(self.max_mark)


@dataclass(frozen=True)
class VariantStatistics:
    """One question (version) drawn into a slot, by the label the caller gave it."""

    label: str
    stats: ItemStatistics


@dataclass(frozen=True)
class SlotStatistics:
    slot: int
    stats: ItemStatistics
    alpha_if_deleted: Fraction | None
    alpha_if_deleted_undefined_because: str
    variants: tuple[VariantStatistics, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(v.label for v in self.variants)


@dataclass(frozen=True)
class QuizStatistics:
    n: int
    max_total: Fraction
    mean: Fraction | None
    median: Fraction | None
    variance: Fraction | None
    sd: float | None
    minimum: Fraction | None
    maximum: Fraction | None
    alpha: Fraction | None  # Cronbach's alpha, <= 1 (Moodle shows it as %)
    alpha_undefined_because: str
    error_ratio: float | None  # sqrt(1 - alpha)
    standard_error: float | None  # error ratio * SD(total), in marks
    totals: tuple[Fraction, ...]
    slots: tuple[SlotStatistics, ...] = field(default=())

    @property
    def flagged_slots(self) -> tuple[SlotStatistics, ...]:
        return tuple(s for s in self.slots if s.stats.flags)


# --------------------------------------------------------------------------- computation


def _flags(
    facility: Fraction | None, r: Correlation, n: int, min_attempts: int
) -> tuple[Flag, ...]:
    if n == 0:
        return ()
    if n < min_attempts:
        return (Flag.TOO_FEW_ATTEMPTS,)
    flags = []
    if facility is not None and facility > VERY_EASY_ABOVE:
        flags.append(Flag.VERY_EASY)
    if facility is not None and facility < VERY_HARD_BELOW:
        flags.append(Flag.VERY_HARD)
    if r.value is not None and r.value < 0:
        flags.append(Flag.NEGATIVE_DISCRIMINATION)
    elif r.value is not None and r.value < WEAK_DISCRIMINATION_BELOW:
        flags.append(Flag.WEAK_DISCRIMINATION)
    if r.value is None and n >= 2:
        # With fewer than two attempts nothing is defined: not worth a flag per slot.
        flags.append(Flag.DISCRIMINATION_UNDEFINED)
    return tuple(flags)


def item_statistics(
    marks: Sequence[Fraction],
    rest: Sequence[Fraction],
    max_mark: Fraction,
    min_attempts: int = MIN_ATTEMPTS_TO_JUDGE,
) -> ItemStatistics:
    """One item: its marks, and for each of the same attempts the total of the other slots.
    Below `min_attempts` marks its only flag is "too few attempts to judge"."""
    n = len(marks)
    average = mean(marks)
    facility = None if average is None or max_mark == 0 else average / max_mark
    variance = sample_variance(marks)
    r = pearson(marks, rest) if n else Correlation(None, NO_ATTEMPTS)
    return ItemStatistics(
        n=n,
        max_mark=max_mark,
        mean=average,
        facility=facility,
        variance=variance,
        sd=sqrt(variance),
        discrimination=r.value,
        discrimination_undefined_because=r.undefined_because,
        flags=_flags(facility, r, n, min_attempts),
    )


# --------------------------------------------------------------------------- fast path
#
# 10,000 attempts x 15 slots as Fractions cost seconds: every addition reduces by a gcd,
# and alpha-if-deleted summed the other slots' columns again for every slot. Instead
# every mark is put on one common denominator D (the lcm of the denominators present: a
# quiz's marks share a few, like 1, 2, 3, 4), so a column is a list of integers, and
# every statistic comes from integer sums (Σx, Σx², Σx·total, Σtotal, Σtotal²) taken once.
# The results are the same rationals as the definitions above give (each Fraction is
# built once, from the sums), and each float is the square root of the same exact ratio,
# so a perfect correlation is still exactly 1.0 and nothing depends on the order of
# summation. tests/unit/test_statistics_sums.py checks it against the definitions.


@dataclass(frozen=True)
class _Sums:
    """Integer sums over n attempts of x (an item's scaled mark) and t (the total)."""

    n: int
    x: int
    xx: int
    t: int
    tt: int
    xt: int


def _sums(xs: Sequence[int], totals: Sequence[int], t: int | None = None) -> _Sums:
    return _Sums(
        n=len(xs),
        x=sum(xs),
        xx=sum(map(operator.mul, xs, xs)),
        t=sum(totals) if t is None else t,
        tt=sum(map(operator.mul, totals, totals)),
        xt=sum(map(operator.mul, xs, totals)),
    )


def _spread(n: int, s: int, ss: int) -> int:
    """n(n-1)·D²·(sample variance) = n·Σv² - (Σv)², an integer >= 0."""
    return n * ss - s * s


def _item_from_sums(
    s: _Sums, denominator: int, max_mark: Fraction, min_attempts: int
) -> ItemStatistics:
    n = s.n
    average = None if n == 0 else Fraction(s.x, n * denominator)
    facility = None if average is None or max_mark == 0 else average / max_mark
    variance = None if n < 2 else Fraction(_spread(n, s.x, s.xx), n * (n - 1) * denominator**2)
    if n == 0:
        r = Correlation(None, NO_ATTEMPTS)
    elif n < 2:
        r = Correlation(None, TOO_FEW_ATTEMPTS)
    else:
        # rest = total - x: Σr, Σr², Σx·r from the same sums.
        rest, rest_squares, cross = s.t - s.x, s.tt - 2 * s.xt + s.xx, s.xt - s.xx
        vx = _spread(n, s.x, s.xx)
        vr = _spread(n, rest, rest_squares)
        cov = n * cross - s.x * rest
        if vx == 0:
            r = Correlation(None, SLOT_ZERO_VARIANCE)
        elif vr == 0:
            r = Correlation(None, REST_ZERO_VARIANCE)
        else:
            # int / int is correctly rounded, as float(Fraction) is: the same float.
            r = Correlation(math.copysign(math.sqrt(cov * cov / (vx * vr)), cov))
    return ItemStatistics(
        n=n,
        max_mark=max_mark,
        mean=average,
        facility=facility,
        variance=variance,
        sd=sqrt(variance),
        discrimination=r.value,
        discrimination_undefined_because=r.undefined_because,
        flags=_flags(facility, r, n, min_attempts),
    )


def _alpha_from_spreads(
    item_spreads: Sequence[int], total_spread: int, n: int
) -> tuple[Fraction | None, str]:
    """Cronbach's alpha from the items' and the total's n·Σv² - (Σv)² (the common factor
    n(n-1)D² cancels in the ratio of variances)."""
    if n == 0:
        return None, NO_ATTEMPTS
    if n < 2:
        return None, TOO_FEW_ATTEMPTS
    k = len(item_spreads)
    if k < 2:
        return None, TOO_FEW_SLOTS
    if total_spread == 0:
        return None, TOTAL_ZERO_VARIANCE
    return Fraction(k, k - 1) * (1 - Fraction(sum(item_spreads), total_spread)), ""


def common_denominator(values: Iterable[Fraction | int]) -> int:
    """The least common multiple of the denominators (1 for none)."""
    return math.lcm(1, *{Fraction(v).denominator for v in values})


def scaled_statistics(
    columns: Sequence[Sequence[int]],
    denominator: int,
    max_marks: Sequence[Fraction],
    slots: Sequence[int] | None = None,
    labels: Sequence[Sequence[str]] | None = None,
    min_attempts: int = MIN_ATTEMPTS_TO_JUDGE,
    attempts: int | None = None,
) -> QuizStatistics:
    """`quiz_statistics` from integer columns: `columns[slot index][attempt]` is the mark
    times `denominator` (every mark must be a whole multiple of 1/denominator), and
    `labels`, if given, is column-major too: `labels[slot index][attempt]`. `attempts`,
    the number of attempts, is needed only when there are no columns."""
    if denominator < 1:
        raise ValueError("the denominator must be a positive integer")
    k = len(max_marks)
    numbers = list(slots) if slots is not None else list(range(1, k + 1))
    if len(numbers) != k or len(columns) != k:
        raise ValueError("one slot number per column")
    n = len(columns[0]) if columns else (attempts or 0)
    if attempts is not None and attempts != n:
        raise ValueError("every attempt needs one mark per slot")
    if any(len(column) != n for column in columns):
        raise ValueError("every attempt needs one mark per slot")
    if labels is not None and (len(labels) != k or any(len(col) != n for col in labels)):
        raise ValueError("labels must have the shape of marks")
    maxima = [Fraction(m) for m in max_marks]
    totals = [sum(row) for row in zip(*columns, strict=True)] if columns else [0] * n
    t, tt = sum(totals), sum(map(operator.mul, totals, totals))
    total_spread = _spread(n, t, tt)
    column_sums = [_sums(column, totals, t) for column in columns]
    item_spreads = [_spread(n, s.x, s.xx) for s in column_sums]
    alpha, alpha_reason = _alpha_from_spreads(item_spreads, total_spread, n)
    variance = None if n < 2 else Fraction(total_spread, n * (n - 1) * denominator**2)
    sd = sqrt(variance)
    error_ratio = None if alpha is None else math.sqrt(1 - alpha)
    standard_error = None if error_ratio is None or sd is None else error_ratio * sd

    slot_stats = []
    for j, number in enumerate(numbers):
        s = column_sums[j]
        stats = _item_from_sums(s, denominator, maxima[j], min_attempts)
        if k - 1 < 2:
            alpha_deleted, deleted_reason = None, TOO_FEW_SLOTS
        else:
            # Without slot j every total drops by x: Σ(t-x) and Σ(t-x)² from the sums.
            spread_without = _spread(n, t - s.x, tt - 2 * s.xt + s.xx)
            others = item_spreads[:j] + item_spreads[j + 1 :]
            alpha_deleted, deleted_reason = _alpha_from_spreads(others, spread_without, n)
        variants: list[VariantStatistics] = []
        if labels is not None and n:
            by_label: dict[str, list[int]] = {}
            for i, label in enumerate(labels[j]):
                by_label.setdefault(label, []).append(i)
            if len(by_label) == 1:
                variants.append(VariantStatistics(next(iter(by_label)), stats))
            else:
                for label in sorted(by_label):
                    rows = by_label[label]
                    pick = operator.itemgetter(*rows)
                    xs = [pick(columns[j])] if len(rows) == 1 else list(pick(columns[j]))
                    ts = [pick(totals)] if len(rows) == 1 else list(pick(totals))
                    variants.append(
                        VariantStatistics(
                            label,
                            _item_from_sums(_sums(xs, ts), denominator, maxima[j], min_attempts),
                        )
                    )
        slot_stats.append(
            SlotStatistics(number, stats, alpha_deleted, deleted_reason, tuple(variants))
        )

    ordered = sorted(totals)
    if n == 0:
        middle = None
    elif n % 2:
        middle = Fraction(ordered[n // 2], denominator)
    else:
        middle = Fraction(ordered[n // 2 - 1] + ordered[n // 2], 2 * denominator)
    return QuizStatistics(
        n=n,
        max_total=sum(maxima, Fraction(0)),
        mean=None if n == 0 else Fraction(t, n * denominator),
        median=middle,
        variance=variance,
        sd=sd,
        minimum=Fraction(ordered[0], denominator) if n else None,
        maximum=Fraction(ordered[-1], denominator) if n else None,
        alpha=alpha,
        alpha_undefined_because=alpha_reason,
        error_ratio=error_ratio,
        standard_error=standard_error,
        totals=tuple(Fraction(v, denominator) for v in totals),
        slots=tuple(slot_stats),
    )


def quiz_statistics(
    marks: Sequence[Sequence[Fraction]],
    max_marks: Sequence[Fraction],
    slots: Sequence[int] | None = None,
    labels: Sequence[Sequence[str]] | None = None,
    min_attempts: int = MIN_ATTEMPTS_TO_JUDGE,
) -> QuizStatistics:
    """Statistics of a quiz from `marks[attempt][slot index]` and `max_marks[slot index]`.

    `slots` names the columns (default 1..k). `labels[attempt][slot index]`, if given,
    says which question was drawn into that slot for that attempt; each slot then also
    reports its statistics per label (only the attempts given that question; their
    "rest" is still the total of that attempt's other slots).

    An item (a slot, or one question drawn into it) with fewer than `min_attempts`
    attempts is not judged: its only flag is Flag.TOO_FEW_ATTEMPTS.

    Computed by `scaled_statistics` on the marks put on a common denominator.
    """
    k = len(max_marks)
    if slots is not None and len(slots) != k:
        raise ValueError("one slot number per column")
    for row in marks:
        if len(row) != k:
            raise ValueError("every attempt needs one mark per slot")
    if labels is not None and (len(labels) != len(marks) or any(len(row) != k for row in labels)):
        raise ValueError("labels must have the shape of marks")
    exact = [[Fraction(m) for m in row] for row in marks]
    denominator = common_denominator(m for row in exact for m in row)
    columns = [
        [row[j].numerator * (denominator // row[j].denominator) for row in exact] for j in range(k)
    ]
    return scaled_statistics(
        columns,
        denominator,
        max_marks,
        slots=slots,
        labels=None if labels is None else [[row[j] for row in labels] for j in range(k)],
        min_attempts=min_attempts,
        attempts=len(marks),
    )


@dataclass(frozen=True)
class Bin:
    low: Fraction  # share of the maximum total, inclusive
    high: Fraction  # exclusive, except the last bin, which includes 100 %
    count: int


def histogram(totals: Sequence[Fraction], max_total: Fraction, bins: int = 10) -> list[Bin]:
    """Counts of totals in equal bins of the maximum (0-10 %, ..., 90-100 %).

    A total below zero (negative marking) counts in the first bin and one above the
    maximum in the last, so every attempt is drawn somewhere.
    """
    if bins < 1:
        raise ValueError("at least one bin")
    counts = [0] * bins
    top = Fraction(max_total)
    for value in totals:
        # floor(value / max_total * bins) in integers (a Fraction division per attempt
        # is most of the cost for 10,000 attempts).
        index = (
            0
            if top <= 0
            else (value.numerator * bins * top.denominator) // (value.denominator * top.numerator)
        )
        counts[min(max(index, 0), bins - 1)] += 1
    return [Bin(Fraction(i, bins), Fraction(i + 1, bins), c) for i, c in enumerate(counts)]
