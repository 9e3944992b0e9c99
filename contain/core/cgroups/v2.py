"""The unified (v2) hierarchy: one tree; a controller works in a cgroup
only when every ancestor lists it in cgroup.subtree_control, so
DriverV2._mkdirs enables what it needs top-down.  Limits live in
memory.max, cpu.max, cpu.weight, io.max, pids.max..."""

import errno
import os

from . import (SIGKILL, Cgroup, Driver, docker_warnings, freeze_and_wait, kernel_at_least,
               read_int, read_keyed, read_text, signal_all, subdirs, write_value)
from ...errors import ContainError, UsageError

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
        from .limits import (DEFAULT_CPU_PERIOD, DEVICE_KEYS, blkio_weight_to_io_weight,
                             cpu_shares_to_weight)
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
                base = mem if mem is not None else read_int(f("memory.max"))
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
        for key in DEVICE_KEYS:
            for rule in limits.get(key) or ():
                rate = rule["rate"] or "max"    # 0 removes the limit, as on v1
                plan.append((f("io.max"), f"{rule['major']}:{rule['minor']} "
                             f"{io_key[key]}={rate}", key))
        return plan

    def stats(self):
        f = self._f
        cpu = read_keyed(f("cpu.stat"))
        mem = read_keyed(f("memory.stat"))
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
            "memory_usage": read_int(f("memory.current")),
            "memory_limit": read_int(f("memory.max")),
            "memory_cache": mem.get("inactive_file"),
            "pids_current": read_int(f("pids.current")),
            "pids_limit": read_int(f("pids.max")),
            "blkio_read": rbytes,
            "blkio_write": wbytes,
            "oom_kills": self.oom_kill_count(),
        }

    def oom_kill_count(self):
        """OOM kills in this cgroup (and below) so far, from memory.events."""
        return read_keyed(self._f("memory.events")).get("oom_kill", 0)

    @property
    def v2_dir(self):
        """The cgroup v2 directory a process can be born in (clone3)."""
        return self.dir

    def freeze(self, frozen=True):
        """Freeze (pause) or thaw every process of the cgroup (cgroup.freeze)."""
        if not freeze_and_wait(self._f("cgroup.freeze"), "1" if frozen else "0",
                               self._f("cgroup.events"), "frozen 1" if frozen else "frozen 0"):
            raise ContainError(f"cannot {'freeze' if frozen else 'thaw'} {self.dir}: "
                               "no cgroup.freeze (Linux 5.2+)")

    def frozen(self):
        try:
            return "frozen 1" in read_text(self._f("cgroup.events")).splitlines()
        except OSError:
            return False

    def kill_all(self, sig=SIGKILL):
        """SIGKILL everything via cgroup.kill (kernel 5.14+), else freeze,
        signal each pid, thaw (so nothing forks in between)."""
        if not os.path.isdir(self.dir):
            return
        if sig == SIGKILL and os.path.exists(self._f("cgroup.kill")):
            write_value(self._f("cgroup.kill"), 1)
            return
        frozen = freeze_and_wait(self._f("cgroup.freeze"), "1", self._f("cgroup.events"),
                                 "frozen 1")
        try:
            signal_all([self.dir], sig)
        finally:
            if frozen:
                write_value(self._f("cgroup.freeze"), "0")


class DriverV2(Driver):
    """The unified hierarchy: <root>/cgroup.controllers exists."""

    version = 2

    def controllers(self):
        try:
            return sorted(read_text(os.path.join(self.root, "cgroup.controllers")).split())
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
            have = {c.lstrip("+") for c in read_text(control).split()}
        except OSError as e:
            raise ContainError(f"cannot read {control}: {e.strerror}") from None
        missing = [c for c in wanted if c not in have]
        if not missing:
            return
        try:
            write_value(control, " ".join("+" + c for c in missing))
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
                   for d in subdirs(self.root))

    def info(self):
        ctrls = self.controllers()
        swap = self.swap_limit()
        return {
            "cgroup_version": 2, "cgroup_driver": "cgroupfs", "mode": "unified",
            "root": self.root, "controllers": ctrls,
            "swap_limit": swap, "cpu_cfs": "cpu" in ctrls,
            "cgroup_kill": kernel_at_least(5, 14), "freezer": True,
            "devices": "enforced by a BPF device program (each non-privileged "
                       "container's cgroup)",
            "warnings": docker_warnings(ctrls, swap, "io"),
        }
