"""The command line: argparse, one small function per subcommand.

Each cmd_* function parses nothing itself: it turns the parsed flags into one
call of the library (runtime, images, cgroups, network) and prints the
result.  Errors are ContainError; main() prints `contain: <message>` and
exits with the error's Docker exit code.
"""

import os
import sys

from . import flags as spec
from ..argparsing import FastParser, argparse
from ..errors import EXIT_RUNTIME, ContainError, UsageError


class Parser(FastParser):
    """argparse, but bad usage is a one-line error with exit code 125, and no
    abbreviated options (Docker accepts none: `--priv` is not `--privileged`)."""

    def error(self, message):
        # main() prints "contain: "; a subcommand's name follows it
        command = self.prog.partition(" ")[2]
        raise UsageError(f"{command + ': ' if command else ''}{message} "
                         f"(see '{self.prog} --help')")

    def parse_args(self, args=None, namespace=None):
        # argparse reports a subcommand's unknown flag as the top level's
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            words = [w for w in (self.prog.partition(" ")[2], getattr(ns, "command", None)) if w]
            where = " ".join(words)
            raise UsageError(f"{where + ': ' if where else ''}unknown flag or argument: "
                             f"{' '.join(extra)} (see '{' '.join(['contain', *words])} --help')")
        return ns


# ------------------------------------------------------- container options
def add_container_options(p):
    """The flags shared by `run` and `create` (Docker's names)."""
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("--rootfs", metavar="PATH",
                   help="root filesystem: a directory or a .tar/.tar.gz (instead of IMAGE)")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-h", "--hostname", help="container host name (default: short id)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VAL]",
                   help="set an environment variable (KEY alone: the host's value)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="read KEY=VAL lines from FILE")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory of the command")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]",
                   help="user and group, as names or numbers (default: the image's)")
    p.add_argument("--entrypoint", metavar="CMD", help="override the image's ENTRYPOINT")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VAL",
                   help="set a label on the container")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("-v", "--volume", action="append", default=[], nargs="?", const=None,
                   metavar="SRC:DST[:OPTS]",
                   help="bind mount a host path (created if missing) or a named volume "
                        "(NAME:DST), or make an anonymous volume (DST); a bare -v "
                        "(followed by another flag) means --verbose")
    p.add_argument("--mount", action="append", default=[], metavar="type=TYPE,...",
                   help="type=bind|volume|tmpfs,source=,target=[,readonly]"
                        "[,tmpfs-size=][,tmpfs-mode=]")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]",
                   help="mount a tmpfs (options: size=, mode=, ro, exec...)")
    p.add_argument("--init", action="store_true", help="run a tiny init as PID 1")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
                   help="a resource limit (nofile, nproc, core...); never above the "
                        "host's hard limit without CAP_SYS_RESOURCE")
    p.add_argument("--device", action="append", default=[], metavar="HOST[:CTR][:rwm]",
                   help="add a host device (or every device below a directory) "
                        "to the container")
    p.add_argument("--cgroup-conf", action="append", default=[], metavar="KEY=VALUE",
                   help="write a cgroup v2 file, e.g. memory.high=67108864 (podman's)")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="no | on-failure[:N] | always | unless-stopped")
    p.add_argument("--stop-signal", metavar="SIGNAL",
                   help="signal that stops the container (default: SIGTERM)")
    p.add_argument("--stop-timeout", type=int, metavar="SECONDS",
                   help="seconds `stop` waits before SIGKILL (default 10)")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VAL",
                   help="max-size=SIZE, max-file=N (log rotation)")
    p.add_argument("--cgroup-parent", metavar="NAME",
                   help="the cgroup the container's cgroup is made in")
    add_resource_options(p, run=True)
    # network
    p.add_argument("--network", "--net", default=None, metavar="MODE",
                   help="bridge (default) | none | host | container:NAME | NETWORK")
    p.add_argument("-p", "--publish", "--port", action="append", default=[],
                   metavar="[IP:]HOSTPORT:PORT[/PROTO]",
                   help="publish a container port on the host (--port: the same)")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish every port the image exposes on a free host port")
    p.add_argument("--ip", metavar="ADDRESS", help="the container's address on its network")
    p.add_argument("--dns", action="append", default=[], metavar="ADDRESS",
                   help="a name server for /etc/resolv.conf")
    p.add_argument("--dns-search", action="append", default=[], metavar="DOMAIN",
                   help="a search domain for /etc/resolv.conf")
    p.add_argument("--add-host", action="append", default=[], metavar="HOST:IP",
                   help="add a line to /etc/hosts")
    # security
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                   help="add a capability (ALL: every one)")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                   help="drop a capability (ALL: every one)")
    p.add_argument("--privileged", action="store_true",
                   help="every capability and device, no seccomp, no masked paths")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="no-new-privileges, seccomp=unconfined|PROFILE.json, "
                        "systempaths=unconfined")
    p.add_argument("--userns", metavar="MODE",
                   help="auto[:size=N]: a user namespace with a private id range")
    p.add_argument("--pull", default="missing", choices=("missing", "always", "never"),
                   help="pull the image from its registry: missing (default), always, never")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="IMAGE [COMMAND...]",
                   help="the image and the command (or, with --rootfs, the command)")


