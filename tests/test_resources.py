"""Descriptors and memory stay flat: per-access handles, kept handles, failing reads."""

import gc
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import proxylib
from proxylib import ArrayProxy

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


def open_descriptors(path):
    """Descriptors this process holds on ``path`` (a memory map holds one too).

    Counting only the file under test keeps other tests' leftovers (sockets of
    a server thread winding down, garbage with handles) out of the count.
    """
    target = os.path.realpath(path)
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == target
        except OSError:  # closed since listed (the listing's own descriptor, say)
            pass
    return count


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    data = np.arange(6 * 5 * 4 * 3, dtype=np.int16).reshape(6, 5, 4, 3)
    path = str(tmp_path_factory.mktemp("res") / "img.nii")
    proxylib.save(proxylib.Nifti1Image(data, np.eye(4)), path)
    return path


@needs_proc
@pytest.mark.parametrize("mmap", [True, False])
def test_no_descriptor_held_after_10000_accesses(image_path, mmap):
    proxy = proxylib.load(image_path, mmap=mmap, keep_file_open=False).dataobj
    before = open_descriptors(image_path)
    for i in range(10_000):
        proxy[i % 6, :, i % 4]
    assert open_descriptors(image_path) == before


@needs_proc
@pytest.mark.parametrize("mmap", [True, False])
def test_kept_handles_one_per_proxy_none_after_close_or_collection(image_path, mmap):
    before = open_descriptors(image_path)
    proxies = [proxylib.load(image_path, mmap=mmap, keep_file_open=True).dataobj
               for _ in range(5)]
    for proxy in proxies:
        for i in range(200):
            proxy[i % 6]
            proxy[..., i % 3]
    assert open_descriptors(image_path) == before + 5
    proxies[0].close()
    assert open_descriptors(image_path) == before + 4
    del proxies[1]
    gc.collect()
    assert open_descriptors(image_path) == before + 3
    for proxy in proxies[1:]:
        proxy.close()
    assert open_descriptors(image_path) == before


@needs_proc
def test_results_hold_no_descriptor_or_mapping(image_path):
    proxy = proxylib.load(image_path, keep_file_open=False).dataobj
    before = open_descriptors(image_path)
    results = [proxy[i % 6] for i in range(100)] + [proxy[..., 1], proxy[1, 2, 3, 0]]
    assert open_descriptors(image_path) == before
    maps = open("/proc/self/maps").read()
    assert image_path not in maps
    del results


@needs_proc
def test_failing_reads_leave_descriptors_and_memory_flat(tmp_path):
    path = tmp_path / "short.bin"
    path.write_bytes(b"\0" * 100)
    proxy = ArrayProxy(str(path), ((10, 10, 10), np.float32))
    missing = ArrayProxy(str(tmp_path / "missing.bin"), ((10,), np.float32))
    for _ in range(200):  # warm up caches and interned strings
        with pytest.raises(proxylib.TruncatedFileError):
            proxy[0]
    before = open_descriptors(path)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            try:
                proxy[0]
            except proxylib.TruncatedFileError:
                pass
            try:
                missing[0]
            except FileNotFoundError:
                pass
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert open_descriptors(path) == before
    assert growth < 256 * 1024, f"memory grew by {growth} bytes over 20,000 failing reads"


def test_thousand_images_under_rlimit_nofile_64(tmp_path, image_path):
    """Run in a subprocess so the limit applies whatever the test runner holds open."""
    script = textwrap.dedent(f"""
        import resource, shutil, sys
        import numpy as np
        import proxylib
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        expected = proxylib.load({image_path!r}).get_fdata()
        images = [proxylib.load({image_path!r}) for _ in range(1000)]
        for i, image in enumerate(images):
            assert np.array_equal(image.dataobj[..., i % 3], expected[..., i % 3])
        gz = {str(tmp_path / 'img.nii.gz')!r}
        proxylib.save(images[0], gz)
        gz_images = [proxylib.load(gz) for _ in range(1000)]
        for i, image in enumerate(gz_images):
            assert np.array_equal(image.dataobj[i % 6], expected[i % 6])
        print("ok", len(images) + len(gz_images))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok 2000"
