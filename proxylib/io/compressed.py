"""Sequentially decompressed byte sources (.bz2, .zst) and the shared machinery.

A compressed stream without a seek index can only be read forwards. A
:class:`StreamCursor` is one decompressor positioned somewhere in the
uncompressed stream; a read at or after its position continues it (skipping
what lies between), a read before it restarts from the beginning. Because
the planner asks for a key's runs in increasing offset order, every key costs
at most one forward pass, and a cursor remembered between keys (per file,
see :class:`CursorRegistry`) makes reading volumes 0..T-1 in order one pass
in total, even when each access re-opens the file.

Compressed bytes are read with ``os.pread`` from whichever descriptor the
current access holds (:class:`PreadFile`); no kernel file offset is shared,
so threads and forked children cannot disturb each other's position.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any, Callable, Optional, Tuple

from ..errors import CorruptDataError, ProxyReadError, TruncatedFileError
from .cost import CostModel
from .identity import FileIdentity
from .positional import ReadOnlyPosition, pread, pread_into
from .registry import ProcessRegistry
from .sources import ByteSource, _byte_view

BZ2_MAGIC = b"BZh"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

#: Reading through any gap is cheaper than restarting a stream from its start.
SEQUENTIAL_COST = CostModel(gap_threshold=1 << 62)

#: A read that leaves at most this many compressed bytes unread is followed by
#: a one-byte probe, so a read that ends at the end of the data also checks
#: the stream's trailing checksums (bz2 and gzip verify them only there).
_SETTLE_WITHIN = 1 << 20
#: Most decompressed bytes such a probe reads ahead (and holds for later reads).
_SETTLE_HOLD = 8 << 20
#: Bytes of decompressed data skipped per call when a read jumps forwards.
_SKIP_CHUNK = 1 << 20


class PreadFile(ReadOnlyPosition):
    """A read-only file-like view of a descriptor with a private position.

    ``fd`` may be swapped between accesses (the descriptor of the current
    access) and is -1 between them, so a stray read fails with EBADF instead
    of touching a closed or re-used descriptor. It deliberately has no
    ``fileno()``: libraries must call ``read``/``seek`` rather than wrap the
    descriptor in a C ``FILE*`` that would share the kernel offset.
    """

    mode = "rb"
    closed = False

    def __init__(self, fd: int = -1, name: str = "<compressed>") -> None:
        self.fd = fd
        self.name = name
        self.pos = 0
        #: Size of the file when the access began (for truncation reports).
        self.size: Optional[int] = None
        #: Compressed bytes read so far (what the tests and benchmarks count).
        self.bytes_read = 0

    def _end(self) -> int:
        return os.fstat(self._fd()).st_size

    def _fd(self) -> int:
        if self.fd < 0:
            raise OSError(errno.EBADF, f"{self.name}: no descriptor outside an access")
        return self.fd

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, os.fstat(self._fd()).st_size - self.pos)
        data = pread(self._fd(), size, self.pos)
        self.pos += len(data)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = _byte_view(buffer)
        got = pread_into(self._fd(), view, self.pos)
        self.pos += got
        self.bytes_read += got
        return got

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.fd = -1


class Codec:
    """How to open a decompressing reader over a :class:`PreadFile`."""

    def __init__(self, name: str, factory: Callable[[PreadFile], Any],
                 errors: Tuple[type, ...]) -> None:
        self.name = name
        self.factory = factory
        self.errors = errors


def _bz2_codec() -> Codec:
    import bz2  # only when a .bz2 file is opened: ``import proxylib`` stays light
    return Codec("bz2", lambda f: bz2.BZ2File(f, "rb"), (OSError, ValueError, EOFError))


def _zstd_codec() -> Codec:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
        return Codec("zstd", lambda f: zstd.ZstdFile(f, "rb"),
                     (zstd.ZstdError, OSError, EOFError, ValueError))
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return Codec("zstd", _missing_zstd, (OSError,))
    return Codec("zstd", lambda f: zstandard.ZstdDecompressor().stream_reader(
        f, read_across_frames=True, closefd=False),
        (zstandard.ZstdError, OSError, EOFError, ValueError))


def _missing_zstd(fileobj: PreadFile) -> Any:
    raise ProxyReadError(
        f"{fileobj.name}: is a Zstandard file, but this Python has no zstd support; "
        "install the 'zstandard' package (pip install 'proxylib[zstd]') or use "
        "Python 3.14+", path=fileobj.name)


class StreamCursor:
    """One decompressing reader and the uncompressed position it has reached."""

    def __init__(self, codec: Codec, name: str) -> None:
        self.codec = codec
        self.name = name
        self.file = PreadFile(name=name)
        self.reader: Any = None
        self.position = 0
        self._scratch: Optional[bytearray] = None
        self._peeked = memoryview(b"")

    def _restart(self) -> None:
        self.close()
        self.file.pos = 0
        self.reader = self.codec.factory(self.file)
        self.position = 0
        self._peeked = memoryview(b"")

    def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:  # closing a half-broken reader must not mask the real error
                pass

    def can_continue_to(self, offset: int) -> bool:
        return self.reader is not None and self.position <= offset

    def readinto(self, fd: int, offset: int, view: memoryview, size: int) -> None:
        """Fill ``view`` with uncompressed bytes from ``offset`` using descriptor ``fd``
        of a file of ``size`` compressed bytes."""
        self.file.fd = fd
        try:
            self.file.size = size
            if not self.can_continue_to(offset):
                self._restart()
            if offset > self.position:
                self._skip(offset - self.position)
            done, wanted = 0, len(view)
            while done < wanted:
                got = self._read(view[done:])
                if not got:
                    raise self._truncated(offset + done, wanted - done)
                done += got
                self.position += got
            self._settle()
        except ProxyReadError:
            self.close()
            raise
        except self.codec.errors as err:
            self.close()
            raise self._translate(err) from err
        finally:
            self.file.fd = -1

    def _read(self, view: memoryview) -> int:
        if self._peeked:
            count = min(len(view), len(self._peeked))
            view[:count] = self._peeked[:count]
            self._peeked = self._peeked[count:]
            return count
        return self.reader.readinto(view)

    def _settle(self) -> None:
        """Near the end of the compressed data, read on to the end of the stream.

        This makes the decompressor check the last member's CRC and length
        (raising on a mismatch) before a read that ends there returns.
        """
        if (self.file.size is None or self.file.size - self.file.pos > _SETTLE_WITHIN
                or self._peeked):
            return
        chunks, total = [], 0
        while total < _SETTLE_HOLD:     # held for the next reads, so no work is lost
            chunk = self.reader.read(min(1 << 20, _SETTLE_HOLD - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        self._peeked = memoryview(b"".join(chunks))

    def _skip(self, count: int) -> None:
        if self._scratch is None:
            self._scratch = bytearray(_SKIP_CHUNK)
        scratch = memoryview(self._scratch)
        while count:
            got = self._read(scratch[:min(count, len(scratch))])
            if not got:
                raise self._truncated(self.position, count)
            count -= got
            self.position += got

    def _truncated(self, offset: int, missing: int) -> TruncatedFileError:
        return TruncatedFileError(
            f"{self.name}: the {self.codec.name} stream ends at uncompressed offset "
            f"{offset} (compressed offset {self.file.pos}), {missing} bytes short of "
            "what the array needs; the file is truncated or its header is wrong",
            path=self.name, offset=offset, expected=missing, found=0)

    def _translate(self, err: BaseException) -> ProxyReadError:
        message = str(err)
        if isinstance(err, EOFError) or "ended before" in message or "truncated" in message:
            return TruncatedFileError(
                f"{self.name}: the {self.codec.name} stream is truncated at compressed "
                f"offset {self.file.pos} ({message}); re-download or re-copy the file",
                path=self.name, offset=self.file.pos)
        if isinstance(err, OSError) and err.errno is not None:
            return ProxyReadError(
                f"{self.name}: reading compressed bytes at offset {self.file.pos} failed: "
                f"{err.strerror or err}", path=self.name, offset=self.file.pos)
        return CorruptDataError(
            f"{self.name}: corrupt {self.codec.name} data near compressed offset "
            f"{self.file.pos}: {message}; the file is damaged (checksum or format "
            "error), no values were returned", path=self.name, offset=self.file.pos)


class CursorRegistry(ProcessRegistry):
    """Process-wide cursors, one per file identity, each with its own lock."""

    def get(self, key: Any, make: Callable[[], StreamCursor]) -> Tuple[threading.Lock, StreamCursor]:
        return super().get(key, lambda: (threading.Lock(), make()))


SEQUENTIAL_CURSORS = CursorRegistry()


class SequentialSource(ByteSource):
    """A byte source over a stream that can only be decompressed forwards."""

    cost = SEQUENTIAL_COST

    def __init__(self, fd: int, path: str, codec: Codec, identity: FileIdentity,
                 registry: CursorRegistry = SEQUENTIAL_CURSORS) -> None:
        self.fd = fd
        self.name = path
        self.codec = codec
        self.size = identity.size
        # kept per identity: a rewritten file (even with its mtime put back) never
        # continues a cursor parked in the old bytes
        self._lock, self._cursor = registry.get(
            (codec.name, identity), lambda: StreamCursor(codec, path))

    def readinto(self, offset: int, buffer: memoryview) -> None:
        view = _byte_view(buffer)
        with self._lock:
            self._cursor.readinto(self.fd, offset, view, self.size)


def sniff_codec(head: bytes) -> Optional[Codec]:
    """The codec of a stream starting with ``head``, or None if uncompressed."""
    if (head.startswith(BZ2_MAGIC) and head[3:4].isdigit() and head[3:4] != b"0"
            and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")):
        return _bz2_codec()
    if head.startswith(ZSTD_MAGIC):
        return _zstd_codec()
    return None


__all__ = ["PreadFile", "StreamCursor", "CursorRegistry", "SequentialSource",
           "SEQUENTIAL_COST", "sniff_codec", "Codec"]
