"""The OCI runtime (`contain.py oci`) against config.json, field by field.

Every test writes a bundle (config.json + a busybox root), runs it with
`contain.py oci --root <temp> run` (or create/start), and checks what the
field did from inside the container, with the container's own tools
(busybox, and tests/probe.c built static for what busybox cannot say).
Each container's cgroupsPath lies below a parent cgroup the class creates in
every hierarchy (v1 controllers, name=systemd, the unified one) and removes,
with anything left in it, when the class ends.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from tests import support
from tests.engines import CgroupParent
from tests.test_engines import wait_for
from tests.test_security import probe_binary

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else support.PYTHON
RUNC = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ALL_CAPS_FOR_PROBE = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID",
                      "CAP_SETGID", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_MKNOD"]


def alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def ns_inode(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


class ConsoleServer:
    """A unix socket that receives a terminal master (SCM_RIGHTS), as conmon
    and the containerd shim do; .output() reads the pty until EOF."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.master = None
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(30)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            self.master = fds[0] if fds else None

    def output(self, until=None, timeout=15):
        self.thread.join(timeout)
        if self.master is None:
            raise AssertionError("no terminal master arrived on the console socket")
        return support.read_pty(self.master, until=until, timeout=timeout)

    def close(self):
        self.sock.close()
        if self.master is not None:
            os.close(self.master)
            self.master = None


@support.requires_root
class OciCase(unittest.TestCase):
    """One state root, one cgroup parent, one busybox root with the probe
    (a plain and a setuid-root copy) per class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="oci-", dir=support.WORK)
        cls.root = os.path.join(cls.tmp, "state")
        cls.cg = CgroupParent(f"contain-test-oci-{os.getpid()}-{cls.__name__.lower()}")
        try:
            cls.cg.create()
            cls.rootfs = support.fresh_rootfs("oci-" + cls.__name__)
            probe = probe_binary()
            for name, mode in (("probe", 0o755), ("suid-probe", 0o4755)):
                dest = os.path.join(cls.rootfs, name)
                shutil.copy(probe, dest)
                os.chmod(dest, mode)
        except BaseException:
            cls.cg.remove()
            raise
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        for cid in os.listdir(cls.root) if os.path.isdir(cls.root) else ():
            cls._oci("delete", "--force", cid)
        left = cls.cg.remove()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if left:
            raise AssertionError(f"cgroups left behind: {left}")

    def tearDown(self):
        for cid in os.listdir(self.root) if os.path.isdir(self.root) else ():
            self._oci("delete", "--force", cid)

    # ----------------------------------------------------------- helpers
    @classmethod
    def _oci(cls, *args, timeout=60, root=None, **kw):
        """Run `contain.py oci --root ROOT ARGS`.  Output goes through files,
        not pipes: a created container keeps its stdio (the caller's) open,
        so waiting for a pipe's EOF would wait for the container."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            res = subprocess.run([PYTHON, support.CONTAIN, "oci", "--root", root or cls.root,
                                  *args], text=True, timeout=timeout, stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, **kw)
            out.seek(0)
            err.seek(0)
            res.stdout, res.stderr = out.read(), err.read()
        return res

    def ids(self):
        """The container records in the state root."""
        return os.listdir(self.root) if os.path.isdir(self.root) else []

    def oci(self, *args, ok=True, **kw):
        res = self._oci(*args, **kw)
        if ok and res.returncode != 0:
            self.fail(f"oci {' '.join(args)} exited {res.returncode}: {res.stderr}")
        return res

    def new_id(self):
        type(self).counter += 1
        return f"{self._testMethodName[5:25]}-{self.counter}".replace("_", "-")

    def config(self, args, rootfs=None, readonly=True, **process):
        """A minimal config.json running args (a shell line if a string)."""
        if isinstance(args, str):
            args = ["sh", "-c", args]
        proc = {"args": args, "env": [PATH_ENV, "HOME=/root"], "cwd": "/",
                "user": {"uid": 0, "gid": 0},
                "capabilities": {k: list(ALL_CAPS_FOR_PROBE)
                                 for k in ("bounding", "effective", "permitted")}}
        proc.update(process)
        return {
            "ociVersion": "1.0.2",
            "process": proc,
            "root": {"path": rootfs or self.rootfs, "readonly": readonly},
            "hostname": "oci-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                             "mode=0620"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "nodev", "mode=1777"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
            ],
            "linux": {
                "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts",
                                                     "mount")],
                "cgroupsPath": f"{self.cg.path}/{self.new_id()}",
            },
        }

    def bundle(self, config):
        d = tempfile.mkdtemp(prefix="bundle-", dir=self.tmp)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f)
        return d

    def run_config(self, config, cid=None, ok=True, **kw):
        """`oci run` of config in the foreground: CompletedProcess."""
        cid = cid or self.new_id()
        return self.oci("run", "--bundle", self.bundle(config), cid, ok=ok, **kw)

    def output(self, args, **kw):
        """stdout of a container running args with config(args, **kw)."""
        return self.run_config(self.config(args, **kw)).stdout

    def create(self, config, cid=None, extra=(), **kw):
        cid = cid or self.new_id()
        self.oci("create", "--bundle", self.bundle(config), *extra, cid, **kw)
        return cid

    def detached(self, config=None, cid=None):
        """A running container (sleeping); returns (id, pid)."""
        cid = self.create(config or self.config("exec sleep 1000"), cid)
        self.oci("start", cid)
        return cid, self.state(cid)["pid"]

    def state(self, cid):
        return json.loads(self.oci("state", cid).stdout)

    def exec_out(self, cid, *args, **kw):
        return self.oci("exec", cid, *args, **kw).stdout

    def status_field(self, text, name):
        m = re.search(rf"^{name}:\s*(\S+)", text, re.M)
        self.assertIsNotNone(m, f"{name} not in {text!r}")
        return m.group(1)


# ====================================================================== root
ROOT_LINE = "awk '$5 == \"/\"' /proc/self/mountinfo"


