"""Container lifecycle: detached containers under a monitor, create/start,
stop/kill/rm/wait, ps, logs, exec, inspect, --init, --restart, concurrency
(as root, real kernel, busybox inside)."""

import json
import os
import signal
import subprocess
import time
import unittest

from tests import support
from tests.support import contain, requires_root

NET = ("--network", "none")


def rootfs():
    return support.busybox_rootfs()


class Lifecycle(unittest.TestCase):
    """Helpers; every test removes its containers and checks nothing is left."""

    def setUp(self):
        self.names = []

    def tearDown(self):
        for name in self.names:
            contain("rm", "-f", name)
        self.assertEqual(support.cgroup_dirs(), [], "cgroups left behind")

    def run_d(self, name, *cmd, opts=()):
        self.names.append(name)
        res = contain("run", "-d", "--name", name, "--rootfs", rootfs(), *NET, *opts,
                      "--", *cmd)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.strip()

    def inspect(self, name):
        res = contain("inspect", name)
        self.assertEqual(res.returncode, 0, res.stderr)
        return json.loads(res.stdout)[0]

    def wait_until(self, predicate, timeout=10, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        self.fail(f"timed out waiting for {what}")

    def state_of(self, name):
        return self.inspect(name)["State"]


@requires_root
class DetachedTest(Lifecycle):
    def test_run_d_prints_full_id_and_returns(self):
        cid = self.run_d("det1", "sleep", "100")
        self.assertRegex(cid, r"^[0-9a-f]{64}$")
        st = self.state_of("det1")
        self.assertEqual(st["Status"], "running")
        self.assertTrue(st["Running"])
        self.assertGreater(st["Pid"], 0)
        # the monitor left the CLI's session
        with open(f"/proc/{st['Pid']}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        self.assertNotEqual(os.getsid(ppid), os.getsid(0))

    def test_id_prefix_name_and_ambiguity(self):
        cid = self.run_d("pfx", "sleep", "100")
        self.assertEqual(self.inspect(cid[:5])["Id"], cid)
        self.assertEqual(self.inspect("pfx")["Id"], cid)
        res = contain("inspect", "nosuchthing")
        self.assertEqual(res.returncode, 125)
        self.assertIn("No such container: nosuchthing", res.stderr)

    def test_name_in_use_and_invalid_name(self):
        self.run_d("dup", "sleep", "100")
        res = contain("run", "-d", "--name", "dup", "--rootfs", rootfs(), *NET, "--", "true")
        self.assertEqual(res.returncode, 125)
        self.assertIn('The container name "/dup" is already in use', res.stderr)
        res = contain("run", "-d", "--name", "bad name!", "--rootfs", rootfs(), *NET, "--", "true")
        self.assertEqual(res.returncode, 125)
        self.assertIn("Invalid container name", res.stderr)

    def test_ps_columns_filters_and_formats(self):
        cid = self.run_d("pslong", "sleep", "100")
        self.names.append("psdone")
        contain("run", "--name", "psdone", "--rootfs", rootfs(), *NET, "--", "sh", "-c", "exit 3")
        out = contain("ps").stdout
        self.assertEqual(out.splitlines()[0].split(),
                         ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                          "NAMES"])
        self.assertIn(cid[:12], out)
        self.assertNotIn("psdone", out)
        self.assertRegex(contain("ps", "-a").stdout, r"Exited \(3\) .* ago\s+psdone")
        self.assertRegex(out, r"Up (Less than a second|\d+ seconds?)\s+pslong")
        self.assertIn(cid[:12], contain("ps", "-q").stdout.split())
        self.assertIn(cid, contain("ps", "-q", "--no-trunc").stdout.split())
        line = contain("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
        self.assertRegex(line, rf"{cid[:12]} pslong Up ")
        rows = [json.loads(x) for x in contain("ps", "-a", "--format", "json").stdout.splitlines()]
        row = next(r for r in rows if r["Names"] == "pslong")
        self.assertGreater(row["Pid"], 0)
        self.assertIn("Image", row)
        self.assertIn("CreatedAt", row)

    def test_state_survives_a_killed_monitor_without_phantoms(self):
        self.run_d("crash", "sleep", "100")
        cid = self.inspect("crash")["Id"]
        with open(os.path.join(support.STATE_ROOT, "containers", cid, "state.json")) as f:
            monitor = json.load(f)["monitor_pid"]
        pid = self.state_of("crash")["Pid"]
        os.kill(monitor, signal.SIGKILL)
        # the parent-death signal guards setup only: the command outlives
        # its monitor (as a container outlives a killed containerd-shim)
        self.wait_until(lambda: not os.path.exists(f"/proc/{monitor}"), what="monitor gone")
        self.assertEqual(self.state_of("crash")["Status"], "running")
        self.assertTrue(os.path.exists(f"/proc/{pid}"))
        os.kill(pid, signal.SIGKILL)
        # nobody records its exit: it is exited, code unknown (255), no phantom
        self.wait_until(lambda: self.state_of("crash")["Status"] == "exited", what="exited")
        self.assertIn("Exited (255)", contain("ps", "-a").stdout)
        self.assertNotIn("crash", contain("ps").stdout)
        res = contain("rm", "crash")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(support.cgroup_dirs(), [])

    def test_stale_record_after_reboot_is_not_running(self):
        cid = self.run_d("reboot", "sleep", "100")
        path = os.path.join(support.STATE_ROOT, "containers", cid, "state.json")
        pid = self.state_of("reboot")["Pid"]
        with open(path) as f:
            st = json.load(f)
        st["boot_id"] = "00000000-0000-0000-0000-000000000000"  # as if the host rebooted
        with open(path, "w") as f:
            json.dump(st, f)
        self.assertEqual(self.state_of("reboot")["Status"], "exited")
        os.kill(pid, signal.SIGKILL)


@requires_root
class CreateStartTest(Lifecycle):
    def test_create_then_start_attached(self):
        self.names.append("job")
        res = contain("create", "--name", "job", "--rootfs", rootfs(), *NET, "--",
                      "sh", "-c", "echo done; exit 6")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.state_of("job")["Status"], "created")
        self.assertIn("Created", contain("ps", "-a").stdout)
        # as with Docker and runc, the cgroup is made when the container starts
        self.assertEqual(support.cgroup_dirs(), [])
        res = contain("start", "-a", "job")
        self.assertEqual(res.stdout, "done\n")
        self.assertEqual(res.returncode, 6)
        st = self.state_of("job")
        self.assertEqual((st["Status"], st["ExitCode"]), ("exited", 6))
        self.assertNotEqual(st["FinishedAt"], "0001-01-01T00:00:00Z")
        # start again: runs a second time
        res = contain("start", "-a", "job")
        self.assertEqual(res.stdout, "done\n")

    def test_run_rm_detached_removes_itself(self):
        res = contain("run", "-d", "--rm", "--name", "gone", "--rootfs", rootfs(), *NET,
                      "--", "true")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.wait_until(lambda: contain("inspect", "gone").returncode != 0, what="removal")

    def test_start_failure_is_reported(self):
        self.names.append("broken")
        contain("create", "--name", "broken", "--rootfs", rootfs(), *NET, "--", "nope")
        res = contain("start", "broken")
        # start goes on to every name: a name that fails is exit 1 (Docker's rule)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("executable file not found", res.stderr)


@requires_root
class StopKillRmWaitTest(Lifecycle):
    def test_stop_sends_sigterm_then_sigkill(self):
        self.run_d("polite", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
        t0 = time.monotonic()
        res = contain("stop", "polite")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.state_of("polite")["ExitCode"], 0)
        # PID 1 without a handler ignores SIGTERM: -t 1 then SIGKILL
        self.run_d("stubborn", "sleep", "100")
        t0 = time.monotonic()
        contain("stop", "-t", "1", "stubborn")
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 5)
        self.assertEqual(self.state_of("stubborn")["ExitCode"], 137)
        # stopping an exited container is not an error
        self.assertEqual(contain("stop", "stubborn").returncode, 0)

    def test_stop_signal_from_flag(self):
        self.run_d("usr1", "sh", "-c", "trap 'exit 9' USR1; while true; do sleep 0.1; done",
                   opts=("--stop-signal", "SIGUSR1"))
        contain("stop", "usr1")
        self.assertEqual(self.state_of("usr1")["ExitCode"], 9)

    def test_kill_with_signal_and_wait(self):
        self.run_d("victim", "sleep", "100")
        waiter = subprocess.Popen(support.contain_cmd("wait", "victim"), env=support.env(),
                                  stdout=subprocess.PIPE, text=True)
        res = contain("kill", "-s", "KILL", "victim")
        self.assertEqual(res.returncode, 0, res.stderr)
        out, _ = waiter.communicate(timeout=10)
        self.assertEqual(out.strip(), "137")
        res = contain("kill", "victim")
        self.assertEqual(res.returncode, 1)        # a name that failed (Docker's rule)
        self.assertIn("is not running", res.stderr)

    def test_rm_refuses_running_without_force(self):
        self.run_d("busy", "sleep", "100")
        res = contain("rm", "busy")
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("cannot remove a running container", res.stderr)
        res = contain("rm", "-f", "busy")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(contain("inspect", "busy").returncode, 125)
        self.assertEqual(support.cgroup_dirs(), [])


