"""kill -9 at each step of run, run -d, rm -f and stop (of the CLI, the
monitor, or both), damaged container records, a full disk, a broken verbose
log and waiting on --rm containers: afterwards `ps -a` tells the truth,
`rm -f` succeeds and nothing is left (record, runtime record, cgroup,
process, monitor, veth, iptables rule, lease, temp file).

The kills are made deterministic by the engine's test-only hook
CONTAIN_FAULT=STEP (contain/engine/state.py fault_point): the process that
passes STEP SIGKILLs itself there.  Anything that touches the network runs
inside a private network namespace (tests/netsandbox.py)."""

import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from tests import netsandbox, support
from contain.engine import netfilter

_marks = itertools.count(1)


def marker():
    """A sleep argument no other process has: finds the container's PID 1."""
    return str(7000000 + os.getpid() % 1000 * 1000 + next(_marks))


def processes_with(text):
    """Pids whose command line contains text."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(pid))
    return found


def kill_all(text):
    for pid in processes_with(text):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def ps_rows(res):
    """{name: STATUS text} from `ps -a --format '{{.Names}}|{{.Status}}'`."""
    return dict(line.split("|", 1) for line in res.stdout.splitlines() if "|" in line)


@support.requires_root
class FaultLifecycleCase(unittest.TestCase):
    """A state root of its own; contain runs in a fresh network namespace
    (unshare --net) unless a sandbox test overrides contain()."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lcfaults-", dir=support.WORK)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.root = os.path.join(self.tmp, "root")
        self.rootfs = support.busybox_rootfs()
        self.marks = []
        self.addCleanup(self._kill_leftovers)

    def _kill_leftovers(self):
        for m in self.marks:
            kill_all(m)
        kill_all(self.root)     # monitors: their command line names the state root

    def mark(self):
        m = marker()
        self.marks.append(m)
        return m

    def contain(self, *args, fault=None, timeout=30):
        env = support.env(CONTAIN_ROOT=self.root, CONTAIN_DEFAULT_NETWORK="none")
        if fault:
            env["CONTAIN_FAULT"] = fault
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            # files, not pipes: an orphaned container must not keep us waiting
            proc = subprocess.run(["unshare", "--net", "--", *support.contain_cmd(*args)],
                                  stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                  env=env, timeout=timeout)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(),
                                               err.read())

    def ok(self, *args, **kw):
        res = self.contain(*args, **kw)
        self.assertEqual(res.returncode, 0, f"{args}: {res.stdout}{res.stderr}")
        self.assertNotIn("Traceback", res.stderr)
        return res

    def ps(self):
        return ps_rows(self.ok("ps", "-a", "--format", "{{.Names}}|{{.Status}}"))

    def assert_truthful(self, name, mark):
        """ps -a lists a container whose process runs (as Up or Dead), and
        never calls one Up whose process is gone."""
        rows = self.ps()
        alive = bool(processes_with(f"sleep {mark}"))
        if alive:
            self.assertIn(name, rows, "a running container is not listed")
            self.assertTrue(rows[name].startswith(("Up", "Dead")), rows[name])
        elif name in rows:
            self.assertFalse(rows[name].startswith("Up"), f"{name}: {rows[name]} but no process")
        return rows

    def remove_if_listed(self, name, rows):
        if name in rows:
            self.ok("rm", "-f", name)

    def assert_nothing_left(self, mark=None):
        containers = os.path.join(self.root, "containers")
        self.assertEqual(sorted(os.listdir(containers)) if os.path.isdir(containers) else [],
                         [], "container records or trash left")
        runtime = os.path.join(self.root, "runtime")
        self.assertEqual(os.listdir(runtime) if os.path.isdir(runtime) else [], [],
                         "runtime core records left")
        self.assertEqual(support.cgroup_dirs(), [], "cgroups left")
        if mark:
            self.assertEqual(processes_with(f"sleep {mark}"), [], "container process left")
        self.assertEqual(processes_with(self.root), [], "monitor left")
        self.assertEqual([m for m in support.mounts_under(self.tmp) if m != self.root], [],
                         "mounts left")   # (a test's own tmpfs as the state root stays)
        temps = [os.path.join(d, f) for d, _, files in os.walk(self.root) for f in files
                 if ".tmp" in f]
        self.assertEqual(temps, [], "temporary files left")
        self.assert_no_lease()

    def assert_no_lease(self):
        nets = os.path.join(self.root, "networks")
        for name in (os.listdir(nets) if os.path.isdir(nets) else []):
            if name.endswith(".json"):
                with open(os.path.join(nets, name)) as f:
                    self.assertEqual(json.load(f).get("endpoints"), {}, f"lease left in {name}")


