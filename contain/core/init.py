"""The container's side: one linear function from fork to execve.

child_main() runs in the freshly forked child, which the parent forked
after unshare(CLONE_NEWPID), so this process is PID 1 of the container's PID
namespace.  It reads top to bottom as the story of a container's birth; each
ordering decision says why.  It never returns: it execs the command or
reports the failed step through the error pipe and exits.

The error pipe (close-on-exec) is the child's only way to talk back, as in
CPython's subprocess: a line "ready" when the namespaces exist (the parent
then writes the user namespace's id maps and configures the network), a
final "error" record if a step fails, and plain EOF when execve succeeded.
"""

import _signal
import os

from . import linux
from ..errors import EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND, EXIT_RUNTIME, StepError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Launch:
    """Everything the child needs, prepared by the parent before fork."""

    def __init__(self, **kw):
        self.argv = kw.pop("argv")
        self.env = kw.pop("env")              # list of KEY=VALUE
        self.cwd = kw.pop("cwd", "") or "/"
        # PID 1 creates a missing cwd (runc, Docker); an exec does not (runc)
        self.create_cwd = kw.pop("create_cwd", True)
        # where relative paths of the mount plan resolve: the bundle (runc's)
        self.setup_cwd = kw.pop("setup_cwd", None)
        self.ids = kw.pop("ids", (0, 0, []))  # (uid, gid, [gids]) as config.json says
        self.umask = kw.pop("umask", None)
        self.hostname = kw.pop("hostname", None)
        self.domainname = kw.pop("domainname", None)
        self.root = kw.pop("root")            # the root mount point (host path)
        self.plan = kw.pop("plan")            # list of mounts.Op
        # a new user namespace: mount ops run as host root before the user
        # namespace, the fd of a user namespace with the container's maps
        # (idmapped mounts), the host (uid, gid) of the container's root
        self.userns = kw.pop("userns", False)  # enter (run) or join (exec) one
        self.host_plan = kw.pop("host_plan", [])
        self.userns_path = kw.pop("userns_path", None)   # join this one (not new)
        self.owner = kw.pop("owner", None)
        self.unshare_flags = kw.pop("unshare_flags")
        self.join_ns = kw.pop("join_ns", [])  # [(path, nstype)] to setns
        self.cgroup_procs = kw.pop("cgroup_procs", [])
        self.sync = kw.pop("sync", False)     # wait for the parent after unshare
        self.hooks_sync = kw.pop("hooks_sync", False)  # and before pivot_root
        self.create_hooks = kw.pop("create_hooks", [])  # createContainer (in here)
        self.start_hooks = kw.pop("start_hooks", [])    # startContainer (in here)
        self.hook_state = kw.pop("hook_state", None)    # the OCI state hooks read
        self.fifo_fd = kw.pop("fifo_fd", -1)  # created: wait here for `start`
        self.loopback = kw.pop("loopback", True)
        self.tty = kw.pop("tty", False)
        self.console_size = kw.pop("console_size", None)
        self.rlimits = kw.pop("rlimits", [])  # [(resource, soft, hard)]
        self.oom_score_adj = kw.pop("oom_score_adj", None)
        self.cap_sets = kw.pop("cap_sets", None)  # config.json's five sets, or None
        self.no_new_privs = kw.pop("no_new_privs", False)
        self.seccomp = kw.pop("seccomp", None)  # classic BPF program or None
        self.preserve_fds = kw.pop("preserve_fds", 0)
        self.log = kw.pop("log", None)        # callable(str) for -v
        self.errfd = kw.pop("errfd")
        self.gofd = kw.pop("gofd", -1)
        self.ttysock = kw.pop("ttysock", None)
        self.init = kw.pop("init", False)     # --init: a tiny init stays PID 1
        if kw:
            raise TypeError(f"unknown launch fields: {sorted(kw)}")


class Failure(Exception):
    def __init__(self, step, err=None, code=EXIT_RUNTIME, detail=None):
        super().__init__(step)
        self.step, self.err, self.code, self.detail = step, err, code, detail


def child_main(launch):
    """The container process: namespaces, mounts, identity, exec.  No return."""
    _guarded(_setup_and_exec, launch)


def exec_main(launch, ns_fds):
    """A process joining a running container (`contain exec`).  No return.

    The parent already made itself non-dumpable (inherited: CVE-2016-9962)
    and moved its children into the container's PID namespace."""
    _guarded(_join_and_exec, launch, ns_fds)


