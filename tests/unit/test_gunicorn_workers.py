"""The default worker count follows the database kind (gunicorn.conf.py, issue 17)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, object]:
    for name in ("GUNICORN_WORKERS", "QUIZAPP_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


@pytest.mark.parametrize(
    ("url", "cores", "workers"),
    [
        ("postgresql+psycopg://db.example/quizapp", 2, 4),
        ("postgresql+psycopg://db.example/quizapp", 4, 8),
        ("postgresql://db.example/quizapp", 1, 2),
        ("sqlite:////srv/quizapp/quizapp.db", 1, 2),
        ("sqlite:////srv/quizapp/quizapp.db", 2, 2),
        ("sqlite:////srv/quizapp/quizapp.db", 8, 8),
        ("", 4, 4),  # no URL: the default SQLite file in the instance folder
    ],
)
def test_default_workers_by_database(url: str, cores: int, workers: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    default_workers = _settings(monkeypatch)["default_workers"]
    assert default_workers(url, cores) == workers  # type: ignore[operator]


def test_the_settings_read_the_database_url_and_an_explicit_count_wins(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import multiprocessing

    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: 2)
    assert _settings(monkeypatch, QUIZAPP_DATABASE_URL="postgresql://h/q")["workers"] == 4
    assert _settings(monkeypatch, QUIZAPP_DATABASE_URL="sqlite:///x.db")["workers"] == 2
    explicit = _settings(monkeypatch, QUIZAPP_DATABASE_URL="postgresql://h/q", GUNICORN_WORKERS="3")
    assert explicit["workers"] == 3
