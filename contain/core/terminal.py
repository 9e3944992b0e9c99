"""The user's terminal: raw mode, window size, and the copy loop between it
and the container's pseudo-terminal (for -t)."""

import errno
import os
import signal

from . import linux


class RawMode:
    """Put a terminal in raw mode and restore it afterwards (also on error)."""

    def __init__(self, fd):
        self.fd, self.saved = fd, None

    def __enter__(self):
        import termios
        import tty
        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)  # FLUSH would drop typed-ahead input
        return self

    def __exit__(self, *exc):
        import termios
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSAFLUSH, self.saved)


def copy_winsize(src_fd, dst_fd):
    """Give the container's terminal the size of the user's."""
    import fcntl
    try:
        size = fcntl.ioctl(src_fd, linux.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst_fd, linux.TIOCSWINSZ, size)
    except OSError:
        pass


def proxy(master, stdin_fd, stdout_fd, child_exited, forward_stdin=True, tee=None):
    """Copy user input to the pty master and its output to the user until
    the container exits.  child_exited() -> bool is polled after SIGCHLD;
    tee(data), if given, also receives the container's output (for its log)."""
    import selectors
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wfd)
    old_winch = signal.signal(signal.SIGWINCH,
                              lambda *_: copy_winsize(stdin_fd, master))
    old_chld = signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    sel.register(rfd, selectors.EVENT_READ)
    if forward_stdin:
        sel.register(stdin_fd, selectors.EVENT_READ)
    copy_winsize(stdin_fd, master)
    try:
        while True:
            if child_exited():
                _drain(master, stdout_fd, tee)
                return
            for key, _ in sel.select(0.5):
                fd = key.fd
                if fd == rfd:
                    try:
                        os.read(rfd, 512)
                    except BlockingIOError:
                        pass
                elif fd == master:
                    if not _copy(master, stdout_fd, tee):
                        sel.unregister(master)
                elif fd == stdin_fd:
                    data = os.read(stdin_fd, 65536)
                    if not data:
                        sel.unregister(stdin_fd)
                        _write_all(master, b"\x04")  # EOF for the terminal's reader
                    else:
                        _write_all(master, data)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        signal.signal(signal.SIGWINCH, old_winch)
        signal.signal(signal.SIGCHLD, old_chld)
        sel.close()
        os.close(rfd)
        os.close(wfd)


def _copy(src, dst, tee=None):
    try:
        data = os.read(src, 65536)
    except OSError as e:
        if e.errno == errno.EIO:  # the slave side was closed: container gone
            return False
        raise
    if not data:
        return False
    _write_all(dst, data)
    if tee:
        tee(data)
    return True


def _drain(master, out, tee=None):
    os.set_blocking(master, False)
    try:
        while _copy(master, out, tee):
            pass
    except BlockingIOError:
        pass


def _write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            import select
            select.select([], [fd], [])
            continue
        data = data[n:]
