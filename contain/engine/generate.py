"""Docker's defaults, written as an OCI config.json: what `contain run`
hands the runtime core, as Docker and podman hand theirs to runc.

The engine's container configuration (flags.py: argv, env, user, limits,
security, mounts, network...) becomes one config.json in the container's
bundle directory, `containers/<id>/bundle/`.  Everything Docker users
expect and a bare runtime would not do lives here: the /proc, /dev, /sys
and cgroup mounts, the masked and read-only paths, the 14 capabilities,
the seccomp profile resolved for them, the device allow-list, the user
name looked up in the image, /etc/hostname, hosts and resolv.conf.  The
network stays on the engine's side: the core calls back once the
container's namespaces exist (`on_namespaces`), and the engine moves its
veth in, as a createRuntime hook would.

`contain run -v` prints each step of the core's plan with the config.json
entry it came from (mounts[3], linux.maskedPaths...).
"""

import os

from . import defaults
from .flags import default_env
from .users import lookup_user
from ..core import security
from ..core.spec import OCI_VERSION
from ..errors import ContainError

def config_for(c, tty=False, netinfo=None):
    """config.json for container c (an engine state.Container)."""
    cfg = c.config
    sec = cfg.get("security") or {}
    privileged = bool(sec.get("privileged"))
    opts = defaults.parse_security_opts(sec.get("security_opt") or ())
    unmasked = privileged or opts["systempaths"] == "unconfined"
    uns = c.state.get("userns")
    root_path, root_mounts = root_for(c, uns)
    config = {
        "ociVersion": OCI_VERSION,
        "process": process_for(c, tty, root_path if not root_mounts else None),
        "root": {"path": root_path, "readonly": bool(cfg.get("read_only"))},
        "hostname": cfg["hostname"],
        "mounts": root_mounts + default_mounts(privileged) + etc_mounts(c, netinfo)
        + user_mounts(cfg.get("mounts") or (), c.store.root),
        "annotations": {"io.contain.name": c.name,
                        **({"run.contain.init": "true"} if cfg.get("init") else {})},
        "linux": {
            "namespaces": namespaces_for(cfg, netinfo, uns),
            "resources": resources_for(cfg.get("limits") or {}, privileged,
                                       cfg.get("devices") or (), cfg.get("cgroup_conf")),
            "cgroupsPath": f"/{cfg.get('cgroup_parent') or 'contain'}/{c.id}",
            "rootfsPropagation": "rprivate",
        },
    }
    lx = config["linux"]
    if cfg.get("devices"):
        lx["devices"] = [{k: d[k] for k in ("path", "type", "major", "minor", "fileMode",
                                            "uid", "gid")} for d in cfg["devices"]]
    if not unmasked:
        lx["maskedPaths"] = list(defaults.MASKED_PATHS)
        lx["readonlyPaths"] = list(defaults.READONLY_PATHS)
    if uns:
        lx["uidMappings"] = lx["gidMappings"] = [
            {"containerID": 0, "hostID": uns["start"], "size": uns["size"]}]
    seccomp = seccomp_for(sec, opts, config["process"]["capabilities"]["bounding"],
                          privileged)
    if seccomp:
        lx["seccomp"] = seccomp
    return config


# --------------------------------------------------------------- the root
def root_for(c, uns):
    """(root.path, mounts that make "/"): a directory as it is; an image's
    overlay (or an idmapped directory) mounted on the container's own empty
    rootfs/ inside its mount namespace, so nothing is ever mounted on the
    host and nothing is left to unmount after a crash."""
    rootfs = c.config["rootfs"]
    idmap = uns and uns.get("rootfs") == "idmap"
    maps = {"uidMappings": [{"containerID": 0, "hostID": uns["start"], "size": uns["size"]}],
            "gidMappings": [{"containerID": 0, "hostID": uns["start"], "size": uns["size"]}]} \
        if idmap else {}
    if rootfs["type"] == "image":
        from .images import overlay_mount_data
        data, cwd = overlay_mount_data(rootfs["layers"], c.path("upper"), c.path("work"))
        if cwd:   # too long for one page: relative to the bundle (the core's cwd)
            data = _short_lowerdirs(c, rootfs["layers"])
        return c.path("rootfs"), [{
            "destination": "/", "type": "overlay", "source": "overlay",
            "options": data.split(",") + (["idmap"] if idmap else []), **maps}]
    path = rootfs["path"] if rootfs["type"] == "dir" else c.path("rootfs")
    if idmap:
        os.makedirs(c.path("idmapped-root"), exist_ok=True)
        return c.path("idmapped-root"), [{"destination": "/", "type": "bind", "source": path,
                                          "options": ["rbind", "idmap"], **maps}]
    return path, []


