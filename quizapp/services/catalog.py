"""Loading question versions and a quiz's timing for one student (shared by services)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from quizapp.domain.layout import Candidate, LayoutEntry
from quizapp.domain.questions import Question, canonical_json, question_from_spec
from quizapp.domain.release import ReleasePolicy
from quizapp.domain.timing import (
    Accommodation,
    Override,
    StudentTiming,
    Window,
    combine,
    timing_for,
)
from quizapp.models import Attempt, QuestionVersion, Quiz, QuizOverride, User, UserGroup
from quizapp.models import Question as QuestionRow
from quizapp.services.errors import NotFound


@lru_cache(maxsize=2048)
def _question_from_json(spec_json: str) -> Question:
    return question_from_spec(json.loads(spec_json))


def question_of(version: QuestionVersion) -> Question:
    """The domain question of an immutable version (cached: versions never change)."""
    return _question_from_json(canonical_json(version.spec))


# A version's content hash is the hash of its spec, and versions never change: a process
# keeps each domain question it has built, keyed by that hash, so the hot paths (a save,
# the attempt page, grading) read two short columns instead of every spec's JSON.
_QUESTIONS_BY_HASH: dict[str, Question] = {}
_QUESTIONS_KEPT = 4096
_VERSION_HASHES = select(QuestionVersion.id, QuestionVersion.content_hash).where(
    QuestionVersion.id.in_(bindparam("ids", expanding=True))
)


def questions_by_version(session: Session, ids: Iterable[int]) -> dict[int, Question]:
    """The domain question of each version id."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(_VERSION_HASHES, {"ids": sorted(wanted)})
    return _questions_from_hashes(session, {version_id: digest for version_id, digest in rows})


def _questions_from_hashes(session: Session, hashes: dict[int, str]) -> dict[int, Question]:
    missing = [vid for vid, digest in hashes.items() if digest not in _QUESTIONS_BY_HASH]
    if missing:
        if len(_QUESTIONS_BY_HASH) + len(missing) > _QUESTIONS_KEPT:
            _QUESTIONS_BY_HASH.clear()
        for version in versions_by_id(session, missing).values():
            _QUESTIONS_BY_HASH[version.content_hash] = question_of(version)
    return {vid: _QUESTIONS_BY_HASH[digest] for vid, digest in hashes.items()}


def version_sources(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Which bank file each question version came from (its images live next to it)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(QuestionVersion.id, QuestionVersion.source).where(QuestionVersion.id.in_(wanted))
    )
    return {version_id: source for version_id, source in rows}


def versions_by_id(session: Session, ids: Iterable[int]) -> dict[int, QuestionVersion]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.scalars(select(QuestionVersion).where(QuestionVersion.id.in_(wanted)))
    return {v.id: v for v in rows}


def current_candidates(session: Session, keys: Iterable[str]) -> dict[str, Candidate]:
    """The version new attempts use for each question key."""
    rows = session.execute(
        select(QuestionRow.key, QuestionVersion.id, QuestionVersion.content_hash)
        .join(QuestionVersion, QuestionVersion.id == QuestionRow.current_version_id)
        .where(QuestionRow.key.in_(set(keys)))
    ).all()
    questions = _questions_from_hashes(session, {vid: digest for _, vid, digest in rows})
    return {key: Candidate(vid, questions[vid]) for key, vid, _ in rows}


def quiz_window(quiz: Quiz) -> Window:
    limit = quiz.time_limit_seconds
    return Window(
        opens_at=quiz.opens_at,
        closes_at=quiz.closes_at,
        time_limit=timedelta(seconds=limit) if limit is not None else None,
        extend_close_for_accommodation=quiz.extend_close_for_accommodation,
    )


def accommodation_of(user: User) -> Accommodation:
    return Accommodation(time_factor=user.time_factor, extra_minutes=user.extra_minutes)


@dataclass(frozen=True)
class StudentRules:
    """One quiz as it applies to one student: window, limit and attempts after
    accommodations and overrides (the student's own, and their groups')."""

    timing: StudentTiming
    max_attempts: int


def override_of(row: QuizOverride) -> Override:
    """An override row as the domain reads it (the one place that translates them)."""
    return Override(
        opens_at=row.opens_at,
        closes_at=row.closes_at,
        time_limit=timedelta(seconds=row.time_limit_seconds)
        if row.time_limit_seconds is not None
        else None,
        max_attempts=row.max_attempts,
        no_time_limit=row.no_time_limit,
        no_close=row.no_close,
    )


