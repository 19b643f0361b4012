"""The model registry: versions in a SageMaker model package group, and their approval.

`register_model` creates a version (status `PendingManualApproval` unless told otherwise) with its
headline metrics and lineage as customer metadata properties (string key/values, at most 256
characters each), the commit as metadata, and its reports attached as `ModelMetrics`: the drift
baseline (`ModelDataQuality.Statistics`, required: the drift job of a stack that serves the version
reads it), the gate report (`ModelQuality.Constraints`: `ml.deploy` refuses a version without a
passed one) and the metrics (`ModelQuality.Statistics`). `set_approval` (or `approve` /
`reject`) moves it between `PendingManualApproval`, `Approved` and `Rejected`; `review` picks a
version of a group by number (default: the latest) and approves or rejects it; `latest_approved`
finds what should be serving.

`check_source` is what `mlplat register` asks first: the git tree is clean, HEAD is on the main
branch (`MAIN_REFS`), and the artifact was trained from HEAD (its lineage's commit is HEAD and its
`ml_sources_sha256` is the hash of HEAD's `ml` sources, `commit_sources_sha256`). A version
records the result (`code.source_check`, `code.commit_sources_sha256`); `--allow-dirty` registers
anyway, marked unverified with what was wrong.

Every function takes an optional `client` (a boto3 SageMaker client); without one it creates a
client per call from the default credential chain. Nothing talks to AWS at import time.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ml import images

if TYPE_CHECKING:
    from ml.models import Framework

ApprovalStatus = Literal["PendingManualApproval", "Approved", "Rejected"]
APPROVAL_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Approved", "Rejected")
SUPPORTED_CONTENT_TYPES = ["application/json", "text/csv"]
METRIC_PREFIX = "metric."
MAX_PROPERTY_LENGTH = 256
SOURCE_CHECK_KEY = "source_check"  # the lineage entry of `check_source`'s result (the metadata)


class RegistryError(RuntimeError):
    """A registry operation that cannot be done as asked (with the reason)."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    arn: str
    group: str
    version: int
    status: str
    created: datetime | None
    model_data_url: str | None
    image_uri: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    description: str = ""


def sklearn_image_uri(region: str) -> str:
    """The SageMaker scikit-learn serving image for `region` (the SDK's table, read offline)."""
    return serving_image_uri(region, "sklearn")


def serving_image_uri(region: str, framework: Framework) -> str:
    """The SageMaker serving image of a model's framework (`ModelSpec.framework`) for `region`
    (the SDK's table, read offline)."""
    try:
        return images.image_uri(framework, region)
    except images.ImageUriError as exc:
        raise RegistryError(f"{exc}; pass the image URI explicitly") from exc


def ensure_group(group: str, *, description: str = "", client: Any | None = None) -> str:
    """Create the model package group if it does not exist; return its ARN."""
    sm = client or _client()
    try:
        return str(
            sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
        )
    except sm.exceptions.ClientError as err:
        if _code(err) not in ("ValidationException", "ResourceNotFound"):
            raise
    created = sm.create_model_package_group(
        ModelPackageGroupName=group,
        ModelPackageGroupDescription=description or f"Versions of {group}",
    )
    return str(created["ModelPackageGroupArn"])


