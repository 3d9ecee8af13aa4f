"""Bounded cost for every question type, on the sample bank's real questions.

For every registered type: whatever a student sends (hypothesis-generated submissions up
to the API's limits, and the hostile corpus of tests/hostile_corpus.py), `accept()`
either returns something storable or raises InvalidSubmission (AnswerOutOfBounds
included, with the bound in its message), never anything else; and `grade()` of what it
returned, or of a hostile value stored before the bounds existed, returns a Grade within
PER_GRADE seconds. PER_GRADE is generous so that a busy CI machine does not flake; the
speed target (5 ms per answer) is measured by bench/grading_worst.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quizapp.bank.loader import load_bank
from quizapp.bank.preview import canonical_question, question_variant
from quizapp.domain.qtypes import QUESTION_TYPES
from quizapp.domain.qtypes.base import AnswerOutOfBounds, Grade, InvalidSubmission, Variant
from quizapp.domain.questions import Question
from tests.conftest import SAMPLE_BANK
from tests.hostile_corpus import (
    MAX_VALUE_CHARS,
    MAX_VALUES,
    stored_shapes,
    submissions,
)

PER_GRADE = 0.2  # seconds, for accept() and for grade()


def _questions() -> dict[str, list[Question]]:
    bank = load_bank(SAMPLE_BANK)
    assert bank.ok, bank.problems
    by_type: dict[str, list[Question]] = {}
    for key in sorted(bank.questions):
        question = canonical_question(bank.questions[key])
        by_type.setdefault(question.body.type_name, []).append(question)
    return by_type


QUESTIONS = _questions()
TYPES = sorted(QUESTION_TYPES)


def test_the_sample_bank_has_every_registered_type():
    assert sorted(QUESTIONS) == TYPES


def _boxes(question: Question, variant: Variant) -> int:
    body = question.body
    return max(len(body.form_values(variant, body.model_response(variant))), 1)


def _keys(question: Question, variant: Variant) -> list[str]:
    model = question.body.model_response(variant)
    return [str(k) for k in model] if isinstance(model, dict) else []


def _timed_grade(question: Question, variant: Variant, response: object) -> Grade:
    started = time.perf_counter()
    grade = question.body.grade(variant, response)
    elapsed = time.perf_counter() - started
    assert isinstance(grade, Grade)
    assert 0 <= grade.fraction <= 1 and isinstance(grade.fraction, Fraction)
    assert elapsed < PER_GRADE, f"grading took {elapsed * 1000:.0f} ms"
    return grade


def _submit(question: Question, variant: Variant, submitted: Sequence[str]) -> None:
    """accept() then grade(), both bounded; any exception but InvalidSubmission fails."""
    started = time.perf_counter()
    try:
        response = question.body.accept(variant, submitted)
    except AnswerOutOfBounds as exc:
        assert time.perf_counter() - started < PER_GRADE
        # The student is told the bound: a number in the message.
        assert re.search(r"\d", str(exc)), str(exc)
        return
    except InvalidSubmission:
        assert time.perf_counter() - started < PER_GRADE
        return
    assert time.perf_counter() - started < PER_GRADE
    json.dumps(response)  # storable as JSON
    _timed_grade(question, variant, response)


@pytest.mark.parametrize("type_name", TYPES)
def test_hostile_corpus_is_refused_or_graded_quickly(type_name):
    for question in QUESTIONS[type_name]:
        variant = question_variant(question, 0)
        boxes = _boxes(question, variant)
        for name, submitted in submissions(boxes):
            try:
                _submit(question, variant, submitted)
            except AssertionError as exc:
                raise AssertionError(f"{question.key}: {name}: {exc}") from exc


@pytest.mark.parametrize("type_name", TYPES)
def test_hostile_values_stored_before_the_bounds_are_graded_quickly(type_name):
    for question in QUESTIONS[type_name]:
        variant = question_variant(question, 0)
        for name, stored in stored_shapes(_keys(question, variant)):
            try:
                _timed_grade(question, variant, stored)
            except AssertionError as exc:
                raise AssertionError(f"{question.key}: {name}: {exc}") from exc


# ---------------------------------------------------------------- generated submissions

_SIGNS = st.sampled_from(["", "-", "+", "\u2212", " "])
_NUMBERS = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
    _SIGNS,
    st.from_regex(r"[0-9]{0,40}", fullmatch=True),
    st.from_regex(r"(\.[0-9]{0,40})?", fullmatch=True),
    st.one_of(
        st.just(""),
        st.integers(-(10**12), 10**12).map(lambda e: f"e{e}"),
        st.integers(-1100, 1100).map(lambda e: f"E{e:+d}"),
    ),
)
_TOKENS = st.sampled_from(
    ["x", "1", "9", "0.5", "^", "**", "*", "+", "-", "/", "(", ")", "exp(", "sigmoid(",
     "sqrt(", "max(", ",", "1e999", "9" * 40, "pi", " "]
)  # fmt: skip
_EXPRESSIONS = st.lists(_TOKENS, max_size=300).map("".join)
_MATRICES = st.lists(st.lists(_NUMBERS, min_size=1, max_size=12), max_size=12).map(
    lambda rows: "\n".join(" ".join(row) for row in rows)
)
# Long values, up to the API's size, made by repeating a short piece (hypothesis does not
# generate 100,000-character text itself in reasonable time).
_LONG = st.builds(
    lambda piece, size: (piece * (size // len(piece) + 1))[:size],
    st.one_of(st.text(min_size=1, max_size=6), _NUMBERS.filter(bool), _TOKENS),
    st.integers(0, MAX_VALUE_CHARS),
)
_LETTERS = st.sampled_from(["A", "B", "C", "D", "Z", "", " A ", "a", "AB"])
_VALUE = st.one_of(
    _NUMBERS, _EXPRESSIONS, _MATRICES, _LONG, _LETTERS, st.text(max_size=40)
)  # fmt: skip


@st.composite
def _submission(draw: st.DrawFn, boxes: int) -> list[str]:
    size = draw(st.one_of(st.just(boxes), st.integers(0, boxes + 2), st.integers(0, MAX_VALUES)))
    if size > boxes + 2:  # a long list: one value repeated, as a script would send it
        return [draw(_VALUE)] * size
    return [draw(_VALUE) for _ in range(size)]


@pytest.mark.parametrize("type_name", TYPES)
@settings(
    max_examples=40,
    deadline=None,  # the timing assertion is ours, per call, not per example
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), seed=st.integers(0, 20))
def test_generated_submissions_are_refused_or_graded_quickly(type_name, data, seed):
    question = QUESTIONS[type_name][0]
    variant = question_variant(question, seed)
    submitted = data.draw(_submission(_boxes(question, variant)))
    _submit(question, variant, submitted)
    # The same values as if stored raw (the single value, or the list) by an older version.
    _timed_grade(question, variant, submitted[0] if len(submitted) == 1 else submitted)
