"""The parent side of a container: create, start, run, stop, kill, rm.

Every setup step registers its undo before the next step runs (Setup), and
every resource a container holds is named after its id, so teardown() can
undo all of them from the record alone, even after a crash: the cgroup, the
network (veth, rules, address lease) and the container's directory.  The
root filesystem is mounted inside the container's own mount namespace, so it
vanishes with the container's last process and never needs unmounting.

How a container is born (spawn):

    parent                                  child (PID 1 of the new PID ns)
    ------                                  -----
    cgroup, network plan, mount plan
    unshare(CLONE_NEWPID); fork()  ------>  join cgroup, unshare(mnt uts ipc net cgroup)
    setns(own PID ns) back                  "ready" ------------------------+
    read "ready" <----------------------------------------------------------+
    write uid_map/gid_map (--userns)
    attach network (veth, routes)
    write "g" ----------------------------> mounts, pivot_root, user, caps,
    read error pipe until EOF <-----------  seccomp, execve (EOF) or "error ..."
"""

import os
import signal
import time

from ..core import linux, mounts

from . import state
from ..errors import CommandError, Conflict, ContainError, UsageError
from ..clock import now

NAMESPACE_FLAGS = (linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC
                   | linux.CLONE_NEWNET | linux.CLONE_NEWCGROUP)


NAMESPACE_ORDER = ("pid", "uts", "mnt", "ipc", "net", "cgroup", "user")


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
            if self.log:
                self.log(what)
            try:
                fn(*args)
            except Exception as e:  # keep undoing the rest
                errors.append(f"{what}: {e}")
        return errors

    def commit(self):
        self.undo = []


def verbose_logger(enabled):
    if not enabled:
        return None

    def log(msg):
        os.write(2, f"[contain] {msg}\n".encode())
    return log


# ----------------------------------------------------------------- cgroups
_driver = None


def cgroup_driver():
    global _driver
    if _driver is None:
        from ..core import cgroups
        _driver = cgroups.open_driver()
    return _driver


def cgroup_name(c):
    return c.id


def cgroup_parent(c):
    return c.config.get("cgroup_parent") or "contain"


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
        prepare_rootfs(c, setup, log)
        prepare_userns(c, setup, log)
        prepare_cgroup(c, setup, log)
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


def prepare_cgroup(c, setup, log):
    limits = c.config.get("limits") or {}
    driver = cgroup_driver()
    parent = cgroup_parent(c)
    setup.push("removing cgroup", driver.destroy, parent, cgroup_name(c))
    if log:
        from ..core.cgroups import describe_limits
        desc = describe_limits(limits)
        log(f"creating cgroup {parent}/{c.id[:12]} (cgroup v{driver.version})"
            + (f"; applying cgroup limits: {desc}" if limits else ""))
    privileged = c.config.get("security", {}).get("privileged")
    cg = driver.create(parent, cgroup_name(c), limits, devices="all" if privileged else "default")
    if driver.version == 2 and not privileged:
        # cgroup v2 has no devices controller: a BPF program is its allow-list
        from ..core.security import attach_device_filter
        if log:
            log("attaching the device allow-list (BPF) to the cgroup")
        attach_device_filter(cg.dirs[0])
    return cg


# ------------------------------------------------------------------ spawn
class Process:
    """A running container process as the parent sees it."""

    def __init__(self, pid, master=None):
        self.pid, self.master = pid, master


def root_source(c):
    rootfs = c.config["rootfs"]
    if rootfs["type"] == "dir":
        return ("bind", rootfs["path"]), rootfs["path"]
    if rootfs["type"] == "tar":
        return ("bind", c.path("rootfs")), c.path("rootfs")
    from .images import overlay_mount_data
    data, cwd = overlay_mount_data(rootfs["layers"], c.path("upper"), c.path("work"))
    return ("overlay", data, cwd, len(rootfs["layers"])), c.path("rootfs")


def write_etc_files(c, netinfo=None):
    """/etc/hostname, /etc/hosts and /etc/resolv.conf for the container."""
    cfg = c.config
    hostname = cfg["hostname"]
    files = {"/etc/hostname": hostname + "\n"}
    net = cfg.get("network") or {}
    try:
        from . import network
        files["/etc/hosts"] = network.hosts_for(c, netinfo)
        files["/etc/resolv.conf"] = network.resolv_for(c)
    except ImportError:
        files["/etc/hosts"] = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                               f"ip6-loopback\n127.0.1.1\t{hostname}\n")
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


