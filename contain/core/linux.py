"""Every raw kernel call contain makes, in one place.

The rest of the package never touches ctypes: it calls the thin wrappers
below, named and ordered like the C API.  Each wrapper raises OSError with
the errno and the path (or a description) it was working on, so callers can
turn it into a one-line message.  Constants cite the header that defines
them.  Where Python's os module already has the call (os.unshare and
os.setns since 3.12, os.mknod, os.setgroups...) it is used directly.
(The engine's netlink requests, engine/netlink.py, are messages on a
stdlib socket, a protocol like iptables-restore's text, not calls.)
"""

import ctypes
import errno
import os
import struct


class _Library:
    """A C library whose functions get their prototypes on first use.

    Looking a function up and setting its argument types costs ~40 µs; done
    at import for every call below, it would add half a millisecond to each
    command, though a command makes few of these calls.  So each section
    declares its functions with prototype(), and the lookup waits for the
    first call (then the function is an attribute, found directly)."""

    def __init__(self, load):
        self._load, self._handle, self._prototypes = load, None, {}

    def prototype(self, name, restype, *argtypes):
        self._prototypes[name] = (restype, argtypes)

    def __getattr__(self, name):        # (only for names not looked up yet)
        if name.startswith("_"):
            raise AttributeError(name)
        if self._handle is None:
            self._handle = self._load()
        fn = getattr(self._handle, name)
        if name in self._prototypes:
            fn.restype, argtypes = self._prototypes[name]
            if argtypes:                # (none: variadic, as syscall)
                fn.argtypes = argtypes
        setattr(self, name, fn)
        return fn


libc = _Library(lambda: ctypes.CDLL(None, use_errno=True))


def oserror(name, path=None):
    """OSError for the errno the last libc call left behind."""
    err = ctypes.get_errno()
    if path is None:
        return OSError(err, f"{name}: {os.strerror(err)}")
    return OSError(err, os.strerror(err), str(path))


def _check(result, name, path=None):
    if result < 0:
        raise oserror(name, path)
    return result


def write_file(path, data, truncate=False):
    """One write(2) of data to a kernel interface file (cgroupfs, procfs:
    cgroup.procs, uid_map, memory.max...).  Never creates the file; an
    OSError names the path.  truncate: for files that may also be plain
    files (the cgroup drivers' unit tests run on a fake tree)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0))
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None


def _b(path):
    """A path as bytes for a C call; an embedded NUL would cut it short
    there, so it is refused, as os's own calls refuse it."""
    if path is None:
        return None
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise ValueError(f"embedded null byte in {path!r}")
    return raw


# ---------------------------------------------------------------- namespaces
# <linux/sched.h>
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# The names /proc/PID/ns/ uses for each flag, in the order a joining process
# enters them (runc's nsexec order): user first, because it grants the rights
# over the others; mnt last, because entering it changes what paths mean; pid
# only takes effect for children, so exec forks after joining.
NAMESPACES = {
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "mnt": CLONE_NEWNS,
}

libc.prototype("unshare", ctypes.c_int, ctypes.c_int)
libc.prototype("setns", ctypes.c_int, ctypes.c_int, ctypes.c_int)


def unshare(flags):
    """unshare(2): move this process into new namespaces."""
    if hasattr(os, "unshare"):
        os.unshare(flags)
    else:
        _check(libc.unshare(flags), "unshare")


def setns(fd, nstype=0):
    """setns(2): join the namespace fd refers to."""
    if hasattr(os, "setns"):
        os.setns(fd, nstype)
    else:
        _check(libc.setns(fd, nstype), "setns")


# -------------------------------------------------------------------- mounts
# <linux/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

# <linux/fs.h> umount2 flags
MNT_FORCE = 1
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

libc.prototype("mount", ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
               ctypes.c_ulong, ctypes.c_char_p)
libc.prototype("umount2", ctypes.c_int, ctypes.c_char_p, ctypes.c_int)


def mount(source, target, fstype, flags=0, data=None):
    """mount(2).  target may be a path or '/proc/self/fd/N'."""
    data_b = data.encode() if isinstance(data, str) else data
    _check(libc.mount(_b(source), _b(target), _b(fstype), flags, data_b),
           "mount", target)


def umount2(target, flags=0):
    """umount2(2)."""
    _check(libc.umount2(_b(target), flags), "umount2", target)


# syscall numbers for calls glibc does not wrap everywhere
# (<asm/unistd_64.h>; the new mount API numbers are the same on every arch).
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217,
               "riscv64": 41}
