"""Quiz and item statistics on small data sets worked out by hand."""

from __future__ import annotations

import math
from fractions import Fraction as F

import pytest

from quizapp.domain import statistics as st
from quizapp.domain.statistics import Flag

# Six students (A-F), four slots out of 1, 1, 2 and 2 marks.
#            s1 s2 s3 s4   total
MARKS = [
    [1, 1, 2, 2],  # A     6
    [1, 0, 2, 1],  # B     4
    [1, 1, 1, 0],  # C     3
    [0, 1, 1, 1],  # D     3
    [0, 0, 0, 0],  # E     0
    [0, 0, 0, 2],  # F     2
]
MAX = [F(1), F(1), F(2), F(2)]
TOL = 1e-9
# The data sets here are small enough to work out by hand, far below the minimum number
# of attempts the flags need (st.MIN_ATTEMPTS_TO_JUDGE): the tests of the flag rules
# judge them anyway; test_statistics_judgement.py covers the minimum itself.
JUDGE_ANY = 1


def _matrix(rows: list[list[int]]) -> list[list[F]]:
    return [[F(m) for m in row] for row in rows]


@pytest.fixture
def quiz() -> st.QuizStatistics:
    return st.quiz_statistics(_matrix(MARKS), MAX, slots=[1, 2, 3, 4], min_attempts=JUDGE_ANY)


def test_quiz_level_statistics_by_hand(quiz):
    # totals 6, 4, 3, 3, 0, 2: sum 18, n 6, mean 3.
    assert quiz.n == 6 and quiz.max_total == 6
    assert quiz.mean == 3
    # sorted 0, 2, 3, 3, 4, 6: median (3 + 3) / 2 = 3; min 0; max 6.
    assert quiz.median == 3 and quiz.minimum == 0 and quiz.maximum == 6
    # deviations 3, 1, 0, 0, -3, -1: squares sum 9 + 1 + 9 + 1 = 20; / (6 - 1) = 4; SD 2.
    assert quiz.variance == 4
    assert quiz.sd == pytest.approx(2.0, abs=TOL)
    # item variances (sample):
    #   s1 1,1,1,0,0,0 mean 1/2, squares 6 * 1/4 = 3/2, / 5 = 3/10
    #   s2 1,0,1,1,0,0 mean 1/2, likewise 3/10
    #   s3 2,2,1,1,0,0 mean 1, deviations 1,1,0,0,-1,-1, squares 4, / 5 = 4/5
    #   s4 2,1,0,1,0,2 mean 1, deviations 1,0,-1,0,-1,1, squares 4, / 5 = 4/5
    # sum 3/10 + 3/10 + 4/5 + 4/5 = 11/5
    # alpha = 4/3 * (1 - (11/5) / 4) = 4/3 * 9/20 = 3/5
    assert quiz.alpha == F(3, 5)
    assert quiz.alpha_undefined_because == ""
    # Moodle's error ratio sqrt(1 - alpha) = sqrt(2/5); standard error = that * SD 2.
    assert quiz.error_ratio == pytest.approx(math.sqrt(0.4), abs=TOL)
    assert quiz.standard_error == pytest.approx(2 * math.sqrt(0.4), abs=TOL)


def test_slot_means_facility_and_sd_by_hand(quiz):
    s1, s2, s3, s4 = (s.stats for s in quiz.slots)
    assert [s.slot for s in quiz.slots] == [1, 2, 3, 4]
    # s1, s2: mean 3/6 = 1/2 out of 1 -> facility 1/2; s3, s4: mean 6/6 = 1 out of 2 -> 1/2.
    assert (s1.mean, s2.mean, s3.mean, s4.mean) == (F(1, 2), F(1, 2), F(1), F(1))
    assert {s.facility for s in (s1, s2, s3, s4)} == {F(1, 2)}
    assert (s1.variance, s3.variance) == (F(3, 10), F(4, 5))
    assert s1.sd == pytest.approx(math.sqrt(0.3), abs=TOL)
    assert s3.sd == pytest.approx(math.sqrt(0.8), abs=TOL)
    # SD as a share of the maximum: sqrt(0.8) / 2.
    assert s3.sd_fraction == pytest.approx(math.sqrt(0.8) / 2, abs=TOL)


