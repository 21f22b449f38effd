"""Sparse reads with keep_file_open=False: a fresh map or preads, chosen by measured cost.

The clock is injected, so what each way "costs" is set by the test; the
values are checked against numpy on every access, whichever way served it.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import proxylib.execute as execute
from proxylib import ArrayProxy
from proxylib.execute_measured import MEASURED_MIN_ROWS, MeasuredChoice
from proxylib.io import sources


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_static_answer_first_then_the_other_then_the_cheaper() -> None:
    clock = FakeClock()
    choice = MeasuredChoice(clock)
    assert choice.pick(True) is True
    choice.record(True, 10.0, 100)  # the map: 0.1 s a row
    assert choice.pick(True) is False  # the other way, once, to measure it
    choice.record(False, 1.0, 100)
    assert [choice.pick(True) for _ in range(5)] == [False] * 5
    assert choice.costs() == {"map": 0.1, "reads": 0.01}


def test_the_other_way_is_tried_every_explore_every_picks() -> None:
    choice = MeasuredChoice(FakeClock())
    choice.record(True, 1.0, 100)
    choice.record(False, 2.0, 100)
    picks = [choice.pick(True) for _ in range(3 * MeasuredChoice.EXPLORE_EVERY)]
    assert picks.count(False) == 3
    assert all(picks[i] is False for i in range(MeasuredChoice.EXPLORE_EVERY - 1, len(picks),
                                                MeasuredChoice.EXPLORE_EVERY))


def test_the_average_follows_a_change_in_cost() -> None:
    choice = MeasuredChoice(FakeClock())
    choice.record(True, 1.0, 100)
    choice.record(False, 2.0, 100)
    for _ in range(20):  # the map became ten times dearer (pages now in small folios)
        choice.record(True, 10.0, 100)
    assert choice.costs()["map"] == pytest.approx(0.1, rel=0.01)
    assert choice.pick(True) is False


def test_a_trial_records_only_what_it_chose_and_only_on_success() -> None:
    clock = FakeClock()
    choice = MeasuredChoice(clock)
    with choice.trial() as trial:  # never asked to choose: nothing to record
        clock.now += 5
    assert choice.costs() == {"map": None, "reads": None}
    with choice.trial() as trial:
        assert trial.choose(True, MEASURED_MIN_ROWS - 1) is True  # too few rows to time
        clock.now += 5
    assert choice.costs() == {"map": None, "reads": None}
    with pytest.raises(RuntimeError):
        with choice.trial() as trial:
            trial.choose(True, MEASURED_MIN_ROWS)
            clock.now += 5
            raise RuntimeError("the read failed")
    assert choice.costs() == {"map": None, "reads": None}
    with choice.trial() as trial:
        trial.choose(True, 100)
        clock.now += 5
    assert choice.costs() == {"map": 0.05, "reads": None}


@pytest.fixture
def stored(tmp_path):
    data = np.random.default_rng(7).standard_normal((12, 11, 10, 6)).astype("<f4")
    path = tmp_path / "vol.raw"
    path.write_bytes(b"\0" * 48 + data.tobytes(order="F"))
    return path, data


def _mask(shape, count, rng):
    mask = np.zeros(shape, bool)
    mask.flat[rng.choice(mask.size, count, replace=False)] = True
    return mask


def _timed_ways(monkeypatch, clock, map_seconds, read_seconds):
    """Make the map gather and the pread rows advance ``clock``; record which ran."""
    used = []
    gather, read_rows = execute.gather_rows_from_map, execute.read_rows

    def timed_gather(*args, **kwargs):
        used.append("map")
        clock.now += map_seconds
        return gather(*args, **kwargs)

    def timed_reads(*args, **kwargs):
        used.append("reads")
        clock.now += read_seconds
        return read_rows(*args, **kwargs)

    monkeypatch.setattr(execute, "gather_rows_from_map", timed_gather)
    monkeypatch.setattr(execute, "read_rows", timed_reads)
    return used


@pytest.mark.parametrize("map_seconds, read_seconds, settles_on", [(5.0, 1.0, "reads"),
                                                                  (1.0, 5.0, "map")])
def test_a_per_access_proxy_settles_on_the_way_that_was_faster(
        stored, monkeypatch, map_seconds, read_seconds, settles_on) -> None:
    path, data = stored
    proxy = ArrayProxy(path, (data.shape, "<f4", 48), keep_file_open=False, mmap=True)
    clock = FakeClock()
    proxy._measured = MeasuredChoice(clock)
    used = _timed_ways(monkeypatch, clock, map_seconds, read_seconds)
    rng = np.random.default_rng(3)
    for _ in range(10):  # 20 voxels x 6 volumes: 120 rows a mask
        mask = _mask(data.shape[:3], 20, rng)
        np.testing.assert_array_equal(proxy[mask], data[mask])
    assert used[:2] == ["map", "reads"]  # the static answer, then the other once
    assert used[2:] == [settles_on] * 8


def test_small_selections_and_kept_maps_are_not_timed(stored, monkeypatch) -> None:
    path, data = stored
    rng = np.random.default_rng(5)
    per_access = ArrayProxy(path, (data.shape, "<f4", 48), keep_file_open=False, mmap=True)
    mask = _mask(data.shape[:3], 2, rng)  # 12 rows: below MEASURED_MIN_ROWS
    np.testing.assert_array_equal(per_access[mask], data[mask])
    assert per_access._measured.costs() == {"map": None, "reads": None}
    kept = ArrayProxy(path, (data.shape, "<f4", 48), keep_file_open=True, mmap=True)
    mask = _mask(data.shape[:3], 40, rng)
    np.testing.assert_array_equal(kept[mask], data[mask])
    assert kept._measured.costs() == {"map": None, "reads": None}
    kept.close()


def test_a_cold_file_is_read_by_preads_and_not_timed(stored, monkeypatch) -> None:
    path, data = stored
    monkeypatch.setattr(sources, "looks_cold", lambda fd, size=None: True)
    proxy = ArrayProxy(path, (data.shape, "<f4", 48), keep_file_open=False, mmap=True)
    used = _timed_ways(monkeypatch, FakeClock(), 1.0, 1.0)
    mask = _mask(data.shape[:3], 30, np.random.default_rng(9))
    np.testing.assert_array_equal(proxy[mask], data[mask])
    assert used == ["reads"]
    assert proxy._measured.costs() == {"map": None, "reads": None}


def test_measured_costs_are_not_pickled(stored) -> None:
    path, data = stored
    proxy = ArrayProxy(path, (data.shape, "<f4", 48), keep_file_open=False, mmap=True)
    mask = _mask(data.shape[:3], 30, np.random.default_rng(1))
    proxy[mask]
    assert proxy._measured.costs()["map"] is not None
    clone = pickle.loads(pickle.dumps(proxy))
    assert clone._measured.costs() == {"map": None, "reads": None}
    np.testing.assert_array_equal(clone[mask], data[mask])
    assert proxy.copy()._measured is not proxy._measured
