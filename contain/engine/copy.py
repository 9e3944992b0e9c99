"""`contain cp`: copy files between a container and the host, or as a tar
stream (`cp CTR:/path -` writes one, `cp - CTR:/dir` reads one).

Where the container's files are: for a running container, its init's root
(/proc/PID/root), which shows its own mount namespace (volumes, binds,
tmpfs included); for a stopped one, its root filesystem: a directory as it
is, or the image's overlay (upper dir over the layers) mounted in a private
mount namespace of this short-lived process, under the container's lock so
that it cannot start meanwhile.

The container's files are hostile.  Every path is resolved inside the
container's root (core.mounts.resolve_in_root: by the kernel's openat2
RESOLVE_IN_ROOT, or one component at a time; a symlink resolves as if the
root were "/", never out of it); the tree is
read through directory fds with O_NOFOLLOW, so a link swapped in while we
read cannot redirect us (the class of CVE-2018-15664 and CVE-2019-14271);
what is written goes through the engine's tar unpacker (unpack.py), which
creates every entry relative to its parent's fd.
"""

import contextlib
import os
import stat
import sys
import tarfile
import tempfile

from ..errors import ContainError, NotFound, UsageError


def split_ref(arg):
    """'CTR:/path' -> ('CTR', '/path'); a host path (or '-') -> (None, arg).
    A path with a '/' before its first ':' is a host path (Docker's rule)."""
    if arg == "-" or arg.startswith("/") or arg.startswith("."):
        return None, arg
    name, colon, path = arg.partition(":")
    if not colon:
        return None, arg
    if not name:
        raise UsageError(f"invalid container reference: {arg!r}")
    return name, path or "/"


def cp(store, src, dst, log=None):
    """`contain cp SRC DST`, one side a container's CTR:PATH."""
    (sc, sp), (dc, dp) = split_ref(src), split_ref(dst)
    if (sc is None) == (dc is None):
        raise UsageError("copying between containers or between two host paths is not "
                         "supported: one of SRC and DST must be CONTAINER:PATH")
    if sc is not None:
        with container_root(store, sc, log) as root:
            copy_out(root, sp, dp)
    else:
        if sp != "-" and not os.path.lexists(sp):
            raise NotFound(f"could not find the file {sp} in the host")
        with container_root(store, dc, log) as root:
            copy_in(root, sp, dp)
    return 0


# ------------------------------------------------------- the container's root
@contextlib.contextmanager
def container_root(store, ref, log=None):
    """The host path of the container's root, for the duration."""
    from . import state
    c = store.find(ref)
    pid = c.state.get("pid")
    if c.running and pid and state.process_alive(pid, c.state.get("start_time"),
                                                 c.state.get("boot_id")):
        root = f"/proc/{pid}/root"
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:   # the pid is checked again with the root held: never a reused one
            if not state.process_alive(pid, c.state.get("start_time"),
                                       c.state.get("boot_id")):
                raise ContainError(f"container {c.id[:12]} stopped during the copy")
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with store.container_lock(c.id):
        c.reload()
        if c.running:
            raise ContainError(f"container {c.id[:12]} started during the copy: try again")
        rootfs = c.config["rootfs"]
        if rootfs["type"] == "dir":
            yield rootfs["path"]
        elif rootfs["type"] == "tar":
            yield c.path("rootfs")
        else:
            yield _mount_overlay(c, log)


def _mount_overlay(c, log=None):
    """Mount the stopped container's overlay on its rootfs/ in a private
    mount namespace of this process (it vanishes when we exit)."""
    from ..core import linux
    from .images import overlay_mount_data
    layers = c.config["rootfs"]["layers"]
    data, cwd = overlay_mount_data(layers, c.path("upper"), c.path("work"))
    try:
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        if cwd:
            os.chdir(cwd)
        linux.mount("overlay", c.path("rootfs"), "overlay", 0, data)
    except OSError as e:
        raise ContainError(f"mounting the root filesystem of stopped container "
                           f"{c.id[:12]}: {e.strerror or e}") from None
    if log:
        log(f"mounted the container's overlay on {c.path('rootfs')} (private namespace)")
    return c.path("rootfs")


