"""Start a raw-deflate inflater at a block boundary that falls inside a byte.

zlib's ``inflatePrime`` feeds an inflater the few bits of a byte that begin
a deflate block; python-isal (and Python's zlib) have no such call. Shifting
every compressed byte by the missing bits is not an answer: a stored block
(every ``Z_SYNC_FLUSH``/``Z_FULL_FLUSH`` writes one, and zlib stores
incompressible data in them) skips to the next byte boundary *of the stream
it reads*, so after a shift its LEN/NLEN fields are read from the wrong bits.

:func:`primed_byte` instead returns a few whole bytes that replace the byte
holding the block's first bits: empty deflate blocks (no output, not final)
whose bit lengths add up to exactly the bits to skip, followed by the block's
own bits. Fed that and then the original bytes unchanged, an inflater sees the
original byte boundaries, so stored blocks line up.
"""

from __future__ import annotations

from typing import List


def _lsb_first(value: int, count: int) -> List[int]:
    return [(value >> i) & 1 for i in range(count)]


def _code(code: int, length: int) -> List[int]:
    """A Huffman code, written most significant bit first (RFC 1951, 3.1.1)."""
    return [(code >> (length - 1 - i)) & 1 for i in range(length)]


def _fixed_empty_block() -> List[int]:
    """A non-final fixed-Huffman block holding only end-of-block: 10 bits."""
    return _lsb_first(0, 1) + _lsb_first(1, 2) + _code(0, 7)


def _dynamic_empty_block() -> List[int]:
    """A non-final dynamic-Huffman block holding only end-of-block: 103 bits (odd).

    Every code in it is complete (literal 0 and end-of-block of length 1; two
    distance codes of length 1), which every inflater accepts.
    """
    bits = _lsb_first(0, 1) + _lsb_first(2, 2)
    bits += _lsb_first(257 - 257, 5) + _lsb_first(2 - 1, 5)
    order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    used = order[:order.index(1) + 1]
    bits += _lsb_first(len(used) - 4, 4)
    lengths = {0: 2, 1: 2, 17: 2, 18: 2}          # canonical codes 00, 01, 10, 11
    for symbol in used:
        bits += _lsb_first(lengths.get(symbol, 0), 3)
    code = {0: 0, 1: 1, 17: 2, 18: 3}
    bits += _code(code[1], 2)                      # literal 0: length 1
    bits += _code(code[17], 2) + _lsb_first(0, 3)  # literals 1-3: unused
    bits += _code(code[18], 2) + _lsb_first(138 - 11, 7)
    bits += _code(code[18], 2) + _lsb_first(114 - 11, 7)   # literals 4-255: unused
    bits += _code(code[1], 2)                      # end-of-block: length 1
    bits += _code(code[1], 2) + _code(code[1], 2)  # two distance codes: length 1
    bits += _code(1, 1)                            # end-of-block
    return bits


def _padding(count: int) -> List[int]:
    """Empty blocks whose bit lengths add up to ``count`` modulo 8 (count in 1..7)."""
    fixed, dynamic = _fixed_empty_block(), _dynamic_empty_block()
    if count % 2 == 0:
        bits = fixed * (count // 2)
    else:
        bits = dynamic + fixed * (((count - len(dynamic)) // 2) % 4)
    assert len(bits) % 8 == count
    return bits


def _pack(bits: List[int]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for at, bit in enumerate(bits):
        out[at // 8] |= bit << (at % 8)
    return bytes(out)


_PADDINGS = {count: _padding(count) for count in range(1, 8)}


def primed_byte(bits: int, byte: int) -> bytes:
    """Bytes to feed instead of ``byte``, whose top ``bits`` bits (1-7) start a block."""
    if not 1 <= bits <= 7:
        raise ValueError(f"a block starts at bit 0-7 of a byte; got {bits} bits")
    skip = 8 - bits
    padded = _PADDINGS[skip] + _lsb_first(byte >> skip, bits)
    assert len(padded) % 8 == 0
    return _pack(padded)


__all__ = ["primed_byte"]
