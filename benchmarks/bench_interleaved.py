"""One volume ``[..., t]`` with every strategy alternating round by round.

The steadier form of bench_core's one-volume group (see interleaved.py):
its medians join the ratio table as group "volume [..., t], interleaved".
The figure of record for the core issue's "within 1.3x of raw preadv".
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from interleaved import time_strategies  # noqa: E402

ROUNDS = 500


def bench_one_volume_interleaved(benchmark, volume, record_medians):
    times = benchmark.pedantic(time_strategies, args=(volume.path, volume.shape, volume.offset,
                                                      ROUNDS), rounds=1, iterations=1)
    record_medians("volume [..., t], interleaved",
                   {name: float(np.median(values)) for name, values in times.items()})
