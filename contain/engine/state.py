"""Container records: where they live, how they are locked and written, and
how a container's status is re-derived from the kernel on every read.

Layout under the state root (default /var/lib/contain):

    containers/<id>/config.json   what the user asked for (written once)
    containers/<id>/state.json    what happened (pid, start time, exit...)
    containers/<id>/...           rootfs pieces, log, hosts files
    containers.lock               taken for creating/renaming/removing

Records are written to a temporary file and renamed over the old one, so a
crash leaves either the old or the new record, never half of one.  Status is
never trusted from the file (runc's refreshState): a pid counts as running
only if /proc/PID exists, is not a zombie, and has the start time and boot
id recorded when it was started.
"""

import errno
import os
import re

# the one atomic write, lock and liveness check, shared with the core
from ..core.fsutil import read_json, write_json  # noqa: F401  (re-exported)
from ..core.state import (FileLock, boot_id, proc_start_time,  # noqa: F401
                          process_alive, remove_tree)
from ..errors import Conflict, ContainError, NotFound, UsageError

DEFAULT_ROOT = "/var/lib/contain"
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def state_root(explicit=None):
    return explicit or os.environ.get("CONTAIN_ROOT") or DEFAULT_ROOT


# What other host users may do under the state root: nothing.  The image
# layers and containers' upper and merged directories hold the images'
# setuid-root programs; a directory another user can walk into lets that user
# run them as root (moby's CVE-2021-41091).  The root itself only lets the
# kernel pass through (0711, like /var/lib/docker); images/ and containers/
# are 0700.  Every mount the runtime makes from them is made as root before
# any user namespace, so nothing else needs to reach them.
ROOT_MODE, PRIVATE_MODE = 0o711, 0o700


def secure_state_root(root, *private):
    """Make root (and the private directories in it) no more open than
    ROOT_MODE (PRIVATE_MODE), creating them if missing: a store made by an
    older version with 0755 directories is tightened on its next use."""
    for path, mode in [(root, ROOT_MODE)] + [(p, PRIVATE_MODE) for p in private]:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            os.makedirs(path, mode=mode, exist_ok=True)
            st = os.stat(path)
        if st.st_mode & 0o7777 & ~mode:
            os.chmod(path, st.st_mode & 0o7777 & mode)


# ----------------------------------------------------------------- records
class Container:
    """A container's record: config (immutable) and state (mutable)."""

    def __init__(self, store, cid, config, state):
        self.store, self.id, self.config, self.state = store, cid, config, state

    @property
    def name(self):
        return self.config["name"]

    @property
    def dir(self):
        return self.store.container_dir(self.id)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def status(self):
        """created | running | paused | restarting | exited | dead, derived
        from the kernel now."""
        st = self.state
        if st.get("pid") and process_alive(st["pid"], st.get("start_time"), st.get("boot_id")):
            if st.get("paused_pid") == st["pid"]:
                from .control import frozen
                if frozen(self.store, self.id):
                    return "paused"
            return "running"
        if process_alive(st.get("monitor_pid"), st.get("monitor_start"), st.get("boot_id")):
            if st.get("restarting"):
                return "restarting"  # between two runs: its monitor will start it again
            if st.get("started_at") and not st.get("finished_at"):
                return "running"  # it just exited: its monitor is recording that
        if st.get("error"):
            return "dead"
        if st.get("started_at"):
            return "exited"
        return "created"

    @property
    def running(self):
        return self.status in ("running", "restarting", "paused")

    @property
    def exit_code(self):
        """The recorded exit code; a container that died unrecorded (its
        monitor was killed, the host rebooted) reports 255 like Docker."""
        st = self.state
        if st.get("exit_code") is not None:
            return st["exit_code"]
        return 255 if st.get("started_at") else 0

    def save(self):
        write_json(self.path("state.json"), self.state)

    # Set by a process that already holds this container's lock (and by the
    # monitor it forks, which acts under that same lock until it reports).
    lock_held = False

    def update(self, **fields):
        """Read-modify-write of the state under the container's lock, so two
        processes (a monitor recording an exit, `stop` asking for no restart)
        never overwrite each other's fields."""
        if self.lock_held:
            self._update(fields)
            return self
        with self.store.container_lock(self.id):
            self._update(fields)
        return self

    def _update(self, fields):
        if not os.path.exists(self.path("config.json")):  # `rm` got here first
            raise NotFound(f"No such container: {self.id[:12]}")
        self.reload()
        self.state.update(fields)
        self.save()

    def reload(self):
        self.state = read_json(self.path("state.json"))
        return self


