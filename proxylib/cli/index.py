"""``proxylib index FILE...``: build and save gzip seek indexes ahead of time."""

from __future__ import annotations

from ..io.index_build import build_index

from .output import echo
from .progress import Progress


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "index", help="build and save gzip seek indexes",
        description="Build the full seek index of each gzipped file and save it in the "
                    "index cache (PROXYLIB_CACHE_DIR, else $XDG_CACHE_HOME/proxylib, else "
                    "~/.cache/proxylib), so a later process reads any volume without "
                    "decompressing from the start.")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--force", action="store_true", help="rebuild even if saved")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args) -> int:
    progress = Progress(quiet=args.quiet)
    for number, path in enumerate(args.files):
        progress(number, len(args.files), path)
        saved = build_index(path, force=args.force)
        where = saved if saved is not None else "not saved (cache directory not writable)"
        echo(f"{path}: index {where}")
    progress(len(args.files), len(args.files), "done")
    return 0