def metadata_properties(metrics: Mapping[str, Any], lineage: Mapping[str, Any]) -> dict[str, str]:
    """Customer metadata properties for a version: headline metrics and lineage, as strings."""
    props: dict[str, str] = {}
    for name, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            props[f"{METRIC_PREFIX}{name}"] = repr(float(value))
    data = lineage.get("data", {})
    code = lineage.get("code", {})
    libraries = lineage.get("libraries", {})
    candidates = {
        "data.uri": data.get("uri"),
        "data.version": data.get("version"),
        "data.rows_train": data.get("rows_train"),
        "code.git_commit": code.get("git_commit"),
        "code.ml_sources_sha256": code.get("ml_sources_sha256"),
        "lib.scikit-learn": libraries.get("scikit-learn"),
        "lib.python": libraries.get("python"),
        "hyperparameters": json.dumps(lineage.get("hyperparameters", {}), sort_keys=True),
        "created_at": lineage.get("created_at"),
    }
    for key, value in candidates.items():
        if value is None or value == "":
            continue
        text = str(value)
        if len(text) > MAX_PROPERTY_LENGTH:
            raise RegistryError(
                f"metadata property {key!r} is {len(text)} characters; SageMaker allows "
                f"{MAX_PROPERTY_LENGTH}: shorten it (e.g. a shorter data URI)"
            )
        props[key] = text
    check = lineage.get(SOURCE_CHECK_KEY)
    if isinstance(check, Mapping):
        props.update(_source_check_properties(check))
    return props


def register_model(
    group: str,
    *,
    model_data_url: str,
    image_uri: str,
    metrics: Mapping[str, Any],
    lineage: Mapping[str, Any] | None = None,
    status: ApprovalStatus = "PendingManualApproval",
    description: str = "",
    baseline_s3_uri: str,
    gate_s3_uri: str | None = None,
    metrics_s3_uri: str | None = None,
    client: Any | None = None,
) -> ModelVersion:
    """Register a new version of `group` (which must exist: see `ensure_group`), serving
    `model_data_url`, with the drift baseline at `baseline_s3_uri` and the gate report (the
    `gate.json` the evaluation wrote) at `gate_s3_uri`."""
    if status not in APPROVAL_STATUSES:
        raise RegistryError(f"status {status!r}: use one of {list(APPROVAL_STATUSES)}")
    uris = {
        "model_data_url": model_data_url,
        "baseline_s3_uri": baseline_s3_uri,
        "gate_s3_uri": gate_s3_uri,
        "metrics_s3_uri": metrics_s3_uri,
    }
    for name, uri in uris.items():
        if uri is not None and not uri.startswith("s3://"):
            raise RegistryError(f"{name} must be an s3:// URI, got {uri!r}")
    sm = client or _client()
    lineage = lineage or {}
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": description
        or f"{group}, trained {lineage.get('created_at', 'at an unknown time')}",
        "ModelApprovalStatus": status,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": image_uri,
                    "ModelDataUrl": model_data_url,
                    "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                }
            ],
            "SupportedContentTypes": SUPPORTED_CONTENT_TYPES,
            "SupportedResponseMIMETypes": SUPPORTED_CONTENT_TYPES,
        },
        "CustomerMetadataProperties": metadata_properties(metrics, lineage),
    }
    commit = lineage.get("code", {}).get("git_commit")
    if commit:
        request["MetadataProperties"] = {"CommitId": str(commit), "GeneratedBy": "mlplat"}
    quality: dict[str, Any] = {}
    if metrics_s3_uri:
        quality["Statistics"] = _json_report(metrics_s3_uri)
    if gate_s3_uri:
        quality["Constraints"] = _json_report(gate_s3_uri)
    request["ModelMetrics"] = {"ModelDataQuality": {"Statistics": _json_report(baseline_s3_uri)}}
    if quality:
        request["ModelMetrics"]["ModelQuality"] = quality
    try:
        arn = sm.create_model_package(**request)["ModelPackageArn"]
    except sm.exceptions.ClientError as err:
        raise RegistryError(f"cannot register a version in {group!r}: {_message(err)}") from None
    return describe(str(arn), client=sm)


def _json_report(uri: str) -> dict[str, str]:
    return {"ContentType": "application/json", "S3Uri": uri}


def describe(arn: str, *, client: Any | None = None) -> ModelVersion:
    sm = client or _client()
    try:
        data = sm.describe_model_package(ModelPackageName=arn)
    except sm.exceptions.ClientError as err:
        raise RegistryError(f"no model version {arn!r}: {_message(err)}") from None
    return _version(data)


