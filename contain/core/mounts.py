"""The container's mount plan: built as data first, executed later.

Like bubblewrap's SetupOps, plan_from_spec() turns a config.json into a
list of small operations (MountOp, Device, Symlink, Mask, ReadOnly,
PivotRoot...), each remembering the config.json entry it came from.  The plan can be printed (`contain run -v` shows every step),
unit-tested without privileges, and executed in the child by execute().

Two phases: ops before PivotRoot work on paths *inside the new root* (given
as container paths like "/proc" and resolved under the root directory without
ever following a symlink out of it, CVE-2021-30465); ops after it work on the
container's own paths.

With a new user namespace the plan has one more split, made by
userns_phases(): the ops marked before_userns run first, as the host's root
in the child's own mount namespace (an idmapped root, /proc, the binds of
host files); the rest run as the namespace's root, in the copy of that mount
namespace the user namespace owns.  split_plan() cuts the plan there.
"""

import errno
import os
import posixpath
import stat

from . import linux
from .linux import (MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY,
                    MS_REC, MS_REMOUNT, MS_SLAVE, MS_SHARED, MS_STRICTATIME)
from ..errors import StepError

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
    origin = None           # the config.json entry it came from (for -v)
    before_userns = False   # run as host root, before the user namespace (userns_phases)

    def step(self):
        return self.describe()

    def __repr__(self):
        return f"<{self.describe()}>"


class MakePrivate(Op):
    """Stop mount events propagating from the container back to the host
    (rprivate; rslave, runc's default, still lets the host's reach in)."""

    def __init__(self, propagation="rprivate"):
        self.propagation = propagation

    def describe(self):
        if self.propagation == "rprivate":
            return "making all mounts private (nothing mounted inside reaches the host)"
        return (f"making all mounts {self.propagation} (nothing mounted inside reaches "
                "the host)")

    def run(self, ctx):
        linux.mount(None, "/", None, PROPAGATION[self.propagation])


class BindRoot(Op):
    """Bind the root filesystem directory onto the mount point (pivot_root
    needs the new root to be a mount point)."""

    def __init__(self, source):
        self.source = source

    def describe(self):
        return f"binding root filesystem {self.source}"

    def run(self, ctx):
        linux.mount(self.source, ctx.root, None, MS_BIND | MS_REC)


class RebindRoot(Op):
    """The first op inside the user namespace.  Every mount the new mount
    namespace copied from the host phase is locked (the namespace's root
    must not reveal what they cover), and pivot_root refuses a locked new
    root (EINVAL).  A recursive clone of it is a mount of its own: attach it
    on top and make it our cwd (ctx.root is "." here)."""

    def describe(self):
        return ("binding the root onto itself inside the user namespace (pivot_root "
                "refuses the locked copy of the host-phase mount)")

    def run(self, ctx):
        flags = linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC | linux.AT_RECURSIVE
        tree = linux.open_tree(AT_FDCWD, ctx.root, flags)
        try:
            linux.move_mount(tree, "", AT_FDCWD, ctx.root, linux.MOVE_MOUNT_F_EMPTY_PATH)
            os.fchdir(tree)
        finally:
            os.close(tree)


AT_FDCWD = -100


class Note(Op):
    """A step that only explains (what -v shows) and does nothing."""

    def __init__(self, text):
        self.text = text

    def describe(self):
        return self.text

    def run(self, ctx):
        pass


def _kept_flags(path):
    """ro/nosuid/nodev/noexec of the mount at path (statvfs's ST_* bits are
    the MS_* ones).  A bind remount must repeat them: the kernel refuses to
    clear them on a mount locked by a copy into a user namespace (EPERM),
    and clearing them silently would loosen the mount anyway."""
    return os.statvfs(path).f_flag & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