def _join_and_exec(L, ns_fds):
    reset_signals()
    # the cgroup first: the cgroup namespace we join next hides the host's paths
    for path in L.cgroup_procs:
        _write(path, b"0", "joining cgroup")
    if L.userns:
        from . import security  # now: after joining mnt the host's library is gone
    # user, cgroup, ipc, uts, net, then mnt last: joining the mount namespace
    # also moves our root and cwd into the container.
    for fd, nstype in ns_fds:
        _step(lambda: linux.setns(fd, nstype), "joining the container's namespaces")
        os.close(fd)
    # Joining a user namespace keeps our ids, the host root's, which mean
    # nothing there (and would match host-root-owned files): become its root.
    if L.userns:
        _step(security.become_userns_root, "becoming root of the user namespace")
    become_command(L)


def _guarded(fn, launch, *args):
    try:
        fn(launch, *args)
    except Failure as f:
        _report(launch.errfd, f.step, f.err, f.code, f.detail)
    except StepError as e:
        _report(launch.errfd, e.step, e.err, EXIT_RUNTIME)
    except OSError as e:
        _report(launch.errfd, "setting up the container", e, EXIT_RUNTIME)
    except BaseException as e:  # a bug: say so instead of hanging
        _report(launch.errfd, "setting up the container", None, EXIT_RUNTIME,
                f"{type(e).__name__}: {e}")


