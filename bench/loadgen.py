"""The load generator: asyncio + httpx, run by bench/run.py in its own process.

    loadgen.py PHASE --base URL --state FILE --master PID [--options JSON]

Phases: storm, login, steady, saturate, submit, ceiling. Each prints one JSON object on
standard output: request counts, latencies (ms), errors, the wall time of the measured
window and the CPU spent in it (whole machine from /proc/stat, the gunicorn master and
its workers from /proc/<pid>/stat, this generator from os.times(), and the OpenID
provider's process, when there is one, from /proc/<pid>/stat: not quizapp's cost, so
never counted as the server's).

Students sign in with a password (GET /login, POST /login: argon2) or, with
`"sign_in": "sso"` in the options, by single sign-on: the whole redirect dance of a
browser that is not yet signed in at the university (app → provider's /auth →
its sign-in form → posted → back to the app's callback, which exchanges the code for the
ID token at the provider and signs in). Provider requests are labelled "IdP ...".

Simulated students keep their cookies, attempt ids, CSRF tokens and next sequence
numbers in the state file between phases (a JSON list written by the storm phase).

The saturate and ceiling phases may run as several generators at once (options `part`,
`parts`, `start_at`): each drives its own share of the students and of the concurrency,
begins measuring at `start_at`, reports its raw latencies, and writes its students'
state to its own file (part_state_path); run.py merges them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.cookiejar
import json
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

CLK_TCK = os.sysconf("SC_CLK_TCK")
TIMEOUT = httpx.Timeout(60.0)
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=0)

INPUT_TAG = re.compile(r"<input\b[^>]*>", re.S)
ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')
CSRF_INPUT = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"'
)
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SEQ_BASE = re.compile(r'data-seq-base="(\d+)"')
ATTEMPT_URL = re.compile(r"/attempt/(\d+)")


# --- measuring ------------------------------------------------------------------------


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _proc_times(pid: int) -> tuple[int, int]:
    """(own utime+stime, waited-for children's cutime+cstime) in jiffies."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0, 0
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(x) for x in (task / "children").read_text().split()]
    return found


def server_cpu(master: int) -> int:
    """Jiffies spent by the gunicorn master and all its workers, living or exited
    (an exited worker's time moves into the master's cutime/cstime when reaped)."""
    own, reaped = _proc_times(master)
    return own + reaped + sum(_proc_times(pid)[0] for pid in children(master))


class Meter:
    def __init__(self, master: int, provider: int = 0) -> None:
        self.master = master
        self.provider = provider  # the OpenID provider's PID (0: none)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.error_examples: list[str] = []
        self.requests = 0
        self.parts = 1

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.m0 = machine_cpu()
        self.s0 = server_cpu(self.master)
        self.g0 = sum(os.times()[:2])
        self.p0 = _proc_times(self.provider)[0] if self.provider else 0

    def stop(self) -> None:
        self.t1 = time.perf_counter()
        self.m1 = machine_cpu()
        self.s1 = server_cpu(self.master)
        self.g1 = sum(os.times()[:2])
        self.p1 = _proc_times(self.provider)[0] if self.provider else 0

    def error(self, label: str, detail: str) -> None:
        self.errors[label] += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(f"{label}: {detail}"[:300])

    async def request(
        self,
        client: httpx.AsyncClient,
        student: dict[str, Any] | None,
        label: str,
        method: str,
        url: str,
        expect: int | tuple[int, ...],
        jar: str = "cookies",
        **kw: Any,
    ) -> httpx.Response | None:
        """One request; `student` carries the cookies (one shared client for everyone),
        the app's in student["cookies"], the OpenID provider's in another `jar`."""
        if student is not None and student.get(jar):
            cookie = "; ".join(f"{k}={v}" for k, v in student[jar].items())
            kw["headers"] = {**kw.get("headers", {}), "Cookie": cookie}
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.requests += 1
            self.latencies[label].append((time.perf_counter() - started) * 1000)
            self.error(label, f"{type(exc).__name__} {exc}")
            return None
        self.requests += 1
        self.latencies[label].append((time.perf_counter() - started) * 1000)
        if student is not None:
            student.setdefault(jar, {}).update(response.cookies.items())
        if response.status_code not in (expect if isinstance(expect, tuple) else (expect,)):
            self.error(label, f"HTTP {response.status_code} {response.text[:200]!r}")
            return None
        return response

    def report(self, operations: int, **extra: Any) -> dict[str, Any]:
        wall = self.t1 - self.t0
        every = sorted(x for values in self.latencies.values() for x in values)
        busy = (self.m1[0] - self.m0[0]) * 1000 / CLK_TCK
        total = (self.m1[1] - self.m0[1]) * 1000 / CLK_TCK
        return {
            "wall_s": wall,
            "requests": self.requests,
            "operations": operations,
            "errors": sum(self.errors.values()),
            "errors_by_label": dict(self.errors),
            "error_examples": self.error_examples,
            "latency_ms": summary(every),
            "latency_by_label_ms": {k: summary(sorted(v)) for k, v in self.latencies.items()},
            "machine_cpu_ms": busy,
            "machine_capacity_ms": total,
            "server_cpu_ms": (self.s1 - self.s0) * 1000 / CLK_TCK,
            "generator_cpu_ms": (self.g1 - self.g0) * 1000,
            "provider_cpu_ms": (self.p1 - self.p0) * 1000 / CLK_TCK,
            # Several generators share the phase (run.py merges their percentiles).
            **({"latencies_raw": every} if self.parts > 1 else {}),
            **extra,
        }


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}

    def pct(p: float) -> float:
        return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))]

    return {
        "n": len(values),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": values[-1],
    }


