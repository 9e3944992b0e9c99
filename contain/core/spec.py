"""The OCI runtime-spec configuration (config.json): load, check, default.

The runtime core executes a bundle, a directory holding config.json and
(usually) the root filesystem, and nothing else; this module reads the
configuration and refuses, with one line naming the field, what the core
cannot do faithfully.  Pure logic except for the few host facts the checks
need (does this host have AppArmor, SELinux, a time namespace).

The fields it understands (runtime-spec 1.0.2 to 1.2) are listed in
SUPPORTED below; `contain oci features` prints them.
"""

import os

from .. import fastjson
from ..errors import UsageError

OCI_VERSION = "1.2.0"
SUPPORTED_VERSIONS = ("1.0.", "1.1.", "1.2.")

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

# the mount options the core knows (see mounts.mount_options)
MOUNT_OPTIONS = (
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
    "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec",
    "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
    "nosymfollow", "private", "rbind", "rdev", "rexec", "relatime", "remount", "ro",
    "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnosuid", "rnosymfollow",
    "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "runbindable", "rw",
    "shared", "silent", "slave", "strictatime", "suid", "symfollow", "sync",
    "unbindable", "idmap", "ridmap", "tmpcopyup")


class Bundle:
    """A loaded bundle: its directory, its configuration and root path."""

    def __init__(self, path, config):
        self.path = path
        self.config = config
        root = (config.get("root") or {}).get("path", "rootfs")
        self.rootfs = root if os.path.isabs(root) else os.path.join(path, root)


