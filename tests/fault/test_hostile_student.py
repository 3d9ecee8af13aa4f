"""One hostile student cannot hurt the others (issue 12, "Done when"): real gunicorn
(production settings, 2 sync workers), 30 students autosaving, and one more student who
saves hostile values to every question, then submits.

Baseline and hostile windows alternate on the same server, PAIRS of each, WINDOW_SECONDS
long (after a short warm-up that is not counted), so that work elsewhere on this shared
machine is as likely to land in either kind; every save's latency is pooled per kind.
- baseline: the 30 students autosave (a new number into one of three boxes every
  0.3-0.9 s, as in the kill -9 tests, each starting at a random moment of the window's
  first second: students do not type in step);
- hostile: the same load, while the hostile student sends values that once cost minutes
  of CPU or broke an attempt (1e999999999, a lone surrogate, NUL, 100,000-character
  answers, an expression nested 5,000 deep, a 100,000-deep JSON body) and values at the
  bounds that are stored (graded at submit), spread over the hostile windows; in the
  last one, submits.

Checked: every hostile request is answered at once with the documented status (422 for a
value beyond a question type's bound, 400 for text that cannot be stored or a body too
deep, 200 for what is within bounds); the submit is answered at once; nobody else saw an
error; and the others' save p99 in the hostile windows is at most 2 x the baseline
windows' + SLACK_SECONDS (so that a very quiet baseline, ~10 ms, cannot make the test
flaky). The machine running the tests is shared: when the p99s of a round disagree, the
round is measured again with a new hostile student, up to ROUNDS; the cost of a hostile
value is deterministic (one that stalls the server stalls it in every round), a burst of
someone else's work is not. Each hostile student that ran is checked in full.

To prove "finished with a needs-staff mark" for real, the server is
tests/fault/hostile_app.py: the app with one injected fault (grading a short-text answer
containing GRADING_FAILURE_SENTINEL raises), since no bounded answer makes grading fail by
itself. The hostile student's last short-text answer is that sentinel; the attempt must
end submitted, that answer (and only that one) "grading failed", the staff scores CSV
must say "grading failed" in its needs_staff column, and the quiz overview must list the
student under "Needs staff".
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.fault.harness import (
    PASSWORD,
    SLOTS,
    AppServer,
    Load,
    Phases,
    Student,
    postgres_database,
    postgres_unreachable,
    prepare_database,
    server_env,
    timeline,
    write_short_bank,
)
from tests.fault.hostile_app import GRADING_FAILURE_SENTINEL

STUDENTS = 30
PAIRS = int(os.environ.get("QUIZAPP_HOSTILE_PAIRS", "4"))
WINDOW_SECONDS = float(os.environ.get("QUIZAPP_HOSTILE_WINDOW_SECONDS", "2"))
WARM_UP_SECONDS = 1.5  # the first requests of each worker and connection: not counted
WINDOWS = ["baseline", "hostile"] * PAIRS
SLACK_SECONDS = 0.05
# This machine is shared: another suite's burst of work can land in hostile windows and
# not in baseline ones. A round whose p99s disagree is measured again with a new hostile
# student (their cost is deterministic: a value that stalls the server stalls it in
# every round); the test fails when every round disagrees.
ROUNDS = 3
PROMPT_SECONDS = 2.0  # every hostile request, and the submit, is answered within this
STAFF = "examiner"
DEEP_JSON = 100_000

# The hostile student's questions, after the three numeric ones the load uses (slots
# 1-3): one of each type whose answers are typed text.
EXTRA_QUESTIONS = """questions:
  - id: hostile-text
    type: short_text
    stem: Which optimiser divides each step by a moving root mean square of the gradients?
    answers:
      - text: RMSprop
      - pattern: "rms[ -]?prop(agation)?"
  - id: hostile-essay
    type: essay
    stem: Explain what overfitting is.
    max_words: 300
  - id: hostile-algebraic
    type: algebraic
    stem: Give the derivative of $x^2$ with respect to $x$.
    answer: "2*x"
    variables: [x]
  - id: hostile-matrix
    type: matrix
    stem: Give the $2 \\\\times 2$ identity matrix.
    answer:
      - [1, 0]
      - [0, 1]
    tolerance: 0
  - id: hostile-calculated
    type: calculated
    stem: What is {{a}} + {{b}}?
    parameters:
      a: {values: [1, 2, 3]}
      b: {values: [4, 5]}
    answer: "a + b"
    tolerance: 0
  - id: hostile-parts
    type: multi_part
    stem: Two sums.
    parts:
      - id: a
        label: $1 + 1$
        answer: 2
        tolerance: 0
      - id: b
        label: $2 + 2$
        answer: 4
        tolerance: 0
