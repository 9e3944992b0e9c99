"""A private network for tests: nothing leaves it, everything in it goes away.

    upstream netns  "the internet"      eth0 192.0.2.1/24, lo 198.51.100.1/32 (a server)
         |  veth (documentation ranges, RFC 5737)
    host netns      "the host"          eth0 192.0.2.2/24, default via 192.0.2.1
         |  contain's bridge, veths, iptables rules: all made here
    containers      (stand-ins: `unshare --net sleep`, or real ones from `contain run`)

Upstream has no route back to any container subnet, so a reply reaches a
container only if the host masqueraded the request.  Both namespaces are
named contain-test-{host,up}-<pid>-<n> under /run/netns and are deleted by
cleanup() (register it with addCleanup before setup()), which also kills
every process started through the sandbox: deleting the host namespace takes
its bridge, veths and iptables rules with it.  The real host's links, routes
and iptables are never touched: every command runs inside a sandbox
namespace (`ip netns exec`, or `nsenter --net=` where a new mount namespace
would be in the way, as for the contain CLI).
"""

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
HOST_IP, UPSTREAM_IP, SERVER_IP = "192.0.2.2", "192.0.2.1", "198.51.100.1"
UPLINK_MTU = 1400   # not the veth default (1500), so MTU inheritance shows
_counter = itertools.count()
# absolute paths, found once: a test may narrow $PATH (to hide iptables)
_PATH = os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin"
NSENTER, IP, BUSYBOX, UMOUNT, UNSHARE, SLEEP = (
    shutil.which(p, path=_PATH) or p
    for p in ("nsenter", "ip", "busybox", "umount", "unshare", "sleep"))
IPTABLES_SAVE = shutil.which("iptables-save", path=_PATH) or "iptables-save"

# A server that answers every TCP connection or UDP datagram with
# "<tag> <peer address>", so a test sees both who answered and whom it saw.
SERVER = r"""
import socket, sys
proto, port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
if proto == "tcp":
    s.listen(16)
print("ready", flush=True)
while True:
    if proto == "tcp":
        c, peer = s.accept()
        c.sendall(f"{tag} {peer[0]}\n".encode())
        c.close()
    else:
        data, peer = s.recvfrom(512)
        s.sendto(f"{tag} {peer[0]}\n".encode(), peer)
"""

CLIENT = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.settimeout(float(sys.argv[4]) if len(sys.argv) > 4 else 3)
try:
    s.connect((host, port))
    if proto == "udp":
        s.send(b"hello")
    print(s.recv(512).decode().strip())
except OSError as e:
    print(f"error {e}")
    sys.exit(1)
"""


# HTTP/1.0 GET with a timeout (busybox wget -T crashes on this machine): the body.
FETCH = r"""
import socket, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    s = socket.create_connection((host, port), timeout=2)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.split(b"\r\n\r\n", 1)[-1].decode().strip())
except OSError as e:
    print(f"error {e}", file=sys.stderr)
    sys.exit(1)
"""


def _run(argv, check=True, **kw):
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def release_run_netns():
    """`ip netns add` turns /run/netns into a (shared) mount point the first
    time; take that mount away again once no namespace is left there (a plain
    umount: it fails harmlessly while another sandbox still has one)."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounted = any(line.split()[4] == "/run/netns" for line in f)
        if mounted and not os.listdir("/run/netns"):
            subprocess.run([UMOUNT, "/run/netns"], capture_output=True)
    except OSError:
        pass


