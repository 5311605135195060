/* The sandbox's per-program hot path, compiled: cloning a program, reaping it, and the
 * program's set-up before candidate code.
 *
 * Each of these ran as Python before, and Python touches objects: after every clone the
 * slot server wrote to ~110 pages it now shared with the new program (each a copy-on-write
 * fault, in the server and again in the program), and the set-up touched ~50 more in the
 * program. Here the slot server's loop touches its C stack and nothing of the
 * interpreter, and the set-up is a run of system calls (benchmarks/RESULTS.md, issue 12).
 *
 *   clone(flags)            fork, or clone into the namespaces in `flags`; 0 in the child
 *                           (the interpreter told it has forked), the pid in the parent,
 *                           -errno on failure.
 *   serve(requests, ctl, flags, failed, codes)
 *                           a slot server's loop: for each request on `requests` (a
 *                           REQUEST and the program's channel, as SCM_RIGHTS), clone a
 *                           program and report SPAWNED (or SPAWN_FAILED) on `ctl`; report
 *                           every child's exit (EXITED, with its CPU time). Returns the
 *                           channel's descriptor in the program, None in the server once
 *                           `requests` is closed or `ctl` is gone.
 *   setup(rpc, workdir, tmpfs, output, uid, as, cpu, fsize, nofile, nproc, seccomp)
 *                           everything a program does before its code arrives; raises
 *                           OSError naming the step that failed.
 *   load_filter(address)    load the seccomp filter whose sock_fprog lies at `address`
 *                           (a slot's server, once: see filters/sandbox/seccomp.py).
 *
 * The messages mirror filters/sandbox/wire.py (REQUEST "=II", REPLY "=Biiq"); their kinds
 * are passed in (`codes`), so they are defined once, there. Every sandbox test goes through
 * this file, so a layout that disagreed would fail all of them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma pack(push, 1)
typedef struct {
    unsigned int req_id;
    unsigned int slot;
} request_t; /* wire.REQUEST */

typedef struct {
    unsigned char kind;
    int a;
    int b;
    long long c;
} reply_t; /* wire.REPLY */
#pragma pack(pop)

/* The interpreter's own fork bookkeeping, done in the child: the processes that call this
 * have one thread, and no Python code runs between the clone and here. */
static long clone_process(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        PyOS_AfterFork_Child();
    return pid < 0 ? -errno : pid;
}

static PyObject *py_clone(PyObject *self, PyObject *args) {
    unsigned long flags;
    if (!PyArg_ParseTuple(args, "k", &flags))
        return NULL;
    return PyLong_FromLong(clone_process(flags));
}

static int send_reply(int ctl, int kind, int a, int b, long long c) {
    reply_t r = {(unsigned char)kind, a, b, c};
    ssize_t n;
    do
        n = send(ctl, &r, sizeof r, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof r ? 0 : -1;
}

/* Report every child that has ended; -1 once the parent is gone. */
static int reap(int ctl, int exited) {
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = wait4(-1, &status, WNOHANG, &ru);
        if (pid <= 0)
            return 0;
        long long us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
                       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
        if (send_reply(ctl, exited, pid, status, us) < 0)
            return -1;
    }
}

static PyObject *py_serve(PyObject *self, PyObject *args) {
    int req_fd, ctl_fd, failed, spawned, spawn_failed, exited;
    unsigned long flags;
    if (!PyArg_ParseTuple(args, "iiki(iii)", &req_fd, &ctl_fd, &flags, &failed, &spawned,
                          &spawn_failed, &exited))
        return NULL;
    /* SIGCHLD is taken from a signalfd, never delivered: no handler runs in the server. */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, &old) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        int err = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int done = reap(ctl_fd, exited) < 0; /* whatever ended before the loop began */
    while (!done) {
        struct pollfd p[2] = {{req_fd, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0) {
            }
            if (reap(ctl_fd, exited) < 0)
                break;
        }
        if (!p[0].revents)
            continue;
        request_t req = {0, 0};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } control;
        struct iovec iov = {&req, sizeof req};
        struct msghdr msg = {0};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        ssize_t n = recvmsg(req_fd, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the parent closed the slot */
        int fd = -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (n != (ssize_t)sizeof req || fd < 0 || failed) {
            if (fd >= 0)
                close(fd);
            if (send_reply(ctl_fd, spawn_failed, (int)req.req_id, failed ? failed : EBADF, 0))
                break;
            continue;
        }
        long pid = clone_process(flags);
        if (pid == 0) {
            /* The program: the channel is its only descriptor that survives set-up. */
            close(sfd);
            sigprocmask(SIG_SETMASK, &old, NULL);
            return PyLong_FromLong(fd);
        }
        close(fd);
        int ok = pid > 0 ? send_reply(ctl_fd, spawned, (int)req.req_id, (int)pid, 0)
                         : send_reply(ctl_fd, spawn_failed, (int)req.req_id, (int)-pid, 0);
        if (ok < 0)
            break;
    }
    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    Py_RETURN_NONE;
}

