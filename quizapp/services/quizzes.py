"""What a student sees of the quizzes: cards for the dashboard and the start page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quizapp.domain.timing import AttemptState, StudentTiming, WindowState
from quizapp.models import Attempt, Quiz, User
from quizapp.services.attempts import finalise_expired, finalise_if_expired
from quizapp.services.catalog import rules_for
from quizapp.services.errors import NotFound
from quizapp.services.marking import Pending, pending_marks
from quizapp.services.release import released


@dataclass(frozen=True)
class QuizCard:
    quiz: Quiz
    timing: StudentTiming
    state: WindowState
    attempts: list[Attempt]
    in_progress: Attempt | None
    max_attempts: int
    attempts_left: int
    marks_released: bool
    # attempt id -> what is still to be marked (its score is provisional meanwhile)
    pending: dict[int, Pending] = field(default_factory=dict)

    @property
    def can_start(self) -> bool:
        return (
            self.state is WindowState.OPEN and self.in_progress is None and self.attempts_left > 0
        )


def quiz_card(
    session: Session, quiz: Quiz, user: User, now: datetime, grace: timedelta
) -> QuizCard:
    attempts = list(
        session.scalars(
            select(Attempt)
            .where(Attempt.quiz_id == quiz.id, Attempt.user_id == user.id)
            .order_by(Attempt.number)
        )
    )
    for attempt in attempts:
        finalise_if_expired(session, attempt, now, grace)
    rules = rules_for(session, quiz, user)
    timing = rules.timing
    in_progress = next((a for a in attempts if a.state is AttemptState.IN_PROGRESS), None)
    marks_released = released(session, quiz, now).marks if attempts else False
    finished = [a.id for a in attempts if a.state is not AttemptState.IN_PROGRESS]
    return QuizCard(
        quiz=quiz,
        timing=timing,
        state=timing.state_at(now),
        attempts=attempts,
        in_progress=in_progress,
        max_attempts=rules.max_attempts,
        attempts_left=max(0, rules.max_attempts - len(attempts)),
        marks_released=marks_released,
        pending=pending_marks(session, attempt_ids=finished) if marks_released else {},
    )


def dashboard(
    session: Session, user: User, now: datetime, grace: timedelta
) -> dict[WindowState, list[QuizCard]]:
    """Quizzes grouped into open, upcoming and closed, soonest first."""
    groups: dict[WindowState, list[QuizCard]] = {s: [] for s in WindowState}
    for quiz in session.scalars(select(Quiz).order_by(Quiz.opens_at, Quiz.title)):
        card = quiz_card(session, quiz, user, now, grace)
        groups[card.state].append(card)
    groups[WindowState.CLOSED].reverse()
    return groups


def quiz_for_student(
    session: Session, quiz_id: int, user: User, now: datetime, grace: timedelta
) -> QuizCard:
    quiz = session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")
    return quiz_card(session, quiz, user, now, grace)


@dataclass(frozen=True)
class StaffOverview:
    quizzes: list[Quiz]
    counts: dict[int, dict[str, int]]  # quiz id -> attempt state -> how many


def staff_overview(session: Session, now: datetime, grace: timedelta) -> StaffOverview:
    """Every quiz with its attempts counted by state (expired ones finalised first)."""
    finalise_expired(session, now, grace)
    counts: dict[int, dict[str, int]] = {}
    for quiz_id, state, n in session.execute(
        select(Attempt.quiz_id, Attempt.state, func.count()).group_by(
            Attempt.quiz_id, Attempt.state
        )
    ):
        counts.setdefault(quiz_id, {})[state.value] = n
    quizzes = list(session.scalars(select(Quiz).order_by(Quiz.opens_at)))
    return StaffOverview(quizzes, counts)
