"""Shared test helpers: a busybox root filesystem, a private state root and
cgroup parent per test run, and a way to call the contain CLI.

Every integration test runs contain with CONTAIN_ROOT pointing at a private
temporary directory and --cgroup-parent naming a private cgroup, so nothing a
test does touches /var/lib/contain or another run's containers; both are
removed when the run ends (see cleanup_run()).
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
CONTAIN = os.path.join(TOP, "contain.py")
PYTHON = sys.executable

sys.path.insert(0, TOP)
sys.path.insert(0, os.path.join(TOP, "images"))

IS_ROOT = os.geteuid() == 0
RUN_ID = f"t{os.getpid()}"
# one private place per test run for state, rootfs and scratch files
WORK = tempfile.mkdtemp(prefix=f"contain-test-{RUN_ID}-")
STATE_ROOT = os.path.join(WORK, "state")
CGROUP_PARENT = f"contain-test-{RUN_ID}"

requires_root = unittest.skipUnless(IS_ROOT, "needs root")

_rootfs = None


def host_snapshot():
    """What the tests must leave as they found it: the real host's network
    links, iptables rules and ip_forward, and the top-level cgroups."""
    import glob
    snap = {"links": sorted(os.listdir("/sys/class/net"))}
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            snap["ip_forward"] = f.read().strip()
    except OSError:
        pass
    try:
        out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        snap["iptables"] = sorted(line for line in out.splitlines() if line.startswith("-A"))
    except OSError:  # no iptables: nothing could be added either
        snap["iptables"] = []
    snap["cgroups"] = sorted(p for p in glob.glob("/sys/fs/cgroup/*/contain*")
                             + glob.glob("/sys/fs/cgroup/contain*")
                             if not os.path.basename(p).startswith("contain-test-"))
    return snap


HOST_BEFORE = host_snapshot() if IS_ROOT else None


def busybox_rootfs():
    """Path of a busybox root filesystem shared (read-only!) by the tests."""
    global _rootfs
    if _rootfs is None:
        import busybox  # images/busybox.py
        _rootfs = busybox.build(os.path.join(WORK, "busybox-rootfs"))
    return _rootfs


def fresh_rootfs(name):
    """A private, writable copy of the busybox rootfs for one test."""
    dest = os.path.join(WORK, "rootfs-" + name)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    shutil.copytree(busybox_rootfs(), dest, symlinks=True)
    return dest


def env(**extra):
    e = dict(os.environ)
    e["CONTAIN_ROOT"] = STATE_ROOT
    e["CONTAIN_CGROUP_PARENT"] = CGROUP_PARENT
    # never the bridge on the real host: network tests set it inside their sandbox
    e["CONTAIN_DEFAULT_NETWORK"] = "none"
    e.update(extra)
    return e


def contain_cmd(*args):
    return [PYTHON, CONTAIN, *args]


def contain(*args, input=None, timeout=60, check=False, extra_env=None, **kw):
    """Run the contain CLI; returns CompletedProcess (text mode)."""
    cmd = contain_cmd(*args)
    res = subprocess.run(cmd, input=input, capture_output=True, text=True,
                         timeout=timeout, env=env(**(extra_env or {})), **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} exited {res.returncode}: {res.stderr}")
    return res


def in_child(fn):
    """fn() in a forked child, for what changes the process itself (its
    limits, a seccomp filter); its result, as text, comes back through a
    pipe ("error: ..." if it raised)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                answer = str(fn())
            except Exception as e:
                answer = f"error: {e!r}"
            os.write(w, answer.encode())
        finally:
            os._exit(0)
    os.close(w)
    from contain.core.spawn import read_all
    answer = read_all(r)
    os.close(r)
    os.waitpid(pid, 0)
    return answer.decode()


def read_pty(fd, until=None, timeout=10):
    """Read a pseudo-terminal master until `until` appears, EOF/EIO (the
    other side closed), or timeout; returns the text."""
    import select
    import time
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (until and until.encode() in data):
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def container_states():
    """The state.json records of every container of this test run."""
    import json
    d = os.path.join(STATE_ROOT, "containers")
    out = []
    for cid in (os.listdir(d) if os.path.isdir(d) else []):
        try:
            with open(os.path.join(d, cid, "state.json")) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass
    return out


def wait_for_container_pid(timeout=10):
    """The host pid of the (only) running container, once it is recorded."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [s["pid"] for s in container_states() if s.get("pid")]
        if pids:
            return pids[0]
        time.sleep(0.02)
    raise AssertionError("no container pid recorded")


def container_records():
    """Ids of the container records in the test run's state root."""
    d = os.path.join(STATE_ROOT, "containers")
    return [c for c in os.listdir(d) if len(c) == 64] if os.path.isdir(d) else []


def assert_no_container_left(test):
    """No cgroup, mount or container record of this test run is left."""
    test.assertEqual(cgroup_dirs(), [], "cgroups left behind")
    test.assertEqual(mounts_under(WORK), [], "mounts left behind")
    test.assertEqual(container_records(), [], "container records left behind")


def cgroup_dirs():
    """Every cgroup directory below the test run's private parent."""
    found = []
    for base in ("/sys/fs/cgroup", *(os.path.join("/sys/fs/cgroup", d)
                                      for d in os.listdir("/sys/fs/cgroup"))):
        top = os.path.join(base, CGROUP_PARENT)
        if os.path.isdir(top):
            for dirpath, dirnames, _ in os.walk(top):
                found += [os.path.join(dirpath, d) for d in dirnames]
    return found


def mounts_under(path):
    """Mount points (in this mount namespace) at or below path."""
    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4] for line in f]
    return [t for t in targets if t == path or t.startswith(path.rstrip("/") + "/")]


def _remove_cgroup_tree(top):
    for dirpath, dirnames, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


def cleanup_run():
    """Remove the run's state root, scratch dir and cgroup parents."""
    for base in ("/sys/fs/cgroup", *(os.path.join("/sys/fs/cgroup", d)
                                      for d in os.listdir("/sys/fs/cgroup"))):
        top = os.path.join(base, CGROUP_PARENT)
        if os.path.isdir(top):
            _remove_cgroup_tree(top)
    for target in reversed(mounts_under(WORK)):
        subprocess.run(["umount", "-l", target], capture_output=True)
    shutil.rmtree(WORK, ignore_errors=True)


atexit.register(cleanup_run)


def small_state_root(test, path, size, name="contain-test", inodes=None):
    """A tmpfs of size (and at most inodes files) at path (a state root that
    can run full), unmounted when the test ends, pass or fail."""
    os.makedirs(path)
    options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, name, path], check=True)
    test.addCleanup(subprocess.run, ["umount", "-l", path])


def fill_disk(path):
    """Write zeros to path until its filesystem has no room left."""
    with open(path, "ab") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
