"""What staff watch while a quiz runs: counts, the live table of running attempts, the
preflight check of every student's window, and one student's history across quizzes.

Read-only. Every page is a handful of GROUP BY queries, however many students there are
(no query per row). Rules come from the domain (timing_for); the roster's rules are
computed in one batch with the same inputs catalog.rules_for reads for one student.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from quizapp.domain.timing import (
    AttemptState,
    StudentTiming,
)
from quizapp.models import (
    Answer,
    AnswerLog,
    Attempt,
    AuditEvent,
    Quiz,
    QuizOverride,
    Role,
    User,
    UserGroup,
)
from quizapp.services.attempts import finalise_expired, finalise_if_expired
from quizapp.services.catalog import (
    StudentRules,
    quiz_or_404,
    rules_from_rows,
)
from quizapp.services.errors import NotFound
from quizapp.services.late_answers import RefusedAnswer, refused_answers, refused_answers_of_quiz
from quizapp.services.marking import NOTHING_PENDING, Pending, pending_marks

# --- counts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuizCounts:
    """Students on the roster (role student), each counted once by the state of their
    latest attempt: the four states add up to the roster."""

    roster: int
    not_started: int
    in_progress: int
    submitted: int
    timed_out: int

    def as_json(self) -> dict[str, int]:
        return {
            "roster": self.roster,
            "not_started": self.not_started,
            "in_progress": self.in_progress,
            "submitted": self.submitted,
            "timed_out": self.timed_out,
        }


def quiz_counts(session: Session, quiz_id: int) -> QuizCounts:
    roster = (
        session.scalar(select(func.count()).select_from(User).where(User.role == Role.STUDENT)) or 0
    )
    latest = (
        select(Attempt.user_id, func.max(Attempt.number).label("number"))
        .where(Attempt.quiz_id == quiz_id)
        .group_by(Attempt.user_id)
        .subquery()
    )
    by_state: dict[AttemptState, int] = {}
    for state, n in session.execute(
        select(Attempt.state, func.count())
        .join(latest, and_(latest.c.user_id == Attempt.user_id, latest.c.number == Attempt.number))
        .join(User, User.id == Attempt.user_id)
        .where(Attempt.quiz_id == quiz_id, User.role == Role.STUDENT)
        .group_by(Attempt.state)
    ):
        by_state[state] = n
    started = sum(by_state.values())
    return QuizCounts(
        roster=roster,
        not_started=max(0, roster - started),
        in_progress=by_state.get(AttemptState.IN_PROGRESS, 0),
        submitted=by_state.get(AttemptState.SUBMITTED, 0),
        timed_out=by_state.get(AttemptState.TIMED_OUT, 0),
    )


# --- the live table -------------------------------------------------------------------


@dataclass(frozen=True)
class LiveRow:
    """One attempt in progress, as the live table shows it."""

    attempt_id: int
    user_id: int
    username: str
    name: str
    started_at: datetime
    deadline_at: datetime | None
    last_save_at: datetime | None
    answered: int
    slots: int
    addresses: int  # distinct AnswerLog.ip
    clients: int  # distinct AnswerLog.client (browser sessions)
    concurrent_use_at: datetime | None

    @property
    def device_changed(self) -> bool:
        """More than one address or browser session, or flagged at save time."""
        return self.addresses > 1 or self.clients > 1 or self.concurrent_use_at is not None

    def seconds_left(self, now: datetime) -> int | None:
        if self.deadline_at is None:
            return None
        return max(0, int((self.deadline_at - now).total_seconds()))


def _answered_expr() -> ColumnElement[Any]:
    # A cleared answer may be stored as SQL NULL or as JSON null, depending on the path.
    present = and_(Answer.value.is_not(None), cast(Answer.value, String) != "null")
    return func.sum(case((present, 1), else_=0))


def live_rows(session: Session, quiz_id: int) -> list[LiveRow]:
    """Every attempt in progress on a quiz: three aggregates joined in one query."""
    running = and_(Attempt.quiz_id == quiz_id, Attempt.state == AttemptState.IN_PROGRESS)
    logs = (
        select(
            AnswerLog.attempt_id.label("attempt_id"),
            # The last save that was stored (refused ones still show who sent them).
            func.max(case((AnswerLog.outcome.is_(None), AnswerLog.received_at))).label("last_save"),
            func.count(func.distinct(AnswerLog.ip)).label("addresses"),
            func.count(func.distinct(AnswerLog.client)).label("clients"),
        )
        .join(Attempt, Attempt.id == AnswerLog.attempt_id)
        .where(running)
        .group_by(AnswerLog.attempt_id)
        .subquery()
    )
    answered = (
        select(Answer.attempt_id.label("attempt_id"), _answered_expr().label("answered"))
        .join(Attempt, Attempt.id == Answer.attempt_id)
        .where(running)
        .group_by(Answer.attempt_id)
        .subquery()
    )
    query = (
        select(
            Attempt.id,
            Attempt.user_id,
            User.username,
            User.name,
            Attempt.started_at,
            Attempt.deadline_at,
            Attempt.layout,
            Attempt.concurrent_use_at,
            logs.c.last_save,
            logs.c.addresses,
            logs.c.clients,
            answered.c.answered,
        )
        .join(User, User.id == Attempt.user_id)
        .outerjoin(logs, logs.c.attempt_id == Attempt.id)
        .outerjoin(answered, answered.c.attempt_id == Attempt.id)
        .where(running)
        .order_by(Attempt.deadline_at, User.username)
    )
    return [
        LiveRow(
            attempt_id=r.id,
            user_id=r.user_id,
            username=r.username,
            name=r.name,
            started_at=r.started_at,
            deadline_at=r.deadline_at,
            last_save_at=r.last_save,
            answered=int(r.answered or 0),
            slots=len(r.layout or []),
            addresses=r.addresses or 0,
            clients=r.clients or 0,
            concurrent_use_at=r.concurrent_use_at,
        )
        for r in session.execute(query)
    ]


@dataclass(frozen=True)
class NeedsStaff:
    """A finished attempt that staff must look at: answers still to be marked (essays,
    or answers whose automatic grading failed: its score is provisional until then), or
    answers that arrived too late and were refused."""

    attempt_id: int
    user_id: int
    username: str
    grading_failed: list[int]  # slots
    refused: int  # answers refused as late or after the attempt finished, not yet accepted
    pending: Pending = NOTHING_PENDING  # marking.pending_marks: what is still to be marked
    score: Fraction | None = None  # the attempt's score so far (provisional if pending)
    max_score: Fraction | None = None


@dataclass(frozen=True)
class Overview:
    quiz: Quiz
    counts: QuizCounts
    rows: list[LiveRow]


def overview(session: Session, quiz_id: int, now: datetime, grace: timedelta) -> Overview:
    """Counts and running attempts, after finalising whatever has expired (so nothing
    shows as running whose time is over)."""
    quiz = quiz_or_404(session, quiz_id)
    finalise_expired(session, now, grace, quiz_id=quiz_id)
    return Overview(quiz, quiz_counts(session, quiz_id), live_rows(session, quiz_id))


def needs_staff(session: Session, quiz_id: int) -> list[NeedsStaff]:
    """Finished attempts of a quiz waiting for staff (for the overview page)."""
    pending = pending_marks(session, quiz_id=quiz_id)
    refused = Counter(
        r.attempt_id for r in refused_answers_of_quiz(session, quiz_id) if r.accepted_at is None
    )
    ids = sorted(set(pending) | set(refused))
    if not ids:
        return []
    who = {
        attempt_id: (user_id, username, score, max_score)
        for attempt_id, user_id, username, score, max_score in session.execute(
            select(Attempt.id, User.id, User.username, Attempt.score, Attempt.max_score)
            .join(User, User.id == Attempt.user_id)
            .where(Attempt.id.in_(ids))
        )
    }
    rows = []
    for i in ids:
        if i not in who:
            continue
        user_id, username, score, max_score = who[i]
        waiting = pending.get(i, NOTHING_PENDING)
        rows.append(
            NeedsStaff(
                i,
                user_id,
                username,
                list(waiting.grading_failed),
                refused.get(i, 0),
                waiting,
                score,
                max_score,
            )
        )
    return sorted(rows, key=lambda n: (n.username, n.attempt_id))


# --- rules for many students at once ----------------------------------------------------


def groups_by_user(session: Session, user_ids: Iterable[int]) -> dict[int, list[str]]:
    wanted = sorted(set(user_ids))
    found: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(wanted), 500):  # bounded IN lists on every engine
        for user_id, name in session.execute(
            select(UserGroup.user_id, UserGroup.name)
            .where(UserGroup.user_id.in_(wanted[start : start + 500]))
            .order_by(UserGroup.name)
        ):
            found[user_id].append(name)
    return found


def describe_accommodation(user: User) -> str:
    parts = []
    if user.time_factor != 1:
        parts.append(f"×{_factor(user.time_factor)} time")
    if user.extra_minutes:
        parts.append(f"+{user.extra_minutes} min")
    return ", ".join(parts)


def _factor(value: Fraction) -> str:
    as_float = float(value)
    return f"{as_float:g}" if Fraction(as_float).limit_denominator(1000) == value else str(value)


def describe_override(row: QuizOverride) -> str:
    who = f"group {row.group_name}" if row.group_name is not None else "own"
    parts = []
    if row.opens_at is not None:
        parts.append("opens changed")
    if row.no_close:
        parts.append("no close")
    elif row.closes_at is not None:
        parts.append("close changed")
    if row.no_time_limit:
        parts.append("no time limit")
    elif row.time_limit_seconds is not None:
        parts.append(f"limit {row.time_limit_seconds // 60} min")
    if row.max_attempts is not None:
        parts.append(f"{row.max_attempts} attempt(s)")
    reason = f" ({row.reason})" if row.reason else ""
    return f"{who}: {', '.join(parts)}{reason}"


# --- preflight ------------------------------------------------------------------------


@dataclass(frozen=True)
class PreflightRow:
    """One student's effective window, and what may go wrong with it.

    short_window: the time from their open to their close is less than their time
    limit. Equivalently, the latest start that still gives them their full time
    (close − limit) comes before they can open the quiz: even starting at once, the
    window end cuts their timer. Everyone else gets their full time if they start by
    latest_full_start.
    """

    user: User
    groups: list[str]
    rules: StudentRules
    accommodation: str
    overrides: list[str]
    short_window: bool
    crosses_dst: bool
    cannot_log_in: str

    @property
    def timing(self) -> StudentTiming:
        return self.rules.timing

    @property
    def latest_full_start(self) -> datetime | None:
        t = self.timing
        if t.closes_at is None or t.time_limit is None:
            return None
        return t.closes_at - t.time_limit

    @property
    def flagged(self) -> bool:
        return self.short_window or self.crosses_dst or bool(self.cannot_log_in)


@dataclass(frozen=True)
class Preflight:
    quiz: Quiz
    rows: list[PreflightRow]
    zone: str
    short_windows: int = field(default=0)
    dst_crossings: int = field(default=0)
    cannot_log_in: int = field(default=0)


def crosses_dst(opens_at: datetime, closes_at: datetime | None, zone: ZoneInfo) -> bool:
    """True when the zone's UTC offset at the open differs from the one at the close."""
    if closes_at is None:
        return False
    return opens_at.astimezone(zone).utcoffset() != closes_at.astimezone(zone).utcoffset()


