"""Fast unit tests of the runtime's pure logic: the mount plan, resolving
paths inside a root, flag parsing, state records and status, ps/inspect
views, logs, user lookup.  No privileges needed."""

import json
import os
import signal
import tempfile
import time
import unittest
from types import SimpleNamespace

from tests import support  # noqa: F401  (puts the project on sys.path)
from contain.engine import cli, logs, runtime, flags as spec, state, users, views
from contain import clock
from contain.core import init, mounts, spawn
from contain.errors import Conflict, NotFound, UsageError


def oci_config(privileged=False, read_only=False, extra_mounts=(), masked=True, userns=None,
               network=None):
    """A config.json as the engine's generator writes one (Docker's defaults)."""
    from contain.engine import defaults, generate
    lx = {"namespaces": [{"type": t} for t in ("pid", "ipc", "mount", "cgroup", "uts")]
          + [network or {"type": "network"}]}
    if masked:
        lx["maskedPaths"] = list(defaults.MASKED_PATHS)
        lx["readonlyPaths"] = list(defaults.READONLY_PATHS)
    if userns:
        lx["namespaces"].append({"type": "user"})
        lx["uidMappings"] = lx["gidMappings"] = [{"containerID": 0, "hostID": 100000,
                                                  "size": 65536}]
    return {"ociVersion": "1.2.0", "root": {"path": "/r", "readonly": read_only},
            "process": {"args": ["true"]},
            "mounts": generate.default_mounts(privileged) + list(extra_mounts),
            "linux": lx}


def plan_for(version=2, hierarchies=(), **kw):
    return mounts.plan_from_spec(oci_config(**kw), "/r", version, list(hierarchies))


class MountPlanTest(unittest.TestCase):
    def test_order_private_first_root_then_filesystems_then_pivot_then_masks(self):
        plan = plan_for()
        kinds = [type(op).__name__ for op in plan]
        self.assertEqual(kinds[:3], ["MakePrivate", "BindRoot", "MountOp"])
        self.assertEqual(plan[2].target, "/proc")
        pivot = kinds.index("PivotRoot")
        self.assertTrue(all(k in ("Mask", "ReadOnly") for k in kinds[pivot + 1:]))
        from contain.engine import defaults
        masked = [op.path for op in plan if isinstance(op, mounts.Mask)]
        self.assertEqual(tuple(masked), defaults.MASKED_PATHS)
        self.assertIn("/proc/kcore", masked)
        self.assertEqual({op.origin for op in plan if isinstance(op, mounts.Mask)},
                         {"linux.maskedPaths"})

    def test_proc_flags_and_sys_read_only(self):
        ops = {op.target: op for op in plan_for() if isinstance(op, mounts.MountOp)}
        from contain.core import linux
        self.assertEqual(ops["/proc"].flags, linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_NODEV)
        self.assertEqual(ops["/proc"].origin, "mounts[0]")
        self.assertFalse(ops["/proc"].follow)         # a symlinked /proc is refused
        self.assertTrue(ops["/sys"].flags & linux.MS_RDONLY)
        self.assertIn("newinstance", ops["/dev/pts"].data)
        self.assertIn("ptmxmode=0666", ops["/dev/pts"].data)

    def test_privileged_skips_masks_and_read_only_sys(self):
        plan = plan_for(privileged=True, masked=False)
        self.assertFalse([op for op in plan if isinstance(op, (mounts.Mask, mounts.ReadOnly))])
        from contain.core import linux
        sys_op = next(op for op in plan if getattr(op, "target", "") == "/sys")
        self.assertFalse(sys_op.flags & linux.MS_RDONLY)

    def test_read_only_root_is_remounted_last(self):
        plan = plan_for(read_only=True)
        self.assertIsInstance(plan[-1], mounts.RemountRootReadOnly)

    def test_user_mounts_come_before_pivot_and_ro_binds_are_recursive(self):
        from contain.engine import generate
        extra = generate.user_mounts([
            {"type": "tmpfs", "target": "/scratch", "data": "size=1m"},
            {"type": "bind", "source": "/srv", "target": "/data", "readonly": True}])
        plan = plan_for(extra_mounts=extra)
        pivot = next(i for i, op in enumerate(plan) if isinstance(op, mounts.PivotRoot))
        scratch = next(i for i, op in enumerate(plan) if getattr(op, "target", "") == "/scratch")
        self.assertLess(scratch, pivot)
        data = next(op for op in plan if getattr(op, "target", "") == "/data")
        from contain.core import linux
        self.assertEqual(data.attrs[0] & linux.MOUNT_ATTR_RDONLY, linux.MOUNT_ATTR_RDONLY)

    def test_overlay_root_and_v1_cgroup_hierarchies(self):
        overlay = {"destination": "/", "type": "overlay", "source": "overlay",
                   "options": ["lowerdir=/l/2:/l/1", "upperdir=/u", "workdir=/w"]}
        plan = plan_for(version=1, extra_mounts=[],
                        hierarchies=[("memory", "memory"), ("cpu,cpuacct", "cpu,cpuacct")])
        targets = [op.target for op in plan if isinstance(op, mounts.MountOp)]
        self.assertIn("/sys/fs/cgroup/cpu,cpuacct", targets)
        cfg = oci_config()
        cfg["mounts"].insert(0, overlay)
        plan = mounts.plan_from_spec(cfg, "/r", 2, [])
        self.assertEqual((plan[2].target, plan[2].fstype), ("/", "overlay"))
        self.assertIn("lowerdir=/l/2:/l/1", plan[2].data)

    def test_every_op_describes_itself(self):
        for op in plan_for(read_only=True):
            self.assertTrue(op.describe())
            self.assertTrue(op.step())

    def test_host_cgroup_hierarchies_parse(self):
        text = ("cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0\n"
                "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
                "cgroup /sys/fs/cgroup/systemd cgroup rw,name=systemd 0 0\n")
        with tempfile.NamedTemporaryFile("w") as f:
            f.write(text)
            f.flush()
            self.assertEqual(mounts.host_cgroup_v1_hierarchies(f.name),
                             [("cpu,cpuacct", "cpu,cpuacct"), ("systemd", "name=systemd")])


class ResolveInRootTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.root)
        os.makedirs(os.path.join(self.root, "etc"))

    def resolved(self, path, **kw):
        fd = mounts.resolve_in_root(self.root, path, **kw)
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)

    def test_absolute_symlink_stays_inside(self):
        os.symlink("/etc", os.path.join(self.root, "link"))
        self.assertEqual(self.resolved("/link/new", follow=True),
                         os.path.join(os.path.realpath(self.root), "etc/new"))

    def test_dotdot_symlink_cannot_climb_out(self):
        os.symlink("../../../../../../tmp", os.path.join(self.root, "up"))
        self.assertEqual(self.resolved("/up/x", follow=True),
                         os.path.join(os.path.realpath(self.root), "tmp/x"))
        self.assertEqual(self.resolved("/../../etc"), os.path.realpath(self.root) + "/etc")
        os.makedirs(os.path.join(self.root, "tmp/there"))         # (all present: one call)
        self.assertEqual(self.resolved("/up/there", follow=True, create=False),
                         os.path.join(os.path.realpath(self.root), "tmp/there"))

    def test_symlink_refused_without_follow(self):
        os.symlink("/", os.path.join(self.root, "proc"))
        with self.assertRaises(OSError) as cm:
            mounts.resolve_in_root(self.root, "/proc")
        self.assertIn("symbolic link", str(cm.exception))

    def test_missing_components_are_created_file_or_dir(self):
        self.resolved("/a/b/c")
        self.assertTrue(os.path.isdir(os.path.join(self.root, "a/b/c")))
        self.resolved("/etc/hosts", kind="file")
        self.assertTrue(os.path.isfile(os.path.join(self.root, "etc/hosts")))

    def test_symlink_loop_is_an_error(self):
        os.symlink("/loop", os.path.join(self.root, "loop"))
        with self.assertRaises(OSError):
            mounts.resolve_in_root(self.root, "/loop/x", follow=True)

    def test_trailing_symlink_refused_or_followed_inside(self):
        os.symlink("/etc", os.path.join(self.root, "dir-link"))
        with self.assertRaises(OSError) as cm:
            mounts.resolve_in_root(self.root, "/dir-link", create=False)
        self.assertIn("symbolic link", str(cm.exception))
        self.assertEqual(self.resolved("/dir-link", follow=True, create=False),
                         os.path.realpath(self.root) + "/etc")

    def test_a_nul_byte_is_refused_not_cut_short(self):
        os.makedirs(os.path.join(self.root, "a"))
        with self.assertRaises(ValueError):
            mounts.resolve_in_root(self.root, "/a\0zzz", create=False)

    def test_errors_leave_no_descriptor_open(self):
        os.symlink("/", os.path.join(self.root, "proc"))
        os.symlink("/loop", os.path.join(self.root, "loop"))
        with open(os.path.join(self.root, "etc/file"), "w"):
            pass
        before = len(os.listdir("/proc/self/fd"))
        for path, kw in (("/proc/x", {}), ("/loop/x", {"follow": True}),
                         ("/etc/file/x", {}), ("/etc/none/x", {"create": False}),
                         ("/etc/a\0b", {"create": False})):
            with self.assertRaises((OSError, ValueError), msg=path):
                mounts.resolve_in_root(self.root, path, **kw)
        self.assertEqual(len(os.listdir("/proc/self/fd")), before)

    def openat2_calls(self, path, **kw):
        from contain.core import linux
        calls, real = [], linux.openat2
        def counting(*a, **k):
            calls.append(a[1])
            return real(*a, **k)
        linux.openat2 = counting
        try:
            self.resolved(path, **kw)
        finally:
            linux.openat2 = real
        return calls

    def test_an_existing_path_is_one_openat2_call(self):
        os.makedirs(os.path.join(self.root, "a/b"))
        self.assertEqual(self.openat2_calls("/a/b", create=False), ["/a/b"])


