"""The project's tooling says what the README says it does: mypy strict covers the whole
package (CI runs it through `make lint`), the lock file pins every declared dependency,
the pre-commit hooks run CI's lint step, and a SQLite-only install needs no PostgreSQL
driver (issue 18, item 5)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = ROOT / "requirements.lock"


def _make_target(name: str) -> list[str]:
    """The recipe lines of one Makefile target."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def _covers(files: list[str], folder: str) -> bool:
    return any(folder == f.rstrip("/") or folder.startswith(f.rstrip("/") + "/") for f in files)


def test_mypy_is_strict_on_services_and_web_as_well_as_the_core() -> None:
    mypy = PYPROJECT["tool"]["mypy"]
    assert mypy["strict"] is True
    for folder in ("quizapp/domain", "quizapp/bank", "quizapp/services", "quizapp/web"):
        assert _covers(mypy["files"], folder), f"{folder} is outside mypy's files"
    for name in ("models.py", "db.py", "context.py", "config.py", "ratelimit.py", "cli.py"):
        assert _covers(mypy["files"], f"quizapp/{name}"), f"quizapp/{name} is outside mypy"
    # No module of ours is let off: overrides, if any, are for third-party modules.
    for override in mypy.get("overrides", []):
        modules = override["module"]
        modules = [modules] if isinstance(modules, str) else modules
        ours = [m for m in modules if m == "quizapp" or m.startswith("quizapp.")]
        assert not ours, f"an override relaxes mypy for {ours}: {override}"


def test_make_lint_runs_ruff_format_check_and_mypy() -> None:
    recipe = _make_target("lint")
    assert any("ruff check" in line for line in recipe)
    assert any("ruff format --check" in line for line in recipe)
    # Bare mypy: it checks what pyproject.toml's files name, the scope tested above.
    assert "$(BIN)/mypy" in recipe
    assert "make lint" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_pre_commit_hooks_run_what_make_lint_runs() -> None:
    config = YAML(typ="safe").load((ROOT / ".pre-commit-config.yaml").read_text("utf-8"))
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    assert ".venv/bin/ruff check" in entries
    assert ".venv/bin/ruff format --check" in entries
    assert ".venv/bin/mypy" in entries


def _locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", LOCK.read_text("utf-8"), re.M)
    return {canonicalize_name(name): version for name, version in pins}


def _declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    for extra in ("test", "bench", "postgresql"):
        declared += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return [r for r in declared if canonicalize_name(r.name) != "quizapp"]


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    """`make` installs from requirements.lock only (then quizapp with --no-deps): a
    dependency added to pyproject.toml without `make lock` would be missing."""
    locked = _locked()
    environment = default_environment()
    stale = []
    for requirement in _declared():
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            stale.append(f"{requirement} (locked: {version})")
    assert stale == [], "run `make lock`: " + ", ".join(stale)


def test_lint_tools_are_pinned_exactly() -> None:
    test_extra = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]]
    for tool in ("ruff", "mypy"):
        (requirement,) = [r for r in test_extra if r.name == tool]
        assert str(requirement.specifier).startswith("=="), requirement


def test_the_lock_is_fully_hashed() -> None:
    text = LOCK.read_text("utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    unhashed = [b.split()[0] for b in blocks if "==" in b and "--hash=sha256:" not in b]
    assert unhashed == []


def test_postgresql_driver_is_an_extra() -> None:
    core = [Requirement(r).name.lower() for r in PYPROJECT["project"]["dependencies"]]
    assert "psycopg" not in core
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(Requirement(r).name == "psycopg" for r in extras["postgresql"])


# Run in a fresh interpreter where `import psycopg` fails, as on a SQLite-only install.
_WITHOUT_PSYCOPG = """
import importlib, pkgutil, sys
sys.modules["psycopg"] = None  # any import of it now raises ImportError
import quizapp
for module in pkgutil.walk_packages(quizapp.__path__, "quizapp."):
    importlib.import_module(module.name)
app = quizapp.create_app({
    "TESTING": True,
    "SECRET_KEY": "x",
    "QUIZAPP_DATABASE_URL": "sqlite:///" + sys.argv[1],
})
with app.test_client() as client:
    assert client.get("/login").status_code == 200
print("ok")
"""


def test_the_app_imports_and_serves_on_sqlite_without_psycopg(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PSYCOPG, str(tmp_path / "quizapp.db")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"QUIZAPP_INSTANCE_PATH": str(tmp_path / "instance"), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
