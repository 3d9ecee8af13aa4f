"""Roster sync from the VLE (LTI NRPS 2.0): staff choose a course known from launches,
see the roster import's own preview of the VLE's members, and apply it; the platform
answers in pages (`Link: rel="next"`), and a malformed page, a revoked token, a looping
or foreign `next` and an endless list are each handled without applying anything
unexpected. The CLI does the same."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.models import LtiPerson, Role, User, UserGroup
from quizapp.services.lti_access import AccessTokens
from quizapp.services.lti_roster import SyncRefused, courses, fetch_members
from quizapp.services.users import create_user
from tests.conftest import PASSWORD, Auth
from tests.functional.helpers import csrf_of
from tests.lti.fixtures import ALICE, audit_actions, launch
from tests.lti.nrps_service import MEDIA_TYPE, NRPS_SCOPE, install_memberships, instructor, member
from tests.lti.platform import Platform

BOB = member("sub-bob", "Bob@Uni.Example", "Bob Builder")
PAT = member("sub-pat", "pat@uni.example", "Patricia Student")  # was "Pat Student"
ALICE_M = member("sub-alice", "alice@uni.example", "Alice A")
SAM_M = instructor("sub-sam", "sam@uni.example", "Sam Staff")
NEW_TEACHER = instructor("sub-tia", "tia@uni.example", "Tia Teacher")
GONE = member("sub-gone", "gone@uni.example", "Gone Away", status="Inactive")
NO_EMAIL = member("sub-anon", name="Anon Ymous")
MENTOR = member(
    "sub-mum",
    "mum@uni.example",
    "A Parent",
    roles=("http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor",),
)


@pytest.fixture
def course(lti_client, platform: Platform, session: Session) -> None:
    """The course is known once someone launched from it."""
    assert launch(lti_client, platform, ALICE).status_code == 302


@pytest.fixture
def staff(lti_app: Flask, session: Session, course: None):
    create_user(session, "staffer", PASSWORD, name="Stef Staffer", role=Role.STAFF)
    client = lti_app.test_client()
    Auth(client).login("staffer")
    return client


def _user(session: Session, username: str) -> User | None:
    session.rollback()
    return session.scalars(select(User).where(User.username == username)).first()


def _links(session: Session) -> dict[str, str]:
    session.rollback()
    rows = session.execute(
        select(LtiPerson.sub, User.username).join(User, User.id == LtiPerson.user_id)
    )
    return {sub: username for sub, username in rows}


def _text(response) -> str:
    """The page's text as a reader sees it: entities decoded, white space collapsed."""
    return re.sub(r"\s+", " ", unescape(response.get_data(as_text=True)))


def _preview(client, **fields: Any):
    page = client.get("/staff/lti/roster").get_data(as_text=True)
    course_id = re.search(r'name="course" value="(\d+)"', page).group(1)
    data = {"csrf_token": csrf_of(page), "course": course_id, **fields}
    return client.post("/staff/lti/roster/preview", data=data)


def _confirm(client, page: str):
    form = page[page.index('action="/staff/lti/roster/apply"') :]
    form = form[: form.index("</form>")]
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag).group(1)
        value = re.search(r'value="([^"]*)"', tag)
        fields[name] = unescape(value.group(1)) if value else ""
    return client.post("/staff/lti/roster/apply", data=fields)


