"""Throttling failed sign-ins without ever locking a student out (OWASP's guidance on
blocking brute-force attacks: device cookies and growing delays, never a hard lock).

The decision is pure: the counters come from the caller (quizapp/ratelimit.py), the
answer is how long this attempt must wait before its password is even checked.

- A browser that has signed in to this account before carries a signed device cookie:
  failures elsewhere never hold it back (unless that device itself keeps failing).
- Anyone else waits a delay that grows with the account's recent failures (1 s, 2 s,
  4 s … up to a cap): an attacker gets a few guesses a minute, the student gets in
  after at most the cap. Nothing is refused for longer than the cap.
- Per address, many failures (a username spray) add a growing delay too, but only for
  addresses without a good history: a lab or campus NAT where several students have
  signed in recently is never slowed as a whole, and a correct password from it is
  never refused. An address that is not known (a proxy nobody declared) is not counted
  at all rather than throttling everyone behind it as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    free_account_failures: int = 5  # failures per account before any delay
    max_account_delay: timedelta = timedelta(seconds=60)  # ASVS: <= 100 failures an hour
    free_address_failures: int = 100
    max_address_delay: timedelta = timedelta(seconds=30)
    device_failures_allowed: int = 10  # a trusted device that fails this often loses trust
    trusted_address_accounts: int = 3  # distinct accounts signed in from an address

    def account_delay(self, failures: int) -> timedelta:
        """The wait after the `failures`-th recent failure of an account."""
        return _growing(failures - self.free_account_failures, self.max_account_delay)

    def address_delay(self, failures: int) -> timedelta:
        return _growing(failures - self.free_address_failures, self.max_address_delay)


def _growing(excess: int, cap: timedelta) -> timedelta:
    if excess <= 0:
        return timedelta(0)
    # 1 s, 2 s, 4 s … (the exponent is bounded so a huge count costs nothing)
    return min(timedelta(seconds=2 ** min(excess - 1, 30)), cap)


@dataclass(frozen=True)
class SignInSituation:
    """What the counters say about one sign-in attempt, before its password is checked."""

    trusted_device: bool  # a valid device cookie for this account
    device_failures: int  # recent failures through that device cookie
    account_wait: timedelta  # what remains of the account's current delay
    address_known: bool  # the client's address is the real one (not an undeclared proxy's)
    address_trusted: bool  # several accounts have signed in from it recently
    address_wait: timedelta  # what remains of the address's current delay


@dataclass(frozen=True)
class Decision:
    wait: timedelta  # zero: check the password now
    reason: str  # for the audit log and the staff page: "account", "address", ""

    @property
    def allowed(self) -> bool:
        return self.wait <= timedelta(0)


def decide(situation: SignInSituation, policy: ThrottlePolicy) -> Decision:
    """How long this attempt must wait before its password is checked (zero: now)."""
    if situation.trusted_device and situation.device_failures < policy.device_failures_allowed:
        return Decision(timedelta(0), "")
    if situation.account_wait > timedelta(0):
        return Decision(min(situation.account_wait, policy.max_account_delay), "account")
    if (
        situation.address_known
        and not situation.address_trusted
        and situation.address_wait > timedelta(0)
    ):
        return Decision(min(situation.address_wait, policy.max_address_delay), "address")
    return Decision(timedelta(0), "")
