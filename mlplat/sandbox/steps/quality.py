"""The steps that watch what drift cannot see: training-serving skew, labels coming back, online
quality per version, the model's age.

`skewed-handler:<model>`: the trained model re-packaged with a handler edited by hand (its
`code/inference.py` rounds the feature matrix to whole numbers, which the training path never
does) is registered and approved as the model's next version and deployed (`ml.deploy`, as
`mlplat deploy` does); it serves an hour of traffic `[H, H+1h)`, captured as its endpoint role
writes it; the model's scheduled monitor job (its environment read from its realized state
machine, as for drift) re-scores a sample of that hour through the training path: the share that
differs is the `SkewShare` metric, and the model's skew alarm, evaluated 30 s after the hour,
goes to ALARM and pages on-call. The version is then rolled back (`ml.deploy.rollback`): the
kept sandbox serves the version the pipeline trained.

`labels`: the outcomes of every prediction served come back a label horizon later (the longest
`ModelSpec.label_horizon_days` of the run's models after H), drawn from the sample data's
generating process (`ml.sample_data.simulate_outcomes`), into the lake's outcomes dataset of the
realized raw bucket: most as a batch (`ml.labels.write_outcomes`), the rest through the stack's
outcomes Firehose stream (delivered as Firehose does, `mlplat.sandbox.firehose`).

`quality:<model>`: the monitor job an hour after the labels came back joins the prediction logs
whose label horizon has passed with the outcomes: online quality per version (the pipeline's
version and the skewed one), its shortfall against each version's registered offline figures
(written back to each version's registry metadata), the model's age; the model's quality-shortfall
and model-age alarms are evaluated 30 s later, and must agree with the datapoints the job put.

The clock: the labels come back on a simulated day `H + horizon`; metrics are stamped then, and
the alarms judged then. Only the quality, skew and age alarms are evaluated on these later passes
(the endpoint's and the drift alarms keep the states the `alarms` step left).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    HOUR,
    clock,
    drift_environment,
    model_outputs,
    platform_outputs,
    realized,
    record,
    record_model,
    runtime,
    s3_client,
    sse,
)
from mlplat.sandbox.steps.monitoring import (
    ALARM_TOKEN,
    describe_alarms,
    drain_oncall,
    monitor_figures,
)
from mlplat.sandbox.steps.serving import (
    release,
    serve_hours,
    served_artifact,
    write_capture,
)

if TYPE_CHECKING:
    import pandas as pd

    from ml.drift.job import DriftJobResult

SKEW_ROWS = 300  # customers of the hour the skewed handler serves
SKEW_CASE = "skewed-handler"  # where its artifact lies under the model's artifacts prefix
# Appended to the artifact's `code/inference.py`: the hand edit that makes the endpoint score
# differently from training (rounding the features, as a careless integer cast would).
SKEW_EDIT = """

# Edited by hand after training (the sandbox's skewed handler): the features the endpoint scores
# are rounded to whole numbers, which the training path never does. The endpoint answers as
# before; only the monitor job's re-scoring through the training path can tell.
import numpy as _np

_derive = input_fn


def input_fn(input_data, content_type):
    return _np.rint(_derive(input_data, content_type))
