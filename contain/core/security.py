"""What a container may do once it runs: capabilities, no_new_privs, the
paths it must not see or write, user namespace id ranges, process hygiene.

The parent turns config.json into plain data before fork (the five
capability sets, a no_new_privs bit, a seccomp program); the child applies
it at the end of its setup (init.become_command), in this order:

    apply_capability_sets(...)  bounding set, then capset, then ambient
    seccomp.install(program)    sets no_new_privs itself when it must
    execve

Capabilities after execve, for a root (uid 0) process without file
capabilities: permitted = inheritable | bounding, effective = permitted.
So the bounding set *is* the container's capability set, and inheritable
must be empty or it would add to it.  A non-root user execs with empty
permitted/effective sets (no ambient capabilities), as in Docker.
"""

import os

from . import fsutil, linux
from ..errors import Conflict, UsageError

# ------------------------------------------------------------- capabilities
# <linux/capability.h>, in number order: CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40
_CAPS = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
    "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE",
    "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT",
    "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
    "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)


class _CapNames(dict):
    """{'CAP_CHOWN': 0, ...}; lookups also take 'chown', 'Cap_Chown'..."""

    @staticmethod
    def _key(name):
        name = str(name).upper()
        return name if name.startswith("CAP_") else "CAP_" + name

    def __getitem__(self, name):
        return dict.__getitem__(self, self._key(name))

    def __contains__(self, name):
        return dict.__contains__(self, self._key(name))

    def get(self, name, default=None):
        return dict.get(self, self._key(name), default)


CAP_NAMES = _CapNames(("CAP_" + name, number) for number, name in enumerate(_CAPS))
CAP_SETPCAP = 8
CAP_SYS_ADMIN = 21

# Docker's default set (moby oci/caps/defaults.go)
_last_cap = None


def last_cap():
    """The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap).

    Cached: the parent reads it once, the child inherits the answer.
    """
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap = int(f.read())
        except (OSError, ValueError):
            _last_cap = len(_CAPS) - 1
    return _last_cap


def cap_name(number):
    """'CAP_SYS_ADMIN' for 21."""
    return "CAP_" + _CAPS[number] if 0 <= number < len(_CAPS) else f"CAP_{number}"


def cap_number(name):
    """21 for 'SYS_ADMIN', 'CAP_SYS_ADMIN' or 'sys_admin'; UsageError if unknown."""
    number = CAP_NAMES.get(name)
    if number is None:
        raise UsageError(f"unknown capability {name!r} (see capabilities(7))")
    return number


def all_caps():
    """Every capability this kernel knows: what --privileged and ALL mean."""
    return frozenset(range(last_cap() + 1))


def caps_mask(caps):
    """A 64-bit mask (as in /proc/PID/status) from capability numbers."""
    mask = 0
    for cap in caps:
        mask |= 1 << cap
    return mask


def apply_capability_sets(bounding=(), effective=(), permitted=(), inheritable=(),
                          ambient=()):
    """config.json's five capability sets (numbers), applied in the order
    the kernel allows: bounding (needs CAP_SETPCAP), then effective,
    permitted and inheritable in one capset, then ambient (each must be
    permitted and inheritable).  A capability this process lacks is left out."""
    effective_now, permitted_now, _ = linux.capget()
    if permitted_now >> CAP_SETPCAP & 1 and not effective_now >> CAP_SETPCAP & 1:
        linux.capset(permitted_now, permitted_now, 0)
    keep_bounding = caps_mask(bounding)
    for cap in range(last_cap() + 1):
        if not keep_bounding >> cap & 1:
            linux.prctl(linux.PR_CAPBSET_DROP, cap)
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    perm = caps_mask(permitted) & permitted_now
    inh = caps_mask(inheritable) & (perm | caps_mask(bounding))
    linux.capset(caps_mask(effective) & perm, perm, inh)
    for cap in ambient:
        if (perm & inh) >> cap & 1:
            linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, cap)


def cap_sets_from_spec(caps):
    """{set name: [numbers]} from config.json's process.capabilities
    (names like CAP_KILL); a missing set is empty, as in runc."""
    return {name: [cap_number(c) for c in (caps or {}).get(name) or ()
                   if cap_number(c) <= last_cap()]
            for name in ("bounding", "effective", "permitted", "inheritable", "ambient")}


