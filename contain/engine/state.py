"""Container records: where they live, how they are locked and written, and
how a container's status is re-derived from the kernel on every read.

Layout under the state root (default /var/lib/contain):

    containers/<id>/config.json   what the user asked for (written once)
    containers/<id>/state.json    what happened (pid, start time, exit...)
    containers/<id>/...           rootfs pieces, log, hosts files
    containers.lock               taken for creating/renaming/removing
    names/<name>                  symlink to the id of the container of that name

Records are written to a temporary file and renamed over the old one, so a
crash leaves either the old or the new record, never half of one.  Status is
never trusted from the file (runc's refreshState): a pid counts as running
only if /proc/PID exists, is not a zombie, and has the start time and boot
id recorded when it was started.
"""

import fcntl
import os

# the one atomic write, lock and liveness check, shared with the core
from ..core.fsutil import (DamagedFile, is_dict_of, read_json,  # noqa: F401
                           read_state_json, write_json)
from ..core.state import (FileLock, boot_id, ignore_missing,  # noqa: F401
                          proc_start_time, process_alive, remove_tree)
from ..errors import Conflict, ContainError, NotFound, UsageError

DEFAULT_ROOT = "/var/lib/contain"
# a name (Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]*) is a file name in names/
NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
NAME_CHARS = NAME_FIRST | frozenset("_.-")
NAME_MAX = 255
# a container's directory on its way out (renamed first, then emptied): no
# command lists it, and any command that lists containers finishes the job
TRASH_PREFIX = ".trash-"

# TEST-ONLY fault injection.  CONTAIN_FAULT=STEP[,STEP...] makes the process
# that passes fault_point(STEP) SIGKILL itself right there, so the tests can
# crash the CLI or the monitor deterministically between two steps of a
# command (tests/test_faults_lifecycle.py) and check that nothing leaks.
# Unset (always, outside the tests) it costs one comparison per step.
_FAULTS = frozenset(filter(None, os.environ.get("CONTAIN_FAULT", "").split(",")))


def fault_point(step):
    """Test-only: SIGKILL this process if CONTAIN_FAULT names step."""
    if _FAULTS and step in _FAULTS:
        os.kill(os.getpid(), 9)


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
RUNNING = ("running", "restarting", "paused")   # the statuses of Container.running


