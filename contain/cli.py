"""The command line: argparse, one small function per subcommand.

Each cmd_* function parses nothing itself: it turns the parsed flags into one
call of the library (runtime, images, cgroups, network) and prints the
result.  Errors are ContainError; main() prints `contain: <message>` and
exits with the error's Docker exit code.
"""

import argparse
import os
import sys

from . import spec
from .errors import EXIT_RUNTIME, ContainError, UsageError


class Parser(argparse.ArgumentParser):
    """argparse, but bad usage is a one-line error with exit code 125."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see --help)")


# ------------------------------------------------------- container options
def add_container_options(p):
    """The flags shared by `run` and `create` (Docker's names)."""
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("--rootfs", metavar="PATH",
                   help="root filesystem: a directory or a .tar/.tar.gz (instead of IMAGE)")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-h", "--hostname", help="container host name (default: short id)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VAL]")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]")
    p.add_argument("--entrypoint", metavar="CMD", help="override the image's ENTRYPOINT")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VAL")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("-v", "--volume", action="append", default=[], nargs="?", const=None,
                   metavar="SRC:DST[:OPTS]",
                   help="bind mount a host path; a bare -v (followed by another flag) "
                        "means --verbose")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]")
    p.add_argument("--init", action="store_true", help="run a tiny init as PID 1")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="no | on-failure[:N] | always | unless-stopped")
    p.add_argument("--stop-signal", metavar="SIGNAL")
    p.add_argument("--stop-timeout", type=int, metavar="SECONDS")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VAL")
    p.add_argument("--cgroup-parent", metavar="NAME")
    # resources (contain.cgroups parses the values)
    p.add_argument("-m", "--memory")
    p.add_argument("--memory-reservation")
    p.add_argument("--memory-swap")
    p.add_argument("--cpus")
    p.add_argument("--cpu-period", type=int)
    p.add_argument("--cpu-quota", type=int)
    p.add_argument("-c", "--cpu-shares", type=int)
    p.add_argument("--cpuset-cpus")
    p.add_argument("--cpuset-mems")
    p.add_argument("--pids-limit", "--pids", type=int, dest="pids_limit")
    p.add_argument("--blkio-weight", type=int)
    for flag in ("--device-read-bps", "--device-write-bps",
                 "--device-read-iops", "--device-write-iops"):
        p.add_argument(flag, action="append", default=[], metavar="PATH:RATE")
    # network
    p.add_argument("--network", "--net", default=None, metavar="MODE",
                   help="bridge (default) | none | host | container:NAME | NETWORK")
    p.add_argument("-p", "--publish", action="append", default=[],
                   metavar="[IP:]HOSTPORT:PORT[/PROTO]")
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("--ip", metavar="ADDRESS")
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--add-host", action="append", default=[], metavar="HOST:IP")
    # security
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("--userns", metavar="MODE")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="IMAGE [COMMAND...]")


def verbose_from(ns):
    """-v without a value (or --verbose) asks for the explain mode."""
    volumes = getattr(ns, "volume", None) or []
    if None in volumes:
        ns.volume = [v for v in volumes if v is not None]
        return True
    return False


def config_from(ns):
    """The container configuration (a dict) from run/create flags."""
    args = list(ns.args)
    if args and args[0] == "--":
        args = args[1:]
    cfg = {
        "name": ns.name, "hostname": ns.hostname, "tty": ns.tty,
        "interactive": ns.interactive, "auto_remove": ns.rm,
        "env": spec.parse_env(ns.env, ns.env_file),
        "cwd": ns.workdir, "user": ns.user, "read_only": ns.read_only,
        "labels": dict(label.partition("=")[::2] for label in ns.label),
        "restart": spec.parse_restart(ns.restart),
        "log": spec.parse_log_opts(ns.log_opt),
        "cgroup_parent": ns.cgroup_parent or os.environ.get("CONTAIN_CGROUP_PARENT")
        or spec.DEFAULT_CGROUP_PARENT,
        "limits": spec.limits_from_args(ns),
        "mounts": [spec.parse_volume(v) for v in ns.volume]
        + [spec.parse_tmpfs(t) for t in ns.tmpfs],
        "init": ns.init,
        "network": network_options(ns),
        "security": {"cap_add": ns.cap_add, "cap_drop": ns.cap_drop,
                     "privileged": ns.privileged, "security_opt": ns.security_opt,
                     "userns": ns.userns},
        "stop_timeout": ns.stop_timeout,
        "stop_signal": spec.parse_signal(ns.stop_signal) if ns.stop_signal else None,
        "entrypoint": ns.entrypoint,
    }
    if cfg["name"] is None:
        del cfg["name"]
    if cfg["hostname"] is None:
        del cfg["hostname"]
    if ns.restart != "no" and ns.rm:
        raise UsageError("conflicting options: --restart and --rm")
    if ns.rootfs:
        path = os.path.abspath(ns.rootfs)
        if os.path.isdir(path):
            cfg["rootfs"] = {"type": "dir", "path": path}
        elif os.path.isfile(path):
            cfg["rootfs"] = {"type": "tar", "path": path}
        elif not os.path.exists(path):
            raise UsageError(f"rootfs {ns.rootfs}: no such file or directory")
        else:
            raise UsageError(f"rootfs {ns.rootfs}: not a directory or a tarball")
        if not os.access(path, os.R_OK):
            raise UsageError(f"rootfs {ns.rootfs}: permission denied")
        cfg["argv"] = args
    else:
        if not args:
            raise UsageError('"run" requires at least 1 argument: IMAGE [COMMAND] [ARG...] '
                             "(or --rootfs PATH COMMAND...)")
        cfg["image"], cfg["argv"] = args[0], args[1:]
    return cfg


