"""Import cost of proxylib against numpy, in fresh interpreters.

Each round starts two new interpreters, one timing ``import numpy`` and one
timing ``import proxylib`` (which includes numpy), in random order, with
``time.perf_counter`` around the import statement alone (interpreter start-up
is the same for both and left out). Prints the medians and their ratio, and
the optional packages ``import proxylib`` pulled in (there should be none).

Bytecode is cached as in an installed package (pip compiles ``.pyc`` files):
the children write and read it under a temporary ``PYTHONPYCACHEPREFIX``,
with ``PYTHONDONTWRITEBYTECODE`` removed, after one warm-up import of each.
Without that a checkout recompiles proxylib's sources on every run.

    python benchmarks/import_time.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

OPTIONAL = ("dask", "distributed", "fsspec", "aiohttp", "matplotlib", "nibabel",
            "hypothesis", "xarray")

_CHILD = """
import sys, time, json
start = time.perf_counter()
import {module}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed,
                  "optional": [m for m in {optional!r} if m in sys.modules]}}))
"""


def time_import(module: str, env: Dict[str, str]) -> Dict[str, object]:
    """Seconds one fresh interpreter spends in ``import module``, and what it pulled in."""
    code = _CHILD.format(module=module, optional=OPTIONAL)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env).stdout
    return json.loads(out)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    times: Dict[str, List[float]] = {"numpy": [], "proxylib": []}
    pulled = set()
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for module in times:  # warm-up: writes the bytecode cache
            time_import(module, env)
        _rounds(args.rounds, times, pulled, env)
    numpy_ms = statistics.median(times["numpy"]) * 1e3
    proxylib_ms = statistics.median(times["proxylib"]) * 1e3
    print(f"rounds: {args.rounds}")
    print(f"import numpy     median {numpy_ms:7.1f} ms")
    print(f"import proxylib  median {proxylib_ms:7.1f} ms (numpy included)")
    print(f"ratio proxylib / numpy: {proxylib_ms / numpy_ms:.2f}")
    print(f"optional packages imported by proxylib: {sorted(pulled) or 'none'}")


def _rounds(rounds: int, times: Dict[str, List[float]], pulled: set,
            env: Dict[str, str]) -> None:
    for _ in range(rounds):
        order = list(times)
        random.shuffle(order)
        for module in order:
            result = time_import(module, env)
            times[module].append(float(result["seconds"]))
            if module == "proxylib":
                pulled.update(result["optional"])


if __name__ == "__main__":
    main()
