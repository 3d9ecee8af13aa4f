"""`quizapp attempts finalise-expired` from several machines at once, on PostgreSQL.

Each sweeper is a separate `quizapp` process with its own connections, as cron runs it
on each app machine. Hundreds of expired attempts (real layouts, some answers each):

1. two sweepers at once finalise every attempt exactly once: one finish, one mark per
   slot, one `finalise` audit event, no errors;
2. a sweeper skips an attempt another finaliser holds locked (`FOR UPDATE SKIP LOCKED`)
   instead of waiting for it, and a later run takes it.

Lock waits are watched in pg_stat_activity while the sweepers run: test 2 fails at the
first one; test 1 reports how many it saw (sweepers sharing the work should queue on
nothing, but a momentary wait is not a data error).
"""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from tests.fault.harness import (
    BIN,
    GRACE_SECONDS,
    PG_DATABASE,
    ROOT,
    SLOTS,
    postgres_database,
    postgres_unreachable,
    prepare_database,
    server_env,
)

_why = postgres_unreachable()
if _why:
    pytest.skip(
        f"PostgreSQL sweeper tests skipped: no server at 127.0.0.1:5432 ({_why})",
        allow_module_level=True,
    )

ATTEMPTS = 300
LIBPQ = f"host=127.0.0.1 port=5432 user=postgres dbname={PG_DATABASE}"


def expired_attempts(url: str, tmp_path, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """`count` students, each with an attempt whose deadline passed between 30 and 20
    minutes ago: one started through the service (a real layout), the rest copies of it
    with two of the three slots answered (one right, one wrong)."""
    from quizapp.db import make_engine
    from quizapp.domain.timing import AttemptState
    from quizapp.models import Answer, Attempt, User
    from quizapp.services.attempts import start_attempt

    quiz_id, names = prepare_database(url, tmp_path / "bank", count)
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            users = session.scalars(
                select(User).where(User.username.in_(names)).order_by(User.id)
            ).all()
            first = start_attempt(session, quiz_id, users[0], now, timedelta(seconds=GRACE_SECONDS))
            rows = [
                {
                    "quiz_id": quiz_id,
                    "user_id": user.id,
                    "number": 1,
                    "state": AttemptState.IN_PROGRESS,
                    "seed": first.seed,
                    "layout": first.layout,
                    "started_at": now - timedelta(minutes=35),
                    "deadline_at": now - timedelta(minutes=30) + timedelta(seconds=i),
                    "max_score": first.max_score,
                }
                for i, user in enumerate(users[1:], start=1)
            ]
            ids = [first.id, *session.scalars(insert(Attempt).returning(Attempt.id), rows)]
            session.execute(
                update(Attempt)
                .where(Attempt.id == first.id)
                .values(
                    started_at=now - timedelta(minutes=35),
                    deadline_at=now - timedelta(minutes=30),
                )
            )
            session.execute(
                insert(Answer),
                [
                    {
                        "attempt_id": a,
                        "slot": slot,
                        "value": value,
                        "seq": 1,
                        "saved_at": now - timedelta(minutes=31),
                    }
                    for a in ids
                    for slot, value in ((1, "2"), (2, "5"))
                ],
            )
            session.commit()
    finally:
        engine.dispose()
    return ids


def lock_waits(watch: psycopg.Connection) -> int:
    """Sessions of our database waiting for a lock right now."""
    (count,) = watch.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
        (PG_DATABASE,),
    ).fetchone()  # type: ignore[misc]
    return int(count)