def add_resource_options(p, run=False):
    """The cgroup limit flags of run/create (run=True: typed, with --cpu)
    and of update (strings: contain.core.cgroups.limits parses every value)."""
    number = int if run else None
    p.add_argument("-m", "--memory", metavar="BYTES", help="memory limit (e.g. 64m, 1g)")
    p.add_argument("--memory-reservation", metavar="BYTES",
                   help="memory soft limit (memory.low / soft_limit_in_bytes)")
    p.add_argument("--memory-swap", metavar="BYTES",
                   help="memory plus swap limit; -1: unlimited swap")
    p.add_argument("--cpus", metavar="N", help="number of CPUs (e.g. 0.5)")
    p.add_argument("--cpu-period", type=number, metavar="MICROSECONDS",
                   help="CFS period (default 100000)")
    p.add_argument("--cpu-quota", type=number, metavar="MICROSECONDS",
                   help="CFS quota per period")
    if run:
        p.add_argument("--cpu", type=int, metavar="MICROSECONDS",
                       help="CPU quota per 100 ms period: --cpu 50000 is half a CPU "
                            "(= --cpu-quota 50000 --cpu-period 100000)")
    p.add_argument("-c", "--cpu-shares", type=number, metavar="WEIGHT",
                   help="relative CPU weight (default 1024)")
    p.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs to run on (e.g. 0-2,4)")
    p.add_argument("--cpuset-mems", metavar="LIST", help="memory nodes to use (e.g. 0)")
    p.add_argument("--pids-limit", "--pids", type=number, dest="pids_limit", metavar="N",
                   help="maximum number of processes (--pids: the same)")
    p.add_argument("--blkio-weight", type=number, metavar="WEIGHT",
                   help="relative block I/O weight, 10 to 1000")
    if run:
        for flag in ("--device-read-bps", "--device-write-bps",
                     "--device-read-iops", "--device-write-iops"):
            what = "bytes" if flag.endswith("bps") else "I/O operations"
            p.add_argument(flag, action="append", default=[], metavar="PATH:RATE",
                           help=f"limit {flag.split('-')[3]} {what} per second on a disk")


def verbose_from(ns):
    """-v without a value (or --verbose) asks for the explain mode."""
    volumes = getattr(ns, "volume", None) or []
    if None in volumes:
        ns.volume = [v for v in volumes if v is not None]
        return True
    return False


def _recorded_limits(limits):
    """The limits to record: with Docker's default swap where memory is set."""
    if not limits.get("memory"):
        return limits
    from .runtime import cgroup_driver
    return cgroup_driver().default_limits(limits)


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
        "limits": _recorded_limits(spec.limits_from_args(ns)),
        "mounts": [spec.parse_volume(v) for v in ns.volume]
        + [spec.parse_mount(m) for m in ns.mount]
        + [spec.parse_tmpfs(t) for t in ns.tmpfs],
        "ulimits": [spec.parse_ulimit(u) for u in ns.ulimit],
        "devices": [d for item in ns.device for d in spec.parse_devices(item)],
        "cgroup_conf": cgroup_conf_from(ns.cgroup_conf),
        "init": ns.init,
        "network": network_options(ns),
        "security": security_options(ns),
        "stop_timeout": ns.stop_timeout,
        "stop_signal": spec.parse_signal(ns.stop_signal) if ns.stop_signal else None,
        "entrypoint": ns.entrypoint,
        "pull": ns.pull,
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
            raise UsageError(f'"{getattr(ns, "command", "run")}" requires at least 1 argument: IMAGE [COMMAND] [ARG...] '
                             "(or --rootfs PATH COMMAND...)")
        cfg["image"], cfg["argv"] = args[0], args[1:]
    return cfg


def cgroup_conf_from(items):
    """--cgroup-conf: cgroup v2 files; on a v1 host there are none to write."""
    conf = spec.parse_cgroup_conf(items)
    if conf:
        from .runtime import cgroup_driver
        if cgroup_driver().version != 2:
            raise UsageError("--cgroup-conf needs cgroup v2: this host's limits are on "
                             "cgroup v1 (for a soft memory limit use --memory-reservation, "
                             "memory.soft_limit_in_bytes)")
    return conf


def security_options(ns):
    from . import defaults
    defaults.parse_security_opts(ns.security_opt)  # refuse bad values now
    defaults.resolve_caps(ns.cap_add, ns.cap_drop, ns.privileged)
    return {"cap_add": ns.cap_add, "cap_drop": ns.cap_drop, "privileged": ns.privileged,
            # a profile file is read now, so a restart does not need it
            "security_opt": defaults.embed_seccomp_profiles(ns.security_opt),
            "userns": ns.userns}


def network_options(ns):
    # CONTAIN_DEFAULT_NETWORK sets the default mode (the tests use "none" outside
    # their network sandbox); Docker's default is the bridge.
    mode = ns.network or os.environ.get("CONTAIN_DEFAULT_NETWORK") or "bridge"
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
    options_after_image(ns)
    c = runtime.create_container(store, config_from(ns), log)
    print(c.id)
    return 0