class MountOp(Op):
    """mount(2) of a filesystem or a bind, at a path inside the root."""

    def __init__(self, target, fstype, source=None, flags=0, data=None,
                 kind="dir", follow=False, optional=False, attrs=(0, 0), origin=None):
        self.target, self.fstype, self.source = target, fstype, source
        self.flags, self.data, self.kind = flags, data, kind
        self.follow, self.optional = follow, optional
        # (set, clear) MOUNT_ATTR_* for the whole tree of a bind (rro, rnosuid...)
        self.attrs = attrs
        self.origin = origin    # the config.json entry it came from (for -v)

    def step(self):
        return f"mount {self.target}"

    def describe(self):
        what = f"bind {self.source}" if self.flags & MS_BIND else self.fstype
        opts = ",".join(x for x in (flag_names(self.flags & ~MS_BIND), self.data,
                                    "recursive " + _attr_names(self.attrs[0])
                                    if self.attrs[0] else "") if x)
        return f"mounting {what} on {self.target}" + (f" ({opts})" if opts else "")

    def run(self, ctx):
        fd = resolve_in_root(ctx.root, self.target, self.kind, self.follow, owner=ctx.owner)
        try:
            target = f"/proc/self/fd/{fd}"
            if self.flags & MS_BIND:
                linux.mount(self.source, target, None, self.flags & (MS_BIND | MS_REC))
                rest = self.flags & ~(MS_BIND | MS_REC | MS_PRIVATE | MS_SLAVE | MS_SHARED)
                prop = self.flags & (MS_PRIVATE | MS_SLAVE | MS_SHARED)
                if rest or prop or any(self.attrs):
                    # The fd names the directory the bind now covers, not the
                    # new mount (remounting that is EINVAL): look it up again.
                    os.close(fd)
                    fd = -1
                    fd = resolve_in_root(ctx.root, self.target, self.kind, self.follow,
                                         create=False)
                    target = f"/proc/self/fd/{fd}"
                if rest:  # bind mounts take their flags only on a remount
                    linux.mount(None, target, None,
                                MS_REMOUNT | MS_BIND | rest | _kept_flags(target))
                if prop:
                    linux.mount(None, target, None, prop | (self.flags & MS_REC))
                if any(self.attrs):
                    set_recursive_attrs(target, *self.attrs)
            else:
                linux.mount(self.source or self.fstype, target, self.fstype,
                            self.flags, self.data)
        except OSError as e:
            if not self.optional:
                raise OSError(e.errno, e.strerror, self.target) from None
        finally:
            if fd >= 0:
                os.close(fd)


class BindDevice(MountOp):
    """A device node in a user namespace: mknod is refused there (and a node
    on a tmpfs mounted inside one could not be opened anyway), so the
    host's node is bound onto an empty file instead, as rootless runc does."""

    def __init__(self, name):
        super().__init__(f"/dev/{name}", None, f"/dev/{name}", MS_BIND, kind="file")

    def describe(self):
        return f"binding the host's {self.source} (no mknod in a user namespace)"


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
        kept = _kept_flags(self.path)
        linux.mount(self.path, self.path, None, MS_BIND | MS_REC)
        linux.mount(None, self.path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC | kept)


class MakeCwd(Op):
    """process.cwd, made before the root turns read-only (runc does the
    same: a read-only root with a missing cwd still runs)."""
    after_pivot = True

    def __init__(self, path):
        self.path = path

    def describe(self):
        return f"creating the working directory {self.path}"

    def run(self, ctx):
        os.makedirs(self.path, exist_ok=True)


class RemountRootReadOnly(Op):
    after_pivot = True

    def describe(self):
        return "making the root filesystem read-only"

    def run(self, ctx):
        linux.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | _kept_flags("/"))


def userns_phases(plan, new_netns=True):
    """Reorder a plan for a user namespace: the ops only the host's root can
    do first (marked before_userns), then RebindRoot and the rest.

    Host root, before the user namespace:
      - the root (idmapped mounts need CAP_SYS_ADMIN in the host's user ns);
      - /proc: the PID namespace was made by the runtime, so it belongs to
        the host's user namespace, and only a root there may mount its proc;
      - /sys when the network namespace is not the container's own (sysfs
        needs a root of the namespace that owns it);
      - binds of host files (hostname, hosts, -v): the container's root, an
        unprivileged id on the host, may not even walk to them, and binds
        made here are locked by the copy (a :ro bind stays read-only).
        A bind that must land on a mount made later (under /dev, a --tmpfs)
        stays in order, after it, and its source must then be reachable.
    Everything else (tmpfs, devpts, mqueue, /sys with its own netns,
    pivot_root, masks) runs as the user namespace's root, so the new
    filesystems belong to it.
    """
    early, late, late_targets = [], [RebindRoot()], []
    for op in plan:
        target = getattr(op, "target", None)
        covered = target is not None and any(
            _under(target, t) for t in late_targets)
        host_bind = (isinstance(op, MountOp) and op.flags & MS_BIND
                     and not isinstance(op, BindDevice))
        if isinstance(op, (MakePrivate, BindRoot)) or target == "/" \
                or (not covered and (
                host_bind or isinstance(op, MountOp) and op.fstype == "proc"
                or isinstance(op, MountOp) and op.fstype == "sysfs" and not new_netns)):
            op.before_userns = True
            early.append(op)
        else:
            late.append(op)
            if isinstance(op, MountOp) and not isinstance(op, ReadOnlyBefore):
                late_targets.append(op.target)
    return early + late


