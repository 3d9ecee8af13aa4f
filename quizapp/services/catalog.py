"""Loading question versions and a quiz's timing for one student (shared by services)."""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import BigInteger, Engine, bindparam, cast, func, or_, select, true
from sqlalchemy.orm import Session

from quizapp.domain.layout import Candidate, LayoutEntry, SlotPlan
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
from quizapp.models import (
    Attempt,
    QuestionVersion,
    Quiz,
    QuizOverride,
    QuizSlot,
    User,
    UserGroup,
)
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
_VERSION_FACTS = select(
    QuestionVersion.id, QuestionVersion.content_hash, QuestionVersion.source
).where(QuestionVersion.id.in_(bindparam("ids", expanding=True)))


def questions_by_version(session: Session, ids: Iterable[int]) -> dict[int, Question]:
    """The domain question of each version id."""
    facts = _version_facts(session, ids)
    return _questions_from_hashes(session, {vid: digest for vid, (digest, _) in facts.items()})


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
    return {vid: source for vid, (_, source) in _version_facts(session, ids).items()}


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


# --- What a process keeps of the catalog ------------------------------------------------
#
# Per database (the engine: tests and tools may run several apps in one process), kept
# for the life of the process:
# - each question version's content hash and source file: versions are immutable, so
#   these never need checking again;
# - each quiz's slot plans and the version every candidate key points at, the part of
#   starting that is the same for every student. It is checked, in the same statement
#   that reads the quiz row, against a version derived from existing columns: the
#   quiz's content hash and updated_at (an import rewrites both when it replaces the
#   slots) and a fingerprint of questions.current_version_id (count, sum and sum of
#   squares: a new question, a new version or a revert to an earlier one changes it).
#   An import in any process (another gunicorn worker, the command line) is therefore
#   seen by the next start in every process, at the cost of one small aggregate.
# Overrides and the release policy are not kept: they are per student or read where
# they are used, and staff change them during a window.


@dataclass
class _Kept:
    versions: dict[int, tuple[str, str]]  # version id -> (content hash, source)
    plans: dict[int, tuple[tuple[Any, ...], tuple[SlotPlan, ...], dict[str, Candidate]]]


_KEPT: weakref.WeakKeyDictionary[Engine, _Kept] = weakref.WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()
_VERSIONS_KEPT = 20_000


def _kept(session: Session) -> _Kept:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    kept = _KEPT.get(engine)
    if kept is None:
        with _KEPT_LOCK:
            kept = _KEPT.setdefault(engine, _Kept({}, {}))
    return kept


def _version_facts(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """(content hash, source) of each version id: read once per process, then kept."""
    known = _kept(session).versions
    wanted = set(ids)
    missing = sorted(wanted - known.keys())
    if missing:
        if len(known) + len(missing) > _VERSIONS_KEPT:
            known.clear()
        rows = session.connection().execute(_VERSION_FACTS, {"ids": missing})
        for version_id, digest, source in rows:
            known[version_id] = (digest, source)
    return {vid: known[vid] for vid in wanted if vid in known}


@dataclass(frozen=True)
class QuizInfo:
    """A quiz's own columns as the student's pages read them (not its release policy),
    from one prebuilt statement: no ORM object, nothing in the session."""

    id: int
    key: str
    title: str
    description: str
    opens_at: datetime
    closes_at: datetime | None
    time_limit_seconds: int | None
    extend_close_for_accommodation: bool
    max_attempts: int
    shuffle_slots: bool
    content_hash: str
    updated_at: datetime


_QUIZ_COLUMNS = (
    Quiz.id,
    Quiz.key,
    Quiz.title,
    Quiz.description,
    Quiz.opens_at,
    Quiz.closes_at,
    Quiz.time_limit_seconds,
    Quiz.extend_close_for_accommodation,
    Quiz.max_attempts,
    Quiz.shuffle_slots,
    Quiz.content_hash,
    Quiz.updated_at,
)
_QUIZ_FIELDS = len(_QUIZ_COLUMNS)
_QUIZ_INFO = select(*_QUIZ_COLUMNS).where(Quiz.id == bindparam("quiz_id"))
_EVERY_QUIZ = select(*_QUIZ_COLUMNS).order_by(Quiz.opens_at, Quiz.title)
_CURRENT = cast(QuestionRow.current_version_id, BigInteger)
_QUESTIONS_FINGERPRINT = select(
    func.count(_CURRENT).label("n"),
    func.coalesce(func.sum(_CURRENT), 0).label("total"),
    func.coalesce(func.sum(_CURRENT * _CURRENT), 0).label("squares"),
).subquery()
_QUIZ_FOR_START = (
    select(
        *_QUIZ_COLUMNS,
        _QUESTIONS_FINGERPRINT.c.n,
        _QUESTIONS_FINGERPRINT.c.total,
        _QUESTIONS_FINGERPRINT.c.squares,
    )
    .join_from(Quiz, _QUESTIONS_FINGERPRINT, true())
    .where(Quiz.id == bindparam("quiz_id"))
)
_SLOTS = (
    select(QuizSlot.number, QuizSlot.marks, QuizSlot.candidates, QuizSlot.pool)
    .where(QuizSlot.quiz_id == bindparam("quiz_id"))
    .order_by(QuizSlot.number)
)


def quiz_info(session: Session, quiz_id: int) -> QuizInfo:
    """One quiz's columns, or NotFound."""
    row = session.connection().execute(_QUIZ_INFO, {"quiz_id": quiz_id}).first()
    if row is None:
        raise NotFound("No such quiz.")
    return _quiz_from_row(row)


def _quiz_from_row(row: Any) -> QuizInfo:
    return QuizInfo(*row[:_QUIZ_FIELDS])


def every_quiz(session: Session) -> list[QuizInfo]:
    """Every quiz's columns, soonest opening first."""
    return [_quiz_from_row(row) for row in session.connection().execute(_EVERY_QUIZ)]


@dataclass(frozen=True)
class StartPlan:
    """What starting an attempt needs of the catalog, the same for every student."""

    quiz: QuizInfo
    slots: tuple[SlotPlan, ...]
    candidates: dict[str, Candidate]  # question key -> the version new attempts use


def start_plan(session: Session, quiz_id: int) -> StartPlan:
    """The quiz, its slot plans and the current version of every candidate question:
    one statement when this process already holds them for the catalog's version."""
    row = session.connection().execute(_QUIZ_FOR_START, {"quiz_id": quiz_id}).first()
    if row is None:
        raise NotFound("No such quiz.")
    quiz = _quiz_from_row(row)
    version = (quiz.content_hash, quiz.updated_at, *_fingerprint(row))
    plans = _kept(session).plans
    held = plans.get(quiz.id)
    if held is not None and held[0] == version:
        return StartPlan(quiz, held[1], held[2])
    slots = tuple(
        SlotPlan(number, marks, tuple(candidates), pool)
        for number, marks, candidates, pool in session.connection().execute(
            _SLOTS, {"quiz_id": quiz.id}
        )
    )
    candidates = current_candidates(session, {k for plan in slots for k in plan.candidates})
    # Read after the version: if an import committed in between, what is kept here is
    # newer than its version says, and the next start reads it again (never the reverse).
    plans[quiz.id] = (version, slots, candidates)
    return StartPlan(quiz, slots, candidates)


def _fingerprint(row: Any) -> tuple[int, ...]:
    """PostgreSQL sums bigints as numeric: compare the fingerprint as Python ints."""
    values: tuple[int | Decimal | None, ...] = tuple(row[_QUIZ_FIELDS:])
    return tuple(int(v or 0) for v in values)


class QuizTimes(Protocol):
    """What the rules read of a quiz: a `Quiz` row object or a `QuizInfo`."""

    @property
    def id(self) -> int: ...
    @property
    def opens_at(self) -> datetime: ...
    @property
    def closes_at(self) -> datetime | None: ...
    @property
    def time_limit_seconds(self) -> int | None: ...
    @property
    def extend_close_for_accommodation(self) -> bool: ...
    @property
    def max_attempts(self) -> int: ...


def quiz_window(quiz: QuizTimes) -> Window:
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
    quiz: QuizTimes, user: User, own: QuizOverride | None, groups: Sequence[QuizOverride]
) -> StudentRules:
    """One quiz for one student, from override rows already loaded: the one assembly of
    the rules, used by rules_for (one student) and rules_for_users (many)."""
    own_rule = override_of(own) if own is not None else None
    return rules_from_overrides(quiz, user, own_rule, [override_of(g) for g in groups])