SYS_open_tree = 428
SYS_move_mount = 429
SYS_mount_setattr = 442
SYS_pidfd_open = 434

libc.prototype("syscall", ctypes.c_long)


def pivot_root(new_root, put_old):
    """pivot_root(2): make new_root the root, the old one moves to put_old."""
    machine = os.uname().machine
    nr = _PIVOT_ROOT.get(machine)
    if nr is None:
        raise OSError(38, f"pivot_root: unsupported architecture {machine}")
    _check(libc.syscall(ctypes.c_long(nr), ctypes.c_char_p(_b(new_root)),
                        ctypes.c_char_p(_b(put_old))), "pivot_root", new_root)


# open_tree(2) / move_mount(2) / mount_setattr(2), for idmapped mounts
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MOVE_MOUNT_T_EMPTY_PATH = 0x00000040
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_NOEXEC = 0x00000008
MOUNT_ATTR__ATIME = 0x00000070
MOUNT_ATTR_NOATIME = 0x00000010
MOUNT_ATTR_STRICTATIME = 0x00000020
MOUNT_ATTR_NODIRATIME = 0x00000080
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000


def open_tree(dirfd, path, flags):
    """open_tree(2): a file descriptor for (a clone of) a mount."""
    return _check(libc.syscall(ctypes.c_long(SYS_open_tree), ctypes.c_int(dirfd),
                               ctypes.c_char_p(_b(path)), ctypes.c_uint(flags)),
                  "open_tree", path)


def move_mount(from_fd, from_path, to_fd, to_path, flags):
    """move_mount(2): attach a detached mount (from open_tree) somewhere."""
    _check(libc.syscall(ctypes.c_long(SYS_move_mount), ctypes.c_int(from_fd),
                        ctypes.c_char_p(_b(from_path)), ctypes.c_int(to_fd),
                        ctypes.c_char_p(_b(to_path)), ctypes.c_uint(flags)),
           "move_mount", to_path)


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0):
    """mount_setattr(2): change the attributes (e.g. idmap) of a mount.
    struct mount_attr is four __u64: attr_set, attr_clr, propagation,
    userns_fd."""
    attr = struct.pack("=4Q", attr_set, attr_clr, propagation, userns_fd)
    _check(libc.syscall(ctypes.c_long(SYS_mount_setattr), ctypes.c_int(dirfd),
                        ctypes.c_char_p(_b(path)), ctypes.c_uint(flags),
                        ctypes.c_char_p(attr), ctypes.c_size_t(len(attr))),
           "mount_setattr", path)


# openat2(2) (Linux 5.6; <linux/openat2.h>; number 437 on every architecture)
SYS_openat2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_IN_ROOT = 0x10


def openat2(dirfd, path, flags, mode=0, resolve=0):
    """openat2(2): open path relative to dirfd with the kernel enforcing
    the RESOLVE_* rules (RESOLVE_IN_ROOT: symlinks and ".." resolve as if
    dirfd were "/", so the path cannot leave it).  struct open_how is three
    __u64: flags, mode, resolve."""
    how = struct.pack("=3Q", flags, mode, resolve)
    return _check(libc.syscall(ctypes.c_long(SYS_openat2), ctypes.c_int(dirfd),
                               ctypes.c_char_p(_b(path)), ctypes.c_char_p(how),
                               ctypes.c_size_t(len(how))), "openat2", path)