"""
EXTRA_KEYS = ["text", "essay", "algebraic", "matrix", "calculated", "parts"]
# slot of each extra question: the quiz lists them after the SLOTS numeric ones
SLOT = {key: SLOTS + 1 + i for i, key in enumerate(EXTRA_KEYS)}
NUMERIC = 1

# (slot, value sent as the JSON "value", expected status). The 200s are hostile but
# within the bounds: stored, and graded at submit (in milliseconds).
HOSTILE_SAVES: list[tuple[int, Any, int]] = [
    (NUMERIC, "1e999999999", 422),
    (NUMERIC + 1, "-1e-999999999", 422),
    (NUMERIC + 2, "1" * 100_000, 422),
    (NUMERIC, "\ud800abc", 400),
    (NUMERIC, "12\x00", 400),
    (SLOT["text"], "a" * 100_000, 422),
    (SLOT["essay"], "x" * 100_000, 422),
    (SLOT["algebraic"], "(" * 5000 + "x" + ")" * 5000, 422),
    (SLOT["matrix"], "1e999999999", 422),
    (SLOT["matrix"], "1 " * 50_000, 422),
    (SLOT["calculated"], "1e999999999", 422),
    (SLOT["parts"], ["1e999999999", "4"], 422),
    (SLOT["parts"], ["\ud800", "4"], 400),
    (NUMERIC, "1e1000", 200),
    (NUMERIC + 1, "abc", 200),
    (NUMERIC + 2, "9" * 30, 200),
    (SLOT["text"], "a" * 40 + "b", 200),
    (SLOT["essay"], ("lorem ipsum " * 4100)[:49_000], 200),
    (SLOT["algebraic"], "9^9^9^9", 200),
    (SLOT["algebraic"], "x^(9^9^9)", 200),
    (SLOT["algebraic"], "exp(exp(exp(exp(exp(x)))))", 200),
    (SLOT["matrix"], "1 0; 0 1", 200),
    (SLOT["calculated"], "-1e-1000", 200),
    (SLOT["parts"], ["2", "1e1000"], 200),
]


def write_hostile_bank(folder: Path) -> Path:
    """The fault tests' short bank (three numeric questions, quiz QUIZ_KEY) with one
    question of each typed-answer type added to the quiz after them."""
    write_short_bank(folder)
    (folder / "questions" / "hostile.yaml").write_text(EXTRA_QUESTIONS)
    quiz = folder / "quizzes" / "fault.yaml"
    quiz.write_text(
        quiz.read_text() + "".join(f"    - question: hostile-{key}\n" for key in EXTRA_KEYS)
    )
    return folder


@dataclass
class TimedStudent(Student):
    """A load student who also records how long each autosave took (failures included),
    and starts typing at a random moment of each window's first second."""

    latencies: list[float] = field(default_factory=list)

    def run(self, go: threading.Event, stop: threading.Event) -> None:
        # Students do not all type at the same instant: without this, the 30 saves sent
        # together at the start of each window would queue behind each other and decide
        # the p99 of every window by themselves.
        go.wait()
        stop.wait(self.rng.uniform(0, 0.9))
        super().run(go, stop)

    def _save(self, slot: int, seq: int, value: str) -> bool:
        started = time.perf_counter()
        try:
            return super()._save(slot, seq, value)
        finally:
            self.latencies.append(time.perf_counter() - started)


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass
class HostileRun:
    """What the hostile student did: each request's status and time, the submit."""

    saves: list[tuple[int, str, int, int, float]] = field(default_factory=list)
    submit_seconds: float | None = None
    submit_location: str = ""
    after_submit: tuple[int, dict[str, Any]] | None = None
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HostileRequest:
    slot: int
    label: str
    expected: int
    body: bytes  # encoded before the load starts: the test process's own work (json.dumps
    # of 100,000 characters) must not slow down the load's client threads