# ------------------------------------------------------------ kill -9 at each step
@support.requires_root
@unittest.skipUnless(netfilter.available(), "iptables is not installed")
class KillAtEachStepTest(FaultLifecycleCase):
    """A container on the bridge with a published port, its CLI or monitor
    killed right after each step: the record, the lease, the veth and its
    rules, the spawn, the start."""

    STEPS = ("created", "leased", "attached", "spawned", "started")

    def setUp(self):
        super().setUp()
        self.sb = netsandbox.Sandbox()
        self.addCleanup(self.sb.cleanup)
        self.sb.setup()

    def contain(self, *args, fault=None, timeout=30):
        env = {"CONTAIN_ROOT": self.root}
        if fault:
            env["CONTAIN_FAULT"] = fault
        cmd = [netsandbox.NSENTER, f"--net={self.sb.path()}", *support.contain_cmd(*args)]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                  env=support.env(CONTAIN_DEFAULT_NETWORK="bridge", **env),
                                  timeout=timeout)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())

    def assert_network_clean(self):
        self.assert_no_lease()
        self.assertEqual(self.sb.veths_left(), [], "veth left")
        self.assertIsNone(re.search(r"contain:[0-9a-f]{64}", self.sb.iptables_save()),
                          "a container's iptables rule left")

    def crash(self, mode, step):
        mark, name = self.mark(), f"k-{mode}-{step}"
        detach = ["-d"] if mode != "fg" else []
        fault = step if mode != "both" else f"{step},launch-failed"
        res = self.contain("run", *detach, "--name", name, "-p", "8080:80",
                           "--rootfs", self.rootfs, "sleep", mark, fault=fault)
        self.assertNotEqual(res.returncode, 0, f"{mode} {step}: the fault did not fire")
        self.assertNotIn("Traceback", res.stderr)
        rows = self.assert_truthful(name, mark)
        self.remove_if_listed(name, rows)
        self.assertNotIn(name, self.ps())
        self.assert_nothing_left(mark)
        self.assert_network_clean()

    def test_foreground_cli_killed(self):
        for step in self.STEPS:
            with self.subTest(step=step):
                self.crash("fg", step)

    def test_detached_monitor_killed(self):
        for step in self.STEPS[1:]:    # "created" happens in the CLI
            with self.subTest(step=step):
                self.crash("detached", step)

    def test_detached_cli_and_monitor_killed(self):
        for step in self.STEPS[1:]:
            with self.subTest(step=step):
                self.crash("both", step)
        with self.subTest(step="created"):
            self.crash("detached", "created")

    def test_network_prune_after_the_crashes_removes_the_bridge(self):
        self.crash("detached", "attached")
        self.crash("fg", "started")
        self.assertIn("contain0", self.sb.links())
        self.ok("network", "prune")
        self.assertNotIn("contain0", self.sb.links())
        self.assertNotIn("contain", self.sb.iptables_save().lower().replace("contain-test", ""))

    def test_verbose_log_into_a_closed_pipe_still_rolls_back(self):
        """Item 9: `--verbose run --rm ... 2>&1 | head -1`: the broken pipe
        of the log must not stop the rollback (nor leave a lease)."""
        cmd = " ".join(support.contain_cmd("--verbose", "run", "--rm", "--rootfs",
                                           self.rootfs, "true"))
        env = support.env(CONTAIN_ROOT=self.root, CONTAIN_DEFAULT_NETWORK="bridge")
        res = subprocess.run([netsandbox.NSENTER, f"--net={self.sb.path()}", "sh", "-c",
                              f"{cmd} 2>&1 | head -1"], capture_output=True, text=True,
                             env=env, timeout=60)
        self.assertIn("[contain]", res.stdout)
        self.assertEqual(self.ok("ps", "-a", "-q").stdout, "")
        self.assert_nothing_left()
        self.assert_network_clean()
        self.ok("network", "prune")
        self.assertNotIn("contain0", self.sb.links())