class Container:
    """A container's record: config (immutable) and state (mutable)."""

    # DamagedRecord when the record could not be read (Store.load(partial=True)):
    # only removal works on such a container
    damaged = None

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
        if self.damaged is not None:
            return "dead"
        st = self.state
        if st.get("spawning") and not process_alive(st.get("monitor_pid"),
                                                    st.get("monitor_start"), st.get("boot_id")):
            return "dead"  # its monitor died while starting it: only rm -f helps
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
        return self.status in RUNNING

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
        self.state = read_state_json(self.path("state.json"), _check_object,
                                     _remedy(self.id))
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
        """The containers' ids; finishes removing any trash left by a removal
        that was killed halfway (see delete)."""
        try:
            names = os.listdir(self.containers)
        except FileNotFoundError:
            return []
        for n in names:
            if n.startswith(TRASH_PREFIX):
                _empty_trash(os.path.join(self.containers, n))
        return [d for d in names if len(d) == 64]

    def load(self, cid, partial=False):
        """The container's record.  A damaged or incomplete one raises
        DamagedRecord (one line naming the file), or with partial=True comes
        back as a Container whose `damaged` says what is wrong: what is
        needed to remove it (its name, where known) is all it holds."""
        d = self.container_dir(cid)
        try:
            config = read_state_json(os.path.join(d, "config.json"), _check_config,
                                     _remedy(cid))
            state = read_state_json(os.path.join(d, "state.json"), _check_object,
                                    _remedy(cid))
        except FileNotFoundError as e:
            if not os.path.isdir(d) or self._being_created(d):
                raise NotFound(f"No such container: {cid[:12]}") from None
            err = DamagedRecord(f"{e.filename} is missing (a removal or creation was "
                                f"interrupted): {_remedy(cid)}")
        except DamagedFile as e:
            err = DamagedRecord(str(e))
        else:
            return Container(self, cid, config, state)
        if not partial:
            raise err
        c = Container(self, cid, self._salvage_config(cid), {})
        c.damaged = err
        return c

    def _being_created(self, d):
        """A directory without config.json is a record being created if
        create() (which holds the store's lock until config.json is written)
        is still at it."""
        if os.path.exists(os.path.join(d, "config.json")):
            return False
        fd = os.open(os.path.join(self.root, "containers.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def _salvage_config(self, cid):
        """What removal needs from a damaged record's config: the name and
        cgroup parent, from config.json if readable, else from the copies in
        its bundle and in the runtime core's record."""
        d = self.container_dir(cid)
        cfg = {"id": cid, "name": ""}
        for path, pick in ((os.path.join(d, "config.json"), _from_config),
                           (os.path.join(d, "bundle", "config.json"), _from_bundle),
                           (os.path.join(self.root, "runtime", cid, "state.json"),
                            _from_bundle)):
            try:
                value = read_json(path)
            except (OSError, ValueError):
                continue
            if isinstance(value, dict):
                for k, v in pick(value).items():
                    if v and not cfg.get(k):
                        cfg[k] = v
        return cfg

    def all(self, damaged=False):
        """Every container; damaged=True: damaged records too (partial)."""
        out = []
        for cid in self.ids():
            try:
                c = self.load(cid, partial=damaged)
            except ContainError:
                continue  # removed meanwhile, or still being created
            out.append(c)
        return out

    def names(self):
        """{name: id} of every container, from the records themselves."""
        return {c.name: c.id for c in self.all(damaged=True) if c.name}

    # ------------------------------------------------------ the names index
    # names/<name> is a symlink to the id of the container that has (or had)
    # the name, so that a create or a lookup by name reads one link instead
    # of every record.  The records stay the truth: a link counts only if the
    # record it points to still has that name, and a stale one (its container
    # removed or renamed, or a create killed halfway) is replaced when the
    # name is claimed again.  Links are made and removed under the store's
    # lock; the directory appears (built from the records) once, atomically.
    def _name_link(self, name):
        return os.path.join(self.root, "names", name)

    def name_owner(self, name):
        """The id of the container named `name`, or None."""
        if not os.path.isdir(os.path.join(self.root, "names")):
            return self.names().get(name)          # a store from before the index
        try:
            cid = os.readlink(self._name_link(name))
        except OSError:
            return None
        try:
            return cid if self.load(cid, partial=True).name == name else None
        except ContainError:
            return None

    def _index(self):
        """Make names/ from the records if missing (the caller holds the
        store's lock): built aside, then renamed into place."""
        d = os.path.join(self.root, "names")
        if os.path.isdir(d):
            return d
        tmp = f"{d}.new"        # (one name: the lock is held, and a crash's is cleared)
        remove_tree(tmp)
        os.mkdir(tmp, PRIVATE_MODE)
        for name, cid in self.names().items():
            if check_name_ok(name) and len(name) <= NAME_MAX:   # (a store from before the limit)
                os.symlink(cid, os.path.join(tmp, name))
        os.rename(tmp, d)
        return d

    def _claim_name(self, name, cid):
        """Point name at cid, refusing a name another container has (the
        caller holds the store's lock)."""
        self._index()
        owner = self.name_owner(name)
        if owner is not None and owner != cid:
            raise Conflict(f'The container name "/{name}" is already in use by '
                           f'container "{owner}". You have to remove (or rename) '
                           "that container to be able to reuse that name.")
        link = self._name_link(name)
        ignore_missing(os.unlink, link)            # stale: its owner is gone
        os.symlink(cid, link)

    def _release_name(self, name, cid):
        """Remove name's link if it still points at cid (lock held)."""
        link = self._name_link(name)
        try:
            if os.readlink(link) == cid:
                os.unlink(link)
        except OSError:
            pass

    def find(self, ref, damaged=False):
        """A container by full id, name, or unique id prefix.  damaged=True
        (for rm): a damaged record comes back partial instead of failing."""
        if not ref:
            raise UsageError("container name or id required")
        ids = self.ids()
        if ref in ids:
            return self.load(ref, partial=damaged)
        owner = self.name_owner(ref) if check_name_ok(ref) else None
        if owner is not None:
            return self.load(owner, partial=damaged)
        hex_prefix = not ref.strip("0123456789abcdef")
        matches = [i for i in ids if i.startswith(ref)] if hex_prefix else []
        if len(matches) == 1:
            return self.load(matches[0], partial=damaged)
        if len(matches) > 1:
            raise Conflict(f"multiple containers match id prefix {ref}: be more specific")
        raise NotFound(f"No such container: {ref}")

    def create(self, config, state):
        """Make the record of a new container; the name is checked under the lock."""
        name = config["name"]
        check_name(name)
        with self.lock():
            self._claim_name(name, config["id"])   # first: a record always has its link
            d = self.container_dir(config["id"])
            try:
                os.makedirs(d, mode=0o700)
                write_json(os.path.join(d, "state.json"), state)
                # config.json last: a container only "exists" once both are there
                write_json(os.path.join(d, "config.json"), config)
            except BaseException:   # a full disk: nothing is left behind
                remove_tree(d)
                self._release_name(name, config["id"])
                raise
        return Container(self, config["id"], config, state)

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
            self._claim_name(new_name, c.id)
            with self.container_lock(c.id):
                c = self.load(c.id)
                old_name = c.name
                c.config["name"] = new_name
                write_json(c.path("config.json"), c.config)
            self._release_name(old_name, c.id)
        return c

    def delete(self, cid):
        """Remove a container's directory (the caller undid everything else).

        Under the container's lock, so that a monitor still recording an exit
        (Container.update) cannot write into the directory while it goes.
        The directory is first renamed to a trash name (one atomic step: the
        container no longer exists), then emptied; a removal killed halfway
        leaves only trash, which the next command that lists containers
        removes (ids()).  Needs no free space."""
        d = self.container_dir(cid)
        trash = os.path.join(self.containers, f"{TRASH_PREFIX}{cid}.{os.getpid()}")
        try:
            with self.container_lock(cid):
                name = self._recorded_name(cid)
                os.rename(d, trash)
                fault_point("rm-renamed")
                remove_tree(trash)  # the lock file too: our descriptor stays valid
        except FileNotFoundError:  # already gone
            return
        if os.path.exists(trash):
            raise ContainError(f"removing {trash}: directory not empty "
                               "(is something mounted there?)")
        if name:    # a link left stale is harmless; this keeps names/ from growing
            with self.lock():
                self._release_name(name, cid)

    def _recorded_name(self, cid):
        try:
            name = read_json(os.path.join(self.container_dir(cid), "config.json"))["name"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return name if isinstance(name, str) and check_name_ok(name) else None


class DamagedRecord(ContainError):
    """A container record that cannot be read; `rm -f` still removes it."""


def _remedy(cid):
    return f"`contain rm -f {cid[:12]}` removes the container and all it holds"


def _check_object(value):
    return is_dict_of(value)


def _check_config(value):
    problem = is_dict_of(value)
    if problem is None and not isinstance(value.get("name"), str):
        return "no container name in it"
    return problem


def _from_config(cfg):
    return {"name": cfg.get("name") if isinstance(cfg.get("name"), str) else "",
            "cgroup_parent": cfg.get("cgroup_parent")}


def _from_bundle(cfg):
    """Name and cgroup parent from an OCI config.json or the core's record
    (the name is in their annotations, the parent in linux.cgroupsPath)."""
    ann = cfg.get("annotations") if isinstance(cfg.get("annotations"), dict) else {}
    out = {"name": ann.get("io.contain.name") if isinstance(ann.get("io.contain.name"), str)
           else ""}
    lx = cfg.get("linux") if isinstance(cfg.get("linux"), dict) else {}
    path = lx.get("cgroupsPath")
    if isinstance(path, str) and path.count("/") >= 2:
        out["cgroup_parent"] = path.strip("/").rsplit("/", 1)[0]
    cgroup = cfg.get("cgroup")             # the core's record: [parent, name]
    if isinstance(cgroup, list) and len(cgroup) == 2 and isinstance(cgroup[0], str):
        out["cgroup_parent"] = cgroup[0]
    return out


def _empty_trash(path):
    """Finish a removal that was killed: unless its remover still runs
    (it holds the lock inside), remove the trash directory."""
    try:
        fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        fd = -1
    try:
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
        remove_tree(path)
    finally:
        if fd >= 0:
            os.close(fd)


def check_name_ok(name):
    return bool(name) and name[0] in NAME_FIRST and all(c in NAME_CHARS for c in name)


def check_name(name):
    if not check_name_ok(name):
        raise UsageError(f"Invalid container name ({name}), only "
                         "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if len(name) > NAME_MAX:
        raise UsageError(f"container name too long ({len(name)} characters, "
                         f"at most {NAME_MAX})")


def new_id():
    return os.urandom(32).hex()


def runtime_root(store):
    """Where the runtime core keeps the records of the engine's containers
    (`contain oci --root STATE/runtime list` shows them)."""
    return os.path.join(store.root, "runtime")