class TestRoot(OciCase):
    def test_relative_root_path(self):
        d = tempfile.mkdtemp(prefix="bundle-", dir=self.tmp)
        shutil.copytree(support.busybox_rootfs(), os.path.join(d, "myroot"), symlinks=True)
        with open(os.path.join(d, "myroot", "marker"), "w") as f:
            f.write("relative root\n")
        config = self.config("cat /marker", rootfs="myroot")
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f)
        res = self.oci("run", "--bundle", d, self.new_id())
        self.assertEqual(res.stdout, "relative root\n")

    def test_absolute_root_path_readonly(self):
        out = self.output("touch /x 2>&1; echo rc=$?; " + ROOT_LINE)
        self.assertIn("Read-only file system", out)
        self.assertIn("rc=1", out)
        self.assertIn("ro", out.splitlines()[-1].split()[5].split(","))

    def test_writable_root(self):
        rootfs = support.fresh_rootfs("oci-writable")
        try:
            out = self.output("echo hi > /written && cat /written", rootfs=rootfs,
                              readonly=False)
            self.assertEqual(out, "hi\n")
            self.assertTrue(os.path.exists(os.path.join(rootfs, "written")))
        finally:
            shutil.rmtree(rootfs)


# ==================================================================== mounts
class TestMounts(OciCase):
    def setUp(self):
        # a host directory with a tmpfs mounted below it, for bind vs rbind
        self.src = tempfile.mkdtemp(prefix="src-", dir=self.tmp)
        os.chmod(self.src, 0o755)
        with open(os.path.join(self.src, "top"), "w") as f:
            f.write("top\n")
        self.sub = os.path.join(self.src, "sub")
        os.mkdir(self.sub)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "subtmp", self.sub],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.sub])
        with open(os.path.join(self.sub, "inner"), "w") as f:
            f.write("inner\n")

    def with_mount(self, script, *mounts, **kw):
        config = self.config(script, **kw)
        config["mounts"] += list(mounts)
        return self.run_config(config).stdout

    def test_bind_is_not_recursive_rbind_is(self):
        out = self.with_mount("cat /b/top; ls /b/sub; echo --; cat /rb/sub/inner",
                              {"destination": "/b", "type": "bind", "source": self.src,
                               "options": ["bind"]},
                              {"destination": "/rb", "type": "bind", "source": self.src,
                               "options": ["rbind"]})
        self.assertEqual(out, "top\n--\ninner\n")

    def test_ro_bind(self):
        out = self.with_mount("touch /b/new 2>&1; echo rc=$?; cat /b/top",
                              {"destination": "/b", "type": "bind", "source": self.src,
                               "options": ["rbind", "ro"]})
        self.assertIn("Read-only file system", out)
        self.assertIn("rc=1", out)
        self.assertFalse(os.path.exists(os.path.join(self.src, "new")))

    def test_rro_makes_submounts_read_only(self):
        script = "touch /b/new; echo top=$?; touch /b/sub/new; echo sub=$?"
        out = self.with_mount(script, {"destination": "/b", "type": "bind",
                                       "source": self.src, "options": ["rbind", "rro"]})
        self.assertIn("top=1", out)
        self.assertIn("sub=1", out, "a mount below an rro bind stayed writable")
        self.assertFalse(os.path.exists(os.path.join(self.sub, "new")))
        # plain ro is for the top mount only (as in runc)
        out = self.with_mount(script, {"destination": "/b", "type": "bind",
                                       "source": self.src, "options": ["rbind", "ro"]})
        self.assertIn("top=1", out)
        self.assertIn("sub=0", out)
        os.unlink(os.path.join(self.sub, "new"))

    def test_nosuid_nodev_noexec(self):
        shutil.copy(os.path.join(self.rootfs, "suid-probe"), os.path.join(self.src, "sp"))
        os.chmod(os.path.join(self.src, "sp"), 0o4755)
        script = ("awk '$5 == \"/b\" {print $6}' /proc/self/mountinfo; "
                  "/b/sp euid 2>/dev/null; echo exec=$?; /n/sp euid; /suid-probe euid")
        out = self.with_mount(script,
                              {"destination": "/b", "type": "bind", "source": self.src,
                               "options": ["bind", "noexec", "nodev", "nosuid"]},
                              {"destination": "/n", "type": "bind", "source": self.src,
                               "options": ["bind", "nosuid"]},
                              user={"uid": 65534, "gid": 65534}).splitlines()
        for opt in ("nosuid", "nodev", "noexec"):
            self.assertIn(opt, out[0].split(","))
        self.assertEqual(out[1], "exec=126")                  # noexec: Permission denied
        # nosuid: the setuid-root copy runs as its caller; outside /n it is root
        self.assertEqual(out[2:], ["65534", "0"])

    def test_propagation_rslave_sees_host_mounts(self):
        # the source must be a shared mount for a slave to receive events
        subprocess.run(["mount", "--bind", self.src, self.src], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.src])
        subprocess.run(["mount", "--make-shared", self.src], check=True)
        config = self.config("exec sleep 1000")
        config["mounts"] += [{"destination": "/slave", "type": "bind", "source": self.src,
                              "options": ["rbind", "rslave"]},
                             {"destination": "/priv", "type": "bind", "source": self.src,
                              "options": ["rbind", "rprivate"]}]
        cid, _ = self.detached(config)
        late = os.path.join(self.src, "late")
        os.mkdir(late)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "late", late], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", late])
        with open(os.path.join(late, "f"), "w") as f:
            f.write("late\n")
        out = self.exec_out(cid, "sh", "-c", "cat /slave/late/f; ls /priv/late | wc -l;"
                            " grep -E ' /(slave|priv) ' /proc/self/mountinfo")
        lines = out.splitlines()
        self.assertEqual(lines[:2], ["late", "0"])
        slave = [l for l in lines if " /slave " in l][0]
        priv = [l for l in lines if " /priv " in l][0]
        self.assertIn("master:", slave)
        self.assertNotIn("master:", priv)
        self.assertNotIn("shared:", priv)

    def test_tmpfs_size_and_mode(self):
        out = self.with_mount("stat -c %a /t; df -k /t | tail -1",
                              {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                               "options": ["size=2m", "mode=710", "nosuid"]})
        mode, df = out.splitlines()
        self.assertEqual(mode, "710")
        self.assertEqual(df.split()[1], "2048")

    def test_idmap_mount(self):
        from contain.core import linux
        if not getattr(linux, "SYS_mount_setattr", 0):
            self.skipTest("no mount_setattr here: no idmapped mounts")
        # the mount's mapping takes on-disk id N to the host id it maps N to:
        # a root-owned file shows as 100000 (a user namespace's root)
        path = os.path.join(self.src, "owned")
        with open(path, "w") as f:
            f.write("x")
        os.chown(path, 0, 0)
        out = self.with_mount("stat -c %u:%g /m/owned",
                              {"destination": "/m", "type": "bind", "source": self.src,
                               "options": ["bind", "idmap"],
                               "uidMappings": [{"containerID": 0, "hostID": 100000,
                                                "size": 1000}],
                               "gidMappings": [{"containerID": 0, "hostID": 100000,
                                                "size": 1000}]})
        self.assertEqual(out.strip(), "100000:100000")