def network_options(ns):
    mode = ns.network or "bridge"
    return {"mode": mode, "publish": ns.publish, "publish_all": ns.publish_all,
            "ip": ns.ip, "dns": ns.dns, "dns_search": ns.dns_search,
            "add_hosts": ns.add_host}


# ---------------------------------------------------------------- commands
def cmd_run(ns, store, log):
    from . import runtime
    cfg = config_from(ns)
    if ns.detach:
        c = runtime.create_and_start(store, cfg, log)
        print(c.id)
        return 0
    return runtime.run(store, cfg, log)


def cmd_create(ns, store, log):
    from . import runtime
    c = runtime.create_container(store, config_from(ns), log)
    print(c.id)
    return 0


def cmd_start(ns, store, log):
    from . import runtime
    code = 0
    for ref in ns.containers:
        result = runtime.start(store, ref, attach=ns.attach, log=log)
        if ns.attach:
            code = result
        else:
            print(ref)
    return code


def cmd_stop(ns, store, log):
    from . import runtime
    for ref in ns.containers:
        runtime.stop(store, ref, ns.time, log)
        print(ref)
    return 0


def cmd_kill(ns, store, log):
    from . import runtime
    for ref in ns.containers:
        runtime.kill(store, ref, spec.parse_signal(ns.signal))
        print(ref)
    return 0


def cmd_rm(ns, store, log):
    from . import runtime
    code = 0
    for ref in ns.containers:
        try:
            runtime.remove(store, ref, force=ns.force, log=log)
            print(ref)
        except ContainError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            code = 1
    return code


def cmd_wait(ns, store, log):
    from . import runtime
    for ref in ns.containers:
        print(runtime.wait(store, ref))
    return 0


def cmd_ps(ns, store, log):
    from . import views
    print(views.ps(store, all=ns.all, quiet=ns.quiet, no_trunc=ns.no_trunc,
                   fmt=ns.format), end="")
    return 0


def cmd_logs(ns, store, log):
    from . import runtime
    runtime.show_logs(store, ns.container, follow=ns.follow, tail=ns.tail,
                      since=ns.since, timestamps=ns.timestamps)
    return 0


def cmd_inspect(ns, store, log):
    from . import views
    print(views.inspect(store, ns.containers, fmt=ns.format))
    return 0


