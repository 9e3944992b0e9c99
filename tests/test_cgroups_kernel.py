"""contain.core.cgroups against the real kernel (root only).

Plain child processes are placed in the cgroups the way the container's
first process is: a preexec hook calls cgroups.join(procs_files) between
fork and exec.  Every cgroup lives under the test run's private parent
(support.CGROUP_PARENT) and is destroyed by the test, pass or fail; the last
test checks that nothing is left in any hierarchy.

On this project's machine the host is hybrid: limits are enforced through the
v1 hierarchies, and /sys/fs/cgroup/unified is a real (controller-less)
cgroup2 mount where the v2 mechanics (mkdir/rmdir, joining, cgroup.kill,
cgroup.events) are exercised with a DriverV2 pointed at it.
"""

import os
import subprocess
import sys
import time
import unittest

from tests import support

from contain.core import cgroups, linux
from contain.core.cgroups import limits as cglimits, v1
from contain.engine import defaults, generate, limits, stats
from contain.errors import ContainError

MiB = 1 << 20
PARENT = support.CGROUP_PARENT
PY = [sys.executable, "-S", "-c"]

try:
    DRIVER = cgroups.open_driver() if support.IS_ROOT else None
except ContainError:
    DRIVER = None


def needs(*controllers):
    """Skip unless running as root with these controllers usable."""
    if DRIVER is None:
        return unittest.skip("needs root and a cgroup filesystem")
    if DRIVER.version == 2:     # v2 calls v1's blkio "io"
        controllers = ["io" if c == "blkio" else c for c in controllers]
    missing = [c for c in controllers if c not in DRIVER.controllers()]
    return unittest.skipIf(missing, f"controller(s) not available: {missing}")


def busy(seconds=30):
    return f"import time\nt = time.monotonic() + {seconds}\nwhile time.monotonic() < t: pass"


class KernelCase(unittest.TestCase):
    driver = DRIVER

    def make(self, name, limits=None, driver=None, **kw):
        """Create a cgroup under the private parent, destroyed at the end."""
        drv = driver or self.driver
        self.addCleanup(drv.remove_parent_if_empty, PARENT)
        self.addCleanup(drv.destroy, PARENT, name)
        return drv.create(PARENT, name, limits or {}, **kw)

    def spawn(self, cg, code, **kw):
        """A python child that joins cg before its first instruction."""
        proc = subprocess.Popen(PY + [code], preexec_fn=cg.join, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, **kw)
        self.addCleanup(self.reap, proc)
        return proc

    @staticmethod
    def reap(proc):
        """Kill and wait; close the pipes without reading them (grandchildren
        may hold them open until the cgroup is destroyed)."""
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                try:
                    pipe.close()
                except OSError:
                    pass

    def usage_over(self, cgs, seconds):
        """cpu_usage_ns each cgroup used during the next `seconds`."""
        before = [cg.stats()["cpu_usage_ns"] for cg in cgs]
        time.sleep(seconds)
        return [cg.stats()["cpu_usage_ns"] - b for cg, b in zip(cgs, before)]


