#!/usr/bin/python3
"""Benchmarks of the container lifecycle (not tests: they print figures).

    sudo bench/bench_run.py [--runs N] [--only start|image|lifecycle]

start      `contain run --rm --rootfs DIR /bin/true` beside the floor
           `unshare -pfmuni --fork --mount-proc chroot DIR /bin/true`, and
           runc/crun when installed.
image      `run --rm IMAGE true` (overlay root) against `run --rm --rootfs DIR true`.
lifecycle  `run -d` until it returns, `exec CONTAINER true`, `ps -a` with
           100 containers, and the monitor's memory per running container.

Everything runs with a private state root and cgroup parent (removed at the
end) and --network none, so the host's network is not touched.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTAIN = os.path.join(TOP, "contain.py")  # its shebang: /usr/bin/python3 -IS
sys.path.insert(0, os.path.join(TOP, "images"))


def timed(cmd, env, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def show(label, times):
    print(f"  {label:58s} median {statistics.median(times):6.1f} ms   "
          f"min {min(times):6.1f}   max {max(times):6.1f}   (n={len(times)})")
    return statistics.median(times)


def bench_start(rootfs, env, runs):
    print("start: one container running /bin/true, start to exit")
    med = show("contain run --rm --rootfs DIR /bin/true",
               timed([CONTAIN, "run", "--rm", "--rootfs", rootfs, "--", "/bin/true"], env, runs))
    show("floor: unshare -pfmuni --fork --mount-proc chroot DIR true",
         timed(["unshare", "-pfmuni", "--fork", "--mount-proc", "chroot", rootfs, "/bin/true"],
               env, runs))
    for runtime in ("runc", "crun"):
        if shutil.which(runtime):
            print(f"  ({runtime} is installed but needs an OCI bundle: not measured here)")
    return med


def bench_image(rootfs, env, runs):
    print("image: overlay root from an image against a plain directory")
    subprocess.run([CONTAIN, "run", "--rm", "busybox", "true"], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # builds and imports the built-in image once
    a = show("contain run --rm busybox true (overlay)",
             timed([CONTAIN, "run", "--rm", "busybox", "true"], env, runs))
    b = show("contain run --rm --rootfs DIR true (bind)",
             timed([CONTAIN, "run", "--rm", "--rootfs", rootfs, "--", "true"], env, runs))
    print(f"  overlay costs {100 * (a - b) / b:+.0f}%")


def rss_of(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "RssAnon")):
                k, v = line.split(":")
                fields[k] = int(v.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                fields["Pss"] = int(line.split()[1])
    return fields


def bench_lifecycle(rootfs, env, runs, root):
    print("lifecycle: detached containers")
    ids = []
    times = []
    for i in range(100):
        t0 = time.perf_counter()
        out = subprocess.run([CONTAIN, "run", "-d", "--rootfs", rootfs, "--", "sleep", "1000"],
                             env=env, capture_output=True, text=True, check=True)
        times.append((time.perf_counter() - t0) * 1000)
        ids.append(out.stdout.strip())
    show("run -d (until it returns), 100 containers", times)
    show("exec CONTAINER true", timed([CONTAIN, "exec", ids[0], "true"], env, runs))
    show("ps -a with 100 running containers", timed([CONTAIN, "ps", "-a"], env, runs))
    monitors = []
    for cid in ids[:10]:
        with open(os.path.join(root, "containers", cid, "state.json")) as f:
            monitors.append(rss_of(json.load(f)["monitor_pid"]))
    print("  monitor memory per container (10 sampled): "
          f"RSS {statistics.median(m['VmRSS'] for m in monitors) / 1024:.1f} MB, "
          f"private (anon) {statistics.median(m['RssAnon'] for m in monitors) / 1024:.1f} MB, "
          f"PSS {statistics.median(m['Pss'] for m in monitors) / 1024:.1f} MB")
    subprocess.run([CONTAIN, "rm", "-f", *ids], env=env, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--only", choices=("start", "image", "lifecycle"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_run.py: run as root")
    import busybox
    work = tempfile.mkdtemp(prefix="contain-bench-")
    rootfs = busybox.build(os.path.join(work, "rootfs"))
    root = os.path.join(work, "state")
    env = dict(os.environ, CONTAIN_ROOT=root, CONTAIN_CGROUP_PARENT="contain-bench",
               CONTAIN_DEFAULT_NETWORK="none")
    print(f"python: /usr/bin/python3 -IS ({sys.version.split()[0]}), "
          f"{os.cpu_count()} CPUs, kernel {os.uname().release}")
    try:
        if args.only in (None, "start"):
            bench_start(rootfs, env, args.runs)
        if args.only in (None, "image"):
            bench_image(rootfs, env, args.runs)
        if args.only in (None, "lifecycle"):
            bench_lifecycle(rootfs, env, args.runs, root)
    finally:
        ids = subprocess.run([CONTAIN, "ps", "-aq", "--no-trunc"], env=env,
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([CONTAIN, "rm", "-f", *ids], env=env, stdout=subprocess.DEVNULL)
        sys.path.insert(0, TOP)
        from contain.core import cgroups
        cgroups.open_driver().remove_parent_if_empty("contain-bench")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
