"""`contain run`: an isolated container from a root filesystem (as root,
against the real kernel, checked from inside with busybox's own tools)."""

import os
import tempfile
import pty
import signal
import subprocess
import tarfile
import time
import unittest

from tests import support
from tests.support import contain, requires_root

ROOTFS_ARGS = ("--network", "none")


def run(*cmd, rootfs=None, opts=(), **kw):
    """contain run --rm --rootfs ROOTFS OPTS -- CMD..."""
    return contain("run", "--rm", "--rootfs", rootfs or support.busybox_rootfs(),
                   *ROOTFS_ARGS, *opts, "--", *cmd, **kw)


class LeakChecks:
    """Assertions that nothing of a container is left behind."""

    def setUp(self):
        self.before = set(os.listdir(support.WORK))

    def assertNothingLeft(self):
        support.assert_no_container_left(self)
        new = set(os.listdir(support.WORK)) - self.before - {"state", "busybox-rootfs"}
        self.assertEqual([n for n in new if not n.startswith(("keep-", "rootfs-"))], [],
                         "temporary files left behind")


@requires_root
class NamespaceTest(LeakChecks, unittest.TestCase):
    def test_command_is_pid_1_and_ps_shows_only_the_container(self):
        res = run("sh", "-c", "echo $$; ps -o pid,comm; true")
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.split("\n")
        self.assertEqual(lines[0], "1")
        pids = [line.split()[0] for line in lines[2:] if line.strip()]
        self.assertEqual(pids, ["1", pids[-1]])  # sh and ps: nothing of the host
        self.assertNothingLeft()

    def test_hostname_flag_and_default_short_id(self):
        res = run("hostname", opts=("--hostname", "sandbox"))
        self.assertEqual(res.stdout.strip(), "sandbox")
        res = run("sh", "-c", "hostname; echo $HOSTNAME")
        name, env_name = res.stdout.split()
        self.assertRegex(name, r"^[0-9a-f]{12}$")
        self.assertEqual(env_name, name)
        self.assertNotEqual(name, os.uname().nodename)

    def test_namespaces_differ_from_the_host(self):
        res = run("sh", "-c", "for n in pid uts mnt ipc net cgroup; do "
                  "echo $n $(readlink /proc/self/ns/$n); done")
        self.assertEqual(res.returncode, 0, res.stderr)
        for line in res.stdout.splitlines():
            name, inside = line.split()
            self.assertNotEqual(inside, os.readlink(f"/proc/self/ns/{name}"), name)

    def test_network_is_loopback_only_and_up(self):
        res = run("ip", "-o", "link")
        links = [line.split(":")[1].strip() for line in res.stdout.splitlines()]
        self.assertEqual(links, ["lo"])
        self.assertIn("UP", res.stdout)
        res = run("ping", "-c", "1", "-W", "1", "127.0.0.1")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def test_cgroup_namespace_shows_own_cgroup_as_root(self):
        res = run("cat", "/proc/self/cgroup")
        for line in res.stdout.splitlines():
            self.assertTrue(line.endswith(":/"), line)


