"""proxylib: lazy array proxies that read only what a key needs."""

from .arrayproxy import ArrayProxy, is_proxy
from .errors import (CorruptDataError, DamagedIndexError, EmptyResultError,
                     ExpiredDeprecationError, FileAccessError, FileChangedError, HeaderError,
                     HeaderWarning, ImageFileError, IndexCacheWarning, KeySyntaxError,
                     MissingFileError, ProxyError, ProxyIndexError, ProxyReadError,
                     RangeIgnoredError, ResultTooLargeError, SpecError, TooManyOpenFilesError,
                     TransientReadError, TruncatedFileError, UnseekableStreamError)
from .spec import ArraySpec

__version__ = "0.1.0"

__all__ = [
    "ArrayProxy", "ArraySpec", "is_proxy",
    "ProxyError", "ProxyReadError", "ProxyIndexError", "HeaderError", "SpecError",
    "TruncatedFileError", "FileChangedError", "CorruptDataError", "UnseekableStreamError",
    "ExpiredDeprecationError", "ResultTooLargeError", "HeaderWarning",
    "MissingFileError", "FileAccessError", "TooManyOpenFilesError", "DamagedIndexError",
    "ImageFileError", "KeySyntaxError", "EmptyResultError", "IndexCacheWarning",
    "RangeIgnoredError", "TransientReadError",
]
from . import deprecator
from .images import DataobjImage, FileBasedImage, FileHolder
from .formats import Nifti1Header, Nifti1Image, Nifti2Header, Nifti2Image
from .loading import load, save
from .formats import AnalyzeHeader, AnalyzeImage, MGHHeader, MGHImage
__all__ += ["MGHImage", "MGHHeader", "AnalyzeImage", "AnalyzeHeader"]
from .examples import example_path  # the example image installed with the package
__all__ += ["example_path"]
__all__ += ["load", "save", "Nifti1Image", "Nifti2Image", "Nifti1Header", "Nifti2Header",
            "FileHolder", "FileBasedImage", "DataobjImage", "deprecator"]
from .io.index_build import build_index, build_indexes  # gzip seek indexes (proxylib index)
__all__ += ["build_index", "build_indexes"]
from .daskarray import to_dask  # dask is imported only when called
__all__ += ["to_dask"]