def launch_for(c, log, tty, netinfo=None):
    """The Launch (everything the child needs) for this container."""
    from ..core.init import Launch
    cfg = c.config
    driver = cgroup_driver()
    cgroup = driver.cgroup(cgroup_parent(c), cgroup_name(c))
    source, root = root_source(c)
    files = write_etc_files(c, netinfo)
    uns = c.state.get("userns")
    plan = mounts.build_plan(cfg, source, files, driver.version,
                             userns=uns["rootfs"] if uns else None)
    flags = NAMESPACE_FLAGS
    userns = {}
    if uns:
        flags |= linux.CLONE_NEWUSER
        host_plan, plan = mounts.split_plan(plan)
        userns = dict(userns=True, host_plan=host_plan, owner=(uns["start"], uns["start"]))
    join = []
    mode = (cfg.get("network") or {}).get("mode", "none")
    if mode == "host":
        flags &= ~(linux.CLONE_NEWNET | linux.CLONE_NEWUTS)
    elif mode.startswith("container:"):
        flags &= ~linux.CLONE_NEWNET
        other = netinfo["container_pid"]
        join.append((f"/proc/{other}/ns/net", linux.CLONE_NEWNET))
    sec = security_settings(c)
    return Launch(argv=cfg["argv"], env=default_env(cfg, tty), cwd=cfg.get("cwd"),
                  user=cfg.get("user"), hostname=cfg["hostname"], root=root, plan=plan,
                  unshare_flags=flags, join_ns=join, cgroup_procs=cgroup.join_files,
                  tty=tty, log=log, errfd=-1,
                  sync=bool(netinfo and netinfo.get("attach")) or bool(uns),
                  **userns, **sec)


def default_env(cfg, tty):
    """Docker's environment: PATH, HOSTNAME, TERM (with -t), then the image's
    and the user's variables (HOME is added in the child from /etc/passwd)."""
    from ..core.init import DEFAULT_PATH
    from .flags import merge_env
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={cfg['hostname']}"]
    if tty:
        base.append("TERM=xterm")
    return merge_env(base, cfg.get("env", []))


def security_settings(c):
    return security_settings_cfg(c.config)


def security_settings_cfg(cfg):
    """caps / no_new_privs / seccomp / init for the child (contain.security)."""
    out = {"init": bool(cfg.get("init"))}
    try:
        from ..core import security
    except ImportError:
        return out
    out.update(security.settings_for(cfg))
    return out


def spawn(c, log=None, stdio=None, tty=False, netinfo=None, attach_network=None):
    """Fork the container's PID 1 and wait until it has exec'd the command.

    stdio: (stdin, stdout, stderr) fds for the child (default: ours).
    Returns a Process; raises ContainError/CommandError if setup or exec
    failed (the child is reaped then).
    """
    launch = launch_for(c, log, tty, netinfo)
    from ..core.init import preload
    preload(tty, launch.caps is not None)
    maps = None
    if launch.userns:
        # A user namespace with the container's maps, for the idmapped
        # mounts the child makes before it has its own (made now: it forks
        # a helper, which must not be born in the container's PID namespace).
        from ..core import security
        uns = c.state["userns"]
        maps = [(0, uns["start"], uns["size"])]
        try:
            launch.userns_fd = security.open_userns(maps, maps)
        except OSError as e:
            raise ContainError(f"creating a user namespace: {e.strerror or e}") from None
    try:
        return _spawn(c, launch, log, stdio, tty, attach_network, maps)
    finally:
        if launch.userns_fd >= 0:
            os.close(launch.userns_fd)


