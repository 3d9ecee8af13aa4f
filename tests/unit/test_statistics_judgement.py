"""Statistics judge an item only from enough attempts (issue 16, item 9): below
MIN_ATTEMPTS_TO_JUDGE the only flag is "too few attempts to judge", never "very hard"
from one student's wrong answer."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from quizapp.domain import statistics as st
from quizapp.domain.statistics import Flag


def _quiz(rows: list[list[int]], **kwargs) -> st.QuizStatistics:
    return st.quiz_statistics([[F(m) for m in row] for row in rows], [F(1), F(1)], **kwargs)


def test_the_minimum_is_ten_and_the_flag_says_so():
    assert st.MIN_ATTEMPTS_TO_JUDGE == 10
    assert Flag.TOO_FEW_ATTEMPTS.value == "too few attempts to judge"


def test_one_wrong_answer_is_not_very_hard():
    quiz = _quiz([[0, 1]])
    hard = quiz.slots[0].stats
    assert hard.facility == 0  # the number is still given
    assert hard.flags == (Flag.TOO_FEW_ATTEMPTS,)


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_below_the_minimum_nothing_is_judged(n):
    # Nobody gets slot 1 right and slot 2 runs against the total: with enough attempts
    # these would be "very hard" and "negative discrimination".
    rows = [[0, i % 2] for i in range(n)]
    for slot in _quiz(rows).slots:
        assert slot.stats.n == n
        assert slot.stats.flags == (Flag.TOO_FEW_ATTEMPTS,)


def test_from_the_minimum_on_the_flags_judge():
    rows = [[0, 1]] * st.MIN_ATTEMPTS_TO_JUDGE
    hard, easy = (s.stats for s in _quiz(rows).slots)
    assert hard.flags == (Flag.VERY_HARD, Flag.DISCRIMINATION_UNDEFINED)
    assert easy.flags == (Flag.VERY_EASY, Flag.DISCRIMINATION_UNDEFINED)


def test_no_attempts_no_flag():
    assert all(slot.stats.flags == () for slot in _quiz([]).slots)


def test_each_question_of_a_pool_is_judged_on_its_own_attempts():
    # Slot 1 drew "p" for twelve attempts and "q" for three: p is judged, q is not,
    # and the slot as a whole (fifteen attempts) is.
    rows = [[0, 1]] * 15
    labels = [["p" if i < 12 else "q", "x"] for i in range(15)]
    slot = _quiz(rows, labels=labels).slots[0]
    p, q = (v.stats for v in slot.variants)
    assert (p.n, q.n) == (12, 3)
    assert Flag.VERY_HARD in p.flags
    assert q.flags == (Flag.TOO_FEW_ATTEMPTS,)
    assert Flag.VERY_HARD in slot.stats.flags


def test_the_minimum_is_a_parameter():
    rows = [[0, 1]] * 3
    assert Flag.VERY_HARD in _quiz(rows, min_attempts=3).slots[0].stats.flags
    assert _quiz(rows, min_attempts=4).slots[0].stats.flags == (Flag.TOO_FEW_ATTEMPTS,)
