"""The image store with real archives: docker-archive (old and Docker 25
layouts) and OCI layouts (directory and tar), the layer cache, integrity
checks, rmi and garbage collection, import, save, tags and the built-in
busybox image.  Everything is checked on disk."""

import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from tests import support
from tests.test_images_kit import (D, F, H, Img, L, OPQ, W, docker_archive, host_arch,
                                   make_tar, oci_layout, sha, uncompressed)
from contain.engine import images
from contain.errors import Conflict, ContainError, NotFound, UsageError

BASE = make_tar([D("etc"), F("etc/motd", b"base motd\n"), F("etc/old", b"to be deleted"),
                 D("var/cache", mode=0o755), F("var/cache/stale", b"s"),
                 F("bin/busybox", b"BB", mode=0o755), H("bin/ls", "bin/busybox"),
                 L("bin/sh", "busybox"), F("bin/su", b"su", mode=0o4755)], compress="gzip")
TOP = make_tar([W("etc/old"), OPQ("var/cache"), F("var/cache/fresh", b"f"),
                F("etc/motd", b"top motd\n")])
OTHER_TOP = make_tar([F("srv/data", b"other")])


def store_files(store):
    """What the store holds, for 'nothing was stored' checks."""
    out = {}
    for sub in ("records", "layers", "blobs/sha256", "tmp"):
        path = os.path.join(store.dir, sub)
        out[sub] = sorted(os.listdir(path)) if os.path.isdir(path) else []
    out["tags"] = store.tags()
    return out


@support.requires_root
class StoreCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="images-", dir=support.WORK)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.store = images.ImageStore(os.path.join(self.tmp, "root"))
        self.logs = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def load(self, source, **kw):
        return self.store.load(source, log=self.logs.append, **kw)

    def assert_nothing_stored(self, before, call, culprit):
        with self.assertRaises(ContainError) as cm:
            call()
        msg = str(cm.exception)
        self.assertIn(culprit, msg)
        self.assertNotIn("\n", msg)
        self.assertEqual(store_files(self.store), before)
        return msg


