"""The submit wave with and without LTI grade passback (issue 14, "Done when").

    .venv/bin/python bench/ags_wave.py [--students 200] [--database sqlite|postgresql]
                                       [--post-delay 0.5]

Twice, each on a fresh database and a real gunicorn server (bench/run.py's harness):
a start storm, then every student submits at once (bench/loadgen.py's `submit` phase,
concurrency 100). The second time every student came from a VLE (a resource link with
a line item, each student linked to a platform `sub`), so each finalisation also queues
a score in the outbox; meanwhile a sender runs as cron would (`send_due` every 0.5 s, in
this process) against the tests' platform (tests/lti/platform.py + ags_service.py) on
127.0.0.1, which takes `--post-delay` seconds to answer each score: a slow VLE. It
prints the wave's time, when every attempt was graded, and how long the scores took to
reach the gradebook, with duplicates counted by the gradebook. Every process started
here is stopped here, by PID.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import run as harness  # bench/ is sys.path[0] when run as a script

ROOT = harness.ROOT
sys.path.insert(0, str(ROOT))


def link_students_to_a_vle(url: str, quiz: int, usernames: list[str], platform: Any) -> None:
    """What the students' launches would have left: the platform registered, the tool's
    key, the link to the quiz with its line item, and each student's `sub`."""
    from sqlalchemy import insert, select

    from quizapp.db import Database
    from quizapp.domain.lti import AGS_SCORE_SCOPE
    from quizapp.models import LtiPerson, LtiResourceLink, User
    from quizapp.services.lti import add_platform, rotate_tool_key

    database = Database()
    database.configure(url)
    now = datetime.now(UTC)
    with database.new_session() as session:
        registered = add_platform(
            session,
            issuer=platform.issuer,
            client_id=platform.client_id,
            auth_login_url=platform.auth_login_url,
            auth_token_url=platform.auth_token_url,
            jwks_url=platform.jwks_url,
            deployments=[platform.deployment_id],
            now=now,
            name="Bench VLE",
        )
        rotate_tool_key(session, now)
        ids = {name: id_ for name, id_ in session.execute(select(User.username, User.id))}
        session.execute(
            insert(LtiResourceLink).values(
                platform_id=registered.id,
                resource_link_id="bench-link",
                title="Bench quiz",
                quiz_id=quiz,
                lineitem_url=platform.url + "/lineitems/1",
                lineitems_url=platform.url + "/lineitems",
                ags_scopes=[AGS_SCORE_SCOPE],
                updated_at=now,
            )
        )
        session.execute(
            insert(LtiPerson),
            [
                {
                    "platform_id": registered.id,
                    "sub": f"sub-{name}",
                    "user_id": ids[name],
                    "linked_at": now,
                }
                for name in usernames
            ],
        )
        session.commit()
    database.engine.dispose() if database.engine else None


class Sender:
    """`quizapp lti scores send` as cron runs it, every `interval` seconds, in a thread."""

    def __init__(self, url: str, interval: float = 0.5) -> None:
        from quizapp.db import Database

        self.database = Database()
        self.database.configure(url)
        self.interval = interval
        self.sent = 0
        self.runs = 0
        self.first_sent_at = 0.0
        self.last_sent_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        from quizapp.services.lti_access import AccessTokens
        from quizapp.services.lti_scores import send_due

        tokens = AccessTokens()
        while not self._stop.is_set():
            with self.database.new_session() as session:
                report = send_due(session, datetime.now(UTC), tokens=tokens)
            self.runs += 1
            if report.sent:
                self.first_sent_at = self.first_sent_at or time.time()
                self.last_sent_at = time.time()
                self.sent += report.sent
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)
        if self.database.engine is not None:
            self.database.engine.dispose()


