"""Damaged state, hostile names, a full disk and other users of the host:
every command answers with one line naming what is wrong (exit 125, never a
traceback), the stores recover, and no other host user reaches an image's
setuid programs.  Each test has a state root of its own."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tests import support
from tests.test_images_kit import D, F, Img, docker_archive, make_tar

SMALL = make_tar([D("etc"), F("etc/motd", b"hello\n")])          # uncompressed
BIG = make_tar([F("blob", os.urandom(1 << 20))])                   # 1 MiB: room to free


def damages(good):
    """(kind, bytes) for each way a JSON state file is found damaged."""
    return [("empty", b""), ("truncated", good[:len(good) // 2]),
            ("binary", b"\x00\xff\xfe\x80\x13garbage"), ("wrong shape", b"[]")]


def one_line(res):
    """The stderr lines that are not warnings (a failure is exactly one)."""
    return [line for line in res.stderr.splitlines() if not line.startswith("WARNING")]


@support.requires_root
class FaultCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="faults-", dir=support.WORK)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.root = os.path.join(self.tmp, "root")
        self.img = Img(["app:1"], [SMALL])
        self.archive = os.path.join(self.tmp, "app.tar")
        docker_archive(self.archive, [self.img])

    def contain(self, *args, netns=False, **kw):
        env = {"CONTAIN_ROOT": self.root}
        env.update(kw.pop("extra_env", {}))
        if netns:   # anything that may touch the network: in a namespace of its own
            return self._in_netns(args, env)
        return support.contain(*args, extra_env=env, **kw)

    def _in_netns(self, args, env):
        return subprocess.run(["unshare", "--net", "--", *support.contain_cmd(*args)],
                              capture_output=True, text=True, timeout=60,
                              env=support.env(**env))

    def ok(self, *args, **kw):
        res = self.contain(*args, **kw)
        self.assertEqual(res.returncode, 0, f"{args}: {res.stderr}")
        self.assertNotIn("Traceback", res.stderr)
        return res

    def fails(self, culprit, *args, **kw):
        """args must fail with exit 125 and one line naming culprit."""
        res = self.contain(*args, **kw)
        self.assertEqual(res.returncode, 125, f"{args}: {res.stdout}{res.stderr}")
        self.assertNotIn("Traceback", res.stderr)
        lines = one_line(res)
        self.assertEqual(len(lines), 1, f"{args}: {res.stderr}")
        self.assertIn(culprit, lines[0])
        return lines[0]

    def images_dir(self, *parts):
        return os.path.join(self.root, "images", *parts)

    def no_container_left(self):
        self.assertEqual(self.ok("ps", "-a", "-q").stdout, "")


class TestDamagedImageStore(FaultCase):
    READERS = (("images",), ("image", "inspect", "app:1"), ("run", "--rm", "app:1", "true"))

    def setUp(self):
        super().setUp()
        self.ok("load", "-i", self.archive)

    def damage(self, path, data):
        with open(path, "wb") as f:
            f.write(data)

    def test_damaged_tags_json(self):
        tags = self.images_dir("tags.json")
        with open(tags, "rb") as f:
            good = f.read()
        for kind, data in damages(good):
            with self.subTest(kind):
                self.damage(tags, data)
                for args in self.READERS:
                    line = self.fails(tags, *args)
                    self.assertIn("tag ID NAME", line)      # says what to do
                res = self.ok("load", "-i", self.archive)   # recovers
                self.assertIn("Loaded image: app:1", res.stdout)
                self.assertIn("set aside", res.stderr)
                with open(tags + ".damaged", "rb") as f:
                    self.assertEqual(f.read(), data)      # kept for whoever looks
                self.assertIn("app", self.ok("images").stdout)
                self.no_container_left()

    def test_tag_and_rmi_set_a_damaged_tags_json_aside(self):
        tags = self.images_dir("tags.json")
        self.damage(tags, b"[]")
        self.ok("tag", self.img.id[7:19], "again:1")
        self.assertEqual(self.ok("images", "--format", "{{.Repository}}").stdout, "again\n")
        self.damage(tags, b"{")
        self.ok("rmi", self.img.id[7:19])
        self.assertEqual(os.listdir(self.images_dir("records")), [])
        self.assertEqual(os.listdir(self.images_dir("layers")), [])

    def test_damaged_record(self):
        record = self.images_dir("records", self.img.id[7:] + ".json")
        with open(record, "rb") as f:
            good = f.read()
        for n, (kind, data) in enumerate(damages(good)):
            with self.subTest(kind):
                self.damage(record, data)
                for args in self.READERS:
                    self.assertIn("rmi -f", self.fails(record, *args))
                layers = os.listdir(self.images_dir("layers"))
                if n % 2:       # either repair: rmi then load, or load over it
                    self.ok("rmi", "-f", self.img.id[7:19])
                    self.assertFalse(os.path.exists(record))
                else:
                    self.fails(record, "tag", "app:1", "other:1")
                    self.assertEqual(os.listdir(self.images_dir("layers")), layers)
                self.ok("load", "-i", self.archive)
                inspect = json.loads(self.ok("image", "inspect", "app:1").stdout)
                self.assertEqual(inspect[0]["Id"], self.img.id)

    def test_damaged_layer_json(self):
        (key,) = os.listdir(self.images_dir("layers"))
        layer_json = self.images_dir("layers", key, "layer.json")
        with open(layer_json, "rb") as f:
            good = f.read()
        out = os.path.join(self.tmp, "saved.tar")
        for kind, data in damages(good):
            with self.subTest(kind):
                self.damage(layer_json, data)
                self.ok("images")               # needs no layer.json
                self.fails(layer_json, "save", "-o", out, "app:1")
                self.ok("load", "-i", self.archive)      # unpacks it again
                with open(layer_json, "rb") as f:
                    self.assertEqual(json.load(f)["diff_id"],
                                     json.loads(self.img.config)["rootfs"]["diff_ids"][0])
                self.ok("save", "-o", out, "app:1")
                self.assertEqual(os.listdir(self.images_dir("tmp")), [])

    def test_damaged_config_blob(self):
        blob = self.images_dir("blobs", "sha256", self.img.id[7:])
        for kind, data in damages(self.img.config):
            with self.subTest(kind):
                self.damage(blob, data)
                self.fails(blob, "image", "inspect", "app:1")
                self.ok("load", "-i", self.archive)
                with open(blob, "rb") as f:
                    self.assertEqual(f.read(), self.img.config)


class TestDamagedNetworks(FaultCase):
    def setUp(self):
        super().setUp()
        self.ok("load", "-i", self.archive)
        self.ok("network", "create", "n1")
        self.ok("network", "inspect", "bridge")     # writes nothing yet
        self.ok("network", "rm", "n1")
        self.ok("network", "create", "n1", "--subnet", "10.89.7.0/24")

    def record(self, name):
        return os.path.join(self.root, "networks", name + ".json")

    def test_damaged_user_network(self):
        path = self.record("n1")
        with open(path, "rb") as f:
            good = f.read()
        for kind, data in damages(good) + [("wrong name", good.replace(b'"n1"', b'"n2"'))]:
            with self.subTest(kind):
                with open(path, "wb") as f:
                    f.write(data)
                self.assertIn("network rm n1", self.fails(path, "network", "ls"))
                self.fails(path, "network", "inspect", "n1")
                self.fails(path, "run", "--rm", "--network", "n1", "app:1", "true", netns=True)
                self.fails(path, "run", "-d", "--network", "n1", "app:1", "true", netns=True)
                self.no_container_left()
                self.ok("network", "prune", netns=True)   # goes past it
                self.ok("network", "rm", "n1")
                self.assertNotIn("n1", self.ok("network", "ls").stdout)
                self.ok("network", "create", "n1", "--subnet", "10.89.7.0/24")

    def test_damaged_default_network(self):
        path = self.record("bridge")
        for kind, data in damages(b'{"name": "bridge", "endpoints": {}}'):
            with self.subTest(kind):
                with open(path, "wb") as f:
                    f.write(data)
                self.fails(path, "network", "ls")
                self.fails(path, "network", "inspect", "bridge")
                self.fails(path, "run", "--rm", "--network", "bridge", "app:1", "true",
                           netns=True)
                self.no_container_left()
                self.ok("network", "rm", "bridge", netns=True)
                self.assertIn("bridge", self.ok("network", "ls").stdout)

    def test_names_never_become_paths(self):
        for name in ("../images/tags", "../../etc/passwd", "/etc/passwd", ".hidden", "a/b"):
            with self.subTest(name):
                self.fails("not found", "network", "inspect", name)
                self.fails("not found", "run", "--rm", "--network", name, "app:1", "true",
                           netns=True)
                res = self.contain("network", "rm", name)
                self.assertNotEqual(res.returncode, 0)
                self.assertNotIn("Traceback", res.stderr)
                self.fails("invalid network name", "network", "create", name)
        self.assertTrue(os.path.exists(self.images_dir("tags.json")))
        self.no_container_left()


class TestDamagedUserns(FaultCase):
    def test_damaged_userns_json(self):
        self.ok("load", "-i", self.archive)
        path = os.path.join(self.root, "userns.json")
        for kind, data in damages(b'{"' + b"a" * 64 + b'": [100000, 65536]}') + \
                [("bad range", b'{"x": [1]}')]:
            with self.subTest(kind):
                with open(path, "wb") as f:
                    f.write(data)
                self.fails(path, "run", "--rm", "--userns=auto", "app:1", "true")
                self.no_container_left()
        os.unlink(path)


class TestInternalError(FaultCase):
    """A bug still gives one line and exit 125; --debug shows the traceback."""
    BUGGY = ("import sys; sys.path.insert(0, {top!r}); from contain.engine import cli\n"
             "def boom(ns, store, log): raise KeyError('surprise')\n"
             "cli.cmd_images = boom\nsys.exit(cli.main(sys.argv[1:]))\n")

    def run_buggy(self, *args, **env):
        code = self.BUGGY.format(top=support.TOP)
        return subprocess.run([support.PYTHON, "-c", code, *args], capture_output=True,
                              text=True, timeout=60, env=support.env(CONTAIN_ROOT=self.root,
                                                                     **env))

    def test_internal_error_is_one_line(self):
        res = self.run_buggy("images")
        self.assertEqual(res.returncode, 125)
        self.assertEqual(len(res.stderr.splitlines()), 1, res.stderr)
        self.assertTrue(res.stderr.startswith("contain: internal error: KeyError"))
        self.assertIn("--debug", res.stderr)

    def test_debug_shows_the_traceback(self):
        for res in (self.run_buggy("--debug", "images"),
                    self.run_buggy("images", CONTAIN_DEBUG="1")):
            self.assertEqual(res.returncode, 125)
            self.assertIn("contain: internal error: KeyError", res.stderr)
            self.assertIn("Traceback", res.stderr)

    def test_debug_after_the_command_is_not_ours(self):
        res = self.run_buggy("images", "--debug")     # images has no --debug: usage error
        self.assertNotIn("Traceback", res.stderr)


def setuid_id_layer():
    """A layer with a setuid-root copy of id(1), which shows an euid of 0."""
    with open(shutil.which("id"), "rb") as f:
        data = f.read()
    return make_tar([D("bin"), F("bin/id", data, mode=0o4755)])


# setpriv keeps its capabilities until its own execve (PR_SET_KEEPCAPS), so
# that execve would pass any directory mode: env, running as nobody without
# capabilities, makes the exec that counts.
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env"]


@support.requires_root
@unittest.skipUnless(shutil.which("setpriv"), "setpriv is not installed")
class TestOtherUsers(unittest.TestCase):
    """moby CVE-2021-41091: no other user may run an image's setuid programs."""

    def setUp(self):
        # a parent every user may walk through, so only contain's modes protect
        self.tmp = tempfile.mkdtemp(prefix=f"contain-test-{support.RUN_ID}-users-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)
        self.root = os.path.join(self.tmp, "root")
        self.img = Img(["suid:1"], [setuid_id_layer()])
        self.archive = os.path.join(self.tmp, "suid.tar")
        docker_archive(self.archive, [self.img])

    def contain(self, *args):
        return support.contain(*args, check=True, extra_env={"CONTAIN_ROOT": self.root})

    def as_nobody(self, path):
        return subprocess.run(NOBODY + [path], capture_output=True, text=True, timeout=30)

    def layer_program(self):
        (key,) = os.listdir(os.path.join(self.root, "images", "layers"))
        return os.path.join(self.root, "images", "layers", key, "diff", "bin", "id")

    def test_the_check_can_fail(self):
        """The same program where every user can reach it runs as euid 0."""
        self.contain("load", "-i", self.archive)
        exposed = os.path.join(self.tmp, "exposed")
        os.mkdir(exposed, 0o755)
        shutil.copy2(self.layer_program(), exposed)
        os.chmod(os.path.join(exposed, "id"), 0o4755)
        res = self.as_nobody(os.path.join(exposed, "id"))
        self.assertIn("euid=0", res.stdout)

    def test_stored_layers_are_out_of_reach(self):
        self.contain("load", "-i", self.archive)
        self.assertEqual(os.stat(self.layer_program()).st_mode & 0o7777, 0o4755)  # kept
        res = self.as_nobody(self.layer_program())
        self.assertNotEqual(res.returncode, 0)
        self.assertNotIn("euid=0", res.stdout)
        self.assertIn("Permission denied", res.stderr)
        self.assert_private()

    def assert_private(self):
        mode = lambda *p: os.stat(os.path.join(self.root, *p)).st_mode & 0o777  # noqa: E731
        self.assertEqual(mode(), 0o711)
        self.assertEqual(mode("images"), 0o700)
        for sub in ("layers", "blobs", "blobs/sha256", "records", "tmp"):
            self.assertEqual(mode("images", sub), 0o700, sub)
        if os.path.isdir(os.path.join(self.root, "containers")):
            self.assertEqual(mode("containers"), 0o700)

    def test_an_older_open_store_is_tightened(self):
        self.contain("load", "-i", self.archive)
        self.contain("ps", "-a")
        for dirpath, dirnames, _ in os.walk(self.root):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
        os.chmod(self.root, 0o755)
        self.assertIn("euid=0", self.as_nobody(self.layer_program()).stdout)  # as it was
        self.contain("images")                                   # the next use
        self.assertNotIn("euid=0", self.as_nobody(self.layer_program()).stdout)
        self.contain("ps", "-a")
        self.contain("tag", "suid:1", "suid:2")                  # the next write
        self.assert_private()


@support.requires_root
class TestFullDisk(FaultCase):
    """rmi and network prune must free space on a full state root."""

    def setUp(self):
        super().setUp()
        support.small_state_root(self, self.root, "3m", "faults")
        self.img = Img(["big:1"], [BIG])
        docker_archive(self.archive, [self.img])

    def fill(self):
        support.fill_disk(os.path.join(self.root, "filler"))
        res = self.contain("network", "create", "room")      # a write: it cannot be done
        self.assertEqual(res.returncode, 125)
        self.assertIn("No space left on device", res.stderr)
        self.assertNotIn("Traceback", res.stderr)

    def test_rmi_on_a_full_disk(self):
        self.ok("load", "-i", self.archive)
        self.fill()
        self.assertEqual(self.ok("rmi", "big:1").stdout.splitlines(),
                         ["Untagged: big:1", f"Deleted: {self.img.id}"])
        self.assertEqual(self.ok("images", "-q").stdout, "")
        self.assertEqual(os.listdir(os.path.join(self.root, "images", "layers")), [])
        leftovers = [n for n in os.listdir(os.path.join(self.root, "images")) if ".tmp" in n]
        self.assertEqual(leftovers, [])

    def test_failed_load_on_a_full_disk_leaves_nothing(self):
        self.fill()
        res = self.contain("load", "-i", self.archive)
        self.assertEqual(res.returncode, 125)
        self.assertIn("No space left on device", res.stderr)
        for sub in ("layers", "records", "tmp"):
            self.assertEqual(os.listdir(os.path.join(self.root, "images", sub)), [], sub)

    def test_network_prune_on_a_full_disk(self):
        self.ok("network", "create", "n1")
        self.ok("network", "create", "n2")
        self.fill()
        self.assertNotIn("room.json", os.listdir(os.path.join(self.root, "networks")))
        res = self.ok("network", "prune", netns=True)
        self.assertEqual(res.stdout, "Deleted Networks:\nn1\nn2\n")
        self.assertEqual(sorted(n for n in os.listdir(os.path.join(self.root, "networks"))
                                if not n.startswith(".")), [])


@support.requires_root
class TestLogRotationOnAFullDisk(unittest.TestCase):
    """A rotation that finds no room for a new, empty log file (no inode
    left) must not stop the log: it goes on in the current file."""

    def test_rotation_without_room_goes_on_in_the_current_file(self):
        from contain.engine.logs import LogWriter, read_entries
        root = os.path.join(support.WORK, f"logfull-{os.getpid()}")
        # the root directory, container.log and one inode more, taken below
        support.small_state_root(self, root, "1m", "logfull", inodes=3)
        path = os.path.join(root, "container.log")
        writer = LogWriter(path, max_size=200, max_file=3)
        with open(os.path.join(root, "filler"), "w"):
            pass
        with self.assertRaises(OSError):          # no inode left: no new file
            open(os.path.join(root, "other"), "w").close()
        for i in range(10):
            writer.write("stdout", f"line {i}\n".encode())
        writer.close()
        self.assertEqual(sorted(os.listdir(root)), ["container.log", "filler"])
        self.assertEqual([e["log"] for e in read_entries(path)],
                         [f"line {i}\n" for i in range(10)])
        os.unlink(os.path.join(root, "filler"))    # room again: rotation works
        writer = LogWriter(path, max_size=200, max_file=3)
        writer.write("stdout", b"after\n")
        writer.close()
        self.assertIn("container.log.1", os.listdir(root))


if __name__ == "__main__":
    unittest.main()