class TestLoadFormats(StoreCase):
    def check_app(self, image):
        self.assertEqual(len(image.layer_dirs), 2)
        bottom, top = image.layer_dirs
        with open(os.path.join(bottom, "etc/motd")) as f:
            self.assertEqual(f.read(), "base motd\n")
        with open(os.path.join(top, "etc/motd")) as f:
            self.assertEqual(f.read(), "top motd\n")
        wh = os.lstat(os.path.join(top, "etc/old"))
        self.assertTrue(stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0)
        self.assertEqual(os.getxattr(os.path.join(top, "var/cache"), "trusted.overlay.opaque"),
                         b"y")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(bottom, "bin/su")).st_mode), 0o4755)
        self.assertEqual(os.stat(os.path.join(bottom, "bin/ls")).st_ino,
                         os.stat(os.path.join(bottom, "bin/busybox")).st_ino)
        self.assertEqual(image.layers, [sha(uncompressed(BASE)), sha(TOP)])

    def test_docker_archive_legacy_and_docker25(self):
        img = Img(["app:v1", "app:latest"], [BASE, TOP], {"Cmd": ["sh"], "Env": ["A=1"]})
        for legacy in (True, False):
            with self.subTest(legacy=legacy):
                path = docker_archive(self.path(f"da-{legacy}.tar"), [img], legacy=legacy)
                self.assertEqual(sorted(self.load(path)),
                                 [("app:latest", img.id), ("app:v1", img.id)])
                image = self.store.resolve("app:v1")
                self.assertEqual(image.id, img.id)
                self.assertEqual(image.config, {"Cmd": ["sh"], "Env": ["A=1"]})
                self.assertEqual(image.refs, ["app:latest", "app:v1"])
                self.check_app(image)
                self.assertEqual(self.store.resolve("app").id, img.id)

    def test_oci_layout_dir_and_tar(self):
        img = Img(["example.com/team/app:2"], [BASE, TOP], {"Entrypoint": ["/bin/sh"]})
        oci_layout(self.path("oci"), [img])
        self.assertEqual(self.load(self.path("oci")), [("example.com/team/app:2", img.id)])
        self.check_app(self.store.resolve("example.com/team/app:2"))
        self.assertEqual(self.store.resolve(img.id[7:19]).id, img.id)
        self.assertEqual(self.store.resolve(img.id).id, img.id)
        tar_store = images.ImageStore(self.path("root2"))
        oci_layout(self.path("oci.tar"), [img], as_tar=True)
        self.assertEqual(tar_store.load(self.path("oci.tar")),
                         [("example.com/team/app:2", img.id)])
        self.check_app(tar_store.resolve("example.com/team/app:2"))

    def test_repo_digest_reference(self):
        img = Img(["app:1"], [TOP])
        oci_layout(self.path("oci"), [img])
        self.load(self.path("oci"))
        digest = sha(img.manifest())
        self.assertEqual(self.store.resolve(f"app@{digest}").id, img.id)
        self.assertEqual(self.store.inspect("app:1")["RepoDigests"], [f"app@{digest}"])

    def test_gzipped_archive_and_stdin(self):
        img = Img(["app:gz"], [BASE, TOP])
        raw = docker_archive(self.path("da.tar"), [img])
        with open(raw, "rb") as f, open(self.path("da.tar.gz"), "wb") as out:
            out.write(gzip.compress(f.read()))
        self.assertEqual(self.load(self.path("da.tar.gz")), [("app:gz", img.id)])
        # the CLI reads '-' from stdin
        with open(self.path("da.tar.gz"), "rb") as f:
            res = subprocess.run([support.PYTHON, support.CONTAIN, "--root", self.store.root,
                                  "load"], stdin=f, capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, "Loaded image: app:gz\n")
        self.assertEqual(store_files(self.store)["tmp"], [])

    def test_untagged_and_ref_name_only(self):
        img = Img([], [TOP])
        oci_layout(self.path("oci"), [img])
        self.assertEqual(self.load(self.path("oci")), [(None, img.id)])
        img2 = Img(["latest"], [OTHER_TOP])
        oci_layout(self.path("oci2"), [img2], ref_name_only=True)
        # a bare tag goes in localhost/<the layout's name>, or where --name says
        self.assertEqual(self.load(self.path("oci2")), [("localhost/oci2:latest", img2.id)])
        self.assertEqual(self.store.load(self.path("oci2"), name="my/app"),
                         [("my/app:latest", img2.id)])
        img3 = Img(["me/tool:3"], [OTHER_TOP])
        oci_layout(self.path("oci3"), [img3], ref_name_only=True)
        self.assertEqual(self.load(self.path("oci3")), [("me/tool:3", img3.id)])

    def test_multi_platform_index(self):
        arm = Img(["multi:1"], [OTHER_TOP], {"Cmd": ["arm"]}, arch="arm64")
        host = Img(["multi:1"], [TOP], {"Cmd": ["host"]})
        s390 = Img(["multi:1"], [BASE], {"Cmd": ["s390x"]}, arch="s390x")
        plat = lambda a: {"os": "linux", "architecture": a}  # noqa: E731
        entries = [(arm, plat("arm64")), (host, plat(host_arch())), (s390, plat("s390x"))]
        if host_arch() == "arm64":
            entries = entries[1:]
        oci_layout(self.path("multi"), [], index_of=entries)
        self.assertEqual(self.load(self.path("multi")), [("multi:1", host.id)])
        self.assertEqual(self.store.resolve("multi:1").config["Cmd"], ["host"])
        self.assertEqual(self.load(self.path("multi"), platform="linux/s390x"),
                         [("multi:1", s390.id)])
        before = store_files(self.store)
        msg = self.assert_nothing_stored(
            before, lambda: self.load(self.path("multi"), platform="linux/riscv64"),
            "linux/riscv64")
        self.assertIn("linux/s390x", msg)
        with self.assertRaises(UsageError):
            self.load(self.path("multi"), platform="riscv64")

    def test_platform_of_single_image_is_checked_when_asked(self):
        oci_layout(self.path("oci"), [Img(["a:1"], [TOP], arch="s390x")])
        before = store_files(self.store)
        self.assert_nothing_stored(before, lambda: self.load(self.path("oci"),
                                                              platform="linux/arm64"),
                                   "linux/s390x")

    def test_several_images_in_one_archive(self):
        a, b = Img(["a:1"], [BASE, TOP]), Img(["b:1"], [BASE, OTHER_TOP])
        docker_archive(self.path("two.tar"), [a, b])
        self.assertEqual(self.load(self.path("two.tar")), [("a:1", a.id), ("b:1", b.id)])
        self.assertEqual(len(os.listdir(self.store.layers_dir)), 3)

    def test_config_section_and_inspect(self):
        section = {"Entrypoint": ["/e"], "Cmd": ["c"], "Env": ["K=V"], "WorkingDir": "/w",
                   "User": "1:2", "StopSignal": "SIGINT", "ExposedPorts": {"80/tcp": {}},
                   "Labels": {"l": "v"}}
        img = Img(["cfg:1"], [TOP], section)
        docker_archive(self.path("cfg.tar"), [img])
        self.load(self.path("cfg.tar"))
        image = self.store.resolve("cfg:1")
        self.assertEqual(image.config, section)
        info = self.store.inspect("cfg:1")
        self.assertEqual(info["Id"], img.id)
        self.assertEqual(info["RepoTags"], ["cfg:1"])
        self.assertEqual(info["Config"], section)
        self.assertEqual(info["RootFS"], {"Type": "layers", "Layers": [sha(TOP)]})
        self.assertEqual(info["Os"], "linux")
        self.assertEqual(info["Size"], image.size)
        self.assertEqual(image.size, len(b"f") + len(b"top motd\n"))


