"""The resource commands behind `stats`, `update` and `info`.

The CLI's thin cmd_* functions (the "resource commands" section of cli.py)
call these: they find the containers, ask contain.cgroups for numbers or
changes, and format them like docker does.
"""

import os
import sys
import time

from ..errors import UsageError

STATS_INTERVAL = 1.0    # seconds between the two samples behind CPU %


def _cgroup(c):
    from . import runtime
    return runtime.cgroup_driver().cgroup(runtime.cgroup_parent(c), runtime.cgroup_name(c))


# -------------------------------------------------------------------- stats
def _targets(refs, all, store):
    if refs:
        return [(ref, store.find(ref)) for ref in refs]
    return [(c.name, c) for c in store.all() if all or c.running]


def _net(c):
    """(rx, tx) of the container's interfaces; host network counts as none."""
    mode = (c.config.get("network") or {}).get("mode", "bridge")
    if mode == "host":
        return None
    from .stats import net_io
    return net_io(c.state.get("pid")) if c.state.get("pid") else None


def _samples(targets):
    from ..core.cgroups import sample
    out = {}
    for ref, c in targets:
        cg = _cgroup(c)
        out[c.id] = sample(cg) if c.running and cg.exists() else None
    return out


def _rows(targets, prev, cur, host_mem):
    from .stats import usage_row
    rows = []
    for ref, c in targets:
        if cur.get(c.id) is None:   # not running: docker prints zeros
            rows.append({"id": c.id, "name": c.name, "container": ref, "cpu_percent": 0.0,
                         "memory_usage": 0, "memory_limit": 0, "memory_percent": 0.0,
                         "net_rx": 0, "net_tx": 0, "block_read": 0, "block_write": 0,
                         "pids": 0})
            continue
        rows.append(usage_row(c.id, c.name, prev.get(c.id), cur[c.id], net=_net(c) or (0, 0),
                              container=ref, host_mem=host_mem))
    return rows


def _render(rows, fmt, no_trunc):
    from .stats import stats_json, stats_table
    if fmt == "json":
        return "".join(stats_json(r) + "\n" for r in rows)
    if no_trunc:
        out = stats_table(rows)
        for r in rows:
            out = out.replace(r["id"][:12] + " ", r["id"] + " ", 1)
        return out
    return stats_table(rows)


def show_stats(store, refs=(), all=False, stream=True, fmt=None, no_trunc=False,
               out=None):
    """`contain stats`: usage of the named containers (default: the running
    ones, or every one with all=True), one table (or JSON lines) per second;
    stream=False prints one and returns.  CPU % needs two samples, so even
    one table takes STATS_INTERVAL."""
    from .stats import host_memory
    out = out or sys.stdout
    fmt = (fmt or "table").strip()
    if fmt not in ("table", "json"):
        raise UsageError(f"unsupported --format {fmt!r}: use table or json")
    targets = _targets(refs, all, store)
    host_mem = host_memory()
    prev = _samples(targets)
    while True:
        time.sleep(STATS_INTERVAL)
        cur = _samples(targets)
        text = _render(_rows(targets, prev, cur, host_mem), fmt, no_trunc)
        if not stream:
            out.write(text)
            return 0
        if fmt == "table" and out.isatty():
            text = "\033[2J\033[H" + text      # redraw in place, like docker
        out.write(text)
        out.flush()
        prev = cur
        if not refs:
            targets = _targets(refs, all, store)  # follow containers that start/stop


# ------------------------------------------------------------------- update
def changes_from_flags(ns):
    """The limits `contain update` was asked to change (only flags given)."""
    from ..core.cgroups.limits import FLAGS, parse_bytes
    from . import limits as resource_flags
    out = {}
    if ns.memory:
        out["memory"] = parse_bytes(ns.memory, "--memory")
    if ns.memory_reservation:
        out["memory_reservation"] = parse_bytes(ns.memory_reservation,
                                                "--memory-reservation")
    if ns.memory_swap:
        out["memory_swap"] = resource_flags.parse_memory_swap(ns.memory_swap)
    if ns.cpus:
        out["nano_cpus"] = resource_flags.parse_cpus(ns.cpus)
    for key in ("cpu_period", "cpu_quota", "cpu_shares", "pids_limit", "blkio_weight"):
        if getattr(ns, key) is not None:
            out[key] = resource_flags.parse_int(getattr(ns, key), FLAGS[key])
    if ns.cpuset_cpus:
        out["cpuset_cpus"] = resource_flags.parse_cpuset(ns.cpuset_cpus, "--cpuset-cpus")
    if ns.cpuset_mems:
        out["cpuset_mems"] = resource_flags.parse_cpuset(ns.cpuset_mems, "--cpuset-mems")
    return out


