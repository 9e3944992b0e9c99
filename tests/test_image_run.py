"""`contain run IMAGE`: containers on their own overlay root, the image's
config honoured, copy-on-write, and the lifecycle end to end from an image
(as root, real kernel)."""

import io
import json
import os
import tarfile
import time
import unittest

from tests import support
from tests.support import contain, requires_root
from tests.test_images_kit import D, F, Img, OPQ, W, docker_archive, make_tar

SECTION = {
    "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "APP_MODE=image"],
    "Entrypoint": ["/bin/sh", "-c"],
    "Cmd": ["echo default-cmd; pwd; id -u; echo $APP_MODE"],
    "WorkingDir": "/data",
    "User": "app",
    "StopSignal": "SIGUSR1",
    "Labels": {"org.example.kind": "test"},
}


def busybox_layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(support.busybox_rootfs(), arcname=".")
    return buf.getvalue()


_loaded = {}


def load_app_image():
    """app:v1, three layers: busybox; a deleted file, /data with a; an
    opaque /data with b and /etc/motd replaced."""
    if "app" not in _loaded:
        layers = [busybox_layer(),
                  make_tar([W("etc/os-release"), F("etc/motd", b"v2\n"), D("data", uid=1000,
                                                                             gid=1000),
                            F("data/a", b"1\n")]),
                  make_tar([OPQ("data"), F("data/b", b"2\n", uid=1000, gid=1000),
                            F("etc/motd", b"v3\n")])]
        path = os.path.join(support.WORK, "keep-app.tar")
        docker_archive(path, [Img(["app:v1"], layers, SECTION)])
        res = contain("load", "-i", path)
        assert res.returncode == 0, res.stderr
        _loaded["app"] = True
    return "app:v1"


@requires_root
class ImageRunTest(unittest.TestCase):
    def setUp(self):
        self.image = load_app_image()
        self.names = []

    def tearDown(self):
        for n in self.names:
            contain("rm", "-f", n)
        self.assertEqual(support.cgroup_dirs(), [])
        self.assertEqual(support.mounts_under(support.WORK), [])

    def test_entrypoint_cmd_env_workdir_user_from_the_image(self):
        res = contain("run", "--rm", self.image)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), ["default-cmd", "/data", "1000", "image"])

    def test_docker_rules_for_cmd_entrypoint_and_env(self):
        res = contain("run", "--rm", "-e", "APP_MODE=flag", self.image, "echo $APP_MODE")
        self.assertEqual(res.stdout, "flag\n")  # CMD replaced, ENTRYPOINT kept
        res = contain("run", "--rm", "--entrypoint", "cat", self.image, "/etc/motd")
        self.assertEqual(res.stdout, "v3\n")    # --entrypoint drops the image's CMD
        res = contain("run", "--rm", "-u", "0", "-w", "/", self.image, "id -u; pwd")
        self.assertEqual(res.stdout.split(), ["0", "/"])

    def test_layers_whiteouts_and_opaque_directories(self):
        res = contain("run", "--rm", self.image,
                      "test -e /etc/os-release && echo present; ls /data; cat /etc/motd")
        self.assertEqual(res.stdout.split(), ["b", "v3"])

    def test_copy_on_write_lands_in_the_containers_upper_dir(self):
        self.names.append("cow")
        res = contain("run", "-d", "--name", "cow", "-u", "0", self.image,
                      "echo changed > /etc/motd; rm /data/b; touch /created; sleep 100")
        self.assertEqual(res.returncode, 0, res.stderr)
        cid = res.stdout.strip()
        cdir = os.path.join(support.STATE_ROOT, "containers", cid)
        with open(os.path.join(cdir, "config.json")) as f:
            layers = json.load(f)["rootfs"]["layers"]
        upper = os.path.join(cdir, "upper")
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(upper, "created")) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(os.path.join(upper, "etc/motd")) as f:
            self.assertEqual(f.read(), "changed\n")
        self.assertTrue(os.stat(os.path.join(upper, "data/b")).st_rdev == 0)  # a whiteout
        with open(os.path.join(layers[-1], "etc/motd")) as f:
            self.assertEqual(f.read(), "v3\n")  # the image's layer is untouched
        self.assertTrue(os.path.exists(os.path.join(layers[-1], "data/b")))
        self.assertEqual(contain("rm", "-f", "cow").returncode, 0)
        self.assertFalse(os.path.exists(cdir))  # upper and work dirs went with it
        self.assertTrue(all(os.path.isdir(d) for d in layers))  # shared layers stay
        self.assertEqual(contain("run", "--rm", self.image, "cat /etc/motd").stdout, "v3\n")

    def test_read_only_root(self):
        res = contain("run", "--rm", "--read-only", "-u", "0", self.image,
                      "touch /x 2>&1; echo rc=$?")
        self.assertIn("Read-only file system", res.stdout)

    def test_stop_signal_from_the_image(self):
        self.names.append("sig")
        contain("run", "-d", "--name", "sig", "-u", "0", self.image,
                "trap 'exit 42' USR1; while true; do sleep 0.1; done")
        contain("stop", "sig")
        state = json.loads(contain("inspect", "sig").stdout)[0]["State"]
        self.assertEqual(state["ExitCode"], 42)

    def test_unknown_image_and_bad_reference(self):
        res = contain("run", "--rm", "--pull", "never", "no-such-image:1.0", "true")
        self.assertEqual(res.returncode, 125)
        self.assertIn("no-such-image:1.0", res.stderr)
        self.assertEqual(len(res.stderr.strip().splitlines()), 1)
        res = contain("run", "--rm", "Bad/Name", "true")
        self.assertEqual(res.returncode, 125)
        self.assertIn("Bad/Name", res.stderr)
        ids = os.listdir(os.path.join(support.STATE_ROOT, "containers"))
        self.assertEqual([i for i in ids if len(i) == 64 and i not in self._running()], [])

    def _running(self):
        return contain("ps", "-aq", "--no-trunc").stdout.split()


