"""A seccomp filter through libseccomp (ctypes): calls a test program never needs fail with EPERM.

No new sockets (so no TCP, no UDP, no DNS), no namespace or mount changes, no tracing, no
kernel modules, keys, BPF or io_uring. Built once in the zygote, loaded in each child.
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any

DENIED = (
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "syslog",
    "personality",
    "quotactl",
    "open_by_handle_at",
    "name_to_handle_at",
)
SCMP_ACT_ALLOW = 0x7FFF0000
LIBSECCOMP_SONAME = "libseccomp.so.2"
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def _act_errno(err: int) -> int:
    return 0x00050000 | (err & 0xFFFF)


def _load_libseccomp() -> Any:
    """The library by its soname first: `ctypes.util.find_library` runs ldconfig through
    `subprocess`, which imports `threading`, whose at-fork handler would then run (and copy
    pages on write) in every program the zygote clones."""
    try:
        return ctypes.CDLL(LIBSECCOMP_SONAME, use_errno=True)
    except OSError:
        name = ctypes.util.find_library("seccomp")
        if name is None:
            raise
        return ctypes.CDLL(name, use_errno=True)


class SeccompFilter:
    """A prepared filter; `load()` applies it to the calling process (after fork)."""

    def __init__(self) -> None:
        self._lib: Any = _load_libseccomp()
        self._lib.seccomp_init.restype = ctypes.c_void_p
        self._lib.seccomp_init.argtypes = [ctypes.c_uint32]
        self._lib.seccomp_rule_add.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
        ]
        self._lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        self._lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._ctx = self._lib.seccomp_init(SCMP_ACT_ALLOW)
        if not self._ctx:
            raise OSError("seccomp_init failed")
        for call in DENIED:
            nr = self._lib.seccomp_syscall_resolve_name(call.encode())
            if nr < 0:  # not on this architecture
                continue
            rc = self._lib.seccomp_rule_add(self._ctx, _act_errno(errno.EPERM), nr, 0)
            if rc < 0:
                raise OSError(-rc, f"seccomp_rule_add({call}) failed")

        # Export the compiled BPF once: loading it per program is then one prctl, not a
        # compile inside libseccomp in every child.
        r, w = os.pipe()
        try:
            rc = self._lib.seccomp_export_bpf(self._ctx, w)
            if rc < 0:
                raise OSError(-rc, "seccomp_export_bpf failed")
            os.close(w)
            w = -1
            chunks = []
            while chunk := os.read(r, 65536):
                chunks.append(chunk)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        code = b"".join(chunks)
        self._filter = ctypes.create_string_buffer(code, len(code))
        self._prog = _SockFprog(len(code) // 8, ctypes.cast(self._filter, ctypes.c_void_p))
        # Resolved here, in the zygote: a CDLL attribute looked up for the first time in a
        # clone builds a function object there, on pages it must copy (~0.1 ms a program).
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl
        self._prog_ref = ctypes.byref(self._prog)

    def load(self) -> None:
        """Apply to the calling process; needs no_new_privs (or CAP_SYS_ADMIN) first."""
        if self._prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self._prog_ref, 0, 0):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
