"""A real OpenID provider for the single sign-on tests: import this in a test module.

oidc-provider (a certified OpenID provider, from npm) is pinned in tests/sso/package.json
and package-lock.json; when tests/sso/node_modules/oidc-provider is missing, importing
this module runs `npm ci` there once. Without Node.js 20.19 or newer, or npm, or when the
install fails, the importing module is skipped with one line, except on CI (CI=true),
where that is a failure: a CI run must not pass by quietly skipping single sign-on.

`start_provider` runs tests/sso/provider.mjs on 127.0.0.1 (a free port) with the given
clients and accounts; `ProviderUser` is a person at the provider's sign-in page, driven
with plain HTTP (urllib, so no client library is needed).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.npm_packages import ensure_installed, unavailable

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "provider.mjs"
INSTALLED = HERE / "node_modules" / "oidc-provider" / "package.json"
MIN_NODE = (20, 19)  # oidc-provider 9's floor


def _unavailable(reason: str) -> None:
    unavailable("single sign-on", reason)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        _unavailable("node not found (apt-get install nodejs npm)")
        raise AssertionError("unreachable")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    found = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if found < MIN_NODE:
        _unavailable(f"Node.js {version.strip()} is older than {MIN_NODE[0]}.{MIN_NODE[1]}")
    return node


NODE = _node()
ensure_installed(HERE, INSTALLED, "single sign-on")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OpenIdProvider:
    url: str  # the issuer
    proc: subprocess.Popen[bytes]
    log: Path

    def tamper(self, claims: dict[str, Any] | None = None, *, wrong_key: bool = False) -> None:
        """The next ID token the provider issues gets these claims (None deletes one), or a
        signature by a key the provider never published (same key id)."""
        request = urllib.request.Request(
            f"{self.url}/__test__/tamper",
            data=json.dumps({"claims": claims or {}, "wrongKey": wrong_key}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 204

    def stop(self) -> None:
        """Stop this process (by its PID), politely and then not."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_provider(
    folder: Path,
    clients: list[dict[str, Any]],
    accounts: dict[str, dict[str, Any]],
    *,
    conform_id_token_claims: bool = False,
) -> OpenIdProvider:
    """Start the provider and wait until its discovery document answers.

    With conform_id_token_claims the ID token carries only the protocol claims and the
    profile (username, groups) comes from the userinfo endpoint, as some providers do."""
    port = free_port()
    config = {
        "port": port,
        "clients": clients,
        "accounts": accounts,
        "conformIdTokenClaims": conform_id_token_claims,
    }
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"provider-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [NODE, str(PROGRAM)],
            cwd=HERE,
            env={**os.environ, "SSO_TEST_CONFIG": json.dumps(config)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    provider = OpenIdProvider(f"http://127.0.0.1:{port}", proc, log)
    discovery = f"{provider.url}/.well-known/openid-configuration"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"oidc-provider exited {proc.returncode}:\n{provider.log_text()}")
        try:
            with urllib.request.urlopen(discovery, timeout=2) as response:
                if response.status == 200:
                    return provider
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    provider.stop()
    raise RuntimeError(f"oidc-provider not ready after 20 s:\n{provider.log_text()}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class ProviderUser:
    """A person in their own browser at the provider: cookies kept, redirects followed
    only while they stay at the provider, so the way back to the app is returned to the
    test (which plays it to the app's test client)."""

    issuer: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirects()
        )

    def _open(self, url: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self._opener.open(url, data=data, timeout=10) as response:
                return (
                    response.status,
                    response.headers.get("Location", ""),
                    response.read().decode(),
                )
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Location", ""), error.read().decode()

    def _follow(self, url: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        """(url of the last page at the provider, where it sends the browser next)."""
        for _ in range(10):
            status, location, body = self._open(url, form)
            form = None
            if status not in (302, 303):
                return url, ""
            target = urllib.parse.urljoin(url, location)
            if not target.startswith(self.issuer + "/"):
                return url, target
            url = target
        raise AssertionError("too many redirects at the provider")

    def sign_in(self, authorization_url: str, account: str) -> str:
        """Open the app's authorization request, sign in as `account`; the URL the
        provider sends the browser back to (the app's callback)."""
        page, back = self._follow(authorization_url)
        if back:  # already signed in at the provider: straight back
            return back
        assert "/interaction/" in page, page
        _, back = self._follow(f"{page}/login", {"account": account})
        assert back, f"the provider did not send the browser back after signing in {account}"
        return back

    def cancel(self, authorization_url: str) -> str:
        page, back = self._follow(authorization_url)
        assert "/interaction/" in page and not back, page
        _, back = self._follow(f"{page}/abort", {})
        return back
