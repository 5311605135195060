"""Prefect's first-run telemetry notice stays off the terminal: Prefect reads DO_NOT_TRACK
as it is imported, so distillery sets it (flows/__init__.py) before any of its modules
imports Prefect. Prefect shows the notice only on a terminal, for a new PREFECT_HOME and
outside CI, so each check runs in a fresh pseudo-terminal and home, without CI variables."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTICE = "Prefect collects anonymous usage data"
# What Prefect (prefect/_internal/analytics/ci_detection.py) takes for a CI run.
CI_VARIABLES = (
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "JENKINS_URL",
    "TRAVIS",
    "CIRCLECI",
    "BUILDKITE",
    "TF_BUILD",
    "CODEBUILD_BUILD_ID",
    "BITBUCKET_COMMIT",
    "TEAMCITY_VERSION",
    "DRONE",
    "SEMAPHORE",
    "APPVEYOR",
    "BUDDY",
    "CI_NAME",
)


def _on_a_terminal(code: str, home: Path, timeout: float = 120) -> str:
    """Run `python -c code` with stdout and stderr on a new pseudo-terminal; its output."""
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    env.pop("DO_NOT_TRACK", None)
    env["PREFECT_HOME"] = str(home)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([primary], [], [], left)[0]:
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed its terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(primary)
    assert proc.returncode == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def test_prefect_alone_shows_the_notice_here(tmp_path):
    """The control: in this setting a bare `import prefect` does print it."""
    assert NOTICE in _on_a_terminal("import prefect", tmp_path / "prefect")


def test_a_stage_command_imports_prefect_quietly(tmp_path):
    # What a stage command does: the CLI's module first, then its flow module (Prefect).
    code = (
        "import os\n"
        "import distillery.cli.app\n"
        "import distillery.flows.stage_flows\n"
        "print('DO_NOT_TRACK=' + str(os.environ.get('DO_NOT_TRACK')))\n"
    )
    out = _on_a_terminal(code, tmp_path / "prefect")
    assert NOTICE not in out
    assert "DO_NOT_TRACK=1" in out
