"""Named and anonymous volumes: directories the engine keeps for containers'
data, as Docker's local driver does.

    STATE/volumes/              0700 (the data may hold setuid files)
    STATE/volumes.lock          taken to create, remove, and to check use
    STATE/volumes/<name>/volume.json   name, created, labels, anonymous
    STATE/volumes/<name>/_data         what the container sees

A name becomes a directory name only after flags.check_volume_name (no '/',
no '..').  A volume is in use while any container record (running or not)
names it; such a volume cannot be removed.  A new, empty volume mounted
where the image has content gets a copy of it on first use (Docker's
copy-up; `nocopy` turns it off).
"""

import os

from .flags import check_volume_name
from .state import FileLock, read_json, remove_tree, secure_state_root, write_json
from ..clock import now
from ..errors import Conflict, ContainError, NotFound


def volumes_dir(root):
    return os.path.join(root, "volumes")


def data_dir(root, name):
    return os.path.join(volumes_dir(root), check_volume_name(name), "_data")


class VolumeStore:
    """The volumes under one state root."""

    def __init__(self, store):
        self.store = store
        self.root = store.root
        self.dir = volumes_dir(store.root)

    def lock(self):
        secure_state_root(self.root, self.dir)
        return FileLock(os.path.join(self.root, "volumes.lock"))

    def names(self):
        try:
            return sorted(n for n in os.listdir(self.dir)
                          if os.path.exists(os.path.join(self.dir, n, "volume.json")))
        except FileNotFoundError:
            return []

    def get(self, name):
        check_volume_name(name)
        try:
            meta = read_json(os.path.join(self.dir, name, "volume.json"))
        except FileNotFoundError:
            raise NotFound(f"get {name}: no such volume") from None
        except ValueError as e:
            raise ContainError(f"volume {name}: corrupt record: {e}") from None
        return dict(meta, Mountpoint=data_dir(self.root, name))

    def create(self, name=None, labels=None, anonymous=False):
        """Create a volume (an existing one is returned as it is, as Docker
        does); returns (record, created)."""
        name = check_volume_name(name or os.urandom(32).hex())
        with self.lock():
            return self._create(name, labels, anonymous)

    def _create(self, name, labels=None, anonymous=False):
        d = os.path.join(self.dir, name)
        if os.path.exists(os.path.join(d, "volume.json")):
            return self.get(name), False
        os.makedirs(os.path.join(d, "_data"), mode=0o755, exist_ok=True)
        os.chmod(d, 0o700)
        meta = {"Name": name, "Driver": "local", "CreatedAt": now(), "Labels": labels or {},
                "Scope": "local", "Options": {}, "Anonymous": bool(anonymous)}
        write_json(os.path.join(d, "volume.json"), meta)  # last: now it exists
        return self.get(name), True

    def users(self, name, excluding=None):
        """Ids of the containers whose records name the volume."""
        return [c.id for c in self.store.all() if c.id != excluding
                and any(m.get("type") == "volume" and m.get("name") == name
                       for m in c.config.get("mounts") or ())]

    def remove(self, name, excluding=None):
        check_volume_name(name)
        with self.lock():
            self.get(name)
            users = self.users(name, excluding)
            if users:
                raise Conflict(f"remove {name}: volume is in use - "
                               f"[{', '.join(users)}]")
            self._delete(name)

    def _delete(self, name):
        d = os.path.join(self.dir, name)
        try:
            os.unlink(os.path.join(d, "volume.json"))
        except FileNotFoundError:
            pass
        try:
            remove_tree(d)
        except OSError as e:
            raise ContainError(f"removing volume {name}: {e.strerror}") from None

    def prune(self, all_volumes=False):
        """Remove unused volumes: anonymous ones, or every one with all_volumes
        (Docker 23's rule).  Returns the names removed."""
        removed = []
        with self.lock():
            for name in self.names():
                try:
                    meta = self.get(name)
                except ContainError:
                    continue
                if (all_volumes or meta.get("Anonymous")) and not self.users(name):
                    self._delete(name)
                    removed.append(name)
        return removed


