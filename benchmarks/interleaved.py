"""One-volume reads with strategies alternating round by round (steadier ratios).

Every read takes a freshly drawn volume ``[..., t]`` (a repeated key measures
a cache, not a read); the draws come from one seeded generator, so runs are
repeatable.

pytest-benchmark times one strategy after another, so drift on a shared
machine lands on whole strategies (a run here has moved one strategy's
ratio by 0.3x). Here every round runs each strategy once, in turn, and the
medians are compared. ``bench_interleaved.py`` runs this inside the suite;
by hand:

    python benchmarks/interleaved.py                 # makes a 400 MB volume in $TMPDIR
    python benchmarks/interleaved.py FILE --offset 352 --shape 100,100,100,100
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

from proxylib import ArrayProxy

RAW = "raw preadv"
RAW_PER_ACCESS = "raw open+fstat+preadv+close"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--shape", default="100,100,100,100")
    parser.add_argument("--offset", type=int, default=352)
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.shape.split(","))
    with tempfile.TemporaryDirectory() as directory:
        path = args.file or _make(os.path.join(directory, "volume.bin"), shape, args.offset)
        print_table(time_strategies(path, shape, args.offset, args.rounds))


def _make(path: str, shape, offset: int) -> str:
    data = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    with open(path, "wb") as handle:
        handle.write(b"\0" * offset)
        handle.write(data.tobytes(order="F"))
    return path


def strategies(path: str, shape, offset: int) -> Tuple[Dict[str, Callable], List[Callable]]:
    """Readers of a volume (``reader(t)``) by name, and the closers to call after."""
    volume = int(np.prod(shape[:3]))
    fd = os.open(path, os.O_RDONLY)

    def raw(t, descriptor=fd):
        out = np.empty(volume, np.float32)
        os.preadv(descriptor, [memoryview(out)], offset + t * volume * 4)
        return out

    def raw_per_access(t):  # what keep_file_open=False must do at least, by hand
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fstat(descriptor)  # the file-changed check
            return raw(t, descriptor)
        finally:
            os.close(descriptor)

    def fresh_memmap(t):
        return np.array(np.memmap(path, np.float32, "r", offset, shape, order="F")[..., t])

    kept = np.memmap(path, np.float32, "r", offset, shape, order="F")
    readers = {RAW: raw, RAW_PER_ACCESS: raw_per_access, "numpy.memmap fresh": fresh_memmap,
               "numpy.memmap kept": lambda t: np.array(kept[..., t])}
    closers = [lambda: os.close(fd)]
    for mmap in (True, False):
        for keep in (True, False):
            proxy = ArrayProxy(path, (shape, np.float32, offset), mmap=mmap, keep_file_open=keep)
            readers[f"proxylib mmap={mmap} keep={keep}"] = lambda t, p=proxy: p[..., t]
            closers.append(proxy.close)
    return readers, closers


def time_strategies(path: str, shape, offset: int, rounds: int) -> Dict[str, List[float]]:
    """Seconds per read of every strategy, ``rounds`` rounds, strategies alternating.

    Each round runs the strategies in a new random order (seeded), so no
    strategy always follows the same neighbour (whose copy decides what is
    left in the CPU caches), and each read a freshly drawn volume.
    """
    readers, closers = strategies(path, shape, offset)
    order = np.random.default_rng(0)
    try:
        times: Dict[str, List[float]] = {name: [] for name in readers}
        names = list(readers)
        for _ in range(rounds):
            for index in order.permutation(len(names)):
                name, read = names[index], readers[names[index]]
                t = int(order.integers(0, shape[3]))
                start = time.perf_counter()
                read(t)
                times[name].append(time.perf_counter() - start)
        return times
    finally:
        for close in closers:
            close()


def print_table(times: Dict[str, List[float]]) -> None:
    base = np.median(times[RAW])
    print(f"{'strategy':40s} {'median us':>10s} {'p10 us':>8s} {'/ raw':>6s}")
    for name, values in times.items():
        median = np.median(values)
        print(f"{name:40s} {median * 1e6:10.1f} {np.percentile(values, 10) * 1e6:8.1f} "
              f"{median / base:6.2f}")


if __name__ == "__main__":
    main()
