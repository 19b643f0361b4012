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

Every function takes an optional `client` (a boto3 SageMaker client); without one it creates a
client per call from the default credential chain. Nothing talks to AWS at import time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ml import images

if TYPE_CHECKING:
    from ml.models import Framework

ApprovalStatus = Literal["PendingManualApproval", "Approved", "Rejected"]
APPROVAL_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Approved", "Rejected")
SUPPORTED_CONTENT_TYPES = ["application/json", "text/csv"]
METRIC_PREFIX = "metric."
MAX_PROPERTY_LENGTH = 256


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


def _client() -> Any:
    import boto3

    return boto3.client("sagemaker")


def _code(err: Exception) -> str:
    response = getattr(err, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _message(err: Exception) -> str:
    response = getattr(err, "response", {}) or {}
    return str(response.get("Error", {}).get("Message", err))