@requires_root
class LogsTest(Lifecycle):
    def test_stdout_and_stderr_apart_json_lines_tail_timestamps(self):
        cid = self.run_d("talk", "sh", "-c", "echo out1; echo err1 >&2; echo out2; sleep 100")
        self.wait_until(lambda: "out2" in contain("logs", "talk").stdout, what="logs")
        res = contain("logs", "talk")
        self.assertEqual(res.stdout, "out1\nout2\n")
        self.assertEqual(res.stderr, "err1\n")
        path = os.path.join(support.STATE_ROOT, "containers", cid, "container.log")
        entries = [json.loads(line) for line in open(path)]
        self.assertEqual({e["stream"] for e in entries}, {"stdout", "stderr"})
        self.assertTrue(all(set(e) == {"log", "stream", "time"} for e in entries))
        res = contain("logs", "--tail", "1", "-t", "talk")
        self.assertRegex(res.stdout + res.stderr, r"^\d{4}-\d\d-\d\dT[\d:.]+Z (out2|err1)\n$")
        res = contain("logs", "--since", "1h", "talk")
        self.assertIn("out1", res.stdout)

    def test_attached_run_keeps_its_output_for_logs(self):
        self.names.append("fg")
        res = contain("run", "--name", "fg", "--rootfs", rootfs(), *NET, "--",
                      "sh", "-c", "echo out; echo err >&2; exit 3")
        self.assertEqual((res.stdout, res.stderr, res.returncode), ("out\n", "err\n", 3))
        res = contain("logs", "fg")
        self.assertEqual((res.stdout, res.stderr), ("out\n", "err\n"))

    def test_follow_until_exit(self):
        self.run_d("follow", "sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.2; done")
        res = contain("logs", "-f", "follow", timeout=15)
        self.assertEqual(res.stdout, "n1\nn2\nn3\n")

    def test_rotation_bounds_the_log(self):
        cid = self.run_d("chatty", "sh", "-c", "i=0; while [ $i -lt 3000 ]; do "
                         "echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
                         opts=("--log-opt", "max-size=20k", "--log-opt", "max-file=2"))
        self.wait_until(lambda: self.state_of("chatty")["Status"] == "exited", what="exit")
        d = os.path.join(support.STATE_ROOT, "containers", cid)
        logs = [n for n in os.listdir(d) if n.startswith("container.log")]
        self.assertEqual(sorted(logs), ["container.log", "container.log.1"])
        self.assertLessEqual(sum(os.path.getsize(os.path.join(d, n)) for n in logs), 40 * 1024)
        self.assertTrue(contain("logs", "chatty").stdout.endswith("line-2999-xxxxxxxxxxxxxxxxxxxx\n"))