"""
STREAMED_OUTCOMES = 200  # of the outcomes, sent through the outcomes Firehose stream
LABELS_SEED = 404
ALARM_DELAY = timedelta(seconds=30)  # CloudWatch judges a period shortly after it ends


# --- the skewed handler -------------------------------------------------------------------------


def skewed_artifact(archive: bytes) -> bytes:
    """`archive` (a `model.tar.gz`) with `SKEW_EDIT` appended to its `code/inference.py`; every
    other member as it was."""
    out = io.BytesIO()
    edited = False
    with (
        tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source,
        tarfile.open(fileobj=out, mode="w:gz") as target,
    ):
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            body = data.read() if data is not None else None
            if member.name.removeprefix("./") == "code/inference.py" and body is not None:
                body += SKEW_EDIT.encode()
                member.size = len(body)
                edited = True
            target.addfile(member, io.BytesIO(body) if body is not None else None)
    if not edited:
        raise StepFailed("the served artifact has no code/inference.py to edit")
    return out.getvalue()


def _register_skewed(ctx: SandboxContext, deployed_arn: str, model_data_url: str) -> str:
    """The deployed version registered again with the skewed artifact, approved: its container,
    its reports (gate, metrics, baseline) and its offline figures, another `code/`."""
    from ml.quality import ONLINE_PROPERTY_PREFIX

    sm = ctx.client("sagemaker")
    package = sm.describe_model_package(ModelPackageName=deployed_arn)
    spec = dict(package["InferenceSpecification"])
    spec["Containers"] = [{**spec["Containers"][0], "ModelDataUrl": model_data_url}]
    metadata = {
        k: v
        for k, v in (package.get("CustomerMetadataProperties") or {}).items()
        if not k.startswith(("deploy", "rolled-back", ONLINE_PROPERTY_PREFIX))
    }
    created = sm.create_model_package(
        ModelPackageGroupName=package["ModelPackageGroupName"],
        ModelPackageDescription=(
            f"{package['ModelPackageGroupName']}: the model of {deployed_arn.rsplit('/', 1)[-1]} "
            "with a handler edited by hand (the sandbox's training-serving skew case)"
        ),
        InferenceSpecification=spec,
        ModelMetrics=package["ModelMetrics"],
        CustomerMetadataProperties={**metadata, "sandbox-case": SKEW_CASE},
        ModelApprovalStatus="Approved",
    )
    return str(created["ModelPackageArn"])


def _skewed_traffic(ctx: SandboxContext) -> pd.DataFrame:
    """The customers of the hour the skewed handler serves (generated once, sent to every
    model), stamped in `[H, H+1h)`."""
    from ml.sample_data import generate_customers

    if ctx.state.skewed_traffic is None:
        ctx.state.skewed_traffic = generate_customers(
            SKEW_ROWS, seed=303, as_of=clock(ctx) + HOUR, id_offset=30_000_000
        )
    return ctx.state.skewed_traffic


def _quality_alarms(ctx: SandboxContext, model: str) -> dict[str, dict[str, Any]]:
    """The model's alarms on the quality namespace's metrics (`QualityShortfall`, `SkewShare`,
    `ModelAgeDays`), by metric name, as CloudWatch describes them now."""
    from ml.contracts import ENDPOINT_DIMENSION, QUALITY_NAMESPACE

    endpoint = model_outputs(ctx, model).endpoint_name
    names = [ident for _, ident in realized(ctx, ALARM_TOKEN)]
    found: dict[str, dict[str, Any]] = {}
    for alarm in describe_alarms(ctx.client("cloudwatch"), names).values():
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        if alarm.get("Namespace") == QUALITY_NAMESPACE and dims.get(ENDPOINT_DIMENSION) == endpoint:
            found[str(alarm["MetricName"])] = alarm
    return found


def _judge(ctx: SandboxContext, model: str, metrics: list[str], now: datetime) -> dict[str, Any]:
    """The model's alarms on `metrics` evaluated at `now` (set in moto, notifications published):
    metric -> {alarm, from, to, threshold}."""
    from mlplat.sandbox.alarms import evaluate_in_moto

    alarms = _quality_alarms(ctx, model)
    missing = [m for m in metrics if m not in alarms]
    if missing:
        raise StepFailed(f"the stack gives {model} no alarm on {missing} (MLPlatform/Quality)")
    judged: dict[str, Any] = {}
    for metric in metrics:
        alarm = alarms[metric]
        result = evaluate_in_moto(
            ctx.client("cloudwatch"),
            ctx.client("sns"),
            str(alarm["AlarmName"]),
            now=now,
            described=alarm,
        )
        judged[metric] = {
            "alarm": result.name,
            "from": result.old_state,
            "to": result.state,
            "threshold": float(alarm["Threshold"]),
        }
        ctx.report.model(model).quality_alarms[result.name] = result.state
        ctx.report.alarm_states[result.name] = result.state  # the stack's alarms, as they are now
    return judged


def _monitor(ctx: SandboxContext, model: str, since: datetime, until: datetime) -> DriftJobResult:
    """The model's scheduled monitor job for `[since, until)`, configured as the stack's (its
    environment from the realized state machine)."""
    from ml.drift.job import DriftJobConfig, run_drift_job

    config = DriftJobConfig.from_env(drift_environment(ctx, model))
    result = run_drift_job(
        config,
        since=since,
        until=until,
        s3=s3_client(ctx),
        cloudwatch=ctx.client("cloudwatch"),
        sagemaker=ctx.client("sagemaker"),
    )
    if result.failed:
        failures = {n: result.parts[n].detail for n in result.failed}
        raise StepFailed(f"the monitor job of {model} for {until:%Y-%m-%d %H:%M}Z: {failures}")
    return result


def skewed_handler(ctx: SandboxContext, model: str) -> str:
    """The trained model with a hand-edited handler, deployed: its hour of traffic re-scored by the
    monitor job differs from what it answered, the skew alarm pages, the version is rolled back."""
    from ml.contracts import SKEW_SHARE_METRIC
    from ml.deploy import DeployError, group_of, rollback
    from ml.deploy import deploy as deploy_version

    state = ctx.state.model(model)
    deployed = state.need_version("approve")
    served = state.need_serving()
    outputs = platform_outputs(ctx)
    bucket, key = served.model_data_url.removeprefix("s3://").split("/", 1)
    s3 = s3_client(ctx)
    archive = skewed_artifact(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    prefix = model_outputs(ctx, model).model_artifacts_prefix.strip("/")
    skewed_key = f"{prefix}/sandbox/{SKEW_CASE}/model.tar.gz"
    s3.put_object(Bucket=outputs.models_bucket, Key=skewed_key, Body=archive, **sse(outputs))
    skewed = _register_skewed(ctx, deployed.arn, f"s3://{outputs.models_bucket}/{skewed_key}")
    stack = ctx.settings.stack
    with ctx.aws_environment():
        try:
            deploy_version(stack, skewed, release(ctx, model), session=ctx.session)
        except DeployError as exc:
            raise StepFailed(str(exc)) from exc
    served_artifact(ctx, model)
    hour = clock(ctx)
    exchanges, _ = serve_hours(ctx, model, [(hour, _skewed_traffic(ctx))])
    answered = sorted(
        {str(json.loads(e.response).get("model_version")) for e in exchanges if e.status == 200}
    )
    version = f"{group_of(skewed)}/{skewed.rsplit('/', 1)[-1]}"
    if answered != [version]:
        raise StepFailed(f"the skewed endpoint of {model} answered as {answered}, not {version}")
    state.skewed_exchanges = exchanges
    captured = write_capture(ctx, model, exchanges)
    result = _monitor(ctx, model, hour, hour + HOUR)
    skew = result.skew
    if skew is None:
        raise StepFailed(f"the monitor job of {model} measured no skew: {result.parts}")
    judged = _judge(ctx, model, [SKEW_SHARE_METRIC], hour + HOUR + ALARM_DELAY)
    alarm = judged[SKEW_SHARE_METRIC]
    if not skew.share > alarm["threshold"] or alarm["to"] != "ALARM":
        raise StepFailed(
            f"the skewed handler of {model}: skew share {skew.share:.3f} against the alarm's "
            f"threshold {alarm['threshold']:g}; the alarm went {alarm['from']} -> {alarm['to']}"
        )
    pages = [
        n
        for n in drain_oncall(ctx, ctx.state.need_oncall_queues())
        if n["alarm"] == alarm["alarm"] and n["newState"] == "ALARM"
    ]
    if not pages:
        raise StepFailed(f"the skew alarm {alarm['alarm']} of {model} paged no on-call queue")
    with ctx.aws_environment():
        try:
            back = rollback(stack, group_of(skewed), release(ctx, model), session=ctx.session)
        except DeployError as exc:
            raise StepFailed(str(exc)) from exc
    served_artifact(ctx, model)
    if back.model_package_arn != deployed.arn:
        raise StepFailed(f"the rollback of {model} returned to {back.model_package_arn}")
    figures = monitor_figures(result)
    ctx.report.model(model).skew = {
        "faithful": [w["skew"] for w in ctx.report.model(model).drift.get("windows", [])],
        "skewed": {**(figures["skew"] or {}), "modelVersion": version},
        "alarm": alarm,
    }
    record_model(
        ctx,
        model,
        SKEW_CASE,
        modelPackageArn=skewed,
        modelVersion=version,
        artifact=f"s3://{outputs.models_bucket}/{skewed_key}",
        predictions=sum(e.records for e in exchanges if e.status == 200),
        captureFiles=len(captured.keys),
        monitor=figures,
        alarm=alarm,
        pages=pages,
        rolledBackTo=back.model_package_arn,
    )
    return (
        f"{version} served {sum(e.records for e in exchanges if e.status == 200)} predictions; "
        f"{skew.n_differ} of {skew.n} re-scored differ (share {skew.share:.3f} > "
        f"{alarm['threshold']:g}): {alarm['alarm']} {alarm['from']} -> ALARM, paged; rolled back "
        f"to {deployed.group}/{deployed.version}"
    )


# --- labels and online quality -----------------------------------------------------------------


def _served_predictions(ctx: SandboxContext) -> pd.DataFrame:
    """Every customer a model of the run scored (the traffic's customers, with every raw input
    the generating process reads) at the time it was scored (`inference_time`)."""
    import pandas as pd

    frames = [*(ctx.state.traffic or ()), ctx.state.skewed_traffic]
    customers = pd.concat([f for f in frames if f is not None], ignore_index=True)
    scored: dict[tuple[str, datetime], None] = {}
    for name in ctx.models:
        state = ctx.state.model(name)
        for e in [*state.need_exchanges(), *(state.skewed_exchanges or [])]:
            if e.status == 200:
                for record_ in json.loads(e.request)["instances"]:
                    scored[(str(record_["customer_id"]), e.at)] = None
    # at the capture's precision (milliseconds), the precision the outcomes' stream keeps too
    times = pd.DataFrame(
        {
            "customer_id": [c for c, _ in scored],
            "inference_time": pd.to_datetime([t for _, t in scored], utc=True).floor("ms"),
        }
    )
    ids = customers.assign(customer_id=customers["customer_id"].astype("string"))
    frame = times.assign(customer_id=times["customer_id"].astype("string")).merge(
        ids.drop(columns=["event_time"]), on="customer_id", how="inner", validate="many_to_one"
    )
    if len(frame) != len(times):
        raise StepFailed(f"{len(times) - len(frame)} scored customer(s) are not the traffic's")
    return frame.sort_values("inference_time", kind="stable").reset_index(drop=True)


def _outcomes_stream(ctx: SandboxContext) -> str:
    """The name of the stack's outcomes Firehose stream (`streamDatasets`)."""
    from ml.schema import CUSTOMER_OUTCOMES

    logical = ctx.settings.ingestion.component_name(CUSTOMER_OUTCOMES.name) + "-stream"
    found = [arn for name, arn in realized(ctx, STREAM_TOKEN) if name == logical]
    if not found:
        raise StepFailed(
            f"the stack streams no {CUSTOMER_OUTCOMES.name} (no {logical}): add it to "
            "ml-platform:streamDatasets"
        )
    return found[0].rsplit("/", 1)[-1]