# --------------------------------------------------------- rm -f and stop killed
@support.requires_root
class KillRemoveAndStopTest(FaultLifecycleCase):
    def start(self, name, mark, *cmd):
        self.ok("run", "-d", "--name", name, "--rootfs", self.rootfs,
                *(cmd or ("sleep", mark)))
        self.assertTrue(processes_with(mark))

    def test_rm_killed_at_each_step(self):
        for step in ("rm-signalled", "rm-released", "rm-renamed"):
            with self.subTest(step=step):
                mark, name = self.mark(), f"rm-{step}"
                self.start(name, mark)
                res = self.contain("rm", "-f", name, fault=step)
                self.assertEqual(res.returncode, -9, f"{step}: the fault did not fire")
                rows = self.assert_truthful(name, mark)
                self.remove_if_listed(name, rows)
                self.assertNotIn(name, self.ps())
                self.assert_nothing_left(mark)

    def test_stop_killed_after_the_signal(self):
        mark, name = self.mark(), "stopkilled"
        self.start(name, mark, "sh", "-c", f"trap 'exit 0' TERM; sleep {mark} & wait")
        res = self.contain("stop", name, fault="stop-signalled")
        self.assertEqual(res.returncode, -9)
        deadline = time.monotonic() + 10
        while not self.ps()[name].startswith("Exited") and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(self.ps()[name].startswith("Exited (0)"), self.ps()[name])
        self.ok("rm", "-f", name)
        self.assert_nothing_left()
        kill_all(mark)      # the orphaned sleep of sh (not the container's init)


