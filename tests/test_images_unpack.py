"""safe_extract against real tarballs: what lands on disk (modes, owners,
mtimes, xattrs, whiteouts), every way a member could escape the layer
directory, tar dialects (GNU, PAX, sparse, compressed) and damaged input."""

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import unittest

from tests import support
from tests.test_images_kit import (D, DEV, F, FIFO, H, L, MTIME, OPQ, W, make_tar)
from contain.errors import ContainError
from contain.engine.unpack import safe_extract

CAP = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"


@support.requires_root
class UnpackCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="unpack-", dir=support.WORK)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dest = os.path.join(self.tmp, "layer")
        # a place outside the layer a hostile member would like to write
        self.outside = os.path.join(self.tmp, "outside")
        os.mkdir(self.outside)
        with open(os.path.join(self.outside, "target"), "w") as f:
            f.write("original")

    def extract(self, members_or_bytes, **kw):
        data = members_or_bytes if isinstance(members_or_bytes, bytes) \
            else make_tar(members_or_bytes, **kw)
        return safe_extract(io.BytesIO(data), self.dest)

    def p(self, *parts):
        return os.path.join(self.dest, *parts)

    def assert_outside_untouched(self):
        self.assertEqual(sorted(os.listdir(self.outside)), ["target"])
        with open(os.path.join(self.outside, "target")) as f:
            self.assertEqual(f.read(), "original")
        self.assertEqual(sorted(os.listdir(self.tmp)), ["layer", "outside"])

    def refused(self, members, culprit, **kw):
        with self.assertRaises(ContainError) as cm:
            self.extract(members, **kw)
        msg = str(cm.exception)
        self.assertIn(culprit, msg)
        self.assertNotIn("\n", msg)
        self.assert_outside_untouched()
        return msg


class TestMetadata(UnpackCase):
    def test_modes_owners_times_xattrs(self):
        self.extract([
            D("bin", mode=0o755), F("bin/su", b"#!su", mode=0o4755),
            F("bin/sgid", b"x", mode=0o2711, uid=0, gid=42),
            D("tmp", mode=0o1777), D("home/app", mode=0o700, uid=1000, gid=1000),
            F("home/app/note", b"n", mode=0o640, uid=1000, gid=1000),
            F("bin/ping", b"ping", mode=0o755, xattrs={"security.capability": CAP,
                                                       "user.comment": b"hi"}),
            F("bin/sneaky", b"s", xattrs={"trusted.overlay.opaque": b"y"}),
            F("precise", b"p", pax={"mtime": "1600000000.123456789"}),
            L("bin/sh", "busybox", uid=7, gid=8), H("bin/su2", "bin/su"), FIFO("run/fifo"),
        ])
        st = os.stat(self.p("bin/su"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o4755)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("bin/sgid")).st_mode), 0o2711)
        self.assertEqual(os.stat(self.p("bin/sgid")).st_gid, 42)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("tmp")).st_mode), 0o1777)
        home = os.stat(self.p("home/app"))
        self.assertEqual((home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)),
                         (1000, 1000, 0o700))
        self.assertEqual(home.st_mtime, MTIME)     # set after its children were made
        self.assertEqual(os.stat(self.p("home/app/note")).st_uid, 1000)
        self.assertEqual(st.st_mtime, MTIME)
        self.assertEqual(os.stat(self.p("precise")).st_mtime_ns, 1600000000123456789)
        self.assertEqual(os.getxattr(self.p("bin/ping"), "security.capability"), CAP)
        self.assertEqual(os.getxattr(self.p("bin/ping"), "user.comment"), b"hi")
        self.assertNotIn("trusted.overlay.opaque", os.listxattr(self.p("bin/sneaky")))
        link = os.lstat(self.p("bin/sh"))
        self.assertTrue(stat.S_ISLNK(link.st_mode))
        self.assertEqual((link.st_uid, link.st_gid), (7, 8))
        self.assertEqual(os.readlink(self.p("bin/sh")), "busybox")
        self.assertEqual(os.stat(self.p("bin/su2")).st_ino, st.st_ino)
        self.assertTrue(stat.S_ISFIFO(os.lstat(self.p("run/fifo")).st_mode))

    def test_whiteouts_and_opaque_dirs(self):
        self.extract([D("etc"), W("etc/passwd"), OPQ("var/cache"), F("var/cache/new", b"n"),
                      F("kept", b"k"), W("kept"), W("later"), F("later", b"l"),
                      F("a/.wh..wh.plnk", b""), DEV("native", major=0, minor=0)])
        st = os.lstat(self.p("etc/passwd"))
        self.assertTrue(stat.S_ISCHR(st.st_mode))
        self.assertEqual(st.st_rdev, 0)
        self.assertFalse(os.path.lexists(self.p("etc/.wh.passwd")))
        self.assertEqual(os.getxattr(self.p("var/cache"), "trusted.overlay.opaque"), b"y")
        self.assertTrue(os.path.isfile(self.p("var/cache/new")))
        # a whiteout hides lower layers only: this layer's own entry stays
        self.assertTrue(stat.S_ISREG(os.lstat(self.p("kept")).st_mode))
        self.assertTrue(stat.S_ISREG(os.lstat(self.p("later")).st_mode))
        self.assertEqual(os.listdir(self.p("a")), [])
        self.assertTrue(stat.S_ISCHR(os.lstat(self.p("native")).st_mode))

    def test_devices_are_not_created(self):
        logs = []
        safe_extract(io.BytesIO(make_tar([DEV("dev/null"), DEV("dev/sda", tarfile.BLKTYPE, 8, 0),
                                          F("ok", b"1")])), self.dest, log=logs.append)
        self.assertEqual(os.listdir(self.p("dev")), [])
        self.assertTrue(os.path.isfile(self.p("ok")))
        self.assertTrue(any("dev/null" in line for line in logs))

    def test_later_members_replace_earlier_ones(self):
        self.extract([F("x", b"one"), F("x", b"two"), D("d"), F("d/f", b"in d"),
                      F("d", b"now a file"), F("f", b"file"), D("f"), F("f/child", b"c"),
                      L("s", "x"), F("s", b"regular now")])
        with open(self.p("x")) as f:
            self.assertEqual(f.read(), "two")
        self.assertTrue(os.path.isfile(self.p("d")))
        self.assertTrue(os.path.isfile(self.p("f/child")))
        self.assertFalse(os.path.islink(self.p("s")))

    def test_root_entry_and_dot_slash_names(self):
        self.extract([D("./", mode=0o750), F("./etc/hostname", b"h"), D("usr//lib/")])
        self.assertEqual(stat.S_IMODE(os.stat(self.dest).st_mode), 0o750)
        self.assertTrue(os.path.isfile(self.p("etc/hostname")))
        self.assertTrue(os.path.isdir(self.p("usr/lib")))


