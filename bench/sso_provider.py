"""The OpenID provider for the benchmark's single sign-on storm: the tests' own one.

tests/sso/provider.mjs (oidc-provider from npm, pinned by tests/sso/package-lock.json) on
127.0.0.1, with one client registered for the bench's gunicorn and one account per bench
student (sub "sub-<username>", preferred_username <username>). The accounts go in a JSON
file (SSO_TEST_CONFIG_FILE): a few thousand would not fit in one environment variable.

Node and the npm install come from tests/sso/provider.py, the tests' mechanism: importing
it finds node (20.19 or newer) and runs `npm ci` in tests/sso once when
node_modules/oidc-provider is missing. When that is not possible the bench skips the
single sign-on mode and says why (`unavailable`).

The provider is not quizapp's cost: its process is measured on its own (loadgen.py's
`provider_cpu_ms`) and kept out of the server's CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "quizapp-bench"
CLIENT_SECRET = "quizapp-bench-secret-not-for-production"


def subject(username: str) -> str:
    return f"sub-{username}"


def _node() -> tuple[str | None, str]:
    """(node's path, "") or (None, why the provider cannot run here)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        import pytest  # the tests' module reports a missing node through pytest.skip
    except ImportError:
        return None, "pytest is missing (.venv/bin/python -m pip install -e '.[test]')"
    try:
        from tests.sso import provider
    except (pytest.skip.Exception, pytest.fail.Exception) as reason:
        return None, str(reason).removeprefix("single sign-on tests skipped: ")
    return provider.NODE, ""


def unavailable() -> str:
    """Why single sign-on cannot be benchmarked here, or "" when it can."""
    return _node()[1]


def settings(issuer: str) -> dict[str, str]:
    """The app's environment for single sign-on with this provider."""
    return {
        "QUIZAPP_SSO_ISSUER": issuer,
        "QUIZAPP_SSO_CLIENT_ID": CLIENT_ID,
        "QUIZAPP_SSO_CLIENT_SECRET": CLIENT_SECRET,
        "QUIZAPP_SSO_USERNAME_CLAIM": "preferred_username",
    }


def start(
    folder: Path, port: int, app_base: str, usernames: list[str]
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start the provider on `port` with a client whose callback is on `app_base` and one
    account per username; (issuer, process) once its discovery document answers. The
    caller stops the process (by its PID)."""
    node, why = _node()
    if node is None:
        raise RuntimeError(why)
    config = {
        "port": port,
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{app_base}/login/sso/callback"],
            }
        ],
        "accounts": {
            subject(u): {"preferred_username": u, "name": f"Bench Student {u}"} for u in usernames
        },
        "conformIdTokenClaims": False,
    }
    config_file = folder / "provider.json"
    config_file.write_text(json.dumps(config))
    log = (folder / "provider.log").open("ab")
    proc = subprocess.Popen(
        [node, str(ROOT / "tests" / "sso" / "provider.mjs")],
        cwd=ROOT / "tests" / "sso",
        env={**os.environ, "SSO_TEST_CONFIG_FILE": str(config_file)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    issuer = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"oidc-provider exited {proc.returncode}; see {folder}/provider.log")
        try:
            with urllib.request.urlopen(
                f"{issuer}/.well-known/openid-configuration", timeout=2
            ) as response:
                if response.status == 200:
                    return issuer, proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=5)
    raise RuntimeError(f"oidc-provider not ready after 30 s; see {folder}/provider.log")