def options_after_image(ns):
    """`create IMAGE --name N --memory M ...`: the older projects' order.

    When every word after IMAGE is a run/create option (and nothing is left
    for a command), they are read as options; otherwise they are the command,
    as in Docker (an image's ENTRYPOINT may take `--flags`)."""
    image, tail = ns.args[:1], list(ns.args[1:])
    if not tail or not tail[0].startswith("--") or tail[0] in ("--", "--help"):
        return
    try:
        again = ns.parser.parse_args(tail, namespace=argparse.Namespace(**vars(ns)))
    except ContainError:
        return
    if not again.args:
        vars(ns).update(vars(again))
        ns.args = image


def for_each(refs, action):
    """Docker's rule for commands over several names: do every one, print a
    line per failure, exit 1 if any failed (a bad flag value fails first)."""
    code = 0
    for ref in refs:
        try:
            action(ref)
        except UsageError:
            raise
        except ContainError as e:
            print(f"contain: {e}", file=sys.stderr)
            code = 1
    return code


def cmd_start(ns, store, log):
    from . import runtime
    if ns.attach:
        if len(ns.containers) > 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        return runtime.start(store, ns.containers[0], attach=True, log=log)

    def start(ref):
        runtime.start(store, ref, attach=False, log=log)
        print(ref)
    return for_each(ns.containers, start)


def cmd_stop(ns, store, log):
    from . import runtime

    def stop(ref):
        runtime.stop(store, ref, ns.time, log)
        print(ref)
    return for_each(ns.containers, stop)


def cmd_kill(ns, store, log):
    from . import runtime
    sig = spec.parse_signal(ns.signal)

    def kill(ref):
        runtime.kill(store, ref, sig)
        print(ref)
    return for_each(ns.containers, kill)


def cmd_rm(ns, store, log):
    from . import runtime

    def remove(ref):
        runtime.remove(store, ref, force=ns.force, log=log, volumes=ns.volumes)
        print(ref)
    return for_each(ns.containers, remove)


def cmd_wait(ns, store, log):
    from . import runtime
    return for_each(ns.containers, lambda ref: print(runtime.wait(store, ref), flush=True))


def cmd_ps(ns, store, log):
    from . import views
    print(views.ps(store, all=ns.all, quiet=ns.quiet, no_trunc=ns.no_trunc,
                   fmt=ns.format, filters=ns.filter, tags=_image_store(store).tags()),
          end="")
    return 0


def cmd_rename(ns, store, log):
    store.rename(ns.container, ns.new_name)
    return 0


def cmd_top(ns, store, log):
    from . import resources
    print(resources.top(store, ns.container, ns.ps_options), end="")
    return 0


def cmd_version(ns, store, log):
    print(version_text())
    return 0


def version_text():
    from .. import __version__
    return (f"contain version {__version__} (Python {sys.version.split()[0]}, "
            f"Linux {os.uname().release})")


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
    from . import enter
    argv = list(ns.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError('"exec" requires at least 2 arguments: CONTAINER COMMAND [ARG...]')
    return enter.exec_in(store, ns.container, argv, env=spec.parse_env(ns.env, ns.env_file),
                           cwd=ns.workdir, user=ns.user, tty=ns.tty,
                           interactive=ns.interactive, detach=ns.detach,
                           privileged=ns.privileged, log=log)


def cmd_pause(ns, store, log):
    from . import control

    def pause(ref):
        control.pause(store, ref)
        print(ref)
    return for_each(ns.containers, pause)


def cmd_unpause(ns, store, log):
    from . import control

    def unpause(ref):
        control.unpause(store, ref)
        print(ref)
    return for_each(ns.containers, unpause)


def cmd_attach(ns, store, log):
    from . import control
    return control.attach(store, ns.container, sig_proxy=ns.sig_proxy)


def cmd_cp(ns, store, log):
    from . import copy
    return copy.cp(store, ns.source, ns.dest, log)


def _build_pause(func):
    def build(sp):
        sp.add_argument("containers", nargs="+", metavar="CONTAINER")
        sp.set_defaults(func=func)
    return build


def _sig_proxy(value):
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"invalid --sig-proxy value {value!r}: true or false")
    return value.lower() == "true"


def _build_attach(sp):
    sp.add_argument("--no-stdin", action="store_true",
                    help="(accepted for Docker: input is never attached)")
    sp.add_argument("--sig-proxy", type=_sig_proxy, nargs="?", const=True, default=True,
                    metavar="BOOL", help="forward signals to the container (default true)")
    sp.add_argument("container", metavar="CONTAINER")
    sp.set_defaults(func=cmd_attach)


def _build_cp(sp):
    sp.add_argument("-a", "--archive", action="store_true",
                    help="(accepted for Docker: owners and modes are always kept)")
    sp.add_argument("source", metavar="SRC", help="CONTAINER:PATH, a host path or - (a tar)")
    sp.add_argument("dest", metavar="DEST", help="CONTAINER:PATH, a host path or - (a tar)")
    sp.set_defaults(func=cmd_cp)