class TestEscapes(UnpackCase):
    def test_absolute_name(self):
        self.refused([F(os.path.join(self.outside, "evil"), b"x")], "absolute")

    def test_dotdot(self):
        self.refused([F("../outside/evil", b"x")], "'..'")
        self.refused([F("a/../../outside/evil", b"x")], "'..'")

    def test_write_through_symlink_to_absolute_dir(self):
        msg = self.refused([L("link", self.outside), F("link/evil", b"x")], "link/evil")
        self.assertIn("symlink", msg)

    def test_write_through_relative_symlink(self):
        self.refused([D("a"), L("a/up", "../.."), F("a/up/outside/evil", b"x")], "symlink")

    def test_symlink_chain(self):
        self.refused([L("one", "two"), L("two", self.outside), F("one/evil", b"x")], "symlink")

    def test_file_over_symlink_replaces_the_link(self):
        self.extract([L("t", os.path.join(self.outside, "target")), F("t", b"mine")])
        self.assertFalse(os.path.islink(self.p("t")))
        self.assert_outside_untouched()

    def test_dir_over_symlink_replaces_the_link(self):
        self.extract([L("d", self.outside), D("d"), F("d/evil", b"x")])
        self.assertTrue(os.path.isfile(self.p("d/evil")))
        self.assert_outside_untouched()

    def test_hardlinks_outside(self):
        self.refused([H("pw", "/etc/passwd")], "absolute")
        self.refused([H("pw", "../outside/target")], "'..'")
        self.refused([L("l", self.outside), H("pw", "l/target")], "symlink")

    def test_hardlink_to_missing_target(self):
        self.refused([H("a", "not/there")], "not/there")

    def test_whiteout_through_symlink(self):
        self.refused([L("l", self.outside), W("l/target")], "symlink")
        self.refused([L("l", self.outside), OPQ("l")], "symlink")

    def test_hardlink_to_symlink_links_the_link(self):
        self.extract([L("l", os.path.join(self.outside, "target")), H("h", "l"), F("h", b"x")])
        self.assertTrue(os.path.islink(self.p("l")))
        self.assert_outside_untouched()


