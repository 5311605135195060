"""A seccomp filter through libseccomp (ctypes): calls a test program never needs fail with EPERM.

No new sockets (so no TCP, no UDP, no DNS), no namespace or mount changes, no tracing, no
kernel modules, keys, BPF or io_uring. Built once in the zygote, loaded in each child.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
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
        self._lib.seccomp_load.argtypes = [ctypes.c_void_p]
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

    def load(self) -> None:
        rc = self._lib.seccomp_load(self._ctx)
        if rc < 0:
            raise OSError(-rc, "seccomp_load failed")
