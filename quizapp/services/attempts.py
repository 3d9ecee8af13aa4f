"""The attempt lifecycle: start, save, submit, and finalise (by the student, lazily, or by
the sweeper). Every rule comes from the domain; every race is settled by the database.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    bindparam,
    delete,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from quizapp.db import discard, end_snapshot, rows_matched, unit_of_work
from quizapp.domain.layout import LayoutEntry, LayoutError, build_layout
from quizapp.domain.qtypes.base import AnswerOutOfBounds, Grade, GradeStatus, InvalidSubmission
from quizapp.domain.questions import canonical_json
from quizapp.domain.scoring import total
from quizapp.domain.timing import AttemptState, WindowState, accepts_saves, is_expired
from quizapp.models import (
    Answer,
    AnswerLog,
    Attempt,
    FinishReason,
    LogOutcome,
    Mark,
    Quiz,
    SlotFlag,
    User,
)
from quizapp.services import audit
from quizapp.services.catalog import (
    attempt_questions,
    questions_by_version,
    rules_for,
    start_plan,
)
from quizapp.services.errors import Conflict, InvalidInput, NotFound, Unprocessable
from quizapp.services.grading import GradedSlot, grade_answers
from quizapp.services.marks import newest_mark_ids

log = logging.getLogger(__name__)

# Sequence numbers are "page base + counter": the base is the server's time (in tenths
# of a second) when the page was rendered, times this factor, so a page loaded later
# wins over an older one, and one page can make 100,000 saves before it could reach the
# next base. The result stays below 2^53, exact as a JavaScript number.
SEQ_PAGE_FACTOR = 100_000


TIME_OVER = "The time for this attempt is over; the answers saved before the deadline are kept."

# What one save may carry, whichever way it arrives (the JSON API or a form post), and
# stated identically in docs/api/openapi.yaml (a test compares them). seq stops at
# 2^53-1 because the page's numbers are exact only up to there: a larger one would be
# rounded in the browser and could tie with, or lose to, an older save. A question type
# may set a smaller bound on its own values (answered with 422).
MAX_SEQ = 2**53 - 1
MAX_VALUES = 200
MAX_VALUE_CHARS = 100_000


def check_save_bounds(submitted: Mapping[int, Sequence[str]], seq: int) -> None:
    """Refuse (400) a save beyond the bounds above, before any work is done for it."""
    if not 0 <= seq <= MAX_SEQ:
        raise InvalidInput(f"'seq' must be a whole number from 0 to {MAX_SEQ} (2^53-1).")
    for values in submitted.values():
        if len(values) > MAX_VALUES:
            raise InvalidInput(f"At most {MAX_VALUES} values per answer.")
        if any(len(v) > MAX_VALUE_CHARS for v in values):
            raise InvalidInput(f"An answer may have at most {MAX_VALUE_CHARS} characters.")


def page_sequence_base(now: datetime) -> int:
    return int(now.timestamp() * 10) * SEQ_PAGE_FACTOR


def in_progress_attempt(session: Session, quiz_id: int, user_id: int) -> Attempt | None:
    return session.scalars(
        select(Attempt).where(
            Attempt.quiz_id == quiz_id,
            Attempt.user_id == user_id,
            Attempt.state == AttemptState.IN_PROGRESS,
        )
    ).first()


_INSERT_ATTEMPT = insert(Attempt).returning(Attempt.id)

# A student's attempts of one quiz as plain rows: how many there are and which one runs.
_ATTEMPTS_OF_STUDENT = select(Attempt.id, Attempt.state).where(
    Attempt.quiz_id == bindparam("quiz_id"), Attempt.user_id == bindparam("user_id")
)


def _attempts_of_student(session: Session, quiz_id: int, user_id: int) -> list[Any]:
    """(id, state) of each attempt of this student at this quiz."""
    result = session.connection().execute(
        _ATTEMPTS_OF_STUDENT, {"quiz_id": quiz_id, "user_id": user_id}
    )
    return list(result.all())


def start_attempt(
    session: Session, quiz_id: int, user: User, now: datetime, grace: timedelta, ip: str = ""
) -> Attempt:
    """Start (or return the already running) attempt. Idempotent under double clicks:
    the partial unique index allows one in-progress attempt, so a racing second insert
    fails and returns the first.

    The hot path of exam day's first minute: the quiz, its slots and the candidate
    versions come from catalog.start_plan (kept per process, checked in the statement
    that reads the quiz), the student's attempts and overrides are a statement each,
    and nothing but the new attempt and its audit event is an ORM object."""
    plan = start_plan(session, quiz_id)
    quiz = plan.quiz
    rows = _attempts_of_student(session, quiz.id, user.id)
    running = next((r.id for r in rows if r.state is AttemptState.IN_PROGRESS), None)
    if running is not None:
        existing = session.get(Attempt, running)
        if existing is not None:
            finalise_if_expired(session, existing, now, grace)
            if existing.state is AttemptState.IN_PROGRESS:
                return existing
    rules = rules_for(session, quiz, user)
    timing = rules.timing
    state = timing.state_at(now)
    if state is WindowState.UPCOMING:
        raise Conflict("This quiz has not opened yet.")
    if state is WindowState.CLOSED:
        raise Conflict("This quiz has closed.")
    used = len(rows)
    if used >= rules.max_attempts:
        # On PostgreSQL each statement sees what was committed before it began: another
        # tab's start may have committed between the check above and this count. Its
        # attempt is then the one to return, not a refusal.
        winner = in_progress_attempt(session, quiz.id, user.id)
        if winner is not None and not finalise_if_expired(session, winner, now, grace):
            return winner
        raise Conflict("You have no attempts left for this quiz.")

    seed = secrets.randbits(31)
    try:
        layout = build_layout(plan.slots, plan.candidates, seed, shuffle_slots=quiz.shuffle_slots)
    except LayoutError as exc:
        raise Conflict(f"This quiz cannot be started: {exc}. Please tell the examiner.") from exc

    deadline = timing.deadline_if_started_at(now)
    row: dict[str, Any] = {
        "quiz_id": quiz.id,
        "user_id": user.id,
        "number": used + 1,
        "state": AttemptState.IN_PROGRESS,
        "seed": seed,
        "layout": [e.to_json() for e in layout],
        "started_at": now,
        "deadline_at": deadline,
        "max_score": total(e.marks for e in layout),
        "finished_at": None,
        "finish_reason": None,
        "score": None,
        "receipt": None,
        "concurrent_use_at": None,
    }
    try:
        with unit_of_work(session):
            # The attempt by a prebuilt INSERT, not the ORM's flush (a quarter of a
            # millisecond, on the request 200 students make in the same minute); its
            # audit event goes the one way every event goes.
            attempt_id = session.connection().execute(_INSERT_ATTEMPT, row).scalar_one()
            audit.record(
                session,
                "start",
                now,
                actor_id=user.id,
                subject_id=user.id,
                quiz_id=quiz.id,
                attempt_id=attempt_id,
                ip=ip,
                deadline=deadline.isoformat() if deadline else None,
            )
    except IntegrityError:
        # Another tab's start won (the one-in-progress index): return its attempt.
        winner = in_progress_attempt(session, quiz.id, user.id)
        if winner is None:
            raise Conflict("Could not start the quiz; please try again.") from None
        return winner
    # The new row as a persistent object with every column known (no SELECT back).
    attempt = Attempt(id=attempt_id, **row)
    make_transient_to_detached(attempt)
    session.add(attempt)
    return attempt


def attempt_for_student(
    session: Session, attempt_id: int, user: User, now: datetime, grace: timedelta
) -> Attempt:
    """A student's own attempt, finalised first if its time is over. Someone else's: 404."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.user_id != user.id:
        raise NotFound("No such attempt.")
    finalise_if_expired(session, attempt, now, grace)
    return attempt


