"""Who may reach what, login throttling, headers, and the audit trail."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from quizapp.models import AnswerLog, Attempt, AuditEvent
from quizapp.web import check_access_rules
from quizapp.web.security import ACCESS_LEVELS
from tests.conftest import Auth
from tests.functional.helpers import csrf_of, seq_base, slot_of, start_attempt

# Every route and who may reach it. A route added later without an entry here fails
# test_every_route_has_a_rule_in_this_table; one without a decorator stops the app.
ROUTES = {
    "auth.login": "public",
    "sso.start": "public",
    "sso.callback": "public",
    "auth.logout": "user",
    "student.dashboard": "user",
    "student.start_page": "user",
    "student.start": "user",
    "student.attempt_page": "user",
    "student.save": "user",
    "student.confirm_submit": "user",
    "student.submit": "user",
    "student.result": "user",
    "student.review": "user",
    "api.status": "user",
    "api.save_answer": "user",
    "api.flag": "user",
    "api.time_up": "user",
    "staff.index": "staff",
    "staff.export_csv": "staff",
    "staff.audit": "staff",
    "staff.audit_csv": "staff",
    "stats.quiz": "staff",
    "stats.quiz_csv": "staff",
    "preview.index": "staff",
    "preview.question": "staff",
    "assets.asset": "user",
    "monitor.overview": "staff",
    "monitor.live": "staff",
    "monitor.preflight": "staff",
    "monitor.student": "staff",
    "monitor.intervene": "staff",
    "monitor.reopen": "staff",
    "monitor.finalise": "staff",
    "monitor.accept_late": "staff",
    "auth.logout_everywhere": "user",
    "throttle.index": "staff",
    "staff.vle_uploads": "staff",
    "throttle.clear": "staff",
    "roster.index": "staff",
    "roster.preview": "staff",
    "roster.apply": "staff",
    "roster.create_staff": "staff",
    "marking.queue": "staff",
    "marking.slot": "staff",
    "marking.mark": "staff",
    "marking.history": "staff",
    "marking.regrade": "staff",
    "marking.regrade_commit": "staff",
    "release.edit": "staff",
    "invitations.index": "staff",
    "invitations.invite_many": "staff",
    "invitations.invite_one": "staff",
    "invitations.reset": "staff",
    "invitations.set_password": "public",
    "bank_upload.index": "staff",
    "bank_upload.check": "staff",
    "bank_upload.preview": "staff",
    "bank_upload.import_": "staff",
    "lti.login": "public",
    "lti.launch": "public",
    "lti.jwks": "public",
    "lti.login_check": "public",
    "lti.launch_check": "public",
    "lti_deep_linking.pick": "staff",
    "lti_deep_linking.answer": "staff",
    "lti_scores.page": "staff",
    "lti_scores.resend_scores": "staff",
    "lti_admin.platforms": "staff",
    "lti_admin.platform_new": "staff",
    "lti_admin.platform_edit": "staff",
    "lti_admin.roster_sync": "staff",
    "lti_admin.roster_preview": "staff",
    "lti_admin.roster_apply": "staff",
    "lti_admin.register_start": "staff",
    "lti_admin.register_finish": "staff",
}


def _endpoints(app: Flask) -> dict[str, str]:
    return {
        rule.endpoint: rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"
    }


def test_every_route_has_a_rule_in_this_table(app):
    endpoints = _endpoints(app)
    assert sorted(endpoints) == sorted(ROUTES)
    for endpoint, level in ROUTES.items():
        assert app.view_functions[endpoint].access == level, endpoint


def test_a_view_without_an_access_rule_stops_the_app(app):
    app.view_functions["sneaky"] = lambda: "x"
    with pytest.raises(RuntimeError, match="'sneaky' has no access rule"):
        check_access_rules(app)
    assert set(ACCESS_LEVELS) == {"public", "user", "staff"}


def _concrete(path: str) -> str:
    """A URL for a rule: ids become 1, `any(a, b)` its first choice, other values x.png."""

    def value(match: re.Match[str]) -> str:
        converter, name = match.group(1) or "", match.group(2)
        if converter.startswith("any("):
            return converter[4:].split(",")[0].strip(" )")
        return "1" if "id" in name or name == "slot" else "x.png"

    return re.sub(r"<(?:([a-z]+(?:\([^)]*\))?):)?([a-z_]+)>", value, path)


def _methods(app: Flask, endpoint: str) -> list[str]:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    return sorted(m for m in rule.methods if m not in {"HEAD", "OPTIONS"})


def test_anonymous_visitors_reach_only_public_routes(app, client):
    for endpoint, path in _endpoints(app).items():
        for method in _methods(app, endpoint):
            response = client.open(_concrete(path), method=method)
            if ROUTES[endpoint] == "public":
                # (a made-up invitation token is a clear "no such link" page: 404)
                expected = (200, 400, 404) if "<token>" in path else (200, 400)
                assert response.status_code in expected, (endpoint, method)
            elif method == "GET":
                assert response.status_code in (302, 401), (endpoint, response.status_code)
                if response.status_code == 302:
                    assert "/login" in response.headers["Location"]
            else:
                # A state change without a session: refused (CSRF or login), never a 500.
                assert response.status_code in (302, 400, 401), (endpoint, method)


def test_students_get_403_on_every_staff_route(app, client, auth, users, sample_bank):
    auth.login("alice")
    for endpoint, path in _endpoints(app).items():
        if ROUTES[endpoint] == "staff":
            for method in _methods(app, endpoint):
                assert client.open(_concrete(path), method=method).status_code in (403, 400), (
                    endpoint
                )


def test_security_headers(client, auth, users, sample_bank):
    login = client.get("/login")
    csp = login.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert login.headers["X-Frame-Options"] == "DENY"
    assert login.headers["X-Content-Type-Options"] == "nosniff"
    assert login.headers["Referrer-Policy"] == "same-origin"
    auth.login("alice")
    attempt_id, _ = start_attempt(client)
    assert client.get(f"/attempt/{attempt_id}").headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_script_or_style():
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "quizapp" / "templates"
    for path in templates.rglob("*.html"):
        if path.name.endswith("_standalone.html"):
            continue  # written to a file by the CLI for staff, never served by the app
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path.name
        assert " style=" not in html and "<style" not in html, path.name
        assert not re.search(r"\son[a-z]+=", html), path.name


def test_session_is_new_at_login_and_cleared_at_logout(client, auth, users):
    client.get("/login")
    before = client.get_cookie("session")
    auth.login("alice")
    after = client.get_cookie("session")
    assert after is not None and (before is None or before.value != after.value)
    page = client.get("/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_of(page)})
    assert client.get("/").status_code == 302


def test_logins_starts_and_submissions_are_audited(client, auth, users, sample_bank, session):
    auth.login("alice", "wrong")
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": csrf_of(page)})
    session.rollback()
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["login_failed", "login", "start", "submit"]
    assert events[0].details == {"username": "alice", "known_device": False}
    assert events[0].ip == "127.0.0.1"
    assert events[3].attempt_id == attempt_id and events[3].details["receipt"]


def test_concurrent_use_is_flagged_and_the_timeline_shows_both_addresses(
    app, client, auth, users, sample_bank, session
):
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    token, base = csrf_of(page), seq_base(page)
    slot = slot_of(session, attempt_id, "cnn-output-width")
    url = f"/api/attempts/{attempt_id}/answers/{slot}"
    client.put(
        url,
        json={"value": "15", "seq": base + 1},
        headers={"X-CSRFToken": token},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    second_device = app.test_client()
    Auth(second_device).login("alice")
    other_token = csrf_of(second_device.get(f"/attempt/{attempt_id}").get_data(as_text=True))
    second_device.put(
        url,
        json={"value": "16", "seq": base + 2},
        headers={"X-CSRFToken": other_token},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    session.rollback()
    assert session.get(Attempt, attempt_id).concurrent_use_at is not None

    staff = app.test_client()
    Auth(staff).login("staff")
    page = staff.get("/staff/audit?student=alice").get_data(as_text=True)
    assert "concurrent_use" in page and "10.0.0.1" in page and "10.0.0.2" in page
    exported = staff.get("/staff/audit.csv?student=alice&quiz=quiz1-foundations")
    lines = exported.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("time_utc,action,student")
    actions = [line.split(",")[1] for line in lines[1:]]
    assert actions.count("save") == 2 and "start" in actions and "concurrent_use" in actions
    assert staff.get("/staff/audit?student=nobody").status_code == 404


def test_two_browser_sessions_from_one_address_are_flagged_too(
    app, client, auth, users, sample_bank, session
):
    """A lab PC and a phone on the same campus NAT: one address, two sessions."""
    auth.login("alice")
    attempt_id, page = start_attempt(client)
    slot = slot_of(session, attempt_id, "cnn-output-width")
    url = f"/api/attempts/{attempt_id}/answers/{slot}"
    client.put(
        url, json={"value": "15", "seq": seq_base(page) + 1}, headers={"X-CSRFToken": csrf_of(page)}
    )
    session.rollback()
    assert session.get(Attempt, attempt_id).concurrent_use_at is None  # one session so far
    phone = app.test_client()
    Auth(phone).login("alice")
    token = csrf_of(phone.get(f"/attempt/{attempt_id}").get_data(as_text=True))
    phone.put(url, json={"value": "16", "seq": seq_base(page) + 2}, headers={"X-CSRFToken": token})
    session.rollback()
    assert session.get(Attempt, attempt_id).concurrent_use_at is not None
    clients = session.scalars(
        select(AnswerLog.client).where(AnswerLog.attempt_id == attempt_id)
    ).all()
    assert len(set(clients)) == 2 and all(len(c) == 16 for c in clients)
