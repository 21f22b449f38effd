"""Warm 20-voxel masks: proxylib's settings against the raw floors of each read path.

The measurement behind the issue-16 note on "a 20-voxel mask with default
settings within 4x of a kept map". With ``keep_file_open=False`` nothing may
outlive an access, so every access makes and drops its own map (or reads with
``pread``). The raw floors below do exactly that with the standard library and
numpy, no proxylib: a fresh ``mmap`` + a numpy gather + ``close`` per mask, and
one ``os.pread`` per element. Where the raw per-access map is itself more than
4x the kept map, no reader honouring ``keep_file_open=False`` meets the target.

Each round draws a fresh mask (a repeated mask measures pages already mapped);
the page cache is warmed first and strategies alternate in a random order.
How it is warmed matters (see :mod:`proxylib.execute_measured`):
``--warm-by read`` reads the file in 8 MiB blocks (the kernel caches it in
large folios, as after a copy or a write); ``--warm-by random-faults``
touches every page through a ``MADV_RANDOM`` map (one small folio per page,
as after sparse reads through a map). Both drop the page cache first
(root; else the file's pages with ``POSIX_FADV_DONTNEED``); ``--warm-by none``
only reads the file through once, dropping nothing.

    python benchmarks/small_mask_floor.py FILE [--rounds 60] [--warm-by read|random-faults|none]

FILE is an uncompressed, native-order, unscaled 4D NIfTI (``proxylib bench``
with no FILE, or bench_cold.py, writes one). Run it alone on a shared machine.
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import sys
import time
from typing import Callable, Dict, List

import numpy as np

import proxylib
from proxylib.bench.cold import drop_page_cache, warm_page_cache
from proxylib.bench.workloads import SMALL_MASK_VOXELS, random_mask

Reader = Callable[[np.ndarray], object]
#: The denominator of the issue-16 target.
KEPT_MAP = "proxylib mmap=True keep=True"


def element_indices(mask: np.ndarray, shape) -> np.ndarray:
    """Flat element indices of ``data[mask]`` (every volume) in an F-ordered file."""
    voxels = np.flatnonzero(mask.ravel(order="F"))
    per_volume = int(np.prod(shape[:3]))
    volumes = np.arange(int(np.prod(shape[3:])))
    return (voxels[None, :] + per_volume * volumes[:, None]).ravel()


def raw_readers(path: str, shape, offset: int, dtype: np.dtype) -> Dict[str, Reader]:
    count = int(np.prod(shape))
    descriptor = os.open(path, os.O_RDONLY)

    def typed(mapped: mmap.mmap) -> np.ndarray:
        return np.frombuffer(mapped, dtype, count, offset)

    kept = typed(mmap.mmap(descriptor, 0, prot=mmap.PROT_READ))

    def fresh_map(mask: np.ndarray) -> np.ndarray:
        mapped = mmap.mmap(descriptor, 0, prot=mmap.PROT_READ)
        try:
            view = typed(mapped)
            values = view[element_indices(mask, shape)]
            del view
            return values
        finally:
            mapped.close()

    def preads(mask: np.ndarray) -> List[bytes]:
        read, size = os.pread, dtype.itemsize
        return [read(descriptor, size, offset + size * int(at))
                for at in element_indices(mask, shape)]

    return {"raw: kept map gather": lambda mask: kept[element_indices(mask, shape)],
            "raw: fresh map per mask": fresh_map,
            "raw: one pread per element": preads}


def touch_every_page_at_random(path: str) -> None:
    """Bring the file into the page cache one page per fault (a ``MADV_RANDOM`` map)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        mapped = mmap.mmap(descriptor, 0, prot=mmap.PROT_READ)
        mapped.madvise(mmap.MADV_RANDOM)
        pages = np.frombuffer(mapped, np.uint8)
        int(pages[::mmap.PAGESIZE].sum())
        del pages
        mapped.close()
    finally:
        os.close(descriptor)


def proxylib_readers(path: str) -> Dict[str, Reader]:
    found: Dict[str, Reader] = {}
    for mmap_mode, keep in ((True, True), (True, False), (False, True), (False, False)):
        proxy = proxylib.load(path, mmap=mmap_mode, keep_file_open=keep).dataobj
        found[f"proxylib mmap={mmap_mode} keep={keep}"] = proxy.__getitem__
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warm-by", choices=("read", "random-faults", "none"), default="read",
                        help="how the page cache is filled after dropping it ('none': not "
                             "dropped, only read through once)")
    args = parser.parse_args()
    image = proxylib.load(args.file)
    proxy = image.dataobj
    dtype = proxy.storage_dtype
    if proxy.order != "F" or not dtype.isnative or proxy.spec.has_scaling:
        parser.error(f"{args.file}: needs F order, native byte order and no scaling")
    if args.warm_by != "none":
        print(f"page cache: {drop_page_cache([args.file])}, then warmed by {args.warm_by}",
              file=sys.stderr)
    if args.warm_by == "random-faults":
        touch_every_page_at_random(args.file)
    else:
        warm_page_cache([args.file])
    readers = {**raw_readers(args.file, proxy.shape, proxy.offset, dtype),
               **proxylib_readers(args.file)}
    rng = np.random.default_rng()
    check = random_mask(proxy.shape[:3], SMALL_MASK_VOXELS, rng)
    expected = np.asarray(np.memmap(args.file, dtype, "r", proxy.offset, proxy.shape, "F"))[check]
    for name, read in readers.items():
        if name.startswith("proxylib"):
            np.testing.assert_array_equal(read(check), expected)
    times: Dict[str, List[float]] = {name: [] for name in readers}
    for _ in range(args.rounds):
        for name in rng.permutation(list(readers)).tolist():
            mask = random_mask(proxy.shape[:3], SMALL_MASK_VOXELS, rng)
            start = time.perf_counter()
            readers[name](mask)
            times[name].append(time.perf_counter() - start)
    floor = statistics.median(times[KEPT_MAP])
    print(f"{'strategy':36s} {'median ms':>10s} {'x kept map':>10s}  (kept map: {KEPT_MAP})")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:36s} {median * 1e3:10.3f} {median / floor:10.2f}")


if __name__ == "__main__":
    main()
