"""The container's mount plan: built as data first, executed later.

Like bubblewrap's SetupOps, build_plan() turns a container's configuration
into a list of small operations (MountOp, Mknod, Symlink, Mask, ReadOnly,
PivotRoot...).  The plan can be printed (`contain run -v` shows every step),
unit-tested without privileges, and executed in the child by execute().

Two phases: ops before PivotRoot work on paths *inside the new root* (given
as container paths like "/proc" and resolved under the root directory without
ever following a symlink out of it, CVE-2021-30465); ops after it work on the
container's own paths.
"""

import errno
import os
import stat

from . import linux
from .linux import (MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY,
                    MS_REC, MS_REMOUNT, MS_SLAVE, MS_SHARED, MS_STRICTATIME,
                    MS_RELATIME, MS_NOATIME)

# Docker's defaults (moby/oci/defaults.go): masked and read-only paths.
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
)
READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

# The device nodes every container gets: name -> (major, minor) (<linux/major.h>)
DEFAULT_DEVICES = (
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
    ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
)
DEV_LINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"), ("/proc/kcore", "/dev/core"),
)

PROPAGATION = {"private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
               "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
               "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC}

_FLAG_NAMES = ((MS_RDONLY, "ro"), (MS_NOSUID, "nosuid"), (MS_NODEV, "nodev"),
               (MS_NOEXEC, "noexec"), (MS_BIND, "bind"), (MS_REC, "rec"),
               (MS_STRICTATIME, "strictatime"), (MS_REMOUNT, "remount"))


def flag_names(flags):
    return ",".join(name for bit, name in _FLAG_NAMES if flags & bit)


# ---------------------------------------------------------------- operations
class Op:
    """One step of the plan.  describe() is what `-v` prints; step() names
    it in an error message ("mount /proc: Permission denied")."""

    after_pivot = False

    def step(self):
        return self.describe()

    def __repr__(self):
        return f"<{self.describe()}>"


class MakePrivate(Op):
    """Stop mount events propagating from the container back to the host."""

    def describe(self):
        return "making all mounts private (nothing mounted inside reaches the host)"

    def run(self, ctx):
        linux.mount(None, "/", None, MS_REC | MS_PRIVATE)


class BindRoot(Op):
    """Bind the root filesystem directory onto the mount point (pivot_root
    needs the new root to be a mount point)."""

    def __init__(self, source):
        self.source = source

    def describe(self):
        return f"binding root filesystem {self.source}"

    def run(self, ctx):
        linux.mount(self.source, ctx.root, None, MS_BIND | MS_REC)


class OverlayRoot(Op):
    """Mount the image's layers and the container's upper dir as the root."""

    def __init__(self, data, cwd=None, nlayers=0):
        self.data, self.cwd, self.nlayers = data, cwd, nlayers

    def describe(self):
        return f"mounting overlay root ({self.nlayers} image layers + container layer)"

    def run(self, ctx):
        if self.cwd:  # short relative lowerdir paths: the option string has a page limit
            os.chdir(self.cwd)
        linux.mount("overlay", ctx.root, "overlay", 0, self.data)


class MountOp(Op):
    """mount(2) of a filesystem or a bind, at a path inside the root."""

    def __init__(self, target, fstype, source=None, flags=0, data=None,
                 kind="dir", follow=False, optional=False):
        self.target, self.fstype, self.source = target, fstype, source
        self.flags, self.data, self.kind = flags, data, kind
        self.follow, self.optional = follow, optional

    def step(self):
        return f"mount {self.target}"

    def describe(self):
        what = f"bind {self.source}" if self.flags & MS_BIND else self.fstype
        opts = ",".join(x for x in (flag_names(self.flags & ~MS_BIND), self.data) if x)
        return f"mounting {what} on {self.target}" + (f" ({opts})" if opts else "")

    def run(self, ctx):
        fd = resolve_in_root(ctx.root, self.target, self.kind, self.follow)
        try:
            target = f"/proc/self/fd/{fd}"
            if self.flags & MS_BIND:
                linux.mount(self.source, target, None, self.flags & (MS_BIND | MS_REC))
                rest = self.flags & ~(MS_BIND | MS_REC | MS_PRIVATE | MS_SLAVE | MS_SHARED)
                if rest:  # bind mounts take their flags only on a remount
                    linux.mount(None, target, None, MS_REMOUNT | MS_BIND | rest)
                prop = self.flags & (MS_PRIVATE | MS_SLAVE | MS_SHARED)
                if prop:
                    linux.mount(None, target, None, prop | (self.flags & MS_REC))
            else:
                linux.mount(self.source or self.fstype, target, self.fstype,
                            self.flags, self.data)
        except OSError as e:
            if not self.optional:
                raise OSError(e.errno, e.strerror, self.target) from None
        finally:
            os.close(fd)


class Mknod(Op):
    def __init__(self, path, major, minor, mode=0o666):
        self.path, self.major, self.minor, self.mode = path, major, minor, mode

    def describe(self):
        return f"creating device {self.path} ({self.major}:{self.minor})"

    def run(self, ctx):
        full = ctx.root + self.path
        os.mknod(full, stat.S_IFCHR | self.mode, os.makedev(self.major, self.minor))
        os.chmod(full, self.mode)  # mknod applies the umask


class Symlink(Op):
    def __init__(self, target, path):
        self.target, self.path = target, path

    def describe(self):
        return f"linking {self.path} -> {self.target}"

    def run(self, ctx):
        try:
            os.symlink(self.target, ctx.root + self.path)
        except FileExistsError:
            pass


class WriteFile(Op):
    """Bind a file the runtime wrote (hostname, hosts, resolv.conf) into the root."""

    def __init__(self, source, target):
        self.source, self.target = source, target

    def describe(self):
        return f"binding {self.target}"

    def run(self, ctx):
        MountOp(self.target, None, self.source, MS_BIND, kind="file", follow=True).run(ctx)


class PivotRoot(Op):
    def describe(self):
        return "pivoting root (the old root is detached: no host path stays reachable)"

    def run(self, ctx):
        os.chdir(ctx.root)
        # pivot_root(".", ".") stacks the old root on top of the new one;
        # detaching it leaves only the container's tree (runc does the same).
        linux.pivot_root(".", ".")
        linux.umount2(".", linux.MNT_DETACH)
        os.chdir("/")


class Mask(Op):
    after_pivot = True

    def __init__(self, path):
        self.path = path

    def step(self):
        return f"mask {self.path}"

    def describe(self):
        return f"masking {self.path}"

    def run(self, ctx):
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            linux.mount("tmpfs", self.path, "tmpfs", MS_RDONLY, "size=0")
        else:
            linux.mount("/dev/null", self.path, None, MS_BIND)


class ReadOnly(Op):
    after_pivot = True

    def __init__(self, path, optional=True):
        self.path, self.optional = path, optional

    def describe(self):
        return f"making {self.path} read-only"

    def run(self, ctx):
        if not os.path.lexists(self.path):
            return
        linux.mount(self.path, self.path, None, MS_BIND | MS_REC)
        linux.mount(None, self.path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC)


class RemountRootReadOnly(Op):
    after_pivot = True

    def describe(self):
        return "making the root filesystem read-only"

    def run(self, ctx):
        linux.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)


