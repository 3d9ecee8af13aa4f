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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.db import begin_write
from quizapp.domain.layout import LayoutEntry
from quizapp.domain.qtypes.base import UNANSWERED, Grade, GradeStatus
from quizapp.domain.questions import Question, canonical_json
from quizapp.domain.scoring import slot_mark, total
from quizapp.domain.timing import AttemptState
from quizapp.models import Answer, Attempt, Mark, QuestionVersion, Quiz, QuizSlot, User
from quizapp.models import Question as QuestionRow
from quizapp.services import audit
from quizapp.services.attempts import finalize_expired
from quizapp.services.catalog import (
    current_version,
    layout_of,
    question_of,
    quiz_or_404,
    versions_by_id,
)
from quizapp.services.errors import Conflict, InvalidInput
from quizapp.services.marking import (
    FINISHED,
    chunks,
    current_marks_of,
    lock_attempts,
    recompute_scores,
)

Progress = Callable[[int, int], None]
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
    auto = bool(getattr(type(question.body), "auto_graded", True))
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


def _build(
    session: Session,
    quiz: Quiz,
    options: RegradeOptions,
    progress: Progress | None,
    *,
    lock: bool,
) -> RegradePlan:
    key = options.question_key
    target = current_version(session, key)
    target_question = question_of(target)
    if options.mode is not RegradeMode.FULL_MARKS:
        _check_options(options, target_question)
    elif options.accept:
        raise InvalidInput("Accepted answers are only used in the accept mode.")

    candidates = session.execute(
        select(Attempt.id, Attempt.state, Attempt.layout).where(Attempt.quiz_id == quiz.id)
    ).all()
    ids = []
    in_progress = 0
    for attempt_id, state, layout in candidates:
        if not any(str(e["question_key"]) == key for e in layout):
            continue
        if state in FINISHED:
            ids.append(attempt_id)
        elif state is AttemptState.IN_PROGRESS:
            in_progress += 1
    plan = RegradePlan(
        quiz=quiz,
        options=options,
        question_type=target.qtype,
        version_id=None if options.mode is RegradeMode.FULL_MARKS else target.id,
        in_progress=in_progress,
    )
    if not ids:
        return plan
    ids.sort()
    if lock:
        attempts = lock_attempts(session, ids)
    else:
        attempts = []
        for part in chunks(ids):
            attempts.extend(
                session.scalars(select(Attempt).where(Attempt.id.in_(part)).order_by(Attempt.id))
            )
    # A lock taken after the read above: an attempt that changed state meanwhile drops out.
    attempts = [a for a in attempts if a.state in FINISHED]
    entries = {a.id: next(e for e in layout_of(a) if e.question_key == key) for a in attempts}
    marks = current_marks_of(session, [a.id for a in attempts])
    answers: dict[tuple[int, int], Any] = {}
    for part in chunks([a.id for a in attempts]):
        slots = {entries[i].slot for i in part}
        for attempt_id, slot, value in session.execute(
            select(Answer.attempt_id, Answer.slot, Answer.value).where(
                Answer.attempt_id.in_(part), Answer.slot.in_(slots)
            )
        ):
            answers[(attempt_id, slot)] = value
    students = {
        u.id: u
        for part in chunks(sorted({a.user_id for a in attempts}))
        for u in session.scalars(select(User).where(User.id.in_(part)))
    }
    own_versions = versions_by_id(session, {e.version_id for e in entries.values()})
    totals: dict[int, list[Fraction]] = {}
    for (attempt_id, _slot), mark in marks.items():
        totals.setdefault(attempt_id, []).append(mark.marks)

    for done, attempt in enumerate(attempts, start=1):
        entry = entries[attempt.id]
        value = answers.get((attempt.id, entry.slot))
        if options.mode is RegradeMode.FULL_MARKS:
            question, version_id = question_of(own_versions[entry.version_id]), entry.version_id
        else:
            question, version_id = target_question, target.id
        grade = _grade(options, question, entry, value)
        graded = slot_mark(entry.marks, grade)
        old = marks.get((attempt.id, entry.slot))
        new, note = graded, ""
        manual = old is not None and old.source == "manual"
        if manual and options.mode is not RegradeMode.FULL_MARKS:
            assert old is not None
            new, note = old.marks, "manual mark kept"
        elif options.never_lower and old is not None and graded < old.marks:
            new, note = old.marks, "kept: never lower"
        writes = not note and (
            old is None
            or (old.marks, old.fraction, old.status, old.feedback, old.version_id)
            != (graded, grade.fraction, grade.status.value, grade.feedback, version_id)
        )
        current_sum = total(totals.get(attempt.id, []))
        old_total = attempt.score if attempt.score is not None else current_sum
        new_total = current_sum - (old.marks if old is not None else 0) + new
        student = students[attempt.user_id]
        plan.rows.append(
            RegradeRow(
                attempt_id=attempt.id,
                attempt_number=attempt.number,
                username=student.username,
                name=student.name,
                slot=entry.slot,
                marks=entry.marks,
                response=question.body.describe_response(entry.variant, value),
                old_mark=old.marks if old is not None else None,
                old_mark_id=old.id if old is not None else None,
                old_version_id=entry.version_id,
                new_mark=new,
                graded=grade,
                version_id=version_id,
                old_total=old_total,
                new_total=new_total,
                note=note,
                writes=writes,
            )
        )
        if progress is not None and (done % 200 == 0 or done == len(attempts)):
            progress(done, len(attempts))
    plan.rows.sort(key=lambda r: (r.username, r.attempt_number))
    return plan


