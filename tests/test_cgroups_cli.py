"""The resource commands end to end (root): `run` with limits, `stats`,
`update`, `info`, and an OOM kill seen by `inspect`; every container lives
under the test run's private state root and cgroup parent."""

import json
import time
import unittest

from tests import support

from contain.core import cgroups

MiB = 1 << 20


@support.requires_root
class ResourceCommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rootfs = support.busybox_rootfs()
        cls.driver = cgroups.open_driver()

    def contain(self, *args, ok=True):
        res = support.contain(*args)
        if ok:
            self.assertEqual(res.returncode, 0, f"contain {' '.join(args)}: {res.stderr}")
        return res

    def run_detached(self, name, *args):
        self.addCleanup(support.contain, "rm", "-f", name)
        res = self.contain("run", "-d", "--name", name, "--network", "none", *args,
                           "--rootfs", self.rootfs, *(["sh", "-c", "cat /proc/self/cgroup; "
                                                       "sleep 60"]))
        cid = res.stdout.strip()
        return cid, self.driver.cgroup(support.CGROUP_PARENT, cid)

    def test_limits_stats_update_rm(self):
        cid, cg = self.run_detached("cg-cli-limits", "--memory", "64m", "--cpus", "0.5",
                                    "--pids-limit", "50")
        st = cg.stats()
        self.assertEqual((st["memory_limit"], st["pids_limit"]), (64 * MiB, 50))
        if self.driver.version == 1:
            with open(f"{cg.at['cpu']}/cpu.cfs_quota_us") as f:
                self.assertEqual(f.read().strip(), "50000")
        if self.driver.version == 2:
            with open(f"{cg.dir}/cpu.max") as f:
                self.assertEqual(f.read().strip(), "50000 100000")
            with open(f"{cg.dir}/memory.swap.max") as f:   # memory+swap: twice 64m
                self.assertEqual(f.read().strip(), str(64 * MiB))
        # the cgroup namespace: the container sees its own cgroup as /, one
        # line per hierarchy as in the host's /proc/self/cgroup
        with open("/proc/self/cgroup") as f:
            hierarchies = len(f.read().splitlines())
        for _ in range(100):
            logs = self.contain("logs", "cg-cli-limits").stdout
            lines = [line for line in logs.splitlines() if line]
            if len(lines) >= hierarchies:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), hierarchies, logs)
        self.assertTrue(all(line.endswith(":/") for line in lines), logs)
        inspect = json.loads(self.contain("inspect", "cg-cli-limits").stdout)[0]
        self.assertEqual(inspect["HostConfig"]["Memory"], 64 * MiB)
        if self.driver.swap_limit():    # docker's default: memory+swap = 2 x memory
            self.assertEqual(inspect["HostConfig"]["MemorySwap"], 128 * MiB)

        doc = json.loads(self.contain("stats", "--no-stream", "--format", "json",
                                      "cg-cli-limits").stdout)
        self.assertIn(doc["PIDs"], ("1", "2"))     # sh (and sleep, unless sh exec'd it)
        self.assertTrue(doc["MemUsage"].endswith(" / 64MiB"), doc)
        self.assertEqual(doc["ID"], cid[:12])
        table = self.contain("stats", "--no-stream").stdout
        self.assertTrue(table.startswith("CONTAINER ID   NAME "), table)
        self.assertIn("cg-cli-limits", table)

        # --memory alone keeps the memory+swap total (128m): swap is what is left
        if self.driver.swap_limit():
            res = self.contain("update", "--memory", "256m", "cg-cli-limits", ok=False)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("update the memoryswap at the same time", res.stderr)
            self.contain("update", "--memory", "100m", "cg-cli-limits")
            self.assertEqual(cg.stats()["memory_limit"], 100 * MiB)
            if self.driver.version == 2:
                with open(f"{cg.dir}/memory.swap.max") as f:
                    self.assertEqual(f.read().strip(), str(28 * MiB))
            else:
                with open(f"{cg.at['memory']}/memory.memsw.limit_in_bytes") as f:
                    self.assertEqual(f.read().strip(), str(128 * MiB))
        res = self.contain("update", "--memory", "128m", "--memory-swap", "256m",
                           "--pids-limit", "20", "cg-cli-limits")
        self.assertEqual(res.stdout.strip(), "cg-cli-limits")
        st = cg.stats()
        self.assertEqual((st["memory_limit"], st["pids_limit"]), (128 * MiB, 20))
        from contain.engine.state import Store
        limits = Store(support.STATE_ROOT).find("cg-cli-limits").config["limits"]
        self.assertEqual((limits["memory"], limits["memory_swap"], limits["pids_limit"],
                          limits["nano_cpus"]), (128 * MiB, 256 * MiB, 20, 500000000))
        # above the memory+swap total without a new --memory-swap: docker's error
        res = self.contain("update", "--memory", "512m", "cg-cli-limits", ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("update the memoryswap at the same time", res.stderr)

        self.contain("rm", "-f", "cg-cli-limits")
        self.assertFalse(cg.exists())

    def test_oom_kill_is_reported(self):
        self.addCleanup(support.contain, "rm", "-f", "cg-cli-oom")
        res = support.contain("run", "--name", "cg-cli-oom", "--network", "none",
                              "--memory", "16m", "--rootfs", self.rootfs,
                              "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
        self.assertEqual(res.returncode, 137, res.stderr)
        out = self.contain("inspect", "-f", "{{.State.OOMKilled}}", "cg-cli-oom").stdout
        self.assertEqual(out.strip(), "true")

    def test_info(self):
        out = self.contain("info").stdout
        self.assertIn(f"Cgroup Version: {self.driver.version}", out)
        self.assertIn("Cgroup Controllers: " + " ".join(self.driver.controllers()), out)
        doc = json.loads(self.contain("info", "--format", "json").stdout)
        self.assertEqual(doc["cgroup_version"], self.driver.version)

    def test_update_errors(self):
        res = self.contain("update", "x", ok=False)
        self.assertEqual(res.returncode, 125)
        self.assertIn("You must provide one or more flags", res.stderr)
        res = self.contain("update", "--cpus", "999", "x", ok=False)
        self.assertEqual(res.returncode, 125)
        self.assertIn("Range of CPUs", res.stderr)
        res = self.contain("update", "--pids-limit", "5", "no-such-container", ok=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("No such container", res.stderr)


if __name__ == "__main__":
    unittest.main()
