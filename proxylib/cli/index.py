"""``proxylib index FILE...``: build and save gzip seek indexes ahead of time."""

from __future__ import annotations

import os
import sys

from ..errors import ProxyError
from ..io.gzip import index_cache
from ..io.gzip.build import build_full_index
from ..io.remote import RemoteGzipFile, is_url, open_url

from .output import echo
from .progress import Progress
from .urls import add_storage_options, storage_options


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
    add_storage_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    progress = Progress(quiet=args.quiet)
    failed = 0
    for number, path in enumerate(args.files):
        progress(number, len(args.files), path)
        try:
            if is_url(path):
                where, action = _build_remote_index(path, args)
            else:
                result = build_full_index(os.fsdecode(path), force=args.force)
                where, action = result.where, result.action
        except (ProxyError, OSError, ValueError) as err:
            failed += 1
            progress.clear()
            print(f"proxylib index: error: {err}", file=sys.stderr, flush=True)
            continue
        progress.clear()
        if where is None:
            echo(f"{path}: index {action}, not saved (cache directory not writable or not "
                 "trusted; see the warning)")
        else:
            echo(f"{path}: index {action}: {where}")
    progress(len(args.files), len(args.files), "done")
    return 1 if failed else 0


def _build_remote_index(url: str, args):
    """Build and save the seek index of a gzipped URL (the whole file is read once)."""
    remote = open_url(url, storage_options(args))
    if not isinstance(remote, RemoteGzipFile):
        raise ValueError(f"{url}: not gzip-compressed, so it needs no seek index")
    key = remote.index_identity()
    had_saved = index_cache.index_path(key).exists()
    if args.force:
        index_cache.discard_index(key)
    else:
        saved = index_cache.load_index(key)
        if saved is not None and saved.complete:
            return index_cache.index_path(key), "reused"
    remote.build_index()
    where = index_cache.index_path(key) if index_cache.load_index(key) is not None else None
    return where, "rebuilt" if had_saved else "built"
