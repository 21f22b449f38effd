"""``proxylib bench [FILE]``: time every read strategy on a file (or a generated one)."""

from __future__ import annotations

import tempfile

from ..bench import report
from ..bench.runner import run_benchmark
from ..bench.volume import DEFAULT_SHAPE, make_default_volume

from .progress import Progress


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "bench", help="benchmark read strategies (default command)",
        description="Time the standard workloads (one volume, one voxel time series, one "
                    "x-slab, a 1,000-voxel mask, a full float32 read) over every read "
                    "strategy (mmap 'c'/'r'/False x keep_file_open True/False; gzip with and "
                    "without a saved index), numpy.memmap and nibabel when installed. With no "
                    "FILE, a default 4D volume is written (plain and gzipped) to a temporary "
                    "directory and both are measured.")
    parser.add_argument("file", nargs="?", help="a 4D NIfTI file (.nii, .nii.gz, .hdr/.img)")
    parser.add_argument("--keys", nargs="+", default=(), metavar="NAME",
                        help="only these workloads: volume, time series, x-slab, mask, full")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per cell (default 5)")
    parser.add_argument("--json", metavar="OUT", help="write machine-readable results to OUT")
    parser.add_argument("--plot", metavar="OUT.png", help="draw the results (needs matplotlib)")
    parser.add_argument("--no-peers", action="store_true",
                        help="leave out numpy.memmap and nibabel")
    parser.add_argument("--shape", default=None,
                        help="shape of the generated default volume, e.g. 32,32,16,50")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.repeat < 1:
        raise ValueError("--repeat must be at least 1")
    progress = Progress(quiet=args.quiet)
    with tempfile.TemporaryDirectory(prefix="proxylib-bench-") as directory:
        if args.file:
            paths = [args.file]
        else:
            shape = tuple(int(n) for n in args.shape.split(",")) if args.shape else DEFAULT_SHAPE
            paths = list(make_default_volume(directory, shape))
        everything = []
        for path in paths:
            results = run_benchmark(path, workload_names=args.keys, repeat=args.repeat,
                                    progress=progress, include_peers=not args.no_peers)
            print(report.render_table(results, path if args.file else _label(path)))
            print()
            everything.append((path, results))
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


def _label(path: str) -> str:
    return "default volume " + ("(gzipped)" if path.endswith(".gz") else "(uncompressed)")