def sweeper(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "quizapp"), "attempts", "finalise-expired"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen[str], timeout: float = 120) -> int:
    """The sweeper's count; it must exit 0 without a traceback."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err, (proc.returncode, out, err)
    match = re.search(r"Finalised (\d+) expired attempt", out)
    assert match, out
    return int(match.group(1))


def outcome(url: str, ids: list[int]) -> dict[str, object]:
    from quizapp.db import make_engine
    from quizapp.domain.timing import AttemptState
    from quizapp.models import Attempt, AuditEvent, Mark

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            states = dict(session.execute(select(Attempt.id, Attempt.state)).all())
            ungraded = session.scalar(
                select(func.count())
                .select_from(Attempt)
                .where(
                    Attempt.state == AttemptState.TIMED_OUT,
                    (Attempt.score.is_(None)) | (Attempt.receipt.is_(None)),
                )
            )
            marks = dict(
                session.execute(
                    select(Mark.attempt_id, func.count()).group_by(Mark.attempt_id)
                ).all()
            )
            duplicate_marks = session.scalar(
                select(func.count()).select_from(
                    select(Mark.attempt_id, Mark.slot)
                    .group_by(Mark.attempt_id, Mark.slot)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
            finalise_events = dict(
                session.execute(
                    select(AuditEvent.attempt_id, func.count())
                    .where(AuditEvent.action == "finalise")
                    .group_by(AuditEvent.attempt_id)
                ).all()
            )
            runs = dict(
                session.execute(
                    select(AuditEvent.at, func.count())
                    .where(AuditEvent.action == "finalise")
                    .group_by(AuditEvent.at)
                ).all()
            )
    finally:
        engine.dispose()
    return {
        "timed_out": {a for a in ids if states.get(a) is AttemptState.TIMED_OUT},
        "in_progress": {a for a in ids if states.get(a) is AttemptState.IN_PROGRESS},
        "ungraded": ungraded,
        "marks": marks,
        "duplicate_marks": duplicate_marks,
        "finalise_events": finalise_events,
        "per_run": sorted(runs.values()),  # each run stamps its own `now`
    }


def test_two_sweepers_at_once_finalise_each_attempt_exactly_once(tmp_path, summary):
    with postgres_database() as url:
        ids = expired_attempts(url, tmp_path, ATTEMPTS)
        env = server_env(url, tmp_path)
        started = time.monotonic()
        first, second = sweeper(env), sweeper(env)
        waits = 0
        with psycopg.connect(LIBPQ, autocommit=True) as watch:
            while first.poll() is None or second.poll() is None:
                waits += lock_waits(watch)
                if time.monotonic() - started > 120:
                    break
                time.sleep(0.05)
        counts = [finished(first), finished(second)]
        took = time.monotonic() - started
        result = outcome(url, ids)

    assert sum(counts) == len(ids), counts
    assert result["timed_out"] == set(ids) and not result["in_progress"]
    assert result["ungraded"] == 0
    assert result["duplicate_marks"] == 0
    assert result["marks"] == {a: SLOTS for a in ids}
    assert result["finalise_events"] == {a: 1 for a in ids}
    summary(
        f"two sweepers at once (PostgreSQL, {len(ids)} expired attempts): finalised "
        f"{counts[0]} + {counts[1]}, each attempt once ({SLOTS} marks, 1 audit event), "
        f"{took:.1f} s; lock waits seen {waits}"
    )


def test_a_sweeper_skips_attempts_another_finaliser_holds(tmp_path, summary):
    with postgres_database() as url:
        ids = expired_attempts(url, tmp_path, 60)
        held = ids[:5]  # the earliest deadlines: the first a sweeper would take
        env = server_env(url, tmp_path)
        waited = False
        # Another machine's finaliser, mid-way through these five (its transaction open).
        with psycopg.connect(LIBPQ) as holder, psycopg.connect(LIBPQ, autocommit=True) as watch:
            holder.execute("SELECT id FROM attempts WHERE id = ANY(%s) FOR UPDATE", (held,))
            proc = sweeper(env)
            try:
                end = time.monotonic() + 60
                while proc.poll() is None and time.monotonic() < end:
                    if lock_waits(watch):
                        waited = True
                        break
                    time.sleep(0.1)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate(timeout=10)
            holder.rollback()
            assert not waited, "the sweeper waited for a row lock another finaliser holds"
            first_run = finished(proc)
            during = outcome(url, ids)
        second_run = finished(sweeper(env))
        after = outcome(url, ids)

    assert first_run == len(ids) - len(held)
    assert during["in_progress"] == set(held)
    assert second_run == len(held)
    assert after["timed_out"] == set(ids)
    assert after["finalise_events"] == {a: 1 for a in ids}
    summary(
        f"sweeper with {len(held)} of {len(ids)} attempts locked elsewhere: skipped them "
        f"({first_run} finalised), took them on the next run ({second_run})"
    )
