"""The monitoring steps: each model's scheduled drift job run once per hour of its traffic, the
stack's alarms evaluated as CloudWatch would (`mlplat.sandbox.alarms`) with each model's drift
alarms going OK then ALARM for its own features, the on-call queue's notifications (a drift page
for each model), and each model's prediction logs read back from the lake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    DRIFT,
    HOUR,
    clock,
    drift_environment,
    model_outputs,
    platform_outputs,
    realized,
    record,
    runtime,
    s3_client,
)

ALARM_TOKEN = "aws:cloudwatch/metricAlarm:MetricAlarm"
CLEAN_PASS, DRIFTED_PASS = "end of the clean hour", "end of the drifted hour"


def drift(ctx: SandboxContext, model: str) -> str:
    """The model's scheduled drift job, once per hourly window of its traffic: capture ->
    prediction logs -> features -> drift against the training baseline -> report + CloudWatch
    metrics."""
    from ml.drift.job import DriftJobConfig, run_drift_job

    config = DriftJobConfig.from_env(drift_environment(ctx, model))
    if config.model != model:
        raise StepFailed(f"the drift job of {model} is configured for model {config.model!r}")
    machine = model_outputs(ctx, model).drift_state_machine_arn
    hour = clock(ctx)
    s3 = s3_client(ctx)
    sfn = ctx.client("stepfunctions")
    windows: list[dict[str, Any]] = []
    for n, label in enumerate(("clean", "drifted")):
        since = hour - (2 - n) * HOUR
        until = since + HOUR * config.window_hours
        execution = sfn.start_execution(
            stateMachineArn=machine,
            name=f"sandbox-{label}-{until:%Y%m%dT%H%M}",
        )["executionArn"]
        result = run_drift_job(
            config,
            since=since,
            until=until,
            s3=s3,
            cloudwatch=ctx.client("cloudwatch"),
            sagemaker=ctx.client("sagemaker"),
        )
        if result.report is None:
            raise StepFailed(f"the {label} window {since:%H:%M}-{until:%H:%M}Z held no rows")
        report = result.report
        features = {f.name: round(f.psi, 4) for f in report.features}
        monitored = monitor_figures(result)
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
                **monitored,
            }
        )
        # the deployed handler is the training path: re-scored, no captured row differs
        skew = monitored["skew"]
        if skew is None or skew["n_differ"] != 0:
            raise StepFailed(
                f"the {label} window's training-serving skew of {model} is {skew} "
                f"({monitored['parts'].get('skew')}): the deployed handler must score as "
                "training does"
            )
    clean, drifted = windows
    ctx.report.model(model).drift = {"threshold": config.threshold, "windows": windows}
    own = set(runtime(ctx, model).spec.feature_names)
    if set(clean["featurePsi"]) != own:
        raise StepFailed(
            f"the drift job of {model} measured {sorted(clean['featurePsi'])}, not its features "
            f"{sorted(own)}"
        )
    if not drifted["driftedFeatures"]:
        raise StepFailed(
            f"drift {DRIFT:g} was injected but no feature of {model} passed PSI "
            f"{config.threshold:g}: {drifted['featurePsi']}"
        )
    return (
        f"max PSI {clean['maxFeaturePsi']:.3f} (clean hour) -> {drifted['maxFeaturePsi']:.3f} "
        f"(drifted: {', '.join(drifted['driftedFeatures'])}); skew 0 of "
        f"{clean['skew']['n'] + drifted['skew']['n']} re-scored; "
        f"{clean['metricsPut'] + drifted['metricsPut']} datapoints to {config.endpoint_name}"
    )


def monitor_figures(result: Any) -> dict[str, Any]:
    """What a run of the monitor job measured besides drift (`ml.drift.job.DriftJobResult`): each
    part's status, the skew, the model's age, online quality, the page it wrote."""
    return {
        "parts": {name: part.to_dict() for name, part in result.parts.items()},
        "skew": result.skew.to_dict() if result.skew is not None else None,
        "ageDays": None if result.age_days is None else round(result.age_days, 4),
        "quality": result.quality.to_dict() if result.quality is not None else None,
        "modelVersion": result.model_version,
        "qualityMetricsPut": result.quality_metrics_sent,
        "page": result.page_key,
    }


def _drift_alarms(
    ctx: SandboxContext, alarms: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, str]]:
    """Model -> {alarm name -> the feature it watches ("" for the prediction)}: the drift alarms
    (`ml.contracts.DRIFT_NAMESPACE`) on each model's endpoint, for the models of the run."""
    from ml.contracts import DRIFT_NAMESPACE, ENDPOINT_DIMENSION, FEATURE_DIMENSION

    by_model: dict[str, dict[str, str]] = {}
    for name in ctx.models:
        endpoint = model_outputs(ctx, name).endpoint_name
        mine: dict[str, str] = {}
        for alarm_name, alarm in alarms.items():
            dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
            watched = dims.get(ENDPOINT_DIMENSION)
            if alarm.get("Namespace") == DRIFT_NAMESPACE and watched == endpoint:
                mine[alarm_name] = dims.get(FEATURE_DIMENSION, "")
        by_model[name] = mine
    return by_model


