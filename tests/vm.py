#!/usr/bin/python3
"""Run test modules again inside a throw-away QEMU VM: a second kernel with
only cgroup v2 mounted (what every current distribution runs).

    tests/vm.py [--counts FILE] [--kernel VMLINUZ] MODULE...
    tests/vm.py --describe          # the kernel it would boot, one line

The VM boots the host's installed Debian kernel (/boot/vmlinuz-*, the newest
that has its modules in /lib/modules) with `cgroup_no_v1=all`.  Its root
filesystem is the host's `/`, shared read-only over virtio-9p under an
overlay whose upper layer, like /tmp, /var/tmp and /var/lib/contain, lives
on a sparse ext4 scratch disk (tmpfs lacks the user.* xattrs and idmapped
mounts the tests need).  tests/vm-init.sh, run as the VM's init, sets this
up, mounts cgroup2 as systemd does, and runs `tests/run.py MODULE...` from a
session scope; its output and counts come back over virtio-serial ports.

The VM has no network device at all: network tests inside it use bridges and
veths of its own kernel and never reach the host's network.  Everything it
needed (scratch disk, initramfs, output files) is removed afterwards; only
the unpacked kernel is kept, in CACHE_DIR, because unpacking it costs a
second and booting it directly (PVH) skips firmware and decompressor, which
under emulation (TCG) take seconds.

Prints `N passed, N failed, N skipped` last, like tests/run.py, and exits 0
only when the VM ran the tests and none failed; a VM that cannot be started
counts as skipped (with the reason), one that breaks as one failure.
"""

import codecs
import glob
import lzma
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
INIT_SCRIPT = os.path.join(HERE, "vm-init.sh")
CACHE_DIR = os.environ.get("CONTAIN_VM_CACHE", "/var/cache/contain-test-vm")
QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
# what the initramfs needs to reach the host's root and the scratch disk
MODULES = ("virtio_pci", "virtio_blk", "virtio_console", "9p", "9pnet_virtio",
           "ext4", "overlay", "loop")
MEMORY_MB = int(os.environ.get("CONTAIN_VM_MEMORY_MB", "2048"))
SCRATCH_BYTES = 8 << 30         # sparse: only what the tests write takes space
TIMEOUT = int(os.environ.get("CONTAIN_VM_TIMEOUT", "600"))
PORT_OUT, PORT_STATUS = "contain.out", "contain.status"

sys.path.insert(0, TOP)
from contain.core import linux  # noqa: E402  (prctl, for QEMU's parent-death signal)


class Unavailable(Exception):
    """The VM cannot be started on this host (missing qemu, kernel...)."""


# ------------------------------------------------------------------ kernel

def find_kernel(pattern="/boot/vmlinuz-*"):
    """(vmlinuz path, version) of the newest kernel whose modules are installed."""
    found = []
    for path in glob.glob(pattern):
        version = os.path.basename(path)[len("vmlinuz-"):]
        if os.path.isdir(f"/lib/modules/{version}/kernel"):
            found.append((_version_key(version), path, version))
    if not found:
        raise Unavailable("no kernel with modules in /boot and /lib/modules "
                          "(apt-get install linux-image-amd64)")
    _, path, version = max(found)
    return path, version


def _version_key(version):
    return [int(n) for n in re.findall(r"\d+", version)]


def bzimage_payload(data):
    """The compressed kernel inside a bzImage (boot protocol 2.08+ header)."""
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        raise ValueError("not a bzImage (no HdrS header)")
    setup_sects = data[0x1f1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if not length or start + length > len(data):
        raise ValueError("bzImage payload offset/length out of range")
    return data[start:start + length]


def decompress_kernel(payload):
    """The ELF vmlinux from a bzImage payload (xz, gzip or, with the zstd
    program, zstd); trailing bytes after the stream are ignored."""
    if payload.startswith(b"\xfd7zXZ\x00"):
        out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b"\x1f\x8b"):
        out = zlib.decompressobj(wbits=31).decompress(payload)
    elif payload.startswith(b"\x28\xb5\x2f\xfd") and shutil.which("zstd"):
        out = subprocess.run(["zstd", "-dcq"], input=payload, capture_output=True).stdout
    else:
        raise ValueError(f"unsupported kernel compression (magic {payload[:4].hex()})")
    if not out.startswith(b"\x7fELF"):
        raise ValueError("the unpacked kernel is not an ELF file")
    return out


def cached_vmlinux(vmlinuz, version, cache_dir=CACHE_DIR, warn=print):
    """Path of the unpacked kernel, made once per kernel file; None when it
    cannot be unpacked (QEMU then boots the bzImage through its firmware)."""
    dest = os.path.join(cache_dir, f"vmlinux-{version}")
    if os.path.exists(dest) and os.path.getmtime(dest) >= os.path.getmtime(vmlinuz):
        return dest
    try:
        with open(vmlinuz, "rb") as f:
            elf = decompress_kernel(bzimage_payload(f.read()))
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{dest}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(elf)
        os.replace(tmp, dest)
        return dest
    except (OSError, ValueError, lzma.LZMAError) as e:
        warn(f"vm: booting {vmlinuz} through firmware (cannot unpack it: {e})")
        return None


