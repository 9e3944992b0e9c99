"""User namespaces for --userns=auto (issue 7, part 6): the id range
allocator, writing id maps for a child, idmapped mounts, and the overlay
recipe the runtime follows (idmapped lower layers, plain upper).

The kernel tests run in forked children whose mount namespace is private,
so every mount they make disappears with them.
"""

import json
import os
import shutil
import stat
import tempfile
import traceback
import unittest

from tests import support
from contain.core import linux, security
from contain.errors import Conflict, UsageError

STEP = security.ID_RANGE_STEP
BASE = security.ID_RANGE_BASE


def in_child(fn, *args):
    """Run fn(*args) in a forked child with a private mount namespace;
    return what it returned (JSON), re-raising its failure here."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            result = {"ok": fn(*args)}
        except BaseException:  # noqa: B902 - everything goes back to the test
            result = {"error": traceback.format_exc()}
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(data or b'{"error": "child died"}')
    if "error" in result:
        raise AssertionError(result["error"])
    return result["ok"]


def in_userns(maps, fn, *args):
    """Run fn(*args) in a forked child inside a new user namespace with
    maps (written by us, the parent, as the runtime does), as its root."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            linux.unshare(linux.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(go_r, 1)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            result = {"ok": fn(*args)}
        except BaseException:  # noqa: B902
            result = {"error": traceback.format_exc()}
        os.write(out_w, json.dumps(result).encode())
        os._exit(0)
    for fd in (ready_w, go_r, out_w):
        os.close(fd)
    try:
        assert os.read(ready_r, 1) == b"1", "child could not unshare CLONE_NEWUSER"
        security.write_id_maps(pid, maps, maps)
    finally:
        os.write(go_w, b"g")
        os.close(go_w)
        os.close(ready_r)
    data = b""
    while True:
        chunk = os.read(out_r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(out_r)
    os.waitpid(pid, 0)
    result = json.loads(data or b'{"error": "child died"}')
    if "error" in result:
        raise AssertionError(result["error"])
    return result["ok"]


class IdRangeAllocatorTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(dir=support.WORK)

    def test_ranges_are_distinct_and_stable(self):
        a = security.allocate_id_range(self.root, "a")
        b = security.allocate_id_range(self.root, "b")
        c = security.allocate_id_range(self.root, "c")
        self.assertEqual([a, b, c], [(BASE, STEP), (BASE + STEP, STEP),
                                     (BASE + 2 * STEP, STEP)])
        self.assertEqual(security.allocate_id_range(self.root, "b"), b)   # idempotent

    def test_release_and_reuse(self):
        for name in "abc":
            security.allocate_id_range(self.root, name)
        security.release_id_range(self.root, "b")
        security.release_id_range(self.root, "never-had-one")
        self.assertEqual(security.allocate_id_range(self.root, "d"), (BASE + STEP, STEP))
        # a bigger range does not fit in a one-step hole: it goes to the end
        security.release_id_range(self.root, "a")
        self.assertEqual(security.allocate_id_range(self.root, "big", STEP + 1),
                         (BASE + 3 * STEP, STEP + 1))
        self.assertEqual(security.allocate_id_range(self.root, "e"), (BASE, STEP))
        self.assertEqual(security.allocate_id_range(self.root, "f"), (BASE + 5 * STEP, STEP))

    def test_bad_size_and_full(self):
        with self.assertRaises(UsageError):
            security.allocate_id_range(self.root, "x", 0)
        security.allocate_id_range(self.root, "huge", security.ID_MAX - BASE - STEP)
        with self.assertRaises(Conflict):
            security.allocate_id_range(self.root, "y")

    def test_concurrent_allocations_do_not_overlap(self):
        pids = []
        for i in range(8):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    security.allocate_id_range(self.root, f"c{i}")
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        for pid in pids:
            self.assertEqual(os.waitpid(pid, 0)[1], 0)
        with open(os.path.join(self.root, "userns.json")) as f:
            starts = sorted(start for start, _ in json.load(f).values())
        self.assertEqual(starts, [BASE + i * STEP for i in range(8)])


class FormatTest(unittest.TestCase):
    def test_format_id_map(self):
        self.assertEqual(security.format_id_map([(0, 100000, 65536), (65536, 5, 1)]),
                         "0 100000 65536\n65536 5 1\n")


@support.requires_root
class UserNamespaceKernelTest(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(dir=support.WORK)
        self.start, self.size = security.allocate_id_range(self.state, "ctr")
        self.addCleanup(security.release_id_range, self.state, "ctr")
        self.maps = [(0, self.start, self.size)]
        # not under support.WORK (mode 0700): the container's root, an
        # unprivileged id on the host, must be able to walk to the files
        self.dir = tempfile.mkdtemp(prefix=f"contain-test-{support.RUN_ID}-userns-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        os.chmod(self.dir, 0o755)

    def test_child_sees_its_maps(self):
        path = os.path.join(self.dir, "owned")
        open(path, "w").close()
        os.chown(path, self.start + 5, self.start + 7)

        def inside():
            with open("/proc/self/uid_map") as f:
                uid_map = f.read().split()
            with open("/proc/self/gid_map") as f:
                gid_map = f.read().split()
            os.setgroups([0, 7])          # setgroups stays allowed
            st = os.stat(path)
            return uid_map, gid_map, os.getuid(), [st.st_uid, st.st_gid]

        uid_map, gid_map, uid, owner = in_userns(self.maps, inside)
        self.assertEqual(uid_map, ["0", str(self.start), str(self.size)])
        self.assertEqual(gid_map, uid_map)
        self.assertEqual(uid, 0)
        self.assertEqual(owner, [5, 7])

    def test_idmapped_mount_supported(self):
        if not security.idmapped_mount_supported():
            self.skipTest("this kernel or root filesystem has no idmapped mounts")
        self.assertTrue(security.idmapped_mount_supported())

    def test_idmapped_bind(self):
        if not security.idmapped_mount_supported():
            self.skipTest("no idmapped mounts here")
        src, dst = os.path.join(self.dir, "src"), os.path.join(self.dir, "dst")
        os.mkdir(src)
        os.mkdir(dst)
        for name, owner in (("root", 0), ("app", 1000)):
            open(os.path.join(src, name), "w").close()
            os.chown(os.path.join(src, name), owner, owner)
        maps, start = self.maps, self.start

        def child():
            fd = security.open_userns(maps, maps)
            security.idmapped_bind(src, dst, fd)
            os.close(fd)
            seen_by_host = {n: os.stat(os.path.join(dst, n)).st_uid for n in ("root", "app")}
            seen_inside = in_userns(maps, lambda: {
                n: os.stat(os.path.join(dst, n)).st_uid for n in ("root", "app")})
            return seen_by_host, seen_inside

        host, inside = in_child(child)
        self.assertEqual(host, {"root": start, "app": start + 1000})
        self.assertEqual(inside, {"root": 0, "app": 1000})
        self.assertEqual(os.listdir(dst), [])        # the mount was private to the child
        self.assertEqual(os.stat(os.path.join(src, "root")).st_uid, 0)   # disk unchanged

    def test_overlay_with_idmapped_lower(self):
        """The recipe in security.py: the image stays root-owned on disk, the
        container's root owns it inside, its writes land in upper as start+N."""
        if not security.idmapped_mount_supported():
            self.skipTest("no idmapped mounts here")
        d = self.dir
        for sub in ("lower", "lower-id", "upper", "work", "merged"):
            os.mkdir(os.path.join(d, sub))
        with open(os.path.join(d, "lower", "secret"), "w") as f:
            f.write("image data")
        os.chmod(os.path.join(d, "lower", "secret"), 0o600)
        os.chown(os.path.join(d, "upper"), self.start, self.start)
        maps = self.maps
        merged = os.path.join(d, "merged")

        def container():
            with open(os.path.join(merged, "secret")) as f:
                data = f.read()
            with open(os.path.join(merged, "secret"), "a") as f:
                f.write("!")                       # copy-up
            open(os.path.join(merged, "new"), "w").close()
            os.chown(os.path.join(merged, "new"), 33, 33)
            return data, os.stat(merged).st_uid, os.stat(os.path.join(merged, "secret")).st_uid

        def child():
            fd = security.open_userns(maps, maps)
            security.idmapped_bind(os.path.join(d, "lower"), os.path.join(d, "lower-id"), fd)
            os.close(fd)
            linux.mount("overlay", merged, "overlay", 0,
                        f"lowerdir={d}/lower-id,upperdir={d}/upper,workdir={d}/work")
            return in_userns(maps, container)

        data, root_owner, secret_owner = in_child(child)
        self.assertEqual((data, root_owner, secret_owner), ("image data", 0, 0))
        upper = os.path.join(d, "upper")
        self.assertEqual(os.stat(os.path.join(upper, "secret")).st_uid, self.start)
        self.assertEqual(os.stat(os.path.join(upper, "new")).st_uid, self.start + 33)
        lower_secret = os.path.join(d, "lower", "secret")
        self.assertEqual(os.stat(lower_secret).st_uid, 0)
        with open(lower_secret) as f:
            self.assertEqual(f.read(), "image data")

    def test_shift_ownership_fallback(self):
        root = os.path.join(self.dir, "tree")
        os.makedirs(os.path.join(root, "bin"))
        tool = os.path.join(root, "bin", "tool")
        open(tool, "w").close()
        os.chmod(tool, 0o4755)
        os.chown(os.path.join(root, "bin"), 2, 2)
        os.symlink("bin", os.path.join(root, "link"))
        os.symlink("/nonexistent", os.path.join(root, "dangling"))
        security.shift_ownership(root, self.start, self.start)
        self.assertEqual(os.stat(root).st_uid, self.start)
        self.assertEqual(os.stat(os.path.join(root, "bin")).st_uid, self.start + 2)
        self.assertEqual(os.lstat(os.path.join(root, "link")).st_uid, self.start)
        self.assertEqual(os.lstat(os.path.join(root, "dangling")).st_uid, self.start)
        self.assertEqual(stat.S_IMODE(os.stat(tool).st_mode), 0o4755)
        shutil.rmtree(root)


if __name__ == "__main__":
    unittest.main()
