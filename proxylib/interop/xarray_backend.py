"""The xarray backend: ``xarray.open_dataarray('bold.nii.gz', engine='proxylib')``.

Registered under the ``xarray.backends`` entry point group (``pip install
'proxylib[xarray]'``). Opening reads the header only; the data stays in the
image's :class:`~proxylib.ArrayProxy` until ``.values`` (or ``.load()``,
``.compute()``) asks for it:

* dimensions are ``x, y, z, t`` (then ``u, v, w``), the NIfTI axis names;
* where the affine's 3x3 part is diagonal, ``x``/``y``/``z`` get world
  coordinates (``affine[i, i] * index + affine[i, 3]``) and ``t`` gets
  ``index * zooms[3]``; otherwise only ``t`` is a coordinate and the affine
  is in ``attrs['affine']`` (it always is);
* header fields go into ``attrs`` as plain Python values (bytes decoded);
* xarray's basic keys go to ``proxy[key]``, its outer keys to
  ``proxy.oindex[key]`` and its vectorized keys to ``proxy.vindex[key]``, so
  a selection reads only what it needs;
* ``chunks=`` gives a dask array whose tasks read their chunk through the
  (picklable) proxy.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np
from xarray import DataArray, Dataset, Variable
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from ..loading import load
from ..protocols import is_proxy

#: Dimension names, in axis order (the NIfTI standard's names for dim[1..7]).
DIMS = ("x", "y", "z", "t", "u", "v", "w")
#: File names this engine claims when xarray guesses an engine.
EXTENSIONS = (".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz", ".mgh", ".mgz",
              ".nii.bz2", ".nii.zst")


class ProxyBackendArray(BackendArray):
    """An xarray backend array over a proxy: the key kinds map to proxylib's reads."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self.shape = tuple(proxy.shape)
        self.dtype = np.dtype(proxy.dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        proxy = self.proxy
        if isinstance(key, indexing.BasicIndexer):
            return np.asarray(proxy[key.tuple])
        if isinstance(key, indexing.OuterIndexer):
            return np.asarray(proxy.oindex[key.tuple])
        if isinstance(key, indexing.VectorizedIndexer):
            return _vectorized(proxy, key.tuple)
        raise TypeError(f"unexpected xarray indexer {type(key).__name__}")


def _vectorized(proxy: Any, key: Tuple[Any, ...]) -> np.ndarray:
    """xarray's vectorized result: the broadcast index dims first, then the sliced ones.

    ``proxy.vindex`` follows numpy, which keeps the broadcast dims in place
    when the arrays are adjacent; xarray always wants them first.
    """
    result = np.asarray(proxy.vindex[key])
    positions = [i for i, item in enumerate(key) if not isinstance(item, slice)]
    if not positions or positions != list(range(positions[0], positions[-1] + 1)):
        return result
    ndim = len(np.broadcast_shapes(*(np.shape(key[i]) for i in positions)))
    return np.moveaxis(result, list(range(positions[0], positions[0] + ndim)),
                       list(range(ndim)))


def _plain(value: Any) -> Any:
    """A header field as a Python value xarray attrs (and netCDF) can hold."""
    value = np.asarray(value)
    if value.dtype.kind == "S":
        items = [v.decode("latin-1").rstrip("\x00") for v in value.ravel().tolist()]
        return items[0] if value.ndim == 0 else items
    if value.dtype.fields is not None:
        return None
    return value.item() if value.ndim == 0 else value.tolist()


def header_attrs(header: Any) -> Dict[str, Any]:
    """Every header field as a plain value (``descrip``, ``pixdim``, codes, ...)."""
    attrs: Dict[str, Any] = {}
    keys = getattr(header, "keys", None)
    if not callable(keys):
        return attrs
    for name in keys():
        value = _plain(header[name])
        if value is not None:
            attrs[name] = value
    return attrs


def _is_diagonal(affine: np.ndarray) -> bool:
    rotation = affine[:3, :3]
    return bool(np.all(rotation == np.diag(np.diag(rotation))))


def coordinates(shape: Tuple[int, ...], affine: Optional[np.ndarray],
                zooms: Iterable[float]) -> Dict[str, np.ndarray]:
    """World coordinates per spatial axis where the affine is diagonal; time from zooms."""
    coords: Dict[str, np.ndarray] = {}
    zooms = tuple(zooms)
    if affine is not None and _is_diagonal(affine):
        for axis in range(min(3, len(shape))):
            coords[DIMS[axis]] = affine[axis, axis] * np.arange(shape[axis]) + affine[axis, 3]
    if len(shape) > 3 and len(zooms) > 3 and zooms[3] > 0:
        coords["t"] = zooms[3] * np.arange(shape[3])
    return coords


def image_to_dataarray(img: Any, name: Optional[str] = None) -> DataArray:
    """A lazy DataArray over a proxylib image (header read, data not)."""
    shape = tuple(img.shape)
    if len(shape) > len(DIMS):
        raise ValueError(f"{len(shape)} dimensions; the xarray engine names at most "
                         f"{len(DIMS)}")
    dims = DIMS[:len(shape)]
    data: Any = img.dataobj
    if is_proxy(data):
        data = indexing.LazilyIndexedArray(ProxyBackendArray(data))
    affine = getattr(img, "affine", None)
    header = img.header
    zooms = header.get_zooms() if hasattr(header, "get_zooms") else ()
    attrs = header_attrs(header)
    if affine is not None:
        attrs["affine"] = np.asarray(affine).tolist()
    filename = img.get_filename() if hasattr(img, "get_filename") else None
    if filename is not None:
        attrs["source"] = filename
    variable = Variable(dims, data, attrs=attrs)
    return DataArray(variable, coords=coordinates(shape, affine, zooms), name=name)


class ProxylibBackendEntrypoint(BackendEntrypoint):
    """``engine='proxylib'``: NIfTI-1/2 (single, pair, gzipped), MGH/MGZ and ANALYZE."""

    description = "Lazy NIfTI, MGH/MGZ and ANALYZE images read with proxylib"
    url = "https://github.com/proxylib/proxylib#xarray"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "mmap", "keep_file_open",
                               "name")

    def open_dataset(self, filename_or_obj: Any, *, drop_variables: Any = None,
                     mmap: Any = True, keep_file_open: Optional[bool] = None,
                     name: Optional[str] = None) -> Dataset:
        img = load(filename_or_obj, mmap=mmap, keep_file_open=keep_file_open)
        if name is None:
            name = _variable_name(filename_or_obj)
        array = image_to_dataarray(img, name=name)
        dataset = array.to_dataset()
        if drop_variables:
            dataset = dataset.drop_vars(drop_variables, errors="ignore")
        return dataset

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            return False
        return os.fsdecode(os.fspath(filename_or_obj)).lower().endswith(EXTENSIONS)


def _variable_name(filename_or_obj: Any) -> str:
    """``bold`` for ``.../bold.nii.gz``: the file name without its extensions."""
    if not isinstance(filename_or_obj, (str, os.PathLike)):
        return "data"
    base = os.path.basename(os.fsdecode(os.fspath(filename_or_obj)))
    for suffix in sorted(EXTENSIONS, key=len, reverse=True):
        if base.lower().endswith(suffix):
            return base[:-len(suffix)] or "data"
    return base or "data"


__all__ = ["ProxylibBackendEntrypoint", "ProxyBackendArray", "image_to_dataarray",
           "coordinates", "header_attrs", "DIMS"]