# --- students -------------------------------------------------------------------------


class NoCookies(http.cookiejar.DefaultCookiePolicy):
    """The shared client keeps no cookies: each student's travel in its state."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


def shared_client(base: str) -> httpx.AsyncClient:
    """One client for all simulated students: an httpx client costs ~27 ms of CPU to make
    (its TLS context), which would be charged to the server's numbers on 2 cores. gunicorn's
    sync workers close every connection, so each request opens a new one anyway."""
    return httpx.AsyncClient(
        base_url=base,
        cookies=http.cookiejar.CookieJar(policy=NoCookies()),
        timeout=TIMEOUT,
        limits=LIMITS,
        follow_redirects=False,
    )


def csrf_from_form(html: str) -> str | None:
    match = CSRF_INPUT.search(html)
    return (match.group(1) or match.group(2)) if match else None


def answerable_slots(html: str) -> list[dict[str, Any]]:
    """Slots whose answer is one radio choice or one text box, with values to send."""
    by_name: dict[str, list[dict[str, str]]] = defaultdict(list)
    for tag in INPUT_TAG.findall(html):
        attrs = dict(ATTR.findall(tag))
        name = attrs.get("name", "")
        if name.startswith("slot-"):
            by_name[name].append(attrs)
    slots = []
    for name, inputs in by_name.items():
        slot = int(name.split("-", 1)[1])
        kinds = {i.get("type", "text") for i in inputs}
        if kinds == {"radio"} and len(inputs) >= 2:
            slots.append({"slot": slot, "kind": "radio", "choices": [i["value"] for i in inputs]})
        elif kinds <= {"text", "number"} and len(inputs) == 1:
            slots.append({"slot": slot, "kind": "text", "choices": []})
    return slots


def answer_value(slot: dict[str, Any], n: int) -> str:
    if slot["kind"] == "radio":
        return slot["choices"][n % len(slot["choices"])]
    return str(1 + n % 97)  # a number: a numeric or a short-text box takes it


async def sign_in_password(
    meter: Meter, c: httpx.AsyncClient, student: dict[str, Any], password: str
) -> bool:
    """GET /login for the form's token, POST /login: argon2 verifies the password."""
    r = await meter.request(c, student, "GET /login", "GET", "/login", 200)
    token = csrf_from_form(r.text) if r else None
    if not token:
        return False
    r = await meter.request(
        c,
        student,
        "POST /login",
        "POST",
        "/login",
        302,
        data={"csrf_token": token, "username": student["username"], "password": password},
    )
    student["landing"] = r.headers.get("location", "") if r is not None else ""
    return r is not None


REDIRECT = (302, 303)


