"""ArrayProxy: an array on disk that reads only what a key needs.

``proxy[key]`` flows one way, through :meth:`ArrayProxy.read_selection`:
:func:`~proxylib.indexing.select.select` -> :func:`proxylib.execute.read` (plan with
:func:`~proxylib.indexing.plan.plan_read`, then fetch) -> :func:`~proxylib.scaling.finish_values`
-> the plan's finish. This module wires those steps to a
spec (:class:`~proxylib.spec.ArraySpec`) and a handle policy
(:mod:`proxylib.io.opening`); it does no index arithmetic and no I/O itself.

Files that change while a proxy is open
---------------------------------------
Every access first compares the file with the identity (size, inode, device,
mtime, ctime: :class:`~proxylib.io.identity.FileIdentity`) taken when the proxy
first saw it and raises :class:`~proxylib.FileChangedError` on any difference,
before a byte is read;
a deleted or unreadable file opened per access raises an error that is also a
``FileNotFoundError`` / ``PermissionError``. A kept handle
(``keep_file_open=True``) on a file that was deleted or replaced by rename
keeps returning the old file's (correct) data; a kept memory map is checked
against the path, so there a replacement is a FileChangedError.
tests/test_fault_matrix.py runs every (fault x mmap x keep_file_open x .nii /
.nii.gz) cell in a child process: no cell ends in a signal.

One SIGBUS window remains, and proxylib cannot close it: a full read of an
uncompressed, native-order, unscaled file with ``mmap`` True/``'c'``/``'r'``
and no dtype change (``np.asanyarray(proxy)``, ``np.asarray(proxy)`` (a view
of it), ``proxy.get_unscaled()``) returns a ``np.memmap`` of the file itself.
If the file is truncated while that array or any view of it is alive,
touching a page past the new end of the file kills the process with SIGBUS
(the kernel's answer to a read of a mapped page that no longer has backing;
``'c'`` does not help, a private map shares unwritten pages with the file).
The same holds, for the microseconds of one read, when another process
truncates the file between the fingerprint check and the copy out of a map.
Use ``mmap=False`` (positional reads only, never a map) or copy
(``np.array(proxy, copy=True)``) for files that other programs may shorten
while they are open.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import replace
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from .daskproxy import proxy_token
from .daskproxy import proxy_to_dask as _to_dask
from .errors import SpecError
from .execute import read
from .execute_measured import MeasuredChoice
from .indexing.memo import PlanMemo
from .indexing.normalize import normalize_key
from .indexing.plan import CostModel, ReadPlan, with_runs_for
from .indexing.select import OrthogonalIndexer, VectorizedIndexer, select
from .indexing.selection import AxisRange, Selection
from .io.opening import make_opener
from .io.protocol import Opener
from .io.remote import RemoteFile, is_fsspec_file, is_url, open_url
from .io.streams import FileSeen
from .protocols import is_proxy  # noqa: F401  # re-exported: proxylib.arrayproxy.is_proxy
from .scaling import Conversion, conversion_for, finish_values
from .spec import ArraySpec

#: Used when ``keep_file_open=None``; must be True or False.
KEEP_FILE_OPEN_DEFAULT = False

MMAP_MODES = {True: "c", "c": "c", "r": "r", False: False}

FileLike = Union[str, os.PathLike, Any]


def resolve_mmap(mmap: Any) -> Union[str, bool]:
    """The mmap mode ('c', 'r' or False) for a user's ``mmap`` argument; ValueError if unknown."""
    if isinstance(mmap, np.bool_):
        mmap = bool(mmap)
    if isinstance(mmap, (bool, str)) and mmap in MMAP_MODES:
        return MMAP_MODES[mmap]
    raise ValueError(f"mmap must be one of True, False, 'c' or 'r', not {mmap!r}")


def resolve_keep_file_open(keep_file_open: Any) -> bool:
    """True/False for a user's ``keep_file_open`` (None: the module default); ValueError else."""
    if keep_file_open is None:
        keep_file_open = KEEP_FILE_OPEN_DEFAULT
        if not isinstance(keep_file_open, bool):
            raise ValueError(
                "proxylib.arrayproxy.KEEP_FILE_OPEN_DEFAULT must be True or False, "
                f"not {keep_file_open!r}")
    if not isinstance(keep_file_open, bool):
        raise ValueError(f"keep_file_open must be None, True or False, not {keep_file_open!r}")
    return keep_file_open