STREAM_TOKEN = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"


def labels(ctx: SandboxContext) -> str:
    """The outcomes of every prediction served, observed a label horizon after the traffic, into
    the lake's outcomes dataset: a batch, and the rest through the outcomes stream."""
    from ml.labels import write_outcomes
    from ml.sample_data import simulate_outcomes
    from ml.schema import CUSTOMER_OUTCOMES
    from ml.stream import frame_records, send_records
    from mlplat.sandbox.firehose import deliver

    horizon = max(runtime(ctx, m).spec.label_horizon_days for m in ctx.models)
    observed = clock(ctx) + timedelta(days=horizon)
    outcomes = simulate_outcomes(_served_predictions(ctx), seed=LABELS_SEED, observed_at=observed)
    outputs = platform_outputs(ctx)
    s3 = s3_client(ctx)
    batch, streamed = outcomes.iloc[:-STREAMED_OUTCOMES], outcomes.iloc[-STREAMED_OUTCOMES:]
    written = write_outcomes(s3, outputs.raw_bucket, batch, outputs.lake_kms_key_arn)
    stream = _outcomes_stream(ctx)
    sent = send_records(
        frame_records(streamed, CUSTOMER_OUTCOMES),
        stream,
        firehose=ctx.client("firehose"),
        sleep=lambda _: None,
    )
    if not sent.ok:
        raise StepFailed(f"Firehose refused {len(sent.failed)} outcome(s): {sent.error_counts}")
    deliveries = deliver(
        s3,
        ctx.client("firehose"),
        ctx.client("glue"),
        ctx.client("cloudwatch"),
        stream,
        now=observed,
    )
    if sum(d.records for d in deliveries) != len(streamed):
        raise StepFailed(f"the outcomes stream delivered {deliveries} of {len(streamed)} records")
    ctx.state.labels_observed_at = observed
    labelled = {
        label: round(float(outcomes[label].mean()), 4)
        for label in sorted({runtime(ctx, m).spec.label for m in ctx.models})
    }
    record(
        ctx,
        "labels",
        observedAt=observed.isoformat(),
        horizonDays=horizon,
        outcomes=len(outcomes),
        batchRows=written.rows,
        streamedRecords=sent.delivered,
        streamedObjects=[d.key for d in deliveries],
        stream=stream,
        labelMeans=labelled,
    )
    return (
        f"{len(outcomes):,} outcomes observed {observed:%Y-%m-%d} ({horizon} days on): "
        f"{written.rows:,} batch, {sent.delivered} through {stream}; "
        + ", ".join(f"{k} mean {v:g}" for k, v in labelled.items())
    )


