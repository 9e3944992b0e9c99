"""The OCI runtime's operations on a bundle: create, start, run, state,
kill, delete, pause, resume, ps, list, update (runc's verbs).

A container's life, as the runtime spec draws it:

    create   cgroup, namespaces, mounts, the user and everything else the
             process needs; it stops just before execve, blocked opening
             <root>/<id>/exec.fifo.  `create` returns: the init is then the
             child of the caller's subreaper (conmon, the containerd shim),
             which reaps it for its exit status.  No contain process stays.
    start    opens the fifo: the init runs startContainer hooks and execs.
    kill     signals the init (or, with --all, every process of the cgroup).
    delete   after the process is gone: the cgroup, poststop hooks, the record.

Every setup step records what it made before the next one runs (the
cgroup's path is in the record before the cgroup exists), so `delete
--force` undoes all of it from the record alone, after any crash.
"""

import _signal   # (the C module under signal: signal builds enums, ~0.5 ms, on import)
import os
import time

from . import cgroups, linux, spec, state
from .spawn import spawn
from ..clock import now
from ..errors import Conflict, ContainError, NotFound, UsageError


# ------------------------------------------------------------ cgroups
def cgroup_location(cgroups_path, cid):
    """(parent, name) in every hierarchy for linux.cgroupsPath, read as runc
    does: absolute from the hierarchy's root; relative, or empty (then the
    id is the name), below the caller's own cgroup."""
    if cgroups_path and ":" in cgroups_path and not cgroups_path.startswith("/"):
        raise UsageError(f"cgroupsPath {cgroups_path!r} is in systemd's slice:prefix:name "
                         "form: contain has no systemd cgroup driver (use a path)")
    path = cgroups_path or cid
    if not path.startswith("/"):
        path = own_cgroup().rstrip("/") + "/" + path
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UsageError(f"invalid cgroupsPath {cgroups_path!r}: use [/PARENT]/NAME (a cgroup "
                         "of its own, never the hierarchy's root)")
    return "/".join(parts[:-1]), parts[-1]


def own_cgroup():
    """This process's cgroup path (the unified one, else the memory or the
    first v1 hierarchy's)."""
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                paths[c] = path
    return paths.get("memory") or paths.get("pids") or paths.get("") or "/"


def driver():
    return cgroups.open_driver(all_hierarchies=True)


def driver_for(rec):
    """The driver the record's cgroup was made with: every hierarchy (ours),
    or an engine's that joins the controllers' hierarchies only."""
    return cgroups.open_driver(all_hierarchies=rec.data.get("cgroup_all_hierarchies", True))


def cgroup_of(rec):
    parent, name = rec.data["cgroup"]
    return driver_for(rec).cgroup(parent, name)


# runc's AllowedDevices: whatever config.json says, the nodes every
# container gets (and mknod of any node) stay usable, as in runc.
ALLOWED_DEVICES = tuple(
    {"allow": True, "type": t, "major": ma, "minor": mi, "access": a}
    for t, ma, mi, a in (("c", None, None, "m"), ("b", None, None, "m"), ("c", 1, 3, "rwm"),
                         ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
                         ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 5, 1, "rwm"),
                         ("c", 136, None, "rwm"), ("c", 5, 2, "rwm")))


def device_rules(resources, devices):
    """The cgroup's device rules: config.json's, then its linux.devices and
    the allowed defaults (None when config.json sets none: no filter)."""
    rules = (resources or {}).get("devices")
    if rules is None:
        return None
    # a node config.json gives its own rule keeps that rule's access (Docker's
    # --device HOST:CTR:r stays read-only)
    ruled = {(r.get("type"), r.get("major"), r.get("minor")) for r in rules}
    extra = [{"allow": True, "type": d["type"] if d["type"] != "u" else "c",
              "major": d.get("major"), "minor": d.get("minor"), "access": "rwm"}
             for d in devices or () if d.get("type") in ("c", "b", "u")
             and ("c" if d["type"] == "u" else d["type"], d.get("major"),
                  d.get("minor")) not in ruled]
    return list(rules) + extra + list(ALLOWED_DEVICES)


