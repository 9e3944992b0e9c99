"""The parent side of a container: create, start, run, stop, kill, rm.

Every setup step registers its undo before the next step runs (Setup), and
every resource a container holds is named after its id, so teardown() can
undo all of them from the record alone, even after a crash: the cgroup, the
network (veth, rules, address lease) and the container's directory.  The
root filesystem is mounted inside the container's own mount namespace, so it
vanishes with the container's last process and never needs unmounting.

How a container is born: the engine writes the container's config.json
(generate.py: Docker's defaults, the image, the flags) into
containers/<id>/bundle/, then asks the runtime core to create it in
process (core.lifecycle.create, its records under STATE/runtime), without
the wait for `start`: the core calls back once the namespaces exist
(network.attach moves the veth in) and returns when the command runs.
"""

import _signal   # (the C module under signal: signal builds enums, ~0.5 ms, on import)
import errno
import fcntl
import os
import time

from . import state
from .state import fault_point, runtime_root
from ..errors import Conflict, ContainError, UsageError
from ..clock import now

class Setup:
    """An undo stack: each step registers how to undo itself."""

    def __init__(self, log=None):
        self.undo = []
        self.log = log

    def push(self, what, fn, *args):
        self.undo.append((what, fn, args))

    def rollback(self):
        errors = []
        while self.undo:
            what, fn, args = self.undo.pop()
            try:
                if self.log:
                    self.log(what)
                fn(*args)
            except Exception as e:  # keep undoing the rest
                errors.append(f"{what}: {e}")
        return errors

    def commit(self):
        self.undo = []


# ----------------------------------------------------------------- cgroups
def cgroup_driver():
    from ..core import cgroups
    return cgroups.open_driver()


def cgroup_name(c):
    return c.id


def cgroup_parent(c):
    """--cgroup-parent (default contain) as the core reads linux.cgroupsPath
    (lifecycle.cgroup_location: no empty or "." parts), so that both halves
    name the same directories."""
    parent = c.config.get("cgroup_parent") or "contain"
    return "/".join(p for p in parent.split("/") if p not in ("", "."))


# ------------------------------------------------------------------- create
def create(store, cfg, log=None):
    """Record a new container and prepare its root filesystem and cgroup."""
    cfg.setdefault("id", state.new_id())
    cfg.setdefault("name", random_name(store))
    cfg.setdefault("created", now())
    cfg.setdefault("hostname", cfg["id"][:12])
    check_userns(cfg)
    c = store.create(cfg, {})
    setup = Setup(log)
    setup.push("removing the container record", store.delete, c.id)
    try:
        if log:
            log(f"created container {c.id[:12]} ({c.name})")
        check_limits(c)
        prepare_rootfs(c, setup, log)
        prepare_userns(c, setup, log)
        from . import volumes
        setup.push("removing anonymous volumes", volumes.remove_anonymous, store, c, c.id)
        volumes.prepare(c, log)
    except BaseException:
        setup.rollback()
        raise
    return c


def prepare_rootfs(c, setup, log):
    """A tarball is unpacked into the container's dir; an image gets an
    upper and work dir for its overlay (same filesystem, checked)."""
    rootfs = c.config["rootfs"]
    if rootfs["type"] == "tar":
        from .unpack import safe_extract
        dest = c.path("rootfs")
        os.mkdir(dest)
        if log:
            log(f"unpacking {rootfs['path']} into {dest}")
        try:
            safe_extract(rootfs["path"], dest, refuse_devices=True)
        except OSError as e:
            raise ContainError(f"unpacking {rootfs['path']}: {e.strerror or e}") from None
    elif rootfs["type"] == "image":
        for d in ("upper", "work", "rootfs"):
            os.mkdir(c.path(d), 0o755)
        upper, work = os.stat(c.path("upper")), os.stat(c.path("work"))
        if upper.st_dev != work.st_dev:
            raise ContainError(f"overlay: upper dir {c.path('upper')} and work dir "
                               f"{c.path('work')} are on different filesystems")


# ---------------------------------------------------------- user namespaces
def userns_wanted(cfg):
    """The parsed --userns value of a configuration: None or {'size': N}."""
    value = (cfg.get("security") or {}).get("userns")
    if value in (None, "", "host"):
        return None
    from ..core.security import parse_userns
    return parse_userns(value)


