"""cgroups: resource limits, usage and cleanup, one interface over v2 and v1.

A container gets one cgroup, ``<root>/<parent>/<name>``, created before its
command runs.  The container's first process joins it by writing ``0`` to
every file in ``Cgroup.join_files`` (see ``join()``), or is born in it
(clone3 into ``Cgroup.v2_dir``), then unshares its cgroup namespace, so
the container sees its own cgroup as ``/``.

This package:

* here: what both drivers share: the ``Cgroup`` and ``Driver`` interfaces
  (create, destroy, kill, freeze, stats), reading and writing interface
  files, and ``open_driver()``, which picks the driver for the host;
* ``v2.py``: the unified hierarchy (every current distribution);
* ``v1.py``: legacy and hybrid hosts, one hierarchy per controller;
* ``limits.py``: Docker's resource limits (a dict such as ``{"memory":
  67108864, "pids_limit": 64}``), Docker's rules for them, and
  config.json's ``linux.resources`` in that form.  Loaded where a cgroup
  is made or changed: stopping, removing or entering a container needs
  none of it.

The engine's Docker flags are parsed in contain/engine/limits.py and its
stats formatted in contain/engine/stats.py.  A limit the host cannot
enforce is an error naming the missing controller, never silently dropped.
Every kernel interaction here is a read or write of a cgroupfs file, so no
ctypes are needed.  Files are opened without O_CREAT: a missing interface
file is an error, exactly as in cgroupfs, and a fake tree in a temporary
directory (the unit tests) behaves the same way.
"""

import errno
import os
import time

from ...errors import Conflict, ContainError, UsageError
from ..linux import write_file

ROOT = "/sys/fs/cgroup"

SIGKILL = 9            # <asm/signal.h>; avoids importing signal (enum) at start-up


# ======================================================== file primitives

def write_value(path, value):
    """Write one value to a cgroup interface file (never creates it)."""
    write_file(path, str(value).encode(), truncate=True)


def read_text(path):
    with open(path) as f:
        return f.read().strip()


def read_int(path):
    """An integer file, None when missing or 'max'."""
    try:
        text = read_text(path)
    except OSError:
        return None
    return int(text) if text.lstrip("-").isdigit() else None


def read_keyed(path):
    """'key value' lines (memory.stat, cpu.stat, memory.events...) -> dict."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                    out[parts[0]] = int(parts[1])
    except OSError:
        pass
    return out


def join(procs_files):
    """Move the calling process into a cgroup: write '0' to each cgroup.procs.

    Called by the container's child between fork and unshare(CLONE_NEWCGROUP),
    so it stays minimal: one write per file.
    """
    for path in procs_files:
        write_file(path, b"0")


def _check_names(parent, name):
    """Reject cgroup names that could escape the cgroup root.  An empty
    parent is the hierarchy's root (runc makes cgroupsPath "/NAME" there)."""
    parent = (parent or "").strip("/")
    if parent and any(p in ("", ".", "..") for p in parent.split("/")):
        raise UsageError(f"invalid cgroup parent {parent!r}")
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"invalid cgroup name {name!r}")
    return parent, name


def live_pids(dirs):
    """Every pid in the cgroups at dirs and their child cgroups."""
    pids = set()
    for top in dirs:
        for dirpath, _, _ in os.walk(top):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except (OSError, ValueError):
                pass
    return sorted(pids)


def signal_all(dirs, sig):
    sent = 0
    for pid in live_pids(dirs):
        try:
            os.kill(pid, sig)
            sent += 1
        except ProcessLookupError:
            pass
    return sent


def rmdir_tree(top, deadline, retry_kill):
    """Remove a cgroup and its child cgroups, deepest first, retrying EBUSY.

    A cgroup can only go once no process is left in it; a process killed a
    moment ago may still be exiting, so EBUSY is retried with short sleeps
    until the deadline, re-killing in case something was forked meanwhile.
    """
    dirs = [d for d, _, _ in os.walk(top)]
    for path in sorted(dirs, key=lambda d: -d.count("/")):
        delay = 0.001
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.EAGAIN) or time.monotonic() > deadline:
                    left = live_pids([path])
                    raise ContainError(
                        f"cannot remove cgroup {path}: {e.strerror}"
                        + (f" (processes still inside: {left[:10]})" if left else "")) from None
                retry_kill()
                time.sleep(delay)
                delay = min(delay * 2, 0.05)


def freeze_and_wait(control, value, status, wanted, timeout=1.0):
    """Write value to a freezer control file and wait for status to say so."""
    if not os.path.exists(control):
        return False
    try:
        write_value(control, value)
    except OSError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if wanted in read_text(status).splitlines():
                break
        except OSError:
            break
        time.sleep(0.002)
    return True


