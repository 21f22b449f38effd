"""Where the files of an image are: :class:`FileHolder` (a file name, an open file
object, or both) and the rules for file names (case kept, suffixes compared
case-insensitively).

A holder opens its content for reading through :mod:`proxylib.io.streams`,
sniffed by :func:`proxylib.io.sniff.sniff` like the proxy's own reads,
and for writing through :func:`proxylib.io.atomic.replacing`.
"""

from __future__ import annotations

import gzip
import os
from contextlib import contextmanager
from typing import Any, Dict, IO, Iterator, NamedTuple, Optional, Tuple, Union

from .errors import ImageFileError, MissingFileError
from .io.atomic import replacing
from .io.sniff import SNIFF_HEAD, sniff
from .io.streams import FileSeen, look_at, open_stream, wrap_fileobj

FileSpec = Union[str, os.PathLike, bytes]
COMPRESSED_SUFFIXES = (".gz",)
#: zlib level for ``.gz`` files proxylib writes (1: fast, most of the size gain).
GZIP_COMPRESSLEVEL = 1
#: Upper bound of deflate's compression ratio (zlib's documented limit is 1032:1).
MAX_DEFLATE_RATIO = 1032


class DataFile(NamedTuple):
    """What a data file holds, for the size check, and what a proxy of it starts from."""

    #: Bytes of content, or at most (see ``upper_bound``); None: unknown without reading it all.
    available: Optional[int]
    #: True when ``available`` only bounds the content (a gzip file's compressed size x 1032).
    upper_bound: bool
    #: A path's ``fstat`` and sniff (None for a file object).
    seen: Optional[FileSeen] = None


def _content_bound(seen: FileSeen) -> Tuple[Optional[int], bool]:
    if seen.compression == "gzip":
        return seen.size * MAX_DEFLATE_RATIO, True
    if seen.compression is not None:
        return None, False
    return seen.size, False


class FileHolder:
    """Where one file of an image lives: a file name, an open file object, or both.

    Parameters
    ----------
    filename : str or os.PathLike, optional
    fileobj : file-like, optional
        Used instead of ``filename`` when given.
    pos : int
        Byte position in ``fileobj`` where the file's content starts.
    """

    def __init__(self, filename: Optional[FileSpec] = None, fileobj: Any = None,
                 pos: int = 0) -> None:
        self.filename = None if filename is None else os.fsdecode(os.fspath(filename))
        self.fileobj = fileobj
        self.pos = pos
        self._readable: Any = None

    @property
    def file_like(self) -> Any:
        """What a proxy reads: the file name, else the file object, decompressed
        (and then from its start) when its bytes at ``pos`` are gzip, bzip2 or
        Zstandard, as a file of that name would be."""
        if self.fileobj is None:
            return self.filename
        if self._readable is None or self._readable[0] is not self.fileobj:
            self._readable = (self.fileobj, self._decompressed_fileobj())
        return self._readable[1]

    def _decompressed_fileobj(self) -> Any:
        fileobj = self.fileobj
        try:
            fileobj.seek(self.pos)
            head = fileobj.read(SNIFF_HEAD)
            fileobj.seek(self.pos)
        except (AttributeError, OSError, ValueError):
            return fileobj  # not seekable or readable: the proxy says what is wrong
        codec = sniff(head)
        if codec is None:
            return fileobj
        if self.pos:
            raise ImageFileError(
                f"{_name_of(fileobj)}: the bytes at position {self.pos} are {codec.name}-"
                "compressed; a compressed file object is read from its start, so pass "
                "pos=0 or a decompressing reader (e.g. gzip.GzipFile)")
        return codec.factory(fileobj)

    def data_size(self) -> Tuple[Optional[int], bool]:
        """(bytes the file's content holds or at most holds, whether only an upper bound).

        ``(None, False)`` when the size cannot be known without reading it all
        (a bzip2 or Zstandard file, a decompressing file object); the proxy
        then checks each read instead.
        """
        available, upper_bound, _ = self.data_file()
        return available, upper_bound

    def data_file(self, opened: Any = None) -> DataFile:
        """:meth:`data_size` and, for a path, what opening the file found.

        ``opened``: a stream from :meth:`open_for_read`; when it is of this
        holder's file (a single-file image's header stream), its ``fstat`` and
        sniff are used instead of opening the file again.
        """
        self._require()
        if self.fileobj is not None:
            return DataFile(*self._fileobj_size())
        seen = getattr(opened, "seen", None)
        if seen is None or opened.name != self.filename:
            try:
                seen = look_at(self.filename)
            except MissingFileError as err:
                raise MissingFileError(
                    f"{self.filename}: the image data file does not exist (a .hdr needs its "
                    ".img next to it)", path=self.filename) from err
        return DataFile(*_content_bound(seen), seen)

    def _fileobj_size(self) -> Tuple[Optional[int], bool]:
        readable = self.file_like
        if readable is not self.fileobj or type(readable).__module__.split(".")[0] in (
                "gzip", "bz2", "indexed_gzip", "zstandard", "compression"):
            return None, False
        try:
            position = readable.tell()
            end = readable.seek(0, os.SEEK_END)
            readable.seek(position)
        except (OSError, AttributeError, ValueError):
            return None, False
        return end, False

    def same_file_as(self, other: "FileHolder") -> bool:
        """True when both holders name the same file name and file object."""
        return self.filename == other.filename and self.fileobj is other.fileobj

    def describe(self) -> str:
        """The name to put in messages: the file object's name, else the file name."""
        if self.fileobj is not None:
            return getattr(self.fileobj, "name", None) or repr(self.fileobj)
        return self.filename or "<no file>"

    def __repr__(self) -> str:
        return f"FileHolder(filename={self.filename!r}, fileobj={self.fileobj!r}, pos={self.pos})"

    def _require(self) -> None:
        if self.fileobj is None and self.filename is None:
            raise ImageFileError("this FileHolder names no file and holds no file object; "
                                 "set a file name first (img.set_filename(...))")

    @contextmanager
    def open_for_read(self) -> Iterator[IO[bytes]]:
        """A forwards reader of the content; gzip, bzip2 and Zstandard are decompressed.

        Paths open through :mod:`proxylib.io.opening` and both paths and file
        objects are sniffed by :func:`proxylib.io.sniff.sniff`, which also picks the
        decompressor: the same bytes a proxy of the file reads. Read failures are
        proxylib errors.
        """
        self._require()
        if self.fileobj is not None:
            with wrap_fileobj(self.fileobj, self.pos) as stream:
                yield stream
            return
        with open_stream(self.filename) as stream:
            yield stream

    @contextmanager
    def open_for_write(self) -> Iterator[IO[bytes]]:
        """A binary writer; ``.gz`` names (any case) are compressed.

        A named file is written to a temporary file in the same folder and
        moved into place only when writing succeeded, so a failed save never
        leaves half a file, and saving over the file being read is safe.
        """
        self._require()
        if self.fileobj is not None:
            self.fileobj.seek(self.pos)
            yield self.fileobj
            return
        base, ext, suffix = split_name(self.filename)
        with replacing(self.filename, suffix=ext + suffix) as raw:
            if suffix:
                with gzip.GzipFile(fileobj=raw, mode="wb", filename="",
                                   compresslevel=GZIP_COMPRESSLEVEL, mtime=0) as zipped:
                    yield zipped
            else:
                yield raw