class Sandbox:
    def __init__(self):
        n = next(_counter)
        self.host = f"contain-test-host-{os.getpid()}-{n}"
        self.upstream = f"contain-test-up-{os.getpid()}-{n}"
        self.procs = []

    # ------------------------------------------------------------- life
    def setup(self):
        for ns in (self.host, self.upstream):
            _run([IP, "netns", "add", ns])
        _run([IP, "link", "add", "name", "eth0", "netns", self.host, "type", "veth",
              "peer", "name", "eth0", "netns", self.upstream])
        self.ip(f"link set lo up\nlink set eth0 mtu {UPLINK_MTU}\n"
                f"addr add {HOST_IP}/24 dev eth0\nlink set eth0 up\n"
                f"route add default via {UPSTREAM_IP}", ns=self.host)
        # a new namespace copies ip_forward from the machine's own; the host
        # starts as a machine that does not route, until contain turns it on
        with self.entered(), open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("0")
        self.ip(f"link set lo up\naddr add {SERVER_IP}/32 dev lo\nlink set eth0 mtu {UPLINK_MTU}\n"
                f"addr add {UPSTREAM_IP}/24 dev eth0\nlink set eth0 up", ns=self.upstream)
        return self

    def cleanup(self):
        """Kill what the sandbox started, delete both namespaces.  Never raises."""
        for proc in reversed(self.procs):
            self.kill(proc)
        for ns in (self.host, self.upstream):
            if os.path.exists(f"/run/netns/{ns}"):
                subprocess.run([IP, "netns", "del", ns], capture_output=True)
        release_run_netns()

    @staticmethod
    def kill(proc):
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if stream:
                stream.close()

    # --------------------------------------------------------- running
    def path(self, ns=None):
        return f"/run/netns/{ns or self.host}"

    def sh(self, *argv, ns=None, check=True, **kw):
        """Run a command inside a sandbox namespace (default: host)."""
        return _run([NSENTER, f"--net={self.path(ns)}", *argv], check=check, **kw)

    def ip(self, batch, ns=None):
        return _run([NSENTER, f"--net={self.path(ns)}", IP, "-batch", "-"], input=batch + "\n")

    def popen(self, argv, ns=None, netns_path=None, **kw):
        """Start a long-running process in a namespace; killed by cleanup()."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen([NSENTER, f"--net={netns_path or self.path(ns)}", *argv],
                                text=True, **kw)
        self.procs.append(proc)
        return proc

    def iptables_save(self):
        return self.sh(IPTABLES_SAVE).stdout

    def links(self, ns=None):
        out = self.sh(IP, "-o", "link", "show", ns=ns).stdout
        return [line.split(": ")[1].split("@")[0] for line in out.splitlines()]

    def veths_left(self, prefix="veth", timeout=5.0):
        """The links named prefix... still there once the kernel had time to
        free the namespaces of removed containers: their veths die with
        them a few milliseconds after `rm` returns (network.detach)."""
        deadline = time.monotonic() + timeout
        while True:
            left = [link for link in self.links() if link.startswith(prefix)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.02)

    @contextlib.contextmanager
    def entered(self):
        """Run Python code of this process inside the host namespace."""
        from contain.core import linux
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        target = os.open(self.path(), os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(target, linux.CLONE_NEWNET)
            try:
                yield self
            finally:
                linux.setns(own, linux.CLONE_NEWNET)
        finally:
            os.close(own)
            os.close(target)

    def contain(self, *args, timeout=60, extra_env=None, input=None):
        """The contain CLI, run inside the host namespace (tests.support's env)."""
        from tests import support
        env = support.env(CONTAIN_DEFAULT_NETWORK="bridge", **(extra_env or {}))
        return subprocess.run([NSENTER, f"--net={self.path()}", support.PYTHON,
                               support.CONTAIN, *args], input=input, capture_output=True,
                              text=True, timeout=timeout, env=env)

    # ------------------------------------------------------ stand-ins
    def standin(self):
        """A stand-in container: a process in a new netns below the host
        namespace, as the runtime's child is before it execs.  Returns pid."""
        proc = self.popen([UNSHARE, "--net", SLEEP, "120"])
        host_ns = os.stat(self.path()).st_ino
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                ino = os.stat(f"/proc/{proc.pid}/ns/net").st_ino
                if ino != host_ns and os.readlink(f"/proc/{proc.pid}/exe").endswith("sleep"):
                    return proc
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError("stand-in container did not start")

    def server(self, proto, port, tag, ns=None, pid=None):
        """Start SERVER in a namespace (or in pid's); returns once it listens."""
        path = f"/proc/{pid}/ns/net" if pid else None
        proc = self.popen([PYTHON, "-I", "-S", "-c", SERVER, proto, str(port), tag],
                          ns=ns, netns_path=path)
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"server did not start: {proc.stderr.read()}")
        return proc

    def client(self, proto, host, port, ns=None, pid=None, timeout=3):
        """Connect from a namespace (or pid's); the server's answer or 'error ...'."""
        path = f"/proc/{pid}/ns/net" if pid else self.path(ns)
        res = _run([NSENTER, f"--net={path}", PYTHON, "-I", "-S", "-c", CLIENT, proto, host,
                    str(port), str(timeout)], check=False)
        return res.stdout.strip() or res.stderr.strip()

    def fetch(self, host, port, path="/", ns=None):
        """HTTP GET from a namespace: the body, or '' if it failed."""
        res = _run([NSENTER, f"--net={self.path(ns)}", PYTHON, "-I", "-S", "-c", FETCH, host,
                    str(port), path], check=False)
        return res.stdout.strip() if res.returncode == 0 else ""

    def ping(self, pid, address, count=1):
        """busybox ping from a stand-in; True if answered."""
        res = _run([NSENTER, f"--net=/proc/{pid}/ns/net", BUSYBOX, "ping", "-c", str(count),
                    "-W", "2", address], check=False)
        return res.returncode == 0
