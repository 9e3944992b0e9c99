"""Real engines drive the runtime under test: podman 4.3 and containerd 1.6.

The runtime is $CONTAIN_TEST_RUNTIME (an absolute path to a runc-compatible
program; /usr/sbin/runc is the reference), else contain itself through a
`contain-runc` symlink.  Each class has one private sandbox (net + mount +
pid namespaces, /run on tmpfs, its own cgroup parent) with one engine store
in it; everything goes when the class ends.  See tests/engines.py.
"""

import fcntl
import os
import pty
import subprocess
import termios
import time
import unittest

from tests import engines, support

BUSYBOX = "localhost/busybox:latest"
# a PID 1 that ends on SIGTERM (the kernel ignores an unhandled one for it)
SERVE = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


def wait_for(check, what, timeout=30):
    """Poll check() until it returns a true value; fail saying `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what}: not so after {timeout} s (last: {last!r})")


def frozen_states(cgroup, marker):
    """freezer.state of every cgroup below the test's parent whose name
    contains marker (the container's id)."""
    top = os.path.join(engines.CGROUP_ROOT, "freezer", cgroup.name)
    states = []
    for dirpath, _, _ in os.walk(top):
        if marker in os.path.basename(dirpath):
            with open(os.path.join(dirpath, "freezer.state")) as f:
                states.append(f.read().strip())
    return states


class EngineCase(unittest.TestCase):
    """One sandbox per class; subclasses set up their engine in it."""
    needs = ()

    @classmethod
    def setUpClass(cls):
        reason = engines.missing("unshare", "nsenter", "ip", *cls.needs)
        if reason:
            raise unittest.SkipTest(reason)
        cls.sb = engines.Sandbox()
        cls.addClassCleanup(cls._stop_sandbox)
        cls.sb.start()
        cls.runtime = engines.runtime(cls.sb.tmp)
        if not os.access(cls.runtime, os.X_OK):
            raise AssertionError(f"runtime under test not executable: {cls.runtime}")
        cls.layer = engines.rootfs_tar(support.busybox_rootfs(),
                                       os.path.join(cls.sb.tmp, "busybox-rootfs.tar"))

    @classmethod
    def _stop_sandbox(cls):
        cls.stop_engine()
        problems = cls.sb.stop()
        if problems:
            raise AssertionError(f"sandbox left behind: {problems}")

    @classmethod
    def stop_engine(cls):
        pass

    def in_pty(self, argv, env=None, timeout=60):
        """Run argv inside the sandbox on a new pseudo-terminal (its
        controlling terminal); returns (exit status, output without the
        \\r that each terminal on the way adds before \\n)."""
        master, slave = pty.openpty()
        try:
            def ctty():
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            proc = self.sb.popen(argv, preexec=ctty, stdin=slave, stdout=slave,
                                 stderr=slave, start_new_session=True, env=env)
            os.close(slave)
            slave = None
            out = support.read_pty(master, timeout=timeout)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"{argv} still running after {timeout} s: {out!r}")
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)
        return rc, out.replace("\r", "")

    def assertInParent(self, cgroup_text):
        """/proc/self/cgroup of a container: every hierarchy below the
        test's parent (not the caller's, not the machine's)."""
        lines = [line for line in cgroup_text.splitlines() if line.strip()]
        self.assertTrue(lines, "no /proc/self/cgroup output")
        for line in lines:
            self.assertIn(f":{self.sb.cgroup.path}/", line, cgroup_text)


