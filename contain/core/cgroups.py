"""cgroups: resource limits, usage and cleanup, one interface over v2 and v1.

A container gets one cgroup, ``<root>/<parent>/<name>``, created before its
command runs.  The container's first process joins it by writing ``0`` to
every file in ``Cgroup.procs_files`` (see ``join()``), then unshares its
cgroup namespace, so the container sees its own cgroup as ``/``.

Two drivers share one interface (``open_driver()`` picks):

* **v2** (unified): one tree; a controller works in a cgroup only when every
  ancestor lists it in ``cgroup.subtree_control``, so ``create()`` enables
  what it needs top-down.  Limits live in ``memory.max``, ``cpu.max``,
  ``cpu.weight``, ``io.max``, ``pids.max``...
* **v1** (legacy, or *hybrid* like this project's test machine): one
  hierarchy per controller (or per co-mounted group such as ``cpu,cpuacct``)
  and the same relative path is made in each.  On a hybrid host the empty
  cgroup2 tree at ``<root>/unified`` is joined too: it costs nothing and gives
  ``cgroup.kill`` and ``cgroup.events`` for free.

Limits are a plain dict with Docker HostConfig names in lower_snake case::

    {"memory": 67108864, "memory_swap": -1, "nano_cpus": 500000000,
     "cpu_shares": 512, "cpuset_cpus": "0-1", "pids_limit": 64,
     "device_write_bps": [{"path": "/dev/vda", "major": 254, "minor": 0,
                           "rate": 1048576}], ...}

config.json's linux.resources become that dict (limits_from_spec); the
engine's Docker flags are parsed in contain/engine/limits.py and its stats
formatted in contain/engine/stats.py.  A limit the host cannot enforce is an error naming the missing controller,
never silently dropped.  Every kernel interaction here is a read or write of
a cgroupfs file, so no ctypes are needed.  Files are opened without
O_CREAT: a missing interface file is an error, exactly as in cgroupfs, and a
fake tree in a temporary directory (the unit tests) behaves the same way.
"""

import errno
import os
import time

from ..errors import Conflict, ContainError, UsageError
from .linux import write_file

ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "contain"

_SIGKILL = 9            # <asm/signal.h>; avoids importing signal (enum) at start-up
_UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE

# Docker's bounds (daemon/daemon_unix.go)
MIN_MEMORY = 6 * 1024 * 1024
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144
DEFAULT_CPU_PERIOD = 100000  # microseconds

# limit key -> the Docker flag that sets it (for messages)
FLAGS = {
    "memory": "--memory", "memory_reservation": "--memory-reservation",
    "memory_swap": "--memory-swap", "cpu_period": "--cpu-period",
    "cpu_quota": "--cpu-quota", "nano_cpus": "--cpus", "cpu_shares": "--cpu-shares",
    "cpuset_cpus": "--cpuset-cpus", "cpuset_mems": "--cpuset-mems",
    "pids_limit": "--pids-limit", "blkio_weight": "--blkio-weight",
    "device_read_bps": "--device-read-bps", "device_write_bps": "--device-write-bps",
    "device_read_iops": "--device-read-iops", "device_write_iops": "--device-write-iops",
}
LIMIT_KEYS = tuple(FLAGS)
_DEVICE_KEYS = ("device_read_bps", "device_write_bps", "device_read_iops",
                "device_write_iops")

# limit key -> the controller that enforces it (v1 name; v2 calls blkio "io")
_CONTROLLER = {
    "memory": "memory", "memory_reservation": "memory", "memory_swap": "memory",
    "cpu_period": "cpu", "cpu_quota": "cpu", "nano_cpus": "cpu", "cpu_shares": "cpu",
    "cpuset_cpus": "cpuset", "cpuset_mems": "cpuset", "pids_limit": "pids",
    "blkio_weight": "blkio", "device_read_bps": "blkio", "device_write_bps": "blkio",
    "device_read_iops": "blkio", "device_write_iops": "blkio",
}