class Store:
    """All containers under one state root."""

    def __init__(self, root=None):
        self.root = state_root(root)
        self.containers = os.path.join(self.root, "containers")

    def ensure(self):
        secure_state_root(self.root, self.containers)

    def lock(self):
        self.ensure()
        return FileLock(os.path.join(self.root, "containers.lock"))

    def container_lock(self, cid):
        return FileLock(os.path.join(self.container_dir(cid), "lock"))

    def container_dir(self, cid):
        return os.path.join(self.containers, cid)

    def ids(self):
        try:
            return [d for d in os.listdir(self.containers) if len(d) == 64]
        except FileNotFoundError:
            return []

    def load(self, cid):
        d = self.container_dir(cid)
        try:
            config = read_json(os.path.join(d, "config.json"))
            state = read_json(os.path.join(d, "state.json"))
        except FileNotFoundError:
            raise NotFound(f"No such container: {cid[:12]}") from None
        except ValueError as e:
            raise ContainError(f"container {cid[:12]}: corrupt record: {e}") from None
        return Container(self, cid, config, state)

    def all(self):
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except ContainError:
                continue  # removed meanwhile, or still being created
        return out

    def names(self):
        return {c.name: c.id for c in self.all()}

    def find(self, ref):
        """A container by full id, name, or unique id prefix."""
        if not ref:
            raise UsageError("container name or id required")
        ids = self.ids()
        if ref in ids:
            return self.load(ref)
        for c in self.all():
            if c.name == ref:
                return c
        matches = [i for i in ids if i.startswith(ref)] if re.match(r"^[0-9a-f]+$", ref) else []
        if len(matches) == 1:
            return self.load(matches[0])
        if len(matches) > 1:
            raise Conflict(f"multiple containers match id prefix {ref}: be more specific")
        raise NotFound(f"No such container: {ref}")

    def create(self, config, state):
        """Make the record of a new container; the name is checked under the lock."""
        name = config["name"]
        check_name(name)
        with self.lock():
            self._name_free(name)
            d = self.container_dir(config["id"])
            os.makedirs(d, mode=0o700)
            write_json(os.path.join(d, "state.json"), state)
            # config.json last: a container only "exists" once both are there
            write_json(os.path.join(d, "config.json"), config)
        return Container(self, config["id"], config, state)

    def _name_free(self, name):
        """Refuse a name another container has (the caller holds the lock)."""
        taken = self.names()
        if name in taken:
            raise Conflict(f'The container name "/{name}" is already in use by '
                           f'container "{taken[name]}". You have to remove (or rename) '
                           "that container to be able to reuse that name.")

    def rename(self, ref, new_name):
        """`contain rename`: a new name in the container's record, checked for
        use under the store's lock (the container's lock keeps a concurrent
        `update` from writing an older config.json over it)."""
        check_name(new_name)
        with self.lock():
            c = self.find(ref)
            if c.name == new_name:
                raise Conflict(f"Renaming a container with the same name as its "
                               f"current name: {new_name}")
            self._name_free(new_name)
            with self.container_lock(c.id):
                c = self.load(c.id)
                c.config["name"] = new_name
                write_json(c.path("config.json"), c.config)
        return c

    def delete(self, cid):
        """Remove a container's directory (the caller undid everything else).

        Under the container's lock, so that a monitor still recording an exit
        (Container.update) cannot write into the directory while it goes;
        config.json goes first: without it the container no longer exists."""
        d = self.container_dir(cid)
        try:
            with self.container_lock(cid):
                try:
                    os.unlink(os.path.join(d, "config.json"))
                except FileNotFoundError:
                    pass
                remove_tree(d)  # the lock file too: our descriptor stays valid
        except FileNotFoundError:  # already gone
            return
        if os.path.exists(d):
            raise ContainError(f"removing {d}: directory not empty (is something mounted there?)")


def check_name(name):
    if not NAME_RE.match(name or ""):
        raise UsageError(f"Invalid container name ({name}), only "
                         "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def new_id():
    return os.urandom(32).hex()


def ignore_missing(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ESRCH):
            raise
