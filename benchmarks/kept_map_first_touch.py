"""A volume's first copy out of a kept map against a ``preadv`` of it: what a kept map pays once.

A kept map copies a volume it has touched before faster than ``preadv``
(its pages are mapped: ``warm_volume_overhead.py``). The first copy of a
volume faults each page in. This script measures that first copy: each
round maps the file afresh (``MADV_RANDOM``, as proxylib's maps are),
copies one random volume out of it, and, in the same round in random order,
reads another random volume with one ``preadv``. The page cache is dropped
and then read through once first (as ``proxylib bench --cold``'s warm cells
start; root, else ``POSIX_FADV_DONTNEED``), unless ``--warm-by none``.

    python benchmarks/kept_map_first_touch.py FILE [--rounds 150] [--warm-by read|none]

FILE: an uncompressed 4D NIfTI (``proxylib bench`` with no FILE writes one).
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import statistics
import sys
import time

import numpy as np

import proxylib
from proxylib.bench.cold import drop_page_cache, warm_page_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--warm-by", choices=("read", "none"), default="read")
    args = parser.parse_args()
    proxy = proxylib.load(args.file).dataobj
    volume = int(np.prod(proxy.shape[:3])) * proxy.storage_dtype.itemsize
    volumes = int(np.prod(proxy.shape[3:]))
    if args.warm_by == "read":
        print(f"page cache: {drop_page_cache([args.file])}, then read through",
              file=sys.stderr)
    warm_page_cache([args.file])
    descriptor = os.open(args.file, os.O_RDONLY)
    out = np.empty(volume, np.uint8)
    view = memoryview(out)

    def first_copy(t: int) -> float:
        mapped = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
        mapped.madvise(mmap.MADV_RANDOM)
        start = proxy.offset + t * volume
        began = time.perf_counter()
        with memoryview(mapped) as whole, whole[start:start + volume] as part:
            view[:] = part
        spent = time.perf_counter() - began
        mapped.close()
        return spent

    def pread(t: int) -> float:
        began = time.perf_counter()
        os.preadv(descriptor, [view], proxy.offset + t * volume)
        return time.perf_counter() - began

    ways = {"first copy out of a fresh map": first_copy, "one preadv": pread}
    times = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name in random.sample(list(ways), len(ways)):
            times[name].append(ways[name](random.randrange(volumes)))
    floor = statistics.median(times["one preadv"])
    for name, spent in times.items():
        median = statistics.median(spent)
        print(f"{name:32s} {median * 1e6:9.1f} us {median / floor:6.2f}x")


if __name__ == "__main__":
    main()
