"""The sign-in throttle's decision, as a table: who waits, how long, and why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quizapp.domain.throttle import SignInSituation, ThrottlePolicy, decide

POLICY = ThrottlePolicy()
S = timedelta(seconds=1)
ZERO = timedelta(0)


def situation(**changes) -> SignInSituation:
    base = {
        "trusted_device": False,
        "device_failures": 0,
        "account_wait": ZERO,
        "address_known": True,
        "address_trusted": False,
        "address_wait": ZERO,
    }
    return SignInSituation(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "wait", "reason"),
    [
        ({}, ZERO, ""),
        # the account is under attack: a new browser waits, at most the cap
        ({"account_wait": 7 * S}, 7 * S, "account"),
        ({"account_wait": 3600 * S}, POLICY.max_account_delay, "account"),
        # ... but the owner's usual browser does not wait at all
        ({"account_wait": 7 * S, "trusted_device": True}, ZERO, ""),
        ({"address_wait": 9 * S, "trusted_device": True}, ZERO, ""),
        # unless that device itself keeps failing
        ({"account_wait": 7 * S, "trusted_device": True, "device_failures": 10}, 7 * S, "account"),
        # a spray from an address without history slows that address
        ({"address_wait": 9 * S}, 9 * S, "address"),
        ({"address_wait": 999 * S}, POLICY.max_address_delay, "address"),
        # a lab or campus NAT where students sign in is never slowed as a whole
        ({"address_wait": 9 * S, "address_trusted": True}, ZERO, ""),
        # an undeclared proxy: the address is not the client's, so it is not held against it
        ({"address_wait": 9 * S, "address_known": False}, ZERO, ""),
    ],
)
def test_decide(changes, wait, reason):
    decision = decide(situation(**changes), POLICY)
    assert (decision.wait, decision.reason) == (wait, reason)
    assert decision.allowed is (wait == ZERO)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0), (5, 0), (6, 1), (7, 2), (8, 4), (11, 32), (12, 60), (100, 60), (10**9, 60)],
)
def test_account_delay_grows_to_the_cap_and_never_beyond(failures, delay):
    assert POLICY.account_delay(failures) == timedelta(seconds=delay)


def test_the_account_cap_keeps_guesses_within_owasp_asvs():
    """ASVS 2.2.1: at most 100 failed attempts an hour per account. With the cap, an
    attacker waiting out every delay gets the free failures plus one per cap."""
    per_hour = POLICY.free_account_failures + 3600 // POLICY.max_account_delay.total_seconds()
    assert per_hour <= 100


def test_address_delay_starts_after_its_free_failures():
    assert POLICY.address_delay(100) == ZERO
    assert POLICY.address_delay(101) == S
    assert POLICY.address_delay(2000) == POLICY.max_address_delay
