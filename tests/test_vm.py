"""The pure parts of tests/vm.py (the VM tier): the initramfs archive, the
kernel unpacking, the QEMU command line and the result line.  Booting the VM
is what run_tests.sh's VM block does."""

import lzma
import os
import stat
import struct
import tempfile
import unittest
import zlib

from tests import vm


def read_newc(data):
    """[(name, mode, data)] from a newc cpio archive (the kernel's reader)."""
    out, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701", data[pos:pos + 6]
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = data[pos:pos + namesize - 1].decode()
        pos += namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, body))


def fake_bzimage(payload, setup_sects=3):
    """A bzImage-shaped file: setup sectors with the header, then payload."""
    head = bytearray((setup_sects + 1) * 512)
    head[0x1f1] = setup_sects
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", head, 0x248, 16, len(payload))
    return bytes(head) + b"\0" * 16 + payload + b"trailing"


class InitramfsArchive(unittest.TestCase):
    def test_newc_round_trip(self):
        entries = [("bin", stat.S_IFDIR | 0o755, None),
                   ("bin/busybox", stat.S_IFREG | 0o755, b"\x7fELF" + b"x" * 5),
                   ("bin/sh", stat.S_IFLNK | 0o777, "busybox"),
                   ("init", stat.S_IFREG | 0o755, b"#!/bin/sh\n")]
        got = read_newc(vm.cpio_newc(entries))
        self.assertEqual([(n, m) for n, m, _ in got], [(n, m) for n, m, _ in entries])
        self.assertEqual(got[1][2], b"\x7fELFxxxxx")
        self.assertEqual(got[2][2], b"busybox")
        self.assertEqual(len(vm.cpio_newc(entries)) % 4, 0)

    def test_static_check(self):
        def elf(*types):
            head = bytearray(64)
            head[:5] = b"\x7fELF\x02"
            struct.pack_into("<Q", head, 0x20, 64)
            struct.pack_into("<HH", head, 0x36, 56, len(types))
            return bytes(head) + b"".join(struct.pack("<I", t).ljust(56, b"\0") for t in types)
        with tempfile.TemporaryDirectory() as d:
            for name, data, static in (("static", elf(1, 1), True),
                                       ("dynamic", elf(1, 3, 1), False),
                                       ("script", b"#!/bin/sh\n", False)):
                path = os.path.join(d, name)
                with open(path, "wb") as f:
                    f.write(data)
                self.assertEqual(vm._is_static(path), static, name)
        self.assertFalse(vm._is_static("/nonexistent"))


class KernelUnpacking(unittest.TestCase):
    ELF = b"\x7fELF" + bytes(range(256)) * 64

    def test_xz_and_gzip_payloads(self):
        xz = lzma.compress(self.ELF, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
        self.assertEqual(vm.decompress_kernel(vm.bzimage_payload(fake_bzimage(xz + b"\1\2\3\4"))),
                         self.ELF)
        co = zlib.compressobj(wbits=31)
        gz = co.compress(self.ELF) + co.flush()
        self.assertEqual(vm.decompress_kernel(vm.bzimage_payload(fake_bzimage(gz))), self.ELF)

    def test_refusals(self):
        with self.assertRaisesRegex(ValueError, "not a bzImage"):
            vm.bzimage_payload(b"\0" * 4096)
        with self.assertRaisesRegex(ValueError, "unsupported kernel compression"):
            vm.decompress_kernel(b"BZh91AY&SY")
        with self.assertRaisesRegex(ValueError, "not an ELF"):
            vm.decompress_kernel(lzma.compress(b"not elf", format=lzma.FORMAT_XZ))
        big = bytearray(fake_bzimage(b"x"))
        struct.pack_into("<I", big, 0x24c, 1 << 30)
        with self.assertRaisesRegex(ValueError, "out of range"):
            vm.bzimage_payload(bytes(big))

    def test_cache_is_reused_and_unpackable_kernels_fall_back(self):
        with tempfile.TemporaryDirectory() as d:
            kernel = os.path.join(d, "vmlinuz-9.9")
            with open(kernel, "wb") as f:
                f.write(fake_bzimage(lzma.compress(self.ELF, format=lzma.FORMAT_XZ)))
            path = vm.cached_vmlinux(kernel, "9.9", os.path.join(d, "cache"))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), self.ELF)
            os.utime(kernel, (1, 1))     # older than the cache: not unpacked again
            os.chmod(kernel, 0)
            self.assertEqual(vm.cached_vmlinux(kernel, "9.9", os.path.join(d, "cache")), path)
            with open(kernel, "wb") as f:
                f.write(b"garbage")
            said = []
            self.assertIsNone(vm.cached_vmlinux(kernel, "9.8", os.path.join(d, "cache"),
                                                warn=said.append))
            self.assertIn("cannot unpack", said[0])


class QemuCommand(unittest.TestCase):
    def cmd(self):
        return vm.qemu_command("/k", "/i", "/s", "/o", "/st", "/c", ["/repo", "test_x"])

    def test_no_network_device_and_read_only_host(self):
        cmd = self.cmd()
        self.assertIn("-nodefaults", cmd)
        self.assertEqual(cmd[cmd.index("-nic") + 1], "none")
        self.assertFalse([a for a in cmd if a.startswith(("-netdev", "user,", "tap,"))])
        fsdev = cmd[cmd.index("-fsdev") + 1]
        self.assertIn("readonly=on", fsdev.split(","))
        append = cmd[cmd.index("-append") + 1]
        self.assertIn("cgroup_no_v1=all", append.split())
        self.assertTrue(append.endswith(" -- /repo test_x"))

    def test_accelerator(self):
        with tempfile.NamedTemporaryFile("w", suffix="cpuinfo") as f:
            f.write("processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n")
            f.flush()
            self.assertEqual(vm.accelerator(f.name),
                             ["-accel", "tcg,thread=multi", "-cpu", "max,la57=off"])
        self.assertEqual(vm.accelerator("/nonexistent")[:2], ["-accel", "tcg,thread=multi"])

    def test_partial_counts(self):
        out = ("test_a (tests.x.A.test_a) ... ok\ntest_b (tests.x.A.test_b) ... FAIL\n"
               "test_c (tests.x.A.test_c) ... skipped 'no'\ntest_d (tests.x.A.test_d) ... "
               "ERROR\ntest_e (tests.x.A.test_e) ... ok\ntest_f (tests.x.A.test_f) ... ")
        self.assertEqual(vm.partial_counts(out), (2, 2, 1))

    def test_status_line(self):
        self.assertEqual(vm.parse_status("12 1 3 1\n"), (12, 1, 3, 1))
        self.assertEqual(vm.parse_status("noise\n5 0 0 0\n"), (5, 0, 0, 0))
        self.assertIsNone(vm.parse_status(""))
        self.assertIsNone(vm.parse_status("5 0 0\n"))


if __name__ == "__main__":
    unittest.main()
