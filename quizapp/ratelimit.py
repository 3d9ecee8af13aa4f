"""Throttling failed logins with the `limits` library (the engine of Flask-Limiter),
its counters kept where every app process sees them.

Only failures count, per account and per address (OWASP ASVS: at most 100 failed
attempts an hour per account; per address generously, because a lab or a campus NAT
puts a whole cohort behind one address at the start of a quiz).

The default storage keeps fixed-window counters in the application's own database, so
the one-machine set-up (SQLite, several gunicorn workers) needs nothing else installed
and never counts in process memory. With Redis, set
QUIZAPP_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379 (any `limits` storage URI works).
"""

from __future__ import annotations

import time
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from quizapp.db import make_engine
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
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add to a counter in one statement: a window that has expired starts again."""
        now = time.time()
        table = RateLimitCounter.__table__
        stmt = self._insert(table).values(key=key, count=amount, expires_at=now + expiry)
        expired = table.c.expires_at <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case(
                    (expired, stmt.excluded.count), else_=table.c.count + stmt.excluded.count
                ),
                "expires_at": case((expired, stmt.excluded.expires_at), else_=table.c.expires_at),
            },
        ).returning(table.c.count)
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).scalar_one())

    def _row(self, key: str) -> tuple[int, float] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(RateLimitCounter.count, RateLimitCounter.expires_at).where(
                    RateLimitCounter.key == key
                )
            ).first()
        if row is None or row.expires_at <= time.time():
            return None
        return int(row.count), float(row.expires_at)

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

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


def default_storage_uri(database_url: str) -> str:
    return SCHEME_PREFIX + database_url


class LoginThrottle:
    """Refuses logins once an account or an address has failed too often in the window."""

    def __init__(self, storage_uri: str, per_account: str, per_address: str):
        self.storage = storage_from_string(storage_uri)
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.per_account: RateLimitItem = parse(per_account)
        self.per_address: RateLimitItem = parse(per_address)

    @staticmethod
    def _account(username: str) -> str:
        return username.strip().lower()[:150]

    def allows(self, username: str, address: str) -> bool:
        return self.limiter.test(
            self.per_account, "login-account", self._account(username)
        ) and self.limiter.test(self.per_address, "login-address", address)

    def failed(self, username: str, address: str) -> None:
        self.limiter.hit(self.per_account, "login-account", self._account(username))
        self.limiter.hit(self.per_address, "login-address", address)

    def close(self) -> None:
        engine = getattr(self.storage, "engine", None)
        if engine is not None:
            engine.dispose()
