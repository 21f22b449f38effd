"""The README's embedding guide is real code: its blocks run as written."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

pytest.importorskip("hypothesis")

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def guide_blocks():
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("## Embedding ArrayProxy", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_guide_reader_round_trips_and_passes_the_conformance_checks(tmp_path, monkeypatch):
    reader, usage = guide_blocks()
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_guide"}
    exec(compile(reader, "README.md: embedding guide reader", "exec"), namespace)
    exec(compile(usage, "README.md: embedding guide usage", "exec"), namespace)
    image = namespace["img"]
    assert type(image).__name__ == "RawImage"
    np.testing.assert_array_equal(np.asarray(image.dataobj), namespace["data"])
    assert sorted(os.listdir(tmp_path)) == ["case.json", "case.raw", "scan.json", "scan.raw"]


def test_guide_reader_is_lazy_and_streams_proxies(tmp_path, monkeypatch):
    reader, _ = guide_blocks()
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_guide"}
    exec(compile(reader, "README.md: embedding guide reader", "exec"), namespace)
    raw_image = namespace["RawImage"]
    data = np.arange(2 * 3 * 4 * 5, dtype=">f4").reshape(2, 3, 4, 5)
    raw_image(data).to_filename("a.raw")
    loaded = raw_image.load("a.raw")
    assert not loaded.in_memory
    raw_image(loaded.dataobj).to_filename("b.json")       # proxy to file, in blocks
    np.testing.assert_array_equal(np.asarray(raw_image.load("b.raw").dataobj), data)
    assert loaded.dataobj.dtype == np.dtype("float32")
