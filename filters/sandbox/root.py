"""What a sandboxed program may see of the host: its root file system, by allowlist.

Computed here, in the trusted parent, and built by the zygote (`child.build_root`)
as a fresh read-only tmpfs holding only:

- the interpreter binary, the shared libraries it maps and the system library directory
  (extension modules link against it), and the ELF loader;
- the standard library and `lib-dynload`, with any `site-packages`/`dist-packages` inside
  them covered by an empty read-only tmpfs;
- the packages a program may import (`packages`; none by default);
- `/dev/{null,zero,full,random,urandom}` and the usual `/dev/fd`, `/dev/std*` links;
- an empty `/proc` and `/tmp`, where each program mounts its own proc and tmpfs.

Nothing else exists there: not the project tree or its `.git`, not the warehouse, not a
home, `/run`, `/etc` or `/sys`. A new host path is hidden by construction, whatever a
caller passes. Symlinks on the way to an allowed path (`/lib -> usr/lib`) are recreated as
symlinks, so paths resolve as they do on the host.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
import sysconfig
from pathlib import Path
from typing import Any

DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
DEV_LINKS = {
    "/dev/fd": "/proc/self/fd",
    "/dev/stdin": "/proc/self/fd/0",
    "/dev/stdout": "/proc/self/fd/1",
    "/dev/stderr": "/proc/self/fd/2",
    "/dev/shm": "/tmp",  # POSIX semaphores and shared memory live in the program's tmpfs
}
EMPTY_DIRS = ("/proc", "/tmp")
COVERED_NAMES = ("site-packages", "dist-packages")
MAX_LINKS = 40


class RootError(Exception):
    """The allowlist could not be computed (a path it needs is missing)."""


def elf_interpreter(binary: str) -> str | None:
    """The loader named in an ELF binary's PT_INTERP header (64-bit little-endian only)."""
    try:
        with open(binary, "rb") as fh:
            head = fh.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            (phoff,) = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            for i in range(phnum):
                fh.seek(phoff + i * phentsize)
                ptype, _, offset = struct.unpack("<IIQ", fh.read(16))
                if ptype == 3:  # PT_INTERP
                    fh.seek(offset)
                    return fh.read(4096).split(b"\0", 1)[0].decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def mapped_libraries() -> list[str]:
    """Real paths of the shared objects this process has mapped."""
    out: set[str] = set()
    with open("/proc/self/maps") as fh:
        for line in fh:
            parts = line.split(None, 5)
            if len(parts) == 6 and ".so" in parts[5]:
                out.add(os.path.realpath(parts[5].strip()))
    return sorted(out)


def resolve(path: str, links: dict[str, str]) -> str:
    """`path` with every symlink on the way resolved, recording each link met in `links`."""
    parts = [p for p in path.split("/") if p]
    cur = "/"
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == ".":
            continue
        if name == "..":
            cur = os.path.dirname(cur)
            continue
        nxt = os.path.join(cur, name)
        if os.path.islink(nxt):
            hops += 1
            if hops > MAX_LINKS:
                raise RootError(f"too many symlinks resolving {path}")
            target = os.readlink(nxt)
            links[nxt] = target
            base = target if target.startswith("/") else os.path.join(cur, target)
            parts = [p for p in base.split("/") if p] + parts
            cur = "/"
        else:
            cur = nxt
    return cur


def plan(packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """The root a program sees, as plain data for the zygote (see `build_root`)."""
    links: dict[str, str] = dict(DEV_LINKS)
    binds: dict[str, bool] = {}  # real path -> is a directory

    def allow(path: str) -> None:
        real = resolve(os.path.abspath(path), links)
        if not os.path.exists(real):
            raise RootError(f"sandbox root: {path} does not exist")
        binds[real] = os.path.isdir(real)

    executable = os.path.realpath(sys.executable)
    allow(executable)
    loader = elf_interpreter(executable)
    if loader:
        allow(loader)
    base = os.path.realpath(sys.base_prefix)
    libc = [p for p in mapped_libraries() if os.path.basename(p).startswith("libc.so")]
    system_libs = {os.path.dirname(p) for p in libc}
    for lib in mapped_libraries():
        if lib.startswith(base + "/"):
            allow(lib)  # libpython
    for d in system_libs:
        allow(d)
    stdlib = sysconfig.get_paths()["stdlib"]
    allow(stdlib)
    dynload = sysconfig.get_config_var("DESTSHARED")
    if dynload and os.path.isdir(dynload):
        allow(dynload)
    covers = [
        os.path.join(os.path.realpath(stdlib), name)
        for name in COVERED_NAMES
        if os.path.isdir(os.path.join(stdlib, name))
    ]
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise RootError(f"sandbox package {name!r} is not installed; drop it or install it")
        for loc in spec.submodule_search_locations or [spec.origin or ""]:
            allow(loc)
            libs = Path(loc).parent / f"{name}.libs"  # wheels' vendored shared libraries
            if libs.is_dir():
                allow(str(libs))
    for dev in DEVICES:
        if os.path.exists(dev):
            binds[dev] = False
    # A path inside another allowed directory is visible already.
    kept = {
        p: d
        for p, d in binds.items()
        if not any(p != q and binds[q] and p.startswith(q + "/") for q in binds)
    }
    return {
        "executable": executable,
        "binds": sorted(kept.items()),
        "covers": covers,
        "links": sorted(links.items()),
        "dirs": list(EMPTY_DIRS),
        "devices": [d for d in DEVICES if d in kept],
    }
