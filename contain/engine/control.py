"""pause, unpause and attach: Docker's commands over a running container.

Pausing freezes the container's cgroup through the runtime core (the
freezer on cgroup v1, cgroup.freeze on v2), whose records for the engine's
containers live under STATE/runtime.  The engine notes the pid it paused
(paused_pid) and Container.status asks the kernel whether that cgroup is
still frozen, so a stale note never makes a container look paused.  A
signal for a paused container (stop, kill, rm -f) thaws it afterwards, as
Docker does: a frozen process handles no signal, not even SIGKILL on v1.
"""


from ..errors import Conflict, ContainError


def _core():
    from ..core import lifecycle
    return lifecycle


def pause(store, ref):
    """`contain pause`: freeze every process of the container."""
    from .state import runtime_root
    c = store.find(ref)
    with store.container_lock(c.id):
        c.reload()
        status = c.status
        if status == "paused":
            raise Conflict(f"Container {c.id} is already paused")
        if status != "running":
            raise Conflict(f"Container {c.id} is not running")
        _core().pause(runtime_root(store), c.id, True)
        c.lock_held = True
        c.update(paused_pid=c.state.get("pid"))
        c.lock_held = False
    return c


def unpause(store, ref):
    """`contain unpause`: thaw a paused container."""
    c = store.find(ref)
    with store.container_lock(c.id):
        c.reload()
        if c.status != "paused":
            raise Conflict(f"Container {c.id} is not paused")
        thaw(store, c)
        c.lock_held = True
        c.update(paused_pid=None)
        c.lock_held = False
    return c


def thaw(store, c):
    from .state import runtime_root
    try:
        _core().pause(runtime_root(store), c.id, False)
    except ContainError as e:
        if "not paused" not in str(e):
            raise


def frozen(store, cid):
    """Is the core's cgroup of container cid frozen now?"""
    from .state import runtime_root
    lc = _core()
    try:
        rec = lc.load(runtime_root(store), cid)
        return lc.cgroup_of(rec).frozen()
    except (ContainError, OSError, KeyError, TypeError, ValueError):
        return False


def thaw_after_signal(c):
    """A paused container just got a signal: let it act on it."""
    if c.state.get("paused_pid") and c.state.get("paused_pid") == c.state.get("pid"):
        try:
            thaw(c.store, c)
        except ContainError:
            pass


# ------------------------------------------------------------------ attach
def attach(store, ref, no_stdin=False, sig_proxy=True):
    """`contain attach`: follow a running container's output from now on,
    forward our signals to its PID 1 (--sig-proxy), and return its exit
    code.  Input is not attached: a container's stdin belongs to the
    process that started it (run -i), as its log holds its output."""
    import signal
    from . import runtime
    c = store.find(ref)
    if c.status == "paused":
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if not c.running:
        raise Conflict("You cannot attach to a stopped container, start it first")
    if sig_proxy:
        def forward(sig, _frame):
            runtime.signal_pid1(c, sig)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                    signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, forward)
    runtime.show_logs(store, c.id, follow=True, offset=runtime.log_size(c))
    return runtime.wait(store, c.id)
