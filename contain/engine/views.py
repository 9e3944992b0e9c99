"""What `ps` and `inspect` show: Docker's columns, status words and JSON.

Pure presentation over container records; every status comes from
Container.status, which re-derives it from the kernel.
"""

import sys
import re
import time

from .. import fastjson
from ..clock import parse_time
from ..errors import ContainError
from .state import RUNNING


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


def status_text(c, now=None, status=None):
    """'Up 3 minutes', 'Exited (137) 5 seconds ago', 'Created'."""
    now = time.time() if now is None else now
    st = c.status if status is None else status
    if st in ("running", "paused"):
        return "Up " + human_duration(now - parse_time(c.state["started_at"])) + (
            " (Paused)" if st == "paused" else "")
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


def fields(c, no_trunc=True, tags=None, status=None):
    """The fields a --format template can use (Docker's names).  tags: the
    image store's tags (name -> image id), to tell a stale image name;
    status: c.status, when the caller has it already."""
    cmd = command_text(c)
    net = c.state.get("network") or {}
    status = c.status if status is None else status
    now = time.time()
    return {
        "ID": c.id if no_trunc else c.id[:12],
        "Names": c.name,
        "Image": image_text(c.config, tags, no_trunc),
        "Command": fastjson.dumps(cmd if no_trunc else _trunc(cmd, 20), ensure_ascii=False),
        "CreatedAt": c.config.get("created", ""),
        "RunningFor": _ago(c.config.get("created"), now),
        "Status": status_text(c, now, status),
        "State": status,
        "Ports": ports_text(c),
        "Pid": c.state.get("pid", 0) if status in RUNNING else 0,
        "IPAddress": net.get("ip", ""),
        "Networks": net.get("network", net.get("mode", "")),
        "Labels": ",".join(f"{k}={v}" for k, v in (c.config.get("labels") or {}).items()),
        "ExitCode": exit_code_shown(c, status),
    }


PS_FIELDS = ("ID", "Names", "Image", "Command", "CreatedAt", "RunningFor", "Status", "State",
             "Ports", "Pid", "IPAddress", "Networks", "Labels", "ExitCode")


def exit_code_shown(c, status=None):
    """The last exit code; 0 while the container runs (as Docker shows it),
    not the 255 that Container.exit_code gives a started, unrecorded one."""
    status = c.status if status is None else status
    return 0 if status in ("running", "paused") else c.exit_code


def image_text(cfg, tags=None, no_trunc=False):
    """The IMAGE column: the name the container was made from, or the image's
    short id once that name points at another image (untagged, rebuilt), as
    Docker shows it."""
    name = cfg.get("image")
    rootfs = cfg.get("rootfs") or {}
    if not name:
        return rootfs.get("path", "")
    image_id = rootfs.get("image_id")
    if tags is None or not image_id or _names_image(name, image_id, tags):
        return name
    return image_id if no_trunc else image_id.split(":", 1)[-1][:12]


def _names_image(ref, image_id, tags):
    """Does ref (a tag, or an id prefix) still name image_id?"""
    from .refs import normalize
    from ..errors import UsageError
    hexid = image_id.split(":", 1)[-1]
    bare = ref[7:] if ref.startswith("sha256:") else ref
    if "@" in ref or (bare and hexid.startswith(bare)
                      and not bare.strip("0123456789abcdef")):
        return True  # a digest or an id always names the same image
    try:
        return tags.get(normalize(ref)) == image_id
    except UsageError:
        return False


def _trunc(text, n):
    return text if len(text) <= n else text[:n - 1] + "…"