@requires_root
class ExecTest(Lifecycle):
    def test_exec_joins_namespaces_cgroup_and_env(self):
        self.run_d("host1", "sleep", "100", opts=("-e", "FROM_RUN=1", "--hostname", "boxy"))
        res = contain("exec", "-e", "FROM_EXEC=2", "host1", "sh", "-c",
                      "hostname; echo $FROM_RUN $FROM_EXEC; cat /proc/self/cgroup | head -1; "
                      "ps -o pid,comm | grep sleep")
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.splitlines()
        self.assertEqual(lines[0], "boxy")
        self.assertEqual(lines[1], "1 2")
        self.assertTrue(lines[2].endswith(":/"), lines[2])
        self.assertRegex(lines[3], r"^\s*1 sleep")
        for ns in ("pid", "mnt", "net", "uts", "ipc"):
            inside = contain("exec", "host1", "readlink", f"/proc/self/ns/{ns}").stdout.strip()
            pid = self.state_of("host1")["Pid"]
            self.assertEqual(inside, os.readlink(f"/proc/{pid}/ns/{ns}"), ns)

    def test_exec_exit_code_workdir_user(self):
        self.run_d("ex", "sleep", "100")
        self.assertEqual(contain("exec", "ex", "sh", "-c", "exit 4").returncode, 4)
        self.assertEqual(contain("exec", "-w", "/tmp", "ex", "pwd").stdout, "/tmp\n")
        self.assertIn("uid=1000", contain("exec", "-u", "app", "ex", "id").stdout)
        res = contain("exec", "ex", "nope")
        self.assertEqual(res.returncode, 127)

    def test_exec_leaks_no_host_fd_and_is_not_dumpable_while_joining(self):
        self.run_d("fds", "sleep", "100")
        extra = os.open("/etc/hostname", os.O_RDONLY)  # inherited by the CLI
        try:
            res = contain("exec", "fds", "ls", "/proc/self/fd", pass_fds=(extra,))
        finally:
            os.close(extra)
        self.assertEqual(sorted(res.stdout.split()), ["0", "1", "2", "3"])  # 3: ls's dir fd
        res = contain("exec", "fds", "sh", "-c", "readlink /proc/self/cwd; ls -l /proc/self/fd")
        self.assertNotIn(support.WORK, res.stdout)
        self.assertTrue(res.stdout.startswith("/\n"), res.stdout)

    def test_exec_detached_and_errors(self):
        self.run_d("exd", "sleep", "100")
        res = contain("exec", "-d", "exd", "sh", "-c", "sleep 0.3; touch /tmp/marker")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.wait_until(lambda: contain("exec", "exd", "test", "-e", "/tmp/marker").returncode == 0,
                        what="detached exec")
        res = contain("exec", "exd")
        self.assertEqual(res.returncode, 125)
        self.assertIn("requires at least 2 arguments", res.stderr)
        contain("stop", "-t", "0", "exd")
        res = contain("exec", "exd", "true")
        self.assertEqual(res.returncode, 125)
        self.assertIn("is not running", res.stderr)
        res = contain("exec", "nosuch", "true")
        self.assertIn("No such container: nosuch", res.stderr)


