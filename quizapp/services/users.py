"""Accounts and passwords (argon2id via argon2-cffi)."""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.db import unit_of_work
from quizapp.models import Role, User, utcnow
from quizapp.services.errors import InvalidInput

# argon2id at OWASP's recommended baseline (19 MiB, 2 iterations, 1 lane). argon2-cffi's
# default (64 MiB, 3 iterations, 4 lanes) cost about 190 CPU-ms per login on the 2-core
# machine, so a start storm of 1,000 logins needed about 190 CPU-seconds; this costs about
# 26 (bench/README.md). Hashes made with other parameters are upgraded at the next login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Verifying against this when the username is unknown keeps the timing the same, so
# response time does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (never says which was wrong)."""
    user = session.scalars(select(User).where(User.username == username.strip())).first()
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active or not user.password_hash:
        return None
    if _hasher.check_needs_rehash(stored):
        with unit_of_work(session):
            user.password_hash = hash_password(password)
    return user


def create_user(
    session: Session,
    username: str,
    password: str | None,
    *,
    name: str = "",
    email: str = "",
    role: Role | None = Role.STUDENT,
    update_existing: bool = False,
    check_password: bool = False,
    now: datetime | None = None,
) -> User:
    """Create a user, or with `update_existing` update the one of that name (its name and
    e-mail when given, its role unless `role` is None, its password when given).

    `check_password` applies the password rule (domain/passwords.py): the command line
    does; test fixtures and the demo make accounts with passwords they choose. A changed
    password of an existing user ends every session of theirs and is audited."""
    from quizapp.domain.passwords import password_problem
    from quizapp.services import audit
    from quizapp.services.identity import bump_session_version

    username = username.strip()
    if not username or len(username) > 150:
        raise InvalidInput("A username must have 1 to 150 characters.")
    if password is not None and check_password:
        problem = password_problem(password, username=username, email=email, name=name)
        if problem:
            raise InvalidInput(problem)
    hashed = hash_password(password) if password is not None else None
    moment = now or utcnow()
    with unit_of_work(session):
        user = session.scalars(select(User).where(User.username == username)).first()
        if user is not None and not update_existing:
            raise InvalidInput(f"User {username!r} already exists (update it with --update).")
        existed = user is not None
        if user is None:
            user = User(username=username, created_at=moment)
            session.add(user)
        user.name = name or user.name or ""
        user.email = email or user.email or ""
        if role is not None or not existed:
            user.role = role or Role.STUDENT
        if hashed is not None:
            user.password_hash = hashed
        if existed and hashed is not None:
            session.flush()
            bump_session_version(session, user.id)
            audit.record(
                session, "password_set", moment, subject_id=user.id, method="account_update"
            )
    if existed:
        session.refresh(user)
    return user