# --------------------------------------------------------------- initramfs

def module_files(version, names=MODULES):
    """The .ko files (dependencies first) that load names, per modprobe."""
    out = []
    for name in names:
        res = subprocess.run(["modprobe", "-S", version, "--show-depends", name],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise Unavailable(f"modprobe --show-depends {name} ({version}): "
                              f"{res.stderr.strip() or 'failed'}")
        for line in res.stdout.splitlines():
            fields = line.split()
            if fields[:1] == ["insmod"] and fields[1] not in out:
                out.append(fields[1])
    return out


def cpio_newc(entries):
    """An uncompressed newc cpio archive from [(name, mode, data_or_target)]:
    regular files get bytes, symlinks their target, directories None."""
    buf = bytearray()
    for ino, (name, mode, data) in enumerate(list(entries) + [("TRAILER!!!", 0, b"")], 1):
        if isinstance(data, str):
            data = data.encode()
        data = data or b""
        name_b = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0)
        buf += b"070701" + b"".join(b"%08X" % v for v in fields) + name_b
        buf += b"\0" * (-len(buf) % 4) + data
        buf += b"\0" * (-len(buf) % 4)
    return bytes(buf)


def initramfs(version, init_script=INIT_SCRIPT, busybox=BUSYBOX):
    """The initramfs: static busybox, the modules (in load order, listed in
    /modules), and the init script as /init."""
    if not _is_static(busybox):
        raise Unavailable(f"{busybox} is not a static busybox (apt-get install busybox-static)")
    kos = module_files(version)
    entries = [(d, stat.S_IFDIR | 0o755, None)
               for d in ("bin", "dev", "proc", "sys", "lower", "scratch", "newroot",
                         "modules.d")]
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, _read(busybox)))
    entries.append(("bin/sh", stat.S_IFLNK | 0o777, "busybox"))
    entries += [(f"modules.d/{i:02d}-{os.path.basename(k)}", stat.S_IFREG | 0o644, _read(k))
                for i, k in enumerate(kos)]
    entries.append(("init", stat.S_IFREG | 0o755, _read(init_script)))
    return cpio_newc(entries)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _is_static(path):
    """An ELF executable with no PT_INTERP program header."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            phoff, = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


# -------------------------------------------------------------------- qemu

def accelerator(cpuinfo="/proc/cpuinfo"):
    """KVM only with hardware virtualisation (vmx/svm) and /dev/kvm; else TCG
    (a paravirtual /dev/kvm, such as PVM, cannot run a stock kernel)."""
    try:
        with open(cpuinfo) as f:
            flags = set(re.findall(r"^flags\s*:(.*)$", f.read(), re.M)[0].split())
    except (OSError, IndexError):
        flags = set()
    if flags & {"vmx", "svm"} and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max,la57=off"]


def qemu_command(kernel, initrd, scratch, out, status, console, init_args, cpus=2):
    """The QEMU command line.  No network device (-nic none), no display, no
    monitor; the host's / is exported read-only."""
    cmdline = ("console=ttyS0 loglevel=4 quiet panic=-1 mitigations=off "
               "cgroup_no_v1=all rdinit=/init -- " + " ".join(init_args))
    return [QEMU, "-nodefaults", "-no-user-config", "-no-reboot",
            "-M", "pc", *accelerator(), "-smp", str(cpus), "-m", str(MEMORY_MB),
            "-display", "none", "-monitor", "none", "-nic", "none",
            "-serial", f"file:{console}",
            "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,"
                      "multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-drive", f"file={scratch},if=virtio,format=raw,cache=unsafe",
            "-device", "virtio-serial-pci",
            "-chardev", f"file,id=out,path={out}",
            "-device", f"virtserialport,chardev=out,name={PORT_OUT}",
            "-chardev", f"file,id=status,path={status}",
            "-device", f"virtserialport,chardev=status,name={PORT_STATUS}"]


def make_scratch(path, size=SCRATCH_BYTES):
    """A sparse file formatted ext4 (no journal: the disk dies with the VM)."""
    with open(path, "wb") as f:
        f.truncate(size)
    res = subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", path],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise Unavailable(f"mkfs.ext4 {path}: {res.stderr.strip()}")


def partial_counts(output):
    """(passed, failed, skipped) from unittest's verbose lines, for a VM that
    never reported its counts (killed at the timeout, crashed)."""
    results = re.findall(r" \.\.\. (ok|FAIL|ERROR|skipped|expected failure)\b", output)
    return (results.count("ok") + results.count("expected failure"),
            results.count("FAIL") + results.count("ERROR"), results.count("skipped"))


