"""``proxylib bench [FILE]``: time every read strategy on a file (or a generated one)."""

from __future__ import annotations

import sys
import tempfile
from typing import Optional, TextIO

from ..bench import report
from ..bench.runner import run_benchmark
from ..bench.volume import DEFAULT_SHAPE, describe, make_default_volume

from .progress import Progress
from .urls import add_storage_options, storage_options


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "bench", help="benchmark read strategies (default command)",
        description="Time the standard workloads (one volume, one voxel time series, one "
                    "x-slab, a 1,000-voxel mask, a full float32 read) over every read "
                    "strategy (mmap 'c'/'r'/False x keep_file_open True/False; gzip with and "
                    "without a saved index), numpy.memmap and nibabel when installed. With no "
                    "FILE, a default 4D volume is written (plain and gzipped) to a temporary "
                    "directory and both are measured.")
    parser.add_argument("file", nargs="?", help="a 4D NIfTI file (.nii, .nii.gz, .hdr/.img) or URL")
    parser.add_argument("--keys", nargs="+", default=(), metavar="NAME",
                        help="only these workloads: volume, time series, x-slab, mask, full")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per strategy and workload (default 5; "
                        "fast warm reads get more, up to 0.3 s of rounds); strategies run "
                        "interleaved, round by round, in a fresh random order each round")
    parser.add_argument("--json", metavar="OUT", help="write machine-readable results to OUT")
    parser.add_argument("--plot", metavar="OUT.png", help="draw the results (needs matplotlib)")
    parser.add_argument("--no-peers", action="store_true",
                        help="leave out numpy.memmap and nibabel")
    parser.add_argument("--shape", default=None,
                        help="shape of the generated default volume, e.g. 32,32,16,50")
    parser.add_argument("--cold", action="store_true",
                        help="also measure every cell on a cold page cache (dropped before "
                             "each round: /proc/sys/vm/drop_caches as root, else "
                             "POSIX_FADV_DONTNEED on the file; a fresh image per round) and "
                             "report cold and warm side by side, with the raw pread floor and "
                             "issue 16's targets as ratios of same-round pairs")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_storage_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.repeat < 1:
        raise ValueError("--repeat must be at least 1")
    progress = Progress(quiet=args.quiet)
    # a bar on a terminal; in a log or pipe, a line as each cell starts
    lines = None if args.quiet or progress.enabled else CellLines()
    with tempfile.TemporaryDirectory(prefix="proxylib-bench-") as directory:
        if args.file:
            paths = [args.file]
        else:
            shape = tuple(int(n) for n in args.shape.split(",")) if args.shape else DEFAULT_SHAPE
            paths = list(make_default_volume(directory, shape))
        everything = []
        for path in paths:
            title = describe(path, temporary=not args.file,
                             storage_options=storage_options(args))
            if lines is not None:
                lines.stream.write(f"proxylib bench: measuring {title}\n")
            results = run_benchmark(path, workload_names=args.keys, repeat=args.repeat,
                                    progress=progress, include_peers=not args.no_peers,
                                    on_cell=lines, cold=args.cold,
                                    storage_options=storage_options(args))
            print(report.render_table(results, title))
            print()
            everything.append((path, results))
        if not args.no_peers and not _has_nibabel():
            print(NIBABEL_HINT)
        if args.json:
            import json
            payload = [json.loads(report.to_json(results, path)) for path, results in everything]
            with open(args.json, "w") as handle:
                json.dump(payload if len(payload) > 1 else payload[0], handle, indent=2)
        if args.plot:
            report.plot([r for _, results in everything for r in results], args.plot)
    for path, results in everything:
        own = [r for r in results if r.family == "proxylib"]
        if own and all(r.median_seconds is None for r in own):
            reason = next(r.error for r in own if r.error)
            raise RuntimeError(f"{path}: every proxylib strategy failed; first error: {reason}")
    return 0


NIBABEL_HINT = ("nibabel is not installed, so there is no nibabel row or 'x nibabel' column; "
                "python3 -m pip install nibabel (or 'proxylib[bench]') adds them")


def _has_nibabel() -> bool:
    try:
        import nibabel  # noqa: F401
    except ImportError:
        return False
    return True


class CellLines:
    """Progress for logs and pipes: ``[k/n] workload: ...`` on its own line as each cell
    (one workload, warm or cold, every strategy interleaved) starts."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr

    def __call__(self, number: int, count: int, name: str) -> None:
        self.stream.write(f"  [{number}/{count}] {name}\n")
        self.stream.flush()