# ============================================================ flag parsing
# Pure functions: Docker's flag syntax in, limit values out, UsageError with
# one line on bad input.

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(s, flag="--memory"):
    """Docker's RAMInBytes: '512K', '64m', '1.5g', '64mb', '64MiB', '100b', '1024'.

    Units are binary (k = 1024) and case-insensitive; a trailing b / ib is
    optional.  Negative numbers and garbage are errors.
    """
    import re
    m = re.fullmatch(r"(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?", str(s).strip(), re.I)
    if not m or (m.group(2) == "" and str(s).strip().lower().endswith("ib")):
        raise UsageError(f"invalid size {s!r} for {flag}: use a number with an "
                         "optional unit b, k, m or g (e.g. 512m)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def usable_cpus():
    """The number of CPUs this process may run on (Docker's NumCPU)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def disk_of(major, minor, sysfs="/sys/dev/block"):
    """The whole disk holding block device major:minor, as {'path','major','minor'}.

    /sys/dev/block/M:m links to the device; a partition's directory has a
    'partition' file and lives inside its disk's directory.
    """
    link = os.path.join(sysfs, f"{major}:{minor}")
    if not os.path.exists(link):
        return None
    real = os.path.realpath(link)
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    try:
        with open(os.path.join(real, "dev")) as f:
            dmaj, dmin = f.read().strip().split(":")
    except (OSError, ValueError):
        return None
    return {"path": "/dev/" + os.path.basename(real), "major": int(dmaj),
            "minor": int(dmin)}


def check_limits(limits, ncpu=None, update=False):
    """Docker's validation and defaults; returns a clean copy of limits.

    Keys with None are dropped; 0 means "not set" where Docker says so
    (memory, memory_swap, reservation, shares, blkio weight, cpu period);
    pids_limit <= 0 means unlimited (-1).  update=True relaxes the rules that
    depend on values the container already has (the kernel then decides).
    """
    unknown = set(limits) - set(LIMIT_KEYS)
    if unknown:
        raise UsageError(f"unknown resource limit {sorted(unknown)[0]!r}")
    out = {k: v for k, v in limits.items() if v is not None}
    for key in ("memory", "memory_swap", "memory_reservation", "cpu_shares",
                "blkio_weight", "cpu_period", "nano_cpus"):
        if out.get(key) == 0:
            del out[key]
    for key, value in out.items():
        if key in _DEVICE_KEYS:
            out[key] = list(value)
            if any(r["rate"] < 0 for r in value):
                raise UsageError(f"{FLAGS[key]}: a rate cannot be negative")
        elif key not in ("cpuset_cpus", "cpuset_mems") and not isinstance(value, int):
            raise UsageError(f"{FLAGS[key]}: expected an integer, got {value!r}")
    mem, swap, res = out.get("memory"), out.get("memory_swap"), out.get("memory_reservation")
    if mem is not None and mem < MIN_MEMORY:
        raise UsageError("Minimum memory limit allowed is 6MB")
    if res is not None and res < MIN_MEMORY:
        raise UsageError("Minimum memory reservation allowed is 6MB")
    if mem is not None and res is not None and mem < res:
        raise UsageError("Minimum memory limit can not be less than memory "
                         "reservation limit, see usage")
    if swap is not None and swap != -1:
        if swap < 0:
            raise UsageError("--memory-swap: use a size, or -1 for unlimited swap")
        if mem is None and not update:
            raise UsageError("You should always set the Memory limit when using "
                             "Memoryswap limit, see usage")
        if mem is not None and swap < mem:
            raise UsageError("Minimum memoryswap limit should be larger than memory "
                             "limit, see usage")
    if "nano_cpus" in out:
        for key, name in (("cpu_period", "CPU Period"), ("cpu_quota", "CPU Quota")):
            if key in out:
                raise UsageError(f"Conflicting options: Nano CPUs and {name} cannot "
                                 "both be set")
        ncpu = usable_cpus() if ncpu is None else ncpu
        if not 10**7 <= out["nano_cpus"] <= ncpu * 10**9:
            raise UsageError(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are "
                             f"only {ncpu} CPUs available")
    period = out.get("cpu_period")
    if period is not None and not 1000 <= period <= 1000000:
        raise UsageError("CPU cfs period can not be less than 1ms (i.e. 1000) or "
                         "larger than 1s (i.e. 1000000)")
    quota = out.get("cpu_quota")
    if quota is not None:
        if quota <= 0:
            out["cpu_quota"] = -1
        elif quota < 1000:
            raise UsageError("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if "cpu_shares" in out:
        if out["cpu_shares"] < 0:
            raise UsageError("--cpu-shares: the value cannot be negative")
        # Docker clamps to what the kernel accepts (with a warning).
        out["cpu_shares"] = min(max(out["cpu_shares"], MIN_CPU_SHARES), MAX_CPU_SHARES)
    if out.get("pids_limit") is not None and out["pids_limit"] <= 0:
        out["pids_limit"] = -1
    weight = out.get("blkio_weight")
    if weight is not None and not 10 <= weight <= 1000:
        raise UsageError("Range of blkio weight is from 10 to 1000")
    return out


def short_size(n):
    """67108864 -> '64M' (exact binary units, else bytes) for explain output."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}b"


def _cpu_fraction(limits):
    """CPU cap as a fraction of one CPU (0.5 = 50%), or None."""
    if limits.get("nano_cpus"):
        return limits["nano_cpus"] / 1e9
    quota = limits.get("cpu_quota")
    if quota and quota > 0:
        return quota / (limits.get("cpu_period") or DEFAULT_CPU_PERIOD)
    return None


def limits_from_spec(resources, version):
    """config.json's linux.resources -> (limits dict, device rules or None,
    [(controller, file, value)] written as they are: hugepageLimits and, on
    cgroup v2, `unified`).  Unsupported fields are refused by name."""
    limits, raw = {}, []
    mem = resources.get("memory") or {}
    for key, name in (("limit", "memory"), ("reservation", "memory_reservation"),
                      ("swap", "memory_swap")):
        if mem.get(key) not in (None, 0):
            limits[name] = int(mem[key])
    if mem.get("swappiness") is not None and version == 1:
        raw.append(("memory", "memory.swappiness", str(mem["swappiness"])))
    if mem.get("disableOOMKiller") and version == 1:
        raw.append(("memory", "memory.oom_control", "1"))
    cpu = resources.get("cpu") or {}
    for key, name in (("shares", "cpu_shares"), ("quota", "cpu_quota"),
                      ("period", "cpu_period")):
        if cpu.get(key) not in (None, 0):
            limits[name] = int(cpu[key])
    for key, name in (("cpus", "cpuset_cpus"), ("mems", "cpuset_mems")):
        if cpu.get(key):
            limits[name] = str(cpu[key])
    pids = resources.get("pids") or {}
    if pids.get("limit") not in (None, 0):
        limits["pids_limit"] = int(pids["limit"])
    blkio = resources.get("blockIO") or {}
    if blkio.get("weight"):
        limits["blkio_weight"] = int(blkio["weight"])
    for key, name in (("throttleReadBpsDevice", "device_read_bps"),
                      ("throttleWriteBpsDevice", "device_write_bps"),
                      ("throttleReadIOPSDevice", "device_read_iops"),
                      ("throttleWriteIOPSDevice", "device_write_iops")):
        rules = blkio.get(key) or ()
        if rules:
            limits[name] = [{"path": f"{r['major']}:{r['minor']}", "major": r["major"],
                             "minor": r["minor"], "rate": int(r["rate"])} for r in rules]
    for h in resources.get("hugepageLimits") or ():
        raw.append(("hugetlb", f"hugetlb.{h['pageSize']}." + (
            "max" if version == 2 else "limit_in_bytes"), str(int(h["limit"]))))
    unified = resources.get("unified") or {}
    if unified and version != 2:
        raise UsageError("linux.resources.unified needs cgroup v2 (this host runs v1)")
    for key, value in sorted(unified.items()):
        if "/" in key or key.startswith("."):
            raise UsageError(f"linux.resources.unified: invalid file name {key!r}")
        raw.append((key.split(".")[0], key, str(value)))
    devices = resources.get("devices")
    return limits, (list(devices) if devices is not None else None), raw


def write_raw(cg, raw):
    """Write [(controller, file, value)] into the container's cgroup."""
    for controller, name, value in raw:
        base = cg.dir if cg.version == 2 else cg.at.get(controller)
        if base is None:
            raise ContainError(f"cannot set {name}: the {controller} cgroup controller is "
                               "not available on this host")
        try:
            _write(os.path.join(base, name), value)
        except OSError as e:
            raise ContainError(f"cannot set {name}={value}: {e.strerror}") from None


def describe_limits(limits):
    """'memory=64M cpu=50% pids=64': one line for the -v explain output
    ('' when there are no limits)."""
    out = []
    if limits.get("memory"):
        out.append("memory=" + short_size(limits["memory"]))
    if limits.get("memory_reservation"):
        out.append("memory-reservation=" + short_size(limits["memory_reservation"]))
    swap = limits.get("memory_swap")
    if swap:
        out.append("memory+swap=" + ("unlimited" if swap == -1 else short_size(swap)))
    frac = _cpu_fraction(limits)
    if frac is not None:
        out.append(f"cpu={frac * 100:g}%")
    if limits.get("cpu_shares"):
        out.append(f"cpu-shares={limits['cpu_shares']}")
    if limits.get("cpuset_cpus"):
        out.append("cpuset-cpus=" + limits["cpuset_cpus"])
    if limits.get("cpuset_mems"):
        out.append("cpuset-mems=" + limits["cpuset_mems"])
    if limits.get("pids_limit") is not None:
        pids = limits["pids_limit"]
        out.append("pids=" + ("unlimited" if pids <= 0 else str(pids)))
    if limits.get("blkio_weight"):
        out.append(f"blkio-weight={limits['blkio_weight']}")
    for key in _DEVICE_KEYS:
        for rule in limits.get(key) or ():
            rate = rule["rate"] if key.endswith("iops") else short_size(rule["rate"])
            out.append(f"{FLAGS[key][2:]}={rule['path']}:{rate}")
    return " ".join(out)


def cpu_shares_to_weight(shares):
    """v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000).

    A quadratic in log2 space, as runc and crun use since 2023: 2 -> 1,
    1024 -> 100 (both defaults agree), 262144 -> 10000.  The old linear
    formula 1 + (shares - 2) * 9999 / 262142 mapped the default 1024 to 39,
    starving containers next to system services.
    """
    import math
    if not shares:
        return None
    shares = min(max(shares, MIN_CPU_SHARES), MAX_CPU_SHARES)
    log = math.log2(shares)
    exponent = (log * log + 125 * log) / 612.0 - 7.0 / 34.0
    return min(max(int(math.ceil(10 ** exponent)), 1), 10000)


def blkio_weight_to_io_weight(weight):
    """v1 blkio.weight (10..1000) -> v2 io.weight (1..10000), runc's formula."""
    return 1 + (weight - 10) * 9999 // 990


# ======================================================== file primitives

def _write(path, value):
    """Write one value to a cgroup interface file (never creates it)."""
    write_file(path, str(value).encode(), truncate=True)


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _read_int(path):
    """An integer file, None when missing or 'max'."""
    try:
        text = _read(path)
    except OSError:
        return None
    return int(text) if text.lstrip("-").isdigit() else None


def _read_keyed(path):
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


def _live_pids(dirs):
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


def _signal_all(dirs, sig):
    sent = 0
    for pid in _live_pids(dirs):
        try:
            os.kill(pid, sig)
            sent += 1
        except ProcessLookupError:
            pass
    return sent


def _rmdir_tree(top, deadline, retry_kill):
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
                    left = _live_pids([path])
                    raise ContainError(
                        f"cannot remove cgroup {path}: {e.strerror}"
                        + (f" (processes still inside: {left[:10]})" if left else "")) from None
                retry_kill()
                time.sleep(delay)
                delay = min(delay * 2, 0.05)


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
                _write(path, pid)
            except OSError as e:
                raise ContainError(f"cannot move process {pid} into cgroup "
                                   f"{os.path.dirname(path)}: {e.strerror}") from None

    def pids(self):
        """Pids of every process in this cgroup (and its child cgroups)."""
        return _live_pids([d for d in self.dirs if os.path.isdir(d)])

    def update(self, limits):
        """Change limits of a (possibly running) container; keys absent stay."""
        self._apply(check_limits(limits, update=True), initial=False)

    def _run(self, plan):
        """Execute [(path, value, key)] writes, turning failures into one line."""
        for path, value, key in plan:
            try:
                _write(path, value)
            except OSError as e:
                raise ContainError(self._explain(path, value, key, e)) from None

    def _explain(self, path, value, key, err):
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
        raise NotImplementedError

    def plan(self, limits, initial=False):
        """[(file, value, key)]: the writes that apply limits, in order."""
        raise NotImplementedError

    def stats(self):
        """Usage counters; missing controllers give None values."""
        raise NotImplementedError

    def oom_kill_count(self):
        """OOM kills in this cgroup so far (0 when the kernel cannot tell)."""
        raise NotImplementedError

    def kill_all(self, sig=_SIGKILL):
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
        have = set(self.controllers())
        for key in LIMIT_KEYS:
            if limits.get(key) is None:
                continue
            need = _CONTROLLER[key]
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
            _rmdir_tree(d, deadline, cg.kill_all)
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


# --------------------------------------------------------------------- v2

V2_WANTED = ("cpuset", "cpu", "io", "memory", "pids")


class CgroupV2(Cgroup):
    """A cgroup in the unified (v2) hierarchy."""

    version = 2

    def __init__(self, driver, parent, name):
        d = os.path.join(driver.root, parent, name)
        super().__init__(driver, parent, name, [d], [d])
        self.dir = d

    def _f(self, name):
        return os.path.join(self.dir, name)

    def _devices(self, devices):
        """Hook: v2 controls devices with a BPF_CGROUP_DEVICE program, not files.

        Not done here: the runtime attaches the allow-list program
        (security.attach_device_filter) to every non-privileged container's
        cgroup.  devices_enforced stays False (no cgroup file enforces it).
        """
        self.devices_enforced = False

    def _io_accounting(self, paths):
        """Nothing to do: v2's io.stat counts every disk."""

    def plan(self, limits, initial=False):
        """The (file, value, key) writes that apply limits, in order (pure but
        for reading memory.max when only --memory-swap changes)."""
        f, plan = self._f, []
        mem, swap = limits.get("memory"), limits.get("memory_swap")
        if mem is not None:
            plan.append((f("memory.max"), "max" if mem == -1 else mem, "memory"))
        if "memory_reservation" in limits:
            plan.append((f("memory.low"), limits["memory_reservation"], "memory_reservation"))
        if swap is None and initial and mem and os.path.exists(f("memory.swap.max")):
            swap = 2 * mem          # Docker: unset --memory-swap means twice --memory
        if swap is not None:
            if swap == -1:
                value = "max"
            else:
                base = mem if mem is not None else _read_int(f("memory.max"))
                if base is None:
                    raise UsageError("--memory-swap needs a --memory limit")
                value = swap - base
            plan.append((f("memory.swap.max"), value, "memory_swap"))
        if limits.get("cpu_shares"):
            plan.append((f("cpu.weight"), cpu_shares_to_weight(limits["cpu_shares"]),
                         "cpu_shares"))
        if limits.get("nano_cpus"):
            quota = limits["nano_cpus"] * DEFAULT_CPU_PERIOD // 10**9
            plan.append((f("cpu.max"), f"{quota} {DEFAULT_CPU_PERIOD}", "nano_cpus"))
        elif "cpu_quota" in limits or "cpu_period" in limits:
            # runc: "max" or the quota, then the period if given ("50000" alone
            # keeps the current period)
            quota = limits.get("cpu_quota")
            value = str(quota) if quota and quota > 0 else "max"
            if limits.get("cpu_period"):
                value += f" {limits['cpu_period']}"
            key = "cpu_quota" if "cpu_quota" in limits else "cpu_period"
            plan.append((f("cpu.max"), value, key))
        for key, fname in (("cpuset_cpus", "cpuset.cpus"), ("cpuset_mems", "cpuset.mems")):
            if key in limits:
                plan.append((f(fname), limits[key], key))
        if "pids_limit" in limits:
            pids = limits["pids_limit"]
            plan.append((f("pids.max"), "max" if pids <= 0 else pids, "pids_limit"))
        if limits.get("blkio_weight"):
            w = limits["blkio_weight"]
            if os.path.exists(f("io.bfq.weight")):
                plan.append((f("io.bfq.weight"), w, "blkio_weight"))
            else:
                plan.append((f("io.weight"), f"default {blkio_weight_to_io_weight(w)}",
                             "blkio_weight"))
        io_key = {"device_read_bps": "rbps", "device_write_bps": "wbps",
                  "device_read_iops": "riops", "device_write_iops": "wiops"}
        for key in _DEVICE_KEYS:
            for rule in limits.get(key) or ():
                rate = rule["rate"] or "max"    # 0 removes the limit, as on v1
                plan.append((f("io.max"), f"{rule['major']}:{rule['minor']} "
                             f"{io_key[key]}={rate}", key))
        return plan

    def _apply(self, limits, initial):
        self._run(self.plan(limits, initial))

    def stats(self):
        f = self._f
        cpu = _read_keyed(f("cpu.stat"))
        mem = _read_keyed(f("memory.stat"))
        rbytes = wbytes = None
        try:
            with open(f("io.stat")) as fh:
                rbytes = wbytes = 0
                for line in fh:
                    fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
                    rbytes += int(fields.get("rbytes", 0))
                    wbytes += int(fields.get("wbytes", 0))
        except OSError:
            pass
        usage = cpu.get("usage_usec")
        return {
            "cpu_usage_ns": usage * 1000 if usage is not None else None,
            "cpu_throttled_periods": cpu.get("nr_throttled"),
            "memory_usage": _read_int(f("memory.current")),
            "memory_limit": _read_int(f("memory.max")),
            "memory_cache": mem.get("inactive_file"),
            "pids_current": _read_int(f("pids.current")),
            "pids_limit": _read_int(f("pids.max")),
            "blkio_read": rbytes,
            "blkio_write": wbytes,
            "oom_kills": self.oom_kill_count(),
        }

    def oom_kill_count(self):
        """OOM kills in this cgroup (and below) so far, from memory.events."""
        return _read_keyed(self._f("memory.events")).get("oom_kill", 0)

    @property
    def v2_dir(self):
        """The cgroup v2 directory a process can be born in (clone3)."""
        return self.dir

    def freeze(self, frozen=True):
        """Freeze (pause) or thaw every process of the cgroup (cgroup.freeze)."""
        if not _freeze(self._f("cgroup.freeze"), "1" if frozen else "0",
                       self._f("cgroup.events"), "frozen 1" if frozen else "frozen 0"):
            raise ContainError(f"cannot {'freeze' if frozen else 'thaw'} {self.dir}: "
                               "no cgroup.freeze (Linux 5.2+)")

    def frozen(self):
        try:
            return "frozen 1" in _read(self._f("cgroup.events")).splitlines()
        except OSError:
            return False

    def kill_all(self, sig=_SIGKILL):
        """SIGKILL everything via cgroup.kill (kernel 5.14+), else freeze,
        signal each pid, thaw (so nothing forks in between)."""
        if not os.path.isdir(self.dir):
            return
        if sig == _SIGKILL and os.path.exists(self._f("cgroup.kill")):
            _write(self._f("cgroup.kill"), 1)
            return
        frozen = _freeze(self._f("cgroup.freeze"), "1", self._f("cgroup.events"),
                         "frozen 1")
        try:
            _signal_all([self.dir], sig)
        finally:
            if frozen:
                _write(self._f("cgroup.freeze"), "0")


def _freeze(control, value, status, wanted, timeout=1.0):
    """Write value to a freezer control file and wait for status to say so."""
    if not os.path.exists(control):
        return False
    try:
        _write(control, value)
    except OSError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if wanted in _read(status).splitlines():
                break
        except OSError:
            break
        time.sleep(0.002)
    return True


def device_rule_text(d):
    """'c 1:3 rwm' (devices.allow/deny syntax) from a config.json device rule."""
    kind = d.get("type") or "a"
    if kind == "a" and d.get("major") in (None, -1) and d.get("minor") in (None, -1):
        return "a"
    num = lambda n: "*" if n in (None, -1) else str(n)  # noqa: E731
    return f"{kind} {num(d.get('major'))}:{num(d.get('minor'))} {d.get('access') or 'rwm'}"


class DriverV2(Driver):
    """The unified hierarchy: <root>/cgroup.controllers exists."""

    version = 2

    def controllers(self):
        try:
            return sorted(_read(os.path.join(self.root, "cgroup.controllers")).split())
        except OSError:
            return []

    def _make(self, parent, name):
        return CgroupV2(self, parent, name)

    def _bases(self):
        return [self.root]

    def _mkdirs(self, cg):
        """Make each ancestor, enabling controllers in its subtree_control
        top-down (a controller can only be enabled where the parent has it)."""
        wanted = [c for c in V2_WANTED if c in self.controllers()]
        path = self.root
        for part in cg.parent.split("/"):
            self._enable(path, wanted)
            path = os.path.join(path, part)
            os.makedirs(path, exist_ok=True)
        self._enable(path, wanted)
        os.makedirs(cg.dir, exist_ok=True)

    def _enable(self, path, wanted):
        control = os.path.join(path, "cgroup.subtree_control")
        try:
            have = {c.lstrip("+") for c in _read(control).split()}
        except OSError as e:
            raise ContainError(f"cannot read {control}: {e.strerror}") from None
        missing = [c for c in wanted if c not in have]
        if not missing:
            return
        try:
            _write(control, " ".join("+" + c for c in missing))
        except OSError as e:
            why = e.strerror
            if e.errno == errno.EBUSY:
                why = ("it has processes of its own (cgroup v2 allows controllers "
                       "only above leaf cgroups)")
            raise ContainError(f"cannot enable the {' '.join(missing)} controller(s) "
                               f"in {path}: {why}") from None

    def swap_limit(self):
        # the root cgroup has no memory.swap.max: look at its children
        return any(os.path.exists(os.path.join(self.root, d, "memory.swap.max"))
                   for d in _subdirs(self.root))

    def info(self):
        ctrls = self.controllers()
        swap = self.swap_limit()
        return {
            "cgroup_version": 2, "cgroup_driver": "cgroupfs", "mode": "unified",
            "root": self.root, "controllers": ctrls,
            "swap_limit": swap, "cpu_cfs": "cpu" in ctrls,
            "cgroup_kill": _kernel_at_least(5, 14), "freezer": True,
            "devices": "enforced by a BPF device program (each non-privileged "
                       "container's cgroup)",
            "warnings": _warnings(ctrls, swap, "io"),
        }


# --------------------------------------------------------------------- v1

V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                  "pids", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc")


class CgroupV1(Cgroup):
    """A cgroup made of the same relative path in every v1 hierarchy."""

    version = 1

    def __init__(self, driver, parent, name):
        self.at = {c: os.path.join(h, parent, name) for c, h in driver.mounts.items()}
        named = [os.path.join(h, parent, name) for h in driver.named.values()]
        dirs = sorted(set(self.at.values()) | set(named))
        # The hybrid cgroup2 tree is joined only by the OCI runtime (runc
        # does, and engines expect it): moving a process into a v2 cgroup
        # takes the kernel's global threadgroup lock, which waits for an RCU
        # grace period (~10 ms on every container start); the v1 freezer
        # gives kill_all what cgroup.kill would.
        self.unified = os.path.join(driver.unified, parent, name) \
            if driver.all_hierarchies and driver.unified else None
        super().__init__(driver, parent, name, dirs + ([self.unified] if self.unified else []),
                         dirs)
        # Joining writes "0" to "tasks": moving only the calling thread skips
        # that lock too, and the container's child is single-threaded.
        self.join_files = [os.path.join(d, "tasks") for d in dirs]
        if self.unified:
            self.join_files.append(os.path.join(self.unified, "cgroup.procs"))

    def _f(self, controller, name):
        return os.path.join(self.at[controller], name)

    def _devices(self, devices):
        """Docker's allow-list (deny everything, then allow the default
        rules), everything ("all"), or config.json's rules in order."""
        if "devices" not in self.at:
            return
        if devices == "all":
            self._run([(self._f("devices", "devices.allow"), "a", "devices")])
        elif devices:
            self._run([(self._f("devices", "devices.allow" if d.get("allow")
                                else "devices.deny"), device_rule_text(d), "devices")
                       for d in devices])
        self.devices_enforced = True

    @property
    def v2_dir(self):
        """The hybrid host's cgroup2 directory, where this cgroup has one."""
        return self.unified

    def freeze(self, frozen=True):
        """Freeze (pause) or thaw every process of the cgroup."""
        if "freezer" not in self.at:
            raise ContainError("pausing needs the freezer cgroup controller")
        _freeze(self._f("freezer", "freezer.state"), "FROZEN" if frozen else "THAWED",
                self._f("freezer", "freezer.state"), "FROZEN" if frozen else "THAWED")

    def frozen(self):
        try:
            return _read(self._f("freezer", "freezer.state")).strip() in ("FROZEN",
                                                                          "FREEZING")
        except (OSError, KeyError):
            return False

    def _io_accounting(self, paths):
        """Make v1 count block I/O on the disks behind paths.

        blk-throttle, which keeps v1's blkio.throttle.io_service_bytes, only
        counts a disk's I/O once throttling has been configured on that disk
        (kernel 6.x sets it up lazily), so on a fresh host every container
        showed 0B.  A rule of 0 ("no limit") activates it and limits nothing.
        Best effort: this is accounting, not a limit.
        """
        if "blkio" not in self.at:
            return
        for disk in {_disk_of_path(p) for p in paths} - {None}:
            try:
                _write(self._f("blkio", "blkio.throttle.read_bps_device"), f"{disk} 0")
            except OSError:
                pass

    def plan(self, limits, initial=False):
        """The (file, value, key) writes that apply limits, in the order the
        kernel accepts them."""
        f, plan = self._f, []
        if any(_CONTROLLER[k] == "memory" for k in limits):
            plan += self._memory_plan(limits, initial)
        if limits.get("cpu_shares"):
            plan.append((f("cpu", "cpu.shares"), limits["cpu_shares"], "cpu_shares"))
        period, quota, key = None, None, None
        if limits.get("nano_cpus"):
            period = DEFAULT_CPU_PERIOD
            quota = limits["nano_cpus"] * DEFAULT_CPU_PERIOD // 10**9
            key = "nano_cpus"
        elif "cpu_quota" in limits or "cpu_period" in limits:
            period, quota = limits.get("cpu_period"), limits.get("cpu_quota")
            key = "cpu_quota" if quota is not None else "cpu_period"
        if period is not None:
            plan.append((f("cpu", "cpu.cfs_period_us"), period, key))
        if quota is not None:
            plan.append((f("cpu", "cpu.cfs_quota_us"), quota, key))
        for key, fname in (("cpuset_cpus", "cpuset.cpus"), ("cpuset_mems", "cpuset.mems")):
            if key in limits:
                plan.append((f("cpuset", fname), limits[key], key))
        if "pids_limit" in limits:
            pids = limits["pids_limit"]
            plan.append((f("pids", "pids.max"), "max" if pids <= 0 else pids, "pids_limit"))
        if limits.get("blkio_weight"):
            weight_file = next((f("blkio", n) for n in ("blkio.weight", "blkio.bfq.weight")
                                if os.path.exists(f("blkio", n))), f("blkio", "blkio.weight"))
            plan.append((weight_file, limits["blkio_weight"], "blkio_weight"))
        throttle = {"device_read_bps": "read_bps_device", "device_write_bps": "write_bps_device",
                    "device_read_iops": "read_iops_device",
                    "device_write_iops": "write_iops_device"}
        for key in _DEVICE_KEYS:
            for rule in limits.get(key) or ():
                plan.append((f("blkio", "blkio.throttle." + throttle[key]),
                             f"{rule['major']}:{rule['minor']} {rule['rate']}", key))
        return plan

    def _memory_plan(self, limits, initial):
        """memory.limit_in_bytes <= memory.memsw.limit_in_bytes must hold after
        every single write, so the order depends on growing or shrinking."""
        f = lambda n: self._f("memory", n)  # noqa: E731
        memsw = f("memory.memsw.limit_in_bytes")
        mem, swap = limits.get("memory"), limits.get("memory_swap")
        has_memsw = os.path.exists(memsw)
        if swap is None and initial and mem and has_memsw:
            swap = 2 * mem          # Docker: unset --memory-swap means twice --memory
        if swap is not None and not has_memsw:
            raise ContainError("cannot apply --memory-swap: the kernel has no swap "
                               "accounting (memory.memsw.limit_in_bytes is missing; "
                               "boot with swapaccount=1)")
        mem_w = [(f("memory.limit_in_bytes"), mem, "memory")] if mem is not None else []
        swap_w = [(memsw, swap, "memory_swap")] if swap is not None else []
        current = _read_int(memsw) if has_memsw else None
        growing = swap is not None and (swap == -1 or current is None or swap > current)
        plan = swap_w + mem_w if growing else mem_w + swap_w
        if limits.get("memory_reservation") is not None:
            plan.append((f("memory.soft_limit_in_bytes"), limits["memory_reservation"],
                         "memory_reservation"))
        return plan

    def _apply(self, limits, initial):
        self._run(self.plan(limits, initial))

    def stats(self):
        def get(ctrl, name):
            return _read_int(self._f(ctrl, name)) if ctrl in self.at else None

        def limit(value):
            return None if value is None or value >= _UNLIMITED_V1 else value

        mem = _read_keyed(self._f("memory", "memory.stat")) if "memory" in self.at else {}
        cpu = _read_keyed(self._f("cpu", "cpu.stat")) if "cpu" in self.at else {}
        read = write = None
        if "blkio" in self.at:
            read = write = 0
            try:
                with open(self._f("blkio", "blkio.throttle.io_service_bytes_recursive")) as fh:
                    for line in fh:
                        parts = line.split()
                        if len(parts) == 3 and parts[1] == "Read":
                            read += int(parts[2])
                        elif len(parts) == 3 and parts[1] == "Write":
                            write += int(parts[2])
            except OSError:
                read = write = None
        return {
            "cpu_usage_ns": get("cpuacct", "cpuacct.usage"),
            "cpu_throttled_periods": cpu.get("nr_throttled"),
            "memory_usage": get("memory", "memory.usage_in_bytes"),
            "memory_limit": limit(get("memory", "memory.limit_in_bytes")),
            "memory_cache": mem.get("total_inactive_file", mem.get("inactive_file")),
            "pids_current": get("pids", "pids.current"),
            "pids_limit": get("pids", "pids.max"),
            "blkio_read": read,
            "blkio_write": write,
            "oom_kills": self.oom_kill_count(),
        }

    def oom_kill_count(self):
        """OOM kills so far, from memory.oom_control's oom_kill (kernel 4.13+)."""
        if "memory" not in self.at:
            return 0
        return _read_keyed(self._f("memory", "memory.oom_control")).get("oom_kill", 0)

    def kill_all(self, sig=_SIGKILL):
        """Signal every process: cgroup.kill on the hybrid unified tree when
        the kernel has it, then freeze (v1 freezer) - signal each pid - thaw,
        so a fork bomb cannot outrun the loop."""
        if sig == _SIGKILL and self.unified:
            kill_file = os.path.join(self.unified, "cgroup.kill")
            if os.path.exists(kill_file):
                _write(kill_file, 1)
        present = [d for d in self.dirs if os.path.isdir(d)]
        if not _live_pids(present):
            return
        frozen = False
        if "freezer" in self.at:
            state = self._f("freezer", "freezer.state")
            frozen = _freeze(state, "FROZEN", state, "FROZEN")
        try:
            _signal_all(present, sig)
        finally:
            if frozen:
                _write(self._f("freezer", "freezer.state"), "THAWED")


class DriverV1(Driver):
    """Legacy / hybrid: one mount per controller group below root."""

    version = 1

    def __init__(self, root, all_hierarchies=False):
        super().__init__(root)
        self.mounts = {}     # controller -> hierarchy root directory
        self.unified = None  # the hybrid cgroup2 mount, if any
        # named hierarchies (name=systemd) and the hybrid cgroup2 tree are
        # made and joined only with all_hierarchies (the OCI runtime's way)
        self.all_hierarchies = all_hierarchies
        self.named = {}
        for item in sorted(os.scandir(root), key=lambda e: e.name):
            entry, path = item.name, item.path
            if not os.path.isfile(os.path.join(path, "cgroup.procs")):
                continue
            if os.path.exists(os.path.join(path, "cgroup.controllers")):
                self.unified = path
                continue
            # 'cpu' -> 'cpu,cpuacct' when co-mounted (a link: only then resolved)
            real = os.path.realpath(path) if item.is_symlink() else path
            ctrls = [c for c in os.path.basename(real).split(",") if c in V1_CONTROLLERS]
            for ctrl in ctrls:
                self.mounts.setdefault(ctrl, real)
            if not ctrls and all_hierarchies and real not in self.named.values():
                self.named[entry] = real

    def controllers(self):
        return sorted(self.mounts)

    def check(self, limits):
        super().check(limits)
        cfs = any(limits.get(k) for k in ("nano_cpus", "cpu_quota", "cpu_period"))
        if cfs and not os.path.exists(os.path.join(self.mounts["cpu"], "cpu.cfs_quota_us")):
            raise ContainError("cannot apply --cpus/--cpu-quota: the kernel has no CFS "
                               "bandwidth control (cpu.cfs_quota_us is missing)")

    def _make(self, parent, name):
        return CgroupV1(self, parent, name)

    def _bases(self):
        # the hybrid cgroup2 tree only for the OCI runtime (see CgroupV1)
        extra = list(self.named.values())
        if self.all_hierarchies and self.unified:
            extra.append(self.unified)
        return sorted(set(self.mounts.values()) | set(extra))

    def _mkdirs(self, cg):
        cpuset = self.mounts.get("cpuset")
        for base in self._bases():
            if base != cpuset:
                try:
                    os.mkdir(os.path.join(base, cg.path))   # the parent is usually there
                    continue
                except (FileExistsError, FileNotFoundError):
                    pass
            path = base
            for part in cg.path.split("/"):
                path = os.path.join(path, part)
                os.makedirs(path, exist_ok=True)
                if base == cpuset:
                    _inherit_cpuset(path)

    def swap_limit(self):
        return "memory" in self.mounts and os.path.exists(
            os.path.join(self.mounts["memory"], "memory.memsw.limit_in_bytes"))

    def info(self):
        ctrls = self.controllers()
        memsw = self.swap_limit()
        cfs = "cpu" in self.mounts and os.path.exists(
            os.path.join(self.mounts["cpu"], "cpu.cfs_quota_us"))
        return {
            "cgroup_version": 1, "cgroup_driver": "cgroupfs",
            "mode": "hybrid" if self.unified else "legacy",
            "root": self.root, "controllers": ctrls,
            "hierarchies": {c: self.mounts[c] for c in ctrls},
            "unified": self.unified,
            "swap_limit": memsw, "cpu_cfs": cfs,
            "cgroup_kill": False,  # the hybrid cgroup2 tree is not used (see CgroupV1)
            "freezer": "freezer" in self.mounts,
            "devices": "enforced (devices controller)" if "devices" in self.mounts
                       else "not enforced (no devices controller)",
            "warnings": _warnings(ctrls, memsw, "blkio", cfs),
        }


def _disk_of_path(path):
    """'major:minor' of the disk holding path's filesystem, or None."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    disk = disk_of(os.major(dev), os.minor(dev))
    return f"{disk['major']}:{disk['minor']}" if disk else None


def _inherit_cpuset(path):
    """A new v1 cpuset has empty cpus/mems and refuses tasks: copy the parent's."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        mine = os.path.join(path, name)
        try:
            if _read(mine) == "":
                _write(mine, _read(os.path.join(os.path.dirname(path), name)))
        except OSError as e:
            raise ContainError(f"cannot initialise {mine}: {e.strerror}") from None


def _subdirs(path):
    try:
        return [e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _kernel_at_least(major, minor):
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def _warnings(ctrls, swap, io, cfs=True):
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
        driver = DriverV2(root)
    elif not os.path.isdir(root):
        raise ContainError(f"no cgroup filesystem at {root}")
    else:
        driver = DriverV1(root, all_hierarchies)
    if root == ROOT:
        _host_drivers[all_hierarchies] = driver
    return driver


def sample(cg):
    """One stats reading with its monotonic timestamp, for cpu_percent()."""
    st = cg.stats()
    st["read_ns"] = time.monotonic_ns()
    return st


