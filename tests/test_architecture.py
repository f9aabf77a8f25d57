"""Architecture and code-quality checks: the one-way import rule, ruff and mypy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

ALLOWED = {
    "gis_core": set(),
    "layers": {"gis_core"},
    "permits": {"gis_core", "layers"},
    "importers": {"gis_core", "layers", "permits"},
    "webmap": {"gis_core", "layers", "permits", "importers"},
}
ONLY_IN_WEBMAP = {"flask", "werkzeug", "gunicorn"}


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return modules


def _violations() -> list[str]:
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's environment imports every package's models
            for module in _imported_modules(path):
                top = module.split(".")[0]
                internal = top in ALLOWED and top != package and top not in allowed
                framework = top in ONLY_IN_WEBMAP and package != "webmap"
                if internal or framework:
                    found.append(f"{path.relative_to(REPO)} imports {module}")
    return found


def test_one_way_import_rule() -> None:
    assert _violations() == []


def test_the_rule_check_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from webmap.app import create_app\nimport flask\n")
    assert _imported_modules(bad) == ["webmap.app", "flask"]


def _tool(name: str) -> Path:
    return Path(sys.executable).parent / name


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_quality(command: list[str]) -> None:
    result = subprocess.run(
        [str(_tool(command[0])), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
