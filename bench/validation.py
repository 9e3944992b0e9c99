#!/usr/bin/python3
"""The OCI runtime-tools validation suite against runc and contain, side by side
(not part of the test suite: the suite's binaries are built with Go).

    bench/validation.py [DIR] [--runtime NAME=PATH]... [--only T1,T2] [--save DIR]

DIR (or $CONTAIN_VALIDATION_DIR) is a built runtime-tools tree: it holds
`runtimetest`, `rootfs-amd64.tar.gz` and `validation/<name>/<name>.t` (or the
`.t` files flat in DIR).  The README says how to build it.  Each `.t` runs as
the suite expects, from DIR with RUNTIME set, and prints TAP; a test passes
when it exits 0 having reported every planned point and none "not ok"
(points the suite marks SKIP or TODO count as it says).

Default runtimes: runc (from PATH or /usr/sbin/runc) and contain (a symlink
`contain-runc` to this checkout's contain.py).  Every run is contained: it
runs in a private mount namespace with a tmpfs on /run (so each runtime's
state root is fresh and vanishes with it), in a fresh cgroup parent (tests/engines.py's) in
every hierarchy (runc puts a container with a relative cgroupsPath below its
caller's cgroup), with TMPDIR (where the suite unpacks its bundles) a private
directory; afterwards every process left in that parent, or in the suite's
/cgrouptest or /testdir cgroups when this run made them, is killed and the
cgroups, the directory and the namespace are gone.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

sys.path.insert(0, os.path.join(TOP, "tests"))

from contain.core import linux                          # noqa: E402
from engines import CgroupParent, _hierarchies          # noqa: E402

# runtime-tools' AbsCgroupPath "/cgrouptest", and the top of its RelCgroupPath
# "testdir/cgrouptest/container" (runc 1.1 makes that one at the root of the
# hybrid layout's cgroup2 hierarchy)
SUITE_CGROUPS = ("cgrouptest", "testdir")


# ------------------------------------------------------------------ TAP
def tap_streams(tap):
    """[(plan or None, [(ok, directive)])] for each TAP stream in the text:
    some test files print two (linux_cgroups_cpus: a "TAP version" line and
    a plan for each of its two parts)."""
    streams = []
    for line in tap.splitlines():
        if line.startswith("TAP version") or not streams:
            streams.append([None, []])
            if line.startswith("TAP version"):
                continue
        m = re.match(r"^1\.\.(\d+)", line)
        if m:
            if streams[-1][0] is not None:       # a second plan: a new stream
                streams.append([None, []])
            streams[-1][0] = int(m.group(1))
            continue
        m = re.match(r"^(not ok|ok)\b\s*\d*\s*(?:-\s*)?(.*)$", line)
        if m:
            directive = re.search(r"#\s*(SKIP|TODO)", m.group(2), re.I)
            streams[-1][1].append((m.group(1) == "ok",
                                   directive.group(1).upper() if directive else ""))
    return [(plan, results) for plan, results in streams if plan is not None or results]


def verdict(rc, tap):
    """("pass" | "skip" | "quiet" | "fail", detail) for one test file's exit
    status and TAP.  "quiet": exit 0 with no TAP at all, which is how the
    *_fail tests (process_capabilities_fail, process_rlimits_fail) say the
    runtime refused the bad config as it must."""
    streams = tap_streams(tap)
    results = [r for _, rs in streams for r in rs]
    failed = sum(1 for ok, d in results if not ok and d != "TODO")
    if rc is None:
        return "fail", f"timed out, {failed}/{len(results)} not ok"
    if rc != 0:
        return "fail", f"exit {rc}, {failed}/{len(results)} not ok"
    if not streams:
        return "quiet", "exit 0, no TAP"
    for plan, rs in streams:
        if plan is None or plan != len(rs):
            return "fail", f"planned {plan}, ran {len(rs)}"
    if failed:
        return "fail", f"{failed}/{len(results)} not ok"
    if not results:
        # "1..0": TAP's skip-all.  The hook tests print their findings only
        # as YAML diagnostics before it: shown, though TAP counts no failure.
        return "skip", "1..0" + (", error diagnostic" if re.search(r"^\s+error:", tap, re.M)
                                 else "")
    if all(d == "SKIP" for _, d in results):
        return "skip", "all skipped"
    return "pass", f"{len(results)} ok"


# -------------------------------------------------------------- cgroups
def fresh_parent():
    """A cgroup parent in every hierarchy for one run (tests/engines.py's:
    join() in a preexec_fn, remove() kills what is left and removes it)."""
    cg = CgroupParent(f"contain-validation-{os.getpid()}")
    cg.create()
    return cg


def remove_trees(dirs):
    """Kill and remove the cgroup trees at dirs; returns what stayed."""
    doomed = CgroupParent("suite")
    doomed.dirs = sorted(dirs)
    return doomed.remove()


def suite_cgroups():
    """The suite's cgroups at a hierarchy's root that exist now."""
    return {os.path.join(h, name) for h in _hierarchies() for name in SUITE_CGROUPS
            if os.path.isdir(os.path.join(h, name))}


# ------------------------------------------------------------------ runs
def sandbox(cg):
    """preexec_fn: own cgroup, own session, private mounts, a fresh /run."""
    def enter():
        cg.join()
        os.setsid()
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE)
        linux.mount("tmpfs", "/run", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=755")
    return enter


def run_one(suite, test, runtime, timeout, preexisting):
    """Run one test file against one runtime; returns (rc or None, TAP text)."""
    tmp = tempfile.mkdtemp(prefix="contain-validation-")
    env = dict(os.environ, RUNTIME=runtime, TMPDIR=tmp)
    cg = fresh_parent()
    try:
        proc = subprocess.Popen([test], cwd=suite, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=sandbox(cg))
        try:
            out, _ = proc.communicate(timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            rc = None
    finally:
        left = cg.remove() + remove_trees(suite_cgroups() - preexisting)
        shutil.rmtree(tmp, ignore_errors=True)
    if left:
        print(f"validation: could not remove cgroups {left}", file=sys.stderr)
    return rc, out.decode(errors="replace")


def find_tests(suite):
    tests = sorted(glob.glob(os.path.join(suite, "validation", "*", "*.t"))) \
        or sorted(glob.glob(os.path.join(suite, "*.t")))
    return {os.path.basename(t)[:-2]: t for t in tests}


def default_runtimes(linkdir):
    runc = shutil.which("runc") or "/usr/sbin/runc"
    link = os.path.join(linkdir, "contain-runc")
    os.symlink(os.path.join(TOP, "contain.py"), link)
    return [("runc", runc), ("contain", link)]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", nargs="?", default=os.environ.get("CONTAIN_VALIDATION_DIR"),
                   help="the built runtime-tools tree (or $CONTAIN_VALIDATION_DIR)")
    p.add_argument("--runtime", action="append", default=[], metavar="NAME=PATH",
                   help="a runtime to run (repeatable; default runc and contain)")
    p.add_argument("--only", help="comma-separated test names")
    p.add_argument("--timeout", type=float, default=120, help="seconds per test file")
    p.add_argument("--save", help="write each run's TAP to SAVE/<runtime>/<test>.tap")
    p.add_argument("--json", help="write the results as JSON to this file")
    a = p.parse_args(argv)
    if not a.dir:
        p.error("give the directory of the built validation suite "
                "(argument or CONTAIN_VALIDATION_DIR)")
    a.dir = os.path.abspath(a.dir)
    for need in ("runtimetest", "rootfs-amd64.tar.gz"):
        if not os.path.exists(os.path.join(a.dir, need)):
            p.error(f"{a.dir} has no {need}: not a built runtime-tools tree")
    return a


def table(names, runtimes, results):
    width = max(len(n) for n in names)
    cols = [max(30, len(r)) for r, _ in runtimes]
    head = "test".ljust(width) + "".join("  " + r.ljust(c) for (r, _), c in zip(runtimes, cols))
    lines = [head, "-" * len(head)]
    for n in names:
        row = n.ljust(width)
        for (r, _), c in zip(runtimes, cols):
            v, detail = results[r][n]["verdict"], results[r][n]["detail"]
            cell = {"fail": f"FAIL {detail}", "skip": f"skip ({detail})",
                    "quiet": "pass (exit 0, no TAP)"}.get(v, v)
            row += "  " + cell[:c].ljust(c)
        lines.append(row)
    lines.append("-" * len(head))
    for r, _ in runtimes:
        vs = [results[r][n]["verdict"] for n in names]
        ok = vs.count("pass") + vs.count("skip") + vs.count("quiet")
        lines.append(f"{r}: {ok} of {len(names)} passed ({vs.count('skip')} of them all "
                     f"skipped, {vs.count('quiet')} by exit status alone), "
                     f"{vs.count('fail')} failed")
    both = [n for n in names if results[runtimes[0][0]][n]["verdict"] != "fail"
            and any(results[r][n]["verdict"] == "fail" for r, _ in runtimes[1:])]
    if len(runtimes) > 1 and both:
        lines.append(f"pass with {runtimes[0][0]}, fail with another: {', '.join(both)}")
    return "\n".join(lines)


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        sys.exit("validation: the suite creates containers: run it as root")
    tests = find_tests(a.dir)
    if a.only:
        wanted = a.only.split(",")
        missing = [w for w in wanted if w not in tests]
        if missing:
            sys.exit(f"validation: no such test in {a.dir}: {', '.join(missing)}")
        tests = {w: tests[w] for w in wanted}
    linkdir = tempfile.mkdtemp(prefix="contain-validation-bin-")
    try:
        runtimes = [tuple(s.split("=", 1)) for s in a.runtime] or default_runtimes(linkdir)
        preexisting = suite_cgroups()
        results = {r: {} for r, _ in runtimes}
        for name, path in tests.items():
            for r, exe in runtimes:
                start = time.monotonic()
                rc, tap = run_one(a.dir, path, exe, a.timeout, preexisting)
                v, detail = verdict(rc, tap)
                results[r][name] = {"verdict": v, "detail": detail, "rc": rc,
                                    "seconds": round(time.monotonic() - start, 2)}
                print(f"{name:40} {r:10} {v:5} {detail}", file=sys.stderr, flush=True)
                if a.save:
                    os.makedirs(os.path.join(a.save, r), exist_ok=True)
                    with open(os.path.join(a.save, r, name + ".tap"), "w") as f:
                        f.write(tap)
        print(table(list(tests), runtimes, results))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1, sort_keys=True)
    finally:
        shutil.rmtree(linkdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
