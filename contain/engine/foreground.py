"""A container in the foreground: the user's terminal and signals.

`contain run` without -d and `contain exec` wait here.  The CLI process is
the monitor then: signals sent to it (SIGINT, SIGTERM, SIGHUP...) are
forwarded to the container's process, a -t terminal is copied both ways, and
an attached run that stays after it exits keeps its output for `logs`.
"""

import _signal   # (the C module under signal: signal builds enums, ~0.5 ms, on import)
import os
import time

from .runtime import (cleanup_after_exit, exit_code_of, oom_killed, record_exit,
                      start_process)

FORWARDED_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                     _signal.SIGUSR1, _signal.SIGUSR2)


class SignalForwarder:
    """Forward SIGINT, SIGTERM, SIGHUP... to the container's process.

    Installed before the process exists, so a signal that arrives while it
    is being set up is not lost (nor kills us): it waits in `pending` and is
    delivered as soon as the pid is known."""

    def __init__(self):
        self.pid, self.pending, self.old = None, [], {}

    def __enter__(self):
        self.old = {s: _signal.signal(s, self._handle) for s in FORWARDED_SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, h in self.old.items():
            _signal.signal(s, h)

    def _handle(self, sig, _frame):
        if self.pid is None:
            self.pending.append(sig)
        else:
            self._send(sig)

    def _send(self, sig):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def set_pid(self, pid):
        self.pid = pid
        while self.pending:
            self._send(self.pending.pop(0))


def wait_foreground(pid, master, interactive, writer=None):
    """Wait for a foreground process, copying the terminal if it has one
    (and its output into writer, the container's log, if given)."""
    exited = {}
    if master is not None:
        from ..core import terminal

        def child_exited():
            if not exited:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    exited["status"] = status
            return bool(exited)
        with terminal.RawMode(0):
            terminal.proxy(master, 0, 1, child_exited, forward_stdin=interactive,
                           tee=writer and (lambda data: writer.write("stdout", data)))
        os.close(master)
    if not exited:
        exited["status"] = os.waitpid(pid, 0)[1]
    return exit_code_of(exited["status"])


def run_attached(store, c, log=None, interactive=False, tty=False):
    """Run the container in the foreground (`contain run` without -d): this
    process is its monitor; stdio is the user's; signals are forwarded."""
    t0 = time.monotonic()
    stdin = 0
    devnull = None
    if not interactive:
        devnull = stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    # A container that stays after it exits keeps its output for `logs`, as
    # Docker's do: it goes through pipes, to the user and to the log.  With
    # --rm there is no one to read a log: the user's stdio is passed as is.
    writer = out = None
    stdio = (stdin, 1, 2)
    if not c.config.get("auto_remove"):
        from . import logs
        logcfg = c.config.get("log") or {}
        writer = logs.LogWriter(c.path(logs.LOG_NAME), logcfg.get("max_size", 10 << 20),
                                logcfg.get("max_file", 3))
        if not tty:
            out = os.pipe2(os.O_CLOEXEC) + os.pipe2(os.O_CLOEXEC)
            stdio = (stdin, out[1], out[3])
    with SignalForwarder() as forwarder:
        try:
            proc = start_process(store, c, log, stdio=stdio, tty=tty)
        except BaseException:
            cleanup_after_exit(store, c)
            raise
        finally:
            if devnull is not None:
                os.close(devnull)
            if out:
                os.close(out[1])
                os.close(out[3])
        forwarder.set_pid(proc.pid)
        if out:
            logs.pump({out[0]: "stdout", out[2]: "stderr"}, writer, {"stdout": 1, "stderr": 2})
        code = wait_foreground(proc.pid, proc.master, interactive, writer)
        if writer:
            writer.close()
    oom = oom_killed(c)
    record_exit(c, code, oom)
    if log:
        log(f"container exited: status {code} ({time.monotonic() - t0:.2f} s)")
    if not c.config.get("auto_remove"):     # (with --rm, removal releases it all next)
        cleanup_after_exit(store, c, log)
    return code
