#!/usr/bin/python3
"""Benchmark of the image area (not a test): prints figures for README.

  * unpack throughput of a >= 100 MB layer built from host files (/usr),
    contain's safe_extract against GNU `tar -x` of the same tarball, plain
    and gzip-compressed; and of a layer of many small files (the worst case
    for a per-file Python loop);
  * loading that layer as an image (verifying both digests, storing the blob);
  * loading a small image (the built-in busybox as a docker-archive): cold,
    and again with its layer already present.

    bench/bench_images.py [--dir DIR] [--mb 110] [--runs 5] [--no-small]

DIR (default /var/tmp) should be on the filesystem the state root uses.
"""

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)
sys.path.insert(0, os.path.join(TOP, "tests"))

from contain.engine import images                      # noqa: E402
from contain.engine.unpack import safe_extract         # noqa: E402


def build_layer(path, roots, limit):
    """A tar of host files under roots (sorted walk) until limit bytes of data."""
    total = files = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for root in roots:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                tar.add(dirpath, arcname=dirpath.lstrip("/"), recursive=False)
                for name in sorted(filenames):
                    p = os.path.join(dirpath, name)
                    try:
                        size = os.lstat(p).st_size
                        tar.add(p, arcname=p.lstrip("/"), recursive=False)
                    except OSError:
                        continue
                    total += size
                    files += 1
                    if total >= limit:
                        return total, files
    return total, files


def timed(fn):
    os.sync()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compare(label, tarball, work, runs, tar_flags, mb):
    """Median seconds of tar -x vs safe_extract over runs, alternating."""
    tar_times, py_times = [], []
    for _ in range(runs):
        for who, times in (("tar", tar_times), ("py", py_times)):
            dest = os.path.join(work, "out")
            shutil.rmtree(dest, ignore_errors=True)
            os.mkdir(dest)
            if who == "tar":
                times.append(timed(lambda: subprocess.run(
                    ["tar", tar_flags, tarball, "-C", dest], check=True)))
            else:
                times.append(timed(lambda: safe_extract(tarball, dest)))
            shutil.rmtree(dest)
    t, p = statistics.median(tar_times), statistics.median(py_times)
    print(f"{label:44s} tar -x {t:6.3f} s ({mb / t:6.0f} MB/s)   contain {p:6.3f} s "
          f"({mb / p:6.0f} MB/s)   contain/tar speed {t / p:4.2f}x")
    return t / p


def bench_load(tarball, work, runs, mb):
    """ImageStore.load of a one-layer docker-archive (hashing + blob copy)."""
    from test_images_kit import Img, docker_archive
    with open(tarball, "rb") as f:
        blob = f.read()
    archive = docker_archive(os.path.join(work, "big-image.tar"), [Img(["big:1"], [blob])])
    del blob
    times = []
    for _ in range(runs):
        root = os.path.join(work, "root")
        shutil.rmtree(root, ignore_errors=True)
        times.append(timed(lambda: images.ImageStore(root).load(archive)))
    shutil.rmtree(os.path.join(work, "root"), ignore_errors=True)
    os.unlink(archive)
    t = statistics.median(times)
    print(f"{'load of that layer as an image (verified)':44s} {t:6.3f} s ({mb / t:6.0f} MB/s)")


def bench_small_image(work, runs):
    """Load the built-in busybox image as a docker-archive: cold, then cached."""
    src = images.ImageStore(os.path.join(work, "src"))
    src.resolve("busybox")
    archive = os.path.join(work, "busybox.tar")
    src.save(["busybox"], archive)
    cold, warm, cli = [], [], []
    for _ in range(runs):
        root = os.path.join(work, "root")
        shutil.rmtree(root, ignore_errors=True)
        cold.append(timed(lambda: images.ImageStore(root).load(archive)))
        warm.append(timed(lambda: images.ImageStore(root).load(archive)))
        shutil.rmtree(root)
        cli.append(timed(lambda: subprocess.run(
            [sys.executable, os.path.join(TOP, "contain.py"), "--root", root, "load", "-i",
             archive], check=True, capture_output=True)))
    size = os.path.getsize(archive) / 1e6
    print(f"{'load of a small image (busybox, %.1f MB)' % size:44s} cold "
          f"{statistics.median(cold) * 1000:5.0f} ms   layer present "
          f"{statistics.median(warm) * 1000:5.0f} ms   `contain load` CLI "
          f"{statistics.median(cli) * 1000:5.0f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--mb", type=int, default=110)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-small", action="store_true", help="skip the small-files layer")
    ns = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (ownership, whiteouts and xattrs need it)")
    work = tempfile.mkdtemp(prefix="bench-images-", dir=ns.dir)
    try:
        layer = os.path.join(work, "layer.tar")
        total, files = build_layer(layer, ["/usr"], ns.mb << 20)
        mb = os.path.getsize(layer) / 1e6
        print(f"layer from /usr: {mb:.0f} MB tar, {files} files, "
              f"{total / 1e6:.0f} MB of file data; {ns.runs} runs, medians\n")
        compare("unpack, plain tar", layer, work, ns.runs, "-xf", mb)
        gz = layer + ".gz"
        with open(layer, "rb") as f, gzip.open(gz, "wb", compresslevel=6) as out:
            shutil.copyfileobj(f, out, 1 << 20)
        compare("unpack, tar.gz", gz, work, ns.runs, "-xzf", mb)
        os.unlink(gz)
        bench_load(layer, work, ns.runs, mb)
        os.unlink(layer)
        if not ns.no_small:
            small = os.path.join(work, "small.tar")
            total, files = build_layer(small, ["/usr/share"], 60 << 20)
            smb = os.path.getsize(small) / 1e6
            compare(f"unpack, {files} small files ({smb:.0f} MB)", small, work, ns.runs,
                    "-xf", smb)
            os.unlink(small)
        bench_small_image(work, ns.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
