"""Engine settings from the environment: PostgreSQL's pool is sized per app process."""

from __future__ import annotations

from pathlib import Path

import pytest

from quizapp.config import settings_from_env
from quizapp.db import Database, make_engine

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/nowhere"  # never connected to


def test_postgresql_pool_takes_the_configured_size_and_overflow() -> None:
    engine = make_engine(PG_URL, pool_size=3, max_overflow=7)
    try:
        assert engine.pool.size() == 3
        assert engine.pool._max_overflow == 7  # type: ignore[attr-defined]
        assert engine.pool._pre_ping is True  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_pool_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QUIZAPP_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("QUIZAPP_DB_POOL_SIZE", "2")
    monkeypatch.setenv("QUIZAPP_DB_MAX_OVERFLOW", "1")
    settings = settings_from_env(tmp_path)
    assert (settings["QUIZAPP_DB_POOL_SIZE"], settings["QUIZAPP_DB_MAX_OVERFLOW"]) == (2, 1)

    class App:
        config = {**settings, "QUIZAPP_DATABASE_URL": PG_URL}
        extensions: dict[str, object] = {}

        def teardown_appcontext(self, f: object) -> object:
            return f

    database = Database()
    database.init_app(App())
    assert database.engine is not None
    try:
        assert database.engine.pool.size() == 2
    finally:
        database.engine.dispose()


def test_sqlite_ignores_pool_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