@needs()
class Placement(KernelCase):
    def test_info(self):
        info = self.driver.info()
        self.assertEqual(info["cgroup_version"], self.driver.version)
        self.assertTrue(set(info["controllers"]) >= {"memory", "cpu", "pids"})
        if self.driver.version == 1:
            self.assertIn("cpuacct", info["controllers"])
            self.assertIn(info["mode"], ("hybrid", "legacy"))

    def test_join_then_cgroup_namespace_shows_root(self):
        cg = self.make("placement")

        def child():
            cg.join()
            linux.unshare(linux.CLONE_NEWCGROUP)

        inside = subprocess.run(["cat", "/proc/self/cgroup"], preexec_fn=child,
                                capture_output=True, text=True, check=True).stdout
        lines = inside.splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertEqual(line.rsplit(":", 1)[1], "/", inside)
        # seen from the host, the child was in parent/name of every hierarchy we manage
        proc = self.spawn(cg, "import sys; sys.stdin.read()")
        time.sleep(0.05)
        with open(f"/proc/{proc.pid}/cgroup") as f:
            host_view = f.read()
        if self.driver.version == 1:
            self.assertIn(f"memory:/{PARENT}/placement\n", host_view)
        else:
            self.assertEqual(host_view, f"0::/{PARENT}/placement\n")
        self.assertEqual(cg.pids(), [proc.pid])

    def test_destroy_kills_and_is_idempotent(self):
        cg = self.make("destroy")
        procs = [self.spawn(cg, "import time; time.sleep(60)") for _ in range(3)]
        time.sleep(0.1)
        self.assertEqual(len(cg.pids()), 3)
        self.assertTrue(self.driver.destroy(PARENT, "destroy"))
        for p in procs:
            self.assertEqual(p.wait(5), -9)
        self.assertFalse(cg.exists())
        self.assertFalse(any(os.path.exists(d) for d in cg.dirs))
        self.assertFalse(self.driver.destroy(PARENT, "destroy"))   # again: nothing to do

    def test_existing_cgroup_with_processes_is_a_conflict(self):
        cg = self.make("taken")
        self.spawn(cg, "import sys; sys.stdin.read()")
        time.sleep(0.05)
        with self.assertRaises(ContainError) as cm:
            self.driver.create(PARENT, "taken", {})
        self.assertIn("already exists and has processes", str(cm.exception))

    @unittest.skipUnless(DRIVER and DRIVER.version == 1 and "freezer" in DRIVER.controllers(),
                         "v1 freezer path")
    def test_kill_all_freezes_a_fork_loop(self):
        # a driver of its own, without the hybrid cgroup2 tree (all_hierarchies):
        # no cgroup.kill, so the freeze - signal - thaw path runs
        drv = v1.DriverV1(cgroups.ROOT)
        cg = self.make("forkloop", driver=drv)
        code = ("import os, time\n"
                "while True:\n"
                "    try:\n"
                "        if os.fork() == 0: time.sleep(60); os._exit(0)\n"
                "    except OSError: time.sleep(0.01)\n"
                "    time.sleep(0.005)\n")
        proc = self.spawn(cg, code)
        time.sleep(0.3)
        self.assertGreater(len(cg.pids()), 5)
        cg.kill_all()
        self.assertEqual(proc.wait(5), -9)
        deadline = time.monotonic() + 5
        while cg.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(cg.pids(), [])
        with open(os.path.join(cg.at["freezer"], "freezer.state")) as f:
            self.assertEqual(f.read().strip(), "THAWED")

    @unittest.skipUnless(DRIVER and DRIVER.version == 1 and "devices" in DRIVER.controllers(),
                         "v1 devices controller")
    def test_v1_device_allow_list(self):
        cg = self.make("devices", devices=generate.device_rules(privileged=False))
        with open(os.path.join(cg.at["devices"], "devices.list")) as f:
            rules = f.read().split("\n")
        self.assertEqual(sorted(r for r in rules if r), sorted(defaults.DEFAULT_DEVICE_RULES))
        # and the kernel enforces it: /dev/null opens, /dev/mem (c 1:1) does not
        code = ("import os\nos.open('/dev/null', os.O_RDWR)\n"
                "try:\n    os.open('/dev/mem', os.O_RDONLY); print('open')\n"
                "except PermissionError: print('denied')\n")
        out = self.spawn(cg, code).communicate()[0].strip()
        if os.path.exists("/dev/mem"):
            self.assertEqual(out, "denied")
        priv = self.make("devices-all", devices="all")
        with open(os.path.join(priv.at["devices"], "devices.list")) as f:
            self.assertEqual(f.read().strip(), "a *:* rwm")