def current_answers(session: Session, attempt_id: int) -> dict[int, Answer]:
    rows = session.scalars(
        select(Answer)
        .where(Answer.attempt_id == attempt_id)
        .execution_options(populate_existing=True)
    )
    return {a.slot: a for a in rows}


class SaveStatus(enum.StrEnum):
    SAVED = "saved"  # stored now
    UNCHANGED = "unchanged"  # the stored answer already had this value (or this very save)
    STALE = "stale"  # a newer answer (higher sequence) is stored; this one was ignored


@dataclass(frozen=True)
class SaveResult:
    slot: int
    status: SaveStatus
    saved_at: datetime | None  # when the answer now stored was saved
    seq: int  # the sequence of the answer now stored


def _build_upsert(insert_for_dialect: Any) -> Any:
    stmt = insert_for_dialect(Answer).values(
        attempt_id=bindparam("attempt_id"),
        slot=bindparam("slot"),
        value=bindparam("value"),
        seq=bindparam("seq"),
        saved_at=bindparam("saved_at"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[Answer.attempt_id, Answer.slot],
        set_={
            "value": stmt.excluded.value,
            "seq": stmt.excluded.seq,
            "saved_at": stmt.excluded.saved_at,
        },
        where=Answer.seq < stmt.excluded.seq,
    ).returning(Answer.id)


# The statements of the save path are built once: each execution then skips building
# the construct and its cache key (most of an autosave's CPU time was spent there).
_UPSERT_ANSWER = {
    "postgresql": _build_upsert(postgresql.insert),
    "sqlite": _build_upsert(sqlite.insert),
}


def upsert_answer(
    session: Session, attempt_id: int, slot: int, value: Any, seq: int, now: datetime
) -> bool:
    """One statement, no read: the highest sequence wins, a repeat changes nothing."""
    connection = session.connection()
    stmt = _UPSERT_ANSWER[connection.dialect.name]
    params = {"attempt_id": attempt_id, "slot": slot, "value": value, "seq": seq, "saved_at": now}
    return connection.execute(stmt, params).first() is not None


@dataclass(frozen=True)
class SaveOutcome:
    results: list[SaveResult]
    deadline_at: datetime | None  # the attempt's deadline as the save saw it


@dataclass(frozen=True)
class _LockedAttempt:
    """The columns a save needs, read under lock with the quiz's flag in one statement
    (an autosave is the hottest request of exam day: no full ORM load of the attempt)."""

    id: int
    user_id: int
    quiz_id: int
    state: AttemptState
    deadline_at: datetime | None
    layout: list[dict[str, Any]]
    concurrent_use_at: datetime | None
    flag_concurrent_use: bool


_LOCK_FOR_SAVE = (
    select(
        Attempt.id,
        Attempt.user_id,
        Attempt.quiz_id,
        Attempt.state,
        Attempt.deadline_at,
        Attempt.layout,
        Attempt.concurrent_use_at,
        Quiz.flag_concurrent_use,
    )
    .join(Quiz, Quiz.id == Attempt.quiz_id)
    .where(Attempt.id == bindparam("attempt_id"))
    .with_for_update(read=True, of=Attempt)
)


def _lock_for_save(session: Session, attempt_id: int) -> _LockedAttempt | None:
    row = session.connection().execute(_LOCK_FOR_SAVE, {"attempt_id": attempt_id}).first()
    return _LockedAttempt(*row) if row is not None else None


def save_answers(
    session: Session,
    attempt_id: int,
    submitted: Mapping[int, Sequence[str]],
    seq: int,
    now: datetime,
    grace: timedelta,
    ip: str = "",
    client: str = "",
    *,
    owner_id: int | None = None,
    typed_at: datetime | None = None,
) -> SaveOutcome:
    """Save several slots' answers at once (a form post or one autosave).

    Nothing is written unless every value is acceptable and the attempt still takes
    saves; the attempt row is locked (FOR SHARE on PostgreSQL, the write lock on SQLite)
    so a concurrent finalisation either sees these answers or refuses them. With
    `owner_id`, an attempt of anyone else is NotFound (the API's ownership check, made
    by the same statement that locks the row).

    A save the attempt no longer takes (after the deadline's grace, or after it was
    submitted) is refused with Conflict, but first kept in the answer log as evidence
    (`Conflict.details["recorded"]`): staff see it and may accept it; the browser may
    forget its copy only once the server has recorded it. `typed_at` is the browser's
    own claim of when the value was typed, kept with it.
    """
    check_save_bounds(submitted, seq)
    arrival = Arrival(seq, now, ip, client, typed_at)
    with unit_of_work(session):
        locked = _lock_for_save(session, attempt_id)
        if locked is None or (owner_id is not None and locked.user_id != owner_id):
            raise NotFound("No such attempt.")
        if locked.state is AttemptState.IN_PROGRESS and accepts_saves(
            locked.deadline_at, now, grace
        ):
            return _save(session, locked, submitted, arrival)
    # Refused: finished, or its time is over (then finalised first, as any request does).
    attempt = session.get(Attempt, attempt_id, populate_existing=True)
    assert attempt is not None
    finalise_if_expired(session, attempt, now, grace)
    # Late: the deadline ended it. Otherwise the student submitted, or staff finished it.
    reason = attempt.finish_reason
    outcome = LogOutcome.LATE if reason is FinishReason.DEADLINE else LogOutcome.AFTER_FINISH
    recorded = _record_refused(session, locked, submitted, arrival, outcome)
    messages: dict[FinishReason | None, str] = {
        FinishReason.DEADLINE: TIME_OVER,
        FinishReason.STAFF: "Staff have finished this attempt; no more answers can be saved.",
    }
    message = messages.get(
        reason, "This attempt has already been submitted; no more answers can be saved."
    )
    if recorded:
        message += " What you sent has been recorded for staff to see."
    raise Conflict(message, recorded=recorded)


def _save(
    session: Session,
    locked: _LockedAttempt,
    submitted: Mapping[int, Sequence[str]],
    arrival: Arrival,
) -> SaveOutcome:
    """The save itself, inside the caller's unit of work on the locked attempt."""
    seq, now = arrival.seq, arrival.now
    values = _accepted_values(session, locked, submitted)
    stored = _stored_answers(session, locked.id, values.keys())
    if locked.flag_concurrent_use and locked.concurrent_use_at is None:
        _notice_concurrent_use(session, locked, now, arrival.ip, arrival.client)
    results = []
    logged = []
    for slot, value in values.items():
        before = stored.get(slot)
        if before is not None and before.value == value:
            # A repeat, or a form re-posting an untouched answer: nothing to record.
            results.append(SaveResult(slot, SaveStatus.UNCHANGED, before.saved_at, before.seq))
        elif upsert_answer(session, locked.id, slot, value, seq, now):
            logged.append(arrival.log_row(locked.id, slot, value, None))
            results.append(SaveResult(slot, SaveStatus.SAVED, now, seq))
        else:
            newer = _stored_answers(session, locked.id, [slot])[slot]
            status = SaveStatus.UNCHANGED if newer.seq == seq else SaveStatus.STALE
            if status is SaveStatus.STALE:
                logged.append(arrival.log_row(locked.id, slot, value, LogOutcome.STALE))
            results.append(SaveResult(slot, status, newer.saved_at, newer.seq))
    if logged:
        session.connection().execute(_LOG_ANSWER, logged)
    return SaveOutcome(results, locked.deadline_at)


@dataclass(frozen=True)
class Arrival:
    """How one save reached the server: its sequence, when it arrived, from where, and
    when the browser says it was typed (evidence only)."""

    seq: int
    now: datetime
    ip: str = ""
    client: str = ""
    typed_at: datetime | None = None

    def log_row(
        self, attempt_id: int, slot: int, value: Any, outcome: LogOutcome | None
    ) -> dict[str, Any]:
        """One answer_log row for a value of this save (outcome None: it was stored)."""
        return {
            "attempt_id": attempt_id,
            "slot": slot,
            "value": value,
            "seq": self.seq,
            "received_at": self.now,
            "ip": self.ip[:64],
            "client": self.client[:32],
            "typed_at": self.typed_at,
            "outcome": outcome,
        }


def _record_refused(
    session: Session,
    locked: _LockedAttempt,
    submitted: Mapping[int, Sequence[str]],
    arrival: Arrival,
    outcome: LogOutcome,
) -> bool:
    """Keep a save the attempt no longer takes, in its own short transaction, with an
    audit event. False when the values do not fit the questions (they were refused for
    that anyway, and the browser keeps its copy)."""
    try:
        with unit_of_work(session):
            values = _accepted_values(session, locked, submitted)
            # A form post carries every answer on the page: keep only what differs from
            # the answers stored (an untouched answer is no evidence of anything).
            stored = _stored_answers(session, locked.id, values.keys())
            values = {
                slot: value
                for slot, value in values.items()
                if (stored[slot].value != value if slot in stored else value is not None)
            }
            if values:
                session.connection().execute(
                    _LOG_ANSWER,
                    [arrival.log_row(locked.id, slot, v, outcome) for slot, v in values.items()],
                )
                audit.record(
                    session,
                    "refused_save",
                    arrival.now,
                    subject_id=locked.user_id,
                    quiz_id=locked.quiz_id,
                    attempt_id=locked.id,
                    ip=arrival.ip,
                    client=arrival.client[:32],
                    outcome=outcome.value,
                    slots=sorted(values),
                    seq=arrival.seq,
                    typed_at=arrival.typed_at.isoformat() if arrival.typed_at else None,
                )
    except InvalidInput:
        return False
    return True


def _accepted_values(
    session: Session, locked: _LockedAttempt, submitted: Mapping[int, Sequence[str]]
) -> dict[int, Any]:
    """Each submitted answer as its question type stores it; only the versions of the
    submitted slots are loaded. Any bad value refuses the whole save."""
    entries = {
        int(raw["slot"]): LayoutEntry.from_json(raw)
        for raw in locked.layout
        if int(raw["slot"]) in submitted
    }
    unknown = sorted(set(submitted) - set(entries))
    if unknown:
        raise InvalidInput(f"Question {unknown[0]} is not part of this attempt.")
    questions = questions_by_version(session, (entries[slot].version_id for slot in submitted))
    values: dict[int, Any] = {}
    for slot, raw in submitted.items():
        entry = entries[slot]
        try:
            values[slot] = questions[entry.version_id].body.accept(entry.variant, raw)
        except AnswerOutOfBounds as exc:
            raise Unprocessable(f"Question {slot}: {exc}") from exc
        except InvalidSubmission as exc:
            raise InvalidInput(f"Question {slot}: {exc}") from exc
    return values


class _StoredAnswer(NamedTuple):
    value: Any
    seq: int
    saved_at: datetime


_LOG_ANSWER = insert(AnswerLog)
_STORED_ANSWERS = select(Answer.slot, Answer.value, Answer.seq, Answer.saved_at).where(
    Answer.attempt_id == bindparam("attempt_id"),
    Answer.slot.in_(bindparam("slots", expanding=True)),
)


def _stored_answers(
    session: Session, attempt_id: int, slots: Iterable[int]
) -> dict[int, _StoredAnswer]:
    rows = session.connection().execute(
        _STORED_ANSWERS, {"attempt_id": attempt_id, "slots": list(slots)}
    )
    return {slot: _StoredAnswer(value, seq, saved_at) for slot, value, seq, saved_at in rows}


CONCURRENT_WINDOW = timedelta(minutes=5)
_OTHER_CLIENT = (
    select(AnswerLog.ip, AnswerLog.client)
    .where(
        AnswerLog.attempt_id == bindparam("attempt_id"),
        AnswerLog.received_at >= bindparam("since"),
        or_(AnswerLog.ip != bindparam("ip"), AnswerLog.client != bindparam("client")),
    )
    .order_by(AnswerLog.id.desc())
    .limit(1)
)


def _notice_concurrent_use(
    session: Session, attempt: _LockedAttempt, now: datetime, ip: str, client: str
) -> None:
    """Flag (never block) an attempt answered from two browser sessions or addresses
    within a few minutes of each other, for staff to look at."""
    other = (
        session.connection()
        .execute(
            _OTHER_CLIENT,
            {
                "attempt_id": attempt.id,
                "since": now - CONCURRENT_WINDOW,
                "ip": ip[:64],
                "client": client[:32],
            },
        )
        .first()
    )
    if other is None:
        return
    session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id)
        .values(concurrent_use_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        "concurrent_use",
        now,
        subject_id=attempt.user_id,
        quiz_id=attempt.quiz_id,
        attempt_id=attempt.id,
        ip=ip,
        client=client,
        other_ip=other.ip,
        other_client=other.client,
    )


