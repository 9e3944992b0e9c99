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
    from ..core.cgroups import net_io
    return net_io(c.state.get("pid")) if c.state.get("pid") else None


def _samples(targets):
    from ..core.cgroups import sample
    out = {}
    for ref, c in targets:
        cg = _cgroup(c)
        out[c.id] = sample(cg) if c.running and cg.exists() else None
    return out


def _rows(targets, prev, cur, host_mem):
    from ..core.cgroups import usage_row
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
    from ..core.cgroups import stats_json, stats_table
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
    from ..core.cgroups import host_memory
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
    from ..core import cgroups
    out = {}
    if ns.memory:
        out["memory"] = cgroups.parse_bytes(ns.memory, "--memory")
    if ns.memory_reservation:
        out["memory_reservation"] = cgroups.parse_bytes(ns.memory_reservation,
                                                        "--memory-reservation")
    if ns.memory_swap:
        out["memory_swap"] = cgroups.parse_memory_swap(ns.memory_swap)
    if ns.cpus:
        out["nano_cpus"] = cgroups.parse_cpus(ns.cpus)
    for key in ("cpu_period", "cpu_quota", "cpu_shares", "pids_limit", "blkio_weight"):
        if getattr(ns, key) is not None:
            out[key] = cgroups.parse_int(getattr(ns, key), cgroups.FLAGS[key])
    if ns.cpuset_cpus:
        out["cpuset_cpus"] = cgroups.parse_cpuset(ns.cpuset_cpus, "--cpuset-cpus")
    if ns.cpuset_mems:
        out["cpuset_mems"] = cgroups.parse_cpuset(ns.cpuset_mems, "--cpuset-mems")
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
    from ..core import cgroups
    from . import runtime, state
    c = store.find(ref)
    with store.container_lock(c.id):
        c = store.load(c.id)
        # a record made before the default swap was recorded gets it now
        old = runtime.cgroup_driver().default_limits(c.config.get("limits") or {})
        merged = cgroups.merge_limits(old, changes)
        cg = _cgroup(c)
        if cg.exists():
            if log:
                log(f"updating cgroup {cg.path}: {cgroups.describe_limits(changes)}")
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
    from ..core.cgroups import host_memory
    info["memory"] = host_memory()
    return info


def info_text(info):
    """docker info-like text for system_info()'s dict (warnings separate)."""
    from ..core.cgroups import bytes_size, info_lines
    lines = [f"Containers: {info['containers']}", f" Running: {info['running']}",
             f" Paused: {info['paused']}", f" Stopped: {info['stopped']}",
             f"Contain Root Dir: {info['state_root']}"]
    lines += info_lines(info)
    lines += [f"Kernel Version: {info['kernel']}", f"CPUs: {info['cpus']}",
              f"Total Memory: {bytes_size(info['memory'])}"]
    return "\n".join(lines)
