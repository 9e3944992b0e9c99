"""Everyday Docker features: volumes (-v, --mount, `volume ...`, rm -v),
refused mount destinations, exec -w, pause/unpause, attach, cp (both ways
and as tar streams), --ulimit, --device and --cgroup-conf.  Each is checked
from inside the container with its own tools (busybox), as root against the
real kernel; the parsing has fast unit tests."""

import io
import json
import os
import resource
import stat
import subprocess
import tarfile
import tempfile
import unittest

from tests import support
from tests.support import contain, requires_root
from tests.test_image_run import load_app_image
from tests.test_lifecycle import Lifecycle

from contain.core import lifecycle
from contain.engine import copy, flags, generate
from contain.errors import UsageError

NET = ("--network", "none")


def rootfs():
    return support.busybox_rootfs()


def run_rm(*args):
    return contain("run", "--rm", *NET, *args)


# ------------------------------------------------------------ pure logic
class ParseTest(unittest.TestCase):
    def test_volume_forms(self):
        m = flags.parse_volume("/no/such/dir:/data:ro")
        self.assertEqual((m["type"], m["source"], m["target"], m["readonly"]),
                         ("bind", "/no/such/dir", "/data", True))
        self.assertTrue(m["create_source"])          # created at create, as Docker does
        m = flags.parse_volume("data:/data")
        self.assertEqual((m["type"], m["name"]), ("volume", "data"))
        self.assertFalse(m.get("anonymous"))
        m = flags.parse_volume("/cache")
        self.assertEqual(m["type"], "volume")
        self.assertTrue(m["anonymous"])
        self.assertRegex(m["name"], "^[0-9a-f]{64}$")
        for bad in ("../x:/d", "a/b:/d", "x:/d", "data:rel", "a:b:c:d"):
            with self.subTest(bad=bad), self.assertRaises(UsageError):
                flags.parse_volume(bad)

    def test_root_and_proc_destinations_are_refused(self):
        for spec in ("/tmp:/", "/tmp://", "/tmp:/x/..", "vol:/"):
            with self.subTest(spec=spec), self.assertRaisesRegex(
                    UsageError, "destination can't be '/'"):
                flags.parse_volume(spec)
        with self.assertRaisesRegex(UsageError, '"/proc" cannot be mounted because it is '
                                                "not of type proc"):
            flags.parse_volume("/tmp:/proc")
        with self.assertRaisesRegex(UsageError, "inside /proc"):
            flags.parse_mount("type=bind,source=/tmp,target=/proc/sys")
        with self.assertRaisesRegex(UsageError, "destination can't be '/'"):
            flags.parse_tmpfs("/")
        self.assertEqual(flags.parse_volume("/tmp:/proc/meminfo")["target"], "/proc/meminfo")

    def test_mount_syntax(self):
        m = flags.parse_mount("type=bind,src=/tmp,dst=/b,readonly")
        self.assertEqual((m["type"], m["source"], m["target"], m["readonly"]),
                         ("bind", "/tmp", "/b", True))
        m = flags.parse_mount("type=volume,source=v1,target=/v,volume-nocopy")
        self.assertEqual((m["name"], m["nocopy"], m["readonly"]), ("v1", True, False))
        m = flags.parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770")
        self.assertEqual(m["type"], "tmpfs")
        self.assertIn("size=1048576", m["data"])
        self.assertIn("mode=1770", m["data"])
        for bad in ("type=bind,source=/no/such/path,target=/b", "type=bind,target=/b",
                    "type=nfs,target=/x", "type=bind,source=/tmp", "colour=red,target=/x",
                    "type=tmpfs,source=x,target=/t", "type=tmpfs,target=/t,tmpfs-mode=9z",
                    "type=bind,source=/tmp,target=/b,readonly=maybe"):
            with self.subTest(bad=bad), self.assertRaises(UsageError):
                flags.parse_mount(bad)

    def test_ulimit(self):
        r = flags.parse_ulimit("nofile=100:200", host_hard=1000, may_raise=False)
        self.assertEqual(r, {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200})
        self.assertEqual(flags.parse_ulimit("core=0", host_hard=0, may_raise=False)["hard"], 0)
        with self.assertRaisesRegex(UsageError, "CAP_SYS_RESOURCE"):
            flags.parse_ulimit("nofile=100:2000", host_hard=1000, may_raise=False)
        self.assertEqual(flags.parse_ulimit("nofile=100:2000", host_hard=1000,
                                            may_raise=True)["hard"], 2000)
        for bad in ("nofile=200:100", "nofiles=1", "nofile", "nofile=x"):
            with self.subTest(bad=bad), self.assertRaises(UsageError):
                flags.parse_ulimit(bad, host_hard=1 << 30, may_raise=False)

    def test_device(self):
        [d] = flags.parse_devices("/dev/null:/dev/mynull:r")
        self.assertEqual((d["path"], d["type"], d["major"], d["minor"], d["access"]),
                         ("/dev/mynull", "c", 1, 3, "r"))
        self.assertEqual(flags.parse_devices("/dev/null")[0]["path"], "/dev/null")
        self.assertEqual(flags.parse_devices("/dev/null:mrw")[0]["access"], "rwm")
        empty = tempfile.mkdtemp(dir=support.WORK)
        for bad in ("/no/such/dev", "/etc/hostname", empty, "dev/null", "/dev/null:/a:/b:rw"):
            with self.subTest(bad=bad), self.assertRaises(UsageError):
                flags.parse_devices(bad)

    def test_cgroup_conf(self):
        self.assertEqual(flags.parse_cgroup_conf(["memory.high=1000", "pids.max=5"]),
                         {"memory.high": "1000", "pids.max": "5"})
        for bad in ("memory.high", "high=1", "../x.y=1", "memory/x.high=1", ".a=1"):
            with self.subTest(bad=bad), self.assertRaises(UsageError):
                flags.parse_cgroup_conf([bad])

    def test_generated_resources(self):
        [dev] = flags.parse_devices("/dev/null:/dev/x:r")
        res = generate.resources_for({}, False, [dev], {"memory.high": "1000"})
        self.assertEqual(res["unified"], {"memory.high": "1000"})
        self.assertIn({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
                      res["devices"])

    def test_an_explicit_device_rule_keeps_its_access(self):
        """The core adds 'rwm' only for a node config.json gives no rule."""
        rules = [{"allow": False, "access": "rwm"},
                 {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]
        out = lifecycle.device_rules({"devices": rules}, [{"type": "b", "major": 7, "minor": 0},
                                             {"type": "c", "major": 10, "minor": 200}])
        self.assertNotIn({"allow": True, "type": "b", "major": 7, "minor": 0,
                          "access": "rwm"}, out)
        self.assertIn({"allow": True, "type": "c", "major": 10, "minor": 200,
                       "access": "rwm"}, out)

    def test_cp_references(self):
        self.assertEqual(copy.split_ref("web:/etc"), ("web", "/etc"))
        self.assertEqual(copy.split_ref("web:"), ("web", "/"))
        self.assertEqual(copy.split_ref("/a:b"), (None, "/a:b"))
        self.assertEqual(copy.split_ref("./a:b"), (None, "./a:b"))
        self.assertEqual(copy.split_ref("-"), (None, "-"))
        with self.assertRaises(UsageError):
            copy.split_ref(":/x")


# ------------------------------------------------------------ integration
@requires_root
class MountTest(Lifecycle):
    def test_root_and_proc_destinations_fail_before_anything_is_made(self):
        for spec, words in (("/tmp:/", "destination can't be '/'"),
                            ("/tmp:/proc", '"/proc" cannot be mounted')):
            res = run_rm("--rootfs", rootfs(), "-v", spec, "true")
            self.assertEqual(res.returncode, 125, res.stderr)
            self.assertIn(words, res.stderr)
        support.assert_no_container_left(self)

    def test_missing_host_path_is_created(self):
        host = os.path.join(support.WORK, "made-by-v", "sub")
        self.assertFalse(os.path.exists(host))
        res = run_rm("--rootfs", rootfs(), "-v", f"{host}:/data",
                     "sh", "-c", "echo inside > /data/f && cat /data/f")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, "inside\n")
        with open(os.path.join(host, "f")) as f:
            self.assertEqual(f.read(), "inside\n")

    def test_mount_flag(self):
        src = tempfile.mkdtemp(dir=support.WORK)
        res = run_rm("--rootfs", rootfs(),
                     "--mount", f"type=bind,source={src},target=/b,readonly",
                     "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
                     "sh", "-c", "touch /b/x 2>&1; grep ' /t ' /proc/mounts; stat -c %a /t")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("Read-only file system", res.stdout)
        self.assertIn("size=1024k", res.stdout)
        self.assertTrue(res.stdout.endswith("1770\n"), res.stdout)
        self.assertEqual(os.listdir(src), [])
        res = run_rm("--rootfs", rootfs(), "--mount",
                     "type=bind,source=/no/such/dir,target=/b", "true")
        self.assertEqual(res.returncode, 125)
        self.assertIn("bind source path does not exist: /no/such/dir", res.stderr)


@requires_root
class VolumeTest(Lifecycle):
    def setUp(self):
        super().setUp()
        self.volumes = []

    def tearDown(self):
        super().tearDown()
        for name in self.volumes:
            contain("volume", "rm", name)

    def volume_names(self):
        res = contain("volume", "ls", "-q")
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.split()

    def test_named_volume_keeps_data_and_cannot_go_while_used(self):
        self.volumes.append("keep")
        res = run_rm("--rootfs", rootfs(), "-v", "keep:/data", "sh", "-c",
                     "echo kept > /data/f")
        self.assertEqual(res.returncode, 0, res.stderr)
        res = run_rm("--rootfs", rootfs(), "--mount", "type=volume,source=keep,target=/v",
                     "cat", "/v/f")
        self.assertEqual(res.stdout, "kept\n", res.stderr)
        info = json.loads(contain("volume", "inspect", "keep").stdout)[0]
        self.assertEqual(info["Name"], "keep")
        self.assertTrue(info["Mountpoint"].endswith("/volumes/keep/_data"))
        self.assertEqual(os.stat(os.path.dirname(info["Mountpoint"])).st_mode & 0o777, 0o700)
        cid = self.run_d("volume-user", "sleep", "100", opts=("-v", "keep:/data"))
        contain("stop", "-t", "0", "volume-user")
        res = contain("volume", "rm", "keep")               # a stopped user counts too
        self.assertEqual(res.returncode, 1)
        self.assertIn(f"volume is in use - [{cid}]", res.stderr)
        contain("rm", "volume-user", check=True)
        self.assertEqual(contain("volume", "rm", "keep").returncode, 0)
        self.assertNotIn("keep", self.volume_names())

    def test_volume_commands(self):
        self.volumes += ["labelled"]
        res = contain("volume", "create", "--label", "a=b", "labelled")
        self.assertEqual(res.stdout, "labelled\n", res.stderr)
        self.assertEqual(contain("volume", "create", "labelled").returncode, 0)  # idempotent
        self.assertEqual(json.loads(contain("volume", "inspect", "labelled").stdout)[0]
                         ["Labels"], {"a": "b"})
        for bad in ("../up", "a/b", "x"):
            res = contain("volume", "create", bad)
            self.assertEqual(res.returncode, 125, bad)
            self.assertIn("invalid characters for a local volume name", res.stderr)
        self.assertFalse(os.path.exists(os.path.join(support.STATE_ROOT, "up")))
        res = contain("volume", "rm", "nosuch")
        self.assertEqual(res.returncode, 1)
        self.assertIn("no such volume", res.stderr)
        self.assertIn("labelled", self.volume_names())
        res = contain("volume", "prune")                        # named ones stay
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("labelled", self.volume_names())

    def test_anonymous_volumes_go_with_rm_v_and_rm(self):
        before = set(self.volume_names())
        self.run_d("anon1", "sleep", "100", opts=("-v", "/cache"))
        new = set(self.volume_names()) - before
        self.assertEqual(len(new), 1)
        self.assertEqual(contain("rm", "-f", "-v", "anon1").returncode, 0)
        self.assertEqual(set(self.volume_names()), before)
        res = run_rm("--rootfs", rootfs(), "-v", "/cache", "true")     # --rm
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(set(self.volume_names()), before)
        self.run_d("anon2", "true", opts=("-v", "/cache"))
        contain("rm", "-f", "anon2", check=True)                       # without -v: kept
        left = set(self.volume_names()) - before
        self.assertEqual(len(left), 1)
        res = contain("volume", "prune")
        self.assertIn(left.pop(), res.stdout)
        self.assertEqual(set(self.volume_names()), before)

    def test_new_volume_gets_the_images_content(self):
        image = load_app_image()            # /data: opaque, only b (uid 1000)
        self.volumes.append("copied")
        res = contain("run", "--rm", *NET, "-u", "0", "--entrypoint", "sh",
                      "-v", "copied:/data", image, "-c",
                      "ls /data; stat -c %u /data/b; cat /data/b")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, "b\n1000\n2\n")


