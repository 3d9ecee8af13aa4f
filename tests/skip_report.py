"""The last line of `make test`: what was skipped for want of a tool, and the one
command that installs it (issue 18: a fresh machine used to skip the browser, SSO and
nginx suites quietly, the news buried in pytest's short summary).

The test runs append every skip reason to the file named by QUIZAPP_SKIP_REPORT (see
pytest_terminal_summary in tests/conftest.py); `python -m tests.skip_report FILE` reads
it and prints one line.
"""

from __future__ import annotations

import sys
from pathlib import Path

# What a skip reason names -> (what was skipped, the Debian package that brings it).
TOOLS = (
    ("chromium", "the browser journeys and accessibility checks", "chromium"),
    ("axe", "the accessibility checks", "npm"),
    ("single sign-on", "the single sign-on tests", "nodejs npm"),
    ("nginx", "the two-servers-behind-nginx fault tests", "nginx"),
    ("PostgreSQL", "the PostgreSQL fault tests", "postgresql"),
)


def record(path: str, reasons: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as out:
        for reason in reasons:
            out.write(reason.replace("\n", " ") + "\n")


def summary(reasons: list[str]) -> str:
    skipped, packages = [], []
    for needle, what, package in TOOLS:
        if any(needle.lower() in r.lower() for r in reasons):
            skipped.append(what)
            packages.extend(p for p in package.split() if p not in packages)
    if not skipped:
        return "make test: every suite ran (nothing skipped for a missing tool)."
    return (
        f"make test: SKIPPED {'; '.join(skipped)}. "
        f"Install: sudo apt-get install -y {' '.join(packages)}, then run make test again."
    )


def main() -> None:
    path = Path(sys.argv[1])
    reasons = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    print(summary(reasons))


if __name__ == "__main__":
    main()