def test_corrected_item_total_discrimination_by_hand(quiz):
    s1, s2, s3, s4 = (s.stats for s in quiz.slots)
    # s1: rest = total - s1 = 5,3,2,3,0,2, mean 5/2, deviations 5/2,1/2,-1/2,1/2,-5/2,-1/2,
    #     squares 54/4 -> var 27/10; s1 deviations +-1/2: products 5/4,1/4,-1/4,-1/4,5/4,1/4
    #     = 5/2 -> cov 1/2; r = (1/2) / sqrt(3/10 * 27/10) = (1/2) / (9/10) = 5/9.
    assert s1.discrimination == pytest.approx(5 / 9, abs=TOL)
    # s2: rest 5,4,2,2,0,2, mean 5/2, squares 62/4 -> var 31/10; products
    #     5/4,-3/4,-1/4,-1/4,5/4,1/4 = 3/2 -> cov 3/10; r = (3/10)/sqrt(3/10*31/10) = 3/sqrt(93).
    assert s2.discrimination == pytest.approx(3 / math.sqrt(93), abs=TOL)
    # s3: rest 4,2,2,2,0,2, mean 2, deviations 2,0,0,0,-2,0 -> var 8/5; s3 deviations
    #     1,1,0,0,-1,-1: products 2,0,0,0,2,0 = 4 -> cov 4/5; r = (4/5)/sqrt(4/5*8/5) = 1/sqrt 2.
    assert s3.discrimination == pytest.approx(1 / math.sqrt(2), abs=TOL)
    # s4: rest 4,3,3,2,0,0, mean 2, deviations 2,1,1,0,-2,-2 -> var 14/5; s4 deviations
    #     1,0,-1,0,-1,1: products 2,0,-1,0,2,-2 = 1 -> cov 1/5; r = (1/5)/sqrt(4/5*14/5)
    #     = 1/sqrt(56), about 0.134: weak (below 20 %).
    assert s4.discrimination == pytest.approx(1 / math.sqrt(56), abs=TOL)
    assert s4.flags == (Flag.WEAK_DISCRIMINATION,)
    assert s1.flags == s2.flags == s3.flags == ()


def test_alpha_if_item_deleted_by_hand(quiz):
    # Without s1: three slots, total variance 27/10 (the rest of s1 above), item variances
    #   3/10 + 4/5 + 4/5 = 19/10: alpha = 3/2 * (1 - 19/27) = 3/2 * 8/27 = 4/9.
    # Without s2: total variance 31/10, items 19/10: 3/2 * (1 - 19/31) = 3/2 * 12/31 = 18/31.
    # Without s3: total variance 8/5, items 3/10 + 3/10 + 4/5 = 7/5: 3/2 * 1/8 = 3/16.
    # Without s4: total variance 14/5, items 7/5: 3/2 * 1/2 = 3/4 (above the quiz's 3/5:
    #   the quiz is more consistent without the weakly discriminating slot).
    assert [s.alpha_if_deleted for s in quiz.slots] == [F(4, 9), F(18, 31), F(3, 16), F(3, 4)]


def test_histogram_bins_tenths_of_the_maximum(quiz):
    # shares of 6: 1 (last bin, 100 % included), 2/3 (bin 6), 1/2, 1/2 (bin 5), 0 (bin 0),
    # 1/3 (bin 3).
    bins = st.histogram(quiz.totals, quiz.max_total)
    assert [b.count for b in bins] == [1, 0, 0, 1, 0, 2, 1, 0, 0, 1]
    assert (bins[0].low, bins[-1].high) == (0, 1)
    # Negative totals (negative marking) land in the first bin, never outside.
    assert [b.count for b in st.histogram([F(-1), F(7)], F(6), bins=2)] == [1, 1]


