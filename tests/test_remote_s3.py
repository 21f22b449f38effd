"""s3:// URLs through s3fs against a real S3-compatible server: moto's standalone
server, started here on 127.0.0.1 (no network, no real credentials).

Requests and bytes are counted by botocore's own event hooks (below proxylib), so
"one volume is one ranged GET of about its size" is checked from outside."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'proxylib[s3]')")
moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server",
                                  reason="moto[server] is not installed")

import proxylib  # noqa: E402
from proxylib import ArrayProxy, FileChangedError  # noqa: E402
from proxylib.errors import FileAccessError, MissingFileError  # noqa: E402
from proxylib.io.remote import RemoteGzipFile  # noqa: E402

from test_remote_defects import nifti_bytes  # noqa: E402

SHAPE = (32, 32, 16, 20)          # 32 KiB int16 volumes, 640 KiB in all
VOLUME = 32 * 32 * 16 * 2
OFFSET = 352
BUCKET = "proxylib-test"


@pytest.fixture(scope="module")
def stored():
    return np.random.default_rng(41).integers(-2000, 2000, size=SHAPE, dtype=np.int16)


@pytest.fixture(scope="module")
def big_stored():
    """Several MiB compressed: larger than indexed_gzip's 1 MiB read buffer, so a read
    that starts from a saved seek point fetches visibly less than the whole file."""
    return np.random.default_rng(43).integers(-2000, 2000, size=(64, 64, 32, 24),
                                              dtype=np.int16)


@pytest.fixture(scope="module")
def endpoint(stored, big_stored):
    """A moto S3 server on a free loopback port, with the test bucket filled, for this module."""
    saved = {name: os.environ.get(name) for name in ("AWS_EC2_METADATA_DISABLED",
                                                      "AWS_CONFIG_FILE",
                                                      "AWS_SHARED_CREDENTIALS_FILE")}
    # botocore must never look for credentials or a region anywhere but in the options
    os.environ.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
                      AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = store_client(url)
        client.create_bucket(Bucket=BUCKET)
        data = nifti_bytes(stored)
        client.put_object(Bucket=BUCKET, Key="bold.nii", Body=data)
        client.put_object(Bucket=BUCKET, Key="bold.nii.gz",
                          Body=gzip.compress(data, compresslevel=6, mtime=0))
        client.put_object(Bucket=BUCKET, Key="big.nii.gz",
                          Body=gzip.compress(nifti_bytes(big_stored), compresslevel=6, mtime=0))
        yield url
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def store_client(endpoint_url: str):
    """A plain boto3 client (moto's own dependency) to fill the bucket behind proxylib's back."""
    import boto3
    return boto3.client("s3", endpoint_url=endpoint_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")


def options_for(endpoint_url: str, key: str = "testing") -> dict:
    return {"key": key, "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint_url, "region_name": "us-east-1"}}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


class Counter:
    """GetObject calls and body bytes, as botocore sees them on one s3fs client."""

    def __init__(self, fs) -> None:
        self.gets = []
        fs.connect()  # makes fs.s3
        fs.s3.meta.events.register("after-call.s3.GetObject", self._seen)

    def _seen(self, http_response=None, parsed=None, **_):
        self.gets.append((parsed or {}).get("ContentLength"))


def test_nii_from_s3_one_volume_is_one_ranged_get(endpoint, stored):
    img = proxylib.load(f"s3://{BUCKET}/bold.nii", storage_options=options_for(endpoint))
    remote = img.dataobj.file_like
    counter = Counter(remote._fs)
    np.testing.assert_array_equal(img.dataobj[..., 7], stored[..., 7])
    assert counter.gets == [VOLUME]
    assert remote.requests >= 1 and remote.bytes_received >= VOLUME
    np.testing.assert_array_equal(img.dataobj[3, 4, 5, :], stored[3, 4, 5, :])
    # a time series is read through (gaps below the remote gap threshold): one GET
    assert len(counter.gets) == 2 and counter.gets[1] == (SHAPE[3] - 1) * VOLUME + 2
    proxy = ArrayProxy(f"s3://{BUCKET}/bold.nii", (SHAPE, np.int16, OFFSET),
                       storage_options=options_for(endpoint))
    np.testing.assert_array_equal(proxy[..., -1], stored[..., -1])


def test_nii_gz_from_s3_with_the_index_reused_by_another_process(endpoint, big_stored,
                                                                 cache_dir):
    stored = big_stored
    url = f"s3://{BUCKET}/big.nii.gz"
    img = proxylib.load(url, storage_options=options_for(endpoint))
    assert isinstance(img.dataobj.file_like, RemoteGzipFile)
    img.dataobj.file_like.build_index()
    np.testing.assert_array_equal(img.dataobj[..., 12], stored[..., 12])
    compressed = img.dataobj.file_like.compressed_size
    script = textwrap.dedent(f"""
        import json, sys, numpy as np, proxylib
        options = json.loads(sys.argv[1])
        img = proxylib.load({url!r}, storage_options=options)
        last = img.dataobj[..., -1]
        remote = img.dataobj.file_like
        print(json.dumps({{"sum": int(np.asarray(last, dtype=np.int64).sum()),
                          "bytes": remote.compressed_bytes_received}}))
    """)
    env = dict(os.environ, PROXYLIB_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", script, json.dumps(options_for(endpoint))],
                          capture_output=True, text=True, env=env, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["sum"] == int(stored[..., -1].astype(np.int64).sum())
    # the saved index let it start near the last volume, not at the top of the file
    assert found["bytes"] < compressed / 2, (found, compressed)


def test_missing_object_and_bucket_are_named(endpoint):
    with pytest.raises(MissingFileError, match="nothere.nii.*not found"):
        proxylib.load(f"s3://{BUCKET}/nothere.nii", storage_options=options_for(endpoint))
    with pytest.raises(MissingFileError, match="not found"):
        proxylib.load("s3://no-such-bucket/x.nii", storage_options=options_for(endpoint))


def test_bad_credentials_are_named(endpoint, monkeypatch):
    from moto import settings
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys now
    with pytest.raises(FileAccessError, match="refused access") as info:
        proxylib.load(f"s3://{BUCKET}/bold.nii",
                      storage_options=options_for(endpoint, key="not-a-key"))
    assert f"s3://{BUCKET}/bold.nii" in str(info.value)


def test_object_replaced_on_s3_is_noticed(endpoint, stored):
    options = options_for(endpoint)
    client = store_client(endpoint)
    client.put_object(Bucket=BUCKET, Key="moving.nii", Body=nifti_bytes(stored))
    img = proxylib.load(f"s3://{BUCKET}/moving.nii", storage_options=options)
    client.put_object(Bucket=BUCKET, Key="moving.nii", Body=nifti_bytes(stored[..., ::-1].copy()))
    with pytest.raises(FileChangedError, match="moving.nii"):
        img.dataobj[..., 0]


def test_temporal_mean_on_a_process_cluster(endpoint, stored, cache_dir):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.array")
    # to_dask opens the URL itself; the options travel with each task to the workers
    darr = proxylib.to_dask(f"s3://{BUCKET}/bold.nii", chunks=(-1, -1, -1, 5),
                            storage_options=options_for(endpoint))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1",
                                  worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        mean = client.compute(darr.mean(axis=-1)).result(timeout=120)
        pids = set(client.run(os.getpid).values())
    np.testing.assert_allclose(mean, stored.mean(axis=-1), rtol=1e-12)
    assert os.getpid() not in pids and len(pids) == 2
