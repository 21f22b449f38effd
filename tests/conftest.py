import os

if os.environ.get("PROXYLIB_HIDE_PREAD") == "1":
    # the platforms without positional reads (Windows; macOS < 11 lacks preadv): hidden
    # before proxylib is imported, so io/ takes its seek + readinto fallback
    # (tests/test_portable_io.py runs the read property tests this way)
    for _name in ("pread", "preadv"):
        if hasattr(os, _name):
            delattr(os, _name)

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "default", max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "thorough", max_examples=3000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "quick", max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("PROXYLIB_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def gzip_isolated(tmp_path, monkeypatch):
    """A private index cache, empty gzip registries and small seek spacings."""
    from proxylib.io import compressed
    from proxylib.io.gzip import index_cache
    from proxylib.io.gzip import GzipConfig
    from proxylib.io.gzip import source as pgz
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "cache"))
    pgz.STATES.configure(GzipConfig(spacing=64 * 1024, readbuf=16 * 1024))
    compressed.SEQUENTIAL_CURSORS.clear()
    index_cache.reset_warning()
    yield
    pgz.STATES.configure(None)
    compressed.SEQUENTIAL_CURSORS.clear()
