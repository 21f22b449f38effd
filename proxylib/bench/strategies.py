"""Every way of reading a file that the benchmark compares.

A :class:`Strategy` opens a *target* (something indexable with the
workloads' keys) and may reset state between rounds (to simulate a fresh
process for gzip index strategies). Peers are included when they apply:
``numpy.memmap`` for uncompressed files, nibabel when it is installed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, List, Optional

import numpy as np

from ..io.gzip import source as gzip_module
from ..io.gzip.build import build_index
from ..io.streams import stream_size
from ..loading import load
from .cold import RawTarget


@dataclass
class Strategy:
    name: str
    family: str                      # "proxylib", "numpy.memmap" or "nibabel"
    open: Callable[[], Any]          # returns a target
    reset: Callable[[], None] = field(default=lambda: None)
    settings: dict = field(default_factory=dict)
    #: Open a new target before every round, like a fresh process (gzip files:
    #: what a saved index is for). Opening is not timed; the read is.
    fresh_each_round: bool = False


def materialize(values: Any) -> np.ndarray:
    """An in-memory array: full reads that come back memory-mapped are copied,
    so every strategy's "full read" ends with the data in memory."""
    array = np.asanyarray(values)
    return array if array.flags.owndata else np.array(array, copy=True)


class ProxyTarget:
    """proxylib: slicing through ``img.dataobj``; full read as float32."""

    def __init__(self, image):
        self.image = image

    def read(self, workload):
        if workload.kind == "full":
            return materialize(np.asarray(self.image.dataobj, dtype=np.float32))
        return self.image.dataobj[workload.key]

    def close(self):
        close = getattr(self.image.dataobj, "close", None)
        if close is not None:
            close()


class MemmapTarget:
    """numpy.memmap: one kept map, or a fresh map per access."""

    def __init__(self, path, shape, dtype, offset, scaling, kept):
        self.args = (path, dtype, "r", offset, shape)
        self.scaling = scaling
        self.kept = np.memmap(*self.args, order="F") if kept else None

    def _map(self):
        return self.kept if self.kept is not None else np.memmap(*self.args, order="F")

    def read(self, workload):
        mapped = self._map()
        if workload.kind == "full":
            values = np.array(mapped, dtype=np.float32)
        else:
            values = np.array(mapped[workload.key])
        slope, inter = self.scaling
        return values if (slope, inter) == (1, 0) else values * slope + inter

    def close(self):
        self.kept = None


class NibabelTarget:
    """nibabel: ``dataobj[key]`` for basic keys, its only way for a mask, get_fdata for full."""

    def __init__(self, path, keep_file_open):
        import nibabel
        self.image = nibabel.load(path, keep_file_open=keep_file_open)

    def read(self, workload):
        if workload.kind == "full":
            return materialize(self.image.get_fdata(dtype=np.float32, caching="unchanged"))
        if isinstance(workload.key, np.ndarray):
            return self.image.get_fdata(dtype=np.float32, caching="unchanged")[workload.key]
        return self.image.dataobj[workload.key]

    def close(self):
        pass


def remote_strategy(url: str, storage_options: Optional[dict] = None) -> Strategy:
    """proxylib over a URL: a fresh load each round (a new process's first read)."""
    return Strategy("proxylib remote", "proxylib",
                    open=lambda: ProxyTarget(load(url, storage_options=storage_options)),
                    settings={"url": url}, fresh_each_round=True)


def is_gzip(path: str) -> bool:
    return stream_size(path)[1] == "gzip"


@contextmanager
def gzip_cache(path: str, saved: bool) -> Iterator[Callable[[], None]]:
    """A private index cache; yields the reset to run before each round.

    ``saved``: the index is built and saved once, and each round starts like
    a fresh process that finds it. Otherwise each round starts with no index.
    The reset points ``PROXYLIB_CACHE_DIR`` at this cache, so several of these
    can be open at once, each strategy reading only its own.
    """
    directory = tempfile.mkdtemp(prefix="proxylib-bench-cache-")
    previous = os.environ.get("PROXYLIB_CACHE_DIR")
    os.environ["PROXYLIB_CACHE_DIR"] = directory
    built = []
    try:
        def reset():
            os.environ["PROXYLIB_CACHE_DIR"] = directory
            if saved and not built:   # built in the first round: a failure is that strategy's
                build_index(path)
                built.append(True)
            gzip_module.STATES.clear()
            if not saved:
                shutil.rmtree(directory, ignore_errors=True)
                os.makedirs(directory, exist_ok=True)
        yield reset
    finally:
        if previous is None:
            os.environ.pop("PROXYLIB_CACHE_DIR", None)
        else:
            os.environ["PROXYLIB_CACHE_DIR"] = previous
        shutil.rmtree(directory, ignore_errors=True)


def proxylib_strategies(path: str, reset: Callable[[], None] = lambda: None,
                        label: str = "", fresh_each_round: bool = False,
                        compressed: bool = False) -> List[Strategy]:
    """Every mmap x keep_file_open setting; for a compressed file, where mmap has no
    effect (data is decompressed, never mapped), keep_file_open only, named without mmap."""
    out = []
    for mmap in (None,) if compressed else ("c", "r", False):
        for keep in (True, False):
            mode = "" if mmap is None else f" mmap={mmap!r}"
            settings = {"keep_file_open": keep} if mmap is None else {"mmap": mmap,
                                                                      "keep_file_open": keep}
            out.append(Strategy(
                f"proxylib{label}{mode} keep={keep}", "proxylib",
                lambda settings=settings: ProxyTarget(load(path, **settings)),
                reset, settings, fresh_each_round))
    return out


def peer_strategies(path: str, compressed: bool) -> List[Strategy]:
    out = []
    if not compressed:
        image = load(path)
        proxy = image.dataobj
        spec = proxy.spec
        data_path = os.fspath(proxy.file_like)  # the .img of a pair, not the header
        if proxy.order == "F" and len(spec.shape) == 4:
            out.append(Strategy("raw floor (pread)", "raw",
                                lambda: RawTarget(data_path, spec.shape, spec.storage_dtype,
                                                  spec.offset)))
        if spec.storage_dtype.isnative and proxy.order == "F":
            for kept in (True, False):
                out.append(Strategy(
                    f"numpy.memmap {'kept' if kept else 'fresh'}", "numpy.memmap",
                    lambda kept=kept: MemmapTarget(data_path, spec.shape, spec.storage_dtype,
                                                   spec.offset, (spec.slope, spec.inter), kept)))
    try:
        import nibabel  # noqa: F401
    except ImportError:
        return out
    for keep in (True, False):
        out.append(Strategy(f"nibabel{' gz' if compressed else ''} keep={keep}", "nibabel",
                            lambda keep=keep: NibabelTarget(path, keep),
                            fresh_each_round=compressed))
    return out