def _under(path, top):
    path, top = posixpath.normpath(path), posixpath.normpath(top)
    return path == top or path.startswith(top.rstrip("/") + "/")


def split_plan(plan):
    """(ops run as host root before the user namespace, the rest)."""
    return ([op for op in plan if op.before_userns],
            [op for op in plan if not op.before_userns])


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


# --------------------------------------------------------------- execution
class Context:
    """What the ops need while running: the root mount point and, with a
    user namespace, the (uid, gid) that owns what the host phase creates
    (mount points missing from the image)."""

    def __init__(self, root, log=None, owner=None):
        self.root = root.rstrip("/")
        self.log = log
        self.owner = owner


def execute(plan, ctx):
    """Run every op in order; an OSError names the op that failed."""
    for op in plan:
        if ctx.log:
            ctx.log(op.describe() + (f"  [{op.origin}]" if op.origin else ""))
        try:
            op.run(ctx)
        except OSError as e:
            raise StepError(op.step(), e) from None


# ------------------------------------------------- resolving inside the root
MAX_SYMLINKS = 40


def resolve_in_root(root, path, kind="dir", follow=False, create=True, owner=None):
    """An O_PATH fd for `path` inside `root`, never leaving root.

    A symlink met on the way is refused (follow=False: /proc, /sys, /dev of
    an image must be real directories) or resolved as if root were "/"
    (follow=True: -v targets), so "../../etc" or "/etc" in a link can never
    reach the host (CVE-2021-30465).  Missing components are created:
    directories, and for kind="file" an empty file as the last component;
    as owner (uid, gid) when given (see _as_owner).

    When every component exists, one openat2(RESOLVE_IN_ROOT) call does it
    and the kernel enforces the rules; when only the last one is missing
    (a mount point on a fresh tmpfs), openat2 opens its parent.  Otherwise
    (more to create, a refused link to name, a kernel before 5.6) the walk
    below does, one component at a time with O_NOFOLLOW, by the same rules.
    """
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        found = _open_in_root(fd, path, follow)
        if found is None and create:
            found = _make_last_in_root(fd, path, kind, follow, owner)
    except BaseException:
        os.close(fd)
        raise
    if found is not None:
        os.close(fd)
        return found
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
                _create(fd, name, kind if last else "dir", owner)
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
                    fd = -1
                    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            nfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            stack.append(fd)
            fd = nfd
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    finally:
        for f in stack:
            os.close(f)
    return fd


_openat2_usable = True


def _open_in_root(root_fd, path, follow):
    """resolve_in_root's one-call path: the fd, or None where the walk must
    decide (anything missing or refused; openat2 absent or filtered)."""
    global _openat2_usable
    if not _openat2_usable:
        return None
    resolve = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
    if not follow:      # (a trailing link too: no O_NOFOLLOW, which would open the link)
        resolve |= linux.RESOLVE_NO_SYMLINKS
    try:
        return linux.openat2(root_fd, path, os.O_PATH | os.O_CLOEXEC, resolve=resolve)
    except OSError as e:
        if e.errno in (errno.ENOSYS, errno.EPERM):
            _openat2_usable = False
        return None


def _make_last_in_root(root_fd, path, kind, follow, owner):
    """resolve_in_root when only the last component is missing: its parent
    through openat2, then the new file or directory; or None for the walk
    (the parent missing too, or the name taken: a link to refuse or follow)."""
    parent, name = posixpath.split(path.rstrip("/"))
    if name in ("", ".", ".."):
        return None
    parent_fd = _open_in_root(root_fd, parent or "/", follow)
    if parent_fd is None:
        return None
    try:
        _create(parent_fd, name, kind, owner)
        return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return None
    finally:
        os.close(parent_fd)


