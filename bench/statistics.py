"""Quiz statistics for 10,000 finished attempts: CPU, wall time and peak memory of one call.

    .venv/bin/python bench/statistics.py [--attempts 10000] [--database sqlite|postgresql|both]
        [--profile]

Builds, per database, the sample bank's quiz1-foundations (15 slots, pools) with
`--attempts` finished attempts: 20 taken through the service (started, model answers to a
random share of the slots, submitted, so real layouts and marks), then bulk-inserted copies
of them whose marks are varied (a third of the cells get a random multiple of a third or a
quarter of the slot's maximum, more of it for abler students, so the marks are exact
fractions with mixed denominators and the slots correlate); a changed mark is a newer
"manual" row on top of the automatic one, as is one unchanged mark in ten (history the
service must skip). Then, in a fresh process, `quizapp.services.statistics.quiz_statistics`
is called four times: the first (cold) for the growth of the process's maximum resident
set, the second measured for process CPU time and wall time (and, on PostgreSQL, the CPU
the server's backend spent, read from /proc when the server runs on this machine), the
third for the peak of Python allocations (tracemalloc, which slows the call down), and a
fourth profiled with `--profile` (to stderr). PostgreSQL is ANALYZEd after the load, as
autovacuum would do.

SQLite: a file in a temporary directory. PostgreSQL: its own database `stats_bench` at
127.0.0.1:5432 (user postgres, trust auth), created here and dropped at the end; an
existing database of that name is refused, never dropped.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

PG_DATABASE = "stats_bench"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
OPENS = datetime(2027, 1, 18, 10, 0, tzinfo=UTC)
START = OPENS + timedelta(hours=1)
GRACE = timedelta(seconds=10)
TEMPLATES = 20


def build(url: str, attempts: int, seed: int = 17) -> int:
    """Migrate, import the sample bank, add the students and their finished attempts;
    returns the quiz id."""
    from quizapp.bank.loader import load_bank
    from quizapp.cli import migrate
    from quizapp.db import make_engine
    from quizapp.domain.timing import AttemptState
    from quizapp.models import Attempt, FinishReason, Mark, Quiz, Role, User
    from quizapp.services import attempts as svc
    from quizapp.services.bank_import import import_bank
    from quizapp.services.catalog import attempt_questions

    rng = random.Random(seed)
    migrate(url)
    bank = load_bank(ROOT / "question_bank")
    assert bank.ok, bank.problems
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            import_bank(session, bank)
            quiz = session.scalars(select(Quiz).where(Quiz.key == "quiz1-foundations")).one()
            quiz_id = quiz.id
            session.execute(
                insert(User),
                [
                    {"username": f"s{i:05d}", "name": f"Student {i}", "role": Role.STUDENT}
                    for i in range(attempts)
                ],
            )
            session.commit()
            users = session.scalars(select(User).where(User.role == Role.STUDENT)).all()
            users = sorted(users, key=lambda u: u.id)
            templates = []
            for user in users[:TEMPLATES]:
                attempt = svc.start_attempt(session, quiz_id, user, START, GRACE)
                pairs = attempt_questions(session, attempt)
                form = {}
                for entry, question in pairs:
                    if rng.random() < 0.6:
                        model = question.body.model_response(entry.variant)
                        if model is not None:
                            form[entry.slot] = question.body.form_values(entry.variant, model)
                if form:
                    svc.save_answers(session, attempt.id, form, 1, START, GRACE)
                svc.submit_attempt(session, attempt, START + timedelta(minutes=10), GRACE)
                marks = session.scalars(select(Mark).where(Mark.attempt_id == attempt.id)).all()
                templates.append((attempt, list(marks)))

            finished = START + timedelta(minutes=20)
            for first in range(TEMPLATES, attempts, 1000):
                chunk = users[first : first + 1000]
                chosen = [rng.choice(templates) for _ in chunk]
                cells: list[list[dict[str, Any]]] = []
                scores = []
                for attempt, marks in chosen:
                    ability = rng.random()
                    maxima = {int(e["slot"]): Fraction(e["marks"]) for e in attempt.layout}
                    rows = []
                    total = Fraction(0)
                    for mark in marks:
                        value = mark.marks
                        if rng.random() < 1 / 3:
                            step = rng.choice((3, 4))
                            right = sum(rng.random() < ability for _ in range(step))
                            value = maxima[mark.slot] * Fraction(right, step)
                        row = {
                            "slot": mark.slot,
                            "version_id": mark.version_id,
                            "fraction": mark.fraction,
                            "marks": mark.marks,
                            "status": mark.status,
                            "source": "auto",
                            "created_at": finished,
                        }
                        rows.append(row)
                        if value != mark.marks or rng.random() < 0.1:
                            rows.append(row | {"marks": value, "source": "manual"})
                        total += value
                    cells.append(rows)
                    scores.append(total)
                ids = session.scalars(
                    insert(Attempt).returning(Attempt.id, sort_by_parameter_order=True),
                    [
                        {
                            "quiz_id": quiz_id,
                            "user_id": user.id,
                            "number": 1,
                            "state": AttemptState.SUBMITTED,
                            "seed": attempt.seed,
                            "layout": attempt.layout,
                            "started_at": START,
                            "deadline_at": attempt.deadline_at,
                            "finished_at": finished,
                            "finish_reason": FinishReason.SUBMITTED,
                            "score": score,
                            "max_score": attempt.max_score,
                        }
                        for user, (attempt, _), score in zip(chunk, chosen, scores, strict=True)
                    ],
                ).all()
                session.execute(
                    insert(Mark),
                    [
                        row | {"attempt_id": i}
                        for i, rows in zip(ids, cells, strict=True)
                        for row in rows
                    ],
                )
                session.commit()
    finally:
        engine.dispose()
    return quiz_id


def _server_cpu(session: Session) -> Callable[[], float | None]:
    """On PostgreSQL on this machine, a reader of the CPU seconds the session's backend
    has used (from /proc); None where that cannot be read (SQLite runs in-process)."""
    if session.get_bind().dialect.name != "postgresql":
        return lambda: None
    pid = session.execute(text("select pg_backend_pid()")).scalar_one()
    stat = Path(f"/proc/{pid}/stat")

    def read() -> float | None:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return read


def measure(url: str, quiz_id: int, profile: bool) -> dict[str, float | None]:
    """In a fresh process (so the resident set is this call's, not the build's): a first
    call (cold: statements compiled) for the growth of the maximum resident set, a
    second timed, a third under tracemalloc, and a fourth profiled if asked."""
    from quizapp.db import make_engine
    from quizapp.services.statistics import quiz_statistics

    engine = make_engine(url)
    moment = START + timedelta(hours=3)
    server: float | None = None
    try:
        with Session(engine) as session:
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            quiz_statistics(session, quiz_id, moment, GRACE)
            rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        with Session(engine) as session:
            server_cpu = _server_cpu(session)
            server_before = server_cpu()
            cpu, wall = time.process_time(), time.perf_counter()
            report = quiz_statistics(session, quiz_id, moment, GRACE)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            server_after = server_cpu()
            if server_before is not None and server_after is not None:
                server = server_after - server_before
            n = report.stats.n
            alpha = report.stats.alpha
        with Session(engine) as session:
            tracemalloc.start()
            quiz_statistics(session, quiz_id, moment, GRACE)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        if profile:
            with Session(engine) as session:
                profiler = cProfile.Profile()
                profiler.enable()
                quiz_statistics(session, quiz_id, moment, GRACE)
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    finally:
        engine.dispose()
    return {
        "n": n,
        "alpha": float(alpha) if alpha is not None else float("nan"),
        "cpu": cpu,
        "wall": wall,
        "server_cpu": server,
        "peak_mb": peak / 1e6,
        "rss_growth_mb": rss_growth / 1024,
    }


def psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1"]
        + ["-qc", sql],
        check=True,
    )


def run(kind: str, attempts: int, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if kind == "sqlite":
            url = f"sqlite:///{Path(folder) / 'stats.db'}"
        else:
            psql(f"create database {PG_DATABASE}")  # fails if it exists: never ours to drop
            url = f"{PG_SERVER}/{PG_DATABASE}"
        try:
            built = time.perf_counter()
            quiz_id = build(url, attempts)
            built = time.perf_counter() - built
            if kind == "postgresql":
                psql("analyze", database=PG_DATABASE)  # as autovacuum would after the load
            child = subprocess.run(
                [sys.executable, __file__, "--measure", url, str(quiz_id)]
                + (["--profile"] if profile else []),
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            )
            result = json.loads(child.stdout)
        finally:
            if kind == "postgresql":
                psql(f"drop database {PG_DATABASE}")
    server = result["server_cpu"]
    server_text = "" if server is None else f" + {server:.2f} s PostgreSQL backend CPU"
    print(
        f"{kind:10} {result['n']:>6} attempts: statistics {result['cpu']:.2f} s CPU"
        f"{server_text}, {result['wall']:.2f} s wall, peak Python allocations "
        f"{result['peak_mb']:.1f} MB, max RSS +{result['rss_growth_mb']:.1f} MB "
        f"(alpha {result['alpha']:.4f}; building the data took {built:.0f} s)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one call")
    parser.add_argument("--measure", nargs=2, metavar=("URL", "QUIZ_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], int(args.measure[1]), args.profile)))
        return 0
    kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    for kind in kinds:
        run(kind, args.attempts, args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
