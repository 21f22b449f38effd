"""Warm one-volume reads: proxylib's per-read cost over one raw ``preadv``, probe or not.

Each setting reads the same volume again and again (the page cache and the
kept map warm), so what remains over the raw floor is proxylib's own work:
opening (per access), the identity check, the residency probe, planning.
``--probe-every-read`` makes every access probe the page cache, as it does
when reads are more than ``Residency.REUSE_SECONDS`` apart (``proxylib
bench``'s interleaved rounds, a pipeline computing between reads).

    python benchmarks/warm_volume_overhead.py FILE [--probe-every-read]

FILE: an uncompressed 4D NIfTI (``proxylib bench`` with no FILE writes one).
"""

from __future__ import annotations

import argparse
import os
import timeit

import numpy as np

import proxylib
from proxylib.io.advice import Residency

SETTINGS = {"mmap='c' keep=False (default)": {},
            "mmap='c' keep=True": {"keep_file_open": True},
            "mmap=False keep=True": {"mmap": False, "keep_file_open": True},
            "mmap=False keep=False": {"mmap": False}}


def best_microseconds(read, number: int = 300, repeat: int = 7) -> float:
    return min(timeit.repeat(read, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--probe-every-read", action="store_true")
    args = parser.parse_args()
    if args.probe_every_read:
        Residency.REUSE_SECONDS = 0.0
    proxy = proxylib.load(args.file).dataobj
    if proxy.order != "F" or not proxy.storage_dtype.isnative or proxy.spec.has_scaling:
        parser.error(f"{args.file}: needs F order, native byte order and no scaling")
    volume = int(np.prod(proxy.shape[:3])) * proxy.storage_dtype.itemsize
    middle = proxy.shape[-1] // 2
    descriptor = os.open(args.file, os.O_RDONLY)

    def floor() -> np.ndarray:
        out = np.empty(volume // proxy.storage_dtype.itemsize, proxy.storage_dtype)
        os.preadv(descriptor, [out], proxy.offset + middle * volume)
        return out

    proxies = {name: proxylib.load(args.file, **options).dataobj
               for name, options in SETTINGS.items()}
    expected = floor()
    for read_proxy in proxies.values():
        np.testing.assert_array_equal(read_proxy[..., middle].ravel(order="F"), expected)
    floor_us = best_microseconds(floor)
    print(f"{'raw preadv (floor)':32s} {floor_us:8.1f} us")
    for name, read_proxy in proxies.items():
        spent = best_microseconds(lambda: read_proxy[..., middle])
        print(f"{name:32s} {spent:8.1f} us {spent / floor_us:6.2f}x")


if __name__ == "__main__":
    main()
