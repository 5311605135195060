"""A seccomp filter through libseccomp (ctypes): calls a test program never needs fail with EPERM.

No new sockets (so no TCP, no UDP, no DNS), no namespace or mount changes, no tracing, no
kernel modules, keys, BPF or io_uring. Built once in the zygote, loaded in each child.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def _act_errno(err: int) -> int:
    return 0x00050000 | (err & 0xFFFF)


class SeccompFilter:
    """A prepared filter; `load()` applies it to the calling process (after fork)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        self._lib: Any = ctypes.CDLL(name, use_errno=True)
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
        self._libc = ctypes.CDLL(None, use_errno=True)

    def load(self) -> None:
        """Apply to the calling process; needs no_new_privs (or CAP_SYS_ADMIN) first."""
        if self._libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self._prog), 0, 0):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
