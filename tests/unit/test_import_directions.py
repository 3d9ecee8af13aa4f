"""The layers import one way only (docs/architecture.md): domain <- bank <- services <-
web and cli; web and cli never import each other; nothing below the web imports Flask's
request machinery. Read from the source, so a new module is checked the day it appears."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "quizapp"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _modules(folder: str) -> list[Path]:
    root = PACKAGE / folder
    return sorted(root.rglob("*.py")) if root.is_dir() else [PACKAGE / f"{folder}.py"]


# layer -> what it must never import
RULES = {
    "domain": ("quizapp.bank", "quizapp.services", "quizapp.web", "quizapp.cli", "quizapp.models",
               "quizapp.db", "flask", "sqlalchemy", "werkzeug", "wtforms"),
    "bank": ("quizapp.services", "quizapp.web", "quizapp.cli", "quizapp.models", "quizapp.db",
             "flask", "sqlalchemy"),
    "services": ("quizapp.web", "quizapp.cli", "quizapp.context", "flask", "werkzeug", "wtforms",
                 "flask_login"),
    "models": ("quizapp.services", "quizapp.web", "quizapp.cli", "flask"),
    "web": ("quizapp.cli",),
    "cli": ("quizapp.web",),
    "context": ("quizapp.web", "quizapp.cli", "quizapp.services"),
}  # fmt: skip


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layers_import_one_way(layer):
    found = []
    for path in _modules(layer):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in RULES[layer]):
                found.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert found == []


def test_services_write_only_through_a_unit_of_work():
    """Every service writes in `with unit_of_work(session):` (quizapp/db.py), which
    commits at the end and rolls back on any error; no service commits or rolls back by
    hand (before: 16 commits and 23 rollbacks, some helpers rolling back on their own)."""
    found = []
    for path in _modules("services"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"commit", "rollback", "begin", "begin_nested"}
            ):
                found.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
            if isinstance(node, ast.Name) and node.id == "begin_write":
                found.append(f"{path.name}:{node.lineno} uses begin_write")
    assert found == []


def test_views_hold_no_sql():
    """Queries live in services (issue 18: SQL had crept into the staff, roster and
    preview views); the web layer may name the Session type, nothing else of SQLAlchemy."""
    found = []
    for path in _modules("web"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                names = {a.name for a in node.names}
                if node.module != "sqlalchemy.orm" or names - {"Session"}:
                    found.append(f"{path.name} imports {names} from {node.module}")
            elif isinstance(node, ast.Import) and any(
                a.name.startswith("sqlalchemy") for a in node.names
            ):
                found.append(f"{path.name} imports sqlalchemy")
    assert found == []
