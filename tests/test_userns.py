"""--userns=auto end to end: the container's root is the first id of a range
of unprivileged host ids (issue 7, part 6).  Real containers through the CLI,
checked from inside with busybox and from the host through /proc; plus unit
tests of the plan's two phases and of the flag's parsing.

The building blocks (range allocator, id maps, idmapped mounts) have their
own tests in test_security_userns.py.
"""

import json
import os
import pty
import shutil
import tarfile
import tempfile
import time
import unittest

from tests import support
from tests.support import contain, requires_root
from contain.core import mounts, security
from contain.engine import runtime
from contain.errors import UsageError

NET = ("--network", "none")


def ranges():
    """{container id: [start, size]} from the run's range registry."""
    try:
        with open(os.path.join(support.STATE_ROOT, "userns.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def uid_map(text):
    """[inside, outside, count] of a one-line uid_map."""
    return [int(x) for x in text.split()[:3]]


def idmap_supported():
    return support.IS_ROOT and security.idmapped_mount_supported(support.WORK)


needs_idmap = unittest.skipUnless(idmap_supported(),
                                  "no idmapped mounts on this kernel or filesystem")


# ------------------------------------------------------------------ unit tests
class ParseTest(unittest.TestCase):
    def test_values(self):
        self.assertIsNone(security.parse_userns(None))
        self.assertIsNone(security.parse_userns("host"))
        self.assertEqual(security.parse_userns("auto"), {"size": 65536})
        self.assertEqual(security.parse_userns("auto:size=1000"), {"size": 1000})
        for bad in ("keep-id", "auto:size=0", "auto:size=x", "auto:uidmapping=0:1:2", "AUTO"):
            with self.assertRaises(UsageError, msg=bad):
                security.parse_userns(bad)

    def test_conflicting_flags(self):
        base = {"security": {"userns": "auto"}, "network": {"mode": "none"}}
        runtime.check_userns(base)
        with self.assertRaisesRegex(UsageError, "--privileged"):
            runtime.check_userns(dict(base, security={"userns": "auto", "privileged": True}))
        with self.assertRaisesRegex(UsageError, "--network host"):
            runtime.check_userns(dict(base, network={"mode": "host"}))
        runtime.check_userns({"security": {"privileged": True}, "network": {"mode": "host"}})


class PlanPhasesTest(unittest.TestCase):
    """Which mount is made as host root before the user namespace, which after."""

    def plan(self, extra=(), network=None, root_mount=None, userns=True, version=1):
        from tests.test_unit_core import oci_config
        cfg = oci_config(extra_mounts=[
            {"destination": "/etc/hostname", "type": "bind", "source": "/state/hostname",
             "options": ["rbind"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/state/hosts",
             "options": ["rbind"]}] + list(extra), userns=userns, network=network)
        if root_mount:
            cfg["mounts"].insert(0, root_mount)
        return mounts.plan_from_spec(cfg, "/rootfs", version, [("memory", "memory")])

    MAPS = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}

    def test_host_phase_then_user_namespace(self):
        plan = self.plan([{"destination": "/data", "type": "bind", "source": "/srv",
                           "options": ["rbind"]},
                          {"destination": "/dev/shm2", "type": "bind", "source": "/dev/shm",
                           "options": ["rbind"]},
                          {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"},
                          {"destination": "/scratch/x", "type": "bind", "source": "/x",
                           "options": ["rbind"]}],
                         root_mount={"destination": "/", "type": "bind", "source": "/img",
                                     "options": ["rbind", "idmap"], **self.MAPS})
        early, late = mounts.split_plan(plan)
        self.assertEqual(plan, early + late)              # early ops come first
        self.assertIsInstance(early[0], mounts.MakePrivate)
        self.assertIsInstance(early[2], mounts.IdmappedMount)
        self.assertEqual([getattr(op, "target", None) for op in early[3:]],
                         ["/proc", "/etc/hostname", "/etc/hosts", "/data"])
        self.assertIsInstance(late[0], mounts.RebindRoot)
        late_targets = [op.target for op in late if isinstance(op, mounts.MountOp)]
        # binds that land on mounts made later stay after them
        self.assertLess(late_targets.index("/dev"), late_targets.index("/dev/shm2"))
        self.assertLess(late_targets.index("/scratch"), late_targets.index("/scratch/x"))
        self.assertIn("/sys", late_targets)               # its own netns: the container's
        # no mknod in a user namespace: the host's nodes are bound
        self.assertFalse([op for op in plan if isinstance(op, mounts.Device)])
        devices = [op.target for op in late if isinstance(op, mounts.BindDevice)]
        self.assertEqual(devices, [f"/dev/{n}" for n, _, _ in mounts.DEFAULT_DEVICES])
        # cgroup v1 cannot be mounted in a user namespace: skipped, and said so
        self.assertNotIn("/sys/fs/cgroup/memory", late_targets)
        self.assertTrue([op for op in late if isinstance(op, mounts.Note)
                         and "cgroup v1" in op.describe()])
        self.assertIsInstance(late[-1], mounts.ReadOnly)   # masks etc. after pivot

    def test_overlay_and_shared_network(self):
        overlay = {"destination": "/", "type": "overlay", "source": "overlay",
                   "options": ["lowerdir=/l/2:/l/1", "upperdir=/u", "workdir=/w", "idmap"],
                   **self.MAPS}
        plan = self.plan(network={"type": "network", "path": "/proc/1/ns/net"},
                         root_mount=overlay)
        early, _ = mounts.split_plan(plan)
        self.assertIsInstance(early[2], mounts.IdmappedOverlay)
        # sysfs of a network namespace the user namespace does not own: as host root
        self.assertIn("/sys", [getattr(op, "target", None) for op in early])

    def test_without_userns_nothing_changes(self):
        plan = self.plan(userns=False)
        self.assertFalse([op for op in plan if op.before_userns])
        self.assertFalse([op for op in plan if isinstance(op, (mounts.RebindRoot,
                                                               mounts.BindDevice))])
        self.assertTrue([op for op in plan if isinstance(op, mounts.Device)])


# ---------------------------------------------------------- real containers
@requires_root
@needs_idmap
class UsernsContainerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rootfs = support.busybox_rootfs()

    def setUp(self):
        self.ranges_before = ranges()

    def run_c(self, *cmd, opts=(), ok=True):
        res = contain("run", "--rm", "--userns=auto", "--rootfs", self.rootfs, *NET, *opts,
                      "--", *cmd)
        if ok:
            self.assertEqual(res.returncode, 0, res.stderr)
        return res

    def detached(self, *cmd):
        res = contain("run", "-d", "--userns=auto", *NET, "--rootfs", self.rootfs, "--", *cmd)
        self.assertEqual(res.returncode, 0, res.stderr)
        cid = res.stdout.strip()
        self.addCleanup(contain, "rm", "-f", cid)
        return cid

    def pid_of(self, cid):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(support.STATE_ROOT, "containers", cid,
                                       "state.json")) as f:
                    pid = json.load(f).get("pid")
                if pid:
                    return pid
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        self.fail(f"container {cid[:12]} has no pid")

    def assertNothingLeft(self):
        self.assertEqual(ranges(), self.ranges_before, "id ranges left behind")
        support.assert_no_container_left(self)

    def test_root_inside_is_the_first_id_of_a_range(self):
        res = self.run_c("sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g;"
                         " stat -c %u:%g / /bin/busybox /etc/hosts /etc/resolv.conf /home/app;"
                         " cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null && echo ok")
        lines = res.stdout.splitlines()
        inside, base, count = uid_map(lines[0])
        self.assertEqual((inside, count), (0, 65536))
        self.assertGreaterEqual(base, security.ID_RANGE_BASE)
        self.assertEqual(uid_map(lines[1]), [0, base, 65536])
        self.assertEqual(lines[2:4], ["0", "0"])
        # the image's files and the runtime's /etc files belong to root inside;
        # an image file owned by 1000 on disk is 1000 inside (idmapped, not chowned)
        self.assertEqual(lines[4:9], ["0:0"] * 4 + ["1000:1000"])
        self.assertEqual(lines[9], "ok")
        self.assertEqual(os.stat(os.path.join(self.rootfs, "bin/busybox")).st_uid, 0)
        self.assertNothingLeft()

    def test_host_sees_an_unprivileged_process_and_exec_joins_the_namespace(self):
        cid = self.detached("sleep", "60")
        pid = self.pid_of(cid)
        base, size = ranges()[cid]
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        self.assertEqual(status["Uid"].split(), [str(base)] * 4)
        self.assertEqual(status["Gid"].split(), [str(base)] * 4)
        self.assertEqual(status["Groups"].split(), [])      # no host groups kept
        with open(f"/proc/{pid}/uid_map") as f:
            self.assertEqual(uid_map(f.read()), [0, base, size])
        res = contain("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; readlink "
                      "/proc/self/ns/user; readlink /proc/1/ns/user")
        self.assertEqual(res.returncode, 0, res.stderr)
        out = res.stdout.splitlines()
        self.assertEqual(out[0], "0")
        self.assertEqual(uid_map(out[1]), [0, base, size])
        self.assertEqual(out[2], out[3])                      # the same user namespace
        self.assertEqual(out[2], os.readlink(f"/proc/{pid}/ns/user"))
        res = contain("exec", "-u", "1000", cid, "id", "-u")
        self.assertEqual((res.returncode, res.stdout.strip()), (0, "1000"), res.stderr)
        self.assertEqual(contain("rm", "-f", cid).returncode, 0)
        self.assertNothingLeft()

    def test_image_writes_land_in_upper_owned_by_the_range(self):
        name = f"userns-image-{support.RUN_ID}"
        res = contain("run", "--name", name, "--userns=auto", *NET, "busybox", "sh", "-c",
                      "stat -c %u / /bin/busybox; echo data > /created; touch /owned33;"
                      " chown 33:33 /owned33; echo more >> /etc/passwd; mkdir /newdir")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), ["0", "0"])
        self.addCleanup(contain, "rm", "-f", name)
        cid = json.loads(contain("inspect", name).stdout)[0]["Id"]
        base = ranges()[cid][0]
        upper = os.path.join(support.STATE_ROOT, "containers", cid, "upper")
        owner = lambda p: (os.stat(os.path.join(upper, p)).st_uid,  # noqa: E731
                           os.stat(os.path.join(upper, p)).st_gid)
        self.assertEqual(owner("."), (base, base))
        self.assertEqual(owner("created"), (base, base))
        self.assertEqual(owner("newdir"), (base, base))
        self.assertEqual(owner("owned33"), (base + 33, base + 33))
        self.assertEqual(owner("etc/passwd"), (base, base))   # a copy-up
        # the image's layer, shared with every container, is unchanged on disk
        image = json.loads(contain("image", "inspect", "busybox").stdout)[0]
        layer = image["GraphDriver"]["Data"]["LowerDir"].split(":")[-1]
        self.assertEqual(os.stat(os.path.join(layer, "etc/passwd")).st_uid, 0)
        with open(os.path.join(layer, "etc/passwd")) as f:
            self.assertNotIn("more", f.read())
        self.assertEqual(contain("rm", cid).returncode, 0)
        self.assertNothingLeft()

    def test_root_inside_cannot_do_what_host_root_can(self):
        scratch = tempfile.mkdtemp(dir=support.WORK)
        self.addCleanup(shutil.rmtree, scratch)
        owned = os.path.join(scratch, "root-owned")
        with open(owned, "w") as f:
            f.write("host\n")
        os.chmod(owned, 0o644)
        probe = ("grep CapEff /proc/self/status; cat /hf; echo x >> /hf; echo write=$?;"
                 " mknod /tmp/null c 1 3; echo mknod=$?")
        res = self.run_c("sh", "-c", probe, opts=("--cap-add", "ALL", "-v", f"{owned}:/hf"))
        self.assertIn("host", res.stdout)                    # readable (0644)...
        self.assertIn("write=1", res.stdout)                 # ...but not writable
        self.assertIn("Permission denied", res.stderr)
        self.assertIn("mknod=1", res.stdout)
        caps = int(res.stdout.split("CapEff:")[1].split()[0], 16)
        self.assertEqual(caps, security.caps_mask(security.all_caps()))  # all of them, in vain
        with open(owned) as f:
            self.assertEqual(f.read(), "host\n")
        # the same container without a user namespace: host root writes it
        res = contain("run", "--rm", "--rootfs", self.rootfs, *NET, "--cap-add", "ALL",
                      "-v", f"{owned}:/hf", "--", "sh", "-c", "echo x >> /hf")
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(owned) as f:
            self.assertEqual(f.read(), "host\nx\n")
        self.assertNothingLeft()

    def test_locked_mounts_stay_read_only_even_with_cap_sys_admin(self):
        vol = tempfile.mkdtemp(dir=support.WORK)
        self.addCleanup(shutil.rmtree, vol)
        os.chmod(vol, 0o777)          # writable by anyone: only the mount is read-only
        res = self.run_c("sh", "-c",
                         "mount -o remount,bind,rw /vol; echo remount=$?; touch /vol/f;"
                         " echo vol=$?; touch /f; echo root=$?; umount /etc/hosts; echo umount=$?;"
                         " touch /tmp/t && echo tmp-ok",
                         opts=("--read-only", "--tmpfs", "/tmp", "-v", f"{vol}:/vol:ro",
                               "--cap-add", "SYS_ADMIN", "--security-opt",
                               "seccomp=unconfined"))
        for expect in ("remount=1", "vol=1", "root=1", "umount=1", "tmp-ok"):
            self.assertIn(expect, res.stdout, res.stderr)
        self.assertEqual(os.listdir(vol), [])
        self.assertNothingLeft()

    def test_ranges_are_distinct_and_rm_releases_them(self):
        a = self.detached("sleep", "60")
        b = self.detached("sleep", "60")
        got = ranges()
        self.assertNotEqual(got[a][0], got[b][0])
        self.assertGreaterEqual(abs(got[a][0] - got[b][0]), 65536)
        for cid in (a, b):
            with open(f"/proc/{self.pid_of(cid)}/uid_map") as f:
                self.assertEqual(uid_map(f.read()), [0] + got[cid])
        self.assertEqual(contain("rm", "-f", a).returncode, 0)
        self.assertNotIn(a, ranges())
        c = self.detached("sleep", "60")
        self.assertEqual(ranges()[c], got[a])                # a's range, reused
        for cid in (b, c):
            self.assertEqual(contain("rm", "-f", cid).returncode, 0)
        self.assertNothingLeft()

    def test_explain_mode_shows_the_user_namespace_steps(self):
        res = contain("run", "-v", "--rm", "--userns=auto", "--rootfs", self.rootfs, *NET,
                      "--", "true")
        self.assertEqual(res.returncode, 0, res.stderr)
        log = res.stderr
        steps = ["user namespace: container root is host uid/gid",
                 "creating namespaces: pid uts mnt ipc net cgroup user",
                 "user namespace: mounting what needs the host's root first",
                 "(idmapped mount)", "mounting proc on /proc", "on /etc/hosts",
                 "writing uid_map and gid_map of", "becoming root of the user namespace",
                 "binding the root onto itself inside the user namespace",
                 "binding the host's /dev/null (no mknod in a user namespace)",
                 "pivoting root"]
        positions = [log.find(s) for s in steps]
        self.assertNotIn(-1, positions, log)
        self.assertEqual(positions, sorted(positions), log)   # in this order
        if runtime.cgroup_driver().version == 1:
            self.assertIn("skipping the cgroup v1 hierarchies", log)

    def test_refused_and_failed_containers_leave_nothing(self):
        for opts, message in ((("--privileged",), "--privileged cannot be used"),
                              (("--network", "host"), "--network host cannot be used"),
                              (("--userns=bogus",), "invalid --userns 'bogus'")):
            res = contain("run", "--rm", "--userns=auto", "--rootfs", self.rootfs, *opts,
                          "--", "true")
            self.assertEqual(res.returncode, 125, res.stderr)
            self.assertEqual(res.stderr.count("\n"), 1, res.stderr)
            self.assertIn(message, res.stderr)
        # a step of the child fails (a bind onto /dev comes after the user
        # namespace, and the container's root may not walk through the 0700 WORK)
        hidden = tempfile.mkdtemp(dir=support.WORK)
        self.addCleanup(os.rmdir, hidden)
        res = self.run_c("true", opts=("-v", f"{hidden}:/dev/work"), ok=False)
        self.assertEqual(res.returncode, 125)
        self.assertEqual(res.stderr, "contain: mount /dev/work: Permission denied\n")
        res = self.run_c("no-such-command", ok=False)
        self.assertEqual(res.returncode, 127)
        self.assertNothingLeft()

    def test_tty(self):
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(support.PYTHON, [support.PYTHON, support.CONTAIN, "run", "--rm", "-t",
                                           "--userns=auto", "--rootfs", self.rootfs, *NET,
                                           "--", "sh", "-c", "tty; id -u"], support.env())
            finally:
                os._exit(127)
        try:
            out = support.read_pty(fd)
        finally:
            os.close(fd)
            _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertEqual(out.split(), ["/dev/pts/0", "0"])
        self.assertNothingLeft()


