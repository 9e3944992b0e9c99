"""A container's configuration: built from command-line options, validated,
and stored as config.json.  Pure logic: no kernel calls, fast to test.

The configuration is a plain dict (JSON-serialisable) with these keys:
    id, name, created, argv, env, cwd, user, hostname, tty, interactive,
    rootfs {type: dir|tar|image, ...}, read_only, limits {...},
    cgroup_parent, network {...}, security {...}, mounts [...], init,
    restart {name, max}, stop_signal, stop_timeout, log {max_size, max_file},
    labels, auto_remove, image (the reference the user gave), exposed_ports
"""

import os

from ..core.spec import parse_signal  # noqa: F401  (one parser for both halves)
from ..errors import UsageError

DEFAULT_CGROUP_PARENT = "contain"
DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_LOG_MAX_FILE = 3


def parse_env(items, env_files=(), host_env=None):
    """-e KEY=VAL, -e KEY (the host's value, skipped if unset), --env-file."""
    host_env = os.environ if host_env is None else host_env
    out = []
    for path in env_files:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise UsageError(f"open {path}: {e.strerror}") from None
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(_env_item(line, host_env))
    for item in items:
        out.append(_env_item(item, host_env))
    return [e for e in out if e is not None]


def _env_item(item, host_env):
    key, eq, value = item.partition("=")
    if not key or any(c.isspace() for c in key):
        raise UsageError(f'invalid environment variable: "{item}"')
    if eq:
        return f"{key}={value}"
    if key in host_env:
        return f"{key}={host_env[key]}"
    return None


def merge_env(base, extra):
    """Environment lists merged by key, later entries winning, order kept."""
    merged = {}
    for item in list(base) + list(extra):
        key, _, value = item.partition("=")
        merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def default_env(cfg, tty):
    """Docker's environment: PATH, HOSTNAME, TERM (with -t), then the image's
    and the user's variables (HOME is added in the child from /etc/passwd)."""
    from ..core.init import DEFAULT_PATH
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={cfg['hostname']}"]
    if tty:
        base.append("TERM=xterm")
    return merge_env(base, cfg.get("env", []))


def parse_restart(value):
    """no | on-failure[:N] | always | unless-stopped."""
    name, _, count = (value or "no").partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise UsageError(f"invalid restart policy: {value} "
                         "(use no, on-failure[:max-retries], always or unless-stopped)")
    if count and name != "on-failure":
        raise UsageError(f"invalid restart policy: {value}: only on-failure takes a count")
    if count and not count.isdigit():
        raise UsageError(f"invalid restart policy: {value}: the maximum retry count "
                         "must be a non-negative integer")
    return {"name": name, "max": int(count) if count else 0}


def parse_log_opts(opts):
    """--log-opt max-size=10m --log-opt max-file=3."""
    from ..core.cgroups.limits import parse_bytes
    out = {"max_size": DEFAULT_LOG_MAX_SIZE, "max_file": DEFAULT_LOG_MAX_FILE}
    for item in opts:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"invalid log option {item}: expected KEY=VALUE")
        if key == "max-size":
            out["max_size"] = -1 if value == "-1" else parse_bytes(value, "--log-opt max-size")
        elif key == "max-file":
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"invalid log option max-file={value}: must be a positive integer")
            out["max_file"] = int(value)
        else:
            raise UsageError(f"unknown log option {key} (supported: max-size, max-file)")
    return out


VOLUME_NAME_RE = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"


def check_volume_name(name, what="volume name"):
    """Docker's rule for local volume names; they become directory names
    under STATE/volumes, so nothing else may pass (no '/', no '..')."""
    import re
    if not re.match(VOLUME_NAME_RE, name or "") or len(name) > 255:
        raise UsageError(f'"{name}" includes invalid characters for a local volume name, '
                         'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended '
                         "to pass a host directory, use absolute path")
    return name


# What runc lets a bind mount cover inside /proc (lxcfs's files); anything
# else there would hide or fake the kernel's view.
PROC_BIND_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
                     "/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
                     "/proc/net/dev", "/proc/sys/kernel/ns_last_pid")


def check_mount_target(target, kind, spec):
    """Refuse destinations Docker and runc refuse: '/', and /proc or a path
    in it (but the lxcfs files runc allows)."""
    if not target.startswith("/"):
        raise UsageError(f"invalid mount config for type \"{kind}\": invalid mount path: "
                         f"'{target}' mount path must be absolute ('{spec}')")
    norm = os.path.normpath(target)
    norm = "/" + norm.lstrip("/")
    if norm == "/":
        raise UsageError(f"invalid mount config for type \"{kind}\": invalid specification: "
                         f"destination can't be '/' ('{spec}')")
    if norm == "/proc":
        raise UsageError(f"invalid mount config for type \"{kind}\": \"/proc\" cannot be "
                         f"mounted because it is not of type proc ('{spec}')")
    if norm.startswith("/proc/") and norm not in PROC_BIND_ALLOWED:
        raise UsageError(f"invalid mount config for type \"{kind}\": \"{norm}\" cannot be "
                         f"mounted because it is inside /proc ('{spec}')")
    return norm


