"""proxylib: lazy array proxies that read only what a key needs.

``import proxylib`` loads the core (``ArrayProxy``, its spec, errors and cost
model) and nothing optional. Images, formats, loading, gzip index building,
dask and nibabel interop are imported the first time one of their names is
used (PEP 562 module ``__getattr__``), so a script that only slices a raw
file never pays for them; ``benchmarks/import_time.py`` measures the cost.
"""

from importlib import import_module
from typing import Any, List

from .arrayproxy import ArrayProxy, is_proxy
from .errors import (CorruptDataError, DamagedIndexError, EmptyResultError,
                     ExpiredDeprecationError, FileAccessError, FileChangedError, HeaderError,
                     HeaderWarning, ImageFileError, IndexCacheWarning, InflateIntoError,
                     KeySyntaxError, MissingFileError, ProxyError, ProxyIndexError,
                     ProxyReadError, RangeIgnoredError, ResultTooLargeError, SpecError,
                     TooManyOpenFilesError, TransientReadError, TruncatedFileError,
                     UnseekableStreamError, UnsupportedImageError)
from .io.cost import CostModel
from .spec import ArraySpec

__version__ = "0.1.0"

#: Public names imported on first use: name -> module that defines it.
_LAZY = {
    "load": "loading", "save": "loading", "load_url": "loading",
    "Nifti1Image": "formats", "Nifti2Image": "formats",
    "Nifti1Header": "formats", "Nifti2Header": "formats",
    "MGHImage": "formats", "MGHHeader": "formats",
    "AnalyzeImage": "formats", "AnalyzeHeader": "formats",
    "FileHolder": "images", "FileBasedImage": "images", "DataobjImage": "images",
    "build_index": "io.gzip.build", "build_indexes": "io.gzip.build",
    "to_dask": "daskarray",
    "example_path": "examples",
    "from_nibabel": "interop.nibabel", "to_nibabel": "interop.nibabel",
}
#: Subpackages reachable as attributes (``proxylib.formats``) without importing them first.
_SUBMODULES = frozenset({"bench", "cli", "daskarray", "daskproxy", "deprecator", "execute", "formats",
                         "images", "indexing", "interop", "io", "loading", "scaling",
                         "testing"})

__all__ = [
    "ArrayProxy", "ArraySpec", "CostModel", "is_proxy",
    "ProxyError", "ProxyReadError", "ProxyIndexError", "HeaderError", "SpecError",
    "TruncatedFileError", "FileChangedError", "CorruptDataError", "UnseekableStreamError",
    "ExpiredDeprecationError", "ResultTooLargeError", "HeaderWarning",
    "MissingFileError", "FileAccessError", "TooManyOpenFilesError", "DamagedIndexError",
    "ImageFileError", "KeySyntaxError", "EmptyResultError", "IndexCacheWarning",
    "RangeIgnoredError", "TransientReadError", "UnsupportedImageError", "InflateIntoError",
    "deprecator", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'proxylib' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
