"""What the fault tests share: a fresh database with a short quiz, real gunicorn servers
(and nginx) on loopback, a small load client that keeps a ledger of every save it sent
and every acknowledgement it got, and the checks that nothing acknowledged was lost.

Every process is started here with a known PID and stopped here by that PID (or by the
process group it was started in, which holds only that server's master and workers).
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NGINX = "/usr/sbin/nginx"
SECRET_KEY = "fault-tests-secret-key"
PASSWORD = "fault-password"
GRACE_SECONDS = 2
QUIZ_KEY = "fault-quiz"
SWEEP_GROUP = "sweep"  # students left to the sweeper (the others submit)
SLOTS = 3
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
# One database per pytest process: two engineers running `make fault` at once on one
# PostgreSQL server must not drop each other's database.
PG_DATABASE = os.environ.get("QUIZAPP_FAULT_PG_DATABASE", f"quizapp_fault_{os.getpid()}")
# Bounded: the load of one scenario, and the wait for the last unacknowledged saves.
LOAD_SECONDS = float(os.environ.get("QUIZAPP_FAULT_LOAD_SECONDS", "15"))
FLUSH_SECONDS = 30.0
REQUEST_TIMEOUT = httpx.Timeout(20.0, connect=5.0)

CSRF_INPUT = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"'
)
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SEQ_BASE = re.compile(r'data-seq-base="(\d+)"')
ATTEMPT_URL = re.compile(r"/attempt/(\d+)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Phases:
    """Wall time of each phase of a scenario, for its summary line."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.marks: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.marks.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.marks) + " (s)"


def served(log: Path, marker: str = '"PUT /api/attempts/') -> int:
    """How many autosaves an app server's access log shows it answered."""
    try:
        return log.read_text(errors="replace").count(marker)
    except OSError:
        return 0


# --- the database -----------------------------------------------------------------------


def write_short_bank(folder: Path) -> Path:
    """Three numeric questions (any number is a valid answer, so each save can carry a
    new one) in a quiz open since an hour ago with a 5-minute limit. The scenarios end
    the attempts themselves: half submit, the other half are closed by an override and
    swept, so nobody waits for a deadline."""
    opens = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    (folder / "questions").mkdir(parents=True)
    (folder / "quizzes").mkdir()
    questions = "\n".join(
        f"""  - id: fault-q{n}
    type: numeric
    tags: [fault]
    stem: What is ${n} + {n}$?
    answer: {2 * n}
    tolerance: 0"""
        for n in range(1, SLOTS + 1)
    )
    (folder / "questions" / "fault.yaml").write_text(f"questions:\n{questions}\n")
    slots = "\n".join(f"    - question: fault-q{n}" for n in range(1, SLOTS + 1))
    (folder / "quizzes" / "fault.yaml").write_text(
        f"""quiz:
  id: {QUIZ_KEY}
  title: "Fault test quiz"
  opens: "{opens.isoformat()}"
  open_for: 24h
  time_limit: 5
  attempts: 1
  release:
    marks: immediately
  slots:
{slots}
"""
    )
    return folder


def prepare_database(
    url: str,
    folder: Path,
    students: int,
    write_bank: Callable[[Path], Path] = write_short_bank,
) -> tuple[int, list[str]]:
    """Migrate, import the short bank (or the one `write_bank` writes: its quiz must have
    the key QUIZ_KEY), add `students` students sharing one argon2 hash (hashed once);
    every other one is in the SWEEP_GROUP. Returns the quiz id and names."""
    from quizapp.bank.loader import load_bank
    from quizapp.cli import migrate
    from quizapp.db import make_engine
    from quizapp.models import Quiz, Role, User, UserGroup
    from quizapp.services.bank_import import import_bank
    from quizapp.services.users import hash_password

    migrate(url)
    bank = load_bank(write_bank(folder))
    assert bank.ok, bank.problems
    names = [f"fault{i:03d}" for i in range(students)]
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            import_bank(session, bank)
            quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == QUIZ_KEY)).one()
        hashed = hash_password(PASSWORD)
        with engine.begin() as conn:
            conn.execute(
                insert(User),
                [
                    {
                        "username": n,
                        "name": f"Fault {n}",
                        "role": Role.STUDENT,
                        "password_hash": hashed,
                    }
                    for n in names
                ],
            )
            ids = dict(conn.execute(select(User.username, User.id)).all())
            conn.execute(
                insert(UserGroup),
                [{"user_id": ids[n], "name": SWEEP_GROUP} for n in names[1::2]],
            )
    finally:
        engine.dispose()
    return quiz_id, names


