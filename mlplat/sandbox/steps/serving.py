"""The serving steps, once per model: the approved version deployed to the model's own endpoint
(`ml.deploy.deploy` with the sandbox's apply), two hours of traffic to it served by the real
handler of that version's artifact on loopback (each model's records carry its own inputs), and
the data capture the endpoint writes into its own prefix, as its execution role.

moto holds the endpoints but serves nothing: an `ml.serve.ModelServer` per model answers for its
endpoint, and the sandbox writes what SageMaker would (capture files, the per-minute endpoint
metrics). The traffic's customers are generated once and sent to every model.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    DRIFT,
    HOUR,
    as_role,
    check,
    clock,
    drift_environment,
    model_outputs,
    platform_outputs,
    record_model,
    runtime,
    s3_client,
)

if TYPE_CHECKING:
    import pandas as pd

    from ml.deploy import BaselineTarget, Release
    from ml.models import ModelSpec

TRAFFIC_ROWS = 1_500  # per hour of traffic (two hours)
RECORDS_PER_REQUEST = 15
BAD_REQUESTS = 2  # per hour: requests the handler must refuse (HTTP 4XX)
CAPTURE_FILE_MINUTES = 10  # SageMaker flushes capture files every few minutes
SAGEMAKER_NAMESPACE = "AWS/SageMaker"


@dataclass(frozen=True, slots=True)
class Serving:
    """What `deploy` left serving: the endpoint's resources in moto and the model server's URL."""

    endpoint: str
    model: str
    endpoint_config: str
    variant: str
    url: str
    model_data_url: str
    drift_baseline: str  # where the drift job reads the served version's baseline

    def to_json(self) -> dict[str, str]:
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "endpointConfig": self.endpoint_config,
            "variant": self.variant,
            "url": self.url,
            "modelDataUrl": self.model_data_url,
            "driftBaseline": self.drift_baseline,
        }


@dataclass(frozen=True, slots=True)
class Captured:
    """Where `capture` wrote the endpoint's data capture files (and how many events, sampled at
    what percentage)."""

    bucket: str
    root: str
    keys: list[str]
    events: int = 0
    percent: int = 100


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request to the endpoint, as served: what SageMaker would capture and measure."""

    at: datetime  # simulated inference time
    request: str
    status: int
    response: str
    latency_us: float
    records: int


def _endpoint(ctx: SandboxContext, model: str) -> str:
    name = model_outputs(ctx, model).endpoint_name
    if not name:
        raise StepFailed(f"the stack has no endpoint for {model} (endpointEnabled is false)")
    return name