COLUMNS = (("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
           ("CREATED", "RunningFor"), ("STATUS", "Status"), ("PORTS", "Ports"),
           ("NAMES", "Names"))


def ps(store, all=False, quiet=False, no_trunc=False, fmt=None, filters=(), tags=None):
    """`contain ps`: the containers (running ones unless all, or a status
    filter), filtered (Docker's --filter), as a table, ids, JSON or template.
    tags: the image store's tags, to show a stale image name as an id."""
    flt = parse_filters(filters, PS_FILTERS)
    check_template(fmt, PS_FIELDS)
    rows = sorted(store.all(damaged=True), key=lambda c: c.config.get("created", ""),
                  reverse=True)
    for c in rows:       # listed as dead; what is wrong, on stderr
        if c.damaged is not None:
            sys.stderr.write(f"WARNING: {c.damaged}\n")
    status = {c.id: c.status for c in rows}     # from the kernel, once per container
    if not all and "status" not in flt:
        rows = [c for c in rows if status[c.id] in RUNNING]
    rows = [c for c in rows if container_matches(c, flt, tags or {}, status[c.id])]
    if quiet:
        return "".join((c.id if no_trunc else c.id[:12]) + "\n" for c in rows)
    data = [fields(c, no_trunc, tags, status[c.id]) for c in rows]
    if fmt == "json":
        return "".join(fastjson.dumps(d) + "\n" for d in data)
    if fmt and fmt != "table":
        return render_template(fmt, data, PS_FIELDS)
    return table(COLUMNS, data)


# ----------------------------------------------------------------- filters
PS_FILTERS = ("name", "id", "status", "label", "exited", "ancestor")
IMAGE_FILTERS = ("reference", "dangling", "label")
IMAGE_FIELDS = ("Repository", "Tag", "ID", "CreatedSince", "CreatedAt", "Size")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(items, allowed):
    """--filter KEY=VALUE options -> {key: [values]}; a bad key or value is a
    usage error (Docker: values of one key are alternatives, except label,
    where every one must match)."""
    from ..errors import UsageError
    out = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise UsageError(f"bad format of filter {item!r}: expected KEY=VALUE")
        if key not in allowed:
            raise UsageError(f"invalid filter {key!r} (supported: {', '.join(allowed)})")
        if (key == "status" and value not in STATUSES
                or key == "exited" and not value.lstrip("-").isdigit()
                or key == "dangling" and value.lower() not in ("true", "false", "1", "0")):
            raise UsageError(f"invalid filter '{key}={value}'")
        if key in ("name", "id"):
            _regex(key, value)
        out.setdefault(key, []).append(value)
    return out


def _regex(key, value):
    from ..errors import UsageError
    try:
        return re.compile(value)
    except re.error as e:
        raise UsageError(f"invalid filter '{key}={value}': {e}") from None


def _labels_match(labels, wanted):
    """Every label=KEY or label=KEY=VALUE filter matches labels (a dict)."""
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def container_matches(c, flt, tags, status=None):
    """Does container c pass every ps filter in flt (parse_filters' dict)?"""
    cfg = c.config
    if "name" in flt and not any(_regex("name", v).search(c.name) for v in flt["name"]):
        return False
    if "id" in flt and not any(_regex("id", v).search(c.id) for v in flt["id"]):
        return False
    status = c.status if status is None else status
    if "status" in flt and status not in flt["status"]:
        return False
    if "exited" in flt and (status not in ("exited", "dead")
                            or str(c.exit_code) not in [str(int(v)) for v in flt["exited"]]):
        return False
    if "label" in flt and not _labels_match(cfg.get("labels") or {}, flt["label"]):
        return False
    if "ancestor" in flt and not any(_from_image(cfg, v, tags) for v in flt["ancestor"]):
        return False
    return True


def _from_image(cfg, ref, tags):
    """ancestor=REF: the container runs the image REF names now (a tag or an
    id prefix; a digest reference is compared as the name given)."""
    image_id = (cfg.get("rootfs") or {}).get("image_id")
    if not image_id:
        return False
    if "@" in ref:
        return cfg.get("image") == ref
    return _names_image(ref, image_id, tags)


def image_matches(image, flt):
    """Does an Image pass the dangling= and label= filters of images --filter?"""
    if "dangling" in flt:
        want = flt["dangling"][-1].lower() in ("true", "1")
        if want != (not image.refs):
            return False
    if "label" in flt:
        return _labels_match(image.config.get("Labels") or {}, flt["label"])
    return True


def row_matches_reference(row, patterns):
    """images --filter reference=PATTERN: a glob over NAME or NAME:TAG."""
    import fnmatch
    if row["Repository"] == "<none>":
        return False
    names = (row["Repository"], f"{row['Repository']}:{row['Tag']}")
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def table(columns, data):
    widths = [max([len(h)] + [len(str(d[k])) for d in data]) for h, k in columns]
    lines = []
    for cells in [[h for h, _ in columns]] + [[str(d[k]) for _, k in columns] for d in data]:
        lines.append("   ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- templates
class TemplateError(ContainError):
    """A --format template contain cannot parse or run (Docker exits 1)."""

    exit_code = 1


_ACTION = r"\{\{(.*?)\}\}"           # (compiled on use: re caches them)
_PIPELINE = r"\s*(json\s+)?\.((?:[A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)*)?\s*"


def parse_template(fmt):
    """A Go-template subset -> [literal, (json?, path), literal, ...]:
    {{.Field}}, {{.A.B}}, {{json .Field}}, {{json .}}, {{.}}.  Anything else
    is a TemplateError ('template parsing error: ...'), never output."""
    pieces, pos = [], 0
    for m in re.finditer(_ACTION, fmt, re.S):
        pieces.append(fmt[pos:m.start()])
        action = re.fullmatch(_PIPELINE, m.group(1))
        if not action:
            raise TemplateError(f"template parsing error: {m.group(0)}: contain knows "
                                "only {{.Field}}, {{.Field.Sub}}, {{json .Field}} and "
                                "{{json .}}")
        pieces.append((bool(action.group(1)), action.group(2) or ""))
        pos = m.end()
    rest = fmt[pos:]
    if "{{" in rest:
        raise TemplateError(f"template parsing error: unclosed action in {fmt!r}")
    pieces.append(rest)
    return pieces


def check_template(fmt, known):
    """Refuse a bad ps/images --format before anything is printed."""
    if not fmt or fmt in ("json", "table"):
        return
    text = fmt[6:] if fmt.startswith("table ") else fmt
    for piece in parse_template(text):
        if isinstance(piece, tuple) and piece[1] and piece[1].split(".")[0] not in known:
            raise _no_field(piece[1])


def _no_field(path):
    return TemplateError(f"template: executing at <.{path}>: can't evaluate field "
                         f"{path.split('.')[0]}")


def _lookup(item, path):
    value = item
    for part in path.split(".") if path else ():
        if not isinstance(value, dict) or part not in value:
            raise _no_field(path)
        value = value[part]
    return value


def _execute(pieces, item):
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        as_json, path = piece
        value = _lookup(item, path)
        if as_json or isinstance(value, (dict, list)):
            out.append(fastjson.dumps(value))
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        elif value is None:
            out.append("<no value>")
        else:
            out.append(str(value))
    return "".join(out)


def render_template(fmt, data, known=None):
    """Rows (flat dicts) through a template: the subset of parse_template,
    a 'table' prefix (a header line), \\t and \\n escapes."""
    header = fmt.startswith("table ")
    if header:
        fmt = fmt[6:]
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    pieces = parse_template(fmt)
    if known is not None:
        check_template(fmt, known)
    out = []
    if header:
        out.append("".join(p if isinstance(p, str) else p[1].upper() for p in pieces))
    out += [_execute(pieces, d) for d in data]
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
            "Status": status, "Running": status in ("running", "paused"),
            "Paused": status == "paused",
            "Restarting": status == "restarting", "OOMKilled": bool(st.get("oom_killed")),
            "Dead": status == "dead", "Pid": st.get("pid", 0) if c.running else 0,
            "ExitCode": c.exit_code if status not in ("running", "paused") else 0,
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
    return fastjson.dumps(items, indent=4)


def render_path(fmt, item):
    """--format '{{.State.Status}}' paths into the inspect JSON (an absent key
    is an error, as in Docker, not an empty string)."""
    return _execute(parse_template(fmt), item)
