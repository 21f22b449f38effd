"""How much pairing rounds matters in a ``proxylib bench --cold --json`` run.

For every issue-16 target (``proxylib.bench.targets``): how many same-round
pairs the two strategies have, the correlation of their log round times, and
the median absolute deviation of the log ratio taken in the same round
(paired) against the log ratios of all pairs of different rounds (unpaired),
with the paired ratio and the ratio of medians. Positive correlation and a
smaller paired spread mean the rounds shared conditions that pairing cancels.

    python benchmarks/paired_spread.py RUN.json

No timing is done here; it reads a run's ``round_seconds``.
"""

from __future__ import annotations

import argparse
import json
from typing import Iterator, List, Sequence, Tuple

import numpy as np

from proxylib.bench import targets
from proxylib.bench.runner import Measurement


def load_results(path: str) -> List[Measurement]:
    with open(path) as handle:
        payload = json.load(handle)
    runs = payload if isinstance(payload, list) else [payload]
    return [Measurement(**row) for run in runs for row in run["results"]]


def _mad(values: np.ndarray) -> float:
    return float(np.median(np.abs(values - np.median(values))))


def spreads(results: Sequence[Measurement]) -> Iterator[Tuple[str, str, int, float, float, float,
                                                             float, float]]:
    """(target, strategy, pairs, correlation, paired MAD, unpaired MAD, paired, of medians)."""
    for target in targets.TARGETS:
        rows = [r for r in results
                if r.cache == target.cache and r.workload.startswith(target.workload)]
        base = targets.fastest_row(rows, target.baseline)
        for settings in target.settings:
            mine = targets.fastest_row(rows, settings)
            if mine is None or base is None:
                continue
            pairs = [(a, b) for a, b in zip(mine.round_seconds or (), base.round_seconds or ())
                     if a and b]
            if len(pairs) < 3:
                continue
            logs = np.log(np.array(pairs))
            paired = logs[:, 0] - logs[:, 1]
            others = ~np.eye(len(pairs), dtype=bool)
            unpaired = (logs[:, 0][:, None] - logs[:, 1][None, :])[others]
            yield (target.label, mine.strategy, len(pairs),
                   float(np.corrcoef(logs[:, 0], logs[:, 1])[0, 1]), _mad(paired),
                   _mad(unpaired), targets.paired_ratio(mine, base),
                   mine.median_seconds / base.median_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a proxylib bench --cold --json output")
    args = parser.parse_args()
    print(f"{'target':60s} {'strategy':34s} {'pairs':>5s} {'corr':>6s} {'MAD paired':>10s} "
          f"{'unpaired':>8s} {'paired':>6s} {'medians':>7s}")
    for label, strategy, n, corr, mad_p, mad_u, paired, medians in spreads(
            load_results(args.run)):
        print(f"{label:60s} {strategy:34s} {n:5d} {corr:+6.2f} {mad_p:10.3f} {mad_u:8.3f} "
              f"{paired:6.2f} {medians:7.2f}")


if __name__ == "__main__":
    main()