static PyObject *failed_at(const char *step) {
    PyErr_Format(PyExc_OSError, "%s: %s", step, strerror(errno));
    return NULL;
}

static void close_from(unsigned int first, unsigned int last) {
    if (first > last)
        return;
    if (syscall(SYS_close_range, first, last, 0) == 0)
        return;
    for (unsigned int fd = first; fd <= last && fd < (1u << 16); fd++)
        close(fd); /* a kernel before 5.9 */
}

static PyObject *py_setup(PyObject *self, PyObject *args) {
    int rpc, uid;
    const char *workdir, *tmpfs, *output;
    unsigned long long as_, cpu, fsize, nofile, seccomp;
    long long nproc;
    if (!PyArg_ParseTuple(args, "iszsiKKKKLK", &rpc, &workdir, &tmpfs, &output, &uid, &as_,
                          &cpu, &fsize, &nofile, &nproc, &seccomp))
        return NULL;
    if (setsid() < 0)
        return failed_at("setsid");
    if (tmpfs != NULL) {
        /* In the program's own mount namespace: a fresh size-limited tmpfs as the only
         * writable place, and a /proc that shows only its own pid namespace (and, where
         * the kernel allows, only the processes: no /proc/sys, no host-wide files). */
        if (mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs) != 0)
            return failed_at("mount tmpfs");
        unsigned long pf = MS_NOSUID | MS_NODEV | MS_NOEXEC;
        if (mount("proc", "/proc", "proc", pf, "subset=pid") != 0 &&
            mount("proc", "/proc", "proc", pf, NULL) != 0)
            return failed_at("mount /proc");
    }
    if (chdir(workdir) != 0)
        return failed_at("chdir");
    if (rpc > 3)
        close_from(3, (unsigned int)rpc - 1);
    close_from((unsigned int)rpc + 1, ~0u);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0)
        return failed_at("/dev/null");
    if (dup2(null, 0) < 0)
        return failed_at("stdin");
    int out = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return failed_at("output file");
    if (uid >= 0 && fchown(out, uid, uid) != 0)
        return failed_at("output file owner");
    if (dup2(out, 1) < 0 || dup2(out, 2) < 0)
        return failed_at("stdout");
    if (null > 2)
        close(null);
    if (out > 2)
        close(out);
    struct {
        int resource;
        unsigned long long value;
    } limits[] = {
        {RLIMIT_AS, as_}, {RLIMIT_CPU, cpu}, {RLIMIT_FSIZE, fsize}, {RLIMIT_NOFILE, nofile},
        {RLIMIT_CORE, 0}, {RLIMIT_NPROC, nproc < 0 ? 0 : (unsigned long long)nproc},
    };
    /* RLIMIT_NPROC counts the uid's processes: only under a uid of the sandbox's own. */
    size_t count = sizeof limits / sizeof limits[0] - (nproc < 0 ? 1 : 0);
    for (size_t i = 0; i < count; i++) {
        struct rlimit rl = {limits[i].value, limits[i].value};
        if (setrlimit(limits[i].resource, &rl) != 0)
            return failed_at("setrlimit");
    }
    if (uid >= 0) {
        if (setgroups(0, NULL) != 0)
            return failed_at("setgroups");
        if (setresgid(uid, uid, uid) != 0)
            return failed_at("setresgid");
        if (setresuid(uid, uid, uid) != 0)
            return failed_at("setresuid");
    }
    /* After the uid change, which clears it: the program dies with its slot's server. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        return failed_at("prctl(PDEATHSIG)");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return failed_at("prctl(NO_NEW_PRIVS)");
    if (seccomp != 0 &&
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (unsigned long)seccomp, 0, 0) != 0)
        return failed_at("prctl(PR_SET_SECCOMP)");
    Py_RETURN_NONE;
}

static PyObject *py_load_filter(PyObject *self, PyObject *args) {
    unsigned long long address;
    if (!PyArg_ParseTuple(args, "K", &address))
        return NULL;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (unsigned long)address, 0, 0) != 0)
        return failed_at("prctl(PR_SET_SECCOMP)");
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"clone", py_clone, METH_VARARGS, "fork, or clone into namespaces: 0 in the child"},
    {"serve", py_serve, METH_VARARGS, "a slot server's loop: the channel fd in a program"},
    {"setup", py_setup, METH_VARARGS, "a program's set-up before its code arrives"},
    {"load_filter", py_load_filter, METH_VARARGS, "load a seccomp filter (a sock_fprog)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_spawn", "The sandbox's per-program hot path, compiled.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__spawn(void) { return PyModule_Create(&module); }
