"""The monitoring steps: the scheduled drift job run once per hour of traffic, the stack's alarms
evaluated as CloudWatch would (`mlplat.sandbox.alarms`), the on-call queue's notifications, and
the prediction logs read back from the lake.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from mlplat.sandbox.context import SandboxContext, StepFailed
from mlplat.sandbox.steps.common import (
    DRIFT,
    HOUR,
    clock,
    drift_environment,
    lifecycle_model,
    platform_outputs,
    realized,
    record,
    s3_client,
)

ALARM_TOKEN = "aws:cloudwatch/metricAlarm:MetricAlarm"


def drift(ctx: SandboxContext) -> str:
    """The scheduled drift job, once per hourly window of the traffic: capture -> prediction
    logs -> features -> drift against the training baseline -> report + CloudWatch metrics."""
    from ml.drift.job import DriftJobConfig, run_drift_job

    config = DriftJobConfig.from_env(drift_environment(ctx))
    machine = ctx.state.drift_machine
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

    hour = clock(ctx)
    cloudwatch, sns = ctx.client("cloudwatch"), ctx.client("sns")
    names = [ident for _, ident in realized(ctx, ALARM_TOKEN)]
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
    record(
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
    queues = ctx.state.need_oncall_queues()
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

    outputs = platform_outputs(ctx)
    table = lifecycle_model(ctx).spec.predictions
    s3 = s3_client(ctx)
    frame = read_dataset(table, outputs.predictions_bucket, s3=s3)
    partitions = list_partitions(outputs.predictions_bucket, table.prefix, s3=s3)
    captured = ctx.state.need_captured()
    served = ctx.report.predictions_served or 0
    ctx.report.prediction_logs = {
        "rows": len(frame),
        "partitions": [p.dt for p in partitions],
        "bucket": outputs.predictions_bucket,
        "captureFiles": len(captured.keys),
    }
    if len(frame) != served:
        raise StepFailed(f"{len(frame)} prediction log rows for {served} predictions served")
    return (
        f"{len(frame):,} rows in s3://{outputs.predictions_bucket}/{table.prefix}/ "
        f"({', '.join('dt=' + p.dt for p in partitions)}), one per prediction served"
    )