def check_userns(cfg):
    """Refuse what --userns=auto cannot give, before anything is made."""
    if not userns_wanted(cfg):
        return
    if (cfg.get("security") or {}).get("privileged"):
        raise UsageError("--privileged cannot be used with --userns=auto "
                         "(use --userns=host)")
    if (cfg.get("network") or {}).get("mode") == "host":
        raise UsageError("--network host cannot be used with --userns=auto: the host's "
                         "network namespace is not the container root's to configure")


def prepare_userns(c, setup, log):
    """--userns=auto: reserve a range of host ids (the container's root is
    its first id) and make the root filesystem the container root's own.

      image:      the layers are idmapped in the child (nothing changes on
                  disk); the container's upper dir is chowned to the range's
                  first id, so what the container writes lands owned by it;
      --rootfs DIR: idmapped in the child; refused where the filesystem has
                  no idmapped mounts (contain never chowns the user's dir);
      tarball:    idmapped; or, without idmapped mounts, the private
                  unpacked copy is chowned into the range (shift_ownership).
    The range is recorded in the state (and in STATE_ROOT/userns.json until
    rm releases it)."""
    want = userns_wanted(c.config)
    if not want:
        return
    from ..core import security
    start, size = security.allocate_id_range(c.store.root, c.id, want["size"])
    setup.push("releasing the user id range", security.release_id_range,
               c.store.root, c.id)
    rootfs = c.config["rootfs"]
    paths = rootfs["layers"] if rootfs["type"] == "image" else \
        [rootfs["path"] if rootfs["type"] == "dir" else c.path("rootfs")]
    mode = "idmap" if all(security.idmapped_mount_supported(p) for p in paths) else None
    if mode is None and rootfs["type"] == "tar":
        if log:
            log(f"no idmapped mounts for {paths[0]}: chowning it into {start}-{start + size - 1}")
        security.shift_ownership(c.path("rootfs"), start, start)
        mode = "shifted"
    elif mode is None:
        what = "the image's layers" if rootfs["type"] == "image" else f"--rootfs {paths[0]}"
        raise ContainError(f"--userns=auto: {what}: this kernel or filesystem has no "
                           "idmapped mounts (Linux 5.12+ on ext4, xfs, btrfs, tmpfs...); "
                           "a --rootfs tarball works without them")
    if rootfs["type"] == "image":
        os.chown(c.path("upper"), start, start)
    if log:
        log(f"user namespace: container root is host uid/gid {start} ({size} ids, "
            + ("root filesystem idmapped" if mode == "idmap" else "root filesystem chowned")
            + (f", upper dir owned by {start})" if rootfs["type"] == "image" else ")"))
    c.update(userns={"start": start, "size": size, "rootfs": mode})


def check_limits(c):
    """Refuse, at create, limits Docker refuses or this host cannot apply
    (the cgroup itself is made by the core at every start)."""
    from ..core.cgroups.limits import check_limits as docker_rules
    limits = docker_rules(c.config.get("limits") or {})
    cgroup_driver().check(limits)


# ------------------------------------------------------------------ spawn
def write_etc_files(c, netinfo=None):
    """/etc/hostname, /etc/hosts and /etc/resolv.conf for the container."""
    cfg = c.config
    hostname = cfg["hostname"]
    files = {"/etc/hostname": hostname + "\n"}
    net = cfg.get("network") or {}
    from . import etcfiles
    files["/etc/hosts"] = etcfiles.hosts_for(c, netinfo)
    files["/etc/resolv.conf"] = etcfiles.resolv_for(c)
    if net.get("mode") == "host":
        files.pop("/etc/hostname")
    out = {}
    uns = c.state.get("userns")
    for target, text in files.items():
        path = c.path(os.path.basename(target))
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)  # readable whatever our umask
        if uns:  # the container's root owns them, as it would without a user namespace
            os.chown(path, uns["start"], uns["start"])
        out[target] = path
    return out


def spawn(store, c, log=None, stdio=None, tty=False, netinfo=None, attach_network=None):
    """config.json for c, then the core creates and runs it in process.
    Returns the core's Process (pid, terminal master); raises ContainError
    or CommandError after undoing what the core made."""
    from . import generate
    from ..core import lifecycle
    config = generate.config_for(c, tty, netinfo)
    bundle = generate.write_bundle(c, config)
    root = runtime_root(store)
    lifecycle.delete(root, c.id, force=True)      # a record left by a crash
    opts = lifecycle.Options(wait_start=False, stdio=stdio, want_master=tty,
                             on_namespaces=attach_network, log=log,
                             cgroup_driver=cgroup_driver())
    _, proc = lifecycle.create(root, c.id, bundle, opts)
    return proc