def _login_problem(user: User) -> str:
    if user.password_hash is None:
        return "no password set yet"
    if not user.active:
        return "account disabled"
    return ""


def preflight(session: Session, quiz_id: int, zone: ZoneInfo) -> Preflight:
    """Every student's window after accommodations and overrides, with flags. Four
    queries: the quiz, the roster, the quiz's overrides, and the roster's groups."""
    quiz = quiz_or_404(session, quiz_id)
    students = session.scalars(
        select(User).where(User.role == Role.STUDENT).order_by(User.username)
    ).all()
    overrides = session.scalars(select(QuizOverride).where(QuizOverride.quiz_id == quiz.id)).all()
    own = {o.user_id: o for o in overrides if o.user_id is not None}
    by_group = {o.group_name: o for o in overrides if o.group_name is not None}
    memberships = groups_by_user(session, (u.id for u in students)) if students else {}
    rows = []
    for user in students:
        groups = memberships.get(user.id, [])
        group_rows = [by_group[g] for g in groups if g in by_group]
        rules = rules_from_rows(quiz, user, own.get(user.id), group_rows)
        timing = rules.timing
        short = (
            timing.closes_at is not None
            and timing.time_limit is not None
            and timing.closes_at - timing.opens_at < timing.time_limit
        )
        applied = group_rows + ([own[user.id]] if user.id in own else [])
        rows.append(
            PreflightRow(
                user=user,
                groups=groups,
                rules=rules,
                accommodation=describe_accommodation(user),
                overrides=[describe_override(o) for o in applied],
                short_window=short,
                crosses_dst=crosses_dst(timing.opens_at, timing.closes_at, zone),
                cannot_log_in=_login_problem(user),
            )
        )
    return Preflight(
        quiz=quiz,
        rows=rows,
        zone=zone.key,
        short_windows=sum(r.short_window for r in rows),
        dst_crossings=sum(r.crosses_dst for r in rows),
        cannot_log_in=sum(bool(r.cannot_log_in) for r in rows),
    )


