"""Docker's resource flags: the strings of --memory-swap, --cpus,
--cpuset-cpus, --device-read-bps... parsed into the limit values the
engine records and generate.py turns into config.json's linux.resources;
and `update`'s rules for merging changes into what a container has.

Pure functions: a flag's string in, a value out, UsageError with one line
that names the flag on bad input.  (Sizes are the runtime's parse_bytes:
runc's `update` reads them too.)
"""

import os

from ..core.cgroups.limits import (check_limits, disk_of, parse_bytes,  # noqa: F401
                                   usable_cpus)                        # (re-exported)
from ..errors import UsageError


def parse_memory_swap(s):
    """--memory-swap: a size, or -1 for unlimited swap."""
    if str(s).strip() == "-1":
        return -1
    return parse_bytes(s, "--memory-swap")


def parse_cpus(s, ncpu=None):
    """--cpus '0.5' -> 500000000 nano-CPUs; exact to 1e-9, at most ncpu CPUs."""
    text = str(s).strip()
    whole, dot, frac = text.partition(".")
    if (not (whole or frac) or (whole and not whole.isdigit())
            or (frac and not frac.isdigit()) or (dot and not frac)):
        raise UsageError(f"invalid argument {s!r} for --cpus: not a number of CPUs")
    if len(frac) > 9:
        raise UsageError(f"invalid argument {s!r} for --cpus: value is too precise")
    nano = int(whole or "0") * 10**9 + int((frac or "0").ljust(9, "0"))
    ncpu = usable_cpus() if ncpu is None else ncpu
    if nano and not 10**7 <= nano <= ncpu * 10**9:
        raise UsageError(f"Range of CPUs is from 0.01 to {ncpu}.00, "
                         f"as there are only {ncpu} CPUs available")
    return nano


def cpuset_members(s):
    """'0-2,5' -> {0, 1, 2, 5}; ValueError on bad syntax."""
    out = set()
    for part in str(s).strip().split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ValueError(part)
        lo, hi = int(lo), int(hi) if dash else int(lo)
        if hi < lo:
            raise ValueError(part)
        out.update(range(lo, hi + 1))
    return out


def format_cpuset(members):
    """{0, 1, 2, 5} -> '0-2,5' (the kernel's list format)."""
    parts, run = [], []
    for n in sorted(members):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [n]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def _online(path, fallback):
    try:
        with open(path) as f:
            return cpuset_members(f.read().strip())
    except (OSError, ValueError):
        return fallback


def parse_cpuset(s, flag="--cpuset-cpus", available=None):
    """Validate --cpuset-cpus / --cpuset-mems ('0-3,5') against what exists.

    Returns the list in the kernel's canonical form.  available defaults to
    this process's CPUs (for cpus) or the online NUMA nodes (for mems).
    """
    try:
        wanted = cpuset_members(s)
    except ValueError:
        raise UsageError(f"invalid value {s!r} for {flag}: use a list like 0-3,5") from None
    if available is None:
        if flag == "--cpuset-mems":
            available = _online("/sys/devices/system/node/online", {0})
        else:
            try:
                available = set(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                available = set(range(os.cpu_count() or 1))
    missing = wanted - set(available)
    if missing:
        what = "memory nodes" if flag == "--cpuset-mems" else "CPUs"
        raise UsageError(f"Requested {what} are not available - requested {s}, "
                         f"available: {format_cpuset(available)}")
    return format_cpuset(wanted)


def block_device(path):
    """(major, minor) of the block device at path, for a throttle rule.

    Partitions cannot be throttled by the kernel (only whole disks), so a
    partition is an error that names its disk.
    """
    import stat
    st = os.stat(path)
    if not stat.S_ISBLK(st.st_mode):
        raise ValueError(f"{path} is not a block device")
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    disk = disk_of(major, minor)
    if disk and (disk["major"], disk["minor"]) != (major, minor):
        raise ValueError(f"{path} is a partition; throttle its disk {disk['path']}")
    return major, minor


def parse_device_rate(s, iops=False, flag=None):
    """'/dev/sda:1mb' (bps) or '/dev/sda:1000' (iops) -> a throttle rule.

    Returns {'path', 'major', 'minor', 'rate'}.  The device is looked up now
    (on the host), like Docker does.
    """
    flag = flag or ("--device-read-iops" if iops else "--device-read-bps")
    path, sep, rate = str(s).rpartition(":")
    if not sep or not path or not rate:
        raise UsageError(f"bad format for {flag}: {s!r} (use <device-path>:<rate>)")
    if not path.startswith("/dev/"):
        raise UsageError(f"bad format for device path in {flag}: {path!r}")
    if iops:
        if not rate.isdigit():
            raise UsageError(f"invalid rate for device: {s}. The correct format is "
                             "<device-path>:<number>. Number must be a positive integer")
        value = int(rate)
    else:
        try:
            value = parse_bytes(rate, flag)
        except UsageError:
            raise UsageError(f"invalid rate for device: {s}. The correct format is "
                             "<device-path>:<number>[<unit>]. Number must be a positive "
                             "integer. Unit is optional and can be kb, mb, or gb") from None
    try:
        major, minor = block_device(path)
    except OSError as e:
        raise UsageError(f"{flag}: {path}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from None
    return {"path": path, "major": major, "minor": minor, "rate": value}


def parse_int(s, flag):
    """An integer flag value (--cpu-shares, --pids-limit, --cpu-period...)."""
    try:
        return int(str(s).strip())
    except ValueError:
        raise UsageError(f"invalid argument {s!r} for {flag}: not an integer") from None


# ================================================ limits: rules and wording


def merge_limits(old, changes):
    """The limits after `contain update` applies changes to old (Docker's rules).

    --cpus replaces --cpu-period/--cpu-quota and vice versa; a new --memory
    above the old memory+swap total needs a new --memory-swap too.
    """
    new = dict(old or {})
    changes = {k: v for k, v in changes.items() if v is not None}
    if "nano_cpus" in changes:
        new.pop("cpu_period", None)
        new.pop("cpu_quota", None)
    if "cpu_period" in changes or "cpu_quota" in changes:
        new.pop("nano_cpus", None)
    if "memory" in changes and "memory_swap" not in changes:
        swap = new.get("memory_swap")
        if swap and swap != -1 and changes["memory"] > swap:
            raise UsageError("Memory limit should be smaller than already set "
                             "memoryswap limit, update the memoryswap at the same time")
    new.update(changes)
    return check_limits(new)
