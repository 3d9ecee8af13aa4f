"""kill -9 in the middle of an autosave load, on one machine (SQLite, WAL):

- a gunicorn worker, twice (the master forks new ones; the requests they held fail at
  the client, which resends them like the attempt page's queue does);
- the whole server, master and workers at once, then a restart on the same port;
- and, for comparison, a graceful restart (kill -HUP the master: new workers, the old
  ones finish their request first), where not even a request may fail.

Afterwards every save the client saw acknowledged is stored (or a newer one it sent),
is in the answer log once, and every attempt ends finalised and graded: half by the
students' submit, half by `quizapp attempts finalise-expired` after the examiner
closes the quiz.
"""

from __future__ import annotations

import time

import pytest

from tests.fault.harness import (
    LOAD_SECONDS,
    AppServer,
    Load,
    Phases,
    check_nothing_lost,
    end_attempts,
    prepare_database,
    server_env,
    timeline,
)

STUDENTS = 30


@pytest.mark.parametrize("fault", ["worker", "server", "reload"])
def test_kill_mid_load_loses_no_acknowledged_save(fault, tmp_path, processes, summary):
    phases = Phases()
    url = f"sqlite:///{tmp_path / 'quizapp.db'}"
    quiz_id, names = prepare_database(url, tmp_path / "bank", STUDENTS)
    env = server_env(url, tmp_path)
    server = AppServer("app", env, tmp_path / "server.log")
    processes.append(server)
    server.start()
    phases.mark("setup")
    load = Load(server.url, names)
    faults: list[tuple[float, str]] = []

    def kill_worker() -> None:
        pid = server.kill_worker()
        faults.append((time.monotonic(), f"worker {pid}"))

    def crash_and_restart() -> None:
        server.crash()
        down = time.monotonic()
        faults.append((down, "master and workers"))
        server.start()
        faults.append((time.monotonic(), f"restarted after {time.monotonic() - down:.1f} s"))

    def reload() -> None:
        old, new = server.reload()
        faults.append((time.monotonic(), f"HUP: workers {old} replaced by {new}"))

    try:
        load.start_attempts(quiz_id)
        phases.mark("log in and start")
        if fault == "worker":
            events = [(LOAD_SECONDS / 3, kill_worker), (2 * LOAD_SECONDS / 3, kill_worker)]
        elif fault == "server":
            events = [(LOAD_SECONDS / 3, crash_and_restart)]
        else:
            events = [(LOAD_SECONDS / 3, reload)]
        timeline(load, LOAD_SECONDS, events)
        phases.mark("load")
        after_fault = load.acks_since(faults[-1][0])
        killed = {int(what.split()[1]) for _, what in faults if what.startswith("worker ")}
        live_workers = server.workers()
        swept = end_attempts(load, env)
        phases.mark("submit, close, sweep")
        checked = check_nothing_lost(url, load)
        phases.mark("check")
    finally:
        load.close()

    stats = load.summary()
    errors = [e for s in load.students for e in s.protocol_errors]
    assert not errors, "\n".join(errors[:20])
    # The clients went on saving after the fault (acknowledged saves after it).
    assert after_fault > 0, stats
    if fault == "reload":
        # A graceful restart is invisible: every request answered, nothing resent.
        assert stats["failed_sends"] == {}, stats
    if fault == "worker":
        assert len(live_workers) == 2 and not killed & set(live_workers), (killed, live_workers)
    assert swept == len(names[1::2]) == checked["timed_out"], (swept, checked)
    summary(
        f"{'kill -HUP' if fault == 'reload' else 'kill -9'} {fault} (SQLite, "
        f"{STUDENTS} students, {LOAD_SECONDS:.0f} s): "
        f"{stats['requests']} requests, {stats['saves_sent']} saves sent, "
        f"{stats['acks']} acknowledged {stats['ack_statuses']}, all {checked['acks_checked']} "
        f"found stored and logged; failed sends (resent) {stats['failed_sends']}; "
        f"{after_fault} acks after the fault; faults: {[w for _, w in faults]}; "
        f"{len(names) - swept} submitted, {swept} swept, all graded; {phases}"
    )