@requires_root
class RootFilesystemTest(LeakChecks, unittest.TestCase):
    def test_host_marker_is_invisible_also_through_proc(self):
        marker_dir = os.path.join(support.WORK, "keep-marker")
        os.makedirs(marker_dir, exist_ok=True)
        marker = os.path.join(marker_dir, "host-secret-marker")
        with open(marker, "w") as f:
            f.write("secret")
        script = (f"test -e {marker} && echo VISIBLE; "
                  f"ls /proc/*/root{marker} 2>/dev/null && echo VISIBLE-PROC; "
                  f"grep -r host-secret /proc/*/mountinfo && echo VISIBLE-MOUNTS; "
                  "cat /proc/1/mountinfo | wc -l; echo done")
        res = run("sh", "-c", script)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNotIn("VISIBLE", res.stdout)
        self.assertIn("done", res.stdout)
        # the old root was detached: every mount point is a container path
        res = run("cat", "/proc/self/mountinfo")
        points = [line.split()[4] for line in res.stdout.splitlines()]
        self.assertEqual(points[0], "/")
        allowed = ("/proc", "/dev", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
        for p in points[1:]:
            self.assertTrue(p.startswith(allowed), p)

    def test_mounts_inside_do_not_propagate_to_host(self):
        before = open("/proc/self/mountinfo").read().count("\n")
        res = run("sh", "-c", "mount -t tmpfs none /tmp && echo ok",
                  opts=("--privileged",))
        self.assertIn("ok", res.stdout, res.stderr)
        self.assertEqual(open("/proc/self/mountinfo").read().count("\n"), before)

    def test_tarball_rootfs_is_unpacked_and_removed(self):
        tarpath = os.path.join(support.WORK, "keep-rootfs.tar.gz")
        if not os.path.exists(tarpath):
            with tarfile.open(tarpath, "w:gz") as tar:
                tar.add(support.busybox_rootfs(), arcname=".")
        res = run("cat", "/etc/os-release", rootfs=tarpath)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("contain busybox", res.stdout)
        self.assertNothingLeft()

    def test_volumes_and_tmpfs(self):
        src = os.path.join(support.WORK, "keep-volume")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "from-host"), "w") as f:
            f.write("host data\n")
        res = run("sh", "-c", "cat /data/from-host; echo new > /data/from-container; "
                  "echo x > /ro/y 2>/dev/null || echo ro-refused; "
                  "grep ' /scratch ' /proc/mounts",
                  opts=("-v", f"{src}:/data", "-v", f"{src}:/ro:ro",
                        "--tmpfs", "/scratch:size=1m"))
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.splitlines()
        self.assertEqual(lines[:2], ["host data", "ro-refused"])
        self.assertRegex(lines[2], r"^tmpfs /scratch tmpfs rw,nosuid,nodev,noexec.*size=1024k")
        with open(os.path.join(src, "from-container")) as f:
            self.assertEqual(f.read(), "new\n")

    def test_volume_target_symlink_cannot_escape(self):
        rootfs = support.fresh_rootfs("vol-escape")
        os.symlink("/../../../../tmp", os.path.join(rootfs, "evil"))
        src = os.path.join(support.WORK, "keep-volume2")
        os.makedirs(src, exist_ok=True)
        before = set(os.listdir("/tmp"))
        res = run("sh", "-c", "ls /evil/target >/dev/null && echo mounted",
                  rootfs=rootfs, opts=("-v", f"{src}:/evil/target"))
        self.assertIn("mounted", res.stdout, res.stderr)
        # the target was made inside the rootfs, not in the host's /tmp
        self.assertTrue(os.path.isdir(os.path.join(rootfs, "tmp", "target")))
        self.assertEqual(set(os.listdir("/tmp")) - before, set())

    def test_read_only_rootfs(self):
        res = run("sh", "-c", "touch /newfile; echo $?", opts=("--read-only",))
        self.assertIn("Read-only file system", res.stderr)


@requires_root
class InsideMountsTest(unittest.TestCase):
    def setUp(self):
        res = run("cat", "/proc/mounts")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.mounts = {line.split()[1]: line.split() for line in res.stdout.splitlines()}

    def opts(self, path):
        return set(self.mounts[path][3].split(","))

    def test_proc_is_nosuid_noexec_nodev(self):
        self.assertEqual(self.mounts["/proc"][2], "proc")
        self.assertLessEqual({"nosuid", "noexec", "nodev"}, self.opts("/proc"))

    def test_sys_is_read_only(self):
        self.assertEqual(self.mounts["/sys"][2], "sysfs")
        self.assertIn("ro", self.opts("/sys"))

    def test_dev_is_a_small_tmpfs_with_pts_shm_mqueue(self):
        self.assertEqual(self.mounts["/dev"][2], "tmpfs")
        self.assertEqual(self.mounts["/dev/pts"][2], "devpts")
        self.assertIn("ptmxmode=666", self.opts("/dev/pts"))
        self.assertEqual(self.mounts["/dev/shm"][2], "tmpfs")
        self.assertEqual(self.mounts["/dev/mqueue"][2], "mqueue")

    def test_device_nodes_and_links(self):
        res = run("sh", "-c", "ls -l /dev; echo x > /dev/null && echo null-ok; "
                  "head -c 4 /dev/zero | wc -c; readlink /dev/fd; readlink /dev/stdin; "
                  "readlink /dev/ptmx")
        out = res.stdout
        for name in ("null", "zero", "full", "random", "urandom", "tty"):
            self.assertRegex(out, rf"(?m)^c.* {name}$")
        self.assertIn("null-ok", out)
        self.assertIn("/proc/self/fd\n/proc/self/fd/0\npts/ptmx", out)
        # nothing else: the host's disks are not there
        self.assertNotRegex(out, r"(?m)^b")