def exit_code_of(status):
    """Docker's exit code from a wait status: the code, or 128+N on signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def record_started(c, proc, netinfo=None):
    info = state.proc_start_time(proc.pid)
    fields = dict(pid=proc.pid, start_time=info[0] if info else None,
                  boot_id=state.boot_id(), started_at=now(), finished_at=None,
                  exit_code=None, error=None, oom_killed=False, restarting=False,
                  spawning=False,
                  monitor_pid=os.getpid(),
                  monitor_start=state.proc_start_time(os.getpid())[0])
    if netinfo is not None:
        fields["network"] = netinfo
    c.update(**fields)


def record_exit(c, code, oom=False):
    c.update(pid=0, finished_at=now(), exit_code=code, oom_killed=bool(oom),
             restarting=False)


# ------------------------------------------------------------- networking
def network_prepare(store, c, log):
    """(netinfo, attach callable) for the container's network mode."""
    net = c.config.get("network") or {"mode": "none"}
    mode = net.get("mode", "none")
    own_stack = mode not in ("none", "host") and not mode.startswith("container:")
    if net.get("publish") and not own_stack:
        if mode != "host":
            raise ContainError(f"conflicting options: port publishing and --network {mode}")
        os.write(2, b"contain: warning: published ports are discarded in host network mode\n")
    if mode in ("none", "host"):
        return {"mode": mode}, None
    if mode.startswith("container:"):
        other = store.find(mode.split(":", 1)[1])
        if not other.running:
            raise ContainError(f"cannot join network of container {other.name}: "
                               "it is not running")
        return {"mode": mode, "container_pid": other.state["pid"],
                "container_id": other.id}, None
    from . import network
    opts = dict(net, name=c.name, hostname=c.config["hostname"], hosts_path=c.path("hosts"),
                exposed_ports=c.config.get("exposed_ports"))
    # recorded before the lease exists: a crash from here on leaves a record
    # that tells teardown to release by the container's id
    c.update(network={"mode": mode, "attach": True, "pending": True})
    netinfo = network.prepare(network.NetworkStore(store.root), c.id, opts, log=log)
    netinfo["attach"] = True
    c.update(network=netinfo)       # the lease and ports, before any veth or rule
    fault_point("leased")

    def attach(pid):
        network.attach(netinfo, pid, log=log)
        fault_point("attached")
    return netinfo, attach


def network_teardown(store, c, removing=False):
    """Release the network the record names; a pending record (crash before
    the lease was recorded) or a damaged one: everything held under the id.
    removing: the container goes for good (see network.detach)."""
    netinfo = c.state.get("network")
    if c.damaged is None and not (netinfo and netinfo.get("attach")):
        return
    from . import network
    known = netinfo if netinfo and netinfo.get("ip") else None
    network.detach(network.NetworkStore(store.root), c.id, known, removing=removing)


# --------------------------------------------------------------- lifecycle
def start_process(store, c, log=None, stdio=None, tty=False):
    """Prepare the network and have the core start PID 1; undo all on failure.

    Each resource is in the record before it is made: `spawning` and this
    monitor's pid first, then the network before its lease (network_prepare),
    the cgroup in the core's record before the cgroup (core.lifecycle), so
    that after a kill -9 at any step `ps` shows the container dead and
    `rm -f` finds and releases all of it."""
    me = state.proc_start_time(os.getpid())
    c.update(spawning=True, monitor_pid=os.getpid(), monitor_start=me[0] if me else None,
             boot_id=state.boot_id())
    setup = Setup(log)
    try:
        netinfo, attach = network_prepare(store, c, log)
        if attach:
            setup.push("releasing network", network_teardown, store, c)
        proc = spawn(store, c, log, stdio, tty, netinfo, attach)
    except BaseException:
        setup.rollback()
        try:
            c.update(spawning=False)
        except (OSError, ContainError):
            pass
        raise
    fault_point("spawned")
    record_started(c, proc, netinfo)
    fault_point("started")
    return proc


