"""`stats` and `info` as Docker prints them: a container's usage counters
(the runtime's cgroup samples, the network's byte counts) made into
CPU %, MEM USAGE / LIMIT, NET I/O, BLOCK I/O and PIDS rows, tables and
JSON lines, and info's cgroup lines.
"""

from .. import fastjson
from ..core.cgroups.limits import usable_cpus

STATS_COLUMNS = (("CONTAINER ID", "ID"), ("NAME", "Name"), ("CPU %", "CPUPerc"),
                 ("MEM USAGE / LIMIT", "MemUsage"), ("MEM %", "MemPerc"),
                 ("NET I/O", "NetIO"), ("BLOCK I/O", "BlockIO"), ("PIDS", "PIDs"))


def _size(n, base, units, precision):
    """docker/go-units CustomSize: '%.<precision>g<unit>'."""
    n = float(n)
    i = 0
    while n >= base and i < len(units) - 1:
        n /= base
        i += 1
    return f"{n:.{precision}g}{units[i]}"


def bytes_size(n):
    """go-units BytesSize: binary units with 4 significant digits ('1.5MiB')."""
    return _size(n, 1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"), 4)


def human_size(n):
    """go-units HumanSizeWithPrecision(n, 3): decimal units ('1.23kB')."""
    return _size(n, 1000.0, ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"), 3)


def usage_row(cid, name, prev, cur, net=None, container=None, ncpu=None, host_mem=None):
    """A stats row (the input of format_stats_row) from two samples.

    Memory usage excludes inactive file cache, as docker's CLI does; an
    unlimited container shows the host's memory as its limit.
    """
    usage = cur.get("memory_usage") or 0
    cache = cur.get("memory_cache") or 0
    used = usage - cache if cache < usage else usage
    limit = cur.get("memory_limit") or host_mem or host_memory()
    return {
        "id": cid, "name": name, "container": container or name,
        "cpu_percent": cpu_percent(prev, cur, ncpu=ncpu) if prev else 0.0,
        "memory_usage": used, "memory_limit": limit,
        "memory_percent": used / limit * 100.0 if limit else 0.0,
        "net_rx": net[0] if net else None, "net_tx": net[1] if net else None,
        "block_read": cur.get("blkio_read"), "block_write": cur.get("blkio_write"),
        "pids": cur.get("pids_current"),
    }


def format_stats_row(row):
    """A row's cells as docker stats prints them (keys are its --format fields)."""
    def pair(a, b, fmt):
        return "--" if a is None and b is None else f"{fmt(a or 0)} / {fmt(b or 0)}"

    return {
        "BlockIO": pair(row.get("block_read"), row.get("block_write"), human_size),
        "CPUPerc": f"{row.get('cpu_percent') or 0.0:.2f}%",
        "Container": row.get("container") or row.get("name") or row["id"],
        "ID": row["id"][:12],
        "MemPerc": f"{row.get('memory_percent') or 0.0:.2f}%",
        "MemUsage": f"{bytes_size(row.get('memory_usage') or 0)} / "
                    f"{bytes_size(row.get('memory_limit') or 0)}",
        "Name": row.get("name") or "",
        "NetIO": pair(row.get("net_rx"), row.get("net_tx"), human_size),
        "PIDs": "--" if row.get("pids") is None else str(row["pids"]),
    }


def stats_table(rows):
    """docker stats' table: Go tabwriter(minwidth 10, padding 3) layout."""
    cells = [[h for h, _ in STATS_COLUMNS]]
    for row in rows:
        f = format_stats_row(row)
        cells.append([f[k] for _, k in STATS_COLUMNS])
    widths = [max(10, max(len(r[i]) for r in cells) + 3) for i in range(len(STATS_COLUMNS))]
    return "\n".join("".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + r[-1]
                     for r in cells) + "\n"


def stats_json(row):
    """One line of `stats --format json` (docker's keys, sorted)."""
    return fastjson.dumps(format_stats_row(row), sort_keys=True)


def cpu_percent(prev, cur, interval_ns=None, ncpu=None):
    """Docker's CPU %: CPU time used between two samples over the wall time,
    so 100% is one full CPU and ncpu * 100% the whole host.

    prev/cur are usage counters in ns or samples from sample() (then
    interval_ns may be left out).
    """
    if isinstance(prev, dict):
        if interval_ns is None and "read_ns" in prev and "read_ns" in cur:
            interval_ns = cur["read_ns"] - prev["read_ns"]
        prev, cur = prev.get("cpu_usage_ns"), cur.get("cpu_usage_ns")
    if prev is None or cur is None or not interval_ns or interval_ns <= 0:
        return 0.0
    pct = max(cur - prev, 0) / interval_ns * 100.0
    return min(pct, (ncpu or usable_cpus()) * 100.0)


def info_lines(info):
    """`contain info`'s cgroup section, like docker info's (the warnings,
    info['warnings'], go to stderr as 'WARNING: ...')."""
    lines = [f"Cgroup Driver: {info['cgroup_driver']}",
             f"Cgroup Version: {info['cgroup_version']} ({info['mode']})",
             f"Cgroup Root: {info['root']}",
             f"Cgroup Controllers: {' '.join(info['controllers']) or 'none'}",
             f"Swap Limit: {'yes' if info['swap_limit'] else 'no'}",
             f"Cgroup Kill: {'yes' if info['cgroup_kill'] else 'no'}",
             f"Devices: {info['devices']}"]
    return lines


# ============================================================ usage (stats)


def host_memory():
    """MemTotal in bytes (the limit Docker shows for an unlimited container)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def net_io(pid):
    """(rx_bytes, tx_bytes) over the network interfaces (lo excluded) of the
    network namespace process pid is in; None when it is gone."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return None
    rx = tx = 0
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = data.split()
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx
