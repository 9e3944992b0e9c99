"""Real container engines (podman, containerd + ctr) driving a runc-compatible
runtime, each shut in a private sandbox.

    sb = Sandbox(); sb.start()           # new net + mount + pid namespaces
    pm = Podman(sb, runtime())           # or Containerd(sb, runtime())
    ...
    sb.stop()                            # kills everything, removes everything

The sandbox is `unshare --net --mount --pid --fork` with a small Python init
as its PID 1: it mounts a fresh tmpfs on /run (and /var/run when that is not
a link to /run), makes every mount private, brings loopback up, reaps
orphans and waits; commands enter it with `nsenter`.  Before anything enters
it, the entering process joins a cgroup the sandbox made in every hierarchy
(`contain-test-engines-<pid>`), so every engine, shim, monitor and container
(whose cgroupsPath is absolute below that parent, or relative to its
caller's cgroup as runc 1.1 does) lives below it.  stop() thaws anything
frozen, ends the init (the kernel then kills every process of the PID
namespace), kills by pid whatever is still in the cgroup, removes the cgroup
tree and the temporary directory; the mounts the engines made existed only
in the sandbox's mount namespace.

The runtime under test is $CONTAIN_TEST_RUNTIME (an absolute path to a
runc-compatible program), else a symlink `contain-runc` -> contain.py in a
temporary directory (contain acts as runc when its name ends in `runc`).
With $CONTAIN_TEST_TRACE=DIR every runtime call is logged to DIR (argv,
environment, and the config.json / process.json it was given) by a wrapper
generated here (see trace_wrapper()).

Nothing is installed here: tests skip when an engine is missing.
"""

import io
import json
import hashlib
import os
import select
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
CGROUP_ROOT = "/sys/fs/cgroup"
_PATH = os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin:/usr/bin:/bin"


def which(name):
    return shutil.which(name, path=_PATH)


def missing(*programs):
    """A skip reason naming what this host lacks for an engine test, or None."""
    if os.geteuid() != 0:
        return "needs root"
    lacking = [p for p in programs if not which(p)]
    if lacking:
        return "not installed: " + ", ".join(lacking)
    return None


# ---------------------------------------------------------------- the runtime
def runtime(tmpdir):
    """The runtime the engines are to drive: $CONTAIN_TEST_RUNTIME, or a
    `contain-runc` symlink to contain.py made in tmpdir."""
    path = os.environ.get("CONTAIN_TEST_RUNTIME")
    if path:
        if not os.path.isabs(path):
            raise ValueError(f"CONTAIN_TEST_RUNTIME must be an absolute path: {path!r}")
    else:
        path = os.path.join(tmpdir, "contain-runc")
        if not os.path.lexists(path):
            os.symlink(os.path.join(TOP, "contain.py"), path)
    trace = os.environ.get("CONTAIN_TEST_TRACE")
    if trace:
        path = trace_wrapper(path, os.path.abspath(trace), tmpdir)
    return path


TRACE = r'''#!/usr/bin/python3 -IS
# Logs one runtime call to LOGDIR, then becomes the real runtime.
import json, os, shutil, sys, time
real, logdir = REAL, LOGDIR
os.makedirs(logdir, exist_ok=True)
args = sys.argv[1:]
n = "%.6f-%d" % (time.time(), os.getpid())
rec = {"argv": args, "cwd": os.getcwd(), "ppid": os.getppid(),
       "ppid_comm": open("/proc/%d/comm" % os.getppid()).read().strip(),
       "env": dict(os.environ),
       "fds": {}}
for fd in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        rec["fds"][fd] = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        pass
def value(flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
cmd = next((a for a in args if not a.startswith("-")), None)
for flag, name in (("--bundle", "config.json"), ("-b", "config.json"),
                   ("--process", None), ("-p", None)):
    v = value(flag)
    if v:
        p = os.path.join(v, name) if name else v
        try:
            rec["file:" + p] = json.load(open(p))
        except (OSError, ValueError) as e:
            rec["file:" + p] = repr(e)
if cmd == "create" and not (value("--bundle") or value("-b")):
    try:
        rec["file:./config.json"] = json.load(open("config.json"))
    except (OSError, ValueError) as e:
        rec["file:./config.json"] = repr(e)
with open(os.path.join(logdir, n + ".json"), "w") as f:
    json.dump(rec, f, indent=1)
os.execv(real, [real] + args)
'''