class PodmanTest(EngineCase):
    needs = ("podman", "conmon")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pm = engines.Podman(cls.sb, cls.runtime)
        cls.pm.import_rootfs(cls.layer, BUSYBOX)

    @classmethod
    def stop_engine(cls):
        pm = getattr(cls, "pm", None)
        if pm is not None:
            pm("rm", "--all", "--force", "--time", "0", timeout=60)

    def podman(self, *args, ok=True, **kw):
        res = self.pm(*args, **kw)
        if ok and res.returncode != 0:
            self.fail(f"podman {' '.join(args)} exited {res.returncode}: {res.stderr}")
        return res

    def detached(self, name, script=SERVE):
        self.addCleanup(self.pm, "rm", "--force", "--time", "0", name)
        self.podman("run", "-d", "--name", name, *self.pm.run_args(), BUSYBOX,
                    "sh", "-c", script)
        return name

    def status(self, name):
        return self.podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()

    def test_run_rm_output_and_exit_code(self):
        res = self.pm("run", "--rm", "--name", "rm-exit", *self.pm.run_args(), BUSYBOX,
                      "sh", "-c", "echo hi; echo oops >&2; exit 3")
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertEqual(res.stdout, "hi\n")
        self.assertIn("oops", res.stderr)
        # --rm: the container is gone
        self.assertEqual(self.pm("container", "exists", "rm-exit").returncode, 1)

    def test_run_in_cgroup_parent(self):
        res = self.podman("run", "--rm", *self.pm.run_args(), BUSYBOX, "cat", "/proc/self/cgroup")
        self.assertInParent(res.stdout)

    def test_run_tty(self):
        rc, out = self.in_pty(self.pm.argv("run", "--rm", "-t", *self.pm.run_args(), BUSYBOX,
                                           "sh", "-c", "tty; test -t 1 && echo isatty; exit 2"),
                              env=self.pm.env)
        self.assertEqual(rc, 2, out)
        self.assertIn("/dev/pts/0\n", out)
        self.assertIn("isatty\n", out)

    def test_only_stdio_fds(self):
        res = self.podman("run", "--rm", *self.pm.run_args(), BUSYBOX, "ls", "/proc/self/fd")
        self.assertEqual(res.stdout.split(), ["0", "1", "2", "3"], res.stdout)

    def test_detach_then_exec(self):
        name = self.detached("exec-me")
        self.assertEqual(self.status(name), "running")
        res = self.pm("exec", name, "sh", "-c", "echo from-exec; echo err >&2; exit 4")
        self.assertEqual(res.returncode, 4, res.stderr)
        self.assertEqual(res.stdout, "from-exec\n")
        self.assertIn("err", res.stderr)
        res = self.podman("exec", name, "ls", "/proc/self/fd")
        self.assertEqual(res.stdout.split(), ["0", "1", "2", "3"], res.stdout)
        res = self.podman("exec", name, "cat", "/proc/self/cgroup")
        self.assertInParent(res.stdout)

    def test_exec_tty(self):
        name = self.detached("exec-tty")
        rc, out = self.in_pty(self.pm.argv("exec", "-t", name,
                                           "sh", "-c", "tty; test -t 0 && echo isatty; exit 5"),
                              env=self.pm.env)
        self.assertEqual(rc, 5, out)
        self.assertRegex(out, r"/dev/pts/\d+\n")
        self.assertIn("isatty\n", out)

    def test_pause_unpause(self):
        name = self.detached("pause-me")
        cid = self.podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
        self.podman("pause", name)
        self.assertEqual(self.status(name), "paused")
        self.assertEqual(frozen_states(self.sb.cgroup, cid), ["FROZEN"])
        self.podman("unpause", name)
        self.assertEqual(self.status(name), "running")
        self.assertEqual(frozen_states(self.sb.cgroup, cid), ["THAWED"])
        res = self.podman("exec", name, "echo", "alive")
        self.assertEqual(res.stdout, "alive\n")

    def test_stop_then_rm(self):
        name = self.detached("stop-me")
        self.podman("stop", name)
        self.assertEqual(self.status(name), "exited")
        # the trap ran: SIGTERM reached PID 1, nothing had to SIGKILL it
        code = self.podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        self.assertEqual(code, "0")
        self.podman("rm", name)
        self.assertEqual(self.pm("container", "exists", name).returncode, 1)

    def test_wait_exit_code(self):
        name = self.detached("wait-me", "sleep 0.2; exit 7")
        res = self.podman("wait", name)
        self.assertEqual(res.stdout.strip(), "7")
        res = self.podman("logs", name)
        self.assertEqual(res.stdout, "")