# ============================================================== uts names
class TestNames(OciCase):
    def test_hostname_and_domainname(self):
        config = self.config("hostname; cat /proc/sys/kernel/domainname")
        config["hostname"] = "box-one"
        config["domainname"] = "example.test"
        self.assertEqual(self.run_config(config).stdout, "box-one\nexample.test\n")


# ================================================================== process
class TestProcess(OciCase):
    def test_args_env_cwd(self):
        config = self.config(["sh", "-c", 'echo "$0|$1|$FOO|$PWD"', "zero", "one"],
                             env=[PATH_ENV, "FOO=bar baz"], cwd="/made/here")
        self.assertEqual(self.run_config(config).stdout, "zero|one|bar baz|/made/here\n")

    def test_user_uid_gid_umask_additional_gids(self):
        config = self.config("id -u; id -g; id -G; umask; touch /tmp/f; stat -c %a /tmp/f",
                             user={"uid": 1000, "gid": 1001, "umask": 0o027,
                                   "additionalGids": [20, 30]})
        out = self.run_config(config).stdout.splitlines()
        self.assertEqual(out[0], "1000")
        self.assertEqual(out[1], "1001")
        self.assertEqual(sorted(out[2].split()), ["1001", "20", "30"])
        self.assertEqual(out[3], "0027")
        self.assertEqual(out[4], "640")

    def test_terminal_console_size(self):
        sock = os.path.join(self.tmp, "console.sock")
        server = ConsoleServer(sock)
        try:
            config = self.config("tty; stty size", terminal=True,
                                 consoleSize={"height": 33, "width": 111})
            cid = self.create(config, extra=("--console-socket", sock))
            self.oci("start", cid)
            out = server.output(until="111")
            self.assertRegex(out, r"/dev/pts/\d+")
            self.assertIn("33 111", out)
        finally:
            server.close()
            os.unlink(sock)

    def test_terminal_without_console_socket_refused(self):
        res = self.oci("create", "--bundle", self.bundle(self.config("true", terminal=True)),
                       self.new_id(), ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("console-socket", res.stderr)
        self.assertEqual(self.ids(), [])

    def test_five_capability_sets(self):
        caps = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETPCAP"],
                "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
                "effective": ["CAP_CHOWN", "CAP_KILL"],
                "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
                "ambient": ["CAP_KILL"]}
        out = self.output("grep ^Cap /proc/self/status", capabilities=caps)
        # CHOWN 0, KILL 5, SETPCAP 8, NET_RAW 13
        want = {"CapBnd": (1 << 0) | (1 << 5) | (1 << 8) | (1 << 13),
                "CapPrm": (1 << 0) | (1 << 5) | (1 << 13),
                "CapEff": (1 << 0) | (1 << 5),
                "CapInh": (1 << 5) | (1 << 13),
                "CapAmb": 1 << 5}
        # grep is a new program: a non-root user would keep only ambient; root
        # (uid 0) gets its permitted set back from the bounding set at execve
        got = {k: int(self.status_field(out, k), 16) for k in want}
        self.assertEqual(got["CapBnd"], want["CapBnd"])
        self.assertEqual(got["CapInh"], want["CapInh"])
        self.assertEqual(got["CapAmb"], want["CapAmb"])
        out = self.output("grep ^Cap /proc/self/status", capabilities=caps,
                          user={"uid": 1000, "gid": 1000})
        got = {k: int(self.status_field(out, k), 16) for k in want}
        self.assertEqual(got, {**want, "CapPrm": 1 << 5, "CapEff": 1 << 5})

    def test_rlimits(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        new_hard = min(hard, 4096)
        config = self.config("ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc", rlimits=[
            {"type": "RLIMIT_NOFILE", "soft": 321, "hard": new_hard},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}])
        self.assertEqual(self.run_config(config).stdout.split(),
                         ["321", str(new_hard), "0", "0"])

    def test_rlimit_above_hard_limit_fails_clearly(self):
        import resource
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        config = self.config("true", rlimits=[{"type": "RLIMIT_NOFILE", "soft": hard + 1,
                                               "hard": hard + 1}])
        res = self.run_config(config, ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("RLIMIT_NOFILE", res.stderr)

    def test_no_new_privileges(self):
        script = "grep ^NoNewPrivs /proc/self/status; /suid-probe euid"
        user = {"uid": 1000, "gid": 1000}
        on = self.output(script, user=user, noNewPrivileges=True)
        self.assertEqual(on.split("\n")[0].split(), ["NoNewPrivs:", "1"])
        self.assertEqual(on.split("\n")[1], "1000")       # setuid ignored
        off = self.output(script, user=user)
        self.assertEqual(off.split("\n")[0].split(), ["NoNewPrivs:", "0"])
        self.assertEqual(off.split("\n")[1], "0")         # setuid works

    def test_oom_score_adj(self):
        self.assertEqual(self.output("cat /proc/self/oom_score_adj", oomScoreAdj=345),
                         "345\n")

    def test_apparmor_and_selinux_refused(self):
        for field, value in (("apparmorProfile", "docker-default"),
                             ("selinuxLabel", "system_u:system_r:container_t:s0")):
            config = self.config("true", **{field: value})
            res = self.run_config(config, ok=False)
            self.assertNotEqual(res.returncode, 0, field)
            self.assertIn(field, res.stderr)
            self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
            self.assertEqual(self.ids(), [])


# =============================================================== namespaces
ALL_NS = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
PROC_NS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
           "user": "user", "cgroup": "cgroup", "time": "time"}
IDMAP = [{"containerID": 0, "hostID": 200000, "size": 65536}]


