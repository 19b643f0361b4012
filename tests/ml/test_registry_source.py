"""Registration checks the code: a clean tree, HEAD on the main branch, the model trained from HEAD.

Every case runs in a temporary git repository holding an `ml` package; the hash of HEAD's sources
is tied to `ml.train.code_version` by hashing a copy of this checkout's own `ml` sources both ways.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import ml.train
from ml import registry
from ml.train import code_version

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


FILES = {
    "README.md": "a project\n",
    "ml/__init__.py": "",
    "ml/train.py": "VERSION = 1\n",
    "ml/models/__init__.py": "MODELS = ['churn', 'spend']\n",
    "ml/models/churn/__init__.py": "",
    "ml/models/churn/features.py": "TENURE = 6\n",
    "ml/models/spend/__init__.py": "",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "first")
    return root


def lineage_at(repo: Path, model: str = "churn") -> dict[str, Any]:
    """What training at HEAD records (the hash of HEAD's sources is tied to code_version below)."""
    head = git(repo, "rev-parse", "HEAD")
    digest = registry.commit_sources_sha256(repo / "ml", head, model)
    return {"model": model, "code": {"git_commit": head, "ml_sources_sha256": digest}}


def check(repo: Path, lineage: dict[str, Any], **kwargs: Any) -> registry.SourceCheck:
    return registry.check_source(lineage, package_dir=repo / "ml", **kwargs)


# --- the hash of a commit's sources is code_version's ------------------------------------------


@pytest.mark.parametrize("model", [None, "churn"])
def test_the_hash_of_heads_sources_is_what_training_records(
    tmp_path: Path, model: str | None
) -> None:
    package = Path(ml.train.__file__).resolve().parent  # this checkout's ml/
    copy = tmp_path / "copy"
    sources = [
        *package.glob("*.py"),
        package / "models" / "__init__.py",
        *(package / "models" / "churn").rglob("*.py"),
        *(package / "models" / "spend").rglob("*.py"),  # in the tree, hashed for spend only
    ]
    for path in sources:
        target = copy / "ml" / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    git(copy, "init", "-q", "-b", "main")
    head = commit_all(copy, "copy")
    recorded = code_version(model)["ml_sources_sha256"]
    assert registry.commit_sources_sha256(copy / "ml", head, model) == recorded


def test_the_hash_covers_the_modules_and_the_models_own_package(repo: Path) -> None:
    first = registry.commit_sources_sha256(repo / "ml", "HEAD", "churn")
    (repo / "ml/models/spend/estimator.py").write_text("OTHER = 1\n")
    commit_all(repo, "another model")
    assert registry.commit_sources_sha256(repo / "ml", "HEAD", "churn") == first
    (repo / "ml/models/churn/features.py").write_text("TENURE = 12\n")
    commit_all(repo, "its features")
    changed = registry.commit_sources_sha256(repo / "ml", "HEAD", "churn")
    assert changed != first
    # read from the commit, not the working tree
    (repo / "ml/train.py").write_text("VERSION = 2\n")
    assert registry.commit_sources_sha256(repo / "ml", "HEAD", "churn") == changed
    assert registry.commit_sources_sha256(repo / "ml", "HEAD~2", "churn") == first


# --- what is refused ---------------------------------------------------------------------------


def test_a_clean_commit_on_main_trained_at_head_is_verified(repo: Path) -> None:
    done = check(repo, lineage_at(repo))
    assert done.verified and done.problems == ()
    assert done.head == git(repo, "rev-parse", "HEAD")
    assert done.main_ref == "main"  # no remote: the local main
    assert done.commit_sources_sha256 == lineage_at(repo)["code"]["ml_sources_sha256"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda r: (r / "ml/train.py").write_text("VERSION = 2\n"), "ml/train.py"),
        (lambda r: (r / "notes.txt").write_text("todo\n"), "notes.txt"),
        (lambda r: (r / "README.md").unlink(), "README.md"),
    ],
    ids=["modified", "untracked", "deleted"],
)
def test_a_dirty_tree_is_refused(repo: Path, change: Any, path: str) -> None:
    lineage = lineage_at(repo)
    change(repo)
    with pytest.raises(registry.SourceCheckFailed) as refused:
        check(repo, lineage)
    message = str(refused.value)
    assert f"the working tree has 1 uncommitted change(s) ({path})" in message
    assert "--allow-dirty" in message


