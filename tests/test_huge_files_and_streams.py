"""A 1 TiB sparse file reads one volume for the cost of one volume; streams never read unbounded."""

import io
import os

import numpy as np
import pytest

import proxylib
from proxylib import ArrayProxy
from proxylib.formats import Nifti2Header

TIB = 1 << 40
SPATIAL = (128, 128, 128)
VOLUME_BYTES = int(np.prod(SPATIAL)) * 4


def read_bytes_of_process():
    with open("/proc/self/io") as handle:
        fields = dict(line.split(": ") for line in handle.read().splitlines())
    return int(fields["rchar"])


@pytest.fixture(scope="module")
def huge_path(tmp_path_factory):
    volumes = TIB // VOLUME_BYTES
    header = Nifti2Header()
    header.set_data_shape(SPATIAL + (volumes,))
    header.set_data_dtype(np.float32)
    header.set_data_offset(544)
    path = str(tmp_path_factory.mktemp("huge") / "huge.nii")
    with open(path, "wb") as handle:
        block = header.binaryblock
        handle.write(block + b"\0" * (544 - len(block)))
    try:
        os.truncate(path, 544 + TIB)
    except OSError as err:  # pragma: no cover - filesystems without sparse files
        pytest.skip(f"cannot make a 1 TiB sparse file here: {err}")
    pattern = np.arange(VOLUME_BYTES // 4, dtype=np.float32).reshape(SPATIAL, order="F")
    with open(path, "r+b") as handle:  # one real volume in the middle of the holes
        handle.seek(544 + 5000 * VOLUME_BYTES)
        handle.write(pattern.tobytes(order="F"))
    yield path, pattern
    os.unlink(path)


def test_huge_sparse_file_uses_no_disk(huge_path):
    path, _ = huge_path
    assert os.path.getsize(path) == 544 + TIB
    assert os.stat(path).st_blocks * 512 < 64 * VOLUME_BYTES


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs /proc/self/io")
@pytest.mark.parametrize("keep", [True, False])
def test_one_volume_of_a_terabyte_reads_one_volume(huge_path, keep):
    path, pattern = huge_path
    image = proxylib.load(path, mmap=False, keep_file_open=keep)
    assert image.shape == SPATIAL + (TIB // VOLUME_BYTES,)
    before = read_bytes_of_process()
    volume = image.dataobj[..., 5000]
    read = read_bytes_of_process() - before
    np.testing.assert_array_equal(volume, pattern)
    assert VOLUME_BYTES <= read < VOLUME_BYTES + (1 << 20), f"read {read} bytes"
    np.testing.assert_array_equal(image.dataobj[..., 5001], 0)


def test_full_read_of_a_terabyte_fails_fast_and_clearly(huge_path):
    path, _ = huge_path
    image = proxylib.load(path)
    with pytest.raises(proxylib.ResultTooLargeError, match="GiB") as info:
        image.get_fdata()
    assert isinstance(info.value, MemoryError) and "huge.nii" in str(info.value)
    with pytest.raises(MemoryError, match="read it in slices"):
        np.asarray(proxylib.load(path, mmap=False).dataobj)
    with pytest.raises(MemoryError, match="mmap='r'"):  # copy-on-write maps are charged
        np.asanyarray(proxylib.load(path, mmap="c").dataobj)
    mapped = np.asanyarray(proxylib.load(path, mmap="r").dataobj)  # read-only map: fine
    assert isinstance(mapped, np.memmap) and mapped.shape == image.shape


class Unseekable(io.RawIOBase):
    """A stream like a pipe or a socket: reads, but cannot seek or tell."""

    def __init__(self, payload):
        self.payload = io.BytesIO(payload)
        self.reads = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        self.reads += 1
        return self.payload.readinto(buffer)

    def seekable(self):
        return False

    def seek(self, *args):
        raise io.UnsupportedOperation("seek")

    def tell(self):
        raise io.UnsupportedOperation("tell")


def test_unseekable_stream_gets_a_clear_error_without_reading():
    stream = Unseekable(np.arange(100, dtype=np.int8).tobytes())
    proxy = ArrayProxy(stream, ((10, 10), np.int8))
    with pytest.raises(proxylib.UnseekableStreamError, match="seek") as info:
        proxy[3]
    assert isinstance(info.value, OSError) and stream.reads == 0


def test_pipe_gets_a_clear_error():
    read_end, write_end = os.pipe()
    os.write(write_end, bytes(100))
    with os.fdopen(read_end, "rb") as pipe:
        proxy = ArrayProxy(pipe, ((10, 10), np.int8))
        with pytest.raises(proxylib.UnseekableStreamError):
            proxy[...]
    os.close(write_end)


def test_object_without_seek_is_refused_at_construction():
    class SocketLike:
        def read(self, n=-1):
            return b"\0" * max(n, 0)
    with pytest.raises(TypeError, match="read\\(\\) and seek\\(\\)"):
        ArrayProxy(SocketLike(), ((10,), np.int8))
