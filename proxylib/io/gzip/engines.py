"""The decoding engines of a local gzip file, behind one ``readinto``.

Every engine fills views from uncompressed offsets with
``readinto(file, offsets, views)`` (``file``: the
:class:`~proxylib.io.gzip.members.DescriptorBytes` of the current access) and
counts the compressed bytes it read in ``bytes_read``:

* :class:`StreamEngine`: the member walker from the start of the file; reads
  forwards, checks every CRC; the decoder of last resort.
* :class:`IndexedEngine`: indexed_gzip, which builds the seek index as it goes.
* :class:`JumpEngine`: python-isal restarted at a seek point (about 3x faster
  than indexed_gzip's zlib); reads its points do not reach go to indexed_gzip.
* :class:`ParallelEngine`: large reads with a complete index, in threads.

Which one serves a read is chosen by :class:`~proxylib.io.gzip.state.GzipState`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Sequence

from ...errors import CorruptDataError, ProxyReadError, TruncatedFileError
from ..compressed import PreadFile
from . import jump, parallel
from .config import GzipConfig
from .index_cache import DamagedIndexError
from .members import DescriptorBytes, MemberCursor


class Engine(Protocol):
    """What every engine offers."""

    bytes_read: int

    def readinto(self, file: DescriptorBytes, offsets: Sequence[int],
                 views: Sequence[memoryview]) -> None: ...


class StreamEngine:
    """The member walker from the start of the file (see the module docstring)."""

    def __init__(self, name: str, config: GzipConfig) -> None:
        self.name = name
        self.config = config
        self.cursor: Optional[MemberCursor] = None
        self.bytes_read = 0

    def continues(self, offset: int) -> bool:
        """Whether a read at ``offset`` is at or a little after the cursor."""
        cursor = self.cursor
        return cursor is not None and 0 <= offset - cursor.position <= self.config.jump

    @property
    def max_header(self) -> int:
        """The longest member header the cursor has seen."""
        return self.cursor.max_header if self.cursor is not None else 0

    def readinto(self, file: DescriptorBytes, offsets: Sequence[int],
                 views: Sequence[memoryview]) -> None:
        for offset, view in zip(offsets, views):
            cursor, self.cursor = self.cursor, None    # dropped if the read fails
            if cursor is None or offset < cursor.position:
                cursor = MemberCursor(self.name)
            before = cursor.bytes_read
            try:
                cursor.readinto(file, offset, view)
                cursor.settle(file, self.config.settle_within, self.config.settle_hold)
            finally:
                self.bytes_read += cursor.bytes_read - before
            self.cursor = cursor


class IndexedEngine:
    """indexed_gzip over the descriptor of the current access, building the index.

    ``on_new(reader)`` is called with each new reader (to import a saved index;
    False: the import failed, make a clean reader); ``after_read(reader)`` after
    each read (to save the index when it grew).
    """

    def __init__(self, name: str, config: GzipConfig, on_new: Callable[[Any], bool],
                 after_read: Callable[[Any], None]) -> None:
        self.name = name
        self.config = config
        self.spacing = config.spacing
        #: indexed_gzip's read buffer: it must hold a whole member header.
        self.readbuf = config.readbuf
        self.file = PreadFile(name=name)
        self.reader: Any = None
        self._on_new = on_new
        self._after_read = after_read

    @property
    def bytes_read(self) -> int:
        return self.file.bytes_read

    def open_reader(self) -> Any:
        """The indexed_gzip reader, made on first use."""
        if self.reader is None:
            self.reader = self._new_reader()
            if not self._on_new(self.reader):   # a damaged or foreign index: start afresh
                self.drop()
                self.reader = self._new_reader()
        return self.reader

    def _new_reader(self) -> Any:
        from indexed_gzip.indexed_gzip import _IndexedGzipFile
        self.file.pos = 0
        return _IndexedGzipFile(fileobj=self.file, spacing=self.spacing,
                                readbuf_size=max(self.readbuf, self.config.readbuf),
                                auto_build=True, skip_crc_check=False)

    def drop(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:
                pass

    def grow_readbuf(self, header: int) -> bool:
        """Give indexed_gzip room for a member header of ``header`` bytes, when its
        buffer is too small and such a buffer is allowed; True if it grew."""
        if 2 * header <= self.readbuf or header >= self.config.max_readbuf:
            return False
        self.readbuf = 2 * header + self.config.readbuf
        return True

    def attached(self, file: DescriptorBytes) -> "_Attached":
        """Context manager: the reader reads ``file``'s descriptor meanwhile."""
        return _Attached(self.file, file)

    def readinto(self, file: DescriptorBytes, offsets: Sequence[int],
                 views: Sequence[memoryview]) -> None:
        with self.attached(file):
            for offset, view in zip(offsets, views):
                self._one(offset, view)
                self._after_read(self.reader)

    def _one(self, offset: int, view: memoryview) -> None:
        done, wanted = 0, len(view)
        try:
            reader = self.open_reader()
            reader.seek(offset)
            while done < wanted:
                got = reader.readinto(view[done:])
                if not got:
                    raise TruncatedFileError(
                        f"{self.name}: the gzip stream ends before uncompressed offset "
                        f"{offset + wanted} (it stops at {offset + done}, compressed offset "
                        f"{self.file.pos}); the file is truncated or its header is wrong",
                        path=self.name, offset=offset + done, expected=wanted, found=done)
                done += got
        except ProxyReadError:
            raise
        except Exception as err:
            self.drop()   # its state after a failed inflate is not to be trusted
            raise self.translate(err, offset) from err

    def translate(self, err: BaseException, offset: int) -> ProxyReadError:
        """The proxylib error for indexed_gzip's ``err`` while reading ``offset``."""
        position = self.file.pos
        size = self.file.size
        if size is not None and position >= size or "EOF" in str(err):
            return TruncatedFileError(
                f"{self.name}: the gzip stream is truncated at compressed offset {position} "
                f"(reading uncompressed offset {offset}); re-download or re-copy the file",
                path=self.name, offset=position)
        return CorruptDataError(
            f"{self.name}: corrupt gzip data near compressed offset {position} (reading "
            f"uncompressed offset {offset}): {err}; no values were returned",
            path=self.name, offset=position)


