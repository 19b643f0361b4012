"""`.github/dependabot.yml`: uv.lock, the workflows' actions and the platform image are watched.

The directories it names must hold what the ecosystem reads, and every such file of the repository
must sit in a directory it names: a new Dockerfile or lock file elsewhere fails here until the
config covers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".github" / "dependabot.yml"
SKIP = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
# What each ecosystem reads in its directory.
READS = {
    "uv": ("uv.lock", "pyproject.toml"),
    "docker": ("Dockerfile",),
}


def config() -> dict[str, Any]:
    data = yaml.safe_load(CONFIG.read_text())
    assert isinstance(data, dict)
    return data


def entries() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in config()["updates"]:
        found.setdefault(entry["package-ecosystem"], []).append(entry)
    return found


def directories(entry: dict[str, Any]) -> list[Path]:
    names = entry.get("directories") or [entry["directory"]]
    return [ROOT / str(name).lstrip("/") for name in names]


def repo_files(name: str) -> list[Path]:
    return [p for p in ROOT.rglob(name) if not SKIP.intersection(p.relative_to(ROOT).parts)]


def test_the_three_ecosystems_are_watched_weekly_with_a_cooldown() -> None:
    assert config()["version"] == 2
    found = entries()
    assert set(found) == {"uv", "github-actions", "docker"}
    for ecosystem, listed in found.items():
        assert len(listed) == 1, ecosystem
        entry = listed[0]
        assert entry["schedule"]["interval"] in ("daily", "weekly"), ecosystem
        assert entry["cooldown"]["default-days"] >= 1, ecosystem


def test_each_directory_holds_what_its_ecosystem_reads() -> None:
    found = entries()
    for ecosystem, files in READS.items():
        for directory in directories(found[ecosystem][0]):
            for name in files:
                assert (directory / name).is_file(), f"{ecosystem}: no {name} in {directory}"
    for directory in directories(found["github-actions"][0]):
        workflows = list((directory / ".github" / "workflows").glob("*.yml"))
        assert workflows, f"github-actions: no workflow under {directory}"
        assert any("uses:" in w.read_text() for w in workflows)


def test_every_lock_file_and_dockerfile_of_the_repo_is_covered() -> None:
    found = entries()
    for ecosystem, name in (("uv", "uv.lock"), ("docker", "Dockerfile")):
        covered = {d.resolve() for d in directories(found[ecosystem][0])}
        for path in repo_files(name):
            assert path.parent.resolve() in covered, f"{path} is not watched by Dependabot"
