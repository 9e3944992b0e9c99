#!/usr/bin/python3
"""contain's start path beside runc and podman, in one interleaved run (not a
test: it prints figures).

    sudo bench/bench_speed.py [--runs N]

Everything runs inside a private network + mount + PID namespace with a
cgroup parent of its own (tests/engines.py's Sandbox), removed at the end;
podman keeps its store, configuration and runtime files in the sandbox's
temporary directory and drives the installed runc through cgroupfs.  Each
row interleaves its two commands, a b, b a, a b, ... (see pair()), and
prints both medians and their ratio: below 1.0, contain is faster.

  contain-runc run      `contain-runc run ID` vs `runc run ID`, one bundle:
                        `runc spec`'s default config.json running /bin/true
  contain-runc exec     `contain-runc exec` vs `runc exec` of /bin/true
  floor                 `python3 -IS -c "import os, argparse, ctypes"` vs
                        `runc exec`: what any argparse command line costs
                        before its own code (the first column is not contain)
  page faults           minor faults of one `contain-runc run` and the
                        processes it waited for, vs `runc run` (counts)
  exec                  `contain exec CONTAINER true` vs `runc exec`
  run --rm IMAGE        `contain run --rm busybox true` vs
                        `podman run --rm --network none busybox true`
  run -d, 100 present   `run -d --rootfs DIR sleep` with 100 running
                        containers in the store vs with none
  bridge                `run --rm --rootfs DIR true` on the default bridge
                        (and with -p) vs `--network none`
  monitor PSS           the proportional memory of contain's monitor for
                        one running container vs podman's conmon
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path[:0] = [TOP, HERE, os.path.join(TOP, "images")]
CONTAIN = os.path.join(TOP, "contain.py")       # its shebang: /usr/bin/python3 -IS
PYTHON = "/usr/bin/python3"


def time_once(cmd, env=None, cwd=None):
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t0) * 1000


def faults_once(cmd, cwd=None):
    """The minor page faults of cmd and the children it waited for (on a VM
    each costs some microseconds)."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before


def pair(runs, a, b):
    """Medians of a() and b() (each returns ms), interleaved so that both see
    the same machine, in the order a b, b a, a b, ...: on this VM a command
    can be slower right after another (runc by 10-25% right after any
    Python process, while contain does not care what ran before), and so
    each command follows itself as often as the other."""
    ta, tb = [], []
    for i in range(runs):
        if i % 2 == 0:
            ta.append(a())
            tb.append(b())
        else:
            tb.append(b())
            ta.append(a())
    return statistics.median(ta), statistics.median(tb)


ROWS = []


def row(label, a, b, unit="ms"):
    ROWS.append((label, a, b, unit))
    ratio = f"{a / b:.2f}" if b else ""
    bs = f"{b:8.1f} {unit}" if b else ""
    print(f"  {label:62s} {a:8.1f} {unit:2s} {bs:>11s}  {ratio}", flush=True)


def pss_mb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    raise ValueError(f"no Pss for {pid}")


class Here:
    """What tests/engines.py's Podman wants of a sandbox, for a process that
    already runs inside it."""

    def __init__(self, tmp, cgroup_path):
        self.tmp = tmp
        self.tmpdir = os.path.join(tmp, "tmp")
        os.makedirs(self.tmpdir, mode=0o1777, exist_ok=True)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR": self.tmpdir}
        self.cgroup = type("Cg", (), {"path": cgroup_path})()

    def run(self, args, timeout=120, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(args, timeout=timeout, **kw)


def contain_env(work, name, parent, network="none"):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "CONTAIN_ROOT": os.path.join(work, name), "CONTAIN_CGROUP_PARENT": parent,
            "CONTAIN_DEFAULT_NETWORK": network}