@requires_root
class ExecWorkdirTest(Lifecycle):
    def test_missing_workdir_is_an_error_and_not_created(self):
        self.run_d("wd", "sleep", "100")
        res = contain("exec", "-w", "/missing", "wd", "pwd")
        self.assertEqual(res.returncode, 126)
        self.assertIn('chdir to cwd ("/missing") set in config.json failed', res.stderr)
        res = contain("exec", "wd", "ls", "-d", "/missing")
        self.assertNotEqual(res.returncode, 0)
        res = contain("exec", "-w", "/tmp", "wd", "pwd")
        self.assertEqual(res.stdout, "/tmp\n", res.stderr)

    def test_a_containers_own_workdir_is_still_created(self):
        res = run_rm("--rootfs", support.fresh_rootfs("wd"), "-w", "/made/here", "pwd")
        self.assertEqual(res.stdout, "/made/here\n", res.stderr)


def freezer_state(pid):
    """The freezer state of pid's cgroup (v1), or cgroup.events' frozen (v2)."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.strip().split(":", 2) for line in f]
    for _, ctrls, path in lines:
        if "freezer" in ctrls.split(","):
            with open(f"/sys/fs/cgroup/freezer{path}/freezer.state") as f:
                return f.read().strip()
    for _, ctrls, path in lines:
        if ctrls == "":
            with open(f"/sys/fs/cgroup{path}/cgroup.events") as f:
                return "FROZEN" if "frozen 1" in f.read() else "THAWED"
    return None


@requires_root
class PauseTest(Lifecycle):
    def test_pause_unpause_ps_and_stop(self):
        self.run_d("pz", "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 1; done")
        pid = self.state_of("pz")["Pid"]
        self.assertEqual(contain("pause", "pz").returncode, 0)
        self.assertEqual(freezer_state(pid), "FROZEN")
        ps = contain("ps", "--format", "{{.Names}} {{.Status}} {{.State}}").stdout
        self.assertRegex(ps, r"pz Up .* \(Paused\) paused")
        st = self.state_of("pz")
        self.assertEqual((st["Status"], st["Paused"], st["Running"]), ("paused", True, True))
        self.assertEqual(contain("ps", "--filter", "status=paused",
                                 "--format", "{{.Names}}").stdout, "pz\n")
        res = contain("exec", "pz", "true")
        self.assertEqual(res.returncode, 125)
        self.assertIn("paused", res.stderr)
        res = contain("pause", "pz")
        self.assertEqual(res.returncode, 1)
        self.assertIn("already paused", res.stderr)
        self.assertEqual(contain("unpause", "pz").returncode, 0)
        self.assertEqual(freezer_state(pid), "THAWED")
        self.assertEqual(contain("exec", "pz", "true").returncode, 0)
        self.assertEqual(self.state_of("pz")["Status"], "running")
        res = contain("unpause", "pz")
        self.assertIn("is not paused", res.stderr)
        # a paused container still stops: the signal is delivered once thawed
        contain("pause", "pz", check=True)
        contain("stop", "pz", check=True)
        self.assertEqual(self.state_of("pz")["ExitCode"], 3)
        res = contain("pause", "pz")
        self.assertIn("is not running", res.stderr)


def following_log(pid):
    from contain.engine.logs import LOG_NAME
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").endswith("/" + LOG_NAME):
                return True
        except OSError:
            pass
    return False


@requires_root
class AttachTest(Lifecycle):
    def test_attach_follows_output_and_returns_the_exit_code(self):
        fifo = os.path.join(support.WORK, "attach-go")
        os.mkfifo(fifo)
        self.run_d("att", "sh", "-c", "echo early; read x < /go; echo late; exit 7",
                   opts=("-v", f"{fifo}:/go"))
        proc = subprocess.Popen(support.contain_cmd("attach", "att"), env=support.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # attach follows from the log's end once it has the log open
            self.wait_until(lambda: following_log(proc.pid), what="attach following the log")
            with open(fifo, "w") as f:
                f.write("go\n")
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 7, err)
        self.assertIn("late\n", out)
        res = contain("attach", "att")
        self.assertEqual(res.returncode, 125)
        self.assertIn("stopped container", res.stderr)


@requires_root
class CopyTest(Lifecycle):
    def setUp(self):
        super().setUp()
        self.image = load_app_image()

    def run_image(self, name):
        self.names.append(name)
        res = contain("run", "-d", "--name", name, *NET, "-u", "0", "--entrypoint", "sh",
                      self.image, "-c", "mkdir -p /d/sub; echo hello > /d/sub/f; "
                      "ln -s /etc/motd /d/link; ln -s / /d/up; exec sleep 100")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.wait_until(lambda: contain("exec", name, "test", "-L", "/d/up").returncode == 0,
                        what="the container's files")

    def test_copy_out_and_in_of_a_running_container(self):
        self.run_image("cpr")
        out = tempfile.mkdtemp(dir=support.WORK)
        self.assertEqual(contain("cp", "cpr:/d", out).returncode, 0)
        with open(os.path.join(out, "d", "sub", "f")) as f:
            self.assertEqual(f.read(), "hello\n")
        self.assertEqual(os.readlink(os.path.join(out, "d", "link")), "/etc/motd")
        # a link is resolved inside the container: its /etc/motd, not the host's
        res = subprocess.run(support.contain_cmd("cp", "cpr:/d/up/etc/motd", "-"),
                             env=support.env(), capture_output=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
            self.assertEqual(tar.getnames(), ["motd"])
            self.assertEqual(tar.extractfile("motd").read(), b"v3\n")
        # into it: a file into a directory, under a new name, through a link
        src = os.path.join(out, "payload-" + os.urandom(4).hex())
        with open(src, "w") as f:
            f.write("from host\n")
        name = os.path.basename(src)
        self.assertEqual(contain("cp", src, "cpr:/d/").returncode, 0)
        self.assertEqual(contain("cp", src, "cpr:/d/renamed").returncode, 0)
        self.assertEqual(contain("cp", src, "cpr:/d/up/tmp/").returncode, 0)
        self.assertFalse(os.path.exists(f"/tmp/{name}"), "cp wrote on the host")
        res = contain("exec", "cpr", "cat", f"/d/{name}", "/d/renamed", f"/tmp/{name}")
        self.assertEqual(res.stdout, "from host\n" * 3, res.stderr)
        # a tar stream into a directory; its '..' members are refused
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = b"streamed\n"
            info = tarfile.TarInfo("s/x")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        res = subprocess.run(support.contain_cmd("cp", "-", "cpr:/d"), input=buf.getvalue(),
                             env=support.env(), capture_output=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(contain("exec", "cpr", "cat", "/d/s/x").stdout, "streamed\n")
        evil = io.BytesIO()
        with tarfile.open(fileobj=evil, mode="w") as tar:
            info = tarfile.TarInfo("../../escaped")
            tar.addfile(info, io.BytesIO(b""))
        res = subprocess.run(support.contain_cmd("cp", "-", "cpr:/d"), input=evil.getvalue(),
                             env=support.env(), capture_output=True)
        self.assertEqual(res.returncode, 125)
        self.assertNotEqual(contain("exec", "cpr", "ls", "/escaped").returncode, 0)
        for args, words in ((("cpr:/nosuch", out), "Could not find the file"),
                            ((src, "cpr:/nodir/x"), "Could not find the directory"),
                            ((src, out), "one of SRC and DST")):
            res = contain("cp", *args)
            self.assertEqual(res.returncode, 125, res.stderr)
            self.assertIn(words, res.stderr)

    def test_copy_with_a_stopped_container(self):
        self.run_image("cps")
        contain("stop", "-t", "0", "cps", check=True)
        res = subprocess.run(support.contain_cmd("cp", "cps:/d/sub/f", "-"),
                             env=support.env(), capture_output=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
            self.assertEqual(tar.extractfile("f").read(), b"hello\n")
        src = os.path.join(tempfile.mkdtemp(dir=support.WORK), "while-stopped")
        with open(src, "w") as f:
            f.write("later\n")
        self.assertEqual(contain("cp", src, "cps:/etc/").returncode, 0)
        self.assertEqual(support.mounts_under(support.WORK), [])   # the overlay was private
        contain("start", "cps", check=True)
        self.assertEqual(contain("exec", "cps", "cat", "/etc/while-stopped").stdout, "later\n")


@requires_root
class UlimitDeviceCgroupTest(unittest.TestCase):
    def test_ulimit_inside(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        soft = min(hard, 100)
        res = run_rm("--rootfs", rootfs(), "--ulimit", f"nofile={soft // 2}:{soft}",
                     "--ulimit", "core=0", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), [str(soft // 2), str(soft), "0"])
        if not flags.has_cap_sys_resource() and hard != resource.RLIM_INFINITY:
            res = run_rm("--rootfs", rootfs(), "--ulimit", f"nofile=10:{hard + 1}", "true")
            self.assertEqual(res.returncode, 125)
            self.assertIn("CAP_SYS_RESOURCE", res.stderr)
            support.assert_no_container_left(self)

    def test_device_read_only_and_denied_without_it(self):
        img = os.path.join(support.WORK, "dev-loop.img")
        with open(img, "wb") as f:
            f.write(b"LOOPDATA" + bytes(4096 - 8))
        loop = subprocess.run(["losetup", "-f", "--show", img], capture_output=True,
                              text=True)
        if loop.returncode != 0:
            self.skipTest(f"no loop device: {loop.stderr.strip()}")
        dev = loop.stdout.strip()
        try:
            st = os.stat(dev)
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
            res = run_rm("--rootfs", rootfs(), "--device", f"{dev}:/dev/xloop:r",
                         "sh", "-c", "head -c 8 /dev/xloop; echo; echo y > /dev/xloop")
            self.assertEqual(res.stdout, "LOOPDATA\n", res.stderr)
            self.assertNotEqual(res.returncode, 0)                 # r: no writes
            self.assertIn("Operation not permitted", res.stderr)
            res = run_rm("--rootfs", rootfs(), "--device", f"{dev}:/dev/xloop",
                         "sh", "-c", "echo W > /dev/xloop && head -c 2 /dev/xloop")
            self.assertEqual((res.returncode, res.stdout), (0, "W\n"), res.stderr)
            res = run_rm("--rootfs", rootfs(), "sh", "-c",
                         f"mknod /dev/xl b {major} {minor} && head -c 2 /dev/xl")
            self.assertNotEqual(res.returncode, 0)                 # not without --device
            self.assertIn("Operation not permitted", res.stderr)
        finally:
            subprocess.run(["losetup", "-d", dev], capture_output=True)

    def test_device_directory_gives_every_node_below_it(self):
        """--device DIR[:CONTAINER]: each device node below DIR (Docker's
        /dev/snd), at the same place below CONTAINER; other files are not."""
        top = tempfile.mkdtemp(dir=support.WORK)
        os.makedirs(os.path.join(top, "sub"))
        os.mknod(os.path.join(top, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(os.path.join(top, "sub", "zero"), 0o666 | stat.S_IFCHR, os.makedev(1, 5))
        with open(os.path.join(top, "plain"), "w") as f:
            f.write("not a device")
        os.symlink("/dev/full", os.path.join(top, "link"))
        res = run_rm("--rootfs", rootfs(), "--device", f"{top}:/dev/mine", "sh", "-c",
                     "ls /dev/mine /dev/mine/sub; echo x > /dev/mine/null && "
                     "head -c 3 /dev/mine/sub/zero | od -An -tx1")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), ["/dev/mine:", "null", "sub", "/dev/mine/sub:",
                                              "zero", "00", "00", "00"])

    def test_cgroup_conf(self):
        from contain.engine.runtime import cgroup_driver
        res = run_rm("--rootfs", rootfs(), "--cgroup-conf", "memory.high=67108864",
                     "cat", "/sys/fs/cgroup/memory.high")
        if cgroup_driver().version != 2:
            self.assertEqual(res.returncode, 125)
            self.assertIn("--cgroup-conf needs cgroup v2", res.stderr)
            support.assert_no_container_left(self)
            return
        self.assertEqual((res.returncode, res.stdout), (0, "67108864\n"), res.stderr)


if __name__ == "__main__":
    unittest.main()
