"""Who is signed in: server-side sessions that logout, a password change, "sign out
everywhere" and a disabled account end at once.

The session cookie (signed by Flask) carries a random session id; the database keeps
only its SHA-256 with the user's session version at sign-in. Every request loads the
user and checks the session in one statement: a cookie replayed after logout, or made
before the user's version was bumped, finds nothing and gets the login page. Every way
of signing in (password, SSO, invitation, LTI) opens its session here.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from quizapp.db import rows_matched, unit_of_work
from quizapp.models import AuthSession, User
from quizapp.services import audit
from quizapp.services.errors import NotFound

SESSION_METHODS = ("password", "sso", "invitation", "lti")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


# Built once: every sign-in of a start storm runs both (the ORM's unit of work for one
# new row cost ~0.3 ms of CPU per sign-in). Core statements, so the User object the caller
# holds is not refreshed (as with synchronize_session=False before).
_OPEN_SESSION = insert(AuthSession)
_SIGNED_IN_AT = (
    update(User).where(User.id == bindparam("user_id")).values(last_login_at=bindparam("now"))
)


def open_session(
    session: Session,
    user: User,
    method: str,
    now: datetime,
    ip: str = "",
    **details: Any,
) -> str:
    """Sign `user` in: a new session row, the sign-in time, an audit event; returns the
    session id for the cookie (never stored as such)."""
    assert method in SESSION_METHODS, method
    session_id = secrets.token_urlsafe(32)
    with unit_of_work(session):
        connection = session.connection()  # Core: no ORM flush for one row
        connection.execute(
            _OPEN_SESSION,
            {
                "id": _digest(session_id),
                "user_id": user.id,
                "session_version": user.session_version,
                "method": method,
                "created_at": now,
                "ip": ip[:64],
                "revoked_at": None,
            },
        )
        connection.execute(_SIGNED_IN_AT, {"user_id": user.id, "now": now})
        audit.record(
            session,
            "login",
            now,
            actor_id=user.id,
            subject_id=user.id,
            ip=ip,
            method=method,
            **details,
        )
    return session_id


# The hot path: every request of a signed-in user (an autosave included) runs this once.
_USER_OF_SESSION = (
    select(User)
    .join(
        AuthSession,
        and_(
            AuthSession.user_id == User.id,
            AuthSession.session_version == User.session_version,
            AuthSession.revoked_at.is_(None),
        ),
    )
    .where(
        User.id == bindparam("user_id"),
        AuthSession.id == bindparam("digest"),
        User.active.is_(True),
    )
)


def user_of_session(session: Session, user_id: int, session_id: str | None) -> User | None:
    """The active user whose live session this is, or None."""
    if not session_id:
        return None
    return session.scalars(
        _USER_OF_SESSION, {"user_id": user_id, "digest": _digest(session_id)}
    ).first()


def close_session(session: Session, user: User, session_id: str | None, now: datetime) -> None:
    """Logout: this session only (the student's other devices keep theirs)."""
    with unit_of_work(session):
        if session_id:
            session.execute(
                update(AuthSession)
                .where(AuthSession.id == _digest(session_id), AuthSession.revoked_at.is_(None))
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
        audit.record(session, "logout", now, actor_id=user.id, subject_id=user.id)


def end_all_sessions(
    session: Session,
    user_id: int,
    now: datetime,
    *,
    by: User | None = None,
    reason: str = "",
    ip: str = "",
) -> None:
    """Every session of a user ends at its next request ("sign out everywhere", and a
    password change, reset or disabled account call this in their own transaction)."""
    with unit_of_work(session):
        bump_session_version(session, user_id)
        audit.record(
            session,
            "sessions_ended",
            now,
            actor_id=by.id if by is not None else user_id,
            subject_id=user_id,
            ip=ip,
            reason=reason[:500],
        )


def bump_session_version(session: Session, user_id: int) -> None:
    """In the caller's write transaction: every session made before now stops matching
    the user's version (no row needs to change: the join compares versions)."""
    changed = rows_matched(
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(session_version=User.session_version + 1)
            .execution_options(synchronize_session=False)
        )
    )
    if changed != 1:
        raise NotFound("No such user.")


def replace_password(
    session: Session, user_id: int, password_hash: str | None, *, only_if_active: bool = False
) -> bool:
    """In the caller's write transaction: the account's password becomes `password_hash`
    (None: no password, as after a staff reset) and every session made before ends, the
    one rule for any change of password. False when no such (active) account exists."""
    query = update(User).where(User.id == user_id)
    if only_if_active:
        query = query.where(User.active.is_(True))
    result = session.execute(
        query.values(password_hash=password_hash).execution_options(synchronize_session=False)
    )
    if rows_matched(result) != 1:
        return False
    bump_session_version(session, user_id)
    return True
