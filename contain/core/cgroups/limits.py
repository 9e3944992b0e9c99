"""Docker's resource limits: the values `run`, `create` and `update` set,
Docker's rules for them, and config.json's linux.resources in that form.

Limits are a plain dict with Docker HostConfig names in lower_snake case::

    {"memory": 67108864, "memory_swap": -1, "nano_cpus": 500000000,
     "cpu_shares": 512, "cpuset_cpus": "0-1", "pids_limit": 64,
     "device_write_bps": [{"path": "/dev/vda", "major": 254, "minor": 0,
                           "rate": 1048576}], ...}

The drivers (v1.py, v2.py) turn them into cgroup file writes.  Pure
functions but for reading the host's CPUs and disks.
"""

import os

from ...errors import UsageError

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
DEVICE_KEYS = ("device_read_bps", "device_write_bps", "device_read_iops",
               "device_write_iops")

# limit key -> the controller that enforces it (v1 name; v2 calls blkio "io")
CONTROLLER = {
    "memory": "memory", "memory_reservation": "memory", "memory_swap": "memory",
    "cpu_period": "cpu", "cpu_quota": "cpu", "nano_cpus": "cpu", "cpu_shares": "cpu",
    "cpuset_cpus": "cpuset", "cpuset_mems": "cpuset", "pids_limit": "pids",
    "blkio_weight": "blkio", "device_read_bps": "blkio", "device_write_bps": "blkio",
    "device_read_iops": "blkio", "device_write_iops": "blkio",
}

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
        if key in DEVICE_KEYS:
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
    for key in DEVICE_KEYS:
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