# ----------------------------------------------------------------- volumes
def cmd_volume_create(ns, store, log):
    from .volumes import VolumeStore
    labels = dict(label.partition("=")[::2] for label in ns.label)
    meta, _ = VolumeStore(store).create(ns.name, labels=labels)
    print(meta["Name"])
    return 0


def cmd_volume_ls(ns, store, log):
    from .volumes import VolumeStore
    vs = VolumeStore(store)
    names = vs.names()
    if ns.quiet:
        print("".join(n + "\n" for n in names), end="")
        return 0
    from .views import table
    print(table((("DRIVER", "driver"), ("VOLUME NAME", "name")),
                [{"driver": "local", "name": n} for n in names]), end="")
    return 0


def cmd_volume_inspect(ns, store, log):
    import json
    from .volumes import VolumeStore
    vs = VolumeStore(store)
    out = []
    for name in ns.volumes:
        meta = vs.get(name)
        out.append({k: meta[k] for k in ("CreatedAt", "Driver", "Labels", "Mountpoint",
                                         "Name", "Options", "Scope")})
    print(json.dumps(out, indent=4))
    return 0


def cmd_volume_rm(ns, store, log):
    from .volumes import VolumeStore
    vs = VolumeStore(store)

    def remove(name):
        vs.remove(name)
        print(name)
    return for_each(ns.volumes, remove)


def cmd_volume_prune(ns, store, log):
    from .volumes import VolumeStore
    removed = VolumeStore(store).prune(all_volumes=ns.all)
    if removed:
        print("Deleted Volumes:\n" + "".join(n + "\n" for n in removed), end="")
    print(f"Total reclaimed volumes: {len(removed)}")
    return 0


def _build_volume(sp):
    sub = sp.add_subparsers(dest="volume_command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    p = sub.add_parser("create", help="create a volume")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="set a label on the volume")
    p.add_argument("-d", "--driver", default="local", choices=("local",),
                   help="local (the only driver)")
    p.add_argument("name", nargs="?", metavar="VOLUME")
    p.set_defaults(func=cmd_volume_create)
    p = sub.add_parser("ls", aliases=["list"], help="list volumes")
    p.add_argument("-q", "--quiet", action="store_true", help="only volume names")
    p.set_defaults(func=cmd_volume_ls)
    p = sub.add_parser("inspect", help="show volumes as JSON")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p.set_defaults(func=cmd_volume_inspect)
    p = sub.add_parser("rm", aliases=["remove"], help="remove volumes no container uses")
    p.add_argument("-f", "--force", action="store_true", help="(accepted for Docker)")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p.set_defaults(func=cmd_volume_rm)
    p = sub.add_parser("prune", help="remove unused anonymous volumes (all unused: -a)")
    p.add_argument("-a", "--all", action="store_true", help="named volumes too")
    p.add_argument("-f", "--force", action="store_true", help="(no prompt is ever shown)")
    p.set_defaults(func=cmd_volume_prune)


# ------------------------------------------------------------------ parser
def build_parser(argv=None):
    """The parser; with argv, only the subcommand named there is built
    (argparse is slow to build: every add_argument costs, and `run` has 60)."""
    p = Parser(prog="contain", description="A container runtime in pure Python.")
    p.add_argument("--root", help="state directory (default $CONTAIN_ROOT or /var/lib/contain)")
    p.add_argument("--verbose", action="store_true", dest="global_verbose",
                   help="explain each step on stderr")
    p.add_argument("--version", action="version", version=version_text(),
                   help="print the version and exit")
    p.add_argument("--debug", action="store_true",
                   help="on an internal error, print the Python traceback too "
                        "(also: CONTAIN_DEBUG=1)")
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
    sp.set_defaults(func=cmd_run if detach else cmd_create, parser=sp)


def _build_start(sp):
    sp.add_argument("-a", "--attach", action="store_true",
                    help="follow the output and return the exit code")
    sp.add_argument("-i", "--interactive", action="store_true", help="(accepted for Docker)")
    sp.add_argument("containers", nargs="+", metavar="CONTAINER")
    sp.set_defaults(func=cmd_start)


def _build_stop(sp):
    sp.add_argument("-t", "--time", type=int, default=None, help="seconds before SIGKILL")
    sp.add_argument("containers", nargs="+", metavar="CONTAINER")
    sp.set_defaults(func=cmd_stop)


def _build_kill(sp):
    sp.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")
    sp.add_argument("containers", nargs="+", metavar="CONTAINER")
    sp.set_defaults(func=cmd_kill)


def _build_rm(sp):
    sp.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    sp.add_argument("-v", "--volumes", action="store_true",
                    help="remove the container's anonymous volumes too")
    sp.add_argument("containers", nargs="+", metavar="CONTAINER")
    sp.set_defaults(func=cmd_rm)


def _build_wait(sp):
    sp.add_argument("containers", nargs="+", metavar="CONTAINER")
    sp.set_defaults(func=cmd_wait)


def _build_ps(sp, all_default=False):
    sp.add_argument("-a", "--all", action="store_true", default=all_default,
                    help="show every container (default: running ones)")
    sp.add_argument("-q", "--quiet", action="store_true", help="only container IDs")
    sp.add_argument("--no-trunc", action="store_true", help="full IDs and commands")
    sp.add_argument("--format", help="table, json or a template such as "
                                     "'{{.ID}} {{.Names}} {{.Status}}'")
    sp.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                    help="name=, id=, status=, label=KEY[=VALUE], exited=CODE, ancestor=IMAGE")
    sp.set_defaults(func=cmd_ps)