def load(bundle):
    """Read BUNDLE/config.json and check it; a Bundle."""
    bundle = os.path.abspath(bundle or ".")
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            config = fastjson.loads(f.read())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (is {bundle} an OCI bundle?)") from None
    except OSError as e:
        raise UsageError(f"reading {path}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"{path}: not valid JSON: {e}") from None
    check(config, path)
    b = Bundle(bundle, config)
    if not os.path.isdir(b.rootfs):
        raise UsageError(f"{path}: root.path {b.rootfs} is not a directory")
    return b


def _fail(where, field, why):
    raise UsageError(f"{where}: {field}: {why}")


def _obj(value, where, field):
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(where, field, "expected a JSON object")
    return value


def _list(value, where, field):
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(where, field, "expected a JSON array")
    return value


def check(config, where="config.json"):
    """Refuse what the core cannot run as the spec says (UsageError)."""
    if not isinstance(config, dict):
        _fail(where, "(top)", "expected a JSON object")
    version = config.get("ociVersion")
    if not isinstance(version, str) or not version.startswith(SUPPORTED_VERSIONS):
        _fail(where, "ociVersion", f"{version!r} is not supported (1.0.x to 1.2.x)")
    root = _obj(config.get("root"), where, "root")
    if not isinstance(root.get("path", ""), str) or not root.get("path"):
        _fail(where, "root.path", "required")
    check_process(config.get("process"), where, "process", required=True)
    for i, m in enumerate(_list(config.get("mounts"), where, "mounts")):
        check_mount(m, where, f"mounts[{i}]")
    hooks = _obj(config.get("hooks"), where, "hooks")
    for name, entries in hooks.items():
        if name not in HOOK_NAMES:
            _fail(where, f"hooks.{name}", f"unknown hook (known: {', '.join(HOOK_NAMES)})")
        for i, h in enumerate(_list(entries, where, f"hooks.{name}")):
            if not isinstance(h, dict) or not isinstance(h.get("path"), str) \
                    or not os.path.isabs(h["path"]):
                _fail(where, f"hooks.{name}[{i}].path", "an absolute path is required")
            if h.get("timeout") is not None and (not isinstance(h["timeout"], int)
                                                 or h["timeout"] <= 0):
                _fail(where, f"hooks.{name}[{i}].timeout", "must be a positive integer")
    check_linux(_obj(config.get("linux"), where, "linux"), where)
    return config


def check_process(proc, where, field, required=False):
    if proc is None:
        if required:
            _fail(where, field, "required (contain runs a process in every container)")
        return
    proc = _obj(proc, where, field)
    args = proc.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        _fail(where, f"{field}.args", "a non-empty list of strings is required")
    cwd = proc.get("cwd", "/")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        _fail(where, f"{field}.cwd", "must be an absolute path")
    for e in _list(proc.get("env"), where, f"{field}.env"):
        if not isinstance(e, str) or "=" not in e:
            _fail(where, f"{field}.env", f"{e!r} is not KEY=VALUE")
    user = _obj(proc.get("user"), where, f"{field}.user")
    for key in ("uid", "gid"):
        if not isinstance(user.get(key, 0), int) or user.get(key, 0) < 0:
            _fail(where, f"{field}.user.{key}", "must be a non-negative integer")
    if user.get("username"):
        _fail(where, f"{field}.user.username", "is for Windows containers")
    caps = _obj(proc.get("capabilities"), where, f"{field}.capabilities")
    for name, values in caps.items():
        if name not in CAP_SETS:
            _fail(where, f"{field}.capabilities.{name}", "unknown capability set")
        from .security import cap_number
        for cap in _list(values, where, f"{field}.capabilities.{name}"):
            try:
                cap_number(cap)
            except UsageError:
                _fail(where, f"{field}.capabilities.{name}", f"unknown capability {cap!r}")
    for i, r in enumerate(_list(proc.get("rlimits"), where, f"{field}.rlimits")):
        if not isinstance(r, dict) or rlimit_number(r.get("type")) is None:
            _fail(where, f"{field}.rlimits[{i}]", f"unknown rlimit {r.get('type')!r}")
        for key in ("soft", "hard"):
            value = r.get(key, 0)
            if type(value) is not int or not 0 <= value < 1 << 64:
                _fail(where, f"{field}.rlimits[{i}].{key}", "must be an integer from 0 to 2^64-1")
    if proc.get("apparmorProfile") and not os.path.isdir("/sys/kernel/security/apparmor"):
        _fail(where, f"{field}.apparmorProfile",
              "this host has no AppArmor (no /sys/kernel/security/apparmor)")
    if proc.get("selinuxLabel") and not os.path.isdir("/sys/fs/selinux"):
        _fail(where, f"{field}.selinuxLabel", "this host has no SELinux (no /sys/fs/selinux)")
    if proc.get("apparmorProfile") or proc.get("selinuxLabel"):
        _fail(where, field, "AppArmor and SELinux labels are not supported by contain")
    size = proc.get("consoleSize")
    if size is not None and not (isinstance(size, dict) and isinstance(size.get("height"), int)
                                 and isinstance(size.get("width"), int)):
        _fail(where, f"{field}.consoleSize", "needs integer height and width")


def check_mount(m, where, field):
    if not isinstance(m, dict):
        _fail(where, field, "expected a JSON object")
    dest = m.get("destination")
    if not isinstance(dest, str) or not dest.startswith("/"):
        _fail(where, f"{field}.destination", f"{dest!r} must be an absolute path")
    for key in ("destination", "source"):      # (a C call would cut the path there)
        if "\0" in str(m.get(key) or ""):
            _fail(where, f"{field}.{key}", "contains a NUL byte")
    for opt in _list(m.get("options"), where, f"{field}.options"):
        if not isinstance(opt, str):
            _fail(where, f"{field}.options", f"{opt!r} is not a string")
    opts = m.get("options") or []
    if ("idmap" in opts or "ridmap" in opts) and not (m.get("uidMappings")
                                                      and m.get("gidMappings")):
        _fail(where, field, "idmap needs uidMappings and gidMappings in the mount")


def check_linux(lx, where):
    seen = set()
    for i, ns in enumerate(_list(lx.get("namespaces"), where, "linux.namespaces")):
        kind = ns.get("type") if isinstance(ns, dict) else None
        if kind not in NAMESPACE_TYPES:
            _fail(where, f"linux.namespaces[{i}].type", f"unknown namespace type {kind!r}")
        if kind in seen:
            _fail(where, "linux.namespaces", f"{kind} is listed twice")
        seen.add(kind)
    if (lx.get("uidMappings") or lx.get("gidMappings")) and "user" not in seen:
        _fail(where, "linux.uidMappings", "needs a user namespace (linux.namespaces)")
    if "user" in seen and not any(ns.get("path") for ns in lx["namespaces"]
                                  if ns.get("type") == "user"):
        if not (lx.get("uidMappings") and lx.get("gidMappings")):
            _fail(where, "linux.uidMappings", "a new user namespace needs uid and gid mappings")
    if lx.get("timeOffsets") and "time" not in seen:
        _fail(where, "linux.timeOffsets", "needs a time namespace (linux.namespaces)")
    if "time" in seen and not os.path.exists("/proc/self/ns/time"):
        _fail(where, "linux.namespaces", "this kernel has no time namespaces")
    sec = _obj(lx.get("seccomp"), where, "linux.seccomp")
    if sec.get("listenerPath"):
        _fail(where, "linux.seccomp.listenerPath", "seccomp notification is not supported")
    for i, rule in enumerate(_list(sec.get("syscalls"), where, "linux.seccomp.syscalls")):
        if isinstance(rule, dict) and rule.get("action") == "SCMP_ACT_NOTIFY":
            _fail(where, f"linux.seccomp.syscalls[{i}].action",
                  "SCMP_ACT_NOTIFY is not supported (it needs a listener)")
    for flag in _list(sec.get("flags"), where, "linux.seccomp.flags"):
        if flag not in SECCOMP_FLAGS:
            _fail(where, "linux.seccomp.flags", f"unknown flag {flag!r}")
    for i, d in enumerate(_list(lx.get("devices"), where, "linux.devices")):
        if not isinstance(d, dict) or d.get("type") not in ("c", "b", "u", "p") \
                or not str(d.get("path", "")).startswith("/dev/"):
            _fail(where, f"linux.devices[{i}]", "needs a type (c, b, u, p) and a path in /dev")
    prop = lx.get("rootfsPropagation")
    if prop and prop not in ("private", "rprivate", "slave", "rslave", "shared", "rshared",
                             "unbindable", "runbindable"):
        _fail(where, "linux.rootfsPropagation", f"unknown propagation {prop!r}")
    if lx.get("intelRdt"):
        _fail(where, "linux.intelRdt", "Intel RDT is not supported")
    if lx.get("personality"):
        domain = (lx["personality"] or {}).get("domain")
        if domain not in ("LINUX", "LINUX32"):
            _fail(where, "linux.personality.domain", f"unknown domain {domain!r}")


SECCOMP_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                 "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")