def subdirs(path):
    try:
        return [e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def kernel_at_least(major, minor):
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def docker_warnings(ctrls, swap, io, cfs=True):
    """Docker info's cgroup warnings."""
    out = []
    if "memory" not in ctrls:
        out.append("No memory limit support")
    elif not swap:
        out.append("No swap limit support")
    if "cpu" not in ctrls:
        out.append("No cpu shares support")
    elif not cfs:
        out.append("No cpu cfs quota support")
    if "cpuset" not in ctrls:
        out.append("No cpuset support")
    if "pids" not in ctrls:
        out.append("No pids limit support")
    if io not in ctrls:
        out.append("No blkio throttling support")
    return out


# ================================================================= cgroups

class Cgroup:
    """One container's cgroup (a directory per hierarchy on v1, one on v2)."""

    version = None

    def __init__(self, driver, parent, name, dirs, procs_dirs):
        self.driver = driver
        self.parent = parent
        self.name = name
        self.dirs = dirs            # every directory that makes up this cgroup
        # cgroup.procs files the container's process writes '0' to
        self.procs_files = [os.path.join(d, "cgroup.procs") for d in procs_dirs]
        # what a single-threaded process writes "0" to, to join (see join())
        self.join_files = self.procs_files
        self.devices_enforced = False

    def __repr__(self):
        return f"<Cgroup v{self.version} {self.parent}/{self.name}>"

    @property
    def path(self):
        """The cgroup's path relative to each hierarchy root ('contain/<id>')."""
        return f"{self.parent}/{self.name}" if self.parent else self.name

    def exists(self):
        return any(os.path.isdir(d) for d in self.dirs)

    def join(self):
        """Move the calling process in (see the module function join())."""
        join(self.procs_files)

    def add(self, pid):
        """Move process pid (its whole thread group) into this cgroup."""
        for path in self.procs_files:
            try:
                write_value(path, pid)
            except OSError as e:
                raise ContainError(f"cannot move process {pid} into cgroup "
                                   f"{os.path.dirname(path)}: {e.strerror}") from None

    def pids(self):
        """Pids of every process in this cgroup (and its child cgroups)."""
        return live_pids([d for d in self.dirs if os.path.isdir(d)])

    def update(self, limits):
        """Change limits of a (possibly running) container; keys absent stay."""
        from .limits import check_limits
        self._apply(check_limits(limits, update=True), initial=False)

    def _run(self, plan):
        """Execute [(path, value, key)] writes, turning failures into one line."""
        for path, value, key in plan:
            try:
                write_value(path, value)
            except OSError as e:
                raise ContainError(self._explain(path, value, key, e)) from None

    def _explain(self, path, value, key, err):
        from .limits import FLAGS
        flag = FLAGS.get(key, key)
        if err.errno == errno.ENOENT:
            return (f"cannot apply {flag}: {os.path.basename(path)} does not exist in "
                    f"{os.path.dirname(path)} (the kernel lacks this feature)")
        if err.errno == errno.EINVAL and key == "memory" and self.version == 1:
            return (f"cannot apply {flag}: Memory limit should be smaller than already "
                    "set memoryswap limit, update the memoryswap at the same time")
        if err.errno == errno.EBUSY and key == "memory":
            return (f"cannot apply {flag}: the container already uses more memory "
                    f"than {value} bytes and it cannot be reclaimed")
        return f"cannot apply {flag} ({os.path.basename(path)}={value}): {err.strerror}"

    # per-version parts
    def _devices(self, devices):
        raise NotImplementedError

    def _io_accounting(self, paths):
        raise NotImplementedError

    def _apply(self, limits, initial):
        self._run(self.plan(limits, initial))

    def plan(self, limits, initial=False):
        """[(file, value, key)]: the writes that apply limits, in order."""
        raise NotImplementedError

    def stats(self):
        """Usage counters; missing controllers give None values."""
        raise NotImplementedError

    def oom_kill_count(self):
        """OOM kills in this cgroup so far (0 when the kernel cannot tell)."""
        raise NotImplementedError

    def kill_all(self, sig=SIGKILL):
        raise NotImplementedError


class Driver:
    """Common driver logic: names, create/destroy around the per-version parts."""

    version = None

    def __init__(self, root):
        self.root = root

    def controllers(self):
        """Controllers this host can use for containers (sorted names)."""
        raise NotImplementedError

    def check(self, limits):
        """Raise ContainError naming the controller a requested limit needs."""
        from .limits import CONTROLLER, FLAGS, LIMIT_KEYS
        have = set(self.controllers())
        for key in LIMIT_KEYS:
            if limits.get(key) is None:
                continue
            need = CONTROLLER[key]
            if self.version == 2 and need == "blkio":
                need = "io"
            if need not in have:
                raise ContainError(
                    f"cannot apply {FLAGS[key]}: the {need} cgroup controller is not "
                    f"available on this host (cgroup v{self.version} at {self.root}; "
                    f"usable: {', '.join(sorted(have)) or 'none'})")

    def cgroup(self, parent, name):
        """The Cgroup object for parent/name (whether or not it exists)."""
        parent, name = _check_names(parent, name)
        return self._make(parent, name)

    def exists(self, parent, name):
        return self.cgroup(parent, name).exists()

    def create(self, parent, name, limits=None, devices=None, io_paths=("/",)):
        """Make parent/name, apply limits, return the Cgroup.

        devices: 'default' (Docker's device allow-list) or 'all' (privileged).
        io_paths: where the container will do disk I/O (its rootfs, volumes):
        on v1 their disks get block I/O accounting (see _io_accounting).
        A failure removes what was made here and raises ContainError.
        An existing cgroup with no processes (a crash leftover) is reused.
        """
        from .limits import check_limits
        limits = check_limits(limits or {})
        self.check(limits)
        cg = self.cgroup(parent, name)
        if cg.exists() and cg.pids():
            raise Conflict(f"cgroup {cg.path} already exists and has processes")
        try:
            try:
                self._mkdirs(cg)
            except OSError as e:
                raise ContainError(f"cannot create cgroup {e.filename}: {e.strerror}") from None
            cg._devices(devices)
            cg._io_accounting(io_paths)
            cg._apply(limits, initial=True)
        except BaseException:
            try:
                self.destroy(parent, name)
            except ContainError:
                pass    # the first error is the one to report
            raise
        return cg

    def destroy(self, parent, name, timeout=5.0):
        """Kill what is left in parent/name and remove it; idempotent.

        Works from the names alone (after a crash).  Returns True when there
        was something to remove.
        """
        cg = self.cgroup(parent, name)
        # The usual case first: nothing left inside, no child cgroups, so one
        # rmdir per directory does it (walking each one's files costs more).
        present, busy = False, []
        for d in cg.dirs:
            try:
                os.rmdir(d)
                present = True
            except FileNotFoundError:
                pass
            except OSError:
                present = True
                busy.append(d)
        if not busy:
            return present
        if cg.pids():
            cg.kill_all()
        deadline = time.monotonic() + timeout
        for d in busy:
            rmdir_tree(d, deadline, cg.kill_all)
        return True

    def remove_parent_if_empty(self, parent):
        """rmdir the parent cgroup in every hierarchy where it has no child.

        Only the parent itself, never its ancestors; and Docker never removes
        a --cgroup-parent (it may carry the user's own limits), so call this
        for parents contain made (the default one, the tests' private one).
        Returns True when no trace of the parent is left.
        """
        parent = _check_names(parent, "x")[0]
        if not parent:          # the hierarchy's root itself is never removed
            return False
        gone = True
        for base in self._bases():
            try:
                os.rmdir(os.path.join(base, parent))
            except FileNotFoundError:
                pass
            except OSError:   # EBUSY: other containers live there
                gone = False
        return gone

    def info(self):
        raise NotImplementedError

    def swap_limit(self):
        """Whether the kernel can limit a cgroup's swap (swap accounting)."""
        raise NotImplementedError

    def default_limits(self, limits):
        """limits plus Docker's default swap, to record at create: --memory
        without --memory-swap allows as much swap again (memory+swap = twice
        the memory) where the kernel limits swap.  Recorded, `inspect` shows
        it, and `update --memory` keeps the total, so swap is recomputed."""
        if not limits.get("memory") or limits.get("memory_swap") is not None \
                or not self.swap_limit():
            return limits
        return dict(limits, memory_swap=2 * limits["memory"])

    def _make(self, parent, name):
        raise NotImplementedError

    def _bases(self):
        """Every hierarchy root directory this driver makes cgroups in."""
        raise NotImplementedError

    def _mkdirs(self, cg):
        raise NotImplementedError


def write_raw(cg, raw):
    """Write [(controller, file, value)] into the container's cgroup."""
    for controller, name, value in raw:
        base = cg.dir if cg.version == 2 else cg.at.get(controller)
        if base is None:
            raise ContainError(f"cannot set {name}: the {controller} cgroup controller is "
                               "not available on this host")
        try:
            write_value(os.path.join(base, name), value)
        except OSError as e:
            raise ContainError(f"cannot set {name}={value}: {e.strerror}") from None


_host_drivers = {}


def open_driver(root=ROOT, all_hierarchies=False):
    """The driver for the cgroup tree at root: v2 if root itself is cgroup2.
    all_hierarchies (v1): also named hierarchies and a hybrid's cgroup2 tree.
    The host's tree (root=ROOT) is read once per process: what is mounted
    there does not change under a command, and the engine's and the core's
    halves of one command then share the reading."""
    if root == ROOT and all_hierarchies in _host_drivers:
        return _host_drivers[all_hierarchies]
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        from .v2 import DriverV2
        driver = DriverV2(root)
    elif not os.path.isdir(root):
        raise ContainError(f"no cgroup filesystem at {root}")
    else:
        from .v1 import DriverV1
        driver = DriverV1(root, all_hierarchies)
    if root == ROOT:
        _host_drivers[all_hierarchies] = driver
    return driver


def sample(cg):
    """One stats reading with its monotonic timestamp, for cpu_percent()."""
    st = cg.stats()
    st["read_ns"] = time.monotonic_ns()
    return st
