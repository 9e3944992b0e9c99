"""What networking costs a container start.

    /usr/bin/python3 bench/bench_network.py [-n RUNS] [--json]

Everything runs inside a private network sandbox (tests/netsandbox.py), never
in the machine's own network namespace.  Measured:

  run --rm true      `contain run --rm --rootfs BUSYBOX true`, wall time, with
                     --network none, the default bridge, and bridge with -p
  attach / detach    the library calls alone, on a stand-in container:
                     prepare + attach (bridge already up) and detach, with and
                     without a published port; and the first attach of a
                     network (bridge, sysctls and iptables chains made then)
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests import netsandbox, support  # noqa: E402
from contain.engine import network  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def summary(samples):
    return {"median_ms": round(statistics.median(samples), 2),
            "min_ms": round(min(samples), 2), "max_ms": round(max(samples), 2),
            "runs": len(samples)}


def bench_cli(sb, runs):
    rootfs = support.busybox_rootfs()
    out = {}
    for label, extra in (("none", ["--network", "none"]), ("bridge", []),
                         ("bridge -p", ["-p", "8080:80"])):
        def once():
            res = sb.contain("run", "--rm", *extra, "--rootfs", rootfs, "true")
            if res.returncode != 0:
                raise SystemExit(f"run --rm {label}: {res.stderr.strip()}")
        once()      # warm: bridge and chains exist, caches are hot
        out[f"run --rm true ({label})"] = summary([timed(once) for _ in range(runs)])
    return out


def bench_library(sb, runs):
    store = network.NetworkStore(tempfile.mkdtemp(dir=support.WORK))
    out = {}
    n = iter(range(10 ** 6))

    def cycle(opts, first=False):
        """One stand-in through prepare+attach and detach: (attach ms, detach ms)."""
        cid = f"{next(n):064x}"
        with sb.entered():
            box = sb.standin()
            t = time.perf_counter()
            info = network.prepare(store, cid, opts)
            network.attach(info, box.pid)
            t_attach = (time.perf_counter() - t) * 1000
            sb.kill(box)
            t_detach = timed(lambda: network.detach(store, cid, info))
            if first:
                network.cleanup_unused(store)
        return t_attach, t_detach

    firsts = [cycle({}, first=True)[0] for _ in range(max(3, runs // 4))]
    out["first attach (bridge + chains made)"] = summary(firsts)
    cycle({})
    for label, opts in (("", {}), (" -p 8080:80", {"publish": ["8080:80"]})):
        samples = [cycle(opts) for _ in range(runs)]
        out[f"prepare+attach{label}"] = summary([a for a, _ in samples])
        out[f"detach{label}"] = summary([d for _, d in samples])
    with sb.entered():
        network.cleanup_unused(store)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-cli", action="store_true", help="only the library calls")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_network needs root (network namespaces)")
    sb = netsandbox.Sandbox()
    try:
        sb.setup()
        results = bench_library(sb, args.runs)
        if not args.no_cli:
            results.update(bench_cli(sb, args.runs))
    finally:
        sb.cleanup()
    if args.json:
        print(json.dumps(results, indent=1))
        return
    width = max(map(len, results))
    print(f"{'':{width}}  median     min     max  (ms, {args.runs} runs)")
    for name, r in results.items():
        print(f"{name:{width}}  {r['median_ms']:6.1f}  {r['min_ms']:6.1f}  {r['max_ms']:6.1f}")


if __name__ == "__main__":
    main()