class TestDialects(UnpackCase):
    def test_gnu_and_ustar_long_names(self):
        deep = "/".join(["d" * 60] * 5) + "/file"
        for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
            name = deep if fmt != tarfile.USTAR_FORMAT else "p" * 120 + "/f" * 3
            with self.subTest(fmt=fmt):
                shutil.rmtree(self.dest, True)
                ustar = fmt == tarfile.USTAR_FORMAT     # name split in prefix + name
                target, link = ("t" * 99, "d/" + "l" * 90) if ustar else ("t" * 150, "l" * 160)
                self.extract([F(name, b"x"), L(link, target)], fmt=fmt)
                self.assertTrue(os.path.isfile(self.p(name)))
                self.assertEqual(os.readlink(self.p(link)), target)

    def test_big_ids_base256(self):
        self.extract([F("big", b"x", uid=3_000_000, gid=3_000_001)], fmt=tarfile.GNU_FORMAT)
        st = os.stat(self.p("big"))
        self.assertEqual((st.st_uid, st.st_gid), (3_000_000, 3_000_001))

    def test_compressions(self):
        raw = make_tar([F("f", b"data" * 1000)])
        for name, data in (("gzip", gzip.compress(raw)), ("bz2", bz2.compress(raw)),
                           ("xz", lzma.compress(raw)),
                           ("multi-member gzip", gzip.compress(raw[:3000]) +
                            gzip.compress(raw[3000:]))):
            with self.subTest(name):
                shutil.rmtree(self.dest, True)
                self.extract(data)
                with open(self.p("f"), "rb") as f:
                    self.assertEqual(f.read(), b"data" * 1000)

    def test_zstd_without_support_is_a_clear_error(self):
        try:
            from compression import zstd  # noqa: F401
            self.skipTest("this Python has compression.zstd")
        except ImportError:
            pass
        with self.assertRaises(ContainError) as cm:
            self.extract(b"\x28\xb5\x2f\xfd" + b"\0" * 64)
        self.assertIn("zstd", str(cm.exception))

    def test_sparse_files_from_gnu_tar(self):
        src = os.path.join(self.tmp, "src")
        os.mkdir(src)
        with open(os.path.join(src, "sparse"), "wb") as f:
            f.write(b"head")
            f.seek(5 << 20)
            f.write(b"tail")
        for fmt in ("gnu", "pax"):
            with self.subTest(fmt):
                out = os.path.join(self.tmp, f"s-{fmt}.tar")
                subprocess.run(["tar", f"--format={fmt}", "-S", "-cf", out, "-C", src,
                                "sparse"], check=True)
                shutil.rmtree(self.dest, True)
                safe_extract(out, self.dest)
                with open(self.p("sparse"), "rb") as f:
                    data = f.read()
                self.assertEqual(len(data), (5 << 20) + 4)
                self.assertEqual(data[:4], b"head")
                self.assertEqual(data[-4:], b"tail")
                self.assertEqual(data[4:5 << 20].count(0), (5 << 20) - 4)

    def test_missing_end_of_archive_blocks_are_tolerated(self):
        self.extract([F("a", b"1" * 700), F("b", b"2")], eof=False)
        self.assertEqual(os.path.getsize(self.p("a")), 700)
        self.assertTrue(os.path.isfile(self.p("b")))

    def test_missing_padding_and_end_blocks(self):
        """umoci 0.4.7's `insert` ends a layer right after the last data byte."""
        members = [D("data"), F("data/a", b"1" * 700), F("data/only.txt", b"hello\n")]
        data = make_tar(members, eof=False)
        cut = data.rstrip(b"\0")           # the last member's padding goes too
        self.assertEqual(len(cut) % 512, 6)
        for blob in (cut, gzip.compress(cut)):
            shutil.rmtree(self.dest, True)
            self.extract(blob)
            with open(self.p("data/only.txt"), "rb") as f:
                self.assertEqual(f.read(), b"hello\n")

    def test_empty_archive(self):
        self.extract(make_tar([]))
        self.assertEqual(os.listdir(self.dest), [])


class TestDamage(UnpackCase):
    def test_truncated_data(self):
        data = make_tar([F("big", b"x" * 5000)])
        self.refused(data[:512 + 3000], "big")

    def test_truncated_last_member_without_end_blocks(self):
        """Only padding and end blocks may be missing: a byte of data short,
        a header cut, or a header without its data is refused."""
        data = make_tar([F("a", b"1" * 700), F("last", b"hello\n")], eof=False).rstrip(b"\0")
        self.refused(data[:-1], "'last' ends early")
        self.refused(data[:-6], "'last' ends early")
        self.refused(data[:-6 - 100], "header ends early")
        whole = make_tar([F("a", b"1" * 700), F("last", b"x" * 2000)], eof=False)
        self.refused(whole[:1536 + 512 + 1024], "ends early")

    def test_truncated_gzip(self):
        data = gzip.compress(make_tar([F("big", os.urandom(50000))]))
        self.refused(data[:len(data) // 2], "truncated")

    def test_bad_checksum(self):
        data = bytearray(make_tar([F("a", b"1"), F("b", b"2")]))
        data[1024 + 100] ^= 0x10          # the second header's mode field
        self.refused(bytes(data), "checksum")

    def test_garbage_after_end(self):
        self.refused(make_tar([F("a", b"1")]) + b"garbage" * 100, "end-of-archive")

    def test_not_a_tar(self):
        self.refused(b"this is not a tar archive at all" * 40, "corrupted")
        self.refused(b"", "empty")

    def test_path_source_and_label(self):
        path = os.path.join(self.tmp, "rootfs.tar.gz")
        with open(path, "wb") as f:
            f.write(gzip.compress(make_tar([F("../x", b"1")])))
        with self.assertRaises(ContainError) as cm:
            safe_extract(path, self.dest)
        self.assertIn(path, str(cm.exception))
        self.assertIn("'../x'", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