def plan_regrade(
    session: Session,
    quiz_id: int,
    options: RegradeOptions,
    now: datetime,
    grace: timedelta,
    progress: Progress | None = None,
) -> RegradePlan:
    """The dry run: what a regrade would change, attempt by attempt. Writes nothing
    (apart from finalising attempts whose time is over, which any page does)."""
    quiz = quiz_or_404(session, quiz_id)
    finalize_expired(session, now, grace)
    try:
        return _build(session, quiz, options, progress, lock=False)
    finally:
        session.rollback()  # end the read transaction; nothing was changed


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
    """Apply a regrade in one transaction: new Mark rows, moved layouts, exact totals and
    an audit event. With `expected` (the dry run's fingerprint), nothing is written if
    the outcome would differ from what the examiner saw (Conflict). A question without
    finished attempts writes nothing; the returned plan says so."""
    quiz = quiz_or_404(session, quiz_id)
    finalize_expired(session, now, grace)
    begin_write(session)
    try:
        plan = _build(session, quiz, options, progress, lock=True)
        if expected is not None and expected != plan.fingerprint:
            raise Conflict(
                "The marks changed since the dry run (a new import, a manual mark or another "
                "regrade): check the new dry run and confirm again."
            )
        if not plan.rows:
            session.rollback()
            return plan
        attempts = {a.id: a for a in lock_attempts(session, [r.attempt_id for r in plan.rows])}
        for row in plan.rows:
            attempt = attempts[row.attempt_id]
            if row.writes:
                session.add(
                    Mark(
                        attempt_id=row.attempt_id,
                        slot=row.slot,
                        version_id=row.version_id,
                        fraction=row.graded.fraction,
                        marks=slot_mark(row.marks, row.graded),
                        status=row.graded.status.value,
                        feedback=row.graded.feedback,
                        source="regrade",
                        created_at=now,
                        created_by=actor_id,
                    )
                )
            moved = row.old_version_id != row.version_id
            if options.mode is not RegradeMode.FULL_MARKS and moved:
                # A new list: the JSON column notices reassignment, not in-place edits.
                attempt.layout = [
                    {**e, "version_id": row.version_id} if int(e["slot"]) == row.slot else e
                    for e in attempt.layout
                ]
        recompute_scores(session, attempts.values())
        plan.committed = True
        audit.record(
            session,
            "regrade",
            now,
            actor_id=actor_id,
            quiz_id=quiz.id,
            ip=ip,
            **plan.options.to_json(),
            version_id=plan.version_id,
            old_version_ids=sorted({r.old_version_id for r in plan.rows}),
            attempts=len(plan.rows),
            written=plan.written,
            kept=plan.kept,
            in_progress=plan.in_progress,
            **plan.counts,
        )
        session.commit()
    except Exception:
        session.rollback()
        raise
    return plan
