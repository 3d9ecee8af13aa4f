"""Properties every new question type shares: JSON-able data, no leaks, no exceptions."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quizapp.domain.qtypes.base import GradeStatus, InvalidSubmission, StudentView
from quizapp.domain.questions import read_question
from quizapp.domain.spec import Problems

SPECS = {
    "short_text": {"answers": [{"text": "Adam optimiser"}], "wrong_answers": ["SGD"]},
    "matching": {
        "pairs": [{"left": "conv", "right": "Kernelwise"}, {"left": "pool", "right": "Downsample"}],
        "distractors": ["Dropout"],
    },
    "ordering": {"items": ["Alpha", "Bravo", "Charlie"]},
    "multi_part": {
        "parts": [
            {"id": "a", "answer": 12.5, "tolerance": 0.5},
            {"id": "b", "answers": [{"text": "Kernelwise"}]},
        ]
    },
    "calculated": {
        "parameters": {"n": {"range": [3, 9]}},
        "answer": "n^2 + 0.125",
        "tolerance": 0.0625,
    },
    "algebraic": {"answer": "tanh(zeta)^2", "variables": ["zeta"]},
    "matrix": {"answer": [[1.125, 2.375], [3.625, 4.875]], "tolerance": 0.001},
    "essay": {"sample_answer": "Kernelwise sample", "min_words": 3},
    "single_choice": {
        "options": [
            {"id": "yes", "text": "Kernelwise", "correct": True},
            {"id": "no", "text": "Downsample"},
        ]
    },
    "multiple_response": {
        "options": [
            {"id": "a", "text": "Kernelwise", "correct": True},
            {"id": "b", "text": "Downsample"},
            {"id": "c", "text": "Dropout", "correct": True},
        ]
    },
    "true_false": {"answer": True},
    "numeric": {"answer": 12.5, "tolerance": 0.25, "wrong_answers": [13]},
}
# Text that gives the answer away and must never appear in a StudentView.
SECRETS = {
    "short_text": ["Adam"],
    "matching": ["r0", "r1"],
    "ordering": [],
    "multi_part": ["12.5", "0.5", "Kernelwise"],
    "calculated": ["n^2", "0.125", "0.0625"],
    "algebraic": ["tanh(zeta)", ")^2", "1e-06"],
    "matrix": ["1.125", "2.375", "3.625", "4.875", "0.001"],
    "essay": ["Kernelwise sample"],
    # (option ids and texts are shown; which one is correct must not be)
    "single_choice": ["yes", "correct", "fraction"],
    "multiple_response": ["correct", "fraction"],
    "true_false": ["correct", "fraction"],
    "numeric": ["12.5", "0.25"],
}
INPUTS = {
    "short_text": "text",
    "matching": "matching",
    "ordering": "ordering",
    "multi_part": "multi_part",
    "calculated": "number",
    "algebraic": "text",
    "matrix": "matrix",
    "essay": "essay",
    "single_choice": "radio",
    "multiple_response": "checkbox",
    "true_false": "radio",
    "numeric": "number",
}


def test_every_registered_type_is_in_these_tables():
    """A new type is covered by the shared checks the day it is registered."""
    from quizapp.domain.qtypes import QUESTION_TYPES

    assert set(QUESTION_TYPES) == set(SPECS) == set(SECRETS) == set(INPUTS)


def question(type_name):
    problems = Problems()
    q = read_question({"id": "q", "stem": "S", "type": type_name, **SPECS[type_name]}, (), problems)
    assert not problems, problems.items
    return q.body


@pytest.mark.parametrize("type_name", sorted(SPECS))
def test_json_round_trip_and_model_answer(type_name):
    q = question(type_name)
    for seed in range(50):
        variant = json.loads(json.dumps(q.make_variant(random.Random(seed))))
        assert q.render_problems(variant) == []
        model = json.loads(json.dumps(q.model_response(variant)))
        grade = q.grade(variant, model)
        if q.auto_graded:
            assert grade.fraction == 1 and grade.status is GradeStatus.CORRECT
        else:
            assert grade.status is GradeStatus.NEEDS_MARKING
        # The form values for the model answer submit back to the same grade.
        values = q.form_values(variant, model)
        assert q.grade(variant, q.accept(variant, values)) == grade
        for wrong in q.wrong_responses(variant):
            assert q.grade(variant, json.loads(json.dumps(wrong))).fraction < 1
        assert isinstance(q.describe_answer(variant), str)
        assert isinstance(q.describe_response(variant, model), str)
        assert isinstance(q.describe_answer_html(variant), str)
        assert isinstance(q.describe_response_html(variant, model), str)


@pytest.mark.parametrize("type_name", sorted(SPECS))
def test_view_names_its_widget_and_leaks_nothing(type_name):
    q = question(type_name)
    variant = q.make_variant(random.Random(1))
    view = q.view(variant)
    assert isinstance(view, StudentView)
    assert view.input == INPUTS[type_name]
    json.dumps(view.extra)
    text = str(view)
    for secret in SECRETS[type_name]:
        assert secret not in text, (type_name, secret)


@pytest.mark.parametrize("type_name", sorted(SPECS))
def test_unanswered(type_name):
    q = question(type_name)
    variant = q.make_variant(random.Random(1))
    assert q.grade(variant, None).status is GradeStatus.UNANSWERED
    assert q.grade(variant, q.accept(variant, [])).status is GradeStatus.UNANSWERED


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("type_name", sorted(SPECS))
@settings(max_examples=150, database=None, deadline=None)
@given(response=JSON, seed=st.integers(0, 10))
def test_grading_any_stored_value_never_raises(type_name, response, seed):
    q = question(type_name)
    variant = q.make_variant(random.Random(seed))
    grade = q.grade(variant, response)
    assert 0 <= grade.fraction <= 1
    assert isinstance(q.describe_response(variant, response), str)
    assert isinstance(q.describe_response_html(variant, response), str)
    q.form_values(variant, response)


@pytest.mark.parametrize("type_name", sorted(SPECS))
@settings(max_examples=150, database=None, deadline=None)
@given(values=st.lists(st.text(max_size=12), max_size=6))
def test_any_submission_is_accepted_or_rejected_cleanly(type_name, values):
    q = question(type_name)
    variant = q.make_variant(random.Random(0))
    try:
        response = q.accept(variant, values)
    except InvalidSubmission:
        return
    json.dumps(response)
    grade = q.grade(variant, response)
    assert 0 <= grade.fraction <= 1
