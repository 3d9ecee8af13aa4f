"""Node packages the tests pin (axe-core for the accessibility checks, oidc-provider for
single sign-on): `npm ci` from the folder's lock on first use. Without npm (or when it
fails) the calling module is skipped with the reason, except on CI (CI=true), where a
missing tool must fail the run rather than quietly skip it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def unavailable(what: str, reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {what} is unavailable: {reason}", pytrace=False)
    pytest.skip(f"{what} tests skipped: {reason}", allow_module_level=True)


def ensure_installed(folder: Path, marker: Path, what: str) -> None:
    """`npm ci` in `folder` unless `marker` (a file the package installs) exists."""
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        unavailable(what, "npm not found (apt-get install npm, then run the tests again)")
        return
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        unavailable(what, f"`npm ci` in {folder.name} took more than 5 minutes")
        return
    if result.returncode != 0 or not marker.exists():
        unavailable(what, f"`npm ci` in {folder.name} failed: {result.stderr.strip()[-500:]}")