def test_staff_sync_three_pages_preview_then_apply(staff, platform, session):
    service = install_memberships(
        platform,
        [ALICE_M, BOB, SAM_M],
        [PAT, NEW_TEACHER, GONE],
        [NO_EMAIL, MENTOR],
    )
    preview = _preview(staff)
    page = _text(preview)
    assert preview.status_code == 200, page
    assert "Nothing has been applied yet" in page
    assert "The VLE listed 8 members (3 pages)" in page
    assert "bob@uni.example" in page and "Bob Builder" in page  # new: the e-mail as username
    assert "“Pat Student” → “Patricia Student”" in page
    assert "instructor: staff account sam (linked to the VLE person on apply)" in page
    assert "instructor with no quizapp account: not created" in page
    assert "inactive in the VLE: left alone" in page
    assert "Mentor in the VLE" in page
    assert "Anon Ymous: the VLE did not share their e-mail address" in page
    assert _user(session, "bob@uni.example") is None, "the preview applies nothing"
    # Every page asked for the NRPS media type with a token granting the NRPS scope.
    granted = [r for r in service.requests if NRPS_SCOPE in platform.bearer_scopes(r)]
    assert service.served == len(granted) == 3
    assert all(r.headers["accept"] == MEDIA_TYPE for r in service.requests)

    done = _confirm(staff, preview.get_data(as_text=True))
    assert done.status_code == 302, done.get_data(as_text=True)
    roster_page = _text(staff.get(done.headers["Location"]))
    assert "Roster synced from Machine learning" in roster_page
    assert "1 new, 1 updated" in roster_page
    bob = _user(session, "bob@uni.example")
    assert bob is not None and bob.role is Role.STUDENT and bob.password_hash is None
    assert bob.email == "Bob@Uni.Example"
    pat = _user(session, "pat")
    assert pat is not None and pat.name == "Patricia Student"
    assert _user(session, "tia@uni.example") is None
    assert _links(session) == {
        "sub-alice": "alice",  # linked at her launch
        "sub-bob": "bob@uni.example",
        "sub-pat": "pat",
        "sub-sam": "sam",
    }
    actions = dict(audit_actions(session))
    assert actions["roster_import"]["source"].startswith("VLE roster sync: Machine learning")
    assert actions["lti_roster_sync"]["pages"] == 3 and actions["lti_roster_sync"]["linked"] == 3

    # Again: nothing to apply.
    again = _text(_preview(staff))
    assert "nothing to apply" in again and "roster/apply" not in again


def test_a_launch_after_the_sync_finds_the_linked_account(staff, platform, session, lti_app):
    from tests.lti.platform import Person

    install_memberships(platform, [member("sub-newbie", "newbie@uni.example", "New Bie")])
    _confirm(staff, _preview(staff).get_data(as_text=True))
    # The VLE's e-mail changes later: the link, not the e-mail, finds the account.
    moved = Person("sub-newbie", email="renamed@uni.example", name="New Bie")
    assert launch(lti_app.test_client(), platform, moved).status_code == 302
    assert _links(session)["sub-newbie"] == "newbie@uni.example"


def test_instructors_become_staff_only_when_staff_ask(staff, platform, session):
    install_memberships(platform, [NEW_TEACHER, BOB])
    page = _text(_preview(staff, instructors_as_staff="y"))
    assert "New staff accounts (1)" in page and "tia@uni.example (Tia Teacher)" in page
    assert _confirm(staff, page).status_code == 302
    tia = _user(session, "tia@uni.example")
    assert tia is not None and tia.role is Role.STAFF and tia.password_hash is None
    assert _links(session)["sub-tia"] == "tia@uni.example"
    created = [d for a, d in audit_actions(session) if a == "staff_created"]
    assert created and created[-1]["source"] == "lti_roster_sync"


def test_groups_from_the_vle_set_the_groups(staff, platform, session):
    install_memberships(
        platform,
        [
            member("sub-bob", "bob@uni.example", "Bob", groups=["Seminar A", "Lab 1"]),
            member("sub-pat", "pat@uni.example", "Pat Student", group_enrollments=[
                {"group_id": "g7", "name": "Seminar B"}, {"group_id": "g9"}
            ]),
            member("sub-alice", "alice@uni.example", "Alice A"),
        ],
    )  # fmt: skip
    page = _text(_preview(staff))
    assert "The VLE sends groups" in page
    assert _confirm(staff, page).status_code == 302
    session.rollback()
    groups = {
        (username, name)
        for username, name in session.execute(
            select(User.username, UserGroup.name).join(UserGroup, UserGroup.user_id == User.id)
        )
    }
    assert groups == {
        ("bob@uni.example", "Seminar A"),
        ("bob@uni.example", "Lab 1"),
        ("pat", "Seminar B"),
        ("pat", "g9"),
    }


