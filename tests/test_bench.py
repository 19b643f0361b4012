"""`mlplat bench` knows every benchmark module, and each names the figures the issues ask for."""

from __future__ import annotations

import importlib
from pathlib import Path

from mlplat import bench

ROOT = Path(__file__).resolve().parent.parent


def test_every_bench_module_is_registered():
    here = ROOT / "mlplat" / "bench"
    on_disk = {f"mlplat.bench.{p.stem}" for p in here.glob("*.py") if p.stem != "__init__"}
    assert set(bench.MODULES) == on_disk
    for name in bench.MODULES:
        assert callable(importlib.import_module(name).run)
