"""Raw deflate inflated straight into a caller's buffer, with ISA-L through ctypes.

python-isal's ``decompressobj`` returns every output piece as a new bytes
object, which the caller then copies into the result with the GIL held. For a
full read of an indexed file that copy (and the allocation behind it) cost
about 10-15% of one decompression pass and serialised the threads. The ISA-L
library inside the python-isal wheel exports its C inflate API
(``isal_inflate_init``, ``isal_inflate_set_dict``, ``isal_inflate``), which
takes an output pointer: :class:`SpanInflater` points it at the result itself,
reads compressed bytes with ``preadv`` into one reused buffer, and never
creates a Python object per piece. ctypes releases the GIL for each call.

Only the first fields of ISA-L's ``struct inflate_state`` are touched
(``next_out``, ``avail_out``, ``total_out``, ``next_in``, ``read_in``,
``avail_in``): their layout has not changed since ISA-L 2.x. The state is
allocated larger than the whole struct of ISA-L 2.32 (about 86 KiB). The end
of a deflate stream is recognised without reading ``block_state``:
``isal_inflate`` returns only when its input is used up or its output is full,
so a return with both left over means the stream ended. A self-test on first
use checks the library against zlib; if anything is missing or wrong,
:func:`available` is False and callers use the python-isal/zlib objects.

Zlib through ctypes (``inflatePrime``, ``inflateSetDictionary``) was not
chosen: one zlib pass over the 400 MB benchmark volume takes 0.53 s against
0.28 s for ISA-L (bench_gzip's test_full_decompression, 2026-11-26), far more
than the 0.01-0.03 s of copies it would save (benchmarks/README.md, "Thread
scaling of a full read").

Any failure (corrupt data, the stream ending early, truncated input) raises
:class:`InflateIntoError`; the caller re-reads the span with the general
decoder, which gives the named error if the data are really bad.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional

from ...errors import InflateIntoError
from .deflate_prime import primed_byte

#: Bytes allocated for ISA-L's inflate state (the 2.32 struct is ~86 KiB).
_STATE_BYTES = 192 * 1024
#: The only ISA-L major version whose state layout and size this module knows;
#: the library bundled in python-isal says its version (``isal.ISAL_MAJOR_VERSION``).
ISAL_MAJOR = 2
#: Compressed bytes read per ``preadv`` (bounded by the span's end).
_CHUNK = 1 << 20
#: Room before the first chunk for the bytes that prime a mid-byte point.
_PRIME_ROOM = 64
#: Most output per ``isal_inflate`` call (``avail_out`` is 32-bit).
_MAX_CALL = 1 << 30
#: Scratch output for bytes inflated and dropped before a span's start.
_SKIP_PIECE = 256 * 1024


class _Library:
    """ISA-L's inflate functions, loaded and self-tested once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked = False
        self.functions: Any = None
        self.ctypes: Any = None

    def get(self) -> Any:
        if not self.checked:
            with self.lock:
                if not self.checked:
                    self.functions = self._load()
                    self.checked = True
        return self.functions

    def _load(self) -> Any:
        try:
            import ctypes

            import isal  # type: ignore[import-not-found]
            from isal import isal_zlib  # type: ignore[import-not-found]
            if getattr(isal, "ISAL_MAJOR_VERSION", None) != ISAL_MAJOR:
                return None  # another state layout or size: never write past _STATE_BYTES
            library = ctypes.CDLL(isal_zlib.__file__)
            for name, args, result in (
                    ("isal_inflate_init", [ctypes.c_void_p], None),
                    ("isal_inflate_set_dict", [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32],
                     ctypes.c_int),
                    ("isal_inflate", [ctypes.c_void_p], ctypes.c_int)):
                function = getattr(library, name)
                function.argtypes, function.restype = args, result
        except (ImportError, OSError, AttributeError):
            return None
        self.ctypes = ctypes
        self.functions = library
        try:
            if _self_test(library):
                return library
        except InflateIntoError:
            pass
        return None


_LIBRARY = _Library()


def available() -> bool:
    """Whether ISA-L's C inflate API is usable (loaded and self-tested)."""
    return _LIBRARY.get() is not None


def _head_type(ctypes: Any) -> Any:
    class Head(ctypes.Structure):
        _fields_ = [("next_out", ctypes.c_void_p), ("avail_out", ctypes.c_uint32),
                    ("total_out", ctypes.c_uint32), ("next_in", ctypes.c_void_p),
                    ("read_in", ctypes.c_uint64), ("avail_in", ctypes.c_uint32),
                    ("read_in_length", ctypes.c_int32)]
    return Head


def address(buffer: Any) -> int:
    """Address of a writable, C-contiguous buffer's first byte (it must not be empty)."""
    ctypes = _LIBRARY.ctypes
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


class _Buffers:
    """ISA-L's state, the compressed input and skip scratch of one inflater."""

    def __init__(self, ctypes: Any) -> None:
        self.state = ctypes.create_string_buffer(_STATE_BYTES)
        self.head = _head_type(ctypes).from_buffer(self.state)
        self.input = bytearray(_PRIME_ROOM + _CHUNK)
        self.input_at = address(self.input)
        self.scratch = bytearray(_SKIP_PIECE)
        self.scratch_at = address(self.scratch)


#: Each thread keeps the buffers of its last closed inflater: a large read
#: makes one inflater per span (hundreds for an x-slab read in 8 MiB blocks),
#: and fresh 1.4 MiB buffers each time cost about 30% more CPU in page faults.
_SPARE = threading.local()