def read_status_caps(pid="self"):
    """{'CapInh': int, 'CapPrm':..., 'CapEff':..., 'CapBnd':..., 'CapAmb':...}."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                found[key] = int(value, 16)
    return found


# ------------------------------------------------------------ process bits
def set_no_new_privs():
    """PR_SET_NO_NEW_PRIVS: execve can no longer grant privileges (setuid
    bits, file capabilities); inherited by children, never cleared."""
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)


def no_new_privs():
    """Whether this process has no_new_privs set."""
    return bool(linux.prctl(linux.PR_GET_NO_NEW_PRIVS))


def set_dumpable(flag):
    """PR_SET_DUMPABLE.  Non-dumpable until exec, a process cannot be
    ptraced or have its /proc/PID files opened by the container
    (CVE-2016-9962); execve makes it dumpable again."""
    linux.prctl(linux.PR_SET_DUMPABLE, 1 if flag else 0)


def set_parent_death_signal(sig):
    """PR_SET_PDEATHSIG: sig is sent when the parent dies (reset by setuid)."""
    linux.prctl(linux.PR_SET_PDEATHSIG, sig)


def close_fds_except(keep=(0, 1, 2), cloexec=False):
    """Close (or, with cloexec, mark close-on-exec) every fd not in keep.

    With cloexec the fds stay usable until execve, e.g. an error pipe.
    No host fd may reach the container's command (CVE-2024-21626).
    """
    flags = linux.CLOSE_RANGE_CLOEXEC if cloexec else 0
    first = 0
    for fd in sorted(set(keep)) + [1 << 32]:
        if first < fd:
            linux.close_range(first, fd - 1, flags)
        first = fd + 1



# ---------------------------------------------------------- user namespaces
# --userns=auto: each container gets its own range of host ids; its root is
# the first id of the range.  Ranges are handed out from ID_RANGE_BASE in
# steps of ID_RANGE_STEP and recorded in STATE_ROOT/userns.json, under a lock.
ID_RANGE_BASE = 100000
ID_RANGE_STEP = 65536
ID_MAX = 0xFFFFFFFE          # (uid_t)-1 is never a valid id


def allocate_id_range(state_root, container_id, size=ID_RANGE_STEP):
    """(first host id, size) reserved for container_id; the same answer
    again if it already has one.  Conflict when the id space is full."""
    size = int(size)
    if not 0 < size <= ID_MAX - ID_RANGE_BASE:
        raise UsageError(f"invalid user namespace size {size}")
    with _IdRanges(state_root) as ranges:
        if container_id in ranges:
            return tuple(ranges[container_id])
        start = _first_free(sorted(ranges.values()), size)
        ranges[container_id] = [start, size]
        return start, size


def release_id_range(state_root, container_id):
    """Give container_id's range back (no error if it had none)."""
    with _IdRanges(state_root) as ranges:
        ranges.pop(container_id, None)


def _first_free(taken, size):
    start = ID_RANGE_BASE
    for first, length in taken:
        if start + size <= first:
            break
        if first + length > start:
            step = ID_RANGE_STEP
            start = ID_RANGE_BASE + -(-(first + length - ID_RANGE_BASE) // step) * step
    if start + size - 1 > ID_MAX:
        raise Conflict("no free range of user ids left for a user namespace")
    return start


class _IdRanges:
    """The {container_id: [start, size]} record, locked while in use."""

    def __init__(self, state_root):
        self.path = os.path.join(state_root, "userns.json")
        self.lock_path = os.path.join(state_root, "userns.lock")

    def __enter__(self):
        import fcntl
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            self.ranges = fsutil.read_state_json(
                self.path, _check_ranges, default={},
                remedy="it records which host ids each --userns=auto container holds; "
                       "remove it once no such container exists (or restore it)")
        except BaseException:
            os.close(self.fd)
            raise
        self.before = dict(self.ranges)
        return self.ranges

    def __exit__(self, *exc):
        try:
            if exc[0] is None and self.ranges != self.before:
                fsutil.write_json(self.path, self.ranges)
        finally:
            os.close(self.fd)


def _check_ranges(value):
    """None if value is {container id: [start, size]} (for read_state_json)."""
    def is_range(v):
        return isinstance(v, list) and len(v) == 2 and \
            all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v)
    return fsutil.is_dict_of(value, value_ok=is_range)


