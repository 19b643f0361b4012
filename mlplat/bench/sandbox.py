"""Sandbox benchmarks: `mlplat sandbox` end to end on the `local` stack.

* `sandbox_s`: every step (server start, realize, verify, and the whole ML lifecycle), cold, in
  this process: what `make demo` makes a user wait for.
* `sandbox_realize_s`: the `realize-platform` step alone; `sandbox_rerun_realize_s`: the same
  program realized again against the same server (warm moto backends; nothing changes).
* `sandbox_lifecycle_s`: the ML steps alone (generate-data ... least-privilege), wall time: the
  run's less the platform steps' (which run one at a time; some ML steps run together).
* `sandbox_resources`: resources realized (the denominator for the seconds above).

`quick` changes nothing: the sandbox has one size.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path


def run(quick: bool) -> dict[str, float]:
    from rich.console import Console

    from mlplat.plan.preview import find_project_dir, load_stack
    from mlplat.sandbox.lifecycle import (
        ML_STEPS,
        STEPS,
        SandboxContext,
        SandboxReport,
        realize_platform,
        run_steps,
    )

    del quick
    settings, config = load_stack("local", find_project_dir())
    scratch = Path(tempfile.mkdtemp(prefix="mlplat-bench-sandbox-"))
    ctx = SandboxContext(
        settings=settings, config=config, scratch=scratch, report=SandboxReport(stack="local")
    )
    quiet = Console(quiet=True)
    try:
        started = time.perf_counter()
        report = run_steps(ctx, STEPS, console=quiet)
        total = time.perf_counter() - started
        if not report.ok:
            failed = [f"{s.name}: {s.error}" for s in report.steps if s.status == "failed"]
            raise RuntimeError(f"the sandbox failed: {'; '.join(failed)}")
        realize = next(s.seconds for s in report.steps if s.name == "realize-platform")
        ml_names = {s.name for s in ML_STEPS}
        platform = sum(s.seconds for s in report.steps if s.name.split(":")[0] not in ml_names)
        lifecycle = report.seconds - platform
        started = time.perf_counter()
        realize_platform(ctx)
        rerun = time.perf_counter() - started
        return {
            "sandbox_s": total,
            "sandbox_realize_s": realize,
            "sandbox_rerun_realize_s": rerun,
            "sandbox_lifecycle_s": lifecycle,
            "sandbox_resources": float(len(report.realized)),
        }
    finally:
        ctx.close()
        shutil.rmtree(scratch, ignore_errors=True)