def _setup_and_exec(L):
    from . import mounts    # (loaded by the parent already; exec never needs it)
    log = L.log or (lambda msg: None)

    # Non-dumpable until execve: nothing in the container may ptrace us or
    # open /proc/1/exe (the host's python) meanwhile (CVE-2019-5736 class).
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    # If the runtime dies during setup, so do we: no half-made container.
    # (Setup only: it is cleared before the command runs.)
    linux.prctl(linux.PR_SET_PDEATHSIG, _signal.SIGKILL)
    # Python ignores SIGPIPE and SIGXFSZ, and the runtime may block or catch
    # others: the command starts with every disposition and the mask at default.
    reset_signals()
    # The host's pid of this process, for the hooks' state (/proc is still
    # the runtime's here, so /proc/self names us as the host sees us).
    if L.hook_state is not None:
        L.hook_state["pid"] = int(os.readlink("/proc/self"))

    # Join the cgroup before unsharing the cgroup namespace, so that the
    # container sees its own cgroup as "/" (and every later child is counted).
    for path in L.cgroup_procs:
        _write(path, b"0", "joining cgroup")
    if L.setup_cwd:
        _step(lambda: os.chdir(L.setup_cwd), "entering the bundle")

    # Namespaces given by path (config.json's linux.namespaces[].path, or
    # --network container:X) are joined first, the user namespace first of
    # all (it grants the rights over the others); the rest are new.
    for path, nstype in L.join_ns:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _step(lambda: linux.setns(fd, nstype), f"joining namespace {path}")
        finally:
            os.close(fd)

    # A new user namespace is entered in two steps.  First, in a mount
    # namespace of our own and still as the host's root, what only it may do:
    # an idmapped root filesystem, /proc of the runtime's PID namespace,
    # binds of host files (mounts.userns_phases says why each).
    root = L.root
    if L.userns:
        log("user namespace: mounting what needs the host's root first")
        _step(lambda: linux.unshare(linux.CLONE_NEWNS), "creating the mount namespace")
        mounts.execute(L.host_plan, mounts.Context(L.root, log, L.owner))
        # The root becomes our cwd: the one handle on it that survives the
        # unshare below (the container's root may not walk the host's path).
        _step(lambda: os.chdir(L.root), "entering the root filesystem")
        root = "."
    # A user namespace given by path is joined now, after the host phase:
    # the namespaces unshared next then belong to it, as to a new one.
    if L.userns_path:
        fd = os.open(L.userns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _step(lambda: linux.setns(fd, linux.CLONE_NEWUSER),
                  f"joining namespace {L.userns_path}")
        finally:
            os.close(fd)
    # One unshare for the rest, CLONE_NEWUSER among them: namespaces created
    # with a user namespace belong to it, so the container's root rules its
    # own mounts, network, hostname and IPC, and nothing of the host's.
    _step(lambda: linux.unshare(L.unshare_flags), "creating namespaces")
    if L.unshare_flags & linux.CLONE_NEWNET and L.loopback:
        _step(lambda: linux.interface_up("lo"), "bringing up loopback")

    # The parent does what only a process outside can: write our uid_map and
    # gid_map, put a veth into our network namespace.  We wait for it before
    # anything runs inside.
    if L.sync:
        _wait_for_parent(L, b"ready\n")

    if L.userns:
        # Our ids are still the host root's, unmapped in the namespace:
        # become its root (uid 0 inside, the range's first id outside).
        from . import security
        log("becoming root of the user namespace")
        _step(security.become_userns_root, "becoming root of the user namespace")
        # the credential change cleared the parent-death signal: set it again
        linux.prctl(linux.PR_SET_PDEATHSIG, _signal.SIGKILL)

    if L.hostname is not None and L.unshare_flags & linux.CLONE_NEWUTS:
        _step(lambda: linux.sethostname(L.hostname), "setting hostname")
    if L.domainname is not None and L.unshare_flags & linux.CLONE_NEWUTS:
        _step(lambda: linux.setdomainname(L.domainname), "setting domainname")

    # The mount plan up to pivot_root: private propagation first (so nothing
    # leaks to the host), the root, then config.json's mounts and the devices.
    ctx = mounts.Context(root, log)
    pivot = next((i for i, op in enumerate(L.plan)
                  if isinstance(op, (mounts.PivotRoot, mounts.NoPivot))), len(L.plan))
    mounts.execute(L.plan[:pivot], ctx)
    # prestart and createRuntime hooks run in the runtime's namespaces, by
    # the parent, once ours exist; createContainer hooks run here, in ours,
    # before pivot_root (their paths are the host's).
    if L.hooks_sync:
        _wait_for_parent(L, b"hooks\n")
    for hook in L.create_hooks:
        _step(lambda: run_hook(hook, L.hook_state, "createContainer"),
              "running createContainer hook")
    # pivot_root, then what needs the container's own /proc: sysctls, masks,
    # read-only paths, the read-only root.
    mounts.execute(L.plan[pivot:], ctx)

    become_command(L)


def _wait_for_parent(L, message):
    """Ask the parent to act (message), and wait for its "g"."""
    os.write(L.errfd, message)
    if os.read(L.gofd, 1) != b"g":
        raise Failure("waiting for the runtime", detail="runtime went away")


def reset_signals():
    """Default disposition for every signal, nothing blocked.  Python knows
    every disposition (it reads them all when it starts, inherited ignores
    included, and sets them all itself), so only those not at the default
    need a system call."""
    # (_signal, the C module under signal: no enum made for each of 64 calls)
    for sig in range(1, _signal.NSIG):
        try:
            if _signal.getsignal(sig) != _signal.SIG_DFL:   # None: a C handler
                _signal.signal(sig, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def become_command(L):
    """The last steps, shared by a container's PID 1 and by `exec`: terminal,
    environment, user, working directory, fds, limits, capabilities, seccomp,
    the wait for `start`, execve."""
    # A terminal from the container's own devpts instance: its master goes to
    # the runtime (or the engine's console socket), its slave becomes our
    # stdio, controlling terminal and (for PID 1) /dev/console.
    if L.tty:
        _step(lambda: _setup_tty(L.ttysock, L.console_size, console=bool(L.plan)),
              "allocating a terminal")

    log = L.log or (lambda msg: None)
    env = _environment(L.env)
    uid, gid, groups = L.ids
    home = _step(lambda: home_of(uid), "resolving user")
    env.setdefault("HOME", home)

    # The working directory must be inside the new root (after pivot_root
    # every path is); PID 1 creates it as Docker and runc do, then enters it;
    # an exec only enters it (runc: "chdir to cwd ... failed").
    cwd = L.cwd
    if L.create_cwd:
        _step(lambda: os.makedirs(cwd, exist_ok=True), f"creating working directory {cwd}")
    if L.create_cwd:
        _step(lambda: os.chdir(cwd), f"changing to working directory {cwd}")
    else:   # runc's words; Docker's exec exits 126
        _step(lambda: os.chdir(cwd), f'chdir to cwd ("{cwd}") set in config.json failed',
              code=EXIT_CANNOT_INVOKE)

    # Find the command now, while errors can still be reported precisely.
    path = find_executable(L.argv[0], env.get("PATH", DEFAULT_PATH))
    log(f"process: user {uid}:{gid}" + (f" groups {','.join(map(str, groups))}" if groups
                                        else "") + f", working directory {cwd}")

    # Limits and the OOM score while we are still root with every capability
    # (raising a hard limit or lowering the score needs CAP_SYS_RESOURCE).
    for res, soft, hard in L.rlimits:
        _step(lambda: linux.setrlimit(res, soft, hard), f"setting {_rlimit_name(res)}")
    if L.oom_score_adj is not None:
        _write("/proc/self/oom_score_adj", str(L.oom_score_adj).encode(), "setting oom_score_adj")
    if L.umask is not None:
        os.umask(L.umask)

    # Without no_new_privs a seccomp filter is a privileged operation: install
    # it while we still have CAP_SYS_ADMIN, before the capabilities go (runc).
    if L.seccomp and not L.no_new_privs:
        from . import seccomp
        _step(lambda: seccomp.install(L.seccomp), "installing seccomp filter")

    # Drop to the user.  Capabilities are kept across setuid with KEEPCAPS
    # and then set exactly below.
    if (uid, gid) != (0, 0) or groups:
        if L.cap_sets is not None:
            linux.prctl(linux.PR_SET_KEEPCAPS, 1)
        _step(lambda: os.setgroups(groups), "setting supplementary groups")
        _step(lambda: os.setresgid(gid, gid, gid), f"setting group {gid}")
        _step(lambda: os.setresuid(uid, uid, uid), f"setting user {uid}")

    # No host file descriptor may survive into the container (CVE-2024-21626):
    # everything but stdio, the fds passed on purpose (--preserve-fds) and our
    # close-on-exec pipes goes now, up to the highest possible fd.
    keep = {0, 1, 2, L.errfd, L.fifo_fd} | set(range(3, 3 + L.preserve_fds))
    from .security import close_fds_except
    close_fds_except(keep - {-1})
    for fd in range(3, 3 + L.preserve_fds):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass

    log("closing every inherited file descriptor but stdio"
        + (f" and {L.preserve_fds} passed on" if L.preserve_fds else ""))
    # Capabilities last but for seccomp: setting them up needs prctl/capset,
    # which the seccomp filter may refuse.
    if L.cap_sets is not None:
        from . import security
        _step(lambda: security.apply_capability_sets(**L.cap_sets), "setting capabilities")
        log(f"capabilities: {len(L.cap_sets['bounding'])} kept in the bounding set, "
            "the rest dropped")
    log("no_new_privs: " + ("set (setuid programs gain nothing)" if L.no_new_privs
                            else "not set"))
    if L.no_new_privs:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)

    # Setup is over: from here the command must outlive the runtime.
    linux.prctl(linux.PR_SET_PDEATHSIG, 0)

    # `create` ends here: tell the runtime, and wait until `start` opens
    # the exec fifo (runc's protocol).  Errors from here on go to stderr.
    if L.fifo_fd >= 0:
        os.write(L.errfd, b"created\n")
        os.close(L.errfd)
        L.errfd = 2
        _step(lambda: _wait_for_start(L.fifo_fd), "waiting for start")
    for hook in L.start_hooks:
        _step(lambda: run_hook(hook, L.hook_state, "startContainer"),
              "running startContainer hook")

    # Seccomp (with no_new_privs) as close to execve as possible: once
    # installed it may refuse the setup calls above.
    if L.seccomp and L.no_new_privs:
        from . import seccomp
        _step(lambda: seccomp.install(L.seccomp), "installing seccomp filter")

    if L.seccomp:
        log(f"seccomp filter installed ({len(L.seccomp)} BPF instructions)")
    log("exec " + " ".join(L.argv))
    if L.init:
        # --init: stay as a tiny PID 1 that reaps zombies and forwards signals;
        # the command runs as our child.
        child = os.fork()
        if child:
            os.close(L.errfd)
            tiny_init(child)
    try:
        os.execve(path, L.argv, env)
    except OSError as e:
        code = EXIT_NOT_FOUND if e.errno == 2 else EXIT_CANNOT_INVOKE
        raise Failure(f"exec {L.argv[0]}", e, code) from None


def _wait_for_start(fifo_fd):
    """Open the exec fifo for writing (blocks until `start` opens it to
    read), write one byte, close both."""
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo_fd)


