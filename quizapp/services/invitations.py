"""Invitation links: one-time, expiring links with which a student (or a staff account
without a password) sets their own password; and passwords reset or set by staff.

- A link carries a random token (`secrets.token_urlsafe`, 256 bits); the database keeps
  only its SHA-256, so a copy of the database opens no account.
- A link works once: the password is set by a conditional UPDATE ... WHERE used_at IS
  NULL AND expires_at > now, so of two uses at the same moment exactly one wins, on
  SQLite and PostgreSQL alike.
- A newer invitation for the same account supersedes older unused ones (they expire at
  once): after a resend only the newest link works, so a link forwarded, mistyped into
  the wrong mailbox or left in an old e-mail cannot be used later.
- Opening a link (GET) changes nothing, so mail scanners that fetch every link in a
  message do not use it up; only posting a good password does.
- Setting a password by any route (link, staff, command line) ends every session of
  the account (its session version is bumped) and is audited.
- A reset by staff clears the password, ends every session and issues a new link:
  staff never learn or choose the student's password (no temporary password to pass
  on, that would keep working until someone changed it).

Passwords are hashed before the write transaction starts (argon2 costs about 20 ms),
so the write lock is held for two short statements, never for a hash.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from quizapp.db import discard, end_snapshot, rows_matched, unit_of_work
from quizapp.domain.passwords import password_problem
from quizapp.models import Invitation, Role, User
from quizapp.services import audit
from quizapp.services.errors import Conflict, InvalidInput, NotFound
from quizapp.services.identity import replace_password
from quizapp.services.mail import Delivery, Outgoing, SmtpSettings, send_all
from quizapp.services.users import hash_password

DEFAULT_DAYS = 7
MAX_DAYS = 90
LINK_PREFIX = "/invitation/"
# Longer than any token we make (43 characters); anything longer is not ours.
MAX_TOKEN_CHARS = 100
CSV_HEADER = ("username", "name", "email", "link", "expires")
_CHUNK = 500  # bounded IN lists on every engine


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def link_path(token: str) -> str:
    return LINK_PREFIX + token


def absolute_link(base_url: str, token: str) -> str:
    """The link a student is sent; relative when no base URL is known (the command
    line without QUIZAPP_BASE_URL)."""
    return base_url.rstrip("/") + link_path(token)


class LinkState(enum.StrEnum):
    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"  # a newer link was issued for the same account
    DISABLED = "disabled"  # the account was disabled after the link was sent
    UNKNOWN = "unknown"


def link_state(
    *,
    used_at: datetime | None,
    expires_at: datetime,
    superseded: bool,
    active: bool,
    now: datetime,
) -> LinkState:
    """What a link is worth at `now` (pure: the caller reads the row)."""
    if used_at is not None:
        return LinkState.USED
    if superseded:
        return LinkState.SUPERSEDED
    if now >= expires_at:
        return LinkState.EXPIRED
    if not active:
        return LinkState.DISABLED
    return LinkState.VALID


def validity(days: int | None) -> timedelta:
    """A link's lifetime: `days` (1 to MAX_DAYS), or DEFAULT_DAYS."""
    days = DEFAULT_DAYS if days is None else days
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"A link must last from 1 to {MAX_DAYS} days.")
    return timedelta(days=days)


# --- who is invited ----------------------------------------------------------------------


class Scope(enum.StrEnum):
    ALL = "all"
    NEVER_SIGNED_IN = "never-signed-in"
    NO_PASSWORD = "no-password"


def _invitable() -> ColumnElement[bool]:
    # The roster: every student, and staff accounts with no password yet (made by an
    # import or for single sign-on). A staff member with a password is invited by name.
    return and_(User.active.is_(True), or_(User.role == Role.STUDENT, User.password_hash.is_(None)))


def invitees(session: Session, scope: Scope) -> list[User]:
    """Active accounts of the roster in `scope`, by username."""
    query = select(User).where(_invitable())
    if scope is Scope.NEVER_SIGNED_IN:
        query = query.where(User.last_login_at.is_(None))
    elif scope is Scope.NO_PASSWORD:
        query = query.where(User.password_hash.is_(None))
    return list(session.scalars(query.order_by(User.username)))


