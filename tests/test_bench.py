"""`mlplat bench` knows every benchmark module, and each names the figures the issues ask for."""

from __future__ import annotations

import importlib
from pathlib import Path

from mlplat import bench

ROOT = Path(__file__).resolve().parent.parent


def test_every_bench_module_is_registered():
    here = ROOT / "mlplat" / "bench"
    helpers = {"__init__", "compare"}  # compare: two runs side by side, not a benchmark
    on_disk = {f"mlplat.bench.{p.stem}" for p in here.glob("*.py") if p.stem not in helpers}
    assert set(bench.MODULES) == on_disk
    for name in bench.MODULES:
        assert callable(importlib.import_module(name).run)


def test_a_comparison_flags_only_what_got_worse_by_more_than_the_threshold(tmp_path: Path) -> None:
    from mlplat.bench.compare import compare, markdown

    base = {"rows_per_s": 100.0, "drift_s": 1.0, "p99_ms": 2.0, "sandbox_resources": 200.0}
    head = {"rows_per_s": 70.0, "drift_s": 1.1, "p99_ms": 1.0, "sandbox_resources": 400.0}
    head["new_rps"] = 5.0
    head["rows_per_cpu_s"] = 50.0
    rows = {r.figure: r for r in compare(base, head)}
    assert [r.better for r in rows.values()] == [
        "higher",
        "lower",
        "lower",
        "neither",
        "higher",
        "higher",  # rows per CPU-second: a rate, not a cost
    ]
    assert rows["rows_per_s"].regressed(0.2)  # 30% fewer rows/s
    assert not rows["drift_s"].regressed(0.2)  # 10% slower: within the threshold
    assert rows["drift_s"].regressed(0.05)
    assert not rows["p99_ms"].regressed(0.2)  # faster
    assert not rows["sandbox_resources"].regressed(0.2)  # a count: no verdict
    assert rows["new_rps"].ratio is None and not rows["new_rps"].regressed(0.2)
    text = markdown(list(rows.values()), threshold=0.2)
    assert text.startswith("### Benchmarks: this branch vs its base")
    assert "**1 figure(s) worse by more than 20%:** `rows_per_s`" in text
    assert "| `rows_per_s` | 100 | 70 | 0.70x | higher | ⚠️ regression |" in text
    assert "| `new_rps` | — | 5 | — | higher |  |" in text


def test_the_cli_compares_with_a_base_run_and_refuses_bad_input(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from mlplat.cli.app import app

    base = tmp_path / "base.json"
    base.write_text(json.dumps({"drift_1m_x20_s": 0.01}))
    out = tmp_path / "comment.md"
    result = CliRunner().invoke(
        app, ["bench", "--only", "drift", "--quick", "--against", str(base), "--markdown", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "regression" in result.output  # a quick run is far slower than 0.01 s
    assert "`drift_1m_x20_s` | 0.01 |" in out.read_text()
    assert "(`mlplat bench --quick`)" in out.read_text()  # the heading names the run it compares
    (tmp_path / "bad.json").write_text('{"x": "fast"}')
    bad = CliRunner().invoke(
        app, ["bench", "--only", "drift", "--against", str(tmp_path / "bad.json")]
    )
    assert bad.exit_code == 2 and "expected an object of figures" in bad.output
    alone = CliRunner().invoke(app, ["bench", "--markdown", str(out)])
    assert alone.exit_code == 2 and "give --against" in alone.output


def test_every_pull_request_is_benchmarked_against_its_base_on_one_runner() -> None:
    import yaml

    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "bench.yml").read_text())
    assert set(wf[True]) == {"pull_request"}  # YAML reads the `on:` key as True
    [job] = wf["jobs"].values()
    steps = job["steps"]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout")]
    assert [c["with"]["path"] for c in checkouts] == ["head", "base"]
    assert checkouts[1]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    runs = [s["run"] for s in steps if "run" in s]
    base, head = (
        next(r for r in runs if f'--json "$RUNNER_TEMP/{w}.json"' in r) for w in ("base", "head")
    )
    assert runs.index(base) < runs.index(head)  # the base's figures exist before the comparison
    assert "mlplat bench --quick" in base and "mlplat bench --quick" in head
    assert '--against "$RUNNER_TEMP/base.json" --markdown "$RUNNER_TEMP/bench.md"' in head
    comment = next(s for s in steps if s.get("uses", "").startswith("marocchino/"))
    assert comment["with"]["path"] == "${{ runner.temp }}/bench.md"
    assert not any(s.get("continue-on-error") for s in steps)
    assert wf["permissions"]["pull-requests"] == "write"