@requires_root
class InitAndRestartTest(Lifecycle):
    def test_init_reaps_orphans_and_forwards_sigterm(self):
        # the shell leaves 5 orphaned children that exit at once: zombies without --init
        script = ("trap 'echo TERM received; exit 0' TERM; "
                  "for i in 1 2 3 4 5; do (sleep 0.1 &) ; done; "
                  "while true; do sleep 0.1; done")
        self.run_d("reaper", "sh", "-c", script, opts=("--init",))
        time.sleep(1)
        ps = contain("exec", "reaper", "ps", "-o", "pid,stat,comm").stdout
        self.assertNotIn(" Z ", ps.replace("\t", " "))
        self.assertEqual(ps.count("Z"), 0, ps)
        t0 = time.monotonic()
        contain("stop", "reaper")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn("TERM received", contain("logs", "reaper").stdout)
        self.assertEqual(self.state_of("reaper")["ExitCode"], 0)

    def test_without_init_orphans_stay_zombies(self):
        self.run_d("noreaper", "sh", "-c", "(sleep 0.1 &); exec sleep 100")
        time.sleep(0.8)
        ps = contain("exec", "noreaper", "ps", "-o", "stat,comm").stdout
        self.assertIn("Z", ps)

    def test_restart_on_failure_with_limit(self):
        self.run_d("flaky", "sh", "-c", "echo run; exit 1", opts=("--restart", "on-failure:2"))
        self.wait_until(lambda: self.state_of("flaky")["Status"] == "exited"
                        and self.inspect("flaky")["RestartCount"] == 2, timeout=20,
                        what="two restarts")
        time.sleep(0.5)
        self.assertEqual(contain("logs", "flaky").stdout, "run\nrun\nrun\n")

    def test_restart_always_respects_stop(self):
        self.run_d("again", "sh", "-c", "sleep 0.2", opts=("--restart", "always"))
        self.wait_until(lambda: self.inspect("again")["RestartCount"] >= 2, timeout=20,
                        what="restarts")
        contain("stop", "-t", "1", "again")
        count = self.inspect("again")["RestartCount"]
        time.sleep(1)
        self.assertEqual(self.inspect("again")["RestartCount"], count)
        self.assertEqual(self.state_of("again")["Status"], "exited")


@requires_root
class ConcurrencyTest(Lifecycle):
    def test_twenty_parallel_run_d(self):
        names = [f"par{i}" for i in range(20)]
        self.names += names
        procs = [subprocess.Popen(support.contain_cmd("run", "-d", "--name", n, "--rootfs",
                                                      rootfs(), *NET, "--", "sleep", "100"),
                                  env=support.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for n in names]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
        self.assertEqual([r[2] for r in results], [0] * 20, [r[1] for r in results if r[2]])
        ids = {r[0].strip() for r in results}
        self.assertEqual(len(ids), 20)
        ps = contain("ps", "--format", "{{.Names}}").stdout.split()
        self.assertEqual(sorted(ps), sorted(names))

    def test_same_name_raced_twice_gives_one_container(self):
        self.names.append("race")
        procs = [subprocess.Popen(support.contain_cmd("run", "-d", "--name", "race", "--rootfs",
                                                      rootfs(), *NET, "--", "sleep", "100"),
                                  env=support.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        codes = sorted(p.wait(timeout=60) for p in procs)
        self.assertEqual(codes, [0, 125, 125, 125])

    def test_concurrent_stop_and_rm_on_one_container(self):
        self.run_d("contended", "sleep", "100")
        procs = [subprocess.Popen(support.contain_cmd(*cmd), env=support.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for cmd in (("stop", "-t", "1", "contended"), ("rm", "-f", "contended"),
                             ("stop", "contended"))]
        for p in procs:
            p.wait(timeout=60)
        contain("rm", "-f", "contended")
        self.assertEqual(contain("inspect", "contended").returncode, 125)


if __name__ == "__main__":
    unittest.main()