def users_by_username(session: Session, usernames: Iterable[str]) -> list[User]:
    """The named accounts, in the order given; an unknown or disabled name is refused
    (nothing is done for the others either), so a typo is noticed."""
    wanted = list(dict.fromkeys(u.strip() for u in usernames if u.strip()))
    found: dict[str, User] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for user in session.scalars(select(User).where(User.username.in_(chunk))):
            found[user.username] = user
    unknown = [u for u in wanted if u not in found]
    if unknown:
        raise NotFound(
            "No such user: " + ", ".join(unknown[:20]) + ("…" if len(unknown) > 20 else "")
        )
    disabled = [u for u in wanted if not found[u].active]
    if disabled:
        raise InvalidInput("Account disabled (enable it first): " + ", ".join(disabled[:20]))
    return [found[u] for u in wanted]


# --- issuing links -----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    """A link just made: the only time its token exists outside the link itself."""

    invitation_id: int
    user_id: int
    username: str
    name: str
    email: str
    token: str
    expires_at: datetime


def invite(
    session: Session,
    users: Sequence[User],
    now: datetime,
    *,
    by_id: int | None,
    days: int | None = None,
    ip: str = "",
) -> list[IssuedInvitation]:
    """A new link for each of `users`, in one transaction; older unused links of the
    same accounts stop working. Audited per account (invitation_created)."""
    lifetime = validity(days)
    with unit_of_work(session):
        issued = _issue(session, users, now, lifetime, by_id, ip, "invitation_created")
    return issued


def _issue(
    session: Session,
    users: Sequence[User],
    now: datetime,
    lifetime: timedelta,
    by_id: int | None,
    ip: str,
    action: str,
) -> list[IssuedInvitation]:
    ids = [u.id for u in users]
    superseded: dict[int, int] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for user_id, count in session.execute(
            select(Invitation.user_id, func.count())
            .where(*_live(now), Invitation.user_id.in_(chunk))
            .group_by(Invitation.user_id)
        ):
            superseded[user_id] = count
        session.execute(
            update(Invitation)
            .where(*_live(now), Invitation.user_id.in_(chunk))
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )
    rows: list[tuple[User, str, Invitation]] = []
    for user in users:
        token = new_token()
        row = Invitation(
            user_id=user.id,
            token_hash=token_digest(token),
            created_at=now,
            expires_at=now + lifetime,
            created_by=by_id,
        )
        rows.append((user, token, row))
    session.add_all(row for _, _, row in rows)
    session.flush()
    for user, _, row in rows:
        audit.record(
            session,
            action,
            now,
            actor_id=by_id,
            subject_id=user.id,
            ip=ip,
            invitation_id=row.id,
            expires_at=row.expires_at.isoformat(),
            superseded=superseded.get(user.id, 0),
        )
    return [
        IssuedInvitation(
            invitation_id=row.id,
            user_id=user.id,
            username=user.username,
            name=user.name,
            email=user.email,
            token=token,
            expires_at=row.expires_at,
        )
        for user, token, row in rows
    ]


def _live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (Invitation.used_at.is_(None), Invitation.expires_at > now)


