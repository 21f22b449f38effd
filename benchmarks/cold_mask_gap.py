"""Cold 1,000-voxel masks by gap threshold and read path, against one sequential read.

The measurement behind ``proxylib.io.cost.COLD_GAP_THRESHOLD``: every round
drops the page cache (``proxylib.bench.cold.drop_page_cache``), opens a fresh
proxy and reads a freshly drawn mask; the floor is one sequential read of the
file in 8 MiB preads. Strategies alternate in a new random order each round.

    python benchmarks/cold_mask_gap.py FILE [--rounds 4] [--gaps 16 64 256]

FILE is an uncompressed 4D NIfTI (``proxylib bench`` with no FILE, or
bench_cold.py, writes one). Run it alone (``flock`` on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable, Dict, List, Optional

import numpy as np

import proxylib
from proxylib.bench.cold import drop_page_cache
from proxylib.bench.workloads import MASK_VOXELS, random_mask
from proxylib.io.cost import CostModel


def sequential_read(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        buffer, offset = bytearray(8 << 20), 0
        while True:
            got = os.preadv(fd, [buffer], offset)
            if not got:
                break
            offset += got
    finally:
        os.close(fd)


def strategies(path: str, gaps_kib: List[int]) -> Dict[str, Callable[[np.ndarray], object]]:
    def reader(mmap, keep: bool, cost: Optional[CostModel]) -> Callable[[np.ndarray], object]:
        def read(mask: np.ndarray) -> object:
            image = proxylib.load(path, mmap=mmap, keep_file_open=keep)
            proxy = image.dataobj if cost is None else proxylib.ArrayProxy(
                path, image.dataobj.spec, mmap=mmap, keep_file_open=keep, cost=cost)
            try:
                return proxy[mask]
            finally:
                proxy.close()
        return read

    found: Dict[str, Callable[[np.ndarray], object]] = {
        "one sequential read": lambda mask: sequential_read(path)}
    for mmap, keep in (("c", False), ("c", True), (False, True)):
        found[f"mmap={mmap!r} keep={keep} probed cost"] = reader(mmap, keep, None)
        for gap in gaps_kib:
            found[f"mmap={mmap!r} keep={keep} gap {gap} KiB"] = reader(
                mmap, keep, CostModel(gap_threshold=gap << 10))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--gaps", type=int, nargs="+", default=[16, 64, 256])
    args = parser.parse_args()
    spatial = proxylib.load(args.file).shape[:3]
    readers = strategies(args.file, args.gaps)
    rng = np.random.default_rng()
    times: Dict[str, List[float]] = {name: [] for name in readers}
    for _ in range(args.rounds):
        for name in rng.permutation(list(readers)).tolist():
            mask = random_mask(spatial, MASK_VOXELS, rng)
            drop_page_cache([args.file])
            start = time.perf_counter()
            readers[name](mask)
            times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["one sequential read"])
    print(f"{'strategy':40s} {'median ms':>10s} {'x floor':>8s}  rounds (ms)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:40s} {median * 1e3:10.1f} {median / floor:8.2f}  "
              f"{' '.join(f'{v * 1e3:.0f}' for v in values)}")


if __name__ == "__main__":
    main()