class TestCache(StoreCase):
    def test_layers_unpacked_once_and_shared(self):
        a, b = Img(["a:1"], [BASE, TOP]), Img(["b:1"], [BASE, OTHER_TOP])
        docker_archive(self.path("a.tar"), [a])
        oci_layout(self.path("b"), [b])
        self.load(self.path("a.tar"))
        base_dir = self.store.resolve("a:1").layer_dirs[0]
        marker = os.stat(os.path.join(base_dir, "etc/motd")).st_ino
        self.logs.clear()
        self.load(self.path("b"))
        self.assertTrue(any("layer 1/2" in line and "already present" in line
                            for line in self.logs), self.logs)
        self.assertEqual(self.store.resolve("b:1").layer_dirs[0], base_dir)
        for key in os.listdir(self.store.layers_dir):     # nothing but the layer
            self.assertEqual(sorted(os.listdir(os.path.join(self.store.layers_dir, key))),
                             ["diff", "layer.json"])
        self.assertEqual(os.stat(os.path.join(base_dir, "etc/motd")).st_ino, marker)
        self.assertEqual(len(os.listdir(self.store.layers_dir)), 3)
        # reloading: nothing unpacked, image already present
        self.logs.clear()
        self.load(self.path("a.tar"))
        self.assertFalse(any("unpacking" in line for line in self.logs))

    def test_a_corrupted_layer_is_refused_even_when_present(self):
        """Docker says "invalid diffID": the archive is hashed all the same."""
        a = Img(["a:1"], [TOP])                      # uncompressed: only the diff_id tells
        docker_archive(self.path("a.tar"), [a])
        self.load(self.path("a.tar"))
        for legacy in (True, False):
            b = Img(["a:2"], [TOP])
            docker_archive(self.path("bad.tar"), [b], legacy=legacy, corrupt=(b, 0))
            with self.assertRaises(ContainError) as cm:
                self.load(self.path("bad.tar"))
            self.assertIn("corrupted", str(cm.exception))
            self.assertEqual(self.store.tags(), {"a:1": a.id})

    def test_present_layers_are_not_even_read(self):
        a = Img(["a:1"], [BASE, TOP])
        docker_archive(self.path("a.tar"), [a])
        self.load(self.path("a.tar"))
        # the same image again, with its layer files missing: loads from the cache
        oci_layout(self.path("thin"), [Img(["a:2"], [BASE, TOP])],
                   skip_blobs={sha(BASE), sha(TOP)})
        self.assertEqual(self.load(self.path("thin"))[0][0], "a:2")