def quality(ctx: SandboxContext, model: str) -> str:
    """The monitor job an hour after the labels came back: online quality per version, the
    shortfall against each version's offline figures (and in its registry metadata), the age;
    the model's quality-shortfall and model-age alarms judged from what it put."""
    from ml.contracts import MODEL_AGE_METRIC, QUALITY_SHORTFALL_METRIC

    observed = ctx.state.labels_observed_at
    if observed is None:
        raise StepFailed("no labels came back (did labels run?)")
    until = observed.replace(minute=0, second=0, microsecond=0) + HOUR
    result = _monitor(ctx, model, until - HOUR, until)
    run = result.quality
    if run is None:
        raise StepFailed(f"the monitor job of {model} measured no online quality: {result.parts}")
    figures = run.to_dict()
    served = _served_by_version(ctx, model)
    measured = {v: q["n"] for v, q in figures["versions"].items()}
    if measured != served:
        raise StepFailed(
            f"online quality of {model} measured {measured} labelled predictions per version; "
            f"it served {served}"
        )
    metadata = _online_metadata(ctx, run.registry_updated)
    if sorted(metadata) != sorted(served):
        raise StepFailed(f"the registry holds online figures of {sorted(metadata)} for {model}")
    judged = _judge(ctx, model, [QUALITY_SHORTFALL_METRIC, MODEL_AGE_METRIC], until + ALARM_DELAY)
    # the alarm's series: the worst shortfall of the versions judged on enough rows
    # (`ml.quality.metric_data`), whichever served last
    from ml.quality import ALARM_MIN_ROWS

    judged_versions = [
        run.shortfalls[v]
        for v, q in run.online.versions.items()
        if q.overall.n >= ALARM_MIN_ROWS and v in run.shortfalls
    ]
    shortfall = max(judged_versions) if judged_versions else None
    expected = {
        QUALITY_SHORTFALL_METRIC: shortfall,
        MODEL_AGE_METRIC: result.age_days,
    }
    for metric, value in expected.items():
        alarm = judged[metric]
        breach = value is not None and value > alarm["threshold"]
        if value is None or alarm["to"] != ("ALARM" if breach else "OK"):
            raise StepFailed(
                f"{alarm['alarm']} went {alarm['to']} for {metric} {value} against its "
                f"threshold {alarm['threshold']:g}"
            )
    report = ctx.report.model(model)
    report.online_quality = {
        "window": figures["window"],
        "labeledRows": figures["labeled_rows"],
        "versions": figures["versions"],
        "registry": metadata,
    }
    report.model_age_days = None if result.age_days is None else round(result.age_days, 3)
    record_model(ctx, model, "quality", until=until.isoformat(), **monitor_figures(result))
    record_model(ctx, model, "quality-alarms", **judged)
    task = runtime(ctx, model).spec.task
    shown = ", ".join(
        f"{v} {_headline(task, q['metrics'])} on {q['n']} (short {_number(q['shortfall'])})"
        for v, q in figures["versions"].items()
    )
    return (
        f"{figures['labeled_rows']} labelled: {shown}; age {result.age_days:.1f} d; "
        + ", ".join(f"{a['alarm'].split('-alarms-')[-1]} {a['to']}" for a in judged.values())
    )