async def sign_in_sso(meter: Meter, c: httpx.AsyncClient, student: dict[str, Any]) -> bool:
    """The redirect dance of a browser with no session at the provider yet: the login page
    (which offers the single sign-on button), /login/sso, the provider's authorization
    endpoint, its sign-in form, the form posted, the provider's redirect back, the app's
    callback (which calls the provider's token endpoint itself, server to server)."""
    student["idp_cookies"] = {}
    if not await meter.request(c, student, "GET /login", "GET", "/login", 200):
        return False
    r = await meter.request(c, student, "GET /login/sso", "GET", "/login/sso", 302)
    url = r.headers.get("location", "") if r else ""
    if not url.startswith("http"):
        if r is not None:
            meter.error("GET /login/sso", f"not sent to the provider: {url!r}")
        return False
    r = await meter.request(c, student, "IdP GET /auth", "GET", url, REDIRECT, jar="idp_cookies")
    if r is None:
        return False
    form_url = str(r.url.join(r.headers.get("location", "")))
    r = await meter.request(
        c, student, "IdP GET /interaction/<uid>", "GET", form_url, 200, jar="idp_cookies"
    )
    if r is None:
        return False
    r = await meter.request(
        c,
        student,
        "IdP POST /interaction/<uid>/login",
        "POST",
        f"{form_url}/login",
        REDIRECT,
        jar="idp_cookies",
        data={"account": student["subject"]},
    )
    if r is None:
        return False
    url = str(r.url.join(r.headers.get("location", "")))
    r = await meter.request(
        c, student, "IdP GET /auth/<uid>", "GET", url, REDIRECT, jar="idp_cookies"
    )
    if r is None:
        return False
    url = r.headers.get("location", "")
    if "/login/sso/callback?" not in url or "code=" not in url:
        meter.error("IdP GET /auth/<uid>", f"not sent back with a code: {url[:200]!r}")
        return False
    r = await meter.request(
        c,
        student,
        "GET /login/sso/callback",
        "GET",
        url[url.index("/login/sso/callback") :],
        302,
    )
    student["landing"] = r.headers.get("location", "") if r is not None else ""
    return r is not None


async def sign_in(
    meter: Meter, c: httpx.AsyncClient, student: dict[str, Any], opts: dict[str, Any]
) -> bool:
    """A fresh browser signs in (the app's cookies and the provider's start empty)."""
    student["cookies"] = {}
    if opts.get("sign_in", "password") == "sso":
        return await sign_in_sso(meter, c, student)
    return await sign_in_password(meter, c, student, opts["password"])


async def storm_one(
    meter: Meter,
    c: httpx.AsyncClient,
    student: dict[str, Any],
    opts: dict[str, Any],
    login_ms: list[float],
) -> bool:
    t = time.perf_counter()
    if not await sign_in(meter, c, student, opts):
        return False
    login_ms.append((time.perf_counter() - t) * 1000)
    quiz_id = opts["quiz_id"]
    # With one quiz open the sign-in lands on its start page (issue 17); otherwise a
    # student goes through the dashboard, as before.
    landed = student.get("landing", "").endswith(f"/quiz/{quiz_id}")
    if not landed and not await meter.request(c, student, "GET /", "GET", "/", 200):
        return False
    r = await meter.request(c, student, "GET /quiz/<id>", "GET", f"/quiz/{quiz_id}", 200)
    token = csrf_from_form(r.text) if r else None
    if not token:
        meter.error("GET /quiz/<id>", "no start form (attempt already started?)")
        return False
    r = await meter.request(
        c,
        student,
        "POST /quiz/<id>/start",
        "POST",
        f"/quiz/{quiz_id}/start",
        302,
        data={"csrf_token": token},
    )
    match = ATTEMPT_URL.search(r.headers.get("location", "")) if r else None
    if not match:
        return False
    attempt_id = int(match.group(1))
    r = await meter.request(c, student, "GET /attempt/<id>", "GET", f"/attempt/{attempt_id}", 200)
    if r is None:
        return False
    meta, base_seq = CSRF_META.search(r.text), SEQ_BASE.search(r.text)
    slots = answerable_slots(r.text)
    if not meta or not base_seq or not slots:
        meter.error("GET /attempt/<id>", "no csrf-token meta, data-seq-base or answerable slot")
        return False
    student.update(
        attempt_id=attempt_id,
        csrf=meta.group(1),
        seq_base=int(base_seq.group(1)),
        saves=0,
        slots=slots,
    )
    return True