def _spawn(c, launch, log, stdio, tty, attach_network, maps):
    errr, errw = os.pipe2(os.O_CLOEXEC)
    gor, gow = os.pipe2(os.O_CLOEXEC) if launch.sync else (-1, -1)
    launch.errfd, launch.gofd = errw, gor
    parent_sock = None
    if tty:
        import socket
        parent_sock, launch.ttysock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if log:
        flags = launch.unshare_flags | linux.CLONE_NEWPID
        log("creating namespaces: " + " ".join(n for n in NAMESPACE_ORDER
                                               if linux.NAMESPACES[n] & flags))

    # The child must be PID 1 of a new PID namespace: unshare it for our
    # children only, fork, then return to our own PID namespace so that our
    # later children (ip, iptables) are not born inside the container.
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.unshare(linux.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(errr)
                if gow >= 0:
                    os.close(gow)
                if parent_sock is not None:
                    parent_sock.close()
                if stdio:
                    for i, fd in enumerate(stdio):
                        if fd != i:
                            os.dup2(fd, i)
                from ..core.init import child_main
                child_main(launch)
            finally:
                os._exit(125)
        linux.setns(own_pidns, linux.CLONE_NEWPID)
    finally:
        os.close(own_pidns)
    os.close(errw)
    if gor >= 0:
        os.close(gor)
    if launch.ttysock is not None:
        launch.ttysock.close()
    proc = Process(pid)
    try:
        if launch.sync:
            line = _read_until(errr, b"\n")
            if line == b"ready\n":
                if maps:
                    write_maps(pid, maps, log)
                if attach_network:
                    attach_network(pid)
                os.write(gow, b"g")
            else:
                _child_failed(pid, line + _read_all(errr))
        if tty:
            import socket
            _, fds, _, _ = socket.recv_fds(parent_sock, 16, 1)
            if fds:
                proc.master = fds[0]
            parent_sock.close()
        report = _read_all(errr)
        if report:
            _child_failed(pid, report)
    except BaseException:
        _kill_and_reap(pid)
        if proc.master is not None:
            os.close(proc.master)
        raise
    finally:
        os.close(errr)
        if gow >= 0:
            os.close(gow)
    return proc


def write_maps(pid, maps, log=None):
    """The child's uid_map and gid_map: only a process outside its user
    namespace (and root in ours) may write them."""
    from ..core import security
    if log:
        log(f"writing uid_map and gid_map of {pid}: "
            + security.format_id_map(maps).strip().replace("\n", ", "))
    try:
        security.write_id_maps(pid, maps, maps)
    except OSError as e:
        raise ContainError(f"writing the user namespace's id maps: {e.filename}: "
                           f"{e.strerror}") from None


def _read_until(fd, sep):
    data = b""
    while not data.endswith(sep):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _child_failed(pid, report):
    """Turn the child's error record into the right exception."""
    _kill_and_reap(pid)
    parts = report.decode(errors="replace").split("\0")
    if len(parts) < 5 or parts[0] != "error":
        raise ContainError("container process failed during setup"
                           + (f": {report[:200]!r}" if report else ""))
    _, step, err, code, detail = parts[:5]
    code = int(code)
    message = f"{step}: {detail}" if detail else step
    if code in (126, 127):
        raise CommandError(message, code)
    raise ContainError(message)


def _kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def exit_code_of(status):
    """Docker's exit code from a wait status: the code, or 128+N on signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def record_started(c, proc, netinfo=None):
    info = state.proc_start_time(proc.pid)
    fields = dict(pid=proc.pid, start_time=info[0] if info else None,
                  boot_id=state.boot_id(), started_at=now(), finished_at=None,
                  exit_code=None, error=None, oom_killed=False, restarting=False,
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
    opts = dict(net, name=c.name, hostname=c.config["hostname"],
                exposed_ports=c.config.get("exposed_ports"))
    netinfo = network.prepare(network.NetworkStore(store.root), c.id, opts, log=log)
    netinfo["attach"] = True

    def attach(pid):
        network.attach(netinfo, pid, log=log)
    return netinfo, attach


def network_teardown(store, c):
    netinfo = c.state.get("network")
    if not netinfo or not netinfo.get("attach"):
        return
    from . import network
    network.detach(network.NetworkStore(store.root), c.id, netinfo)


# --------------------------------------------------------------- lifecycle
def start_process(store, c, log=None, stdio=None, tty=False):
    """Prepare the cgroup and network and spawn PID 1; undo all on failure."""
    setup = Setup(log)
    try:
        if not cgroup_driver().exists(cgroup_parent(c), cgroup_name(c)):
            prepare_cgroup(c, setup, log)  # made by create; re-made for a restart
        netinfo, attach = network_prepare(store, c, log)
        if attach:
            setup.push("releasing network", network_teardown_info, store, c, netinfo)
        proc = spawn(c, log, stdio, tty, netinfo, attach)
    except BaseException:
        setup.rollback()
        raise
    record_started(c, proc, netinfo)
    return proc


def network_teardown_info(store, c, netinfo):
    c.state["network"] = netinfo
    network_teardown(store, c)


def cleanup_after_exit(store, c, log=None):
    """Release what only a running container needs: network, cgroup."""
    errors = []
    for what, fn, args in (("releasing network", network_teardown, (store, c)),
                           ("removing cgroup", cgroup_driver().destroy,
                            (cgroup_parent(c), cgroup_name(c)))):
        if log:
            log(what)
        try:
            fn(*args)
        except Exception as e:
            errors.append(f"{what}: {e}")
    return errors


def teardown(store, c, log=None):
    """Undo everything a container holds, from its record alone (idempotent)."""
    errors = cleanup_after_exit(store, c, log)
    if (c.config.get("security") or {}).get("userns") not in (None, "", "host"):
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
    if errors:
        raise ContainError(f"removing container {c.id[:12]}: " + "; ".join(errors))


def remove(store, ref, force=False, log=None):
    c = store.find(ref)
    with store.container_lock(c.id):
        c.reload()
        if c.running:
            if not force:
                raise Conflict(f"You cannot remove a running container {c.id}. "
                               "Stop the container before attempting removal or force remove")
            c.state["stop_requested"] = True
            c.save()
            signal_pid1(c, signal.SIGKILL)
            wait_gone(c, 10)
    # The monitor records the exit in the container's directory: let it
    # finish before that directory goes.
    wait_monitor_gone(c, 10)
    teardown(store, c, log)
    return c


def wait_monitor_gone(c, timeout):
    """Wait until the container's monitor process has exited (or timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = c.state.get("monitor_pid")
        if not pid or pid == os.getpid() or not state.process_alive(
                pid, c.state.get("monitor_start"), c.state.get("boot_id")):
            return True
        time.sleep(0.01)
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
    return True


def kill_container(c, sig):
    if not signal_pid1(c, sig):
        raise Conflict(f"Cannot kill container: {c.name}: container {c.id[:12]} is not running")


def wait_gone(c, timeout):
    """Wait until the container's PID 1 is gone (not a zombie) or timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while time.monotonic() < deadline:
        if not state.process_alive(c.state.get("pid"), c.state.get("start_time"),
                                   c.state.get("boot_id")):
            return True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return False


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
    sig = c.config.get("stop_signal") or signal.SIGTERM
    if log:
        log(f"sending signal {sig} to {c.id[:12]}")
    signal_pid1(c, sig)
    if not wait_gone(c, timeout):
        if log:
            log(f"still running after {timeout}s: sending SIGKILL")
        signal_pid1(c, signal.SIGKILL)
        wait_gone(c, 10)
    wait_recorded(c, 5)
    return c


def wait_recorded(c, timeout):
    """Wait until the monitor recorded the exit (finished_at)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c.reload()
        except (OSError, ValueError):
            return False
        if c.state.get("finished_at") and not c.running:
            return True
        time.sleep(0.01)
    return False


# ---------------------------------------------------------------- names
_LEFT = ("admiring", "bold", "brave", "calm", "clever", "eager", "epic", "festive",
         "focused", "gallant", "happy", "jolly", "keen", "kind", "lucid", "modest",
         "nifty", "quirky", "serene", "sharp", "stoic", "sweet", "tender", "vibrant")
_RIGHT = ("babbage", "curie", "darwin", "dijkstra", "euler", "fermi", "gauss",
          "hopper", "kepler", "knuth", "lovelace", "mccarthy", "noether", "pascal",
          "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak")


def random_name(store):
    taken = set(store.names())
    for _ in range(100):
        a, b, n = os.urandom(3)
        name = f"{_LEFT[a % len(_LEFT)]}_{_RIGHT[b % len(_RIGHT)]}"
        if name in taken:
            name = f"{name}{n % 100}"
        if name not in taken:
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
    from . import images, registry
    image = registry.image_for_run(store.root, cfg["image"], cfg.get("pull", "missing"), log)
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
        cfg["stop_signal"] = signal.SIGTERM
    if cfg.get("stop_timeout") is None:
        cfg["stop_timeout"] = 10
    return create(store, cfg, log)


def create_and_start(store, cfg, log=None):
    """`contain run -d`: create, then start under a detached monitor."""
    c = create_container(store, cfg, log)
    try:
        from . import monitor
        with store.container_lock(c.id):
            c.lock_held = True  # the monitor records the start under our lock
            c = monitor.launch(store, c, log)
            c.lock_held = False
        return c
    except BaseException:
        _remove_quietly(store, c)
        raise


def run(store, cfg, log=None):
    """`contain run` in the foreground; returns the container's exit code."""
    c = create_container(store, cfg, log)
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
            _remove_quietly(store, c)


def _remove_quietly(store, c):
    try:
        teardown(store, c)
    except ContainError:
        pass


def start(store, ref, attach=False, log=None):
    """`contain start [-a]`: run a created or exited container again."""
    from . import monitor
    c = store.find(ref)
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
    return wait(store, c.id)


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


def wait(store, ref):
    """`contain wait`: block until the container stops; its exit code."""
    c = store.find(ref)
    while True:
        if not c.running:
            if c.state.get("started_at") and not c.state.get("finished_at"):
                if not wait_recorded(c, 2):
                    return c.exit_code
            return c.exit_code
        time.sleep(0.05)
        try:
            c.reload()
        except (OSError, ValueError):
            return c.exit_code


def show_logs(store, ref, follow=False, tail=None, since=None, timestamps=False, offset=0):
    from . import logs
    c = store.find(ref)

    def still_running():
        try:
            c.reload()
        except (OSError, ValueError):
            return False
        return c.running
    logs.show(c.path(logs.LOG_NAME), 1, 2, tail=tail, since=logs.parse_since(since),
              timestamps=timestamps, follow=follow, still_running=still_running,
              offset=offset)