def _build_logs(sp):
    sp.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    sp.add_argument("-n", "--tail", type=_tail, help="only the last N lines (or all)")
    sp.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    sp.add_argument("--since", help="only output since a time (RFC 3339, or 10m, 1h...)")
    sp.add_argument("container")
    sp.set_defaults(func=cmd_logs)


def _build_inspect(sp):
    sp.add_argument("-f", "--format", help="a template such as '{{.State.Status}}'")
    sp.add_argument("containers", nargs="+", metavar="CONTAINER")
    sp.set_defaults(func=cmd_inspect)


def _build_exec(sp):
    sp.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    sp.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    sp.add_argument("-d", "--detach", action="store_true", help="run in the background")
    sp.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VAL]",
                    help="set an environment variable")
    sp.add_argument("--env-file", action="append", default=[], metavar="FILE",
                    help="read KEY=VAL lines from FILE")
    sp.add_argument("-w", "--workdir", metavar="DIR", help="working directory of the command")
    sp.add_argument("-u", "--user", metavar="USER[:GROUP]", help="user and group")
    sp.add_argument("--privileged", action="store_true", help="every capability, no seccomp")
    sp.add_argument("container")
    sp.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]",
                    help="the command to run")
    sp.set_defaults(func=cmd_exec)


def _build_rename(sp):
    sp.add_argument("container", metavar="CONTAINER")
    sp.add_argument("new_name", metavar="NEW_NAME")
    sp.set_defaults(func=cmd_rename)


def _build_top(sp):
    sp.add_argument("container", metavar="CONTAINER")
    sp.add_argument("ps_options", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]",
                    help="-ef (default), or -o/-eo FIELD,... with pid, ppid, user, uid, "
                         "stat, rss, vsz, time, etime, comm, args")
    sp.set_defaults(func=cmd_top)


def _build_version(sp):
    sp.set_defaults(func=cmd_version, needs_root=False)


# ---- image commands
def _image_store(store):
    from .images import ImageStore
    return ImageStore(store.root)


def _image_in_use(store):
    """in_use(image_id) for rmi/prune: does a container (in any state) use it?"""
    def in_use(image_id):
        return any((c.config.get("rootfs") or {}).get("image_id") == image_id
                   for c in store.all())
    return in_use


def cmd_load(ns, store, log):
    source = ns.input or ns.source or "-"
    if source == "-" and sys.stdin.isatty():
        raise UsageError("requested load from stdin, but stdin is a terminal: "
                         "use -i FILE or redirect")
    for ref, image_id in _image_store(store).load(source, platform=ns.platform, log=log,
                                                  name=ns.name):
        print(f"Loaded image: {ref}" if ref else f"Loaded image ID: {image_id}")
    return 0


def cmd_import(ns, store, log):
    from .images import parse_changes
    section = parse_changes(ns.change)
    print(_image_store(store).import_tarball(ns.file, ns.reference, log=log, config=section,
                                             message=ns.message))
    return 0


def cmd_images(ns, store, log):
    from . import views
    from .images import image_rows
    flt = views.parse_filters(ns.filter, views.IMAGE_FILTERS)
    images = [i for i in _image_store(store).list() if views.image_matches(i, flt)]
    rows = image_rows(images, ns.no_trunc, match=ns.reference)
    if "reference" in flt:
        rows = [r for r in rows if views.row_matches_reference(r, flt["reference"])]
        images = [i for i in images if any(r["ID"] in (i.id, i.short_id) for r in rows)]
    if ns.quiet:
        ids = [i.id if ns.no_trunc else i.short_id for i in images]
        print("".join(i + "\n" for i in ids), end="")
        return 0
    if ns.format and ns.format != "table":
        print(views.render_template(ns.format, rows, views.IMAGE_FIELDS), end="")
        return 0
    columns = (("REPOSITORY", "Repository"), ("TAG", "Tag")) + \
        ((("DIGEST", "Digest"),) if ns.digests else ()) + \
        (("IMAGE ID", "ID"), ("CREATED", "CreatedSince"), ("SIZE", "Size"))
    print(views.table(columns, rows), end="")
    return 0


def cmd_rmi(ns, store, log):
    images = _image_store(store)

    def remove(ref):
        for line in images.remove(ref, force=ns.force, in_use=_image_in_use(store)):
            print(line)
    return for_each(ns.images, remove)


def cmd_tag(ns, store, log):
    _image_store(store).tag(ns.source, ns.target)
    return 0


