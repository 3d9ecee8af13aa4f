"""Fault tests (issue #7 part 3): kill -9 a gunicorn worker, the whole server, or one of
two app servers behind nginx in the middle of an autosave load, and prove that nothing
the client saw acknowledged is lost and that every attempt ends finalised and graded.

They take about two minutes of real servers, so they are not part of `make test`:
`make fault` runs them (and CI does, after the suite). This folder is collected only
when it is named on the command line (`pytest tests/fault`, or a file in it) or when
QUIZAPP_FAULT_TESTS=1; a plain `pytest` says so in one line.

Everything runs on 127.0.0.1; every process is stopped by PID in a `finally`, also when
a test fails. Summaries (requests, acknowledgements, retries) are printed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SUMMARIES: list[str] = []
_skipped_folder = False


def _named_on_command_line(config: pytest.Config) -> bool:
    if os.environ.get("QUIZAPP_FAULT_TESTS") == "1":
        return True
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    global _skipped_folder
    is_test_module = collection_path.parent == HERE and collection_path.name.startswith("test_")
    if is_test_module and not _named_on_command_line(config):
        _skipped_folder = True
        return True
    return None


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    if _skipped_folder:
        return ["tests/fault: not collected here (about 2 minutes of real servers): `make fault`"]
    return []


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if SUMMARIES:
        terminalreporter.section("fault tests: what happened")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


@pytest.fixture
def summary() -> Callable[[str], None]:
    return SUMMARIES.append


@pytest.fixture
def processes() -> Iterator[list]:
    """Servers and proxies a test starts; all stopped afterwards, pass or fail (in
    reverse order: the proxy before the app servers)."""
    started: list = []
    try:
        yield started
    finally:
        errors = []
        for proc in started:
            # Shown with a failing test's output ("Captured stdout teardown").
            for line in getattr(proc, "error_summary", list)():
                print(line)
        for proc in reversed(started):
            try:
                proc.stop()
            except Exception as exc:  # stop the others anyway
                errors.append(f"{proc}: {exc}")
        assert not errors, errors
