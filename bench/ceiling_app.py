"""The ceiling: the smallest WSGI app that does what every autosave must do at least,
one SQL write in one transaction, served by the same gunicorn settings as quizapp.

Why a second app: quizapp has no trivial write endpoint and the benchmark must not
change the app, so bench/run.py starts this under the same gunicorn.conf.py (same worker
count, sync workers) with the same engine settings (quizapp.db.make_engine: SQLite in
WAL mode, synchronous=FULL, busy_timeout; or the PostgreSQL pool) and the same write
path (BEGIN IMMEDIATE on SQLite, as quizapp.db.begin_write asks for). Each request
inserts one row into its own table, bench_ceiling. Nothing of quizapp's schema is used.

Run by bench/run.py as:
  gunicorn --config gunicorn.conf.py 'bench.ceiling_app:create_app()'
with BENCH_CEILING_DATABASE_URL set.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, insert

from quizapp.db import WRITE_OPTION, make_engine

metadata = MetaData()
ceiling = Table(
    "bench_ceiling",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("note", String(64), nullable=False),
)


def create_table(url: str) -> None:
    engine = make_engine(url)
    metadata.create_all(engine)
    engine.dispose()


def create_app() -> Any:
    # bench/run.py creates the table before starting gunicorn (create_table): two
    # workers creating it at once would race.
    engine = make_engine(os.environ["BENCH_CEILING_DATABASE_URL"])
    write_options = {WRITE_OPTION: True} if engine.dialect.name == "sqlite" else {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/health":
            body = b"ok"
        else:
            with engine.connect().execution_options(**write_options) as conn, conn.begin():
                conn.execute(
                    insert(ceiling).values(at=time.time(), note=environ.get("PATH_INFO", "")[:64])
                )
            body = b'{"ok": true}'
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app
