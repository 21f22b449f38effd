"""Differential corpus: gzip streams laid out as gzip -1..-9, pigz, BGZF and flushing
writers lay them out, read through every decoding path and compared with the
standard library (proxylib.testing.gzip_corpus builds and decodes them)."""

from __future__ import annotations


import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxylib
from proxylib import ArrayProxy
from proxylib.io.gzip import GzipConfig
from proxylib.io.gzip import source as pgz
from proxylib.io.gzip import jump as gzip_jump
from proxylib.testing import gzip_corpus as corpus

SPACING = 40 * 1024   # indexed_gzip needs more than its 32 KiB window
#: Small spacing and read buffer (member headers outgrow it); STREAM_ONLY: every read
#: streams from the start or on.
CONFIG = GzipConfig(spacing=SPACING, readbuf=16 * 1024)
STREAM_ONLY = GzipConfig(spacing=SPACING, jump=1 << 62, readbuf=16 * 1024)


def walk() -> np.ndarray:
    """A float random walk, as in the issue's repro (mantissas barely compress)."""
    steps = np.random.default_rng(0).standard_normal((32, 32, 16, 6))
    return np.cumsum(steps, 0).astype(np.float32)


def scan() -> np.ndarray:
    """An int16 'scan': smooth, zero background, noise inside."""
    rng = np.random.default_rng(1)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in (32, 32, 20)), indexing="ij")
    inside = (x * x + y * y + z * z) < 0.8
    vols = [np.where(inside, 1000 + 40 * t + rng.integers(-50, 50, inside.shape), 0)
            for t in range(8)]
    return np.stack(vols, -1).astype(np.int16)


@pytest.fixture(scope="module")
def payloads(tmp_path_factory):
    """(name, .nii.gz bytes as written, array): walk saved by proxylib, scan by nibabel."""
    folder = tmp_path_factory.mktemp("corpus-src")
    out = []
    for name, array, writer in (("walk", walk(), "proxylib"), ("scan", scan(), "nibabel")):
        path = folder / f"{name}.nii.gz"
        if writer == "proxylib":
            proxylib.save(proxylib.Nifti1Image(array, np.eye(4)), path)
        else:
            nib.save(nib.Nifti1Image(array, np.eye(4)), path)
        out.append((name, path.read_bytes(), array))
    return out


@pytest.fixture
def small_spacing(gzip_isolated):
    pgz.STATES.configure(CONFIG)


def check_reads(proxy, array: np.ndarray, seed: int) -> None:
    """Every volume (in a shuffled order), random slabs and a mask, against numpy."""
    rng = np.random.default_rng(seed)
    for t in rng.permutation(array.shape[-1]):
        np.testing.assert_array_equal(proxy[..., t], array[..., t], err_msg=f"volume {t}")
    for _ in range(3):
        key = []
        for n in array.shape:
            a, b = sorted(rng.integers(0, n + 1, 2))
            key.append(slice(a, max(b, a + 1)))
        np.testing.assert_array_equal(proxy[tuple(key)], array[tuple(key)], err_msg=str(key))
    mask = rng.random(array.shape[:3]) < 0.05
    np.testing.assert_array_equal(proxy[mask], array[mask])


def fresh_states() -> None:
    pgz.STATES.clear()


def read_path(path: str, array: np.ndarray, how: str, monkeypatch, seed: int) -> None:
    """Read ``path`` (a .nii.gz) through one decoding path and compare."""
    pgz.STATES.configure(CONFIG)
    if how == "stream":                        # every read streams from the start or on
        pgz.STATES.configure(STREAM_ONLY)
    elif how == "jump":                        # isal from the saved index's points
        proxylib.build_index(path, spacing=SPACING)
        fresh_states()
    elif how == "indexed":                     # the indexed_gzip reader only
        monkeypatch.setattr(gzip_jump, "HAVE_ISAL", False)
    dataobj = proxylib.load(path).dataobj
    check_reads(dataobj, array, seed)
    if how == "jump" and len(array.tobytes()) > 4 * SPACING:
        state = pgz.STATES.values()[0]
        assert state.jumps.bytes_read > 0, "no isal jump was made"


def read_remote(stream: bytes, array: np.ndarray, seed: int, name: str) -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    target = f"/corpus/{name}.nii.gz"
    memory.pipe(target, stream)
    try:
        check_reads(proxylib.load(f"memory://{target}").dataobj, array, seed)
    finally:
        memory.rm(target)


PATHS = ["stream", "jump", "indexed", "remote"]
LAYOUTS = list(corpus.standard_layouts(400_000))


@pytest.mark.parametrize("how", PATHS)
@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_layout_reads_exactly(payloads, layout, how, small_spacing, tmp_path, monkeypatch):
    number = LAYOUTS.index(layout)
    name, written, array = payloads[number % 2]
    stream = corpus.compress(corpus.reference(written), layout)
    assert corpus.reference(stream) == corpus.reference(written)
    if how == "remote":
        read_remote(stream, array, number, f"{name}-{number}")
        return
    path = tmp_path / f"{name}.nii.gz"
    path.write_bytes(stream)
    read_path(str(path), array, how, monkeypatch, number)


@pytest.mark.parametrize("how", PATHS)
@pytest.mark.parametrize("which", [0, 1], ids=["walk-by-proxylib", "scan-by-nibabel"])
def test_files_as_written_read_exactly(payloads, which, how, small_spacing, tmp_path,
                                       monkeypatch):
    name, written, array = payloads[which]
    if how == "remote":
        read_remote(written, array, which, name)
        return
    path = tmp_path / f"{name}.nii.gz"
    path.write_bytes(written)
    read_path(str(path), array, how, monkeypatch, which)


SHAPE = (40, 30, 20)   # 48,000 bytes of int16 -> 96 KB... see RAW below
RAW = np.random.default_rng(7).integers(0, 3, (96, 64, 32), dtype=np.int16) * 700


@st.composite
def layouts(draw):
    size = RAW.nbytes
    cuts = tuple(sorted(draw(st.lists(st.integers(0, size), max_size=4))))
    return corpus.Layout(
        level=draw(st.integers(0, 9)), flush=draw(st.sampled_from(sorted(corpus.FLUSHES))),
        flush_every=draw(st.integers(1, 200_000)), members=cuts,
        empty_last=draw(st.booleans()),
        trailer=draw(st.sampled_from([b"", b"\0" * 9, b"not gzip"])))


@settings(max_examples=12)
@given(layout=layouts(), how=st.sampled_from(["stream", "jump", "indexed"]),
       seed=st.integers(0, 2**16))
def test_generated_layouts_read_exactly(layout, how, seed, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        pgz.STATES.configure(CONFIG)
        stream = corpus.compress(RAW.tobytes(order="F"), layout)
        path = str(tmp_path_factory.mktemp("gen") / "raw.gz")
        with open(path, "wb") as out:
            out.write(stream)
        fresh_states()
        if how == "stream":
            pgz.STATES.configure(STREAM_ONLY)
        elif how == "jump":
            proxylib.build_index(path, spacing=SPACING)
            fresh_states()
        else:
            monkeypatch.setattr(gzip_jump, "HAVE_ISAL", False)
        proxy = ArrayProxy(path, (RAW.shape, np.int16, 0, 1.0, 0.0))
        try:
            check_reads(proxy, RAW, seed)
        finally:
            pgz.STATES.configure(None)