def postgres_unreachable() -> str | None:
    """None when PostgreSQL answers on 127.0.0.1:5432 (trust auth), else why not."""
    import psycopg

    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
        ):
            return None
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"


@contextmanager
def postgres_database(name: str = PG_DATABASE) -> Iterator[str]:
    """A database of our own, created empty and dropped afterwards (FORCE: connections
    left by killed servers go with it)."""
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            # template0: template1 may be in use by someone else's session, which makes
            # CREATE DATABASE fail ("source database is being accessed by other users").
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def server_env(database_url: str, base: Path) -> dict[str, str]:
    env = {
        **os.environ,
        # The code of this checkout, whatever the virtualenv's editable install points at.
        "PYTHONPATH": str(ROOT),
        "QUIZAPP_DATABASE_URL": database_url,
        "QUIZAPP_INSTANCE_PATH": str(base / "instance"),
        "QUIZAPP_SECRET_KEY": SECRET_KEY,
        "QUIZAPP_GRACE_SECONDS": str(GRACE_SECONDS),
        # Every simulated student comes from 127.0.0.1 (and, behind nginx, so does
        # every request): the per-address login limit would otherwise count them all.
        "QUIZAPP_LOGIN_FAILURES_PER_ADDRESS": "100000 per hour",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": "-",
    }
    env.pop("QUIZAPP_TEST_DATABASE_URL", None)
    return env