def _name_of(fileobj: Any) -> str:
    name = getattr(fileobj, "name", None)
    return os.fsdecode(name) if isinstance(name, (str, bytes)) else f"<{type(fileobj).__name__}>"


FileMap = Dict[str, FileHolder]


def split_name(filespec: FileSpec) -> Tuple[str, str, str]:
    """``(base, extension, compression suffix)`` of a file name, in the name's own case.

    The compression suffix is recognised in any case (``.gz``, ``.GZ``).
    """
    name = os.fsdecode(os.fspath(filespec))
    suffix = ""
    lowered = name.lower()
    for candidate in COMPRESSED_SUFFIXES:
        if lowered.endswith(candidate):
            suffix = name[-len(candidate):]
            name = name[:-len(candidate)]
            break
    tail = os.path.basename(name)
    dot = tail.rfind(".")  # a leading dot starts an extension too: ".nii", "..nii" (nibabel)
    if dot < 0:
        return name, "", suffix
    cut = len(name) - len(tail) + dot
    return name[:cut], name[cut:], suffix


def split_filename(filespec: FileSpec) -> Tuple[str, str, str]:
    """``(base, extension, compression suffix)`` with the extension lower-cased,
    for comparing with known extensions; build names with :func:`sibling_name`."""
    base, ext, suffix = split_name(filespec)
    return base, ext.lower(), suffix


def in_case_of(given: str, extension: str) -> str:
    """``extension`` in the case of ``given``: upper-case when ``given`` is (``.HDR``
    -> ``.IMG``), as written otherwise."""
    return extension.upper() if given and given.upper() == given and given.lower() != given \
        else extension.lower()


def sibling_name(filespec: FileSpec, extension: str) -> str:
    """The file name of the same base with ``extension`` (in the given name's case)
    and the same compression suffix as written: ``PAIR.HDR`` -> ``PAIR.IMG``."""
    base, ext, suffix = split_name(filespec)
    return base + in_case_of(ext, extension) + suffix
