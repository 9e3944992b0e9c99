"""The OCI runtime's records: one directory per container under the state
root (`--root`, default /run/contain), and the small file utilities every
record in contain uses (one atomic write, one lock, one liveness check).

    <root>/<id>/state.json   the container as `create` left it (pid, start
                              time, bundle, cgroup, annotations, hooks...)
    <root>/<id>/exec.fifo    exists between create and start: the init
                              blocks opening it until `start` reads it
    <root>/<id>/lock         flock(2)ed while the record changes

Status is never stored (runc's refreshState): it is derived on every read
from the kernel: the init's pid with the start time recorded at create
(a reused pid is not ours), the exec fifo, the cgroup's freezer.
"""

import errno
import fcntl
import os

from .fsutil import read_json, write_atomic, write_json  # noqa: F401
from ..errors import ContainError, NotFound, UsageError

DEFAULT_ROOT = "/run/contain"


# ---------------------------------------------------------- small utilities
def write_text(path, text):
    """Atomically replace path with text (pid files: digits, no newline)."""
    write_atomic(path, text.encode())


class FileLock:
    """An exclusive flock(2) on a file, as a context manager."""

    def __init__(self, path):
        self.path = path
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = -1


# ----------------------------------------------------------- kernel facts
_boot_id = None


def boot_id():
    global _boot_id
    if _boot_id is None:
        with open("/proc/sys/kernel/random/boot_id") as f:
            _boot_id = f.read().strip()
    return _boot_id


def proc_start_time(pid):
    """(start time in clock ticks since boot, state letter) of a pid, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[19]), fields[0].decode()


def process_alive(pid, start_time, boot):
    """True if pid is the very process recorded (not a zombie, not a reuse)."""
    if not pid or boot != boot_id():
        return False
    info = proc_start_time(pid)
    return info is not None and info[0] == start_time and info[1] not in ("Z", "X")


def remove_tree(top):
    """rm -rf top, never following a symlink (shutil.rmtree would do, but it
    imports bz2 and lzma: 3 ms on every start).  Errors are ignored; the
    caller checks what is left."""
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames:
            try:
                os.unlink(os.path.join(dirpath, name))
            except OSError:
                pass
        for name in dirnames:
            path = os.path.join(dirpath, name)
            try:
                if os.path.islink(path):
                    os.unlink(path)
                else:
                    os.rmdir(path)
            except OSError:
                pass
    try:
        os.rmdir(top)
    except OSError:
        pass


# ----------------------------------------------------------------- records
def check_id(cid):
    """runc's rule for container ids: letters, digits, _ + - . (no path)."""
    if not cid or cid in (".", "..") or not all(c.isalnum() or c in "_+-." for c in cid) \
            or not cid.isascii():
        raise UsageError(f"invalid container id {cid!r}: use letters, digits, _ + - .")
    return cid


CREATING = "creating"     # in a record's directory while its process is set up


class Record:
    """One container's record in a state root."""

    def __init__(self, root, cid):
        self.root, self.id = root, check_id(cid)
        self.dir = os.path.join(root, cid)
        self.data = {}

    def path(self, name):
        return os.path.join(self.dir, name)

    def lock(self):
        return FileLock(self.path("lock"))

    def exists(self):
        return os.path.exists(self.path("state.json"))

    def load(self):
        try:
            self.data = read_json(self.path("state.json"))
        except FileNotFoundError:
            raise NotFound(f"container {self.id} does not exist") from None
        except (OSError, ValueError) as e:
            raise ContainError(f"{self.path('state.json')}: damaged record ({e}); "
                               f"`delete --force {self.id}` removes it") from None
        if not isinstance(self.data, dict):
            raise ContainError(f"{self.path('state.json')}: damaged record (not an "
                               f"object); `delete --force {self.id}` removes it")
        return self

    def save(self):
        write_json(self.path("state.json"), self.data, mode=0o600)

    def update(self, **fields):
        self.data.update(fields)
        self.save()

    @property
    def pid(self):
        return self.data.get("pid") or 0

    def alive(self):
        d = self.data
        return process_alive(d.get("pid"), d.get("start_time"), d.get("boot_id"))

    def status(self, cgroup=None):
        """creating | created | running | paused | stopped, from the kernel.
        "creating" while `create` sets the process up: its pid is recorded
        at once, and the file CREATING is there until the setup is done."""
        if not self.data.get("pid"):
            return "creating"
        if not self.alive():
            return "stopped"
        if os.path.exists(self.path(CREATING)):
            return "creating"
        if os.path.exists(self.path("exec.fifo")):
            return "created"
        if cgroup is not None and cgroup.frozen():
            return "paused"
        return "running"


def list_ids(root):
    try:
        return sorted(d for d in os.listdir(root)
                      if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    except FileNotFoundError:
        return []


def ignore_missing(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ESRCH):
            raise
