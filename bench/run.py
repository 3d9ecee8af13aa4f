"""Exam-day benchmark: one command, a real gunicorn server, bounded in time and requests.

    .venv/bin/python bench/run.py [--students 200] [--database sqlite|postgresql]
                                  [--sign-in password|sso|both] [--sign-in-only]
                                  [--export-attempts 10000]

See bench/README.md. Every process started here is stopped here, by PID.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import sso_provider  # bench/ is sys.path[0] when run as a script
from loadgen import children, part_state_path, summary

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
PASSWORD = "bench-password"
STAFF_PASSWORD = "demo-password"
QUIZ_KEY = "quiz1-foundations"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# The bench's own PostgreSQL database: created by the run and dropped at its end, never
# one that was there before (another run's, or someone's data): BENCH_PG_DB names it.
PG_DB = os.environ.get("BENCH_PG_DB", "quizapp_bench")
PG_CREATED: list[str] = []
MODE_PREFIX = {"password": "bench", "sso": "benchsso"}
MODE_NAME = {"password": "passwords", "sso": "single sign-on"}

STARTED: list[subprocess.Popen[bytes]] = []


def median(values: list[float]) -> float:
    """The median. Not the standard library's `statistics`: bench/ is sys.path[0] when
    this runs as a script, so `import statistics` finds bench/statistics.py instead."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """gunicorn with gunicorn.conf.py on a free port; workers' peak RSS is polled."""

    def __init__(
        self, app: str, env: dict[str, str], logfile: Path, extra: list[str], port: int = 0
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = logfile.open("ab")
        command = [
            str(BIN / "gunicorn"),
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{self.port}",
            *extra,
            app,
        ]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        STARTED.append(self.proc)
        self.worker_hwm: dict[int, int] = {}
        self.phase_hwm: dict[int, int] = {}
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"gunicorn exited with {self.proc.returncode}; see {self.log.name}"
                )
            try:
                with urllib.request.urlopen(self.base + path, timeout=5) as r:
                    if r.status == 200 and len(self.workers()) >= 1:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit(f"gunicorn did not answer within {timeout} s; see {self.log.name}")
        # Let every worker boot before measuring anything.
        time.sleep(1.0)
        self._poller.start()

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def _poll(self) -> None:
        while not self._stop.is_set():
            for pid in self.workers():
                hwm = status_kb(pid, "VmHWM")
                self.worker_hwm[pid] = max(self.worker_hwm.get(pid, 0), hwm)
                self.phase_hwm[pid] = max(self.phase_hwm.get(pid, 0), hwm)
            self._stop.wait(0.25)

    def begin_phase(self) -> None:
        self.phase_hwm = {pid: status_kb(pid, "VmHWM") for pid in self.workers()}

    def end_phase(self) -> dict[str, Any]:
        for pid in self.workers():
            self.phase_hwm[pid] = max(self.phase_hwm.get(pid, 0), status_kb(pid, "VmHWM"))
        values = [v for v in self.phase_hwm.values() if v]
        return {
            "peak_rss_mb": max(values) / 1024 if values else 0.0,
            "workers_seen": len(values),
        }

    def stop(self) -> None:
        self._stop.set()
        stop_process(self.proc, also=self.workers())
        self.log.close()


def stop_process(proc: subprocess.Popen[bytes], also: list[int] = ()) -> None:  # type: ignore[assignment]
    """SIGTERM by PID, wait, then SIGKILL by PID; the same for the listed children."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    for pid in also:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_everything() -> None:
    for proc in reversed(STARTED):
        if proc.poll() is None:
            stop_process(proc)


def _generator_command(server: Server, phase: str, state: Path, provider: int) -> list[str]:
    """loadgen.py's command line up to its --options value."""
    return [
        sys.executable,
        str(BENCH / "loadgen.py"),
        phase,
        "--base",
        server.base,
        "--state",
        str(state),
        "--master",
        str(server.proc.pid),
        "--provider",
        str(provider),
        "--options",
    ]


def run_phase(
    server: Server,
    phase: str,
    state: Path,
    options: dict[str, Any],
    limit: float,
    provider: int = 0,
) -> dict[str, Any]:
    """One load generator process; `provider` is the OpenID provider's PID (its CPU is
    measured apart from the server's)."""
    command = [*_generator_command(server, phase, state, provider), json.dumps(options)]
    server.begin_phase()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)
    STARTED.append(proc)
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        raise SystemExit(f"load generator phase {phase} ran over {limit} s") from None
    if proc.returncode != 0:
        raise SystemExit(f"load generator phase {phase} failed ({proc.returncode})")
    result = json.loads(out)
    result.update(server.end_phase())
    result["workers"] = len(server.workers())
    return result