def cleanup_after_exit(store, c, log=None, removing=False):
    """Release what only a running container needs: cgroup, network.  The
    network goes last: its veth dies with the container's network namespace,
    which the kernel frees some milliseconds after the last process (and
    detach waits for that, unless removing: see network.detach)."""
    from ..core import lifecycle
    errors, released = [], set()

    def runtime_record():
        rec = lifecycle.delete(runtime_root(store), c.id, True)
        if rec is not None and rec.data.get("cgroup") == [cgroup_parent(c), cgroup_name(c)]:
            released.add("cgroup")      # (the record named it: delete removed it)

    def cgroup():
        if "cgroup" not in released:    # no runtime record, or a damaged one
            cgroup_driver().destroy(cgroup_parent(c), cgroup_name(c))

    for what, fn in (("removing the runtime record", runtime_record),
                     ("removing cgroup", cgroup),
                     ("releasing network", lambda: network_teardown(store, c, removing))):
        if log:
            log(what)
        try:
            fn()
        except Exception as e:
            errors.append(f"{what}: {e}")
    return errors


def teardown(store, c, log=None, volumes=False):
    """Undo everything a container holds, from its record alone (idempotent);
    its anonymous volumes too with `rm -v` (volumes) or --rm."""
    if c.damaged is None:
        try:
            c.reload()      # what a crashed monitor recorded since c was read
        except (OSError, ContainError):
            pass
    errors = cleanup_after_exit(store, c, log, removing=True)
    fault_point("rm-released")
    if c.damaged is not None or \
            (c.config.get("security") or {}).get("userns") not in (None, "", "host"):
        if log:
            log("releasing the user id range")
        try:
            from ..core.security import release_id_range
            release_id_range(store.root, c.id)
        except Exception as e:
            errors.append(f"releasing the user id range: {e}")
    try:
        store.delete(c.id)
    except ContainError as e:
        errors.append(str(e))
    if volumes or c.config.get("auto_remove"):
        try:
            from .volumes import remove_anonymous
            remove_anonymous(store, c)
        except ContainError as e:
            errors.append(str(e))
    if errors:
        raise ContainError(f"removing container {c.id[:12]}: " + "; ".join(errors))


def remove(store, ref, force=False, log=None, volumes=False):
    c = store.find(ref, damaged=True)
    if c.damaged is not None:
        return remove_damaged(store, c, force, log)
    with store.container_lock(c.id):
        c.reload()
        if c.running:
            if not force:
                raise Conflict(f"You cannot remove a running container {c.id}. "
                               "Stop the container before attempting removal or force remove")
            c.state["stop_requested"] = True
            save_hint(c)
            signal_pid1(c, _signal.SIGKILL)
            fault_point("rm-signalled")
            wait_gone(c, 10)
    # The monitor records the exit in the container's directory: let it
    # finish before that directory goes.
    wait_monitor_gone(c, 10)
    teardown(store, c, log, volumes)
    return c


def save_hint(c):
    """Save a state change that only steers the monitor (stop_requested):
    on a full disk removal goes on without it."""
    try:
        c.save()
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise


def remove_damaged(store, c, force, log=None):
    """`rm` of a container whose record cannot be read: its process is
    found through the runtime core's record (and its cgroup), its monitor as
    that process's parent; then everything held under its id goes."""
    from ..core import lifecycle
    from ..core import state as core_state
    rec = core_state.Record(runtime_root(store), c.id)
    try:
        rec.load()
    except ContainError:
        rec.data = {}
    if rec.alive() and not force:
        raise Conflict(f"You cannot remove a running container {c.id}. "
                       "Stop the container before attempting removal or force remove")
    monitor = _parent_if_monitor(rec.pid) if rec.alive() else None
    if log:
        log(f"{c.damaged}: removing what is held under {c.id[:12]}")
    lifecycle.delete(runtime_root(store), c.id, force=True)   # kills PID 1 and its cgroup
    if monitor:
        c.state = {"monitor_pid": monitor[0], "monitor_start": monitor[1],
                   "boot_id": state.boot_id()}
        if not wait_monitor_gone(c, 10):
            os.kill(monitor[0], _signal.SIGKILL)
            wait_monitor_gone(c, 5)
        c.state = {}
    teardown(store, c, log)
    return c


def _parent_if_monitor(pid):
    """(pid, start time) of pid's parent if it is a contain monitor (or a
    foreground `contain run`), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        with open(f"/proc/{ppid}/cmdline", "rb") as f:
            cmdline = f.read()
    except (OSError, ValueError, IndexError):
        return None
    if b"contain" not in cmdline:
        return None
    info = state.proc_start_time(ppid)
    return (ppid, info[0]) if info else None


def wait_monitor_gone(c, timeout):
    """Wait until the container's monitor process has exited (or timeout)."""
    since = time.monotonic()
    while time.monotonic() < since + timeout:
        pid = c.state.get("monitor_pid")
        if not pid or pid == os.getpid() or not state.process_alive(
                pid, c.state.get("monitor_start"), c.state.get("boot_id")):
            return True
        _pause(since)
    return False