# --- one student ------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    ip: str
    client: str
    saves: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class StudentAttempt:
    attempt: Attempt
    quiz: Quiz
    rules: StudentRules
    deadline_why: list[str]
    devices: list[Device]
    refused: list[RefusedAnswer] = field(default_factory=list)  # late answers, kept
    grading_failed: list[int] = field(default_factory=list)  # slots waiting for staff
    pending: Pending = NOTHING_PENDING  # still to be marked: the score is provisional

    @property
    def device_changed(self) -> bool:
        return (
            len({d.ip for d in self.devices}) > 1
            or len({d.client for d in self.devices}) > 1
            or self.attempt.concurrent_use_at is not None
        )


@dataclass(frozen=True)
class StudentHistory:
    user: User
    groups: list[str]
    accommodation: str
    attempts: list[StudentAttempt]


def _fmt_limit(limit: timedelta) -> str:
    minutes, seconds = divmod(int(limit.total_seconds()), 60)
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


def describe_limit(timing: StudentTiming) -> str:
    """The time limit with its parts, for staff: "70 min + 17 min 30 s (accommodation)
    = 87 min 30 s" (one rule: the accommodation applies to whatever limit applies)."""
    assert timing.time_limit is not None
    if timing.base_time_limit is None or timing.extra <= timedelta(0):
        return _fmt_limit(timing.time_limit)
    return (
        f"{_fmt_limit(timing.base_time_limit)} + {_fmt_limit(timing.extra)} (accommodation)"
        f" = {_fmt_limit(timing.time_limit)}"
    )


