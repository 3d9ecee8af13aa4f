"""Deployment details that matter on exam day: the address behind a proxy, and static
files that browsers cache without asking an app worker again on every page."""

from __future__ import annotations

import re

from sqlalchemy import select

from quizapp import create_app
from quizapp.models import AnswerLog
from tests.functional.helpers import csrf_of, seq_base, slot_of, start_attempt


def _save_and_logged_address(app, session, headers):  # type: ignore[no-untyped-def]
    from tests.conftest import Auth

    client = app.test_client()
    Auth(client).login("alice")
    attempt_id, page = start_attempt(client)
    slot = slot_of(session, attempt_id, "cnn-output-width")
    response = client.put(
        f"/api/attempts/{attempt_id}/answers/{slot}",
        json={"value": "16", "seq": seq_base(page) + 1},
        headers={"X-CSRFToken": csrf_of(page), **headers},
    )
    assert response.status_code == 200
    session.rollback()
    return session.scalars(select(AnswerLog.ip).where(AnswerLog.attempt_id == attempt_id)).one()


def test_without_a_trusted_proxy_a_forwarded_address_is_ignored(app, session, users, sample_bank):  # type: ignore[no-untyped-def]
    logged = _save_and_logged_address(app, session, {"X-Forwarded-For": "203.0.113.9"})
    assert logged == "127.0.0.1"


def test_behind_one_trusted_proxy_the_student_address_is_recorded(app, session, users, sample_bank):  # type: ignore[no-untyped-def]
    behind = create_app({**app.config, "QUIZAPP_TRUSTED_PROXIES": 1})
    # One hop trusted: the proxy appended the client's address last; anything a client
    # put in front of it is not believed.
    logged = _save_and_logged_address(
        behind, session, {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    )
    assert logged == "203.0.113.9"
    # Close what the second app opened (its login throttle holds a connection of its own).
    behind.extensions["quizapp_login_throttle"].close()
    behind.extensions["quizapp_db"].engine.dispose()


def test_static_urls_carry_a_fingerprint_and_are_cached_for_a_year(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/login").get_data(as_text=True)
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    assert urls and all(re.search(r"\?v=[0-9a-f]{12}$", url) for url in urls), urls
    for url in urls:
        with client.get(url) as response:
            assert response.status_code == 200
            assert "max-age=31536000" in response.headers["Cache-Control"]
    # Without the current fingerprint (an old page after a deploy) the browser revalidates.
    with client.get(urls[0].split("?")[0] + "?v=000000000000") as old:
        assert "max-age=31536000" not in old.headers.get("Cache-Control", "")