class TestNamespaces(OciCase):
    def ns_config(self, script, kinds, **paths):
        config = self.config(script)
        config["linux"]["namespaces"] = [
            {"type": k, **({"path": paths[k]} if k in paths else {})} for k in kinds]
        if "user" in kinds and "user" not in paths:
            config["linux"]["uidMappings"] = IDMAP
            config["linux"]["gidMappings"] = IDMAP
            # the root is owned by host root, outside the mapping: world-readable
            config["mounts"] = [m for m in config["mounts"] if m["type"] != "sysfs"]
        return config

    def inside_ns(self, config):
        script = "for n in pid net mnt ipc uts user cgroup time; do " \
                 "echo $n $(readlink /proc/self/ns/$n); done"
        config["process"]["args"] = ["sh", "-c", script]
        out = self.run_config(config).stdout
        return dict(line.split(" ", 1) for line in out.splitlines())

    def test_each_new_namespace(self):
        if not os.path.exists("/proc/self/ns/time"):
            self.skipTest("this kernel has no time namespaces")
        got = self.inside_ns(self.ns_config("", ALL_NS))
        for kind in ALL_NS:
            name = PROC_NS[kind]
            self.assertNotEqual(got[name], ns_inode("self", name), f"{kind} not new")

    def test_absent_namespace_is_the_callers(self):
        got = self.inside_ns(self.ns_config("", ("mount",)))
        for name in ("pid", "net", "ipc", "uts", "user", "cgroup"):
            self.assertEqual(got[name], ns_inode("self", name), name)

    def test_join_by_path_of_another_container(self):
        kinds = ("pid", "network", "ipc", "uts", "cgroup", "mount")
        first, pid = self.detached(self.ns_config("exec sleep 1000", kinds))
        joined = {k: f"/proc/{pid}/ns/{PROC_NS[k]}" for k in kinds if k != "mount"}
        got = self.inside_ns(self.ns_config("", kinds, **joined))
        for kind in joined:
            self.assertEqual(got[PROC_NS[kind]], ns_inode(pid, PROC_NS[kind]), kind)
        self.assertNotEqual(got["mnt"], ns_inode(pid, "mnt"))

    def test_join_user_and_time_namespaces_by_path(self):
        if not os.path.exists("/proc/self/ns/time"):
            self.skipTest("this kernel has no time namespaces")
        kinds = ("pid", "mount", "user", "time")
        first, pid = self.detached(self.ns_config("exec sleep 1000", kinds))
        # the PID namespace is joined too: a new one would belong to the
        # host's user namespace, whose /proc the joined user cannot mount
        joined = {k: f"/proc/{pid}/ns/{k}" for k in ("user", "time", "pid")}
        got = self.inside_ns(self.ns_config("", kinds, **joined))
        self.assertEqual(got["user"], ns_inode(pid, "user"))
        self.assertEqual(got["pid"], ns_inode(pid, "pid"))
        self.assertEqual(got["time"], ns_inode(pid, "time"))

    def test_join_network_namespace_made_by_unshare(self):
        holder = subprocess.Popen(["unshare", "--net", "sh", "-c",
                                   "ip link set lo mtu 1234; echo ok; exec sleep 1000"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(holder.stdout.readline(), "ok\n")
            config = self.ns_config("", ("pid", "mount", "network"),
                                    network=f"/proc/{holder.pid}/ns/net")
            config["process"]["args"] = ["sh", "-c", "readlink /proc/self/ns/net; "
                                         "cat /sys/class/net/lo/mtu"]
            out = self.run_config(config).stdout.split()
            self.assertEqual(out, [ns_inode(holder.pid, "net"), "1234"])
        finally:
            holder.kill()
            holder.wait()

    def test_uid_gid_mappings(self):
        config = self.ns_config("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
                                ("pid", "mount", "user", "ipc", "uts"))
        config["process"]["args"] = ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map "
                                     "/proc/self/gid_map"]
        out = self.run_config(config).stdout.split("\n")
        self.assertEqual(out[:2], ["0", "0"])
        self.assertEqual(out[2].split(), ["0", "200000", "65536"])
        self.assertEqual(out[3].split(), ["0", "200000", "65536"])

    def test_time_offsets(self):
        if not os.path.exists("/proc/self/ns/time"):
            self.skipTest("this kernel has no time namespaces")
        config = self.ns_config("cat /proc/uptime", ("pid", "mount", "time"))
        config["process"]["args"] = ["sh", "-c", "cat /proc/uptime"]
        config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0},
                                          "monotonic": {"secs": 86400, "nanosecs": 0}}
        with open("/proc/uptime") as f:
            before = float(f.read().split()[0])
        inside = float(self.run_config(config).stdout.split()[0])
        self.assertGreaterEqual(inside - before, 86400 * 365 - 60)
        self.assertLess(inside - before, 86400 * 365 + 600)