# ------------------------------------------------------------------ identity
libc.prototype("sethostname", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
libc.prototype("setdomainname", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)


def setdomainname(name):
    """setdomainname(2) (for the UTS namespace)."""
    raw = name.encode()
    _check(libc.setdomainname(raw, len(raw)), "setdomainname", name)


def sethostname(name):
    """sethostname(2) (for the UTS namespace)."""
    raw = name.encode()
    _check(libc.sethostname(raw, len(raw)), "sethostname", name)


# ------------------------------------------------------------------- rlimits
# <sys/resource.h> prlimit(2): struct rlimit is two rlim_t (unsigned long);
# RLIM_INFINITY is all ones, which is how config.json writes it (2**64 - 1).
# (Through libc: the resource module is a shared library to load, ~0.2 ms.)
RLIMIT_NOFILE = 7       # <asm-generic/resource.h>

libc.prototype("prlimit", ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
               ctypes.c_void_p)


def setrlimit(resource, soft, hard):
    """setrlimit(2) (prlimit on ourselves).  Raising a hard limit without
    CAP_SYS_RESOURCE is EPERM; the error names both values."""
    new = (ctypes.c_ulong * 2)(soft, hard)
    if libc.prlimit(0, resource, new, None) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{os.strerror(err)} (soft {soft}, hard {hard})")


def getrlimit(resource):
    """getrlimit(2): (soft, hard), the kernel's values (unlimited is
    2**64 - 1, where the resource module says -1)."""
    old = (ctypes.c_ulong * 2)()
    _check(libc.prlimit(0, resource, None, old), "getrlimit")
    return old[0], old[1]


# --------------------------------------------------------------------- prctl
# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_SET_SECCOMP = 22
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

libc.prototype("prctl", ctypes.c_int, ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
               ctypes.c_ulong, ctypes.c_ulong)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    """prctl(2) with integer arguments."""
    return _check(libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


# -------------------------------------------------------------- capabilities
# <linux/capability.h>: the header is {__u32 version; int pid}; version 3
# takes two data structs {__u32 effective, permitted, inheritable}, the low
# and the high 32 bits of each set.  (Packed with struct: a ctypes.Structure
# class costs ~50 µs to define, on every start.)
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_HEADER = "=Ii"
_CAP_DATA = "=6I"


def capget(pid=0):
    """capget(2): (effective, permitted, inheritable) as 64-bit masks."""
    hdr = ctypes.create_string_buffer(struct.pack(_CAP_HEADER, _LINUX_CAPABILITY_VERSION_3, pid))
    data = ctypes.create_string_buffer(struct.calcsize(_CAP_DATA))
    _check(libc.capget(hdr, data), "capget")
    e0, p0, i0, e1, p1, i1 = struct.unpack(_CAP_DATA, data.raw)
    return e0 | e1 << 32, p0 | p1 << 32, i0 | i1 << 32


def capset(effective, permitted, inheritable):
    """capset(2) for this process, from 64-bit masks."""
    hdr = ctypes.create_string_buffer(struct.pack(_CAP_HEADER, _LINUX_CAPABILITY_VERSION_3, 0))
    low, high = 0xFFFFFFFF, 32
    data = ctypes.create_string_buffer(struct.pack(
        _CAP_DATA, effective & low, permitted & low, inheritable & low,
        effective >> high & low, permitted >> high & low, inheritable >> high & low))
    _check(libc.capset(hdr, data), "capset")


# ------------------------------------------------------------------- seccomp
# <linux/filter.h>: struct sock_filter {__u16 code; __u8 jt; __u8 jf; __u32 k};
# struct sock_fprog {unsigned short len; struct sock_filter *filter} (native
# alignment: "@" pads the pointer as the C compiler does).
_SOCK_FILTER = "=HBBI"
_SOCK_FPROG = "@HP"
SECCOMP_MODE_FILTER = 2  # <linux/seccomp.h>


def seccomp_set_mode_filter(program):
    """Install a classic BPF program, a list of (code, jt, jf, k) tuples.

    prctl(PR_SET_SECCOMP) rather than seccomp(2): same effect, and glibc
    wraps prctl on every architecture.
    """
    filters = ctypes.create_string_buffer(
        b"".join(struct.pack(_SOCK_FILTER, *ins) for ins in program))
    prog = ctypes.create_string_buffer(
        struct.pack(_SOCK_FPROG, len(program), ctypes.addressof(filters)))
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0),
           "seccomp")


# ---------------------------------------------------------------- terminals
# <asm-generic/ioctls.h>
TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


# clone3(2) (<linux/sched.h>; number 435 on every architecture)
SYS_clone3 = 435
CLONE_INTO_CGROUP = 0x200000000
SIGCHLD = 17
# the GIL stays held across the call: the child must come back to an
# interpreter in the same state as the parent's (as after os.fork)
_pylibc = _Library(lambda: ctypes.PyDLL(None, use_errno=True))
_pylibc.prototype("syscall", ctypes.c_long)


def clone_into_cgroup(cgroup_fd):
    """fork(), with the child born inside the cgroup2 directory cgroup_fd
    (clone3 with CLONE_INTO_CGROUP, Linux 5.7+): no migration afterwards,
    so no wait for the kernel's cgroup lock and its RCU grace period (~10
    ms).  Returns the child's pid, 0 in the child.  Only for a
    single-threaded process, like os.fork (whose at-fork hooks it skips:
    the child execs or exits without the threading machinery)."""
    args = struct.pack("<11Q", CLONE_INTO_CGROUP, 0, 0, 0, SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd)
    buf = ctypes.create_string_buffer(args, len(args))
    return _check(_pylibc.syscall(ctypes.c_long(SYS_clone3), buf, ctypes.c_size_t(len(args))),
                  "clone3")


