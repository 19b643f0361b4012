"""Two runs of `mlplat bench --json`, side by side: ratios, and regressions flagged (never failed).

Which way is better follows from a figure's name: `…_per_s`, `…_per_cpu_s`, `…_rps` and
`…scaling` are rates (higher is better); `…_s`, `…_ms` and `…_mb` are costs (lower is better);
anything else (a count of resources, say) is shown without a verdict. A figure worse than the
base by more than the threshold (20% by default) is flagged. The CI job that benchmarks every pull
request against its base branch on the same runner posts `markdown(...)` as the PR's comment.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Better = Literal["higher", "lower", "neither"]


class CompareError(ValueError):
    """A bench JSON that cannot be read or compared."""


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    base: float | None
    head: float | None
    better: Better

    @property
    def ratio(self) -> float | None:
        """head / base (None when either is missing or the base is 0)."""
        if self.base is None or self.head is None or self.base == 0:
            return None
        return self.head / self.base

    def regressed(self, threshold: float) -> bool:
        """Worse than the base by more than `threshold` (a fraction)."""
        ratio = self.ratio
        if ratio is None or self.better == "neither":
            return False
        if self.better == "higher":
            return ratio < 1 - threshold
        return ratio > 1 + threshold


def better_of(figure: str) -> Better:
    if figure.endswith(("_per_s", "_per_cpu_s", "_rps")) or "scaling" in figure:
        return "higher"
    if figure.endswith(("_s", "_ms", "_mb")):
        return "lower"
    return "neither"


def load(path: Path) -> dict[str, float]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"{path}: not a bench JSON ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in data.values()
    ):
        raise CompareError(f"{path}: expected an object of figures (name -> number)")
    return {str(k): float(v) for k, v in data.items()}


def compare(base: dict[str, float], head: dict[str, float]) -> list[Row]:
    """Every figure of either run, in the head's order then the base's leftovers."""
    names = [*head, *(n for n in base if n not in head)]
    return [Row(n, base.get(n), head.get(n), better_of(n)) for n in names]


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def markdown(
    rows: list[Row],
    *,
    threshold: float = 0.2,
    title: str = "Benchmarks",
    command: str = "mlplat bench --quick",
) -> str:
    """A table of base, head and head/base per figure; regressions beyond `threshold` flagged.
    `command`: the bench command both runs were (named in the heading)."""
    flagged = [r for r in rows if r.regressed(threshold)]
    lines = [
        f"### {title}: this branch vs its base, same runner (`{command}`)",
        "",
        (
            f"**{len(flagged)} figure(s) worse by more than {threshold:.0%}:** "
            + ", ".join(f"`{r.figure}`" for r in flagged)
            if flagged
            else f"No figure is worse than its base by more than {threshold:.0%}."
        ),
        "",
        "| figure | base | this branch | ratio | better |  |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}x"
        flag = "⚠️ regression" if r.regressed(threshold) else ""
        lines.append(
            f"| `{r.figure}` | {_number(r.base)} | {_number(r.head)} | {ratio} | "
            f"{r.better} | {flag} |"
        )
    lines += [
        "",
        "Quick runs on a shared CI runner are noisy: a flag asks for a closer look "
        "(`mlplat bench` on a quiet machine), it does not fail the build.",
    ]
    return "\n".join(lines) + "\n"
