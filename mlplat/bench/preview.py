"""Preview benchmarks: `mlplat preview --stack prod`, wall clock, as a user's shell runs it.

* `preview_prod_first_s`: the first run in this environment's current state (a fresh environment
  installed with `make sync` already holds the dependencies' bytecode: `uv sync
  --compile-bytecode`; one installed without it pays for compiling pulumi-aws here).
* `preview_prod_s`: the second run, bytecode cached: what a user waits for on every preview.

Each run is a new process (`python -c 'from mlplat.cli.app import main; main()'`, what the `mlplat`
script does), so imports and the SDKs' class building count, as they do for the user. `quick`
changes nothing: the preview has one size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_MAIN = "import sys; from mlplat.cli.app import main; sys.exit(main())"


def _preview_seconds(project: Path, out: Path) -> float:
    command = [sys.executable, "-c", _MAIN, "preview", "--stack", "prod", "--json", str(out)]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"mlplat preview --stack prod failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return seconds


def run(quick: bool) -> dict[str, float]:
    from mlplat.plan.preview import find_project_dir

    del quick
    project = find_project_dir()
    with tempfile.TemporaryDirectory(prefix="mlplat-bench-preview-") as scratch:
        out = Path(scratch) / "plan.json"
        first = _preview_seconds(project, out)
        second = _preview_seconds(project, out)
    return {"preview_prod_first_s": first, "preview_prod_s": second}
