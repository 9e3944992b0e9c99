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
        # the cgroup namespace: the container sees its own cgroup as /
        for _ in range(100):
            logs = self.contain("logs", "cg-cli-limits").stdout
            if "memory:" in logs:
                break
            time.sleep(0.02)
        lines = [line for line in logs.splitlines() if line]
        self.assertTrue(lines)
        self.assertTrue(all(line.endswith(":/") for line in lines), logs)

        doc = json.loads(self.contain("stats", "--no-stream", "--format", "json",
                                      "cg-cli-limits").stdout)
        self.assertIn(doc["PIDs"], ("1", "2"))     # sh (and sleep, unless sh exec'd it)
        self.assertTrue(doc["MemUsage"].endswith(" / 64MiB"), doc)
        self.assertEqual(doc["ID"], cid[:12])
        table = self.contain("stats", "--no-stream").stdout
        self.assertTrue(table.startswith("CONTAINER ID   NAME "), table)
        self.assertIn("cg-cli-limits", table)

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