def _spec_from(spec: Any, order: str) -> ArraySpec:
    if isinstance(spec, ArraySpec):  # frozen: shared as it is when the order agrees
        return spec if spec.order == order else replace(spec, order=order)
    if isinstance(spec, tuple):
        if not 2 <= len(spec) <= 5:
            raise TypeError(
                "spec tuple must be (shape, dtype[, offset[, slope[, inter]]]), got "
                f"{len(spec)} items")
        shape, dtype, *rest = spec
        fields = dict(zip(("offset", "slope", "inter"), rest))
        return ArraySpec(shape, dtype, order=order, **fields)
    if all(hasattr(spec, name) for name in
           ("get_data_shape", "get_data_dtype", "get_data_offset", "get_slope_inter")):
        slope, inter = spec.get_slope_inter()
        return ArraySpec(spec.get_data_shape(), spec.get_data_dtype(),
                         offset=spec.get_data_offset(), order=order,
                         slope=slope, inter=inter)
    raise TypeError(
        "spec must be a tuple (shape, dtype[, offset[, slope[, inter]]]) or a header "
        "with get_data_shape(), get_data_dtype(), get_data_offset() and "
        f"get_slope_inter(); got {type(spec).__name__}")


class ArrayProxy:
    """Lazy, sliceable view of an array stored in a file.

    Parameters
    ----------
    file_like : str, os.PathLike or file-like
        Path of the file, or an open binary file object with ``read`` and
        ``seek`` (its position is restored after every read).
    spec : tuple or header
        ``(shape, storage_dtype[, offset[, slope[, inter]]])`` or an object
        with ``get_data_shape()``, ``get_data_dtype()``, ``get_data_offset()``
        and ``get_slope_inter()``; read once, here.
    mmap : {True, 'c', 'r', False}
        Whether memory maps may be used ('c' copy-on-write and 'r' read-only
        apply to full reads returned as ``np.memmap``).
    order : {None, 'F', 'C'}
        Storage order; None uses the class attribute ``_default_order``.
    keep_file_open : {None, True, False}
        Keep one handle (and map) for the proxy's life, or open per access.
        None uses ``KEEP_FILE_OPEN_DEFAULT``. No effect for file objects.
    cost : CostModel, optional
        Overrides the byte source's cost model (gap threshold, block size);
        for tuning and benchmarking read strategies.
    storage_options : dict, optional
        For a URL: fsspec options (credentials, endpoint, timeouts); see
        :mod:`proxylib.io.remote`. Refused for anything but a URL.
    seen : FileSeen, optional
        For a path: what opening it for the header found
        (:class:`proxylib.io.streams.FileSeen`, from the open file's ``fstat``).
        The proxy takes its identity from it (a file changed since is a
        :class:`~proxylib.FileChangedError`) instead of a ``stat`` now, and
        does not sniff an uncompressed file again. Ignored for anything else.
    """

    _default_order = "F"

    def __init__(self, file_like: FileLike, spec: Any, *, mmap: Union[bool, str] = True,
                 order: Optional[str] = None, keep_file_open: Optional[bool] = None,
                 cost: Optional[CostModel] = None,
                 storage_options: Optional[Dict[str, Any]] = None,
                 seen: Optional[FileSeen] = None) -> None:
        self._mmap = resolve_mmap(mmap)
        if order is None:
            order = spec.order if isinstance(spec, ArraySpec) else self._default_order
        if order not in ("F", "C"):
            raise ValueError(f"order must be 'F' or 'C', not {order!r}")
        self._keep_file_open = resolve_keep_file_open(keep_file_open)
        self._cost = cost
        self._spec = _spec_from(spec, order)
        if storage_options is not None:
            file_like = _open_with_options(file_like, storage_options)
        self.file_like = file_like
        self._opener = make_opener(file_like, keep_open=self._keep_file_open,
                                   required_size=self._spec.end, use_mmap=bool(self._mmap),
                                   seen=seen)
        self._plans = PlanMemo(self._spec)
        self._measured = MeasuredChoice()

    # -- description ------------------------------------------------------
    @property
    def is_proxy(self) -> bool:
        """Always True (read-only: a proxy cannot be told it holds its data)."""
        return True

    @property
    def spec(self) -> ArraySpec:
        return self._spec

    @property
    def shape(self) -> Tuple[int, ...]:
        return self._spec.shape

    @property
    def ndim(self) -> int:
        return self._spec.ndim

    @property
    def size(self) -> int:
        return self._spec.size

    @property
    def nbytes(self) -> int:
        """Bytes of the full result (``size * dtype.itemsize``), not of the stored data."""
        return self._spec.size * self.dtype.itemsize

    def __len__(self) -> int:
        if not self._spec.shape:
            raise TypeError("len() of unsized object")
        return self._spec.shape[0]

    @property
    def order(self) -> str:
        return self._spec.order

    @property
    def offset(self) -> int:
        return self._spec.offset

    @property
    def slope(self) -> Any:
        return self._spec.slope

    @property
    def inter(self) -> Any:
        return self._spec.inter

    @property
    def storage_dtype(self) -> np.dtype:
        """The dtype of the values as stored in the file."""
        return self._spec.storage_dtype

    @property
    def dtype(self) -> np.dtype:
        """The dtype indexing returns (after scaling, native byte order)."""
        return self._spec.output_dtype

    @property
    def mmap(self) -> Union[str, bool]:
        return self._mmap

    @property
    def keep_file_open(self) -> bool:
        return self._keep_file_open

    @property
    def opener(self) -> Opener:
        """The object owning the file's handle (:class:`~proxylib.io.protocol.Opener`)."""
        return self._opener

    @property
    def cost(self) -> Optional[CostModel]:
        """The cost model given at construction (None: the byte source's own)."""
        return self._cost

    def __repr__(self) -> str:
        scaling = f", slope={self.slope!r}, inter={self.inter!r}" if self._spec.has_scaling else ""
        return (f"{type(self).__name__}({self.file_like!r}, shape={self.shape}, "
                f"storage_dtype={self.storage_dtype}, offset={self.offset}, "
                f"order={self.order!r}{scaling})")

    # -- reading ------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        remembered = self._plans.find(key, self._spec)  # a key structure read before
        if remembered is not None:
            return self.read_selection(None, planned=remembered)
        return self.read_selection(select(key, self._spec.shape), remember=key)

    def read_selection(self, selection: Optional[Selection],
                       conversion: Optional[Conversion] = None, *,
                       planned: Optional[Tuple[ReadPlan, CostModel]] = None,
                       remember: Any = None, copy: Optional[bool] = True) -> Any:
        """Read one normalized key: the single read entry of the proxy.

        ``proxy[key]``, ``oindex``, ``vindex``, ``np.asarray(proxy)``,
        ``get_unscaled`` and dask chunks all come here: plan and read
        (:func:`proxylib.execute.read`), then finish (scale, then the plan's
        in-memory key). ``planned``: instead of a selection, the plan (and
        the cost model it was cut for) that
        :class:`~proxylib.indexing.memo.PlanMemo` remembered for the key's
        structure; ``remember``: the user's key, to remember this plan by.
        ``copy`` (numpy's meaning) for a selection of the whole array: None
        returns a ``np.memmap`` of the file itself when one can be made (an
        uncompressed file, mmap allowed, native byte order, no scaling, no
        dtype change; the byte source's ``array_map``), False demands it
        (ValueError otherwise).
        """
        conversion = self._default_conversion if conversion is None else conversion
        spec = self._spec
        trial = self._measured.trial() if self._mmap and not self._keep_file_open else None
        with trial or nullcontext(), self._opener.source() as source:
            if copy is not True:
                mapped = self._zero_copy(source, selection, conversion)
                if mapped is not None:
                    return mapped
                if copy is False:
                    raise ValueError(
                        f"{self!r} cannot be converted without a copy: a zero-copy result "
                        "needs an uncompressed file, mmap enabled, native byte order, no "
                        "scaling and no dtype change")
            plan = None
            cost = self._cost
            if planned is not None:
                plan, planned_for = planned
                if cost is None and plan.rows is None and plan.dense and (
                        plan.run_bytes == plan.selected_bytes):
                    cost = planned_for  # one run (a volume): no runs to cut, no residency probe
            cost = cost or source.cost
            if plan is not None and planned_for is not cost and planned_for != cost:
                plan = with_runs_for(plan, cost)
            fetched, plan = read(selection, plan, spec, source, cost, conversion,
                                 may_map=bool(self._mmap), map_kept=self._keep_file_open,
                                 trial=trial)
            if remember is not None and plan.rows is None:
                self._plans.add(remember, selection, spec, plan, cost)
        if not conversion.passthrough:
            fetched = finish_values(fetched, conversion)
        return plan.finish(fetched)

    @property
    def _default_conversion(self) -> Conversion:
        conversion = self.__dict__.get("_conversion")
        if conversion is None or conversion[0] is not self._spec:
            conversion = self.__dict__["_conversion"] = (self._spec, conversion_for(self._spec))
        return conversion[1]

    @property
    def oindex(self) -> Any:
        """Orthogonal (outer) selection, as zarr defines it: ``proxy.oindex[[0, 2], :, mask]``.

        One int, slice, 1-d integer array or 1-d boolean array per axis, each
        applied to its own axis (see :class:`~proxylib.indexing.advanced.OrthogonalIndexer`).
        """
        return OrthogonalIndexer(self)

    @property
    def vindex(self) -> Any:
        """Vectorized selection by zarr's name: ``proxy.vindex[key]`` is ``proxy[key]``.

        See :class:`~proxylib.indexing.advanced.VectorizedIndexer`.
        """
        return VectorizedIndexer(self)

    def _zero_copy(self, source: Any, selection: Optional[Selection],
                   conversion: Conversion) -> Optional[np.memmap]:
        """The whole array as a fresh ``np.memmap`` of ``source``, or None if not possible."""
        spec = self._spec
        if not (self._mmap and spec.storage_dtype.isnative and spec.size > 0
                and not conversion.scales and conversion.result_dtype == spec.storage_dtype
                and selection is not None and selection.is_basic
                and selection.items == tuple(AxisRange(0, n, 1) for n in spec.shape)):
            return None
        return source.array_map(spec.storage_dtype, spec.shape, spec.offset, spec.order,
                                self._mmap)

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        return self.read_selection(normalize_key(Ellipsis, self.shape),
                                   conversion_for(self._spec, dtype), copy=copy)

    def get_unscaled(self) -> np.ndarray:
        """The stored values without scaling (a memmap when possible)."""
        return self.read_selection(normalize_key(Ellipsis, self.shape),
                                   conversion_for(self._spec, scaled=False), copy=None)

    # -- derived proxies ----------------------------------------------------
    def _derive(self, spec: ArraySpec) -> "ArrayProxy":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._spec = spec
        new._opener = self._opener.clone()
        new._plans = PlanMemo(spec)
        new._measured = MeasuredChoice()
        return new

    def unscaled(self) -> "ArrayProxy":
        """A proxy on the same bytes that returns the stored values (no slope/inter).

        Like :meth:`copy`, it keeps the file's identity: a file changed since
        this proxy first saw it is still reported, not read under this header.
        """
        return self._derive(replace(self._spec, slope=1.0, inter=0.0))

    def copy(self) -> "ArrayProxy":
        """A proxy with the same file, spec and policies, and its own handle."""
        return self._derive(self._spec)

    def reshape(self, shape: Union[int, Tuple[int, ...]]) -> "ArrayProxy":
        """A proxy viewing the same bytes with another shape (in the proxy's order)."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        unknown = [i for i, n in enumerate(shape) if n == -1]
        if len(unknown) > 1:
            raise ValueError("can only specify one unknown dimension")
        if unknown:
            known = int(np.prod([n for n in shape if n != -1]))
            if known == 0 or self.size % known:
                raise ValueError(
                    f"cannot reshape array of size {self.size} into shape {shape}")
            shape = tuple(self.size // known if n == -1 else n for n in shape)
        try:
            spec = self._spec.with_shape(shape)
        except SpecError as err:
            raise ValueError(str(err)) from None
        if spec.size != self.size:
            raise ValueError(f"cannot reshape array of size {self.size} into shape {shape}")
        return self._derive(spec)

    # -- dask -----------------------------------------------------------------
    def to_dask(self, chunks: Any = None, **kwargs: Any) -> Any:
        """A dask array reading this proxy chunk by chunk (see :func:`proxylib.daskarray.to_dask`)."""
        return _to_dask(self, chunks, **kwargs)

    def __dask_tokenize__(self) -> Any:
        return proxy_token(self)

    # -- handle lifetime ----------------------------------------------------
    def close(self) -> None:
        """Close a kept file handle (it is re-opened if the proxy is read again)."""
        self._opener.close()

    def __enter__(self) -> "ArrayProxy":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_plans"], state["_measured"]  # rebuilt on first use, like the costs
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._plans = PlanMemo(self._spec)
        self._measured = MeasuredChoice()


def _open_with_options(file_like: Any, storage_options: Dict[str, Any]) -> RemoteFile:
    """A URL (or fsspec file) opened with fsspec ``storage_options``; refused for the rest."""
    if isinstance(file_like, RemoteFile) or not (is_url(file_like) or is_fsspec_file(file_like)):
        raise ValueError(f"storage_options apply to URLs, not to {file_like!r} (a RemoteFile "
                         "takes its options from open_url)")
    return open_url(file_like, storage_options)
