"""Unit tests for contain.core.cgroups: flag parsing, Docker's limit rules, and
both drivers against fake cgroup trees in a temporary directory.

The fake trees hold the files the kernel would show (cgroup.controllers,
cgroup.subtree_control, memory.max, cpu.max...), so the drivers read and
write exactly what they would in /sys/fs/cgroup; as in cgroupfs, a file
that is not there cannot be written (the driver never creates files).
No root needed; the real-kernel tests are in test_cgroups_kernel.py.
"""

import json
import os
import shutil
import tempfile
import unittest

from tests import support  # noqa: F401  (puts the project on sys.path)

from contain.core import cgroups
from contain.core.cgroups import limits as cglimits, v1, v2
from contain.engine import generate, limits, stats
from contain.errors import ContainError, UsageError

MiB = 1 << 20


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


# ------------------------------------------------------------ fake trees
V2_CORE = {
    "cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.kill": "",
    "cgroup.freeze": "0", "cgroup.events": "populated 0\nfrozen 0\n",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}
V2_CONTROLLER_FILES = {
    "memory": {"memory.max": "max", "memory.low": "0", "memory.swap.max": "max",
               "memory.current": "0", "memory.stat": "anon 0\nfile 0\ninactive_file 0\n",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"},
    "cpu": {"cpu.max": "max 100000", "cpu.weight": "100"},
    "io": {"io.max": "", "io.weight": "default 100", "io.stat": ""},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
}


def fake_v2(root, controllers=("cpuset", "cpu", "io", "memory", "pids"), cgroups_=()):
    """A cgroup2 root plus child cgroups with the files the kernel would show
    once `controllers` are enabled above them."""
    write(os.path.join(root, "cgroup.controllers"), " ".join(controllers) + "\n")
    write(os.path.join(root, "cgroup.subtree_control"), "")
    write(os.path.join(root, "cgroup.procs"), "")
    for rel in cgroups_:
        d = os.path.join(root, rel)
        files = dict(V2_CORE, **{"cgroup.controllers": " ".join(controllers)})
        for c in controllers:
            files.update(V2_CONTROLLER_FILES.get(c, {}))
        for name, text in files.items():
            write(os.path.join(d, name), text)


V1_FILES = {
    "cpu,cpuacct": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000",
                    "cpu.cfs_quota_us": "-1", "cpu.stat": "nr_periods 0\nnr_throttled 0\n",
                    "cpuacct.usage": "0"},
    "memory": {"memory.limit_in_bytes": "9223372036854771712",
               "memory.memsw.limit_in_bytes": "9223372036854771712",
               "memory.soft_limit_in_bytes": "9223372036854771712",
               "memory.usage_in_bytes": "0", "memory.stat": "total_inactive_file 0\n",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "blkio": {"blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
              "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": "",
              "blkio.throttle.io_service_bytes_recursive": "Total 0\n"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "freezer": {"freezer.state": "THAWED"},
    "systemd": {},
}


def fake_v1(root, cgroups_=(), comount=True):
    """A v1 tree like Ubuntu's: cpu and cpuacct co-mounted at 'cpu,cpuacct'
    with 'cpu' and 'cpuacct' symlinks, a named systemd hierarchy, no cgroup2."""
    os.makedirs(root, exist_ok=True)
    for hier, files in V1_FILES.items():
        base = os.path.join(root, hier)
        write(os.path.join(base, "cgroup.procs"), "")
        for name, text in files.items():
            write(os.path.join(base, name), "0-3" if name == "cpuset.cpus" else
                  "0" if name == "cpuset.mems" else text)
        for rel in cgroups_:
            write(os.path.join(base, rel, "cgroup.procs"), "")
            for name, text in files.items():
                write(os.path.join(base, rel, name), text)
    os.symlink("cpu,cpuacct", os.path.join(root, "cpu"))
    os.symlink("cpu,cpuacct", os.path.join(root, "cpuacct"))


class TmpDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="contain-cgtest-")
        self.addCleanup(shutil.rmtree, self.tmp, True)


# ------------------------------------------------------------ flag parsing
class ParseBytes(unittest.TestCase):
    def test_docker_sizes(self):
        cases = {"512K": 512 << 10, "64M": 64 * MiB, "64m": 64 * MiB, "1G": 1 << 30,
                 "1g": 1 << 30, "64mb": 64 * MiB, "64MiB": 64 * MiB, "100b": 100,
                 "100": 100, "1.5g": 3 << 29, "2 k": 2048, "1t": 1 << 40}
        for text, want in cases.items():
            self.assertEqual(cglimits.parse_bytes(text), want, text)

    def test_garbage_and_negative_rejected(self):
        for text in ("", "abc", "-1", "-64m", "64x", "1.g", "m", "64 mb extra", "1e6"):
            with self.assertRaises(UsageError, msg=text) as cm:
                cglimits.parse_bytes(text, "--memory")
            self.assertIn("--memory", str(cm.exception))
            self.assertNotIn("\n", str(cm.exception))

    def test_memory_swap_minus_one(self):
        self.assertEqual(limits.parse_memory_swap("-1"), -1)
        self.assertEqual(limits.parse_memory_swap("1g"), 1 << 30)
        with self.assertRaises(UsageError):
            limits.parse_memory_swap("-2")


class ParseCpus(unittest.TestCase):
    def test_values(self):
        self.assertEqual(limits.parse_cpus("0.5", ncpu=2), 500000000)
        self.assertEqual(limits.parse_cpus("1.5", ncpu=2), 1500000000)
        self.assertEqual(limits.parse_cpus(".25", ncpu=2), 250000000)
        self.assertEqual(limits.parse_cpus("2", ncpu=2), 2 * 10**9)
        self.assertEqual(limits.parse_cpus("0", ncpu=2), 0)

    def test_more_than_the_host_has(self):
        with self.assertRaises(UsageError) as cm:
            limits.parse_cpus("3", ncpu=2)
        self.assertEqual(str(cm.exception), "Range of CPUs is from 0.01 to 2.00, "
                         "as there are only 2 CPUs available")
        with self.assertRaises(UsageError):
            limits.parse_cpus("0.001", ncpu=2)

    def test_garbage(self):
        for text in ("", "abc", "-1", "1.", "1.2.3", "0.1234567891", "1/2"):
            with self.assertRaises(UsageError, msg=text):
                limits.parse_cpus(text, ncpu=4)


class ParseCpuset(unittest.TestCase):
    def test_valid_and_canonical(self):
        avail = {0, 1, 2, 3, 5}
        self.assertEqual(limits.parse_cpuset("0-3,5", available=avail), "0-3,5")
        self.assertEqual(limits.parse_cpuset("3,1,2", available=avail), "1-3")
        self.assertEqual(limits.parse_cpuset("1", available=avail), "1")

    def test_invalid(self):
        for text in ("", "a", "1-", "-1", "3-1", "1,,2", "1-2-3"):
            with self.assertRaises(UsageError, msg=text):
                limits.parse_cpuset(text, available={0, 1, 2, 3})

    def test_unavailable(self):
        with self.assertRaises(UsageError) as cm:
            limits.parse_cpuset("0-5", available={0, 1})
        self.assertEqual(str(cm.exception), "Requested CPUs are not available - "
                         "requested 0-5, available: 0-1")
        with self.assertRaises(UsageError) as cm:
            limits.parse_cpuset("1", "--cpuset-mems", available={0})
        self.assertIn("memory nodes", str(cm.exception))

    def test_default_available_is_this_process(self):
        mine = sorted(os.sched_getaffinity(0))
        self.assertEqual(limits.parse_cpuset(str(mine[0])), str(mine[0]))


def a_block_device():
    """(path, major, minor) of some whole disk in /dev, or None."""
    for entry in sorted(os.listdir("/sys/block")):
        dev = "/dev/" + entry
        if os.path.exists(dev) and not entry.startswith(("loop", "ram", "zram")):
            st = os.stat(dev)
            return dev, os.major(st.st_rdev), os.minor(st.st_rdev)
    return None


class ParseDeviceRate(unittest.TestCase):
    def test_bps_and_iops(self):
        found = a_block_device()
        if not found:
            self.skipTest("no block device in /dev")
        dev, major, minor = found
        self.assertEqual(limits.parse_device_rate(f"{dev}:1mb"),
                         {"path": dev, "major": major, "minor": minor, "rate": MiB})
        self.assertEqual(limits.parse_device_rate(f"{dev}:1000", iops=True)["rate"], 1000)
        self.assertEqual(limits.parse_device_rate(f"{dev}:512")["rate"], 512)

    def test_errors(self):
        bad = [("/dev/sda", False), ("sda:1mb", False), ("/dev/sda:", False),
               ("/dev/sda:fast", False), ("/dev/sda:1.5", True), ("/dev/sda:-1", True),
               ("/dev/null:1mb", False), ("/dev/does-not-exist:1mb", False)]
        for text, iops in bad:
            with self.assertRaises(UsageError, msg=text) as cm:
                limits.parse_device_rate(text, iops=iops, flag="--device-write-bps")
            self.assertNotIn("\n", str(cm.exception))
        with self.assertRaises(UsageError) as cm:
            limits.parse_device_rate("/dev/null:1mb")
        self.assertIn("not a block device", str(cm.exception))


class DiskOf(TmpDir):
    def test_partition_maps_to_its_disk(self):
        sysfs = os.path.join(self.tmp, "dev-block")
        disk = os.path.join(self.tmp, "devices", "vda")
        write(os.path.join(disk, "dev"), "254:0\n")
        write(os.path.join(disk, "vda1", "dev"), "254:1\n")
        write(os.path.join(disk, "vda1", "partition"), "1\n")
        os.makedirs(sysfs)
        os.symlink(disk, os.path.join(sysfs, "254:0"))
        os.symlink(os.path.join(disk, "vda1"), os.path.join(sysfs, "254:1"))
        want = {"path": "/dev/vda", "major": 254, "minor": 0}
        self.assertEqual(cglimits.disk_of(254, 1, sysfs), want)
        self.assertEqual(cglimits.disk_of(254, 0, sysfs), want)
        self.assertIsNone(cglimits.disk_of(8, 0, sysfs))


# ------------------------------------------------------------ limit rules
class CheckLimits(unittest.TestCase):
    def err(self, limits, text):
        with self.assertRaises(UsageError) as cm:
            cglimits.check_limits(limits, ncpu=2)
        self.assertIn(text, str(cm.exception))

    def test_docker_rules(self):
        self.err({"memory": 1 * MiB}, "Minimum memory limit allowed is 6MB")
        self.err({"memory_reservation": MiB}, "Minimum memory reservation allowed is 6MB")
        self.err({"memory": 64 * MiB, "memory_reservation": 128 * MiB},
                 "can not be less than memory reservation")
        self.err({"memory_swap": 128 * MiB}, "always set the Memory limit")
        self.err({"memory": 64 * MiB, "memory_swap": 32 * MiB},
                 "memoryswap limit should be larger than memory limit")
        self.err({"nano_cpus": 10**9, "cpu_period": 100000}, "Nano CPUs and CPU Period")
        self.err({"nano_cpus": 10**9, "cpu_quota": 50000}, "Nano CPUs and CPU Quota")
        self.err({"nano_cpus": 3 * 10**9}, "only 2 CPUs")
        self.err({"cpu_period": 999}, "CPU cfs period")
        self.err({"cpu_quota": 999}, "CPU cfs quota")
        self.err({"blkio_weight": 5}, "Range of blkio weight is from 10 to 1000")
        self.err({"cpu_shares": -1}, "cannot be negative")
        self.err({"bogus": 1}, "unknown resource limit")
        self.err({"memory": "64m"}, "expected an integer")

    def test_normalisation(self):
        out = cglimits.check_limits({"memory": 0, "memory_swap": -1, "pids_limit": 0,
                                    "cpu_shares": 1, "cpu_quota": -5, "cpuset_cpus": None,
                                    "blkio_weight": 0}, ncpu=2)
        self.assertEqual(out, {"memory_swap": -1, "pids_limit": -1, "cpu_shares": 2,
                               "cpu_quota": -1})
        self.assertEqual(cglimits.check_limits({"cpu_shares": 10**6})["cpu_shares"], 262144)

    def test_update_relaxes_swap_without_memory(self):
        self.assertEqual(cglimits.check_limits({"memory_swap": 128 * MiB}, update=True),
                         {"memory_swap": 128 * MiB})

    def test_merge_limits(self):
        old = {"memory": 64 * MiB, "memory_swap": 128 * MiB, "cpu_quota": 50000}
        new = limits.merge_limits(old, {"nano_cpus": 10**9, "pids_limit": 10})
        self.assertEqual(new, {"memory": 64 * MiB, "memory_swap": 128 * MiB,
                               "nano_cpus": 10**9, "pids_limit": 10})
        with self.assertRaises(UsageError) as cm:
            limits.merge_limits(old, {"memory": 256 * MiB})
        self.assertIn("update the memoryswap at the same time", str(cm.exception))
        both = limits.merge_limits(old, {"memory": 256 * MiB, "memory_swap": -1})
        self.assertEqual(both["memory_swap"], -1)


class Describe(unittest.TestCase):
    def test_explain_line(self):
        self.assertEqual(cglimits.describe_limits(
            {"memory": 64 * MiB, "nano_cpus": 500000000, "pids_limit": 64}),
            "memory=64M cpu=50% pids=64")
        self.assertEqual(cglimits.describe_limits({}), "")
        line = cglimits.describe_limits({
            "memory": 100 * 1000, "memory_swap": -1, "cpu_quota": 150000,
            "cpu_period": 100000, "cpu_shares": 512, "cpuset_cpus": "0-1",
            "pids_limit": -1, "blkio_weight": 300,
            "device_write_bps": [{"path": "/dev/vda", "major": 254, "minor": 0,
                                  "rate": MiB}],
            "device_read_iops": [{"path": "/dev/vda", "major": 254, "minor": 0,
                                  "rate": 1000}]})
        self.assertEqual(line, "memory=100000b memory+swap=unlimited cpu=150% "
                         "cpu-shares=512 cpuset-cpus=0-1 pids=unlimited blkio-weight=300 "
                         "device-write-bps=/dev/vda:1M device-read-iops=/dev/vda:1000")


class Weights(unittest.TestCase):
    def test_cpu_shares_to_weight(self):
        w = cglimits.cpu_shares_to_weight
        self.assertEqual((w(2), w(1024), w(262144)), (1, 100, 10000))
        self.assertNotEqual(w(1024), 39)   # the old linear formula's answer
        values = [w(s) for s in (2, 10, 100, 512, 1024, 2048, 65536, 262144)]
        self.assertEqual(values, sorted(values))
        self.assertIsNone(w(0))
        self.assertEqual(w(1), 1)

    def test_blkio_weight_to_io_weight(self):
        f = cglimits.blkio_weight_to_io_weight
        self.assertEqual((f(10), f(500), f(1000)), (1, 4950, 10000))


# ------------------------------------------------------------ v2 driver
class FakeV2(TmpDir):
    PARENT = "outer/contain"

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.tmp, "cgroup")
        fake_v2(self.root, cgroups_=("outer", "outer/contain", "outer/contain/c1"))
        self.drv = cgroups.open_driver(self.root)
        self.dir = os.path.join(self.root, "outer/contain/c1")

    def f(self, name):
        return read(os.path.join(self.dir, name)).strip()

    def test_detects_v2(self):
        self.assertIsInstance(self.drv, v2.DriverV2)
        self.assertEqual(self.drv.version, 2)
        self.assertEqual(self.drv.controllers(), ["cpu", "cpuset", "io", "memory", "pids"])
        info = self.drv.info()
        self.assertEqual((info["cgroup_version"], info["mode"]), (2, "unified"))
        self.assertTrue(info["swap_limit"])     # outer/ has memory.swap.max
        self.assertEqual(info["warnings"], [])
        self.assertIn("Cgroup Version: 2 (unified)", stats.info_lines(info))
        self.assertIn("enforced by a BPF device program", info["devices"])

    def test_default_swap_is_recorded_where_swap_is_limited(self):
        # Docker: --memory alone means memory+swap = twice the memory
        self.assertEqual(self.drv.default_limits({"memory": 64 * MiB}),
                         {"memory": 64 * MiB, "memory_swap": 128 * MiB})
        for given in ({"memory": 64 * MiB, "memory_swap": -1}, {"pids_limit": 5}, {}):
            self.assertEqual(self.drv.default_limits(given), given)

    def test_create_enables_controllers_in_every_ancestor(self):
        cg = self.drv.create(self.PARENT, "c1", {"memory": 64 * MiB})
        want = {"+cpuset", "+cpu", "+io", "+memory", "+pids"}
        for rel in ("", "outer", "outer/contain"):
            got = set(read(os.path.join(self.root, rel, "cgroup.subtree_control")).split())
            self.assertEqual(got, want, rel or "root")
        # the container's own cgroup is a leaf: nothing enabled below it
        self.assertEqual(self.f("cgroup.subtree_control"), "")
        self.assertEqual(cg.procs_files, [os.path.join(self.dir, "cgroup.procs")])
        self.assertEqual(cg.version, 2)
        self.assertFalse(cg.devices_enforced)

    def test_already_enabled_controllers_are_not_rewritten(self):
        write(os.path.join(self.root, "cgroup.subtree_control"), "cpuset cpu io memory pids\n")
        self.drv.create(self.PARENT, "c1", {})
        self.assertEqual(read(os.path.join(self.root, "cgroup.subtree_control")),
                         "cpuset cpu io memory pids\n")

    def test_limits_written_like_runc(self):
        self.drv.create(self.PARENT, "c1", {
            "memory": 64 * MiB, "memory_reservation": 32 * MiB, "nano_cpus": 500000000,
            "cpu_shares": 512, "cpuset_cpus": "0-1", "cpuset_mems": "0", "pids_limit": 64,
            "blkio_weight": 500,
            "device_write_bps": [{"path": "/dev/vda", "major": 254, "minor": 0,
                                  "rate": MiB}]})
        self.assertEqual(self.f("memory.max"), str(64 * MiB))
        self.assertEqual(self.f("memory.low"), str(32 * MiB))
        # Docker: no --memory-swap means memory+swap = 2 x memory, so swap = memory
        self.assertEqual(self.f("memory.swap.max"), str(64 * MiB))
        self.assertEqual(self.f("cpu.max"), "50000 100000")
        self.assertEqual(self.f("cpu.weight"), "59")
        self.assertEqual(self.f("cpuset.cpus"), "0-1")
        self.assertEqual(self.f("cpuset.mems"), "0")
        self.assertEqual(self.f("pids.max"), "64")
        self.assertEqual(self.f("io.weight"), "default 4950")
        self.assertEqual(self.f("io.max"), "254:0 wbps=1048576")

    def test_swap_semantics(self):
        cg = self.drv.create(self.PARENT, "c1", {"memory": 64 * MiB, "memory_swap": -1})
        self.assertEqual(self.f("memory.swap.max"), "max")
        cg.update({"memory": 64 * MiB, "memory_swap": 64 * MiB})
        self.assertEqual(self.f("memory.swap.max"), "0")
        cg.update({"memory_swap": 96 * MiB})     # memory read back from memory.max
        self.assertEqual(self.f("memory.swap.max"), str(32 * MiB))

    def test_cpu_max_forms(self):
        cg = self.drv.create(self.PARENT, "c1", {"cpu_quota": 50000})
        self.assertEqual(self.f("cpu.max"), "50000")        # keeps the period
        cg.update({"cpu_quota": 50000, "cpu_period": 200000})
        self.assertEqual(self.f("cpu.max"), "50000 200000")
        cg.update({"cpu_quota": -1})
        self.assertEqual(self.f("cpu.max"), "max")
        cg.update({"cpu_shares": 1024})
        self.assertEqual(self.f("cpu.weight"), "100")

    def test_bfq_weight_preferred(self):
        write(os.path.join(self.dir, "io.bfq.weight"), "default 100")
        self.drv.create(self.PARENT, "c1", {"blkio_weight": 500})
        self.assertEqual(self.f("io.bfq.weight"), "500")

    def test_missing_controller_is_an_error_naming_it(self):
        root = os.path.join(self.tmp, "small")
        fake_v2(root, controllers=("cpu", "pids"))
        drv = cgroups.open_driver(root)
        cases = [({"memory": 64 * MiB}, "memory"), ({"cpuset_cpus": "0"}, "cpuset"),
                 ({"device_read_iops": [{"path": "/dev/vda", "major": 254, "minor": 0,
                                         "rate": 10}]}, "io")]
        for limits, ctrl in cases:
            with self.assertRaises(ContainError, msg=ctrl) as cm:
                drv.create("contain", "c1", limits)
            self.assertIn(f"the {ctrl} cgroup controller is not available", str(cm.exception))
            self.assertIn(FLAG_OF[next(iter(limits))], str(cm.exception))
        self.assertFalse(os.path.exists(os.path.join(root, "contain")))  # checked first

    def test_missing_interface_file_is_an_error(self):
        os.unlink(os.path.join(self.dir, "memory.swap.max"))
        # derived swap (2 x memory) is skipped when the kernel has no swap accounting
        self.drv.create(self.PARENT, "c1", {"memory": 64 * MiB})
        with self.assertRaises(ContainError) as cm:
            self.drv.create(self.PARENT, "c1", {"memory": 64 * MiB, "memory_swap": -1})
        self.assertIn("--memory-swap", str(cm.exception))
        self.assertIn("memory.swap.max does not exist", str(cm.exception))

    def test_stats_and_oom(self):
        cg = self.drv.create(self.PARENT, "c1", {"memory": 64 * MiB, "pids_limit": 20})
        write(os.path.join(self.dir, "memory.current"), "10485760\n")
        write(os.path.join(self.dir, "memory.stat"), "anon 8388608\ninactive_file 2097152\n")
        write(os.path.join(self.dir, "cpu.stat"), "usage_usec 1500\nnr_throttled 3\n")
        write(os.path.join(self.dir, "io.stat"),
              "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
              "7:0 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")
        write(os.path.join(self.dir, "pids.current"), "3\n")
        write(os.path.join(self.dir, "memory.events"),
              "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\n")
        st = cg.stats()
        self.assertEqual(st, {
            "cpu_usage_ns": 1500000, "cpu_throttled_periods": 3,
            "memory_usage": 10 * MiB, "memory_limit": 64 * MiB, "memory_cache": 2 * MiB,
            "pids_current": 3, "pids_limit": 20, "blkio_read": 4196, "blkio_write": 8192,
            "oom_kills": 2})
        self.assertEqual(cg.oom_kill_count(), 2)

    def test_kill_all_uses_cgroup_kill(self):
        cg = self.drv.create(self.PARENT, "c1", {})
        cg.kill_all()
        self.assertEqual(self.f("cgroup.kill"), "1")

    def test_names_cannot_escape(self):
        for parent, name in (("../x", "c"), ("contain", "a/b"),
                             ("contain", ".."), ("a/../../b", "c"), ("contain", "")):
            with self.assertRaises(UsageError, msg=(parent, name)):
                self.drv.cgroup(parent, name)
        self.assertEqual(self.drv.cgroup("/contain/", "c").path, "contain/c")
        # an empty parent is the hierarchy's root (runc's cgroupsPath "/c"): no escape
        self.assertEqual(self.drv.cgroup("/", "c").path, "c")
        self.assertEqual(self.drv.cgroup("/", "c").dirs, [os.path.join(self.drv.root, "c")])