def outbox_states(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from quizapp.db import make_engine
    from quizapp.models import LtiScore

    engine = make_engine(url)
    with engine.connect() as conn:
        found = {
            state: count
            for state, count in conn.execute(
                select(LtiScore.state, func.count()).group_by(LtiScore.state)
            )
        }
    engine.dispose()
    return {str(k.value if hasattr(k, "value") else k): int(v) for k, v in found.items()}


def one_wave(args: argparse.Namespace, ags: bool) -> dict[str, Any]:
    from tests.lti.ags_service import install_gradebook
    from tests.lti.platform import running_platform

    tmp = Path(tempfile.mkdtemp(prefix="quizapp-ags-bench-"))
    app_url, _ = harness.prepare_database(args.database, tmp)
    env = {
        **os.environ,
        "QUIZAPP_DATABASE_URL": app_url,
        "QUIZAPP_INSTANCE_PATH": str(tmp / "instance"),
        "QUIZAPP_SECRET_KEY": "bench-secret-key-not-for-production",
        "GUNICORN_ACCESSLOG": "/dev/null",
    }
    os.environ.update(
        {k: env[k] for k in ("QUIZAPP_DATABASE_URL", "QUIZAPP_SECRET_KEY", "QUIZAPP_INSTANCE_PATH")}
    )
    result: dict[str, Any] = {"ags": ags}
    with running_platform(lambda: datetime.now(UTC)) as platform:
        gradebook = install_gradebook(platform, delay=args.post_delay)
        subprocess.run(
            [str(harness.BIN / "quizapp"), "demo"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        names = harness.add_students(app_url, args.students, "ags")
        state = tmp / "students.json"
        state.write_text(json.dumps([{"username": n, "subject": n} for n in names]))
        harness.exam_day(app_url)
        quiz = harness.quiz_id(app_url)
        if ags:
            link_students_to_a_vle(app_url, quiz, names, platform)
            from quizapp.db import Database
            from quizapp.services.lti import tool_jwks

            keys = Database()
            keys.configure(app_url)

            def published() -> dict[str, Any]:
                with keys.new_session() as session:
                    return tool_jwks(session)

            platform.tool_jwks = published
        server = harness.Server("quizapp:create_app()", env, tmp / "gunicorn.log", [])
        server.wait_ready("/login")
        sender = Sender(app_url) if ags else None
        try:
            options = {
                "quiz_id": quiz,
                "password": harness.PASSWORD,
                "concurrency": 100,
                "timeout": 180,
                "sign_in": "password",
            }
            storm = harness.run_phase(server, "storm", state, options, 240)
            harness.log(f"  storm {storm['wall_s']:.2f} s, errors {storm['errors']}")
            if sender is not None:
                sender.start()
            began = time.time()
            submit = harness.run_phase(
                server, "submit", state, {"concurrency": 100, "timeout": 120}, 180
            )
            graded = harness.count_graded(app_url, quiz, names)
            result.update(
                submit_wall_s=submit["wall_s"],
                submit_errors=submit["errors"],
                graded=graded,
                graded_checked_after_s=time.time() - submit["last_submit_epoch"],
                p50_ms=submit.get("latency_ms", {}).get("p50"),
                p99_ms=submit.get("latency_ms", {}).get("p99"),
            )
            if sender is not None:
                deadline = time.time() + 600
                while sender.sent < args.students and time.time() < deadline:
                    time.sleep(0.2)
                sender.stop()
                result.update(
                    scores_sent=sender.sent,
                    all_scores_in_gradebook_s=sender.last_sent_at - began,
                    gradebook_scores=len(gradebook.accepted),
                    gradebook_users=len(gradebook.results),
                    duplicates=len(gradebook.duplicates()),
                    outbox=outbox_states(app_url),
                    sender_runs=sender.runs,
                )
                keys.engine.dispose() if keys.engine else None
        finally:
            if sender is not None and not sender._stop.is_set():
                sender.stop()
            server.stop()
            harness.drop_database(args.database)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--post-delay", type=float, default=0.5, help="seconds the VLE takes per score"
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.database == "postgresql" and not harness.postgres_answers():
        harness.log("PostgreSQL does not answer on 127.0.0.1:5432: nothing to do.")
        return 2
    atexit.register(harness.stop_everything)
    rows = []
    for ags in (False, True):
        harness.log(f"submit wave of {args.students}, AGS {'on' if ags else 'off'}")
        rows.append(one_wave(args, ags))
    print()
    for r in rows:
        line = (
            f"{args.database}, {args.students} students, AGS {'on ' if r['ags'] else 'off'}: "
            f"submit wave {r['submit_wall_s']:.2f} s "
            f"(p50 {r['p50_ms'] or 0:.0f} ms, p99 {r['p99_ms'] or 0:.0f} ms), "
            f"errors {r['submit_errors']}, graded {r['graded']} "
            f"(checked {r['graded_checked_after_s']:.2f} s after the last submit)"
        )
        if r["ags"]:
            line += (
                f"; {r['scores_sent']} scores in the VLE gradebook "
                f"{r['all_scores_in_gradebook_s']:.1f} s after the wave began "
                f"(VLE {args.post_delay} s per score, sender every 0.5 s), "
                f"{r['gradebook_users']} students, {r['duplicates']} duplicates, "
                f"outbox {r['outbox']}"
            )
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