def _rlimit_name(res):
    from .spec import RLIMITS
    return RLIMITS[res] if 0 <= res < len(RLIMITS) else f"rlimit {res}"


def run_hook(hook, state, phase):
    """Run one OCI hook: path, args, env, the container's state as JSON on
    stdin, killed after its timeout.  OSError when it fails."""
    from .. import fastjson
    import time
    state = dict(state or {})
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(r, 0)
            os.execve(hook["path"], hook.get("args") or [hook["path"]], _env_dict(hook))
        finally:
            os._exit(127)
    os.close(r)
    try:
        os.write(w, fastjson.dumps(state).encode())
    except OSError:
        pass
    os.close(w)
    deadline = time.monotonic() + hook["timeout"] if hook.get("timeout") else None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG if deadline else 0)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, _signal.SIGKILL)
            os.waitpid(pid, 0)
            raise OSError(62, f"{phase} hook {hook['path']} timed out after "
                          f"{hook['timeout']} s")
        time.sleep(0.005)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise OSError(0, f"{phase} hook {hook['path']} failed ("
                      + (f"exit status {code}" if code > 0 else f"signal {-code}") + ")")


def _env_dict(hook):
    return dict(e.split("=", 1) for e in hook.get("env") or () if "=" in e)


# ------------------------------------------------------------------ helpers
def _step(fn, name, code=EXIT_RUNTIME):
    try:
        return fn()
    except OSError as e:
        raise Failure(name, e, code) from None
    except LookupError as e:
        raise Failure(name, None, code, str(e.args[0])) from None