def submit_attempt(session: Session, attempt: Attempt, now: datetime, grace: timedelta) -> bool:
    """Submit and grade. Returns False when the attempt was already finished (a no-op)."""
    if finalise_if_expired(session, attempt, now, grace):
        return False
    return finalise_attempt(session, attempt, now, FinishReason.SUBMITTED)


def finalise_if_expired(
    session: Session, attempt: Attempt, now: datetime, grace: timedelta
) -> bool:
    """Finalise an attempt whose deadline plus grace has passed. True if it did so now."""
    if attempt.state is not AttemptState.IN_PROGRESS:
        return False
    if not is_expired(attempt.deadline_at, now, grace):
        return False
    return finalise_attempt(session, attempt, now, FinishReason.DEADLINE)


# How often a finalisation grades again from a new snapshot because a save slipped in
# between the snapshot and the claim; after that it grades under the write lock (still
# bounded: every answer grades in milliseconds).
_SNAPSHOT_TRIES = 3


def finalise_attempt(
    session: Session,
    attempt: Attempt,
    now: datetime,
    reason: FinishReason,
    *,
    staff_audit: Mapping[str, Any] | None = None,
    claimed: bool = False,
) -> bool:
    """Move an attempt out of IN_PROGRESS exactly once, grade it, and commit.

    Grading happens outside the write transaction that every autosave needs: the answers
    are read in a snapshot, graded with no lock held, and the marks written in a short
    transaction that claims the attempt with a conditional UPDATE (of two finalisers,
    only the one whose UPDATE changes a row writes) and checks that the answers graded
    are still the answers stored. With `staff_audit`, a "staff_finalise" event with those
    details commits in the same transaction. `claimed`: the caller's open transaction
    holds this attempt's row lock (the PostgreSQL sweeper), so no save can land: grade
    inside it. True if this call finalised the attempt.
    """
    state = AttemptState.SUBMITTED if reason is FinishReason.SUBMITTED else AttemptState.TIMED_OUT
    # A timed-out attempt ends at its deadline, however late the sweeper notices it.
    finished_at = (
        now if reason is not FinishReason.DEADLINE else min(now, attempt.deadline_at or now)
    )
    for round_ in range(_SNAPSHOT_TRIES if claimed else 0, _SNAPSHOT_TRIES + 1):
        under_lock = round_ == _SNAPSHOT_TRIES
        if not under_lock:
            end_snapshot(session)
            answers = current_answers(session, attempt.id)
            # Copied now: the identity map refreshes these objects on the next read.
            graded_versions = _versions(answers)
            questions = attempt_questions(session, attempt)
            end_snapshot(session)  # grading holds no snapshot and no lock
            graded = grade_answers(attempt.id, questions, {s: a.value for s, a in answers.items()})
        try:
            with unit_of_work(session):
                changed = rows_matched(
                    session.execute(
                        update(Attempt)
                        .where(Attempt.id == attempt.id, Attempt.state == AttemptState.IN_PROGRESS)
                        .values(state=state, finished_at=finished_at, finish_reason=reason)
                        .execution_options(synchronize_session=False)
                    )
                )
                if changed != 1:
                    raise _FinishedElsewhere
                stored = current_answers(session, attempt.id)
                if under_lock:
                    answers = stored
                    questions = attempt_questions(session, attempt)
                    values = {s: a.value for s, a in answers.items()}
                    graded = grade_answers(attempt.id, questions, values)
                elif _versions(stored) != graded_versions:
                    raise _AnswersChanged  # a save landed after the snapshot: grade again
                _write_grades(session, attempt, graded, answers, now, reason, staff_audit)
        except _FinishedElsewhere:
            session.refresh(attempt)
            return False
        except _AnswersChanged:
            continue
        return True
    raise AssertionError("unreachable: the last round grades under the lock")