def test_flags_for_easy_hard_negative_and_undefined():
    # Four students, four 1-mark slots:
    #   s1 everyone right  -> facility 100 %, no variance: very easy, discrimination undefined
    #   s2 nobody right    -> facility 0 %, no variance: very hard, discrimination undefined
    #   s3 0,0,1,1 and s4 1,1,0,1: s3's rest is 2,2,1,2 (mean 7/4), deviations of s3
    #   -1/2,-1/2,1/2,1/2 and of the rest 1/4,1/4,-3/4,1/4: products sum -1/2 < 0.
    rows = [[1, 0, 0, 1], [1, 0, 0, 1], [1, 0, 1, 0], [1, 0, 1, 1]]
    quiz = st.quiz_statistics(_matrix(rows), [F(1)] * 4, min_attempts=JUDGE_ANY)
    s1, s2, s3, s4 = (s.stats for s in quiz.slots)
    assert s1.flags == (Flag.VERY_EASY, Flag.DISCRIMINATION_UNDEFINED)
    assert s1.discrimination is None
    assert s1.discrimination_undefined_because == st.SLOT_ZERO_VARIANCE
    assert s2.flags == (Flag.VERY_HARD, Flag.DISCRIMINATION_UNDEFINED)
    # r for s3: cov = -1/2 / 3 = -1/6; var s3 = 1/3; var rest = (1/16*3 + 9/16) / 3 = 1/4;
    # r = -1/6 / sqrt(1/12) = -1/sqrt(3).
    assert s3.discrimination == pytest.approx(-1 / math.sqrt(3), abs=TOL)
    assert Flag.NEGATIVE_DISCRIMINATION in s3.flags
    assert Flag.NEGATIVE_DISCRIMINATION in s4.flags
    assert quiz.flagged_slots == quiz.slots