class ResolveInRootWalkTest(ResolveInRootTest):
    """The same rules where openat2 is missing (before 5.6) or filtered:
    the component-by-component walk alone."""

    def setUp(self):
        super().setUp()
        mounts._openat2_usable = False
        self.addCleanup(setattr, mounts, "_openat2_usable", True)

    def test_an_existing_path_is_one_openat2_call(self):
        os.makedirs(os.path.join(self.root, "a/b"))
        self.assertEqual(self.openat2_calls("/a/b", create=False), [])


class ResolveInRootFilterTest(unittest.TestCase):
    """resolve_in_root under a seccomp filter that refuses openat2."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.root)
        os.makedirs(os.path.join(self.root, "etc"))

    def test_a_filter_refusing_openat2_leaves_the_walk(self):
        """Under a seccomp profile older than openat2 (EPERM) or one that
        answers ENOSYS, the path is still found, by the walk."""
        from contain.core import seccomp
        for errno_ret in (1, 38):                       # EPERM, ENOSYS
            profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["openat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno_ret}]}
            program = seccomp.profile_program(json.dumps(profile), caps=[])

            def confined():
                seccomp.install(program)
                fd = mounts.resolve_in_root(self.root, "/etc", create=False)
                return f"{os.readlink(f'/proc/self/fd/{fd}')}|{mounts._openat2_usable}"
            self.assertEqual(support.in_child(confined),
                             os.path.realpath(self.root) + "/etc|False", errno_ret)


class SpecTest(unittest.TestCase):
    def test_env_items_files_and_host_values(self):
        with tempfile.NamedTemporaryFile("w", suffix=".env") as f:
            f.write("# c\nA=1\n\nB\n")
            f.flush()
            env = spec.parse_env(["C=3", "D", "E"], [f.name], host_env={"B": "hb", "D": "hd"})
        self.assertEqual(env, ["A=1", "B=hb", "C=3", "D=hd"])
        with self.assertRaises(UsageError):
            spec.parse_env(["=x"], host_env={})

    def test_merge_env_later_wins(self):
        self.assertEqual(spec.merge_env(["A=1", "B=2"], ["B=3", "C=4"]), ["A=1", "B=3", "C=4"])

    def test_signals(self):
        self.assertEqual(spec.parse_signal("SIGTERM"), signal.SIGTERM)
        self.assertEqual(spec.parse_signal("kill"), signal.SIGKILL)
        self.assertEqual(spec.parse_signal("9"), 9)
        self.assertEqual(spec.parse_signal("SIGRTMIN+1"), signal.SIGRTMIN + 1)
        with self.assertRaises(UsageError):
            spec.parse_signal("SIGNOPE")

    def test_restart_policies(self):
        self.assertEqual(spec.parse_restart("on-failure:3"), {"name": "on-failure", "max": 3})
        self.assertEqual(spec.parse_restart("always"), {"name": "always", "max": 0})
        for bad in ("sometimes", "always:3", "on-failure:x"):
            with self.assertRaises(UsageError):
                spec.parse_restart(bad)

    def test_volumes_and_tmpfs(self):
        m = spec.parse_volume("/tmp:/data:ro,rslave")
        self.assertEqual((m["source"], m["target"], m["readonly"], m["propagation"]),
                         (os.path.realpath("/tmp"), "/data", True, "rslave"))
        # (NAME:/x is a named volume, /x an anonymous one, a missing host
        # path is created: tests/test_features.py)
        for bad in ("rel/ative:/x", "/tmp:rel", "rel", "/tmp:/x:bogus", "/tmp:/"):
            with self.assertRaises(UsageError, msg=bad):
                spec.parse_volume(bad)
        t = spec.parse_tmpfs("/run:size=1m,exec")
        from contain.core import linux
        self.assertEqual(t["data"], "size=1m")
        self.assertFalse(t["flags"] & linux.MS_NOEXEC)
        with self.assertRaises(UsageError):
            spec.parse_tmpfs("/run:weird")

    def test_log_options(self):
        self.assertEqual(spec.parse_log_opts(["max-size=1k", "max-file=2"]),
                         {"max_size": 1024, "max_file": 2})
        with self.assertRaises(UsageError):
            spec.parse_log_opts(["max-file=0"])


class CliTest(unittest.TestCase):
    def parse(self, *argv):
        return cli.build_parser(list(argv)).parse_args(list(argv))

    def test_bare_v_is_verbose_and_v_with_value_is_a_volume(self):
        ns = self.parse("run", "-v", "--rootfs", "/tmp", "--", "true")
        self.assertTrue(cli.verbose_from(ns))
        ns = self.parse("run", "-v", "/tmp:/x", "--rootfs", "/tmp", "true")
        self.assertFalse(cli.verbose_from(ns))
        self.assertEqual(ns.volume, ["/tmp:/x"])

    def test_config_from_rootfs_and_command(self):
        ns = self.parse("run", "--rootfs", "/tmp", "--hostname", "h", "-e", "A=1",
                        "--", "sh", "-c", "echo -n")
        cfg = cli.config_from(ns)
        self.assertEqual(cfg["rootfs"], {"type": "dir", "path": "/tmp"})
        self.assertEqual(cfg["argv"], ["sh", "-c", "echo -n"])
        self.assertEqual(cfg["hostname"], "h")
        self.assertEqual(cfg["env"], ["A=1"])

    def test_image_form_and_flags_after_image_belong_to_the_command(self):
        ns = self.parse("run", "--rm", "busybox", "ls", "-l", "--rm")
        cfg = cli.config_from(ns)
        self.assertEqual((cfg["image"], cfg["argv"]), ("busybox", ["ls", "-l", "--rm"]))

    def test_bad_usage_is_a_usage_error(self):
        with self.assertRaises(UsageError):
            self.parse("run", "--no-such-flag")
        with self.assertRaises(UsageError):
            cli.config_from(self.parse("run", "--rm", "--restart", "always", "x"))

    def test_only_the_named_subcommand_is_built(self):
        self.assertEqual(cli._command_in(["--root", "/x", "ps", "-a"]), "ps")
        p = cli.build_parser(["ps"])
        sub = next(a for a in p._actions if a.dest == "command")
        self.assertEqual(list(sub.choices), ["ps"])


class StateTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.root)
        self.store = state.Store(self.root)

    def make(self, name, **st):
        cid = state.new_id()
        return self.store.create({"id": cid, "name": name, "created": clock.now()}, st)

    def test_status_is_derived_from_the_kernel(self):
        c = self.make("a")
        self.assertEqual(c.status, "created")
        me = state.proc_start_time(os.getpid())[0]
        c.state.update(pid=os.getpid(), start_time=me, boot_id=state.boot_id(),
                       started_at=clock.now())
        self.assertEqual(c.status, "running")
        c.state["start_time"] = me + 1  # pid reused by another process
        self.assertEqual(c.status, "exited")
        c.state.update(start_time=me, boot_id="another-boot")  # host rebooted
        self.assertEqual(c.status, "exited")
        self.assertEqual(c.exit_code, 255)  # died unrecorded
        c.state.update(error="boom", started_at=None)
        self.assertEqual(c.status, "dead")

    def test_exit_not_yet_recorded_or_restarting_while_the_monitor_lives(self):
        c = self.make("m")
        me = state.proc_start_time(os.getpid())[0]
        c.state.update(pid=os.getpid(), start_time=me + 1,  # PID 1 gone
                       boot_id=state.boot_id(), started_at=clock.now(),
                       monitor_pid=os.getpid(), monitor_start=me)  # its monitor lives
        self.assertEqual(c.status, "running")  # the monitor is recording the exit
        c.state["restarting"] = True
        self.assertEqual(c.status, "restarting")
        c.state.update(restarting=False, finished_at=clock.now(), exit_code=3)
        self.assertEqual((c.status, c.exit_code), ("exited", 3))
        c.state.update(finished_at=None, monitor_start=me + 1)  # monitor died too
        self.assertEqual(c.status, "exited")

    def test_zombie_is_not_running(self):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        time.sleep(0.05)
        info = state.proc_start_time(pid)
        self.assertFalse(state.process_alive(pid, info[0], state.boot_id()))
        os.waitpid(pid, 0)

    def test_find_by_name_prefix_and_errors(self):
        a, b = self.make("alpha"), self.make("beta")
        self.assertEqual(self.store.find("alpha").id, a.id)
        self.assertEqual(self.store.find(b.id[:8]).id, b.id)
        self.assertEqual(self.store.find(a.id).id, a.id)
        with self.assertRaises(NotFound) as cm:
            self.store.find("gamma")
        self.assertEqual(str(cm.exception), "No such container: gamma")

    def test_names_are_unique_and_valid(self):
        self.make("web")
        with self.assertRaises(Conflict):
            self.make("web")
        with self.assertRaises(UsageError):
            self.make("-bad name")

    def test_concurrent_creates_give_a_name_once(self):
        pids = []
        for _ in range(10):
            pid = os.fork()
            if pid == 0:
                try:
                    self.make("same")
                    os._exit(0)
                except Conflict:
                    os._exit(1)
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
        self.assertEqual(sorted(codes), [0] + [1] * 9)

    def test_atomic_write_leaves_no_temp_files(self):
        c = self.make("x")
        c.state["k"] = "v"
        c.save()
        self.assertEqual(sorted(os.listdir(c.dir)), ["config.json", "state.json"])
        self.assertEqual(json.load(open(c.path("state.json")))["k"], "v")

    def test_remove_tree_never_follows_symlinks(self):
        outside = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, outside)
        open(os.path.join(outside, "keep"), "w").close()
        top = os.path.join(self.root, "tree")
        os.makedirs(os.path.join(top, "a/b"))
        open(os.path.join(top, "a/b/file"), "w").close()
        os.symlink(outside, os.path.join(top, "a/link-to-dir"))
        os.symlink(os.path.join(outside, "keep"), os.path.join(top, "link-to-file"))
        state.remove_tree(top)
        self.assertFalse(os.path.exists(top))
        self.assertTrue(os.path.exists(os.path.join(outside, "keep")))

    def test_time_round_trip(self):
        t = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".500000000Z"
        self.assertAlmostEqual(clock.parse_time(stamp), int(t) + 0.5, places=3)


class ViewsTest(unittest.TestCase):
    def test_human_durations(self):
        self.assertEqual(views.human_duration(0.3), "Less than a second")
        self.assertEqual(views.human_duration(5), "5 seconds")
        self.assertEqual(views.human_duration(70), "About a minute")
        self.assertEqual(views.human_duration(180), "3 minutes")
        self.assertEqual(views.human_duration(3 * 3600), "3 hours")

    def test_templates(self):
        data = [{"ID": "abc", "Names": "web", "Status": "Up 3 seconds"}]
        self.assertEqual(views.render_template("{{.ID}} {{.Names}} {{.Status}}", data),
                         "abc web Up 3 seconds\n")
        self.assertEqual(views.render_template("{{json .Names}}", data), '"web"\n')
        self.assertEqual(views.render_template("table {{.ID}}\\t{{.Names}}", data),
                         "ID\tNAMES\nabc\tweb\n")

    def test_status_words(self):
        c = SimpleNamespace(status="exited", exit_code=137, state={
            "finished_at": clock.now(), "started_at": clock.now()})
        self.assertRegex(views.status_text(c), r"^Exited \(137\) (Less than a second|\d seconds) ago$")

    def test_inspect_path_format(self):
        item = {"State": {"Status": "running", "OOMKilled": False}}
        self.assertEqual(views.render_path("{{.State.Status}} {{.State.OOMKilled}}", item),
                         "running false")


class LogsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.dir)
        self.path = os.path.join(self.dir, "container.log")

    def test_lines_streams_and_partial_lines(self):
        w = logs.LogWriter(self.path)
        w.write("stdout", b"one\ntw")
        w.write("stderr", b"err\n")
        w.write("stdout", b"o\n")
        w.close()
        entries = list(logs.read_entries(self.path))
        self.assertEqual([(e["stream"], e["log"]) for e in entries],
                         [("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n")])

    def test_rotation_bounds_the_size(self):
        w = logs.LogWriter(self.path, max_size=1000, max_file=2)
        for i in range(100):
            w.write("stdout", b"line %d\n" % i)
        w.close()
        self.assertEqual(sorted(os.listdir(self.dir)), ["container.log", "container.log.1"])
        total = sum(os.path.getsize(os.path.join(self.dir, n)) for n in os.listdir(self.dir))
        self.assertLessEqual(total, 2000)
        last = list(logs.read_entries(self.path))[-1]
        self.assertEqual(last["log"], "line 99\n")

    def test_show_tail_and_timestamps(self):
        w = logs.LogWriter(self.path)
        w.write("stdout", b"a\nb\nc\n")
        w.close()
        r, wfd = os.pipe()
        logs.show(self.path, wfd, wfd, tail=2, timestamps=True)
        os.close(wfd)
        out = os.read(r, 4096).decode()
        os.close(r)
        lines = out.splitlines()
        self.assertEqual(len(lines), 2)
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\dT\S+Z b$")

    def test_since(self):
        now = 1_000_000.0
        self.assertEqual(logs.parse_since("10m", now), now - 600)
        self.assertEqual(logs.parse_since("1500.5"), 1500.5)
        with self.assertRaises(UsageError):
            logs.parse_since("yesterday")


class ChildLogicTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.root)
        os.makedirs(os.path.join(self.root, "etc"))
        with open(os.path.join(self.root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
        with open(os.path.join(self.root, "etc/group"), "w") as f:
            f.write("root:x:0:\nwheel:x:10:app\napp:x:1000:\n")

    def test_user_lookup(self):
        self.assertEqual(users.resolve_user("", self.root), (0, 0, [], "/root"))
        self.assertEqual(users.resolve_user("app", self.root), (1000, 1000, [10, 1000], "/home/app"))
        self.assertEqual(users.resolve_user("1234:55", self.root), (1234, 55, [55], "/"))
        self.assertEqual(users.resolve_user("app:wheel", self.root)[1], 10)
        with self.assertRaises(LookupError):
            users.resolve_user("nobody-here", self.root)

    def test_exit_codes_of_wait_statuses(self):
        self.assertEqual(runtime.exit_code_of(3 << 8), 3)
        self.assertEqual(runtime.exit_code_of(signal.SIGKILL), 137)
        self.assertEqual(runtime.exit_code_of(signal.SIGTERM), 143)

    def test_find_executable_rules(self):
        with self.assertRaises(init.Failure) as cm:
            init.find_executable("surely-not-a-command", "/nonexistent")
        self.assertEqual(cm.exception.code, 127)
        self.assertEqual(init.find_executable("sh", "/nonexistent:/bin"), "/bin/sh")

    def test_error_report_format(self):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            init._report(w, "mount /proc", OSError(13, "Permission denied"), 125)
        os.close(w)
        data = os.read(r, 4096)
        os.close(r)
        os.waitpid(pid, 0)
        with self.assertRaises(Exception) as cm:
            spawn.child_failed(pid, data)
        self.assertEqual(str(cm.exception), "mount /proc: Permission denied")


class RlimitTest(unittest.TestCase):
    """linux.setrlimit/getrlimit (prlimit through libc) against the resource
    module, and config.json's rlimit values checked before any use."""

    def test_get_and_set_match_the_resource_module(self):
        import resource
        from contain.core import linux
        self.assertEqual(linux.getrlimit(linux.RLIMIT_NOFILE),
                         resource.getrlimit(resource.RLIMIT_NOFILE))
        def limits():                     # (in a child: it changes its own limits)
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            linux.setrlimit(linux.RLIMIT_NOFILE, soft // 2, hard)
            lowered = resource.getrlimit(resource.RLIMIT_NOFILE) == (soft // 2, hard)
            try:                          # above the hard limit: EPERM, values named
                linux.setrlimit(linux.RLIMIT_NOFILE, hard + 1, hard + 1)
                refused = "raised"
            except OSError as e:
                refused = f"{e.errno} {e.strerror}"
            return f"{lowered}|{refused}"
        lowered, refused = support.in_child(limits).split("|")
        self.assertEqual(lowered, "True")
        if refused != "raised":           # (CAP_SYS_RESOURCE may raise it)
            import errno
            self.assertTrue(refused.startswith(f"{errno.EPERM} "), refused)
            self.assertIn("(soft ", refused)

    def test_config_values_must_be_64_bit_unsigned(self):
        from contain.core import spec
        def config(value):
            return {"ociVersion": "1.2.0", "root": {"path": "/r"},
                    "process": {"args": ["true"], "rlimits": [
                        {"type": "RLIMIT_NOFILE", "soft": value, "hard": 1024}]},
                    "linux": {"namespaces": [{"type": "mount"}]}}
        spec.check(config(0))
        spec.check(config((1 << 64) - 1))             # RLIM_INFINITY as runc writes it
        for bad in (-1, 1 << 64, "1024", True, 1.5):
            with self.assertRaises(UsageError, msg=repr(bad)) as cm:
                spec.check(config(bad))
            self.assertIn("rlimits[0].soft", str(cm.exception))


class MountCheckTest(unittest.TestCase):
    def test_a_nul_byte_in_a_mount_path_is_refused_by_name(self):
        from contain.core import spec
        for key, value in (("destination", "/tmp\0x"), ("source", "tmp\0fs")):
            m = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", key: value}
            with self.assertRaises(UsageError, msg=key) as cm:
                spec.check_mount(m, "config.json", "mounts[3]")
            self.assertIn(f"mounts[3].{key}", str(cm.exception))
            self.assertIn("NUL", str(cm.exception))


class FastJsonTest(unittest.TestCase):
    """contain.fastjson reads and writes what the json module does, and its
    errors are json's, even in an interpreter that never loaded json."""

    def test_same_values_as_json(self):
        from contain import fastjson
        for text in ('{"a": [1, 2.5, -3e2, true, false, null, "x\\u00e9\\n"], "b": {}}',
                     ' [] ', '"s"', '1', '{"a":1}\n'):
            self.assertEqual(fastjson.loads(text), json.loads(text))
        self.assertEqual(fastjson.loads(b'\xef\xbb\xbf{"a": 1}'), {"a": 1})
        value = {"z": [1, "\u00e9", None, True, 1.5, {"b": 2, "a": 1}], "a": "\u2028"}
        self.assertEqual(fastjson.dumps(value), json.dumps(value, separators=(",", ":")))
        self.assertEqual(fastjson.dumps(value, sort_keys=True),
                         json.dumps(value, separators=(",", ":"), sort_keys=True))
        self.assertEqual(fastjson.dumps("\u00e9", ensure_ascii=False), '"\u00e9"')
        self.assertEqual(fastjson.dumps(value, indent=2), json.dumps(value, indent=2))
        with self.assertRaises(TypeError):
            fastjson.dumps(object())

    def test_errors_are_jsons_without_json_loaded(self):
        import subprocess
        import sys
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from contain import fastjson\n"
                "for bad in ['', '{', '[1,]', '{\"a\":1} x', 'nul', '{\"a\" 1}', '[1 2]']:\n"
                "    try:\n"
                "        fastjson.loads(bad)\n"
                "    except ValueError as e:\n"
                "        print(type(e).__name__, e)\n")
        out = subprocess.run([sys.executable, "-I", "-S", "-c", code, support.TOP],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        expected = []
        for bad in ['', '{', '[1,]', '{"a":1} x', 'nul', '{"a" 1}', '[1 2]']:
            try:
                json.loads(bad)
            except ValueError as e:
                expected.append(f"{type(e).__name__} {e}")
        self.assertEqual(out, expected)


if __name__ == "__main__":
    unittest.main()
