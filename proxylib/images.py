"""The image facade: which files make an image (:class:`FileBasedImage`, their
holders in :mod:`proxylib.fileholder`) and what ``get_fdata`` caches
(:class:`DataobjImage`).

Reading, slicing and scaling belong to the proxy in ``img.dataobj``; this
module decides only caching and float conversion:

* ``img.get_fdata()`` (``caching='fill'``) reads the proxy once, keeps the
  array, and returns that same object to every later call with the same
  dtype, so changes the caller makes to it show up in later calls;
* a call with another dtype reads again (and, with ``'fill'``, replaces the
  cache); ``caching='unchanged'`` never fills an empty cache;
* ``img.uncache()`` drops the cache (the next call reads again) unless
  ``dataobj`` is a numpy array; ``img.in_memory`` is True for a numpy array or
  a filled cache;
* values are scaled in the requested dtype (``np.asarray(proxy, dtype=...)``),
  so ``get_fdata(dtype=np.float32)`` never holds a float64 copy.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Tuple, Union

import numpy as np

from .arrayproxy import resolve_keep_file_open, resolve_mmap
from .daskproxy import proxy_to_dask
from .errors import ExpiredDeprecationError, ImageFileError
from .protocols import is_proxy

from .fileholder import (COMPRESSED_SUFFIXES, GZIP_COMPRESSLEVEL,  # noqa: F401 (re-exported)
                         MAX_DEFLATE_RATIO, FileHolder, FileMap, FileSpec, in_case_of,
                         sibling_name, split_filename, split_name)


class FileBasedImage:
    """An image made of one or more files, described by a header.

    Subclasses set ``header_class``, ``files_types`` (pairs of file type and
    extension, the first one naming the image) and ``valid_exts``, and
    implement :meth:`from_file_map` and :meth:`to_file_map`.
    """

    header_class: Any = None
    files_types: Tuple[Tuple[str, str], ...] = (("image", ""),)
    valid_exts: Tuple[str, ...] = ()

    def __init__(self, header: Any = None, extra: Optional[Mapping] = None,
                 file_map: Optional[FileMap] = None) -> None:
        if self.header_class is not None:
            header = self.header_class.from_header(header)
        self._header = header
        self.extra = dict(extra) if extra is not None else {}
        self.file_map = file_map if file_map is not None else self.make_file_map()

    @property
    def header(self) -> Any:
        return self._header

    # -- file names -------------------------------------------------------------
    def get_filename(self) -> Optional[str]:
        """The name of the file that identifies the image (its first file type)."""
        return self.file_map[self.files_types[0][0]].filename

    def set_filename(self, filename: FileSpec) -> None:
        """Point every file of the image at names derived from ``filename``."""
        self.file_map = self.filespec_to_file_map(filename)

    @classmethod
    def make_file_map(cls, mapping: Optional[Mapping[str, Any]] = None) -> FileMap:
        """One :class:`FileHolder` per file type; ``mapping`` gives names or file objects."""
        mapping = mapping or {}
        file_map = {}
        for kind, _ in cls.files_types:
            value = mapping.get(kind)
            if value is None or isinstance(value, (str, bytes, os.PathLike)):
                file_map[kind] = FileHolder(filename=value)
            else:
                file_map[kind] = FileHolder(fileobj=value)
        return file_map

    @classmethod
    def filespec_to_file_map(cls, filespec: FileSpec) -> FileMap:
        """File holders for every file type, named after ``filespec``'s base name.

        ``filespec`` must end in one of the ``files_types`` extensions or of
        ``valid_exts`` (any case, optionally + ``.gz``). Other files of the image
        get their own extension in the case ``filespec`` uses; a valid extension
        that is not a ``files_types`` one names the first file as given.
        """
        name = os.fsdecode(os.fspath(filespec))
        _, ext, _ = split_filename(name)
        own = {e.lower(): kind for kind, e in cls.files_types}
        accepted = sorted(set(own) | {e.lower() for e in cls.valid_exts})
        if ext not in accepted:
            raise ImageFileError(
                f"{name}: a {cls.__name__} file name must end in one of the extensions "
                f"{accepted} (optionally + {' or '.join(COMPRESSED_SUFFIXES)}), not "
                f"{ext or 'no extension'!r}")
        given_kind = own.get(ext, cls.files_types[0][0])
        return {kind: FileHolder(filename=name if kind == given_kind else sibling_name(name, e))
                for kind, e in cls.files_types}

    # -- loading and saving ---------------------------------------------------------
    @classmethod
    def from_file_map(cls, file_map: FileMap, **kwargs: Any) -> "FileBasedImage":
        raise NotImplementedError(f"{cls.__name__} cannot read files")

    @classmethod
    def from_filename(cls, filename: FileSpec, **kwargs: Any) -> "FileBasedImage":
        return cls.from_file_map(cls.filespec_to_file_map(filename), **kwargs)

    @classmethod
    def load(cls, filename: FileSpec, **kwargs: Any) -> "FileBasedImage":
        """Same as :meth:`from_filename`."""
        return cls.from_filename(filename, **kwargs)

    def to_file_map(self, file_map: Optional[FileMap] = None) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot write files")

    def to_filename(self, filename: FileSpec) -> None:
        """Write the image to ``filename`` (and its sibling files) and remember the names:
        ``get_filename()`` then returns ``filename``."""
        file_map = self.filespec_to_file_map(filename)
        self.to_file_map(file_map)
        self.file_map = file_map




def check_load_options(mmap: Any, keep_file_open: Any) -> None:
    """Raise ``ValueError`` for an ``mmap`` or ``keep_file_open`` the proxy does not know.

    The proxy's own rules, applied before any file is opened.
    """
    resolve_mmap(mmap)
    resolve_keep_file_open(keep_file_open)


class DataobjImage(FileBasedImage):
    """An image whose data is ``dataobj``: an array, or a proxy read on demand."""

    def __init__(self, dataobj: Any, header: Any = None, extra: Optional[Mapping] = None,
                 file_map: Optional[FileMap] = None) -> None:
        super().__init__(header=header, extra=extra, file_map=file_map)
        self._dataobj = dataobj
        self._fdata_cache: Optional[np.ndarray] = None

    @property
    def dataobj(self) -> Any:
        """The array or proxy holding the data (read-only attribute)."""
        return self._dataobj

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self._dataobj.shape)

    @property
    def ndim(self) -> int:
        return len(self._dataobj.shape)

    @property
    def in_memory(self) -> bool:
        """True when ``dataobj`` is a numpy array, or once ``get_fdata`` has filled the cache.

        Any other data object (a proxy, a dask, zarr or h5py array) has not
        been read, so it is not in memory until the cache holds its values.
        """
        return isinstance(self._dataobj, np.ndarray) or self._fdata_cache is not None

    def get_fdata(self, caching: str = "fill", dtype: Any = np.float64) -> np.ndarray:
        """The data as a floating-point (or complex) array, cached as ``caching`` says.

        Parameters
        ----------
        caching : {'fill', 'unchanged'}
            'fill' keeps what is read for later calls; 'unchanged' returns the
            cache when it holds ``dtype`` and otherwise reads without keeping.
        dtype : floating or complex dtype
            The dtype returned; scaling is computed in it.
        """
        if caching not in ("fill", "unchanged"):
            raise ValueError(f"caching must be 'fill' or 'unchanged', not {caching!r}")
        dtype = np.dtype(dtype)
        if not issubclass(dtype.type, np.inexact):
            raise ValueError(f"dtype must be a floating-point or complex type, not {dtype}")
        if self._fdata_cache is not None and self._fdata_cache.dtype == dtype:
            return self._fdata_cache
        source_dtype = getattr(self._dataobj, "dtype", None)
        if source_dtype is not None and np.dtype(source_dtype).fields is not None:
            raise ValueError(
                f"data of structured dtype {source_dtype} (e.g. RGB) has no floating-point "
                "form; read it with np.asarray(img.dataobj)")
        data = np.asanyarray(self._dataobj, dtype=dtype)
        if caching == "fill":
            self._fdata_cache = data
        return data

    def uncache(self) -> None:
        """Drop the cached data, unless ``dataobj`` is a numpy array (then no effect)."""
        if not isinstance(self._dataobj, np.ndarray):
            self._fdata_cache = None

    def __repr__(self) -> str:
        kind = "proxy" if is_proxy(self._dataobj) else type(self._dataobj).__name__
        dtype = getattr(self._dataobj, "dtype", None)
        return (f"{type(self).__name__}(shape={self.shape}, dtype={dtype}, {kind} data, "
                f"file={self.get_filename()!r})")

    def to_dask(self, chunks: Any = None, **kwargs: Any) -> Any:
        """``img.dataobj`` as a dask array (see :func:`proxylib.daskarray.to_dask`)."""
        return proxy_to_dask(self, chunks, **kwargs)

    def get_data(self, *args: Any, **kwargs: Any) -> None:
        """Removed: raises :class:`~proxylib.ExpiredDeprecationError`."""
        raise ExpiredDeprecationError(
            "get_data() was removed; use img.get_fdata() for floating-point data, or "
            "np.asanyarray(img.dataobj) for the values in their stored type")

    @classmethod
    def from_file_map(cls, file_map: FileMap, *, mmap: Union[bool, str] = True,
                      keep_file_open: Optional[bool] = None) -> "DataobjImage":
        raise NotImplementedError(f"{cls.__name__} cannot read files")

    @classmethod
    def from_filename(cls, filename: FileSpec, *, mmap: Union[bool, str] = True,
                      keep_file_open: Optional[bool] = None) -> "DataobjImage":
        """Load ``filename``; ``mmap`` and ``keep_file_open`` go to the proxy."""
        check_load_options(mmap, keep_file_open)
        return cls.from_file_map(cls.filespec_to_file_map(filename), mmap=mmap,
                                 keep_file_open=keep_file_open)

    load = from_filename