def set_approval(
    arn: str,
    status: ApprovalStatus,
    *,
    description: str = "",
    client: Any | None = None,
) -> ModelVersion:
    """Move a version to `status` (PendingManualApproval, Approved or Rejected)."""
    if status not in APPROVAL_STATUSES:
        raise RegistryError(f"status {status!r}: use one of {list(APPROVAL_STATUSES)}")
    sm = client or _client()
    current = describe(arn, client=sm)
    request: dict[str, Any] = {"ModelPackageArn": current.arn, "ModelApprovalStatus": status}
    if description:
        request["ApprovalDescription"] = description
    if current.properties:
        # Re-sent unchanged: an update must never lose the version's metrics and lineage.
        request["CustomerMetadataProperties"] = current.properties
    try:
        sm.update_model_package(**request)
    except sm.exceptions.ClientError as err:
        raise RegistryError(f"cannot set {arn!r} to {status}: {_message(err)}") from None
    return describe(current.arn, client=sm)


def approve(arn: str, *, description: str = "", client: Any | None = None) -> ModelVersion:
    return set_approval(arn, "Approved", description=description, client=client)


def reject(arn: str, *, description: str = "", client: Any | None = None) -> ModelVersion:
    return set_approval(arn, "Rejected", description=description, client=client)


def review(
    group: str,
    *,
    version: int | None = None,
    reject: bool = False,
    description: str = "",
    client: Any | None = None,
) -> ModelVersion:
    """Approve (or `reject`) version number `version` of `group`, by default its latest."""
    sm = client or _client()
    versions = list_versions(group, client=sm)
    if not versions:
        raise RegistryError(f"group {group!r} has no versions: register one first")
    chosen = versions[0]
    if version is not None:
        matches = [v for v in versions if v.version == version]
        if not matches:
            known = sorted(v.version for v in versions)
            raise RegistryError(f"group {group!r} has no version {version}; versions: {known}")
        chosen = matches[0]
    status: ApprovalStatus = "Rejected" if reject else "Approved"
    return set_approval(chosen.arn, status, description=description, client=sm)


def list_versions(
    group: str, *, status: ApprovalStatus | None = None, client: Any | None = None
) -> list[ModelVersion]:
    """Every version of `group` (optionally only those with `status`), newest version first."""
    sm = client or _client()
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group}
    if status is not None:
        kwargs["ModelApprovalStatus"] = status
    arns: list[str] = []
    try:
        for page in sm.get_paginator("list_model_packages").paginate(**kwargs):
            arns += [s["ModelPackageArn"] for s in page["ModelPackageSummaryList"]]
    except sm.exceptions.ClientError as err:
        raise RegistryError(f"cannot list versions of {group!r}: {_message(err)}") from None
    versions = [describe(arn, client=sm) for arn in arns]
    return sorted(versions, key=lambda v: v.version, reverse=True)


def latest_approved(group: str, *, client: Any | None = None) -> ModelVersion | None:
    """The approved version with the highest version number, or None."""
    approved = list_versions(group, status="Approved", client=client)
    return approved[0] if approved else None


def _version(data: Mapping[str, Any]) -> ModelVersion:
    containers = data.get("InferenceSpecification", {}).get("Containers", [{}])
    props = dict(data.get("CustomerMetadataProperties") or {})
    metrics = {}
    for key, value in props.items():
        if key.startswith(METRIC_PREFIX):
            try:
                metrics[key.removeprefix(METRIC_PREFIX)] = float(value)
            except ValueError:
                continue
    arn = str(data["ModelPackageArn"])
    version = data.get("ModelPackageVersion")
    if version is None:
        tail = arn.rsplit("/", 1)[-1]
        version = int(tail) if tail.isdigit() else 0
    return ModelVersion(
        arn=arn,
        group=str(data.get("ModelPackageGroupName", "")),
        version=int(version),
        status=str(data.get("ModelApprovalStatus", "")),
        created=data.get("CreationTime"),
        model_data_url=containers[0].get("ModelDataUrl") if containers else None,
        image_uri=containers[0].get("Image") if containers else None,
        metrics=metrics,
        properties=props,
        description=str(data.get("ModelPackageDescription", "")),
    )


