"""What a quiz's release policy lets students see now: marks, and answers with feedback.

"After the window closes" means after it has closed for everyone: a student whose window
closed could otherwise pass the answers to one still working with an accommodation, an
override or a reopened attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quizapp.db import unit_of_work
from quizapp.domain.release import ReleasePolicy
from quizapp.domain.timing import AttemptState
from quizapp.models import Attempt, Quiz, QuizOverride, Role, User, UserGroup
from quizapp.services import audit
from quizapp.services.catalog import quiz_or_404, release_policy, rules_for_users
from quizapp.services.lti_scores import follow_release


@dataclass(frozen=True)
class Released:
    marks: bool  # the total
    answers: bool
    closed_for_everyone_at: datetime | None
    # The mark of each question (which answers were right): with the total only once the
    # quiz is closed for everyone, unless staff chose otherwise (ReleasePolicy).
    question_marks: bool = False


def closed_for_everyone_at(session: Session, quiz: Quiz) -> datetime | None:
    """The last moment anyone may still be working on this quiz (None: never closes).

    Every student's own close comes from the one assembly of the rules
    (catalog.rules_for_users), so overrides and accommodations combine here exactly as
    they do for the student: an override's close pushed out by an accommodation, an
    override with no close at all. Only students whose close can differ from the quiz's
    are assembled: those with an accommodation, an override of their own, or a group
    with an override. Running attempts count until their deadline (none: never)."""
    if quiz.closes_at is None:
        return None
    candidates = [quiz.closes_at]
    overrides = session.scalars(select(QuizOverride).where(QuizOverride.quiz_id == quiz.id)).all()
    own = {o.user_id for o in overrides if o.user_id is not None}
    groups = {o.group_name for o in overrides if o.group_name is not None}
    differs = (
        (User.time_factor != "1")
        | (User.extra_minutes != 0)
        | User.id.in_(own or {-1})
        | User.id.in_(select(UserGroup.user_id).where(UserGroup.name.in_(groups or {""})))
    )
    students = session.scalars(select(User).where(User.role == Role.STUDENT, differs)).all()
    for rules in rules_for_users(session, quiz, students).values():
        if rules.timing.closes_at is None:
            return None
        candidates.append(rules.timing.closes_at)
    running = session.execute(
        select(func.count(), func.count(Attempt.deadline_at), func.max(Attempt.deadline_at)).where(
            Attempt.quiz_id == quiz.id, Attempt.state == AttemptState.IN_PROGRESS
        )
    ).one()
    count, with_deadline, latest = running
    if count != with_deadline:
        return None  # an attempt without a deadline may go on for ever
    if latest is not None:
        candidates.append(latest)
    return max(candidates)


def released(session: Session, quiz: Quiz, now: datetime) -> Released:
    policy = release_policy(quiz)
    closed_at = closed_for_everyone_at(session, quiz)
    marks = policy.marks.is_released(now, closed_at)
    answers = policy.answers.is_released(now, closed_at)
    return Released(
        marks=marks,
        answers=answers,
        closed_for_everyone_at=closed_at,
        question_marks=policy.shows_question_marks(now, closed_at, marks=marks, answers=answers),
    )


def set_release_policy(
    session: Session,
    quiz_id: int,
    policy: ReleasePolicy,
    actor_id: int | None,
    now: datetime,
    *,
    ip: str = "",
) -> bool:
    """Change a quiz's release policy from the browser, audited; False if it was already
    that policy (nothing written).

    The YAML's policy (as last imported) is kept alongside under "yaml", so that a later
    import knows whether the YAML's own policy has changed since (see
    domain.release.policy_after_import); choosing the YAML's policy again drops it."""
    with unit_of_work(session):
        quiz = quiz_or_404(session, quiz_id)
        stored = dict(quiz.release)
        old = release_policy(quiz).to_json()
        new = policy.to_json()
        if new == old:
            return False  # (nothing written: the unit of work commits nothing)
        from_yaml = stored.get("yaml", old)
        quiz.release = new if new == from_yaml else {**new, "yaml": from_yaml}
        audit.record(
            session,
            "release_policy",
            now,
            actor_id=actor_id,
            quiz_id=quiz.id,
            ip=ip,
            old=old,
            new=new,
            yaml=from_yaml,
        )
        # Scores held for the VLE's gradebook go now if marks are released (lti_scores).
        follow_release(session, quiz, now)
    return True


def set_in_browser(quiz: Quiz) -> bool:
    """Was the policy set in the browser (so it differs from the YAML's)?"""
    return "yaml" in quiz.release
