"""The counters of the sign-in throttle, in a `limits` storage (the library's storage
layer; the decision itself is quizapp.domain.throttle.decide), kept where every app
process sees them.

The default storage keeps fixed-window counters in the application's own database, so
the one-machine set-up (SQLite, several gunicorn workers) needs nothing else installed
and never counts in process memory. With Redis, set
QUIZAPP_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379 (any `limits` storage URI works).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from limits.storage import Storage, storage_from_string
from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from quizapp.db import make_engine
from quizapp.domain.throttle import Decision, SignInSituation, ThrottlePolicy, decide
from quizapp.models import RateLimitCounter

SCHEME_PREFIX = "quizapp+"


class DatabaseStorage(Storage):
    """A `limits` storage in the rate_limits table: `quizapp+<SQLAlchemy URL>`."""

    STORAGE_SCHEME = ["quizapp+sqlite", "quizapp+postgresql", "quizapp+postgresql+psycopg"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        assert uri is not None and uri.startswith(SCHEME_PREFIX)
        url = uri[len(SCHEME_PREFIX) :]
        small_pool = {"pool_size": 2, "max_overflow": 2} if url.startswith("postgresql") else {}
        self.engine = make_engine(url, **small_pool)
        dialect = self.engine.dialect.name
        # Both dialects' insert have on_conflict_do_update; typed loosely to take either.
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Built once: compiling the upsert anew cost 0.4 ms of CPU per call, and every
        # first sign-in from an address makes two (issue 17's sign-in storm).
        table = RateLimitCounter.__table__
        stmt = insert(table).values(
            key=bindparam("key"), count=bindparam("amount"), expires_at=bindparam("expires_at")
        )
        expired = table.c.expires_at <= bindparam("now")
        self._incr = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case(
                    (expired, stmt.excluded.count), else_=table.c.count + stmt.excluded.count
                ),
                "expires_at": case((expired, stmt.excluded.expires_at), else_=table.c.expires_at),
            },
        ).returning(table.c.count)

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add to a counter in one statement: a window that has expired starts again."""
        now = time.time()
        values = {"key": key, "amount": amount, "expires_at": now + expiry, "now": now}
        with self.engine.begin() as conn:
            return int(conn.execute(self._incr, values).scalar_one())

    def _row(self, key: str) -> tuple[int, float] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(RateLimitCounter.count, RateLimitCounter.expires_at).where(
                    RateLimitCounter.key == key
                )
            ).first()
        if row is None:
            return None
        count, expires_at = row  # (not row.count: that name is also a sequence method)
        if expires_at <= time.time():
            return None
        return int(count), float(expires_at)

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[int, float]]:
        """(count, expires_at) of each live counter among `keys`, in one statement."""
        now = time.time()
        with self.engine.connect() as conn:
            rows = conn.execute(_COUNTERS, {"keys": list(keys)}).all()
        return {key: (int(count), float(expiry)) for key, count, expiry in rows if expiry > now}

    def incr_many(self, items: Sequence[tuple[str, int]]) -> None:
        """incr(key, expiry) for each (key, expiry), in one transaction."""
        now = time.time()
        with self.engine.begin() as conn:
            for key, expiry in items:
                values = {"key": key, "amount": 1, "expires_at": now + expiry, "now": now}
                conn.execute(self._incr, values)

    def clear_many(self, keys: Sequence[str]) -> None:
        """clear(key) for each key, in one statement."""
        with self.engine.begin() as conn:
            conn.execute(delete(RateLimitCounter).where(RateLimitCounter.key.in_(list(keys))))

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(delete(RateLimitCounter)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))


_COUNTERS = select(RateLimitCounter.key, RateLimitCounter.count, RateLimitCounter.expires_at).where(
    RateLimitCounter.key.in_(bindparam("keys", expanding=True))
)


def default_storage_uri(database_url: str) -> str:
    return SCHEME_PREFIX + database_url


WINDOW_SECONDS = 3600  # failures count for an hour
HISTORY_SECONDS = 30 * 24 * 3600  # an address's good history lasts a month


@dataclass(frozen=True)
class ThrottleStatus:
    """What staff see for an account or an address."""

    key: str  # "account alice" or "address 10.0.0.7"
    failures: int  # in the last hour
    waits_until: float | None  # epoch seconds, when a delay is running
    trusted_accounts: int | None  # addresses: distinct accounts signed in from it