def _to_apply(changes, merged):
    """What to write to a live cgroup: the changed keys, plus the partners
    the kernel needs together (memory with its swap total, quota with period)."""
    keys = set(changes)
    if keys & {"memory", "memory_swap"}:
        keys |= {"memory", "memory_swap"}
    if keys & {"cpu_quota", "cpu_period"}:
        keys |= {"cpu_quota", "cpu_period"}
    return {k: merged[k] for k in keys if merged.get(k) is not None}


def update_container(store, ref, changes, log=None):
    """Apply changes to a container's cgroup (if it has one now) and record
    them, so a restart keeps them (docker update's semantics)."""
    from ..core.cgroups.limits import describe_limits
    from . import limits as resource_flags
    from . import runtime, state
    c = store.find(ref)
    with store.container_lock(c.id):
        c = store.load(c.id)
        # a record made before the default swap was recorded gets it now
        old = runtime.cgroup_driver().default_limits(c.config.get("limits") or {})
        merged = resource_flags.merge_limits(old, changes)
        cg = _cgroup(c)
        if cg.exists():
            if log:
                log(f"updating cgroup {cg.path}: {describe_limits(changes)}")
            cg.update(_to_apply(changes, merged))
        c.config["limits"] = merged
        state.write_json(c.path("config.json"), c.config)
    return c


# --------------------------------------------------------------------- info
def system_info(store):
    """Container counts and the cgroup facts, as a dict."""
    from . import runtime
    containers = store.all()
    running = sum(1 for c in containers if c.running)
    info = {"containers": len(containers), "running": running, "paused": 0,
            "stopped": len(containers) - running, "state_root": store.root}
    info.update(runtime.cgroup_driver().info())
    info["kernel"] = os.uname().release
    info["cpus"] = os.cpu_count()
    from .stats import host_memory
    info["memory"] = host_memory()
    info["storage"] = storage_info(store.root)
    info["security"] = security_info(store.root)
    return info


def _kernel_filesystems():
    try:
        with open("/proc/filesystems") as f:
            return {line.split()[-1] for line in f if line.strip()}
    except OSError:
        return set()


def storage_info(root):
    """Where images and containers live and how a root is made."""
    return {"driver": "overlay", "overlay_supported": "overlay" in _kernel_filesystems(),
            "image_store": os.path.join(root, "images"),
            "containers": os.path.join(root, "containers")}


def security_info(root):
    """The defaults every container gets unless its flags say otherwise."""
    from . import defaults
    from ..core import seccomp, security
    try:
        arch = seccomp.native_arch()
    except UsageError:
        arch = None
    try:
        idmap = security.idmapped_mount_supported(root if os.path.isdir(root) else "/")
    except OSError:
        idmap = False
    return {"seccomp": "builtin" if arch else "unavailable", "seccomp_arch": arch,
            "capabilities": sorted(security.cap_name(n)[4:] for n in defaults.DEFAULT_CAPS),
            "no_new_privileges": False,
            "userns": os.path.exists("/proc/self/ns/user"), "idmapped_mounts": idmap}


def info_text(info):
    """docker info-like text for system_info()'s dict (warnings separate)."""
    from .stats import bytes_size, info_lines
    lines = [f"Containers: {info['containers']}", f" Running: {info['running']}",
             f" Paused: {info['paused']}", f" Stopped: {info['stopped']}",
             f"Contain Root Dir: {info['state_root']}"]
    lines += info_lines(info)
    lines += storage_lines(info["storage"]) + security_lines(info["security"])
    lines += [f"Kernel Version: {info['kernel']}", f"CPUs: {info['cpus']}",
              f"Total Memory: {bytes_size(info['memory'])}"]
    return "\n".join(lines)


def storage_lines(st):
    return [f"Storage Driver: {st['driver']}"
            + ("" if st["overlay_supported"] else " (not in this kernel: images cannot run)"),
            f" Image Store: {st['image_store']}", f" Containers: {st['containers']}"]


def security_lines(sec):
    seccomp = (f"   Profile: builtin (Docker's default allow-list, {sec['seccomp_arch']})"
               if sec["seccomp_arch"] else "   Profile: none (no system call table here)")
    return ["Security Options:", "  seccomp", seccomp,
            f"  capabilities: {len(sec['capabilities'])} by default: "
            + ", ".join(sec["capabilities"]),
            "  no-new-privileges: " + ("on" if sec["no_new_privileges"] else
                                       "off by default (--security-opt no-new-privileges)"),
            "  userns: " + ("--userns=auto, idmapped mounts "
                            + ("yes" if sec["idmapped_mounts"] else "no")
                            if sec["userns"] else "not in this kernel")]