class TestRemove(StoreCase):
    def setUp(self):
        super().setUp()
        self.a, self.b = Img(["a:1"], [BASE, TOP]), Img(["b:1"], [BASE, OTHER_TOP])
        docker_archive(self.path("ab.tar"), [self.a, self.b])
        self.load(self.path("ab.tar"))

    def test_rmi_collects_unshared_layers(self):
        top_dir = self.store.resolve("a:1").layer_dirs[1]
        base_dir = self.store.resolve("a:1").layer_dirs[0]
        self.assertEqual(self.store.remove("a:1"), ["Untagged: a:1", f"Deleted: {self.a.id}"])
        self.assertFalse(os.path.exists(top_dir))
        self.assertTrue(os.path.isdir(base_dir))          # b still uses it
        self.assertFalse(os.path.exists(self.store.blob_path(self.a.id)))
        with self.assertRaises(NotFound):
            self.store.resolve("a:1")
        self.store.remove("b:1")
        self.assertEqual(store_files(self.store)["layers"], [])
        self.assertEqual(store_files(self.store)["blobs/sha256"], [])
        self.assertEqual(store_files(self.store)["records"], [])

    def test_extra_tag_is_only_untagged(self):
        self.store.tag("a:1", "alias")
        self.assertEqual(self.store.remove("alias"), ["Untagged: alias:latest"])
        self.assertEqual(self.store.resolve("a:1").refs, ["a:1"])
        self.store.tag("a:1", "again")
        with self.assertRaises(Conflict) as cm:      # an ID with several tags needs -f
            self.store.remove(self.a.id)
        self.assertIn("again:latest", str(cm.exception))
        lines = self.store.remove(self.a.id[7:19], force=True)
        self.assertIn(f"Deleted: {self.a.id}", lines)

    def test_in_use_refused_unless_forced(self):
        used = {self.a.id}
        in_use = used.__contains__
        with self.assertRaises(Conflict) as cm:
            self.store.remove("a:1", in_use=in_use)
        self.assertIn("a:1", str(cm.exception))
        self.assertEqual(self.store.resolve("a:1").id, self.a.id)
        self.assertEqual(self.store.remove("a:1", force=True, in_use=in_use),
                         ["Untagged: a:1"])
        kept = self.store.resolve(self.a.id)      # dangling, its layers kept
        self.assertEqual(kept.refs, [])
        self.assertTrue(all(os.path.isdir(d) for d in kept.layer_dirs))
        self.assertEqual(self.store.prune(in_use=in_use)[0], [])
        used.clear()
        deleted, freed = self.store.prune(in_use=in_use)
        self.assertEqual(deleted, [self.a.id])
        self.assertGreater(freed, 0)

    def test_unknown_image(self):
        with self.assertRaises(NotFound) as cm:
            self.store.remove("nope:1")
        self.assertIn("nope:1", str(cm.exception))


