"""The README's ML Test Score holds: 28 tests, each section at least 5, and every test it names for
proof exists (a renamed or deleted test fails here instead of leaving a point without proof)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| (Data|Model|Infra|Monitoring) (\d) \| .+? \| ([01](?:\.5)?) \| (.+) \|$")
PROOF = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def rows() -> list[tuple[str, int, float, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### ML Test Score", 1)[1]
    found = []
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            found.append((match[1], int(match[2]), float(match[3]), match[4]))
    return found


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_the_scorecard_has_the_28_tests_and_every_section_reaches_5() -> None:
    found = rows()
    assert sorted((s, n) for s, n, _, _ in found) == sorted(
        (s, n) for s in ("Data", "Model", "Infra", "Monitoring") for n in range(1, 8)
    )
    for section in ("Data", "Model", "Infra", "Monitoring"):
        assert sum(score for s, _, score, _ in found if s == section) >= 5, section


def test_every_point_names_tests_that_exist() -> None:
    missing = []
    for section, number, score, proof in rows():
        current: Path | None = None
        named = 0
        for path, name in PROOF.findall(proof):
            if path:
                current = ROOT / path
                if not current.is_file():
                    missing.append(f"{section} {number}: {path}")
                    continue
                named += 1
            if name:
                if current is None or name not in defined_tests(current):
                    missing.append(f"{section} {number}: {current}::{name}")
                named += 1
        if score > 0:
            assert named, f"{section} {number} scores {score} without a test"
    assert missing == []
