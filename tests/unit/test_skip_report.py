"""`make test`'s closing line names what a missing tool made it skip, and how to fix it."""

from __future__ import annotations

from tests.skip_report import summary


def test_nothing_skipped():
    assert summary([]) == "make test: every suite ran (nothing skipped for a missing tool)."


def test_missing_tools_are_named_with_one_install_command():
    line = summary(
        [
            "browser tests skipped: /usr/bin/chromium not found (apt-get install chromium)",
            "single sign-on tests skipped: node not found",
            "nginx fault tests skipped: /usr/sbin/nginx not found (apt-get install nginx)",
            "nginx fault tests skipped: /usr/sbin/nginx not found (apt-get install nginx)",
        ]
    )
    assert line == (
        "make test: SKIPPED the browser journeys and accessibility checks; the single sign-on "
        "tests; the two-servers-behind-nginx fault tests. Install: sudo apt-get install -y "
        "chromium nodejs npm nginx, then run make test again."
    )
