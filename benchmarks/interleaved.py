"""One-volume reads with strategies alternating round by round (steadier ratios).

pytest-benchmark times one strategy after another, so drift on a shared
machine lands on whole strategies. Here every round runs each strategy once,
in turn, and the medians are compared:

    python benchmarks/interleaved.py                 # makes a 400 MB volume in $TMPDIR
    python benchmarks/interleaved.py FILE --offset 352 --shape 100,100,100,100
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from proxylib import ArrayProxy


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
        run(path, shape, args.offset, args.rounds)


def _make(path: str, shape, offset: int) -> str:
    data = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    with open(path, "wb") as handle:
        handle.write(b"\0" * offset)
        handle.write(data.tobytes(order="F"))
    return path


def run(path: str, shape, offset: int, rounds: int) -> None:
    volume = int(np.prod(shape[:3]))
    t = shape[3] // 2
    fd = os.open(path, os.O_RDONLY)

    def raw():
        out = np.empty(volume, np.float32)
        os.preadv(fd, [memoryview(out)], offset + t * volume * 4)
        return out

    strategies = {"raw preadv": raw}
    for mmap in (True, False):
        for keep in (True, False):
            proxy = ArrayProxy(path, (shape, np.float32, offset), mmap=mmap, keep_file_open=keep)
            strategies[f"proxylib mmap={mmap} keep={keep}"] = lambda p=proxy: p[..., t]
            strategies[f"  one element, mmap={mmap} keep={keep}"] = lambda p=proxy: p[1, 2, 3, 4]
    times = {name: [] for name in strategies}
    for _ in range(rounds):
        for name, read in strategies.items():
            start = time.perf_counter()
            read()
            times[name].append(time.perf_counter() - start)
    base = np.median(times["raw preadv"])
    print(f"{'strategy':40s} {'median us':>10s} {'p10 us':>8s} {'/ raw':>6s}")
    for name, values in times.items():
        median = np.median(values)
        print(f"{name:40s} {median * 1e6:10.1f} {np.percentile(values, 10) * 1e6:8.1f} "
              f"{median / base:6.2f}")
    os.close(fd)


if __name__ == "__main__":
    main()