def _short_lowerdirs(c, layers):
    """lowerdir=l/N:... through short links in the bundle (overlayfs resolves
    them at mount time), for images with too many layers for absolute paths."""
    links = os.path.join(bundle_dir(c), "l")
    os.makedirs(links, exist_ok=True)
    names = []
    for n, layer in enumerate(reversed(layers)):
        name = os.path.join(links, str(n))
        if os.path.lexists(name):
            os.unlink(name)
        os.symlink(layer, name)
        names.append(f"l/{n}")
    return (f"lowerdir={':'.join(names)},upperdir={c.path('upper')},"
            f"workdir={c.path('work')}")


# ------------------------------------------------------------ the process
def process_for(c, tty, rootfs_dir=None):
    """process: argv, Docker's environment, the user looked up in the image,
    the capability sets, no_new_privs only when asked."""
    cfg = c.config
    sec = cfg.get("security") or {}
    opts = defaults.parse_security_opts(sec.get("security_opt") or ())
    caps = sorted(defaults.resolve_caps(sec.get("cap_add") or (), sec.get("cap_drop") or (),
                                        bool(sec.get("privileged"))))
    names = [security.cap_name(n) for n in caps if n <= security.last_cap()]
    uid, gid, groups = lookup_user(c, cfg.get("user") or "")
    process = {
        "terminal": bool(tty), "args": list(cfg["argv"]),
        "env": default_env(cfg, tty), "cwd": cfg.get("cwd") or "/",
        "user": {"uid": uid, "gid": gid, "additionalGids": groups},
        "capabilities": {k: list(names) for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": bool(opts["no_new_privileges"]),
    }
    if cfg.get("ulimits"):
        process["rlimits"] = [dict(r) for r in cfg["ulimits"]]
    return process


# ---------------------------------------------------------------- mounts
def default_mounts(privileged):
    """Docker's /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and
    /sys/fs/cgroup (read-only unless privileged)."""
    ro = [] if privileged else ["ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "nodev", "noexec"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev"] + ro},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev"] + ro},
    ]


def etc_mounts(c, netinfo):
    """/etc/hostname, /etc/hosts and /etc/resolv.conf, written by the engine."""
    from .runtime import write_etc_files
    return [{"destination": target, "type": "bind", "source": source,
             "options": ["rbind", "rprivate"]}
            for target, source in sorted(write_etc_files(c, netinfo).items())]


def user_mounts(entries, store_root=None):
    """-v/--mount binds and volumes (read-only recursively: a mount below
    stays read-only too) and --tmpfs mounts."""
    from ..core import linux
    from .volumes import data_dir
    out = []
    for m in entries:
        if m["type"] == "volume":
            m = dict(m, source=data_dir(store_root, m["name"]))
        if m["type"] == "tmpfs":
            flags = m.get("flags", linux.MS_NOSUID | linux.MS_NODEV)
            opts = [name for bit, name in ((linux.MS_RDONLY, "ro"), (linux.MS_NOSUID, "nosuid"),
                                           (linux.MS_NODEV, "nodev"),
                                           (linux.MS_NOEXEC, "noexec")) if flags & bit]
            opts += [o for o in (m.get("data") or "").split(",") if o]
            out.append({"destination": m["target"], "type": "tmpfs", "source": "tmpfs",
                        "options": opts})
            continue
        opts = ["rbind", m.get("propagation") or "rprivate"]
        if m.get("readonly"):
            opts += ["ro", "rro"]
        out.append({"destination": m["target"], "type": "bind", "source": m["source"],
                    "options": opts})
    return out