class TestIntegrity(StoreCase):
    def setUp(self):
        super().setUp()
        docker_archive(self.path("ok.tar"), [Img(["ok:1"], [OTHER_TOP])])
        self.load(self.path("ok.tar"))
        self.before = store_files(self.store)

    def test_corrupted_layer_in_docker_archive(self):
        img = Img(["bad:1"], [TOP, make_tar([F("x", b"y" * 3000)])])
        docker_archive(self.path("bad.tar"), [img], corrupt=(img, 1))
        msg = self.assert_nothing_stored(self.before, lambda: self.load(self.path("bad.tar")),
                                         "layer 2/2")
        self.assertIn("diff_id", msg)

    def test_corrupted_blob_in_oci_layout(self):
        img = Img(["bad:1"], [TOP, BASE])
        oci_layout(self.path("oci"), [img])
        blob = os.path.join(self.path("oci"), "blobs/sha256", sha(BASE)[7:])
        with open(blob, "r+b") as f:
            f.seek(30)
            byte = f.read(1)
            f.seek(30)
            f.write(bytes([byte[0] ^ 1]))
        self.assert_nothing_stored(self.before, lambda: self.load(self.path("oci")),
                                   sha(BASE)[7:19])

    def test_truncated_gzip_layer(self):
        big = make_tar([F("rand", os.urandom(100_000))], compress="gzip")
        img = Img(["t:1"], [big])
        oci_layout(self.path("oci"), [img])
        blob = os.path.join(self.path("oci"), "blobs/sha256", sha(big)[7:])
        with open(blob, "r+b") as f:
            f.truncate(len(big) // 2)
        self.assert_nothing_stored(self.before, lambda: self.load(self.path("oci")),
                                   sha(big)[7:19])

    def test_missing_blob(self):
        img = Img(["m:1"], [TOP, OTHER_TOP])
        oci_layout(self.path("oci"), [img], skip_blobs={sha(TOP)})
        msg = self.assert_nothing_stored(self.before, lambda: self.load(self.path("oci")),
                                         sha(TOP)[7:])
        self.assertIn("missing", msg)

    def test_unknown_media_type(self):
        img = Img(["u:1"], [TOP])
        oci_layout(self.path("oci"), [img],
                   layer_types={0: "application/vnd.example.weird.v1"})
        self.assert_nothing_stored(self.before, lambda: self.load(self.path("oci")),
                                   "application/vnd.example.weird.v1")

    def test_escaping_member(self):
        evil = make_tar([F("../../etc/evil", b"x")])
        img = Img(["e:1"], [TOP, evil])
        docker_archive(self.path("e.tar"), [img])
        self.assert_nothing_stored(self.before, lambda: self.load(self.path("e.tar")),
                                   "../../etc/evil")

    def test_invalid_name(self):
        docker_archive(self.path("n.tar"), [Img(["Bad Name:1"], [TOP])])
        self.assert_nothing_stored(self.before, lambda: self.load(self.path("n.tar")),
                                   "Bad Name:1")

    def test_config_not_matching_its_digest(self):
        img = Img(["c:1"], [TOP])
        path = docker_archive(self.path("c.tar"), [img], legacy=False)
        # rewrite the config member with other content under the same name
        out = self.path("c2.tar")
        import tarfile
        with tarfile.open(path) as src, tarfile.open(out, "w") as dst:
            for m in src.getmembers():
                data = src.extractfile(m).read()
                if m.name == "blobs/sha256/" + img.id[7:]:
                    data = data.replace(b"linux", b"LINUX")
                    m.size = len(data)
                dst.addfile(m, io.BytesIO(data))
        self.assert_nothing_stored(self.before, lambda: self.load(out), img.id[7:])

    def test_second_image_failing_stores_neither(self):
        good = Img(["g:1"], [TOP])
        bad = Img(["b:1"], [make_tar([F("z", b"z" * 2000)])])
        docker_archive(self.path("gb.tar"), [good, bad], corrupt=(bad, 0))
        self.assert_nothing_stored(self.before, lambda: self.load(self.path("gb.tar")),
                                   "layer 1/1")

    def test_not_an_image(self):
        with open(self.path("rootfs.tar"), "wb") as f:
            f.write(make_tar([F("etc/hostname", b"x")]))
        self.assert_nothing_stored(self.before, lambda: self.load(self.path("rootfs.tar")),
                                   "contain import")
        self.assert_nothing_stored(self.before, lambda: self.load(self.path("missing.tar")),
                                   "missing.tar")

    def test_crash_leftovers_are_collected(self):
        # what a writer killed half-way leaves: tmp work and an orphan layer
        os.makedirs(os.path.join(self.store.tmp, "layer-crashed", "diff"))
        orphan = os.path.join(self.store.layers_dir, "0123456789ab")
        os.makedirs(os.path.join(orphan, "diff"))
        docker_archive(self.path("n.tar"), [Img(["n:1"], [TOP])])
        self.load(self.path("n.tar"))
        self.assertEqual(os.listdir(self.store.tmp), [])
        self.assertFalse(os.path.exists(orphan))
        self.assertEqual(self.store.resolve("ok:1").layers, [sha(OTHER_TOP)])


class TestImportSaveTag(StoreCase):
    def test_import_rootfs_tarball(self):
        rootfs = make_tar([D("bin"), F("bin/tool", b"t", mode=0o755), F("etc/issue", b"x")],
                          compress="gzip")
        with open(self.path("rootfs.tar.gz"), "wb") as f:
            f.write(rootfs)
        section = images.parse_changes(['CMD ["/bin/tool"]', "ENV MODE=1"])
        image_id = self.store.import_tarball(self.path("rootfs.tar.gz"), "imported:v1",
                                             config=section)
        image = self.store.resolve("imported:v1")
        self.assertEqual(image.id, image_id)
        self.assertEqual(image.layers, [sha(uncompressed(rootfs))])
        self.assertEqual(image.config["Cmd"], ["/bin/tool"])
        self.assertTrue(os.path.isfile(os.path.join(image.layer_dirs[0], "bin/tool")))
        self.assertIn("Imported from", image.image_config["history"][0]["comment"])
        # an untagged import, and a bad name that stores nothing
        untagged = self.store.import_tarball(self.path("rootfs.tar.gz"))
        self.assertTrue(untagged.startswith("sha256:"))
        before = store_files(self.store)
        self.assert_nothing_stored(before, lambda: self.store.import_tarball(
            self.path("rootfs.tar.gz"), "UPPER:case"), "UPPER:case")
        evil = self.path("evil.tar")
        with open(evil, "wb") as f:
            f.write(make_tar([L("l", "/etc"), F("l/evil", b"x")]))
        self.assert_nothing_stored(before, lambda: self.store.import_tarball(evil, "e:1"),
                                   "l/evil")

    def test_save_and_load_round_trip(self):
        a, b = Img(["a:1"], [BASE, TOP], {"Cmd": ["a"]}), Img(["b:1"], [BASE, OTHER_TOP])
        docker_archive(self.path("ab.tar"), [a, b])
        self.load(self.path("ab.tar"))
        self.store.tag("a:1", "a:extra")
        out = self.path("saved.tar")
        self.store.save(["a:1", "a:extra", "b:1"], out)
        fresh = images.ImageStore(self.path("root2"))
        loaded = fresh.load(out)
        self.assertEqual(sorted(loaded), sorted([("a:1", a.id), ("a:extra", a.id),
                                                 ("b:1", b.id)]))
        self.assertEqual(fresh.resolve("a:1").layers, self.store.resolve("a:1").layers)
        with open(os.path.join(fresh.resolve("a:1").layer_dirs[1], "etc/motd")) as f:
            self.assertEqual(f.read(), "top motd\n")
        import tarfile
        with tarfile.open(out) as tar:
            names = tar.getnames()
            manifest = json.load(tar.extractfile("manifest.json"))
        self.assertIn("oci-layout", names)
        self.assertIn("index.json", names)
        self.assertEqual(len(manifest), 2)           # one entry per image
        base_blob = "blobs/sha256/" + sha(uncompressed(BASE))[7:]
        self.assertEqual(names.count(base_blob), 1)     # a shared layer is written once

    def test_tags(self):
        img = Img(["t:1"], [TOP])
        docker_archive(self.path("t.tar"), [img])
        self.load(self.path("t.tar"))
        self.assertEqual(self.store.tag("t:1", "registry:5000/x/y:z"), "registry:5000/x/y:z")
        self.assertEqual(self.store.resolve("registry:5000/x/y:z").id, img.id)
        with self.assertRaises(UsageError):
            self.store.tag("t:1", "Bad:Tag!")
        with self.assertRaises(NotFound):
            self.store.tag("missing:1", "x:1")
        self.assertEqual([i.refs for i in self.store.list()], [["registry:5000/x/y:z", "t:1"]])
        self.assertFalse([n for n in os.listdir(self.store.dir) if ".tmp-" in n])
        rows = images.image_rows(self.store.list())
        self.assertEqual({(r["Repository"], r["Tag"]) for r in rows},
                         {("t", "1"), ("registry:5000/x/y", "z")})
        self.assertEqual(images.image_rows(self.store.list(), match="t")[0]["Tag"], "1")


class TestBuiltin(StoreCase):
    def test_busybox_is_built_on_first_use(self):
        image = self.store.resolve("busybox")
        self.assertEqual(image.refs, ["busybox:latest"])
        self.assertEqual(image.config["Cmd"], ["sh"])
        root = image.layer_dirs[0]
        self.assertTrue(os.access(os.path.join(root, "bin/sh"), os.X_OK))
        self.assertTrue(os.path.isfile(os.path.join(root, "etc/passwd")))
        self.assertEqual(self.store.resolve("docker.io/library/busybox:latest").id, image.id)
        with self.assertRaises(NotFound):
            self.store.resolve("busybox:1.0")

    def test_fallback_copies_host_tools_and_their_libraries(self):
        import busybox                                   # images/busybox.py
        from unittest import mock
        real_which = busybox.which
        dest = self.path("hostroot")
        with mock.patch.object(busybox, "find_static_busybox", return_value=None), \
                mock.patch.object(busybox, "which",
                                  lambda n: None if n == "busybox" else real_which(n)):
            busybox.build(dest)
        self.assertFalse(os.path.exists(os.path.join(dest, "bin/busybox")))
        interp = busybox.Elf(os.path.realpath("/bin/sh")).interpreter()
        if interp:                                      # a dynamic /bin/sh: its loader came too
            self.assertTrue(os.path.isfile(os.path.join(dest, interp.lstrip("/"))))
        res = subprocess.run(["/bin/sh", "-c", "echo ok; ls /etc | wc -l; cat /etc/hostname"],
                             capture_output=True, text=True, timeout=30, env={"PATH": "/bin"},
                             preexec_fn=lambda: (os.chroot(dest), os.chdir("/")))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), ["ok", "5", "busybox"])

    def test_cli_runs_busybox_on_a_fresh_root(self):
        res = subprocess.run([support.PYTHON, support.CONTAIN, "--root", self.store.root,
                              "run", "--rm", "--network", "none", "busybox", "echo", "hello"],
                             capture_output=True, text=True, timeout=60, env=support.env())
        self.assertEqual((res.returncode, res.stdout), (0, "hello\n"), res.stderr)
        res = support.contain("--root", self.store.root, "images")
        self.assertIn("busybox", res.stdout)


