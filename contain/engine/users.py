"""Docker's -u NAME[:GROUP] / UID[:GID]: the user and groups looked up in
the container's own /etc/passwd and /etc/group (the engine reads them from
the image; config.json then holds numbers, as the runtime spec wants)."""

import os

from ..core.init import parse_db, read_db   # the one reader of /etc/passwd and /etc/group


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


