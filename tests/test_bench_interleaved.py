"""The benchmark runner interleaves strategies round by round (fake strategies, a fake clock)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from proxylib.bench import runner, targets
from proxylib.bench.runner import Measurement, measure_cell
from proxylib.bench.strategies import Strategy
from proxylib.bench.workloads import Workload


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Recorder:
    """What every fake target did, in order, and which targets are open."""

    def __init__(self, clock=None):
        self.clock = clock or Clock()
        self.events = []      # ("open" | "read" | "drop", strategy name, key)
        self.live = set()


class FakeTarget:
    def __init__(self, name, recorder, durations, fail_at):
        self.name, self.recorder, self.durations, self.fail_at = name, recorder, durations, fail_at
        recorder.live.add(id(self))

    def read(self, workload):
        reads = sum(1 for e in self.recorder.events if e[:2] == ("read", self.name))
        self.recorder.events.append(("read", self.name, workload.key))
        if reads == self.fail_at:
            raise RuntimeError(f"{self.name} cannot read this")
        self.recorder.clock.now += self.durations[min(reads, len(self.durations) - 1)]
        return workload.key

    def close(self):
        self.recorder.live.discard(id(self))


def fake(name, recorder, durations=(2.0 ** -7,), fail_at=None, family="proxylib", settings=None,
         fresh_each_round=False):
    def open_target():
        recorder.events.append(("open", name, None))
        if fail_at == "open":
            raise OSError(f"{name} cannot open")
        return FakeTarget(name, recorder, durations, fail_at)
    return Strategy(name, family, open_target, settings=settings or {},
                    fresh_each_round=fresh_each_round)


def counting_workload(name="volume"):
    counter = itertools.count()
    return Workload(name, "key", -1, lambda rng: next(counter))


@pytest.fixture
def drops(monkeypatch):
    """Replace the page-cache drop (the tests run as root on CI: never drop it for real)."""
    def install(recorder):
        def drop(paths):
            assert not recorder.live, "a target was alive when the cache was dropped"
            recorder.events.append(("drop", None, None))
        monkeypatch.setattr(runner, "drop_page_cache", drop)
    return install


def rounds_of(events, kind, size):
    names = [name for e, name, _ in events if e == kind]
    return [names[i:i + size] for i in range(0, len(names), size)]


def test_cold_rounds_run_every_strategy_once_in_a_fresh_order(drops):
    recorder = Recorder()
    drops(recorder)
    names = ["a", "b", "c", "d"]
    results = measure_cell([fake(n, recorder) for n in names], counting_workload(), repeat=5,
                           memory=False, cold=True, rng=np.random.default_rng(7),
                           clock=recorder.clock)
    opens = rounds_of(recorder.events, "open", len(names))
    assert len(opens) == 1 + 5  # the probe round, then the timed ones
    assert all(sorted(group) == names for group in opens)  # each strategy once a round
    assert len({tuple(group) for group in opens}) > 1       # in a fresh order
    # every open in a cold round follows its own cache drop, with nothing left open
    kinds = [e for e, _, _ in recorder.events]
    assert kinds == ["drop", "open", "read"] * (len(names) * 6)
    assert not recorder.live
    assert [r.rounds for r in results] == [5] * 4 and {r.cache for r in results} == {"cold"}


def test_every_strategy_reads_its_own_fresh_key_each_round(drops):
    recorder = Recorder()
    drops(recorder)
    measure_cell([fake(n, recorder) for n in "ab"], counting_workload(), repeat=3,
                 memory=False, cold=True, rng=np.random.default_rng(0), clock=recorder.clock)
    keys = [key for e, _, key in recorder.events if e == "read"]
    assert len(keys) == 2 * (1 + 3) and len(set(keys)) == len(keys)


def test_paired_ratios_come_from_same_round_pairs(drops):
    recorder = Recorder()
    drops(recorder)
    # probe, then three rounds; per round: 3x the floor, 3x, 0.2x. Paired median 3.0;
    # medians 20 / 10 = 2.0; times paired after sorting would give 2.0 as well
    floor = fake("raw floor (pread)", recorder, (1.0, 1.0, 10.0, 100.0), family="raw")
    mine = fake("proxylib default", recorder, (1.0, 3.0, 30.0, 20.0),
                settings=dict(targets.DEFAULT))
    results = measure_cell([mine, floor], counting_workload("volume"), repeat=3, memory=False,
                           cold=True, rng=np.random.default_rng(1), clock=recorder.clock)
    by_name = {r.strategy: r for r in results}
    assert by_name["raw floor (pread)"].round_seconds == [1.0, 10.0, 100.0]
    assert by_name["proxylib default"].round_seconds == [3.0, 30.0, 20.0]
    outcome = next(o for o in targets.evaluate(results)
                   if o.target.label.startswith("cold one volume")
                   and o.strategy == "proxylib mmap='c' keep=False")
    assert outcome.paired == pytest.approx(3.0)
    assert outcome.of_medians == pytest.approx(2.0)
    assert outcome.ratio == outcome.paired and outcome.met is False


def test_paired_ratio_skips_rounds_either_side_missed():
    def row(times):
        return Measurement("s", "raw", "volume", 1.0, len(times), None, round_seconds=times)
    assert targets.paired_ratio(row([2.0, None, 9.0, 4.0]),
                                row([1.0, 1.0, None, 1.0])) == pytest.approx(3.0)
    assert targets.paired_ratio(row([None, 2.0]), row([1.0, None])) is None
    assert targets.paired_ratio(row([2.0]), Measurement("s", "raw", "v", 1.0, 1, None)) is None


def test_a_failing_strategy_is_reported_and_the_others_finish(drops):
    recorder = Recorder()
    drops(recorder)
    strategies = [fake("breaks in round 2", recorder, fail_at=2),
                  fake("cannot open", recorder, fail_at="open"),
                  fake("fine", recorder), fake("also fine", recorder)]
    results = measure_cell(strategies, counting_workload(), repeat=4, memory=False, cold=True,
                           rng=np.random.default_rng(3), clock=recorder.clock)
    by_name = {r.strategy: r for r in results}
    assert [r.strategy for r in results] == [s.name for s in strategies]
    assert by_name["breaks in round 2"].error == "RuntimeError: breaks in round 2 cannot read this"
    assert by_name["cannot open"].error == "OSError: cannot open cannot open"
    for name in ("breaks in round 2", "cannot open"):
        assert by_name[name].median_seconds is None and by_name[name].rounds == 0
    for name in ("fine", "also fine"):
        assert by_name[name].error is None and by_name[name].rounds == 4
        assert by_name[name].round_seconds == [2.0 ** -7] * 4  # binary fractions: exact sums
    reads = [name for e, name, _ in recorder.events if e == "read"]
    assert reads.count("breaks in round 2") == 3  # probe, round 1, the failed round 2
    assert not recorder.live


def test_warm_rounds_interleave_and_fast_strategies_get_more_of_them():
    recorder = Recorder()
    slow = fake("slow", recorder, (1.0,))
    quick = fake("quick", recorder, (2.0 ** -10,))  # about 1 ms: 300 rounds
    fresh = fake("fresh each round", recorder, (2.0 ** -10,), fresh_each_round=True)
    results = measure_cell([slow, quick, fresh], counting_workload(), repeat=3, memory=True,
                           rng=np.random.default_rng(5), clock=recorder.clock)
    by_name = {r.strategy: r for r in results}
    fast_rounds = runner.FAST_CELL_ROUNDS
    assert by_name["slow"].rounds == 3 and by_name["quick"].rounds == fast_rounds
    assert by_name["slow"].round_seconds == [1.0] * 3
    assert by_name["quick"].round_seconds == [2.0 ** -10] * fast_rounds
    reads = [name for e, name, _ in recorder.events if e == "read"]
    # probe and the first three rounds: each strategy once; then the two fast ones only
    assert all(sorted(reads[i:i + 3]) == ["fresh each round", "quick", "slow"]
               for i in range(0, 12, 3))
    assert "slow" not in reads[12:-3] and sorted(reads[-3:]) == sorted(reads[:3])  # traced
    opens = [name for e, name, _ in recorder.events if e == "open"]
    assert opens.count("slow") == 1 and opens.count("quick") == 1  # warm targets are kept
    assert opens.count("fresh each round") == 1 + fast_rounds + 1  # plus the traced read's
    assert all(r.peak_bytes is not None and r.cache == "warm" for r in results)
    assert not recorder.live


def test_paired_spread_script_reads_a_run_and_sees_shared_drift(tmp_path):
    import os
    import subprocess
    import sys

    from proxylib.bench import report
    drift = [1.0, 2.0, 4.0, 8.0, 16.0]  # both strategies slowed alike, round by round
    results = [
        Measurement("raw floor (pread)", "raw", "volume", 4.0, 5, None, cache="cold",
                    round_seconds=[0.004 * d for d in drift]),
        Measurement("proxylib mmap='c' keep=False", "proxylib", "volume", 4.8, 5, None,
                    settings=dict(targets.DEFAULT), cache="cold",
                    round_seconds=[0.0048 * d for d in drift]),
    ]
    run = tmp_path / "run.json"
    run.write_text(report.to_json(results, "f.nii"))
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
    script = os.path.join(root, "benchmarks", "paired_spread.py")
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, script, str(run)], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout
    rows = [line.split()[-6:] for line in out.splitlines()
            if line.startswith("cold one volume")]
    # unpaired log ratios: ln 1.2 + k ln 2, k = i - j != 0; their median deviation 2 ln 2
    assert rows == [["5", "+1.00", "0.000", "1.386", "1.20", "1.20"]]


def test_a_cold_run_starts_every_warm_cell_from_a_dropped_then_read_cache(tmp_path, monkeypatch):
    # pages a cold cell faulted in one at a time must not carry into the warm cells
    import proxylib
    from proxylib.bench.runner import run_benchmark

    path = str(tmp_path / "v.nii")
    proxylib.save(proxylib.Nifti1Image(np.zeros((4, 3, 2, 2), np.float32), np.eye(4)), path)
    events = []
    monkeypatch.setattr(runner, "drop_page_cache", lambda paths: events.append("drop"))
    monkeypatch.setattr(runner, "warm_page_cache", lambda paths: events.append("warm"))
    real_measure = runner.measure_cell

    def measure(strategies, workload, *args, cold=False, **kwargs):
        events.append("cold cell" if cold else "warm cell")
        return real_measure(strategies, workload, *args, cold=cold, **kwargs)

    monkeypatch.setattr(runner, "measure_cell", measure)
    run_benchmark(path, workload_names=("volume", "time series"), repeat=1, memory=False,
                  include_peers=False, cold=True)
    cells = [i for i, e in enumerate(events) if e.endswith("cell")]
    warm = [i for i in cells if events[i] == "warm cell"]
    assert len(warm) == 2 and len(cells) == 4
    assert all(events[i - 2:i] == ["drop", "warm"] for i in warm)
