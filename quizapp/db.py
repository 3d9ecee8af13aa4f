"""Engines and sessions: SQLite in WAL mode with foreign keys, or PostgreSQL with a pool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, scoped_session, sessionmaker

if TYPE_CHECKING:
    from flask import Flask


def make_engine(url: str, *, pool_size: int = 4, max_overflow: int = 4, **overrides: Any) -> Engine:
    """An engine for `url`. The pool settings apply to PostgreSQL: a sync gunicorn worker
    serves one request at a time, so a few connections per process are plenty, and the
    server's max_connections must cover workers x (pool_size + max_overflow) x machines
    (docs/scaling.md)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **overrides
        )
        _configure_sqlite(engine)
        return engine
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_pre_ping": True,  # a database restart costs one retried checkout, not a 500
        "pool_timeout": 10,
    }
    options.update(overrides)
    return create_engine(url, **options)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL: an acknowledged save survives power loss, not only a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # Reads use a deferred BEGIN: in WAL mode they never block writers. A transaction
        # that will write asks for IMMEDIATE (see begin_write): a deferred one that reads
        # and then writes fails with "database is locked" whatever busy_timeout says,
        # when another writer committed in between.
        immediate = conn.get_execution_options().get(WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITE_OPTION = "quizapp_write"


def begin_write(session: Session) -> None:
    """Start a transaction that will write.

    On SQLite this takes the write lock up front (BEGIN IMMEDIATE), waiting up to
    busy_timeout for other writers; a read-only transaction still open in this session
    is ended first. On PostgreSQL nothing is needed: row locks and conditional updates
    in the statements themselves do the guarding.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={WRITE_OPTION: True})


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One transaction that writes, the only shape a service writes in: it begins as
    begin_write does (the write lock up front on SQLite), commits when the block ends,
    and rolls back if anything in it raises, so nothing is ever half-written. Inner
    steps never commit or roll back; a service that must give up without an error
    raises, and the block undoes everything."""
    begin_write(session)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


def end_snapshot(session: Session) -> None:
    """End a read-only transaction: its snapshot (to see what others committed since) and,
    on SQLite, its read mark, before work that must hold nothing (grading). Loaded
    objects stay loaded (expire_on_commit is off); nothing is written, since nothing
    was changed in a read."""
    if session.in_transaction():
        session.commit()


def rows_matched(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through `Session.execute` matched. The session
    returns a CursorResult for these statements, but SQLAlchemy types `Session.execute` as
    returning a plain Result (it cannot promise a cursor for every statement), so the one
    cast lives here."""
    return cast("CursorResult[Any]", result).rowcount


def discard(session: Session) -> None:
    """After an error outside a unit of work (the sweeper's recovery): whatever
    transaction is open is rolled back, and the session can go on with the next task."""
    session.rollback()


class Database:
    """One engine and a request/thread-scoped session; attached to an app with init_app."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None
        self._scoped: scoped_session[Session] | None = None

    def configure(self, url: str, **engine_options: Any) -> None:
        if self.engine is not None:
            self.engine.dispose()
        self.engine = make_engine(url, **engine_options)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._scoped = scoped_session(self._factory)

    def init_app(self, app: Flask) -> None:
        self.configure(
            app.config["QUIZAPP_DATABASE_URL"],
            pool_size=app.config["QUIZAPP_DB_POOL_SIZE"],
            max_overflow=app.config["QUIZAPP_DB_MAX_OVERFLOW"],
        )
        app.extensions["quizapp_db"] = self

        @app.teardown_appcontext
        def remove_session(_exc: BaseException | None) -> None:
            self.remove()

    @property
    def session(self) -> Session:
        assert self._scoped is not None, "database not configured"
        return self._scoped()

    def remove(self) -> None:
        if self._scoped is not None:
            self._scoped.remove()

    @contextmanager
    def new_session(self) -> Iterator[Session]:
        assert self._factory is not None, "database not configured"
        with self._factory() as session:
            yield session