def trace_wrapper(real, logdir, tmpdir):
    """A program with real's name (podman passes --log-format=json only to
    names it knows) that logs each call to logdir and execs `real`; the fd
    listing includes the wrapper's own directory fd (the highest)."""
    os.makedirs(os.path.join(tmpdir, "trace"), exist_ok=True)
    path = os.path.join(tmpdir, "trace", os.path.basename(real))
    with open(path, "w") as f:
        f.write(TRACE.replace("REAL", repr(real)).replace("LOGDIR", repr(logdir)))
    os.chmod(path, 0o755)
    return path


# -------------------------------------------------------------------- cgroups
def _hierarchies():
    """Mounted cgroup hierarchies (v1 controllers, name=systemd, and the
    cgroup2 'unified' one of a hybrid host)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2") and fields[4].startswith(CGROUP_ROOT):
                out.append(fields[4])
    return sorted(set(out))


def _read_pids(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class CgroupParent:
    """`contain-test-engines-<pid>` in every hierarchy; join() puts the
    calling process in all of them; remove() kills what is left inside (by
    pid, thawing frozen ones first) and removes the whole tree."""

    def __init__(self, name=None):
        self.name = name or f"contain-test-engines-{os.getpid()}"
        self.path = "/" + self.name           # what engines get as cgroup parent
        self.dirs = []

    def create(self):
        self._remove_stale()
        for h in _hierarchies():
            d = os.path.join(h, self.name)
            os.makedirs(d, exist_ok=True)
            self.dirs.append(d)
            if os.path.exists(os.path.join(h, "cpuset.cpus")):
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(h, knob)) as src:
                        value = src.read().strip()
                    with open(os.path.join(d, knob), "w") as dst:
                        dst.write(value)

    @staticmethod
    def _remove_stale():
        """Empty parents of earlier runs whose process is gone (killed before
        it could clean up): rmdir removes only empty cgroups."""
        for h in _hierarchies():
            try:
                names = os.listdir(h)
            except OSError:
                continue
            for name in names:
                prefix, _, pid = name.rpartition("-")
                if prefix != "contain-test-engines" or not pid.isdigit() \
                        or os.path.exists(f"/proc/{pid}"):
                    continue
                for dirpath, _, _ in sorted(os.walk(os.path.join(h, name)),
                                            key=lambda t: -t[0].count("/")):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass

    def join(self):
        """Move the calling process into the parent in every hierarchy
        (safe in a preexec_fn: no allocation-heavy work)."""
        pid = str(os.getpid())
        for d in self.dirs:
            fd = os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY)
            try:
                os.write(fd, pid.encode())
            finally:
                os.close(fd)

    def _tree(self):
        out = []
        for d in self.dirs:
            for dirpath, _, _ in os.walk(d):
                out.append(dirpath)
        return out

    def pids(self):
        found = set()
        for d in self._tree():
            found.update(_read_pids(os.path.join(d, "cgroup.procs")))
        return found

    def thaw(self):
        for d in self._tree():
            state = os.path.join(d, "freezer.state")
            if os.path.exists(state):
                try:
                    with open(state, "w") as f:
                        f.write("THAWED")
                except OSError:
                    pass

    def remove(self, timeout=20):
        """Kill every process left in the tree, then remove it; returns a list
        of what could not be removed (empty when all went)."""
        deadline = time.monotonic() + timeout
        self.thaw()
        while True:
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            left = []
            for d in sorted(self._tree(), key=lambda p: -p.count("/")):
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(d)
            if not left or time.monotonic() > deadline:
                return left
            self.thaw()
            time.sleep(0.05)


# -------------------------------------------------------------------- sandbox
INIT = r'''
import os, select, subprocess, sys
def sh(*a):
    subprocess.run(a, check=True)
sh("mount", "--make-rprivate", "/")
sh("mount", "-t", "tmpfs", "-o", "mode=755,nosuid,nodev", "tmpfs", "/run")
if os.path.isdir("/var/run") and not os.path.islink("/var/run"):
    sh("mount", "-t", "tmpfs", "-o", "mode=755,nosuid,nodev", "tmpfs", "/var/run")
sh("ip", "link", "set", "lo", "up")
sys.stdout.write("ready %d\n" % os.getpid())
sys.stdout.flush()
while True:
    r = select.select([0], [], [], 0.5)[0]
    while True:                       # reap orphans (we are PID 1)
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    if r and not os.read(0, 1):
        break
'''


class Sandbox:
    """A private net + mount + pid namespace with /run on a fresh tmpfs, a
    cgroup parent of its own and a temporary directory for everything."""

    def __init__(self, prefix="contain-engines-"):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.tmp, 0o755)
        # TMPDIR of every engine (conmon-term.*, runc-process*, pty* sockets,
        # podman's update/import files): inside tmp, not the host's /tmp
        self.tmpdir = os.path.join(self.tmp, "tmp")
        os.makedirs(self.tmpdir, mode=0o1777)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR": self.tmpdir}
        self.cgroup = CgroupParent()
        self.init = None
        self.pid = None           # host pid of the sandbox's PID 1
        self.started = []         # Popen objects started in it

    def start(self, timeout=20):
        self.cgroup.create()
        self.init = subprocess.Popen(
            [which("unshare"), "--net", "--mount", "--pid", "--fork", "--mount-proc",
             "--propagation", "private", "--", PYTHON, "-I", "-S", "-c", INIT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=self.cgroup.join,
            cwd="/")
        line = _readline(self.init.stdout, timeout)
        if not line.startswith("ready"):
            raise AssertionError(f"sandbox did not start: {line!r}")
        children = _read_pids(f"/proc/{self.init.pid}/task/{self.init.pid}/children")
        if len(children) != 1:
            raise AssertionError(f"sandbox init not found: {children}")
        self.pid = children[0]
        return self

    def cmd(self, args):
        return [which("nsenter"), "-t", str(self.pid), "-m", "-n", "-p", "--", *args]

    def run(self, args, timeout=120, **kw):
        """subprocess.run inside the sandbox (text, captured, bounded)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        try:
            return subprocess.run(self.cmd(args), timeout=timeout,
                                  preexec_fn=self.cgroup.join, **kw)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{args} still running after {timeout} s; "
                                 f"output so far: {e.output!r} {e.stderr!r}") from None

    def popen(self, args, preexec=None, **kw):
        def pre():
            self.cgroup.join()
            if preexec:
                preexec()
        p = subprocess.Popen(self.cmd(args), preexec_fn=pre, **kw)
        self.started.append(p)
        return p

    def stop(self):
        """End everything the sandbox holds; returns what could not be
        removed (an empty list when all went)."""
        problems = []
        self.cgroup.thaw()
        for p in self.started:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        if self.init is not None:
            try:
                self.init.stdin.close()
            except OSError:
                pass
            try:
                self.init.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.init.kill()   # unshare; its child, our PID 1, dies with the cgroup
                self.init.wait()
            self.init.stdout.close()
        for p in self.started:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append(f"pid {p.pid} did not end")
        problems += self.cgroup.remove()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if os.path.exists(self.tmp):
            problems.append(self.tmp)
        return problems


