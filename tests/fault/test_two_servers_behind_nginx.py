"""Two app servers (two gunicorns, one database) behind a real nginx; one of them is
killed with -9 (master and workers) in the middle of an autosave load while the students
go on through nginx. Once on SQLite (both servers on this machine share the WAL
database) and once on PostgreSQL when it answers on 127.0.0.1:5432.

nginx passes a failed request on to the other server: PUT (the autosave) always, POST
for the student's paths too (`non_idempotent`, justified in harness.NGINX_CONF: each is
safe to repeat). The client also resends anything unacknowledged, as the attempt page's
queue does. Every acknowledged save must be stored; every attempt finalised and graded.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

import tests.fault.nginx_required  # noqa: F401  (first: skip, or fail on CI, without nginx)
from tests.fault.harness import (
    LOAD_SECONDS,
    AppServer,
    Load,
    Nginx,
    Phases,
    check_nothing_lost,
    end_attempts,
    postgres_database,
    postgres_unreachable,
    prepare_database,
    served,
    server_env,
    timeline,
)

STUDENTS = 30


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_one_of_two_app_servers_killed_behind_nginx(database, tmp_path, processes, summary):
    phases = Phases()
    with ExitStack() as stack:
        if database == "postgresql":
            why = postgres_unreachable()
            if why:
                pytest.skip(f"PostgreSQL variant skipped: no server at 127.0.0.1:5432 ({why})")
            url = stack.enter_context(postgres_database())
        else:
            url = f"sqlite:///{tmp_path / 'quizapp.db'}"
        # Servers stop before the PostgreSQL database is dropped (ExitStack order).
        stack.callback(lambda: [p.stop() for p in reversed(processes)])
        quiz_id, names = prepare_database(url, tmp_path / "bank", STUDENTS)
        env = server_env(url, tmp_path)
        survivor = AppServer("app-a", env, tmp_path / "app-a.log")
        victim = AppServer("app-b", env, tmp_path / "app-b.log")
        processes.extend([survivor, victim])
        survivor.start()
        victim.start()
        proxy = Nginx(tmp_path / "nginx", [survivor, victim])
        processes.append(proxy)
        proxy.start()
        phases.mark("setup")
        load = Load(proxy.url, names)
        killed_at: list[float] = []
        served_before: list[int] = []

        def kill_one_server() -> None:
            served_before.append(served(victim.log))
            victim.crash()
            killed_at.append(time.monotonic())

        try:
            load.start_attempts(quiz_id)
            phases.mark("log in and start")
            timeline(load, LOAD_SECONDS, [(LOAD_SECONDS / 3, kill_one_server)])
            phases.mark("load")
            after_kill = load.acks_since(killed_at[0])
            swept = end_attempts(load, env)
            phases.mark("submit, close, sweep")
            checked = check_nothing_lost(url, load)
            phases.mark("check")
        finally:
            load.close()
        stats = load.summary()
        passed_on = proxy.passed_on()

    errors = [e for s in load.students for e in s.protocol_errors]
    assert not errors, "\n".join(errors[:20])
    # Both servers carried saves before the kill, and the students went on after it.
    assert served_before[0] > 0 and served(survivor.log) > 0, (served_before, stats)
    assert after_kill > 0, stats
    assert swept == len(names[1::2]) == checked["timed_out"], (swept, checked)
    summary(
        f"nginx + 2 app servers, one kill -9 ({database}, {STUDENTS} students, "
        f"{LOAD_SECONDS:.0f} s): {stats['requests']} requests, {stats['saves_sent']} saves "
        f"sent, {stats['acks']} acknowledged {stats['ack_statuses']}, all "
        f"{checked['acks_checked']} stored and logged; the killed server had answered "
        f"{served_before[0]} saves; client-visible failures {stats['failed_sends']}; "
        f"nginx passed on to the survivor {passed_on}; {after_kill} acks after the kill; "
        f"{len(names) - swept} submitted, {swept} swept, all graded; {phases}"
    )
