"""Docker's -u NAME[:GROUP] / UID[:GID]: the user and groups looked up in
the container's own /etc/passwd and /etc/group (the engine reads them from
the image; config.json then holds numbers, as the runtime spec wants)."""

import os

from ..core.init import parse_db, read_db   # the one reader of /etc/passwd and /etc/group
from ..errors import ContainError


def resolve_user(spec, root="/", files=None):
    """(uid, gid, supplementary gids, home) from '', 'name', 'uid', 'uid:gid',
    'name:group', read from the container's /etc/passwd and /etc/group (or
    from files: {'passwd': text, 'group': text}, read by the engine)."""
    if not spec:
        spec = "0"
    user, _, group = spec.partition(":")
    db = (lambda name: parse_db(files.get(name) or "")) if files is not None else \
        (lambda name: read_db(os.path.join(root, "etc", name)))
    passwd = db("passwd")
    entry = None
    if user.isdigit():
        uid = int(user)
        entry = next((e for e in passwd if e[2] == user), None)
    else:
        entry = next((e for e in passwd if e[0] == user), None)
        if entry is None:
            raise LookupError(f"unable to find user {user}: no matching entries in passwd file")
        uid = int(entry[2])
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry and len(entry) > 5 and entry[5] else "/"
    groups_db = db("group")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups_db if e[0] == group), None)
            if g is None:
                raise LookupError(f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    name = entry[0] if entry else None
    groups = sorted({int(e[2]) for e in groups_db
                     if name and len(e) > 3 and name in e[3].split(",") and e[2].isdigit()}
                    | {gid})
    if uid == 0 and gid == 0 and groups == [0]:
        groups = []
    return uid, gid, groups, home


def lookup_user(c, spec):
    """(uid, gid, supplementary gids) of -u NAME[:GROUP] / UID[:GID], read
    from the container's own /etc/passwd and /etc/group (the image's
    layers, top first; never following a link out of the root)."""
    if spec in (None, "", "0:0"):   # root, with no lookup to do
        return 0, 0, []
    files = {name: _read_in_root(c, f"etc/{name}") for name in ("passwd", "group")}
    try:
        uid, gid, groups, _home = resolve_user(spec, files=files)
    except LookupError as e:
        raise ContainError(f"resolving user: {e.args[0]}") from None
    return uid, gid, groups


def _read_in_root(c, relpath):
    """The text of a file of the container's root filesystem, or ""."""
    rootfs = c.config["rootfs"]
    if rootfs["type"] == "image":
        tops = [c.path("upper")] + list(reversed(rootfs["layers"]))
    else:
        tops = [rootfs["path"] if rootfs["type"] == "dir" else c.path("rootfs")]
    from ..core.mounts import resolve_in_root
    for top in tops:
        try:
            fd = resolve_in_root(top, relpath, kind="file", create=False)
        except OSError:
            continue
        try:
            with open(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)) as f:
                return f.read(1 << 20)
        except OSError:
            continue
        finally:
            os.close(fd)
    return ""