class SpanInflater:
    """One raw-deflate stream, entered at a block boundary, inflated into caller buffers.

    ``compressed`` is the offset of the byte holding the block's first bit,
    ``bits`` how many of that byte's high bits belong to the block (0: it
    starts on the byte), ``window`` the 32 KiB before it (None at a member's
    start). Input is read from ``fd`` up to ``compressed_stop`` where possible.

    When the deflate stream ends before the output is full, ``next_stream``
    (if given) is called with the offset of the first byte after it and
    returns where the next stream's deflate data start (the gzip layer skips
    a trailer and the next member's header), or None if there is none.
    """

    def __init__(self, fd: int, compressed: int, bits: int, window: Optional[bytes],
                 compressed_stop: int, *, next_stream: Optional[Callable[[int], Optional[int]]]
                 = None, library: Any = None) -> None:
        library = library or _LIBRARY.get()
        if library is None:
            raise InflateIntoError("ISA-L's inflate API is not available")
        ctypes = _LIBRARY.ctypes
        self._lib = library
        self._fd = fd
        buffers: Optional[_Buffers] = getattr(_SPARE, "buffers", None)
        _SPARE.buffers = None
        self._buffers = buffers or _Buffers(ctypes)
        self._state, self._head = self._buffers.state, self._buffers.head
        self._input, self._input_at = self._buffers.input, self._buffers.input_at
        library.isal_inflate_init(self._state)
        if window:
            holder = ctypes.create_string_buffer(bytes(window), len(window))
            if library.isal_inflate_set_dict(self._state, holder, len(window)) != 0:
                raise InflateIntoError("ISA-L refused the window")
        self._next_byte = compressed
        self._stop = max(compressed_stop, compressed + 1)
        self._bits = bits
        self._next_stream = next_stream
        self.bytes_read = 0
        self.streams = 1

    def _refill(self) -> None:
        want = min(_CHUNK, max(64 * 1024, self._stop - self._next_byte))
        view = memoryview(self._input)[_PRIME_ROOM:_PRIME_ROOM + want]
        count = os.preadv(self._fd, [view], self._next_byte)
        if count <= 0:
            raise InflateIntoError("the compressed data ended")
        self._next_byte += count
        self.bytes_read += count
        start = _PRIME_ROOM
        if self._bits:
            primed, self._bits = primed_byte(self._bits, self._input[start]), 0
            start = start + 1 - len(primed)
            self._input[start:start + len(primed)] = primed
        self._head.next_in = self._input_at + start
        self._head.avail_in = _PRIME_ROOM + count - start

    def _inflate(self, out_address: int, count: int) -> None:
        head = self._head
        while count:
            piece = min(count, _MAX_CALL)
            head.next_out, head.avail_out = out_address, piece
            while head.avail_out:
                if head.avail_in == 0:
                    self._refill()
                code = self._lib.isal_inflate(self._state)
                if code < 0:
                    raise InflateIntoError(f"isal_inflate returned {code}")
                if head.avail_in and head.avail_out:
                    self._start_next_stream()
            out_address += piece
            count -= piece

    def _start_next_stream(self) -> None:
        """The deflate stream ended (ISA-L hands back the whole bytes it did not use)."""
        head = self._head
        resume = (self._next_stream(self._next_byte - head.avail_in)
                  if self._next_stream is not None else None)
        if resume is None:
            raise InflateIntoError("the deflate stream ended inside the span")
        out, room = head.next_out, head.avail_out
        self._lib.isal_inflate_init(self._state)
        head.next_out, head.avail_out = out, room
        head.next_in, head.avail_in = None, 0
        self._next_byte = resume
        self.streams += 1

    def readinto(self, view: memoryview) -> None:
        """Inflate exactly ``len(view)`` bytes into ``view``."""
        if len(view):
            self._inflate(address(view), len(view))

    def skip(self, count: int) -> None:
        """Inflate and drop ``count`` bytes."""
        while count > 0:
            piece = min(count, _SKIP_PIECE)
            self._inflate(self._buffers.scratch_at, piece)
            count -= piece

    def close(self) -> None:
        """Hand the buffers to this thread's next inflater (this one is done)."""
        if self._buffers is not None:
            _SPARE.buffers, self._buffers = self._buffers, None

    def __enter__(self) -> "SpanInflater":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _self_test(library: Any) -> bool:
    """Inflate a small zlib stream whole and from a sync-flush point with its window."""
    import tempfile
    import zlib

    data = b"".join(b"proxylib %d " % (i * i % 977) for i in range(6000))
    cut = 40000
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = packer.compress(data[:cut]) + packer.flush(zlib.Z_SYNC_FLUSH)
    payload = first + packer.compress(data[cut:]) + packer.flush()
    whole, entered = bytearray(len(data)), bytearray(len(data) - cut)
    with tempfile.TemporaryFile() as handle:
        handle.write(payload)
        handle.flush()
        fd = handle.fileno()
        with SpanInflater(fd, 0, 0, None, len(payload), library=library) as inflater:
            inflater.readinto(memoryview(whole)[:1000])
            inflater.skip(5000)
            inflater.readinto(memoryview(whole)[6000:])
        with SpanInflater(fd, len(first), 0, data[cut - 32768:cut], len(payload),
                          library=library) as inflater:     # the first one's buffers
            inflater.readinto(memoryview(entered))
    return (whole[:1000] == data[:1000] and whole[6000:] == data[6000:]
            and entered == data[cut:])


__all__ = ["InflateIntoError", "SpanInflater", "available", "address"]