def reset_password(
    session: Session,
    user_id: int,
    now: datetime,
    *,
    by: User,
    days: int | None = None,
    ip: str = "",
) -> IssuedInvitation:
    """Staff reset: the password stops working, every session ends, and a new link is
    issued (older links stop working). Audited (password_reset)."""
    lifetime = validity(days)
    with unit_of_work(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("No such user.")
        if not user.active:
            raise InvalidInput(f"{user.username}'s account is disabled; enable it first.")
        had_password = user.password_hash is not None
        replace_password(session, user_id, None)
        audit.record(
            session, "password_reset", now, actor_id=by.id, subject_id=user_id, ip=ip,
            had_password=had_password,
        )  # fmt: skip
        (issued,) = _issue(session, [user], now, lifetime, by.id, ip, "invitation_created")
    session.expire(user)
    return issued


# --- using a link ------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkInfo:
    """A link as its holder sees it: whose it is, whether it still works, whom to ask."""

    state: LinkState
    invitation: Invitation | None = None
    user: User | None = None
    inviter: User | None = None


def look_up(session: Session, token: str, now: datetime) -> LinkInfo:
    """What a link is (read only: opening a link never uses it)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return LinkInfo(LinkState.UNKNOWN)
    # populate_existing: the rows as they are now, not as this session last saw them (a
    # use that lost the race looks again to say why).
    invitation = session.scalars(
        select(Invitation)
        .where(Invitation.token_hash == token_digest(token))
        .execution_options(populate_existing=True)
    ).first()
    if invitation is None:
        return LinkInfo(LinkState.UNKNOWN)
    user = session.get(User, invitation.user_id, populate_existing=True)
    assert user is not None  # the foreign key cascades
    newer = session.scalar(
        select(func.count()).where(
            Invitation.user_id == invitation.user_id, Invitation.id > invitation.id
        )
    )
    state = link_state(
        used_at=invitation.used_at,
        expires_at=invitation.expires_at,
        superseded=bool(newer),
        active=user.active,
        now=now,
    )
    inviter = session.get(User, invitation.created_by) if invitation.created_by else None
    return LinkInfo(state, invitation, user, inviter)


STATE_MESSAGES = {
    LinkState.USED: "This link has already been used to set a password; it works only once.",
    LinkState.EXPIRED: "This link has expired.",
    LinkState.SUPERSEDED: "A newer link was sent for this account; only the newest one works.",
    LinkState.DISABLED: "This account is disabled.",
    LinkState.UNKNOWN: "This link is not valid. Check that you copied the whole link.",
}


class LinkNotUsable(Conflict):
    """A link that is used, expired, superseded, unknown or for a disabled account."""

    status = 410

    def __init__(self, info: LinkInfo):
        super().__init__(STATE_MESSAGES[info.state])
        self.info = info


def redeem(session: Session, token: str, password: str, now: datetime, *, ip: str = "") -> User:
    """Set the password of the link's account and use the link up. Raises LinkNotUsable
    (the link is no good, or another use won the race) or InvalidInput (the password
    breaks the rule, with the rule's message; the link still works)."""
    info = look_up(session, token, now)
    if info.state is not LinkState.VALID:
        raise LinkNotUsable(info)
    assert info.invitation is not None and info.user is not None
    user, invitation_id = info.user, info.invitation.id
    problem = password_problem(password, username=user.username, email=user.email, name=user.name)
    if problem:
        raise InvalidInput(problem)
    end_snapshot(session)  # no transaction open while hashing
    hashed = hash_password(password)
    with unit_of_work(session):
        used = rows_matched(
            session.execute(
                update(Invitation)
                .where(
                    Invitation.id == invitation_id,
                    Invitation.used_at.is_(None),
                    Invitation.expires_at > now,
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        if used != 1:
            raise LinkNotUsable(look_up(session, token, now))
        if not replace_password(session, user.id, hashed, only_if_active=True):
            raise LinkNotUsable(LinkInfo(LinkState.DISABLED, info.invitation, user))
        audit.record(
            session,
            "password_set",
            now,
            actor_id=user.id,
            subject_id=user.id,
            ip=ip,
            method="invitation",
            invitation_id=invitation_id,
        )
    session.expire(user)
    refreshed = session.get(User, user.id)
    assert refreshed is not None
    return refreshed


def set_password(
    session: Session,
    user_id: int,
    password: str,
    now: datetime,
    *,
    by_id: int | None,
    method: str,
    ip: str = "",
) -> User:
    """Staff or an administrator set an account's password directly (the command line's
    `users set-password`): the same rule, every session ends, unused links stop
    working. Audited (password_set, with `method`)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    problem = password_problem(password, username=user.username, email=user.email, name=user.name)
    if problem:
        raise InvalidInput(problem)
    end_snapshot(session)  # no transaction open while hashing
    hashed = hash_password(password)
    with unit_of_work(session):
        replace_password(session, user_id, hashed)
        session.execute(
            update(Invitation)
            .where(*_live(now), Invitation.user_id == user_id)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )
        audit.record(
            session, "password_set", now, actor_id=by_id, subject_id=user_id, ip=ip,
            method=method,
        )  # fmt: skip
    session.expire(user)
    return user


# --- the staff page's list ---------------------------------------------------------------


@dataclass(frozen=True)
class SignInRow:
    user: User
    last_invitation: Invitation | None

    @property
    def has_password(self) -> bool:
        return self.user.password_hash is not None

    @property
    def never_signed_in(self) -> bool:
        return self.user.last_login_at is None


@dataclass(frozen=True)
class SignInReport:
    rows: list[SignInRow]  # accounts that cannot or did not sign in yet, up to a limit
    students: int
    never_signed_in: int
    no_password: int
    pending_links: int
    truncated: bool


def sign_in_report(session: Session, now: datetime, *, limit: int = 500) -> SignInReport:
    """Who of the roster has never signed in or has no password, with their newest
    link; and the counts. Three queries whatever the roster's size."""
    roster = _invitable()
    counts = session.execute(
        select(
            func.count(),
            func.count().filter(User.last_login_at.is_(None)),
            func.count().filter(User.password_hash.is_(None)),
        ).where(roster)
    ).one()
    pending = session.scalar(
        select(func.count()).select_from(Invitation).join(User, User.id == Invitation.user_id)
        .where(*_live(now), roster)
    ) or 0  # fmt: skip
    users = list(
        session.scalars(
            select(User)
            .where(roster, or_(User.last_login_at.is_(None), User.password_hash.is_(None)))
            .order_by(User.username)
            .limit(limit + 1)
        )
    )
    truncated = len(users) > limit
    users = users[:limit]
    latest = latest_invitations(session, [u.id for u in users])
    return SignInReport(
        rows=[SignInRow(u, latest.get(u.id)) for u in users],
        students=counts[0],
        never_signed_in=counts[1],
        no_password=counts[2],
        pending_links=pending,
        truncated=truncated,
    )


def latest_invitations(session: Session, user_ids: Sequence[int]) -> dict[int, Invitation]:
    """The newest invitation of each account."""
    found: dict[int, Invitation] = {}
    for start in range(0, len(user_ids), _CHUNK):
        chunk = user_ids[start : start + _CHUNK]
        newest = (
            select(func.max(Invitation.id))
            .where(Invitation.user_id.in_(chunk))
            .group_by(Invitation.user_id)
        )
        for invitation in session.scalars(select(Invitation).where(Invitation.id.in_(newest))):
            found[invitation.user_id] = invitation
    return found


def find_user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username.strip())).first()
    if user is None:
        raise NotFound(f"No user {username.strip()!r}.")
    return user


# --- delivery: CSV or e-mail -------------------------------------------------------------


def csv_rows(
    issued: Sequence[IssuedInvitation], base_url: str, zone: ZoneInfo
) -> Iterator[list[str]]:
    """The mail-merge CSV: one row per link (header first)."""
    from quizapp.services.exports import spreadsheet_safe

    yield list(CSV_HEADER)
    for item in issued:
        yield [
            spreadsheet_safe(item.username),
            spreadsheet_safe(item.name),
            spreadsheet_safe(item.email),
            absolute_link(base_url, item.token),
            _local(item.expires_at, zone),
        ]


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def message_for(item: IssuedInvitation, base_url: str, zone: ZoneInfo, contact: str) -> Outgoing:
    link = absolute_link(base_url, item.token)
    greeting = f"Hello {item.name}," if item.name else "Hello,"
    body = (
        f"{greeting}\n\n"
        "Your course uses quizapp for its online quizzes. Set your password here:\n\n"
        f"{link}\n\n"
        f"Your username is {item.username}.\n"
        f"The link works once, and until {_local(item.expires_at, zone)}. "
        f"If it has expired or does not work, ask {contact} for a new one.\n\n"
        "If you did not expect this message, you can ignore it.\n"
    )
    return Outgoing(item.invitation_id, item.email, "Set your quizapp password", body)


@dataclass(frozen=True)
class MailReport:
    deliveries: list[Delivery]

    @property
    def sent(self) -> int:
        return sum(d.sent for d in self.deliveries)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.sent]


def send_invitations(
    session: Session,
    issued: Sequence[IssuedInvitation],
    settings: SmtpSettings,
    base_url: str,
    zone: ZoneInfo,
    now: datetime,
    *,
    by: User | None,
    ip: str = "",
) -> MailReport:
    """E-mail each link over one SMTP connection, then record `emailed_at` for those
    the server accepted, with one audit event for the batch. No transaction is open
    while the mail server is talked to."""
    contact = _contact(by)
    discard(session)  # no transaction open while the mail server is talked to
    deliveries = send_all(settings, (message_for(i, base_url, zone, contact) for i in issued))
    sent_ids = [d.key for d in deliveries if d.sent]
    names = {i.invitation_id: i.username for i in issued}
    with unit_of_work(session):
        for start in range(0, len(sent_ids), _CHUNK):
            session.execute(
                update(Invitation)
                .where(Invitation.id.in_(sent_ids[start : start + _CHUNK]))
                .values(emailed_at=now)
                .execution_options(synchronize_session=False)
            )
        audit.record(
            session,
            "invitations_emailed",
            now,
            actor_id=by.id if by is not None else None,
            ip=ip,
            sent=len(sent_ids),
            failed={names[d.key]: (d.error or "")[:200] for d in deliveries if not d.sent},
        )
    return MailReport(deliveries)


def _contact(by: User | None) -> str:
    if by is None:
        return "your course staff"
    if by.email:
        return f"{by.name or by.username} ({by.email})"
    return by.name or by.username
