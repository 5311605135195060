"""pyproject declares what the package imports: every third-party module its source imports
comes from a declared distribution, every core dependency is used, and the extras' modules
(`dask`, `report`, `vllm`) are imported only inside the functions that need them, so the
command line imports and runs without them and says which extra to install."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Extras that are not features of the package: their modules may not be imported by it.
NOT_FEATURES = {"test"}
# Core dependencies the source never imports, each for a stated reason (the same as beside
# it in pyproject.toml). Anything else declared and unused is a leftover, like tqdm was.
USED_WITHOUT_IMPORT = {
    "accelerate": "transformers' Trainer, under TRL's trainers, runs on it",
    "fastapi": "a bound on prefect's server",
    "gguf": "transformers reads the default model's GGUF file with it",
}
# A module the package finds with importlib.util.find_spec("NAME") is used, not imported.
FIND_SPEC = "find_spec"


def _norm(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return _norm(match.group(1))


def _core() -> set[str]:
    return {_dist(r) for r in PYPROJECT["project"]["dependencies"]}


def _extras() -> dict[str, set[str]]:
    own = _norm(PYPROJECT["project"]["name"])
    return {
        extra: {_dist(r) for r in reqs} - {own}
        for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items()
    }


def _sources() -> list[Path]:
    """Every .py file of the installed packages (pyproject's list, under `distillery`)."""
    setup = PYPROJECT["tool"]["setuptools"]
    assert setup["package-dir"] == {"distillery": "."}
    files: list[Path] = []
    for package in setup["packages"]:
        folder = ROOT.joinpath(*package.split(".")[1:])
        files += sorted(folder.glob("*.py"))
    return files


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _found_by_spec(call: ast.Call) -> str | None:
    """NAME of `importlib.util.find_spec("NAME")` (a literal name only)."""
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called != FIND_SPEC or not call.args:
        return None
    arg = call.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level module, line, imported inside a function) of each absolute import, plus
    each `find_spec("NAME")` with a literal name."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            inner = inner or _is_type_checking(child)
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.split(".")[0], child.lineno, lazy))
            elif isinstance(child, ast.Call) and (name := _found_by_spec(child)):
                found.append((name.split(".")[0], child.lineno, True))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


@functools.cache
def _third_party() -> dict[str, list[tuple[str, bool]]]:
    """Each third-party top-level module the source imports: [(file:line, lazy), ...]."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for path in _sources():
        for module, line, lazy in _imports(path):
            if module in sys.stdlib_module_names or module in ("__future__", "distillery"):
                continue
            out.setdefault(module, []).append((f"{path.relative_to(ROOT)}:{line}", lazy))
    return out


@functools.cache
def _installed() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    """The distributions that provide `module` here; by its own name where none is
    installed (vllm on a machine without CUDA)."""
    installed = _installed().get(module)
    return {_norm(d) for d in installed} if installed else {_norm(module)}


def test_every_third_party_import_is_declared():
    declared = _core().union(*(d for e, d in _extras().items() if e not in NOT_FEATURES))
    undeclared = {
        module: sorted(_distributions(module))
        for module in _third_party()
        if not _distributions(module) & declared
    }
    assert undeclared == {}, "imported by the package but not in pyproject's dependencies"


def test_every_core_dependency_is_used():
    used = set().union(*(_distributions(m) for m in _third_party()))
    unused = _core() - used - set(USED_WITHOUT_IMPORT)
    assert unused == set(), "declared but never imported: drop it or say why it is needed"
    assert set(USED_WITHOUT_IMPORT) <= _core()


def test_the_test_extra_brings_the_features_the_suite_runs():
    """The suite runs flows on Dask and writes reports: `make setup` installs `.[test]`."""
    name = _norm(PYPROJECT["project"]["name"])
    test = PYPROJECT["project"]["optional-dependencies"]["test"]
    own = [set(re.findall(r"\[(.*)\]", r)[0].split(",")) for r in test if _dist(r) == name]
    assert own and own[0] >= {"dask", "report"}
    assert {"pytest", "polars", "duckdb-cli"} <= _extras()["test"]


def _optional_modules() -> dict[str, str]:
    """Each module the source imports whose distribution is only in a feature extra: the
    extra's name."""
    core = _core()
    out = {}
    for module in _third_party():
        dists = _distributions(module)
        if dists & core:
            continue
        for extra, reqs in _extras().items():
            if extra not in NOT_FEATURES and dists & reqs:
                out[module] = extra
    return out


def test_the_extras_modules_are_known():
    assert _optional_modules() == {
        "prefect_dask": "dask",
        "matplotlib": "report",
        "vllm": "vllm",
        "s3fs": "s3",
        "fsspec": "s3",
    }


def test_optional_modules_are_imported_only_inside_functions():
    eager = [
        f"{where} imports {module} when its module is imported"
        for module, sites in _third_party().items()
        if module in _optional_modules()
        for where, lazy in sites
        if not lazy
    ]
    assert eager == []


def test_only_the_flows_import_prefect():
    """flows/__init__.py sets DO_NOT_TRACK before any flows module imports Prefect (which
    reads it on import); an import of Prefect from another package would come first."""
    outside = [
        where
        for module in ("prefect", "prefect_dask")
        for where, _ in _third_party().get(module, [])
        if not where.startswith("flows/")
    ]
    assert outside == []


def test_the_cli_imports_and_helps_without_the_extras():
    blocked = sorted(_optional_modules())
    # sys.modules[name] = None makes `import name` raise ImportError, as if not installed.
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "sys.argv = ['distillery', '--help']\n"
        "from distillery.cli.app import main\n"
        "main()\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "Usage: distillery" in r.stdout


def test_the_dask_runner_names_its_extra_when_missing(monkeypatch):
    from distillery.flows.task_runners import RunnerError, make_task_runner

    monkeypatch.setitem(sys.modules, "prefect_dask", None)
    with pytest.raises(RunnerError) as err:
        make_task_runner("dask")
    assert str(err.value) == "the dask runner needs prefect-dask: pip install 'distillery[dask]'"


def test_the_report_names_its_extra_when_missing(monkeypatch, wh, tmp_path):
    from distillery.evals.report import ReportError, require_matplotlib, write_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    want = "the report's plots need matplotlib: pip install 'distillery[report]'"
    with pytest.raises(ReportError) as err:
        require_matplotlib()
    assert str(err.value) == want
    # Before anything is read or written (this warehouse has no models).
    with pytest.raises(ReportError) as err:
        write_report(wh, tmp_path / "report", "s", "test")
    assert str(err.value) == want
    assert not (tmp_path / "report").exists()
