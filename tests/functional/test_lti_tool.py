"""The tool's side of LTI registration: `quizapp lti platform add/list`, `quizapp lti
keys rotate`, and the public keys at /lti/jwks.json (the previous key kept for
verification until the next rotation retires it)."""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from quizapp.models import AuditEvent, LtiToolKey
from quizapp.services.lti import deployment_ids, list_platforms

ADD = [
    "lti", "platform", "add",
    "--issuer", "https://blackboard.uni.example",
    "--client-id", "abc-123",
    "--auth-login-url", "https://developer.blackboard.com/api/v1/gateway/oidcauth",
    "--auth-token-url", "https://developer.blackboard.com/api/v1/gateway/oauth2/jwttoken",
    "--jwks-url", "https://developer.blackboard.com/api/v1/management/applications/abc/jwks.json",
    "--deployment", "dep-a",
    "--name", "Blackboard Learn",
]  # fmt: skip


def test_platform_add_and_list(app: Any, session: Session) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=ADD)
    assert result.exit_code == 0, result.output
    assert "deployments: dep-a" in result.output
    # Again with another deployment: the same platform, one more deployment id.
    result = runner.invoke(args=[*ADD[:-4], "--deployment", "dep-b"])
    assert result.exit_code == 0, result.output
    session.rollback()
    [(platform, deployments)] = list_platforms(session)
    assert (
        platform.issuer == "https://blackboard.uni.example" and platform.name == "Blackboard Learn"
    )
    assert deployments == deployment_ids(session, platform.id) == ["dep-a", "dep-b"]
    listed = runner.invoke(args=["lti", "platform", "list"])
    assert "abc-123" in listed.output and "dep-a,dep-b" in listed.output


def test_platform_add_refuses_plain_http_urls(app: Any) -> None:
    bad = [*ADD]
    bad[bad.index("--jwks-url") + 1] = "http://vle.example/jwks"
    result = app.test_cli_runner().invoke(args=bad)
    assert result.exit_code != 0 and "https://" in result.output


def test_tool_keys_rotate_keeps_the_previous_key_until_the_next_rotation(
    app: Any, client: Any, session: Session
) -> None:
    assert client.get("/lti/jwks.json").get_json() == {"keys": []}
    runner = app.test_cli_runner()
    kids = []
    for _ in range(3):
        result = runner.invoke(args=["lti", "keys", "rotate"])
        assert result.exit_code == 0, result.output
        session.rollback()
        kids.append(session.scalars(select(LtiToolKey.kid).order_by(LtiToolKey.id.desc())).first())
        published = client.get("/lti/jwks.json")
        assert published.status_code == 200
        assert "max-age" in published.headers["Cache-Control"]
        keys = published.get_json()["keys"]
        # The newest first: it signs; the one before stays for verification.
        assert [k["kid"] for k in keys] == list(reversed(kids))[:2]
        for key in keys:
            assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
            assert "d" not in key and "p" not in key  # public halves only
    retired = session.scalars(select(LtiToolKey).where(LtiToolKey.retired_at.is_not(None))).all()
    assert [k.kid for k in retired] == [kids[0]]
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "lti_key_rotated"))
    assert [e.details["kid"] for e in events] == kids

    # What the newest private key signs, the published set verifies (the next slices
    # sign deep-linking responses and token requests with it).
    newest = session.scalars(select(LtiToolKey).where(LtiToolKey.kid == kids[-1])).one()
    private = RSAKey.import_key(newest.private_key_pem)
    token = jwt.encode({"alg": "RS256", "kid": newest.kid}, {"iss": "quizapp"}, private)
    published_set = KeySet.import_key_set(client.get("/lti/jwks.json").get_json())
    assert jwt.decode(token, published_set, algorithms=["RS256"]).claims == {"iss": "quizapp"}
