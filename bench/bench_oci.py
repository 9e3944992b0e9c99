#!/usr/bin/python3
"""contain's OCI runtime against runc on the same bundle (not a test: it
prints figures).

    sudo bench/bench_oci.py [--runs N] [--runc PATH]

Two bundles, both running /bin/true from a busybox root filesystem:
  minimal   `runc spec`'s default config.json (terminal off);
  docker    the config.json contain's engine writes for `contain run`
            (Docker's mounts, masked paths, 14 capabilities, seccomp).
For each, `contain-runc run ID` and `runc run ID` alternate run by run
(interleaved, so both see the same machine), and the paired ratio of
medians is printed: below 1.0, contain is faster.  Then `exec` of
/bin/true into a running container, the same way.

State roots and cgroups are private and removed at the end; no network.
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
sys.path.insert(0, TOP)
sys.path.insert(0, os.path.join(TOP, "images"))


def make_bundle(base, name, rootfs, config):
    bundle = os.path.join(base, name)
    os.makedirs(bundle)
    config["root"]["path"] = rootfs       # one shared tree (runc refuses a symlink)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def minimal_config(parent, runc=None):
    """`runc spec`'s config.json (contain's own `spec` without runc)."""
    if runc and os.path.exists(runc):
        tmp = tempfile.mkdtemp()
        subprocess.run([runc, "spec"], cwd=tmp, check=True)
        with open(os.path.join(tmp, "config.json")) as f:
            config = json.load(f)
        shutil.rmtree(tmp)
    else:
        from contain.core.spec import default_spec
        config = default_spec()
    config["process"].update(terminal=False, args=["/bin/true"])
    config["root"]["readonly"] = True
    config["linux"]["cgroupsPath"] = f"/{parent}/bench"
    return config


def docker_config(parent):
    """What `contain run --rm --rootfs DIR /bin/true` hands the core."""
    from contain.core import security
    from contain.engine import defaults, generate
    names = [security.cap_name(c) for c in sorted(defaults.DEFAULT_CAPS)]
    opts = defaults.parse_security_opts([])
    return {
        "ociVersion": "1.2.0",
        "process": {"terminal": False, "args": ["/bin/true"], "cwd": "/",
                    "env": ["PATH=/usr/bin:/bin", "HOSTNAME=bench"],
                    "user": {"uid": 0, "gid": 0},
                    "capabilities": {k: names for k in ("bounding", "effective", "permitted")}},
        "root": {"path": "rootfs"}, "hostname": "bench",
        "mounts": generate.default_mounts(False),
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "mount", "uts",
                                                       "network", "cgroup")],
                  "resources": {"devices": generate.device_rules(False)},
                  "cgroupsPath": f"/{parent}/bench",
                  "maskedPaths": list(defaults.MASKED_PATHS),
                  "readonlyPaths": list(defaults.READONLY_PATHS),
                  "seccomp": generate.seccomp_for({}, opts, names, False)},
    }


def time_once(cmd, cwd):
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return (time.perf_counter() - t0) * 1000


def interleaved(runtimes, bundle, runs, verb_args):
    """{name: [ms]}: each round runs every runtime once, in turn, and every
    other round in the reverse order: on this VM runc is slower right after
    a Python process than right after itself, so no runtime may always
    follow the same one (see bench_speed.pair)."""
    times = {name: [] for name in runtimes}
    for i in range(runs):
        order = list(runtimes.items())
        for name, cmd in (order if i % 2 == 0 else reversed(order)):
            times[name].append(time_once(cmd + verb_args(i), bundle))
    return times


def report(title, times):
    print(title)
    for name, values in times.items():
        print(f"  {name:14s} median {statistics.median(values):6.1f} ms   min "
              f"{min(values):6.1f}   max {max(values):6.1f}   (n={len(values)})")
    names = list(times)
    if len(names) == 2:
        a, b = (statistics.median(times[n]) for n in names)
        print(f"  ratio {names[0]} / {names[1]}: {a / b:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_oci.py: run as root")
    import busybox
    work = tempfile.mkdtemp(prefix="contain-bench-oci-")
    parent = f"contain-bench-{os.getpid()}"
    link = os.path.join(work, "contain-runc")
    os.symlink(os.path.join(TOP, "contain.py"), link)
    runtimes = {"contain-runc": [link, "--root", os.path.join(work, "state-contain")]}
    if os.path.exists(args.runc):
        runtimes["runc"] = [args.runc, "--root", os.path.join(work, "state-runc")]
    else:
        print(f"(no runc at {args.runc}: contain alone)")
    try:
        rootfs = busybox.build(os.path.join(work, "rootfs"))
        for name, config in (("minimal", minimal_config(parent, args.runc)),
                             ("docker", docker_config(parent))):
            bundle = make_bundle(work, name, rootfs, config)
            times = interleaved(runtimes, bundle, args.runs,
                                lambda i: ["run", f"{name}{i}"])
            report(f"run /bin/true, bundle '{name}' ({args.runs} interleaved rounds)", times)
        for name, cmd in runtimes.items():
            config = minimal_config(parent, args.runc)
            config["process"]["args"] = ["sleep", "1000"]
            config["linux"]["cgroupsPath"] = f"/{parent}/long-{name}"
            long_bundle = make_bundle(work, f"long-{name}", rootfs, config)
            subprocess.run(cmd + ["run", "-d", f"long-{name}"], cwd=long_bundle, check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        times = interleaved({name: cmd + ["exec", f"long-{name}", "/bin/true"]
                             for name, cmd in runtimes.items()}, work, args.runs, lambda i: [])
        report(f"exec /bin/true ({args.runs} interleaved rounds)", times)
    finally:
        for name, cmd in runtimes.items():
            subprocess.run(cmd + ["delete", "--force", f"long-{name}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            for path in [f"/sys/fs/cgroup/{hierarchy}/{parent}/{n}"
                         for n in ["bench"] + [f"long-{r}" for r in runtimes]] \
                    + [f"/sys/fs/cgroup/{hierarchy}/{parent}"]:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
