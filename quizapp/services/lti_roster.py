"""Roster sync from the VLE (LTI Names and Role Provisioning Services 2.0).

A course that has launched quizapp (an `LtiContext` with the membership list URL its
launches carried) can fill the roster from the VLE: `fetch_members` reads the list page
by page with a bearer token (services/lti_access.py), `plan_sync` maps the members to
the CSV import's rows (domain/lti_roster.py) and runs the roster import's own dry run,
and `apply_sync` fetches again, checks that the result is still what was previewed, and
applies it through the roster import (all or nothing, audited as `roster_import`),
linking the VLE's people to their accounts (`lti_linked`) and creating the staff
accounts staff asked for (`staff_created`) in the same transaction.

The fetch is bounded: at most `MAX_PAGES` pages and `MAX_MEMBERS` members (more is
refused), a `next` link seen before ends the paging (a looping platform; the preview
says the list may be incomplete), a `next` link to another site than the membership
URL's is refused (the token must not travel elsewhere), and each request has the
timeout and size limit of services/http_json.py. Nothing is held in the database while
the VLE is asked.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from quizapp.db import end_snapshot
from quizapp.domain.lti import NRPS_SCOPE
from quizapp.domain.lti_roster import (
    MEMBERSHIP_MEDIA_TYPE,
    Account,
    Accounts,
    Match,
    Member,
    MemberRows,
    MembershipProblem,
    Note,
    next_page_url,
    read_members,
    rows_from_members,
)
from quizapp.domain.roster import MAX_ROWS
from quizapp.models import LtiContext, LtiPerson, LtiPlatform, User
from quizapp.services import audit
from quizapp.services.errors import Conflict, NotFound, ServiceError
from quizapp.services.lti_access import TOKENS, AccessTokens, PlatformServiceError, call_service
from quizapp.services.roster import (
    CHANGED_SINCE_PREVIEW,
    RosterPlan,
    RosterResult,
    add_staff_account,
    apply_roster,
    plan_roster,
)

MAX_PAGES = 200
MAX_MEMBERS = MAX_ROWS  # the CSV import's bound
_CHUNK = 500


class SyncRefused(ServiceError):
    """The VLE's list could not be read (unreachable, refused, malformed, too long):
    nothing was applied."""

    status = 502


class InvalidChoice(ServiceError):
    status = 400


@dataclass(frozen=True)
class CourseChoice:
    """A course known from launches, for the sync page and the CLI."""

    id: int  # LtiContext.id
    platform: str
    context_id: str
    title: str
    memberships_url: str
    updated_at: datetime

    @property
    def label(self) -> str:
        return f"{self.title or self.context_id} ({self.platform})"


def courses(session: Session) -> list[CourseChoice]:
    """Every course a launch has told quizapp about, newest first; those without a
    membership list URL cannot be synced (their VLE offered no NRPS)."""
    rows = session.execute(
        select(LtiContext, LtiPlatform.name, LtiPlatform.issuer)
        .join(LtiPlatform, LtiPlatform.id == LtiContext.platform_id)
        .order_by(LtiContext.updated_at.desc(), LtiContext.id.desc())
    )
    return [
        CourseChoice(
            context.id,
            name or issuer,
            context.context_id,
            context.title,
            context.memberships_url,
            context.updated_at,
        )
        for context, name, issuer in rows
    ]


def find_course(session: Session, key: str) -> CourseChoice:
    """A course by its quizapp id or by the VLE's context id (when only one platform
    has that context id)."""
    known = courses(session)
    by_id = [c for c in known if key.isdigit() and c.id == int(key)]
    found = by_id or [c for c in known if c.context_id == key]
    if not found:
        raise NotFound(f"No course {key!r} is known from a launch.")
    if len(found) > 1:
        raise InvalidChoice(
            f"Several VLEs have a course {key!r}: give quizapp's number for it ("
            + ", ".join(str(c.id) for c in found)
            + ")."
        )
    return found[0]


def match_of(setting: str) -> Match:
    """QUIZAPP_LTI_MATCH (as LtiSettings reads it) for the member mapping."""
    return "username" if setting == "username" else "email"


@dataclass
class Fetched:
    members: list[Member] = field(default_factory=list)
    pages: int = 0
    warnings: list[str] = field(default_factory=list)


def _same_site(url: str, base: str) -> bool:
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    return a.scheme in ("http", "https") and (a.scheme, a.netloc) == (b.scheme, b.netloc)


def fetch_members(
    session: Session,
    course: CourseChoice,
    now: datetime,
    *,
    tokens: AccessTokens = TOKENS,
    max_pages: int = MAX_PAGES,
    max_members: int = MAX_MEMBERS,
) -> Fetched:
    """Every member of the course's list, page by page; SyncRefused when the list
    cannot be read whole."""
    if not course.memberships_url:
        raise SyncRefused(
            f"{course.label}: the VLE's launches offered no membership list (Names and Role "
            "Provisioning is off for this tool in the VLE)."
        )
    context = session.get(LtiContext, course.id)
    platform = session.get(LtiPlatform, context.platform_id) if context else None
    if platform is None:
        raise NotFound("That course's VLE is no longer registered.")
    end_snapshot(session)  # hold nothing while the VLE is asked
    fetched = Fetched()
    url: str | None = course.memberships_url
    seen: set[str] = set()
    while url is not None:
        if url in seen:
            fetched.warnings.append(
                f"The VLE's paging came back to a page already read ({url[:200]}); quizapp "
                "stopped there, so the list may be incomplete."
            )
            break
        if fetched.pages >= max_pages:
            raise SyncRefused(
                f"The VLE's list runs to more than {max_pages} pages: quizapp stopped "
                "and applied nothing."
            )
        seen.add(url)
        try:
            answer = call_service(
                session,
                platform,
                url,
                [NRPS_SCOPE],
                now,
                accept=MEMBERSHIP_MEDIA_TYPE,
                tokens=tokens,
            )
        except PlatformServiceError as error:
            raise SyncRefused(
                f"The VLE did not give the membership list: {error.detail}"
                + (
                    " (is Names and Role Provisioning allowed for quizapp?)"
                    if error.status in (401, 403)
                    else ""
                )
            ) from error
        fetched.pages += 1
        try:
            members = read_members(answer.body, len(fetched.members) + 1, course.context_id)
        except MembershipProblem as problem:
            raise SyncRefused(f"Page {fetched.pages} of the VLE's list: {problem}") from problem
        fetched.members.extend(members)
        if len(fetched.members) > max_members:
            raise SyncRefused(
                f"The VLE's list has more than {max_members} members: quizapp stopped and "
                "applied nothing."
            )
        following = next_page_url(answer.headers.get_all("Link") or [])
        if following is not None:
            following = urllib.parse.urljoin(url, following)
            if not _same_site(following, course.memberships_url):
                raise SyncRefused(
                    f"The VLE's next page is on another site ({following[:200]}): refused."
                )
        url = following
    return fetched


def _accounts(session: Session, platform_id: int, members: Sequence[Member]) -> Accounts:
    """The accounts the members may be: linked at this platform, or with their e-mail
    or username (looked up in chunks)."""
    subs = [m.user_id for m in members]
    emails = sorted({m.email.lower() for m in members if m.email})
    usernames = sorted({m.sourcedid for m in members if m.sourcedid})

    def account(user: User, sub: str = "") -> Account:
        return Account(user.username, user.name, user.email, user.is_staff, sub)

    links: dict[int, str] = {
        user_id: sub
        for user_id, sub in session.execute(
            select(LtiPerson.user_id, LtiPerson.sub).where(LtiPerson.platform_id == platform_id)
        )
    }
    by_sub: dict[str, Account] = {}
    for start in range(0, len(subs), _CHUNK):
        for user, sub in session.execute(
            select(User, LtiPerson.sub)
            .join(LtiPerson, LtiPerson.user_id == User.id)
            .where(
                LtiPerson.platform_id == platform_id,
                LtiPerson.sub.in_(subs[start : start + _CHUNK]),
            )
        ):
            by_sub[sub] = account(user, sub)
    by_email: dict[str, list[Account]] = {}
    for start in range(0, len(emails), _CHUNK):
        for user in session.scalars(
            select(User).where(func.lower(User.email).in_(emails[start : start + _CHUNK]))
        ):
            by_email.setdefault(user.email.lower(), []).append(
                account(user, links.get(user.id, ""))
            )
    by_username: dict[str, Account] = {}
    for start in range(0, len(usernames), _CHUNK):
        for user in session.scalars(
            select(User).where(User.username.in_(usernames[start : start + _CHUNK]))
        ):
            by_username[user.username] = account(user, links.get(user.id, ""))
    return Accounts(by_sub, by_email, by_username)


@dataclass
class SyncPlan:
    """A dry run of a sync: the roster import's plan for the members' rows, and what
    the sync does beside it."""

    course: CourseChoice
    fetched: Fetched
    mapped: MemberRows
    roster: RosterPlan
    instructors_as_staff: bool

    @property
    def fingerprint(self) -> str:
        data = [self.roster.fingerprint, self.mapped.extras()]
        return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()

    @property
    def changes_anything(self) -> bool:
        return bool(self.roster.changes_anything or self.mapped.links or self.mapped.new_staff)

    @property
    def new_links(self) -> int:
        return len(self.mapped.links)


def plan_sync(
    session: Session,
    course: CourseChoice,
    now: datetime,
    *,
    match: Match = "email",
    instructors_as_staff: bool = False,
    tokens: AccessTokens = TOKENS,
) -> SyncPlan:
    """What syncing this course from the VLE would do; nothing is changed."""
    fetched = fetch_members(session, course, now, tokens=tokens)
    return _plan(session, course, fetched, match, instructors_as_staff)


def _plan(
    session: Session,
    course: CourseChoice,
    fetched: Fetched,
    match: Match,
    instructors_as_staff: bool,
) -> SyncPlan:
    platform_id = _platform_id(session, course)
    accounts = _accounts(session, platform_id, fetched.members)
    mapped = rows_from_members(
        fetched.members, accounts, match=match, instructors_as_staff=instructors_as_staff
    )
    roster = plan_roster(session, mapped.rows)
    if roster.problems:
        # A row the roster import refuses (a new student's username is a staff
        # account's) is skipped with the reason, rather than holding up everyone else.
        refused = {p.line: str(p.message) for p in roster.problems}
        kept = []
        for row in mapped.rows:
            if row.line in refused:
                mapped.skipped.append(Note(row.line, row.name, refused[row.line]))
                mapped.links.pop(row.username, None)
            else:
                kept.append(row)
        mapped.rows = kept
        mapped.skipped.sort(key=lambda n: n.position)
        roster = plan_roster(session, kept)
    return SyncPlan(course, fetched, mapped, roster, instructors_as_staff)


def _platform_id(session: Session, course: CourseChoice) -> int:
    platform_id = session.scalar(select(LtiContext.platform_id).where(LtiContext.id == course.id))
    if platform_id is None:
        raise NotFound("That course is no longer known.")
    return int(platform_id)


@dataclass(frozen=True)
class SyncResult:
    roster: RosterResult
    linked: int
    staff_created: int

    def summary(self) -> str:
        extra = f" {self.linked} VLE person(s) linked to their account."
        if self.staff_created:
            extra += f" {self.staff_created} staff account(s) created."
        return self.roster.summary() + extra


def apply_sync(
    session: Session,
    course: CourseChoice,
    by: User | None,
    now: datetime,
    *,
    expected: str,
    match: Match = "email",
    instructors_as_staff: bool = False,
    tokens: AccessTokens = TOKENS,
) -> SyncResult:
    """Fetch the list again and apply it if it still means what was previewed
    (`expected`, SyncPlan.fingerprint); Conflict otherwise (nothing applied)."""
    plan = plan_sync(
        session,
        course,
        now,
        match=match,
        instructors_as_staff=instructors_as_staff,
        tokens=tokens,
    )
    end_snapshot(session)
    if plan.roster.problems:
        raise Conflict(CHANGED_SINCE_PREVIEW)
    if plan.fingerprint != expected:
        raise Conflict(CHANGED_SINCE_PREVIEW)
    platform_id = _platform_id(session, course)
    end_snapshot(session)
    actor_id = by.id if by is not None else None
    counts = {"linked": 0, "staff": 0}

    def link_and_create(session: Session) -> None:
        for staff in plan.mapped.new_staff:
            if session.scalar(select(User.id).where(User.username == staff.username)):
                raise Conflict(CHANGED_SINCE_PREVIEW)
            add_staff_account(
                session,
                username=staff.username,
                name=staff.name,
                email=staff.email,
                password_hash=None,  # they sign in from the VLE (or SSO)
                now=now,
                actor_id=actor_id,
                source="lti_roster_sync",
            )
            counts["staff"] += 1
        for username, sub in sorted(plan.mapped.links.items()):
            user_id = session.scalar(select(User.id).where(User.username == username))
            if user_id is None:
                raise Conflict(CHANGED_SINCE_PREVIEW)
            taken = session.execute(
                select(LtiPerson.user_id, LtiPerson.sub).where(
                    LtiPerson.platform_id == platform_id,
                    or_(LtiPerson.sub == sub, LtiPerson.user_id == user_id),
                )
            ).first()
            if taken is not None:
                if tuple(taken) == (user_id, sub):
                    continue  # a launch linked them meanwhile
                raise Conflict(CHANGED_SINCE_PREVIEW)
            session.add(LtiPerson(platform_id=platform_id, sub=sub, user_id=user_id, linked_at=now))
            audit.record(
                session,
                "lti_linked",
                now,
                actor_id=actor_id,
                subject_id=user_id,
                sub=sub[:255],
                match="roster_sync",
                context=course.context_id[:255],
            )
            counts["linked"] += 1
        audit.record(
            session,
            "lti_roster_sync",
            now,
            actor_id=actor_id,
            context=course.context_id[:255],
            course=course.label[:255],
            pages=plan.fetched.pages,
            members=len(plan.fetched.members),
            students=len(plan.mapped.rows),
            linked=counts["linked"],
            staff_created=counts["staff"],
            left_alone=len(plan.mapped.left_alone),
            skipped=len(plan.mapped.skipped),
            warnings=plan.fetched.warnings,
        )

    result = apply_roster(
        session,
        plan.mapped.rows,
        by,
        now,
        expected=plan.roster.fingerprint,
        source=f"VLE roster sync: {course.label}"[:200],
        also=link_and_create,
    )
    return SyncResult(result, counts["linked"], counts["staff"])
