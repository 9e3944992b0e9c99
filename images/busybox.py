#!/usr/bin/python3
"""Recipe: a minimal root filesystem built from the host's static busybox.

    images/busybox.py DEST        # writes the root filesystem into DEST

Nothing is downloaded: /bin/busybox is copied from the host (Debian's
busybox-static package), every applet becomes a symlink to it, and a few
files a container expects (/etc/passwd, /etc/group, /etc/hosts...) are
written.  The result is what the tests run containers from.

Without a static busybox, the host's own tools are copied instead: a
dynamically linked busybox if there is one, else /bin/sh and the usual core
utilities, each with the shared libraries it needs (found by reading the
ELF files' PT_INTERP and DT_NEEDED entries, then the library directories of
/etc/ld.so.conf: no ldd, nothing run).

contain's built-in image 'busybox' is this root filesystem with the config
IMAGE_CONFIG (contain.engine.images builds it on first use).
"""

import glob
import os
import shutil
import struct
import subprocess
import sys

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox", "/sbin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app user:/home/app:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
wheel:x:10:app
nogroup:x:65534:
app:x:1000:
"""
OS_RELEASE = """NAME="contain busybox"
ID=busybox
PRETTY_NAME="contain busybox (built from the host's static busybox)"
"""


def find_static_busybox():
    """The host's busybox, if it is statically linked (usable in any root)."""
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                head = f.read(1 << 16)
            # a dynamic ELF names its interpreter (PT_INTERP: /lib*/ld-*)
            if head[:4] == b"\x7fELF" and b"ld-linux" not in head:
                return path
    return None


def applets(busybox):
    out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and "/" not in a and a != "busybox"]


IMAGE_CONFIG = {
    "Cmd": ["sh"],
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
}


def build(dest, busybox=None):
    """Write a busybox root filesystem into dest (created if missing).
    Without a static busybox, the host's tools and their libraries."""
    busybox = busybox or find_static_busybox()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev",
              "tmp", "root", "home/app", "var/www", "run"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    if busybox is not None:
        shutil.copy2(busybox, os.path.join(dest, "bin/busybox"))
        link_applets(dest, busybox)
    else:
        copy_host_tools(dest)
    for name, text in (("passwd", PASSWD), ("group", GROUP), ("os-release", OS_RELEASE),
                       ("hostname", "busybox\n"), ("hosts", "127.0.0.1 localhost\n")):
        with open(os.path.join(dest, "etc", name), "w") as f:
            f.write(text)
    os.chown(os.path.join(dest, "home/app"), 1000, 1000)
    return dest


def link_applets(dest, busybox):
    for name in applets(busybox):
        link = os.path.join(dest, "bin", name)
        if not os.path.lexists(link):
            os.symlink("busybox", link)


# ------------------------------------------------- fallback: the host's tools
HOST_TOOLS = ("sh", "ls", "cat", "echo", "env", "id", "ps", "mkdir", "rmdir", "rm", "cp",
              "mv", "ln", "touch", "chmod", "chown", "sleep", "true", "false", "test",
              "grep", "sed", "awk", "head", "tail", "wc", "sort", "uniq", "tr", "cut",
              "find", "xargs", "printf", "readlink", "stat", "du", "df", "tee", "date",
              "uname", "hostname", "kill", "whoami", "pwd", "basename", "dirname", "seq",
              "yes", "sync", "dd", "expr", "timeout", "nproc", "mount", "umount", "ip",
              "ping", "wget", "nc", "hexdump", "od", "more", "less", "vi")
SEARCH_DIRS = ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")


def which(name):
    for d in SEARCH_DIRS:
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def copy_host_tools(dest):
    """Populate dest/bin from the host: a dynamic busybox and its applets,
    or the tools of HOST_TOOLS; then every shared library they need."""
    binaries = []
    busybox = which("busybox")
    if busybox:
        shutil.copy2(busybox, os.path.join(dest, "bin/busybox"))
        link_applets(dest, busybox)
        binaries.append(busybox)
    else:
        for name in HOST_TOOLS:
            path = which(name)
            if path:
                shutil.copy2(os.path.realpath(path), os.path.join(dest, "bin", name))
                binaries.append(os.path.realpath(path))
    if not os.path.exists(os.path.join(dest, "bin/sh")):
        raise SystemExit("the host has neither a static busybox nor /bin/sh to copy")
    for path in shared_objects(binaries):
        target = os.path.join(dest, path.lstrip("/"))
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.realpath(path), target)
    return dest


