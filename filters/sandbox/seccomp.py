"""A seccomp allowlist through libseccomp (ctypes): a program may make only the calls listed.

What is listed is what CPython and the standard library need to compute, read the files
they can see, write in their own tmpfs, fork, exec the interpreter, run threads and talk
over the channel they were handed. Anything else fails with EPERM, whatever the kernel adds
later: no new sockets (no network), no namespaces, no mounts (old or new API), no ptrace,
no BPF, keys, io_uring or kernel modules. Two calls are special:

- `clone` is allowed only without `CLONE_NEW*` flags (a user namespace would be the way to
  mounts and FUSE);
- `clone3` fails with ENOSYS: its flags sit in memory seccomp cannot read, and ENOSYS makes
  glibc fall back to `clone`, whose flags it can.

Built once in the zygote (the compiled BPF is exported then). With namespaces, a slot's
server loads the allowlist once, plus the few calls a program's set-up still makes after
the clone (`SETUP_ONLY`) and clone with any flags (it clones programs into their
namespaces); each program then loads a short filter that takes exactly those back. Filters
stack (every one is run, the strictest answer wins), so what a program may call is still
`ALLOWED`, and the kernel checks and compiles 41 instructions per program instead of
303. Without a filtered server a program loads the whole allowlist itself
(`_spawn.setup`).
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any, NamedTuple

ALLOWED = (
    # memory
    "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "mincore", "msync",
    "membarrier", "get_mempolicy", "pkey_alloc", "pkey_free", "pkey_mprotect",
    # files the program can see, and its own tmpfs
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
    "preadv2", "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range",
    "lseek", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
    "access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir",
    "fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link",
    "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat",
    "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat", "umask",
    "truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "sync_file_range",
    "fadvise64", "readahead", "flock", "fcntl", "ioctl", "dup", "dup2", "dup3", "pipe",
    "pipe2", "sendfile", "splice", "tee", "copy_file_range", "utime", "utimes",
    "utimensat", "futimesat", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
    "llistxattr", "flistxattr", "memfd_create",
    # waiting and polling
    "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "signalfd", "signalfd4", "futex", "futex_waitv",
    "get_robust_list", "set_robust_list", "nanosleep", "clock_nanosleep", "sched_yield",
    # the channel the program was handed (no new sockets)
    "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
    "getsockname", "getpeername", "getsockopt", "setsockopt",
    # processes and threads (clone is conditional, below)
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
    "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal", "set_tid_address",
    "rseq", "arch_prctl", "prctl", "setsid", "setpgid", "getpgid", "getpgrp", "getsid",
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
    "getresgid", "getgroups", "capget", "getpriority", "setpriority", "sched_getaffinity",
    "sched_setaffinity", "sched_getparam", "sched_getscheduler", "sched_getattr",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "getcpu",
    "getrlimit", "setrlimit", "prlimit64", "getrusage", "times", "sysinfo", "uname",
    # signals and time
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "pause",
    "alarm", "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
    "timer_getoverrun", "timer_delete", "clock_gettime", "clock_getres", "gettimeofday",
    "time", "getrandom", "restart_syscall",
    # System V IPC and POSIX message queues: each program has an IPC namespace of its own
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr",
)  # fmt: skip
# What a program's set-up (`_spawn.setup`) calls after the clone and before its own filter,
# beyond `ALLOWED`: a slot's server allows them, and each program's filter takes them back.
SETUP_ONLY = ("mount", "setgroups", "setresgid", "setresuid")
# Any of these in clone's flags (its first argument) is refused.
CLONE_NEW_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
SCMP_CMP_MASKED_EQ = 7
SCMP_FLTATR_CTL_OPTIMIZE = 8
LIBSECCOMP_SONAME = "libseccomp.so.2"


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


def _act_errno(err: int) -> int:
    return 0x00050000 | (err & 0xFFFF)


SCMP_ACT_ALLOW = 0x7FFF0000


def _load_libseccomp() -> Any:
    """The library by its soname first: `ctypes.util.find_library` runs ldconfig through
    `subprocess`, which imports `threading`, whose at-fork handler would then run (and copy
    pages on write) in every program the zygote clones."""
    try:
        return ctypes.CDLL(LIBSECCOMP_SONAME, use_errno=True)
    except OSError:
        from ctypes import util

        name = util.find_library("seccomp")
        if name is None:
            raise
        return ctypes.CDLL(name, use_errno=True)


class SeccompFilter:
    """The prepared filters, compiled once in the zygote.

    `address`: the whole allowlist, for a program whose server has no filter;
    `server_address`: the allowlist plus `SETUP_ONLY` and clone with any flags, for a
    slot's server; `stacked` then describes what each of its programs loads on top."""

    def __init__(self) -> None:
        lib: Any = _load_libseccomp()
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        ]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        refuse = _act_errno(errno.EPERM)
        no_new = _ArgCmp(0, SCMP_CMP_MASKED_EQ, CLONE_NEW_FLAGS, 0)
        allow = [(SCMP_ACT_ALLOW, call, ()) for call in ALLOWED]
        # (buffer, sock_fprog) each: held here, so the BPF stays where the addresses point.
        self._programs = [
            # What is not listed fails.
            _compile(lib, refuse, [*allow, (SCMP_ACT_ALLOW, "clone", (no_new,))]),
            _compile(lib, refuse, [*allow, *[(SCMP_ACT_ALLOW, c, ()) for c in SETUP_ONLY],
                                   (SCMP_ACT_ALLOW, "clone", ())]),
            # Everything passes this one but what the server's took on for the set-up.
            _compile(lib, SCMP_ACT_ALLOW, [*[(refuse, c, ()) for c in SETUP_ONLY], *[
                (refuse, "clone", (_ArgCmp(0, SCMP_CMP_MASKED_EQ, bit, bit),))
                for bit in _bits(CLONE_NEW_FLAGS)
            ]]),
        ]  # fmt: skip
        # Where each filter lies in this process (the zygote) and so in every clone of it:
        # loaded from there with one prctl (`_spawn.setup`, `_spawn.load_filter`).
        self.address, self.server_address, takeback = (
            ctypes.addressof(prog) for _, prog in self._programs
        )
        self.stacked = Stacked(takeback)
        # The library is done with: unmapped, it is five mappings fewer that every clone of
        # the zygote copies at fork and tears down at exit.
        import _ctypes

        _ctypes.dlclose(lib._handle)


