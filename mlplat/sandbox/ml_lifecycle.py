"""The ML lifecycle, end to end, on the realized platform (the `ML_STEPS` of `mlplat sandbox`).

Every step finds the infrastructure through the platform outputs the program exported
(`ml.outputs.PlatformOutputs`) or through what the program realized in moto (the endpoint's capture
configuration, the drift job's environment in its state machine, the alarms), and runs the `ml/`
code a real deployment runs. What AWS would do by itself and moto does not is done by the sandbox,
in the open, in one place each: Firehose's delivery (`mlplat.sandbox.firehose`), the endpoint's
serving, data capture and metrics (here: `ml.serve.ModelServer` answers on loopback, the sandbox
writes what SageMaker writes), CloudWatch's alarm evaluation (`mlplat.sandbox.alarms`).

The clock: the endpoint's traffic is stamped over the two hours before the current hour, `[H-2h,
H-1h)` without drift and `[H-1h, H)` with drift injected (`generate_customers(drift=...)`), so
the drift job (hourly windows, as scheduled) sees one clean and one drifted window, and the drift
alarms (one hourly period) go OK, then ALARM.

Least privilege: the steps that a role of the stack performs in AWS run with that role's
credentials (STS AssumeRole) while the moto server enforces IAM (`SandboxServer.iam_enforced`):
training reads the features zone and uploads the model as the training role; data capture is
written as the endpoint's execution role. The `least-privilege` step then shows what those roles
cannot do (write the raw zone, write outside their prefixes): an AccessDenied each.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplat.sandbox.context import SandboxContext, Step, StepFailed

if TYPE_CHECKING:
    import pandas as pd

    from ml.outputs import PlatformOutputs

# Sizes: enough rows for a stable model and a stable PSI, small enough for a minute on 2 cores.
TRAIN_ROWS = 30_000
STREAM_ROWS = 1_000  # of TRAIN_ROWS, sent through Firehose instead of the batch upload
TRAFFIC_ROWS = 1_500  # per hour of traffic (two hours)
RECORDS_PER_REQUEST = 15
DRIFT = 1.0  # `generate_customers(drift=...)` for the second hour of traffic
BAD_REQUESTS = 2  # per hour: requests the handler must refuse (HTTP 4XX)
CAPTURE_FILE_MINUTES = 10  # SageMaker flushes capture files every few minutes
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
ALARM_TOKEN = "aws:cloudwatch/metricAlarm:MetricAlarm"
MACHINE_TOKEN = "aws:sfn/stateMachine:StateMachine"
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request to the endpoint, as served: what SageMaker would capture and measure."""

    at: datetime  # simulated inference time
    request: str
    status: int
    response: str
    latency_us: float
    records: int


# --- helpers


def _outputs(ctx: SandboxContext) -> PlatformOutputs:
    from ml.outputs import OutputsError, PlatformOutputs

    if "platform" not in ctx.state:
        if not ctx.outputs:
            raise StepFailed("no platform outputs (did realize-platform run?)")
        try:
            ctx.state["platform"] = PlatformOutputs.from_mapping(ctx.outputs)
        except OutputsError as exc:
            raise StepFailed(str(exc)) from None
    outputs: PlatformOutputs = ctx.state["platform"]
    return outputs


def _clock(ctx: SandboxContext) -> datetime:
    """H: the start of the current hour; the traffic is stamped over the two hours before it."""
    if "hour" not in ctx.state:
        ctx.state["hour"] = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hour: datetime = ctx.state["hour"]
    return hour


def _s3(ctx: SandboxContext, credentials: Mapping[str, str] | None = None) -> Any:
    """The sandbox's S3 client, or one signing with a role's `credentials` (see `_as_role`)."""
    return ctx.client("s3", **(credentials or {}))


def _realized(ctx: SandboxContext, token: str) -> list[tuple[str, str]]:
    """(logical name, id) of the realized resources of one type."""
    if ctx.mocks is None:
        raise StepFailed("nothing was realized (did realize-platform run?)")
    return sorted((name, ident) for type_, name, ident in ctx.mocks.realized if type_ == token)


def _lifecycle(ctx: SandboxContext, step: str, **figures: Any) -> None:
    ctx.report.lifecycle[step] = figures


@contextmanager
def _as_role(ctx: SandboxContext, role_arn: str, session_name: str) -> Iterator[dict[str, str]]:
    """Client credentials of `role_arn` (for `ctx.client(..., **credentials)`), valid while moto
    enforces IAM.

    The sandbox's identity calls AssumeRole, standing in for the service principal the role
    trusts (SageMaker): moto does not check a trust policy for an unauthenticated caller."""
    if ctx.server is None:
        raise StepFailed("the sandbox server is not running (did start-server run?)")
    assumed = ctx.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
        "Credentials"
    ]
    credentials = {
        "aws_access_key_id": assumed["AccessKeyId"],
        "aws_secret_access_key": assumed["SecretAccessKey"],
        "aws_session_token": assumed["SessionToken"],
    }
    with ctx.server.iam_enforced():
        yield credentials