async def save_one(meter: Meter, c: httpx.AsyncClient, student: dict[str, Any]) -> bool:
    n = student["saves"]
    student["saves"] = n + 1
    slot = student["slots"][n % len(student["slots"])]
    # Cycle through the slots, changing each answer every time it comes round, so that
    # every save is a real write (an unchanged answer is acknowledged without one).
    value = answer_value(slot, n // len(student["slots"]))
    r = await meter.request(
        c,
        student,
        "PUT /api/attempts/<id>/answers/<slot>",
        "PUT",
        f"/api/attempts/{student['attempt_id']}/answers/{slot['slot']}",
        200,
        json={"value": value, "seq": student["seq_base"] + n + 1},
        headers={"X-CSRFToken": student["csrf"]},
    )
    if r is None:
        return False
    status = r.json().get("status")
    if status != "saved":
        meter.error("save status", f"status {status!r}")
        return False
    return True


# --- phases ---------------------------------------------------------------------------


async def phase_storm(
    args: argparse.Namespace, meter: Meter, c: httpx.AsyncClient, state: list[dict[str, Any]]
) -> dict:
    opts = args.options
    gate = asyncio.Semaphore(opts.get("concurrency", 100))
    journey: list[float] = []
    login: list[float] = []

    async def one(student: dict[str, Any]) -> bool:
        async with gate:
            t = time.perf_counter()
            ok = await storm_one(meter, c, student, opts, login)
            journey.append((time.perf_counter() - t) * 1000)
            return ok

    meter.start()
    tasks = [asyncio.ensure_future(one(s)) for s in state]
    done, pending = await asyncio.wait(tasks, timeout=opts.get("timeout", 120))
    for task in pending:
        task.cancel()
        meter.error("storm", "not started within the phase's time limit")
    if pending:
        await asyncio.wait(pending)
    meter.stop()
    ok = sum(1 for t in done if not t.cancelled() and t.exception() is None and t.result())
    return meter.report(
        ok,
        students=len(state),
        started=ok,
        journey_ms=summary(sorted(journey)),
        login_ms=summary(sorted(login)),
        sign_in=opts.get("sign_in", "password"),
    )


async def phase_login(
    args: argparse.Namespace, meter: Meter, c: httpx.AsyncClient, state: list[dict[str, Any]]
) -> dict:
    """The sign-in step alone, every student at once from a fresh browser (at most
    `concurrency` in flight): the server's CPU in this window is the sign-in's alone."""
    opts = args.options
    gate = asyncio.Semaphore(opts.get("concurrency", 100))
    login: list[float] = []

    async def one(student: dict[str, Any]) -> bool:
        async with gate:
            t = time.perf_counter()
            ok = await sign_in(meter, c, student, opts)
            if ok:
                login.append((time.perf_counter() - t) * 1000)
            return ok

    meter.start()
    tasks = [asyncio.ensure_future(one(s)) for s in state]
    done, pending = await asyncio.wait(tasks, timeout=opts.get("timeout", 120))
    for task in pending:
        task.cancel()
        meter.error("login", "not signed in within the phase's time limit")
    if pending:
        await asyncio.wait(pending)
    meter.stop()
    ok = sum(1 for t in done if not t.cancelled() and t.exception() is None and t.result())
    return meter.report(
        ok,
        students=len(state),
        login_ms=summary(sorted(login)),
        sign_in=opts.get("sign_in", "password"),
    )


async def phase_steady(
    args: argparse.Namespace, meter: Meter, c: httpx.AsyncClient, state: list[dict[str, Any]]
) -> dict:
    """Open loop: each student saves once every `interval` seconds, at a random phase."""
    opts = args.options
    interval, duration = opts.get("interval", 10.0), opts.get("duration", 20.0)
    active = [s for s in state if s.get("attempt_id")]
    done = 0
    lateness: list[float] = []

    async def student_loop(student: dict[str, Any], t0: float) -> None:
        nonlocal done
        at = t0 + random.uniform(0, interval)
        while at < t0 + duration:
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lateness.append(max(0.0, -delay) * 1000)
            if await save_one(meter, c, student):
                done += 1
            at += interval

    meter.start()
    t0 = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(student_loop(s, t0) for s in active)), timeout=duration + 60
    )
    meter.stop()
    return meter.report(
        done,
        students=len(active),
        offered_per_s=len(active) / interval,
        send_lateness_ms=summary(sorted(lateness)),
    )


async def closed_loop(concurrency: int, duration: float, max_ops: int, operation: Any) -> int:
    done = 0
    issued = 0
    deadline = time.perf_counter() + duration

    async def worker(k: int) -> None:
        nonlocal done, issued
        while time.perf_counter() < deadline and issued < max_ops:
            issued += 1
            if await operation(k):
                done += 1

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return done


async def start_together(opts: dict[str, Any]) -> None:
    """Several generators of one phase begin their measured window at the same moment
    (`start_at`, epoch seconds, set by run.py after all of them are launched)."""
    start_at = opts.get("start_at")
    if start_at:
        await asyncio.sleep(max(0.0, start_at - time.time()))


