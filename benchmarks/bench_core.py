"""Basic keys on a 100x100x100x100 float32 volume: proxylib strategies vs peers.

Peers in the same run: ``numpy.memmap`` (fresh per access, and one kept),
a raw ``os.preadv`` of the same bytes into a fresh array (contiguous keys),
and nibabel's ``ArrayProxy`` when nibabel is installed.

Every round reads a fresh random key (another volume, voxel or slab): a
repeated key measures a cache, not a read. Cold rounds: bench_cold.py.
"""

import os

import numpy as np
import pytest

from proxylib import ArrayProxy

RNG = np.random.default_rng()


def _at(n):
    return int(RNG.integers(0, n))


#: key_name -> shape -> a new random key of that kind, drawn each round
KEYS = {
    "volume [..., t]": lambda s: (Ellipsis, _at(s[3])),
    "time series [i, j, k, :]": lambda s: (_at(s[0]), _at(s[1]), _at(s[2]), slice(None)),
    "x-slab [i]": lambda s: (_at(s[0]),),
    "full read": lambda s: (Ellipsis,),
}
STRATEGIES = [(mmap, keep) for mmap in (True, False) for keep in (True, False)]
SLOW_ROUNDS = 3
#: Sub-millisecond keys: enough rounds that one scheduler hiccup cannot move the median.
FAST_ROUNDS = 200


def rounds_for(key_name):
    return SLOW_ROUNDS if key_name in ("x-slab [i]", "full read") else FAST_ROUNDS


@pytest.mark.parametrize("key_name", list(KEYS))
@pytest.mark.parametrize("mmap, keep", STRATEGIES)
def bench_proxylib(record, volume, key_name, mmap, keep):
    draw = KEYS[key_name]
    proxy = ArrayProxy(volume.path, volume.spec, mmap=mmap, keep_file_open=keep)
    read = ((lambda: np.array(proxy)) if key_name == "full read"
            else (lambda: proxy[draw(volume.shape)]))
    result = record(key_name, f"proxylib mmap={mmap} keep={keep}", read,
                    rounds=rounds_for(key_name), measure_memory=True)
    assert np.shape(result) == np.empty(volume.shape, dtype=np.bool_)[draw(volume.shape)].shape
    proxy.close()


@pytest.mark.parametrize("key_name", list(KEYS))
@pytest.mark.parametrize("kept", [True, False])
def bench_numpy_memmap(record, volume, key_name, kept):
    draw = KEYS[key_name]

    def fresh():
        return np.memmap(volume.path, volume.dtype, "r", volume.offset, volume.shape, order="F")
    mapped = fresh()
    read = ((lambda: np.array(mapped[draw(volume.shape)])) if kept
            else (lambda: np.array(fresh()[draw(volume.shape)])))
    record(key_name, f"numpy.memmap {'kept' if kept else 'fresh'}", read,
           rounds=rounds_for(key_name))


@pytest.mark.parametrize("key_name", ["volume [..., t]", "time series [i, j, k, :]", "full read"])
def bench_raw_preadv(record, volume, key_name):
    """Hand-written positional reads: one preadv per contiguous run, into a fresh array."""
    shape, itemsize = volume.shape, volume.dtype.itemsize
    fd = os.open(volume.path, os.O_RDONLY)
    try:
        if key_name == "volume [..., t]":
            count = shape[0] * shape[1] * shape[2]

            def read():
                t = _at(shape[3])
                out = np.empty(count, volume.dtype)
                os.preadv(fd, [memoryview(out)], volume.offset + t * count * itemsize)
                return out
        elif key_name == "full read":
            def read():
                out = np.empty(np.prod(shape), volume.dtype)
                view, done = memoryview(out).cast("B"), 0
                while done < len(view):
                    done += os.preadv(fd, [view[done:]], volume.offset + done)
                return out
        else:
            volume_bytes = shape[0] * shape[1] * shape[2] * itemsize

            def read():
                i, j, k = _at(shape[0]), _at(shape[1]), _at(shape[2])
                first = volume.offset + (i + shape[0] * (j + shape[1] * k)) * itemsize
                out = np.empty(shape[3], volume.dtype)
                for t in range(shape[3]):
                    os.preadv(fd, [memoryview(out[t:t + 1])], first + t * volume_bytes)
                return out
        record(key_name, "raw preadv", read, rounds=rounds_for(key_name), measure_memory=True)
    finally:
        os.close(fd)


@pytest.mark.parametrize("key_name", list(KEYS))
def bench_nibabel(record, volume, key_name):
    nibabel = pytest.importorskip("nibabel")
    draw = KEYS[key_name]
    image = nibabel.load(volume.path)
    if key_name == "full read":
        def read():  # an in-memory copy, like every other strategy's full read
            return np.array(image.dataobj)
    else:
        def read():
            return image.dataobj[draw(volume.shape)]
    record(key_name, "nibabel", read, rounds=rounds_for(key_name),
           measure_memory=key_name == "x-slab [i]")