def _check(
    ctx: SandboxContext,
    role: str,
    action: str,
    resource: str,
    expected: str,
    call: Callable[[], Any],
) -> str:
    """Run one call as a role (inside `_as_role`) and record what happened against what the
    role's policy says should happen: `allowed` or `AccessDenied`."""
    try:
        call()
        actual = "allowed"
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        actual = str(code)
    checks: list[dict[str, Any]] = ctx.report.least_privilege.setdefault("checks", [])
    checks.append(
        {
            "role": role,
            "action": action,
            "resource": resource,
            "expected": expected,
            "actual": actual,
            "ok": actual == expected,
        }
    )
    if actual != expected:
        raise StepFailed(f"{role} {action} on {resource}: expected {expected}, got {actual}")
    return actual


def _sse(outputs: PlatformOutputs) -> dict[str, str]:
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": outputs.lake_kms_key_arn}


# --- data


def generate_data(ctx: SandboxContext) -> str:
    from ml.sample_data import generate_customers

    as_of = _clock(ctx) - 2 * HOUR
    customers = generate_customers(TRAIN_ROWS, seed=7, as_of=as_of)
    ctx.state["customers"] = customers
    churn = float(customers["churned"].mean())
    _lifecycle(ctx, "generate-data", rows=len(customers), churnRate=round(churn, 4))
    return f"{len(customers):,} customers up to {as_of:%Y-%m-%d %H:%M}Z, {churn:.1%} churned"


def ingest(ctx: SandboxContext) -> str:
    from ml.lake import write_dataset
    from ml.schema import CUSTOMERS_RAW
    from ml.stream import frame_records, send_records
    from mlplat.sandbox.firehose import deliver

    outputs = _outputs(ctx)
    customers: pd.DataFrame = ctx.need("customers", "generate-data")
    batch, streamed = customers.iloc[:-STREAM_ROWS], customers.iloc[-STREAM_ROWS:]
    s3 = _s3(ctx)
    written = write_dataset(
        batch, CUSTOMERS_RAW, outputs.raw_bucket, kms_key_id=outputs.lake_kms_key_arn, s3=s3
    )
    sent = send_records(
        frame_records(streamed, CUSTOMERS_RAW),
        outputs.ingest_stream_name,
        firehose=ctx.client("firehose"),
        sleep=lambda _: None,
    )
    if not sent.ok:
        raise StepFailed(f"Firehose refused {len(sent.failed)} record(s): {sent.error_counts}")
    deliveries = deliver(
        s3,
        ctx.client("firehose"),
        ctx.client("glue"),
        ctx.client("cloudwatch"),
        outputs.ingest_stream_name,
        now=_clock(ctx) - 2 * HOUR,  # collected before the traffic, on the sandbox's clock
    )
    delivered = sum(d.records for d in deliveries)
    if delivered != len(streamed):
        raise StepFailed(f"Firehose delivered {delivered} of {len(streamed)} streamed records")
    _lifecycle(
        ctx,
        "ingest",
        batchRows=written.rows,
        batchPartitions=len(written.partitions),
        streamedRecords=sent.delivered,
        streamedObjects=[d.key for d in deliveries],
    )
    return (
        f"{written.rows:,} rows in {len(written.partitions)} partitions (batch), "
        f"{sent.delivered:,} records through {outputs.ingest_stream_name} "
        f"-> {len(deliveries)} Parquet object(s)"
    )


def curate(ctx: SandboxContext) -> str:
    from ml.features import validate_frame
    from ml.lake import read_dataset, write_dataset
    from ml.schema import CUSTOMERS_CURATED, CUSTOMERS_RAW

    outputs = _outputs(ctx)
    s3 = _s3(ctx)
    raw = read_dataset(CUSTOMERS_RAW, outputs.raw_bucket, s3=s3)
    expected = len(ctx.need("customers", "generate-data"))
    if len(raw) != expected:
        raise StepFailed(f"the raw zone holds {len(raw)} rows; {expected} were ingested")
    valid, report = validate_frame(raw, on_invalid="reject")
    curated = valid.drop_duplicates(subset=["customer_id", "event_time"], keep="last")
    duplicates = len(valid) - len(curated)
    written = write_dataset(
        curated,
        CUSTOMERS_CURATED,
        outputs.curated_bucket,
        kms_key_id=outputs.lake_kms_key_arn,
        s3=s3,
    )
    _lifecycle(
        ctx,
        "curate",
        rawRows=len(raw),
        rejected=report.n_rejected,
        duplicates=duplicates,
        curatedRows=written.rows,
    )
    return (
        f"{len(raw):,} raw rows (batch + streamed) -> {written.rows:,} curated "
        f"({report.n_rejected} rejected, {duplicates} duplicates)"
    )


