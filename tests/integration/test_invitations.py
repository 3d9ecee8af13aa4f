"""Invitation links and passwords on the real database: single use under a race,
supersede, expiry, sessions ended, staff reset, the roster's scopes, and mail through a
real SMTP server."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from quizapp.models import AuditEvent, Invitation, Role, User
from quizapp.services import identity, invitations
from quizapp.services.errors import InvalidInput, NotFound
from quizapp.services.invitations import (
    LinkNotUsable,
    LinkState,
    Scope,
    invite,
    invitees,
    look_up,
    redeem,
    reset_password,
    send_invitations,
    set_password,
    token_digest,
)
from quizapp.services.mail import Outgoing, send_all, smtp_settings
from quizapp.services.users import authenticate, create_user
from tests.conftest import PASSWORD

NEW_PASSWORD = "violet tractor under the bridge"
ZONE = ZoneInfo("Europe/London")


def _user(session, username: str) -> User:
    return session.scalars(select(User).where(User.username == username)).one()


def _actions(session, user_id: int) -> list[str]:
    return list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.subject_id == user_id)
            .order_by(AuditEvent.id)
        )
    )


@pytest.fixture
def dana(session) -> User:
    """A student from the roster import: no password, never signed in."""
    return create_user(session, "dana", None, name="Dana O'Neill", email="dana@uni.example")


def test_a_link_sets_the_password_once_and_only_its_hash_is_stored(session, clock, users, dana):
    (issued,) = invite(session, [dana], clock(), by_id=users["staff"])
    stored = session.scalars(select(Invitation)).one()
    assert stored.token_hash == token_digest(issued.token) and issued.token not in stored.token_hash
    assert stored.expires_at == clock() + timedelta(days=7)  # the default lifetime
    assert look_up(session, issued.token, clock()).state is LinkState.VALID

    clock.advance(minutes=5)
    user = redeem(session, issued.token, NEW_PASSWORD, clock(), ip="10.1.1.1")
    assert user.id == dana.id and user.password_hash
    assert authenticate(session, "dana", NEW_PASSWORD) is not None
    session.expire_all()
    assert session.get(Invitation, stored.id).used_at == clock()
    assert look_up(session, issued.token, clock()).state is LinkState.USED
    with pytest.raises(LinkNotUsable) as refused:
        redeem(session, issued.token, "another long passphrase", clock())
    assert refused.value.info.state is LinkState.USED and refused.value.status == 410
    assert authenticate(session, "dana", NEW_PASSWORD) is not None  # unchanged
    assert _actions(session, dana.id) == ["invitation_created", "password_set"]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "password_set")).one()
    assert event.details == {"method": "invitation", "invitation_id": stored.id}
    assert event.ip == "10.1.1.1"


def test_two_uses_at_once_exactly_one_wins(app, session, clock, dana, monkeypatch):
    (issued,) = invite(session, [dana], clock(), by_id=None)
    # Both requests have checked the link and the rule before either writes: the hash
    # (the slow step) waits until both are there, so the conditional UPDATE decides.
    both_checked = threading.Barrier(2, timeout=10)
    real_hash = invitations.hash_password

    def hash_when_both_checked(password: str) -> str:
        both_checked.wait()
        return real_hash(password)

    monkeypatch.setattr(invitations, "hash_password", hash_when_both_checked)
    outcomes: dict[str, object] = {}
    database = app.extensions["quizapp_db"]

    def use(password: str) -> None:
        with database.new_session() as own:
            try:
                outcomes[password] = redeem(own, issued.token, password, clock())
            except LinkNotUsable as exc:
                outcomes[password] = exc

    first, second = "first browser passphrase", "second browser passphrase"
    threads = [threading.Thread(target=use, args=(p,)) for p in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [p for p, o in outcomes.items() if isinstance(o, User)]
    losers = [o for o in outcomes.values() if isinstance(o, LinkNotUsable)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0].info.state is LinkState.USED
    assert authenticate(session, "dana", winners[0]) is not None
    assert _actions(session, dana.id).count("password_set") == 1


def test_a_newer_link_supersedes_older_unused_ones(session, clock, dana):
    (old,) = invite(session, [dana], clock(), by_id=None)
    clock.advance(hours=1)
    (new,) = invite(session, [dana], clock(), by_id=None)
    assert look_up(session, old.token, clock()).state is LinkState.SUPERSEDED
    with pytest.raises(LinkNotUsable) as refused:
        redeem(session, old.token, NEW_PASSWORD, clock())
    assert "newer link" in refused.value.message
    assert _user(session, "dana").password_hash is None
    redeem(session, new.token, NEW_PASSWORD, clock())
    created = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "invitation_created").order_by(AuditEvent.id)
    ).all()
    assert [e.details["superseded"] for e in created] == [0, 1]


def test_an_expired_link_is_refused_and_says_so(session, clock, dana):
    (issued,) = invite(session, [dana], clock(), by_id=None, days=2)
    clock.advance(days=2)
    info = look_up(session, issued.token, clock())
    assert info.state is LinkState.EXPIRED and info.user.username == "dana"
    with pytest.raises(LinkNotUsable) as refused:
        redeem(session, issued.token, NEW_PASSWORD, clock())
    assert refused.value.message == "This link has expired."
    assert _user(session, "dana").password_hash is None


def test_unknown_and_absurd_tokens_are_unknown(session, clock):
    assert look_up(session, "not-a-token", clock()).state is LinkState.UNKNOWN
    assert look_up(session, "x" * 10_000, clock()).state is LinkState.UNKNOWN
    with pytest.raises(LinkNotUsable):
        redeem(session, "not-a-token", NEW_PASSWORD, clock())


def test_a_weak_password_is_refused_and_the_link_still_works(session, clock, dana):
    (issued,) = invite(session, [dana], clock(), by_id=None)
    for weak in ("short", "dana is my name", "password12345"):
        with pytest.raises(InvalidInput):
            redeem(session, issued.token, weak, clock())
    assert look_up(session, issued.token, clock()).state is LinkState.VALID
    redeem(session, issued.token, NEW_PASSWORD, clock())


def test_setting_a_password_from_a_link_ends_existing_sessions(session, clock, users):
    alice = session.get(User, users["alice"])
    old_session = identity.open_session(session, alice, "password", clock())
    assert identity.user_of_session(session, alice.id, old_session) is not None
    (issued,) = invite(session, [alice], clock(), by_id=users["staff"])
    redeem(session, issued.token, NEW_PASSWORD, clock())
    assert identity.user_of_session(session, alice.id, old_session) is None
    assert authenticate(session, "alice", PASSWORD) is None
    assert authenticate(session, "alice", NEW_PASSWORD) is not None


def test_staff_reset_stops_the_password_ends_sessions_and_issues_a_link(session, clock, users):
    alice = session.get(User, users["alice"])
    staff = session.get(User, users["staff"])
    old_session = identity.open_session(session, alice, "password", clock())
    (pending,) = invite(session, [alice], clock(), by_id=staff.id)
    issued = reset_password(session, alice.id, clock(), by=staff, days=3, ip="10.0.0.9")
    assert identity.user_of_session(session, alice.id, old_session) is None
    assert authenticate(session, "alice", PASSWORD) is None  # the old password is gone
    assert look_up(session, pending.token, clock()).state is LinkState.SUPERSEDED
    assert issued.expires_at == clock() + timedelta(days=3)
    reset = session.scalars(select(AuditEvent).where(AuditEvent.action == "password_reset")).one()
    assert (reset.actor_id, reset.subject_id, reset.details) == (
        staff.id,
        alice.id,
        {"had_password": True},
    )
    redeem(session, issued.token, NEW_PASSWORD, clock())
    assert authenticate(session, "alice", NEW_PASSWORD) is not None


def test_set_password_directly_follows_the_rule_and_retires_links(session, clock, users, dana):
    (pending,) = invite(session, [dana], clock(), by_id=None)
    with pytest.raises(InvalidInput, match="too short"):
        set_password(session, dana.id, "short", clock(), by_id=None, method="command_line")
    set_password(session, dana.id, NEW_PASSWORD, clock(), by_id=None, method="command_line")
    assert authenticate(session, "dana", NEW_PASSWORD) is not None
    assert look_up(session, pending.token, clock()).state is LinkState.EXPIRED
    assert _user(session, "dana").session_version == 1


def test_the_roster_scopes(session, clock, users, dana):
    create_user(session, "newstaff", None, role=Role.STAFF)  # no password: invitable
    erin = create_user(session, "erin", None)
    erin.active = False  # disabled accounts are never invited
    session.commit()
    alice = session.get(User, users["alice"])
    identity.open_session(session, alice, "password", clock())

    def names(scope):
        return [u.username for u in invitees(session, scope)]

    # Staff with a password ("staff") are never in a scope; name them to invite them.
    assert names(Scope.ALL) == ["alice", "bob", "carol", "dana", "newstaff"]
    assert names(Scope.NEVER_SIGNED_IN) == ["bob", "carol", "dana", "newstaff"]
    assert names(Scope.NO_PASSWORD) == ["dana", "newstaff"]
    assert [u.username for u in invitations.users_by_username(session, ["staff", "dana"])] == [
        "staff",
        "dana",
    ]
    with pytest.raises(NotFound, match="nobody"):
        invitations.users_by_username(session, ["dana", "nobody"])
    with pytest.raises(InvalidInput, match="erin"):
        invitations.users_by_username(session, ["erin"])


def test_the_sign_in_report(session, clock, users, dana):
    alice = session.get(User, users["alice"])
    identity.open_session(session, alice, "password", clock())
    invite(session, [dana], clock(), by_id=None)
    report = invitations.sign_in_report(session, clock())
    assert (report.students, report.never_signed_in, report.no_password) == (4, 3, 1)
    assert report.pending_links == 1
    rows = {r.user.username: r for r in report.rows}
    assert sorted(rows) == ["bob", "carol", "dana"]
    assert rows["dana"].last_invitation is not None and not rows["dana"].has_password
    assert rows["bob"].last_invitation is None and rows["bob"].never_signed_in


def test_create_user_refuses_an_existing_user_unless_asked_to_update(session, clock, users):
    with pytest.raises(InvalidInput, match="already exists"):
        create_user(session, "alice", NEW_PASSWORD)
    alice = session.get(User, users["alice"])
    old_session = identity.open_session(session, alice, "password", clock())
    updated = create_user(
        session, "alice", NEW_PASSWORD, email="alice@uni.example", role=None,
        update_existing=True, check_password=True, now=clock(),
    )  # fmt: skip
    assert updated.id == alice.id and updated.email == "alice@uni.example"
    assert updated.name == "Alice Adeyemi" and updated.role is Role.STUDENT  # kept
    assert authenticate(session, "alice", NEW_PASSWORD) is not None
    assert identity.user_of_session(session, alice.id, old_session) is None
    with pytest.raises(InvalidInput, match="username"):
        create_user(
            session, "alice", "alice alice alice", update_existing=True, check_password=True
        )
    staff = create_user(session, "staff", None, role=None, update_existing=True)
    assert staff.role is Role.STAFF  # --update without --staff/--student keeps the role


# --- mail --------------------------------------------------------------------------------


def test_links_are_emailed_over_smtp_and_a_refused_address_does_not_stop_the_others(
    session, clock, users, smtp_server
):
    people = [
        create_user(session, f"s{i}", None, name=f"Student {i}", email=f"s{i}@uni.example")
        for i in range(3)
    ]
    people.insert(1, create_user(session, "gone", None, email="bounce@uni.example"))
    people.append(create_user(session, "nomail", None))
    staff = session.get(User, users["staff"])
    staff.email = "sam@uni.example"
    session.commit()
    issued = invite(session, people, clock(), by_id=staff.id)
    settings = smtp_settings(smtp_server.settings())
    assert settings is not None
    report = send_invitations(
        session, issued, settings, "https://quiz.example", ZONE, clock(), by=staff
    )
    assert report.sent == 3
    assert {d.to: d.error for d in report.failed} == {
        "bounce@uni.example": "refused: 550 5.1.1 No such mailbox",
        "": "no e-mail address",
    }
    assert [rcpt for rcpt, _ in smtp_server.messages] == [[f"s{i}@uni.example"] for i in range(3)]
    rcpt, message = smtp_server.messages[0]
    assert message["To"] == "s0@uni.example" and message["From"] == "quizapp@uni.example"
    body = message.get_content()
    assert "Hello Student 0," in body and "Your username is s0." in body
    assert "ask Sam Staff (sam@uni.example)" in body
    link = re.search(r"https://quiz\.example/invitation/(\S+)", body)
    assert link and link.group(1) == issued[0].token
    emailed = {i.username: session.get(Invitation, i.invitation_id).emailed_at for i in issued}
    assert emailed == {"s0": clock(), "gone": None, "s1": clock(), "s2": clock(), "nomail": None}
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "invitations_emailed")
    ).one()
    assert event.details["sent"] == 3 and sorted(event.details["failed"]) == ["gone", "nomail"]
    # The e-mailed link works.
    redeem(session, link.group(1), NEW_PASSWORD, clock())
    assert authenticate(session, "s0", NEW_PASSWORD) is not None


def test_an_unreachable_mail_server_reports_every_message(smtp_server):
    settings = smtp_settings(smtp_server.settings() | {"QUIZAPP_SMTP_PORT": 1})
    assert settings is not None
    deliveries = send_all(settings, [Outgoing(1, "a@uni.example", "s", "b")])
    assert len(deliveries) == 1 and "could not connect" in (deliveries[0].error or "")


def test_no_smtp_host_means_no_mail():
    assert smtp_settings({"QUIZAPP_SMTP_HOST": ""}) is None
