"""Remote gzip files: indexed_gzip seeking over ranged reads, index saved locally."""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, Dict, Optional

from ...errors import CorruptDataError, ProxyReadError, TruncatedFileError
from ..cost import CostModel
from ..gzip.config import GzipConfig
from ..gzip.index import GzipIndex
from ..gzip.members import MemberCursor
from ..identity import FileIdentity
from ..sources import _byte_view
from .files import GZIP_READ_SIZE, HEAD_BYTES, REMOTE_COST, RemoteFile
from .gzip_bytes import CompressedReader, WalkerBytes

#: Compressed bytes at each end of a remote gzip file that key its saved index.
EDGE_BYTES = HEAD_BYTES


#: Uncompressed bytes inflated per step (and dropped) while walking to the end for the size.
STREAM_SCRATCH = 256 * 1024


#: Remote defaults: local spacing, and indexed_gzip reads a whole request's worth.
REMOTE_GZIP_CONFIG = GzipConfig(readbuf=GZIP_READ_SIZE)


class RemoteGzipFile(RemoteFile):
    """The decompressed content of a remote ``.gz`` file, seekable through a saved index.

    Positions and sizes are in uncompressed bytes except :attr:`compressed_size`.
    One lock serializes decompression (one ``indexed_gzip`` reader per object
    and process); the index is imported from and saved to the local cache.
    """

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None, *,
                 gzip_config: Optional[GzipConfig] = None, **kwargs: Any) -> None:
        super().__init__(url, storage_options, **kwargs)
        #: Seek-point spacing and indexed_gzip's read size (one request each).
        self.gzip_config = REMOTE_GZIP_CONFIG if gzip_config is None else gzip_config
        self._zran: Any = None
        self._zlock = threading.RLock()
        self._saved_points = 0
        self._complete = False
        self._compressed_head: Optional[bytes] = None
        self._from_saved = False  # the reader started from a saved index
        self._saved_failed = False  # ... which failed once: never load it again
        #: The member walker, used when indexed_gzip cannot read the file
        #: (member headers larger than its buffer): every read streams then.
        self._stream: Any = None
        self._stream_only = False
        self._stream_bytes: Optional[WalkerBytes] = None
        self._streamed_length: Optional[int] = None  # the uncompressed size, once walked
        self.cost = CostModel(gap_threshold=max(self.gzip_config.spacing,
                                                REMOTE_COST.gap_threshold),
                              block_size=REMOTE_COST.block_size)

    def __reduce__(self) -> Any:
        return (_rebuild_gzip, (self.url, self.storage_options, self.retries, self.backoff,
                                self._identity, self.ignored_range, self.gzip_config))

    @property
    def compressed_size(self) -> int:
        return super().size

    @property
    def size(self) -> int:  # type: ignore[override]
        def attempt() -> int:
            if self._stream_only:
                return self._streamed_size()
            return self._wrap(self._indexed_size, 0, self._streamed_size)
        return self._locked_with_rebuild(attempt)

    def _indexed_size(self) -> int:
        zran = self._indexed()
        if not self._complete:
            zran.build_full_index()
            self._complete = True
            self._save(force=True)
        return zran.seek(0, os.SEEK_END)

    def index_identity(self) -> FileIdentity:
        """The :class:`~proxylib.io.identity.FileIdentity` the saved index is filed under.

        URL, version (ETag or Last-Modified), compressed size and a checksum of
        the first and last :data:`EDGE_BYTES` compressed bytes (the gzip
        trailer holds the data's CRC-32), so a file replaced at the same size
        behind an unchanged Last-Modified does not find the old file's index.
        The checksum costs one ranged request per opened file; pickled copies
        carry it.
        """
        identity = self.identity()
        if not identity.content:
            identity = identity._replace(content=self._edges_digest(identity.size))
            self._identity = identity
        return identity

    def _edges_digest(self, size: int) -> str:
        plain = self._as_plain(self)
        edge = min(EDGE_BYTES, size)
        head = self._compressed_head
        if head is None or len(head) < edge:
            head = bytearray(edge)
            plain.read_at(0, head)
        tail = bytearray(edge)
        if size > edge:
            plain.read_at(size - edge, tail)
        else:
            tail = bytearray(head[:edge])
        return hashlib.sha256(bytes(head[:edge]) + bytes(tail)).hexdigest()

    def _new_zran(self) -> Any:
        from indexed_gzip.indexed_gzip import _IndexedGzipFile
        return _IndexedGzipFile(fileobj=CompressedReader(self._as_plain(self)),
                                spacing=self.gzip_config.spacing,
                                readbuf_size=self.gzip_config.readbuf,
                                auto_build=True, skip_crc_check=False)

    def _indexed(self) -> Any:
        if self._zran is None:
            self._zran = self._new_zran()
            self._from_saved = False
            saved = None if self._saved_failed else GzipIndex.load(self.index_identity())
            if saved is not None:
                try:
                    saved.import_into(self._zran)
                    self._saved_points = self._zran.npoints
                    self._complete = saved.complete
                    self._from_saved = True
                except Exception:  # a damaged index is never trusted: rebuild
                    saved.discard()
                    self._zran = self._new_zran()
        return self._zran

    def _locked_with_rebuild(self, attempt: Any) -> Any:
        """``attempt()`` under the lock; if it fails on a saved index, discard it, retry once.

        An index saved for another version of the file (or damaged in a way
        its checks miss) shows up as a decompression error; the file itself
        may be fine, so a second try decompresses from the start.
        """
        with self._zlock:
            try:
                return attempt()
            except CorruptDataError:
                if not self._from_saved:
                    raise
                GzipIndex.discard_saved(self.index_identity())
                self._saved_failed = True
                self._zran = None
                self._complete = False
                self._saved_points = 0
                return attempt()

    def _save(self, force: bool = False) -> None:
        zran = self._zran
        if zran is None or zran.npoints == 0:
            return
        # Saved whenever it grew: a remote restart costs a download, far more
        # than rewriting a small index file.
        if not (force or zran.npoints > self._saved_points):
            return
        GzipIndex.exported(zran, self.index_identity(), complete=self._complete).save()
        self._saved_points = zran.npoints

    def _walker_bytes(self) -> WalkerBytes:
        if self._stream_bytes is None:
            self._stream_bytes = WalkerBytes(self._as_plain(self))
        return self._stream_bytes

    def _stream_readinto(self, offset: int, view: memoryview) -> int:
        """Read through the member walker; returns the bytes read (short at the end)."""
        stream, self._stream = self._stream, None
        if stream is None or offset < stream.position:
            stream = MemberCursor(self.url)
        done = stream.read_available(self._walker_bytes(), offset, view)
        if done < len(view):
            self._streamed_length = stream.position
        self._stream = stream
        return done

    def _streamed_size(self) -> int:
        """The uncompressed size, walked once (every member's CRC checked) and kept."""
        if self._streamed_length is None:
            stream = MemberCursor(self.url)
            scratch = memoryview(bytearray(STREAM_SCRATCH))
            while stream.read_available(self._walker_bytes(), stream.position, scratch) \
                    == len(scratch):
                pass
            self._streamed_length = stream.position
        return self._streamed_length

    def _wrap(self, call: Any, offset: int, fallback: Any = None) -> Any:
        try:
            return call()
        except ProxyReadError:
            raise
        except Exception as err:
            self._zran = None  # its state after a failed inflate is not to be trusted
            cause = err.__cause__ or err.__context__
            if isinstance(cause, ProxyReadError):
                raise cause from err
            # a reader that started from a saved index fails first: the index is
            # discarded and rebuilt once (_locked_with_rebuild) before the file is
            # judged by a second decoder, the member walker
            if fallback is not None and not self._from_saved:
                result = fallback()
                self._stream_only = True
                return result
            raise CorruptDataError(
                f"{self.url}: cannot decompress the gzip data at uncompressed offset "
                f"{offset}: {type(err).__name__}: {err}", path=self.url, offset=offset) from err

    def read_at(self, offset: int, buffer: Any) -> None:
        view = _byte_view(buffer)
        wanted = len(view)
        if wanted == 0:
            return
        def attempt() -> int:
            if self._stream_only:
                return self._stream_readinto(offset, view)

            def fill() -> int:
                zran = self._indexed()
                zran.seek(offset)
                got_total = 0
                while got_total < wanted:
                    got = zran.readinto(view[got_total:])
                    if not got:
                        break
                    got_total += got
                return got_total

            done = self._wrap(fill, offset, lambda: self._stream_readinto(offset, view))
            self._save()
            return done

        done = self._locked_with_rebuild(attempt)
        if done < wanted:
            raise TruncatedFileError(
                f"{self.url}: the gzip stream ends at uncompressed offset {offset + done} "
                f"but bytes up to {offset + wanted} were needed; the file is shorter than "
                "its header says", path=self.url, offset=offset, expected=wanted, found=done)

    def readinto(self, buffer: Any) -> int:
        view = _byte_view(buffer)
        if not len(view):
            return 0
        def attempt() -> int:
            if self._stream_only:
                return self._stream_readinto(self._pos, view)

            def fill() -> int:
                zran = self._indexed()
                zran.seek(self._pos)
                return zran.readinto(view)

            got = self._wrap(fill, self._pos, lambda: self._stream_readinto(self._pos, view))
            self._save()
            return got

        got = self._locked_with_rebuild(attempt)
        self._pos += got
        return got

    def build_index(self) -> None:
        """Read the whole compressed file once and save its complete seek index."""
        self.size  # noqa: B018 - builds and saves

    def __dask_tokenize__(self) -> Any:
        return ("proxylib.RemoteGzipFile",) + super().__dask_tokenize__()[1:]

    @staticmethod
    def _as_plain(remote: "RemoteFile") -> RemoteFile:
        """The plain RemoteFile sharing the URL, options and identity (compressed bytes);
        made once, so its request counts add up and streaming reads do not rebuild it."""
        plain = getattr(remote, "_plain", None)
        if plain is not None:
            return plain
        plain = RemoteFile(remote.url, remote.storage_options, retries=remote.retries,
                           backoff=remote.backoff, identity=remote._identity,
                           ignored_range=remote.ignored_range)
        plain._fs, plain._path = remote._filesystem()
        plain._identity = remote._identity
        remote._plain = plain
        return plain

    @property
    def requests_made(self) -> int:
        plain = getattr(self, "_plain", None)
        return self.requests + (plain.requests if plain is not None else 0)

    @property
    def compressed_bytes_received(self) -> int:
        plain = getattr(self, "_plain", None)
        return self.bytes_received + (plain.bytes_received if plain is not None else 0)


def _rebuild_gzip(url: str, options: Dict[str, Any], retries: int, backoff: float,
                  identity: Any, ignored_range: str, config: GzipConfig) -> RemoteGzipFile:
    return RemoteGzipFile(url, options, retries=retries, backoff=backoff, identity=identity,
                          ignored_range=ignored_range, gzip_config=config)