class ContainerdTest(EngineCase):
    needs = ("containerd", "ctr", "containerd-shim-runc-v2")
    IMAGE = "docker.io/library/busybox:latest"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cd = engines.Containerd(cls.sb, cls.runtime)
        cls.cd.start()
        archive = engines.docker_archive(cls.layer, os.path.join(cls.sb.tmp, "busybox.tar"))
        cls.cd.import_image(archive, cls.IMAGE)

    @classmethod
    def stop_engine(cls):
        cd = getattr(cls, "cd", None)
        if cd is not None:
            cd.stop()

    def ctr(self, *args, ok=True, **kw):
        res = self.cd.ctr(*args, **kw)
        if ok and res.returncode != 0:
            self.fail(f"ctr {' '.join(args)} exited {res.returncode}: {res.stderr}\n"
                      f"containerd log:\n{self.cd.tail_log()}")
        return res

    def remove(self, cid):
        self.cd.ctr("task", "kill", "-a", "-s", "KILL", cid)
        wait_for(lambda: self.cd.task_status(cid) in (None, "STOPPED"), f"{cid} stopped")
        self.cd.ctr("task", "delete", cid)
        self.cd.ctr("container", "delete", cid)

    def detached(self, cid, script=SERVE, running=True):
        self.addCleanup(self.remove, cid)
        self.ctr("run", "-d", *self.cd.run_args(cid), self.IMAGE, cid, "sh", "-c", script)
        if running:
            wait_for(lambda: self.cd.task_status(cid) == "RUNNING", f"task {cid} running")
        return cid

    def containers(self):
        return self.ctr("container", "ls", "-q").stdout.split()

    def test_run_rm_output_and_exit_code(self):
        res = self.cd.ctr("run", "--rm", *self.cd.run_args("rm-exit"), self.IMAGE, "rm-exit",
                          "sh", "-c", "echo hi; echo oops >&2; exit 3")
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertEqual(res.stdout, "hi\n")
        self.assertIn("oops", res.stderr)
        self.assertNotIn("rm-exit", self.containers())

    def test_run_in_cgroup_parent(self):
        res = self.ctr("run", "--rm", *self.cd.run_args("cg"), self.IMAGE, "cg",
                       "cat", "/proc/self/cgroup")
        self.assertInParent(res.stdout)

    def test_only_stdio_fds(self):
        res = self.ctr("run", "--rm", *self.cd.run_args("fds"), self.IMAGE, "fds",
                       "ls", "/proc/self/fd")
        self.assertEqual(res.stdout.split(), ["0", "1", "2", "3"], res.stdout)

    def test_run_tty(self):
        rc, out = self.in_pty(self.cd.argv("run", "--rm", "-t", *self.cd.run_args("tty"),
                                           self.IMAGE, "tty",
                                           "sh", "-c", "tty; test -t 1 && echo isatty; exit 2"),
                              env=self.sb.env)
        self.assertEqual(rc, 2, out)
        self.assertIn("/dev/pts/0\n", out)
        self.assertIn("isatty\n", out)

    def test_exec_and_ps(self):
        cid = self.detached("exec-me")
        res = self.cd.ctr("task", "exec", "--exec-id", "e1", cid,
                          "sh", "-c", "echo from-exec; echo err >&2; exit 4")
        self.assertEqual(res.returncode, 4, res.stderr)
        self.assertEqual(res.stdout, "from-exec\n")
        self.assertIn("err", res.stderr)
        res = self.ctr("task", "exec", "--exec-id", "e2", cid, "ls", "/proc/self/fd")
        self.assertEqual(res.stdout.split(), ["0", "1", "2", "3"], res.stdout)
        # ps: PID 1 of the task, and while an exec runs, that one too
        init = self.ctr("task", "ls").stdout
        pid = next(line.split()[1] for line in init.splitlines()[1:]
                   if line.split()[0] == cid)
        rows = self.ctr("task", "ps", cid).stdout.splitlines()
        self.assertEqual(rows[0].split(), ["PID", "INFO"])
        self.assertIn(pid, [r.split()[0] for r in rows[1:]])
        long_exec = self.cd.sb.popen(self.cd.argv("task", "exec", "--exec-id", "e3", cid,
                                                  "sleep", "30"),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     env=self.sb.env)
        try:
            wait_for(lambda: len(self.ctr("task", "ps", cid).stdout.splitlines()) > len(rows),
                     "the exec'd sleep listed by ctr task ps")
            self.ctr("task", "kill", "--exec-id", "e3", "-s", "KILL", cid)
            rc = long_exec.wait(timeout=30)
            self.assertNotEqual(rc, 0)
        finally:
            if long_exec.poll() is None:
                long_exec.kill()
                long_exec.wait()

    def test_exec_tty(self):
        cid = self.detached("exec-tty")
        rc, out = self.in_pty(self.cd.argv("task", "exec", "-t", "--exec-id", "t1", cid,
                                           "sh", "-c", "tty; test -t 0 && echo isatty; exit 5"),
                              env=self.sb.env)
        self.assertEqual(rc, 5, out)
        self.assertRegex(out, r"/dev/pts/\d+\n")
        self.assertIn("isatty\n", out)

    def test_pause_resume(self):
        cid = self.detached("pause-me")
        self.ctr("task", "pause", cid)
        self.assertEqual(self.cd.task_status(cid), "PAUSED")
        self.assertEqual(frozen_states(self.sb.cgroup, cid), ["FROZEN"])
        self.ctr("task", "resume", cid)
        self.assertEqual(self.cd.task_status(cid), "RUNNING")
        self.assertEqual(frozen_states(self.sb.cgroup, cid), ["THAWED"])
        res = self.ctr("task", "exec", "--exec-id", "alive", cid, "echo", "alive")
        self.assertEqual(res.stdout, "alive\n")

    def test_kill_then_delete(self):
        cid = self.detached("kill-me")
        self.ctr("task", "kill", cid)          # SIGTERM: the trap exits 0
        wait_for(lambda: self.cd.task_status(cid) == "STOPPED", f"{cid} stopped by SIGTERM")
        res = self.ctr("task", "delete", cid)
        # ctr prints nothing for status 0; the task is gone either way
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIsNone(self.cd.task_status(cid))
        self.ctr("container", "delete", cid)
        self.assertNotIn(cid, self.containers())

    def test_kill_all(self):
        # a second process that ignores SIGTERM, so only --all with KILL ends both
        cid = self.detached("kill-all", "(trap '' TERM; exec sleep 1000) & " + SERVE)
        wait_for(lambda: len(self.ctr("task", "ps", cid).stdout.splitlines()) >= 3,
                 "both processes listed by ctr task ps")
        self.ctr("task", "kill", "--all", "--signal", "KILL", cid)
        wait_for(lambda: self.cd.task_status(cid) == "STOPPED", f"{cid} stopped by kill --all")
        rows = self.ctr("task", "ps", cid, ok=False).stdout.splitlines()[1:]
        self.assertEqual(rows, [], "processes left after kill --all")
        res = self.ctr("task", "delete", cid)
        self.assertEqual(res.returncode, 0)

    def test_wait_exit_status(self):
        cid = self.detached("wait-me", "sleep 0.2; exit 7", running=False)
        wait_for(lambda: self.cd.task_status(cid) == "STOPPED", f"{cid} stopped")
        res = self.cd.ctr("task", "delete", cid)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("7", res.stdout + res.stderr)


if __name__ == "__main__":
    unittest.main()
