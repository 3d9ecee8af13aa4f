"""Fix and regrade: after a question is corrected and re-imported, mark every finished
attempt's stored answer again, as a dry run first and then for real.

Modes (for one question key of one quiz; with a pool the key may sit in different slots
in different attempts, the slot is taken from each attempt's layout):

- ``regrade``: grade the stored answer (Answer.value) with the stored variant (the
  layout's, never redrawn) against the question's *current* version;
- ``accept``: the same, and answers in an accepted list also earn full marks. For
  single choice and true/false the list holds option keys (each one accepted); for
  multiple response it is one accepted selection (the set of keys, exactly); for every
  other type it holds exact stored values (text as the student typed it, or the JSON of
  a structured answer);
- ``full_marks``: everyone gets the slot's full marks (no re-import needed).

``never_lower`` keeps the current mark where the new one would be lower.

Decisions, so that every mark can still be explained from stored data:

- *Affected* attempts are the quiz's finished attempts (submitted or timed out) whose
  layout holds the question. Expired attempts are finalised first; attempts still in
  progress are not regraded (their number is reported: regrade again once they finish).
- A new Mark row (source "regrade", created_by the examiner, version_id of the version
  used) is written only where the outcome differs from the current mark (mark, status,
  feedback or version); old rows are never changed, so the history is kept.
- A current mark entered by hand (source "manual") is an examiner's judgement: the
  ``regrade`` and ``accept`` modes keep it (shown as kept); ``full_marks`` replaces it.
- On commit, ``regrade`` and ``accept`` move the attempt's layout version_id to the
  version used, so the review page, exports, statistics and later regrades show the
  question the mark was given against. The variant is untouched. The version the student
  was shown stays on record in the attempt's first (auto) Mark row and in the audit
  event. ``full_marks`` does not grade, so it keeps the layout (and records its version).
  The dry run changes nothing at all.
- Attempt.score becomes the exact Fraction sum of the current marks; marks, score,
  layout and one audit event ("regrade", with the options and the counts) are written
  in one transaction.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import String, Text, cast, insert, select, type_coerce, update
from sqlalchemy.orm import Session

from quizapp.db import discard, unit_of_work
from quizapp.domain.layout import LayoutEntry
from quizapp.domain.qtypes.base import UNANSWERED, Grade, GradeStatus
from quizapp.domain.questions import Question, canonical_json
from quizapp.domain.scoring import slot_mark, total
from quizapp.domain.timing import AttemptState
from quizapp.models import Answer, Attempt, Mark, QuestionVersion, Quiz, QuizSlot, User
from quizapp.models import Question as QuestionRow
from quizapp.services import audit
from quizapp.services.attempts import finalise_expired
from quizapp.services.catalog import (
    current_version,
    question_of,
    quiz_or_404,
    versions_by_id,
)
from quizapp.services.errors import Conflict, InvalidInput
from quizapp.services.lti_scores import queue_for_attempts
from quizapp.services.marking import (
    CHUNK,
    FINISHED,
    chunks,
    current_totals,
    parse_fraction,
)
from quizapp.services.marks import newest_mark_ids
from quizapp.services.progress import Progress, Step, Steps, run

CHOICE_TYPES = ("single_choice", "true_false")
SELECTION_TYPES = ("multiple_response",)
ACCEPTED_FEEDBACK = "This answer was also accepted when the question was regraded."


class RegradeMode(enum.StrEnum):
    REGRADE = "regrade"
    ACCEPT = "accept"
    FULL_MARKS = "full_marks"


@dataclass(frozen=True)
class RegradeOptions:
    question_key: str
    mode: RegradeMode = RegradeMode.REGRADE
    accept: tuple[str, ...] = ()
    never_lower: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question_key,
            "mode": self.mode.value,
            "accept": list(self.accept),
            "never_lower": self.never_lower,
        }


@dataclass(frozen=True)
class RegradeRow:
    """One affected attempt: its mark for the question before and after."""

    attempt_id: int
    attempt_number: int
    username: str
    name: str
    slot: int
    marks: Fraction  # the slot's maximum
    response: str  # the stored answer in words
    response_html: str  # the same as sanitised HTML (labels rendered, typed text escaped)
    old_mark: Fraction | None
    old_mark_id: int | None
    old_version_id: int  # the layout's version before
    new_mark: Fraction  # the mark that counts afterwards
    graded: Grade  # what the grading said (before never_lower or a kept manual mark)
    version_id: int  # the version graded against
    old_total: Fraction
    new_total: Fraction
    note: str = ""  # "manual mark kept", "kept: never lower"
    writes: bool = False  # a new Mark row is written on commit

    @property
    def change(self) -> Fraction:
        return self.new_mark - (self.old_mark or Fraction(0))

    @property
    def direction(self) -> str:
        if self.change > 0:
            return "up"
        if self.change < 0:
            return "down"
        return "unchanged"


@dataclass
class RegradePlan:
    quiz: Quiz
    options: RegradeOptions
    question_type: str
    version_id: int | None  # the current version graded against (None for full_marks)
    rows: list[RegradeRow] = field(default_factory=list)
    in_progress: int = 0
    committed: bool = False
    # What the plan was computed from: every attempt holding the question (finished or
    # not) and a digest of their states, layouts and current marks (see _snapshot).
    attempt_ids: tuple[int, ...] = field(default=(), repr=False)
    snapshot: str = field(default="", repr=False)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"up": 0, "down": 0, "unchanged": 0}
        for row in self.rows:
            counts[row.direction] += 1
        return counts

    @property
    def written(self) -> int:
        return sum(1 for row in self.rows if row.writes)

    @property
    def kept(self) -> int:
        return sum(1 for row in self.rows if row.note)

    @property
    def message(self) -> str:
        """What the plan means in one or two sentences (the empty case included)."""
        key = self.options.question_key
        waiting = ""
        if self.in_progress:
            waiting = (
                f" {self.in_progress} attempt(s) with this question are still in progress and "
                "are not regraded: regrade again after they have finished."
            )
        if not self.rows:
            return (
                f"No finished attempt of {self.quiz.key} has question {key}: "
                f"there is nothing to regrade and nothing was written.{waiting}"
            )
        c = self.counts
        verb = "were" if self.committed else "would be"
        return (
            f"{len(self.rows)} finished attempt(s): {c['up']} up, {c['down']} down, "
            f"{c['unchanged']} unchanged; {self.written} new mark(s) {verb} written."
            f"{waiting}"
        )

    @property
    def fingerprint(self) -> str:
        """Identity of the plan: a commit applies only the plan the examiner saw."""
        data = {
            "options": self.options.to_json(),
            "version": self.version_id,
            "rows": [
                [r.attempt_id, r.old_mark_id, str(r.new_mark), r.writes, r.version_id]
                for r in self.rows
            ],
        }
        return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def parse_mode(text: str) -> RegradeMode:
    try:
        return RegradeMode(text)
    except ValueError:
        modes = ", ".join(m.value for m in RegradeMode)
        raise InvalidInput(f"Unknown regrade mode {text!r}: use one of {modes}.") from None


@dataclass(frozen=True)
class QuestionChoice:
    """A question of a quiz that staff may regrade, with its current option keys."""

    key: str
    slots: tuple[int, ...]
    qtype: str
    options: tuple[tuple[str, str], ...]  # (key, text) for choice questions


def regradable_questions(session: Session, quiz_id: int) -> list[QuestionChoice]:
    """Every question key of a quiz: from its slots and from its attempts' layouts (an
    old attempt may hold a question the quiz no longer uses)."""
    slots: dict[str, set[int]] = {}
    for slot in session.scalars(select(QuizSlot).where(QuizSlot.quiz_id == quiz_id)):
        for key in slot.candidates:
            slots.setdefault(key, set()).add(slot.number)
    for (layout,) in session.execute(select(Attempt.layout).where(Attempt.quiz_id == quiz_id)):
        for entry in layout:
            slots.setdefault(str(entry["question_key"]), set()).add(int(entry["slot"]))
    current: dict[str, QuestionVersion] = {
        key: version
        for key, version in session.execute(
            select(QuestionRow.key, QuestionVersion)
            .join(QuestionVersion, QuestionVersion.id == QuestionRow.current_version_id)
            .where(QuestionRow.key.in_(list(slots)))
        )
    }
    found = []
    for key in sorted(slots, key=lambda k: (min(slots[k]), k)):
        version = current.get(key)
        options: tuple[tuple[str, str], ...] = ()
        qtype = version.qtype if version is not None else "?"
        if version is not None and qtype in CHOICE_TYPES + SELECTION_TYPES:
            body = question_of(version).body
            options = tuple((o.key, o.text) for o in getattr(body, "options", ()))
        found.append(QuestionChoice(key, tuple(sorted(slots[key])), qtype, options))
    return found


def _check_options(options: RegradeOptions, question: Question) -> None:
    auto = question.body.auto_graded
    if options.mode is not RegradeMode.FULL_MARKS and not auto:
        raise InvalidInput(
            f"{options.question_key} is marked by hand ({question.type_name}): use full marks, "
            "or mark the answers in the marking queue."
        )
    if options.mode is RegradeMode.ACCEPT:
        if not options.accept:
            raise InvalidInput("Give at least one answer to accept.")
        if question.type_name in CHOICE_TYPES + SELECTION_TYPES:
            known = [o.key for o in getattr(question.body, "options", ())]
            unknown = [k for k in options.accept if k not in known]
            if unknown:
                raise InvalidInput(
                    f"No option {', '.join(unknown)} in {options.question_key}; "
                    f"its option keys are {', '.join(known)}."
                )
    elif options.accept:
        raise InvalidInput("Accepted answers are only used in the accept mode.")


def _is_accepted(question: Question, accepted: Sequence[str], value: Any) -> bool:
    if value is None:
        return False
    if question.type_name in CHOICE_TYPES:
        return str(value) in accepted
    if question.type_name in SELECTION_TYPES:
        return isinstance(value, list) and set(map(str, value)) == set(accepted)
    for given in accepted:
        if value == given:
            return True
        try:
            if not isinstance(value, str) and json.loads(given) == value:
                return True
        except ValueError:
            continue
    return False


def _grade(options: RegradeOptions, question: Question, entry: LayoutEntry, value: Any) -> Grade:
    if options.mode is RegradeMode.FULL_MARKS:
        return Grade(Fraction(1), GradeStatus.CORRECT, "Full marks given to everyone.")
    try:
        grade = UNANSWERED if value is None else question.body.grade(entry.variant, value)
    except Exception as exc:  # a corrected version that no longer fits a stored variant
        raise InvalidInput(
            f"{options.question_key} cannot grade a stored answer with the new version "
            f"({type(exc).__name__}: {exc}); nothing was written."
        ) from exc
    if (
        options.mode is RegradeMode.ACCEPT
        and grade.fraction < 1
        and _is_accepted(question, options.accept, value)
    ):
        return Grade(Fraction(1), GradeStatus.CORRECT, ACCEPTED_FEEDBACK)
    return grade


@dataclass(frozen=True)
class _Candidate:
    """An attempt of the quiz whose layout holds the question (one row of one query)."""

    id: int
    state: AttemptState
    number: int
    user_id: int
    score: Fraction | None
    entry: LayoutEntry  # the question's slot in this attempt
    layout_digest: str  # of the layout as stored: any change to it shows


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _candidates(session: Session, quiz_id: int, key: str) -> list[_Candidate]:
    # The layout is read as stored text (and parsed here), so that a snapshot taken
    # later can compare layouts by digest without parsing thousands of them again.
    found = []
    for attempt_id, state, number, user_id, score, text in session.execute(
        select(
            Attempt.id,
            Attempt.state,
            Attempt.number,
            Attempt.user_id,
            Attempt.score,
            cast(Attempt.layout, Text),
        )
        .where(Attempt.quiz_id == quiz_id)
        .order_by(Attempt.id)
    ):
        entry = next((e for e in json.loads(text) if str(e["question_key"]) == key), None)
        if entry is not None:
            found.append(
                _Candidate(
                    attempt_id,
                    state,
                    number,
                    user_id,
                    score,
                    LayoutEntry.from_json(entry),
                    _digest(text),
                )
            )
    return found


@dataclass(frozen=True)
class _CurrentMark:
    id: int
    marks: Fraction
    fraction: Fraction
    status: str
    feedback: str
    version_id: int
    source: str


def _current_marks(session: Session, attempt_ids: Sequence[int]) -> dict[tuple[int, int], Any]:
    """The mark that counts per (attempt, slot), from plain rows (no ORM objects: a
    regrade of 10,000 attempts reads 150,000 of them)."""
    newest = newest_mark_ids(attempt_ids=attempt_ids)
    rows = session.execute(
        select(
            Mark.id,
            Mark.attempt_id,
            Mark.slot,
            type_coerce(Mark.marks, String),
            type_coerce(Mark.fraction, String),
            Mark.status,
            Mark.feedback,
            Mark.version_id,
            Mark.source,
        ).where(Mark.id.in_(newest))
    )
    return {
        (attempt_id, slot): _CurrentMark(
            mark_id,
            parse_fraction(marks),
            parse_fraction(fraction),
            status,
            feedback,
            version_id,
            source,
        )
        for mark_id, attempt_id, slot, marks, fraction, status, feedback, version_id, source in rows
    }


def _snapshot(states: Sequence[tuple[int, str, str]], mark_ids: Sequence[int]) -> str:
    """What a plan was computed from, in one digest: the attempts holding the question
    (state and layout as stored) and the ids of the marks that count in the finished
    ones. Answers of finished attempts never change (reopening changes the state,
    finishing again adds marks), and versions and mark rows are never updated, so an
    equal snapshot means the same plan."""
    data = {"attempts": sorted(states), "marks": sorted(mark_ids)}
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def _snapshot_now(session: Session, attempt_ids: Sequence[int]) -> str:
    """The snapshot of the same attempts, read again (inside the write transaction)."""
    states: list[tuple[int, str, str]] = []
    finished: list[int] = []
    for part in chunks(list(attempt_ids)):
        for attempt_id, state, text in session.execute(
            select(Attempt.id, Attempt.state, cast(Attempt.layout, Text)).where(
                Attempt.id.in_(part)
            )
        ):
            states.append((attempt_id, state.value, _digest(text)))
            if state in FINISHED:
                finished.append(attempt_id)
    mark_ids: list[int] = []
    for part in chunks(finished):
        mark_ids.extend(session.scalars(newest_mark_ids(attempt_ids=part)))
    return _snapshot(states, mark_ids)


def _build_steps(session: Session, quiz: Quiz, options: RegradeOptions) -> Steps[RegradePlan]:
    """Work out the plan, CHUNK attempts at a time (a Step after each chunk). Reads only."""
    key = options.question_key
    target = current_version(session, key)
    target_question = question_of(target)
    if options.mode is not RegradeMode.FULL_MARKS:
        _check_options(options, target_question)
    elif options.accept:
        raise InvalidInput("Accepted answers are only used in the accept mode.")

    candidates = _candidates(session, quiz.id, key)
    finished = [c for c in candidates if c.state in FINISHED]
    plan = RegradePlan(
        quiz=quiz,
        options=options,
        question_type=target.qtype,
        version_id=None if options.mode is RegradeMode.FULL_MARKS else target.id,
        in_progress=sum(1 for c in candidates if c.state is AttemptState.IN_PROGRESS),
    )
    count = len(finished)
    yield Step(0, count)
    own_versions = versions_by_id(session, {c.entry.version_id for c in finished})
    mark_ids: list[int] = []
    for start in range(0, count, CHUNK):
        part = finished[start : start + CHUNK]
        ids = [c.id for c in part]
        marks = _current_marks(session, ids)
        mark_ids.extend(m.id for m in marks.values())
        answers = {
            (attempt_id, slot): value
            for attempt_id, slot, value in session.execute(
                select(Answer.attempt_id, Answer.slot, Answer.value).where(
                    Answer.attempt_id.in_(ids), Answer.slot.in_({c.entry.slot for c in part})
                )
            )
        }
        students = {
            row.id: row
            for row in session.execute(
                select(User.id, User.username, User.name).where(
                    User.id.in_({c.user_id for c in part})
                )
            )
        }
        totals: dict[int, list[Fraction]] = {}
        for (attempt_id, _slot), mark in marks.items():
            totals.setdefault(attempt_id, []).append(mark.marks)
        for attempt in part:
            plan.rows.append(
                _row(
                    options,
                    attempt,
                    own_versions,
                    target_question,
                    target.id,
                    answers.get((attempt.id, attempt.entry.slot)),
                    marks.get((attempt.id, attempt.entry.slot)),
                    totals.get(attempt.id, []),
                    students[attempt.user_id],
                )
            )
        yield Step(start + len(part), count)
    plan.rows.sort(key=lambda r: (r.username, r.attempt_number))
    plan.attempt_ids = tuple(c.id for c in candidates)
    plan.snapshot = _snapshot(
        [(c.id, c.state.value, c.layout_digest) for c in candidates], mark_ids
    )
    return plan


def _row(
    options: RegradeOptions,
    attempt: _Candidate,
    own_versions: dict[int, QuestionVersion],
    target_question: Question,
    target_id: int,
    value: Any,
    old: Any,
    marks: list[Fraction],
    student: Any,
) -> RegradeRow:
    entry = attempt.entry
    if options.mode is RegradeMode.FULL_MARKS:
        question, version_id = question_of(own_versions[entry.version_id]), entry.version_id
    else:
        question, version_id = target_question, target_id
    grade = _grade(options, question, entry, value)
    graded = slot_mark(entry.marks, grade)
    new, note = graded, ""
    manual = old is not None and old.source == "manual"
    if manual and options.mode is not RegradeMode.FULL_MARKS:
        new, note = old.marks, "manual mark kept"
    elif options.never_lower and old is not None and graded < old.marks:
        new, note = old.marks, "kept: never lower"
    writes = not note and (
        old is None
        or (old.marks, old.fraction, old.status, old.feedback, old.version_id)
        != (graded, grade.fraction, grade.status.value, grade.feedback, version_id)
    )
    current_sum = total(marks)
    return RegradeRow(
        attempt_id=attempt.id,
        attempt_number=attempt.number,
        username=student.username,
        name=student.name,
        slot=entry.slot,
        marks=entry.marks,
        response=question.body.describe_response(entry.variant, value),
        response_html=question.body.describe_response_html(entry.variant, value),
        old_mark=old.marks if old is not None else None,
        old_mark_id=old.id if old is not None else None,
        old_version_id=entry.version_id,
        new_mark=new,
        graded=grade,
        version_id=version_id,
        old_total=attempt.score if attempt.score is not None else current_sum,
        new_total=current_sum - (old.marks if old is not None else 0) + new,
        note=note,
        writes=writes,
    )


def plan_regrade_steps(
    session: Session, quiz_id: int, options: RegradeOptions, now: datetime, grace: timedelta
) -> Steps[RegradePlan]:
    """The dry run, step by step: what a regrade would change, attempt by attempt. Writes
    nothing (apart from finalising attempts whose time is over, which any page does)."""
    quiz = quiz_or_404(session, quiz_id)
    finalise_expired(session, now, grace, quiz_id=quiz_id)
    try:
        return (yield from _build_steps(session, quiz, options))
    finally:
        discard(session)  # end the read transaction; nothing was changed


def plan_regrade(
    session: Session,
    quiz_id: int,
    options: RegradeOptions,
    now: datetime,
    grace: timedelta,
    progress: Progress | None = None,
) -> RegradePlan:
    """The dry run (plan_regrade_steps), reporting to `progress(done, total)`."""
    return run(plan_regrade_steps(session, quiz_id, options, now, grace), progress)


def commit_regrade_steps(
    session: Session,
    quiz_id: int,
    options: RegradeOptions,
    actor_id: int | None,
    now: datetime,
    grace: timedelta,
    *,
    expected: str | None = None,
    ip: str = "",
) -> Steps[RegradePlan]:
    """Apply a regrade: new Mark rows, moved layouts, exact totals and an audit event, in
    one transaction. With `expected` (the dry run's fingerprint), nothing is written if
    the outcome would differ from what the examiner saw (Conflict). A question without
    finished attempts writes nothing; the returned plan says so.

    Compute first, write at the end: the plan is worked out in a read transaction (the
    slow part, reported step by step), then the write transaction locks the attempts,
    checks that nothing the plan was computed from has changed meanwhile (its snapshot;
    otherwise Conflict and nothing is written) and writes, without yielding. On SQLite the
    write lock is held only for the writing, never while progress goes to a client."""
    quiz = quiz_or_404(session, quiz_id)
    finalise_expired(session, now, grace, quiz_id=quiz_id)
    try:
        plan = yield from _build_steps(session, quiz, options)
    finally:
        discard(session)  # end the read transaction (also when the client went away)
    if expected is not None and expected != plan.fingerprint:
        raise Conflict(
            "The marks changed since the dry run (a new import, a manual mark or another "
            "regrade): check the new dry run and confirm again."
        )
    if not plan.rows:
        return plan
    yield Step(stage=f"Writing {plan.written} new mark(s) and the new totals")
    _write(session, quiz, plan, actor_id, now, ip)
    return plan


def commit_regrade(
    session: Session,
    quiz_id: int,
    options: RegradeOptions,
    actor_id: int | None,
    now: datetime,
    grace: timedelta,
    *,
    expected: str | None = None,
    ip: str = "",
    progress: Progress | None = None,
) -> RegradePlan:
    """commit_regrade_steps, reporting to `progress(done, total)`."""
    steps = commit_regrade_steps(
        session, quiz_id, options, actor_id, now, grace, expected=expected, ip=ip
    )
    return run(steps, progress)


def _write(
    session: Session, quiz: Quiz, plan: RegradePlan, actor_id: int | None, now: datetime, ip: str
) -> None:
    """The write transaction of a commit: lock, check the snapshot, write. Never yields."""
    options = plan.options
    try:
        with unit_of_work(session):
            ids = [r.attempt_id for r in plan.rows]
            for part in chunks(sorted(ids)):
                # Row locks (PostgreSQL; SQLite's write lock is already held): a manual mark
                # or another regrade of these attempts waits until this one has committed.
                session.execute(select(Attempt.id).where(Attempt.id.in_(part)).with_for_update())
            moved_on = plan.version_id is not None and (
                current_version(session, options.question_key).id != plan.version_id
            )
            if moved_on or _snapshot_now(session, plan.attempt_ids) != plan.snapshot:
                raise Conflict(
                    "Attempts or marks of this quiz changed while the regrade was being worked "
                    "out (a submission, a manual mark, an import or another regrade): nothing "
                    "was written. Run the dry run again and confirm."
                )
            new_marks = [
                {
                    "attempt_id": row.attempt_id,
                    "slot": row.slot,
                    "version_id": row.version_id,
                    "fraction": row.graded.fraction,
                    "marks": slot_mark(row.marks, row.graded),
                    "status": row.graded.status.value,
                    "feedback": row.graded.feedback,
                    "source": "regrade",
                    "created_at": now,
                    "created_by": actor_id,
                }
                for row in plan.rows
                if row.writes
            ]
            if new_marks:
                session.execute(insert(Mark), new_marks)
            # The layout moves to the version graded against (regrade and accept modes).
            moves = {
                row.attempt_id: row
                for row in plan.rows
                if options.mode is not RegradeMode.FULL_MARKS
                and row.old_version_id != row.version_id
            }
            layouts: dict[int, list[dict[str, Any]]] = {}
            for part in chunks(sorted(moves)):
                for attempt_id, layout in session.execute(
                    select(Attempt.id, Attempt.layout).where(Attempt.id.in_(part))
                ):
                    row = moves[attempt_id]
                    layouts[attempt_id] = [
                        {**e, "version_id": row.version_id} if int(e["slot"]) == row.slot else e
                        for e in layout
                    ]
            scores = current_totals(session, ids)
            session.execute(update(Attempt), [{"id": i, "score": v} for i, v in scores.items()])
            if layouts:
                session.execute(
                    update(Attempt), [{"id": i, "layout": v} for i, v in layouts.items()]
                )
            plan.committed = True
            audit.record(
                session,
                "regrade",
                now,
                actor_id=actor_id,
                quiz_id=quiz.id,
                ip=ip,
                **options.to_json(),
                version_id=plan.version_id,
                old_version_ids=sorted({r.old_version_id for r in plan.rows}),
                attempts=len(plan.rows),
                written=plan.written,
                kept=plan.kept,
                in_progress=plan.in_progress,
                **plan.counts,
            )
            # The new scores to the VLE's gradebook, through the outbox (lti_scores.py).
            queue_for_attempts(session, quiz.id, ids, now)
        session.expire_all()  # the bulk updates bypassed any Attempt objects held
    except BaseException:
        plan.committed = False
        raise