def make_cgroup(parent, name, resources, devices=(), log=None, d=None):
    """The container's cgroup with config.json's resources and devices."""
    from .cgroups.limits import describe_limits, limits_from_spec
    d = d or driver()
    limits, _, raw = limits_from_spec(resources or {}, d.version)
    devices = device_rules(resources, devices)
    if log:
        log(f"creating cgroup {parent}/{name} (cgroup v{d.version})"
            + (f"; applying cgroup limits: {describe_limits(limits)}"
               if limits else ""))
    cg = d.create(parent, name, limits, devices=devices if devices is not None else "all")
    try:
        if d.version == 2 and devices is not None:
            from .security import attach_device_filter, rules_from_spec
            attach_device_filter(cg.dirs[0], rules_from_spec(devices))
        cgroups.write_raw(cg, raw)
    except OSError as e:
        d.destroy(parent, name)
        raise ContainError(f"configuring cgroup {parent}/{name}: {e.filename or ''}: "
                           f"{e.strerror}") from None
    except BaseException:
        d.destroy(parent, name)
        raise
    return cg


# ------------------------------------------------------------- create
class Options:
    """How to create: runc's flags, plus what an engine driving the core in
    process can add (stdio, a callback when the namespaces exist)."""

    def __init__(self, pid_file=None, console_socket=None, preserve_fds=0, no_pivot=False,
                 wait_start=True, stdio=None, want_master=False, on_namespaces=None,
                 log=None, cgroup_driver=None):
        self.pid_file, self.console_socket = pid_file, console_socket
        self.preserve_fds, self.no_pivot = preserve_fds, no_pivot
        self.wait_start, self.stdio, self.want_master = wait_start, stdio, want_master
        self.on_namespaces, self.log = on_namespaces, log
        # the engine's own driver (it skips the hybrid cgroup2 tree for speed)
        self.cgroup_driver = cgroup_driver


def create(root, cid, bundle_dir, opts=None):
    """`create`: everything up to the user's command, which waits for
    `start` (opts.wait_start) or runs at once (`run`).  Returns (Record,
    spawn.Process)."""
    opts = opts or Options()
    bundle = spec.load(bundle_dir)
    rec = state.Record(root, cid)
    os.makedirs(root, mode=0o700, exist_ok=True)
    try:
        os.mkdir(rec.dir, 0o700)
    except FileExistsError:
        raise Conflict(f"container with id {cid} already exists") from None
    try:
        with rec.lock():
            proc = _create(rec, bundle, opts)
    except BaseException:
        try:
            destroy(rec)
        except ContainError as e:     # the first error is the one to report
            warn(f"undoing a failed create: {e}")
        raise
    return rec, proc


