"""The floor under any one-process-per-program Python sandbox on this machine.

A plain interpreter with the zygote's modules loaded, warmed and frozen (no sandbox code)
forks children that do the least a sandboxed program can do, and the CPU and page faults
each costs are measured system-wide (`/proc/stat`) and from the child's rusage:

  fork, exit                      os.fork(), os._exit(0)
  fork, tiny python, exit         compile and exec a two-line function, call it, send the
                                  result as JSON down a pipe
  clone(4 ns), tiny python, exit  the same in fresh pid/mount/ipc/uts namespaces (root only)

and the faults the forking process itself takes per fork (a slot server's floor). Compare
with `benchmarks/verifier.py`: what distillery spends per program above these is its own.
Usage (as root for the namespaces row):

    python -S benchmarks/fork_floor.py [--forks 1000] [--trials 3]
"""

from __future__ import annotations

import argparse
import collections  # noqa: F401  (the zygote's warm modules: the same memory to fork)
import ctypes
import gc
import json
import math  # noqa: F401
import os
import re  # noqa: F401
import resource
import select  # noqa: F401
import socket  # noqa: F401
import typing  # noqa: F401
from collections.abc import Callable

SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
# CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS, exit signal SIGCHLD
NAMESPACES = 0x20000000 | 0x20000 | 0x8000000 | 0x4000000 | 17


def busy_jiffies() -> int:
    """CPU time spent by the whole machine (user, nice, system, irq, softirq), in ticks."""
    with open("/proc/stat") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    return ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--forks", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    syscall, after_fork = libc.syscall, ctypes.pythonapi.PyOS_AfterFork_Child
    r, w = os.pipe()

    def tiny() -> None:
        ns: dict[str, object] = {}
        exec(compile("def f(x):\n    return x\n", "<c>", "exec"), ns)
        os.write(w, json.dumps({"value": ns["f"](1)}).encode())  # type: ignore[operator]

    # Warm, as the zygote is: quickened bytecode and filled caches are not copied per child.
    for _ in range(30):
        tiny()
        os.read(r, 100)
    gc.freeze()

    def clone() -> int:
        pid = int(syscall(SYS_CLONE, NAMESPACES, 0, 0, 0, 0))
        if pid == 0:
            after_fork()
        return pid

    rows: list[tuple[str, Callable[[], int], bool]] = [
        ("fork, exit", os.fork, False),
        ("fork, tiny python, exit", os.fork, True),
    ]
    if os.geteuid() == 0 and SYS_CLONE is not None:
        rows.append(("clone(4 ns), tiny python, exit", clone, True))
    for _ in range(args.trials):
        for name, spawn, runs in rows:
            start, faults = busy_jiffies(), []
            own = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(args.forks):
                pid = spawn()
                if pid == 0:
                    if runs:
                        tiny()
                    os._exit(0)
                _, _, usage = os.wait4(pid, 0)
                faults.append(usage.ru_minflt)
                if runs:
                    os.read(r, 100)
            own = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - own
            cpu_ms = (busy_jiffies() - start) * 1000 / os.sysconf("SC_CLK_TCK") / args.forks
            print(
                f"{name:32} {cpu_ms:6.3f} ms CPU a program, child faults "
                f"{sorted(faults)[len(faults) // 2]:4d}, forking process "
                f"{own / args.forks:5.1f} faults a fork",
                flush=True,
            )


if __name__ == "__main__":
    main()