def _create(dir_fd, name, kind, owner):
    """An empty file (kind "file") or a directory, never through a link."""
    if kind == "file":
        _as_owner(owner, lambda: os.close(os.open(
            name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644, dir_fd=dir_fd)))
    else:
        _as_owner(owner, lambda: os.mkdir(name, 0o755, dir_fd=dir_fd))


def _as_owner(owner, fn):
    """fn() with the file system ids switched to owner (uid, gid), if given.

    The host phase of a --userns=auto container creates missing mount points
    as the container's root would: owned by the range's first id, in the
    container's upper dir or (through an idmapped mount, where the host's
    root cannot even create a file: EOVERFLOW) as root inside.  setfsuid
    also drops the file capabilities meanwhile, so the container's
    permissions apply; they come back with the old fsuid."""
    if owner is None:
        return fn()
    gid = linux.setfsgid(owner[1])
    uid = linux.setfsuid(owner[0])
    try:
        return fn()
    finally:
        linux.setfsuid(uid)
        linux.setfsgid(gid)


# ------------------------------------------------------ the OCI mount plan
# config.json's mount options: name -> (MS_* flags set, MS_* flags cleared)
_OPTION_FLAGS = {
    "ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0), "exec": (0, MS_NOEXEC),
    "sync": (linux.MS_SYNCHRONOUS, 0), "async": (0, linux.MS_SYNCHRONOUS),
    "dirsync": (linux.MS_DIRSYNC, 0), "remount": (MS_REMOUNT, 0),
    "mand": (linux.MS_MANDLOCK, 0), "nomand": (0, linux.MS_MANDLOCK),
    "atime": (0, linux.MS_NOATIME), "noatime": (linux.MS_NOATIME, 0),
    "diratime": (0, linux.MS_NODIRATIME), "nodiratime": (linux.MS_NODIRATIME, 0),
    "relatime": (linux.MS_RELATIME, 0), "norelatime": (0, linux.MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0), "nostrictatime": (0, MS_STRICTATIME),
    "nosymfollow": (linux.MS_NOSYMFOLLOW, 0), "symfollow": (0, linux.MS_NOSYMFOLLOW),
    "silent": (linux.MS_SILENT, 0), "loud": (0, linux.MS_SILENT),
    "bind": (MS_BIND, 0), "rbind": (MS_BIND | MS_REC, 0),
    "defaults": (0, 0), "iversion": (0, 0), "noiversion": (0, 0),
    "lazytime": (0, 0), "nolazytime": (0, 0),
}
_PROPAGATION_OPTIONS = dict(PROPAGATION, unbindable=linux.MS_UNBINDABLE,
                            runbindable=linux.MS_UNBINDABLE | MS_REC)