# <asm-generic/resource.h>
RLIMITS = ("RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
           "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
           "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
           "RLIMIT_RTPRIO", "RLIMIT_RTTIME")


def rlimit_number(name):
    return RLIMITS.index(name) if name in RLIMITS else None


def namespaces(config):
    """{type: path or None} of linux.namespaces."""
    return {ns["type"]: ns.get("path") or None
            for ns in (config.get("linux") or {}).get("namespaces") or ()}


def hooks(config, name):
    return list((config.get("hooks") or {}).get(name) or ())


# ------------------------------------------------------------- `spec`
def default_spec(rootless=False):
    """The configuration `contain oci spec` writes: runc spec's defaults (a
    shell on a terminal, the three capabilities runc keeps, runc's mounts,
    masked and read-only paths)."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    spec = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "contain",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount",
                                                 "cgroup")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
    if rootless:
        uid, gid = os.getuid(), os.getgid()
        lx = spec["linux"]
        lx["namespaces"] = [ns for ns in lx["namespaces"] if ns["type"] != "network"] \
            + [{"type": "user"}]
        lx["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
        lx["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
        lx.pop("resources")
        spec["mounts"] = [m for m in spec["mounts"] if m["type"] not in ("mqueue", "cgroup")]
    return spec


def features():
    """What `contain oci features` prints (the runtime-spec features.json)."""
    from . import linux
    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_NAMES), "mountOptions": sorted(MOUNT_OPTIONS),
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": _cap_names(),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": {"enabled": True, "actions": [
                "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                              "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
                "knownFlags": list(SECCOMP_FLAGS), "supportedFlags": []},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": bool(getattr(linux, "SYS_mount_setattr",
                                                                  0))}},
        },
        "annotations": {"io.github.contain.runtime": "contain"},
    }


def _cap_names():
    from .security import CAP_NAMES, last_cap
    top = last_cap()
    return sorted((n for n, v in CAP_NAMES.items() if v <= top), key=CAP_NAMES.get)


def parse_signal(value):
    """'SIGTERM', 'TERM', '15', 'RTMIN+2' -> the signal number."""
    import signal
    if value is None or value == "":
        return signal.SIGTERM
    text = str(value).upper()
    if text.isdigit():
        num = int(text)
        if 0 < num < signal.NSIG:
            return num
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        sig = getattr(signal.Signals, name, None) if hasattr(signal.Signals, name) else None
        if sig is not None:
            return int(sig)
        if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
            base = signal.SIGRTMIN if "MIN" in name else signal.SIGRTMAX
            off = name[8:]
            try:
                return int(base) + (int(off) if off else 0)
            except ValueError:
                pass
    raise UsageError(f"invalid signal: {value}")