def test_a_commit_off_the_main_branch_is_refused(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "ml/train.py").write_text("VERSION = 2\n")
    head = commit_all(repo, "unmerged")
    with pytest.raises(registry.SourceCheckFailed, match=f"HEAD {head[:12]} is not on main"):
        check(repo, lineage_at(repo))
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "feature")
    git(repo, "checkout", "-q", "feature")
    assert check(repo, lineage_at(repo)).verified  # merged: on main now


def test_the_remotes_main_is_preferred_to_a_local_one(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    assert check(repo, lineage_at(repo)).main_ref == "origin/main"
    (repo / "ml/train.py").write_text("VERSION = 2\n")
    head = commit_all(repo, "local only")  # on the local main, not pushed
    with pytest.raises(registry.SourceCheckFailed, match=f"HEAD {head[:12]} is not on origin/main"):
        check(repo, lineage_at(repo))
    git(repo, "push", "-q", "origin", "main")
    git(repo, "fetch", "-q", "origin")
    assert check(repo, lineage_at(repo)).verified


def test_a_model_trained_at_another_commit_is_refused(repo: Path) -> None:
    lineage = lineage_at(repo)
    trained_at = lineage["code"]["git_commit"]
    (repo / "README.md").write_text("more\n")
    head = commit_all(repo, "docs")
    with pytest.raises(
        registry.SourceCheckFailed,
        match=f"trained at commit {trained_at[:12]} but HEAD is {head[:12]}",
    ):
        check(repo, lineage)


def test_a_model_trained_from_other_sources_is_refused(repo: Path) -> None:
    lineage = lineage_at(repo)
    lineage["code"]["ml_sources_sha256"] = "0" * 64  # trained with uncommitted changes
    with pytest.raises(registry.SourceCheckFailed, match=r"sources hash 000000000000\.\.\. is not"):
        check(repo, lineage)
    del lineage["code"]["ml_sources_sha256"]
    with pytest.raises(registry.SourceCheckFailed, match="records no ml_sources_sha256"):
        check(repo, lineage)
    with pytest.raises(registry.SourceCheckFailed, match=r"records no commit \(code.git_commit\)"):
        check(repo, {"model": "churn"})


def test_no_git_checkout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ml").mkdir()
    with pytest.raises(registry.SourceCheckFailed, match="is not a git checkout"):
        registry.check_source({}, package_dir=tmp_path / "ml")


def test_allow_dirty_lets_every_problem_through_and_names_it(repo: Path) -> None:
    lineage = lineage_at(repo)
    lineage["code"]["ml_sources_sha256"] = "0" * 64
    (repo / "notes.txt").write_text("todo\n")
    done = check(repo, lineage, allow_dirty=True)
    assert not done.verified
    assert len(done.problems) == 2
    assert "uncommitted change" in done.problems[0] and "sources hash" in done.problems[1]


# --- what the version records ------------------------------------------------------------------


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        registry.ensure_group("g", client=client)
        yield client


def _registered(sm: Any, lineage: dict[str, Any]) -> dict[str, str]:
    version = registry.register_model(
        "g",
        model_data_url="s3://m/model.tar.gz",
        image_uri="img",
        metrics={},
        lineage=lineage,
        baseline_s3_uri="s3://m/baseline.json",
        client=sm,
    )
    return version.properties


def test_the_version_records_the_check_and_the_commits_source_hash(repo: Path, sm: Any) -> None:
    lineage = lineage_at(repo)
    verified = check(repo, lineage)
    props = _registered(sm, {**lineage, registry.SOURCE_CHECK_KEY: verified.to_dict()})
    assert props["code.git_commit"] == verified.head
    assert props["code.ml_sources_sha256"] == props["code.commit_sources_sha256"]
    assert props["code.source_check"] == "verified: clean tree, HEAD on main, sources match"
    (repo / "notes.txt").write_text("x")
    unverified = check(repo, lineage, allow_dirty=True)
    props = _registered(sm, {**lineage, registry.SOURCE_CHECK_KEY: unverified.to_dict()})
    assert props["code.source_check"].startswith("unverified (--allow-dirty): the working tree")
    assert len(props["code.source_check"]) <= registry.MAX_PROPERTY_LENGTH