def cmd_image_inspect(ns, store, log):
    import json
    from . import views
    images = _image_store(store)
    items = [images.inspect(ref) for ref in ns.images]
    if ns.format:
        print("\n".join(views.render_path(ns.format, item) for item in items))
    else:
        print(json.dumps(items, indent=4))
    return 0


def cmd_save(ns, store, log):
    out = ns.output or "-"
    if out == "-" and sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal: use -o FILE or redirect")
    _image_store(store).save(ns.images, out)
    return 0


def cmd_image_prune(ns, store, log):
    from .images import human_size
    deleted, freed = _image_store(store).prune(in_use=_image_in_use(store))
    if deleted:
        print("Deleted Images:\n" + "".join(f"deleted: {i}\n" for i in deleted), end="")
    print(f"Total reclaimed space: {human_size(freed)}")
    return 0


def _build_load(sp):
    sp.add_argument("-i", "--input", metavar="FILE",
                    help="read from a tar archive or OCI layout directory (default: stdin)")
    sp.add_argument("-q", "--quiet", action="store_true", help="(accepted for Docker)")
    sp.add_argument("-v", "--verbose", action="store_true", help="say what is done per layer")
    sp.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                    help="from a multi-platform image, load this one (default: the host's)")
    sp.add_argument("--name", metavar="REPOSITORY[:TAG]",
                    help="REPOSITORY: the repository of an OCI layout's bare tags (default "
                         "localhost/<layout name>) and of unnamed images; REPOSITORY:TAG: "
                         "the tag of the archive's one image")
    sp.add_argument("source", nargs="?", metavar="FILE|DIR|-")
    sp.set_defaults(func=cmd_load)


def _build_import(sp):
    sp.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                    help="apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, "
                         "LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR")
    sp.add_argument("-m", "--message", help="a commit message for the image's history")
    sp.add_argument("-v", "--verbose", action="store_true", help="say what is done")
    sp.add_argument("file", metavar="FILE|-")
    sp.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    sp.set_defaults(func=cmd_import)


def _build_images(sp):
    sp.add_argument("-a", "--all", action="store_true", help="(accepted for Docker)")
    sp.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    sp.add_argument("--no-trunc", action="store_true", help="full image IDs")
    sp.add_argument("--digests", action="store_true", help="show the registry digests")
    sp.add_argument("--format", help="a Go-template subset, e.g. '{{.Repository}}:{{.Tag}}'")
    sp.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                    help="reference=PATTERN, dangling=true|false, label=KEY[=VALUE]")
    sp.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    sp.set_defaults(func=cmd_images)


def _build_rmi(sp):
    sp.add_argument("-f", "--force", action="store_true",
                    help="untag an image even if a container uses it")
    sp.add_argument("images", nargs="+")
    sp.set_defaults(func=cmd_rmi)


def _build_tag(sp):
    sp.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    sp.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    sp.set_defaults(func=cmd_tag)


def _build_save(sp):
    sp.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    sp.add_argument("images", nargs="+")
    sp.set_defaults(func=cmd_save)


def _build_image_inspect(sp):
    sp.add_argument("-f", "--format", help="a template such as '{{.Config.Cmd}}'")
    sp.add_argument("images", nargs="+")
    sp.set_defaults(func=cmd_image_inspect)


def _build_image(sp):
    sub = sp.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, aliases, helptext, build in (
            ("ls", ["list"], "list images", _build_images),
            ("inspect", [], "show images as JSON", _build_image_inspect),
            ("rm", ["remove"], "remove images", _build_rmi),
            ("load", [], "load images from a docker-archive or OCI layout", _build_load),
            ("import", [], "make an image of a root filesystem tarball", _build_import),
            ("save", [], "write images to a docker-archive", _build_save),
            ("tag", [], "tag an image", _build_tag)):
        build(sub.add_parser(name, aliases=aliases, help=helptext))
    p = sub.add_parser("prune", help="remove untagged images no container uses")
    p.add_argument("-f", "--force", action="store_true", help="(no prompt is ever shown)")
    p.set_defaults(func=cmd_image_prune)


IMAGE_COMMANDS = {
    "images": ("list images", _build_images),
    "load": ("load images from a docker-archive or OCI layout (file, dir or -)",
             _build_load),
    "import": ("make an image of a root filesystem tarball", _build_import),
    "rmi": ("remove images", _build_rmi),
    "tag": ("tag an image", _build_tag),
    "save": ("write images to a docker-archive (also an OCI layout)", _build_save),
    "image": ("manage images (ls, inspect, rm, load, import, save, tag, prune)", _build_image),
}


# ---- registry commands (contain/engine/registry.py)
def cmd_pull(ns, store, log):
    from . import registry
    registry.pull(store.root, ns.name, platform=ns.platform, tls_verify=ns.tls_verify,
                  quiet=ns.quiet, log=log)
    return 0


def cmd_push(ns, store, log):
    from . import registry
    registry.push(store.root, ns.name, tls_verify=ns.tls_verify, quiet=ns.quiet, log=log)
    return 0