class LoginThrottle:
    """Counters for the sign-in throttle (decided by quizapp.domain.throttle.decide),
    kept in any `limits` storage: the application's database by default, or Redis.

    Keys: failures per account, per address and per device cookie in the last hour; a
    running delay per account and per address (a key that expires when the delay ends);
    and, per address, how many distinct accounts signed in from it in the last month.
    """

    def __init__(self, storage_uri: str, policy: ThrottlePolicy | None = None):
        # Synchronous storages only (storage_from_string is typed to return async ones too).
        self.storage: Storage = cast(Storage, storage_from_string(storage_uri))
        self.policy = policy or ThrottlePolicy()

    @staticmethod
    def _account(username: str) -> str:
        return username.strip().lower()[:150]

    def _counters(self, keys: Sequence[str]) -> dict[str, tuple[int, float]]:
        """(count, expires_at) of each live counter among `keys`: one statement on the
        application's database, one call per key on any other storage."""
        get_many = getattr(self.storage, "get_many", None)
        if get_many is not None:
            found: dict[str, tuple[int, float]] = get_many(keys)
            return found
        counters = {}
        for key in keys:
            count = self.storage.get(key)
            if count > 0:
                counters[key] = (count, self.storage.get_expiry(key))
        return counters

    @staticmethod
    def _wait(counters: dict[str, tuple[int, float]], key: str) -> timedelta:
        count, expires_at = counters.get(key, (0, 0.0))
        if count <= 0:
            return timedelta(0)
        return timedelta(seconds=max(0.0, expires_at - time.time()))

    def situation(
        self, username: str, address: str | None, device_id: str | None
    ) -> SignInSituation:
        """The counters for one attempt. `address` None: not known (an undeclared proxy);
        `device_id`: of a valid device cookie for this account, if the browser has one."""
        account = self._account(username)
        device, account_wait = f"fail-dev:{device_id}", f"wait-acct:{account}"
        good, address_wait = f"good-addr:{address}", f"wait-addr:{address}"
        keys = [account_wait]
        if device_id:
            keys.append(device)
        if address is not None:
            keys += [good, address_wait]
        counters = self._counters(keys)
        return SignInSituation(
            trusted_device=device_id is not None,
            device_failures=counters.get(device, (0, 0.0))[0] if device_id else 0,
            account_wait=self._wait(counters, account_wait),
            address_known=address is not None,
            address_trusted=address is not None
            and counters.get(good, (0, 0.0))[0] >= self.policy.trusted_address_accounts,
            address_wait=self._wait(counters, address_wait) if address else timedelta(0),
        )

    def decide(self, username: str, address: str | None, device_id: str | None) -> Decision:
        return decide(self.situation(username, address, device_id), self.policy)

    def failed(self, username: str, address: str | None, device_id: str | None) -> None:
        account = self._account(username)
        if device_id:
            # A trusted device's failures count against that device only: they must not
            # slow the account down for its owner's other browsers.
            self.storage.incr(f"fail-dev:{device_id}", WINDOW_SECONDS)
        else:
            failures = self.storage.incr(f"fail-acct:{account}", WINDOW_SECONDS)
            self._start_wait(f"wait-acct:{account}", self.policy.account_delay(failures))
        if address:
            failures = self.storage.incr(f"fail-addr:{address}", WINDOW_SECONDS)
            self._start_wait(f"wait-addr:{address}", self.policy.address_delay(failures))

    def _start_wait(self, key: str, delay: timedelta) -> None:
        seconds = int(delay.total_seconds())
        if seconds > 0:
            self.storage.clear(key)
            self.storage.incr(key, seconds)

    def succeeded(self, username: str, address: str | None) -> None:
        """A correct password: the account's delay ends (its owner is in), and the
        address earns history once per account."""
        account = self._account(username)
        # Batched where the storage can (the application's database): a sign-in storm
        # pays one transaction per step, not one per counter.
        clear_many = getattr(self.storage, "clear_many", None)
        if clear_many is not None:
            clear_many([f"fail-acct:{account}", f"wait-acct:{account}"])
        else:
            self.storage.clear(f"fail-acct:{account}")
            self.storage.clear(f"wait-acct:{account}")
        if address and self.storage.get(f"seen:{address}:{account}") == 0:
            earned = [(f"seen:{address}:{account}", HISTORY_SECONDS)]
            earned.append((f"good-addr:{address}", HISTORY_SECONDS))
            incr_many = getattr(self.storage, "incr_many", None)
            if incr_many is not None:
                incr_many(earned)
            else:
                for key, expiry in earned:
                    self.storage.incr(key, expiry)

    def status(self, *, username: str = "", address: str = "") -> ThrottleStatus:
        if username:
            account = self._account(username)
            return ThrottleStatus(
                f"account {account}",
                self.storage.get(f"fail-acct:{account}"),
                self._until(f"wait-acct:{account}"),
                None,
            )
        return ThrottleStatus(
            f"address {address}",
            self.storage.get(f"fail-addr:{address}"),
            self._until(f"wait-addr:{address}"),
            self.storage.get(f"good-addr:{address}"),
        )

    def _until(self, key: str) -> float | None:
        return self.storage.get_expiry(key) if self.storage.get(key) > 0 else None

    def clear(self, *, username: str = "", address: str = "") -> None:
        """Staff clear a throttle: the failures and any running delay."""
        if username:
            account = self._account(username)
            self.storage.clear(f"fail-acct:{account}")
            self.storage.clear(f"wait-acct:{account}")
        if address:
            self.storage.clear(f"fail-addr:{address}")
            self.storage.clear(f"wait-addr:{address}")

    def note_undeclared_proxy(self) -> bool:
        """Remember (for a day, across processes) that requests came through a proxy
        nobody declared; True the first time, so the caller logs it once."""
        return self.storage.incr("undeclared-proxy", 24 * 3600) == 1

    def undeclared_proxy_seen(self) -> bool:
        return self.storage.get("undeclared-proxy") > 0

    def close(self) -> None:
        engine = getattr(self.storage, "engine", None)
        if engine is not None:
            engine.dispose()
