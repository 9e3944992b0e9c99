#!/usr/bin/python3
"""Benchmark: compiling Docker's default seccomp profile (not a test: it
prints figures).  Every container start without a cached program pays this.

    bench/bench_seccomp.py [--runs N]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from contain.core import security, seccomp  # noqa: E402
from contain.engine import defaults  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    caps = defaults.DEFAULT_CAPS
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        program = seccomp.compile_profile(defaults.DEFAULT_PROFILE, caps)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"python {sys.version.split()[0]}: compile the default profile "
          f"({len(program)} instructions): median {statistics.median(times):.2f} ms, "
          f"min {min(times):.2f}, max {max(times):.2f} (n={args.runs})")


if __name__ == "__main__":
    main()
