"""What a student sees of the quizzes: cards for the dashboard and the start page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quizapp.domain.timing import AttemptState, StudentTiming, WindowState
from quizapp.models import Attempt, Quiz, User
from quizapp.services.attempts import finalise_expired, finalise_if_expired
from quizapp.services.catalog import QuizInfo, every_quiz, quiz_info, quiz_or_404, rules_by_quiz
from quizapp.services.marking import Pending, pending_marks
from quizapp.services.release import released


@dataclass(frozen=True)
class QuizCard:
    quiz: QuizInfo
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

    @property
    def can_start_or_resume(self) -> bool:
        return self.state is WindowState.OPEN and (
            self.in_progress is not None or self.attempts_left > 0
        )


def _cards(
    session: Session,
    quizzes: Sequence[QuizInfo],
    user: User,
    now: datetime,
    grace: timedelta,
    *,
    with_marks: bool = True,
) -> list[QuizCard]:
    """One card per quiz, in the order given, from three statements whatever the number
    of quizzes (the student's attempts, their overrides; the quizzes were read by the
    caller), plus the release check of quizzes the student has finished an attempt of
    (`with_marks`)."""
    if not quizzes:
        return []
    by_quiz: dict[int, list[Attempt]] = {q.id: [] for q in quizzes}
    found = session.scalars(
        select(Attempt)
        .where(Attempt.user_id == user.id, Attempt.quiz_id.in_(sorted(by_quiz)))
        .order_by(Attempt.quiz_id, Attempt.number)
    )
    for attempt in found:
        finalise_if_expired(session, attempt, now, grace)
        by_quiz[attempt.quiz_id].append(attempt)
    rules = rules_by_quiz(session, {q.id: q for q in quizzes}, user)
    cards = []
    for quiz in quizzes:
        attempts = by_quiz[quiz.id]
        timing = rules[quiz.id].timing
        max_attempts = rules[quiz.id].max_attempts
        in_progress = next((a for a in attempts if a.state is AttemptState.IN_PROGRESS), None)
        finished = [a.id for a in attempts if a.state is not AttemptState.IN_PROGRESS]
        # Marks are shown for finished attempts only: a student with just a running one
        # (the start page reloaded mid-attempt) needs no release check, which assembles
        # every student whose close may differ.
        marks_released = False
        if with_marks and finished:
            marks_released = released(session, quiz_or_404(session, quiz.id), now).marks
        cards.append(
            QuizCard(
                quiz=quiz,
                timing=timing,
                state=timing.state_at(now),
                attempts=attempts,
                in_progress=in_progress,
                max_attempts=max_attempts,
                attempts_left=max(0, max_attempts - len(attempts)),
                marks_released=marks_released,
                pending=pending_marks(session, attempt_ids=finished) if marks_released else {},
            )
        )
    return cards


def dashboard(
    session: Session, user: User, now: datetime, grace: timedelta
) -> dict[WindowState, list[QuizCard]]:
    """Quizzes grouped into open, upcoming and closed, soonest first."""
    groups: dict[WindowState, list[QuizCard]] = {s: [] for s in WindowState}
    for card in _cards(session, every_quiz(session), user, now, grace):
        groups[card.state].append(card)
    groups[WindowState.CLOSED].reverse()
    return groups


def quiz_for_student(
    session: Session, quiz_id: int, user: User, now: datetime, grace: timedelta
) -> QuizCard:
    return _cards(session, [quiz_info(session, quiz_id)], user, now, grace)[0]


def only_open_quiz(
    session: Session, user: User, now: datetime, grace: timedelta
) -> QuizCard | None:
    """The quiz a student signing in has come for: the one quiz open for them now that
    they can start or resume, or None when there are none or several (the dashboard
    lets them choose). Three statements; no release check."""
    cards = _cards(session, every_quiz(session), user, now, grace, with_marks=False)
    usable = [card for card in cards if card.can_start_or_resume]
    return usable[0] if len(usable) == 1 else None


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