def default_generators() -> int:
    """Generator processes for the saturation and ceiling phases: one per two cores, at
    most 4. One Python process tops out at one core (~1.1-1.8 CPU-ms per request), so on
    4 or more cores one generator would be the ceiling. On 2 cores a second one only
    competes with the server for the same cores: measured back to back, the ceiling was
    856/734 writes/s with one generator and 678/641 with two (bench/README.md)."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def run_generators(
    server: Server,
    phase: str,
    state: Path,
    options: dict[str, Any],
    limit: float,
    generators: int,
) -> dict[str, Any]:
    """`phase` (saturate or ceiling) run by `generators` load generator processes at
    once, each with its share of the concurrency (and of the students), all measuring
    from the same moment; their results merged into one as run_phase returns it."""
    if generators <= 1:
        return run_phase(server, phase, state, options, limit)
    total = options["concurrency"]
    shares = [total // generators + (1 if k < total % generators else 0) for k in range(generators)]
    start_at = time.time() + 2.0  # every generator imported and connected by then
    server.begin_phase()
    procs = []
    for k, share in enumerate(shares):
        opts = {**options, "concurrency": share, "part": k, "parts": generators}
        opts["start_at"] = start_at
        command = [
            *_generator_command(server, phase, state, 0),
            json.dumps(opts),
        ]
        procs.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE))
        STARTED.append(procs[-1])
    parts = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            for p in procs:
                stop_process(p)
            raise SystemExit(f"load generator phase {phase} ran over {limit} s") from None
        if proc.returncode != 0:
            raise SystemExit(f"load generator phase {phase} failed ({proc.returncode})")
        parts.append(json.loads(out))
    if phase == "saturate":  # each generator's students back into the one state file
        merged = json.loads(state.read_text())
        for k in range(generators):
            path = part_state_path(state, k)
            mine = json.loads(path.read_text())
            for i in range(k, len(merged), generators):
                merged[i] = mine[i]
            path.unlink()
        state.write_text(json.dumps(merged))
    every = sorted(x for p in parts for x in p.pop("latencies_raw", []))
    result: dict[str, Any] = {
        # The windows overlap (same start, same length): the server's and the machine's
        # CPU over the longest of them; each generator's own CPU adds up.
        **max(parts, key=lambda p: p["wall_s"]),
        "concurrency": total,
        "generators": generators,
        "latency_ms": summary(every),
    }
    for key in ("requests", "operations", "errors", "generator_cpu_ms"):
        result[key] = sum(p[key] for p in parts)
    for key in ("server_cpu_ms", "machine_cpu_ms", "machine_capacity_ms", "provider_cpu_ms"):
        result[key] = max(p[key] for p in parts)
    result["wall_s"] = max(p["wall_s"] for p in parts)
    result["errors_by_label"] = dict(sum((Counter(p["errors_by_label"]) for p in parts), Counter()))
    result["error_examples"] = [x for p in parts for x in p["error_examples"]][:5]
    result["latency_by_label_ms"] = {}
    result["per_generator"] = [
        {k: p[k] for k in ("operations", "wall_s", "generator_cpu_ms", "concurrency")}
        for p in parts
    ]
    result.update(server.end_phase())
    result["workers"] = len(server.workers())
    return result


# --- set-up ---------------------------------------------------------------------------


def prepare_database(kind: str, tmp: Path) -> tuple[str, str]:
    """(app database URL, ceiling database URL)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'quizapp.db'}", f"sqlite:///{tmp / 'ceiling.db'}"
    from sqlalchemy import create_engine, text

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", PG_DB):
        raise SystemExit(f"BENCH_PG_DB={PG_DB!r}: use lower-case letters, digits and _")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": PG_DB}
        ).first()
        if exists:
            admin.dispose()
            raise SystemExit(
                f"PostgreSQL database {PG_DB} already exists: the bench drops only a database "
                "it created. Drop it yourself if it is a leftover, or set BENCH_PG_DB."
            )
        conn.execute(text(f"CREATE DATABASE {PG_DB}"))
        PG_CREATED.append(PG_DB)
    admin.dispose()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"
    return url, url


def drop_database(kind: str) -> None:
    if kind != "postgresql" or PG_DB not in PG_CREATED:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
    admin.dispose()
    PG_CREATED.remove(PG_DB)


def postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


def add_students(url: str, count: int, prefix: str, password: bool = True) -> list[str]:
    """Bulk-insert students sharing one argon2 hash (hashed once), or with no password
    (single sign-on students: nothing to hash or verify)."""
    from sqlalchemy import insert

    from quizapp.db import make_engine
    from quizapp.models import Role, User
    from quizapp.services.users import hash_password

    hashed = hash_password(PASSWORD) if password else None
    names = [f"{prefix}{i:05d}" for i in range(count)]
    engine = make_engine(url)
    with engine.begin() as conn:
        for start in range(0, count, 2000):
            conn.execute(
                insert(User),
                [
                    {
                        "username": n,
                        "name": f"Bench Student {n}",
                        "role": Role.STUDENT,
                        "password_hash": hashed,
                    }
                    for n in names[start : start + 2000]
                ],
            )
    engine.dispose()
    return names


def exam_day(url: str) -> None:
    """The exam's morning: only the benchmarked quiz is open (`quizapp demo` opens every
    quiz of the bank), the others open tomorrow, so a sign-in lands on the open quiz's
    start page (issue 17) as it would on the day."""
    from sqlalchemy import update

    from quizapp.db import make_engine
    from quizapp.models import Quiz

    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(Quiz)
            .where(Quiz.key != QUIZ_KEY)
            .values(
                opens_at=tomorrow,
                closes_at=tomorrow + dt.timedelta(hours=3),
                updated_at=dt.datetime.now(dt.UTC),
            )
        )
    engine.dispose()


def quiz_id(url: str) -> int:
    from sqlalchemy import select

    from quizapp.db import make_engine
    from quizapp.models import Quiz

    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(select(Quiz.id).where(Quiz.key == QUIZ_KEY)).scalar_one()
    engine.dispose()
    return int(found)


