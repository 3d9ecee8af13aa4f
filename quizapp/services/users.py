"""Accounts and passwords (argon2id via argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.db import begin_write
from quizapp.models import Role, User
from quizapp.services.errors import InvalidInput

_hasher = PasswordHasher()
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
        begin_write(session)
        user.password_hash = hash_password(password)
        session.commit()
    return user


def create_user(
    session: Session,
    username: str,
    password: str | None,
    *,
    name: str = "",
    email: str = "",
    role: Role = Role.STUDENT,
    update_existing: bool = False,
) -> User:
    username = username.strip()
    if not username or len(username) > 150:
        raise InvalidInput("A username must have 1 to 150 characters.")
    begin_write(session)
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is not None and not update_existing:
        raise InvalidInput(f"User {username!r} already exists.")
    if user is None:
        user = User(username=username)
        session.add(user)
    user.name = name or user.name or ""
    user.email = email or user.email or ""
    user.role = role
    if password is not None:
        user.password_hash = hash_password(password)
    session.commit()
    return user
