"""axe-core for the accessibility checks: import this (after chromium_required) in a module
that calls check_accessibility().

axe-core comes from the npm registry, pinned in tests/browser/package.json and
package-lock.json. When tests/browser/node_modules/axe-core is missing, importing this
module runs `npm ci` there once. Without npm (or when the install fails) the module is
skipped with one line, except on CI (CI=true), where that is a failure: a CI run must not
pass by quietly skipping the accessibility checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route

from tests.npm_packages import ensure_installed

HERE = Path(__file__).resolve().parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2 at levels A and AA (axe tags WCAG 2.2's new AA rules wcag22aa).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
# The page's Content-Security-Policy allows scripts from its own origin only, so axe is
# served from a path of the app's origin that the browser context answers from disk:
# the pages are checked with their real CSP in force.
AXE_PATH = "/__browser-tests__/axe.min.js"


ensure_installed(HERE, AXE_JS, "accessibility (axe)")


def _serve_axe(route: Route) -> None:
    route.fulfill(path=AXE_JS, content_type="text/javascript; charset=utf-8")


def check_accessibility(page: Page, label: str) -> list[str]:
    """Run axe-core on the page as it is now; return a readable line per violation (empty
    when there is none). Call it where the page is in the state to check."""
    if not getattr(page, "_axe_served", False):
        page.route(f"**{AXE_PATH}", _serve_axe)
        page._axe_served = True  # type: ignore[attr-defined]
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(url=AXE_PATH)
    violations: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const results = await window.axe.run(document, {
                runOnly: {type: 'tag', values: tags},
                resultTypes: ['violations'],
            });
            return results.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({
                    target: n.target.join(' '),
                    html: n.html,
                    summary: (n.failureSummary || '').replace(/\\s+/g, ' '),
                })),
            }));
        }""",
        WCAG_TAGS,
    )
    lines = []
    for v in violations:
        lines.append(f"{label} ({page.url}): {v['id']} [{v['impact']}] {v['help']}")
        for node in v["nodes"][:6]:
            lines.append(f"    {node['target']}: {node['html'][:160]}")
            lines.append(f"      {node['summary'][:400]}")
        if len(v["nodes"]) > 6:
            lines.append(f"    … and {len(v['nodes']) - 6} more")
    return lines


def assert_no_violations(found: list[str]) -> None:
    assert not found, "axe found WCAG 2.2 A/AA violations:\n" + "\n".join(found)