# ------------------------------------------------------------------- the plan
def build_plan(cfg, root_source, files, cgroup_version=1, cgroup_hierarchies=None):
    """The mount plan for a container configuration (a dict, see spec.py).

    root_source: ("bind", DIR) or ("overlay", data, cwd, nlayers).
    files: {container path: host file} to bind (hostname, hosts, resolv.conf).
    """
    sec = cfg.get("security", {})
    privileged = sec.get("privileged", False)
    # --security-opt systempaths=unconfined: no masked or read-only /proc paths
    unmasked = privileged or "systempaths=unconfined" in (sec.get("security_opt") or ())
    plan = [MakePrivate()]
    if root_source[0] == "bind":
        plan.append(BindRoot(root_source[1]))
    else:
        plan.append(OverlayRoot(*root_source[1:]))

    plan += [
        MountOp("/proc", "proc", flags=MS_NOSUID | MS_NOEXEC | MS_NODEV),
        MountOp("/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                "mode=755,size=65536k"),
    ]
    plan += [Mknod(f"/dev/{name}", ma, mi) for name, ma, mi in DEFAULT_DEVICES]
    plan += [
        MountOp("/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        MountOp("/dev/shm", "tmpfs", "shm", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=1777,size=65536k"),
        MountOp("/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC),
    ]
    plan += [Symlink(target, path) for target, path in DEV_LINKS]
    sys_flags = MS_NOSUID | MS_NOEXEC | MS_NODEV | (0 if privileged else MS_RDONLY)
    plan.append(MountOp("/sys", "sysfs", "sysfs", sys_flags))
    if cgroup_hierarchies is None and cgroup_version == 1:
        cgroup_hierarchies = host_cgroup_v1_hierarchies()
    plan += cgroup_mounts(sys_flags, cgroup_version, cgroup_hierarchies or ())
    for target, source in sorted(files.items()):
        plan.append(WriteFile(source, target))
    for m in cfg.get("mounts", []):
        plan.append(user_mount(m))
    plan.append(PivotRoot())
    if not unmasked:
        plan += [Mask(p) for p in MASKED_PATHS]
        plan += [ReadOnly(p) for p in READONLY_PATHS]
    if cfg.get("read_only"):
        plan.append(RemountRootReadOnly())
    return plan


def cgroup_mounts(flags, version, hierarchies):
    """/sys/fs/cgroup: the container's own cgroup (its cgroup namespace root).

    hierarchies: for v1, [(directory name, mount options)] as on the host."""
    if version == 2:
        return [MountOp("/sys/fs/cgroup", "cgroup2", "cgroup", flags, optional=True)]
    ops = [MountOp("/sys/fs/cgroup", "tmpfs", "tmpfs", flags & ~MS_RDONLY, "mode=755")]
    for name, options in hierarchies:
        ops.append(MountOp(f"/sys/fs/cgroup/{name}", "cgroup", "cgroup", flags, options,
                           optional=True))
    if flags & MS_RDONLY:
        ops.append(ReadOnlyBefore("/sys/fs/cgroup"))
    return ops


def host_cgroup_v1_hierarchies(mounts_file="/proc/self/mounts"):
    """[(name, options)] of the host's cgroup v1 hierarchies, e.g.
    ("cpu,cpuacct", "cpu,cpuacct") or ("systemd", "name=systemd")."""
    out = []
    with open(mounts_file) as f:
        for line in f:
            fields = line.split()
            if len(fields) > 3 and fields[2] == "cgroup":
                opts = [o for o in fields[3].split(",")
                        if o not in ("rw", "ro", "nosuid", "nodev", "noexec", "relatime")]
                out.append((os.path.basename(fields[1]), ",".join(opts)))
    return out


class ReadOnlyBefore(MountOp):
    """Remount a mount point made earlier in the plan read-only."""

    def __init__(self, target):
        super().__init__(target, None)

    def describe(self):
        return f"making {self.target} read-only"

    def run(self, ctx):
        linux.mount(None, ctx.root + self.target, None,
                    MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV)


def user_mount(m):
    """A -v bind mount or a --tmpfs mount from the configuration."""
    if m["type"] == "tmpfs":
        return MountOp(m["target"], "tmpfs", "tmpfs", m.get("flags", MS_NOSUID | MS_NODEV),
                       m.get("data") or None, follow=True)
    flags = MS_BIND | MS_REC
    if m.get("readonly"):
        flags |= MS_RDONLY
    flags |= PROPAGATION.get(m.get("propagation") or "rprivate")
    kind = "dir" if os.path.isdir(m["source"]) else "file"
    return MountOp(m["target"], None, m["source"], flags, kind=kind, follow=True)


# --------------------------------------------------------------- execution
class Context:
    """What the ops need while running: the root mount point."""

    def __init__(self, root, log=None):
        self.root = root.rstrip("/")
        self.log = log


def execute(plan, ctx):
    """Run every op in order; an OSError names the op that failed."""
    for op in plan:
        if ctx.log:
            ctx.log(op.describe())
        try:
            op.run(ctx)
        except OSError as e:
            raise StepError(op.step(), e) from None


class StepError(Exception):
    """An op failed: carries the step's description and the OSError."""

    def __init__(self, step, err):
        super().__init__(step, err)
        self.step, self.err = step, err


# ------------------------------------------------- resolving inside the root
MAX_SYMLINKS = 40


def resolve_in_root(root, path, kind="dir", follow=False, create=True):
    """An O_PATH fd for `path` inside `root`, never leaving root.

    Walks one component at a time with O_NOFOLLOW.  A symlink met on the way
    is refused (follow=False: /proc, /sys, /dev of an image must be real
    directories) or resolved as if root were "/" (follow=True: -v targets),
    so "../../etc" or "/etc" in a link can never reach the host
    (CVE-2021-30465).  Missing components are created: directories, and for
    kind="file" an empty file as the last component.
    """
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    stack = []  # fds of the parents, to handle ".."
    links = 0
    try:
        while parts:
            name = parts.pop(0)
            if name == "..":
                if stack:
                    os.close(fd)
                    fd = stack.pop()
                continue
            last = not parts
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                if last and kind == "file":
                    os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW
                                     | os.O_CLOEXEC, 0o644, dir_fd=fd))
                else:
                    os.mkdir(name, 0o755, dir_fd=fd)
                st = os.lstat(name, dir_fd=fd)
            if stat.S_ISLNK(st.st_mode):
                if not follow:
                    raise OSError(errno.ELOOP, "is a symbolic link (refused)", path)
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):  # absolute: restart from the root
                    for f in stack:
                        os.close(f)
                    stack = []
                    os.close(fd)
                    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            nfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            stack.append(fd)
            fd = nfd
        return fd
    finally:
        for f in stack:
            os.close(f)
