"""gzip streams laid out as real writers lay them out, built with the standard library.

Each :class:`Layout` says how one payload is turned into a ``.gz`` file: the
zlib level, where flushes of which kind go (``Z_SYNC_FLUSH`` and
``Z_FULL_FLUSH`` as pigz and streaming writers emit them, ``Z_PARTIAL_FLUSH``,
``Z_BLOCK``), where a new gzip member starts (BGZF writes one per 64 KiB),
empty members, optional header fields (FEXTRA, FNAME, FCOMMENT, FHCRC; a
comment may be MiBs long) and what follows the last member (zeros as tape
padding, or garbage). :func:`reference` is what ``gzip -d`` yields.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

FLUSHES = {"none": zlib.Z_NO_FLUSH, "sync": zlib.Z_SYNC_FLUSH, "full": zlib.Z_FULL_FLUSH,
           "partial": zlib.Z_PARTIAL_FLUSH, "block": zlib.Z_BLOCK}


@dataclass(frozen=True)
class Layout:
    """How to write one payload as gzip (see the module docstring)."""

    level: int = 6
    flush: str = "none"
    #: Uncompressed bytes between flushes (and between writes) of one member.
    flush_every: int = 0
    #: Uncompressed offsets where a new member starts (sorted; repeats give empty members).
    members: Tuple[int, ...] = ()
    extra: int = 0          # FEXTRA bytes (at most 65535)
    name: int = 0           # FNAME bytes
    comment: int = 0        # FCOMMENT bytes
    header_crc: bool = False
    trailer: bytes = b""    # bytes after the last member
    empty_last: bool = False  # an empty member at the end (the BGZF end marker)
    label: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.label or repr(self)


def _header(layout: Layout) -> bytes:
    flags = 0
    body = b""
    if layout.extra:
        flags |= 4
        payload = (b"BC" + struct.pack("<H", 2) + b"\0\0" + b"x" * max(0, layout.extra - 6)
                   )[:layout.extra]
        body += struct.pack("<H", len(payload)) + payload
    if layout.name:
        flags |= 8
        body += (b"volume-%d.nii" % layout.name * (layout.name // 10 + 1))[:layout.name] + b"\0"
    if layout.comment:
        flags |= 16
        body += bytes(32 + (i % 90) for i in range(layout.comment)) + b"\0"
    if layout.header_crc:
        flags |= 2
    head = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", 1_700_000_000) + b"\0\xff" + body
    if layout.header_crc:
        head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    return head


def member(data: bytes, layout: Layout) -> bytes:
    """One gzip member holding ``data``."""
    deflater = zlib.compressobj(layout.level, zlib.DEFLATED, -15)
    mode = FLUSHES[layout.flush]
    step = layout.flush_every or len(data) or 1
    pieces = [_header(layout)]
    for start in range(0, len(data), step):
        pieces.append(deflater.compress(data[start:start + step]))
        if mode != zlib.Z_NO_FLUSH:
            pieces.append(deflater.flush(mode))
    pieces.append(deflater.flush(zlib.Z_FINISH))
    pieces.append(struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))
    return b"".join(pieces)


def compress(data: bytes, layout: Layout) -> bytes:
    """``data`` written as gzip the way ``layout`` says."""
    edges = [0, *layout.members, len(data)]
    out: List[bytes] = [member(data[a:b], layout) for a, b in zip(edges, edges[1:])]
    if layout.empty_last:
        out.append(member(b"", layout))
    out.append(layout.trailer)
    return b"".join(out)


def reference(stream: bytes) -> bytes:
    """What ``gzip -d`` yields: the members' data, stopping at zeros or garbage after them."""
    out: List[bytes] = []
    rest = stream
    while rest[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(31)
        out.append(inflater.decompress(rest))
        if not inflater.eof:
            raise ValueError("truncated gzip stream")
        rest = inflater.unused_data
    return b"".join(out)


def bgzf(size: int, block: int = 65280, level: int = 6) -> Layout:
    """BGZF-like: a member per ``block`` bytes with a BC extra field, an empty one last."""
    return Layout(level=level, members=tuple(range(block, size, block)), extra=6,
                  empty_last=True, label=f"bgzf-{block}")


def pigz(every: int = 128 * 1024, level: int = 6) -> Layout:
    """pigz-like: one member, a sync flush (empty stored block) every ``every`` bytes."""
    return Layout(level=level, flush="sync", flush_every=every, label=f"pigz-{every}")


def standard_layouts(size: int) -> Sequence[Layout]:
    """A fixed corpus for a payload of ``size`` bytes."""
    third = size // 3
    layouts = [Layout(level=level, label=f"level{level}") for level in range(10)]
    for flush in ("sync", "full", "partial", "block"):
        for every in (4096, 50_000):
            layouts.append(Layout(flush=flush, flush_every=every, label=f"{flush}-{every}"))
    layouts += [
        Layout(level=0, flush="sync", flush_every=10_000, label="stored-sync"),
        Layout(level=1, flush="full", flush_every=65_536, label="level1-full-64k"),
        pigz(), pigz(32 * 1024, level=9), bgzf(size), bgzf(size, 20_000, level=1),
        Layout(members=(third, third, 2 * third), label="members-with-empty"),
        Layout(members=(0, 1, third), empty_last=True, label="empty-first-members"),
        Layout(extra=65535, name=300, comment=3 << 20, header_crc=True, label="huge-header"),
        Layout(comment=1 << 20, members=(third,), label="1MiB-comment-members"),
        Layout(trailer=b"\0" * 1000, label="trailing-zeros"),
        Layout(trailer=b"garbage after the data\n" * 50, label="trailing-garbage"),
        Layout(flush="sync", flush_every=30_000, members=(third,),
               trailer=b"\0" * 7, label="sync-members-zeros"),
    ]
    return layouts


__all__ = ["Layout", "FLUSHES", "member", "compress", "reference", "bgzf", "pigz",
           "standard_layouts"]
