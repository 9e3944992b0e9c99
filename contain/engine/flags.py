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
import signal

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
    from ..core.cgroups import parse_bytes
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


def parse_volume(spec):
    """-v HOSTPATH:CONTAINERPATH[:ro|rw][,propagation]."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise UsageError(f"invalid volume specification: '{spec}' "
                         "(expected HOSTPATH:CONTAINERPATH[:OPTIONS])")
    source, target = parts[0], parts[1]
    if not source.startswith("/"):
        raise UsageError(f"invalid volume specification: '{spec}': "
                         "the host path must be absolute (named volumes are not supported)")
    if not target.startswith("/"):
        raise UsageError(f"invalid volume specification: '{spec}': "
                         "the container path must be absolute")
    mount = {"type": "bind", "source": os.path.realpath(source), "target": target,
             "readonly": False, "propagation": None}
    from ..core.mounts import PROPAGATION
    for opt in (parts[2].split(",") if len(parts) == 3 else []):
        if opt in ("ro", "rw"):
            mount["readonly"] = opt == "ro"
        elif opt in PROPAGATION:
            mount["propagation"] = opt
        elif opt in ("z", "Z", ""):
            pass  # SELinux relabel requests: nothing to do without SELinux
        else:
            raise UsageError(f"invalid volume specification: '{spec}': unknown option {opt}")
    if not os.path.exists(mount["source"]):
        raise UsageError(f"invalid volume specification: '{spec}': "
                         f"host path {source} does not exist")
    return mount


def parse_tmpfs(spec):
    """--tmpfs PATH[:options] (size=, mode=, ro, noexec, nosuid, nodev, exec...)."""
    from ..core import linux
    target, _, opts = spec.partition(":")
    if not target.startswith("/"):
        raise UsageError(f"invalid tmpfs specification: '{spec}': path must be absolute")
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
    from ..core import cgroups
    limits = {}
    if getattr(ns, "memory", None):
        limits["memory"] = cgroups.parse_bytes(ns.memory, "--memory")
    if getattr(ns, "memory_reservation", None):
        limits["memory_reservation"] = cgroups.parse_bytes(ns.memory_reservation,
                                                           "--memory-reservation")
    if getattr(ns, "memory_swap", None):
        limits["memory_swap"] = cgroups.parse_memory_swap(ns.memory_swap)
    if getattr(ns, "cpus", None):
        limits["nano_cpus"] = cgroups.parse_cpus(ns.cpus)
    for key in ("cpu_period", "cpu_quota", "cpu_shares", "pids_limit", "blkio_weight"):
        if getattr(ns, key, None) is not None:
            limits[key] = getattr(ns, key)
    limits.update(legacy_cpu(getattr(ns, "cpu", None), limits))
    for key in ("cpuset_cpus", "cpuset_mems"):
        if getattr(ns, key, None):
            limits[key] = cgroups.parse_cpuset(getattr(ns, key), "--" + key.replace("_", "-"))
    for key in ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops"):
        values = getattr(ns, key, None) or []
        if values:
            limits[key] = [cgroups.parse_device_rate(v, iops=key.endswith("iops"),
                                                     flag=cgroups.FLAGS[key])
                           for v in values]
    return limits