def format_id_map(entries):
    """'0 100000 65536\\n' from [(inside, outside, count)]."""
    return "".join(f"{inside} {outside} {count}\n" for inside, outside, count in entries)


def write_id_maps(pid, uid_map, gid_map):
    """Write /proc/PID/uid_map then gid_map for a child that unshared
    CLONE_NEWUSER (each is written once, in one write).  Maps are
    [(inside, outside, count)] or the text itself.  The writer is root in
    the parent namespace, so setgroups stays allowed: the container's root
    can still call setgroups(2)."""
    for name, entries in (("uid_map", uid_map), ("gid_map", gid_map)):
        data = (entries if isinstance(entries, str) else format_id_map(entries)).encode()
        linux.write_file(f"/proc/{pid}/{name}", data)


def open_userns(uid_map, gid_map):
    """An fd of a new user namespace with these maps (for idmapped mounts).

    A helper child unshares CLONE_NEWUSER and waits; we write its maps,
    open /proc/CHILD/ns/user and let it exit: the fd keeps the namespace.
    """
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            linux.unshare(linux.CLONE_NEWUSER)
            # our pid as the mounted /proc numbers it: inside a container's
            # PID namespace, before its own /proc is mounted, the fork's
            # return value names another process in that /proc
            os.write(ready_w, os.readlink("/proc/self").encode())
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        proc_pid = os.read(ready_r, 32).decode()
        if not proc_pid.isdigit():
            raise OSError(22, "unshare(CLONE_NEWUSER) failed in the helper process")
        write_id_maps(proc_pid, uid_map, gid_map)
        return os.open(f"/proc/{proc_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)         # EOF: the helper exits
        os.waitpid(pid, 0)


def idmapped_bind(source, target, userns_fd, recursive=False, target_fd=None):
    """Bind source onto target through the id mapping of userns_fd.

    A file owned by id N on disk appears owned by the id N maps to (0 ->
    100000 with '0 100000 65536'), so a container whose user namespace has
    the same maps sees its image as root-owned without a chown.  Works for
    ext4, xfs, btrfs, tmpfs (6.3+)...; overlayfs cannot itself be idmapped
    (EINVAL, kernel 6.18), but its lower layers can: see idmapped_overlay_recipe.
    """
    flags = linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC
    if recursive:
        flags |= linux.AT_RECURSIVE
    tree = linux.open_tree(-100, source, flags)       # -100: AT_FDCWD
    try:
        linux.mount_setattr(tree, "", linux.AT_EMPTY_PATH | (
            linux.AT_RECURSIVE if recursive else 0),
            attr_set=linux.MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
        if target_fd is not None:   # onto an O_PATH fd (resolved inside a root)
            linux.move_mount(tree, "", target_fd, "", linux.MOVE_MOUNT_F_EMPTY_PATH
                             | linux.MOVE_MOUNT_T_EMPTY_PATH)
        else:
            linux.move_mount(tree, "", -100, target, linux.MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(tree)


# How to give a --userns=auto container an image it owns (proved by
# tests/test_security_userns.py on this kernel):
#   1. (start, size) = allocate_id_range(...); maps = [(0, start, size)]
#   2. fd = open_userns(maps, maps); for each image layer L:
#      idmapped_bind(L, L_idmapped, fd)  (layers stay root-owned on disk,
#      shared by every container)
#   3. upper and work dirs: plain directories, upper chowned to start:start;
#      overlay mounted (by host root) with lowerdir=the idmapped binds.
#      Copy-ups and new files land in upper owned by start+N = inside N.
#   4. the child unshares CLONE_NEWUSER (first), the parent calls
#      write_id_maps(pid, maps, maps), the child does setresuid/gid(0).
# Fallback where idmapped mounts are missing (kernel < 5.12, or a layer
# filesystem without FS_ALLOW_IDMAP): copy the rootfs and
# shift_ownership(copy, start, start) on it.
# The runtime follows this recipe: runtime.prepare_userns (range, upper dir,
# fallback: only a --rootfs tarball's private copy is chowned; an image or a
# --rootfs DIR is refused), runtime.spawn (open_userns, write_id_maps),
# init._setup_and_exec (the two phases), mounts.userns_phases (which mount
# is made where, and why).

_idmap_supported = {}     # st_dev of a filesystem -> bool


def idmapped_mount_supported(path="/"):
    """Whether path's filesystem accepts an idmapped mount here (cached per
    filesystem).

    Tries for real: clones path's mount detached (it never appears in any
    mount table) and asks for MOUNT_ATTR_IDMAP.
    """
    dev = os.stat(path).st_dev
    if dev not in _idmap_supported:
        _idmap_supported[dev] = _try_idmap(path)
    return _idmap_supported[dev]


def _try_idmap(path):
    try:
        fd = open_userns([(0, ID_RANGE_BASE, ID_RANGE_STEP)],
                         [(0, ID_RANGE_BASE, ID_RANGE_STEP)])
    except OSError:
        return False
    try:
        tree = linux.open_tree(-100, path, linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC)
        try:
            linux.mount_setattr(tree, "", linux.AT_EMPTY_PATH,
                                attr_set=linux.MOUNT_ATTR_IDMAP, userns_fd=fd)
            return True
        finally:
            os.close(tree)
    except OSError:
        return False
    finally:
        os.close(fd)


def parse_userns(value):
    """--userns: None for the host's user namespace ('', 'host'), else
    {'size': N} for 'auto' (65536 ids) or 'auto:size=N' (podman's syntax)."""
    if value in (None, "", "host"):
        return None
    mode, _, opts = value.partition(":")
    size = ID_RANGE_STEP
    if mode == "auto":
        for opt in filter(None, opts.split(",")):
            key, _, val = opt.partition("=")
            if key != "size" or not val.isdigit() or not 0 < int(val) <= ID_MAX - ID_RANGE_BASE:
                raise UsageError(f"invalid --userns {value!r}: auto takes size=N "
                                 "(a number of ids)")
            size = int(val)
        return {"size": size}
    raise UsageError(f"invalid --userns {value!r}: use auto, auto:size=N or host")


def become_userns_root():
    """In a user namespace whose maps are written: become its root (uid and
    gid 0 inside, the first id of the range outside), with no supplementary
    groups (the host's ones mean nothing here).  The capabilities this
    process has in the namespace stay: its old uid (host root) is not the
    namespace's root, so the kernel's setuid rules drop nothing."""
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def shift_ownership(root, uid_base, gid_base):
    """Add uid_base/gid_base to the owner of every file under root (the
    fallback for idmapped mounts: run it on the container's own copy).
    Symlinks are not followed; setuid/setgid bits, which chown clears, are
    restored."""
    import stat as st

    def shift(path):
        info = os.lstat(path)
        os.lchown(path, info.st_uid + uid_base, info.st_gid + gid_base)
        if not st.S_ISLNK(info.st_mode) and info.st_mode & (st.S_ISUID | st.S_ISGID):
            os.chmod(path, st.S_IMODE(info.st_mode))

    for dirpath, dirnames, filenames in os.walk(root):
        shift(dirpath)
        for name in filenames:
            shift(os.path.join(dirpath, name))
        for name in dirnames:       # symlinks to directories are not walked
            if os.path.islink(os.path.join(dirpath, name)):
                shift(os.path.join(dirpath, name))


# ------------------------------------------------------------------ devices
# cgroup v2 has no devices.allow file: access to device nodes is decided by
# an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup.  It
# runs on every open/mknod of a device node by a process of the cgroup and
# returns 1 (allow) or 0 (EPERM).  Rules are (type, major, minor, access):
# type 'c', 'b' or 'a' (all), None for a wildcard number, access a subset
# of "rwm".  Docker's defaults (as runc's AllowedDevices): mknod of any
# node, and read/write only on these.
# <linux/bpf.h>: struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
# access_type = (access << 16) | type
_DEV_TYPE = {"b": 1, "c": 2}
_DEV_ACCESS = {"m": 1, "r": 2, "w": 4}


def _insn(code, dst=0, src=0, off=0, imm=0):
    import struct
    return struct.pack("<BBhi", code, src << 4 | dst, off, imm)


def device_program(rules):
    """eBPF bytecode allowing exactly rules (first match allows; else deny).

        r2 = type, r3 = access, r4 = major, r5 = minor   (from ctx in r1)
        per rule: if r2 != type: next; if r4 != major: next;
                  if r5 != minor: next; if r3 & ~access: next; return 1
                  (a deny rule, as (kind, major, minor, access, False):
                  if not r3 & access: next; return 0)
        return 0
    The first rule that matches decides: pass rules last-wins (OCI, cgroup v1
    order) reversed (see rules_from_spec).
    """
    LDXW, AND, RSH, MOV, MOVX, JNE, JEQ, EXIT = 0x61, 0x57, 0x77, 0xB7, 0xBF, 0x55, 0x15, 0x95
    code = [_insn(LDXW, 2, 1, 0), _insn(AND, 2, imm=0xFFFF),
            _insn(LDXW, 3, 1, 0), _insn(RSH, 3, imm=16),
            _insn(LDXW, 4, 1, 4), _insn(LDXW, 5, 1, 8)]
    for rule in rules:
        kind, major, minor, access = rule[:4]
        allow = rule[4] if len(rule) > 4 else True
        checks = []
        if kind != "a":
            checks.append((2, _DEV_TYPE[kind]))
        mask = sum(_DEV_ACCESS[a] for a in set(access))
        if major is not None:
            checks.append((4, major))
        if minor is not None:
            checks.append((5, minor))
        # the access test: r1 = r3 & ~mask must be 0 (r1, the ctx, is no longer needed)
        length = len(checks) + 3 + 2          # checks, access test (3), return 1 (2)
        block, done = [], 0
        for reg, value in checks:
            done += 1
            block.append(_insn(JNE, reg, off=length - done, imm=value))
        if allow:   # matches when every requested access is allowed
            block += [_insn(MOVX, 1, 3), _insn(AND, 1, imm=~mask & 0x7),
                      _insn(JNE, 1, off=2, imm=0)]
        else:       # a deny rule matches when any requested access is denied
            block += [_insn(MOVX, 1, 3), _insn(AND, 1, imm=mask),
                      _insn(JEQ, 1, off=2, imm=0)]
        block += [_insn(MOV, 0, imm=1 if allow else 0), _insn(EXIT)]
        code += block
    code += [_insn(MOV, 0, imm=0), _insn(EXIT)]
    return b"".join(code)


def rules_from_spec(devices):
    """device_program rules from config.json's linux.resources.devices (in
    order, the last match wins: "deny all, then allow these")."""
    out = []
    for d in reversed(devices or ()):
        major = d.get("major")
        minor = d.get("minor")
        out.append((d.get("type") or "a", None if major in (None, -1) else major,
                    None if minor in (None, -1) else minor, d.get("access") or "rwm",
                    bool(d.get("allow"))))
    return tuple(out)


def attach_device_filter(cgroup_dir, rules):
    """Load device_program(rules) and attach it to a cgroup v2 directory.

    Attached with BPF_F_ALLOW_MULTI, so it adds to (never loosens) what an
    ancestor's program allows.  The cgroup holds the program: it is freed
    with the cgroup, nothing to detach on removal.
    """
    import struct
    insns = device_program(rules)
    insns_addr, keep_insns = linux.address_of(insns)
    license_addr, keep_license = linux.address_of(b"GPL\0")
    attr = struct.pack("<IIQQIIQII16sII", linux.BPF_PROG_TYPE_CGROUP_DEVICE,
                       len(insns) // 8, insns_addr, license_addr, 0, 0, 0, 0, 0,
                       b"contain_devices", 0, linux.BPF_CGROUP_DEVICE).ljust(128, b"\0")
    prog_fd, _ = linux.bpf(linux.BPF_PROG_LOAD, attr)
    del keep_insns, keep_license
    try:
        cg_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attach = struct.pack("<IIIII", cg_fd, prog_fd, linux.BPF_CGROUP_DEVICE,
                                 linux.BPF_F_ALLOW_MULTI, 0).ljust(64, b"\0")
            linux.bpf(linux.BPF_PROG_ATTACH, attach)
        finally:
            os.close(cg_fd)
    finally:
        os.close(prog_fd)