@needs("memory")
class Memory(KernelCase):
    def test_over_the_limit_is_oom_killed_under_it_lives(self):
        cg = self.make("oom", {"memory": 48 * MiB})
        self.assertEqual(cg.stats()["memory_limit"], 48 * MiB)
        self.assertEqual(cg.oom_kill_count(), 0)
        small = self.spawn(cg, "b = b'x' * (8 << 20); print('ok')")
        self.assertEqual(small.communicate(timeout=20)[0].strip(), "ok")
        self.assertEqual(small.returncode, 0)
        self.assertEqual(cg.oom_kill_count(), 0)
        big = self.spawn(cg, "b = b'x' * (200 << 20); print('survived')")
        out = big.communicate(timeout=20)[0]
        self.assertEqual(big.returncode, -9, out)      # SIGKILL from the OOM killer
        self.assertNotIn("survived", out)
        self.assertGreaterEqual(cg.oom_kill_count(), 1)
        self.assertGreaterEqual(cg.stats()["oom_kills"], 1)

    def test_stats_follow_the_workload(self):
        cg = self.make("memstats", {"memory": 128 * MiB})
        proc = self.spawn(cg, "import sys\nb = b'x' * (40 << 20)\nprint('ready', flush=True)\n"
                              "sys.stdin.read()")
        self.assertEqual(proc.stdout.readline().strip(), "ready")
        st = cg.stats()
        self.assertGreater(st["memory_usage"], 40 * MiB)
        self.assertEqual(st["pids_current"], 1)
        row = stats.usage_row("x" * 64, "memstats", None, st)
        self.assertGreater(row["memory_percent"], 30.0)
        proc.stdin.close()
        proc.wait(5)
        self.assertLess(cg.stats()["memory_usage"], 40 * MiB)

    @unittest.skipUnless(DRIVER and DRIVER.version == 1 and DRIVER.info()["swap_limit"],
                         "v1 with swap accounting")
    def test_update_memory_and_swap_on_a_running_cgroup(self):
        cg = self.make("memupdate", {"memory": 64 * MiB})
        self.spawn(cg, "import sys; sys.stdin.read()")
        memsw = os.path.join(cg.at["memory"], "memory.memsw.limit_in_bytes")
        with open(memsw) as f:
            self.assertEqual(int(f.read()), 128 * MiB)        # Docker's 2 x memory
        with self.assertRaises(ContainError) as cm:          # above memory+swap
            cg.update({"memory": 256 * MiB})
        self.assertIn("update the memoryswap at the same time", str(cm.exception))
        cg.update({"memory": 256 * MiB, "memory_swap": 512 * MiB})   # grows: swap first
        self.assertEqual(cg.stats()["memory_limit"], 256 * MiB)
        cg.update({"memory": 32 * MiB, "memory_swap": 32 * MiB})     # shrinks: memory first
        self.assertEqual(cg.stats()["memory_limit"], 32 * MiB)
        with open(memsw) as f:
            self.assertEqual(int(f.read()), 32 * MiB)

    @unittest.skipUnless(DRIVER and DRIVER.version == 2 and DRIVER.swap_limit(),
                         "v2 with swap accounting")
    def test_update_memory_and_swap_v2(self):
        # v2 limits swap alone: memory.swap.max = memory+swap total - memory
        cg = self.make("memupdate2", {"memory": 64 * MiB})
        self.spawn(cg, "import sys; sys.stdin.read()")

        def swap_max():
            with open(os.path.join(cg.dir, "memory.swap.max")) as f:
                return f.read().strip()
        self.assertEqual(swap_max(), str(64 * MiB))            # Docker's 2 x memory
        cg.update({"memory": 100 * MiB, "memory_swap": 128 * MiB})
        self.assertEqual((cg.stats()["memory_limit"], swap_max()), (100 * MiB, str(28 * MiB)))
        cg.update({"memory_swap": -1})
        self.assertEqual(swap_max(), "max")
        cg.update({"memory": 32 * MiB, "memory_swap": 32 * MiB})
        self.assertEqual((cg.stats()["memory_limit"], swap_max()), (32 * MiB, "0"))