# ----------------------------------------------------------- damaged records
@support.requires_root
class DamagedRecordTest(FaultLifecycleCase):
    """Item 3: whatever is wrong with the record, ps lists the container
    (dead, one warning naming the file), inspect and exec say which file is
    damaged (exit 125), rm -f by name or id removes everything it holds."""

    def damage(self, cid, filename, data):
        path = os.path.join(self.root, "containers", cid, filename)
        if data is None:
            os.unlink(path)
        else:
            with open(path, "rb") as f:
                good = f.read()
            with open(path, "wb") as f:
                f.write(good[:len(good) // 2] if data == "truncated" else data)
        return path

    def check(self, filename, data, by):
        mark, name = self.mark(), f"dmg{next(_marks)}"
        cid = self.ok("run", "-d", "--name", name, "--rootfs", self.rootfs,
                      "sleep", mark).stdout.strip()
        pid = processes_with(f"sleep {mark}")
        self.assertTrue(pid)
        path = self.damage(cid, filename, data)
        res = self.ok("ps", "-a", "--format", "{{.ID}}|{{.Status}}")
        self.assertIn(f"{cid[:12]}|Dead", res.stdout)
        self.assertIn(path, res.stderr)
        for args in (("inspect", name if filename == "state.json" else cid),
                     ("exec", cid, "true")):
            res = self.contain(*args)
            self.assertEqual(res.returncode, 125, f"{args}: {res.stderr}")
            self.assertNotIn("Traceback", res.stderr)
            self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
            self.assertIn(path, res.stderr)
        ref = name if by == "name" else cid
        self.ok("rm", "-f", ref)
        self.assertEqual(self.ps(), {})
        self.assert_nothing_left(mark)

    def test_damaged_state_json(self):
        for kind, data in (("empty", b""), ("truncated", "truncated"),
                           ("binary", b"\x00\xff\xfe\x80garbage"), ("array", b"[]")):
            for by in ("name", "id"):
                with self.subTest(kind=kind, by=by):
                    self.check("state.json", data, by)

    def test_damaged_or_missing_config_json(self):
        for kind, data in (("truncated", "truncated"), ("missing", None)):
            for by in ("name", "id"):
                with self.subTest(kind=kind, by=by):
                    self.check("config.json", data, by)

    def test_damaged_runtime_record(self):
        """The runtime core's record unreadable: rm -f still removes the
        process and the cgroup, from the engine's record."""
        for kind, data in (("empty", b""), ("array", b"[]"), ("binary", b"\x00\xffgarbage")):
            with self.subTest(kind=kind):
                mark, name = self.mark(), f"dmg{next(_marks)}"
                cid = self.ok("run", "-d", "--name", name, "--rootfs", self.rootfs,
                              "sleep", mark).stdout.strip()
                self.assertTrue(support.cgroup_dirs())
                with open(os.path.join(self.root, "runtime", cid, "state.json"), "wb") as f:
                    f.write(data)
                self.ok("rm", "-f", name)
                self.assertEqual(self.ps(), {})
                self.assert_nothing_left(mark)


# ------------------------------------------------------------------ full disk
@support.requires_root
class FullDiskTest(FaultLifecycleCase):
    """Item 8: the state root on a 10 MB tmpfs."""

    def setUp(self):
        super().setUp()
        support.small_state_root(self, self.root, "10m", "lcfaults")
        self.filler = os.path.join(self.root, "filler")

    def fill(self):
        support.fill_disk(self.filler)

    def logs(self, name):
        return self.ok("logs", name).stderr

    def test_a_container_outlives_a_full_disk_and_rm_works(self):
        mark = self.mark()
        self.ok("run", "-d", "--name", "chatty", "--rootfs", self.rootfs, "sh", "-c",
                f"while true; do echo line; usleep 2000; done; sleep {mark}")
        self.fill()
        time.sleep(1)                   # lines are written meanwhile: dropped
        self.assertTrue(self.ps()["chatty"].startswith("Up"), self.ps())
        # a start that fails for want of space leaves nothing
        res = self.contain("run", "-d", "--name", "nospace", "--rootfs", self.rootfs,
                           "sleep", self.mark())
        self.assertEqual(res.returncode, 125, res.stderr)
        self.assertNotIn("Traceback", res.stderr)
        self.assertEqual(sorted(self.ps()), ["chatty"])
        temps = [f for d, _, files in os.walk(self.root) for f in files if ".tmp" in f]
        self.assertEqual(temps, [])
        os.unlink(self.filler)          # space again: one warning, then the lines
        deadline = time.monotonic() + 10
        while "log lines dropped" not in self.logs("chatty") and time.monotonic() < deadline:
            time.sleep(0.1)
        warnings = [line for line in self.logs("chatty").splitlines() if "dropped" in line]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertRegex(warnings[0], r"^contain: \d+ log lines dropped: no space left")
        self.assertTrue(self.ps()["chatty"].startswith("Up"))
        self.fill()
        self.ok("rm", "-f", "chatty")   # on a full disk
        os.unlink(self.filler)
        self.assert_nothing_left()


# --------------------------------------------------------------- wait and --rm
@support.requires_root
class WaitOnRemovedTest(FaultLifecycleCase):
    """Item 10: the exit code of a --rm container reaches its waiters."""

    def test_wait_prints_the_exit_code_of_a_rm_container(self):
        self.ok("run", "-d", "--rm", "--name", "w1", "--rootfs", self.rootfs,
                "sh", "-c", "sleep 1; exit 4")
        self.assertEqual(self.ok("wait", "w1").stdout, "4\n")
        self.assert_nothing_left()

    def test_create_rm_then_start_attached(self):
        self.ok("create", "--rm", "--name", "w2", "--rootfs", self.rootfs,
                "sh", "-c", "echo out; exit 3")
        res = self.contain("start", "-a", "w2")
        self.assertEqual((res.returncode, res.stdout), (3, "out\n"), res.stderr)
        self.assertEqual(self.ps(), {})
        self.assert_nothing_left()


if __name__ == "__main__":
    unittest.main()