def pidfd_open(pid):
    """pidfd_open(2) (os.pidfd_open exists since 3.9 on Linux)."""
    return os.pidfd_open(pid)


# ---------------------------------------------------------------- interfaces
# <linux/sockios.h>, <net/if.h>, <sys/socket.h>
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFMTU = 0x8921
IFF_UP = 0x1
AF_INET = 2
SOCK_DGRAM = 2
SOCK_CLOEXEC = 0o2000000

libc.prototype("socket", ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int)


def _interface_ioctl(name, request, value=0):
    """One SIOC*IF* ioctl on interface name (struct ifreq: the name, then a
    short or int field); returns that field.  A plain socket(2) is enough
    to ask: through libc, so the container's child, which brings up its
    loopback, skips loading the socket module (~0.5 ms)."""
    import fcntl
    layout = "16sh22x" if request in (SIOCGIFFLAGS, SIOCSIFFLAGS) else "16si20x"
    fd = _check(libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket")
    try:
        reply = fcntl.ioctl(fd, request, struct.pack(layout, name.encode(), value))
        return struct.unpack(layout, reply)[1]
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"interface {name}") from None
    finally:
        os.close(fd)


def interface_up(name):
    """Set IFF_UP on a network interface of this network namespace."""
    flags = _interface_ioctl(name, SIOCGIFFLAGS)
    _interface_ioctl(name, SIOCSIFFLAGS, flags | IFF_UP)


def interface_mtu(name):
    """The MTU of a network interface of this network namespace (SIOCGIFMTU)."""
    return _interface_ioctl(name, SIOCGIFMTU)


# ---- security
# close_range(2) (<linux/close_range.h>; number 436 on every architecture)
SYS_close_range = 436
CLOSE_RANGE_CLOEXEC = 1 << 2


def close_range(first, last, flags=0):
    """close_range(2): close (or mark close-on-exec) fds first..last.

    Where the call is missing (kernel < 5.9: ENOSYS) or refused (EPERM from
    a seccomp profile older than the call, installed before this step as
    runc does when no_new_privs is off), the open fds listed in
    /proc/self/fd are closed or marked one by one instead."""
    r = libc.syscall(ctypes.c_long(SYS_close_range), ctypes.c_uint(first),
                     ctypes.c_uint(min(last, 0xFFFFFFFF)), ctypes.c_uint(flags))
    if r < 0 and ctypes.get_errno() in (errno.ENOSYS, errno.EPERM):
        _close_each(first, last, flags)
        return
    _check(r, "close_range")


def _close_each(first, last, flags):
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:                       # no /proc: every possible number
        fds = range(first, min(last + 1, getrlimit(RLIMIT_NOFILE)[1]))
    for fd in fds:
        if first <= fd <= last:
            try:
                if flags & CLOSE_RANGE_CLOEXEC:
                    os.set_inheritable(fd, False)
                else:
                    os.close(fd)
            except OSError:               # the listing's own fd, gone by now
                pass


# bpf(2) (<linux/bpf.h>), for the cgroup v2 device program
_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


def bpf(cmd, attr):
    """bpf(2) with attr, a bytes-like union bpf_attr (copied; returns (result, bytes))."""
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    nr = _BPF.get(os.uname().machine)
    if nr is None:
        raise OSError(38, f"bpf: unsupported architecture {os.uname().machine}")
    r = _check(libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), buf,
                            ctypes.c_uint(len(attr))), f"bpf({cmd})")
    return r, buf.raw


def address_of(data):
    """(address, keepalive) of a copy of bytes, for pointers inside bpf_attr."""
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    return ctypes.addressof(buf), buf


# ---- user namespaces
libc.prototype("setfsuid", ctypes.c_int, ctypes.c_uint)
libc.prototype("setfsgid", ctypes.c_int, ctypes.c_uint)


def setfsuid(uid):
    """setfsuid(2): the uid file accesses are checked and created with;
    returns the previous one.  It never fails visibly: a refused change
    leaves the old value, so callers that must know compare the result of
    a second call."""
    return libc.setfsuid(uid)


def setfsgid(gid):
    """setfsgid(2): as setfsuid, for the group."""
    return libc.setfsgid(gid)