class HostileStudent:
    """Sends hostile requests spread over the hostile windows, then the sentinel and the
    submit; each window's part runs in a thread and keeps every outcome in `run`."""

    def __init__(self, student: Student) -> None:
        self.student = student
        self.run = HostileRun()

    def _next_seq(self) -> int:
        self.student.counter += 1
        return self.student.seq_base + self.student.counter

    def requests(self) -> list[HostileRequest]:
        """HOSTILE_SAVES and a JSON body nested 100,000 deep (issue 12, item 5: 400, not
        a 500), with increasing sequence numbers. json.dumps escapes a lone surrogate as
        \\ud800: valid JSON text that decodes to a string Python cannot encode (issue 12,
        reproduction 2)."""
        out = [
            HostileRequest(
                slot,
                repr(value)[:40],
                expected,
                json.dumps({"value": value, "seq": self._next_seq()}).encode(),
            )
            for slot, value, expected in HOSTILE_SAVES
        ]
        deep = b'{"value": ' + b"[" * DEEP_JSON + b"]" * DEEP_JSON + b', "seq": 1}'
        out.insert(len(out) // 2, HostileRequest(SLOT["parts"], "100,000-deep JSON", 400, deep))
        return out

    def _put(self, request: HostileRequest) -> None:
        s = self.student
        started = time.perf_counter()
        response = s.client.put(
            f"/api/attempts/{s.attempt_id}/answers/{request.slot}",
            content=request.body,
            headers={"X-CSRFToken": s.csrf, "Content-Type": "application/json"},
        )
        seconds = time.perf_counter() - started
        status = response.status_code
        self.run.saves.append((request.slot, request.label, request.expected, status, seconds))
        if status != request.expected:
            self.run.errors.append(
                f"slot {request.slot} {request.label}: {status}, expected {request.expected}: "
                f"{response.text[:300]!r}"
            )

    def _submit(self) -> None:
        s = self.student
        started = time.perf_counter()
        page = s.client.get(f"/attempt/{s.attempt_id}/submit")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert page.status_code == 200 and token, (page.status_code, page.text[:300])
        done = s.client.post(f"/attempt/{s.attempt_id}/submit", data={"csrf_token": token.group(1)})
        self.run.submit_seconds = time.perf_counter() - started
        assert done.status_code == 302, (done.status_code, done.text[:300])
        self.run.submit_location = done.headers["location"]
        # A save after the submit is refused, and kept as evidence.
        late = s.client.put(
            f"/api/attempts/{s.attempt_id}/answers/{NUMERIC}",
            json={"value": "5", "seq": self._next_seq()},
            headers={"X-CSRFToken": s.csrf},
        )
        self.run.after_submit = (late.status_code, late.json())

    def acting(
        self, requests: list[HostileRequest], seconds: float, *, submit: bool
    ) -> Callable[[], None]:
        """What to run in a thread during one hostile window: `requests` spread over
        `seconds` (still faster than anyone types), then, if `submit`, the sentinel
        answer and the submit."""
        if submit:
            sentinel = json.dumps({"value": GRADING_FAILURE_SENTINEL, "seq": self._next_seq()})
            requests = [
                *requests,
                HostileRequest(SLOT["text"], GRADING_FAILURE_SENTINEL, 200, sentinel.encode()),
            ]
        pace = seconds / (len(requests) + 1)

        def act() -> None:
            try:
                for request in requests:
                    time.sleep(pace)
                    self._put(request)
                if submit:
                    self._submit()
            except Exception as exc:  # reported by the test, not lost in the thread
                self.run.errors.append(f"{type(exc).__name__}: {exc}")

        return act


def create_staff(database_url: str) -> None:
    from quizapp.db import make_engine
    from quizapp.models import Role, User
    from quizapp.services.users import hash_password

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            session.add(
                User(
                    username=STAFF,
                    name="Fault Examiner",
                    role=Role.STAFF,
                    password_hash=hash_password(PASSWORD),
                )
            )
            session.commit()
    finally:
        engine.dispose()


def staff_client(base_url: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(20.0, connect=5.0))
    form = client.get("/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert token, "no csrf_token on the login page"
    done = client.post(
        "/login", data={"csrf_token": token.group(1), "username": STAFF, "password": PASSWORD}
    )
    assert done.status_code == 302, (done.status_code, done.text[:300])
    return client


@dataclass
class Stored:
    state: str
    finish_reason: str | None
    failed_slots: list[int]
    statuses: dict[int, str]


def stored_attempt(database_url: str, attempt_id: int) -> Stored:
    from quizapp.db import make_engine
    from quizapp.models import Attempt, Mark

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            attempt = session.get(Attempt, attempt_id)
            assert attempt is not None
            statuses = {
                m.slot: str(m.status)
                for m in session.scalars(
                    select(Mark).where(Mark.attempt_id == attempt_id).order_by(Mark.id)
                )
            }
            return Stored(
                attempt.state.value,
                attempt.finish_reason.value if attempt.finish_reason else None,
                sorted(s for s, status in statuses.items() if status == "grading_failed"),
                statuses,
            )
    finally:
        engine.dispose()


def _database(kind: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    if kind == "sqlite":
        from contextlib import nullcontext

        return nullcontext(f"sqlite:///{tmp_path / 'quizapp.db'}")
    why = postgres_unreachable()
    if why:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 ({why})")
    return postgres_database(f"quizapp_hostile_{os.getpid()}")


@dataclass
class Round:
    hostile: HostileStudent
    baseline: list[float]
    during: list[float]
    window_p99: list[str]

    @property
    def p99s(self) -> tuple[float, float]:
        return p99(self.baseline), p99(self.during)

    @property
    def unchanged(self) -> bool:
        base, during = self.p99s
        return during <= 2 * base + SLACK_SECONDS

    def __str__(self) -> str:
        base, during = self.p99s
        saves = self.hostile.run.saves
        slowest = max(saves, key=lambda s: s[4])
        statuses: dict[int, int] = {}
        for _slot, _label, _expected, status, _seconds in saves:
            statuses[status] = statuses.get(status, 0) + 1
        return (
            f"others' save p99 {base * 1000:.0f} ms without, {during * 1000:.0f} ms with "
            f"({len(self.baseline)} and {len(self.during)} saves; max "
            f"{max(self.baseline) * 1000:.0f} / {max(self.during) * 1000:.0f} ms; per window "
            f"{' '.join(self.window_p99)}); hostile requests by status "
            f"{dict(sorted(statuses.items()))}, slowest {slowest[1]} "
            f"{slowest[4] * 1000:.0f} ms; submit "
            f"{(self.hostile.run.submit_seconds or 0) * 1000:.0f} ms"
        )


def run_window(load: Load, seconds: float, act: Callable[[], None] | None = None) -> list[float]:
    """The load for `seconds` (and `act` in a thread, if given); the others' latencies."""
    load.go, load.stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=act) if act else None
    timeline(load, seconds, [(0.1, thread.start)] if thread else [])
    if thread:
        thread.join(timeout=60)
        assert not thread.is_alive(), "the hostile student is still waiting for the server"
    window = [x for s in load.students for x in s.latencies]  # type: ignore[attr-defined]
    for student in load.students:
        student.latencies.clear()  # type: ignore[attr-defined]
    return window


def measure_round(load: Load, hostile: HostileStudent, quiz_id: int) -> Round:
    """Baseline and hostile windows, alternating; the hostile student's requests spread
    over the hostile windows, the submit in the last one."""
    hostile.student.start(quiz_id)
    requests = hostile.requests()
    share = math.ceil(len(requests) / PAIRS)
    acts = iter(
        hostile.acting(
            requests[i * share : (i + 1) * share], WINDOW_SECONDS - 0.6, submit=i == PAIRS - 1
        )
        for i in range(PAIRS)
    )
    out = Round(hostile, [], [], [])
    for kind in WINDOWS:
        window = run_window(load, WINDOW_SECONDS, next(acts) if kind == "hostile" else None)
        (out.during if kind == "hostile" else out.baseline).extend(window)
        out.window_p99.append(f"{kind[0]}{p99(window) * 1000:.0f}")
    return out


def check_hostile_run(hostile: HostileStudent) -> None:
    """Each hostile value answered at once with its status; the submit too; a save
    after it refused (409) and recorded."""
    run, attempt_id = hostile.run, hostile.student.attempt_id
    assert not run.errors, "\n".join(run.errors)
    assert len(run.saves) == len(HOSTILE_SAVES) + 2, run.saves
    slow = [s for s in run.saves if s[4] > PROMPT_SECONDS]
    assert not slow, slow
    assert run.submit_seconds is not None and run.submit_seconds < PROMPT_SECONDS, run
    assert run.submit_location.endswith(f"/attempt/{attempt_id}/result"), run
    assert run.after_submit is not None and run.after_submit[0] == 409, run.after_submit
    assert run.after_submit[1].get("recorded") is True, run.after_submit


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_one_hostile_student_does_not_slow_the_others(engine, tmp_path, processes, summary):  # type: ignore[no-untyped-def]
    phases = Phases()
    with _database(engine, tmp_path) as url:
        quiz_id, names = prepare_database(
            url, tmp_path / "bank", STUDENTS + ROUNDS, write_hostile_bank
        )
        create_staff(url)
        env = server_env(url, tmp_path)
        server = AppServer(
            "app", env, tmp_path / "server.log", app="tests.fault.hostile_app:create_app()"
        )
        processes.append(server)
        server.start()
        phases.mark("setup")

        load = Load(server.url, names[:STUDENTS], student=TimedStudent)
        rounds: list[Round] = []
        try:
            load.start_attempts(quiz_id)
            phases.mark("log in and start")
            run_window(load, WARM_UP_SECONDS)  # first requests of each worker: not counted
            for i in range(ROUNDS):
                hostile = HostileStudent(
                    Student(names[STUDENTS + i], server.url, random.Random(99 + i))
                )
                try:
                    rounds.append(measure_round(load, hostile, quiz_id))
                finally:
                    hostile.student.close()
                check_hostile_run(hostile)
                if rounds[-1].unchanged:
                    break
            phases.mark("load")

            staff = staff_client(server.url)
            try:
                scores = staff.get(f"/staff/quiz/{quiz_id}/scores.csv")
                overview = staff.get(f"/staff/quiz/{quiz_id}")
            finally:
                staff.close()
            stored = {
                r.hostile.student.attempt_id: stored_attempt(url, r.hostile.student.attempt_id)
                for r in rounds
            }
            server_log = server.log.read_text(errors="replace")
            phases.mark("check")
        finally:
            load.close()
            server.stop()  # before its database goes (PostgreSQL)

    for n, r in enumerate(rounds, start=1):
        summary(
            f"hostile student ({engine}, {STUDENTS} others autosaving, {PAIRS} x "
            f"baseline/hostile windows of {WINDOW_SECONDS:g} s), round {n}: {r}"
        )
    summary(f"hostile student ({engine}): {phases}")

    # The others: every save acknowledged, none failed, and, in a round, no slower than
    # 2 x baseline while the hostile student was at work.
    stats = load.summary()
    errors = [e for s in load.students for e in s.protocol_errors]
    assert not errors, "\n".join(errors[:20])
    assert stats["failed_sends"] == {} and stats["still_pending"] == 0, stats
    for r in rounds:
        assert len(r.during) > 5 * STUDENTS and len(r.baseline) > 5 * STUDENTS, r
    assert rounds[-1].unchanged, (
        f"in each of {len(rounds)} rounds the others' save p99 with the hostile student was "
        "more than 2 x the p99 without (+ 50 ms):\n" + "\n".join(map(str, rounds))
    )

    # Each hostile attempt finished, with exactly the injected failure waiting for staff;
    # everything else it stored graded (the essay waits for marking, as essays do).
    assert scores.status_code == 200, scores.text[:300]
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(scores.text.lstrip("\ufeff")))}
    assert all(rows[n]["needs_staff"] == "" for n in names[:STUDENTS]), rows
    assert overview.status_code == 200
    listed = re.search(r'<ul class="needs-staff-list">(.*?)</ul>', overview.text, re.S)
    assert listed, overview.text[:2000]
    for r in rounds:
        username, attempt_id = r.hostile.student.username, r.hostile.student.attempt_id
        attempt = stored[attempt_id]
        assert (attempt.state, attempt.finish_reason) == ("submitted", "submitted"), attempt
        assert attempt.failed_slots == [SLOT["text"]], attempt
        assert attempt.statuses[SLOT["essay"]] == "needs_marking", attempt
        assert f"grading failed: attempt {attempt_id} slot {SLOT['text']}" in server_log
        assert rows[username]["state"] == "submitted", rows[username]
        assert rows[username]["needs_staff"] == "grading failed: 1 answer(s) to mark", rows[
            username
        ]
        item = re.search(rf"<li>.*?>{re.escape(username)}</a>:(.*?)</li>", listed.group(1), re.S)
        assert item and "grading failed for 1 answer(s)" in item.group(1), listed.group(1)
    assert "InjectedGradingFault" in server_log
