"""The I/O-strategy benchmark as a product: ``proxylib bench`` and its Python API.

:func:`~proxylib.bench.runner.run_benchmark` times standard workloads
(:mod:`~proxylib.bench.workloads`) over every read strategy that applies to
a file (:mod:`~proxylib.bench.strategies`), and
:mod:`~proxylib.bench.report` turns the measurements into a table, a
recommendation, JSON and a chart.
"""

from .runner import Measurement, run_benchmark
from .volume import make_default_volume

__all__ = ["Measurement", "run_benchmark", "make_default_volume"]
