"""When a quiz has closed for everyone: the moment answers released "after close" may be
shown. Overrides and accommodations combine here exactly as in each student's deadline
(one assembly of the rules); before, a student with no close, or an accommodation on
top of an override's close, was missed, and the answers went out while they could still
start."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from quizapp.models import Quiz, QuizOverride, User, UserGroup
from quizapp.services import attempts as attempt_service
from quizapp.services.release import closed_for_everyone_at
from tests.conftest import QUIZ1_OPENS

GRACE = timedelta(seconds=10)


@pytest.fixture
def quiz(session, sample_bank) -> Quiz:
    return session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()


def _user(session, users, name) -> User:
    return session.get(User, users[name])


def test_with_nothing_special_it_is_the_quizs_close(session, quiz, users):
    assert closed_for_everyone_at(session, quiz) == quiz.closes_at


def test_an_accommodation_on_top_of_an_override_close(session, quiz, users):
    bob = _user(session, users, "bob")
    bob.time_factor = Fraction(5, 4)  # +15 minutes on the 60-minute quiz
    session.add(
        QuizOverride(
            quiz_id=quiz.id,
            user_id=bob.id,
            closes_at=quiz.closes_at + timedelta(hours=1),
            reason="r",
        )
    )
    session.commit()
    assert closed_for_everyone_at(session, quiz) == quiz.closes_at + timedelta(minutes=75)


def test_a_group_override_with_no_close_means_never(session, quiz, users):
    session.add(UserGroup(user_id=users["carol"], name="ongoing"))
    session.add(QuizOverride(quiz_id=quiz.id, group_name="ongoing", no_close=True, reason="r"))
    session.commit()
    assert closed_for_everyone_at(session, quiz) is None


def test_a_student_override_with_no_close_means_never(session, quiz, users):
    session.add(QuizOverride(quiz_id=quiz.id, user_id=users["alice"], no_close=True, reason="r"))
    session.commit()
    assert closed_for_everyone_at(session, quiz) is None


def test_a_running_attempt_without_a_deadline_means_never(session, quiz, users):
    alice = _user(session, users, "alice")
    attempt = attempt_service.start_attempt(
        session, quiz.id, alice, QUIZ1_OPENS + timedelta(hours=1), GRACE
    )
    attempt.deadline_at = None  # (as a "no limit, no close" override leaves it)
    session.commit()
    # alice's override is gone (a later change), but her attempt still runs for ever
    assert closed_for_everyone_at(session, quiz) is None


def test_a_running_attempt_past_the_close_counts_until_its_deadline(session, quiz, users):
    alice = _user(session, users, "alice")
    attempt = attempt_service.start_attempt(
        session, quiz.id, alice, QUIZ1_OPENS + timedelta(hours=1), GRACE
    )
    attempt.deadline_at = quiz.closes_at + timedelta(minutes=30)  # reopened by staff
    session.commit()
    assert closed_for_everyone_at(session, quiz) == quiz.closes_at + timedelta(minutes=30)