def cmd_exec(ns, store, log):
    from . import runtime
    argv = list(ns.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError('"exec" requires at least 2 arguments: CONTAINER COMMAND [ARG...]')
    return runtime.exec_in(store, ns.container, argv, env=spec.parse_env(ns.env, ns.env_file),
                           cwd=ns.workdir, user=ns.user, tty=ns.tty,
                           interactive=ns.interactive, detach=ns.detach,
                           privileged=ns.privileged, log=log)


# ------------------------------------------------------------------ parser
def build_parser(argv=None):
    """The parser; with argv, only the subcommand named there is built
    (argparse is slow to build: every add_argument costs, and `run` has 60)."""
    p = Parser(prog="contain", description="A container runtime in pure Python.")
    p.add_argument("--root", help="state directory (default $CONTAIN_ROOT or /var/lib/contain)")
    p.add_argument("--verbose", action="store_true", dest="global_verbose",
                   help="explain each step on stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    wanted = _command_in(argv)
    for name, (helptext, build) in COMMANDS.items():
        if wanted is None or name == wanted:
            build(sub.add_parser(name, help=helptext, add_help=name not in ("run", "create")))
    return p


def _command_in(argv):
    """The subcommand named in argv (skipping global options), or None."""
    args = list(argv or [])
    while args:
        a = args.pop(0)
        if a == "--root":
            args = args[1:]
        elif not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def _build_run(sp, detach=True):
    sp.add_argument("--verbose", action="store_true", help="explain each step on stderr")
    if detach:
        sp.add_argument("-d", "--detach", action="store_true",
                        help="run in the background and print the id")
    add_container_options(sp)
    sp.set_defaults(func=cmd_run if detach else cmd_create)


def _build_start(sp):
    sp.add_argument("-a", "--attach", action="store_true")
    sp.add_argument("-i", "--interactive", action="store_true")
    sp.add_argument("containers", nargs="+")
    sp.set_defaults(func=cmd_start)


def _build_stop(sp):
    sp.add_argument("-t", "--time", type=int, default=None, help="seconds before SIGKILL")
    sp.add_argument("containers", nargs="+")
    sp.set_defaults(func=cmd_stop)


def _build_kill(sp):
    sp.add_argument("-s", "--signal", default="KILL")
    sp.add_argument("containers", nargs="+")
    sp.set_defaults(func=cmd_kill)


def _build_rm(sp):
    sp.add_argument("-f", "--force", action="store_true")
    sp.add_argument("containers", nargs="+")
    sp.set_defaults(func=cmd_rm)


def _build_wait(sp):
    sp.add_argument("containers", nargs="+")
    sp.set_defaults(func=cmd_wait)


def _build_ps(sp):
    sp.add_argument("-a", "--all", action="store_true")
    sp.add_argument("-q", "--quiet", action="store_true")
    sp.add_argument("--no-trunc", action="store_true")
    sp.add_argument("--format")
    sp.set_defaults(func=cmd_ps)


def _build_logs(sp):
    sp.add_argument("-f", "--follow", action="store_true")
    sp.add_argument("-n", "--tail", type=_tail)
    sp.add_argument("-t", "--timestamps", action="store_true")
    sp.add_argument("--since")
    sp.add_argument("container")
    sp.set_defaults(func=cmd_logs)


def _build_inspect(sp):
    sp.add_argument("-f", "--format")
    sp.add_argument("containers", nargs="+")
    sp.set_defaults(func=cmd_inspect)


def _build_exec(sp):
    sp.add_argument("-i", "--interactive", action="store_true")
    sp.add_argument("-t", "--tty", action="store_true")
    sp.add_argument("-d", "--detach", action="store_true")
    sp.add_argument("-e", "--env", action="append", default=[])
    sp.add_argument("--env-file", action="append", default=[])
    sp.add_argument("-w", "--workdir")
    sp.add_argument("-u", "--user")
    sp.add_argument("--privileged", action="store_true")
    sp.add_argument("container")
    sp.add_argument("command", nargs=argparse.REMAINDER)
    sp.set_defaults(func=cmd_exec)


# ---- image commands

# ---- resource commands

# ---- network commands


COMMANDS = {
    "run": ("create and start a container", _build_run),
    "create": ("create a container without starting it", lambda sp: _build_run(sp, False)),
    "start": ("start created or stopped containers", _build_start),
    "stop": ("stop running containers", _build_stop),
    "kill": ("send a signal to containers", _build_kill),
    "rm": ("remove containers", _build_rm),
    "wait": ("wait for containers to exit; print exit codes", _build_wait),
    "ps": ("list containers", _build_ps),
    "logs": ("show a container's output", _build_logs),
    "inspect": ("show containers as JSON", _build_inspect),
    "exec": ("run a command in a running container", _build_exec),
}


def _tail(value):
    if value == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --tail value {value!r}") from None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        ns = build_parser(argv).parse_args(argv)
        if not getattr(ns, "func", None):
            build_parser().print_help()
            return EXIT_RUNTIME
        if os.geteuid() != 0:
            raise ContainError("must be run as root (namespaces, mounts and cgroups need it)")
        from .runtime import verbose_logger
        from .state import Store
        verbose = ns.global_verbose or getattr(ns, "verbose", False)
        if hasattr(ns, "volume"):
            verbose = verbose_from(ns) or verbose
        return ns.func(ns, Store(ns.root), verbose_logger(verbose))
    except ContainError as e:
        print(f"contain: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