def deadline_why(
    attempt: Attempt,
    rules: StudentRules,
    accommodation: str,
    overrides: Sequence[QuizOverride],
    reopened: AuditEvent | None,
    zone: ZoneInfo,
) -> list[str]:
    """Why an attempt's deadline is what it is, in sentences for staff: which of the
    time limit and the window close decided it, and what changed either."""
    timing = rules.timing

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%d %b %H:%M %Z")

    why: list[str] = []
    expected = timing.deadline_if_started_at(attempt.started_at)
    if attempt.deadline_at is None:
        why.append("No deadline: the quiz has no time limit and no close.")
    elif reopened is not None and attempt.deadline_at == _reopen_deadline(reopened):
        why.append(
            f"Reopened by staff until {local(attempt.deadline_at)}"
            f" ({reopened.details.get('reason', '')})."
        )
    elif expected == attempt.deadline_at:
        if timing.is_cut_by_close(attempt.started_at) and timing.closes_at is not None:
            assert timing.time_limit is not None
            why.append(
                f"Window close {local(timing.closes_at)}: earlier than start + "
                f"{_fmt_limit(timing.time_limit)} (the timer was cut by the close)."
            )
        elif timing.time_limit is not None:
            why.append(f"Time limit: start + {describe_limit(timing)}.")
        elif timing.closes_at is not None:
            why.append(f"Window close {local(timing.closes_at)} (no time limit).")
    else:
        why.append(
            "Differs from the rules now in force: set by staff (an override changed while "
            "the attempt ran, or a reopen), or the rules changed since it started."
        )
    if accommodation:
        why.append(f"Accommodation: {accommodation}.")
    why.extend(f"Override ({describe_override(o)})." for o in overrides)
    return why