def cmd_login(ns, store, log):
    from . import registry
    user = ns.username or input("Username: ")
    if ns.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass
        password = getpass.getpass("Password: ")
    registry.login(store.root, ns.server, user, password, tls_verify=ns.tls_verify)
    print("Login Succeeded")
    return 0


def cmd_logout(ns, store, log):
    from . import registry
    print(f"Removing login credentials for {registry.logout(store.root, ns.server)}")
    return 0


def _tls_verify(value):
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"invalid --tls-verify value {value!r}: true or false")
    return value.lower() == "true"


def _build_registry(func, name_help, platform=False, server=False):
    def build(sp):
        sp.add_argument("--tls-verify", type=_tls_verify, nargs="?", const=True, default=True,
                        metavar="true|false", help="verify the registry's certificate "
                        "(false: loopback or CONTAIN_INSECURE_REGISTRIES only)")
        if platform:
            sp.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                            help="from a multi-platform image, pull this one (default: the host's)")
        if server:
            sp.add_argument("-u", "--username", help="the user name to log in as")
            sp.add_argument("--password-stdin", action="store_true",
                            help="read the password from stdin")
        elif func is not cmd_logout:
            sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        sp.add_argument("server" if func in (cmd_login, cmd_logout) else "name",
                        metavar=name_help)
        sp.set_defaults(func=func)
    return build


REGISTRY_COMMANDS = {
    "pull": ("pull an image from a registry",
             _build_registry(cmd_pull, "NAME[:TAG|@DIGEST]", platform=True)),
    "push": ("push an image to a registry", _build_registry(cmd_push, "NAME[:TAG]")),
    "login": ("log in to a registry", _build_registry(cmd_login, "REGISTRY", server=True)),
    "logout": ("log out from a registry", _build_registry(cmd_logout, "REGISTRY")),
}

# ---- resource commands
def cmd_stats(ns, store, log):
    from . import resources
    return resources.show_stats(store, ns.containers, all=ns.all, stream=not ns.no_stream,
                                fmt=ns.format, no_trunc=ns.no_trunc)


def cmd_update(ns, store, log):
    from . import resources
    changes = resources.changes_from_flags(ns)
    if not changes:
        raise UsageError("You must provide one or more flags when using this command.")
    def update(ref):
        resources.update_container(store, ref, changes, log)
        print(ref)
    return for_each(ns.containers, update)


def cmd_info(ns, store, log):
    from . import resources
    info = resources.system_info(store)
    if ns.format == "json":
        import json
        print(json.dumps(info, indent=1, sort_keys=True))
        return 0
    if ns.format:
        raise UsageError(f"unsupported --format {ns.format!r}: use json")
    print(resources.info_text(info))
    for warning in info["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr)
    return 0


def _build_stats(sp):
    sp.add_argument("-a", "--all", action="store_true",
                    help="show all containers (default: running ones)")
    sp.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    sp.add_argument("--no-trunc", action="store_true", help="full container IDs")
    sp.add_argument("--format", help="table (default) or json")
    sp.add_argument("containers", nargs="*")
    sp.set_defaults(func=cmd_stats)


def _build_update(sp):
    add_resource_options(sp)
    sp.add_argument("containers", nargs="+", metavar="CONTAINER")
    sp.set_defaults(func=cmd_update)


def _build_info(sp):
    sp.add_argument("-f", "--format", help="json")
    sp.set_defaults(func=cmd_info)


RESOURCE_COMMANDS = {
    "stats": ("display containers' resource usage", _build_stats),
    "update": ("update containers' resource limits", _build_update),
    "info": ("display system-wide information", _build_info),
}

# ---- network commands
def cmd_network_create(ns, store, log):
    from . import network
    opts = dict(o.partition("=")[::2] for o in ns.opt)
    if ns.driver != "bridge":
        raise UsageError(f"network driver {ns.driver!r} is not supported: only bridge")
    net = network.NetworkStore(store.root).create(
        ns.name, subnet=ns.subnet, gateway=ns.gateway,
        bridge=opts.get("com.docker.network.bridge.name"),
        mtu=opts.get("com.docker.network.driver.mtu"),
        labels=dict(label.partition("=")[::2] for label in ns.label))
    print(net["id"])
    return 0


def cmd_network_ls(ns, store, log):
    from . import network
    from .views import table
    nets = network.NetworkStore(store.root).list()
    if ns.quiet:
        print("".join((n["id"] if ns.no_trunc else n["id"][:12]) + "\n" for n in nets), end="")
        return 0
    rows = [{"id": n["id"] if ns.no_trunc else n["id"][:12], "name": n["name"],
             "driver": n["driver"], "subnet": n["subnet"], "scope": "local"} for n in nets]
    print(table((("NETWORK ID", "id"), ("NAME", "name"), ("DRIVER", "driver"),
                 ("SUBNET", "subnet"), ("SCOPE", "scope")), rows), end="")
    return 0


def cmd_network_inspect(ns, store, log):
    import json
    from . import network
    nets = network.NetworkStore(store.root)
    print(json.dumps([nets.inspect(name) for name in ns.networks], indent=4))
    return 0


def cmd_network_rm(ns, store, log):
    from . import network
    nets = network.NetworkStore(store.root)

    def remove(name):
        nets.remove(name)
        print(name)
    return for_each(ns.networks, remove)


def cmd_network_prune(ns, store, log):
    from . import network
    removed = network.NetworkStore(store.root).prune()
    if removed:
        print("Deleted Networks:\n" + "".join(name + "\n" for name in removed), end="")
    return 0


def cmd_port(ns, store, log):
    from . import network
    c = store.find(ns.container)
    lines = network.port_lines(c.state.get("network") if c.running else None, ns.port)
    if ns.port and not lines:
        raise ContainError(f"No public port '{ns.port}' published for {c.name}")
    print("".join(line + "\n" for line in lines), end="")
    return 0


def _build_network(sp):
    sub = sp.add_subparsers(dest="network_command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    p = sub.add_parser("create", help="create a bridge network")
    p.add_argument("-d", "--driver", default="bridge", help="bridge (the only driver)")
    p.add_argument("--subnet", help="e.g. 10.89.5.0/24 (default: the next free 10.89.N.0/24)")
    p.add_argument("--gateway", help="default: the subnet's first address")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="com.docker.network.bridge.name, com.docker.network.driver.mtu")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="set a label on the network")
    p.add_argument("name")
    p.set_defaults(func=cmd_network_create)
    p = sub.add_parser("ls", aliases=["list"], help="list networks")
    p.add_argument("-q", "--quiet", action="store_true", help="only network IDs")
    p.add_argument("--no-trunc", action="store_true", help="full network IDs")
    p.set_defaults(func=cmd_network_ls)
    p = sub.add_parser("inspect", help="show networks as JSON")
    p.add_argument("networks", nargs="+")
    p.set_defaults(func=cmd_network_inspect)
    p = sub.add_parser("rm", aliases=["remove"], help="remove networks")
    p.add_argument("networks", nargs="+")
    p.set_defaults(func=cmd_network_rm)
    p = sub.add_parser("prune", help="remove unused networks")
    p.add_argument("-f", "--force", action="store_true", help="(no prompt is ever shown)")
    p.set_defaults(func=cmd_network_prune)