@requires_root
class HostBoundaryTest(LeakChecks, unittest.TestCase):
    """What a container inherits from the runtime (and must not)."""

    def test_read_only_bind_is_read_only_below_too(self):
        # -v SRC:DST:ro with a mount below SRC: the submount is read-only too
        src = tempfile.mkdtemp(dir=support.WORK, prefix="keep-ro-")
        sub = os.path.join(src, "sub")
        os.mkdir(sub)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", sub], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", sub], stderr=subprocess.DEVNULL)
        res = run("sh", "-c", "touch /data/top 2>/dev/null && echo top-written; "
                  "touch /data/sub/below 2>/dev/null && echo below-written; echo done",
                  opts=("-v", f"{src}:/data:ro"))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.strip(), "done")
        self.assertFalse(os.path.exists(os.path.join(sub, "below")))
        subprocess.run(["umount", sub], check=True)
        self.assertNothingLeft()

    def test_signals_start_at_default_none_blocked_or_ignored(self):
        # Python ignores SIGPIPE and SIGXFSZ; the command must not inherit that
        res = run("grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status")
        self.assertEqual(res.returncode, 0, res.stderr)
        got = dict(line.split(":\t") for line in res.stdout.splitlines())
        self.assertEqual(int(got["SigBlk"], 16), 0, res.stdout)
        self.assertEqual(int(got["SigIgn"], 16), 0, res.stdout)

    def test_no_new_privs_off_by_default_and_on_when_asked(self):
        for opts, want in (((), "0"), (("--security-opt", "no-new-privileges"), "1")):
            res = run("grep", "NoNewPrivs", "/proc/self/status", opts=opts)
            self.assertEqual(res.stdout.split(), ["NoNewPrivs:", want], opts)

    def test_fds_of_the_caller_never_reach_the_container_however_high(self):
        # above 65536 where the hard limit allows it, else the highest fd there is
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        high = 70000 if hard > 70000 else hard - 1
        fd = os.open("/dev/null", os.O_RDONLY)
        self.addCleanup(os.close, fd)

        def give_high_fd():
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            os.dup2(fd, high, inheritable=True)
        res = subprocess.run(support.contain_cmd(
            "run", "--rm", "--rootfs", support.busybox_rootfs(), *ROOTFS_ARGS, "--",
            "ls", "/proc/self/fd"), env=support.env(), capture_output=True, text=True,
            preexec_fn=give_high_fd)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(sorted(res.stdout.split(), key=int), ["0", "1", "2", "3"])