def parse_volume(spec):
    """-v HOSTPATH:CONTAINERPATH[:OPTIONS], -v NAME:CONTAINERPATH[:OPTIONS]
    (a named volume) or -v CONTAINERPATH (an anonymous volume).  A missing
    HOSTPATH is created (as a directory) when the container is created, as
    Docker does for -v (not for --mount)."""
    parts = spec.split(":")
    if len(parts) == 1 and parts[0].startswith("/"):
        parts = ["", parts[0]]            # -v /data: an anonymous volume
    elif len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise UsageError(f"invalid volume specification: '{spec}' "
                         "(expected HOSTPATH:CONTAINERPATH[:OPTIONS] or NAME:CONTAINERPATH)")
    source, target = parts[0], parts[1]
    if not target.startswith("/"):
        raise UsageError(f"invalid volume specification: '{spec}': "
                         "the container path must be absolute")
    kind = "bind" if source.startswith("/") else "volume"
    target = check_mount_target(target, kind, spec)
    if kind == "bind":
        mount = {"type": "bind", "source": os.path.realpath(source), "target": target,
                 "readonly": False, "propagation": None, "create_source": True}
    else:
        mount = volume_mount(source, target, False)
    from ..core.mounts import PROPAGATION
    for opt in (parts[2].split(",") if len(parts) == 3 else []):
        if opt in ("ro", "rw"):
            mount["readonly"] = opt == "ro"
        elif opt in PROPAGATION and kind == "bind":
            mount["propagation"] = opt
        elif opt == "nocopy" and kind == "volume":
            mount["nocopy"] = True
        elif opt in ("z", "Z", ""):
            pass  # SELinux relabel requests: nothing to do without SELinux
        else:
            raise UsageError(f"invalid volume specification: '{spec}': unknown option {opt}")
    return mount


def volume_mount(name, target, readonly):
    """A named volume, or (no name) an anonymous one: a random name, removed
    with the container by `rm -v` or --rm."""
    if name:
        return {"type": "volume", "name": check_volume_name(name), "target": target,
                "readonly": readonly}
    return {"type": "volume", "name": os.urandom(32).hex(), "anonymous": True,
            "target": target, "readonly": readonly}


MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro",
              "bind-propagation", "volume-nocopy", "tmpfs-size", "tmpfs-mode", "consistency"}


def parse_mount(spec):
    """--mount type=bind|volume|tmpfs,source=,target=[,readonly][,...]
    (Docker's syntax; a bind's source must exist, as in Docker)."""
    fields = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key not in MOUNT_KEYS:
            raise UsageError(f"invalid argument \"{spec}\" for \"--mount\" flag: "
                             f"unexpected key '{key}' in '{item}'")
        if not eq and key not in ("readonly", "ro", "volume-nocopy"):
            raise UsageError(f"invalid argument \"{spec}\" for \"--mount\" flag: "
                             f"invalid field '{item}' must be a key=value pair")
        fields[{"src": "source", "destination": "target", "dst": "target",
                "ro": "readonly"}.get(key, key)] = value if eq else "true"
    kind = fields.get("type", "volume")
    target = fields.get("target")
    if not target:
        raise UsageError(f"invalid argument \"{spec}\" for \"--mount\" flag: "
                         "target is required")
    target = check_mount_target(target, kind, spec)
    readonly = _mount_bool(fields.get("readonly", "false"), spec)
    source = fields.get("source", "")
    if kind == "bind":
        if not source:
            raise UsageError(f"invalid mount config for type \"bind\": "
                             f"field Source must not be empty ('{spec}')")
        real = os.path.realpath(source)
        if not os.path.exists(real):
            raise UsageError(f"invalid mount config for type \"bind\": "
                             f"bind source path does not exist: {source}")
        prop = fields.get("bind-propagation")
        from ..core.mounts import PROPAGATION
        if prop is not None and prop not in PROPAGATION:
            raise UsageError(f"invalid bind-propagation {prop!r} in '{spec}'")
        return {"type": "bind", "source": real, "target": target, "readonly": readonly,
                "propagation": prop}
    if kind == "volume":
        return dict(volume_mount(source, target, readonly),
                    nocopy=_mount_bool(fields.get("volume-nocopy", "false"), spec))
    if kind == "tmpfs":
        if source:
            raise UsageError(f"invalid mount config for type \"tmpfs\": "
                             f"field Source must be empty ('{spec}')")
        opts = ["ro"] if readonly else []
        if "tmpfs-size" in fields:
            from ..core.cgroups.limits import parse_bytes
            opts.append(f"size={parse_bytes(fields['tmpfs-size'], '--mount tmpfs-size')}")
        if "tmpfs-mode" in fields:
            mode = fields["tmpfs-mode"]
            try:
                int(mode, 8)
            except ValueError:
                raise UsageError(f"invalid tmpfs-mode {mode!r} in '{spec}': "
                                 "an octal mode such as 1777") from None
            opts.append(f"mode={mode}")
        # Docker's --mount tmpfs: nosuid,nodev (exec allowed), unlike --tmpfs
        return parse_tmpfs(f"{target}:" + ",".join(opts + ["exec"]))
    raise UsageError(f"invalid argument \"{spec}\" for \"--mount\" flag: "
                     f"unsupported mount type '{kind}' (bind, volume or tmpfs)")