# ================================================================ resources
class TestResources(OciCase):
    def res_config(self, script, resources, cgroup_mount=True, **kw):
        config = self.config(script, **kw)
        config["linux"]["resources"] = resources
        config["linux"]["namespaces"].append({"type": "cgroup"})
        if cgroup_mount:
            config["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                                     "source": "cgroup",
                                     "options": ["nosuid", "noexec", "nodev", "ro"]})
        return config

    def cat(self, resources, *files):
        script = "; ".join(f"cat /sys/fs/cgroup/{f}" for f in files)
        return self.run_config(self.res_config(script, resources)).stdout.split()

    def test_memory(self):
        got = self.cat({"memory": {"limit": 64 << 20, "reservation": 32 << 20,
                                   "swap": 96 << 20}},
                       "memory/memory.limit_in_bytes", "memory/memory.soft_limit_in_bytes",
                       *(["memory/memory.memsw.limit_in_bytes"]
                         if self.has_swap_accounting() else []))
        want = [str(64 << 20), str(32 << 20)]
        if self.has_swap_accounting():
            want.append(str(96 << 20))
        self.assertEqual(got, want)

    @staticmethod
    def has_swap_accounting():
        return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")

    def test_cpu(self):
        cpus = "0" if os.cpu_count() == 1 else "0-1"
        got = self.cat({"cpu": {"shares": 512, "quota": 50000, "period": 100000,
                                "cpus": cpus, "mems": "0"}},
                       "cpu/cpu.shares", "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us",
                       "cpuset/cpuset.cpus", "cpuset/cpuset.mems")
        self.assertEqual(got, ["512", "50000", "100000", cpus, "0"])

    def test_pids(self):
        config = self.res_config("cat /sys/fs/cgroup/pids/pids.max; "
                                 "sh -c 'for i in 1 2 3 4 5 6; do sleep 5 & done' 2>&1; "
                                 "echo rc=$?", {"pids": {"limit": 4}})
        out = self.run_config(config).stdout
        self.assertTrue(out.startswith("4\n"), out)
        self.assertRegex(out, r"(?i)(resource temporarily unavailable|can't fork)")

    def test_blockio_throttles(self):
        major, minor = self.root_device()
        got = self.cat({"blockIO": {
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 77}]}},
            "blkio/blkio.throttle.read_bps_device", "blkio/blkio.throttle.write_iops_device")
        self.assertEqual(got, [f"{major}:{minor}", "1048576", f"{major}:{minor}", "77"])

    @staticmethod
    def root_device():
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == "/":
                    major, minor = fields[2].split(":")
                    if os.path.exists(f"/sys/dev/block/{major}:{minor}"):
                        return int(major), int(minor)
        raise unittest.SkipTest("the root filesystem is not on a block device")

    def test_blockio_weight(self):
        files = [f for f in ("blkio.weight", "blkio.bfq.weight")
                 if os.path.exists(f"/sys/fs/cgroup/blkio/{f}")]
        if not files:
            self.skipTest("host blkio has no blkio.weight or blkio.bfq.weight (no CFQ/BFQ "
                          "I/O scheduler)")
        got = self.cat({"blockIO": {"weight": 345}}, f"blkio/{files[0]}")
        self.assertIn("345", got)

    def test_hugepage_limits(self):
        sizes = [d for d in os.listdir("/sys/kernel/mm/hugepages")] \
            if os.path.isdir("/sys/kernel/mm/hugepages") else []
        if not os.path.isdir("/sys/fs/cgroup/hugetlb") or not sizes:
            self.skipTest("host has no hugetlb cgroup controller mounted (or no huge pages)")
        size = sizes[0].split("-")[1].replace("kB", "")
        page = f"{int(size) // 1024}MB" if int(size) < 1 << 20 else f"{int(size) >> 20}GB"
        got = self.cat({"hugepageLimits": [{"pageSize": page, "limit": 4 * int(size) * 1024}]},
                       f"hugetlb/hugetlb.{page}.limit_in_bytes")
        self.assertEqual(got, [str(4 * int(size) * 1024)])

    def test_devices_rules_in_order(self):
        # b 7:0 (loop0, in no default list): the later rule wins.  The node is
        # made inside (mknod of any node stays allowed, as in runc); opening
        # it is what the devices cgroup decides (EPERM when denied).
        script = ("mknod /dev/l0 b 7 0; head -c1 /dev/l0 >/dev/null 2>/tmp/e; echo l0=$?; "
                  "cat /tmp/e; head -c1 /dev/null; echo null=$?")
        loop = {"type": "b", "major": 7, "minor": 0, "access": "rwm"}
        for rules, want in (([{"allow": True, **loop}, {"allow": False, **loop}], "denied"),
                            ([{"allow": False, **loop}, {"allow": True, **loop}], "allowed")):
            config = self.res_config(script, {"devices": [{"allow": False, "access": "rwm"},
                                                          *rules]}, cgroup_mount=False)
            out = self.run_config(config).stdout
            self.assertIn("null=0", out, "runc's default devices stay allowed")
            if want == "denied":
                self.assertIn("l0=1", out)
                self.assertIn("Operation not permitted", out)
            else:
                self.assertNotIn("Operation not permitted", out)

    def test_unified_refused_on_v1(self):
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            self.skipTest("this host is cgroup v2: unified is not refused")
        config = self.res_config("true", {"unified": {"memory.max": "1000000"}})
        res = self.run_config(config, ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("unified", res.stderr)
        self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
        self.assertEqual(self.ids(), [])

    def test_cgroups_path_absolute(self):
        config = self.config("cat /proc/self/cgroup")
        config["linux"]["cgroupsPath"] = f"{self.cg.path}/abs-one"
        out = self.run_config(config).stdout
        for line in out.splitlines():
            self.assertTrue(line.endswith(f"{self.cg.path}/abs-one"), line)
        self.assertEqual(len(out.splitlines()), len(self.cg.dirs), out)

    def test_cgroups_path_relative(self):
        config = self.config("cat /proc/self/cgroup")
        config["linux"]["cgroupsPath"] = "rel/two"
        res = subprocess.run([PYTHON, support.CONTAIN, "oci", "--root", self.root, "run",
                              "--bundle", self.bundle(config), self.new_id()],
                             capture_output=True, text=True, timeout=60,
                             preexec_fn=self.cg.join)
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.splitlines()
        self.assertEqual(len(lines), len(self.cg.dirs), res.stdout)
        for line in lines:
            self.assertTrue(line.endswith(f"{self.cg.path}/rel/two"), line)
        for d in self.cg.dirs:
            os.rmdir(os.path.join(d, "rel"))

    def test_sysctl(self):
        config = self.config("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax")
        config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}
        self.assertEqual(self.run_config(config).stdout.split(), ["1", "12345"])

    def test_seccomp(self):
        config = self.config("grep ^Seccomp: /proc/self/status; mkdir /tmp/d 2>&1; "
                             "echo mkdir=$?; /probe sethostname; true")
        config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 13},
                         {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}]}
        out = self.run_config(config).stdout + ""
        self.assertIn("Seccomp:\t2", out)
        self.assertIn("Permission denied\nmkdir=1", out)         # errnoRet 13: EACCES
        self.assertIn("EPERM", out)                               # the default errno

    def test_seccomp_notify_refused(self):
        config = self.config("true")
        config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
        res = self.run_config(config, ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("SCMP_ACT_NOTIFY", res.stderr)
        self.assertEqual(self.ids(), [])

    def test_masked_and_readonly_paths(self):
        config = self.config("wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
                             "echo 1 > /proc/sys/kernel/ns_last_pid; echo ro=$?; "
                             "grep ' /proc/sys ' /proc/self/mountinfo")
        config["linux"]["maskedPaths"] = ["/proc/timer_list", "/sys/firmware",
                                          "/proc/nothere"]
        config["linux"]["readonlyPaths"] = ["/proc/sys", "/proc/notthere"]
        out = self.run_config(config).stdout.splitlines()
        self.assertEqual(out[:3], ["0", "0", "ro=1"])
        self.assertIn(" ro", out[3])

    def test_rootfs_propagation(self):
        # a shared root filesystem on the host, so that "slave" has a master
        rootfs = support.fresh_rootfs("oci-propagation")
        subprocess.run(["mount", "--bind", rootfs, rootfs], check=True)
        self.addCleanup(shutil.rmtree, rootfs)
        self.addCleanup(subprocess.run, ["umount", "-l", rootfs])
        subprocess.run(["mount", "--make-shared", rootfs], check=True)
        for prop, field in (("shared", "shared:"), ("slave", "master:"),
                            ("private", None)):
            config = self.config(ROOT_LINE, rootfs=rootfs)
            config["linux"]["rootfsPropagation"] = prop
            line = self.run_config(config).stdout
            if field:
                self.assertIn(field, line, prop)
            else:
                self.assertNotIn("shared:", line)
                self.assertNotIn("master:", line)

    def test_linux_devices_created(self):
        config = self.config("ls -ln /dev/mynull /dev/myblk; echo x > /dev/mynull; "
                             "echo w=$?")
        config["linux"]["devices"] = [
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
             "uid": 12, "gid": 34},
            {"path": "/dev/myblk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600}]
        config["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
        out = self.run_config(config).stdout.splitlines()
        blk = [l for l in out if "myblk" in l][0]
        chr_ = [l for l in out if "mynull" in l][0]
        self.assertRegex(chr_, r"^crw-r-----\s+1\s+12\s+34\s+1,\s+3 ")
        self.assertRegex(blk, r"^brw-------\s+1\s+0\s+0\s+7,\s+200 ")
        self.assertIn("w=0", out)


# ==================================================================== hooks
HOOK = """#!/bin/sh
# record the state JSON of this hook's phase (and what the container's
# marker file says at that moment)
cat > "$(dirname "$0")/$1.json"
if [ -e "$(dirname "$0")/ran" ]; then echo ran > "$(dirname "$0")/$1.ran"; fi
exit 0
"""


class TestHooks(OciCase):
    PHASES = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")

    def setUp(self):
        # the same absolute path on the host and (bound) in the container, so
        # both kinds of hooks find the script and the marker directory
        self.dir = tempfile.mkdtemp(prefix="hooks-", dir=self.tmp)
        os.chmod(self.dir, 0o777)
        self.script = os.path.join(self.dir, "hook.sh")
        with open(self.script, "w") as f:
            f.write(HOOK)
        os.chmod(self.script, 0o755)

    def hooked(self, program, hooks):
        config = self.config(program)
        config["mounts"].append({"destination": self.dir, "type": "bind",
                                 "source": self.dir, "options": ["bind"]})
        config["hooks"] = hooks
        return config

    def marker(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def test_every_hook_at_its_point(self):
        hooks = {p: [{"path": self.script, "args": ["hook.sh", p]}] for p in self.PHASES}
        config = self.hooked(f"touch {self.dir}/ran; exec sleep 1000", hooks)
        cid = self.create(config)
        bundle = self.state(cid)["bundle"]
        pid = self.state(cid)["pid"]
        made = {p for p in self.PHASES if self.marker(p + ".json") is not None}
        self.assertEqual(made, {"prestart", "createRuntime", "createContainer"})
        self.oci("start", cid)
        wait_for(lambda: self.marker("ran") is not None, "the program to run")
        self.assertIsNotNone(self.marker("startContainer.json"))
        self.assertIsNone(self.marker("startContainer.ran"), "startContainer after the "
                          "program started")
        self.assertIsNotNone(self.marker("poststart.json"))
        self.assertIsNone(self.marker("poststop.json"))
        self.oci("kill", cid, "KILL")
        wait_for(lambda: self.state(cid)["status"] == "stopped", "the container to stop")
        self.oci("delete", cid)
        for phase in self.PHASES:
            st = json.loads(self.marker(phase + ".json"))
            self.assertEqual(st["id"], cid, phase)
            self.assertEqual(st["bundle"], bundle, phase)
            self.assertIn(st["status"], ("creating", "created", "running", "stopped"), phase)
            if phase not in ("poststop",):
                self.assertEqual(st["pid"], pid, phase)
        self.assertEqual(json.loads(self.marker("poststart.json"))["status"], "running")
        self.assertEqual(json.loads(self.marker("poststop.json"))["status"], "stopped")
        for phase in ("prestart", "createRuntime", "createContainer"):
            self.assertIsNone(self.marker(phase + ".ran"), phase)

    def test_creating_while_the_hooks_run_though_the_pid_is_known(self):
        """The pid is recorded as soon as the process exists; until create
        is done, `state` says "creating" (and kill finds no stopped one)."""
        probe = os.path.join(self.dir, "probe.sh")
        with open(probe, "w") as f:
            f.write(f"#!/bin/sh\nid=$(sed 's/.*\"id\": *\"\\([^\"]*\\)\".*/\\1/')\n"
                    f"{PYTHON} {support.CONTAIN} oci --root {self.root} state \"$id\" "
                    f"> {self.dir}/during.json\n")
        os.chmod(probe, 0o755)
        cid = self.create(self.hooked("exec sleep 1000", {"createRuntime": [{"path": probe}]}))
        during = json.loads(self.marker("during.json"))
        self.assertEqual(during["status"], "creating")
        self.assertEqual(during["pid"], self.state(cid)["pid"])
        self.assertEqual(self.state(cid)["status"], "created")
        self.oci("delete", "--force", cid)

    def test_failing_hook_fails_create_and_leaves_nothing(self):
        for phase in ("prestart", "createRuntime", "createContainer"):
            config = self.hooked("exec sleep 1000", {phase: [{"path": "/bin/false"}]})
            cid = self.new_id()
            res = self.oci("create", "--bundle", self.bundle(config), cid, ok=False)
            self.assertNotEqual(res.returncode, 0, phase)
            self.assertIn(phase, res.stderr)
            self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
            self.assertEqual(self.ids(), [], phase)
            self.assertEqual([d for d in self.cg.dirs
                              if os.path.exists(os.path.join(d, cid))], [], phase)
            self.assertEqual(self.cg.pids(), set(), phase)

    def test_hook_timeout_kills_it(self):
        pidfile = os.path.join(self.dir, "hook.pid")
        slow = os.path.join(self.dir, "slow.sh")
        with open(slow, "w") as f:
            f.write(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
        os.chmod(slow, 0o755)
        config = self.hooked("true", {"createRuntime": [{"path": slow, "timeout": 1}]})
        res = self.oci("create", "--bundle", self.bundle(config), self.new_id(), ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("timed out", res.stderr)
        with open(pidfile) as f:
            self.assertFalse(alive(int(f.read())), "the hook still runs")
        self.assertEqual(self.ids(), [])


# ==================================================== annotations, contract
class TestContract(OciCase):
    def test_annotations_in_state(self):
        config = self.config("exec sleep 1000")
        config["annotations"] = {"org.example.key": "value", "other": "x"}
        cid = self.create(config)
        self.assertEqual(self.state(cid)["annotations"], config["annotations"])

    def test_create_returns_before_the_program_runs(self):
        marker = os.path.join(self.tmp, f"ran-{self.new_id()}")
        config = self.config(f"echo ran > {marker}; exec sleep 1000")
        config["mounts"].append({"destination": self.tmp, "type": "bind",
                                 "source": self.tmp, "options": ["bind"]})
        pidfile = os.path.join(self.tmp, "pid")
        cid = self.create(config, extra=("--pid-file", pidfile))
        time.sleep(0.3)
        self.assertFalse(os.path.exists(marker))
        with open(pidfile) as f:
            text = f.read()
        self.assertRegex(text, r"^[0-9]+$")                  # digits, no newline
        st = self.state(cid)
        self.assertEqual(st["status"], "created")
        self.assertEqual(st["pid"], int(text))
        self.oci("start", cid)
        wait_for(lambda: os.path.exists(marker), "the program to run after start")

    def test_state_fields_through_the_life(self):
        config = self.config("exec sleep 1000")
        bundle = self.bundle(config)
        cid = self.new_id()
        self.oci("create", "--bundle", bundle, cid)
        st = self.state(cid)
        for key in ("ociVersion", "id", "status", "pid", "bundle", "rootfs", "created",
                    "annotations"):
            self.assertIn(key, st)
        self.assertEqual((st["id"], st["status"], st["bundle"], st["rootfs"]),
                         (cid, "created", bundle, self.rootfs))
        self.assertRegex(st["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"
                                        r"(Z|[+-]\d\d:\d\d)$")
        self.assertTrue(alive(st["pid"]))
        self.oci("start", cid)
        self.assertEqual(self.state(cid)["status"], "running")
        self.oci("pause", cid)
        self.assertEqual(self.state(cid)["status"], "paused")
        self.oci("resume", cid)
        self.assertEqual(self.state(cid)["status"], "running")
        self.oci("kill", cid, "9")
        wait_for(lambda: self.state(cid)["status"] == "stopped", "stopped")

    def test_kill_numbers_names_and_all(self):
        trap = ("trap 'echo got-usr1 >> /tmp/log' USR1; "
                "trap 'echo got-term >> /tmp/log; exit 3' TERM; "
                "sleep 1000 & while :; do wait; done")
        for sig in ("10", "USR1", "SIGUSR1"):
            cid, pid = self.detached(self.config(trap))
            # wait until the shell has its traps (it has forked its sleep)
            wait_for(lambda: len(json.loads(self.oci("ps", "--format", "json",
                                                     cid).stdout)) == 2, "sleep")
            self.oci("kill", cid, sig)
            wait_for(lambda: "got-usr1" in self.exec_out(cid, "cat", "/tmp/log"),
                     f"kill {sig}")
            self.oci("kill", cid)                       # SIGTERM by default
            wait_for(lambda: self.state(cid)["status"] == "stopped", "TERM")
            self.oci("delete", cid)
        cid, pid = self.detached(self.config("sleep 1000 & sleep 1000 & exec sleep 1000"))
        wait_for(lambda: len(json.loads(self.oci("ps", "--format", "json",
                                                 cid).stdout)) == 3, "three processes")
        procs = json.loads(self.oci("ps", "--format", "json", cid).stdout)
        self.oci("kill", "--all", cid, "KILL")
        wait_for(lambda: not any(alive(p) for p in procs), "kill --all")

    def test_kill_stopped_and_unknown(self):
        cid, pid = self.detached(self.config("exit 0"))
        wait_for(lambda: self.state(cid)["status"] == "stopped", "stopped")
        res = self.oci("kill", cid, "TERM", ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("container not running", res.stderr)
        for verb in (("state",), ("kill",), ("start",), ("delete",), ("pause",),
                     ("exec", "--"), ("ps",)):
            args = list(verb) + ["no-such-id"] + (["true"] if verb[0] == "exec" else [])
            if verb == ("exec", "--"):
                args = ["exec", "no-such-id", "true"]
            res = self.oci(*args, ok=False)
            self.assertNotEqual(res.returncode, 0, verb)
            self.assertRegex(res.stderr, r"container (no-such-id )?does not exist|"
                                         r"container ID does not exist", verb)
        res = self.oci("delete", "--force", "no-such-id", ok=False)
        self.assertEqual(res.returncode, 0, res.stderr)

    def test_log_json_on_error(self):
        log = os.path.join(self.tmp, "log.json")
        res = self._oci("--log", log, "--log-format", "json", "state", "no-such-id")
        self.assertNotEqual(res.returncode, 0)
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1)
        entry = json.loads(lines[0])
        self.assertEqual(entry["level"], "error")
        self.assertIn("does not exist", entry["msg"])
        self.assertRegex(entry["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

    def test_only_stdio_and_preserved_fds(self):
        import resource
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        high = min(hard - 1, 70000)
        import fcntl
        pipe = os.pipe()
        r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in pipe)
        for fd in pipe:
            os.close(fd)
        os.dup2(r, high)
        extra = [r, w, high]
        try:
            script = "ls /proc/self/fd | sort -n | tr '\\n' ' '"
            res = self.oci("run", "--bundle", self.bundle(self.config(script)),
                           self.new_id(), pass_fds=extra)
            self.assertEqual(res.stdout.split(), ["0", "1", "2", "3"])   # 3: ls's own
            # --preserve-fds 1: fd 3 (our pipe's write end) goes in
            os.dup2(w, 3)
            extra.append(3)
            res = subprocess.run(
                [PYTHON, support.CONTAIN, "oci", "--root", self.root, "run",
                 "--preserve-fds", "1", "--bundle",
                 self.bundle(self.config("echo through-fd3 >&3; ls /proc/self/fd | "
                                         "sort -n | tr '\\n' ' '")), self.new_id()],
                capture_output=True, text=True, timeout=60, pass_fds=[3, r, high])
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(res.stdout.split(), ["0", "1", "2", "3", "4"])
            self.assertEqual(os.read(r, 100), b"through-fd3\n")
        finally:
            for fd in set(extra):
                os.close(fd)

    def test_fd_above_65536_is_closed(self):
        import resource
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard <= 65537:
            self.skipTest(f"RLIMIT_NOFILE hard limit is {hard} and root lacks "
                          "CAP_SYS_RESOURCE: no fd above 65536 can be opened "
                          "(test_only_stdio_and_preserved_fds checks up to the limit)")
        fd = os.open("/dev/null", os.O_RDONLY)
        os.dup2(fd, 65540)
        os.close(fd)
        try:
            res = self.oci("run", "--bundle", self.bundle(self.config(
                "ls /proc/self/fd | sort -n | tr '\\n' ' '")), self.new_id(), pass_fds=[65540])
            self.assertEqual(res.stdout.split(), ["0", "1", "2", "3"])
        finally:
            os.close(65540)

    def test_created_container_survives_its_creators_exit(self):
        cid = self.new_id()
        bundle = self.bundle(self.config("echo started; exec sleep 1000"))
        # create through a shell that exits at once: the parent-death signal
        # (which guards setup only) must not reach the waiting init
        subprocess.run(["sh", "-c", f"{PYTHON} {support.CONTAIN} oci --root {self.root} "
                        f"create --bundle {bundle} {cid} >/dev/null; exit 0"],
                       check=True, timeout=60)
        time.sleep(0.5)
        st = self.state(cid)
        self.assertEqual(st["status"], "created")
        self.assertTrue(alive(st["pid"]))
        self.oci("start", cid)
        self.assertEqual(self.state(cid)["status"], "running")

    def test_exec_forms(self):
        cid, pid = self.detached()
        out = self.oci("exec", "--cwd", "/tmp", "--env", "A=b", "--user", "1000:1001",
                       cid, "sh", "-c", 'echo "$PWD $A $(id -u) $(id -g)"').stdout
        self.assertEqual(out, "/tmp b 1000 1001\n")
        # as runc's: exec never creates its working directory
        res = self.oci("exec", "--cwd", "/tmp/new", cid, "true", ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("/tmp/new", res.stderr)
        process = {"args": ["sh", "-c", "echo from-process-json $X; exit 7"],
                   "env": [PATH_ENV, "X=y"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
        pfile = os.path.join(self.tmp, "process.json")
        with open(pfile, "w") as f:
            json.dump(process, f)
        res = self.oci("exec", "--process", pfile, cid, ok=False)
        self.assertEqual((res.returncode, res.stdout), (7, "from-process-json y\n"))
        # --detach --pid-file
        pidfile = os.path.join(self.tmp, "exec.pid")
        self.oci("exec", "--detach", "--pid-file", pidfile, cid, "sleep", "999")
        with open(pidfile) as f:
            text = f.read()
        self.assertRegex(text, r"^[0-9]+$")
        self.assertTrue(alive(int(text)))
        self.assertIn(int(text), json.loads(self.oci("ps", "--format", "json", cid).stdout))
        self.assertEqual(ns_inode(int(text), "pid"), ns_inode(pid, "pid"))

    def test_exec_runs_under_the_containers_filter(self):
        config = self.config("exec sleep 1000")
        config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
        bundle, cid = self.bundle(config), self.new_id()
        self.oci("create", "--bundle", bundle, cid)
        self.oci("start", cid)
        script = "grep ^Seccomp: /proc/self/status; mkdir /tmp/d 2>&1; echo mkdir=$?"
        pfile = os.path.join(self.tmp, "same-caps.json")
        with open(pfile, "w") as f:      # the init's capabilities: its compiled filter
            json.dump({"args": ["sh", "-c", script], "env": [PATH_ENV], "cwd": "/",
                       "user": {"uid": 0, "gid": 0},
                       "capabilities": config["process"]["capabilities"]}, f)
        for out in (self.oci("exec", "--process", pfile, cid).stdout,
                    self.exec_out(cid, "sh", "-c", script)):    # other caps: compiled again
            self.assertIn("Seccomp:\t2", out)
            self.assertIn("Permission denied\nmkdir=1", out)
        # config.json gone: other capabilities get no filter, so no exec at all
        os.unlink(os.path.join(bundle, "config.json"))
        res = self.oci("exec", cid, "sh", "-c", script, ok=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("config.json", res.stderr)
        self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
        self.assertIn("Seccomp:\t2", self.oci("exec", "--process", pfile, cid).stdout)

    def test_exec_tty_through_console_socket(self):
        cid, _ = self.detached()
        sock = os.path.join(self.tmp, "exec-console.sock")
        server = ConsoleServer(sock)
        try:
            self.oci("exec", "--tty", "--console-socket", sock, "--detach", cid,
                     "sh", "-c", "tty; echo done-tty")
            out = server.output(until="done-tty")
            self.assertRegex(out, r"/dev/pts/\d+")
        finally:
            server.close()
            os.unlink(sock)

    def test_ps_and_list_json(self):
        cid, pid = self.detached()
        self.assertEqual(json.loads(self.oci("ps", "--format", "json", cid).stdout), [pid])
        listed = json.loads(self.oci("list", "--format", "json").stdout)
        mine = [s for s in listed if s["id"] == cid]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0]["pid"], mine[0]["status"]), (pid, "running"))
        self.assertIn(cid, self.oci("list", "-q").stdout.split())

    def test_pause_resume_freezes(self):
        cid, pid = self.detached(self.config("i=0; while :; do i=$((i+1)); echo $i > "
                                             "/tmp/count; done"))
        self.oci("pause", cid)
        frozen = [d for d in self.cg.dirs if d.endswith("/freezer/" + self.cg.name)][0]
        with open(os.path.join(frozen, self.state_cgroup(cid), "freezer.state")) as f:
            self.assertEqual(f.read().strip(), "FROZEN")
        self.oci("resume", cid)
        a = self.exec_out(cid, "cat", "/tmp/count")
        wait_for(lambda: self.exec_out(cid, "cat", "/tmp/count") != a, "counting again")

    def state_cgroup(self, cid):
        with open(os.path.join(self.root, cid, "state.json")) as f:
            return json.load(f)["cgroup"][1]

    def test_update_resources_and_flags(self):
        config = self.config("exec sleep 1000")
        config["linux"]["namespaces"].append({"type": "cgroup"})
        config["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                                 "source": "cgroup", "options": ["ro"]})
        cid, _ = self.detached(config)
        self.oci("update", "--memory", "50331648", "--cpu-shares", "256", cid)
        rfile = os.path.join(self.tmp, "res.json")
        with open(rfile, "w") as f:
            json.dump({"pids": {"limit": 42}, "cpu": {"quota": 20000, "period": 100000}}, f)
        self.oci("update", "--resources", rfile, cid)
        out = self.exec_out(cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                            "/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/pids/pids.max",
                            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        self.assertEqual(out.split(), ["50331648", "256", "42", "20000"])


if __name__ == "__main__":
    unittest.main()
