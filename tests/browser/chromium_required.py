"""Import this first in every browser test module: without /usr/bin/chromium the module
is skipped at collection, and since the skip is raised here, pytest folds the skips of
all modules into ONE summary line. On CI (CI=true) a missing browser fails the
collection instead: a CI run must not pass by quietly skipping the browser journeys.

(A skip in conftest.py would abort the run when the folder is given on the command
line, and a skip in a fixture is reported once per test.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.helpers import CHROMIUM

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"CI=true and {CHROMIUM} is missing: install it (apt-get install chromium)",
            pytrace=False,
        )
    pytest.skip(
        f"browser tests skipped: {CHROMIUM} not found (apt-get install chromium)",
        allow_module_level=True,
    )
