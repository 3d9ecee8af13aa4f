"""Import this first in a test module that needs nginx: without /usr/sbin/nginx the module
is skipped at collection, and pytest folds the skips of all such modules into ONE summary
line. On CI (CI=true) a missing nginx fails the collection instead: a CI run must not
pass by quietly skipping the proxy tests (the same rule as tests/browser/chromium_required.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fault.harness import NGINX

if not Path(NGINX).exists():
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"CI=true and {NGINX} is missing: install it (apt-get install nginx)", pytrace=False
        )
    pytest.skip(
        f"nginx fault tests skipped: {NGINX} not found (apt-get install nginx)",
        allow_module_level=True,
    )
