"""`contain exec`: Docker's exec, through the runtime core's.

The engine turns the flags into a config.json `process` (Docker's
environment merged with -e, the user looked up in the image, the
container's capabilities, or all of them with --privileged) and hands it
to core.execute.exec_process, which joins the container's namespaces and
cgroup by the one spawn protocol.  Docker's own parts stay here: stdin
only with -i, and with -d the command's output goes nowhere.
"""

import os

from . import defaults
from .flags import default_env, merge_env
from .state import runtime_root
from .users import lookup_user
from ..core import security


def exec_in(store, ref, argv, env=(), cwd=None, user=None, tty=False,
            interactive=False, detach=False, privileged=False, log=None):
    """`contain exec`: run a new process inside a running container."""
    from ..core.execute import exec_process
    from ..errors import Conflict
    c = store.find(ref)
    if not c.running:
        raise Conflict(f"container {c.id[:12]} is not running")
    cfg = c.config
    sec = dict(cfg.get("security") or {})
    if privileged:
        sec["privileged"] = True
    caps = sorted(defaults.resolve_caps(sec.get("cap_add") or (), sec.get("cap_drop") or (),
                                        bool(sec.get("privileged"))))
    names = [security.cap_name(n) for n in caps if n <= security.last_cap()]
    uid, gid, groups = lookup_user(c, cfg.get("user") if user is None else user)
    opts = defaults.parse_security_opts(sec.get("security_opt") or ())
    process = {
        "terminal": bool(tty), "args": list(argv),
        "env": merge_env(default_env(cfg, tty), env),
        "cwd": cwd or cfg.get("cwd") or "/",
        "user": {"uid": uid, "gid": gid, "additionalGids": groups},
        "capabilities": {k: list(names) for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": bool(opts["no_new_privileges"]),
    }
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC) \
        if (detach or not interactive) else None
    try:
        stdio = None
        if devnull is not None:
            stdio = (devnull, devnull, devnull) if detach else (devnull, 1, 2)
        return exec_process(runtime_root(store), c.id, process, detach=detach, stdio=stdio,
                            interactive=interactive, log=log,
                            seccomp=not privileged)
    finally:
        if devnull is not None:
            os.close(devnull)