class _Attached:
    __slots__ = ("_inner", "_file")

    def __init__(self, inner: PreadFile, file: DescriptorBytes) -> None:
        self._inner, self._file = inner, file

    def __enter__(self) -> None:
        self._inner.fd = self._file.fd
        self._inner.size = self._file.size()

    def __exit__(self, *exc_info: Any) -> None:
        self._inner.fd = -1


class JumpEngine:
    """isal jumps from the seek points ``points()`` gives; indexed_gzip elsewhere.

    ``on_damaged()`` is called when a saved window fails its check (the points
    are then not used again).
    """

    def __init__(self, name: str, config: GzipConfig,
                 points: Callable[[], Optional[jump.SeekPoints]],
                 indexed: IndexedEngine, on_damaged: Callable[[], None]) -> None:
        self.name = name
        self.config = config
        self._points = points
        self.indexed = indexed
        self._on_damaged = on_damaged
        self.cursor: Optional[MemberCursor] = None
        self.bytes_read = 0

    def readinto(self, file: DescriptorBytes, offsets: Sequence[int],
                 views: Sequence[memoryview]) -> None:
        for offset, view in zip(offsets, views):
            if not (jump.HAVE_ISAL and self._jump(file, offset, view)):
                self.indexed.readinto(file, [offset], [view])

    def _jump(self, file: DescriptorBytes, offset: int, view: memoryview) -> bool:
        """Serve one read with an isal jump; False when the seek points do not cover it."""
        cursor = self.cursor
        if (cursor is None or cursor.ended
                or not 0 <= offset - cursor.position <= self.config.jump):
            points = self._points()
            if points is None or not points.covers(offset):
                return False
            start = points.before(offset)
            if start < 0:
                return False
            try:
                cursor = jump.jump_cursor(points, start, self.name)
            except DamagedIndexError:   # a saved window failed its check
                self._on_damaged()
                return False
        self.cursor = None                 # dropped if the read fails
        before = cursor.bytes_read
        try:
            cursor.readinto(file, offset, view)
        finally:
            self.bytes_read += cursor.bytes_read - before
        self.cursor = cursor
        return True


class ParallelEngine:
    """Large reads of contiguous runs with a complete index, in ``config.threads``."""

    def __init__(self, name: str, config: GzipConfig,
                 points: Callable[[], Optional[jump.SeekPoints]]) -> None:
        self.name = name
        self.config = config
        self._points = points
        self.bytes_read = 0

    def serves(self, offset: int, length: int) -> bool:
        """Whether a read of ``length`` bytes at ``offset`` is large enough for threads."""
        threads = self.config.threads or 1
        return (jump.HAVE_ISAL and length >= parallel.MIN_SPACINGS * self.config.spacing
                and parallel.worth_it(self._points(), offset, length, threads))

    def readinto(self, file: DescriptorBytes, offsets: Sequence[int],
                 views: Sequence[memoryview]) -> None:
        points = self._points()
        assert points is not None, "ParallelEngine.serves was not asked first"
        self.bytes_read += parallel.read_runs(points, file.fd, offsets, views, self.name,
                                              self.config.threads or 1)


__all__ = ["Engine", "StreamEngine", "IndexedEngine", "JumpEngine", "ParallelEngine"]