@requires_root
@needs_idmap
class UsernsBridgeNetworkTest(unittest.TestCase):
    """The parent writes the maps and then plugs the veth in: a userns
    container on the bridge, inside tests/netsandbox.py's private network."""

    def setUp(self):
        from contain.engine import netfilter
        from tests import netsandbox
        if not netfilter.available():
            self.skipTest("iptables is not installed")
        self.sb = netsandbox.Sandbox()
        self.addCleanup(self.sb.cleanup)
        self.sb.setup()
        self.env = {"CONTAIN_ROOT": tempfile.mkdtemp(prefix="userns-net-", dir=support.WORK)}
        self.host_ip = netsandbox.HOST_IP

    def test_bridge(self):
        res = self.sb.contain("run", "--rm", "--userns=auto", "--rootfs",
                              support.busybox_rootfs(), "--", "sh", "-c",
                              "cat /proc/self/uid_map; ip -o -4 addr show eth0;"
                              f" ping -c 1 -W 2 {self.host_ip} >/dev/null && echo pong",
                              timeout=20, extra_env=self.env)
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.splitlines()
        self.assertEqual(uid_map(lines[0])[0::2], [0, 65536])
        self.assertIn("inet ", lines[1])
        self.assertEqual(lines[2], "pong")
        with open(os.path.join(self.env["CONTAIN_ROOT"], "userns.json")) as f:
            self.assertEqual(json.load(f), {})