@needs("pids")
class Pids(KernelCase):
    def test_fork_loop_stops_at_the_limit_and_update_raises_it(self):
        cg = self.make("pids", {"pids_limit": 8})
        code = ("import os, sys, time\n"
                "def forks():\n"
                "    n = 0\n"
                "    while True:\n"
                "        try: pid = os.fork()\n"
                "        except OSError as e: return n, e.errno\n"
                "        if pid == 0: time.sleep(60); os._exit(0)\n"
                "        n += 1\n"
                "print(*forks(), flush=True)\n"
                "sys.stdin.readline()\n"
                "print(*forks(), flush=True)\n"
                "sys.stdin.read()\n")
        proc = self.spawn(cg, code)
        self.assertEqual(proc.stdout.readline().split(), ["7", "11"])   # 7 + itself; EAGAIN
        self.assertEqual(cg.stats()["pids_current"], 8)
        cg.update({"pids_limit": 12})
        proc.stdin.write("more\n")
        proc.stdin.flush()
        self.assertEqual(proc.stdout.readline().split(), ["4", "11"])
        self.assertEqual(cg.stats()["pids_limit"], 12)


@needs("cpu")
class Cpu(KernelCase):
    def test_half_a_cpu(self):
        cg = self.make("cpuquota", {"nano_cpus": 500000000})
        self.spawn(cg, busy())
        time.sleep(0.3)
        first = cgroups.sample(cg)
        time.sleep(2.0)
        second = cgroups.sample(cg)
        used = second["cpu_usage_ns"] - first["cpu_usage_ns"]
        wall = second["read_ns"] - first["read_ns"]
        self.assertLessEqual(used, 0.55 * wall, f"used {used / 1e9:.2f}s of CPU in "
                                                f"{wall / 1e9:.2f}s with --cpus 0.5")
        self.assertGreater(used, 0.25 * wall, "the busy loop hardly ran")
        pct = stats.cpu_percent(first, second)
        self.assertTrue(25 < pct <= 55, pct)
        self.assertGreater(second["cpu_throttled_periods"], 0)

    @unittest.skipUnless(DRIVER and "cpuset" in DRIVER.controllers(), "needs cpuset")
    def test_shares_split_one_cpu_one_to_two(self):
        cpu = str(max(os.sched_getaffinity(0)))
        low = self.make("shares-low", {"cpu_shares": 512, "cpuset_cpus": cpu})
        high = self.make("shares-high", {"cpu_shares": 1024, "cpuset_cpus": cpu})
        self.spawn(low, busy())
        self.spawn(high, busy())
        time.sleep(0.3)
        a, b = self.usage_over([low, high], 2.0)
        self.assertGreater(a, 0.1e9, "the low-share loop hardly ran")
        ratio = b / a
        self.assertTrue(1.5 <= ratio <= 2.7, f"high/low CPU time ratio {ratio:.2f}, want ~2")