class TestCli(StoreCase):
    def cli(self, *args, ok=True, **kw):
        res = support.contain("--root", self.store.root, *args, **kw)
        if ok:
            self.assertEqual(res.returncode, 0, res.stderr)
        return res

    def test_image_commands(self):
        img = Img(["cli:1"], [BASE, TOP], {"Cmd": ["sh"]})
        archive = docker_archive(self.path("cli.tar"), [img])
        self.assertEqual(self.cli("load", "-i", archive).stdout, "Loaded image: cli:1\n")
        res = self.cli("load", "-v", archive)
        self.assertIn("already present, not unpacked again", res.stderr)
        self.cli("tag", "cli:1", "other/name:2")
        lines = self.cli("images").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"])
        self.assertEqual(sorted(line.split()[:3] for line in lines[1:]),
                         [["cli", "1", img.id[7:19]], ["other/name", "2", img.id[7:19]]])
        self.assertEqual(self.cli("images", "-q").stdout, img.id[7:19] + "\n")
        info = json.loads(self.cli("image", "inspect", "cli:1").stdout)
        self.assertEqual(info[0]["Id"], img.id)
        self.assertEqual(self.cli("image", "inspect", "-f", "{{.Config.Cmd}}", "cli:1").stdout,
                         '["sh"]\n')
        self.cli("save", "-o", self.path("out.tar"), "cli:1")
        bad = self.cli("tag", "cli:1", "Not Valid", ok=False)
        self.assertEqual(bad.returncode, 125)
        self.assertIn("'Not Valid'", bad.stderr)
        missing = self.cli("rmi", "nope:1", ok=False)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("nope:1", missing.stderr)
        self.assertEqual(self.cli("rmi", "other/name:2").stdout, "Untagged: other/name:2\n")

    def test_rmi_refuses_an_image_a_container_uses(self):
        img = Img(["used:1"], [BASE, TOP], {"Cmd": ["sh"]})
        self.cli("load", "-i", docker_archive(self.path("used.tar"), [img]))
        cid = self.cli("create", "--network", "none", "used:1").stdout.strip()
        self.addCleanup(self.cli, "rm", "-f", cid, ok=False)
        res = self.cli("rmi", "used:1", ok=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("must be forced", res.stderr)
        self.assertEqual(self.cli("rmi", "-f", "used:1").stdout, "Untagged: used:1\n")
        layer_dirs = self.store.resolve(img.id).layer_dirs
        self.assertTrue(all(os.path.isdir(d) for d in layer_dirs))   # still needed
        self.assertNotIn("Deleted", self.cli("image", "prune").stdout)
        self.cli("rm", cid)
        self.assertIn(img.id, self.cli("image", "prune").stdout)
        self.assertFalse(any(os.path.exists(d) for d in layer_dirs))

    def test_import_from_stdin(self):
        data = make_tar([F("bin/tool", b"t", mode=0o755)], compress="gzip")
        res = subprocess.run([support.PYTHON, support.CONTAIN, "--root", self.store.root,
                              "import", "-c", 'CMD ["/bin/tool"]', "-", "imp:1"],
                             input=data, capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        image = self.store.resolve("imp:1")
        self.assertEqual(res.stdout.decode().strip(), image.id)
        self.assertEqual(image.config["Cmd"], ["/bin/tool"])


if __name__ == "__main__":
    unittest.main()