def sandbox_apply(ctx: SandboxContext, model: str) -> Callable[[str, str], None]:
    """`ml.deploy`'s `apply` for the sandbox: what `pulumi up` with `modelPackageArn` set does to
    the endpoint (a new model from the package, a new endpoint configuration, the endpoint moved to
    it), then the endpoint's traffic served by `ml.serve.ModelServer` on loopback from the
    package's artifact (one server per version: a version served again, as after a rollback,
    answers from its own). moto has no UpdateEndpoint: the endpoint is re-created on the new
    configuration (a real update is blue/green, guarded by the rollback alarms). `ml.deploy`
    publishes the version's baseline where the drift job reads it (`_baseline_target`) once the
    deployment is recorded."""
    state = ctx.state.model(model)

    def apply(stack: str, package_arn: str) -> None:
        from ml.contracts import MODEL_VERSION_ENV
        from ml.serve import ModelServer

        sm = ctx.client("sagemaker")
        name = _endpoint(ctx, model)
        package = sm.describe_model_package(ModelPackageName=package_arn)
        container = package["InferenceSpecification"]["Containers"][0]
        endpoint = sm.describe_endpoint(EndpointName=name)
        current = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        [variant] = current["ProductionVariants"]
        old_model = sm.describe_model(ModelName=variant["ModelName"])
        version = package_arn.rsplit("/", 1)[-1]
        suffix = hashlib.sha256(f"{package_arn}{time.time_ns()}".encode()).hexdigest()[:7]
        model_name = f"{name}-v{version}-{suffix}"[:63]
        # the container's environment as the component gives it for a package: the version it
        # serves (`components.model_endpoint`), which the handler answers with
        environment = {
            **old_model["PrimaryContainer"].get("Environment", {}),
            MODEL_VERSION_ENV: package_arn,
        }
        sm.create_model(
            ModelName=model_name,
            ExecutionRoleArn=old_model["ExecutionRoleArn"],
            PrimaryContainer={"ModelPackageName": package_arn, "Environment": environment},
        )
        config_name = f"{name}-v{version}-{suffix}-config"[:63]
        variant = {k: v for k, v in variant.items() if k not in ("CurrentWeight",)}
        request: dict[str, Any] = {
            "EndpointConfigName": config_name,
            "ProductionVariants": [{**variant, "ModelName": model_name}],
        }
        for key in ("DataCaptureConfig", "KmsKeyId"):
            if current.get(key):
                request[key] = current[key]
        sm.create_endpoint_config(**request)
        sm.delete_endpoint(EndpointName=name)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
        # the container: the package's artifact, served by the real handler on loopback; a
        # version served before (a rollback) answers from its server again, at the same URL
        server = state.model_servers.get(package_arn)
        if server is None:
            bucket, key = container["ModelDataUrl"].removeprefix("s3://").split("/", 1)
            local = ctx.scratch / "deployed" / model / version / "model.tar.gz"
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(s3_client(ctx).get_object(Bucket=bucket, Key=key)["Body"].read())
            server = ModelServer(local, port=0, environment=environment).start()
            ctx.closers.append(server.close)
            state.model_servers[package_arn] = server
        state.model_server = server
        state.serving = Serving(
            endpoint=name,
            model=model_name,
            endpoint_config=config_name,
            variant=variant["VariantName"],
            url=server.url,
            model_data_url=container["ModelDataUrl"],
            drift_baseline=_baseline_target(ctx, model).uri,
        )

    return apply


def _baseline_target(ctx: SandboxContext, model: str) -> BaselineTarget:
    """Where the model's drift job reads the served version's baseline and artifact
    (`MLPLAT_DRIFT_BASELINE_KEY`, `MLPLAT_DRIFT_MODEL_KEY` in its environment): `ml.deploy`
    publishes both there on every deploy and rollback, exactly as `mlplat deploy` does."""
    from ml.deploy import BaselineTarget
    from ml.drift.job import DriftJobConfig

    config = DriftJobConfig.from_env(drift_environment(ctx, model))
    kms_key_arn = platform_outputs(ctx).lake_kms_key_arn
    return BaselineTarget(config.models_bucket, config.baseline_key, kms_key_arn, config.model_key)


def release(ctx: SandboxContext, model: str) -> Release:
    """How `ml.deploy` reaches model `model`'s endpoint in the sandbox (`sandbox_apply`, the drift
    job's baseline key)."""
    from ml.deploy import Release

    return Release(sandbox_apply(ctx, model), _baseline_target(ctx, model))


def served_artifact(ctx: SandboxContext, model: str) -> str:
    """Where the monitor job reads the served artifact (`MLPLAT_DRIFT_MODEL_KEY`), which
    `ml.deploy` published there; checked to hold what the endpoint serves."""
    from ml.drift.job import DriftJobConfig

    config = DriftJobConfig.from_env(drift_environment(ctx, model))
    if config.model_key is None:
        return "the monitor job reads no served artifact (no MLPLAT_DRIFT_MODEL_KEY)"
    serving = ctx.state.model(model).need_serving()
    bucket, key = serving.model_data_url.removeprefix("s3://").split("/", 1)
    s3 = s3_client(ctx)
    published = s3.get_object(Bucket=config.models_bucket, Key=config.model_key)["Body"].read()
    if published != s3.get_object(Bucket=bucket, Key=key)["Body"].read():
        raise StepFailed(
            f"s3://{config.models_bucket}/{config.model_key} does not hold the artifact the "
            f"endpoint of {model} serves ({serving.model_data_url})"
        )
    return f"s3://{config.models_bucket}/{config.model_key}"


