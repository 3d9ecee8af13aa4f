"""Marks to the VLE's gradebook (LTI Assignment and Grade Services 2.0) through an outbox.

The transactional-outbox pattern: wherever a student's score for a quiz may change (an
attempt finalised, a manual mark, a committed regrade), `queue_scores` writes the score
that now counts into `lti_scores`, in the SAME transaction as the marks it comes from; it
never calls the VLE. `send_due` (the `quizapp lti scores send` command, from cron) later
claims due rows in a short transaction, posts each to the line item with no lock and no
transaction held, and records the outcome in another short transaction. So a VLE that
is down or slow never slows a submit, nothing is lost (the row stays until the platform
accepts it) and nothing stale is posted (a newer score replaces the unsent one; every
score carries the timestamp of its mark, and platforms ignore an older one).

Lock order, to keep PostgreSQL free of deadlocks: a writer locks the attempts first (the
finaliser's conditional UPDATE, marking's and regrade's FOR UPDATE), then the outbox rows
(ordered by id); the sender locks only outbox rows, briefly.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from quizapp.db import end_snapshot, rows_matched, unit_of_work
from quizapp.domain.lti import AGS_SCORE_SCOPE
from quizapp.domain.lti_scores import (
    SCORE_CONTENT_TYPE,
    ActivityProgress,
    GradingProgress,
    Score,
    ScoreState,
    activity_progress,
    grading_progress,
    marks_hidden_until_later,
    retry_delay,
    score_message,
    scores_url,
    short_error,
    worth_retrying,
)
from quizapp.domain.timing import AttemptState
from quizapp.models import (
    Attempt,
    LtiPerson,
    LtiPlatform,
    LtiResourceLink,
    LtiScore,
    Quiz,
    User,
)
from quizapp.services import audit
from quizapp.services.catalog import quiz_or_404, release_policy
from quizapp.services.http_json import HttpJsonError
from quizapp.services.lti_access import TOKENS, AccessTokens, PlatformServiceError, call_service

log = logging.getLogger(__name__)

CLAIM_BATCH = 20  # rows one claim takes
# A claimed row is not due again for this long: if the sender dies mid-post, another
# run takes the row over afterwards. Longer than a batch of posts can take.
LEASE = timedelta(minutes=10)
WAITING = (ScoreState.PENDING, ScoreState.HELD)
CHUNK = 400  # (link, student) pairs per statement


# --- Queueing (inside the caller's transaction) --------------------------------------


def _scoring_links(session: Session, quiz_id: int) -> list[tuple[int, int]]:
    """(link id, platform id) of the links that open this quiz and may take scores."""
    rows = session.execute(
        select(LtiResourceLink.id, LtiResourceLink.platform_id, LtiResourceLink.ags_scopes).where(
            LtiResourceLink.quiz_id == quiz_id, LtiResourceLink.lineitem_url != ""
        )
    ).all()
    return [(link_id, platform_id) for link_id, platform_id, scopes in rows if _scores(scopes)]


def _scores(scopes: Any) -> bool:
    return isinstance(scopes, list) and AGS_SCORE_SCOPE in scopes


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(LtiScore)


def queue_scores(session: Session, quiz_id: int, user_ids: Collection[int], now: datetime) -> int:
    """Put the score that now counts for these students into the outbox, for every link
    of the quiz in a VLE that knows them; call inside the unit of work that changed
    their marks (after the change is in the session). Nothing is sent here. Returns the
    rows that changed. A score equal to the one already queued or sent changes nothing.

    Costs one query when the quiz has no link to a gradebook (the usual case off LTI)."""
    if not user_ids:
        return 0
    links = _scoring_links(session, quiz_id)
    if not links:
        return 0
    platforms = {platform_id for _, platform_id in links}
    people = session.execute(
        select(LtiPerson.platform_id, LtiPerson.user_id).where(
            LtiPerson.platform_id.in_(platforms), LtiPerson.user_id.in_(list(set(user_ids)))
        )
    ).all()
    pairs = sorted(
        {(link_id, user_id) for link_id, pid in links for p, user_id in people if p == pid}
    )
    if not pairs:
        return 0
    # Rows that do not exist yet are made (revision 0) and every row is locked before the
    # score is read, so two writers for one student queue one after the other, the
    # second with the first's marks in its score.
    placeholders = [
        {
            "link_id": link_id,
            "user_id": user_id,
            "quiz_id": quiz_id,
            "score_maximum": Fraction(0),
            "activity_progress": "",
            "grading_progress": "",
            "scored_at": now,
            "state": ScoreState.HELD,
            "revision": 0,
            "tries": 0,
            "next_try_at": now,
            "last_error": "",
            "updated_at": now,
        }
        for link_id, user_id in pairs
    ]
    session.execute(
        _insert(session).on_conflict_do_nothing(
            index_elements=[LtiScore.link_id, LtiScore.user_id]
        ),
        placeholders,
    )
    rows: list[LtiScore] = []
    for start in range(0, len(pairs), CHUNK):
        rows.extend(
            session.scalars(
                select(LtiScore)
                .where(tuple_(LtiScore.link_id, LtiScore.user_id).in_(pairs[start : start + CHUNK]))
                .order_by(LtiScore.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
    quiz = session.get(Quiz, quiz_id)
    assert quiz is not None
    scores = _scores_now(session, quiz, {r.user_id for r in rows})
    hidden = marks_hidden_until_later(release_policy(quiz).marks, now, quiz.closes_at)
    changed = 0
    for row in rows:
        found = scores.get(row.user_id)
        if found is None:  # nothing finished to report (or no longer a student)
            if row.revision == 0:
                session.delete(row)
            continue
        score, attempt_id = found
        if row.revision > 0 and _stored(row) == score:
            continue  # the same score: posting it again would change nothing
        row.score_given = score.given
        row.score_maximum = score.maximum
        row.activity_progress = score.activity.value
        row.grading_progress = score.grading.value
        row.attempt_id = attempt_id
        row.scored_at = now
        row.revision += 1
        row.state = ScoreState.HELD if hidden else ScoreState.PENDING
        row.tries = 0
        row.next_try_at = now
        row.last_error = ""
        row.updated_at = now
        changed += 1
    return changed


def queue_for_attempts(
    session: Session, quiz_id: int, attempt_ids: Collection[int], now: datetime
) -> int:
    """queue_scores for the students whose attempts these are (a regrade's)."""
    if not attempt_ids or not _scoring_links(session, quiz_id):
        return 0
    ids = sorted(set(attempt_ids))
    user_ids: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        user_ids.update(
            session.scalars(
                select(Attempt.user_id).where(Attempt.id.in_(ids[start : start + CHUNK]))
            )
        )
    return queue_scores(session, quiz_id, user_ids, now)


def _stored(row: LtiScore) -> Score | None:
    try:
        return Score(
            row.score_given,
            row.score_maximum,
            ActivityProgress(row.activity_progress),
            GradingProgress(row.grading_progress),
        )
    except ValueError:
        return None


def _scores_now(
    session: Session, quiz: Quiz, user_ids: Collection[int]
) -> dict[int, tuple[Score, int | None]]:
    """user id -> (the score to send, the attempt it comes from): the quiz's score that
    counts by the one definition the scores CSV uses (exports.scores_of_students);
    students without a finished attempt are left out."""
    from quizapp.services.exports import scores_of_students  # exports imports attempts

    found: dict[int, tuple[Score, int | None]] = {}
    counted = scores_of_students(session, quiz, user_ids)
    every_state = _attempt_states(
        session, quiz.id, [u for u, r in counted.items() if r.score is not None]
    )
    for user_id, row in counted.items():
        if row.score is None:
            continue
        states = every_state.get(user_id, [])
        finished = sum(1 for s in states if s is not AttemptState.IN_PROGRESS)
        running = any(s is AttemptState.IN_PROGRESS for s in states)
        shown = row.shown
        attempt_id = shown.attempt_id if shown is not None else None
        found[user_id] = (
            Score(
                row.score,
                row.maximum,
                activity_progress(finished, running, quiz.max_attempts),
                grading_progress(row.provisional),
            ),
            attempt_id,
        )
    return found


def _attempt_states(
    session: Session, quiz_id: int, user_ids: Sequence[int]
) -> dict[int, list[AttemptState]]:
    """The states of each student's attempts at the quiz."""
    found: dict[int, list[AttemptState]] = {}
    for start in range(0, len(user_ids), CHUNK):
        for user_id, state in session.execute(
            select(Attempt.user_id, Attempt.state).where(
                Attempt.quiz_id == quiz_id, Attempt.user_id.in_(user_ids[start : start + CHUNK])
            )
        ):
            found.setdefault(user_id, []).append(state)
    return found


def queue_quiz(session: Session, quiz_id: int, now: datetime) -> int:
    """Queue the score of every student of the quiz that a linked VLE knows (a score
    finished before the student's first launch from the VLE, or a new link)."""
    with unit_of_work(session):
        quiz_or_404(session, quiz_id)
        user_ids = set(
            session.scalars(
                select(Attempt.user_id).where(
                    Attempt.quiz_id == quiz_id, Attempt.state != AttemptState.IN_PROGRESS
                )
            )
        )
        return queue_scores(session, quiz_id, user_ids, now)


def follow_release(session: Session, quiz: Quiz, now: datetime) -> None:
    """Held scores of a quiz whose marks are now released become due; scores waiting for
    a quiz whose marks are now hidden are held. Inside the caller's transaction (the
    release policy's change, or the sender's look at the clock)."""
    from quizapp.services.release import released  # release imports this module

    if released(session, quiz, now).marks:
        session.execute(
            update(LtiScore)
            .where(LtiScore.quiz_id == quiz.id, LtiScore.state == ScoreState.HELD)
            .values(state=ScoreState.PENDING, next_try_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(
            update(LtiScore)
            .where(LtiScore.quiz_id == quiz.id, LtiScore.state == ScoreState.PENDING)
            .values(state=ScoreState.HELD, updated_at=now)
            .execution_options(synchronize_session=False)
        )


# --- Sending (the cron command; never in a request) ----------------------------------


@dataclass(frozen=True)
class _Claimed:
    id: int
    revision: int
    tries: int
    quiz_id: int
    user_id: int
    attempt_id: int | None
    platform_id: int
    url: str  # "" when the link has no line item any more
    message: dict[str, Any]
    problem: str = ""  # a reason it cannot be sent at all


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    superseded: int = 0  # a newer score arrived while this one was posted
    errors: list[str] = field(default_factory=list)

    @property
    def tried(self) -> int:
        return self.sent + self.retrying + self.failed + self.superseded

    def summary(self) -> str:
        return (
            f"Sent {self.sent} score(s); {self.retrying} to try again later; "
            f"{self.failed} refused for good; {self.superseded} replaced by a newer score."
        )


def send_due(
    session: Session,
    now: datetime,
    *,
    limit: int | None = None,
    tokens: AccessTokens = TOKENS,
    batch: int = CLAIM_BATCH,
) -> SendReport:
    """Post every due score (at most `limit`). Safe on several machines at once: rows
    are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL (a short write transaction on
    SQLite) and leased for LEASE; no lock or transaction is held while posting."""
    report = SendReport()
    _follow_releases(session, now)
    while limit is None or report.tried < limit:
        size = batch if limit is None else min(batch, limit - report.tried)
        claimed = _claim(session, now, size)
        if not claimed:
            break
        for item in claimed:
            _send(session, item, now, tokens, report)
    return report


def _follow_releases(session: Session, now: datetime) -> None:
    quiz_ids = list(
        session.scalars(select(LtiScore.quiz_id).where(LtiScore.state.in_(WAITING)).distinct())
    )
    for quiz_id in quiz_ids:
        with unit_of_work(session):
            quiz = session.get(Quiz, quiz_id)
            if quiz is not None:
                follow_release(session, quiz, now)


def _claim(session: Session, now: datetime, size: int) -> list[_Claimed]:
    with unit_of_work(session):
        rows = list(
            session.scalars(
                select(LtiScore)
                .where(LtiScore.state == ScoreState.PENDING, LtiScore.next_try_at <= now)
                .order_by(LtiScore.next_try_at, LtiScore.id)
                .limit(size)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )
        if not rows:
            return []
        links = {
            link.id: link
            for link in session.scalars(
                select(LtiResourceLink).where(LtiResourceLink.id.in_({r.link_id for r in rows}))
            )
        }
        subs: dict[tuple[int, int], str] = {}
        for platform_id, user_id, sub in session.execute(
            select(LtiPerson.platform_id, LtiPerson.user_id, LtiPerson.sub)
            .where(LtiPerson.user_id.in_({r.user_id for r in rows}))
            .order_by(LtiPerson.id)
        ):
            subs[(platform_id, user_id)] = sub  # the newest link wins
        claimed = []
        for row in rows:
            link = links[row.link_id]
            sub = subs.get((link.platform_id, row.user_id), "")
            problem = ""
            if not link.lineitem_url or not _scores(link.ags_scopes):
                problem = "the VLE link no longer offers a gradebook column for scores"
            elif not sub:
                problem = "the student is no longer linked to an account in this VLE"
            stored = _stored(row)
            assert stored is not None
            claimed.append(
                _Claimed(
                    id=row.id,
                    revision=row.revision,
                    tries=row.tries,
                    quiz_id=row.quiz_id,
                    user_id=row.user_id,
                    attempt_id=row.attempt_id,
                    platform_id=link.platform_id,
                    url=scores_url(link.lineitem_url) if link.lineitem_url else "",
                    message=score_message(stored, sub, row.scored_at),
                    problem=problem,
                )
            )
            row.next_try_at = now + LEASE  # the lease: no other sender takes it meanwhile
    return claimed


def _send(
    session: Session, item: _Claimed, now: datetime, tokens: AccessTokens, report: SendReport
) -> None:
    status: int | None = None
    error = item.problem
    retry = False
    if not error:
        platform = session.get(LtiPlatform, item.platform_id)
        end_snapshot(session)  # nothing held while the VLE answers
        if platform is None:
            error = "the VLE is no longer registered"
        else:
            try:
                call_service(
                    session,
                    platform,
                    item.url,
                    [AGS_SCORE_SCOPE],
                    now,
                    method="POST",
                    body=item.message,
                    content_type=SCORE_CONTENT_TYPE,
                    tokens=tokens,
                )
            except PlatformServiceError as exc:
                status, retry = exc.status, worth_retrying(exc.status, exc.retry)
                error = short_error(_platform_said(exc))
            end_snapshot(session)
    _record(session, item, now, error, status, retry, report)


def _platform_said(error: PlatformServiceError) -> str:
    """The error with what the platform said about it, when it said something."""
    cause = error.__cause__
    answer = cause.answer if isinstance(cause, HttpJsonError) else {}
    said: Any = answer.get("error_description") or answer.get("message") or answer.get("error")
    errors = answer.get("errors")
    if not said and isinstance(errors, list) and errors:
        first = errors[0]
        said = first.get("message") if isinstance(first, dict) else first
    return f"{error.detail}: {str(said)[:300]}" if said else error.detail


def _record(
    session: Session,
    item: _Claimed,
    now: datetime,
    error: str,
    status: int | None,
    retry: bool,
    report: SendReport,
) -> None:
    with unit_of_work(session):
        mine = (
            LtiScore.id == item.id,
            LtiScore.revision == item.revision,
            LtiScore.state == ScoreState.PENDING,
        )
        details: dict[str, Any] = {
            "score_id": item.id,
            "link_url": item.url,
            "score": item.message.get("scoreGiven"),
            "maximum": item.message.get("scoreMaximum"),
            "grading": item.message.get("gradingProgress"),
            "timestamp": item.message.get("timestamp"),
        }
        tries = item.tries + 1
        if not error:
            values: dict[str, Any] = {
                "state": ScoreState.SENT,
                "sent_at": now,
                "tries": tries,
                "last_error": "",
            }
            action = "lti_score_sent"
        elif retry:
            later = now + retry_delay(tries)
            values = {"next_try_at": later, "tries": tries, "last_error": error}
            action = "lti_score_retry"
            details.update(error=error, status=status, next_try_at=later.isoformat())
        else:
            values = {"state": ScoreState.FAILED, "tries": tries, "last_error": error}
            action = "lti_score_failed"
            details.update(error=error, status=status)
        values["updated_at"] = now
        matched = rows_matched(
            session.execute(
                update(LtiScore)
                .where(*mine)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        )
        if matched != 1:
            # A newer score replaced this one while it was posted (it is due again and
            # carries a later timestamp, so the platform keeps the newer one).
            report.superseded += 1
            return
        audit.record(
            session,
            action,
            now,
            subject_id=item.user_id,
            quiz_id=item.quiz_id,
            attempt_id=item.attempt_id,
            **details,
        )
    if not error:
        report.sent += 1
    elif retry:
        report.retrying += 1
        report.errors.append(error)
        log.warning("LTI score %s not sent, will retry: %s", item.id, error)
    else:
        report.failed += 1
        report.errors.append(error)
        log.warning("LTI score %s refused: %s", item.id, error)


# --- For staff ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    id: int
    username: str
    name: str
    link_title: str
    platform: str
    state: ScoreState
    score_given: Fraction | None
    score_maximum: Fraction
    grading_progress: str
    scored_at: datetime
    tries: int
    next_try_at: datetime
    last_error: str
    sent_at: datetime | None

    @property
    def resendable(self) -> bool:
        return self.state is ScoreState.FAILED or (
            self.state is ScoreState.PENDING and self.tries > 0
        )


@dataclass(frozen=True)
class PlatformWaiting:
    platform: str
    waiting: int  # pending: to send
    held: int  # hidden by the release policy
    failed: int
    last_error: str


@dataclass(frozen=True)
class Outbox:
    quiz: Quiz
    rows: list[OutboxRow]
    platforms: list[PlatformWaiting]
    links: int  # links to this quiz that take scores

    @property
    def resendable(self) -> int:
        return sum(1 for r in self.rows if r.resendable)


def outbox(session: Session, quiz_id: int) -> Outbox:
    """The quiz's scores for VLE gradebooks: per student and link, where each is."""
    quiz = quiz_or_404(session, quiz_id)
    found = session.execute(
        select(LtiScore, User.username, User.name, LtiResourceLink.title, LtiPlatform)
        .join(User, User.id == LtiScore.user_id)
        .join(LtiResourceLink, LtiResourceLink.id == LtiScore.link_id)
        .join(LtiPlatform, LtiPlatform.id == LtiResourceLink.platform_id)
        .where(LtiScore.quiz_id == quiz_id, LtiScore.revision > 0)
        .order_by(User.username, LtiScore.id)
    ).all()
    rows: list[OutboxRow] = []
    by_platform: dict[str, dict[str, Any]] = {}
    for score, username, name, link_title, platform in found:
        label = platform.name or platform.issuer
        rows.append(
            OutboxRow(
                id=score.id,
                username=username,
                name=name,
                link_title=link_title,
                platform=label,
                state=score.state,
                score_given=score.score_given,
                score_maximum=score.score_maximum,
                grading_progress=score.grading_progress,
                scored_at=score.scored_at,
                tries=score.tries,
                next_try_at=score.next_try_at,
                last_error=score.last_error,
                sent_at=score.sent_at,
            )
        )
        info = by_platform.setdefault(
            label, {"waiting": 0, "held": 0, "failed": 0, "error": "", "at": None}
        )
        if score.state is ScoreState.PENDING:
            info["waiting"] += 1
        elif score.state is ScoreState.HELD:
            info["held"] += 1
        elif score.state is ScoreState.FAILED:
            info["failed"] += 1
        newer = info["at"] is None or score.updated_at > info["at"]
        if score.last_error and score.state is not ScoreState.SENT and newer:
            info["error"], info["at"] = score.last_error, score.updated_at
    links = len(_scoring_links(session, quiz_id))
    return Outbox(
        quiz=quiz,
        rows=rows,
        platforms=[
            PlatformWaiting(label, i["waiting"], i["held"], i["failed"], i["error"])
            for label, i in sorted(by_platform.items())
        ],
        links=links,
    )


def resend(
    session: Session,
    quiz_id: int,
    actor_id: int | None,
    now: datetime,
    *,
    score_ids: Sequence[int] | None = None,
    ip: str = "",
) -> int:
    """Make the quiz's refused scores (and those waiting out a backoff) due at the next
    send, audited; `score_ids` limits it to those rows. Returns how many."""
    with unit_of_work(session):
        quiz_or_404(session, quiz_id)
        rows = list(
            session.scalars(
                select(LtiScore)
                .where(
                    LtiScore.quiz_id == quiz_id,
                    LtiScore.revision > 0,
                    (LtiScore.state == ScoreState.FAILED)
                    | ((LtiScore.state == ScoreState.PENDING) & (LtiScore.tries > 0)),
                )
                .order_by(LtiScore.id)
                .with_for_update()
            )
        )
        if score_ids is not None:
            wanted = set(score_ids)
            rows = [r for r in rows if r.id in wanted]
        for row in rows:
            row.state = ScoreState.PENDING
            row.next_try_at = now
            row.tries = 0
            row.updated_at = now
        if rows:
            audit.record(
                session,
                "lti_score_resend",
                now,
                actor_id=actor_id,
                quiz_id=quiz_id,
                ip=ip,
                score_ids=[r.id for r in rows],
                students=sorted({r.user_id for r in rows}),
            )
    return len(rows)


def due_count(session: Session, now: datetime) -> int:
    """How many scores are due now (for the command's dry look)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(LtiScore)
            .where(LtiScore.state == ScoreState.PENDING, LtiScore.next_try_at <= now)
        )
        or 0
    )


def waiting_scores(session: Session) -> list[tuple[str, int, int, int]]:
    """(platform, waiting, held, failed) over every quiz, for the command line."""

    counts: dict[str, list[int]] = {}
    for label, state, count in session.execute(
        select(LtiPlatform.name, LtiScore.state, func.count())
        .join(LtiResourceLink, LtiResourceLink.platform_id == LtiPlatform.id)
        .join(LtiScore, LtiScore.link_id == LtiResourceLink.id)
        .where(LtiScore.revision > 0, LtiScore.state != ScoreState.SENT)
        .group_by(LtiPlatform.name, LtiScore.state)
    ):
        entry = counts.setdefault(label, [0, 0, 0])
        entry[[ScoreState.PENDING, ScoreState.HELD, ScoreState.FAILED].index(state)] += count
    return [(label, v[0], v[1], v[2]) for label, v in sorted(counts.items())]