FLAG_OF = cglimits.FLAGS


# ------------------------------------------------------------ v1 driver
class FakeV1(TmpDir):
    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.tmp, "cgroup")
        fake_v1(self.root, cgroups_=("contain", "contain/c1"))
        self.drv = cgroups.open_driver(self.root)

    def f(self, hier, name, rel="contain/c1"):
        return read(os.path.join(self.root, hier, rel, name)).strip()

    def test_detects_comounted_hierarchies(self):
        self.assertIsInstance(self.drv, v1.DriverV1)
        self.assertEqual(self.drv.controllers(), ["blkio", "cpu", "cpuacct", "cpuset",
                                                  "devices", "freezer", "memory", "pids"])
        comounted = os.path.realpath(os.path.join(self.root, "cpu,cpuacct"))
        self.assertEqual(self.drv.mounts["cpu"], comounted)
        self.assertEqual(self.drv.mounts["cpuacct"], comounted)
        self.assertIsNone(self.drv.unified)
        info = self.drv.info()
        self.assertEqual((info["cgroup_version"], info["mode"]), (1, "legacy"))
        self.assertTrue(info["swap_limit"] and info["cpu_cfs"])
        self.assertEqual(json.loads(json.dumps(info)), info)

    def test_one_procs_file_per_hierarchy(self):
        cg = self.drv.cgroup("contain", "c1")
        # cpu,cpuacct once; the named systemd hierarchy is not used
        self.assertEqual(len(cg.procs_files), 7)
        self.assertEqual(len(set(cg.procs_files)), 7)
        self.assertFalse(any("systemd" in p for p in cg.procs_files))

    def test_limits_written(self):
        self.drv.create("contain", "c1", {
            "memory": 64 * MiB, "memory_reservation": 32 * MiB, "nano_cpus": 1500000000,
            "cpu_shares": 512, "cpuset_cpus": "1", "pids_limit": 0,
            "device_read_iops": [{"path": "/dev/vda", "major": 254, "minor": 0,
                                  "rate": 100}]},
            devices=generate.device_rules(privileged=False))
        self.assertEqual(self.f("memory", "memory.limit_in_bytes"), str(64 * MiB))
        self.assertEqual(self.f("memory", "memory.memsw.limit_in_bytes"), str(128 * MiB))
        self.assertEqual(self.f("memory", "memory.soft_limit_in_bytes"), str(32 * MiB))
        self.assertEqual(self.f("cpu", "cpu.shares"), "512")
        self.assertEqual(self.f("cpu,cpuacct", "cpu.cfs_period_us"), "100000")
        self.assertEqual(self.f("cpu,cpuacct", "cpu.cfs_quota_us"), "150000")
        self.assertEqual(self.f("cpuset", "cpuset.cpus"), "1")
        self.assertEqual(self.f("pids", "pids.max"), "max")
        self.assertEqual(self.f("blkio", "blkio.throttle.read_iops_device"), "254:0 100")
        # the intermediate parent got the root's cpus/mems (an empty v1 cpuset
        # refuses tasks)
        self.assertEqual(self.f("cpuset", "cpuset.cpus", "contain"), "0-3")
        self.assertEqual(self.f("cpuset", "cpuset.mems", "contain"), "0")
        self.assertEqual(self.f("cpuset", "cpuset.mems"), "0")
        # default devices: the last write is the last allow rule
        self.assertEqual(self.f("devices", "devices.deny"), "a")
        self.assertEqual(self.f("devices", "devices.allow"), "c 10:200 rwm")

    def test_block_io_accounting_activated_on_the_disk(self):
        st = os.stat(self.tmp)
        disk = cglimits.disk_of(os.major(st.st_dev), os.minor(st.st_dev))
        if disk is None:
            self.skipTest("the temporary directory is not on a block device")
        self.drv.create("contain", "c1", {}, io_paths=(self.tmp, "/nonexistent"))
        self.assertEqual(self.f("blkio", "blkio.throttle.read_bps_device"),
                         f"{disk['major']}:{disk['minor']} 0")

    def test_privileged_devices(self):
        cg = self.drv.create("contain", "c1", {}, devices="all")
        self.assertEqual(self.f("devices", "devices.allow"), "a")
        self.assertEqual(self.f("devices", "devices.deny"), "")
        self.assertTrue(cg.devices_enforced)

    def test_memory_order_keeps_memory_below_memsw(self):
        cg = self.drv.cgroup("contain", "c1")
        memsw = os.path.join(self.root, "memory/contain/c1/memory.memsw.limit_in_bytes")
        write(memsw, str(100 * MiB))
        grow = [k for _, _, k in cg.plan({"memory": 150 * MiB, "memory_swap": 200 * MiB})]
        self.assertEqual(grow, ["memory_swap", "memory"])
        shrink = [k for _, _, k in cg.plan({"memory": 20 * MiB, "memory_swap": 40 * MiB})]
        self.assertEqual(shrink, ["memory", "memory_swap"])
        self.assertEqual([k for _, _, k in cg.plan({"memory_swap": -1})], ["memory_swap"])
        # creation: memsw is unlimited, so memory first, then 2 x memory
        write(memsw, "9223372036854771712")
        plan = cg.plan({"memory": 64 * MiB}, initial=True)
        self.assertEqual([(os.path.basename(p), v) for p, v, _ in plan],
                         [("memory.limit_in_bytes", 64 * MiB),
                          ("memory.memsw.limit_in_bytes", 128 * MiB)])

    def test_no_swap_accounting(self):
        for rel in ("", "contain", "contain/c1"):
            os.unlink(os.path.join(self.root, "memory", rel, "memory.memsw.limit_in_bytes"))
        self.assertFalse(self.drv.info()["swap_limit"])
        self.assertIn("No swap limit support", self.drv.info()["warnings"])
        self.drv.create("contain", "c1", {"memory": 64 * MiB})   # derived swap skipped
        self.assertEqual(self.drv.default_limits({"memory": 64 * MiB}), {"memory": 64 * MiB})
        with self.assertRaises(ContainError) as cm:
            self.drv.create("contain", "c1", {"memory": 64 * MiB, "memory_swap": 256 * MiB})
        self.assertIn("no swap accounting", str(cm.exception))

    def test_blkio_weight_needs_a_weight_file(self):
        with self.assertRaises(ContainError) as cm:
            self.drv.create("contain", "c1", {"blkio_weight": 300})
        self.assertIn("--blkio-weight", str(cm.exception))
        self.assertIn("blkio.weight does not exist", str(cm.exception))
        write(os.path.join(self.root, "blkio/contain/c1/blkio.bfq.weight"), "100")
        self.drv.create("contain", "c1", {"blkio_weight": 300})
        self.assertEqual(self.f("blkio", "blkio.bfq.weight"), "300")

    def test_missing_controller(self):
        shutil.rmtree(os.path.join(self.root, "pids"))
        drv = cgroups.open_driver(self.root)
        self.assertNotIn("pids", drv.controllers())
        self.assertIn("No pids limit support", drv.info()["warnings"])
        with self.assertRaises(ContainError) as cm:
            drv.create("contain", "c2", {"pids_limit": 10})
        self.assertIn("--pids-limit: the pids cgroup controller is not available",
                      str(cm.exception))

    def test_stats_and_oom(self):
        cg = self.drv.create("contain", "c1", {"pids_limit": 50})
        base = os.path.join(self.root, "{}/contain/c1/{}")
        write(base.format("cpuacct", "cpuacct.usage"), "123456789\n")
        write(base.format("memory", "memory.usage_in_bytes"), str(20 * MiB))
        write(base.format("memory", "memory.stat"), "cache 4096\ntotal_inactive_file 1048576\n")
        write(base.format("memory", "memory.oom_control"),
              "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n")
        write(base.format("pids", "pids.current"), "7\n")
        write(base.format("blkio", "blkio.throttle.io_service_bytes_recursive"),
              "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 12288\n"
              "254:0 Total 12288\n7:0 Read 1\nTotal 12289\n")
        st = cg.stats()
        self.assertEqual(st, {
            "cpu_usage_ns": 123456789, "cpu_throttled_periods": 0,
            "memory_usage": 20 * MiB, "memory_limit": None, "memory_cache": MiB,
            "pids_current": 7, "pids_limit": 50, "blkio_read": 4097, "blkio_write": 8192,
            "oom_kills": 4})