def _mount_bool(value, spec):
    if value.lower() in ("true", "1", ""):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise UsageError(f"invalid argument \"{spec}\" for \"--mount\" flag: "
                     f"invalid boolean value {value!r}")


def parse_tmpfs(spec):
    """--tmpfs PATH[:options] (size=, mode=, ro, noexec, nosuid, nodev, exec...)."""
    from ..core import linux
    target, _, opts = spec.partition(":")
    if not target.startswith("/"):
        raise UsageError(f"invalid tmpfs specification: '{spec}': path must be absolute")
    target = check_mount_target(target, "tmpfs", spec)
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    data = []
    table = {"ro": (linux.MS_RDONLY, 0), "rw": (0, linux.MS_RDONLY),
             "noexec": (linux.MS_NOEXEC, 0), "exec": (0, linux.MS_NOEXEC),
             "nosuid": (linux.MS_NOSUID, 0), "suid": (0, linux.MS_NOSUID),
             "nodev": (linux.MS_NODEV, 0), "dev": (0, linux.MS_NODEV)}
    for opt in filter(None, opts.split(",")):
        if opt in table:
            flags = (flags | table[opt][0]) & ~table[opt][1]
        elif opt.split("=")[0] in ("size", "mode", "uid", "gid", "nr_inodes"):
            data.append(opt)
        else:
            raise UsageError(f"invalid tmpfs option {opt} in '{spec}'")
    return {"type": "tmpfs", "target": target, "flags": flags, "data": ",".join(data)}


def validate_argv(argv):
    if not argv:
        raise UsageError("no command specified")
    return list(argv)


LEGACY_CPU_PERIOD = 100000


def legacy_cpu(quota, limits):
    """--cpu N, the older projects' flag: N microseconds of CPU per 100 ms
    (cpu.max "N 100000"), i.e. --cpu-quota N --cpu-period 100000."""
    if quota is None:
        return {}
    if "cpu_quota" in limits or limits.get("cpu_period", LEGACY_CPU_PERIOD) != LEGACY_CPU_PERIOD:
        raise UsageError("--cpu N means --cpu-quota N --cpu-period 100000: "
                         "do not combine it with --cpu-quota or another --cpu-period")
    return {"cpu_quota": quota, "cpu_period": LEGACY_CPU_PERIOD}


def limits_from_args(ns):
    """The cgroup limits dict from run/create/update flags (None = unset)."""
    from ..core.cgroups.limits import FLAGS, parse_bytes
    from . import limits as resource_flags
    limits = {}
    if getattr(ns, "memory", None):
        limits["memory"] = parse_bytes(ns.memory, "--memory")
    if getattr(ns, "memory_reservation", None):
        limits["memory_reservation"] = parse_bytes(ns.memory_reservation,
                                                   "--memory-reservation")
    if getattr(ns, "memory_swap", None):
        limits["memory_swap"] = resource_flags.parse_memory_swap(ns.memory_swap)
    if getattr(ns, "cpus", None):
        limits["nano_cpus"] = resource_flags.parse_cpus(ns.cpus)
    for key in ("cpu_period", "cpu_quota", "cpu_shares", "pids_limit", "blkio_weight"):
        if getattr(ns, key, None) is not None:
            limits[key] = getattr(ns, key)
    limits.update(legacy_cpu(getattr(ns, "cpu", None), limits))
    for key in ("cpuset_cpus", "cpuset_mems"):
        if getattr(ns, key, None):
            limits[key] = resource_flags.parse_cpuset(getattr(ns, key), "--" + key.replace("_", "-"))
    for key in ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops"):
        values = getattr(ns, key, None) or []
        if values:
            limits[key] = [resource_flags.parse_device_rate(v, iops=key.endswith("iops"),
                                                            flag=FLAGS[key])
                           for v in values]
    return limits


