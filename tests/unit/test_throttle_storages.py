"""The sign-in throttle reads and writes its counters in batches on the application's
database (get_many, clear_many, incr_many: issue 17's sign-in storm) and one key at a
time on any other `limits` storage: both must come to the same situations."""

from __future__ import annotations

from pathlib import Path

import pytest

from quizapp.cli import migrate
from quizapp.ratelimit import LoginThrottle, default_storage_uri


@pytest.fixture
def throttles(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'counters.db'}"
    migrate(url)
    database = LoginThrottle(default_storage_uri(url))
    memory = LoginThrottle("memory://")
    assert hasattr(database.storage, "get_many") and not hasattr(memory.storage, "get_many")
    yield database, memory
    database.close()


def test_batched_and_per_key_counters_agree(throttles) -> None:  # type: ignore[no-untyped-def]
    database, memory = throttles
    steps = [
        ("failed", "alice", "10.0.0.1", None),
        ("failed", "alice", "10.0.0.1", None),
        ("failed", "alice", "10.0.0.2", "device-1"),
        ("succeeded", "alice", "10.0.0.1", None),
        ("succeeded", "bob", "10.0.0.1", None),
        ("succeeded", "bob", "10.0.0.1", None),  # a second time: nothing more earned
        ("failed", "carol", None, None),
    ] + [("failed", "dave", "10.0.0.9", None)] * 7
    for action, username, address, device in steps:
        for throttle in (database, memory):
            if action == "failed":
                throttle.failed(username, address, device)
            else:
                throttle.succeeded(username, address)
        for who, where, device_id in [
            ("alice", "10.0.0.1", None),
            ("alice", "10.0.0.2", "device-1"),
            ("bob", "10.0.0.1", None),
            ("carol", None, None),
            ("dave", "10.0.0.9", None),
        ]:
            a = database.situation(who, where, device_id)
            b = memory.situation(who, where, device_id)
            # Waits are measured against the clock at each read: equal to the second.
            assert a.account_wait.total_seconds() == pytest.approx(
                b.account_wait.total_seconds(), abs=1.5
            )
            assert a.address_wait.total_seconds() == pytest.approx(
                b.address_wait.total_seconds(), abs=1.5
            )
            assert (a.device_failures, a.address_trusted, a.trusted_device) == (
                b.device_failures,
                b.address_trusted,
                b.trusted_device,
            )
    assert database.situation("dave", "10.0.0.9", None).account_wait.total_seconds() > 0
    assert database.status(address="10.0.0.1").trusted_accounts == 2