@needs("blkio")
class Blkio(KernelCase):
    SIZE = 2 * MiB
    CODE = ("import mmap, os, sys, time\n"
            "path = sys.argv[1]\n"
            "fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)\n"
            "os.posix_fallocate(fd, 0, {size})\n"
            "os.fsync(fd)\n"
            "buf = mmap.mmap(-1, 256 * 1024)\n"
            "buf.write(b'x' * len(buf))\n"
            "t = time.monotonic()\n"
            "for _ in range({size} // len(buf)):\n"
            "    os.write(fd, buf)\n"
            "os.fsync(fd)\n"
            "print(time.monotonic() - t)\n")

    def work_disk(self):
        """The disk under the test run's scratch directory, where it writes."""
        st = os.stat(support.WORK)
        disk = cglimits.disk_of(os.major(st.st_dev), os.minor(st.st_dev))
        if disk is None:
            self.skipTest(f"{support.WORK} is not on a block device "
                          f"({os.major(st.st_dev)}:{os.minor(st.st_dev)} has no "
                          "/sys/dev/block entry), so it cannot be throttled")
        return disk

    def write_in(self, cg, name):
        path = os.path.join(support.WORK, name)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        proc = subprocess.Popen(PY + [self.CODE.format(size=self.SIZE), path],
                                preexec_fn=cg.join, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.reap, proc)
        out, err = proc.communicate(timeout=30)
        if proc.returncode == 0:
            return float(out)
        if "Invalid argument" in err:
            self.skipTest("O_DIRECT is not supported where the test writes")
        self.fail(err)

    def test_write_bps_slows_direct_writes_to_the_disk(self):
        disk = self.work_disk()
        free = self.make("blk-free", io_paths=(support.WORK,))
        baseline = self.write_in(free, "free.bin")
        if baseline > 0.5:
            self.skipTest(f"the disk is too slow to tell ({baseline:.2f}s unthrottled)")
        rule = limits.parse_device_rate(f"{disk['path']}:1mb", flag="--device-write-bps")
        cg = self.make("blk-limited", {"device_write_bps": [rule]}, io_paths=(support.WORK,))
        took = self.write_in(cg, "limited.bin")
        # 2 MiB at 1 MiB/s: ~2 s (the first slice may pass at once)
        self.assertGreater(took, 0.9, f"2 MiB took {took:.2f}s at 1mb/s "
                                      f"(unthrottled: {baseline:.2f}s)")
        self.assertGreaterEqual(cg.stats()["blkio_write"], self.SIZE)
        self.assertGreaterEqual(free.stats()["blkio_write"], self.SIZE)


@needs()
class UnifiedV2(KernelCase):
    """v2 mechanics on the hybrid host's real cgroup2 mount (no controllers)."""

    @classmethod
    def setUpClass(cls):
        unified = os.path.join(cgroups.ROOT, "unified")
        if DRIVER.version == 2:
            cls.driver = DRIVER
        elif os.path.exists(os.path.join(unified, "cgroup.controllers")):
            cls.driver = cgroups.open_driver(unified)
        else:
            raise unittest.SkipTest("no cgroup2 mount on this host")

    def test_join_events_kill_destroy(self):
        self.assertEqual(self.driver.version, 2)
        cg = self.make("v2")
        events = os.path.join(cg.dir, "cgroup.events")
        with open(events) as f:
            self.assertIn("populated 0", f.read())
        proc = self.spawn(cg, "import sys; sys.stdin.read()")
        time.sleep(0.05)
        self.assertEqual(cg.pids(), [proc.pid])
        with open(events) as f:
            self.assertIn("populated 1", f.read())
        self.assertIsNotNone(cg.stats()["cpu_usage_ns"])   # cpu.stat is core in v2
        cg.kill_all()
        self.assertEqual(proc.wait(5), -9)
        self.assertTrue(self.driver.destroy(PARENT, "v2"))
        self.assertFalse(os.path.exists(cg.dir))
        self.assertFalse(self.driver.destroy(PARENT, "v2"))

    def test_limit_without_controller_is_refused(self):
        if "memory" in self.driver.controllers():
            self.skipTest("this cgroup2 tree has the memory controller")
        with self.assertRaises(ContainError) as cm:
            self.driver.create(PARENT, "v2-refused", {"memory": 64 * MiB})
        self.assertIn("--memory: the memory cgroup controller is not available",
                      str(cm.exception))
        self.assertFalse(self.driver.exists(PARENT, "v2-refused"))


@needs()
class ZCleanup(unittest.TestCase):
    """Runs last (alphabetical order): nothing may be left behind."""

    def test_nothing_left(self):
        self.assertEqual(support.cgroup_dirs(), [])
        self.assertTrue(DRIVER.remove_parent_if_empty(PARENT))
        for base in DRIVER._bases():
            self.assertFalse(os.path.exists(os.path.join(base, PARENT)), base)


if __name__ == "__main__":
    unittest.main()
