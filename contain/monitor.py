"""The per-container monitor (the role conmon or containerd-shim plays).

`contain start` (and `run -d`) forks a monitor that leaves the CLI's session
(setsid) and outlives it.  The monitor is the container's parent: it holds
the container's stdout and stderr and writes them to the json-file log, waits
for the exit, records exit code, finish time and OOM kill, applies the
restart policy, and removes the container for --rm.

The CLI waits on a close-on-exec pipe until the monitor reports "ok" (the
command was exec'd) or "error CODE MESSAGE", so `start` fails with the same
one-line error a foreground run would print.
"""

import os
import signal
import time

from . import runtime
from .errors import ContainError

NOTIFY_OK = b"ok"


def launch(store, c, log=None):
    """Start a detached monitor for c; returns when the command runs."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # intermediate: leave the session, fork the monitor, exit
        try:
            os.close(r)
            os.setsid()
            if os.fork() == 0:
                _become_monitor(store, c, w, log)
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    report = runtime._read_all(r)
    os.close(r)
    if report == NOTIFY_OK:
        return c.reload()
    if report.startswith(b"error\0"):
        _, code, message = report.decode(errors="replace").split("\0", 2)
        err = ContainError(message)
        err.exit_code = int(code)
        raise err
    raise ContainError(f"container {c.id[:12]}: monitor exited before starting it")


def _become_monitor(store, c, notify_fd, log):
    # Nothing of the CLI stays open here: above all not its copy of the
    # container lock (the lock lives as long as any copy of its fd does).
    # The CLI keeps holding the lock until we report.
    os.closerange(3, notify_fd)
    os.closerange(notify_fd + 1, 1 << 16)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    try:
        monitor(store, c, notify_fd)
    except BaseException:
        pass
    os._exit(0)


def monitor(store, c, notify_fd):
    """Run the container (and its restarts) until it is done for good."""
    from . import logs
    logcfg = c.config.get("log") or {}
    writer = logs.LogWriter(c.path(logs.LOG_NAME), logcfg.get("max_size", 10 << 20),
                            logcfg.get("max_file", 3))
    policy = c.config.get("restart") or {"name": "no", "max": 0}
    tty = c.config.get("tty", False)
    first = True
    while True:
        try:
            code, oom = _run_once(store, c, writer, tty, notify_fd if first else None)
        except ContainError as e:
            if first:
                _notify(notify_fd, b"error\0%d\0%s" % (e.exit_code, str(e).encode()))
                runtime.cleanup_after_exit(store, c)
                return
            c.update(error=str(e), pid=0, finished_at=runtime.now())
            writer.write("stderr", f"contain: restart failed: {e}\n".encode())
            break
        first = False
        if oom:
            writer.write("stderr", b"contain: container was killed by the OOM killer\n")
        c.reload()
        if not _should_restart(policy, c, code):
            break
        count = c.state.get("restart_count", 0) + 1
        c.update(restart_count=count, restarting=True)
        time.sleep(min(0.1 * 2 ** min(count, 6), 5))
        c.reload()
        if c.state.get("stop_requested"):
            c.update(restarting=False)
            break
    writer.close()
    if c.config.get("auto_remove"):
        try:
            runtime.teardown(store, c)
        except ContainError:
            pass


def _should_restart(policy, c, code):
    name = policy.get("name", "no")
    if c.state.get("stop_requested") or name == "no":
        return False
    if name == "on-failure":
        return code != 0 and (not policy.get("max") or
                              c.state.get("restart_count", 0) < policy["max"])
    return name in ("always", "unless-stopped")


def _run_once(store, c, writer, tty, notify_fd):
    """Spawn the container once, pump its output to the log, wait for it."""
    import selectors
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        proc = runtime.start_process(store, c, stdio=(devnull, out_w, err_w), tty=tty)
    finally:
        os.close(out_w)
        os.close(err_w)
        os.close(devnull)
    if notify_fd is not None:
        c.lock_held = False  # the CLI lets go of the lock once we report
        _notify(notify_fd, NOTIFY_OK)
    sel = selectors.DefaultSelector()
    streams = {out_r: "stdout", err_r: "stderr"}
    if proc.master is not None:
        os.close(out_r)
        os.close(err_r)
        streams = {proc.master: "stdout"}
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    while streams:
        for key, _ in sel.select():
            try:
                data = os.read(key.fd, 65536)
            except OSError:  # EIO from a pty whose last user closed it
                data = b""
            if data:
                writer.write(streams[key.fd], data)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                del streams[key.fd]
    writer.flush()
    _, status = os.waitpid(proc.pid, 0)
    code = runtime.exit_code_of(status)
    oom = runtime.oom_killed(c)
    if oom and code == 128 + signal.SIGKILL:
        code = 137
    runtime.record_exit(c, code, oom)
    runtime.cleanup_after_exit(store, c)
    return code, oom


def _notify(fd, data):
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