def _create(rec, bundle, opts):
    config, log = bundle.config, opts.log
    lx = config.get("linux") or {}
    rec.data = {"ociVersion": config["ociVersion"], "id": rec.id, "bundle": bundle.path,
                "rootfs": bundle.rootfs, "created": now(),
                "annotations": config.get("annotations") or {},
                "owner": "", "pid": 0,
                # what start and delete run later (config.json is not read again)
                "hooks": {"poststart": spec.hooks(config, "poststart"),
                          "poststop": spec.hooks(config, "poststop")}}
    parent, name = cgroup_location(lx.get("cgroupsPath"), rec.id)
    rec.update(cgroup=[parent, name],                # recorded before it exists
               cgroup_all_hierarchies=getattr(opts.cgroup_driver, "all_hierarchies", True))
    cg = make_cgroup(parent, name, lx.get("resources"), lx.get("devices"), log,
                     opts.cgroup_driver)
    launch = launch_for(bundle, rec, cg, opts)
    if opts.wait_start:
        # Writable by all (runc's 0622): the init reopens it through
        # /proc/self/fd as the container's user, which in a user namespace is
        # not the host's root; the 0700 state directory keeps others out.
        os.mkfifo(rec.path("exec.fifo"), 0o600)
        os.chmod(rec.path("exec.fifo"), 0o622)
        if "user" in spec.namespaces(config):
            # the init reopens it as the container's root (runc chowns it too)
            os.chown(rec.path("exec.fifo"), _host_id(lx.get("uidMappings")),
                     _host_id(lx.get("gidMappings")))
        launch.fifo_fd = os.open(rec.path("exec.fifo"), os.O_PATH | os.O_CLOEXEC)
    hook_state = oci_state(rec, "creating")
    launch.hook_state = hook_state
    # "creating" until spawn returns, though the pid is recorded at once
    os.close(os.open(rec.path(state.CREATING), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    ns = spec.namespaces(config)

    def on_ready(pid):
        if "user" in ns and not ns["user"]:
            from .security import format_id_map, write_id_maps
            uid_map, gid_map = id_map(lx.get("uidMappings")), id_map(lx.get("gidMappings"))
            if log:
                log(f"writing uid_map and gid_map of {pid}: "
                    + format_id_map(uid_map).strip().replace("\n", ", "))
            write_id_maps(pid, uid_map, gid_map)
        if opts.on_namespaces:
            opts.on_namespaces(pid)

    def on_hooks(pid):
        hook_state["pid"] = pid
        for name in ("prestart", "createRuntime"):
            for hook in spec.hooks(config, name):
                run_hook_or_fail(hook, hook_state, name)

    from . import mounts
    from .init import child_main, preload
    preload(tty=launch.tty, hooks=bool(launch.start_hooks),
            seccomp=bool(launch.seccomp))
    userns_fds = mounts.open_userns_fds(launch.host_plan + launch.plan)
    if log:
        new = [n for n in ("pid", "uts", "mount", "ipc", "network", "cgroup", "user", "time")
               if n in ns and not ns[n]]
        log("creating namespaces: " + " ".join({"mount": "mnt", "network": "net"}.get(n, n)
                                               for n in new)
            + "".join(f"; joining {n} {p}" for n, p in ns.items() if p))
    try:
        proc = spawn(launch, child_main,
                     pidns=None if "pid" in ns and not ns["pid"] else ns.get("pid") or False,
                     time_offsets=time_offsets(lx) if "time" in ns and not ns["time"] else None,
                     timens=ns.get("time"),
                     stdio=opts.stdio, on_ready=on_ready, on_hooks=on_hooks,
                     want_master=bool(opts.want_master and launch.tty and not
                                      opts.console_socket),
                     cgroup2_dir=cg.v2_dir,
                     on_forked=lambda pid: record_pid(rec, pid, seccomp_entry(launch)))
    finally:
        for fd in [launch.fifo_fd] + userns_fds:
            if fd >= 0:
                os.close(fd)
        if launch.ttysock is not None:
            launch.ttysock.close()
    os.unlink(rec.path(state.CREATING))
    if opts.pid_file:
        state.write_text(os.path.abspath(opts.pid_file), str(proc.pid))
    return proc


def record_pid(rec, pid, seccomp=None):
    """The init's pid and start time (a pid alone is never trusted: it is
    reused) in the record, as soon as the init exists; and its seccomp
    filter, for exec (see exec_seccomp)."""
    info = state.proc_start_time(pid)
    rec.update(pid=pid, start_time=info[0] if info else None, boot_id=state.boot_id(),
               seccomp=seccomp)


def seccomp_entry(launch):
    """The init's compiled filter and the bounding capabilities it was
    compiled for (Docker-format profiles have rules per capability)."""
    if not launch.seccomp:
        return None
    return {"caps": sorted((launch.cap_sets or {}).get("bounding") or ()),
            "program": launch.seccomp}


def exec_seccomp(rec, caps):
    """The container's seccomp filter for a process with these bounding
    capabilities: the init's, compiled at create, when they are the same
    (config.json cannot change after create); else compiled again."""
    if "seccomp" in rec.data:
        entry = rec.data["seccomp"]
        if entry is None:
            return None
        program = entry.get("program") if isinstance(entry, dict) else None
        if isinstance(program, list) and entry.get("caps") == sorted(caps) \
                and all(isinstance(ins, list) and len(ins) == 4 for ins in program):
            return [tuple(ins) for ins in program]
    # other capabilities (or a damaged record): from the profile, and never
    # without a filter because config.json could not be read
    lx = _bundle_config(rec, "compile the seccomp filter of the process").get("linux") or {}
    return seccomp_program(lx.get("seccomp"), caps)


def hooks_of(rec, phase):
    """poststart or poststop hooks, as config.json had them at create."""
    hooks = rec.data.get("hooks") or {}
    if phase not in hooks:      # (a record written before it kept them)
        return spec.hooks(_bundle_config(rec), phase)
    return hooks[phase] or ()


def run_hook_or_fail(hook, hook_state, name):
    from .init import run_hook
    try:
        run_hook(hook, hook_state, name)
    except OSError as e:
        raise ContainError(f"{name} hook: {e.strerror or e}") from None


def launch_for(bundle, rec, cg, opts):
    """The child's Launch from config.json."""
    from . import mounts
    from .init import Launch
    from .security import cap_sets_from_spec
    config = bundle.config
    proc = config["process"]
    lx = config.get("linux") or {}
    ns = spec.namespaces(config)
    unshare, join = 0, []
    for kind in ("user", "cgroup", "ipc", "uts", "network", "mount"):
        if kind not in ns or (kind == "user" and ns[kind]):
            continue        # (a user namespace given by path is joined after the host phase)
        flag = linux.NAMESPACES["net" if kind == "network" else
                               "mnt" if kind == "mount" else kind]
        if ns[kind]:
            join.append((ns[kind], flag))
        else:
            unshare |= flag
    if "mount" not in ns:
        raise UsageError("config.json: linux.namespaces: contain needs a mount namespace")
    if ns["mount"] and same_namespace(ns["mount"], "/proc/self/ns/mnt"):
        raise UsageError(f"config.json: linux.namespaces: the mount namespace {ns['mount']} "
                         "is the runtime's own: the container's mounts would land on the host")
    plan = mounts.plan_from_spec(config, bundle.rootfs, cg.version, no_pivot=opts.no_pivot)
    userns = "user" in ns and not ns["user"]
    extra = {}
    if "user" in ns:    # new, or joined by path: the host phase comes first either way
        host_plan, plan = mounts.split_plan(plan)
        owner = (_host_id(lx.get("uidMappings")), _host_id(lx.get("gidMappings"))) \
            if userns else None
        extra = dict(userns=True, host_plan=host_plan, owner=owner,
                     userns_path=ns["user"])
    caps = cap_sets_from_spec(proc.get("capabilities"))
    console = None
    if proc.get("terminal") and opts.console_socket:
        console = connect_console(opts.console_socket)
    elif proc.get("terminal") and not opts.want_master:
        raise UsageError("process.terminal is true: --console-socket is required")
    return Launch(
        **process_fields(proc, caps), ttysock=console,
        hostname=config.get("hostname"),
        domainname=config.get("domainname"), root=bundle.rootfs.rstrip("/") or "/",
        plan=plan, unshare_flags=unshare, join_ns=join,
        cgroup_procs=cg.join_files,
        sync=userns or bool(opts.on_namespaces),
        hooks_sync=bool(spec.hooks(config, "prestart") or spec.hooks(config, "createRuntime")),
        create_hooks=spec.hooks(config, "createContainer"),
        start_hooks=spec.hooks(config, "startContainer"),
        seccomp=seccomp_program(lx.get("seccomp"), caps["bounding"]),
        preserve_fds=opts.preserve_fds, log=opts.log, errfd=-1,
        loopback="network" in ns and not ns["network"], setup_cwd=bundle.path,
        # a tiny init as PID 1 that reaps and forwards signals (`run --init`)
        init=(config.get("annotations") or {}).get("run.contain.init") == "true", **extra)


def process_fields(proc, cap_sets):
    """The Launch fields of config.json's `process` (or exec's process.json)."""
    user = proc.get("user") or {}
    return dict(
        argv=proc["args"], env=list(proc.get("env") or ()), cwd=proc.get("cwd") or "/",
        ids=(user.get("uid", 0), user.get("gid", 0),
             sorted(set(user.get("additionalGids") or ()))),
        umask=user.get("umask"), tty=bool(proc.get("terminal")),
        console_size=proc.get("consoleSize"),
        rlimits=[(spec.rlimit_number(r["type"]), r.get("soft", 0), r.get("hard", 0))
                 for r in proc.get("rlimits") or ()],
        oom_score_adj=proc.get("oomScoreAdj"), cap_sets=cap_sets,
        no_new_privs=bool(proc.get("noNewPrivileges")))


def same_namespace(path, other):
    """Whether two /proc/PID/ns/ paths name one namespace (a path that
    cannot be read is not: joining it fails later, with its own error)."""
    try:
        a, b = os.stat(path), os.stat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _host_id(mappings):
    for m in mappings or ():
        if m.get("containerID") == 0:
            return m["hostID"]
    return 0


def id_map(mappings):
    return [(m["containerID"], m["hostID"], m["size"]) for m in mappings or ()]


def time_offsets(lx):
    offsets = (lx.get("timeOffsets") or {})
    lines = []
    for clock, name in (("monotonic", "monotonic"), ("boottime", "boottime")):
        o = offsets.get(clock)
        if o:
            lines.append(f"{name} {int(o.get('secs', 0))} {int(o.get('nanosecs', 0))}\n")
    return "".join(lines)


def seccomp_program(profile, caps):
    if not profile:
        return None
    from .seccomp import compile_profile
    return compile_profile(profile, caps, source="config.json linux.seccomp")


def connect_console(path):
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise ContainError(f"connecting to --console-socket {path}: {e.strerror}") from None
    return sock


def oci_state(rec, status=None):
    """The runtime spec's state, as `state` prints it (with runc's extras)."""
    d = rec.data
    if status is None:
        status = rec.status(_cgroup_or_none(rec))
    out = {"ociVersion": d.get("ociVersion", spec.OCI_VERSION), "id": rec.id,
           "pid": d.get("pid", 0) if status not in ("stopped",) else 0,
           "status": status, "bundle": d.get("bundle", ""), "rootfs": d.get("rootfs", ""),
           "created": d.get("created", ""), "owner": d.get("owner", ""),
           "annotations": d.get("annotations") or {}}
    return out


def _cgroup_or_none(rec):
    try:
        return cgroup_of(rec)
    except (KeyError, TypeError, ValueError, ContainError):
        return None


# -------------------------------------------------------------- start
def start(root, cid, log=None):
    """`start`: release a created container's init; run poststart hooks."""
    rec = load(root, cid)
    with rec.lock():
        status = rec.status(_cgroup_or_none(rec))
        if status != "created":
            raise Conflict(f"cannot start a container that is {status}"
                           if status != "stopped" else "container is stopped: cannot start")
        release(rec)
    run_hooks_warning(hooks_of(rec, "poststart"), rec, "running", "poststart")
    return rec


def run_hooks_warning(hooks, rec, status, phase):
    """poststart and poststop hooks: a failure is a warning, and the
    remaining hooks and the lifecycle go on (the runtime spec's rule)."""
    from .init import run_hook
    for hook in hooks:
        try:
            run_hook(hook, oci_state(rec, status), phase)
        except OSError as e:
            warn(f"{phase} hook {hook['path']}: {e.strerror or e}")


def release(rec, timeout=10.0):
    """Open the exec fifo: the init, blocked opening it for writing, goes on."""
    import select
    fifo = rec.path("exec.fifo")
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready and os.read(fd, 1):
                break
            if not rec.alive():
                raise ContainError(f"container {rec.id}: its process exited before start")
            if time.monotonic() > deadline:
                raise ContainError(f"container {rec.id}: its process did not take the "
                                   "start signal")
    finally:
        os.close(fd)
        state.ignore_missing(os.unlink, fifo)


def _bundle_config(rec, needed_to=None):
    """The bundle's config.json; {} if it cannot be read, or ContainError
    saying what it was needed_to do."""
    try:
        return state.read_json(os.path.join(rec.data["bundle"], "config.json"))
    except (OSError, ValueError, KeyError) as e:
        if needed_to is None:
            return {}
        reason = getattr(e, "strerror", None) or str(e)
        raise ContainError(f"cannot {needed_to}: config.json of the bundle of container "
                           f"{rec.id} cannot be read ({reason})") from None


def warn(msg):
    os.write(2, f"contain: warning: {msg}\n".encode())


# ----------------------------------------------------- state, list, ps
def load(root, cid):
    rec = state.Record(root, cid)
    if not os.path.isdir(rec.dir):
        raise NotFound(f"container {cid} does not exist")
    return rec.load()


def get_state(root, cid):
    return oci_state(load(root, cid))


def list_all(root):
    out = []
    for cid in state.list_ids(root):
        try:
            out.append(oci_state(load(root, cid)))
        except ContainError:
            continue
    return out


def pids(root, cid):
    rec = load(root, cid)
    cg = _cgroup_or_none(rec)
    found = set(cg.pids()) if cg is not None and cg.exists() else set()
    if rec.alive():
        found.add(rec.pid)
    return sorted(found)


# --------------------------------------------------------------- kill
def kill(root, cid, sig, all_processes=False):
    rec = load(root, cid)
    status = rec.status(_cgroup_or_none(rec))
    if status == "stopped" and not all_processes:
        raise Conflict("container not running")
    if not rec.pid:             # (os.kill(0) would signal our own process group)
        raise Conflict(f"container {cid} is being created: no process to signal yet")
    if all_processes:
        cg = _cgroup_or_none(rec)
        targets = cg.pids() if cg is not None and cg.exists() else []
        if rec.alive():
            targets = set(targets) | {rec.pid}
        if not targets and status == "stopped":
            raise Conflict("container not running")
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if status == "paused" and sig == _signal.SIGKILL:
            cg.freeze(False)
        return rec
    try:
        os.kill(rec.pid, sig)
    except ProcessLookupError:
        raise Conflict("container not running") from None
    return rec


# ------------------------------------------------------------- delete
def delete(root, cid, force=False, log=None):
    """`delete`: a stopped (or created) container's cgroup, poststop hooks
    and record; --force kills a running one first.  An id that does not
    exist is an error, unless forced (the shim deletes twice)."""
    rec = state.Record(root, cid)
    if not os.path.isdir(rec.dir):
        if force:
            return None
        raise NotFound(f"container {cid} does not exist")
    with rec.lock():
        try:        # under the lock: what a create holding it wrote meanwhile
            rec.load()
        except ContainError:        # (NotFound too)
            if not force:
                raise
            rec.data = {}
        status = rec.status(_cgroup_or_none(rec)) if rec.data else "stopped"
        if status in ("running", "paused") and not force:
            raise Conflict(f"cannot delete container {cid} that is not stopped: {status}")
        if status != "stopped" and rec.alive():
            stop_everything(rec)
        destroy(rec)
    run_hooks_warning(hooks_of(rec, "poststop"), rec, "stopped", "poststop")
    return rec


def stop_everything(rec, timeout=10.0):
    """SIGKILL the init and everything in its cgroup; wait until gone."""
    cg = _cgroup_or_none(rec)
    if cg is not None and cg.exists():
        try:
            if cg.frozen():
                cg.freeze(False)
        except ContainError:
            pass
        cg.kill_all()
    if rec.alive():
        try:
            os.kill(rec.pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while rec.alive() and time.monotonic() < deadline:
        time.sleep(0.005)


def destroy(rec):
    """Undo everything the record says was made: the cgroup, the record."""
    cgroup = rec.data.get("cgroup")
    if cgroup:
        try:
            driver_for(rec).destroy(*cgroup)
        except (OSError, ContainError) as e:
            raise ContainError(f"removing cgroup {'/'.join(cgroup)}: {e}") from None
    state.remove_tree(rec.dir)
    if os.path.exists(rec.dir):
        raise ContainError(f"removing {rec.dir}: directory not empty")


# ----------------------------------------------------- pause, resume, update
def pause(root, cid, frozen=True):
    rec = load(root, cid)
    cg = cgroup_of(rec)
    status = rec.status(cg)
    if frozen and status != "running":
        raise Conflict(f"container not running" if status == "stopped"
                       else f"cannot pause a container that is {status}")
    if not frozen and status != "paused":
        raise Conflict("container not paused")
    cg.freeze(frozen)
    return rec


def update(root, cid, resources):
    """`update`: new linux.resources for a container's cgroup."""
    rec = load(root, cid)
    cg = cgroup_of(rec)
    from .cgroups.limits import limits_from_spec
    limits, devices, raw = limits_from_spec(resources or {}, driver().version)
    if limits:
        cg.update(limits)
    cgroups.write_raw(cg, raw)
    return rec


# ---------------------------------------------------------------- run
def run_foreground(root, cid, bundle_dir, opts, detach=False):
    """`run`: create and start at once; without detach, wait for the
    process (forwarding signals, copying a terminal), delete, and return
    its exit code as a shell reports it."""
    opts.wait_start = detach
    if not detach and not opts.console_socket:
        opts.want_master = True
    rec, proc = create(root, cid, bundle_dir, opts)
    if detach:
        start(root, cid)
        return 0
    try:
        run_hooks_warning(hooks_of(rec, "poststart"), rec, "running", "poststart")
        return wait_process(proc)
    finally:
        delete(root, cid, force=True)


FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
             _signal.SIGUSR2, _signal.SIGWINCH)


def wait_process(proc, interactive=True):
    """Wait for a child process, forwarding our signals to it and copying
    its terminal (if it has one) to ours (our stdin too, if interactive);
    its exit code (128+N on signal N)."""
    def forward(sig, _frame):
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
    old = {s: _signal.signal(s, forward) for s in FORWARDED if s != _signal.SIGWINCH}
    try:
        exited = {}
        if proc.master is not None:
            from . import terminal

            def child_exited():
                if not exited:
                    done, status = os.waitpid(proc.pid, os.WNOHANG)
                    if done:
                        exited["status"] = status
                return bool(exited)
            with terminal.RawMode(0):
                terminal.proxy(proc.master, 0, 1, child_exited, forward_stdin=interactive)
            os.close(proc.master)
        while "status" not in exited:
            try:
                exited["status"] = os.waitpid(proc.pid, 0)[1]
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(exited["status"])
        return 128 - code if code < 0 else code
    finally:
        for s, h in old.items():
            _signal.signal(s, h)
