from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml import registry

GROUP = "customer-churn"
LINEAGE = {
    "created_at": "2025-01-01T00:00:00+00:00",
    "data": {"uri": "s3://features/customer_features", "version": "sha256:abc", "rows_train": 10},
    "code": {"git_commit": "0123abcd", "ml_sources_sha256": "f" * 64},
    "libraries": {"scikit-learn": "1.9.1", "python": "3.11.7"},
    "hyperparameters": {"c": 1.0, "seed": 0},
}


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        registry.ensure_group(GROUP, client=client)
        yield client


def _register(sm: Any, n: int, auc: float = 0.8) -> registry.ModelVersion:
    return registry.register_model(
        GROUP,
        model_data_url=f"s3://models/{n}/model.tar.gz",
        image_uri=registry.sklearn_image_uri("us-east-1"),
        metrics={"roc_auc": auc, "log_loss": 0.43, "pr_auc": None},
        lineage=LINEAGE,
        metrics_s3_uri=f"s3://models/{n}/metrics.json",
        baseline_s3_uri=f"s3://models/{n}/baseline.json",
        gate_s3_uri=f"s3://models/{n}/gate.json",
        client=sm,
    )


def test_ensure_group_is_idempotent(sm: Any) -> None:
    arn = registry.ensure_group(GROUP, client=sm)
    assert arn.endswith(f"model-package-group/{GROUP}")
    assert len(sm.list_model_package_groups()["ModelPackageGroupSummaryList"]) == 1


def test_register_records_metrics_and_lineage(sm: Any) -> None:
    version = _register(sm, 1)
    assert (version.version, version.status) == (1, "PendingManualApproval")
    assert version.model_data_url == "s3://models/1/model.tar.gz"
    assert version.image_uri.endswith("sagemaker-scikit-learn:1.9-0-cpu-py3")  # type: ignore[union-attr]
    assert version.metrics == {"roc_auc": 0.8, "log_loss": 0.43}
    assert version.properties["data.version"] == "sha256:abc"
    assert version.properties["code.git_commit"] == "0123abcd"
    raw = sm.describe_model_package(ModelPackageName=version.arn)
    assert raw["MetadataProperties"]["CommitId"] == "0123abcd"
    reports = raw["ModelMetrics"]
    assert reports == {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": "s3://models/1/metrics.json",
            },
            "Constraints": {"ContentType": "application/json", "S3Uri": "s3://models/1/gate.json"},
        },
        "ModelDataQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": "s3://models/1/baseline.json",
            }
        },
    }
    env = raw["InferenceSpecification"]["Containers"][0]["Environment"]
    assert env == {"SAGEMAKER_PROGRAM": "inference.py"}


def test_a_version_is_never_registered_without_its_baseline(sm: Any) -> None:
    with pytest.raises(TypeError, match="baseline_s3_uri"):
        registry.register_model(  # type: ignore[call-arg]
            GROUP, model_data_url="s3://m/model.tar.gz", image_uri="img", metrics={}, client=sm
        )
    assert registry.list_versions(GROUP, client=sm) == []


def test_approval_flow_and_latest_approved(sm: Any) -> None:
    v1, v2 = _register(sm, 1), _register(sm, 2)
    assert registry.latest_approved(GROUP, client=sm) is None
    approved = registry.approve(v1.arn, description="beats v0", client=sm)
    assert approved.status == "Approved"
    assert approved.properties == v1.properties  # the update kept metrics and lineage
    assert registry.latest_approved(GROUP, client=sm).version == 1  # type: ignore[union-attr]
    registry.approve(v2.arn, client=sm)
    assert registry.latest_approved(GROUP, client=sm).version == 2  # type: ignore[union-attr]
    registry.reject(v2.arn, description="bad canary", client=sm)
    assert registry.latest_approved(GROUP, client=sm).version == 1  # type: ignore[union-attr]
    statuses = [(v.version, v.status) for v in registry.list_versions(GROUP, client=sm)]
    assert statuses == [(2, "Rejected"), (1, "Approved")]


def test_registry_errors_are_explained(sm: Any) -> None:
    with pytest.raises(registry.RegistryError, match="cannot register a version in 'nope'"):
        registry.register_model(
            "nope",
            model_data_url="s3://m/model.tar.gz",
            image_uri="img",
            metrics={},
            baseline_s3_uri="s3://m/baseline.json",
            client=sm,
        )
    for wrong in ("model_data_url", "baseline_s3_uri", "gate_s3_uri"):
        uris = {
            "model_data_url": "s3://m/model.tar.gz",
            "baseline_s3_uri": "s3://m/baseline.json",
            "gate_s3_uri": "s3://m/gate.json",
            wrong: "/tmp/x.json",
        }
        with pytest.raises(
            registry.RegistryError, match=f"{wrong} must be an s3:// URI, got '/tmp/x.json'"
        ):
            registry.register_model(GROUP, image_uri="img", metrics={}, client=sm, **uris)
    with pytest.raises(registry.RegistryError, match="no model version"):
        registry.approve("arn:aws:sagemaker:us-east-1:123456789012:model-package/x/9", client=sm)
    with pytest.raises(registry.RegistryError, match="status 'Maybe'"):
        registry.set_approval("arn", "Maybe", client=sm)  # type: ignore[arg-type]
    long_uri = {"data": {"uri": "s3://" + "x" * 300}}
    with pytest.raises(registry.RegistryError, match=r"'data\.uri' is 305 characters"):
        registry.metadata_properties({}, long_uri)
    with pytest.raises(registry.RegistryError, match="pass the image URI explicitly"):
        registry.sklearn_image_uri("mars-north-1")


def test_no_client_is_made_at_import() -> None:
    import importlib

    import ml.registry

    calls: list[str] = []
    original = boto3.client
    boto3.client = lambda *a, **k: calls.append("client")  # type: ignore[assignment]
    try:
        importlib.reload(ml.registry)
    finally:
        boto3.client = original
    assert calls == []


def test_the_serving_image_follows_the_models_framework() -> None:
    assert "/sagemaker-scikit-learn:1.9-0" in registry.serving_image_uri("us-east-1", "sklearn")
    assert registry.sklearn_image_uri("us-east-1") == registry.serving_image_uri(
        "us-east-1", "sklearn"
    )
    assert "/sagemaker-xgboost:" in registry.serving_image_uri("us-east-1", "xgboost")
    with pytest.raises(registry.RegistryError, match="pass the image URI explicitly"):
        registry.serving_image_uri("mars-north-1", "xgboost")
