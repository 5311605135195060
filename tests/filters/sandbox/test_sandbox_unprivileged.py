"""The sandbox started by a user who is not root: no namespaces, no uid of its own, no
cgroups. It still starts (its uid-block locks in a directory of that user's), gives each
program a fresh empty directory, and removes every such directory once the program ends.

Run as `nobody` through `setpriv`, with an interpreter that user may execute: this
machine's venv interpreter lives under /root, which `nobody` cannot enter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from distillery.filters.sandbox.child import OUTPUT_FILE

pytestmark = pytest.mark.attack

NOBODY = 65534

SCRIPT = r"""
import glob, json, os, site, sys
site.addsitedir(sys.argv[1])
from distillery.filters.base import Verdict
from distillery.filters.sandbox.child import Limits
from distillery.filters.sandbox.runner import Sandbox

seen = []
def driver(call):
    seen.append(call())
    return Verdict.ok()

LEAVE = '''
def f():
    import os
    names = sorted(os.listdir('.'))
    open('left.txt', 'w').write('note')
    os.mkdir('locked')
    open('locked/inner.txt', 'w').write('x')
    os.chmod('locked', 0)
    return names
'''
SPIN = "def f():\n    while True:\n        pass\n"
sb = Sandbox(workers=2, limits=Limits(wall_s=1.0, cpu_s=2))
reasons = [sb.run(code, "f", driver).reason for code in [LEAVE, SPIN, LEAVE, SPIN, LEAVE]]
layers = sb.layers._asdict()
during = glob.glob(os.path.join(os.environ["TMPDIR"], "distillery-sbx-*"))
sb.close()
left = glob.glob(os.path.join(os.environ["TMPDIR"], "distillery-sbx-*"))
print(json.dumps({"reasons": reasons, "seen": seen, "layers": layers, "left": left,
                  "during": len(during)}))
"""


# The sandbox starts its zygote with sys.executable: that must work as `nobody` too.
SELF_EXEC = "import subprocess, sys; subprocess.run([sys.executable, '-c', ''], check=True)"


def _interpreter() -> str:
    """This Python, or the system's build of the same version, whichever `nobody` can run."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}"):
        probe = subprocess.run(
            [
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                candidate,
                "-c",
                SELF_EXEC,
            ],
            capture_output=True,
        )
        if probe.returncode == 0:
            return candidate
    raise AssertionError(f"no {version} that uid {NOBODY} may run: install one under /usr/bin")


@pytest.fixture
def public_dir():
    """A directory `nobody` can enter (pytest's tmp_path sits under root's 0700 one)."""
    base = Path(tempfile.mkdtemp(prefix="distillery-nobody-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_an_unprivileged_user_gets_a_working_sandbox_that_leaves_nothing_behind(public_dir):
    if os.geteuid() != 0:
        pytest.fail("this test switches to `nobody`: run the suite as root, as CI does")
    tmp = public_dir / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    # Left by sandboxes that died without closing (SIGKILL): one of this user's, which the
    # new sandbox removes, and one of root's, which is not this user's to touch.
    stale, roots = tmp / "distillery-sbx-killed", tmp / "distillery-sbx-roots"
    (stale / "prog-1").mkdir(parents=True)
    (stale / "prog-1" / "left.txt").write_text("left")
    roots.mkdir()
    for p in (stale, stale / "prog-1", stale / "prog-1" / "left.txt"):
        os.chown(p, NOBODY, NOBODY)
    script = public_dir / "run.py"
    script.write_text(SCRIPT)
    script.chmod(0o644)
    site_packages = sysconfig.get_paths()["purelib"]
    out = subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            _interpreter(),
            str(script),
            site_packages,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "TMPDIR": str(tmp)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["layers"]["namespaces"] is False and got["layers"]["unprivileged_uid"] is False
    assert got["reasons"] == ["ok", "timeout", "ok", "timeout", "ok"]
    # Each program starts in an empty directory: nothing of the one before it.
    assert got["seen"] == [[OUTPUT_FILE]] * 3
    # The sandbox's own directory, in the caller's TMPDIR, holds the programs' ones while it
    # runs, and goes on close with whatever a program left (files, a directory it locked).
    assert got["during"] == 2  # its own and root's
    assert got["left"] == [str(roots)]
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("distillery-sbx-")) == [
        roots.name
    ]