def features(ctx: SandboxContext) -> str:
    from ml.features import build_features
    from ml.lake import read_dataset, write_dataset
    from ml.schema import CUSTOMER_FEATURES, CUSTOMERS_CURATED

    outputs = _outputs(ctx)
    s3 = _s3(ctx)
    curated = read_dataset(CUSTOMERS_CURATED, outputs.curated_bucket, s3=s3)
    table = build_features(curated)
    written = write_dataset(
        table,
        CUSTOMER_FEATURES,
        outputs.features_bucket,
        kms_key_id=outputs.lake_kms_key_arn,
        s3=s3,
    )
    _lifecycle(ctx, "features", rows=written.rows, partitions=len(written.partitions))
    return f"{written.rows:,} feature rows, {len(table.columns)} columns"


# --- model


def train(ctx: SandboxContext) -> str:
    """Local training on the features zone, read as the training role (as a SageMaker training
    job would read its channel)."""
    from ml.lake import read_dataset
    from ml.schema import CUSTOMER_FEATURES
    from ml.train import Hyperparameters, write_outputs
    from ml.train import train as train_model

    outputs = _outputs(ctx)
    uri = f"s3://{outputs.features_bucket}/{CUSTOMER_FEATURES.prefix}/"
    read: list[pd.DataFrame] = []
    with _as_role(ctx, outputs.training_role_arn, "sandbox-train") as credentials:
        s3 = _s3(ctx, credentials)
        _check(
            ctx,
            "training",
            "s3:ListBucket, s3:GetObject",
            uri,
            "allowed",
            lambda: read.append(read_dataset(CUSTOMER_FEATURES, outputs.features_bucket, s3=s3)),
        )
    [table] = read
    result = train_model(table, Hyperparameters(seed=0), data_uri=uri)
    model_dir = write_outputs(result, ctx.scratch / "model", with_code=False)
    ctx.state["training"] = result
    ctx.state["model_dir"] = model_dir
    metrics = result.metrics.to_dict()
    ctx.report.metrics = {k: float(v) for k, v in metrics.items() if v is not None}
    return (
        f"{result.lineage['data']['rows_train']:,} train / "
        f"{result.lineage['data']['rows_validation']:,} validation rows: "
        f"ROC AUC {metrics['roc_auc']:.3f}, log loss {metrics['log_loss']:.3f}"
    )


def evaluate(ctx: SandboxContext) -> str:
    from ml import registry
    from ml.evaluate import Metrics, check_gate

    outputs = _outputs(ctx)
    result = ctx.need("training", "train")
    approved = registry.latest_approved(
        outputs.model_package_group_name, client=ctx.client("sagemaker")
    )
    approved_metrics = Metrics.from_dict(approved.metrics) if approved else None
    gate = check_gate(result.evaluation, approved=approved_metrics)
    model_dir: Path = ctx.need("model_dir", "train")
    (model_dir / "gate.json").write_text(json.dumps(gate.to_dict(), indent=2) + "\n")
    _lifecycle(
        ctx,
        "evaluate",
        passed=gate.passed,
        checks=[c.name for c in gate.checks],
        againstApproved=approved.arn if approved else None,
    )
    if not gate.passed:
        raise StepFailed(gate.summary())
    return gate.summary() + (f" against {approved.arn}" if approved else "")


def package(ctx: SandboxContext) -> str:
    from ml.package import build_model_tarball

    model_dir: Path = ctx.need("model_dir", "train")
    tarball = build_model_tarball(model_dir, ctx.scratch / "model.tar.gz")
    ctx.state["tarball"] = tarball
    return f"{tarball.name}, {tarball.stat().st_size / 1024:.0f} KiB (model, code/, reports)"


def upload(ctx: SandboxContext) -> str:
    """The artifact and its reports into the registry's prefix, as the training role."""
    from ml.contracts import BASELINE_FILE, METRICS_FILE

    outputs = _outputs(ctx)
    tarball: Path = ctx.need("tarball", "package")
    model_dir: Path = ctx.need("model_dir", "train")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = f"{outputs.model_artifacts_prefix}/{stamp}"
    uris: dict[str, str] = {}
    with _as_role(ctx, outputs.training_role_arn, "sandbox-upload") as credentials:
        s3 = _s3(ctx, credentials)
        for name, path in (
            ("model", tarball),
            ("metrics", model_dir / METRICS_FILE),
            ("baseline", model_dir / BASELINE_FILE),
        ):
            key = f"{prefix}/{path.name}"
            _check(
                ctx,
                "training",
                "s3:PutObject",
                f"s3://{outputs.models_bucket}/{key}",
                "allowed",
                lambda key=key, path=path: s3.put_object(  # type: ignore[misc]
                    Bucket=outputs.models_bucket,
                    Key=key,
                    Body=path.read_bytes(),
                    **_sse(outputs),
                ),
            )
            uris[name] = f"s3://{outputs.models_bucket}/{key}"
    ctx.state["uris"] = uris
    _lifecycle(ctx, "upload", **uris)
    return f"{uris['model']} (as the training role)"


