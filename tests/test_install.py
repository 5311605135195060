"""The README's install lines, run as written into a new virtual environment, give a
working `distillery demo`: the dependencies pyproject declares are enough, the wheel holds
every module and data file, and the documented model step converts the model (into an
empty cache, with the wheel's code) for the demo to use.

The package is built from a copy of the tracked (and new, unignored) files, so a stale
`build/` folder in a working copy cannot stand in for the wheel. The demo is the real one
on the real SmolLM2-135M, made as small as it goes (1 train and 1 held-out prompt per
family, 1 draw, a search budget of 2, 32 new tokens): what it proves is that the installed
command runs every stage, not that the bake gains. Its training steps on SmolLM2 are most
of its time, so fewer train prompts mean fewer (and shorter) rows to train on.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from distillery.generators.model_registry import CACHE_ENV
from tests.conftest import ROOT, THREADS_ENV, ensure_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMALL_DEMO = [
    "--per-family", "1", "--eval-per-family", "1", "--eval-n", "1",
    "--budget", "2", "--max-new-tokens", "32",
]  # fmt: skip
FAMILIES = 5


def readme_install_lines() -> list[str]:
    """The commands of the README's block that follows "Without make", comments dropped."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"Without make.*?```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no ```bash block after 'Without make'"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def copy_source(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():  # a file deleted in the working copy is still in the index
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def test_readme_install_lines_give_a_working_demo(tmp_path: Path) -> None:
    lines = readme_install_lines()
    assert [shlex.split(line)[0] for line in lines] == ["pip"] * 3 + ["distillery"] * 2
    assert lines[-1] == "distillery demo"

    source, venv, wh = tmp_path / "src", tmp_path / "venv", tmp_path / "wh"
    copy_source(source)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    # The venv's commands only: nothing of this checkout or its venv on the path.
    # Nor the suite's fixed torch thread count (tests/conftest.py): the demo measures its
    # own, as a user's does.
    # PYTHONDONTWRITEBYTECODE (set on this machine): pip runs with --no-compile below, so
    # the first import of each module writes its bytecode, as pip would have; with the
    # variable set, every command compiled torch, transformers and Prefect from source.
    unset = ("PYTHONPATH", "DISTILLERY_WAREHOUSE", THREADS_ENV, "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    # An empty model cache: `models pull` converts the GGUF with the wheel's code and the
    # dependencies the wheel declares, as on a user's first run (the user's cache would
    # already hold the converted model and hide a missing dependency).
    env[CACHE_ENV] = str(tmp_path / "cache")
    env["COLUMNS"] = "200"
    ensure_server()  # the demo's flow runs go to the session's server (PREFECT_API_URL)

    for line in lines:
        argv = shlex.split(line)
        if argv[0] == "pip":
            # `--no-compile`: byte-compiling the 2.4 GB of packages was half of pip's time
            # (83 -> 40 s on a quiet host) and changes nothing an import does.
            argv = [str(bin_dir / "python"), "-m", "pip", *argv[1:], "-q", "--no-compile"]
        else:
            argv = [str(bin_dir / "distillery"), *argv[1:]]
            if argv[1:] == ["demo"]:
                argv += [*SMALL_DEMO, "--warehouse", str(wh)]
        r = subprocess.run(argv, cwd=source, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{line!r} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"

    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import distillery.cli.app as m; print(m.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(venv), where  # the wheel's copy, not this checkout

    out = r.stdout
    assert "gate: " in out and "held-out seeds, n=1" in out, out[-3000:]
    with duckdb.connect(str(wh / "catalog.duckdb"), read_only=True) as con:
        models = con.execute("SELECT name, promoted FROM models ORDER BY name").fetchall()
        evals = con.execute(
            "SELECT m.name, count(DISTINCT e.eval_id) FROM evals e JOIN models m USING "
            "(model_id) WHERE e.strategy = 'sample' AND e.k = 1 GROUP BY 1 ORDER BY 1"
        ).fetchall()
        held_out = con.execute(
            "SELECT count(DISTINCT prompt_id) FROM samples s JOIN models m USING (model_id) "
            "JOIN prompts p USING (prompt_id) WHERE m.name = 'demo-r1' AND p.split = 'test'"
        ).fetchone()
    decision = re.search(r"^gate: (\w+)", out, re.M)
    assert decision and decision.group(1) in ("promoted", "refused"), out[-3000:]
    assert models == [("demo-r1", decision.group(1) == "promoted"), ("smollm2-135m", False)]
    assert [name for name, _ in evals] == ["demo-r1", "smollm2-135m"]
    assert held_out == (FAMILIES,)  # p_θ drew on one held-out prompt per family
    assert (wh / "reports" / "demo" / "report.md").is_file()
    # The model the demo ran is the one `models pull` converted in this venv.
    converted = tmp_path / "cache" / "models" / "smollm2-135m"
    assert (converted / "model.safetensors").stat().st_size > 100_000_000