def test_a_malformed_page_applies_nothing(staff, platform, session):
    install_memberships(platform, [BOB], {"members": "everyone"})
    response = _preview(staff)
    page = _text(response)
    assert response.status_code == 502
    assert "Page 2 of the VLE's list: the page has no list of members" in page
    assert "Nothing was changed" in page
    assert _user(session, "bob@uni.example") is None


def test_a_revoked_token_is_asked_again_and_the_sync_goes_on(staff, platform, session, clock):
    install_memberships(platform, [BOB], [PAT], revoke_after=1)
    tokens = AccessTokens()
    fetched = fetch_members(session, courses(session)[0], clock(), tokens=tokens)
    assert [m.user_id for m in fetched.members] == ["sub-bob", "sub-pat"]
    assert platform.token_requests == 2 and fetched.pages == 2


def test_a_looping_next_link_stops_and_says_so(staff, platform, session):
    service = install_memberships(platform, [BOB], [PAT], loop_to=1)
    response = _preview(staff)
    page = _text(response)
    assert response.status_code == 200
    assert "came back to a page already read" in page and "may be incomplete" in page
    assert service.served == 2  # each page once; the loop back to page 1 is not followed


def test_a_next_link_to_another_site_is_refused(staff, platform, session, clock):
    install_memberships(platform, [BOB], [PAT], foreign_next=True)
    with pytest.raises(SyncRefused, match="another site"):
        fetch_members(session, courses(session)[0], clock(), tokens=AccessTokens())


def test_an_endless_list_is_cut_off_and_refused(staff, platform, session, clock):
    pages = [[member(f"sub-{i}", f"s{i}@uni.example", f"S {i}")] for i in range(5)]
    install_memberships(platform, *pages)
    with pytest.raises(SyncRefused, match="more than 3 pages"):
        fetch_members(session, courses(session)[0], clock(), tokens=AccessTokens(), max_pages=3)
    with pytest.raises(SyncRefused, match="more than 2 members"):
        fetch_members(session, courses(session)[0], clock(), tokens=AccessTokens(), max_members=2)


def test_a_list_that_changed_since_the_preview_is_shown_again(staff, platform, session):
    service = install_memberships(platform, [BOB])
    preview = _preview(staff).get_data(as_text=True)
    service.pages = [[BOB, PAT]]  # Pat's name changes in the VLE meanwhile
    response = _confirm(staff, preview)
    page = _text(response)
    assert response.status_code == 409
    assert "changed since this preview" in page and "Patricia Student" in page
    assert _user(session, "bob@uni.example") is None


def test_the_vle_refusing_the_service_is_a_clear_page(staff, platform, session):
    from tests.lti.platform import Reply

    platform.routes[("GET", "/memberships")] = lambda request: Reply(403, {"error": "no"})
    response = _preview(staff)
    page = _text(response)
    assert response.status_code == 502
    assert "HTTP 403" in page and "Names and Role Provisioning" in page


def test_students_cannot_sync(lti_client, course):
    # lti_client is signed in as Alice (a student) by the course fixture's launch.
    assert lti_client.get("/staff/lti/roster").status_code == 403


def test_cli_roster_sync_dry_run_then_apply(lti_app, platform, session, course):
    install_memberships(platform, [BOB, PAT, NEW_TEACHER])
    runner = lti_app.test_cli_runner()
    dry = runner.invoke(args=["lti", "roster-sync"])
    assert dry.exit_code == 0, dry.output
    assert "member 1: new bob@uni.example" in dry.output
    assert "Dry run: nothing was applied" in dry.output
    assert _user(session, "bob@uni.example") is None
    done = runner.invoke(args=["lti", "roster-sync", "--context", "course-1", "--apply"])
    assert done.exit_code == 0, done.output
    assert "Synced: 1 new, 1 updated" in done.output
    assert _user(session, "bob@uni.example") is not None
    unknown = runner.invoke(args=["lti", "roster-sync", "--context", "nope"])
    assert unknown.exit_code == 1 and "No course 'nope'" in unknown.output
