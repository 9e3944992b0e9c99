#!/usr/bin/python3 -IS
"""contain: a container engine and an OCI runtime in pure standard-library Python.

Copy this file and the contain/ folder anywhere and run it as root:
    sudo ./contain.py run --rootfs ./rootfs -- /bin/hostname
Engines (podman, containerd) drive the runtime with runc's command line:
    ./contain.py oci create --bundle B ID      (or through a symlink named
                                               *runc, e.g. contain-runc)
"""
import os
import sys

# -I (isolated mode) leaves the script's folder off sys.path: put it back.
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))


def _entry():
    if os.path.basename(sys.argv[0]).endswith("runc"):
        from contain.core.ocicli import main
        return main(sys.argv[1:])
    if sys.argv[1:2] == ["oci"]:
        from contain.core.ocicli import main
        return main(sys.argv[2:])
    from contain.engine.cli import main
    return main()


def _finish(code):
    """Exit without the interpreter's finalization (milliseconds of freeing
    objects that the kernel frees at once): flush what we wrote, then go."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


if __name__ == "__main__":
    import gc
    gc.disable()     # short-lived: nothing lives long enough to need the collector
    _finish(_entry())