def contain(env, *args, check=True):
    res = subprocess.run([CONTAIN, *args], env=env, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    if check and res.returncode != 0:
        raise SystemExit(f"contain {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout.strip()


def bench_oci(work, rootfs, parent, runs, runc):
    import bench_oci
    link = os.path.join(work, "contain-runc")
    os.symlink(CONTAIN, link)
    ours = [link, "--root", os.path.join(work, "state-contain-runc")]
    theirs = [runc, "--root", os.path.join(work, "state-runc")]
    bundle = bench_oci.make_bundle(work, "minimal", rootfs,
                                   bench_oci.minimal_config(parent, runc))
    n = iter(range(10 ** 6))
    a, b = pair(runs, lambda: time_once(ours + ["run", f"c{next(n)}"], cwd=bundle),
                lambda: time_once(theirs + ["run", f"r{next(n)}"], cwd=bundle))
    row("contain-runc run vs runc run (runc spec's bundle)", a, b)
    for name, cmd in (("long-contain", ours), ("long-runc", theirs)):
        config = bench_oci.minimal_config(parent, runc)
        config["process"]["args"] = ["sleep", "1000"]
        config["linux"]["cgroupsPath"] = f"/{parent}/{name}"
        long_bundle = bench_oci.make_bundle(work, name, rootfs, config)
        subprocess.run(cmd + ["run", "-d", name], cwd=long_bundle, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    a, b = pair(runs, lambda: time_once(ours + ["exec", "long-contain", "/bin/true"]),
                lambda: time_once(theirs + ["exec", "long-runc", "/bin/true"]))
    row("contain-runc exec vs runc exec", a, b)
    runc_exec = lambda: time_once(theirs + ["exec", "long-runc", "/bin/true"])  # noqa: E731
    # the least any command line parsed by argparse can take, before any
    # work: the interpreter importing os, argparse (re, enum, ...) and ctypes
    a, b = pair(runs, lambda: time_once([PYTHON, "-IS", "-c", "import os, argparse, ctypes"]),
                runc_exec)
    row("floor (python3 -IS: import os, argparse, ctypes) vs runc exec", a, b)
    a, b = pair(5, lambda: faults_once(ours + ["run", f"c{next(n)}"], cwd=bundle),
                lambda: faults_once(theirs + ["run", f"r{next(n)}"], cwd=bundle))
    row("page faults of a run (its processes; 5 rounds) vs runc run", a, b, "")
    return runc_exec


def bench_exec(work, rootfs, parent, runs, runc_exec):
    env = contain_env(work, "state-exec", parent)
    cid = contain(env, "run", "-d", "--rootfs", rootfs, "sleep", "1000")
    a, b = pair(runs, lambda: time_once([CONTAIN, "exec", cid, "true"], env=env), runc_exec)
    row("contain exec vs runc exec", a, b)


def bench_image(work, rootfs, parent, runs):
    from tests import engines
    env = contain_env(work, "state-image", parent)
    contain(env, "run", "--rm", "busybox", "true")   # builds and imports busybox once
    pm = engines.Podman(Here(os.path.join(work, "p"), "/" + parent),
                        engines.which("runc"))
    image = pm.import_rootfs(engines.rootfs_tar(rootfs, os.path.join(work, "rootfs.tar")))
    podman_run = pm.argv("run", "--rm", *pm.run_args(), image, "true")
    time_once(podman_run, env=pm.env)
    a, b = pair(runs, lambda: time_once([CONTAIN, "run", "--rm", "busybox", "true"], env=env),
                lambda: time_once(podman_run, env=pm.env))
    row("contain run --rm IMAGE true vs podman run --rm", a, b)
    res = pm("run", "-d", *pm.run_args(), image, "sleep", "1000")
    if res.returncode != 0:
        raise SystemExit(f"podman run -d: {res.stderr.strip()}")
    conmon = pm("inspect", "--format", "{{.State.ConmonPid}}", res.stdout.strip())
    return pm, int(conmon.stdout.strip())


def bench_many(work, rootfs, parent, runs, conmon_pid):
    empty = contain_env(work, "state-empty", parent)
    full = contain_env(work, "state-full", parent)
    ids = [contain(full, "run", "-d", "--rootfs", rootfs, "sleep", "1000")
           for _ in range(100)]

    def run_d(env):
        def once():
            t0 = time.perf_counter()
            cid = contain(env, "run", "-d", "--rootfs", rootfs, "sleep", "1000")
            ms = (time.perf_counter() - t0) * 1000
            contain(env, "rm", "-f", cid)
            return ms
        return once
    a, b = pair(runs, run_d(full), run_d(empty))
    row("run -d, 100 containers present vs none", a, b)
    a, b = pair(runs, lambda: time_once([CONTAIN, "ps", "-a"], env=full),
                lambda: time_once([CONTAIN, "ps", "-a"], env=empty))
    row("ps -a, 100 containers vs none", a, b)

    def stop_rm(verb):
        def once():
            cid = contain(empty, "run", "-d", "--rootfs", rootfs, "sleep", "1000")
            ms = time_once([CONTAIN, *verb, cid], env=empty)
            contain(empty, "rm", "-f", cid, check=False)
            return ms
        return once
    stop = statistics.median(stop_rm(["stop", "-t", "0"])() for _ in range(runs))
    rm = statistics.median(stop_rm(["rm", "-f"])() for _ in range(runs))
    row("stop -t 0 (running container)", stop, 0)
    row("rm -f (running container)", rm, 0)
    import json
    pss = []
    for cid in ids[:10]:
        with open(os.path.join(full["CONTAIN_ROOT"], "containers", cid, "state.json")) as f:
            pss.append(pss_mb(json.load(f)["monitor_pid"]))
    row("monitor PSS, 100 running, vs one conmon", statistics.median(pss),
        pss_mb(conmon_pid), "MB")
    contain(full, "rm", "-f", *ids)


def bench_bridge(work, rootfs, parent, runs):
    none = contain_env(work, "state-net", parent, "none")
    bridge = dict(none, CONTAIN_DEFAULT_NETWORK="bridge")
    cmd = [CONTAIN, "run", "--rm", "--rootfs", rootfs, "true"]
    published = [CONTAIN, "run", "--rm", "-p", "8080:80", "--rootfs", rootfs, "true"]
    time_once(cmd, env=bridge)                 # bridge and chains made once
    a, b = pair(runs, lambda: time_once(cmd, env=bridge), lambda: time_once(cmd, env=none))
    row("run --rm true, bridge vs --network none", a, b)
    a, b = pair(runs, lambda: time_once(published, env=bridge),
                lambda: time_once(cmd, env=none))
    row("run --rm -p 8080:80 true, bridge vs --network none", a, b)
    contain(bridge, "network", "prune", check=False)


def inside(args):
    """The measurements, in the sandbox (net, mount and PID namespaces)."""
    import busybox
    work = args.work
    rootfs = busybox.build(os.path.join(work, "rootfs"))
    runs, rows = args.runs, set(args.rows.split(","))
    print(f"{'':64s} {'contain':>11s} {'other':>11s}  ratio", flush=True)
    runc_exec = bench_oci(work, rootfs, args.parent, runs, args.runc)
    if "exec" in rows:
        bench_exec(work, rootfs, args.parent, runs, runc_exec)
    if rows & {"image", "many"}:
        pm, conmon = bench_image(work, rootfs, args.parent, runs)
    if "many" in rows:
        bench_many(work, rootfs, args.parent, runs, conmon)
    if "bridge" in rows:
        bench_bridge(work, rootfs, args.parent, runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--rows", default="oci,exec,image,many,bridge",
                    help="which rows (the OCI rows always run; many also runs image): "
                         "oci,exec,image,many,bridge")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--parent", help=argparse.SUPPRESS)
    args = ap.parse_args()
    unknown = set(args.rows.split(",")) - {"oci", "exec", "image", "many", "bridge"}
    if unknown:
        ap.error(f"--rows: unknown {','.join(sorted(unknown))}")
    if args.inside:
        return inside(args)
    if os.geteuid() != 0:
        sys.exit("bench_speed.py: run as root")
    from tests import engines
    reason = engines.missing("runc", "podman", "unshare", "nsenter")
    if reason:
        sys.exit(f"bench_speed.py: {reason}")
    print(f"python {sys.version.split()[0]} (/usr/bin/python3 -IS), {os.cpu_count()} CPUs, "
          f"Linux {os.uname().release}, {time.strftime('%Y-%m-%d')}, "
          f"{args.runs} interleaved rounds, medians", flush=True)
    sb = engines.Sandbox(prefix="cbs-")   # podman: runroot under 50 characters
    try:
        sb.start()
        work = os.path.join(sb.tmp, "w")
        os.mkdir(work, 0o755)
        proc = sb.popen([PYTHON, os.path.abspath(__file__), "--inside", "--runs",
                         str(args.runs), "--rows", args.rows, "--runc", args.runc, "--work", work,
                         "--parent", sb.cgroup.name], env=sb.env)
        rc = proc.wait()
        if rc:
            print(f"bench_speed.py: the measurements failed (exit {rc})", file=sys.stderr)
    finally:
        problems = sb.stop()
        if problems:
            print(f"bench_speed.py: left behind: {problems}", file=sys.stderr)


if __name__ == "__main__":
    main()