def cli(env: dict[str, str], *args: str) -> str:
    """`quizapp ARGS` as an operator runs it; its output (it must exit 0)."""
    result = subprocess.run(
        [str(BIN / "quizapp"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"quizapp {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


# --- processes --------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(x) for x in (task / "children").read_text().split()]
    return found


def is_gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts: it holds no socket or lock)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_gone(pids: list[int], timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(is_gone(p) for p in pids):
            return
        time.sleep(0.05)
    raise AssertionError(f"processes still alive {timeout} s after SIGKILL: {pids}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def stop_master(
    proc: subprocess.Popen[bytes], workers: set[int], first: signal.Signals, grace: float
) -> None:
    """Stop a master process gracefully with `first`, SIGKILL it after `grace` seconds,
    then SIGKILL any of its workers (ever seen) still alive, by PID."""
    if proc.poll() is None:
        proc.send_signal(first)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for pid in workers:
        if not is_gone(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class AppServer:
    """gunicorn with the production settings (gunicorn.conf.py: sync workers), 2 workers,
    on a fixed port so that a restart comes back where the clients (or nginx) expect it.
    Started in its own session: its process group is exactly its master and workers.
    `app` is the WSGI app gunicorn loads (a test may wrap the factory to inject a fault)."""

    def __init__(
        self, name: str, env: dict[str, str], log: Path, app: str = "quizapp:create_app()"
    ) -> None:
        self.name = name
        self.app = app
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.known_workers: set[int] = set()
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        assert self.proc is None or self.proc.poll() is not None
        with self.log.open("ab") as log:
            log.write(f"\n--- fault tests: starting {self.name} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "--config",
                    "gunicorn.conf.py",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    self.app,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
            if len(self.workers()) >= 2 and http_ok(self.url + "/login"):
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready after {timeout} s:\n{self.tail()}")

    def workers(self) -> list[int]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        found = children(self.proc.pid)
        self.known_workers.update(found)
        return found

    def kill_worker(self) -> int:
        """kill -9 one worker (the master notices and forks a new one)."""
        workers = self.workers()
        assert workers, f"{self.name} has no worker to kill"
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        return victim

    def reload(self, timeout: float = 60) -> tuple[list[int], list[int]]:
        """kill -HUP the master: it starts new workers (with the code and config as they
        are now) and lets the old ones finish their request and exit. Returns the old
        and the new workers."""
        assert self.proc is not None and self.proc.poll() is None
        old = self.workers()
        os.kill(self.proc.pid, signal.SIGHUP)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            new = self.workers()
            if len(new) >= 2 and not set(new) & set(old):
                return old, new
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: old workers {old} still there after HUP")

    def crash(self) -> None:
        """kill -9 the master and every worker at once, as a lost machine would."""
        assert self.proc is not None and self.proc.poll() is None
        pids = [self.proc.pid, *self.workers()]
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        wait_gone(pids)

    def stop(self) -> None:
        """SIGTERM the master, then SIGKILL it and every worker it ever had, by PID."""
        if self.proc is None:
            return
        self.workers()
        stop_master(self.proc, self.known_workers, signal.SIGTERM, grace=15)

    def error_summary(self) -> list[str]:
        """Each distinct exception the server logged (its last line), with a count."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        found = Counter(
            line.strip()
            for line in text.splitlines()
            if re.match(r"^[\w.]+(Error|Exception|Warning)\b.*:", line.strip())
        )
        return [f"{self.name}: {n} x {line[:300]}" for line, n in found.most_common(10)]

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


NGINX_CONF = """\
# Generated by tests/fault for one test: everything under {base}, loopback only.
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log notice;
events {{ worker_connections 512; }}
http {{
    access_log {base}/access.log;
    client_body_temp_path {base}/client_body;
    proxy_temp_path {base}/proxy;
    fastcgi_temp_path {base}/fastcgi;
    uwsgi_temp_path {base}/uwsgi;
    scgi_temp_path {base}/scgi;
    # Bodies and responses stay in memory (no temp files: when run as root the workers
    # are "nobody", who cannot enter the test's private temp folder).
    client_body_buffer_size 256k;
    client_max_body_size 256k;
    proxy_buffers 32 16k;
    proxy_max_temp_file_size 0;

    upstream quizapp {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        proxy_read_timeout 30s;

        # The student's requests, each safe to send twice, so nginx may pass one to
        # the other app server when the first fails after the request was sent:
        # - PUT /api/attempts/<id>/answers/<slot> (autosave) and POST /attempt/<id>
        #   (the form save): the answer with the highest client sequence wins
        #   (INSERT ... ON CONFLICT ... WHERE seq < excluded.seq); a repeat of a save
        #   that was already stored answers "unchanged" and logs nothing twice;
        # - PUT flags: set to a value, not toggled;
        # - POST /quiz/<id>/start: one in-progress attempt per student (unique
        #   index), a repeat returns the running attempt;
        # - POST /attempt/<id>/submit and /time-up: a conditional UPDATE moves the
        #   attempt out of in_progress once; a repeat is a no-op;
        # - POST /login: a repeat makes a second session; the first one's cookie
        #   never reached the browser.
        # nginx retries PUT by itself (an idempotent method); POST only with
        # "non_idempotent". Staff POSTs are NOT retried (location / below): extra
        # time adds minutes to the current limit, so a repeat would add them twice.
        location ~ ^/(api/attempts/|attempt/|quiz/[0-9]+/start$|login$) {{
            proxy_pass http://quizapp;
            proxy_next_upstream error timeout non_idempotent;
        }}
        location / {{
            proxy_pass http://quizapp;
        }}
    }}
}}
"""


class Nginx:
    """Debian's nginx as a reverse proxy in front of `upstreams`, config and every file
    it writes in `base` (nginx -p base -c nginx.conf -g 'daemon off;')."""

    def __init__(self, base: Path, upstreams: list[AppServer]) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(
            f"        server 127.0.0.1:{u.port} max_fails=1 fail_timeout=10s;" for u in upstreams
        )
        self.conf = base / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(base=base, servers=servers, port=self.port))
        self.proc: subprocess.Popen[bytes] | None = None
        self.known_workers: set[int] = set()

    def start(self, timeout: float = 30) -> None:
        with (self.base / "stderr.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(self.base), "-c", str(self.conf), "-g", "daemon off;"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited {self.proc.returncode}:\n{self.errors()}")
            self.known_workers.update(children(self.proc.pid))
            if http_ok(self.url + "/login"):
                return
            time.sleep(0.1)
        raise AssertionError(f"nginx not ready after {timeout} s:\n{self.errors()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.known_workers.update(children(self.proc.pid) if self.proc.poll() is None else [])
        # SIGQUIT: nginx's graceful stop, finishing what is in flight.
        stop_master(self.proc, self.known_workers, signal.SIGQUIT, grace=10)

    def errors(self) -> str:
        out = []
        for name in ("stderr.log", "error.log"):
            path = self.base / name
            if path.exists():
                out.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(out)

    def passed_on(self) -> dict[str, int]:
        """Requests nginx passed on to the other app server, by why: the upstream died
        with the request in flight, or refused the connection (it was down)."""
        path = self.base / "error.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        errors = [line for line in lines if "[error]" in line]
        return {
            "in flight": sum("while reading response header from upstream" in x for x in errors),
            "refused": sum("while connecting to upstream" in x for x in errors),
        }


# --- the load client ---------------------------------------------------------------------


@dataclass
class Ack:
    slot: int
    seq: int
    value: str
    status: str
    at: float


@dataclass
class Student:
    """One simulated student, acting as the attempt page does: each change gets the next
    sequence number (page base + counter) and waits in a pending queue, one entry per
    slot (a newer change replaces an older unsent one), until the server acknowledges
    it; a failed send is retried with the same sequence and value."""

    username: str
    base_url: str
    rng: random.Random
    client: httpx.Client = field(init=False)
    attempt_id: int = 0
    csrf: str = ""
    seq_base: int = 0
    counter: int = 0
    pending: dict[int, tuple[int, str]] = field(default_factory=dict)
    sent: dict[tuple[int, int], str] = field(default_factory=dict)  # (slot, seq) -> value
    acks: list[Ack] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    protocol_errors: list[str] = field(default_factory=list)
    backoff: float = 0.0

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.base_url, timeout=REQUEST_TIMEOUT, follow_redirects=False
        )

    def close(self) -> None:
        self.client.close()

    def _send(self, method: str, url: str, expect: int, **kw: Any) -> httpx.Response:
        self.requests += 1
        response = self.client.request(method, url, **kw)
        if response.status_code != expect:
            raise AssertionError(
                f"{self.username}: {method} {url} answered {response.status_code}, "
                f"expected {expect}: {response.text[:300]!r}"
            )
        return response

    def _with_retries(self, method: str, url: str, expect: int, **kw: Any) -> httpx.Response:
        """A page load or a form post, tried again (up to ~20 s) when the connection
        fails, as a student would press reload."""
        end = time.monotonic() + 20
        while True:
            try:
                return self._send(method, url, expect, **kw)
            except httpx.TransportError as exc:
                self.failures[f"{method} {type(exc).__name__}"] += 1
                if time.monotonic() > end:
                    raise
                time.sleep(0.5)

    def start(self, quiz_id: int) -> None:
        """Log in, open the quiz, start it, load the attempt page."""
        form = self._with_retries("GET", "/login", 200).text
        self._with_retries(
            "POST",
            "/login",
            302,
            data={"csrf_token": _form_token(form), "username": self.username, "password": PASSWORD},
        )
        page = self._with_retries("GET", f"/quiz/{quiz_id}", 200).text
        started = self._with_retries(
            "POST", f"/quiz/{quiz_id}/start", 302, data={"csrf_token": _form_token(page)}
        )
        match = ATTEMPT_URL.search(started.headers["location"])
        assert match, started.headers["location"]
        self.attempt_id = int(match.group(1))
        page = self._with_retries("GET", f"/attempt/{self.attempt_id}", 200).text
        meta, base = CSRF_META.search(page), SEQ_BASE.search(page)
        assert meta and base, "no csrf-token meta or data-seq-base on the attempt page"
        self.csrf, self.seq_base = meta.group(1), int(base.group(1))

    def change(self) -> None:
        """The student types a new answer into one box."""
        self.counter += 1
        seq = self.seq_base + self.counter
        slot = self.rng.randint(1, SLOTS)
        value = str(self.counter)  # unique per student: a stored value names its save
        self.pending[slot] = (seq, value)
        self.sent[(slot, seq)] = value

    def flush(self) -> None:
        """Send every pending answer once; stop at the first failure (and back off)."""
        for slot in sorted(self.pending):
            seq, value = self.pending[slot]
            if not self._save(slot, seq, value):
                self.backoff = min(2.0, max(0.2, self.backoff * 2))
                return
            self.backoff = 0.0
            if self.pending.get(slot) == (seq, value):
                del self.pending[slot]

    def _save(self, slot: int, seq: int, value: str) -> bool:
        self.requests += 1
        try:
            response = self.client.put(
                f"/api/attempts/{self.attempt_id}/answers/{slot}",
                json={"value": value, "seq": seq},
                headers={"X-CSRFToken": self.csrf},
            )
        except httpx.TransportError as exc:
            self.failures[type(exc).__name__] += 1
            return False
        if response.status_code != 200:
            self.failures[f"HTTP {response.status_code}"] += 1
            if response.status_code not in (502, 503, 504):
                self.protocol_errors.append(
                    f"slot {slot} seq {seq}: HTTP {response.status_code} {response.text[:200]!r}"
                )
            return False
        body = response.json()
        status, stored_seq = body.get("status"), body.get("seq")
        # The server's ack: this save is stored ("saved"), was already stored (a repeat
        # of a save whose answer was lost: "unchanged", same seq), or a newer one is.
        valid = body.get("slot") == slot and (
            (status in ("saved", "unchanged") and stored_seq == seq)
            or (status == "stale" and isinstance(stored_seq, int) and stored_seq > seq)
        )
        if not valid:
            self.protocol_errors.append(f"slot {slot} seq {seq}: not an ack: {body!r}")
            return False
        self.acks.append(Ack(slot, seq, value, status, time.monotonic()))
        return True

    def run(self, go: threading.Event, stop: threading.Event) -> None:
        go.wait()
        while not stop.is_set():
            self.change()
            self.flush()
            stop.wait(self.backoff or self.rng.uniform(0.3, 0.9))
        # The page stays open until everything typed is acknowledged (bounded).
        end = time.monotonic() + FLUSH_SECONDS
        while self.pending and time.monotonic() < end:
            self.flush()
            if self.pending:
                time.sleep(self.backoff or 0.2)

    def submit(self) -> None:
        page = self._with_retries("GET", f"/attempt/{self.attempt_id}/submit", 200).text
        done = self._with_retries(
            "POST",
            f"/attempt/{self.attempt_id}/submit",
            302,
            data={"csrf_token": _form_token(page)},
        )
        assert done.headers["location"].endswith(f"/attempt/{self.attempt_id}/result"), (
            done.headers["location"]
        )


def _form_token(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token in the form"
    return match.group(1) or match.group(2)


class Load:
    """N students in N threads: start the quiz, then change and autosave answers until
    told to stop, then send what is still pending. Exceptions in a thread are kept and
    raised by `join`."""

    def __init__(
        self,
        base_url: str,
        names: list[str],
        seed: int = 7,
        student: type[Student] | None = None,
    ) -> None:
        make = student or Student
        self.students = [make(n, base_url, random.Random(seed + i)) for i, n in enumerate(names)]
        self.go = threading.Event()
        self.stop = threading.Event()
        self.errors: list[str] = []
        self._threads: list[threading.Thread] = []

    def start_attempts(self, quiz_id: int, timeout: float = 120) -> None:
        def start(student: Student) -> None:
            try:
                student.start(quiz_id)
            except Exception as exc:  # reported by the caller, not lost in a thread
                self.errors.append(f"{student.username} start: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=start, args=(s,)) for s in self.students]
        for t in threads:
            t.start()
        end = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.1, end - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "students still starting after the bound"
        assert not self.errors, "\n".join(self.errors)

    def run_in_background(self) -> None:
        def run(student: Student) -> None:
            try:
                student.run(self.go, self.stop)
            except Exception as exc:
                self.errors.append(f"{student.username} run: {type(exc).__name__}: {exc}")

        self._threads = [threading.Thread(target=run, args=(s,)) for s in self.students]
        for t in self._threads:
            t.start()
        self.go.set()

    def finish(self, timeout: float = FLUSH_SECONDS + 30) -> None:
        self.stop.set()
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, end - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "students still saving"
        assert not self.errors, "\n".join(self.errors)

    def close(self) -> None:
        self.go.set()
        self.stop.set()
        for t in self._threads:
            t.join(timeout=FLUSH_SECONDS + 30)
        for s in self.students:
            s.close()

    def acks_since(self, moment: float) -> int:
        return sum(1 for s in self.students for a in s.acks if a.at > moment)

    def summary(self) -> dict[str, Any]:
        failures: Counter[str] = Counter()
        for s in self.students:
            failures.update(s.failures)
        statuses = Counter(a.status for s in self.students for a in s.acks)
        return {
            "students": len(self.students),
            "requests": sum(s.requests for s in self.students),
            "saves_sent": sum(len(s.sent) for s in self.students),
            "acks": sum(len(s.acks) for s in self.students),
            "ack_statuses": dict(statuses),
            "failed_sends": dict(failures),
            "still_pending": sum(len(s.pending) for s in self.students),
        }


def timeline(load: Load, seconds: float, events: list[tuple[float, Callable[[], None]]]) -> None:
    """Run the load for `seconds`, calling each event at its offset (in order)."""
    t0 = time.monotonic()
    load.run_in_background()
    for at, action in sorted(events, key=lambda e: e[0]):
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        action()
    rest = t0 + seconds - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    load.finish()


# --- ending the attempts and checking ---------------------------------------------------


def end_attempts(load: Load, env: dict[str, str]) -> int:
    """Half the students submit (the form, through whatever URL they use); the examiner
    closes the quiz now for the other half (SWEEP_GROUP), and once their deadline plus
    grace has passed, `quizapp attempts finalise-expired` sweeps them. Returns the
    sweeper's count."""
    for student in load.students[0::2]:
        student.submit()
    close = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    cli(
        env,
        "overrides",
        "set",
        QUIZ_KEY,
        "--group",
        SWEEP_GROUP,
        "--closes",
        close.isoformat(),
        "--reason",
        "fault test: end the attempts now",
        # Closing now ends running attempts earlier: the CLI asks for that to be said.
        "--allow-shorter",
    )
    # The override never moves a deadline before now, so every swept attempt's deadline
    # is at most a few seconds from here: wait for deadline + grace, with a margin.
    time.sleep(max(0.0, (close - datetime.now(UTC)).total_seconds()) + GRACE_SECONDS + 3)
    out = cli(env, "attempts", "finalise-expired")
    match = re.search(r"Finalised (\d+) expired attempt", out)
    assert match, out
    return int(match.group(1))


def check_nothing_lost(database_url: str, load: Load) -> dict[str, int]:
    """The data checks, from the database after everything:
    - for every slot, the newest acknowledged save is stored, or a newer save the
      client sent (never a value the client did not send);
    - every acknowledged save is in the append-only answer log, once;
    - every attempt is finished (submitted or timed out), graded once: one mark per
      slot, a score equal to their sum, a receipt, one submit/finalise audit event.
    """
    from quizapp.db import make_engine
    from quizapp.domain.timing import AttemptState
    from quizapp.models import Answer, AnswerLog, Attempt, AuditEvent, Mark

    problems: list[str] = []
    by_attempt = {s.attempt_id: s for s in load.students}
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            ids = list(by_attempt)
            stored = {
                (a.attempt_id, a.slot): (a.seq, a.value)
                for a in session.scalars(select(Answer).where(Answer.attempt_id.in_(ids)))
            }
            logged: Counter[tuple[int, int, int]] = Counter()
            log_values: dict[tuple[int, int, int], Any] = {}
            for row in session.scalars(select(AnswerLog).where(AnswerLog.attempt_id.in_(ids))):
                key = (row.attempt_id, row.slot, row.seq)
                logged[key] += 1
                log_values[key] = row.value
            attempts = {
                a.id: a for a in session.scalars(select(Attempt).where(Attempt.id.in_(ids)))
            }
            marks: dict[int, Counter[int]] = defaultdict(Counter)
            mark_sum: dict[int, Any] = defaultdict(int)
            for m in session.scalars(select(Mark).where(Mark.attempt_id.in_(ids))):
                marks[m.attempt_id][m.slot] += 1
                mark_sum[m.attempt_id] += m.marks
            finishes = Counter(
                session.scalars(
                    select(AuditEvent.attempt_id).where(
                        AuditEvent.attempt_id.in_(ids),
                        AuditEvent.action.in_(("submit", "finalise")),
                    )
                )
            )
            swept = session.scalar(
                select(func.count())
                .select_from(Attempt)
                .where(Attempt.id.in_(ids), Attempt.state == AttemptState.TIMED_OUT)
            )
    finally:
        engine.dispose()

    checked = 0
    for attempt_id, student in by_attempt.items():
        newest: dict[int, Ack] = {}
        for ack in student.acks:
            if ack.slot not in newest or ack.seq > newest[ack.slot].seq:
                newest[ack.slot] = ack
            key = (attempt_id, ack.slot, ack.seq)
            if ack.status == "stale":
                continue  # a newer save was stored instead; this one is not logged
            if logged[key] != 1 or log_values.get(key) != ack.value:
                problems.append(
                    f"attempt {attempt_id} slot {ack.slot}: acknowledged seq {ack.seq} "
                    f"({ack.status}) logged {logged[key]} time(s), value {log_values.get(key)!r}"
                )
        checked += len(student.acks)
        for slot, ack in newest.items():
            have = stored.get((attempt_id, slot))
            if have is None or have[0] < ack.seq:
                problems.append(
                    f"attempt {attempt_id} slot {slot}: acknowledged seq {ack.seq} "
                    f"value {ack.value!r}, stored {have!r}: LOST"
                )
        for (a_id, slot), (seq, value) in stored.items():
            if a_id == attempt_id and student.sent.get((slot, seq)) != value:
                problems.append(
                    f"attempt {attempt_id} slot {slot}: stored seq {seq} value {value!r} "
                    "was never sent"
                )
        for (a_id, slot, seq), count in logged.items():
            if a_id == attempt_id and (count != 1 or (slot, seq) not in student.sent):
                problems.append(
                    f"attempt {attempt_id} slot {slot}: log has seq {seq} {count} time(s)"
                )
        for slot, (seq, _value) in student.pending.items():
            problems.append(f"attempt {attempt_id} slot {slot}: seq {seq} never acknowledged")
        attempt = attempts.get(attempt_id)
        if attempt is None:
            problems.append(f"attempt {attempt_id} missing")
            continue
        if attempt.state is AttemptState.IN_PROGRESS or attempt.finished_at is None:
            problems.append(f"attempt {attempt_id} not finished: {attempt.state}")
        if attempt.score is None or attempt.receipt is None:
            problems.append(f"attempt {attempt_id} not graded (score {attempt.score})")
        elif attempt.score != mark_sum[attempt_id]:
            problems.append(
                f"attempt {attempt_id}: score {attempt.score} != marks {mark_sum[attempt_id]}"
            )
        if sorted(marks[attempt_id].items()) != [(s, 1) for s in range(1, SLOTS + 1)]:
            problems.append(f"attempt {attempt_id}: marks per slot {dict(marks[attempt_id])}")
        if finishes[attempt_id] != 1:
            problems.append(f"attempt {attempt_id}: {finishes[attempt_id]} submit/finalise events")

    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:50])
    return {"acks_checked": checked, "attempts": len(by_attempt), "timed_out": swept or 0}