# recursive options (mount_setattr(2) with AT_RECURSIVE): name -> (set, clear)
_RECURSIVE = {
    "rro": (linux.MOUNT_ATTR_RDONLY, 0), "rrw": (0, linux.MOUNT_ATTR_RDONLY),
    "rnosuid": (linux.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, linux.MOUNT_ATTR_NOSUID),
    "rnodev": (linux.MOUNT_ATTR_NODEV, 0), "rdev": (0, linux.MOUNT_ATTR_NODEV),
    "rnoexec": (linux.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, linux.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (linux.MOUNT_ATTR_NODIRATIME, 0),
    "rdiratime": (0, linux.MOUNT_ATTR_NODIRATIME),
    "rnoatime": (linux.MOUNT_ATTR_NOATIME, linux.MOUNT_ATTR__ATIME),
    "rrelatime": (0, linux.MOUNT_ATTR__ATIME),
    "rstrictatime": (linux.MOUNT_ATTR_STRICTATIME, linux.MOUNT_ATTR__ATIME),
    "rnosymfollow": (linux.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, linux.MOUNT_ATTR_NOSYMFOLLOW),
}
_ATTR_NAMES = ((linux.MOUNT_ATTR_RDONLY, "ro"), (linux.MOUNT_ATTR_NOSUID, "nosuid"),
               (linux.MOUNT_ATTR_NODEV, "nodev"), (linux.MOUNT_ATTR_NOEXEC, "noexec"))


def _attr_names(attrs):
    return ",".join(name for bit, name in _ATTR_NAMES if attrs & bit) or hex(attrs)


def mount_options(options):
    """config.json options -> (flags, propagation flags, (attr set, attr clear),
    filesystem data, idmap).  Unknown words are filesystem data (size=,
    mode=, newinstance...), as runc passes them to mount(2)."""
    flags, prop, aset, aclr, data, idmap = 0, 0, 0, 0, [], None
    for opt in options or ():
        if opt in _OPTION_FLAGS:
            on, off = _OPTION_FLAGS[opt]
            flags = (flags | on) & ~off
        elif opt in _PROPAGATION_OPTIONS:
            prop = _PROPAGATION_OPTIONS[opt]
        elif opt in _RECURSIVE:
            on, off = _RECURSIVE[opt]
            aset, aclr = (aset | on) & ~off, (aclr | off) & ~on
        elif opt in ("idmap", "ridmap"):
            idmap = opt
        elif opt == "tmpcopyup":
            pass    # (podman's: copy the image's files up into a tmpfs; not done)
        else:
            data.append(opt)
    return flags, prop, (aset, aclr), ",".join(data), idmap


def set_recursive_attrs(target, attr_set, attr_clear):
    """mount_setattr(AT_RECURSIVE): ro, nosuid... on a mount and every mount
    below it (a read-only bind whose submounts stay writable is a hole)."""
    fd = os.open(target, os.O_PATH | os.O_CLOEXEC)
    try:
        linux.mount_setattr(fd, "", linux.AT_EMPTY_PATH | linux.AT_RECURSIVE,
                            attr_set=attr_set, attr_clr=attr_clear)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            raise OSError(e.errno, "recursive mount options (rro...) need Linux 5.12 or "
                          "later (mount_setattr)", target) from None
        raise
    finally:
        os.close(fd)


class IdmappedMount(MountOp):
    """A bind mount with the mount's own uid/gid mappings (option idmap):
    files owned by N on the host appear owned by what N maps to."""

    def __init__(self, target, source, maps, recursive, **kw):
        super().__init__(target, None, source, MS_BIND, **kw)
        self.maps, self.recursive = maps, recursive
        self.userns_fd = -1     # opened by the runtime before fork (open_userns_fds)

    def describe(self):
        return f"binding {self.source} on {self.target} with its ids mapped (idmapped mount)"

    def run(self, ctx):
        from .security import idmapped_bind
        fd = resolve_in_root(ctx.root, self.target, self.kind, self.follow, owner=ctx.owner)
        try:
            idmapped_bind(self.source, self.target, self.userns_fd, self.recursive,
                          target_fd=fd)
        finally:
            os.close(fd)


def open_userns_fds(plan):
    """Give each idmapped op the fd of a user namespace with its mappings.
    Done by the runtime before fork: the helper process that makes one must
    not be born in the container's PID namespace (its /proc/PID would name
    another process).  Returns the fds, for the caller to close."""
    from .security import open_userns
    fds, made = [], {}
    for op in plan:
        if isinstance(op, (IdmappedMount, IdmappedOverlay)):
            key = repr(op.maps)
            if key not in made:
                made[key] = open_userns(*op.maps)
                fds.append(made[key])
            op.userns_fd = made[key]
    return fds


class IdmappedOverlay(MountOp):
    """An overlay mount with the option idmap: overlayfs itself cannot be
    idmapped (EINVAL), so each lower layer is first bound onto itself
    through an idmapped mount (in this mount namespace only: on disk the
    layers stay as they are, shared by every container), then the overlay
    is mounted over those.  Needs the host's root: a before_userns op."""

    def __init__(self, target, data, maps, flags=0, origin=None):
        super().__init__(target, "overlay", "overlay", flags, data, follow=True,
                         origin=origin)
        self.maps = maps
        self.userns_fd = -1     # opened by the runtime before fork (open_userns_fds)

    def describe(self):
        return (f"mounting overlay on {self.target} over image layers with their ids "
                "mapped (idmapped mounts)")

    def run(self, ctx):
        from .security import idmapped_bind
        lowers = next((o[len("lowerdir="):] for o in self.data.split(",")
                       if o.startswith("lowerdir=")), "")
        for layer in lowers.split(":"):
            idmapped_bind(layer, layer, self.userns_fd)
        super().run(ctx)


class Device(Op):
    """A device node from linux.devices (or the default ones): mknod in the
    container's /dev, never following a symlink out of the root."""

    def __init__(self, path, kind, major, minor, mode=0o666, uid=0, gid=0):
        self.path, self.kind, self.major, self.minor = path, kind, major, minor
        self.mode, self.uid, self.gid = mode, uid, gid

    def describe(self):
        return f"creating device {self.path} ({self.kind} {self.major}:{self.minor})"

    def run(self, ctx):
        kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
        parent = resolve_in_root(ctx.root, posixpath.dirname(self.path))
        name = posixpath.basename(self.path)
        try:
            dfd = os.open(f"/proc/self/fd/{parent}", os.O_RDONLY | os.O_DIRECTORY
                          | os.O_CLOEXEC)
            try:
                try:
                    os.unlink(name, dir_fd=dfd)
                except FileNotFoundError:
                    pass
                os.mknod(name, kinds[self.kind] | (self.mode & 0o7777),
                         os.makedev(self.major, self.minor), dir_fd=dfd)
                os.chmod(name, self.mode & 0o7777, dir_fd=dfd)  # mknod applies the umask
                os.chown(name, self.uid, self.gid, dir_fd=dfd, follow_symlinks=False)
            finally:
                os.close(dfd)
        finally:
            os.close(parent)


class Sysctl(Op):
    """A linux.sysctl entry, written through the container's own /proc/sys."""

    after_pivot = True

    def __init__(self, key, value):
        self.key, self.value = key, value

    def describe(self):
        return f"setting sysctl {self.key}={self.value}"

    def step(self):
        return f"sysctl {self.key}"

    def run(self, ctx):
        if "/" in self.key or ".." in self.key:
            raise OSError(errno.EINVAL, "invalid sysctl name", self.key)
        linux.write_file("/proc/sys/" + self.key.replace(".", "/"), str(self.value).encode())


class NoPivot(Op):
    """--no-pivot: move the root over / and chroot (for roots on a ramfs,
    where pivot_root is refused); the old root stays underneath."""

    def describe(self):
        return "moving the root onto / and chrooting (--no-pivot)"

    def run(self, ctx):
        os.chdir(ctx.root)
        linux.mount(".", "/", None, linux.MS_MOVE)
        os.chroot(".")
        os.chdir("/")


class SetRootPropagation(Op):
    """linux.rootfsPropagation shared/slave on the new root, after pivot_root."""

    after_pivot = True

    def __init__(self, propagation):
        self.propagation = propagation

    def describe(self):
        return f"making the root mount {self.propagation}"

    def run(self, ctx):
        linux.mount(None, "/", None, _PROPAGATION_OPTIONS[self.propagation])


def plan_from_spec(config, rootfs, cgroup_version=1, cgroup_hierarchies=None,
                   no_pivot=False):
    """The mount plan of an OCI configuration (runc's order): the root bound
    onto itself, config.json's mounts in order, the device nodes and /dev
    links, pivot_root, sysctls, masked and read-only paths, the read-only
    root.  With a new user namespace, reordered by userns_phases."""
    lx = config.get("linux") or {}
    ns = {n["type"]: n.get("path") for n in lx.get("namespaces") or ()}
    userns = "user" in ns
    prop = lx.get("rootfsPropagation") or "rslave"
    plan = [MakePrivate("rprivate" if prop in ("private", "rprivate", "shared", "rshared",
                                               "unbindable", "runbindable")
                        else "rslave"),
            BindRoot(rootfs)]
    dev_is_bind = False
    for i, m in enumerate(config.get("mounts") or ()):
        ops = _ops_for_mount(m, i, cgroup_version, cgroup_hierarchies, userns,
                             "cgroup" in ns)
        if m["destination"].rstrip("/") == "/dev" and ops and ops[0].flags & MS_BIND:
            dev_is_bind = True
        plan += ops
    if not dev_is_bind:
        plan += _device_ops(lx.get("devices") or (), userns)
        plan += [Symlink(target, path) for target, path in DEV_LINKS
                 if path != "/dev/core" or os.path.exists("/proc/kcore")]
    plan.append(NoPivot() if no_pivot else PivotRoot())
    plan += _with_origin([Sysctl(k, v) for k, v in sorted((lx.get("sysctl") or {}).items())],
                         "linux.sysctl")
    plan += _with_origin([Mask(p) for p in lx.get("maskedPaths") or ()], "linux.maskedPaths")
    plan += _with_origin([ReadOnly(p) for p in lx.get("readonlyPaths") or ()],
                         "linux.readonlyPaths")
    if (config.get("root") or {}).get("readonly"):
        cwd = (config.get("process") or {}).get("cwd") or "/"
        if cwd != "/":
            plan.append(MakeCwd(cwd))
        plan += _with_origin([RemountRootReadOnly()], "root.readonly")
    if prop in ("shared", "rshared", "unbindable", "runbindable"):
        plan.append(SetRootPropagation(prop))
    if userns:
        plan = userns_phases(plan, new_netns=not ns.get("network") and "network" in ns)
    return plan


def _with_origin(ops, origin):
    for op in ops:
        op.origin = origin
    return ops


def _ops_for_mount(m, index, cgroup_version, hierarchies, userns, cgroupns):
    origin = f"mounts[{index}]"
    dest, kind = m["destination"], m.get("type") or ""
    flags, prop, attrs, data, idmap = mount_options(m.get("options"))
    source = m.get("source")
    if kind in ("cgroup", "cgroup2"):
        if userns and cgroup_version == 1:
            return [Note("skipping the cgroup v1 hierarchies: the kernel refuses cgroup v1 "
                         "mounts in a user namespace")]
        if cgroup_version == 1 and hierarchies is None:
            hierarchies = host_cgroup_v1_hierarchies()
        ops = cgroup_mounts(flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, cgroup_version,
                            hierarchies or ())
        ops[0].origin = origin
        return ops
    if flags & MS_BIND or kind == "bind":
        if not source:
            raise OSError(errno.EINVAL, "a bind mount needs a source", dest)
        try:
            is_dir = os.path.isdir(source)
        except OSError:
            is_dir = True
        common = dict(kind="dir" if is_dir else "file", follow=True, origin=origin)
        if idmap:
            maps = ([(x["containerID"], x["hostID"], x["size"]) for x in m["uidMappings"]],
                    [(x["containerID"], x["hostID"], x["size"]) for x in m["gidMappings"]])
            return [IdmappedMount(dest, source, maps, idmap == "ridmap"
                                  or flags & MS_REC, **common)]
        return [MountOp(dest, None, source, MS_BIND | flags | prop, attrs=attrs, **common)]
    if kind == "overlay" and idmap:
        maps = ([(x["containerID"], x["hostID"], x["size"]) for x in m["uidMappings"]],
                [(x["containerID"], x["hostID"], x["size"]) for x in m["gidMappings"]])
        return [IdmappedOverlay(dest, data, maps, flags, origin=origin)]
    # /proc, /sys, /dev and the kernel filesystems must be real directories
    # of the image (a symlink there is refused: CVE-2019-19921 class); a
    # tmpfs elsewhere may follow links, resolved inside the root.
    follow = kind not in ("proc", "sysfs", "devpts", "mqueue") and \
        dest.rstrip("/") not in ("/dev", "/proc", "/sys")
    op = MountOp(dest, kind, source or kind, flags, data or None, follow=follow,
                 origin=origin)
    ops = [op]
    if prop:
        ops.append(Propagation(dest, prop))
    return ops


class Propagation(Op):
    """A propagation option (shared, slave...) on a mount made earlier."""

    def __init__(self, target, flags):
        self.target, self.flags = target, flags

    def describe(self):
        return f"setting propagation of {self.target}"

    def run(self, ctx):
        fd = resolve_in_root(ctx.root, self.target, follow=True, create=False)
        try:
            linux.mount(None, f"/proc/self/fd/{fd}", None, self.flags)
        finally:
            os.close(fd)


def _device_ops(devices, userns):
    """The default nodes (null, zero, full, random, urandom, tty) and those of
    linux.devices."""
    ops = []
    wanted = {f"/dev/{name}": ("c", ma, mi) for name, ma, mi in DEFAULT_DEVICES}
    for name, _, _ in DEFAULT_DEVICES:
        ops.append(BindDevice(name) if userns else
                   Device(f"/dev/{name}", *wanted[f"/dev/{name}"]))
    for d in devices:
        if d["path"] in wanted:
            ops = [op for op in ops if getattr(op, "path", getattr(op, "target", None))
                   != d["path"]]
        ops.append(Device(d["path"], d["type"], d.get("major", 0), d.get("minor", 0),
                          d.get("fileMode", 0o666), d.get("uid", 0), d.get("gid", 0)))
    return ops