def _readline(stream, timeout):
    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    while not buf.endswith(b"\n") and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 1)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace")


# --------------------------------------------------------------------- images
def rootfs_tar(rootfs, dest):
    """A plain tar of a root filesystem (one image layer)."""
    with tarfile.open(dest, "w") as tar:
        for name in sorted(os.listdir(rootfs)):
            tar.add(os.path.join(rootfs, name), arcname=name)
    return dest


def docker_archive(layer_tar, dest, tag="busybox:latest", cmd=("/bin/sh",)):
    """A `docker save` style archive of a one-layer image, which both
    `ctr image import` and `podman load` accept."""
    with open(layer_tar, "rb") as f:
        layer = f.read()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": _goarch(), "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": list(cmd),
                   "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "contain tests/engines.py"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.split(":")[1] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                            "Layers": [layer_name]}]).encode()
    with tarfile.open(dest, "w") as tar:
        for name, data in ((config_name, config), (layer_name, layer),
                           ("manifest.json", manifest)):
            if "/" in name:
                info = tarfile.TarInfo(name.split("/")[0])
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return dest


def _goarch():
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


# --------------------------------------------------------------------- podman
def _hard_limit(which):
    import resource
    return resource.getrlimit(which)[1]


class Podman:
    """podman with every store, config and runtime dir below the sandbox's
    temporary directory, driving `runtime` through cgroupfs."""

    def __init__(self, sandbox, runtime_path):
        self.sb = sandbox
        self.runtime = runtime_path
        d = self.dir = os.path.join(sandbox.tmp, "podman")
        for sub in ("root", "runroot", "tmp", "networks", "volumes"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        import resource
        nofile = _hard_limit(resource.RLIMIT_NOFILE)
        nproc = _hard_limit(resource.RLIMIT_NPROC)
        self.conf = os.path.join(d, "containers.conf")
        with open(self.conf, "w") as f:
            f.write(f'''[containers]
default_sysctls = []
# podman's defaults for root (nofile 1048576, nproc 4194304) are above this
# host's hard limits, and root here lacks CAP_SYS_RESOURCE
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/tmp"
volume_path = "{d}/volumes"
runtime = "runc"
static_dir = "{d}/root/libpod"

[network]
network_config_dir = "{d}/networks"
''')
        self.storage_conf = os.path.join(d, "storage.conf")
        with open(self.storage_conf, "w") as f:
            f.write(f'''[storage]
driver = "overlay"
graphroot = "{d}/root"
runroot = "{d}/runroot"
''')
        self.env = {**sandbox.env, "HOME": d,
                    "CONTAINERS_CONF": self.conf,
                    "CONTAINERS_STORAGE_CONF": self.storage_conf,
                    "CONTAINERS_REGISTRIES_CONF": os.path.join(d, "registries.conf"),
                    "XDG_RUNTIME_DIR": "/run"}
        with open(self.env["CONTAINERS_REGISTRIES_CONF"], "w") as f:
            f.write("unqualified-search-registries = []\n")

    def argv(self, *args):
        d = self.dir
        return ["podman", "--runtime", self.runtime, "--cgroup-manager", "cgroupfs",
                "--root", f"{d}/root", "--runroot", f"{d}/runroot",
                "--storage-driver", "overlay", "--events-backend", "file", *args]

    def run_args(self):
        """Options every `podman run`/`create` of the tests gets."""
        return ["--network", "none", "--cgroup-parent", self.sb.cgroup.path]

    def __call__(self, *args, timeout=120, **kw):
        return self.sb.run(self.argv(*args), timeout=timeout, env=self.env, **kw)

    def import_rootfs(self, tar, name="localhost/busybox:latest"):
        res = self("import", "--change", "CMD=/bin/sh", tar, name)
        if res.returncode != 0:
            raise AssertionError(f"podman import failed: {res.stderr}")
        return name


# ----------------------------------------------------------------- containerd
class Containerd:
    """A containerd of our own (root, state, socket, config in the sandbox's
    temporary directory) and a ctr that talks to it."""

    NAMESPACE = "contain-test"

    def __init__(self, sandbox, runtime_path):
        self.sb = sandbox
        self.runtime = runtime_path
        d = self.dir = os.path.join(sandbox.tmp, "containerd")
        os.makedirs(d, exist_ok=True)
        self.address = "/run/contain-test-containerd/containerd.sock"
        self.config = os.path.join(d, "config.toml")
        disabled = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing"]
        with open(self.config, "w") as f:
            f.write(f'''version = 2
root = "{d}/root"
state = "/run/contain-test-containerd/state"
disabled_plugins = {json.dumps(disabled)}

[grpc]
  address = "{self.address}"

[ttrpc]
  address = ""

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.runtime.v2.task"]
  platforms = ["linux/{_goarch()}"]
''')
        self.log = os.path.join(d, "containerd.log")
        self.proc = None

    def start(self, timeout=30):
        logf = open(self.log, "w")
        self.proc = self.sb.popen(["containerd", "--config", self.config],
                                  stdin=subprocess.DEVNULL, stdout=logf,
                                  stderr=subprocess.STDOUT, env=self.sb.env)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            res = self.ctr("version", timeout=10)
            if res.returncode == 0 and "Server:" in res.stdout:
                return self
            time.sleep(0.1)
        raise AssertionError(f"containerd did not come up in {timeout} s; "
                             f"log: {self.tail_log()}")

    def tail_log(self, n=40):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=15):
        if self.proc and self.proc.poll() is None:
            # nsenter forks containerd and waits for it: signal containerd itself
            for pid in _read_pids(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def argv(self, *args):
        return ["ctr", "--address", self.address, "--namespace", self.NAMESPACE, *args]

    def ctr(self, *args, timeout=120, **kw):
        return self.sb.run(self.argv(*args), timeout=timeout, env=self.sb.env, **kw)

    def run_args(self, cid):
        """Options every `ctr run` of the tests gets."""
        return ["--runc-binary", self.runtime,
                "--cgroup", f"{self.sb.cgroup.path}/{cid}"]

    def import_image(self, archive, name="docker.io/library/busybox:latest"):
        res = self.ctr("image", "import", archive)
        if res.returncode != 0:
            raise AssertionError(f"ctr image import failed: {res.stdout} {res.stderr}")
        res = self.ctr("image", "ls", "-q")
        if name not in res.stdout.split():
            raise AssertionError(f"{name} not among the imported images: {res.stdout}")
        return name

    def task_status(self, cid):
        res = self.ctr("task", "ls")
        for line in res.stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == cid:
                return fields[-1]
        return None
