"""The platform outputs: everything `ml/` knows about the infrastructure.

The stack exports exactly these keys (a test keeps the two equal); `ml/` loads them from
`pulumi stack output --json`, a JSON file, or the sandbox. Infra and ML share nothing else.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class OutputsError(ValueError):
    """The platform outputs are missing, incomplete or not for this platform."""


@dataclass(frozen=True, slots=True)
class ModelOutputs:
    """What one model of the stack's `models` list got: its own registry group, artifact prefix,
    training role, pipeline, endpoint and drift job. Keys of `PlatformOutputs.models`."""

    model_package_group_name: str
    model_artifacts_prefix: str  # s3://<models bucket>/<prefix>: this model's artifacts only
    training_role_arn: str
    pipeline_name: str | None  # None: pipelineEnabled false
    endpoint_name: str | None  # None: no endpoint in this stack
    endpoint_execution_role_arn: str | None
    capture_prefix: str | None  # key prefix in the predictions bucket its endpoint captures to
    drift_state_machine_arn: str | None

    @classmethod
    def from_mapping(cls, name: str, data: Any) -> ModelOutputs:
        if not isinstance(data, dict):
            raise OutputsError(f"platform outputs: models.{name} is not an object")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise OutputsError(f"platform outputs: models.{name} lacks {', '.join(missing)}")
        return cls(**{n: data[n] for n in names})

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PlatformOutputs:
    stack: str
    environment: str
    region: str
    account_id: str
    tags: dict[str, str]
    # data lake
    lake_kms_key_arn: str
    raw_bucket: str
    curated_bucket: str
    features_bucket: str
    models_bucket: str
    predictions_bucket: str
    glue_database: str
    athena_workgroup: str
    ingest_stream_name: str
    # network and training compute
    vpc_id: str
    training_subnet_ids: list[str]
    training_security_group_ids: list[str]
    training_cluster_name: str | None
    training_namespace: str | None
    training_service_account: str | None
    training_submitter_role_arn: str | None
    training_jobs_function_name: str | None
    platform_image_uri: str
    # monitoring
    alarm_topic_arn: str
    dashboard_name: str
    # one entry per model of the stack's `models` list, by model name
    models: dict[str, ModelOutputs]

    def model(self, name: str) -> ModelOutputs:
        """The outputs of model `name`; a clear error when the stack does not host it."""
        if name not in self.models:
            raise OutputsError(
                f"stack {self.stack!r} hosts no model {name!r}; its models: "
                f"{', '.join(sorted(self.models)) or 'none'} (add it to the stack's `models`)"
            )
        return self.models[name]

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> PlatformOutputs:
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise OutputsError(
                f"platform outputs lack {', '.join(missing)}; is the stack up to date "
                "(`pulumi up`) and is this the ml-platform project?"
            )
        values = {n: data[n] for n in names}
        if not isinstance(values["models"], dict):
            raise OutputsError("platform outputs: `models` is not an object of model outputs")
        values["models"] = {
            k: v if isinstance(v, ModelOutputs) else ModelOutputs.from_mapping(k, v)
            for k, v in values["models"].items()
        }
        return cls(**values)

    @classmethod
    def from_json_file(cls, path: str | Path) -> PlatformOutputs:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise OutputsError(f"cannot read platform outputs from {path}: {exc}") from exc
        return cls.from_mapping(data)

    @classmethod
    def from_pulumi(cls, stack: str, cwd: str | Path | None = None) -> PlatformOutputs:
        """`pulumi stack output --json --show-secrets -s STACK` (needs the Pulumi CLI)."""
        try:
            done = subprocess.run(
                ["pulumi", "stack", "output", "--json", "--show-secrets", "-s", stack],
                cwd=cwd,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
        except FileNotFoundError as exc:
            raise OutputsError(
                "the Pulumi CLI is not installed; pass --outputs FILE (a `pulumi stack output "
                "--json` dump) or use the sandbox"
            ) from exc
        except subprocess.CalledProcessError as exc:
            raise OutputsError(
                f"pulumi stack output -s {stack} failed: {exc.stderr.strip()}"
            ) from exc
        return cls.from_mapping(json.loads(done.stdout))

    @classmethod
    def load(
        cls, stack: str | None, outputs_file: str | Path | None, cwd: str | Path | None = None
    ) -> PlatformOutputs:
        """From `outputs_file` when given, else from `pulumi stack output` of `stack`."""
        if outputs_file is not None:
            return cls.from_json_file(outputs_file)
        if stack is None:
            raise OutputsError("name the platform: --stack NAME or --outputs FILE")
        return cls.from_pulumi(stack, cwd=cwd)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["models"] = {k: v.to_json() for k, v in self.models.items()}
        return out


OUTPUT_KEYS: tuple[str, ...] = tuple(f.name for f in fields(PlatformOutputs))
