"""dask.distributed with 2 worker processes: proxies travel pickled (path + spec +
policy), each worker reads its own chunks, gzip workers import the saved index."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask.array", reason="dask is not installed (pip install 'proxylib[dask]')")
distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'proxylib[dask]')")

import proxylib  # noqa: E402
from proxylib import ArrayProxy  # noqa: E402
from proxylib.daskarray import to_dask  # noqa: E402

SHAPE = (32, 32, 32, 40)      # 128 KiB volumes of int16, 5 MiB in all
SLOPE, INTER = 0.25, -3.0
SPACING = 128 * 1024          # parent-built index spacing, distinct from the default (256 KiB)


def _gzip_seek_points():
    """In this process: the uncompressed offsets of each gzip state's seek points.

    A saved index is loaded straight into isal seek points (``state.index.points``);
    indexed_gzip's reader (``state.indexed.reader``) exists only where one was built.
    """
    from proxylib.io.gzip import source as pgzip
    found = []
    for state in list(pgzip.STATES.values()):
        if state.index.points is not None:
            found.append([int(u) for u in state.index.points.uncompressed])
        elif state.indexed.reader is not None:
            found.append([int(u) for u, _ in state.indexed.reader.seek_points()])
    return found


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(7)
    stored = rng.integers(-2000, 2000, size=SHAPE, dtype=np.int16)
    raw = folder / "bold.raw"
    stored.T.tofile(raw)  # F order
    proxy = ArrayProxy(raw, (SHAPE, np.int16, 0, SLOPE, INTER))
    img = proxylib.Nifti1Image(proxy, np.eye(4))
    proxylib.save(img, folder / "bold.nii")
    proxylib.save(img, folder / "bold.nii.gz")
    values = stored.astype(np.float64) * SLOPE + INTER
    return folder, values


@pytest.mark.slow
def test_local_cluster_two_processes(files, tmp_path, monkeypatch):
    folder, values = files
    cache = tmp_path / "cache"
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(cache))   # inherited by the workers
    from proxylib import build_index
    from proxylib.io.gzip import source as pgzip
    pgzip.STATES.clear()   # only this file's state: earlier tests' large reads load points too
    saved = build_index(folder / "bold.nii.gz", spacing=SPACING)
    assert saved is not None and saved.exists()
    [parent_points] = _gzip_seek_points()
    assert len(parent_points) > 12  # 128 KiB spacing over 2.6 MB; the default gives about 10

    mask = values.mean(axis=-1) > 0
    expected_mean = values.mean(axis=-1)
    expected_masked = values[mask].mean(axis=0)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        pids = set(client.run(lambda: __import__("os").getpid()).values())
        assert len(pids) == 2 and __import__("os").getpid() not in pids
        for name in ("bold.nii", "bold.nii.gz"):
            img = proxylib.load(folder / name)
            assert img.dataobj.dtype == np.float64
            arr = img.to_dask(chunks=(-1, -1, -1, 5))
            assert arr.dtype == np.float64 and arr.numblocks[3] == 8
            mean = arr.mean(axis=-1)
            masked = (arr * mask[..., None]).sum(axis=(0, 1, 2)) / mask.sum()
            got_mean, got_masked = client.compute([mean, masked], sync=True)
            np.testing.assert_allclose(got_mean, expected_mean, rtol=1e-12)
            np.testing.assert_allclose(got_masked, expected_masked, rtol=1e-12)
            # every worker took part
            who = client.run(lambda dask_worker: len(dask_worker.data) >= 0)
            assert len(who) == 2
        # gzip readers on the workers that jumped ahead imported the parent's index
        # (128 KiB spacing; one they built themselves would use the 256 KiB default)
        states = [points for per_worker in client.run(_gzip_seek_points).values()
                  for points in per_worker]
        assert states, "no worker used the gzip seek index"
        assert all(points == parent_points for points in states)


@pytest.mark.slow
def test_distributed_proxy_from_raw_path(files):
    folder, values = files
    proxy = ArrayProxy(folder / "bold.nii", (SHAPE, np.int16, 352, SLOPE, INTER))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        arr = to_dask(proxy, chunks=(-1, -1, 8, 10))
        future = client.compute(arr[5:20, :, 3:30, ::3].std(axis=-1))
        np.testing.assert_allclose(future.result(), values[5:20, :, 3:30, ::3].std(axis=-1),
                                   rtol=1e-12)
