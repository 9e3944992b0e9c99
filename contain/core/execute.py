"""`exec`: a new process inside a running container.

The process joins every namespace of the container's init (the user
namespace first, the mount namespace last) and its cgroup, then takes the
same last steps as the init did (init.become_command): terminal, user,
working directory, closed fds, limits, capabilities, seccomp, execve.  It
is born through the one spawn protocol (spawn.py).

Two CVEs shape the order.  CVE-2016-9962: the joining process is
non-dumpable before it touches the container, so nothing inside can ptrace
it or open its /proc entries meanwhile.  CVE-2024-21626: no host file
descriptor (and no host working directory) survives into the container.
"""

import os

from . import linux, spec
from .lifecycle import (_cgroup_or_none, cgroup_of, connect_console, exec_seccomp, load,
                        process_fields, wait_process)
from .spawn import spawn
from .state import write_text
from ..errors import Conflict, UsageError

# the order a joining process enters them (runc's nsexec order)
EXEC_NAMESPACES = ("user", "cgroup", "ipc", "uts", "net", "mnt")


def open_namespaces(pid):
    """[(fd, CLONE_NEW*)] of pid's namespaces that differ from ours."""
    fds = []
    try:
        for name in EXEC_NAMESPACES:
            path = f"/proc/{pid}/ns/{name}"
            if os.stat(path).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), linux.NAMESPACES[name]))
    except FileNotFoundError:
        for fd, _ in fds:
            os.close(fd)
        raise Conflict("container not running") from None
    return fds


def launch_for_process(process, rec, cgroup, seccomp=True, console_socket=None, log=None,
                       preserve_fds=0, ns_fds=()):
    """The Launch of a process.json (or of exec's flags) in the container of
    record rec; seccomp: under the container's filter, if it has one."""
    from .init import Launch
    from .security import cap_sets_from_spec
    caps = process.get("capabilities")
    cap_sets = cap_sets_from_spec(caps) if caps is not None else None
    console = None
    if process.get("terminal") and console_socket:
        console = connect_console(console_socket)
    bounding = (cap_sets or {}).get("bounding", ())
    return Launch(
        **process_fields(process, cap_sets), create_cwd=False, ttysock=console,
        root="/", plan=[], unshare_flags=0,
        cgroup_procs=cgroup.join_files if cgroup is not None else [],
        seccomp=exec_seccomp(rec, bounding) if seccomp else None,
        preserve_fds=preserve_fds, log=log, errfd=-1,
        userns=any(nstype == linux.CLONE_NEWUSER for _, nstype in ns_fds))


def exec_process(root, cid, process, detach=False, pid_file=None, console_socket=None,
                 preserve_fds=0, log=None, stdio=None, interactive=True, seccomp=True):
    """Run process (a config.json `process` object) in container cid.
    Detached: return 0 once it runs (its parent is our caller's subreaper,
    which reaps it); else wait and return its exit code.  stdio: the fds
    it gets (default ours); interactive: copy our stdin to its terminal;
    seccomp: under the container's filter (an engine's privileged exec
    runs without)."""
    spec.check_process(process, "process.json", "process", required=True)
    rec = load(root, cid)
    status = rec.status(_cgroup_or_none(rec))
    if status not in ("running", "created"):
        raise Conflict(f"cannot exec in a {status} container")
    if process.get("terminal") and not console_socket and detach:
        raise UsageError("cannot allocate a terminal for a detached process without "
                         "--console-socket")
    # Non-dumpable before touching the container (CVE-2016-9962).
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    ns_fds = open_namespaces(rec.pid)
    try:
        cg = cgroup_of(rec)
        launch = launch_for_process(process, rec, cg, seccomp, console_socket,
                                    log, preserve_fds, ns_fds)
        from .init import exec_main, preload
        preload(tty=launch.tty, seccomp=bool(launch.seccomp))
        proc = spawn(launch, lambda L: exec_main(L, ns_fds), pidns=f"/proc/{rec.pid}/ns/pid",
                     stdio=stdio, want_master=bool(launch.tty and not console_socket),
                     cgroup2_dir=cg.v2_dir)
    finally:
        for fd, _ in ns_fds:
            os.close(fd)
    if pid_file:
        write_text(os.path.abspath(pid_file), str(proc.pid))
    if detach:
        if proc.master is not None:
            os.close(proc.master)
        return 0
    return wait_process(proc, interactive)