@requires_root
class ChownFallbackTest(unittest.TestCase):
    """Without idmapped mounts a --rootfs tarball's private copy is chowned
    into the range (forced here: the answer for its filesystem is cached)."""

    def test_tarball_copy_is_shifted(self):
        from contain.engine.state import Store
        tar = os.path.join(support.WORK, "userns-rootfs.tar")
        with tarfile.open(tar, "w") as t:
            t.add(support.busybox_rootfs(), arcname=".")
        self.addCleanup(os.unlink, tar)
        store = Store(support.STATE_ROOT)
        store.ensure()
        dev = os.stat(store.containers).st_dev
        saved = dict(security._idmap_supported)
        security._idmap_supported[dev] = False
        try:
            c = runtime.create_container(store, {
                "rootfs": {"type": "tar", "path": tar}, "argv": ["sh", "-c",
                                                               "id -u; stat -c %u /bin/busybox"],
                "security": {"userns": "auto"}, "network": {"mode": "none"},
                "cgroup_parent": support.CGROUP_PARENT})
        finally:
            security._idmap_supported.clear()
            security._idmap_supported.update(saved)
        self.addCleanup(contain, "rm", "-f", c.id)
        base = c.state["userns"]["start"]
        self.assertEqual(c.state["userns"]["rootfs"], "shifted")
        self.assertEqual(os.stat(c.path("rootfs", "bin", "busybox")).st_uid, base)
        res = contain("start", "-a", c.id)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), ["0", "0"])
        self.assertEqual(contain("rm", c.id).returncode, 0)
        self.assertNotIn(c.id, ranges())


if __name__ == "__main__":
    unittest.main()