def test_thresholds_are_strict():
    # Facility exactly 90 % and exactly 10 % are not flagged (ten attempts, one slot pair).
    easy = [[1, m] for m in (1, 1, 1, 1, 1, 1, 1, 1, 1, 0)]
    hard = [[0, m] for m in (1, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    q_easy = st.quiz_statistics(_matrix(easy), [F(1), F(1)])
    q_hard = st.quiz_statistics(_matrix(hard), [F(1), F(1)])
    assert q_easy.slots[1].stats.facility == F(9, 10)
    assert Flag.VERY_EASY not in q_easy.slots[1].stats.flags
    assert q_hard.slots[1].stats.facility == F(1, 10)
    assert Flag.VERY_HARD not in q_hard.slots[1].stats.flags
    # The other slot is constant, so the rest of slot 2 has no variance: undefined, said so.
    assert q_easy.slots[1].stats.discrimination_undefined_because == st.REST_ZERO_VARIANCE


def test_one_attempt_defines_means_but_no_spread():
    quiz = st.quiz_statistics(_matrix([[1, 0, 2]]), [F(1), F(1), F(2)])
    assert quiz.n == 1 and quiz.mean == quiz.median == quiz.minimum == quiz.maximum == 3
    assert quiz.sd is None and quiz.variance is None
    assert quiz.alpha is None and quiz.alpha_undefined_because == st.TOO_FEW_ATTEMPTS
    assert quiz.error_ratio is None and quiz.standard_error is None
    first = quiz.slots[0]
    assert first.stats.facility == 1 and first.stats.sd is None
    assert first.stats.discrimination is None
    assert first.stats.discrimination_undefined_because == st.TOO_FEW_ATTEMPTS
    # One attempt judges nothing: not "very easy", and no "undefined" flag on every slot.
    assert first.stats.flags == (Flag.TOO_FEW_ATTEMPTS,)
    assert quiz.slots[1].stats.facility == 0 and quiz.slots[1].stats.flags == (
        Flag.TOO_FEW_ATTEMPTS,
    )  # not "very hard" from one student's wrong answer
    assert first.alpha_if_deleted is None


def test_all_zero_marks():
    quiz = st.quiz_statistics(
        _matrix([[0, 0], [0, 0], [0, 0]]), [F(1), F(2)], min_attempts=JUDGE_ANY
    )
    assert quiz.mean == 0 and quiz.median == 0 and quiz.variance == 0 and quiz.sd == 0
    assert quiz.alpha is None and quiz.alpha_undefined_because == st.TOTAL_ZERO_VARIANCE
    for slot in quiz.slots:
        assert slot.stats.facility == 0 and slot.stats.sd == 0
        assert slot.stats.discrimination is None
        assert slot.stats.flags == (Flag.VERY_HARD, Flag.DISCRIMINATION_UNDEFINED)
        # Two slots: deleting one leaves one, and alpha needs two.
        assert slot.alpha_if_deleted is None
        assert slot.alpha_if_deleted_undefined_because == st.TOO_FEW_SLOTS


def test_empty_quiz_no_attempts():
    quiz = st.quiz_statistics([], [F(1), F(2)], slots=[3, 7])
    assert quiz.n == 0 and quiz.max_total == 3
    assert quiz.mean is quiz.median is quiz.sd is quiz.minimum is quiz.maximum is None
    assert quiz.alpha is None and quiz.alpha_undefined_because == st.NO_ATTEMPTS
    assert [s.slot for s in quiz.slots] == [3, 7]
    for slot in quiz.slots:
        assert slot.stats.n == 0 and slot.stats.mean is None and slot.stats.facility is None
        assert slot.stats.discrimination_undefined_because == st.NO_ATTEMPTS
        assert slot.stats.flags == ()
    assert [b.count for b in st.histogram(quiz.totals, quiz.max_total)] == [0] * 10


def test_quiz_without_slots():
    quiz = st.quiz_statistics([[], []], [])
    assert quiz.n == 2 and quiz.mean == 0 and quiz.slots == ()
    assert quiz.alpha_undefined_because == st.TOO_FEW_SLOTS


def test_per_question_statistics_in_a_pooled_slot():
    # Slot 1 drew question "p" for A, B, C and "q" for D, E, F (same marks as MARKS).
    labels = [["p" if i < 3 else "q", "x", "y", "z"] for i in range(6)]
    quiz = st.quiz_statistics(_matrix(MARKS), MAX, labels=labels, min_attempts=JUDGE_ANY)
    slot = quiz.slots[0]
    assert slot.labels == ("p", "q")
    p, q = (v.stats for v in slot.variants)
    # p: marks 1,1,1 (facility 100 %, no variance); q: marks 0,0,0 (facility 0 %).
    assert (p.n, p.facility, q.n, q.facility) == (3, 1, 3, 0)
    assert p.discrimination is None and Flag.VERY_EASY in p.flags
    # A slot with one question reports it once, with the slot's own numbers.
    (only,) = quiz.slots[1].variants
    assert only.label == "x" and only.stats == quiz.slots[1].stats


def test_fractions_stay_exact():
    thirds = [[F(1, 3)], [F(2, 3)], [F(1)]]
    quiz = st.quiz_statistics(thirds, [F(1)])
    # mean (1/3 + 2/3 + 1) / 3 = 2/3; deviations -1/3, 0, 1/3: squares 2/9, / 2 = 1/9.
    assert quiz.mean == F(2, 3) and quiz.variance == F(1, 9)
    assert quiz.sd == pytest.approx(1 / 3, abs=TOL)


def test_shapes_are_checked():
    with pytest.raises(ValueError):
        st.quiz_statistics([[F(1)]], [F(1), F(1)])
    with pytest.raises(ValueError):
        st.quiz_statistics([[F(1)]], [F(1)], slots=[1, 2])
    with pytest.raises(ValueError):
        st.quiz_statistics([[F(1)]], [F(1)], labels=[["a", "b"]])


def test_domain_module_imports_no_web_or_database_code():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(st))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[0] in {"flask", "sqlalchemy", "wtforms"}}