@requires_root
class IdentityTest(unittest.TestCase):
    def test_env_flags_and_clean_environment(self):
        env_file = os.path.join(support.WORK, "keep-env")
        with open(env_file, "w") as f:
            f.write("# comment\nFROM_FILE=yes\n")
        res = run("env", opts=("-e", "GREETING=hi", "-e", "FROM_HOST", "-e", "UNSET_HOST_VAR",
                               "--env-file", env_file),
                  extra_env={"FROM_HOST": "host-value", "LEAK_ME": "no"})
        env = dict(line.split("=", 1) for line in res.stdout.splitlines())
        self.assertEqual(env["GREETING"], "hi")
        self.assertEqual(env["FROM_HOST"], "host-value")
        self.assertEqual(env["FROM_FILE"], "yes")
        self.assertNotIn("UNSET_HOST_VAR", env)
        self.assertNotIn("LEAK_ME", env)
        self.assertEqual(env["PATH"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        self.assertEqual(env["HOME"], "/root")
        self.assertIn("HOSTNAME", env)
        self.assertNotIn("TERM", env)

    def test_workdir_is_created_and_entered(self):
        res = run("pwd", opts=("-w", "/some/new/dir"))
        self.assertEqual(res.stdout.strip(), "/some/new/dir")

    def test_user_by_id_and_by_name(self):
        res = run("id", opts=("-u", "1000:1000"))
        self.assertIn("uid=1000", res.stdout)
        self.assertIn("gid=1000", res.stdout)
        res = run("sh", "-c", "id; echo $HOME", opts=("-u", "app"))
        self.assertIn("uid=1000(app) gid=1000(app)", res.stdout)
        self.assertIn("/home/app", res.stdout)
        res = run("id", opts=("-u", "nosuchuser"))
        self.assertEqual(res.returncode, 125)
        self.assertIn("unable to find user nosuchuser", res.stderr)


@requires_root
class LimitsTest(LeakChecks, unittest.TestCase):
    """The limits as the container sees them in its own /sys/fs/cgroup (the
    cgroup namespace makes its cgroup the root there): v1 files on a v1 or
    hybrid host, v2 files on a unified one."""

    V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    MEMORY = "/sys/fs/cgroup/memory.max" if V2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    PIDS = "/sys/fs/cgroup/" if V2 else "/sys/fs/cgroup/pids/"

    def test_limits_are_applied_in_the_containers_cgroup(self):
        if self.V2:
            from contain.core.cgroups.limits import cpu_shares_to_weight
            files = "cpu.max pids.max cpu.weight"
            expected = ["50000", "100000", "64", str(cpu_shares_to_weight(512))]
        else:
            files = ("cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us pids/pids.max "
                     "cpu/cpu.shares")
            expected = ["50000", "100000", "64", "512"]
        res = run("sh", "-c", "cd /sys/fs/cgroup && cat " + self.MEMORY + " " + files,
                  opts=("--memory", "64M", "--cpus", "0.5", "--pids-limit", "64",
                        "--cpu-shares", "512"))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), ["67108864"] + expected)
        self.assertNothingLeft()

    def test_memory_sizes_are_parsed_like_docker(self):
        for flag, expected in (("8192K", 8388608), ("64m", 67108864), ("1G", 1073741824),
                               ("64mb", 67108864), ("100000000b", 100000000 // 4096 * 4096)):
            res = run("cat", self.MEMORY, opts=("--memory", flag))
            self.assertEqual(res.stdout.strip(), str(expected), (flag, res.stderr))

    def test_pids_limit_stops_a_fork_loop(self):
        # pids.events: "max N", N the forks refused
        res = run("sh", "-c", "(for i in $(seq 40); do sleep 5 & done) 2>/dev/null; "
                  f"cat {self.PIDS}pids.current {self.PIDS}pids.events",
                  opts=("--pids", "10"))
        self.assertIn(int(res.stdout.split()[0]), (8, 9, 10), res.stdout)  # up to the limit
        self.assertNotEqual(res.stdout.split()[-1], "0", res.stdout)  # and was refused

    def test_memory_hog_is_killed(self):
        res = run("sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
                  opts=("--memory", "16m", "--memory-swap", "16m"))
        self.assertNotIn("survived", res.stdout)
        self.assertNothingLeft()


@requires_root
class ExitStatusTest(LeakChecks, unittest.TestCase):
    def test_exit_code_is_the_containers(self):
        self.assertEqual(run("sh", "-c", "exit 3").returncode, 3)
        self.assertEqual(run("true").returncode, 0)

    def test_not_found_127_and_not_executable_126(self):
        res = run("no-such-command")
        self.assertEqual(res.returncode, 127)
        self.assertEqual(res.stderr.strip(),
                         "contain: exec no-such-command: executable file not found in $PATH")
        res = run("/etc/passwd")
        self.assertEqual(res.returncode, 126)
        self.assertIn("Permission denied", res.stderr)
        self.assertNothingLeft()

    def test_killed_by_signal_gives_128_plus_n(self):
        proc = subprocess.Popen(support.contain_cmd("run", "--rm", "--rootfs",
                                                    support.busybox_rootfs(), *ROOTFS_ARGS,
                                                    "--", "sleep", "30"),
                                env=support.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        pid = support.wait_for_container_pid()
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 137, err)
        self.assertNothingLeft()

    def test_setup_failure_reports_the_step_with_exit_125(self):
        rootfs = support.fresh_rootfs("proc-symlink")
        os.rmdir(os.path.join(rootfs, "proc"))
        os.symlink("/", os.path.join(rootfs, "proc"))
        res = run("true", rootfs=rootfs)
        self.assertEqual(res.returncode, 125)
        lines = res.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, res.stderr)
        self.assertRegex(lines[0], r"^contain: mount /proc: .*symbolic link")
        self.assertNothingLeft()

    def test_workdir_that_is_a_file_is_a_runtime_error(self):
        res = run("true", opts=("-w", "/etc/passwd"))
        self.assertEqual(res.returncode, 125)
        self.assertIn("working directory /etc/passwd", res.stderr)


@requires_root
class TerminalAndSignalsTest(LeakChecks, unittest.TestCase):
    def spawn_in_pty(self, *args, rows=30, cols=100):
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(support.PYTHON, support.contain_cmd(*args), support.env())
        import fcntl
        import struct
        import termios
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        return pid, fd

    def read_until(self, fd, text, timeout=10):
        return support.read_pty(fd, text, timeout)

    def test_interactive_shell_with_tty(self):
        pid, fd = self.spawn_in_pty("run", "--rm", "-it", "--rootfs", support.busybox_rootfs(),
                                    *ROOTFS_ARGS, "--", "/bin/sh")
        try:
            os.write(fd, b"tty; stty size; echo TERM=$TERM; echo $((6*7))\n")
            out = self.read_until(fd, "42")
            self.assertIn("/dev/pts/0", out)
            self.assertIn("30 100", out)       # the window size was copied
            self.assertIn("TERM=xterm", out)
            self.assertIn("42", out)
            os.write(fd, b"exit 5\n")
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 5)
        finally:
            os.close(fd)
        self.assertNothingLeft()

    def test_window_size_changes_are_forwarded(self):
        pid, fd = self.spawn_in_pty("run", "--rm", "-it", "--rootfs", support.busybox_rootfs(),
                                    *ROOTFS_ARGS, "--", "/bin/sh")
        try:
            os.write(fd, b"echo READY\n")
            self.read_until(fd, "READY\r\n")
            import fcntl
            import struct
            import termios
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
            os.kill(pid, signal.SIGWINCH)
            time.sleep(0.3)
            os.write(fd, b"stty size; exit\n")
            out = self.read_until(fd, "50 132")
            self.assertIn("50 132", out)
            os.waitpid(pid, 0)
        finally:
            os.close(fd)

    def test_stdin_passes_with_i(self):
        res = contain("run", "--rm", "-i", "--rootfs", support.busybox_rootfs(), *ROOTFS_ARGS,
                      "--", "sh", "-c", "cat | tr a-z A-Z", input="hello\n")
        self.assertEqual(res.stdout, "HELLO\n")
        res = run("cat", input="hello\n")  # without -i stdin is empty
        self.assertEqual(res.stdout, "")

    def _signal_reaches_pid1(self, sig):
        script = (f"trap 'echo got {sig.name}; exit 7' {sig.name[3:]}; "
                  "echo ready; while true; do sleep 0.1; done")
        proc = subprocess.Popen(support.contain_cmd("run", "--rm", "--rootfs",
                                                    support.busybox_rootfs(), *ROOTFS_ARGS,
                                                    "--", "sh", "-c", script),
                                env=support.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.assertEqual(proc.stdout.readline().strip(), "ready")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        self.assertIn(f"got {sig.name}", out, err)
        self.assertEqual(proc.returncode, 7)
        self.assertNothingLeft()

    def test_sigterm_to_contain_reaches_pid1_and_cleans_up(self):
        self._signal_reaches_pid1(signal.SIGTERM)

    def test_sigint_and_sighup_reach_pid1(self):
        self._signal_reaches_pid1(signal.SIGINT)
        self._signal_reaches_pid1(signal.SIGHUP)


@requires_root
class ExplainModeTest(LeakChecks, unittest.TestCase):
    def test_verbose_shows_each_step(self):
        res = contain("run", "-v", "--rm", "--rootfs", support.busybox_rootfs(), *ROOTFS_ARGS,
                      "--memory", "64M", "--cpus", "0.5", "--", "/bin/true")
        self.assertEqual(res.returncode, 0, res.stderr)
        err = res.stderr
        for text in ("[contain] creating namespaces: pid uts mnt ipc net cgroup",
                     "[contain] pivoting root", "[contain] container exited: status 0 (",
                     "[contain] removing cgroup"):
            self.assertIn(text, err)
        # memory+swap: docker's default, twice the memory, where swap can be limited
        self.assertRegex(err, r"applying cgroup limits: memory=64M (memory\+swap=128M )?cpu=50%")
        self.assertEqual(res.stdout, "")
        self.assertNothingLeft()

    def test_quiet_without_verbose(self):
        res = run("true")
        self.assertEqual(res.stderr, "")


@requires_root
class BadInputTest(LeakChecks, unittest.TestCase):
    def assertOneLineError(self, res, pattern):
        self.assertEqual(res.returncode, 125, res.stderr)
        lines = res.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, res.stderr)
        self.assertRegex(lines[0], "^contain: " + pattern)
        self.assertNothingLeft()

    def test_missing_rootfs(self):
        self.assertOneLineError(run("true", rootfs="/nonexistent/rootfs"),
                                "rootfs /nonexistent/rootfs: no such file or directory")

    def test_rootfs_that_is_not_a_tarball(self):
        path = os.path.join(support.WORK, "keep-garbage.tar")
        with open(path, "wb") as f:
            f.write(b"this is not a tar archive" * 100)
        self.assertOneLineError(run("true", rootfs=path), ".*keep-garbage.tar.*tar")
        self.assertOneLineError(run("true", rootfs="/dev/null"),
                                "rootfs /dev/null: not a directory or a tarball")

    def test_not_root(self):
        # a Python any user may run (pyenv's live under /root)
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else support.PYTHON
        res = subprocess.run([python, support.CONTAIN, "run", "--rm", "--rootfs",
                              support.busybox_rootfs(), "--", "true"], user=65534, group=65534,
                             capture_output=True, text=True, env=support.env())
        self.assertEqual(res.returncode, 125)
        self.assertEqual(res.stderr.strip(),
                         "contain: must be run as root (namespaces, mounts and cgroups need it)")

    def test_unparseable_memory_and_cpus(self):
        self.assertOneLineError(run("true", opts=("--memory", "lots")), "(?=.*--memory)(?=.*lots)")
        self.assertOneLineError(run("true", opts=("--cpus", "half")), "(?=.*--cpus)(?=.*half)")

    def test_unusable_state_root_is_one_line(self):
        res = contain("run", "--rm", "--rootfs", support.busybox_rootfs(), "--", "true",
                      extra_env={"CONTAIN_ROOT": "/proc/contain-cannot-be-here"})
        self.assertEqual(res.returncode, 125)
        self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
        self.assertRegex(res.stderr, r"^contain: /proc/contain-cannot-be-here.*: ")

    def test_unknown_flag(self):
        res = contain("run", "--no-such-flag", "--rootfs", support.busybox_rootfs(), "true")
        self.assertOneLineError(res, "run: unknown flag or argument: --no-such-flag")
        res = contain("update", "--device-write-bps", "/dev/null:1mb", "x")
        self.assertOneLineError(res, "update: unknown flag or argument: --device-write-bps")

    def test_device_rate_errors_name_their_flag(self):
        for flag in ("--device-write-bps", "--device-read-iops", "--device-write-iops"):
            res = run("true", opts=(flag, "/nonexistent:1000"))
            self.assertOneLineError(res, f"bad format for device path in {flag}: "
                                    "'/nonexistent'")

    def _tar_with(self, name, add):
        path = os.path.join(support.WORK, f"keep-{name}.tar")
        with tarfile.open(path, "w") as tar:
            tar.add(support.busybox_rootfs(), arcname=".")
            add(tar)
        return path

    def test_escaping_tarball_members_are_refused(self):
        import io

        def member(name, **kw):
            def add(tar):
                info = tarfile.TarInfo(name)
                for k, v in kw.items():
                    setattr(info, k, v)
                data = b"pwned" if info.isreg() else None
                info.size = len(data) if data else 0
                tar.addfile(info, io.BytesIO(data) if data else None)
            return add
        cases = {
            "absolute": member("/tmp/contain-escape-abs"),
            "dotdot": member("../contain-escape-dotdot"),
            "device": member("dev/sda", type=tarfile.CHRTYPE, devmajor=8, devminor=0),
        }

        def via_symlink(tar):
            member("escape-link", type=tarfile.SYMTYPE, linkname="/tmp")(tar)
            member("escape-link/contain-escape-link")(tar)
        cases["symlink"] = via_symlink
        for name, add in cases.items():
            with self.subTest(name):
                res = run("true", rootfs=self._tar_with(name, add))
                self.assertOneLineError(res, ".*")
                self.assertFalse(os.path.exists("/tmp/contain-escape-abs"))
                self.assertFalse(os.path.exists("/tmp/contain-escape-link"))
                self.assertFalse(os.path.exists(os.path.join(support.WORK,
                                                             "contain-escape-dotdot")))


if __name__ == "__main__":
    unittest.main()