class Elf:
    """The parts of an ELF file the dynamic loader reads first."""

    PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
    DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] not in (1, 2) or d[5] not in (1, 2):
            raise ValueError(f"{path}: not an ELF file")
        self.bits = 64 if d[4] == 2 else 32
        self.endian = "<" if d[5] == 1 else ">"
        self.machine = self._unpack("H", 18)[0]
        if self.bits == 64:
            phoff, = self._unpack("Q", 32)
            phentsize, phnum = self._unpack("HH", 54)
        else:
            phoff, = self._unpack("I", 28)
            phentsize, phnum = self._unpack("HH", 42)
        self.segments = [self._segment(phoff + i * phentsize) for i in range(phnum)]

    def _unpack(self, fmt, offset):
        return struct.unpack_from(self.endian + fmt, self.data, offset)

    def _segment(self, off):
        """(type, file offset, vaddr, file size) of a program header."""
        if self.bits == 64:
            ptype, _, offset, vaddr, _, filesz = self._unpack("IIQQQQ", off)
        else:
            ptype, offset, vaddr, _, filesz = self._unpack("IIIII", off)
        return ptype, offset, vaddr, filesz

    def _string(self, offset):
        return self.data[offset:self.data.index(b"\0", offset)].decode()

    def _file_offset(self, vaddr):
        for ptype, offset, start, size in self.segments:
            if ptype == self.PT_LOAD and start <= vaddr < start + size:
                return vaddr - start + offset
        raise ValueError("address outside every loaded segment")

    def interpreter(self):
        for ptype, offset, _, size in self.segments:
            if ptype == self.PT_INTERP:
                return self.data[offset:offset + size].rstrip(b"\0").decode()
        return None

    def dynamic(self):
        """(DT_NEEDED names, DT_RUNPATH/DT_RPATH directories)."""
        entries = []
        fmt, step = ("qQ", 16) if self.bits == 64 else ("iI", 8)
        for ptype, offset, _, size in self.segments:
            if ptype == self.PT_DYNAMIC:
                for pos in range(offset, offset + size, step):
                    tag, value = self._unpack(fmt, pos)
                    if tag == self.DT_NULL:
                        break
                    entries.append((tag, value))
        strtab = [v for t, v in entries if t == self.DT_STRTAB]
        if not strtab:
            return [], []
        base = self._file_offset(strtab[0])
        needed = [self._string(base + v) for t, v in entries if t == self.DT_NEEDED]
        paths = [p for t, v in entries if t in (self.DT_RPATH, self.DT_RUNPATH)
                 for p in self._string(base + v).split(":") if p]
        return needed, paths


def library_dirs():
    """Directories of /etc/ld.so.conf (includes followed) and the defaults."""
    dirs = []

    def read(conf, depth=0):
        try:
            with open(conf) as f:
                lines = f.read().splitlines()
        except OSError:
            return
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line.startswith("include ") and depth < 8:
                for inc in sorted(glob.glob(line.split(None, 1)[1])):
                    read(inc, depth + 1)
            elif line.startswith("/"):
                dirs.append(line)
    read("/etc/ld.so.conf")
    machine = os.uname().machine
    triplets = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
                "armv7l": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu",
                "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu"}
    triplet = triplets.get(machine, f"{machine}-linux-gnu")
    dirs += [f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib64", "/usr/lib64", "/lib",
             "/usr/lib"]
    return list(dict.fromkeys(dirs))


def find_library(name, elf, extra_dirs):
    """The path of library name matching elf's class and machine, or None."""
    for d in list(extra_dirs) + library_dirs():
        path = os.path.join(d, name)
        if os.path.isfile(path):
            try:
                lib = Elf(path)
            except (OSError, ValueError, struct.error):
                continue
            if lib.bits == elf.bits and lib.machine == elf.machine:
                return path
    return None


def shared_objects(binaries):
    """Every interpreter and library the binaries need, transitively (paths
    as the loader finds them, e.g. /lib/x86_64-linux-gnu/libc.so.6)."""
    found, todo = {}, list(binaries)
    while todo:
        path = todo.pop()
        elf = Elf(path)
        interp = elf.interpreter()
        if interp and interp not in found:
            found[interp] = True
            todo.append(interp)
        needed, rpaths = elf.dynamic()
        origin = os.path.dirname(os.path.realpath(path))
        rpaths = [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in rpaths]
        for name in needed:
            lib = find_library(name, elf, rpaths)
            if lib is None:
                raise SystemExit(f"{path} needs {name}, which is not on this host")
            if lib not in found:
                found[lib] = True
                todo.append(lib)
    return sorted(found)


def main(argv):
    """images/busybox.py DEST: build; -h/--help: the usage; anything else that
    looks like an option is refused (it would become a directory's name)."""
    if argv in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(f"usage: {os.path.basename(sys.argv[0])} DEST (see --help)", file=sys.stderr)
        return 2
    build(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