# ------------------------------------------------- --ulimit, --device, --cgroup-conf
ULIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
RLIM_INFINITY = 2**64 - 1   # config.json's unlimited (uint64)


def parse_ulimit(spec, host_hard=None, may_raise=None):
    """--ulimit NAME=SOFT[:HARD] -> a config.json rlimit.  A hard limit above
    the current one needs CAP_SYS_RESOURCE: without it the limit is refused
    here, with its reason, instead of failing inside the container."""
    import resource
    name, eq, values = spec.partition("=")
    if not eq or name not in ULIMITS:
        raise UsageError(f"invalid ulimit argument: {spec} (expected NAME=SOFT[:HARD], "
                         f"NAME one of {', '.join(ULIMITS)})")
    soft_text, _, hard_text = values.partition(":")
    soft, hard = _rlimit_value(soft_text, spec), _rlimit_value(hard_text or soft_text, spec)
    if soft > hard:
        raise UsageError(f"ulimit soft limit must be less than or equal to hard limit: "
                         f"{soft_text} > {hard_text}")
    res = getattr(resource, "RLIMIT_" + name.upper())
    if host_hard is None:
        current = resource.getrlimit(res)[1]
        host_hard = RLIM_INFINITY if current == resource.RLIM_INFINITY else current
    if may_raise is None:
        may_raise = has_cap_sys_resource()
    if hard > host_hard and not may_raise:
        raise UsageError(f"--ulimit {spec}: the hard limit is above this host's "
                         f"({_rlimit_text(host_hard)}), and raising it needs "
                         "CAP_SYS_RESOURCE, which contain does not have here")
    return {"type": "RLIMIT_" + name.upper(), "soft": soft, "hard": hard}


def _rlimit_value(text, spec):
    if text in ("-1", "unlimited"):
        return RLIM_INFINITY
    if not text.isdigit():
        raise UsageError(f"invalid ulimit argument: {spec}: {text!r} is not a number")
    return int(text)


def _rlimit_text(value):
    return "unlimited" if value == RLIM_INFINITY else str(value)


def has_cap_sys_resource():
    """Is CAP_SYS_RESOURCE (24) in our effective set?"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> 24 & 1)
    except OSError:
        pass
    return False


def parse_devices(spec):
    """--device HOST[:CONTAINER][:rwm] -> [{path, type, major, minor, access...}]
    (each node is made in the container and allowed by the device cgroup).
    HOST may be a directory (/dev/snd): every device node below it, found
    without following links, at the same place below CONTAINER, as Docker
    does."""
    import stat
    parts = spec.split(":")
    access = "rwm"
    if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm") \
            and not parts[-1].startswith("/"):
        access = parts.pop()
    if len(parts) > 2 or not parts[0]:
        raise UsageError(f"invalid device specification: {spec} "
                         "(expected HOST[:CONTAINER][:rwm])")
    host = parts[0]
    target = parts[1] if len(parts) == 2 else host
    if not host.startswith("/") or not target.startswith("/"):
        raise UsageError(f"invalid device specification: {spec}: paths must be absolute")
    access = "".join(sorted(set(access), key="rwm".index))
    try:
        st = os.stat(host)
    except OSError as e:
        raise UsageError(f"error gathering device information while adding custom device "
                         f"\"{host}\": {e.strerror.lower()}") from None
    nodes = [(host, st)]
    if stat.S_ISDIR(st.st_mode):
        host = os.path.realpath(host)
        nodes = []
        for top, dirs, files in os.walk(host):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(top, name)
                try:
                    nodes.append((path, os.lstat(path)))
                except OSError:
                    continue
    devices = [{"path": os.path.normpath(target + path[len(host):]),
                "type": "c" if stat.S_ISCHR(node.st_mode) else "b",
                "major": os.major(node.st_rdev), "minor": os.minor(node.st_rdev),
                "fileMode": stat.S_IMODE(node.st_mode), "uid": 0, "gid": 0, "access": access}
               for path, node in nodes
               if stat.S_ISCHR(node.st_mode) or stat.S_ISBLK(node.st_mode)]
    if not devices:
        raise UsageError(f"error gathering device information while adding custom device "
                         f"\"{parts[0]}\": not a device node")
    return devices


def parse_cgroup_conf(items):
    """podman's --cgroup-conf KEY=VALUE (memory.high=64m...): cgroup v2 files
    written as given (linux.resources.unified)."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        ctrl, dot, rest = key.partition(".")
        if not eq or not dot or not ctrl or not rest or "/" in key or key.startswith(".") \
                or any(c.isspace() for c in key):
            raise UsageError(f"invalid --cgroup-conf {item!r}: expected KEY=VALUE with KEY "
                             "a cgroup v2 file such as memory.high")
        out[key] = value
    return out
