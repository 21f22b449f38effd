"""Mutated NIfTI-1/NIfTI-2 files for the header fuzz (tests/test_header_fuzz.py).

:func:`cases` yields ``(label, suffix, file bytes)`` deterministically from a
seed: valid base images (both versions, both byte orders, several data
types, with and without scaling and extensions) with one of

* a field set to a boundary or random value (every field of the layout,
  every element of array fields: 0, -1, 1, int min/max, NaN, +-inf, huge,
  tiny, raw float bits such as signalling NaNs and subnormals, random bytes
  for strings),
* several fields at once,
* a shape claiming terabytes or an offset far past the end,
* random byte flips anywhere in the file,
* a truncation (at header boundaries and at random),
* sizeof_hdr / magic / eol_check swaps between versions and byte orders,

written as ``.nii`` or gzipped as ``.nii.gz`` (some gzip streams are then
truncated or corrupted as well).

Run as a script, :func:`run_shard` loads every case with warnings as
errors (cycling through mmap True/'r'/False and keep_file_open None/True),
reads the data when the load succeeds, and prints one JSON line with
counts, failures and memory figures; the test runs shards in child
processes so that a crash is seen as a signal and peak RSS is the fuzz's own.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
import tracemalloc
import warnings
from typing import Iterator, List, Tuple

import numpy as np

from proxylib.formats.fields import NIFTI1_FIELDS, NIFTI2_FIELDS
from proxylib.formats.nifti1 import Nifti1Header
from proxylib.formats.nifti2 import Nifti2Header

SEED = 20240607
#: Memory growth no case may exceed (bytes): 32 MiB.
MEMORY_LIMIT = 32 << 20

_HEADERS = {1: Nifti1Header, 2: Nifti2Header}
_LAYOUTS = {1: NIFTI1_FIELDS, 2: NIFTI2_FIELDS}

#: (version, byte order, datatype, shape, slope, inter, extension) of the valid bases.
BASES = [
    (1, "<", np.int16, (4, 3, 2, 3), 2.0, -1.0, False),
    (1, ">", np.float32, (3, 3, 2, 2), 1.0, 0.0, False),
    (1, "<", np.uint8, (5, 4, 3), 0.5, 10.0, True),
    (1, ">", np.float64, (2, 3, 4, 2, 1), 1.0, 0.0, True),
    (1, "<", np.complex64, (3, 2, 2), 1.0, 0.0, False),
    (2, "<", np.int32, (4, 3, 2, 3), 1.5, 2.0, False),
    (2, ">", np.int16, (3, 3, 3, 2), 1.0, 0.0, True),
    (2, "<", np.float32, (2, 2, 2, 5), 1.0, 0.0, False),
    (2, ">", np.uint16, (6, 2, 3), 0.25, 0.0, False),
    (2, "<", "RGB", (3, 4, 2), 1.0, 0.0, True),
]

_EXTENSION = b"<xml>fuzz</xml>".ljust(24, b"\x00")


def base_file(index: int) -> Tuple[int, str, bytes]:
    """(version, byte order, bytes of a valid single-file image) of base ``index``."""
    version, order, dtype, shape, slope, inter, extension = BASES[index]
    header = _HEADERS[version](order)
    if dtype == "RGB":
        header["datatype"], header["bitpix"] = 128, 24
        dtype = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
    else:
        dtype = np.dtype(dtype).newbyteorder(order)
        header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_slope_inter(slope, inter)
    header["pixdim"][1:4] = (2.0, 2.5, 3.0)
    header["qform_code"], header["sform_code"] = 1, 2
    header["quatern_b"], header["quatern_d"] = 0.0, 0.5
    header["srow_x"], header["srow_y"], header["srow_z"] = (
        [2.0, 0, 0, -10], [0, 2.5, 0, 5], [0, 0, 3, 7])
    extra = (np.array([32, 6], order + "i4").tobytes() + _EXTENSION) if extension else b""
    header.set_data_offset(header.single_vox_offset + len(extra))
    flag = (b"\x01" if extension else b"\x00") + b"\x00\x00\x00"
    count = math.prod(shape)
    raw = np.random.default_rng(index).integers(0, 256, count * dtype.itemsize, np.uint8)
    data = raw.tobytes()
    if dtype.kind == "f" or dtype.kind == "c":  # finite values only in valid bases
        values = np.linspace(-3, 3, count * (2 if dtype.kind == "c" else 1))
        data = values.astype(dtype.newbyteorder(order).str[:1] + "f" + str(
            dtype.itemsize // (2 if dtype.kind == "c" else 1))).tobytes()
    return version, order, header.binaryblock + flag + extra + data


# -- values --------------------------------------------------------------------
_FLOAT_SPECIALS = [0.0, -0.0, -1.0, 1.0, math.nan, -math.nan, math.inf, -math.inf,
                   1e38, -1e38, 3.4028235e38, 1e300, -1e300, 1.4e-45, 5e-324, 1e-30,
                   0.5, 2**31, 2**63, 348.0, 352.0, 540.0, 544.0, 352.5]


def _int_specials(dtype: np.dtype) -> List[int]:
    info = np.iinfo(dtype)
    values = {0, 1, -1, 2, 3, 4, 7, 8, 16, 255, 256, 348, 352, 540, 544, info.min, info.max,
              info.max - 1, info.min + 1, info.max // 2}
    return sorted(v for v in values if info.min <= v <= info.max)


def _value(rng: random.Random, dtype: np.dtype):
    """A boundary or random value of scalar ``dtype`` (as the storage dtype)."""
    kind = dtype.kind
    if kind in "iu":
        info = np.iinfo(dtype)
        if rng.random() < 0.7:
            return rng.choice(_int_specials(dtype))
        return rng.randint(int(info.min), int(info.max))
    if kind == "f":
        if rng.random() < 0.7:
            return rng.choice(_FLOAT_SPECIALS)
        return rng.uniform(-1, 1) * 10.0 ** rng.randint(-40, 40)
    if kind == "S":
        size = dtype.itemsize
        choice = rng.random()
        if choice < 0.3:
            return bytes(rng.getrandbits(8) for _ in range(size))
        if choice < 0.5:
            return b""
        if choice < 0.8:
            return rng.choice([b"n+1", b"ni1", b"n+2", b"ni2", b"n+1\x00", b"\xff" * size,
                               b"n+3", b"N+1", b"\x00n+1"])[:size]
        return b"x" * size
    raise AssertionError(f"no values for {dtype}")


#: Float bit patterns a Python float cannot carry: signalling NaNs (both signs, with
#: payloads), the smallest subnormal and -0.
_FLOAT_BITS = {4: [0x7FA00000, 0xFFA00001, 0x7F800001, 0x00000001, 0x80000000],
               8: [0x7FF4000000000000, 0xFFF0000000000001, 0x7FF0000000000001,
                   0x0000000000000001, 0x8000000000000000]}


def _set_bits(rng: random.Random, record: np.ndarray, name: str) -> str:
    """Write a raw float bit pattern into field ``name`` (one element of an array field)."""
    field, offset = record.dtype.fields[name][:2]
    index = rng.randrange(field.shape[0]) if field.shape else 0
    base = field.base
    start = offset + index * base.itemsize
    bits = np.array([rng.choice(_FLOAT_BITS[base.itemsize])], base.str.replace("f", "u"))
    record.view(np.uint8)[start:start + base.itemsize] = bits.view(np.uint8)
    return f"{name}[{index}]" if field.shape else name


def _set_field(rng: random.Random, record: np.ndarray, name: str) -> str:
    """Set field ``name`` of ``record`` (or one element) to a boundary value."""
    base, subshape = record.dtype.fields[name][0].base, record.dtype.fields[name][0].shape
    if base.kind == "f" and rng.random() < 0.15:
        return _set_bits(rng, record, name)
    if subshape:
        if rng.random() < 0.2:
            values = [_value(rng, base) for _ in range(subshape[0])]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                record[name][0] = values
            return f"{name}[:]"
        index = rng.randrange(subshape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record[name][0, index] = _value(rng, base)
        return f"{name}[{index}]"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float64 -> float32 overflow to inf is intended
        record[name] = _value(rng, base)
    return name


def _huge_claim(rng: random.Random, record: np.ndarray, version: int) -> str:
    """A shape or offset claiming far more bytes than the file holds."""
    dim_max = int(np.iinfo(record["dim"].dtype).max)
    choice = rng.randrange(5)
    if choice == 0:
        record["dim"][:] = [4, dim_max, dim_max, dim_max, dim_max, 1, 1, 1]
        return "dim=max^4"
    if choice == 1:  # about 1 TiB of int16
        record["dim"][:] = [4, 1024, 1024, 512, 1024, 1, 1, 1]
        record["datatype"], record["bitpix"] = 4, 16
        return "dim=1TiB"
    if choice == 2:
        record["dim"][:] = [7] + [dim_max] * 7
        record["datatype"], record["bitpix"] = 1792, 128
        return "dim=max^7 complex128"
    if choice == 3:
        record["vox_offset"] = rng.choice([2**31, 2**40, 2**62 if version == 2 else 2**31,
                                           1e38 if version == 1 else 2**63 - 1])
        return "vox_offset=huge"
    record["dim"][0, rng.randrange(1, 8)] = dim_max
    record["dim"][0, 0] = 7
    return "dim[k]=max"


def _swap(rng: random.Random, block: bytearray, version: int, order: str) -> str:
    """Swap sizeof_hdr / magic / eol_check between versions and byte orders."""
    other = "<" if order == ">" else ">"
    choice = rng.randrange(7)
    if choice == 0:  # the other version's sizeof_hdr, this order
        block[0:4] = np.array(540 if version == 1 else 348, order + "i4").tobytes()
        return "sizeof_hdr=other version"
    if choice == 1:  # this sizeof_hdr in the other byte order only
        block[0:4] = np.array(348 if version == 1 else 540, other + "i4").tobytes()
        return "sizeof_hdr=other order"
    if choice == 2:
        block[0:4] = np.array(rng.choice([0, -1, 349, 347, 2**31 - 1, -348]),
                              order + "i4").tobytes()
        return "sizeof_hdr=bad"
    magic_at = 344 if version == 1 else 4
    magic = rng.choice([b"n+1\x00", b"ni1\x00", b"n+2\x00", b"ni2\x00", b"\x00\x00\x00\x00",
                        b"n+1 ", b"\xff\xff\xff\xff"])
    if choice == 3:
        block[magic_at:magic_at + 4] = magic
        return f"magic={magic!r}"
    if choice == 4:  # the other version's magic position, both changed
        block[0:4] = np.array(540 if version == 1 else 348, order + "i4").tobytes()
        block[344:348] = magic
        block[4:8] = magic
        return f"sizeof_hdr+magic={magic!r}"
    if choice == 5 and version == 2:
        block[8:12] = bytes(rng.choice([(13, 10, 10, 10), (10, 26, 10, 0), (0, 0, 0, 0)]))
        return "eol_check"
    # whole header byte-swapped apart from nothing: the data order lies
    swapped = np.frombuffer(bytes(block[:_LAYOUTS[version].itemsize]),
                            _LAYOUTS[version].newbyteorder(order)).astype(
        _LAYOUTS[version].newbyteorder(other))
    block[:_LAYOUTS[version].itemsize] = swapped.tobytes()
    return "header byte order swapped"


_TRUNCATION_POINTS = [0, 1, 2, 3, 4, 5, 100, 343, 344, 347, 348, 349, 351, 352, 353, 367,
                      383, 384, 539, 540, 543, 544, 545, 575, 576]


def _mutate(rng: random.Random, version: int, order: str, good: bytes) -> Tuple[str, bytes]:
    layout = _LAYOUTS[version].newbyteorder(order)
    size = layout.itemsize
    kind = rng.random()
    if kind < 0.45 or 0.85 <= kind < 0.9:
        record = np.frombuffer(good[:size], layout).copy()[0:1]
        fields = list(layout.names)
        count = 1 if kind < 0.45 else rng.randint(2, 6)
        labels = [_set_field(rng, record, rng.choice(fields)) for _ in range(count)]
        return "field " + ",".join(labels), record.tobytes() + good[size:]
    if kind < 0.55:
        record = np.frombuffer(good[:size], layout).copy()[0:1]
        label = _huge_claim(rng, record, version)
        return "claim " + label, record.tobytes() + good[size:]
    if kind < 0.7:
        block = bytearray(good)
        flips = rng.randint(1, 8)
        limit = size + 4 if rng.random() < 0.8 else len(block)
        for _ in range(flips):
            at = rng.randrange(limit)
            block[at] = rng.getrandbits(8) if rng.random() < 0.5 else block[at] ^ (
                1 << rng.randrange(8))
        return f"flip x{flips}", bytes(block)
    if kind < 0.78:
        if rng.random() < 0.6:
            cut = rng.choice(_TRUNCATION_POINTS + [len(good) - 1, len(good) - 2])
        else:
            cut = rng.randrange(len(good))
        return f"truncate {cut}", good[:max(0, min(cut, len(good)))]
    block = bytearray(good)
    return "swap " + _swap(rng, block, version, order), bytes(block)


def _gzip(rng: random.Random, data: bytes) -> Tuple[str, bytes]:
    packed = gzip.compress(data, compresslevel=1, mtime=0)
    roll = rng.random()
    if roll < 0.85:
        return "", packed
    if roll < 0.93:
        cut = rng.randrange(len(packed))
        return f" gz-truncate {cut}", packed[:cut]
    block = bytearray(packed)
    at = rng.randrange(len(block))
    block[at] ^= 1 << rng.randrange(8)
    return f" gz-flip {at}", bytes(block)


def cases(count: int, seed: int = SEED) -> Iterator[Tuple[str, str, bytes]]:
    """``count`` mutated files: (label, '.nii' or '.nii.gz', bytes)."""
    bases = [base_file(i) for i in range(len(BASES))]
    rng = random.Random(seed)
    for number in range(count):
        which = number % len(bases)
        version, order, good = bases[which]
        label, data = _mutate(rng, version, order, good)
        suffix = ".nii"
        if rng.random() < 0.35:
            extra, data = _gzip(rng, data)
            label += extra
            suffix = ".nii.gz"
        yield f"#{number} base{which} (NIfTI-{version} {order}) {label}", suffix, data


# -- running ---------------------------------------------------------------------
#: (mmap, keep_file_open) the cases cycle through: the default, read-only maps with a
#: kept map, and positional reads only.
OPTIONS = [(True, None), ("r", True), (False, False), (True, True)]


def _exercise(path: str, outcome: dict, options=OPTIONS[0]) -> None:
    """Load, then read the data (in full and the last volume) when the load succeeds."""
    import proxylib
    img = proxylib.load(path, mmap=options[0], keep_file_open=options[1])
    outcome["loaded"] += 1
    proxy = img.dataobj
    full = np.asarray(proxy)
    assert full.shape == proxy.shape and full.dtype == proxy.dtype, (full.shape, full.dtype)
    if proxy.size:
        last = proxy[..., -1]
        assert np.array_equal(last, full[..., -1], equal_nan=full.dtype.kind in "fc")
    del full
    outcome["read"] += 1
    img.header.get_zooms()
    img.header.get_sform()
    img.dataobj.close()


def run_shard(shard: int, shards: int, count: int, seed: int = SEED) -> dict:
    """Fuzz every ``shards``-th case starting at ``shard``; return counts and failures."""
    import resource

    import proxylib
    from proxylib.errors import HeaderWarning

    outcome = {"cases": 0, "loaded": 0, "read": 0, "errors": {}, "failures": [],
               "peak_traced": 0, "peak_traced_case": "", "rss_growth": 0,
               "gz": 0, "labels": {}}
    # tmpfs when there is one: opening a file there costs a few microseconds
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    folder = tempfile.mkdtemp(prefix="proxylib-fuzz-", dir=shm)
    os.environ["PROXYLIB_CACHE_DIR"] = os.path.join(folder, "cache")
    paths = {suffix: os.path.join(folder, "fuzz" + suffix) for suffix in (".nii", ".nii.gz")}
    mtime = 1_000_000_000_000_000_000
    # warm up imports and caches before taking the baselines
    for _ in cases(len(BASES), seed + 1):
        pass
    np.asarray(proxylib.load(_write(paths[".nii"], base_file(0)[2], mtime)).dataobj)
    tracemalloc.start()
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started, cpu_started = time.perf_counter(), time.process_time()
    fields = set()
    for number, (label, suffix, data) in enumerate(cases(count, seed)):
        if number % shards != shard:
            continue
        outcome["cases"] += 1
        outcome["gz"] += suffix == ".nii.gz"
        kind = label.split(") ")[1].split()[0]
        outcome["labels"][kind] = outcome["labels"].get(kind, 0) + 1
        if kind == "field":
            version = label.split("(NIfTI-")[1][0]
            for name in label.split(") field ")[1].split()[0].split(","):
                fields.add(f"{version}:{name.split('[')[0]}")
        mtime += 1000  # a new identity for every case, whatever the clock's resolution
        path = _write(paths[suffix], data, mtime)
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                warnings.simplefilter("ignore", HeaderWarning)
                _exercise(path, outcome, OPTIONS[number % len(OPTIONS)])
        except proxylib.ProxyError as err:
            name = type(err).__name__
            outcome["errors"][name] = outcome["errors"].get(name, 0) + 1
        except BaseException as err:  # noqa: BLE001 - anything else is the failure we look for
            outcome["failures"].append({"case": label, "type": type(err).__name__,
                                        "error": str(err)[:300],
                                        "trace": traceback.format_exc()[-1500:]})
        growth = tracemalloc.get_traced_memory()[1] - before
        if growth > outcome["peak_traced"]:
            outcome["peak_traced"], outcome["peak_traced_case"] = growth, label
        if growth > MEMORY_LIMIT:
            outcome["failures"].append({"case": label, "type": "memory",
                                        "error": f"traced peak grew by {growth} bytes"})
    outcome["seconds"] = time.perf_counter() - started
    outcome["cpu_seconds"] = time.process_time() - cpu_started
    outcome["fields"] = sorted(fields)
    shutil.rmtree(folder, ignore_errors=True)
    tracemalloc.stop()
    outcome["rss_growth"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_base
    return outcome


def _write(path: str, data: bytes, mtime_ns: int) -> str:
    with open(path, "wb") as handle:
        handle.write(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


if __name__ == "__main__":
    shard, shards, count = (int(arg) for arg in sys.argv[1:4])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else SEED
    print(json.dumps(run_shard(shard, shards, count, seed)))
