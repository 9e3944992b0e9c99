"""The container boundary seen from inside, through `contain run`, with
busybox's own tools: what root inside cannot do with the defaults, and gets
back with the matching --cap-add or --privileged.  Plus OOM handling through
the monitor (restart policy, ps, logs).  As root, real kernel."""

import json
import os
import time
import unittest

from tests import support
from tests.support import contain, requires_root


def run(*cmd, opts=()):
    return contain("run", "--rm", "--rootfs", support.busybox_rootfs(), *opts, "--", *cmd)


def host_block_device():
    """major:minor of a block device root on this host can open: loop0 (7:0).
    (This machine refuses even its own root the real disk, /dev/vda, so the
    disk itself cannot show the difference --privileged makes.)"""
    st = os.stat("/dev/loop0")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


@requires_root
class BoundaryTest(unittest.TestCase):
    def test_host_disk_through_a_new_device_node(self):
        major, minor = host_block_device()
        # in /dev: the container's own tmpfs, mounted without nodev
        script = (f"mknod /dev/disk0 b {major} {minor} && echo made; "
                  "head -c 512 /dev/disk0 > /dev/null 2>&1 && echo READ || echo refused")
        res = run("sh", "-c", script)
        self.assertEqual(res.stdout.split(), ["made", "refused"], res.stderr)
        res = run("sh", "-c", script, opts=("--privileged",))
        self.assertEqual(res.stdout.split(), ["made", "READ"], res.stderr)
        res = run("sh", "-c", script, opts=("--cap-drop", "MKNOD"))
        self.assertNotIn("made", res.stdout)

    def test_proc_sys_and_sysrq_are_read_only(self):
        script = ("echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo sys-WRITTEN || echo sys-refused; "
                  "echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq-WRITTEN || echo sysrq-refused")
        self.assertEqual(run("sh", "-c", script).stdout.split(), ["sys-refused", "sysrq-refused"])

    def test_hostname_after_start_needs_sys_admin(self):
        res = run("sh", "-c", "hostname changed 2>/dev/null; hostname", opts=("--hostname", "fixed"))
        self.assertEqual(res.stdout.strip(), "fixed")
        res = run("sh", "-c", "hostname changed; hostname",
                  opts=("--hostname", "fixed", "--cap-add", "SYS_ADMIN"))
        self.assertEqual(res.stdout.strip(), "changed")

    def test_mount_and_namespaces_refused_then_allowed(self):
        script = ("mount -t tmpfs none /tmp 2>/dev/null && echo mount-ok || echo mount-refused; "
                  "unshare -n true 2>/dev/null && echo unshare-ok || echo unshare-refused")
        self.assertEqual(run("sh", "-c", script).stdout.split(),
                         ["mount-refused", "unshare-refused"])
        self.assertEqual(run("sh", "-c", script, opts=("--privileged",)).stdout.split(),
                         ["mount-ok", "unshare-ok"])

    def test_rlimit_above_hard_limit_is_refused(self):
        res = run("sh", "-c", "h=$(ulimit -H -n); ulimit -n $((h + 1)) 2>/dev/null "
                  "&& echo RAISED || echo refused")
        self.assertEqual(res.stdout.strip(), "refused")

    def test_capabilities_read_back_inside(self):
        res = run("grep", "^Cap", "/proc/self/status")
        caps = dict(line.split(":\t") for line in res.stdout.splitlines())
        self.assertEqual(caps["CapBnd"], "00000000a80425fb")  # Docker's 14
        self.assertEqual(caps["CapEff"], "00000000a80425fb")
        self.assertEqual(caps["CapInh"], "0000000000000000")
        self.assertEqual(caps["CapAmb"], "0000000000000000")

    def test_fds_and_cwd_are_not_inherited(self):
        extra = os.open("/etc/hostname", os.O_RDONLY)
        try:
            res = contain("run", "--rm", "--rootfs", support.busybox_rootfs(), "--",
                          "ls", "/proc/self/fd", pass_fds=(extra,), cwd=support.WORK)
        finally:
            os.close(extra)
        self.assertEqual(sorted(res.stdout.split()), ["0", "1", "2", "3"])


@requires_root
class OomTest(unittest.TestCase):
    def test_oom_kill_restart_ps_and_log(self):
        self.addCleanup(contain, "rm", "-f", "hog")
        res = contain("run", "-d", "--name", "hog", "--memory", "16m", "--memory-swap", "16m",
                      "--restart", "on-failure:1", "--rootfs", support.busybox_rootfs(), "--",
                      "sh", "-c", "echo start; x=$(head -c 100000000 /dev/zero | tr '\\0' a)")
        self.assertEqual(res.returncode, 0, res.stderr)
        deadline = time.monotonic() + 30
        info = {}
        while time.monotonic() < deadline:
            info = json.loads(contain("inspect", "hog").stdout)[0]
            if info["State"]["Status"] == "exited" and info["RestartCount"] == 1:
                break
            time.sleep(0.1)
        self.assertEqual(info["RestartCount"], 1)       # restarted after the OOM kill
        self.assertTrue(info["State"]["OOMKilled"])
        self.assertEqual(info["State"]["ExitCode"], 137)
        self.assertRegex(contain("ps", "-a").stdout, r"Exited \(137\) .*hog")
        logs = contain("logs", "hog")
        self.assertEqual(logs.stdout.count("start"), 2)
        self.assertIn("killed by the OOM killer", logs.stderr)


if __name__ == "__main__":
    unittest.main()