def signal_pid1(c, sig):
    """Send sig to the container's PID 1, if it is the very process we
    started (pid and start time checked: never a reused pid, never pid 0,
    which would be our own process group).  False if it is gone."""
    pid = c.state.get("pid")
    if not pid or pid <= 0 or not state.process_alive(pid, c.state.get("start_time"),
                                                      c.state.get("boot_id")):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    from .control import thaw_after_signal
    thaw_after_signal(c)    # a paused container acts on no signal
    return True


def kill_container(c, sig):
    if not signal_pid1(c, sig):
        raise Conflict(f"Cannot kill container: {c.name}: container {c.id[:12]} is not running")


def wait_gone(c, timeout):
    """Wait until the container's PID 1 is gone (not a zombie) or timeout."""
    since = time.monotonic()
    while time.monotonic() < since + timeout:
        if not state.process_alive(c.state.get("pid"), c.state.get("start_time"),
                                   c.state.get("boot_id")):
            return True
        _pause(since)
    return False


def _pause(since):
    """Between two looks at a process or record: every 2 ms for the first
    0.2 s (a killed container is gone, and its exit recorded, that soon),
    then every 50 ms."""
    time.sleep(0.002 if time.monotonic() - since < 0.2 else 0.05)


def stop(store, ref, timeout=None, log=None):
    """Docker's stop: StopSignal, wait `timeout` seconds, then SIGKILL."""
    c = store.find(ref)
    # asked even when not running: a container between two restarts must
    # not be restarted again
    c.update(stop_requested=True)
    if not c.running:
        return c
    if timeout is None:
        timeout = c.config.get("stop_timeout", 10)
    sig = c.config.get("stop_signal") or _signal.SIGTERM
    if log:
        log(f"sending signal {sig} to {c.id[:12]}")
    signal_pid1(c, sig)
    fault_point("stop-signalled")
    if not wait_gone(c, timeout):
        if log:
            log(f"still running after {timeout}s: sending SIGKILL")
        signal_pid1(c, _signal.SIGKILL)
        wait_gone(c, 10)
    wait_recorded(c, 5)
    return c


def wait_recorded(c, timeout):
    """Wait until the monitor recorded the exit (finished_at)."""
    since = time.monotonic()
    while time.monotonic() < since + timeout:
        try:
            c.reload()
        except (OSError, ContainError):
            return False
        if c.state.get("finished_at") and not c.running:
            return True
        _pause(since)
    return False


# ---------------------------------------------------------------- names
_LEFT = ("admiring", "bold", "brave", "calm", "clever", "eager", "epic", "festive",
         "focused", "gallant", "happy", "jolly", "keen", "kind", "lucid", "modest",
         "nifty", "quirky", "serene", "sharp", "stoic", "sweet", "tender", "vibrant")
_RIGHT = ("babbage", "curie", "darwin", "dijkstra", "euler", "fermi", "gauss",
          "hopper", "kepler", "knuth", "lovelace", "mccarthy", "noether", "pascal",
          "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak")


def random_name(store):
    for _ in range(100):
        a, b, n = os.urandom(3)
        name = f"{_LEFT[a % len(_LEFT)]}_{_RIGHT[b % len(_RIGHT)]}"
        if store.name_owner(name):
            name = f"{name}{n % 100}"
        if not store.name_owner(name):
            return name
    return "c_" + os.urandom(6).hex()



def oom_killed(c, before=0):
    """Did the kernel's OOM killer kill a process of this container?"""
    try:
        cg = cgroup_driver().cgroup(cgroup_parent(c), cgroup_name(c))
        return cg.oom_kill_count() > before
    except (OSError, ContainError):
        return False


# ------------------------------------------------------ the CLI's entry points
def resolve_image(store, cfg, log=None):
    """Fill the configuration from the image (Docker's rules for Env,
    Entrypoint/Cmd, WorkingDir, User, StopSignal, ExposedPorts, Labels)."""
    if "rootfs" in cfg:
        cfg["argv"] = spec_argv(cfg)
        return cfg
    from . import images
    image = images.image_for_run(store.root, cfg["image"], cfg.get("pull", "missing"), log)
    merged = images.apply_image_config(image.config, cfg)
    cfg.update(merged)
    cfg["rootfs"] = {"type": "image", "image_id": image.id, "layers": image.layer_dirs}
    return cfg