def _resolve(root, path, what):
    """An O_PATH fd of path's parent inside root, and its last component."""
    from ..core.mounts import resolve_in_root
    norm = os.path.normpath("/" + path)
    parent, name = os.path.split(norm)
    try:
        fd = resolve_in_root(root, parent, kind="dir", follow=True, create=False)
    except OSError as e:
        raise NotFound(f"{what} {norm} in container: {e.strerror}") from None
    return fd, name


# ------------------------------------------------------------- out of it
def copy_out(root, path, dest):
    """CTR:path to the host path dest, or to stdout as a tar ('-')."""
    pfd, name = _resolve(root, path, "Could not find the file")
    try:
        dfd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(pfd)
    try:
        if name:
            try:
                os.lstat(name, dir_fd=dfd)
            except OSError as e:
                raise NotFound(f"Could not find the file {path} in container: "
                               f"{e.strerror}") from None
        if dest == "-":
            with tarfile.open(fileobj=sys.stdout.buffer, mode="w|",
                              format=tarfile.PAX_FORMAT) as tar:
                _add(tar, dfd, name or ".", name or ".")
            sys.stdout.buffer.flush()
            return
        _to_host(dfd, name or ".", path, dest)
    finally:
        os.close(dfd)


def _to_host(dfd, name, path, dest):
    """Docker's rules: into dest if it is a directory, else as dest."""
    from .unpack import safe_extract
    if os.path.isdir(dest):
        target_dir, arc = dest, name
    else:
        target_dir, arc = os.path.dirname(os.path.abspath(dest)), os.path.basename(dest)
        if not os.path.isdir(target_dir):
            raise NotFound(f"destination directory {target_dir} does not exist")
    with tempfile.TemporaryFile(dir=target_dir) as tmp:
        with tarfile.open(fileobj=tmp, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, dfd, name, arc)
        tmp.seek(0)
        safe_extract(tmp, target_dir, label=f"copy of {path}")


def _add(tar, parent_fd, name, arcname):
    """Add parent_fd/name (never following a link) and, for a directory,
    everything below it, to tar."""
    st = os.lstat(name, dir_fd=parent_fd)
    info = tarfile.TarInfo(arcname)
    info.mode, info.uid, info.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=parent_fd)
        tar.addfile(info)
    elif stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=parent_fd)
        try:
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
            for entry in sorted(os.listdir(fd)):
                _add(tar, fd, entry, f"{arcname}/{entry}")
        finally:
            os.close(fd)
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=parent_fd)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):     # swapped meanwhile: skip it
                return
            info.size = st.st_size
            tar.addfile(info, f)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    # devices and sockets are not copied (the unpacker would refuse them)


# -------------------------------------------------------------- into it
def copy_in(root, src, path):
    """The host path src (or a tar on stdin, '-') into CTR:path."""
    from .unpack import safe_extract
    norm = os.path.normpath("/" + path)
    from ..core.mounts import resolve_in_root
    try:
        fd = resolve_in_root(root, norm, kind="dir", follow=True, create=False)
        into_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
    except OSError:
        fd, into_dir = None, False
    if src == "-":
        if fd is None or not into_dir:
            raise NotFound(f"Could not find the directory {path} in container "
                           "(a tar stream is unpacked into an existing directory)")
        try:
            safe_extract(sys.stdin.buffer, f"/proc/self/fd/{fd}/.", label="tar stream",
                         refuse_devices=True)
        finally:
            os.close(fd)
        return
    if into_dir:
        arc = os.path.basename(os.path.normpath(src))
        if src.endswith("/.") or src.endswith("/./"):
            arc = "."
    else:
        if fd is not None:
            os.close(fd)
        pfd, arc = _resolve(root, norm, "Could not find the directory for")
        fd = pfd
        if not arc:
            raise UsageError(f"cannot copy to {path}")
    try:
        with tempfile.TemporaryFile() as tmp:
            with tarfile.open(fileobj=tmp, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                tar.add(src, arcname=arc, recursive=True)
            tmp.seek(0)
            safe_extract(tmp, f"/proc/self/fd/{fd}/.", label=f"copy of {src}",
                         refuse_devices=True)
    finally:
        os.close(fd)
