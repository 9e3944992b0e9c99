"""runc's command line, for container engines (podman, containerd's shim).

    contain.py oci [GLOBAL FLAGS] COMMAND ...      or, through a symlink
    contain-runc [GLOBAL FLAGS] COMMAND ...        whose name ends in "runc"

Each command parses its flags and calls one function of lifecycle.py or
execute.py.  An error is one line on stderr (and, with --log, a line in
the log file: JSON with --log-format json, which the containerd shim reads
back), exit status 1, as runc does.
"""

import os
import sys

from .. import fastjson
from ..argparsing import FastParser, argparse
from ..errors import ContainError, UsageError


class Parser(FastParser):
    def error(self, message):
        raise UsageError(f"{message} (see --help)")


# the global flags that take a value (to find the command before parsing)
GLOBAL_VALUE_FLAGS = ("--root", "--log", "--log-format", "--rootless", "--criu")


def command_in(argv):
    """The command word of argv, skipping the global flags (or None)."""
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in GLOBAL_VALUE_FLAGS:
            args = args[1:]
        elif not arg.startswith("-"):
            return arg
    return None


class _Unused:
    """Stands in for the subparsers of commands not being run."""

    def add_argument(self, *args, **kwargs):
        return None


def build_parser(only=None):
    """The parser; with only, just that command's subparser is built
    (argparse is slow to build, and engines run us for every container)."""
    from .state import DEFAULT_ROOT
    p = Parser(prog="contain-runc", description="contain's OCI runtime (runc's command line)")
    p.add_argument("--root", default=DEFAULT_ROOT,
                   help=f"directory for the containers' state (default {DEFAULT_ROOT})")
    p.add_argument("--log", help="append errors (and --debug messages) to this file")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--debug", action="store_true", help="log each setup step")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="use systemd for cgroups (not supported: refused)")
    p.add_argument("--rootless", default="auto", help="accepted for compatibility")
    p.add_argument("--criu", help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def cmd(name, help):
        if only and name != only:
            return _Unused()
        return sub.add_parser(name, help=help, allow_abbrev=False)

    def container_flags(c):
        c.add_argument("-b", "--bundle", default=".", help="the bundle directory")
        c.add_argument("--pid-file", help="write the init's pid here")
        c.add_argument("--console-socket", help="send the terminal's master to this socket")
        c.add_argument("--preserve-fds", type=int, default=0,
                       help="pass this many fds beyond stdio (3, 4...) to the container")
        c.add_argument("--no-pivot", action="store_true", help="chroot instead of pivot_root")
        c.add_argument("--no-new-keyring", action="store_true", help="accepted, ignored")
        c.add_argument("id")

    container_flags(cmd("create", "create a container (its process waits for start)"))
    r = cmd("run", "create and start a container")
    container_flags(r)
    r.add_argument("-d", "--detach", action="store_true")
    r.add_argument("--keep", action="store_true", help="keep the container after it exits")
    cmd("start", "run a created container's process").add_argument("id")
    s = cmd("state", "print a container's state as JSON")
    s.add_argument("id")
    k = cmd("kill", "send a signal to a container's init")
    k.add_argument("-a", "--all", action="store_true", help="every process of the container")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="SIGTERM")
    d = cmd("delete", "remove a stopped container")
    d.add_argument("-f", "--force", action="store_true", help="kill it first if running")
    d.add_argument("id")
    e = cmd("exec", "run a new process in a container")
    e.add_argument("-p", "--process", help="a process.json")
    e.add_argument("-d", "--detach", action="store_true")
    e.add_argument("--pid-file")
    e.add_argument("-t", "--tty", action="store_true")
    e.add_argument("--console-socket")
    e.add_argument("--cwd")
    e.add_argument("-e", "--env", action="append", default=[])
    e.add_argument("-u", "--user", help="UID[:GID]")
    e.add_argument("--additional-gids", "-g", action="append", default=[])
    e.add_argument("--preserve-fds", type=int, default=0)
    e.add_argument("--no-new-privs", action="store_true")
    e.add_argument("-c", "--cap", action="append", default=[])
    e.add_argument("id")
    e.add_argument("args", nargs=argparse.REMAINDER)
    ps = cmd("ps", "list a container's processes")
    ps.add_argument("-f", "--format", choices=("table", "json"), default="table")
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)
    ls = cmd("list", "list containers")
    ls.add_argument("-f", "--format", choices=("table", "json"), default="table")
    ls.add_argument("-q", "--quiet", action="store_true")
    cmd("pause", "freeze a container's processes").add_argument("id")
    cmd("resume", "thaw a paused container").add_argument("id")
    u = cmd("update", "change a container's resource limits")
    u.add_argument("-r", "--resources", help="a linux.resources JSON file (- for stdin)")
    for flag in ("--memory", "--memory-reservation", "--memory-swap", "--cpu-shares",
                 "--cpu-quota", "--cpu-period", "--cpuset-cpus", "--cpuset-mems",
                 "--pids-limit", "--blkio-weight", "--kernel-memory", "--kernel-memory-tcp",
                 "--cpu-rt-period", "--cpu-rt-runtime", "--l3-cache-schema",
                 "--mem-bw-schema"):
        u.add_argument(flag)
    u.add_argument("id")
    cmd("features", "print what this runtime supports (JSON)")
    sp = cmd("spec", "write a default config.json")
    sp.add_argument("-b", "--bundle", default=".")
    sp.add_argument("--rootless", action="store_true")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ns = None
    try:
        command = command_in(argv)
        ns = build_parser(command if command in COMMANDS else None).parse_args(argv)
        if ns.version:
            from .spec import OCI_VERSION
            from .. import __version__
            print(f"contain version {__version__}\nspec: {OCI_VERSION}")
            return 0
        if not ns.command:
            build_parser().print_help()
            return 0
        if ns.systemd_cgroup:
            raise UsageError("--systemd-cgroup: contain has no systemd cgroup driver; "
                             "use the cgroupfs manager")
        return COMMANDS[ns.command](ns) or 0
    except ContainError as e:
        report(ns, str(e))
        return getattr(e, "oci_exit_code", 1)
    except OSError as e:
        report(ns, f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: one line, the traceback only with --debug
        if ns is not None and ns.debug:
            import traceback
            traceback.print_exc()
        report(ns, f"internal error: {type(e).__name__}: {e}")
        return 1


def report(ns, message):
    """The error on stderr, and in --log as the engines expect it."""
    os.write(2, f"contain: {message}\n".encode(errors="replace"))
    if ns is None or not getattr(ns, "log", None):
        return
    from ..clock import now
    if ns.log_format == "json":
        line = fastjson.dumps({"level": "error", "msg": message, "time": now()})
    else:
        line = f'time="{now()}" level=error msg={fastjson.dumps(message)}'
    try:
        with open(ns.log, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def _log(ns):
    if not ns.debug:
        return None
    return lambda msg: os.write(2, f"[contain] {msg}\n".encode())


def _options(ns, **extra):
    from .lifecycle import Options
    return Options(pid_file=ns.pid_file, console_socket=ns.console_socket,
                   preserve_fds=ns.preserve_fds + _listen_fds(), no_pivot=ns.no_pivot,
                   log=_log(ns), **extra)


def _listen_fds():
    """systemd socket activation: LISTEN_FDS fds beyond stdio are passed on."""
    try:
        return int(os.environ.get("LISTEN_FDS", "0")) \
            if os.environ.get("LISTEN_PID") in (None, str(os.getpid())) else 0
    except ValueError:
        return 0


def cmd_create(ns):
    from .lifecycle import create
    create(ns.root, ns.id, ns.bundle, _options(ns))


def cmd_run(ns):
    from .lifecycle import run_foreground
    return run_foreground(ns.root, ns.id, ns.bundle, _options(ns), detach=ns.detach)


def cmd_start(ns):
    from .lifecycle import start
    start(ns.root, ns.id)


def cmd_state(ns):
    from .lifecycle import get_state
    print(fastjson.dumps(get_state(ns.root, ns.id), indent=2))


def cmd_kill(ns):
    from .lifecycle import kill
    from .spec import parse_signal
    kill(ns.root, ns.id, parse_signal(ns.signal), all_processes=ns.all)


def cmd_delete(ns):
    from .lifecycle import delete
    delete(ns.root, ns.id, force=ns.force, log=_log(ns))


def cmd_exec(ns):
    from .execute import exec_process
    process = _exec_process(ns)
    code = exec_process(ns.root, ns.id, process, detach=ns.detach, pid_file=ns.pid_file,
                        console_socket=ns.console_socket, preserve_fds=ns.preserve_fds,
                        log=_log(ns))
    return code


def _exec_process(ns):
    """process.json, or one built from exec's flags (runc's defaults)."""
    if ns.process:
        from .state import read_json
        try:
            process = read_json(ns.process)
        except (OSError, ValueError) as e:
            raise UsageError(f"--process {ns.process}: {getattr(e, 'strerror', None) or e}") \
                from None
        if not isinstance(process, dict):
            raise UsageError(f"--process {ns.process}: expected a JSON object")
        return process
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    if not args:
        raise UsageError("exec: no command given (use ARGS... or --process)")
    uid, gid = 0, 0
    if ns.user:
        u, _, g = ns.user.partition(":")
        if not u.isdigit() or (g and not g.isdigit()):
            raise UsageError(f"--user {ns.user}: expected UID[:GID]")
        uid, gid = int(u), int(g or 0)
    from .spec import default_spec
    base = default_spec()["process"]
    process = {"args": args, "env": base["env"] + list(ns.env), "cwd": ns.cwd or "/",
               "terminal": ns.tty, "user": {"uid": uid, "gid": gid,
                                            "additionalGids": [int(g) for g in
                                                               ns.additional_gids]},
               "noNewPrivileges": ns.no_new_privs}
    caps = base["capabilities"]["bounding"] + [c if c.startswith("CAP_") else "CAP_" + c
                                               for c in ns.cap]
    process["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    return process


def cmd_ps(ns):
    from .lifecycle import pids
    found = pids(ns.root, ns.id)
    if ns.format == "json":
        print(fastjson.dumps(found))
        return
    print(f"{'PID':>7} CMD")
    for pid in found:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        print(f"{pid:>7} {cmdline}")


def cmd_list(ns):
    from .lifecycle import list_all
    states = list_all(ns.root)
    if ns.quiet:
        for s in states:
            print(s["id"])
    elif ns.format == "json":
        print(fastjson.dumps(states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                  s["owner"] or "root") for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def cmd_pause(ns):
    from .lifecycle import pause
    pause(ns.root, ns.id, True)


def cmd_resume(ns):
    from .lifecycle import pause
    pause(ns.root, ns.id, False)


def cmd_update(ns):
    from .lifecycle import update
    update(ns.root, ns.id, _update_resources(ns))


def _update_resources(ns):
    """linux.resources from --resources (a file, - for stdin) and flags."""
    resources = {}
    if ns.resources:
        try:
            text = sys.stdin.read() if ns.resources == "-" else open(ns.resources).read()
            resources = fastjson.loads(text)
        except (OSError, ValueError) as e:
            raise UsageError(f"--resources {ns.resources}: "
                             f"{getattr(e, 'strerror', None) or e}") from None
        if not isinstance(resources, dict):
            raise UsageError(f"--resources {ns.resources}: expected a JSON object")

    def num(flag, value):
        from .cgroups.limits import parse_bytes
        try:
            return int(value)
        except ValueError:
            return parse_bytes(value, flag)
    for flag, (section, key) in (("memory", ("memory", "limit")),
                                 ("memory_reservation", ("memory", "reservation")),
                                 ("memory_swap", ("memory", "swap")),
                                 ("cpu_shares", ("cpu", "shares")),
                                 ("cpu_quota", ("cpu", "quota")),
                                 ("cpu_period", ("cpu", "period")),
                                 ("cpuset_cpus", ("cpu", "cpus")),
                                 ("cpuset_mems", ("cpu", "mems")),
                                 ("pids_limit", ("pids", "limit")),
                                 ("blkio_weight", ("blockIO", "weight"))):
        value = getattr(ns, flag)
        if value is None:
            continue
        if key in ("cpus", "mems"):
            resources.setdefault(section, {})[key] = value
        else:
            resources.setdefault(section, {})[key] = num("--" + flag.replace("_", "-"), value)
    return resources


def cmd_features(ns):
    from .spec import features
    print(fastjson.dumps(features(), indent=2))


def cmd_spec(ns):
    from .spec import default_spec
    from .state import write_json
    path = os.path.join(ns.bundle, "config.json")
    if os.path.exists(path):
        raise UsageError(f"{path} already exists: remove it first")
    write_json(path, default_spec(rootless=ns.rootless), mode=0o644, indent=2)


COMMANDS = {"create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state,
            "kill": cmd_kill, "delete": cmd_delete, "exec": cmd_exec, "ps": cmd_ps,
            "list": cmd_list, "pause": cmd_pause, "resume": cmd_resume, "update": cmd_update,
            "features": cmd_features, "spec": cmd_spec}