def spec_argv(cfg):
    argv = list(cfg.get("argv") or [])
    if cfg.get("entrypoint"):
        argv = [cfg["entrypoint"]] + argv
    from .flags import validate_argv
    return validate_argv(argv)


def create_container(store, cfg, log=None):
    """`contain create`: the record, root filesystem and cgroup, no process."""
    resolve_image(store, cfg, log)
    if cfg.get("stop_signal") is None:
        cfg["stop_signal"] = _signal.SIGTERM
    if cfg.get("stop_timeout") is None:
        cfg["stop_timeout"] = 10
    return create(store, cfg, log)


def create_and_start(store, cfg, log=None):
    """`contain run -d`: create, then start under a detached monitor."""
    c = create_container(store, cfg, log)
    fault_point("created")
    try:
        from . import monitor
        with store.container_lock(c.id):
            c.lock_held = True  # the monitor records the start under our lock
            c = monitor.launch(store, c, log)
            c.lock_held = False
        return c
    except BaseException:
        fault_point("launch-failed")
        _remove_quietly(store, c)
        raise


def run(store, cfg, log=None):
    """`contain run` in the foreground; returns the container's exit code."""
    c = create_container(store, cfg, log)
    fault_point("created")
    remove_after = cfg.get("auto_remove")
    try:
        from .foreground import run_attached
        return run_attached(store, c, log, interactive=cfg.get("interactive"),
                            tty=cfg.get("tty"))
    except BaseException:
        remove_after = True  # a container that never ran leaves nothing behind
        raise
    finally:
        if remove_after:
            if log:
                log("removing container")
            _remove_quietly(store, c, log)


def _remove_quietly(store, c, log=None):
    try:
        teardown(store, c, log, volumes=True)
    except ContainError:
        pass


def start(store, ref, attach=False, log=None):
    """`contain start [-a]`: run a created or exited container again."""
    from . import monitor
    c = store.find(ref)
    # -a: a --rm container's record (its log, its exit code) stays until we
    # have read it: the monitor removes it only once no waiter is left
    waiting = join_waiters(c) if attach else None
    try:
        with store.container_lock(c.id):
            c.reload()
            if c.running:
                return 0 if attach else c
            c.state.update(stop_requested=False, error=None)
            c.save()
            offset = log_size(c)
            c.lock_held = True  # the monitor records the start under our lock
            c = monitor.launch(store, c, log)
            c.lock_held = False
        if not attach:
            return c
        show_logs(store, c.id, follow=True, offset=offset)
        return wait(store, c.id, waiting)
    finally:
        if waiting is not None:
            os.close(waiting)


WAITERS = "waiters"


def join_waiters(c):
    """A shared lock on the container's `waiters` file, held by `wait` and
    `start -a` while they need the record; None if the container is gone."""
    try:
        fd = os.open(c.path(WAITERS), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def wait_for_waiters(c):
    """Before a --rm container's record goes: until every `wait` and
    `start -a` has read the exit code (they hold waiters shared)."""
    try:
        fd = os.open(c.path(WAITERS), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)


def log_size(c):
    from .logs import LOG_NAME
    try:
        return os.path.getsize(c.path(LOG_NAME))
    except FileNotFoundError:
        return 0


def kill(store, ref, sig):
    c = store.find(ref)
    kill_container(c, sig)
    return c


def wait(store, ref, waiting=None):
    """`contain wait`: block until the container stops; its exit code.
    While waiting it holds the container's waiters lock (join_waiters), so
    that a --rm container is removed only after its exit code was read."""
    c = store.find(ref)
    fd = join_waiters(c) if waiting is None else None
    try:
        c.reload()
        while True:
            if not c.running:
                if c.state.get("started_at") and not c.state.get("finished_at"):
                    wait_recorded(c, 2)
                return c.exit_code
            time.sleep(0.05)
            c.reload()
    except FileNotFoundError:
        raise state.NotFound(f"No such container: {ref}") from None
    finally:
        if fd is not None:
            os.close(fd)


def show_logs(store, ref, follow=False, tail=None, since=None, timestamps=False, offset=0):
    from . import logs
    c = store.find(ref)

    def still_running():
        try:
            c.reload()
        except (OSError, ContainError):
            return False
        return c.running
    logs.show(c.path(logs.LOG_NAME), 1, 2, tail=tail, since=logs.parse_since(since),
              timestamps=timestamps, follow=follow, still_running=still_running,
              offset=offset)