def _served_by_version(ctx: SandboxContext, model: str) -> dict[str, int]:
    """Predictions the model's endpoint answered, by the version that answered."""
    state = ctx.state.model(model)
    counts: dict[str, int] = {}
    for e in [*state.need_exchanges(), *(state.skewed_exchanges or [])]:
        if e.status == 200:
            version = str(json.loads(e.response).get("model_version"))
            counts[version] = counts.get(version, 0) + e.records
    return dict(sorted(counts.items()))


def _online_metadata(ctx: SandboxContext, arns: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The `online.*` registry metadata of each version the job updated, read back."""
    from ml.quality import ONLINE_PROPERTY_PREFIX

    sm = ctx.client("sagemaker")
    found: dict[str, dict[str, str]] = {}
    for arn in arns:
        package = sm.describe_model_package(ModelPackageName=arn)
        props: Mapping[str, str] = package.get("CustomerMetadataProperties") or {}
        version = f"{package['ModelPackageGroupName']}/{package['ModelPackageVersion']}"
        found[version] = {k: v for k, v in props.items() if k.startswith(ONLINE_PROPERTY_PREFIX)}
    return found


def _headline(task: str, metrics: Mapping[str, Any]) -> str:
    """The task's first headline metric (ROC AUC, RMSE) of `metrics`."""
    from mlplat.sandbox.context import HEADLINE_METRICS

    name, label = HEADLINE_METRICS.get(task, (("", ""),))[0]
    return f"{label} {_number(metrics.get(name))}"


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"
