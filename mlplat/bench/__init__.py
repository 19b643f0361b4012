"""Benchmarks behind `mlplat bench`: they print figures and are never part of the test pass/fail.

Each module in MODULES exposes `run(quick: bool) -> dict[str, float]`, the figures it measures
under the names the issues give them (e.g. `features_batch_rows_per_s`).
"""

MODULES: tuple[str, ...] = (
    "mlplat.bench.ml",
    "mlplat.bench.spend",
    "mlplat.bench.serving",
    "mlplat.bench.drift",
    "mlplat.bench.sandbox",
    "mlplat.bench.pipeline",
)