# ------------------------------------------------------------ stats output
class StatsOutput(unittest.TestCase):
    def test_cpu_percent(self):
        self.assertAlmostEqual(stats.cpu_percent(0, 5 * 10**8, 10**9, 2), 50.0)
        self.assertEqual(stats.cpu_percent(0, 4 * 10**9, 10**9, 2), 200.0)  # capped
        self.assertEqual(stats.cpu_percent(None, 5, 10**9, 2), 0.0)
        self.assertEqual(stats.cpu_percent(0, 5, 0, 2), 0.0)
        prev = {"cpu_usage_ns": 10**9, "read_ns": 0}
        cur = {"cpu_usage_ns": 10**9 + 25 * 10**7, "read_ns": 10**9}
        self.assertAlmostEqual(stats.cpu_percent(prev, cur, ncpu=2), 25.0)

    def test_sizes_like_go_units(self):
        self.assertEqual(stats.bytes_size(0), "0B")
        self.assertEqual(stats.bytes_size(1536 * 1024), "1.5MiB")
        self.assertEqual(stats.bytes_size(2 * 1024**3 - 60 * 1024**2), "1.941GiB")
        self.assertEqual(stats.human_size(648), "648B")
        self.assertEqual(stats.human_size(1234), "1.23kB")
        self.assertEqual(stats.human_size(12 * 10**6), "12MB")

    def row(self, **kw):
        row = {"id": "0123456789abcdef" * 4, "name": "web", "cpu_percent": 12.345,
               "memory_usage": 1536 * 1024, "memory_limit": 64 * MiB,
               "memory_percent": 2.34375, "net_rx": 1234, "net_tx": 648,
               "block_read": 0, "block_write": 8192, "pids": 3}
        row.update(kw)
        return row

    def test_row_cells(self):
        cells = stats.format_stats_row(self.row())
        self.assertEqual(cells, {
            "BlockIO": "0B / 8.19kB", "CPUPerc": "12.35%", "Container": "web",
            "ID": "0123456789ab", "MemPerc": "2.34%", "MemUsage": "1.5MiB / 64MiB",
            "Name": "web", "NetIO": "1.23kB / 648B", "PIDs": "3"})
        gone = stats.format_stats_row(self.row(net_rx=None, net_tx=None, pids=None))
        self.assertEqual((gone["NetIO"], gone["PIDs"]), ("--", "--"))

    def test_table_layout(self):
        out = stats.stats_table([self.row()])
        lines = out.splitlines()
        self.assertEqual(lines[0], "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   "
                                   "MEM %     NET I/O         BLOCK I/O     PIDS")
        self.assertEqual(lines[1], "0123456789ab   web       12.35%    1.5MiB / 64MiB      "
                                   "2.34%     1.23kB / 648B   0B / 8.19kB   3")
        self.assertEqual(len(lines), 2)

    def test_json(self):
        doc = json.loads(stats.stats_json(self.row()))
        self.assertEqual(list(doc), sorted(doc))
        self.assertEqual(doc["MemUsage"], "1.5MiB / 64MiB")

    def test_usage_row(self):
        prev = {"cpu_usage_ns": 0, "read_ns": 0}
        cur = {"cpu_usage_ns": 5 * 10**8, "read_ns": 10**9, "memory_usage": 10 * MiB,
               "memory_cache": 2 * MiB, "memory_limit": None, "blkio_read": 1,
               "blkio_write": 2, "pids_current": 4}
        row = stats.usage_row("a" * 64, "web", prev, cur, net=(10, 20), ncpu=2,
                                host_mem=80 * MiB)
        self.assertAlmostEqual(row["cpu_percent"], 50.0)
        self.assertEqual(row["memory_usage"], 8 * MiB)        # cache excluded
        self.assertEqual(row["memory_limit"], 80 * MiB)       # host memory when unlimited
        self.assertAlmostEqual(row["memory_percent"], 10.0)
        self.assertEqual((row["net_rx"], row["net_tx"], row["pids"]), (10, 20, 4))

    def test_net_io_of_this_process(self):
        rx_tx = stats.net_io(os.getpid())
        self.assertEqual(len(rx_tx), 2)
        self.assertIsNone(stats.net_io(2 ** 30))

    def test_host_memory(self):
        self.assertGreater(stats.host_memory(), 64 * MiB)


if __name__ == "__main__":
    unittest.main()