def describe_alarms(cloudwatch: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """The alarms `names`, as CloudWatch describes them now (100 names per request at most)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), 100):
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=names[start : start + 100]
        )
        found.update({a["AlarmName"]: a for page in pages for a in page["MetricAlarms"]})
    return found


def alarms(ctx: SandboxContext) -> str:
    """The stack's alarms evaluated by CloudWatch's rules against what moto holds, on the sandbox's
    clock: 30 s after the clean hour, then 30 s after the drifted hour. State changes are set in
    moto and published to the alarms' SNS actions. Each model of the run must have drift alarms
    on its own features that went OK after the clean hour and ALARM after the drifted one."""
    from mlplat.sandbox.alarms import AlarmEvaluationError, evaluate_in_moto

    hour = clock(ctx)
    cloudwatch, sns = ctx.client("cloudwatch"), ctx.client("sns")
    names = [ident for _, ident in realized(ctx, ALARM_TOKEN)]
    passes: list[tuple[str, datetime]] = [
        (CLEAN_PASS, hour - HOUR + timedelta(seconds=30)),
        (DRIFTED_PASS, hour + timedelta(seconds=30)),
    ]
    not_evaluated: dict[str, str] = {}
    history: list[dict[str, Any]] = []
    published = 0
    for label, now in passes:
        found = describe_alarms(cloudwatch, names)
        for name in names:
            if name in not_evaluated:
                continue
            if name not in found:
                not_evaluated[name] = f"no alarm named {name!r}"
                continue
            try:
                result = evaluate_in_moto(cloudwatch, sns, name, now=now, described=found[name])
            except AlarmEvaluationError as exc:
                not_evaluated[name] = str(exc)
                continue
            published += len(result.published)
            if result.state != result.old_state:
                history.append(
                    {"pass": label, "alarm": name, "from": result.old_state, "to": result.state}
                )
    described = describe_alarms(cloudwatch, names)
    states = {n: str(a["StateValue"]) for n, a in described.items()}
    ctx.report.alarm_states = dict(sorted(states.items()))
    firing = sorted(n for n, s in states.items() if s == "ALARM")
    record(
        ctx,
        "alarms",
        evaluated=len(names) - len(not_evaluated),
        notEvaluated=not_evaluated,
        transitions=history,
        notificationsPublished=published,
    )
    went = {(h["alarm"], h["pass"]): h["to"] for h in history}
    shown: list[str] = []
    for model, drift_alarms in _drift_alarms(ctx, described).items():
        ctx.report.model(model).drift_alarms = {n: states[n] for n in sorted(drift_alarms)}
        own = set(runtime(ctx, model).spec.feature_names)
        strangers = sorted(f for f in drift_alarms.values() if f and f not in own)
        if strangers:
            raise StepFailed(f"drift alarms of {model} watch features it lacks: {strangers}")
        fired = sorted(n for n in drift_alarms if states[n] == "ALARM")
        if not fired:
            raise StepFailed(
                f"no drift alarm of {model} is in ALARM after the drifted hour: "
                f"{ctx.report.model(model).drift_alarms}"
            )
        skipped = [n for n in fired if went.get((n, CLEAN_PASS)) != "OK"]
        if skipped:
            raise StepFailed(f"drift alarms of {model} fired without going OK first: {skipped}")
        shown.append(f"{model}: {', '.join(drift_alarms[n] or 'prediction' for n in fired)}")
    counts = {s: sum(1 for v in states.values() if v == s) for s in sorted(set(states.values()))}
    return (
        f"{len(names) - len(not_evaluated)} of {len(names)} evaluated "
        f"({', '.join(f'{n} {s}' for s, n in counts.items())}); {len(firing)} in ALARM; "
        f"drift OK -> ALARM: {'; '.join(shown)}"
    )


def notifications(ctx: SandboxContext) -> str:
    """The on-call queues' messages: SNS envelopes around CloudWatch's alarm notifications; each
    model of the run must have paged with one of its drift alarms."""
    queues = ctx.state.need_oncall_queues()
    if not queues:
        raise StepFailed("the stack subscribes no SQS queue to the on-call topic")
    if not ctx.report.alarm_states:
        raise StepFailed("no alarm states (did alarms run?)")
    drift_alarm_of = {a: m for m in ctx.models for a in ctx.report.model(m).drift_alarms}
    received = [
        {**n, "driftOf": drift_alarm_of.get(str(n["alarm"]))} for n in drain_oncall(ctx, queues)
    ]
    ctx.report.notifications = received
    pages = [n for n in received if n["newState"] == "ALARM"]
    shown: list[str] = []
    for model in ctx.models:
        mine = set(ctx.report.model(model).drift_alarms)
        paged = sorted({str(n["alarm"]) for n in pages if n["alarm"] in mine})
        if not paged:
            raise StepFailed(
                f"no drift ALARM notification of {model} reached the on-call queue "
                f"({len(received)} received; its drift alarms: {sorted(mine) or 'none'})"
            )
        shown.append(f"{model}: {', '.join(paged)}")
    return f"{len(received)} messages on {len(queues)} queue(s); drift ALARM {'; '.join(shown)}"


def drain_oncall(ctx: SandboxContext, queues: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every message on the on-call `queues` (ARN -> URL), received and deleted: the SNS
    envelope's topic and subject around CloudWatch's alarm notification."""
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
    return received


def prediction_logs(ctx: SandboxContext, model: str) -> str:
    """The model's prediction logs the drift job wrote (`ml.prediction_logs`), read back from
    the lake: one row per prediction its endpoint served."""
    from ml.lake import list_partitions, read_dataset

    outputs = platform_outputs(ctx)
    table = runtime(ctx, model).spec.predictions
    s3 = s3_client(ctx)
    frame = read_dataset(table, outputs.predictions_bucket, s3=s3)
    partitions = list_partitions(outputs.predictions_bucket, table.prefix, s3=s3)
    captured = ctx.state.model(model).need_captured()
    report = ctx.report.model(model)
    served = report.predictions_served or 0
    report.prediction_logs = {
        "rows": len(frame),
        "partitions": [p.dt for p in partitions],
        "bucket": outputs.predictions_bucket,
        "prefix": table.prefix,
        "captureFiles": len(captured.keys),
    }
    if len(frame) != served:
        raise StepFailed(f"{len(frame)} prediction log rows of {model} for {served} served")
    return (
        f"{len(frame):,} rows in s3://{outputs.predictions_bucket}/{table.prefix}/ "
        f"({', '.join('dt=' + p.dt for p in partitions)}), one per prediction served"
    )
