"""Images made by real tools (skopeo, umoci) load; what contain saves,
skopeo reads; and a loaded image mounted as overlayfs by the real kernel
(in a private mount namespace) shows the layers merged: whiteouts, opaque
directories, replaced files, hard links, copy-on-write, many layers."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

from tests import support
from tests.test_images_kit import (D, F, H, Img, L, OPQ, W, docker_archive, make_tar)
from contain.engine import images
from contain.errors import UsageError

HAVE_SKOPEO = shutil.which("skopeo") is not None
HAVE_UMOCI = shutil.which("umoci") is not None


def have_overlay():
    try:
        with open("/proc/filesystems") as f:
            return "overlay" in f.read()
    except OSError:
        return False


BASE = make_tar([D("etc"), F("etc/motd", b"base\n"), F("etc/old", b"old"),
                 D("var/cache"), F("var/cache/stale", b"s"),
                 F("bin/busybox", b"BB", mode=0o755), H("bin/ls", "bin/busybox"),
                 F("bin/su", b"su", mode=0o4755)], compress="gzip")
MID = make_tar([F("etc/motd", b"mid\n"), L("bin/sh", "busybox"), F("etc/mid", b"m")])
TOP = make_tar([W("etc/old"), OPQ("var/cache"), F("var/cache/fresh", b"f"),
                F("etc/motd", b"top\n")])


def run(*cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if res.returncode != 0:
        raise AssertionError(f"{cmd} exited {res.returncode}: {res.stderr}")
    return res.stdout


@support.requires_root
class ToolCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="imgtools-", dir=support.WORK)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.store = images.ImageStore(os.path.join(self.tmp, "root"))

    def path(self, name):
        return os.path.join(self.tmp, name)

    def read(self, image, layer, name):
        with open(os.path.join(image.layer_dirs[layer], name), "rb") as f:
            return f.read()


@unittest.skipUnless(HAVE_SKOPEO, "skopeo is not installed")
class TestSkopeo(ToolCase):
    def test_docker_archive_to_oci_and_back(self):
        img = Img(["built:1"], [BASE, MID, TOP], {"Cmd": ["sh"]})
        built = docker_archive(self.path("built.tar"), [img])
        oci = self.path("oci")
        run("skopeo", "copy", f"docker-archive:{built}", f"oci:{oci}:mytag")
        loaded = self.store.load(oci)
        self.assertEqual(len(loaded), 1)
        image = self.store.resolve(loaded[0][1])
        self.assertEqual(image.layers, img_layers(img))
        self.assertEqual(self.read(image, 2, "etc/motd"), b"top\n")
        self.assertTrue(stat.S_ISCHR(os.lstat(os.path.join(image.layer_dirs[2],
                                                           "etc/old")).st_mode))
        out = self.path("from-oci.tar")
        run("skopeo", "copy", f"oci:{oci}:mytag", f"docker-archive:{out}:skopeo/app:2")
        self.assertEqual(self.store.load(out), [("skopeo/app:2", image.id)])
        self.assertEqual(self.store.resolve("skopeo/app:2").config["Cmd"], ["sh"])

    def test_two_bare_tags_in_one_layout_are_two_images(self):
        """skopeo copy ... oci:DIR:TAG names manifests by a bare tag."""
        one, two = Img([], [BASE], {"Cmd": ["one"]}), Img([], [TOP], {"Cmd": ["two"]})
        layout = self.path("myapp")
        for img, tag in ((one, "latest"), (two, "v3")):
            archive = docker_archive(self.path(f"{tag}.tar"), [img])
            run("skopeo", "copy", f"docker-archive:{archive}", f"oci:{layout}:{tag}")
        # (skopeo writes the config anew in OCI's format: the IDs are its own)
        loaded = dict(self.store.load(layout))
        self.assertEqual(sorted(loaded), ["localhost/myapp:latest", "localhost/myapp:v3"])
        self.assertNotEqual(loaded["localhost/myapp:latest"], loaded["localhost/myapp:v3"])
        for ref, cmd in (("localhost/myapp:latest", ["one"]), ("localhost/myapp:v3", ["two"])):
            self.assertEqual(self.store.resolve(ref).config["Cmd"], cmd)
        renamed = dict(self.store.load(layout, name="team/app"))
        self.assertEqual(renamed, {"team/app:latest": loaded["localhost/myapp:latest"],
                                   "team/app:v3": loaded["localhost/myapp:v3"]})
        with self.assertRaises(UsageError):
            self.store.load(layout, name="team/app:1")     # two images, one tag

    def test_skopeo_reads_what_contain_saves(self):
        img = Img(["mine:1"], [BASE, TOP], {"Cmd": ["true"]})
        self.store.load(docker_archive(self.path("in.tar"), [img]))
        saved = self.path("saved.tar")
        self.store.save(["mine:1"], saved)
        info = json.loads(run("skopeo", "inspect", f"docker-archive:{saved}"))
        self.assertEqual(info["Layers"], img_layers(img))
        oci = self.path("oci")
        run("skopeo", "copy", f"docker-archive:{saved}", f"oci:{oci}:x")
        fresh = images.ImageStore(self.path("root2"))
        _, image_id = fresh.load(oci)[0]
        self.assertEqual(fresh.resolve(image_id).layers, img_layers(img))
        # the saved archive is an OCI layout too
        run("skopeo", "inspect", f"oci-archive:{saved}")


def img_layers(img):
    from tests.test_images_kit import sha, uncompressed
    return [sha(uncompressed(b)) for b in img.layers]


@unittest.skipUnless(HAVE_UMOCI, "umoci is not installed")
class TestUmoci(ToolCase):
    def test_umoci_layers_with_a_whiteout(self):
        layout, bundle = self.path("layout"), self.path("bundle")
        run("umoci", "init", "--layout", layout)
        run("umoci", "new", "--image", f"{layout}:base")
        run("umoci", "unpack", "--image", f"{layout}:base", bundle)
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(os.path.join(rootfs, "etc"))
        for name, text in (("keep", "k"), ("gone", "g")):
            with open(os.path.join(rootfs, "etc", name), "w") as f:
                f.write(text)
        run("umoci", "repack", "--refresh-bundle", "--image", f"{layout}:base", bundle)
        os.unlink(os.path.join(rootfs, "etc/gone"))
        with open(os.path.join(rootfs, "etc/new"), "w") as f:
            f.write("n")
        run("umoci", "repack", "--image", f"{layout}:base", bundle)
        run("umoci", "tag", "--image", f"{layout}:base", "umoci/test:1")
        loaded = dict(self.store.load(layout))
        image = self.store.resolve("umoci/test:1")
        self.assertIn(image.id, loaded.values())
        top = image.layer_dirs[-1]
        gone = os.lstat(os.path.join(top, "etc/gone"))
        self.assertTrue(stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0)
        self.assertEqual(self.read(image, -1, "etc/new"), b"n")
        self.assertEqual(self.read(image, 0, "etc/keep"), b"k")


@unittest.skipUnless(HAVE_UMOCI, "umoci is not installed")
class TestUmociInsert(ToolCase):
    def test_insert_layers_without_end_blocks_and_two_tags(self):
        """umoci 0.4.7's insert writes a layer that ends right after the
        last data byte (no padding, no end blocks); two tags, two images."""
        layout = self.path("ul")
        run("umoci", "init", "--layout", layout)
        for tag, text in (("latest", b"hello\n"), ("v3", b"three\n")):
            run("umoci", "new", "--image", f"{layout}:{tag}")
            src = self.path(f"{tag}.txt")
            with open(src, "wb") as f:
                f.write(text)
            run("umoci", "insert", "--image", f"{layout}:{tag}", src, "/data/only.txt")
        loaded = dict(self.store.load(layout))
        self.assertEqual(sorted(loaded), ["localhost/ul:latest", "localhost/ul:v3"])
        for ref, text in (("localhost/ul:latest", b"hello\n"), ("localhost/ul:v3", b"three\n")):
            image = self.store.resolve(ref)
            self.assertEqual(image.id, loaded[ref])
            self.assertEqual(self.read(image, -1, "data/only.txt"), text)
        # does each layer really end early? (else this test proves nothing)
        import gzip
        for ref in loaded:
            blob = self.store.blob_path(self.store._layer_info(
                self.store.resolve(ref).layers[-1])[1]["digest"])
            with open(blob, "rb") as f:
                self.assertNotEqual(len(gzip.decompress(f.read())) % 512, 0)


# A child in its own mount namespace mounts the overlay and reports what it
# sees: the mount disappears with the namespace, whatever happens.
MOUNT_PROBE = r"""
import json, os, stat, sys
sys.path.insert(0, sys.argv[1])
from contain.core import linux
data, cwd, target, actions = sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
linux.unshare(linux.CLONE_NEWNS)
linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
if cwd != "-":
    os.chdir(cwd)
