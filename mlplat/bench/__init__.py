"""Benchmarks behind `mlplat bench`: they print figures and are never part of the test pass/fail.

Each module in MODULES exposes `run(quick: bool) -> dict[str, float]`, the figures it measures
under the names the issues give them (e.g. `features_batch_rows_per_s`).
"""

import time
from collections.abc import Callable

MODULES: tuple[str, ...] = (
    "mlplat.bench.ml",
    "mlplat.bench.spend",
    "mlplat.bench.serving",
    "mlplat.bench.drift",
    "mlplat.bench.monitoring",
    "mlplat.bench.preview",
    "mlplat.bench.sandbox",
    "mlplat.bench.pipeline",
)


def latency_ms(once: Callable[[], object], *, quick: bool) -> tuple[float, float]:
    """p50 and p99 in milliseconds of `once()` (one request through a handler), after a warm-up
    of 200 calls: 300 timed calls when `quick`, else 3,000."""
    import numpy as np

    for _ in range(200):
        once()
    timings = []
    for _ in range(300 if quick else 3000):
        start = time.perf_counter()
        once()
        timings.append(time.perf_counter() - start)
    ms = np.array(timings) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
