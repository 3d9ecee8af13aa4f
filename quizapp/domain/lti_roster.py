"""A VLE's membership list (LTI Names and Role Provisioning Services 2.0) as roster rows.

Pure: the pages come in as decoded JSON, the accounts quizapp already has as plain
values; out come the same `RosterRow`s the CSV parser builds (domain/roster.py), so a
sync goes through the roster import's preview, diff and apply unchanged, plus what the
sync does beside the roster (links between the VLE's people and quizapp accounts, staff
accounts for instructors when staff ask for them) and what it leaves alone, with why.

The membership container (NRPS 2.0 §2.2, media type `MEMBERSHIP_MEDIA_TYPE`):
``{"id": ..., "context": {"id": ...}, "members": [{"user_id": ..., "roles": [...],
"status": "Active", "email": ..., "name": ..., "given_name": ..., "family_name": ...,
"lis_person_sourcedid": ...}, ...]}``, paged by the HTTP header
``Link: <url>; rel="next"``.

Groups: NRPS itself carries none. A member may carry them in one of two simple forms
(docs/lti.md "Roster sync"): ``"groups": ["Seminar A", ...]`` (names), or
``"group_enrollments": [{"group_id": "g1", "name": "Seminar A"}, ...]`` (the LTI Course
Groups form; the name when given, else the id). When any member of the list carries
either, the list is the truth about groups for every member synced (like a CSV with a
``groups`` column); when none does, groups are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from quizapp.domain.lti import role_of
from quizapp.domain.roster import (
    MAX_EMAIL,
    MAX_GROUP,
    MAX_GROUPS,
    MAX_NAME,
    RosterRow,
    email_problem,
    username_problem,
)

MEMBERSHIP_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LEARNER_ROLES = frozenset(
    {
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
        "Learner",
    }
)
LEARNER_SUBROLE_PREFIX = "http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#"
MAX_TEXT = 1000  # any one value we keep from the VLE; longer is refused, not cut
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# One link-value of an HTTP Link header (RFC 8288): <target> followed by parameters.
_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r""";\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))""", re.IGNORECASE)

Match = Literal["email", "username"]


class MembershipProblem(Exception):
    """A page of the membership list quizapp cannot read: nothing is applied."""


@dataclass(frozen=True)
class Member:
    """One member of the context, as the VLE describes them."""

    position: int  # 1-based, in the order the VLE listed them (the preview's "line")
    user_id: str  # the LTI `sub` of the person at this platform
    status: str = "Active"
    roles: tuple[str, ...] = ()
    email: str = ""
    name: str = ""
    sourcedid: str = ""  # lis_person_sourcedid: the institution's id for the person
    groups: tuple[str, ...] | None = None  # None: the member carries no group information

    @property
    def active(self) -> bool:
        return self.status.strip().lower() not in ("inactive", "deleted")

    @property
    def is_learner(self) -> bool:
        return any(r in LEARNER_ROLES or r.startswith(LEARNER_SUBROLE_PREFIX) for r in self.roles)

    @property
    def is_instructor(self) -> bool:
        return role_of(self.roles) == "instructor"

    def who(self) -> str:
        return self.name or self.email or self.sourcedid or f"VLE user {self.user_id}"


def next_page_url(link_headers: Iterable[str]) -> str | None:
    """The target of the `rel="next"` link among the Link header values, if any."""
    for header in link_headers:
        for match in _LINK.finditer(header):
            target, params = match.group(1).strip(), match.group(2)
            for rel in _REL.finditer(params):
                values = (rel.group(1) or rel.group(2) or "").lower().split()
                if "next" in values:
                    return target
    return None


def _text(raw: Mapping[str, Any], name: str, position: int) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MembershipProblem(f"member {position}: {name} is not text")
    if len(value) > MAX_TEXT:
        raise MembershipProblem(f"member {position}: {name} is longer than {MAX_TEXT} characters")
    return value.strip()


def _groups(raw: Mapping[str, Any], position: int) -> tuple[str, ...] | None:
    if "groups" not in raw and "group_enrollments" not in raw:
        return None
    names: list[str] = []
    plain = raw.get("groups", [])
    enrolments = raw.get("group_enrollments", [])
    if not isinstance(plain, list) or not isinstance(enrolments, list):
        raise MembershipProblem(f"member {position}: groups must be a list")
    for entry in plain:
        if not isinstance(entry, str):
            raise MembershipProblem(f"member {position}: a group name is not text")
        names.append(entry.strip())
    for entry in enrolments:
        if not isinstance(entry, dict):
            raise MembershipProblem(f"member {position}: a group enrolment is not an object")
        name = entry.get("name") or entry.get("group_id")
        if not isinstance(name, str | int) or isinstance(name, bool):
            raise MembershipProblem(f"member {position}: a group enrolment has no group_id")
        names.append(str(name).strip())
    unique = tuple(dict.fromkeys(n for n in names if n))
    if len(unique) > MAX_GROUPS:
        raise MembershipProblem(f"member {position}: more than {MAX_GROUPS} groups")
    return unique


def read_members(body: Any, first_position: int, context_id: str = "") -> list[Member]:
    """The members of one page of a membership container; MembershipProblem when the
    page is not one (or names another course than `context_id`)."""
    if not isinstance(body, dict):
        raise MembershipProblem("the page is not a membership container (a JSON object)")
    context = body.get("context")
    named = str(context.get("id")) if isinstance(context, dict) and "id" in context else ""
    if context_id and named and named != context_id:
        raise MembershipProblem(
            f"the VLE answered with the members of another course ({named[:80]})"
        )
    raw_members = body.get("members")
    if not isinstance(raw_members, list):
        raise MembershipProblem("the page has no list of members")
    members = []
    for offset, raw in enumerate(raw_members):
        position = first_position + offset
        if not isinstance(raw, dict):
            raise MembershipProblem(f"member {position} is not an object")
        user_id = raw.get("user_id")
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 255:
            raise MembershipProblem(f"member {position} has no valid user_id")
        roles = raw.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise MembershipProblem(f"member {position}: roles must be a list of text")
        name = _text(raw, "name", position)
        if not name:
            given = _text(raw, "given_name", position)
            family = _text(raw, "family_name", position)
            name = " ".join(part for part in (given, family) if part)
        members.append(
            Member(
                position=position,
                user_id=user_id.strip(),
                status=_text(raw, "status", position) or "Active",
                roles=tuple(roles),
                email=_text(raw, "email", position),
                name=name,
                sourcedid=_text(raw, "lis_person_sourcedid", position),
                groups=_groups(raw, position),
            )
        )
    return members


# --- Members → roster rows ------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """An account quizapp already has, as far as the mapping needs it."""

    username: str
    name: str
    email: str
    is_staff: bool
    linked_sub: str = ""  # the VLE person this account is linked to at this platform


@dataclass(frozen=True)
class Accounts:
    """The accounts that may be the members: linked to a member's `sub`, or matched by
    e-mail (case-insensitive key) or username, per QUIZAPP_LTI_MATCH."""

    by_sub: Mapping[str, Account] = field(default_factory=dict)
    by_email: Mapping[str, Sequence[Account]] = field(default_factory=dict)
    by_username: Mapping[str, Account] = field(default_factory=dict)


@dataclass(frozen=True)
class Note:
    """A member the sync leaves alone or cannot use, and why (for the preview)."""

    position: int
    who: str
    message: str

    def __str__(self) -> str:
        return f"{self.position}: {self.who}: {self.message}"


@dataclass(frozen=True)
class NewStaff:
    username: str
    name: str
    email: str


@dataclass
class MemberRows:
    """What a membership list means for quizapp."""

    rows: list[RosterRow] = field(default_factory=list)  # students, for the roster import
    has_groups: bool = False
    links: dict[str, str] = field(default_factory=dict)  # username -> sub, to link on apply
    new_staff: list[NewStaff] = field(default_factory=list)
    left_alone: list[Note] = field(default_factory=list)
    skipped: list[Note] = field(default_factory=list)

    def extras(self) -> list[object]:
        """What the sync does beside the roster import, for the confirmation digest."""
        return [
            sorted(self.links.items()),
            [[s.username, s.name, s.email] for s in self.new_staff],
        ]


def _account_of(
    member: Member, accounts: Accounts, match: Match
) -> tuple[Account | None, str | None]:
    """(the member's account or None, or a reason the member cannot be placed)."""
    linked = accounts.by_sub.get(member.user_id)
    if linked is not None:
        return linked, None
    if match == "email":
        if not member.email:
            return None, "the VLE did not share their e-mail address"
        found = list(accounts.by_email.get(member.email.lower(), ()))
        if len(found) > 1:
            return None, f"{len(found)} quizapp accounts have the e-mail {member.email}"
        account = found[0] if found else None
    else:
        if not member.sourcedid:
            return None, "the VLE sent no lis_person_sourcedid (QUIZAPP_LTI_MATCH=username)"
        account = accounts.by_username.get(member.sourcedid)
    if account is not None and account.linked_sub and account.linked_sub != member.user_id:
        return None, (
            f"the quizapp account {account.username} is linked to another person of this VLE"
        )
    return account, None


def _fits(value: str, limit: int) -> bool:
    return len(value) <= limit and not _CONTROL.search(value)


def rows_from_members(
    members: Sequence[Member],
    accounts: Accounts,
    *,
    match: Match = "email",
    instructors_as_staff: bool = False,
) -> MemberRows:
    """Learners become roster rows (matched to existing accounts by link, then by
    e-mail or username); instructors are linked to their staff accounts, given new
    staff accounts only with `instructors_as_staff`, and otherwise reported; inactive
    and deleted members are left alone, as the CSV import leaves alone students who are
    not in the file (nobody is removed); anyone quizapp cannot place is skipped, with
    the reason."""
    result = MemberRows(has_groups=any(m.groups is not None for m in members))
    seen: dict[str, int] = {}
    subs_seen: set[str] = set()
    for member in members:

        def note(where: list[Note], message: str, member: Member = member) -> None:
            where.append(Note(member.position, member.who(), message))

        if member.user_id in subs_seen:
            note(result.skipped, "listed twice by the VLE")
            continue
        subs_seen.add(member.user_id)
        if not member.active:
            note(
                result.left_alone,
                f"{member.status.lower()} in the VLE: left alone (a sync never removes "
                "anyone, as the CSV import leaves alone students not in the file)",
            )
            continue
        instructor, learner = member.is_instructor, member.is_learner
        if not instructor and not learner:
            roles = ", ".join(r.rsplit("#", 1)[-1] for r in member.roles) or "no role"
            note(result.left_alone, f"{roles} in the VLE (neither learner nor instructor)")
            continue
        account, problem = _account_of(member, accounts, match)
        if problem:
            note(result.skipped, problem)
            continue
        # A new student's username: their e-mail (lower-case) or their sourcedid.
        wanted = account.username if account else (member.email.lower() if match == "email" else "")
        username = wanted or member.sourcedid
        email = member.email or (account.email if account else "")
        name = member.name or (account.name if account else "") or username
        reason = username_problem(username) or None
        if reason:
            note(result.skipped, f"username {username[:60]!r} {reason}")
            continue
        if not email or email_problem(email):
            note(
                result.skipped,
                "no usable e-mail address" if not email else f"e-mail {email_problem(email)}",
            )
            continue
        if not _fits(name, MAX_NAME) or not _fits(email, MAX_EMAIL):
            note(result.skipped, "name or e-mail too long or with a control character")
            continue
        if member.groups and not all(_fits(g, MAX_GROUP) for g in member.groups):
            note(result.skipped, f"a group name longer than {MAX_GROUP} characters")
            continue
        key = username.casefold()
        if key in seen:
            note(result.skipped, f"{username} is already member {seen[key]} of this list")
            continue
        seen[key] = member.position
        needs_link = account is None or account.linked_sub != member.user_id
        if instructor:
            if account is not None and account.is_staff:
                if needs_link:
                    result.links[username] = member.user_id
                linked = " (linked to the VLE person on apply)" if needs_link else ""
                note(result.left_alone, f"instructor: staff account {username}{linked}")
            elif account is not None:
                note(
                    result.left_alone,
                    f"instructor in the VLE, but {username} is a student account in "
                    "quizapp: not made staff (the VLE's role never does that)",
                )
            elif instructors_as_staff:
                result.new_staff.append(NewStaff(username, name, email))
                result.links[username] = member.user_id
            else:
                note(
                    result.left_alone,
                    "instructor with no quizapp account: not created (choose to create "
                    "staff accounts for instructors when syncing, or add one on the Roster "
                    "page)",
                )
            continue
        if account is not None and account.is_staff:
            note(result.left_alone, f"{username} is a staff account: not imported as a student")
            continue
        groups = (member.groups or ()) if result.has_groups else None
        result.rows.append(RosterRow(member.position, username, name, email, None, groups))
        if needs_link:
            result.links[username] = member.user_id
    return result
