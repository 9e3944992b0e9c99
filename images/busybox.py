#!/usr/bin/python3
"""Recipe: a minimal root filesystem built from the host's static busybox.

    images/busybox.py DEST        # writes the root filesystem into DEST

Nothing is downloaded: /bin/busybox is copied from the host (Debian's
busybox-static package), every applet becomes a symlink to it, and a few
files a container expects (/etc/passwd, /etc/group, /etc/hosts...) are
written.  The result is what the tests run containers from.
"""

import os
import shutil
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


def build(dest, busybox=None):
    """Write a busybox root filesystem into dest (created if missing)."""
    busybox = busybox or find_static_busybox()
    if busybox is None:
        raise SystemExit("no static busybox on this host (apt-get install busybox-static)")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev",
              "tmp", "root", "home/app", "var/www", "run"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(dest, "bin/busybox"))
    for name in applets(busybox):
        link = os.path.join(dest, "bin", name)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    for name, text in (("passwd", PASSWD), ("group", GROUP), ("os-release", OS_RELEASE),
                       ("hostname", "busybox\n"), ("hosts", "127.0.0.1 localhost\n")):
        with open(os.path.join(dest, "etc", name), "w") as f:
            f.write(text)
    os.chown(os.path.join(dest, "home/app"), 1000, 1000)
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    build(sys.argv[1])