# ------------------------------------------------------------- namespaces
def namespaces_for(cfg, netinfo, uns):
    mode = (cfg.get("network") or {}).get("mode", "none")
    kinds = ["pid", "ipc", "mount", "cgroup"]
    if mode != "host":
        kinds.append("uts")
    out = [{"type": k} for k in kinds]
    if mode.startswith("container:"):
        out.append({"type": "network", "path": f"/proc/{netinfo['container_pid']}/ns/net"})
    elif mode != "host":
        out.append({"type": "network"})
    if uns:
        out.append({"type": "user"})
    return out


# -------------------------------------------------------------- resources
def resources_for(limits, privileged, devices=(), unified=None):
    """linux.resources from Docker's limits (--cpus becomes a CFS quota over
    the default 100 ms period, as Docker hands it to runc), --device's allow
    rules and --cgroup-conf's cgroup v2 files."""
    res = {}
    mem = {k: limits[n] for k, n in (("limit", "memory"), ("reservation",
                                                          "memory_reservation"),
                                      ("swap", "memory_swap")) if limits.get(n) is not None}
    if mem:
        res["memory"] = mem
    cpu = {k: limits[n] for k, n in (("shares", "cpu_shares"), ("quota", "cpu_quota"),
                                      ("period", "cpu_period"), ("cpus", "cpuset_cpus"),
                                      ("mems", "cpuset_mems")) if limits.get(n) is not None}
    if limits.get("nano_cpus"):
        period = cpu.get("period") or 100000
        cpu.update(period=period, quota=limits["nano_cpus"] * period // 10**9)
    if cpu:
        res["cpu"] = cpu
    if limits.get("pids_limit") is not None:
        res["pids"] = {"limit": limits["pids_limit"]}
    blkio = {}
    if limits.get("blkio_weight") is not None:
        blkio["weight"] = limits["blkio_weight"]
    for key, name in (("throttleReadBpsDevice", "device_read_bps"),
                      ("throttleWriteBpsDevice", "device_write_bps"),
                      ("throttleReadIOPSDevice", "device_read_iops"),
                      ("throttleWriteIOPSDevice", "device_write_iops")):
        if limits.get(name):
            blkio[key] = [{"major": r["major"], "minor": r["minor"], "rate": r["rate"]}
                          for r in limits[name]]
    if blkio:
        res["blockIO"] = blkio
    res["devices"] = device_rules(privileged) + [
        {"allow": True, "type": d["type"], "major": d["major"], "minor": d["minor"],
         "access": d["access"]} for d in devices]
    if unified:
        res["unified"] = dict(unified)
    return res


def device_rules(privileged):
    """Docker's device cgroup: everything when privileged, else deny all
    and allow the harmless nodes (runc's AllowedDevices)."""
    if privileged:
        return [{"allow": True, "access": "rwm"}]
    rules = [{"allow": False, "access": "rwm"}]
    for text in defaults.DEFAULT_DEVICE_RULES:
        kind, nums, access = text.split()
        major, minor = nums.split(":")
        rules.append({"allow": True, "type": kind,
                      "major": None if major == "*" else int(major),
                      "minor": None if minor == "*" else int(minor), "access": access})
    return rules


# ---------------------------------------------------------------- seccomp
def seccomp_for(sec, opts, cap_names, privileged):
    """Docker's default profile (or --security-opt seccomp=PROFILE) for the
    container's capabilities, in OCI form; None for unconfined."""
    if privileged or opts["seccomp"] == "unconfined":
        return None
    from ..core import seccomp
    caps = {security.cap_number(n) for n in cap_names}
    profile = opts["seccomp"]
    if profile is None:
        return seccomp.resolve_profile(defaults.DEFAULT_PROFILE, caps)
    from .. import fastjson
    try:    # (a profile file was read into the record at create: embed_seccomp_profiles)
        return seccomp.resolve_profile(fastjson.loads(profile), caps)
    except ValueError as e:
        raise ContainError(f"the container's seccomp profile is not valid JSON: {e}") from None


# ----------------------------------------------------------------- bundle
def bundle_dir(c):
    return c.path("bundle")


def write_bundle(c, config):
    """containers/<id>/bundle/config.json (written for every start: the
    network namespace to join, the terminal and the user may differ)."""
    from .state import write_json
    d = bundle_dir(c)
    os.makedirs(d, mode=0o700, exist_ok=True)
    write_json(os.path.join(d, "config.json"), config)
    return d
