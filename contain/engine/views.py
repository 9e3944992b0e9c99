"""What `ps` and `inspect` show: Docker's columns, status words and JSON.

Pure presentation over container records; every status comes from
Container.status, which re-derives it from the kernel.
"""

import json
import re
import time

from ..clock import parse_time


def human_duration(seconds):
    """Docker's units.HumanDuration: 'Less than a second', '3 minutes'..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def status_text(c, now=None):
    """'Up 3 minutes', 'Exited (137) 5 seconds ago', 'Created'."""
    now = time.time() if now is None else now
    st = c.status
    if st == "running":
        return "Up " + human_duration(now - parse_time(c.state["started_at"]))
    if st == "restarting":
        return f"Restarting ({c.exit_code}) " + _ago(c.state.get("finished_at"), now)
    if st == "exited":
        return f"Exited ({c.exit_code}) " + _ago(c.state.get("finished_at")
                                                   or c.state.get("started_at"), now)
    if st == "dead":
        return "Dead"
    return "Created"


def _ago(stamp, now):
    if not stamp:
        return ""
    return human_duration(now - parse_time(stamp)) + " ago"


def command_text(c):
    return " ".join(c.config.get("argv") or [])


def ports_text(c):
    net = c.state.get("network") or {}
    out = []
    for p in net.get("ports") or []:
        host_ip = p.get("host_ip") or "0.0.0.0"
        out.append(f"{host_ip}:{p['host_port']}->{p['container_port']}/{p.get('proto', 'tcp')}")
    return ", ".join(out)


def fields(c, no_trunc=True):
    """The fields a --format template can use (Docker's names)."""
    cmd = command_text(c)
    net = c.state.get("network") or {}
    return {
        "ID": c.id if no_trunc else c.id[:12],
        "Names": c.name,
        "Image": c.config.get("image") or c.config.get("rootfs", {}).get("path", ""),
        "Command": json.dumps(cmd if no_trunc else _trunc(cmd, 20), ensure_ascii=False),
        "CreatedAt": c.config.get("created", ""),
        "RunningFor": _ago(c.config.get("created"), time.time()),
        "Status": status_text(c),
        "State": c.status,
        "Ports": ports_text(c),
        "Pid": c.state.get("pid", 0) if c.running else 0,
        "IPAddress": net.get("ip", ""),
        "Networks": net.get("network", net.get("mode", "")),
        "Labels": ",".join(f"{k}={v}" for k, v in (c.config.get("labels") or {}).items()),
        "ExitCode": c.exit_code,
    }


def _trunc(text, n):
    return text if len(text) <= n else text[:n - 1] + "…"


COLUMNS = (("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
           ("CREATED", "RunningFor"), ("STATUS", "Status"), ("PORTS", "Ports"),
           ("NAMES", "Names"))


def ps(store, all=False, quiet=False, no_trunc=False, fmt=None):
    rows = sorted(store.all(), key=lambda c: c.config.get("created", ""), reverse=True)
    if not all:
        rows = [c for c in rows if c.running]
    if quiet:
        return "".join((c.id if no_trunc else c.id[:12]) + "\n" for c in rows)
    data = [fields(c, no_trunc) for c in rows]
    if fmt == "json":
        return "".join(json.dumps(d) + "\n" for d in data)
    if fmt:
        return render_template(fmt, data)
    return table(COLUMNS, data)


def table(columns, data):
    widths = [max([len(h)] + [len(str(d[k])) for d in data]) for h, k in columns]
    lines = []
    for cells in [[h for h, _ in columns]] + [[str(d[k]) for _, k in columns] for d in data]:
        lines.append("   ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines) + "\n"


_FIELD = re.compile(r"\{\{\s*(json\s+)?\.(\w*)\s*\}\}")


def render_template(fmt, data):
    """A Go-template subset: {{.Field}}, {{json .}}, {{json .Field}}, 'table' prefix, \\t."""
    header = fmt.startswith("table ")
    if header:
        fmt = fmt[6:]
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")

    def one(d):
        def sub(m):
            if m.group(2) == "":
                return json.dumps(d)
            value = d.get(m.group(2), "")
            return json.dumps(value) if m.group(1) else str(value)
        return _FIELD.sub(sub, fmt)
    out = []
    if header:
        out.append(_FIELD.sub(lambda m: m.group(2).upper(), fmt))
    out += [one(d) for d in data]
    return "".join(line + "\n" for line in out)


def inspect_one(c):
    """Docker-shaped inspect JSON for one container."""
    cfg, st = c.config, c.state
    status = c.status
    net = st.get("network") or {}
    limits = cfg.get("limits") or {}
    return {
        "Id": c.id,
        "Name": "/" + c.name,
        "Created": cfg.get("created"),
        "Path": (cfg.get("argv") or [""])[0],
        "Args": (cfg.get("argv") or [])[1:],
        "State": {
            "Status": status, "Running": status == "running", "Paused": False,
            "Restarting": status == "restarting", "OOMKilled": bool(st.get("oom_killed")),
            "Dead": status == "dead", "Pid": st.get("pid", 0) if c.running else 0,
            "ExitCode": c.exit_code if status != "running" else 0,
            "Error": st.get("error") or "",
            "StartedAt": st.get("started_at") or "0001-01-01T00:00:00Z",
            "FinishedAt": st.get("finished_at") or "0001-01-01T00:00:00Z",
        },
        "Image": (cfg.get("rootfs") or {}).get("image_id", ""),
        "RestartCount": st.get("restart_count", 0),
        "LogPath": c.path("container.log"),
        "Config": {
            "Hostname": cfg.get("hostname"), "User": cfg.get("user") or "",
            "Env": cfg.get("env", []), "Cmd": cfg.get("argv", []),
            "Image": cfg.get("image") or "", "WorkingDir": cfg.get("cwd") or "",
            "Labels": cfg.get("labels") or {}, "Tty": bool(cfg.get("tty")),
            "OpenStdin": bool(cfg.get("interactive")),
            "StopSignal": cfg.get("stop_signal"), "StopTimeout": cfg.get("stop_timeout"),
        },
        "HostConfig": {
            "AutoRemove": bool(cfg.get("auto_remove")),
            "RestartPolicy": {"Name": (cfg.get("restart") or {}).get("name", "no"),
                              "MaximumRetryCount": (cfg.get("restart") or {}).get("max", 0)},
            "NetworkMode": (cfg.get("network") or {}).get("mode", "bridge"),
            "ReadonlyRootfs": bool(cfg.get("read_only")),
            "Privileged": bool((cfg.get("security") or {}).get("privileged")),
            "CapAdd": (cfg.get("security") or {}).get("cap_add") or [],
            "CapDrop": (cfg.get("security") or {}).get("cap_drop") or [],
            "CgroupParent": cfg.get("cgroup_parent", ""),
            "Init": bool(cfg.get("init")),
            "Memory": limits.get("memory", 0), "MemorySwap": limits.get("memory_swap", 0),
            "MemoryReservation": limits.get("memory_reservation", 0),
            "NanoCpus": limits.get("nano_cpus", 0), "CpuShares": limits.get("cpu_shares", 0),
            "CpuPeriod": limits.get("cpu_period", 0), "CpuQuota": limits.get("cpu_quota", 0),
            "CpusetCpus": limits.get("cpuset_cpus", ""), "CpusetMems": limits.get("cpuset_mems", ""),
            "PidsLimit": limits.get("pids_limit"), "BlkioWeight": limits.get("blkio_weight", 0),
            "Binds": [f"{m['source']}:{m['target']}" + (":ro" if m.get("readonly") else "")
                      for m in cfg.get("mounts", []) if m.get("type") == "bind"],
        },
        "NetworkSettings": {
            "IPAddress": net.get("ip", ""), "Gateway": net.get("gateway", ""),
            "MacAddress": net.get("mac", ""), "Network": net.get("network", ""),
            "Ports": {f"{p['container_port']}/{p.get('proto', 'tcp')}":
                      [{"HostIp": p.get("host_ip") or "0.0.0.0",
                        "HostPort": str(p["host_port"])}]
                      for p in net.get("ports") or []},
        },
    }


def inspect(store, refs, fmt=None):
    items = [inspect_one(store.find(ref)) for ref in refs]
    if fmt:
        return "\n".join(render_path(fmt, item) for item in items)
    return json.dumps(items, indent=4)


def render_path(fmt, item):
    """--format '{{.State.Status}}' style paths into the inspect JSON."""
    def sub(m):
        value = item
        for part in m.group(2).split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        if m.group(1) or isinstance(value, (dict, list)):
            return json.dumps(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return re.sub(r"\{\{\s*(json\s+)?\.([\w.]+)\s*\}\}", sub, fmt)