class _FinishedElsewhere(Exception):
    """Another finaliser's conditional UPDATE won: nothing to do here."""


class _AnswersChanged(Exception):
    """The answers stored are no longer those graded: undo the claim, grade again."""


def _versions(answers: Mapping[int, Answer]) -> dict[int, int]:
    return {slot: a.seq for slot, a in answers.items()}


def _write_grades(
    session: Session,
    attempt: Attempt,
    graded: Sequence[GradedSlot],
    answers: Mapping[int, Answer],
    now: datetime,
    reason: FinishReason,
    staff_audit: Mapping[str, Any] | None,
) -> None:
    session.refresh(attempt)
    for g in graded:
        session.add(_mark_row(attempt.id, g.entry.slot, g.entry.version_id, g.grade, g.mark, now))
    attempt.score = total(g.mark for g in graded)
    attempt.receipt = receipt_code(attempt, answers)
    failed = [g.entry.slot for g in graded if g.grade.status is GradeStatus.GRADING_FAILED]
    audit.record(
        session,
        "submit" if reason is FinishReason.SUBMITTED else "finalise",
        now,
        actor_id=attempt.user_id if reason is FinishReason.SUBMITTED else None,
        subject_id=attempt.user_id,
        quiz_id=attempt.quiz_id,
        attempt_id=attempt.id,
        reason=reason.value,
        score=str(attempt.score),
        receipt=attempt.receipt,
        grading_failed=failed or None,
    )
    if staff_audit is not None:
        audit.record(
            session,
            "staff_finalise",
            now,
            subject_id=attempt.user_id,
            quiz_id=attempt.quiz_id,
            attempt_id=attempt.id,
            **staff_audit,
        )
    # The LTI score outbox, in this same transaction (services/lti_scores.py): the VLE
    # gets the score from `quizapp lti scores send`, never during this request.
    from quizapp.services.lti_scores import queue_scores  # lti_scores reaches exports

    queue_scores(session, attempt.quiz_id, [attempt.user_id], now)