# ---------------------------------------------------------------------------------------------
# Which code a version was trained from: a clean tree, a commit on the main branch, its sources
# ---------------------------------------------------------------------------------------------

# The refs a registered commit must be an ancestor of, the first that exists: the remote's main
# first, because it is the reviewed, shared history (a local `main` may hold commits nobody else
# has seen); a local `main` when there is no remote (a fresh repository, a mirror without one).
MAIN_REFS: tuple[str, ...] = ("origin/main", "main")


class SourceCheckFailed(RegistryError):
    """Registration refused: the tree, the commit or the artifact's sources do not match."""


@dataclass(frozen=True, slots=True)
class SourceCheck:
    """What `check_source` found: verified, or the problems `--allow-dirty` let through."""

    head: str | None
    main_ref: str | None
    commit_sources_sha256: str | None
    problems: tuple[str, ...]

    @property
    def verified(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "head": self.head,
            "main_ref": self.main_ref,
            "commit_sources_sha256": self.commit_sources_sha256,
            "problems": list(self.problems),
        }


def default_package_dir() -> Path:
    """The `ml` package this process runs: its git checkout is the one registration checks."""
    return Path(__file__).resolve().parent


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RegistryError(f"cannot run git in {cwd}: {exc}") from None
    if check and done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip()
        raise RegistryError(f"git {' '.join(args)} failed in {cwd}: {error}")
    return done


def _source_paths(paths: Sequence[str], model: str | None) -> list[str]:
    """The paths (relative to the `ml` package) `ml.train.code_version` hashes: its modules,
    with `model` the model contract and that model's package, in the order it hashes them."""
    chosen = [p for p in paths if p.endswith(".py") and "/" not in p]
    if model is not None:
        own = f"models/{model}/"
        chosen += [p for p in paths if p == "models/__init__.py"]
        chosen += [
            p
            for p in paths
            if p.startswith(own) and p.endswith(".py") and "__pycache__" not in p.split("/")
        ]
    # `sorted(list of Path)`: paths compare part by part, not as strings ("a/b" < "a.b")
    return sorted(set(chosen), key=lambda p: tuple(p.split("/")))


def commit_sources_sha256(package_dir: Path, commit: str = "HEAD", model: str | None = None) -> str:
    """`ml.train.code_version`'s `ml_sources_sha256`, of the `ml` sources as `commit` holds them
    (read from git's objects, not the working tree)."""
    prefix = _git(package_dir, "rev-parse", "--show-prefix").stdout.decode().strip()
    listing = _git(package_dir, "ls-tree", "-r", "-z", "--full-tree", commit, "--", prefix).stdout
    blobs: dict[str, str] = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.decode().partition("\t")
        mode, kind, sha = meta.split()
        if kind == "blob" and mode != "120000":  # symlinks: code_version reads their target
            blobs[path.removeprefix(prefix)] = sha
    digest = hashlib.sha256()
    for relative in _source_paths(list(blobs), model):
        body = _git(package_dir, "cat-file", "blob", blobs[relative]).stdout
        digest.update(relative.encode())
        digest.update(body)
    return digest.hexdigest()