def _write(path, data, step):
    try:
        linux.write_file(path, data)
    except OSError as e:
        raise Failure(f"{step} {os.path.dirname(path)}", e) from None


def _report(fd, step, err, code, detail=None):
    """Send 'error' STEP ERRNO CODE DETAIL to the parent and exit."""
    if err is not None:
        detail = detail or err.strerror or str(err)
        if getattr(err, "filename", None) and err.filename not in step:
            detail = f"{err.filename}: {detail}"
    msg = "\0".join(["error", step, str(err.errno if err else 0), str(code), detail or ""])
    try:
        os.write(fd, msg.encode(errors="replace"))
    except OSError:
        pass
    os._exit(code)


def _environment(pairs):
    env = {}
    for item in pairs:
        key, _, value = item.partition("=")
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def preload(tty=False, hooks=False, seccomp=False):
    """Import, in the parent, every module the child needs after pivot_root:
    inside the container the host's Python library is out of reach.  (What
    it needs before, it imports itself: the host's library is still there.)"""
    import fcntl  # noqa: F401
    import struct  # noqa: F401
    from . import security  # noqa: F401
    if tty:
        import socket  # noqa: F401
    if seccomp:
        from . import seccomp  # noqa: F401
    if hooks:
        from .. import fastjson  # noqa: F401
        import time  # noqa: F401


def _setup_tty(sock, size=None, console=False):
    import fcntl
    import socket
    import struct
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, linux.TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, linux.TIOCGPTN, b"\0\0\0\0"))[0]
    if size:
        fcntl.ioctl(master, linux.TIOCSWINSZ, struct.pack("HHHH", size.get("height", 0),
                                                          size.get("width", 0), 0, 0))
    slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY)
    if console:  # PID 1's terminal is also the container's /dev/console
        try:
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600))
            linux.mount(f"/dev/pts/{n}", "/dev/console", None, linux.MS_BIND)
        except OSError:
            pass    # a read-only /dev: the terminal still works
    socket.send_fds(sock, [f"/dev/pts/{n}".encode()], [master])
    os.close(master)
    sock.close()
    os.setsid()
    fcntl.ioctl(slave, linux.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def find_executable(cmd, path):
    """Docker's rules: a name with '/' is used as is; else search PATH."""
    if "/" in cmd:
        if not os.path.exists(cmd):
            raise Failure(f"exec {cmd}", OSError(2, "no such file or directory"),
                          EXIT_NOT_FOUND)
        return cmd
    for d in path.split(":"):
        candidate = os.path.join(d or ".", cmd)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise Failure(f"exec {cmd}", None, EXIT_NOT_FOUND,
                  "executable file not found in $PATH")


def home_of(uid, root="/"):
    """The home directory of uid in the container's /etc/passwd, or "/"."""
    entry = next((e for e in read_db(os.path.join(root, "etc/passwd"))
                  if len(e) > 5 and e[2] == str(uid)), None)
    return entry[5] if entry and entry[5] else "/"


def read_db(path):
    try:
        with open(path) as f:
            return parse_db(f.read())
    except OSError:
        return []


def parse_db(text):
    return [line.split(":") for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def tiny_init(child):
    """PID 1 for --init: forward every signal to the command, reap every
    zombie (orphans are re-parented to us), exit with the command's status."""
    def forward(sig, _frame):
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass
    for sig in range(1, _signal.NSIG):
        if sig not in (_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD):
            try:
                _signal.signal(sig, forward)
            except (OSError, ValueError):
                pass
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)