def _mark_row(
    attempt_id: int, slot: int, version_id: int, grade: Grade, mark: Fraction, now: datetime
) -> Mark:
    return Mark(
        attempt_id=attempt_id,
        slot=slot,
        version_id=version_id,
        fraction=grade.fraction,
        marks=mark,
        status=grade.status.value,
        feedback=grade.feedback,
        source="auto",
        created_at=now,
    )


def receipt_code(attempt: Attempt, answers: Mapping[int, Answer]) -> str:
    """A short code from a hash of the final answers: staff can recompute it to verify
    that what the student was shown at submission is what is stored."""
    payload = canonical_json(
        {
            "attempt": attempt.id,
            "answers": {str(s): [a.value, a.seq] for s, a in sorted(answers.items())},
        }
    )
    # surrogatepass: a receipt can be computed for any text a database holds, even text
    # stored before the boundary refused lone surrogates.
    digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest().upper()
    return f"{digest[:4]}-{digest[4:8]}-{digest[8:12]}"


def finalise_expired(
    session: Session,
    now: datetime,
    grace: timedelta,
    batch: int = 200,
    *,
    quiz_id: int | None = None,
) -> int:
    """Finalise every attempt past deadline plus grace (of one quiz, with `quiz_id`: a
    page about one quiz sweeps only that quiz). Idempotent and safe to run on several
    machines at once: each attempt is claimed by a conditional UPDATE, and on PostgreSQL
    sweepers share the work (FOR UPDATE SKIP LOCKED) instead of queueing on the same
    rows."""
    expired = [Attempt.state == AttemptState.IN_PROGRESS, Attempt.deadline_at < now - grace]
    if quiz_id is not None:
        expired.append(Attempt.quiz_id == quiz_id)
    if session.get_bind().dialect.name == "postgresql":
        return _finalise_expired_skip_locked(session, now, expired)
    done = 0
    failed: set[int] = set()
    while True:
        ids = session.scalars(
            select(Attempt.id)
            .where(*expired)
            .order_by(Attempt.deadline_at)
            .limit(batch + len(failed))
        ).all()
        end_snapshot(session)
        ids = [i for i in ids if i not in failed]
        if not ids:
            return done
        for attempt_id in ids:
            attempt = session.get(Attempt, attempt_id)
            if attempt is None:
                continue
            if _finalise_contained(session, attempt, now):
                done += 1
            elif attempt.state is AttemptState.IN_PROGRESS:
                failed.add(attempt_id)