def deploy(ctx: SandboxContext, model: str) -> str:
    from ml.deploy import DeployError
    from ml.deploy import deploy as deploy_version

    state = ctx.state.model(model)
    version = state.need_version("approve")
    with ctx.aws_environment():  # ml.deploy makes its clients from the session, no endpoint
        try:
            done = deploy_version(
                ctx.settings.stack, version.arn, release(ctx, model), session=ctx.session
            )
        except DeployError as exc:
            raise StepFailed(str(exc)) from exc
    served = served_artifact(ctx, model)
    serving = state.need_serving()
    ctx.report.model(model).endpoint = serving.endpoint
    record_model(
        ctx,
        model,
        "deploy",
        **serving.to_json(),
        deployedBy=done.deployed_by,
        previous=done.previous_arn,
        servedArtifact=served,
    )
    return f"{serving.endpoint} -> {serving.model}, traffic served at {serving.url}"


def _post(connection: http.client.HTTPConnection, body: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    connection.request(
        "POST",
        "/invocations",
        body=body.encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    response = connection.getresponse()
    text = response.read().decode()
    return response.status, text, (time.perf_counter() - started) * 1e6


def _bad_record(record: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """`record` made one the handler must refuse (HTTP 400): a category outside its input's
    vocabulary, else a number below its minimum, else a required input left out."""
    columns = spec.input_columns
    for column in columns:
        if column.allowed:
            return {**record, column.name: f"not-a-{column.name}"}
    for column in columns:
        if column.minimum is not None:
            return {**record, column.name: column.minimum - 1}
    for column in columns:
        if not column.nullable:
            return {k: v for k, v in record.items() if k != column.name}
    raise StepFailed(f"model {spec.name}: no input of it can be made invalid for a bad request")


def _requests(hour_frame: pd.DataFrame, spec: ModelSpec) -> list[str]:
    """The hour's records as the model's requests: its own inputs, `RECORDS_PER_REQUEST` each,
    with `BAD_REQUESTS` the handler must refuse spread among them."""
    columns = ["customer_id", *spec.inputs]
    records = json.loads(hour_frame[columns].to_json(orient="records"))
    bodies = [
        json.dumps({"instances": records[i : i + RECORDS_PER_REQUEST]})
        for i in range(0, len(records), RECORDS_PER_REQUEST)
    ]
    bad = {"instances": [_bad_record(records[0], spec)]}
    step = max(1, len(bodies) // (BAD_REQUESTS + 1))
    for n in range(BAD_REQUESTS):
        bodies.insert((n + 1) * step, json.dumps(bad))
    return bodies


def _traffic_frames(ctx: SandboxContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customers of the two hours of traffic (the second drifted), generated once and sent
    to every model."""
    from ml.sample_data import generate_customers

    if ctx.state.traffic is None:
        hour = clock(ctx)
        ctx.state.traffic = (
            generate_customers(TRAFFIC_ROWS, seed=101, as_of=hour - HOUR, id_offset=10_000_000),
            generate_customers(
                TRAFFIC_ROWS, seed=202, drift=DRIFT, as_of=hour, id_offset=20_000_000
            ),
        )
    return ctx.state.traffic


def serve_hours(
    ctx: SandboxContext, model: str, hours: Sequence[tuple[datetime, pd.DataFrame]]
) -> tuple[list[Exchange], int]:
    """Each `(start, customers)` as an hour of requests to the model's endpoint (its model
    server), stamped evenly over `[start, start + 1h)`; `BAD_REQUESTS` of each hour the handler
    must refuse (4XX), any other answer but 200 fails the step. SageMaker's per-minute endpoint
    metrics are published for them (returns the exchanges and the datapoints put)."""
    server = ctx.state.model(model).need_model_server()
    spec = runtime(ctx, model).spec
    exchanges: list[Exchange] = []
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for start, frame in hours:
            bodies = _requests(frame, spec)
            spacing = HOUR / len(bodies)
            for i, body in enumerate(bodies):
                status, text, latency = _post(connection, body)
                records = len(json.loads(body)["instances"])
                at = start + spacing * (i + 0.5)
                exchanges.append(Exchange(at, body, status, text, latency, records))
    finally:
        connection.close()
    errors = [e for e in exchanges if e.status != 200]
    if any(e.status >= 500 for e in errors) or len(errors) != len(hours) * BAD_REQUESTS:
        raise StepFailed(
            f"unexpected answers: {sorted({e.status for e in errors})} for {len(errors)} "
            f"request(s); expected {len(hours) * BAD_REQUESTS} refused with 4XX"
        )
    return exchanges, _put_endpoint_metrics(ctx, model, exchanges)


def send_traffic(ctx: SandboxContext, model: str) -> str:
    """Two hours of requests to the model's endpoint (the second with drift), stamped on the
    sandbox's clock; SageMaker's per-minute endpoint metrics are published for them."""
    state = ctx.state.model(model)
    hour = clock(ctx)
    halves = _traffic_frames(ctx)
    exchanges, sent = serve_hours(
        ctx, model, [(hour - (2 - n) * HOUR, frame) for n, frame in enumerate(halves)]
    )
    served = [e for e in exchanges if e.status == 200]
    errors = [e for e in exchanges if e.status != 200]
    predictions = sum(e.records for e in served)
    state.exchanges = exchanges
    ctx.report.model(model).predictions_served = predictions
    latencies = sorted(e.latency_us for e in served)
    versions = sorted({str(json.loads(e.response).get("model_version")) for e in served})
    record_model(
        ctx,
        model,
        "traffic",
        requests=len(exchanges),
        refused=len(errors),
        predictions=predictions,
        driftInjected={"hour": f"{hour - HOUR:%Y-%m-%dT%H:%M}Z", "drift": DRIFT},
        p50LatencyMs=round(latencies[len(latencies) // 2] / 1000, 2),
        endpointMetricsPut=sent,
        modelVersions=versions,
    )
    deployed = state.need_version("approve")
    if versions != [f"{deployed.group}/{deployed.version}"]:
        raise StepFailed(
            f"the endpoint of {model} answered with model_version {versions}, not the deployed "
            f"{deployed.group}/{deployed.version}"
        )
    return (
        f"{len(exchanges)} requests, {predictions:,} predictions by {versions[0]}, "
        f"{len(errors)} refused (4XX); drift {DRIFT:g} from {hour - HOUR:%H:%M}Z"
    )


def _put_endpoint_metrics(ctx: SandboxContext, model: str, exchanges: Sequence[Exchange]) -> int:
    """What SageMaker publishes per minute for the variant: Invocations, ModelLatency (µs),
    Invocation4XXErrors, Invocation5XXErrors."""
    serving = ctx.state.model(model).need_serving()
    dimensions = [
        {"Name": "EndpointName", "Value": serving.endpoint},
        {"Name": "VariantName", "Value": serving.variant},
    ]
    minutes: dict[datetime, list[Exchange]] = {}
    for e in exchanges:
        minutes.setdefault(e.at.replace(second=0, microsecond=0), []).append(e)
    data: list[dict[str, Any]] = []
    for minute, group in sorted(minutes.items()):
        n = float(len(group))

        def counted(value: float, minute: datetime = minute, n: float = n) -> dict[str, Any]:
            return {
                "Timestamp": minute,
                "Dimensions": dimensions,
                "Unit": "Count",
                "StatisticValues": {
                    "SampleCount": n,
                    "Sum": value,
                    "Minimum": 0.0 if value < n else 1.0,
                    "Maximum": 1.0 if value > 0 else 0.0,
                },
            }

        data.append({"MetricName": "Invocations", **counted(n)})
        for name, status in (("Invocation4XXErrors", 4), ("Invocation5XXErrors", 5)):
            data.append(
                {
                    "MetricName": name,
                    **counted(float(sum(e.status // 100 == status for e in group))),
                }
            )
        ok = [e.latency_us for e in group if e.status == 200]
        if ok:
            data.append(
                {
                    "MetricName": "ModelLatency",
                    "Timestamp": minute,
                    "Dimensions": dimensions,
                    "Unit": "Microseconds",
                    "Values": ok,
                }
            )
    cloudwatch = ctx.client("cloudwatch")
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(
            Namespace=SAGEMAKER_NAMESPACE, MetricData=data[start : start + 500]
        )
    return len(data)


def write_capture(ctx: SandboxContext, model: str, exchanges: Sequence[Exchange]) -> Captured:
    """`exchanges` as the model's endpoint captures them: the realized configuration's
    destination, sampling and content-type header, files per few minutes under
    `<endpoint>/<variant>/yyyy/mm/dd/hh/` (the model's own capture prefix), put as the endpoint's
    execution role."""
    from ml.capture import capture_key, capture_lines, capture_record

    serving = ctx.state.model(model).need_serving()
    mine = model_outputs(ctx, model)
    sm = ctx.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=serving.endpoint_config)
    capture_config = config.get("DataCaptureConfig")
    if not capture_config or not capture_config.get("EnableCapture", True):
        raise StepFailed(f"endpoint {serving.endpoint} has no data capture configured")
    bucket, _, root = str(capture_config["DestinationS3Uri"]).removeprefix("s3://").partition("/")
    root = root.strip("/")
    percent = int(capture_config.get("InitialSamplingPercentage", 100))
    header = capture_config.get("CaptureContentTypeHeader") or {}
    text_types = {*header.get("JsonContentTypes", []), *header.get("CsvContentTypes", [])}
    captured = [
        e
        for e in exchanges
        if e.status == 200
        and int(hashlib.sha256(e.request.encode()).hexdigest(), 16) % 100 < percent
    ]
    files: dict[datetime, list[dict[str, Any]]] = {}
    for e in captured:
        slot = e.at.replace(
            minute=e.at.minute - e.at.minute % CAPTURE_FILE_MINUTES, second=0, microsecond=0
        )
        files.setdefault(slot, []).append(
            capture_record(
                e.request,
                e.response,
                base64_encode="application/json" not in text_types,
                inference_time=e.at,
            )
        )
    sse = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": capture_config["KmsKeyId"]}
        if capture_config.get("KmsKeyId")
        else {}
    )
    keys: list[str] = []
    role_arn = mine.endpoint_execution_role_arn
    if not role_arn:
        raise StepFailed(f"the platform outputs name no endpoint execution role for {model}")
    if not f"{root}/{serving.endpoint}/".startswith(f"{mine.capture_prefix}/"):
        raise StepFailed(
            f"endpoint {serving.endpoint} captures to s3://{bucket}/{root}/{serving.endpoint}/, "
            f"not under the model's capture prefix {mine.capture_prefix}"
        )
    with as_role(ctx, role_arn, "sandbox-capture") as credentials:
        s3 = s3_client(ctx, credentials)
        for slot, records in sorted(files.items()):
            key = capture_key(serving.endpoint, serving.variant, slot, root)
            check(
                ctx,
                "endpoint",
                "s3:PutObject",
                f"s3://{bucket}/{key}",
                "allowed",
                lambda key=key, records=records: s3.put_object(  # type: ignore[misc]
                    Bucket=bucket,
                    Key=key,
                    Body=capture_lines(records).encode(),
                    ContentType="application/jsonlines",
                    **sse,
                ),
                model=model,
            )
            keys.append(key)
    return Captured(bucket, root, keys, len(captured), percent)


def capture(ctx: SandboxContext, model: str) -> str:
    """Data capture of the two hours of traffic, as the model's endpoint writes it
    (`write_capture`)."""
    state = ctx.state.model(model)
    serving = state.need_serving()
    captured = write_capture(ctx, model, state.need_exchanges())
    state.captured = captured
    record_model(
        ctx,
        model,
        "capture",
        files=len(captured.keys),
        events=captured.events,
        samplingPercent=captured.percent,
        prefix=f"s3://{captured.bucket}/{captured.root}/{serving.endpoint}/{serving.variant}/",
    )
    return (
        f"{captured.events} events in {len(captured.keys)} files under s3://{captured.bucket}/"
        f"{captured.root}/{serving.endpoint}/{serving.variant}/yyyy/mm/dd/hh/ (as the endpoint "
        "role)"
    )