def check_source(
    lineage: Mapping[str, Any],
    *,
    allow_dirty: bool = False,
    package_dir: Path | None = None,
    main_refs: Sequence[str] = MAIN_REFS,
) -> SourceCheck:
    """Refuse to register a model unless the code is what the main branch holds and the model
    was trained from it: the git tree of `package_dir` (default: this `ml` package) is clean
    (nothing modified, staged or untracked), HEAD is an ancestor of the first of `main_refs` that
    exists, the artifact's lineage records HEAD as its commit, and its `ml_sources_sha256` is the
    hash of HEAD's `ml` sources. Raises `SourceCheckFailed` naming every problem; with
    `allow_dirty` returns them instead (the version is then marked unverified)."""
    where = package_dir or default_package_dir()
    code = lineage.get("code") if isinstance(lineage.get("code"), Mapping) else {}
    recorded = code.get("git_commit") if isinstance(code, Mapping) else None
    recorded_hash = code.get("ml_sources_sha256") if isinstance(code, Mapping) else None
    model = lineage.get("model") if isinstance(lineage.get("model"), str) else None
    problems: list[str] = []
    head = main_ref = sources = None
    try:
        head = _git(where, "rev-parse", "--verify", "HEAD").stdout.decode().strip()
    except RegistryError as exc:
        problems.append(f"{where} is not a git checkout with a commit ({exc})")
    if head is not None:
        changed = _git(where, "status", "--porcelain", "--untracked-files=normal").stdout
        lines = [line[3:] for line in changed.decode(errors="replace").splitlines() if line]
        if lines:
            shown = ", ".join(lines[:5]) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")
            problems.append(
                f"the working tree has {len(lines)} uncommitted change(s) ({shown}): commit or "
                "stash them, and retrain from the commit"
            )
        for ref in main_refs:
            found = _git(
                where, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
            )
            if found.returncode == 0:
                main_ref = ref
                break
        if main_ref is None:
            problems.append(f"no main branch to check HEAD against (tried {', '.join(main_refs)})")
        else:
            ancestor = _git(where, "merge-base", "--is-ancestor", head, main_ref, check=False)
            if ancestor.returncode != 0:
                problems.append(
                    f"HEAD {head[:12]} is not on {main_ref}: register from a commit merged into "
                    f"{main_ref} (git fetch first if it was merged since)"
                )
        if recorded is None:
            problems.append(
                "the artifact's lineage.json records no commit (code.git_commit): train it from "
                "a git checkout (or with GIT_COMMIT set)"
            )
        elif recorded != head:
            problems.append(
                f"the model was trained at commit {str(recorded)[:12]} but HEAD is {head[:12]}: "
                "check out the commit it was trained at, or retrain at HEAD"
            )
        sources = commit_sources_sha256(where, head, model)
        if recorded_hash is None:
            problems.append("the artifact's lineage.json records no ml_sources_sha256")
        elif recorded_hash != sources:
            problems.append(
                f"the artifact's ml sources hash {str(recorded_hash)[:12]}... is not that of "
                f"HEAD's sources {sources[:12]}...: the model was trained from other code "
                "(uncommitted changes when it was trained?)"
            )
    if problems and not allow_dirty:
        raise SourceCheckFailed(
            "registration refused: "
            + "; ".join(problems)
            + ". Register a model trained from a clean commit on the main branch, or pass "
            "--allow-dirty to register it marked unverified."
        )
    return SourceCheck(head, main_ref, sources, tuple(problems))


def _source_check_properties(check: Mapping[str, Any]) -> dict[str, str]:
    """`code.source_check`: verified (and against which ref) or what was let through."""
    props: dict[str, str] = {}
    if check.get("commit_sources_sha256"):
        props["code.commit_sources_sha256"] = str(check["commit_sources_sha256"])
    if check.get("verified"):
        text = f"verified: clean tree, HEAD on {check.get('main_ref')}, sources match"
    else:
        problems = check.get("problems") or []
        text = "unverified (--allow-dirty): " + "; ".join(str(p) for p in problems)
        if len(text) > MAX_PROPERTY_LENGTH:
            text = text[: MAX_PROPERTY_LENGTH - 3] + "..."
    props["code.source_check"] = text
    return props


def _client() -> Any:
    import boto3

    return boto3.client("sagemaker")


def _code(err: Exception) -> str:
    response = getattr(err, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _message(err: Exception) -> str:
    response = getattr(err, "response", {}) or {}
    return str(response.get("Error", {}).get("Message", err))
