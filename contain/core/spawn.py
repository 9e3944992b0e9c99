"""The parent's side of a container process's birth: fork, then follow the
child's reports until it has exec'd (or, for `create`, stopped to wait for
`start`).  One protocol for every process the core starts: a container's
PID 1 (create, run) and a process joining one (exec).

    parent                                   child (init.child_main / exec_main)
    ------                                   -----
    unshare(CLONE_NEWPID) or setns(pid ns)
    fork() ------------------------------->  cgroup, namespaces
    setns(own PID ns) back                   "ready\\n" (when the parent must act)
    on_ready: uid/gid maps, network  <-----
    "g" ---------------------------------->  mounts up to pivot_root
                                             "hooks\\n" (when there are hooks)
    on_hooks: prestart, createRuntime <----
    "g" ---------------------------------->  createContainer hooks, pivot_root,
                                             user, fds, capabilities...
                                             "created\\n" (create: then it waits
    <--------------------------------------   on the exec fifo for `start`)
                                             or execve: the pipe closes (EOF)
    or "error\\0STEP\\0ERRNO\\0CODE\\0DETAIL", and the child exits.

The pipe is close-on-exec, as in CPython's subprocess: EOF without a report
means the command is running.
"""

import _signal   # (the C module under signal: signal builds enums, ~0.5 ms, on import)
import os

from . import linux
from ..errors import CommandError, ContainError


class Process:
    """A process the core started, as the parent sees it."""

    def __init__(self, pid, master=None, created=False):
        self.pid, self.master, self.created = pid, master, created


def spawn(launch, child_main, pidns=None, time_offsets=None, stdio=None,
          on_ready=None, on_hooks=None, want_master=False, cgroup2_dir=None, timens=None,
          on_forked=None):
    """Fork the process that runs child_main(launch) and follow its reports.

    pidns: None (a new PID namespace: the child is its PID 1), a path to
    join, or False (stay in ours).  time_offsets: text for timens_offsets
    of a new time namespace.  stdio: (in, out, err) fds for the child.
    want_master: receive the terminal's master over a socketpair (the
    child sends it from its own devpts).  cgroup2_dir: the cgroup v2
    directory to give birth in (see linux.clone_into_cgroup).  on_forked:
    called with the pid at once, while the child sets itself up (on a
    second CPU, the parent's bookkeeping costs no time, but for a child
    waiting for its id maps, which the parent writes after it).  Returns a
    Process; raises ContainError or CommandError (the child is killed and
    reaped then).
    """
    errr, errw = os.pipe2(os.O_CLOEXEC)
    gor, gow = os.pipe2(os.O_CLOEXEC) if (launch.sync or launch.hooks_sync) else (-1, -1)
    launch.errfd, launch.gofd = errw, gor
    parent_sock = None
    if want_master:
        import socket
        parent_sock, launch.ttysock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = _fork_into_namespaces(launch, child_main, pidns, time_offsets, stdio,
                                (errr, gow, parent_sock), cgroup2_dir, timens)
    os.close(errw)
    if gor >= 0:
        os.close(gor)
    if launch.ttysock is not None:
        launch.ttysock.close()
        launch.ttysock = None
    proc = Process(pid)
    try:
        if on_forked:
            on_forked(pid)
        proc.created = _follow(pid, errr, gow, on_ready, on_hooks)
        if parent_sock is not None:
            import socket
            _, fds, _, _ = socket.recv_fds(parent_sock, 64, 1)
            proc.master = fds[0] if fds else None
    except BaseException:
        kill_and_reap(pid)
        raise
    finally:
        os.close(errr)
        if gow >= 0:
            os.close(gow)
        if parent_sock is not None:
            parent_sock.close()
    return proc


def _fork_into_namespaces(launch, child_main, pidns, time_offsets, stdio, parent_fds,
                          cgroup2_dir=None, timens=None):
    """fork() with the child in its PID (and time) namespace: both take
    effect for children only, so we enter them, fork, and go back to ours,
    so that our later children (hooks, ip, iptables) are born outside."""
    own = []
    try:
        if pidns is not False:
            own.append((os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC),
                        linux.CLONE_NEWPID))
            if pidns is None:
                linux.unshare(linux.CLONE_NEWPID)
            else:
                _join(pidns, linux.CLONE_NEWPID)
        if time_offsets is not None or timens:
            own.append((os.open("/proc/self/ns/time", os.O_RDONLY | os.O_CLOEXEC),
                        linux.CLONE_NEWTIME))
            if timens:
                _join(timens, linux.CLONE_NEWTIME)
            else:
                linux.unshare(linux.CLONE_NEWTIME)
                if time_offsets:
                    linux.write_file("/proc/self/timens_offsets", time_offsets.encode())
        pid = _fork(launch, cgroup2_dir)
        if pid == 0:
            try:
                errr, gow, parent_sock = parent_fds
                os.close(errr)
                if gow >= 0:
                    os.close(gow)
                if parent_sock is not None:
                    parent_sock.close()
                if stdio:
                    for i, fd in enumerate(stdio):
                        if fd != i:
                            os.dup2(fd, i)
                child_main(launch)
            finally:
                os._exit(125)
        return pid
    except OSError as e:
        raise ContainError(f"creating the container's namespaces: {e.strerror or e}") from None
    finally:
        for fd, nstype in reversed(own):
            linux.setns(fd, nstype)
            os.close(fd)


def _fork(launch, cgroup2_dir):
    """fork(), the child born in cgroup2_dir when the kernel can (it then
    skips joining that cgroup itself); a plain fork otherwise."""
    if cgroup2_dir:
        try:
            fd = os.open(cgroup2_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                pid = linux.clone_into_cgroup(fd)
            except OSError:         # kernel < 5.7, or the cgroup refuses it
                pid = None
            finally:
                os.close(fd)
            if pid == 0:
                joined = os.path.join(cgroup2_dir, "cgroup.procs")
                launch.cgroup_procs = [f for f in launch.cgroup_procs if f != joined]
            if pid is not None:
                return pid
    return os.fork()


def _join(path, nstype):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, nstype)
    finally:
        os.close(fd)


def _follow(pid, errr, gow, on_ready, on_hooks):
    """Answer the child's requests until it exec'd (False) or reported
    "created" (True); raise on its error report."""
    while True:
        line = _read_line(errr)
        if not line:
            return False
        if line == b"ready\n" and gow >= 0:
            if on_ready:
                on_ready(pid)
            os.write(gow, b"g")
        elif line == b"hooks\n" and gow >= 0:
            if on_hooks:
                on_hooks(pid)
            os.write(gow, b"g")
        elif line == b"created\n":
            return True
        else:
            child_failed(pid, line + read_all(errr))


def _read_line(fd):
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
        if data.startswith(b"error\0"):
            return data + read_all(fd)
    return data


def read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def child_failed(pid, report):
    """Turn the child's error record into the right exception."""
    kill_and_reap(pid)
    parts = report.decode(errors="replace").split("\0")
    if len(parts) < 5 or parts[0] != "error":
        raise ContainError("container process failed during setup"
                           + (f": {report[:200]!r}" if report else ""))
    _, step, _err, code, detail = parts[:5]
    code = int(code)
    message = f"{step}: {detail}" if detail else step
    if code in (126, 127):
        raise CommandError(message, code)
    raise ContainError(message)


def kill_and_reap(pid):
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
