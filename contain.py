#!/usr/bin/python3 -IS
"""contain: a container runtime in pure standard-library Python.

Copy this file and the contain/ folder anywhere and run it as root:
    sudo ./contain.py run --rootfs ./rootfs -- /bin/hostname
"""
import os
import sys

# -I (isolated mode) leaves the script's folder off sys.path: put it back.
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from contain.engine.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