def count_graded(url: str, quiz: int, usernames: list[str]) -> dict[str, int]:
    """The quiz's attempts of these students by state, and how many are graded (the
    other sign-in mode's storm leaves its attempts in progress: not counted)."""
    from sqlalchemy import func, select

    from quizapp.db import make_engine
    from quizapp.models import Attempt, User

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Attempt.state, func.count(), func.count(Attempt.score))
            .join(User, User.id == Attempt.user_id)
            .where(Attempt.quiz_id == quiz, User.username.in_(usernames))
            .group_by(Attempt.state)
        ).all()
    engine.dispose()
    out: dict[str, int] = {}
    for state, n, scored in rows:
        out[str(getattr(state, "value", state))] = int(n)
        out["graded"] = out.get("graded", 0) + int(scored)
    return out


def clone_finished_attempts(url: str, quiz: int, target: int) -> int:
    """Grow the quiz to `target` finished attempts for the export test: new students
    (one shared hash), each with a copy of an existing finished attempt, its answers
    and its marks. Returns the number of attempts the quiz then has."""
    from sqlalchemy import func, insert, select

    from quizapp.db import make_engine
    from quizapp.models import Answer, Attempt, Mark

    engine = make_engine(url)
    with engine.connect() as conn:
        have = conn.execute(
            select(func.count()).select_from(Attempt).where(Attempt.quiz_id == quiz)
        ).scalar_one()
        templates = [
            dict(r._mapping)
            for r in conn.execute(
                select(Attempt.__table__).where(Attempt.quiz_id == quiz, Attempt.score.is_not(None))
            )
        ]
    if have >= target or not templates:
        engine.dispose()
        return int(have)
    add_students(url, target - have, "benchx")
    attempt_t, answer_t, mark_t = Attempt.__table__, Answer.__table__, Mark.__table__
    from quizapp.models import User

    template_ids = [t["id"] for t in templates]
    by_attempt_answers: dict[int, list[dict[str, Any]]] = {}
    by_attempt_marks: dict[int, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        user_ids = [
            r[0]
            for r in conn.execute(
                select(User.id).where(User.username.like("benchx%")).order_by(User.id)
            )
        ]
        for r in conn.execute(select(answer_t).where(answer_t.c.attempt_id.in_(template_ids))):
            by_attempt_answers.setdefault(r.attempt_id, []).append(dict(r._mapping))
        for r in conn.execute(select(mark_t).where(mark_t.c.attempt_id.in_(template_ids))):
            by_attempt_marks.setdefault(r.attempt_id, []).append(dict(r._mapping))
    with engine.begin() as conn:
        for start in range(0, len(user_ids), 1000):
            chunk = user_ids[start : start + 1000]
            rows = []
            for i, uid in enumerate(chunk):
                t = dict(templates[(start + i) % len(templates)])
                t.pop("id")
                t["user_id"] = uid
                rows.append(t)
            conn.execute(insert(attempt_t), rows)
            new = conn.execute(
                select(attempt_t.c.id, attempt_t.c.user_id).where(attempt_t.c.user_id.in_(chunk))
            ).all()
            answers, marks = [], []
            position = {uid: i for i, uid in enumerate(chunk)}
            for attempt_id, uid in new:
                source = templates[(start + position[uid]) % len(templates)]["id"]
                for a in by_attempt_answers.get(source, []):
                    answers.append(
                        {**{k: v for k, v in a.items() if k != "id"}, "attempt_id": attempt_id}
                    )
                for m in by_attempt_marks.get(source, []):
                    marks.append(
                        {**{k: v for k, v in m.items() if k != "id"}, "attempt_id": attempt_id}
                    )
            if answers:
                conn.execute(insert(answer_t), answers)
            if marks:
                conn.execute(insert(mark_t), marks)
    engine.dispose()
    return int(have + len(user_ids))


def phases_after_the_storm(
    args: argparse.Namespace,
    server: Server,
    state: Path,
    quiz: int,
    app_url: str,
    results: dict[str, Any],
) -> None:
    """Steady autosave, saturation, the submit wave, the exports and the profile, with
    the students of the first storm."""
    log(f"steady autosave: one save per student every 10 s for {args.steady_seconds:.0f} s")
    results["steady"] = run_phase(
        server,
        "steady",
        state,
        {"interval": 10.0, "duration": args.steady_seconds},
        args.steady_seconds + 90,
    )
    for c in [int(x) for x in args.saturation.split(",") if x]:
        log(f"autosave saturation: closed loop, concurrency {c}, {args.seconds:.0f} s")
        results[f"saturate{c}"] = run_generators(
            server,
            "saturate",
            state,
            {"concurrency": c, "duration": args.seconds, "max_ops": 20000},
            args.seconds + 90,
            args.generators,
        )
        r = results[f"saturate{c}"]
        log(f"  {r['operations'] / r['wall_s']:.0f} saves/s, errors {r['errors']}")
    log("submit wave: every student submits at once (concurrency 100)")
    results["submit"] = run_phase(
        server, "submit", state, {"concurrency": 100, "timeout": 120}, 180
    )
    usernames = [s["username"] for s in json.loads(state.read_text())]
    results["submit"]["db_after"] = count_graded(app_url, quiz, usernames)
    results["submit"]["db_checked_after_last_submit_s"] = (
        time.time() - results["submit"]["last_submit_epoch"]
    )
    log(f"  {results['submit']['wall_s']:.2f} s, db {results['submit']['db_after']}")
    results["export"] = time_export(server.base, quiz, 5)
    log(f"scores.csv: {results['export']}")
    if args.export_attempts:
        t = time.time()
        total = clone_finished_attempts(app_url, quiz, args.export_attempts)
        log(f"grew the quiz to {total} finished attempts in {time.time() - t:.1f} s")
        results["export_big"] = time_export(server.base, quiz, 3)
        results["export_big"]["attempts"] = total
        log(f"scores.csv: {results['export_big']}")
    log("profile: one journey in-process (Flask test client), SQL statements and CPU")
    results["profile"] = profile_requests("benchprofile00000", quiz)


def time_export(base: str, quiz: int, repeats: int) -> dict[str, Any]:
    import httpx
    from loadgen import csrf_from_form  # bench/ is on sys.path when run as a script

    with httpx.Client(base_url=base, timeout=120, follow_redirects=False) as c:
        token = csrf_from_form(c.get("/login").text)
        r = c.post(
            "/login",
            data={"csrf_token": token, "username": "staff", "password": STAFF_PASSWORD},
        )
        if r.status_code != 302:
            return {"error": f"staff login answered {r.status_code}"}
        times, rows = [], 0
        for _ in range(repeats):
            t = time.perf_counter()
            r = c.get(f"/staff/quiz/{quiz}/scores.csv")
            times.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                return {"error": f"scores.csv answered {r.status_code}"}
            rows = r.text.count("\n") - 1
    return {
        "median_ms": median(times),
        "max_ms": max(times),
        "rows": rows,
        "repeats": repeats,
    }


def argon2_cost() -> dict[str, float]:
    """CPU ms of one argon2 verify with the app's hasher settings (what each login pays)."""
    from quizapp.services.users import _hasher, hash_password

    hashed = hash_password(PASSWORD)
    cpu, wall = [], []
    for _ in range(5):
        c, w = time.process_time(), time.perf_counter()
        _hasher.verify(hashed, PASSWORD)
        cpu.append((time.process_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    p = _hasher
    return {
        "cpu_ms": median(cpu),
        "wall_ms": median(wall),
        "time_cost": p.time_cost,
        "memory_kib": p.memory_cost,
        "parallelism": p.parallelism,
    }


def profile_only() -> int:
    """`--profile-only`: a fresh SQLite database as the full run makes it, then the profile
    table alone (seconds, not minutes; no server, no generator, no other process): one
    student's journey after another's has warmed the process."""
    sys.path.insert(0, str(BENCH))
    tmp = Path(tempfile.mkdtemp(prefix="quizapp-bench-"))
    url = f"sqlite:///{tmp / 'quizapp.db'}"
    env = {
        **os.environ,
        "QUIZAPP_DATABASE_URL": url,
        "QUIZAPP_INSTANCE_PATH": str(tmp / "instance"),
        "QUIZAPP_SECRET_KEY": "bench-secret-key-not-for-production",
    }
    os.environ.update({k: env[k] for k in env if k.startswith("QUIZAPP_")})
    try:
        subprocess.run(
            [str(BIN / "quizapp"), "demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
        exam_day(url)
        add_students(url, 2, "benchprofile")
        # The first student warms this process (templates, the quiz's plan, the question
        # versions), as the storm's first few do for each worker; the second is measured.
        from quizapp import create_app

        app = create_app()
        profile_requests("benchprofile00000", quiz_id(url), app)
        profile = profile_requests("benchprofile00001", quiz_id(url), app)
        app.extensions["quizapp_db"].engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| request | SQL statements | CPU ms |\n|---|---|---|")
    for label, p in profile.items():
        print(f"| {label} | {p['queries']:.0f} | {p['cpu_ms']:.1f} |")
    return 0


def profile_requests(username: str, quiz: int, app: Any = None) -> dict[str, dict[str, float]]:
    """One student's journey in this process with Flask's test client: SQL statements
    and CPU ms per request, without HTTP, gunicorn or contention."""
    from loadgen import CSRF_META, SEQ_BASE, answer_value, answerable_slots, csrf_from_form
    from sqlalchemy import event

    from quizapp import create_app

    own_app = app is None
    app = app or create_app()
    engine = app.extensions["quizapp_db"].engine
    counter = {"n": 0}

    def count(*_a: Any) -> None:
        counter["n"] += 1

    event.listen(engine, "before_cursor_execute", count)

    out: dict[str, dict[str, float]] = {}

    def measure(label: str, call: Any, repeat: int = 1, warm: bool = False) -> Any:
        if warm:  # idempotent GETs: once first, so template compilation is not counted
            call()
        counter["n"] = 0
        c = time.process_time()
        for _ in range(repeat):
            response = call()
        out[label] = {
            "queries": counter["n"] / repeat,
            "cpu_ms": (time.process_time() - c) * 1000 / repeat,
        }
        return response

    client = app.test_client()
    token = csrf_from_form(client.get("/login").get_data(as_text=True))
    landing = measure(
        "POST /login",
        lambda: client.post(
            "/login", data={"csrf_token": token, "username": username, "password": PASSWORD}
        ),
    ).headers.get("Location", "")
    if not landing.endswith(f"/quiz/{quiz}"):  # one quiz open: no dashboard on the way
        measure("GET /", lambda: client.get("/"), warm=True)
    page = measure("GET /quiz/<id>", lambda: client.get(f"/quiz/{quiz}"), warm=True)
    token = csrf_from_form(page.get_data(as_text=True))
    r = measure(
        "POST /quiz/<id>/start",
        lambda: client.post(f"/quiz/{quiz}/start", data={"csrf_token": token}),
    )
    attempt = int(r.headers["Location"].rsplit("/", 1)[1])
    html = measure(
        "GET /attempt/<id>", lambda: client.get(f"/attempt/{attempt}"), warm=True
    ).get_data(as_text=True)
    csrf = CSRF_META.search(html).group(1)  # type: ignore[union-attr]
    base = int(SEQ_BASE.search(html).group(1))  # type: ignore[union-attr]
    slots = answerable_slots(html)
    n = {"i": 0}

    def save() -> Any:
        i = n["i"]
        n["i"] += 1
        slot = slots[i % len(slots)]
        return client.put(
            f"/api/attempts/{attempt}/answers/{slot['slot']}",
            json={"value": answer_value(slot, i // len(slots)), "seq": base + i + 1},
            headers={"X-CSRFToken": csrf},
        )

    measure("PUT /api/attempts/<id>/answers/<slot>", save, repeat=30)
    page = measure(
        "GET /attempt/<id>/submit", lambda: client.get(f"/attempt/{attempt}/submit"), warm=True
    )
    token = csrf_from_form(page.get_data(as_text=True))
    measure(
        "POST /attempt/<id>/submit",
        lambda: client.post(f"/attempt/{attempt}/submit", data={"csrf_token": token}),
    )
    staff = app.test_client()
    token = csrf_from_form(staff.get("/login").get_data(as_text=True))
    staff.post(
        "/login", data={"csrf_token": token, "username": "staff", "password": STAFF_PASSWORD}
    )
    measure(
        "GET scores.csv (staff)",
        lambda: staff.get(f"/staff/quiz/{quiz}/scores.csv").get_data(),
        warm=True,
    )
    event.remove(engine, "before_cursor_execute", count)
    if own_app:
        engine.dispose()
    return out


# --- the report -----------------------------------------------------------------------


def row(name: str, r: dict[str, Any], unit: str, ceiling_rate: float | None) -> list[str]:
    rate = r["operations"] / r["wall_s"] if r["wall_s"] else 0.0
    lat = r["latency_ms"]
    ops = max(1, r["operations"])
    ratio = f"{rate / ceiling_rate:.2f}" if ceiling_rate else "–"
    # The OpenID provider is not another job: it is measured apart (sign-in table).
    other_jobs_cpu_ms = max(
        0.0,
        r["machine_cpu_ms"]
        - r["server_cpu_ms"]
        - r["generator_cpu_ms"]
        - r.get("provider_cpu_ms", 0.0),
    )
    return [
        name,
        f"{r['operations']} {unit}",
        f"{r['wall_s']:.2f}",
        f"{r['requests'] / r['wall_s']:.0f}" if r["wall_s"] else "0",
        f"{rate:.1f}",
        f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f}",
        str(r["errors"]),
        f"{r['machine_cpu_ms'] / ops:.1f}",
        f"{r['server_cpu_ms'] / ops:.1f}",
        f"{r['generator_cpu_ms'] / ops:.1f}",
        f"{r['peak_rss_mb']:.0f}",
        ratio,
        f"{other_jobs_cpu_ms / 1000 / r['wall_s']:.1f}" if r["wall_s"] else "–",
    ]


def sign_in_table(results: dict[str, Any], students: int) -> list[str]:
    """The sign-in step per mode: in the storm (time per student) and alone (time and CPU
    per sign-in: the app's, and the OpenID provider's apart)."""
    lines = [
        "| sign-in | in the storm: sign-in per student p50 / p95 / p99 ms | storm wall s "
        "| storm app CPU-ms per student | alone: wall s | alone: sign-in per student "
        "p50 / p95 / p99 ms | alone: app CPU-ms per sign-in | alone: app requests per sign-in "
        "| alone: OpenID provider CPU-ms per sign-in (not ours) | errors (storm, alone) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in results.get("sign_in_modes", []):
        storm, alone = results.get(f"storm_{mode}"), results.get(f"login_{mode}")
        if not storm or not alone:
            continue
        sl, al = storm["login_ms"], alone["login_ms"]
        ops = max(1, alone["operations"])
        app_requests = sum(
            v["n"] for k, v in alone["latency_by_label_ms"].items() if not k.startswith("IdP ")
        )
        provider = f"{alone['provider_cpu_ms'] / ops:.1f}" if mode == "sso" else "–"
        lines.append(
            f"| {MODE_NAME[mode]} | {sl['p50']:.0f} / {sl['p95']:.0f} / {sl['p99']:.0f} "
            f"| {storm['wall_s']:.2f} | {storm['server_cpu_ms'] / max(1, storm['operations']):.1f} "
            f"| {alone['wall_s']:.2f} | {al['p50']:.0f} / {al['p95']:.0f} / {al['p99']:.0f} "
            f"| {alone['server_cpu_ms'] / ops:.1f} | {app_requests / ops:.1f} | {provider} "
            f"| {storm['errors']}, {alone['errors']} |"
        )
    lines += [
        "",
        f"Sign-in: each of {students} students per mode signs in from a fresh browser, at most "
        "100 in flight. Passwords: GET /login, POST /login (argon2 verify). Single sign-on: "
        "GET /login, GET /login/sso, then at the OpenID provider (tests/sso/provider.mjs, "
        "oidc-provider on Node, on this machine) its authorization endpoint, its sign-in "
        "form, the form posted and the redirect back, then GET /login/sso/callback, where "
        "the app calls the provider's token endpoint and checks the ID token. No student is "
        'signed in at the provider beforehand (the worst case). "In the storm" is the '
        "sign-in step of each student's storm journey (the storm's first sign-in: with "
        'single sign-on it links the account to its subject, one UPDATE); "alone" is '
        "the same students signing in again with nothing else running (returning "
        "students), so the app's CPU in that window is the sign-in's. App CPU = gunicorn "
        "master and workers only; the provider's process is measured apart and is not "
        "quizapp's cost (a university's provider runs elsewhere), but it shares these "
        "cores and the sign-in times include its work, and a sync worker waits for the "
        "token endpoint.",
    ]
    return lines


HEADER = [
    "workload",
    "done",
    "wall s",
    "req/s",
    "ops/s",
    "p50 / p95 / p99 ms",
    "errors",
    "CPU-ms/op machine",
    "CPU-ms/op server",
    "CPU-ms/op generator",
    "peak RSS/worker MB",
    "ops/s ÷ ceiling",
    "other jobs' CPU (cores)",
]


def table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--export-attempts",
        type=int,
        default=10000,
        help="grow the quiz to this many finished attempts and time the export again (0: skip)",
    )
    parser.add_argument("--saturation", default="32,64", help="closed-loop concurrencies")
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="length of each saturation and ceiling run"
    )
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument(
        "--sign-in",
        choices=["password", "sso", "both"],
        default="both",
        help="how the start storm's students sign in: passwords (argon2), "
        "single sign-on against the tests' OpenID provider (needs "
        "node; skipped with a line when absent), or both: a storm "
        "row and a sign-in-only row per mode (default: both)",
    )
    parser.add_argument(
        "--sign-in-only",
        action="store_true",
        help="stop after the storms and the sign-in-only phases",
    )
    parser.add_argument(
        "--storm-only",
        action="store_true",
        help="stop after the start storms (no sign-in-only phase)",
    )
    parser.add_argument(
        "--generators",
        type=int,
        default=default_generators(),
        help="load generator processes for the saturation and ceiling phases "
        f"(default here: {default_generators()}: one per 2 cores, 1 to 4)",
    )
    parser.add_argument(
        "--profile-only",
        action="store_true",
        help="no server: set up, then only the in-process profile (SQL statements and "
        "CPU per request of one student's journey, Flask's test client)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    args.sign_in_only = args.sign_in_only or args.storm_only
    if args.profile_only:
        return profile_only()
    if args.database == "postgresql" and not postgres_answers():
        log("PostgreSQL does not answer on 127.0.0.1:5432: nothing to do.")
        return 2
    try:
        import httpx  # noqa: F401
    except ImportError:
        log("httpx is missing: .venv/bin/python -m pip install httpx (a bench-only dependency)")
        return 2

    modes = ["password", "sso"] if args.sign_in == "both" else [args.sign_in]
    sso_skipped = ""
    if "sso" in modes:
        log("single sign-on: node and tests/sso's oidc-provider (npm ci there on first use)")
        sso_skipped = sso_provider.unavailable()
        if sso_skipped and args.sign_in == "sso":
            log(f"single sign-on cannot be benchmarked here: {sso_skipped}")
            return 2
        if sso_skipped:
            log(f"single sign-on mode SKIPPED: {sso_skipped}")
            modes.remove("sso")

    atexit.register(stop_everything)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.path.insert(0, str(BENCH))
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="quizapp-bench-"))
    uptime_before = loadavg()
    log(f"temp dir {tmp}; load average {uptime_before}; {os.cpu_count()} cores")
    app_url, ceiling_url = prepare_database(args.database, tmp)
    env = {
        **os.environ,
        "QUIZAPP_DATABASE_URL": app_url,
        "QUIZAPP_INSTANCE_PATH": str(tmp / "instance"),
        "QUIZAPP_SECRET_KEY": "bench-secret-key-not-for-production",
        "GUNICORN_ACCESSLOG": "/dev/null",  # "" makes gunicorn 27 refuse to start
        "BENCH_CEILING_DATABASE_URL": ceiling_url,
    }
    os.environ.update(
        {k: env[k] for k in ("QUIZAPP_DATABASE_URL", "QUIZAPP_SECRET_KEY", "QUIZAPP_INSTANCE_PATH")}
    )
    results: dict[str, Any] = {"sign_in_modes": modes, "sso_skipped": sso_skipped}
    server_log = tmp / "gunicorn.log"
    provider: subprocess.Popen[bytes] | None = None
    try:
        t = time.time()
        subprocess.run(
            [str(BIN / "quizapp"), "demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
        # One roster per sign-in mode, so each storm starts attempts for students who
        # have none: password students share one argon2 hash, SSO students have none.
        states: dict[str, Path] = {}
        for mode in modes:
            names = add_students(app_url, args.students, MODE_PREFIX[mode], mode == "password")
            states[mode] = tmp / f"students-{mode}.json"
            states[mode].write_text(
                json.dumps([{"username": n, "subject": sso_provider.subject(n)} for n in names])
            )
        add_students(app_url, 1, "benchprofile")
        exam_day(app_url)
        results["argon2"] = argon2_cost()
        quiz = quiz_id(app_url)
        log(
            f"demo + {args.students} students x {len(modes)} sign-in modes in "
            f"{time.time() - t:.1f} s (quiz {QUIZ_KEY} = {quiz})"
        )
        # Later phases (saves, submits) go on with the first mode's students.
        state = states[modes[0]]

        port = free_port()
        if "sso" in modes:
            sso_names = [s["username"] for s in json.loads(states["sso"].read_text())]
            issuer, provider = sso_provider.start(
                tmp, free_port(), f"http://127.0.0.1:{port}", sso_names
            )
            STARTED.append(provider)
            env.update(sso_provider.settings(issuer))
            log(
                f"OpenID provider (tests/sso/provider.mjs) on {issuer}: pid {provider.pid}, "
                f"{len(sso_names)} accounts"
            )
        server = Server("quizapp:create_app()", env, server_log, [], port=port)
        server.wait_ready("/login")
        log(f"quizapp on {server.base}: master {server.proc.pid}, workers {server.workers()}")
        try:
            # Bounded: past this the phase stops and counts the students not started.
            storm_limit = max(120, args.students * 0.4)
            idp = provider.pid if provider else 0
            for mode in modes:
                options = {
                    "quiz_id": quiz,
                    "password": PASSWORD,
                    "concurrency": 100,
                    "timeout": storm_limit,
                    "sign_in": mode,
                }
                log(f"start storm ({MODE_NAME[mode]}): {args.students} students, concurrency 100")
                r = results[f"storm_{mode}"] = run_phase(
                    server, "storm", states[mode], options, storm_limit + 60, idp
                )
                log(
                    f"  {r['wall_s']:.2f} s, errors {r['errors']}, sign-in per student "
                    f"p50 {r['login_ms']['p50']:.0f} ms"
                )
            for mode in [] if args.storm_only else modes:
                options = {
                    "password": PASSWORD,
                    "concurrency": 100,
                    "timeout": storm_limit,
                    "sign_in": mode,
                }
                log(
                    f"sign-in only ({MODE_NAME[mode]}): {args.students} students again, "
                    "concurrency 100"
                )
                r = results[f"login_{mode}"] = run_phase(
                    server, "login", states[mode], options, storm_limit + 60, idp
                )
                log(
                    f"  {r['wall_s']:.2f} s, errors {r['errors']}, "
                    f"{r['server_cpu_ms'] / max(1, r['operations']):.1f} app CPU-ms per sign-in"
                )
            if provider is not None:
                stop_process(provider)
            if not args.sign_in_only:
                phases_after_the_storm(args, server, state, quiz, app_url, results)
            results["server_peak_rss_mb"] = max(server.worker_hwm.values(), default=0) / 1024
        finally:
            server.stop()

        if not args.sign_in_only:
            from ceiling_app import create_table

            create_table(ceiling_url)
            ceiling = Server("ceiling_app:create_app()", env, server_log, ["--pythonpath", "bench"])
            ceiling.wait_ready("/health")
            log(
                f"ceiling app on {ceiling.base}: master {ceiling.proc.pid}, "
                f"workers {ceiling.workers()}"
            )
            try:
                for c in [int(x) for x in args.saturation.split(",") if x]:
                    log(f"ceiling: closed loop, concurrency {c}, {args.seconds:.0f} s")
                    results[f"ceiling{c}"] = run_generators(
                        ceiling,
                        "ceiling",
                        state,
                        {"concurrency": c, "duration": args.seconds, "max_ops": 40000},
                        args.seconds + 90,
                        args.generators,
                    )
                    r = results[f"ceiling{c}"]
                    log(f"  {r['operations'] / r['wall_s']:.0f} writes/s, errors {r['errors']}")
            finally:
                ceiling.stop()
    finally:
        stop_everything()
        drop_database(args.database)

    report = render(args, results, uptime_before, loadavg(), time.time() - started)
    print()
    print(report)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = BENCH / "results" / f"{stamp}-{args.database}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1, default=str))
    log(f"wrote {out.relative_to(ROOT)} (and .json)")
    if args.keep:
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def idle(r: dict[str, Any]) -> float:
    """The share of the machine's CPU left idle during a phase."""
    return max(0.0, 1 - r["machine_cpu_ms"] / max(1.0, r["machine_capacity_ms"]))


def saturation_summary(results: dict[str, Any]) -> list[str]:
    """Saves/s at saturation against the ceiling at the same concurrency, and the server's
    CPU-ms per save against its CPU-ms per bare write: the portable figure (it does not
    depend on how much of the machine the generators take)."""
    lines = []
    for key, r in results.items():
        ceil = results.get(f"ceiling{r.get('concurrency')}") if key.startswith("saturate") else None
        if not ceil or not r["operations"] or not ceil["operations"]:
            continue
        rate, ceil_rate = r["operations"] / r["wall_s"], ceil["operations"] / ceil["wall_s"]
        lines.append(
            f"- concurrency {r['concurrency']}: {rate:.0f} saves/s ÷ {ceil_rate:.0f} writes/s "
            f"= **{rate / ceil_rate:.2f}**; server CPU-ms per save "
            f"**{r['server_cpu_ms'] / r['operations']:.2f}** (per bare write "
            f"{ceil['server_cpu_ms'] / ceil['operations']:.2f}); generators' CPU-ms per save "
            f"{r['generator_cpu_ms'] / r['operations']:.2f}, machine idle {idle(r):.0%} "
            f"(ceiling run: {idle(ceil):.0%})"
        )
    if lines:
        lines = [
            "Saturation against the ceiling (same generators, same concurrency):",
            "",
            *lines,
            "",
        ]
    return lines


def render(
    args: argparse.Namespace, results: dict[str, Any], load0: str, load1: str, took: float
) -> str:
    ceilings = {k: v for k, v in results.items() if k.startswith("ceiling")}
    primary = next((results[k] for k in results if k.startswith("storm_")), {})
    best_ceiling = max((v["operations"] / v["wall_s"] for v in ceilings.values()), default=0.0)
    rows = []
    modes = results.get("sign_in_modes", [])
    for mode in modes:
        s = results.get(f"storm_{mode}")
        if s:
            rows.append(
                row(
                    f"start storm ({args.students} students, {MODE_NAME[mode]})",
                    s,
                    "started",
                    best_ceiling,
                )
            )
    for mode in modes:
        s = results.get(f"login_{mode}")
        if s:
            rows.append(
                row(
                    f"sign-in only ({args.students} students, {MODE_NAME[mode]})",
                    s,
                    "signed in",
                    best_ceiling,
                )
            )
    s = results.get("steady")
    if s:
        rows.append(
            row(
                f"steady autosave ({s['students']} students, 1 save/10 s)", s, "saves", best_ceiling
            )
        )
    for key, r in results.items():
        if key.startswith("saturate"):
            c = r["concurrency"]
            ceil = results.get(f"ceiling{c}")
            rate = ceil["operations"] / ceil["wall_s"] if ceil else best_ceiling
            rows.append(row(f"autosave saturation (closed loop, {c})", r, "saves", rate))
    s = results.get("submit")
    if s:
        rows.append(row(f"submit wave ({s['students']} students)", s, "submitted", best_ceiling))
    for r in ceilings.values():
        rows.append(
            row(f"ceiling: 1 INSERT/request (closed loop, {r['concurrency']})", r, "writes", None)
        )
    lines = [
        f"# quizapp exam-day benchmark: {args.database}, {args.students} students",
        "",
        f"{dt.datetime.now().isoformat(timespec='seconds')}; {os.cpu_count()} cores; "
        f"load average {load0} before, {load1} after (other jobs may share the machine); "
        f"gunicorn.conf.py: {primary.get('workers', '?')} sync workers; "
        f"{args.generators} load generator process(es) in the saturation and ceiling "
        f"phases; whole run {took:.0f} s.",
        "",
        table(rows),
        "",
        *saturation_summary(results),
        "ops/s ÷ ceiling: saturation rows against the ceiling at the same concurrency, the "
        "others against the best ceiling run. CPU-ms/op: machine = all cores from /proc/stat "
        "(includes the load generator, the OpenID provider in single sign-on rows, and "
        "anything else running); server = gunicorn master and workers; generator = the "
        "httpx load generator. Other jobs' CPU: what the rest of the machine used meanwhile "
        "(not the provider), in cores out of "
        f"{os.cpu_count()} (other test runs share this machine).",
        "",
    ]
    if results.get("sso_skipped"):
        lines += [f"Single sign-on mode SKIPPED: {results['sso_skipped']}", ""]
    if any(f"login_{m}" in results for m in modes):
        lines += ["Sign-in cost:", "", *sign_in_table(results, args.students), ""]
    for mode in modes:
        st = results.get(f"storm_{mode}")
        if not st:
            continue
        lines.append(f"Start storm ({MODE_NAME[mode]}), per request (ms, p50 / p95 / p99):")
        for label, lat in st["latency_by_label_ms"].items():
            lines.append(
                f"- {label}: {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} (n={lat['n']})"
            )
        lines.append(
            f"- sign-in step per student: {st['login_ms']['p50']:.0f} / "
            f"{st['login_ms']['p95']:.0f} / {st['login_ms']['p99']:.0f}"
        )
        lines.append(
            f"- whole journey per student: {st['journey_ms']['p50']:.0f} / "
            f"{st['journey_ms']['p95']:.0f} / {st['journey_ms']['p99']:.0f}"
        )
        lines.append("")
    sub = results.get("submit")
    if sub:
        lines.append(
            f"Submit wave: attempts in the database {sub['db_after']} "
            f"(checked {sub['db_checked_after_last_submit_s']:.2f} s after the last submit; "
            "grading happens inside the submit request)."
        )
        for label, lat in sub["latency_by_label_ms"].items():
            lines.append(f"- {label}: {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} ms")
        lines.append("")
    for key, title in (
        ("export", "Scores CSV after the wave"),
        ("export_big", "Scores CSV, quiz grown by cloning finished attempts"),
    ):
        e = results.get(key)
        if e:
            if "error" in e:
                lines.append(f"{title}: {e['error']}")
            else:
                lines.append(
                    f"{title}: {e['rows']} rows, median {e['median_ms']:.0f} ms, "
                    f"max {e['max_ms']:.0f} ms over {e['repeats']} downloads"
                    + (f" ({e['attempts']} attempts)" if "attempts" in e else "")
                    + "."
                )
    a = results.get("argon2")
    st = results.get("storm_password")
    if a and st:
        share = a["cpu_ms"] * st["operations"] / max(1.0, st["server_cpu_ms"])
        lines += [
            "",
            f"argon2 (time_cost={a['time_cost']}, memory={a['memory_kib']} KiB, "
            f"parallelism={a['parallelism']}): one verify costs {a['cpu_ms']:.0f} ms CPU "
            f"({a['wall_ms']:.0f} ms wall) in this process; {st['operations']} logins = "
            f"{a['cpu_ms'] * st['operations'] / 1000:.1f} CPU-s, {share:.0%} of the server's CPU "
            f"in the start storm ({st['server_cpu_ms'] / 1000:.1f} CPU-s).",
        ]
    prof = results.get("profile")
    if prof:
        lines += [
            "",
            "In-process profile (Flask test client, no HTTP, one student, after all "
            "the phases; GETs warmed up once, the save is the mean of 30, POSTs run "
            "once): SQL statements and CPU ms per request (argon2 uses several threads: "
            "its CPU ms exceed its wall time).",
            "",
            "| request | SQL statements | CPU ms |",
            "|---|---|---|",
        ]
        lines += [f"| {k} | {v['queries']:.1f} | {v['cpu_ms']:.1f} |" for k, v in prof.items()]
    errors = [
        (k, r["error_examples"])
        for k, r in results.items()
        if isinstance(r, dict) and r.get("error_examples")
    ]
    if errors:
        lines += ["", "Error examples:"]
        lines += [f"- {k}: {x}" for k, xs in errors for x in xs]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