def _reopen_deadline(event: AuditEvent) -> datetime | None:
    raw = event.details.get("deadline")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def student_history(
    session: Session, user_id: int, now: datetime, grace: timedelta, zone: ZoneInfo
) -> StudentHistory:
    """Every attempt of one student across quizzes, newest first, with the reason for
    each deadline and the addresses and browser sessions that saved answers."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such student.")
    for running in session.scalars(
        select(Attempt).where(Attempt.user_id == user.id, Attempt.state == AttemptState.IN_PROGRESS)
    ).all():
        finalise_if_expired(session, running, now, grace)
    groups = groups_by_user(session, [user.id]).get(user.id, [])
    rows = session.execute(
        select(Attempt, Quiz)
        .join(Quiz, Quiz.id == Attempt.quiz_id)
        .where(Attempt.user_id == user.id)
        .order_by(Attempt.started_at.desc(), Attempt.id.desc())
    ).all()
    overrides: dict[int, list[QuizOverride]] = defaultdict(list)
    for o in session.scalars(
        select(QuizOverride).where(
            or_(QuizOverride.user_id == user.id, QuizOverride.group_name.in_(groups))
        )
    ):
        overrides[o.quiz_id].append(o)
    devices: dict[int, list[Device]] = defaultdict(list)
    for attempt_id, ip, client, saves, first_at, last_at in session.execute(
        select(
            AnswerLog.attempt_id,
            AnswerLog.ip,
            AnswerLog.client,
            func.count(),
            func.min(AnswerLog.received_at),
            func.max(AnswerLog.received_at),
        )
        .join(Attempt, Attempt.id == AnswerLog.attempt_id)
        .where(Attempt.user_id == user.id)
        .group_by(AnswerLog.attempt_id, AnswerLog.ip, AnswerLog.client)
        .order_by(AnswerLog.attempt_id, func.min(AnswerLog.received_at))
    ):
        devices[attempt_id].append(Device(ip, client, saves, first_at, last_at))
    reopens: dict[int, AuditEvent] = {}
    for event in session.scalars(
        select(AuditEvent)
        .where(AuditEvent.subject_id == user.id, AuditEvent.action == "reopen")
        .order_by(AuditEvent.id)
    ):
        if event.attempt_id is not None:
            reopens[event.attempt_id] = event  # the latest reopen of each attempt wins
    accommodation = describe_accommodation(user)
    attempt_ids = [attempt.id for attempt, _ in rows]
    refused: dict[int, list[RefusedAnswer]] = defaultdict(list)
    for answer in refused_answers(session, attempt_ids):
        refused[answer.attempt_id].append(answer)
    pending = pending_marks(session, attempt_ids=attempt_ids)
    attempts = []
    for attempt, quiz in rows:
        quiz_overrides = overrides.get(quiz.id, [])
        own = next((o for o in quiz_overrides if o.user_id == user.id), None)
        group_rows = [o for o in quiz_overrides if o.group_name is not None]
        rules = rules_from_rows(quiz, user, own, group_rows)
        why = deadline_why(
            attempt, rules, accommodation, quiz_overrides, reopens.get(attempt.id), zone
        )
        attempts.append(
            StudentAttempt(
                attempt,
                quiz,
                rules,
                why,
                devices.get(attempt.id, []),
                refused.get(attempt.id, []),
                list(pending.get(attempt.id, NOTHING_PENDING).grading_failed),
                pending.get(attempt.id, NOTHING_PENDING),
            )
        )
    return StudentHistory(user, groups, accommodation, attempts)