def _build_port(sp):
    sp.add_argument("container")
    sp.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    sp.set_defaults(func=cmd_port)


NETWORK_COMMANDS = {
    "network": ("manage networks (create, ls, inspect, rm, prune)", _build_network),
    "port": ("list a container's published ports", _build_port),
}


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
    "rename": ("rename a container", _build_rename),
    "top": ("show a container's processes", _build_top),
    "version": ("show the version", _build_version),
    "list": ("list every container (the same as ps -a)", lambda sp: _build_ps(sp, True)),
    "pause": ("pause every process of containers", _build_pause(cmd_pause)),
    "unpause": ("unpause paused containers", _build_pause(cmd_unpause)),
    "attach": ("follow a running container's output; return its exit code",
               _build_attach),
    "cp": ("copy files between a container and the host (- : a tar stream)", _build_cp),
    "volume": ("manage volumes (create, ls, inspect, rm, prune)", _build_volume),
    **RESOURCE_COMMANDS,
    **NETWORK_COMMANDS,
    **IMAGE_COMMANDS,
    **REGISTRY_COMMANDS,
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
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: still one line; the traceback only on request
        debug = _debug_wanted(argv)
        hint = "" if debug else " (--debug or CONTAIN_DEBUG=1 shows the traceback)"
        print(f"contain: internal error: {type(e).__name__}: {e}{hint}", file=sys.stderr)
        if debug:
            import traceback
            traceback.print_exc()
        return EXIT_RUNTIME


def _debug_wanted(argv):
    """--debug among the global options (before the command), or CONTAIN_DEBUG."""
    if os.environ.get("CONTAIN_DEBUG", "") not in ("", "0"):
        return True
    args = list(argv)
    while args and args[0].startswith("-"):
        arg = args.pop(0)
        if arg == "--debug":
            return True
        if arg == "--root":
            args = args[1:]
    return False


def verbose_logger(enabled):
    if not enabled:
        return None

    def log(msg):
        # a closed stderr (`... 2>&1 | head -1`) must not stop what is being
        # logged, above all not a rollback: the log is only a spectator
        try:
            os.write(2, f"[contain] {msg}\n".encode())
        except OSError:
            pass
    return log


def _main(argv):
    try:
        ns = build_parser(argv).parse_args(argv)
        if not getattr(ns, "func", None):
            build_parser().print_help()  # bare `contain`, as bare `docker`
            return 0
        if getattr(ns, "needs_root", True) and os.geteuid() != 0:
            raise ContainError("must be run as root (namespaces, mounts and cgroups need it)")
        from .state import Store
        verbose = ns.global_verbose or getattr(ns, "verbose", False)
        if hasattr(ns, "volume"):
            verbose = verbose_from(ns) or verbose
        return ns.func(ns, Store(ns.root), verbose_logger(verbose))
    except ContainError as e:
        print(f"contain: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # one a library call did not turn into a ContainError
        where = f"{e.filename}: " if e.filename else ""
        print(f"contain: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return 130