def rules_from_rows(
    quiz: Quiz, user: User, own: QuizOverride | None, groups: Sequence[QuizOverride]
) -> StudentRules:
    """One quiz for one student, from override rows already loaded: the one assembly of
    the rules, used by rules_for (one student) and rules_for_users (many)."""
    own_rule = override_of(own) if own is not None else None
    group_rules = [override_of(g) for g in groups]
    timing = timing_for(quiz_window(quiz), accommodation_of(user), own_rule, group_rules)
    attempts = combine(own_rule, group_rules).max_attempts
    return StudentRules(timing, attempts if attempts is not None else quiz.max_attempts)


def rules_for(session: Session, quiz: Quiz, user: User) -> StudentRules:
    groups_of_user = select(UserGroup.name).where(UserGroup.user_id == user.id)
    rows = session.scalars(
        select(QuizOverride).where(
            QuizOverride.quiz_id == quiz.id,
            or_(QuizOverride.user_id == user.id, QuizOverride.group_name.in_(groups_of_user)),
        )
    ).all()
    own = next((r for r in rows if r.user_id == user.id), None)
    return rules_from_rows(quiz, user, own, [r for r in rows if r.group_name is not None])


def rules_for_users(session: Session, quiz: Quiz, users: Iterable[User]) -> dict[int, StudentRules]:
    """rules_for for many students in two queries (the quiz's overrides, the students'
    groups), not one per student: a roster of 1,000 or every running attempt at once."""
    people = list(users)
    overrides = session.scalars(select(QuizOverride).where(QuizOverride.quiz_id == quiz.id)).all()
    own = {o.user_id: o for o in overrides if o.user_id is not None}
    by_group = {o.group_name: o for o in overrides if o.group_name is not None}
    memberships: dict[int, list[str]] = {}
    ids = sorted({u.id for u in people})
    for start in range(0, len(ids), 500):  # bounded IN lists on every engine
        for user_id, name in session.execute(
            select(UserGroup.user_id, UserGroup.name).where(
                UserGroup.user_id.in_(ids[start : start + 500])
            )
        ):
            memberships.setdefault(user_id, []).append(name)
    return {
        u.id: rules_from_rows(
            quiz,
            u,
            own.get(u.id),
            [by_group[g] for g in sorted(memberships.get(u.id, [])) if g in by_group],
        )
        for u in people
    }


def release_policy(quiz: Quiz) -> ReleasePolicy:
    return ReleasePolicy.from_json(quiz.release)


def layout_of(attempt: Attempt) -> list[LayoutEntry]:
    return [LayoutEntry.from_json(e) for e in attempt.layout]


def attempt_questions(session: Session, attempt: Attempt) -> list[tuple[LayoutEntry, Question]]:
    """Each slot of an attempt with the exact question version it was started with."""
    layout = layout_of(attempt)
    questions = questions_by_version(session, (e.version_id for e in layout))
    return [(e, questions[e.version_id]) for e in layout]


def quiz_or_404(session: Session, quiz_id: int) -> Quiz:
    """A quiz by id, or NotFound (the web layer answers 404)."""
    quiz = session.get(Quiz, quiz_id)
    if quiz is None:
        raise NotFound("No such quiz.")
    return quiz


def current_version(session: Session, key: str) -> QuestionVersion:
    """The version of question `key` that new attempts use, or NotFound."""
    version = session.scalars(
        select(QuestionVersion)
        .join(QuestionRow, QuestionRow.current_version_id == QuestionVersion.id)
        .where(QuestionRow.key == key)
    ).first()
    if version is None:
        raise NotFound(f"No imported question {key!r}.")
    return version


def current_versions(session: Session) -> list[tuple[QuestionVersion, Question]]:
    """The version new attempts use of every question, by bank file and key."""
    rows = session.scalars(
        select(QuestionVersion)
        .join(QuestionRow, QuestionRow.current_version_id == QuestionVersion.id)
        .order_by(QuestionVersion.source, QuestionVersion.question_key)
    )
    return [(version, question_of(version)) for version in rows]


def attempt_in_quiz(session: Session, quiz_id: int, attempt_id: int) -> Attempt:
    """An attempt of this quiz, or NotFound."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.quiz_id != quiz_id:
        raise NotFound("No such attempt in this quiz.")
    return attempt