class Stacked(NamedTuple):
    """What a program loads when its slot's server has loaded `server_address`."""

    address: int


def _bits(mask: int) -> list[int]:
    return [1 << i for i in range(mask.bit_length()) if mask >> i & 1]


def _compile(
    lib: Any, default: int, rules: list[tuple[int, str, tuple[_ArgCmp, ...]]]
) -> tuple[Any, _SockFprog]:
    """One filter: its BPF in a buffer of this process, and the sock_fprog pointing at it.
    Every filter also refuses clone3 with ENOSYS (see the module's docstring)."""
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        # A binary tree of syscall numbers instead of ~240 comparisons in a row: the
        # kernel runs the filter for every syscall number when a program loads it.
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        for action, call, cmp in [*rules, (_act_errno(errno.ENOSYS), "clone3", ())]:
            nr = lib.seccomp_syscall_resolve_name(call.encode())
            if nr < 0:  # not on this architecture
                continue
            array = (_ArgCmp * max(1, len(cmp)))(*cmp)
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmp), array)
            if rc < 0:
                raise OSError(-rc, f"seccomp rule for {call} failed")
        code = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    buffer = ctypes.create_string_buffer(code, len(code))
    return buffer, _SockFprog(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))


def _export(lib: Any, ctx: int) -> bytes:
    """The compiled BPF: loading it per program is then one prctl, not a compile inside
    libseccomp in every child."""
    r, w = os.pipe()
    try:
        rc = lib.seccomp_export_bpf(ctx, w)
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
    return b"".join(chunks)