def rules_from_overrides(
    quiz: QuizTimes, user: User, own_rule: Override | None, group_rules: Sequence[Override]
) -> StudentRules:
    """rules_from_rows once the override rows are domain `Override`s."""
    timing = timing_for(quiz_window(quiz), accommodation_of(user), own_rule, group_rules)
    attempts = combine(own_rule, group_rules).max_attempts
    return StudentRules(timing, attempts if attempts is not None else quiz.max_attempts)


def rules_for(session: Session, quiz: QuizTimes, user: User) -> StudentRules:
    """One quiz for one student (the quiz a `Quiz` or a `QuizInfo`)."""
    return rules_by_quiz(session, {quiz.id: quiz}, user)[quiz.id]


# The student's own overrides and their groups' for some quizzes, as plain rows: one
# statement, no ORM objects (every page of the start path assembles the rules).
_OVERRIDE_COLUMNS = (
    QuizOverride.quiz_id,
    QuizOverride.user_id,
    QuizOverride.opens_at,
    QuizOverride.closes_at,
    QuizOverride.time_limit_seconds,
    QuizOverride.max_attempts,
    QuizOverride.no_time_limit,
    QuizOverride.no_close,
)
_OVERRIDES_OF_USER = select(*_OVERRIDE_COLUMNS).where(
    QuizOverride.quiz_id.in_(bindparam("quiz_ids", expanding=True)),
    or_(
        QuizOverride.user_id == bindparam("user_id"),
        QuizOverride.group_name.in_(
            select(UserGroup.name).where(UserGroup.user_id == bindparam("user_id"))
        ),
    ),
)


def _override_from_row(row: Any) -> Override:
    """An override as override_of reads it, from a row of _OVERRIDE_COLUMNS."""
    limit = row.time_limit_seconds
    return Override(
        opens_at=row.opens_at,
        closes_at=row.closes_at,
        time_limit=timedelta(seconds=limit) if limit is not None else None,
        max_attempts=row.max_attempts,
        no_time_limit=row.no_time_limit,
        no_close=row.no_close,
    )


def rules_by_quiz(
    session: Session, quizzes: dict[int, QuizTimes], user: User
) -> dict[int, StudentRules]:
    """rules_for for one student and several quizzes (by id) in one statement."""
    if not quizzes:
        return {}
    own: dict[int, Override] = {}
    groups: dict[int, list[Override]] = {}
    rows = session.connection().execute(
        _OVERRIDES_OF_USER, {"quiz_ids": sorted(quizzes), "user_id": user.id}
    )
    for row in rows:
        if row.user_id == user.id:
            own[row.quiz_id] = _override_from_row(row)
        else:
            groups.setdefault(row.quiz_id, []).append(_override_from_row(row))
    return {
        quiz_id: rules_from_overrides(quiz, user, own.get(quiz_id), groups.get(quiz_id, []))
        for quiz_id, quiz in quizzes.items()
    }


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