# --------------------------------------------------- a container's volumes
def prepare(c, log=None):
    """At create: make -v's missing host directories and the container's
    volumes (copying the image's content into a new, empty one)."""
    mounts = c.config.get("mounts") or ()
    for m in mounts:
        if m["type"] == "bind" and m.get("create_source") and not os.path.lexists(m["source"]):
            if log:
                log(f"creating the missing host directory {m['source']}")
            try:
                os.makedirs(m["source"], 0o755)
            except OSError as e:
                raise ContainError(f"creating the host path {m['source']} for -v: "
                                   f"{e.strerror}") from None
    vs = VolumeStore(c.store)
    for m in mounts:
        if m["type"] != "volume":
            continue
        meta, created = vs.create(m["name"], anonymous=m.get("anonymous"))
        if log and created:
            log(f"created volume {m['name'][:12]} at {meta['Mountpoint']}")
        if created and not m.get("nocopy"):
            copy_up(c, m["target"], meta["Mountpoint"], log)


def copy_up(c, target, dest, log=None):
    """Copy what the image has at target into dest (Docker's copy-up): the
    layers merged bottom to top as overlayfs would show them (whiteouts
    remove, opaque directories hide what is below), never following a link
    out of a layer (core.mounts.resolve_in_root)."""
    rootfs = c.config.get("rootfs") or {}
    if rootfs.get("type") != "image":
        return
    from ..core.mounts import resolve_in_root
    copied = False
    for layer in rootfs.get("layers") or ():       # bottom first
        try:
            fd = resolve_in_root(layer, target.lstrip("/"), kind="dir", create=False)
        except OSError:
            continue
        try:
            if log and not copied:
                log(f"copying the image's {target} into the new volume")
            _merge_dir(f"/proc/self/fd/{fd}", dest)
            st = os.fstat(fd)
            os.chown(dest, st.st_uid, st.st_gid)
            os.chmod(dest, st.st_mode & 0o7777)
            copied = True
        except OSError as e:
            raise ContainError(f"copying the image's {target} into its volume: "
                               f"{e.strerror or e}") from None
        finally:
            os.close(fd)


def _merge_dir(src, dest):
    import stat
    from .unpack import OPAQUE_XATTR
    try:
        if os.getxattr(src, OPAQUE_XATTR) == b"y":
            for name in os.listdir(dest):
                _remove(os.path.join(dest, name))
    except OSError:
        pass
    for entry in os.scandir(src):
        st = entry.stat(follow_symlinks=False)
        out = os.path.join(dest, entry.name)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:      # a whiteout
            _remove(out)
        elif stat.S_ISDIR(st.st_mode):
            if not os.path.isdir(out) or os.path.islink(out):
                _remove(out)
                os.mkdir(out)
            _merge_dir(entry.path, out)
            os.chown(out, st.st_uid, st.st_gid)
            import shutil   # (only on a copy-up: it is slow to import)
            shutil.copystat(entry.path, out, follow_symlinks=False)
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            _remove(out)
            import shutil
            shutil.copy2(entry.path, out, follow_symlinks=False)
            os.chown(out, st.st_uid, st.st_gid, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):    # chown cleared setuid bits
                os.chmod(out, stat.S_IMODE(st.st_mode))


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        remove_tree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def remove_anonymous(store, c, excluding=None):
    """`rm -v` and --rm: the container's anonymous volumes go with it (a
    named one stays).  Called after the container's record is gone (or
    with excluding=its id, while a failed create is undone)."""
    vs = VolumeStore(store)
    errors = []
    for m in c.config.get("mounts") or ():
        if m.get("type") == "volume" and m.get("anonymous"):
            try:
                vs.remove(m["name"], excluding)
            except NotFound:
                pass
            except ContainError as e:
                errors.append(str(e))
    if errors:
        raise ContainError("; ".join(errors))
