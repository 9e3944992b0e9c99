"""v1 (legacy, or hybrid like this project's test machine): one hierarchy
per controller (or per co-mounted group such as cpu,cpuacct), the same
relative path made in each.  On a hybrid host the empty cgroup2 tree at
<root>/unified is made and joined too by the OCI runtime (see CgroupV1)."""

import os

from . import (SIGKILL, Cgroup, Driver, docker_warnings, freeze_and_wait, live_pids,
               read_int, read_keyed, read_text, signal_all, write_value)
from ...errors import ContainError

_UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE

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
        state, want = self._f("freezer", "freezer.state"), "FROZEN" if frozen else "THAWED"
        freeze_and_wait(state, want, state, want)

    def frozen(self):
        try:
            state = read_text(self._f("freezer", "freezer.state")).strip()
            return state in ("FROZEN", "FREEZING")
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
                write_value(self._f("blkio", "blkio.throttle.read_bps_device"), f"{disk} 0")
            except OSError:
                pass

    def plan(self, limits, initial=False):
        """The (file, value, key) writes that apply limits, in the order the
        kernel accepts them."""
        from .limits import CONTROLLER, DEFAULT_CPU_PERIOD, DEVICE_KEYS
        f, plan = self._f, []
        if any(CONTROLLER[k] == "memory" for k in limits):
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
        for key in DEVICE_KEYS:
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
        current = read_int(memsw) if has_memsw else None
        growing = swap is not None and (swap == -1 or current is None or swap > current)
        plan = swap_w + mem_w if growing else mem_w + swap_w
        if limits.get("memory_reservation") is not None:
            plan.append((f("memory.soft_limit_in_bytes"), limits["memory_reservation"],
                         "memory_reservation"))
        return plan

    def stats(self):
        def get(ctrl, name):
            return read_int(self._f(ctrl, name)) if ctrl in self.at else None

        def limit(value):
            return None if value is None or value >= _UNLIMITED_V1 else value

        mem = read_keyed(self._f("memory", "memory.stat")) if "memory" in self.at else {}
        cpu = read_keyed(self._f("cpu", "cpu.stat")) if "cpu" in self.at else {}
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
        return read_keyed(self._f("memory", "memory.oom_control")).get("oom_kill", 0)

    def kill_all(self, sig=SIGKILL):
        """Signal every process: cgroup.kill on the hybrid unified tree when
        the kernel has it, then freeze (v1 freezer) - signal each pid - thaw,
        so a fork bomb cannot outrun the loop."""
        if sig == SIGKILL and self.unified:
            kill_file = os.path.join(self.unified, "cgroup.kill")
            if os.path.exists(kill_file):
                write_value(kill_file, 1)
        present = [d for d in self.dirs if os.path.isdir(d)]
        if not live_pids(present):
            return
        frozen = False
        if "freezer" in self.at:
            state = self._f("freezer", "freezer.state")
            frozen = freeze_and_wait(state, "FROZEN", state, "FROZEN")
        try:
            signal_all(present, sig)
        finally:
            if frozen:
                write_value(self._f("freezer", "freezer.state"), "THAWED")


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
            "warnings": docker_warnings(ctrls, memsw, "blkio", cfs),
        }


def device_rule_text(d):
    """'c 1:3 rwm' (devices.allow/deny syntax) from a config.json device rule."""
    kind = d.get("type") or "a"
    if kind == "a" and d.get("major") in (None, -1) and d.get("minor") in (None, -1):
        return "a"
    num = lambda n: "*" if n in (None, -1) else str(n)  # noqa: E731
    return f"{kind} {num(d.get('major'))}:{num(d.get('minor'))} {d.get('access') or 'rwm'}"


def _disk_of_path(path):
    """'major:minor' of the disk holding path's filesystem, or None."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    from .limits import disk_of
    disk = disk_of(os.major(dev), os.minor(dev))
    return f"{disk['major']}:{disk['minor']}" if disk else None


def _inherit_cpuset(path):
    """A new v1 cpuset has empty cpus/mems and refuses tasks: copy the parent's."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        mine = os.path.join(path, name)
        try:
            if read_text(mine) == "":
                write_value(mine, read_text(os.path.join(os.path.dirname(path), name)))
        except OSError as e:
            raise ContainError(f"cannot initialise {mine}: {e.strerror}") from None