def _finalise_contained(
    session: Session, attempt: Attempt, now: datetime, *, claimed: bool = False
) -> bool:
    """The sweeper's finalisation of one expired attempt: any failure is logged with the
    attempt's id and rolled back, and the sweep goes on with the others."""
    try:
        return finalise_attempt(session, attempt, now, FinishReason.DEADLINE, claimed=claimed)
    except Exception:
        log.exception("sweeper: could not finalise attempt %s", attempt.id)
        discard(session)
        session.refresh(attempt)
        return False


def _finalise_expired_skip_locked(
    session: Session, now: datetime, expired: list[ColumnElement[bool]]
) -> int:
    """One attempt per transaction: claim the oldest expired attempt no other sweeper
    holds, grade it under that row's lock and commit (which releases the claim). On
    PostgreSQL the lock is the attempt's row only: other students' saves go on. A sweeper
    killed midway loses only its open transaction; the attempt stays claimable. An
    attempt that fails is skipped for the rest of this run (and logged)."""
    done = 0
    failed: set[int] = set()
    while True:
        claim = (
            select(Attempt)
            .where(*expired)
            .order_by(Attempt.deadline_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if failed:
            claim = claim.where(Attempt.id.not_in(failed))
        attempt = session.scalars(claim).first()
        if attempt is None:
            end_snapshot(session)
            return done
        if _finalise_contained(session, attempt, now, claimed=True):
            done += 1
        elif attempt.state is AttemptState.IN_PROGRESS:
            failed.add(attempt.id)


def finish_if_deadline_reached(session: Session, attempt: Attempt, now: datetime) -> bool:
    """The page's countdown reached zero and its last answers are in: finish now rather
    than waiting out the grace period, so the student sees the outcome at once."""
    if attempt.state is not AttemptState.IN_PROGRESS or attempt.deadline_at is None:
        return False
    if now < attempt.deadline_at:
        return False
    return finalise_attempt(session, attempt, now, FinishReason.DEADLINE)


class PageAnswers(NamedTuple):
    """What the attempt page shows of the student's work: the stored answer per slot and
    the slots flagged for review."""

    answers: dict[int, _StoredAnswer]
    flagged: set[int]


# The answers and the flags in one statement of plain rows (the attempt page's).
_ANSWERS_AND_FLAGS = union_all(
    select(
        Answer.slot, Answer.value, Answer.seq, Answer.saved_at, literal(False).label("flag")
    ).where(Answer.attempt_id == bindparam("attempt_id")),
    select(SlotFlag.slot, null(), null(), null(), literal(True)).where(
        SlotFlag.attempt_id == bindparam("attempt_id")
    ),
)


def page_answers(session: Session, attempt_id: int) -> PageAnswers:
    """current_answers (as plain rows) and flagged_slots together."""
    answers: dict[int, _StoredAnswer] = {}
    flagged: set[int] = set()
    rows = session.connection().execute(_ANSWERS_AND_FLAGS, {"attempt_id": attempt_id})
    for slot, value, seq, saved_at, flag in rows:
        if flag:
            flagged.add(slot)
        else:
            answers[slot] = _StoredAnswer(value, seq, saved_at)
    return PageAnswers(answers, flagged)


def flagged_slots(session: Session, attempt_id: int) -> set[int]:
    return set(session.scalars(select(SlotFlag.slot).where(SlotFlag.attempt_id == attempt_id)))


def set_flag(session: Session, attempt: Attempt, slot: int, flagged: bool) -> None:
    """Flag a question for review (or unflag it). Idempotent; only while in progress."""
    if slot not in {int(e["slot"]) for e in attempt.layout}:
        raise InvalidInput(f"Question {slot} is not part of this attempt.")
    if attempt.state is not AttemptState.IN_PROGRESS:
        raise Conflict("This attempt has finished.")
    # One statement each way, no read first: two tabs flagging at once (a check, then an
    # insert) raced into a uniqueness error, a 500, on PostgreSQL.
    with unit_of_work(session):
        if flagged:
            connection = session.connection()
            dialect_insert = (
                postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            )
            connection.execute(
                dialect_insert(SlotFlag)
                .values(attempt_id=attempt.id, slot=slot)
                .on_conflict_do_nothing(index_elements=[SlotFlag.attempt_id, SlotFlag.slot])
            )
        else:
            session.execute(
                delete(SlotFlag).where(SlotFlag.attempt_id == attempt.id, SlotFlag.slot == slot)
            )


def current_marks(session: Session, attempt_id: int) -> dict[int, Mark]:
    """The mark that counts for each slot: the newest row (older rows are the history)."""
    rows = session.scalars(
        select(Mark).where(Mark.id.in_(newest_mark_ids(attempt_ids=[attempt_id])))
    )
    return {m.slot: m for m in rows}


def answer_form_values(
    session: Session, attempt: Attempt, answers: Mapping[int, Answer | _StoredAnswer]
) -> dict[int, list[str]]:
    """The form values that put each stored answer back on the attempt page, by slot:
    what the student sent, as their question type shows it (as the attempt page renders
    it; never anything about correctness). `answers` are the rows the caller already
    read (current_answers or page_answers), so the values match the sequence numbers it
    reports with them."""
    if not answers:
        return {}
    values: dict[int, list[str]] = {}
    for entry, question in attempt_questions(session, attempt):
        answer = answers.get(entry.slot)
        if answer is not None:
            stored = answer.value
            # A cleared answer is stored as None: an empty form.
            values[entry.slot] = (
                [] if stored is None else question.body.form_values(entry.variant, stored)
            )
    return values