async def phase_saturate(
    args: argparse.Namespace, meter: Meter, c: httpx.AsyncClient, state: list[dict[str, Any]]
) -> dict:
    """Closed loop: `concurrency` students, each saving again as soon as acknowledged."""
    opts = args.options
    part, parts = opts.get("part", 0), opts.get("parts", 1)
    # With several generators each takes its own students (every parts-th of the state
    # file), so no two generators ever save for one student.
    active = [s for i, s in enumerate(state) if s.get("attempt_id") and i % parts == part]
    concurrency = min(opts.get("concurrency", 32), len(active))
    random.shuffle(active)
    # Each worker drives its own students in turn (never two saves of one student at once).
    groups = [active[k::concurrency] for k in range(concurrency)]
    turn = [0] * concurrency

    async def operation(k: int) -> bool:
        student = groups[k][turn[k] % len(groups[k])]
        turn[k] += 1
        return await save_one(meter, c, student)

    await start_together(opts)
    meter.start()
    done = await closed_loop(
        concurrency, opts.get("duration", 8.0), opts.get("max_ops", 20000), operation
    )
    meter.stop()
    return meter.report(done, concurrency=opts.get("concurrency", 32), students=len(active))


async def phase_submit(
    args: argparse.Namespace, meter: Meter, c: httpx.AsyncClient, state: list[dict[str, Any]]
) -> dict:
    opts = args.options
    gate = asyncio.Semaphore(opts.get("concurrency", 100))
    active = [s for s in state if s.get("attempt_id")]
    last_submit = 0.0

    async def one(student: dict[str, Any]) -> bool:
        nonlocal last_submit
        async with gate:
            attempt = student["attempt_id"]
            r = await meter.request(
                c, student, "GET /attempt/<id>/submit", "GET", f"/attempt/{attempt}/submit", 200
            )
            token = csrf_from_form(r.text) if r else None
            if not token:
                return False
            r = await meter.request(
                c,
                student,
                "POST /attempt/<id>/submit",
                "POST",
                f"/attempt/{attempt}/submit",
                302,
                data={"csrf_token": token},
            )
            last_submit = max(last_submit, time.time())
            if r is None or not r.headers.get("location", "").endswith("/result"):
                return False
            student["submitted"] = True
            return True

    meter.start()
    results = await asyncio.wait_for(
        asyncio.gather(*(one(s) for s in active)), timeout=opts.get("timeout", 120)
    )
    meter.stop()
    return meter.report(sum(results), students=len(active), last_submit_epoch=last_submit)


async def phase_ceiling(
    args: argparse.Namespace, meter: Meter, c: httpx.AsyncClient, state: list[dict[str, Any]]
) -> dict:
    opts = args.options
    concurrency = opts.get("concurrency", 32)
    first = opts.get("part", 0) * 100_000  # each generator's clients write their own keys

    async def operation(k: int) -> bool:
        r = await meter.request(c, None, "POST /write", "POST", f"/write/{first + k}", 200)
        return r is not None

    await start_together(opts)
    meter.start()
    done = await closed_loop(
        concurrency, opts.get("duration", 8.0), opts.get("max_ops", 20000), operation
    )
    meter.stop()
    return meter.report(done, concurrency=concurrency)


PHASES = {
    "storm": phase_storm,
    "login": phase_login,
    "steady": phase_steady,
    "saturate": phase_saturate,
    "submit": phase_submit,
    "ceiling": phase_ceiling,
}


def part_state_path(state: Path, part: int) -> Path:
    """Where generator `part` of several leaves the students' state."""
    return state.with_name(f"{state.stem}.part{part}.json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=sorted(PHASES))
    parser.add_argument("--base", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--master", type=int, required=True)
    parser.add_argument("--provider", type=int, default=0, help="the OpenID provider's PID")
    parser.add_argument("--options", type=json.loads, default={})
    args = parser.parse_args()
    state = json.loads(args.state.read_text()) if args.state.exists() else []
    meter = Meter(args.master, args.provider)
    meter.parts = args.options.get("parts", 1)

    async def run() -> dict[str, Any]:
        async with shared_client(args.base) as client:
            return await PHASES[args.phase](args, meter, client, state)

    result = asyncio.run(run())
    # The login phase leaves the state as it found it: its new sessions would not match
    # the CSRF tokens that the later phases' saves send.
    # One of several generators writes its own file, which run.py merges (its students
    # are every parts-th entry: the rest it left as it found them).
    if args.phase in ("storm", "steady", "saturate", "submit"):
        target = args.state
        if meter.parts > 1:
            target = part_state_path(args.state, args.options.get("part", 0))
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(target)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
