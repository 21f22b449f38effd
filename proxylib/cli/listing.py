"""``proxylib ls FILE...``: one line per image; ``-s`` statistics, ``-v`` header and affine."""

from __future__ import annotations

import os
from typing import Tuple

import numpy as np

from ..io.identity import FileIdentity
from ..io.gzip.index_cache import load_index
from ..io.streams import open_regular, stream_size
from .output import echo
from .progress import Progress
from .urls import add_storage_options, load_any

#: Bytes of output values one statistics block may hold.
STATS_BLOCK_BYTES = 64 << 20


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "ls", help="describe images",
        description="One line per image: shape, storage and output dtype, zooms, scaling, "
                    "compression and whether a saved gzip index exists.")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("-s", "--stats", action="store_true",
                        help="add min/max/mean, computed in bounded blocks")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the header fields and the affine")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_storage_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    progress = Progress(quiet=args.quiet)
    for path in args.files:
        image = load_any(path, args)
        echo(describe(path, image))
        if args.stats and image.dataobj.dtype.fields is not None:
            print(f"  statistics: not computed for {image.dataobj.dtype} records "
                  "(e.g. RGB); view them as numbers first")
        elif args.stats:
            low, high, mean = block_stats(image.dataobj, progress)
            print(f"  min={low:.6g} max={high:.6g} mean={mean:.6g}")
        if args.verbose:
            for name in image.header.keys():
                print(f"  {name:16s} {_format(image.header[name])}")
            print("  affine:")
            for row in np.asarray(image.affine):
                print("    " + " ".join(f"{v:10.4f}" for v in row))
    return 0


def describe(path: str, image) -> str:
    proxy = image.dataobj
    spec = proxy.spec
    zooms = "x".join(f"{z:g}" for z in image.header.get_zooms())
    scaling = f"slope={spec.slope:g} inter={spec.inter:g}" if spec.has_scaling else "no scaling"
    index = ""
    remote = getattr(proxy.file_like, "url", None)
    if remote is not None:  # a URL: no local file to look at
        compression = "gzip" if hasattr(proxy.file_like, "index_identity") else "uncompressed"
        if compression == "gzip":
            saved = load_index(proxy.file_like.index_identity()) is not None
            index = ", saved index" if saved else ", no saved index"
    else:
        data_path = os.fspath(proxy.file_like)  # a pair's .img, where the data (and index) are
        compression = _compression(data_path)
        if compression == "gzip":
            index = ", saved index" if _has_saved_index(data_path) else ", no saved index"
    return (f"{path}: {type(image).__name__} shape={spec.shape} "
            f"storage={spec.storage_dtype} output={proxy.dtype} zooms={zooms} {scaling} "
            f"{compression}{index}")


#: How ``ls`` names what :func:`proxylib.io.sniff.compression_of` finds.
COMPRESSION_NAMES = {"gzip": "gzip", "bz2": "bzip2", "zstd": "zstd", None: "uncompressed"}


def _compression(data_path: str) -> str:
    return COMPRESSION_NAMES[stream_size(data_path)[1]]


def _has_saved_index(path: str) -> bool:
    fd = open_regular(path)
    try:
        return load_index(FileIdentity.of_descriptor(fd)) is not None
    finally:
        os.close(fd)


def block_stats(proxy, progress=None) -> Tuple[float, float, float]:
    """min, max and mean of the scaled values, reading one block of the slowest axis at a time."""
    shape = proxy.shape
    if proxy.size == 0:
        return float("nan"), float("nan"), float("nan")
    slow_axis = len(shape) - 1 if proxy.order == "F" else 0
    per_index = proxy.size // shape[slow_axis] * proxy.dtype.itemsize
    step = max(1, STATS_BLOCK_BYTES // max(per_index, 1))
    low, high, total, count = np.inf, -np.inf, 0.0, 0
    for start in range(0, shape[slow_axis], step):
        if progress is not None:
            progress(start, shape[slow_axis], "statistics")
        key = [slice(None)] * len(shape)
        key[slow_axis] = slice(start, start + step)
        block = np.asarray(proxy[tuple(key)])
        if block.dtype.kind == "c":
            block = np.abs(block)
        finite = block[np.isfinite(block)] if block.dtype.kind == "f" else block
        if finite.size:
            low = min(low, float(finite.min()))
            high = max(high, float(finite.max()))
            total += float(finite.sum(dtype=np.float64))
            count += finite.size
    if progress is not None:
        progress(shape[slow_axis], shape[slow_axis], "statistics")
    return low, high, (total / count if count else float("nan"))


def _format(value) -> str:
    array = np.asarray(value)
    if array.dtype.kind == "S":
        return repr(array.item())
    if array.ndim == 0:
        return str(array.item())
    return np.array2string(array, max_line_width=120, separator=" ")
