"""What a re-import does to a release policy set in the browser (domain rule)."""

from __future__ import annotations

from quizapp.domain.release import policy_after_import

YAML = {
    "marks": {"when": "immediately", "at": None},
    "answers": {"when": "after_close", "at": None},
}
NEVER = {"when": "never", "at": None}


def test_a_new_quiz_or_a_yaml_policy_takes_the_yamls():
    assert policy_after_import(None, YAML) == YAML
    assert policy_after_import(dict(YAML), YAML) == YAML


def test_a_browser_policy_is_kept_while_the_yaml_policy_is_unchanged():
    stored = {"marks": YAML["marks"], "answers": NEVER, "yaml": YAML}
    assert policy_after_import(stored, YAML) == stored


def test_a_changed_yaml_policy_wins_over_the_browsers():
    stored = {"marks": YAML["marks"], "answers": NEVER, "yaml": YAML}
    changed = {"marks": YAML["marks"], "answers": {"when": "at", "at": "2027-02-01T09:00:00+00:00"}}
    assert policy_after_import(stored, changed) == changed
    assert "yaml" not in policy_after_import(stored, changed)
