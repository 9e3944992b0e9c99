"""The per-container monitor (the role conmon or containerd-shim plays).

`contain start` (and `run -d`) forks a monitor that leaves the CLI's session
(setsid) and outlives it.  The monitor is the container's parent: it holds
the container's stdout and stderr and writes them to the json-file log, waits
for the exit, records exit code, finish time and OOM kill, applies the
restart policy, and removes the container for --rm.

The CLI waits on a close-on-exec pipe until the monitor reports "ok" (the
command was exec'd) or "error CODE MESSAGE", so `start` fails with the same
one-line error a foreground run would print.

One process, three phases (the pid, the container as its child and the log
pipes all survive the exec between the first two):

    setup   forked from the CLI, the whole runtime loaded: spawn the container
    pump    a fresh, small interpreter (`pump_main`): copy output to the log
            and wait; it imports almost nothing, so a monitor that may live for
            months costs little memory
    exit    in the pump's interpreter, the runtime imported now (`exit_main`):
            record the exit and any OOM kill, clean up, restart (setup again,
            then an exec to pump) or remove (--rm)
"""

import os
import sys
import time

from ..errors import ContainError

# (no `signal` here: it imports enum, a megabyte the pump does not need)
SIGKILL = 9

NOTIFY_OK = b"ok"
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_ENTRY = "import sys; sys.path.insert(0, sys.argv[1]); import contain.engine.monitor as m; m.{}(sys.argv[2:])"


def launch(store, c, log=None):
    """Start a detached monitor for c; returns when the command runs."""
    from ..core.spawn import read_all as _read_all
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # intermediate: leave the session, fork the monitor, exit
        try:
            os.close(r)
            os.setsid()
            if os.fork() == 0:
                _become_monitor(store, c, w)
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    report = _read_all(r)
    os.close(r)
    if report == NOTIFY_OK:
        return c.reload()
    if report.startswith(b"error\0"):
        _, code, message = report.decode(errors="replace").split("\0", 2)
        err = ContainError(message)
        err.exit_code = int(code)
        raise err
    raise ContainError(f"container {c.id[:12]}: monitor exited before starting it")


def _become_monitor(store, c, notify_fd):
    # Nothing of the CLI stays open here: above all not its copy of the
    # container lock (the lock lives as long as any copy of its fd does).
    # The CLI keeps holding the lock until we report.
    os.closerange(3, notify_fd)
    os.closerange(notify_fd + 1, 1 << 16)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    # ignored signals stay ignored across our execs
    import signal
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    try:
        _start(store, c, notify_fd)
    except BaseException:
        pass
    os._exit(0)


def _start(store, c, notify_fd=None):
    """Spawn the container, then become the pump.  Returns only on failure."""
    from . import runtime
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        proc = runtime.start_process(store, c, stdio=(devnull, out_w, err_w),
                                     tty=c.config.get("tty", False))
    except ContainError as e:
        for fd in (out_r, out_w, err_r, err_w, devnull):
            os.close(fd)
        if notify_fd is None:
            raise
        _notify(notify_fd, b"error\0%d\0%s" % (e.exit_code, str(e).encode()))
        runtime.cleanup_after_exit(store, c)
        return
    for fd in (out_w, err_w, devnull):
        os.close(fd)
    if proc.master is not None:  # -t: one stream, the terminal's
        os.close(out_r)
        os.close(err_r)
        out_r, err_r = proc.master, -1
    if notify_fd is not None:
        c.lock_held = False  # the CLI lets go of the lock once we report
        _notify(notify_fd, NOTIFY_OK)
    logcfg = c.config.get("log") or {}
    _exec("pump_main", store.root, c.id, proc.pid, out_r, err_r,
          logcfg.get("max_size", 10 << 20), logcfg.get("max_file", 3))


def _exec(entry, *args):
    """Replace this process by a fresh interpreter running entry(args);
    the fds named in args are handed over (made inheritable)."""
    for a in args:
        if isinstance(a, int) and 0 <= a < 1 << 16 and a not in (0, 1, 2):
            try:
                os.set_inheritable(a, True)
            except OSError:
                pass
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", _ENTRY.format(entry),
                              TOP, *map(str, args)])


def pump_main(argv):
    """Phase 2: copy the container's output into the log until it exits."""
    from .logs import LOG_NAME, LogWriter, pump
    root, cid, pid, out_fd, err_fd, max_size, max_file = argv
    pid, out_fd, err_fd = int(pid), int(out_fd), int(err_fd)
    writer = LogWriter(os.path.join(root, "containers", cid, LOG_NAME),
                       int(max_size), int(max_file))
    streams = {fd: name for fd, name in ((out_fd, "stdout"), (err_fd, "stderr")) if fd >= 0}
    pump(streams, writer)
    writer.close()
    _, status = os.waitpid(pid, 0)
    # the exit phase in this interpreter: `stop` and `rm -f` wait for it,
    # and a fresh one would cost its start-up first (a restart execs anyway)
    exit_main([root, cid, status])


def exit_main(argv):
    """Phase 3: record the exit, clean up, restart or remove."""
    from . import runtime
    from .state import Store
    root, cid, status = argv
    store = Store(root)
    try:
        c = store.load(cid)
    except ContainError:  # removed meanwhile (rm -f): nothing left to do
        os._exit(0)
    code = runtime.exit_code_of(int(status))
    oom = runtime.oom_killed(c)
    if oom and code == 128 + SIGKILL:
        code = 137
    runtime.record_exit(c, code, oom)
    # (--rm, which never restarts: the container goes, and its veth with it)
    runtime.cleanup_after_exit(store, c, removing=bool(c.config.get("auto_remove")))
    if oom:
        _log_line(c, "contain: container was killed by the OOM killer\n")
    while _restart_wanted(c, code):
        try:
            _start(store, c)  # execs the pump: returns only on failure
        except ContainError as e:
            c.update(error=str(e), pid=0, finished_at=runtime.now(), restarting=False)
            _log_line(c, f"contain: restart failed: {e}\n")
            break
    if c.config.get("auto_remove"):
        runtime.wait_for_waiters(c)   # `wait`, `start -a`: the exit code first
        try:
            runtime.teardown(store, c)
        except ContainError:
            pass
    os._exit(0)


def _restart_wanted(c, code):
    """Apply the restart policy (after a back-off); False when stopped."""
    policy = c.config.get("restart") or {"name": "no", "max": 0}
    c.reload()
    if not _should_restart(policy, c, code):
        return False
    count = c.state.get("restart_count", 0) + 1
    c.update(restart_count=count, restarting=True)
    time.sleep(min(0.1 * 2 ** min(count, 6), 5))
    c.reload()
    if c.state.get("stop_requested"):
        c.update(restarting=False)
        return False
    return True


def _should_restart(policy, c, code):
    name = policy.get("name", "no")
    if c.state.get("stop_requested") or name == "no":
        return False
    if name == "on-failure":
        return code != 0 and (not policy.get("max") or
                              c.state.get("restart_count", 0) < policy["max"])
    return name in ("always", "unless-stopped")


def _log_line(c, text):
    from .logs import LOG_NAME, LogWriter
    logcfg = c.config.get("log") or {}
    writer = LogWriter(c.path(LOG_NAME), logcfg.get("max_size", 10 << 20),
                       logcfg.get("max_file", 3))
    writer.write("stderr", text.encode())
    writer.close()


def _notify(fd, data):
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
