/* A measurement prototype, not product code: benchmarks/compiled_slot.py builds it and
 * patches it into two throwaway worktrees to measure what a compiled slot server (`serve`:
 * the loop that clones each program, reaps it and reports both) and a compiled program
 * set-up (`setup`: session, tmpfs and /proc mounts, descriptors, rlimits, uid, no_new_privs,
 * seccomp) would save against the Python ones in filters/sandbox/zygote.py and child.py.
 * It leaves out what the product needs and this measurement does not: the no-namespace
 * path (host work directories), errors reported per step, a build in `make setup`.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>

#pragma pack(push, 1)
typedef struct { unsigned char kind; int a; int b; long long c; } reply_t;
typedef struct { unsigned int req_id; unsigned int slot; } request_t;
#pragma pack(pop)

static void send_reply(int ctl, unsigned char kind, int a, int b, long long c) {
    reply_t r = {kind, a, b, c};
    send(ctl, &r, sizeof r, MSG_NOSIGNAL);
}

static PyObject *serve(PyObject *self, PyObject *args) {
    int req_fd, ctl_fd; unsigned long flags;
    if (!PyArg_ParseTuple(args, "iik", &req_fd, &ctl_fd, &flags)) return NULL;
    sigset_t mask, old; sigemptyset(&mask); sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    struct pollfd p[2] = {{req_fd, POLLIN, 0}, {sfd, POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; break; }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0) {}
            for (;;) {
                int status; struct rusage ru;
                pid_t pid = wait4(-1, &status, WNOHANG, &ru);
                if (pid <= 0) break;
                long long us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL
                               + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
                send_reply(ctl_fd, 3, pid, status, us);
            }
        }
        if (!(p[0].revents)) continue;
        request_t req; char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {&req, sizeof req};
        struct msghdr msg = {0}; msg.msg_iov = &iov; msg.msg_iovlen = 1;
        msg.msg_control = cbuf; msg.msg_controllen = sizeof cbuf;
        ssize_t n = recvmsg(req_fd, &msg, 0);
        if (n <= 0) break;
        int fd = -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (fd < 0) { send_reply(ctl_fd, 2, req.req_id, EBADF, 0); continue; }
        long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            close(sfd);
            PyOS_AfterFork_Child();
            return PyLong_FromLong(fd);
        }
        close(fd);
        if (pid > 0) send_reply(ctl_fd, 1, req.req_id, (int)pid, 0);
        else send_reply(ctl_fd, 2, req.req_id, errno, 0);
    }
    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    Py_RETURN_NONE;
}


static PyObject *fail(const char *what) { PyErr_SetFromErrnoWithFilename(PyExc_OSError, what); return NULL; }

static PyObject *setup(PyObject *self, PyObject *args) {
    int rpc; unsigned int uid; const char *opts, *workdir, *outfile;
    unsigned long long as_, cpu, fsize, nofile, nproc, prog;
    if (!PyArg_ParseTuple(args, "iIsssKKKKKK", &rpc, &uid, &opts, &workdir, &outfile,
                          &as_, &cpu, &fsize, &nofile, &nproc, &prog)) return NULL;
    if (setsid() < 0) return fail("setsid");
    if (mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, opts)) return fail("mount tmpfs");
    unsigned long pf = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("proc", "/proc", "proc", pf, "subset=pid") && mount("proc", "/proc", "proc", pf, NULL))
        return fail("mount proc");
    if (chdir(workdir)) return fail("chdir");
    if (rpc > 3) syscall(436, 3, rpc - 1, 0);
    syscall(436, rpc + 1, ~0U, 0);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0) return fail("/dev/null");
    dup2(null, 0);
    int out = open(outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) return fail("output");
    if (fchown(out, uid, uid)) return fail("fchown");
    dup2(out, 1); dup2(out, 2); close(null); close(out);
    struct { int r; unsigned long long v; } lim[] = {
        {RLIMIT_AS, as_}, {RLIMIT_CPU, cpu}, {RLIMIT_FSIZE, fsize}, {RLIMIT_NOFILE, nofile},
        {RLIMIT_CORE, 0}, {RLIMIT_NPROC, nproc}};
    for (unsigned i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        struct rlimit rl = {lim[i].v, lim[i].v};
        if (setrlimit(lim[i].r, &rl)) return fail("setrlimit");
    }
    if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)) return fail("uid");
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return fail("no_new_privs");
    if (prog && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (unsigned long)prog, 0, 0)) return fail("seccomp");
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {{"serve", serve, METH_VARARGS, NULL}, {"setup", setup, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_cslot", NULL, -1, methods};
PyMODINIT_FUNC PyInit__cslot(void) { return PyModule_Create(&mod); }