# ---------------------------------------------------------------------- top
# `contain top CONTAINER [ps OPTIONS]`: the processes of the container's
# cgroup, read from the host's /proc (as `docker top` shows them: host pids,
# host user names).  No `ps` is run: the fields are computed here.
TOP_DEFAULT = ("uid", "pid", "ppid", "c", "stime", "tty", "time", "cmd")
TOP_HEADERS = {"uid": "UID", "user": "USER", "pid": "PID", "ppid": "PPID", "c": "C",
               "stime": "STIME", "tty": "TTY", "time": "TIME", "cmd": "CMD",
               "args": "COMMAND", "command": "COMMAND", "comm": "COMMAND", "stat": "STAT",
               "rss": "RSS", "vsz": "VSZ", "etime": "ELAPSED", "nlwp": "NLWP"}


def top_fields(options):
    """The columns asked for by ps-style options: none, -ef, -e -f (the
    default: UID PID PPID C STIME TTY TIME CMD), or -o/-eo/o FIELD,..."""
    opts = list(options)
    if opts[:1] == ["--"]:
        opts = opts[1:]
    fields = None
    while opts:
        opt = opts.pop(0)
        if opt in ("-e", "-f", "-ef", "-fe", "-A"):
            continue
        if opt in ("-o", "-eo", "o", "-Ao") and opts:
            fields = [f.strip().lower() for f in opts.pop(0).split(",") if f.strip()]
            unknown = [f for f in fields if f not in TOP_HEADERS]
            if unknown or not fields:
                raise UsageError(f"top: unsupported ps field {(unknown or [''])[0]!r} "
                                 f"(supported: {', '.join(sorted(TOP_HEADERS))})")
            continue
        raise UsageError(f"top: unsupported ps option {opt!r} "
                         "(supported: -ef, -e, -f, -o FIELD,...)")
    return fields or list(TOP_DEFAULT)


def top(store, ref, options=()):
    """The table `contain top` prints for a running container."""
    from ..errors import Conflict
    from .views import table
    fields = top_fields(options)
    c = store.find(ref)
    if not c.running:
        raise Conflict(f"container {c.name} is not running")
    cg = _cgroup(c)
    procs = [p for p in (_proc(pid) for pid in sorted(cg.pids() if cg.exists() else []))
             if p]
    rows = [{f: _top_value(f, p) for f in fields} for p in procs]
    return table([(TOP_HEADERS[f], f) for f in fields], rows)


def _proc(pid):
    """What /proc says of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/status") as f:
            uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
    except (OSError, StopIteration, ValueError):
        return None
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    rest = stat[stat.rindex(")") + 2:].split()   # rest[n - 3] is field n of proc(5)
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    return {"pid": pid, "comm": comm, "state": rest[0], "ppid": int(rest[1]),
            "tty_nr": int(rest[4]), "cpu_ticks": int(rest[11]) + int(rest[12]),
            "nlwp": int(rest[17]), "start_ticks": int(rest[19]), "vsize": int(rest[20]),
            "rss_pages": int(rest[21]), "uid": uid,
            "args": " ".join(args) if args else f"[{comm}]"}


def _top_value(field, p):
    """One cell of `top` for process p (a _proc() dict), as ps prints it."""
    tick = os.sysconf("SC_CLK_TCK")
    if field in ("uid", "user"):
        return _user_name(p["uid"])
    if field in ("pid", "ppid", "nlwp"):
        return p[field]
    if field in ("cmd", "args", "command"):
        return p["args"]
    if field == "comm":
        return p["comm"]
    if field == "stat":
        return p["state"]
    if field == "rss":
        return p["rss_pages"] * os.sysconf("SC_PAGE_SIZE") // 1024
    if field == "vsz":
        return p["vsize"] // 1024
    if field == "tty":
        return _tty_name(p["tty_nr"])
    if field == "time":
        return _clock(p["cpu_ticks"] // tick, days=True)
    age = max(_uptime() - p["start_ticks"] / tick, 0)
    if field == "etime":
        return _clock(int(age), days=True)
    if field == "c":
        return int(100 * p["cpu_ticks"] / tick / age) if age else 0
    started = time.localtime(time.time() - age)   # stime
    if started[:3] == time.localtime()[:3]:
        return time.strftime("%H:%M", started)
    return time.strftime("%b%d", started)


def _user_name(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _tty_name(tty_nr):
    major, minor = (tty_nr >> 8) & 0xfff, (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)
    if 136 <= major <= 143:
        return f"pts/{minor + (major - 136) * 256}"
    if major == 4 and minor < 64:
        return f"tty{minor}"
    return "?" if not tty_nr else f"{major}:{minor}"


def _clock(seconds, days=False):
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{d}-" if d and days else "") + f"{h:02d}:{m:02d}:{s:02d}"


def _uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])
