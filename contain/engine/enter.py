"""Entering a running container: `contain exec`.

A new process joins every namespace of the container's PID 1 (the user
namespace first, the mount namespace last) and its cgroup, then takes the
same last steps as PID 1 did (init.become_command): environment, user,
working directory, closed fds, capabilities, seccomp, execve.

Two CVEs shape the order.  CVE-2016-9962: the joining process makes itself
non-dumpable before it touches the container, so nothing inside can ptrace it
or open its /proc entries meanwhile.  CVE-2024-21626: no host file descriptor
(and no host working directory) survives into the container.
"""

import os

from ..core import linux
from ..errors import Conflict
from .foreground import SignalForwarder, wait_foreground
from .runtime import (_child_failed, _read_all, cgroup_driver, cgroup_name, cgroup_parent,
                      default_env, security_settings_cfg)

EXEC_NAMESPACES = ("user", "cgroup", "ipc", "uts", "net", "mnt")


def exec_in(store, ref, argv, env=(), cwd=None, user=None, tty=False,
            interactive=False, detach=False, privileged=False, log=None):
    """`contain exec`: run a new process inside a running container."""
    from ..core.init import Launch, exec_main
    from .flags import merge_env
    c = store.find(ref)
    if not c.running:
        raise Conflict(f"container {c.id[:12]} is not running")
    pid = c.state["pid"]
    # Non-dumpable before touching the container, so a process inside cannot
    # ptrace us or open our /proc entries while we join (CVE-2016-9962).
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    ns_fds = []
    try:
        for name in EXEC_NAMESPACES:
            path = f"/proc/{pid}/ns/{name}"
            if os.stat(path).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                ns_fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC),
                               linux.NAMESPACES[name]))
        pidns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Conflict(f"container {c.id[:12]} is not running") from None
    cfg = dict(c.config)
    # a container with a user namespace: we join it first and become its root
    userns = any(nstype == linux.CLONE_NEWUSER for _, nstype in ns_fds)
    if privileged:
        cfg["security"] = dict(cfg.get("security") or {}, privileged=True)
    cgroup = cgroup_driver().cgroup(cgroup_parent(c), cgroup_name(c))
    sec = security_settings_cfg(cfg)
    sec["init"] = False  # the container's init already reaps for everyone
    errr, errw = os.pipe2(os.O_CLOEXEC)
    launch = Launch(argv=argv, env=merge_env(default_env(cfg, tty), env),
                    cwd=cwd or cfg.get("cwd") or "/", user=user if user is not None
                    else cfg.get("user"), root="/", plan=[], unshare_flags=0,
                    cgroup_procs=cgroup.join_files, tty=tty, log=log, errfd=errw,
                    userns=userns, **sec)
    parent_sock = None
    from ..core.init import preload
    preload(tty, launch.caps is not None)
    if tty:
        import socket
        parent_sock, launch.ttysock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # Our children are born in the container's PID namespace; we stay outside.
    linux.setns(pidns, linux.CLONE_NEWPID)
    os.close(pidns)
    devnull = os.open(os.devnull, os.O_RDWR) if (detach or not interactive) else None
    child = os.fork()
    if child == 0:
        try:
            os.close(errr)
            if parent_sock is not None:
                parent_sock.close()
            if detach:  # re-parent the command to the container's init
                os.setsid()
                if os.fork():
                    os._exit(0)
            if devnull is not None:
                os.dup2(devnull, 0)
                if detach:
                    os.dup2(devnull, 1)
                    os.dup2(devnull, 2)
            exec_main(launch, ns_fds)
        finally:
            os._exit(125)
    for fd, _ in ns_fds:
        os.close(fd)
    os.close(errw)
    if devnull is not None:
        os.close(devnull)
    if launch.ttysock is not None:
        launch.ttysock.close()
    master = None
    try:
        if tty and not detach:
            import socket
            _, fds, _, _ = socket.recv_fds(parent_sock, 16, 1)
            master = fds[0] if fds else None
        report = _read_all(errr)
    finally:
        os.close(errr)
        if parent_sock is not None:
            parent_sock.close()
    if report:
        _child_failed(child, report)
    if detach:
        os.waitpid(child, 0)
        return 0
    with SignalForwarder() as forwarder:
        forwarder.set_pid(child)
        return wait_foreground(child, master, interactive)
