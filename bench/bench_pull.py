#!/usr/bin/python3
"""Benchmark of pulls (not a test): prints figures for README.

A busybox image (the host's static busybox, one gzip layer) is put into a
docker-registry on 127.0.0.1; then, interleaved in each round, every tool
pulls it cold into a store of its own, and contain and podman pull it again
warm (already stored):

  * contain pull          (fresh CONTAIN_ROOT; fetch, verify, unpack, record)
  * podman pull           (its own --root/--runroot in a temporary directory)
  * skopeo copy docker://... oci:DIR   (fetches blobs; does not unpack)

Each figure is the median of the rounds; "paired" is the median of the
per-round ratios contain/podman.

    bench/bench_pull.py [--rounds 9] [--dir DIR]
"""

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from tests import support                                  # noqa: E402
from tests.registry_server import RegistryServer          # noqa: E402
from tests.test_images_kit import Img, oci_layout         # noqa: E402

PYTHON = "/usr/bin/python3"


def timed(cmd, env=None):
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {res.returncode}: {res.stderr.strip()}")
    return elapsed


def busybox_layout(work):
    rootfs = support.busybox_rootfs()
    tar = os.path.join(work, "busybox.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
    with open(tar, "rb") as f:
        blob = gzip.compress(f.read(), 6, mtime=0)
    img = Img(["latest"], [blob], {"Cmd": ["sh"]})
    return oci_layout(os.path.join(work, "layout"), [img]), len(blob)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-pull-", dir=args.dir)
    server = None
    try:
        layout, size = busybox_layout(work)
        server = RegistryServer(os.path.join(work, "registry"))
        server.skopeo_copy(f"oci:{layout}:latest", "bench/busybox:latest")
        ref = f"{server.domain}/bench/busybox:latest"
        print(f"image: {ref}, one gzip layer of {size / 1e6:.2f} MB")
        have_podman = shutil.which("podman") is not None
        times = {k: [] for k in ("contain cold", "contain warm", "podman cold",
                                 "podman warm", "skopeo copy")}
        for n in range(args.rounds):
            d = tempfile.mkdtemp(prefix=f"r{n}-", dir=work)
            env = dict(os.environ, CONTAIN_ROOT=os.path.join(d, "contain"))
            contain = [PYTHON, "-I", os.path.join(TOP, "contain.py"), "pull", "-q", ref]
            times["contain cold"].append(timed(contain, env))
            times["contain warm"].append(timed(contain, env))
            if have_podman:
                runroot = tempfile.mkdtemp(prefix="pr", dir="/tmp")   # podman: < 50 chars
                base = ["podman", "--root", os.path.join(d, "podman"), "--runroot", runroot,
                        "--cgroup-manager=cgroupfs", "--events-backend=none"]
                podman = base + ["pull", "-q", "--tls-verify=false", ref]
                times["podman cold"].append(timed(podman))
                times["podman warm"].append(timed(podman))
                subprocess.run(base + ["system", "reset", "-f"], capture_output=True)
                shutil.rmtree(runroot, ignore_errors=True)
            times["skopeo copy"].append(timed(
                ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                 f"oci:{os.path.join(d, 'oci')}:latest"]))
            shutil.rmtree(d, ignore_errors=True)
        for name, values in times.items():
            if values:
                print(f"{name:14s} median {statistics.median(values) * 1000:7.1f} ms "
                      f"(min {min(values) * 1000:.1f}, rounds {len(values)})")
        if times["podman cold"]:
            pairs = [c / p for c, p in zip(times["contain cold"], times["podman cold"])]
            warm = [c / p for c, p in zip(times["contain warm"], times["podman warm"])]
            print(f"paired contain/podman: cold {statistics.median(pairs):.2f}x, "
                  f"warm {statistics.median(warm):.2f}x")
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