linux.mount("overlay", target, "overlay", 0, data)
report = {}
for path in actions.get("read", []):
    p = os.path.join(target, path)
    report[path] = open(p).read() if os.path.lexists(p) else None
for path in actions.get("stat", []):
    st = os.lstat(os.path.join(target, path))
    report["stat:" + path] = [st.st_mode, st.st_ino]
for path in actions.get("list", []):
    report["list:" + path] = sorted(os.listdir(os.path.join(target, path)))
for path, text in actions.get("write", {}).items():
    with open(os.path.join(target, path), "w") as f:
        f.write(text)
for path in actions.get("delete", []):
    os.unlink(os.path.join(target, path))
print(json.dumps(report))
"""


@unittest.skipUnless(have_overlay(), "the kernel has no overlayfs")
class TestOverlayMount(ToolCase):
    def mount_probe(self, layer_dirs, actions):
        c = self.path("container")
        for d in ("upper", "work", "merged"):
            os.makedirs(os.path.join(c, d), exist_ok=True)
        data, cwd = images.overlay_mount_data(layer_dirs, os.path.join(c, "upper"),
                                              os.path.join(c, "work"))
        out = run(sys.executable, "-c", MOUNT_PROBE, support.TOP, data, cwd or "-",
                  os.path.join(c, "merged"), json.dumps(actions))
        self.assertEqual(support.mounts_under(c), [])
        return json.loads(out), data, cwd

    def test_merged_view_and_copy_on_write(self):
        img = Img(["ov:1"], [BASE, MID, TOP])
        self.store.load(docker_archive(self.path("ov.tar"), [img]))
        image = self.store.resolve("ov:1")
        report, _, _ = self.mount_probe(image.layer_dirs, {
            "read": ["etc/motd", "etc/old", "etc/mid", "var/cache/stale", "var/cache/fresh"],
            "stat": ["bin/su", "bin/sh", "bin/ls", "bin/busybox"],
            "list": ["etc", "var/cache"],
            "write": {"etc/motd": "changed\n", "new-file": "n"},
            "delete": ["bin/busybox"]})
        self.assertEqual(report["etc/motd"], "top\n")           # replaced twice
        self.assertIsNone(report["etc/old"])                    # whiteout
        self.assertEqual(report["etc/mid"], "m")
        self.assertIsNone(report["var/cache/stale"])            # opaque dir
        self.assertEqual(report["list:var/cache"], ["fresh"])
        self.assertEqual(report["list:etc"], ["mid", "motd"])
        self.assertEqual(stat.S_IMODE(report["stat:bin/su"][0]), 0o4755)
        self.assertTrue(stat.S_ISLNK(report["stat:bin/sh"][0]))
        self.assertEqual(report["stat:bin/ls"][1], report["stat:bin/busybox"][1])
        # copy-on-write: the upper dir got the changes, the layers did not
        upper = self.path("container/upper")
        with open(os.path.join(upper, "etc/motd")) as f:
            self.assertEqual(f.read(), "changed\n")
        self.assertTrue(os.path.isfile(os.path.join(upper, "new-file")))
        self.assertTrue(stat.S_ISCHR(os.lstat(os.path.join(upper, "bin/busybox")).st_mode))
        self.assertEqual(self.read(image, 2, "etc/motd"), b"top\n")
        self.assertEqual(self.read(image, 0, "bin/busybox"), b"BB")

    def test_many_layers_fit_one_page(self):
        layers = [make_tar([F(f"layer{i}", b"x"), F("which", str(i).encode())])
                  for i in range(120)]
        img = Img(["tall:1"], layers)
        self.store.load(docker_archive(self.path("tall.tar"), [img]))
        image = self.store.resolve("tall:1")
        report, data, cwd = self.mount_probe(image.layer_dirs, {"read": ["which", "layer0"]})
        self.assertIsNotNone(cwd)            # absolute paths would not fit
        self.assertEqual(report["which"], "119")
        self.assertEqual(report["layer0"], "x")


if __name__ == "__main__":
    unittest.main()