def register(ctx: SandboxContext) -> str:
    from ml import registry

    outputs = _outputs(ctx)
    result = ctx.need("training", "train")
    uris: dict[str, str] = ctx.need("uris", "upload")
    version = registry.register_model(
        outputs.model_package_group_name,
        model_data_url=uris["model"],
        image_uri=registry.sklearn_image_uri(outputs.region),
        metrics=result.metrics.to_dict(),
        lineage=result.lineage,
        metrics_s3_uri=uris["metrics"],
        baseline_s3_uri=uris["baseline"],
        client=ctx.client("sagemaker"),
    )
    ctx.state["version"] = version
    ctx.report.model_version = f"{version.group}/{version.version}"
    return f"{version.arn} ({version.status})"


def approve(ctx: SandboxContext) -> str:
    from ml import registry

    version = ctx.need("version", "register")
    gate = _lifecycle_figure(ctx, "evaluate", "checks")
    approved = registry.approve(
        version.arn,
        description=f"sandbox: evaluation gate passed ({len(gate)} checks)",
        client=ctx.client("sagemaker"),
    )
    ctx.state["version"] = approved
    return f"{approved.group}/{approved.version}: {approved.status}"


def _lifecycle_figure(ctx: SandboxContext, step: str, key: str) -> Any:
    figures = ctx.report.lifecycle.get(step)
    if figures is None or key not in figures:
        raise StepFailed(f"no {key} from {step} (did {step} run?)")
    return figures[key]


# --- serving


def _endpoint(ctx: SandboxContext) -> str:
    name = _outputs(ctx).endpoint_name
    if not name:
        raise StepFailed("the stack has no endpoint (endpointEnabled is false)")
    return name