@requires_root
class WebServerEndToEndTest(unittest.TestCase):
    """What a user would do: a web server from an image, through its life."""

    def test_httpd_from_image_create_start_exec_logs_stop_rm(self):
        self.addCleanup(contain, "rm", "-f", "web")
        self.addCleanup(contain, "rm", "-f", "stubborn")
        res = contain("create", "--name", "web", "busybox", "sh", "-c",
                      "mkdir -p /www && echo '<h1>hello from contain</h1>' > /www/index.html"
                      " && echo serving && exec httpd -f -v -p 8080 -h /www")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(contain("start", "web").returncode, 0)
        page = ""
        for _ in range(50):
            res = contain("exec", "web", "wget", "-qO-", "http://127.0.0.1:8080/")
            page = res.stdout
            if "hello" in page:
                break
            time.sleep(0.1)
        self.assertIn("<h1>hello from contain</h1>", page)
        self.assertIn("serving", contain("logs", "web").stdout)
        res = contain("exec", "web", "ps")
        self.assertIn("httpd -f -v -p 8080", res.stdout)
        t0 = time.monotonic()
        self.assertEqual(contain("stop", "-t", "2", "web").returncode, 0)
        self.assertLess(time.monotonic() - t0, 4)  # httpd as PID 1 has no TERM handler: SIGKILL at 2 s
        # one that ignores SIGTERM explicitly
        contain("run", "-d", "--name", "stubborn", "busybox", "sh", "-c",
                "trap '' TERM; while true; do sleep 0.1; done")
        contain("stop", "-t", "1", "stubborn")
        self.assertEqual(json.loads(contain("inspect", "stubborn").stdout)[0]["State"]["ExitCode"],
                         137)
        self.assertEqual(contain("rm", "web", "stubborn").returncode, 0)
        self.assertEqual(contain("ps", "-aq").stdout, "")
        self.assertEqual(support.cgroup_dirs(), [])
        self.assertEqual(support.mounts_under(support.WORK), [])


if __name__ == "__main__":
    unittest.main()