def parse_status(text):
    """'P F S RC' written by vm-init.sh -> (passed, failed, skipped, rc), or None."""
    m = re.search(r"^(\d+) (\d+) (\d+) (\d+)\s*$", text, re.M)
    return tuple(int(g) for g in m.groups()) if m else None


def run_vm(modules, vmlinuz=None, stream=sys.stdout):
    """Boot, run tests/run.py MODULE... in the VM, stream its output; returns
    (passed, failed, skipped)."""
    if shutil.which(QEMU) is None:
        raise Unavailable(f"{QEMU} is not installed (apt-get install qemu-system-x86)")
    if shutil.which("mkfs.ext4") is None:
        raise Unavailable("mkfs.ext4 is not installed (apt-get install e2fsprogs)")
    if vmlinuz:
        version = os.path.basename(vmlinuz)[len("vmlinuz-"):]
    else:
        vmlinuz, version = find_kernel()
    kernel = cached_vmlinux(vmlinuz, version) or vmlinuz
    work = tempfile.mkdtemp(prefix="contain-test-vm-", dir="/var/tmp")
    try:
        paths = {n: os.path.join(work, n) for n in ("initrd", "scratch", "out", "status",
                                                    "console")}
        with open(paths["initrd"], "wb") as f:
            f.write(initramfs(version))
        make_scratch(paths["scratch"])
        for n in ("out", "status", "console"):
            open(paths[n], "wb").close()
        cmd = qemu_command(kernel, paths["initrd"], paths["scratch"], paths["out"],
                           paths["status"], paths["console"],
                           [TOP, "--slowest", "10", *modules])
        print(f"vm: Linux {version}, cgroup v2 only, {' '.join(accelerator()[:2])}",
              file=stream, flush=True)
        rc, elapsed, output = _run_qemu(cmd, paths["out"], stream)
        with open(paths["status"], errors="replace") as f:
            status = parse_status(f.read())
        print(f"vm: {elapsed:.0f} s in the VM", file=stream, flush=True)
        if status is None:
            why = f"killed after {TIMEOUT} s" if rc is None else f"qemu exited {rc}"
            print(f"vm: FAILED: no result from the VM ({why}); the tests that "
                  "finished are counted, plus one failure; console:\n"
                  + _tail(paths["console"]), file=stream, flush=True)
            passed, failed, skipped = partial_counts(output)
            return passed, failed + 1, skipped
        passed, failed, skipped, test_rc = status
        if test_rc and not failed:
            failed = 1      # tests/run.py failed without counting a failure
        return passed, failed, skipped
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_qemu(cmd, out_path, stream, timeout=TIMEOUT):
    """Run QEMU, copying the output port's file to stream as it grows; kill
    it (by its pid) at the timeout.  Returns (exit status or None, seconds,
    the output)."""
    t0 = time.monotonic()
    seen = []
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    try:
        with open(out_path, "rb") as out:
            while True:
                chunk = out.read()
                if chunk:
                    seen.append(decode(chunk))
                    stream.write(seen[-1])
                    stream.flush()
                if proc.poll() is not None:
                    seen.append(decode(out.read(), final=True))
                    stream.write(seen[-1])
                    break
                if time.monotonic() - t0 > timeout:
                    print(f"vm: killing qemu after {timeout} s", file=stream, flush=True)
                    break
                time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            code = None
        else:
            code = proc.returncode
        messages = proc.stdout.read().decode(errors="replace").strip()
        proc.stdout.close()
        if messages:
            print("vm: qemu: " + messages, file=stream, flush=True)
    return code, time.monotonic() - t0, "".join(seen)


def _die_with_parent():
    """In QEMU's child before exec: SIGKILL when this script dies, however."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"({e})"


def main(argv):
    if argv == ["--describe"]:      # for run_tests.sh's summary line
        try:
            print(f"Linux {find_kernel()[1]}, cgroup v2 only")
        except Unavailable:
            print("no kernel")
        return 0
    counts_file = vmlinuz = None
    while argv[:1] in (["--counts"], ["--kernel"]):
        if argv[0] == "--counts":
            counts_file = argv[1]
        else:
            vmlinuz = argv[1]
        argv = argv[2:]
    if not argv:
        print("usage: tests/vm.py [--counts FILE] [--kernel VMLINUZ] MODULE...")
        return 2
    # SIGTERM/SIGHUP unwind like Ctrl-C: QEMU is killed, the temp dir removed
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _: sys.exit(128 + n))
    try:
        passed, failed, skipped = run_vm(argv, vmlinuz)
    except Unavailable as e:
        print(f"vm: skipped: {e}")
        passed, failed, skipped = 0, 0, 1
    if counts_file:
        with open(counts_file, "w") as f:
            f.write(f"{passed} {failed} {skipped}\n")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
