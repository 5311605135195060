"""The package's layers: no module imports a package above its own, and every package folder
is installed (pyproject's list) under the one `distillery` namespace."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a package may import only itself and those before it.
LAYERS = [
    "config",
    "warehouse",
    "console",
    "filters",
    "tasks",
    "generators",
    "curate",
    "trainers",
    "evals",
    "flows",
    "cli",
]


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def _layer(parts: list[str]) -> str:
    assert len(parts) > 1 and parts[1] in LAYERS, f"unknown package {'.'.join(parts)}"
    return parts[1]


def test_no_import_runs_up_a_layer():
    upward = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] in LAYERS:
                    upward.append(f"{path.relative_to(ROOT)}: bare `{name}` (not distillery.*)")
                elif parts[:1] == ["distillery"] and LAYERS.index(_layer(parts)) > rank:
                    upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert upward == []


def test_every_package_folder_is_installed_under_distillery():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"distillery": "."}
    folders = sorted(
        "distillery." + str(p.parent.relative_to(ROOT)).replace("/", ".")
        for top in LAYERS
        for p in (ROOT / top).rglob("__init__.py")
    )
    # Folders of data files (no __init__.py) are listed too, so that setuptools ships them.
    data = sorted(config["package-data"])
    assert data == ["distillery.tasks.data.code"]
    for package in data:
        assert not (ROOT / package.split(".", 1)[1].replace(".", "/") / "__init__.py").exists()
    assert sorted(set(config["packages"]) - set(data)) == folders
    assert set(LAYERS) == {p.split(".")[1] for p in folders}
