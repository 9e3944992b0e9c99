"""Container logs in Docker's json-file format: one JSON object per line,
{"log": "...\\n", "stream": "stdout"|"stderr", "time": RFC3339Nano},
bounded by size with rotation (container.log, container.log.1, ...)."""

import errno
import os
import time

from ..clock import now, parse_time

try:  # the C encoder: the log pump must not import json (and re) to stay small
    from _json import encode_basestring_ascii as _quote
except ImportError:  # pragma: no cover - other Pythons
    from json.encoder import encode_basestring_ascii as _quote

LOG_NAME = "container.log"
MAX_LINE = 16 * 1024  # Docker splits longer lines into 16K pieces


_FULL = (errno.ENOSPC, errno.EDQUOT)


class LogWriter:
    """Appends a container's output to its json-file log.  A full disk
    never stops the container: lines that cannot be written are dropped and
    counted, and one warning entry says so as soon as one can be written."""

    dropped = 0

    def __init__(self, path, max_size=10 << 20, max_file=3):
        self.path, self.max_size, self.max_file = path, max_size, max_file
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.partial = {"stdout": b"", "stderr": b""}

    def write(self, stream, data):
        """Add raw bytes from a stream; complete lines are written out."""
        buf = self.partial[stream] + data
        lines = buf.split(b"\n")
        self.partial[stream] = lines.pop()
        out = []
        for line in lines:
            out.append(self._entry(stream, line + b"\n"))
        while len(self.partial[stream]) >= MAX_LINE:
            piece, self.partial[stream] = (self.partial[stream][:MAX_LINE],
                                           self.partial[stream][MAX_LINE:])
            out.append(self._entry(stream, piece))
        if out:
            self._append(out)

    def flush(self):
        for stream in ("stdout", "stderr"):
            if self.partial[stream]:
                self._append([self._entry(stream, self.partial[stream])])
                self.partial[stream] = b""

    def _entry(self, stream, raw):
        text = _quote(raw.decode(errors="replace"))
        return f'{{"log": {text}, "stream": "{stream}", "time": "{now()}"}}\n'.encode()

    def _append(self, entries):
        """Write entries (a list of encoded lines), rotating between them."""
        batch = []
        for data in entries:
            if (self.max_size > 0 and self.size + len(data) > self.max_size
                    and (self.size or batch)):
                self._flush_batch(batch)
                batch = []
                self._rotate()
            batch.append(data)
            self.size += len(data)
        self._flush_batch(batch)

    def _flush_batch(self, batch):
        if not batch:
            return
        lines = len(batch)
        if self.dropped:
            batch = [self._entry("stderr", f"contain: {self.dropped} log lines dropped: "
                                           "no space left on device\n".encode())] + batch
        data = b"".join(batch)
        try:
            written = os.write(self.fd, data)
        except OSError as e:
            if e.errno not in _FULL:
                raise
            written = 0
        if written == len(data):
            self.dropped = 0
            return
        # a full disk: the batch is dropped whole (a half line would be a
        # broken entry), and counted for the warning
        end = os.fstat(self.fd).st_size
        if written:
            os.ftruncate(self.fd, end - written)
            end -= written
        self.dropped += lines
        self.size = end

    def _rotate(self):
        """container.log becomes .1 (.1 becomes .2...), and a new one starts.
        The new file is made first: on a full disk even an empty one may
        find no room (no inode), and then nothing is shifted, the current
        file goes on past max_size, and the next rotation is tried after
        another max_size (a full disk never stops the pump)."""
        self.size = 0  # the caller counts what it writes next
        if self.max_file <= 1:
            os.ftruncate(self.fd, 0)
            return
        new = f"{self.path}.new"
        try:
            fd = os.open(new, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                         0o640)
        except OSError as e:
            if e.errno not in _FULL:
                raise
            return
        try:
            for i in range(self.max_file - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.rename(src, f"{self.path}.{i}")
            os.rename(new, self.path)
        except OSError as e:
            # a rename to a name not yet there may need room in the directory:
            # the current file keeps (or gets back) its name, and goes on
            if e.errno not in _FULL:
                raise
            os.close(fd)
            os.unlink(new)
            if not os.path.exists(self.path):
                os.rename(f"{self.path}.1", self.path)
            return
        os.close(self.fd)
        self.fd = fd

    def close(self):
        self.flush()
        os.close(self.fd)


def pump(streams, writer, echo=None):
    """Copy {fd: "stdout"|"stderr"} into the log until every fd is at EOF.

    echo: {stream name: fd} to copy the output to as well (an attached
    `run`); a closed reader there (EPIPE) stops the echo, not the log."""
    import select
    echo = dict(echo or {})
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    streams = dict(streams)
    while streams:
        for fd, _ in poller.poll():
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO from a pty whose last user closed it
                data = b""
            if not data:
                poller.unregister(fd)
                os.close(fd)
                del streams[fd]
                continue
            name = streams[fd]
            writer.write(name, data)
            if name in echo:
                try:
                    _write_all(echo[name], data)
                except OSError:
                    del echo[name]


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def log_files(path):
    """The log and its rotated files, oldest first."""
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def read_entries(path):
    from .. import fastjson
    for name in log_files(path):
        with open(name, "rb") as f:
            for line in f:
                try:
                    yield fastjson.loads(line)
                except ValueError:
                    continue


def parse_since(value, reference=None):
    """--since: an RFC 3339 time, a Unix timestamp, or a duration like 10m."""
    if value is None:
        return None
    from ..errors import UsageError
    reference = time.time() if reference is None else reference
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
            return reference - float(value[:-1]) * units[value[-1]]
        if value.replace(".", "", 1).isdigit():
            return float(value)
        return parse_time(value if value.endswith("Z") else value + "Z")
    except (ValueError, IndexError):
        raise UsageError(f"invalid --since value: {value} "
                         "(use a duration like 10m, a Unix time, or 2024-01-02T15:04:05Z)") from None


def format_entry(entry, timestamps):
    text = entry.get("log", "")
    return (entry.get("time", "") + " " + text) if timestamps else text


def show(path, out_fd, err_fd, tail=None, since=None, timestamps=False,
         follow=False, still_running=lambda: False, offset=0):
    """Print the log (Docker's `logs`): --tail, --since, -t, -f.  With an
    offset (`start -a`), only what was written after it is shown."""
    if offset:
        entries = []
    else:
        entries = list(read_entries(path))
    if since is not None:
        entries = [e for e in entries if parse_time(e["time"]) >= since]
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    for e in entries:
        _emit(e, out_fd, err_fd, timestamps)
    if not follow:
        return
    from .. import fastjson
    # follow: read what is appended, reopening after a rotation
    f = open(path, "rb") if os.path.exists(path) else None
    if f:
        size = os.fstat(f.fileno()).st_size
        f.seek(offset if offset and offset <= size else size)
    ino = os.fstat(f.fileno()).st_ino if f else None
    idle_after_exit = 0
    while True:
        line = f.readline() if f else b""
        if line.endswith(b"\n"):
            try:
                _emit(fastjson.loads(line), out_fd, err_fd, timestamps)
            except ValueError:
                pass
            continue
        if f and line:
            f.seek(-len(line), os.SEEK_CUR)
        try:
            st = os.stat(path)
            if ino != st.st_ino:  # rotated: continue with the new file
                if f:
                    f.close()
                f, ino = open(path, "rb"), st.st_ino
                continue
        except FileNotFoundError:
            pass
        if not still_running():
            idle_after_exit += 1
            if idle_after_exit > 2:
                return
        time.sleep(0.05)


def _emit(entry, out_fd, err_fd, timestamps):
    fd = err_fd if entry.get("stream") == "stderr" else out_fd
    os.write(fd, format_entry(entry, timestamps).encode())
