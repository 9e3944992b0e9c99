"""The command line: argparse, one small function per subcommand.

Each cmd_* function parses nothing itself: it turns the parsed flags into one
call of the library (runtime, images, cgroups, network) and prints the
result.  Errors are ContainError; main() prints `contain: <message>` and
exits with the error's Docker exit code.
"""

import argparse
import os
import sys

from . import flags as spec
from ..errors import EXIT_RUNTIME, ContainError, UsageError


class Parser(argparse.ArgumentParser):
    """argparse, but bad usage is a one-line error with exit code 125."""

    def error(self, message):
        # main() prints "contain: " before every error: name only the subcommand
        command = self.prog.partition(" ")[2]
        raise UsageError(f"{command + ': ' if command else ''}{message} (see --help)")

    def add_argument(self, *args, **kwargs):
        # argparse makes a help formatter for every argument only to check its
        # nargs; one shared formatter is as good and saves milliseconds at start
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def _get_formatter(self):
        if getattr(self, "_checking", False):
            if getattr(self, "_check_formatter", None) is None:
                self._check_formatter = self._new_formatter()
            return self._check_formatter
        return self._new_formatter()

    def _new_formatter(self):
        # argparse would ask shutil for the terminal's width, importing shutil,
        # bz2 and lzma (3 ms at every start); os tells us as well
        try:
            width = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            try:
                width = os.get_terminal_size(sys.stdout.fileno()).columns
            except (OSError, ValueError):
                width = 80
        return self.formatter_class(prog=self.prog, width=width - 2)


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
        + [spec.parse_tmpfs(t) for t in ns.tmpfs],
        "init": ns.init,
        "network": network_options(ns),
        "security": security_options(ns),
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


def security_options(ns):
    from ..core import security
    security.parse_security_opts(ns.security_opt)  # refuse bad values now
    security.resolve_caps(ns.cap_add, ns.cap_drop, ns.privileged)
    return {"cap_add": ns.cap_add, "cap_drop": ns.cap_drop, "privileged": ns.privileged,
            # a profile file is read now, so a restart does not need it
            "security_opt": security.embed_seccomp_profiles(ns.security_opt),
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
    for ref, image_id in _image_store(store).load(source, platform=ns.platform, log=log):
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
    images = _image_store(store).list()
    if ns.quiet:
        ids = [i.id if ns.no_trunc else i.short_id for i in images]
        print("".join(i + "\n" for i in ids), end="")
        return 0
    rows = image_rows(images, ns.no_trunc, match=ns.reference)
    if ns.format:
        print(views.render_template(ns.format, rows), end="")
        return 0
    print(views.table((("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                       ("CREATED", "CreatedSince"), ("SIZE", "Size")), rows), end="")
    return 0


def cmd_rmi(ns, store, log):
    images, code = _image_store(store), 0
    for ref in ns.images:
        try:
            for line in images.remove(ref, force=ns.force, in_use=_image_in_use(store)):
                print(line)
        except UsageError:
            raise
        except ContainError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            code = 1
    return code


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
    sp.add_argument("source", nargs="?", metavar="FILE|DIR|-")
    sp.set_defaults(func=cmd_load)


def _build_import(sp):
    sp.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                    help="apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, "
                         "LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR")
    sp.add_argument("-m", "--message", help="a commit message for the image's history")
    sp.add_argument("-v", "--verbose", action="store_true")
    sp.add_argument("file", metavar="FILE|-")
    sp.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    sp.set_defaults(func=cmd_import)


def _build_images(sp):
    sp.add_argument("-a", "--all", action="store_true", help="(accepted for Docker)")
    sp.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    sp.add_argument("--no-trunc", action="store_true")
    sp.add_argument("--format", help="a Go-template subset, e.g. '{{.Repository}}:{{.Tag}}'")
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
    sp.add_argument("-f", "--format")
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
    code = 0
    for ref in ns.containers:
        try:
            resources.update_container(store, ref, changes, log)
            print(ref)
        except UsageError:
            raise
        except ContainError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            code = 1
    return code


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
    sp.add_argument("--no-trunc", action="store_true")
    sp.add_argument("--format", help="table (default) or json")
    sp.add_argument("containers", nargs="*")
    sp.set_defaults(func=cmd_stats)


def _build_update(sp):
    sp.add_argument("-m", "--memory")
    sp.add_argument("--memory-reservation")
    sp.add_argument("--memory-swap")
    sp.add_argument("--cpus")
    sp.add_argument("--cpu-period")
    sp.add_argument("--cpu-quota")
    sp.add_argument("-c", "--cpu-shares")
    sp.add_argument("--cpuset-cpus")
    sp.add_argument("--cpuset-mems")
    sp.add_argument("--pids-limit")
    sp.add_argument("--blkio-weight")
    sp.add_argument("containers", nargs="+")
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
    nets, code = network.NetworkStore(store.root), 0
    for name in ns.networks:
        try:
            nets.remove(name)
            print(name)
        except ContainError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            code = 1
    return code


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
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", help="e.g. 10.89.5.0/24 (default: the next free 10.89.N.0/24)")
    p.add_argument("--gateway", help="default: the subnet's first address")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="com.docker.network.bridge.name, com.docker.network.driver.mtu")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("name")
    p.set_defaults(func=cmd_network_create)
    p = sub.add_parser("ls", aliases=["list"], help="list networks")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
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
    **RESOURCE_COMMANDS,
    **NETWORK_COMMANDS,
    **IMAGE_COMMANDS,
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
    except OSError as e:  # one a library call did not turn into a ContainError
        where = f"{e.filename}: " if e.filename else ""
        print(f"contain: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return 130