def sandbox_apply(ctx: SandboxContext) -> Callable[[str, str], None]:
    """`ml.deploy`'s `apply` for the sandbox: what `pulumi up` with `modelPackageArn` set does to
    the endpoint (a new model from the package, a new endpoint configuration, the endpoint moved to
    it), then the endpoint's traffic served by `ml.serve.ModelServer` on loopback from the
    package's artifact. moto has no UpdateEndpoint: the endpoint is re-created on the new
    configuration (a real update is blue/green, guarded by the rollback alarms). The version's
    registered baseline goes where the drift job reads it (`_publish_baseline`)."""

    def apply(stack: str, package_arn: str) -> None:
        from ml.serve import ModelServer

        sm = ctx.client("sagemaker")
        name = _endpoint(ctx)
        package = sm.describe_model_package(ModelPackageName=package_arn)
        container = package["InferenceSpecification"]["Containers"][0]
        endpoint = sm.describe_endpoint(EndpointName=name)
        current = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        [variant] = current["ProductionVariants"]
        old_model = sm.describe_model(ModelName=variant["ModelName"])
        version = package_arn.rsplit("/", 1)[-1]
        suffix = hashlib.sha256(f"{package_arn}{time.time_ns()}".encode()).hexdigest()[:7]
        model_name = f"{name}-v{version}-{suffix}"[:63]
        sm.create_model(
            ModelName=model_name,
            ExecutionRoleArn=old_model["ExecutionRoleArn"],
            PrimaryContainer={
                "ModelPackageName": package_arn,
                "Environment": old_model["PrimaryContainer"].get("Environment", {}),
            },
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
        baseline = _publish_baseline(ctx, package)
        # the container: the package's artifact, served by the real handler on loopback
        bucket, key = container["ModelDataUrl"].removeprefix("s3://").split("/", 1)
        local = ctx.scratch / "deployed" / version / "model.tar.gz"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(_s3(ctx).get_object(Bucket=bucket, Key=key)["Body"].read())
        previous = ctx.state.pop("model_server", None)
        server = ModelServer(local, port=0).start()
        ctx.closers.append(server.close)
        if previous is not None:
            previous.close()
        ctx.state["model_server"] = server
        ctx.state["serving"] = {
            "endpoint": name,
            "model": model_name,
            "endpointConfig": config_name,
            "variant": variant["VariantName"],
            "url": server.url,
            "modelDataUrl": container["ModelDataUrl"],
            "driftBaseline": baseline,
        }

    return apply


def _publish_baseline(ctx: SandboxContext, package: Mapping[str, Any]) -> str:
    """The deployed version's drift baseline, published where the drift job reads it
    (`MLPLAT_DRIFT_BASELINE_KEY` in its environment) exactly as `mlplat deploy` does."""
    from ml.deploy import DeployError, publish_baseline
    from ml.drift.job import DriftJobConfig

    config = DriftJobConfig.from_env(_drift_environment(ctx))
    try:
        return publish_baseline(
            str(package["ModelPackageArn"]),
            config.models_bucket,
            config.baseline_key,
            _outputs(ctx).lake_kms_key_arn,
            session=ctx.session,
        )
    except DeployError as exc:
        raise StepFailed(str(exc)) from exc


def deploy(ctx: SandboxContext) -> str:
    from ml.deploy import deploy as deploy_version

    version = ctx.need("version", "approve")
    with ctx.aws_environment():  # ml.deploy makes its clients from the session, no endpoint
        done = deploy_version(
            ctx.settings.stack, version.arn, apply=sandbox_apply(ctx), session=ctx.session
        )
    serving = ctx.need("serving", "deploy")
    _lifecycle(ctx, "deploy", **serving, deployedBy=done.deployed_by, previous=done.previous_arn)
    return f"{serving['endpoint']} -> {serving['model']}, traffic served at {serving['url']}"


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


def _requests(hour_frame: pd.DataFrame) -> list[str]:
    from ml.features import INPUT_NAMES

    columns = ["customer_id", *INPUT_NAMES]
    records = json.loads(hour_frame[columns].to_json(orient="records"))
    bodies = [
        json.dumps({"instances": records[i : i + RECORDS_PER_REQUEST]})
        for i in range(0, len(records), RECORDS_PER_REQUEST)
    ]
    bad = {"instances": [{**records[0], "contract_type": "lifetime"}]}
    step = max(1, len(bodies) // (BAD_REQUESTS + 1))
    for n in range(BAD_REQUESTS):
        bodies.insert((n + 1) * step, json.dumps(bad))
    return bodies


def send_traffic(ctx: SandboxContext) -> str:
    """Two hours of requests to the endpoint (the second with drift), stamped on the sandbox's
    clock; SageMaker's per-minute endpoint metrics are published for them."""
    from ml.sample_data import generate_customers

    server = ctx.need("model_server", "deploy")
    hour = _clock(ctx)
    exchanges: list[Exchange] = []
    halves = (
        generate_customers(TRAFFIC_ROWS, seed=101, as_of=hour - HOUR, id_offset=10_000_000),
        generate_customers(TRAFFIC_ROWS, seed=202, drift=DRIFT, as_of=hour, id_offset=20_000_000),
    )
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for n, frame in enumerate(halves):
            start = hour - (2 - n) * HOUR
            bodies = _requests(frame)
            spacing = HOUR / len(bodies)
            for i, body in enumerate(bodies):
                status, text, latency = _post(connection, body)
                records = len(json.loads(body)["instances"])
                at = start + spacing * (i + 0.5)
                exchanges.append(Exchange(at, body, status, text, latency, records))
    finally:
        connection.close()
    served = [e for e in exchanges if e.status == 200]
    errors = [e for e in exchanges if e.status != 200]
    if any(e.status >= 500 for e in errors) or len(errors) != 2 * BAD_REQUESTS:
        raise StepFailed(
            f"unexpected answers: {sorted({e.status for e in errors})} for {len(errors)} "
            f"request(s); expected {2 * BAD_REQUESTS} refused with 4XX"
        )
    predictions = sum(e.records for e in served)
    ctx.state["exchanges"] = exchanges
    ctx.report.predictions_served = predictions
    sent = _put_endpoint_metrics(ctx, exchanges)
    latencies = sorted(e.latency_us for e in served)
    _lifecycle(
        ctx,
        "traffic",
        requests=len(exchanges),
        refused=len(errors),
        predictions=predictions,
        driftInjected={"hour": f"{hour - HOUR:%Y-%m-%dT%H:%M}Z", "drift": DRIFT},
        p50LatencyMs=round(latencies[len(latencies) // 2] / 1000, 2),
        endpointMetricsPut=sent,
    )
    return (
        f"{len(exchanges)} requests, {predictions:,} predictions, {len(errors)} refused (4XX); "
        f"drift {DRIFT:g} from {hour - HOUR:%H:%M}Z"
    )


def _put_endpoint_metrics(ctx: SandboxContext, exchanges: Sequence[Exchange]) -> int:
    """What SageMaker publishes per minute for the variant: Invocations, ModelLatency (µs),
    Invocation4XXErrors, Invocation5XXErrors."""
    serving = ctx.need("serving", "deploy")
    dimensions = [
        {"Name": "EndpointName", "Value": serving["endpoint"]},
        {"Name": "VariantName", "Value": serving["variant"]},
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


def capture(ctx: SandboxContext) -> str:
    """Data capture as the endpoint writes it: the realized configuration's destination, sampling
    and content-type header, files per few minutes under `<endpoint>/<variant>/yyyy/mm/dd/hh/`,
    put as the endpoint's execution role."""
    from ml.capture import capture_key, capture_lines, capture_record

    outputs = _outputs(ctx)
    serving = ctx.need("serving", "deploy")
    exchanges: list[Exchange] = ctx.need("exchanges", "send-traffic")
    sm = ctx.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=serving["endpointConfig"])
    capture_config = config.get("DataCaptureConfig")
    if not capture_config or not capture_config.get("EnableCapture", True):
        raise StepFailed(f"endpoint {serving['endpoint']} has no data capture configured")
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
    role_arn = outputs.endpoint_execution_role_arn
    if not role_arn:
        raise StepFailed("the platform outputs name no endpoint execution role")
    with _as_role(ctx, role_arn, "sandbox-capture") as credentials:
        s3 = _s3(ctx, credentials)
        for slot, records in sorted(files.items()):
            key = capture_key(serving["endpoint"], serving["variant"], slot, root)
            _check(
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
            )
            keys.append(key)
    ctx.state["capture"] = {"bucket": bucket, "root": root, "keys": keys}
    _lifecycle(
        ctx,
        "capture",
        files=len(keys),
        events=len(captured),
        samplingPercent=percent,
        prefix=f"s3://{bucket}/{root}/{serving['endpoint']}/{serving['variant']}/",
    )
    return (
        f"{len(captured)} events in {len(keys)} files under s3://{bucket}/{root}/"
        f"{serving['endpoint']}/{serving['variant']}/yyyy/mm/dd/hh/ (as the endpoint role)"
    )


def least_privilege(ctx: SandboxContext) -> str:
    """What the roles' policies do not grant is refused."""
    outputs = _outputs(ctx)
    serving = ctx.need("serving", "deploy")
    denied = "AccessDenied"
    with _as_role(ctx, outputs.training_role_arn, "sandbox-negative") as credentials:
        s3 = _s3(ctx, credentials)
        for bucket, key in (
            (outputs.raw_bucket, "customers/dt=2025-01-01/injected.parquet"),
            (outputs.models_bucket, "churn/current/model.tar.gz"),
            (outputs.predictions_bucket, "predictions/dt=2025-01-01/injected.parquet"),
        ):
            _check(
                ctx,
                "training",
                "s3:PutObject",
                f"s3://{bucket}/{key}",
                denied,
                lambda bucket=bucket, key=key: s3.put_object(  # type: ignore[misc]
                    Bucket=bucket, Key=key, Body=b"x", **_sse(outputs)
                ),
            )
        _check(
            ctx,
            "training",
            "s3:ListBucket",
            f"s3://{outputs.raw_bucket}/customers/",
            denied,
            lambda: s3.list_objects_v2(Bucket=outputs.raw_bucket, Prefix="customers/"),
        )
    role_arn = outputs.endpoint_execution_role_arn or ""
    with _as_role(ctx, role_arn, "sandbox-negative") as credentials:
        s3 = _s3(ctx, credentials)
        for bucket, key in (
            (outputs.predictions_bucket, f"capture/another-endpoint/{serving['variant']}/x.jsonl"),
            (outputs.predictions_bucket, "predictions/dt=2025-01-01/injected.parquet"),
            (outputs.raw_bucket, "customers/dt=2025-01-01/injected.parquet"),
        ):
            _check(
                ctx,
                "endpoint",
                "s3:PutObject",
                f"s3://{bucket}/{key}",
                denied,
                lambda bucket=bucket, key=key: s3.put_object(  # type: ignore[misc]
                    Bucket=bucket, Key=key, Body=b"x"
                ),
            )
    checks = ctx.report.least_privilege["checks"]
    ctx.report.least_privilege.update(
        {
            "enforced": True,
            "how": (
                "moto's IAM authorization (POST /moto-api/reset-auth 0) while the role's steps "
                "ran: each request authenticated by its SigV4 signature and authorized against "
                "the policies of the role whose STS credentials signed it"
            ),
            "limits": [
                "bucket policies: moto applies their statements without conditions, so the "
                "sandbox stores no conditioned Deny (noted per bucket): the TLS-only and "
                "SSE-KMS-only denies are not enforced; KMS key policies and grants, permission "
                "boundaries and SCPs are not evaluated",
                "moto does not supply condition keys (s3:prefix, cloudwatch:namespace, "
                "kms:ViaService): calls governed by a conditioned statement are not run as the "
                "role (the drift job's PutMetricData, registry calls)",
                "non-S3 actions are authorized against resource '*' only",
            ],
        }
    )
    denied_n = sum(1 for c in checks if c["expected"] == denied)
    return f"{len(checks)} checks as expected ({denied_n} AccessDenied, the rest allowed)"


# --- monitoring


def _drift_environment(ctx: SandboxContext) -> dict[str, str]:
    """The drift job's environment, read from the realized state machine's processing job."""
    sfn = ctx.client("stepfunctions")
    for _, arn in _realized(ctx, MACHINE_TOKEN):
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
        for state in definition.get("States", {}).values():
            env = state.get("Parameters", {}).get("Environment")
            if isinstance(env, dict) and any(k.startswith("MLPLAT_DRIFT_") for k in env):
                ctx.state["drift_machine"] = arn
                return {str(k): str(v) for k, v in env.items()}
    raise StepFailed("no realized state machine runs the drift job (MLPLAT_DRIFT_* environment)")


def drift(ctx: SandboxContext) -> str:
    """The scheduled drift job, once per hourly window of the traffic: capture -> prediction
    logs -> features -> drift against the training baseline -> report + CloudWatch metrics."""
    from ml.drift.job import DriftJobConfig, run_drift_job

    config = DriftJobConfig.from_env(_drift_environment(ctx))
    hour = _clock(ctx)
    s3 = _s3(ctx)
    sfn = ctx.client("stepfunctions")
    windows: list[dict[str, Any]] = []
    for n, label in enumerate(("clean", "drifted")):
        since = hour - (2 - n) * HOUR
        until = since + HOUR * config.window_hours
        execution = sfn.start_execution(
            stateMachineArn=ctx.state["drift_machine"],
            name=f"sandbox-{label}-{until:%Y%m%dT%H%M}",
        )["executionArn"]
        result = run_drift_job(
            config, since=since, until=until, s3=s3, cloudwatch=ctx.client("cloudwatch")
        )
        if result.report is None:
            raise StepFailed(f"the {label} window {since:%H:%M}-{until:%H:%M}Z held no rows")
        report = result.report
        features = {f.name: round(f.psi, 4) for f in report.features}
        windows.append(
            {
                "window": label,
                "since": since.isoformat(),
                "until": until.isoformat(),
                "execution": execution,
                "rows": result.n_rows,
                "maxFeaturePsi": max(features.values()),
                "featurePsi": features,
                "predictionPsi": round(report.prediction.psi, 4) if report.prediction else None,
                "driftedFeatures": list(report.drifted_features),
                "predictionDrifted": report.prediction_drifted,
                "metricsPut": result.metrics_sent,
                "report": list(result.report_keys),
            }
        )
    clean, drifted = windows
    ctx.report.drift = {"threshold": config.threshold, "windows": windows}
    if not drifted["driftedFeatures"]:
        raise StepFailed(
            f"drift {DRIFT:g} was injected but no feature's PSI passed {config.threshold:g}: "
            f"{drifted['featurePsi']}"
        )
    return (
        f"max PSI {clean['maxFeaturePsi']:.3f} (clean hour) -> {drifted['maxFeaturePsi']:.3f} "
        f"(drifted: {', '.join(drifted['driftedFeatures'])}); "
        f"{clean['metricsPut'] + drifted['metricsPut']} datapoints to {config.endpoint_name}"
    )


def alarms(ctx: SandboxContext) -> str:
    """The stack's alarms evaluated by CloudWatch's rules against what moto holds, on the sandbox's
    clock: 30 s after the clean hour, then 30 s after the drifted hour. State changes are set in
    moto and published to the alarms' SNS actions."""
    from mlplat.sandbox.alarms import AlarmEvaluationError, evaluate_in_moto

    hour = _clock(ctx)
    cloudwatch, sns = ctx.client("cloudwatch"), ctx.client("sns")
    names = [ident for _, ident in _realized(ctx, ALARM_TOKEN)]
    passes: list[tuple[str, datetime]] = [
        ("end of the clean hour", hour - HOUR + timedelta(seconds=30)),
        ("end of the drifted hour", hour + timedelta(seconds=30)),
    ]
    not_evaluated: dict[str, str] = {}
    history: list[dict[str, Any]] = []
    published = 0
    for label, now in passes:
        for name in names:
            if name in not_evaluated:
                continue
            try:
                result = evaluate_in_moto(cloudwatch, sns, name, now=now)
            except AlarmEvaluationError as exc:
                not_evaluated[name] = str(exc)
                continue
            published += len(result.published)
            if result.state != result.old_state:
                history.append(
                    {"pass": label, "alarm": name, "from": result.old_state, "to": result.state}
                )
    states = {
        a["AlarmName"]: a["StateValue"]
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=names)
        for a in page["MetricAlarms"]
    }
    ctx.report.alarm_states = dict(sorted(states.items()))
    firing = sorted(n for n, s in states.items() if s == "ALARM")
    _lifecycle(
        ctx,
        "alarms",
        evaluated=len(names) - len(not_evaluated),
        notEvaluated=not_evaluated,
        transitions=history,
        notificationsPublished=published,
    )
    drift_alarms = [n for n in firing if "drift" in n]
    if not drift_alarms:
        raise StepFailed(f"no drift alarm is in ALARM after the drifted hour: {states}")
    counts = {s: sum(1 for v in states.values() if v == s) for s in sorted(set(states.values()))}
    return (
        f"{len(names) - len(not_evaluated)} of {len(names)} evaluated "
        f"({', '.join(f'{n} {s}' for s, n in counts.items())}); firing: {', '.join(firing)}"
    )


def notifications(ctx: SandboxContext) -> str:
    """The on-call queues' messages: SNS envelopes around CloudWatch's alarm notifications."""
    queues: dict[str, str] = ctx.need("oncall_queues", "prepare-oncall-queues")
    if not queues:
        raise StepFailed("the stack subscribes no SQS queue to the on-call topic")
    sqs = ctx.client("sqs")
    received: list[dict[str, Any]] = []
    for arn, url in queues.items():
        for _ in range(100):
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                envelope = json.loads(message["Body"])
                alarm = json.loads(envelope["Message"]) if "Message" in envelope else envelope
                received.append(
                    {
                        "queue": arn,
                        "topic": envelope.get("TopicArn"),
                        "subject": envelope.get("Subject"),
                        "alarm": alarm.get("AlarmName"),
                        "newState": alarm.get("NewStateValue"),
                        "oldState": alarm.get("OldStateValue"),
                        "reason": alarm.get("NewStateReason"),
                    }
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    ctx.report.notifications = received
    pages = [n for n in received if n["newState"] == "ALARM" and "drift" in str(n["alarm"])]
    if not pages:
        raise StepFailed(
            f"no drift ALARM notification reached the on-call queue ({len(received)} received)"
        )
    return (
        f"{len(received)} messages on {len(queues)} queue(s); ALARM: "
        f"{', '.join(sorted({str(n['alarm']) for n in pages}))}"
    )


def prediction_logs(ctx: SandboxContext) -> str:
    """The prediction logs the drift job wrote (`ml.prediction_logs`), read back from the lake."""
    from ml.lake import list_partitions, read_dataset
    from ml.schema import PREDICTIONS

    outputs = _outputs(ctx)
    s3 = _s3(ctx)
    frame = read_dataset(PREDICTIONS, outputs.predictions_bucket, s3=s3)
    partitions = list_partitions(outputs.predictions_bucket, PREDICTIONS.prefix, s3=s3)
    captured = ctx.need("capture", "capture")
    served = ctx.report.predictions_served or 0
    ctx.report.prediction_logs = {
        "rows": len(frame),
        "partitions": [p.dt for p in partitions],
        "bucket": outputs.predictions_bucket,
        "captureFiles": len(captured["keys"]),
    }
    if len(frame) != served:
        raise StepFailed(f"{len(frame)} prediction log rows for {served} predictions served")
    return (
        f"{len(frame):,} rows in s3://{outputs.predictions_bucket}/{PREDICTIONS.prefix}/ "
        f"({', '.join('dt=' + p.dt for p in partitions)}), one per prediction served"
    )


ML_STEPS: tuple[Step, ...] = (
    Step("generate-data", generate_data, "synthetic customers with the churn label"),
    Step("ingest", ingest, "batch upload to raw; a slice through the Firehose stream"),
    Step("curate", curate, "raw -> validated, de-duplicated curated zone"),
    Step("features", features, "curated -> features zone (the serving feature code)"),
    Step("train", train, "local training on the features zone (as the training role)"),
    Step("evaluate", evaluate, "the promotion gate"),
    Step("package", package, "model.tar.gz with the handler"),
    Step("upload", upload, "artifact to the registry's prefix (as the training role)"),
    Step("register", register, "a version in the model package group"),
    Step("approve", approve, "approve the version"),
    Step("deploy", deploy, "the endpoint moved to the version; served on loopback"),
    Step("send-traffic", send_traffic, "two hours of requests, drift in the second"),
    Step("capture", capture, "data capture to the predictions zone (as the endpoint role)"),
    Step("least-privilege", least_privilege, "what the roles may not do is refused"),
    Step("drift", drift, "the drift job per hour: logs, report, metrics"),
    Step("alarms", alarms, "the stack's alarms evaluated, notifications published"),
    Step("notifications", notifications, "the on-call queue receives the drift alarm"),
    Step("prediction-logs", prediction_logs, "prediction logs read back from the lake"),
)


def summary_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(what, figure) lines for the end-of-run summary, from the JSON report."""
    rows: list[tuple[str, str]] = []
    if report.get("modelVersion"):
        metrics = report.get("metrics", {})
        rows.append(
            (
                "model",
                f"{report['modelVersion']}: ROC AUC {metrics.get('roc_auc', float('nan')):.3f}, "
                f"log loss {metrics.get('log_loss', float('nan')):.3f}",
            )
        )
    serving = report.get("lifecycle", {}).get("deploy")
    if serving:
        rows.append(("endpoint", f"{serving['endpoint']} served at {serving['url']}"))
    if report.get("predictionsServed") is not None:
        rows.append(("predictions served", f"{report['predictionsServed']:,}"))
    for window in report.get("drift", {}).get("windows", []):
        drifted = ", ".join(window["driftedFeatures"]) or "none"
        rows.append(
            (
                f"drift ({window['window']} hour)",
                f"max feature PSI {window['maxFeaturePsi']:.3f}, prediction PSI "
                f"{window['predictionPsi']}, drifted: {drifted}",
            )
        )
    states = report.get("alarmStates", {})
    if states:
        firing = sorted(n for n, s in states.items() if s == "ALARM")
        rows.append(("alarms", f"{len(states)}; in ALARM: {', '.join(firing) or 'none'}"))
    notes = report.get("notifications", [])
    if notes:
        alarm_notes = sum(1 for n in notes if n["newState"] == "ALARM")
        rows.append(("on-call messages", f"{len(notes)} received, {alarm_notes} ALARM"))
    logs = report.get("predictionLogs", {})
    if logs:
        rows.append(("prediction logs", f"{logs['rows']:,} rows in the lake"))
    checks = report.get("leastPrivilege", {}).get("checks", [])
    if checks:
        good = sum(1 for c in checks if c["ok"])
        denied = sum(1 for c in checks if c["actual"] == "AccessDenied")
        rows.append(("least privilege", f"{good}/{len(checks)} as expected, {denied} denied"))
    return rows
