"""`mlplat monitor drift`: run the drift job once, here, against a stack's lake and CloudWatch.

The same code the scheduled processing job runs (`ml.drift.job.run_drift_job`): read the window's
data capture, log predictions to the lake, compare with the training baseline, write the report to
`drift-reports/` and put the PSI metrics the alarms watch; then, unless `--drift-only`, online
quality, training-serving skew and the served model's age, configured from the outputs as the
component configures the scheduled job. The platform outputs come from
`--outputs FILE` (a `pulumi stack output --json` dump) or `--stack S` (the Pulumi CLI);
`--endpoint-url` points every AWS client at a moto server. `--model NAME` (default: the stack's
first model) says whose endpoint, baseline and predictions table. Errors: message on stderr,
exit 2.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlplat.cli import options
from mlplat.cli.errors import fail, usage_errors
from mlplat.cli.inputs import model_name, platform_outputs

if TYPE_CHECKING:
    from ml.drift.job import DriftJobResult
    from ml.outputs import PlatformOutputs


def register(app: typer.Typer) -> None:
    monitor = typer.Typer(name="monitor", help="Model monitoring: drift.", no_args_is_help=True)
    monitor.command("drift")(drift_command)
    app.add_typer(monitor, name="monitor")


def parse_time(value: str, now: datetime) -> datetime:
    """`2025-01-01T12:00Z` (ISO 8601, UTC when no zone) or a duration back from now: `90m`, `24h`,
    `7d`."""
    text = value.strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO 8601 time nor a duration like 90m, 24h, 7d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _monitor_parts(platform: PlatformOutputs, name: str, model_key: str | None) -> dict[str, Any]:
    """The scheduled job's settings of online quality, skew and age, from the platform outputs:
    the raw bucket's outcomes, the served artifact, the model's registry group."""
    partition = {"cn-": "aws-cn", "us-gov-": "aws-us-gov"}
    prefix = next((p for r, p in partition.items() if platform.region.startswith(r)), "aws")
    group = platform.model(name).model_package_group_name
    return {
        "labels_bucket": platform.raw_bucket,
        "model_key": model_key or f"{name}/current/model.tar.gz",
        "model_package_group_arn": (
            f"arn:{prefix}:sagemaker:{platform.region}:{platform.account_id}:"
            f"model-package-group/{group}"
        ),
    }


def drift_command(
    model: options.Model = None,
    stack: options.Stack = None,
    outputs: options.Outputs = None,
    since: Annotated[
        str, typer.Option("--since", help="Window start: ISO time or duration back (24h).")
    ] = "1h",
    until: Annotated[
        str | None, typer.Option("--until", help="Window end: ISO time (default: now).")
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint", help="Endpoint name (default: the model's endpoint_name in the outputs)."
        ),
    ] = None,
    variant: Annotated[str, typer.Option("--variant", help="Production variant.")] = "primary",
    baseline_key: Annotated[
        str | None,
        typer.Option(
            "--baseline-key",
            help="Baseline key in the models bucket (default: <model>/current/baseline.json).",
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="PSI that counts as drift.")
    ] = 0.2,
    no_prediction_logs: Annotated[
        bool, typer.Option("--no-prediction-logs", help="Do not (re)write prediction logs.")
    ] = False,
    model_key: Annotated[
        str | None,
        typer.Option(
            "--model-key",
            help="Key of the served model.tar.gz in the models bucket, for skew and age "
            "(default: <model>/current/model.tar.gz, where mlplat deploy publishes it).",
        ),
    ] = None,
    drift_only: Annotated[
        bool,
        typer.Option(
            "--drift-only",
            help="Drift and prediction logs only: skip online quality, skew and model age.",
        ),
    ] = False,
    endpoint_url: options.EndpointUrl = None,
    json_path: Annotated[Path | None, options.json_file("the drift report")] = None,
) -> None:
    """Compute drift for a window of captured traffic and publish metrics and the report.

    Then, as the scheduled job does (unless `--drift-only`): online quality of the predictions
    whose labels came back (the raw bucket's outcomes; figures written to the lake and the
    versions' registry metadata), training-serving skew and the served model's age (its
    artifact at `--model-key`).

    Exit codes: 0 ok (drift or not: the alarms decide), 1 a part of the job failed (the summary's
    `parts` says which and why), 2 bad usage or configuration.
    """
    import boto3

    from ml.drift import DriftError
    from ml.drift.job import DriftJobConfig, run_drift_job

    platform = platform_outputs(stack, outputs, exactly_one=True)
    name = model_name(model, platform)
    endpoint_name = endpoint or platform.model(name).endpoint_name
    if not endpoint_name:
        fail(f"the platform outputs name no endpoint_name for {name!r}; pass --endpoint NAME")
    now = datetime.now(UTC)
    with usage_errors(ValueError, DriftError):
        end = parse_time(until, now) if until else now
        start = parse_time(since, end)
        if start >= end:
            raise ValueError(f"--since {since} is not before --until {until or 'now'}")
        config = DriftJobConfig(
            model=name,
            predictions_bucket=platform.predictions_bucket,
            models_bucket=platform.models_bucket,
            baseline_key=baseline_key or f"{name}/current/baseline.json",
            endpoint_name=str(endpoint_name),
            threshold=threshold,
            variant_name=variant,
            kms_key_arn=platform.lake_kms_key_arn or None,
            write_prediction_logs=not no_prediction_logs,
            **({} if drift_only else _monitor_parts(platform, name, model_key)),
        )
    clients: dict[str, Any] = {"region_name": platform.region, "endpoint_url": endpoint_url}
    with usage_errors(DriftError):
        result = run_drift_job(
            config,
            since=start,
            until=end,
            s3=boto3.client("s3", **clients),
            cloudwatch=boto3.client("cloudwatch", **clients),
            sagemaker=boto3.client("sagemaker", **clients),
        )
    report = result.report
    summary = _summary(result, str(endpoint_name), start, end)
    typer.echo(json.dumps(summary, indent=2, sort_keys=True))
    if json_path is not None and report is not None:
        json_path.write_text(report.to_json())
    if result.failed:
        raise typer.Exit(1)


def _summary(
    result: DriftJobResult, endpoint: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """What the command prints: the window, drift, and each part's outcome (skew as counts only:
    its worst rows hold customer ids and inputs)."""
    report = result.report
    return {
        "endpoint": endpoint,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "events": result.n_events,
        "rows": result.n_rows,
        "metrics_sent": result.metrics_sent,
        "drifted_features": list(report.drifted_features) if report else [],
        "prediction_drifted": bool(report and report.prediction_drifted),
        "report": list(result.report_keys),
        "prediction_logs": list(result.prediction_log_keys),
        "skipped": dict(result.skipped),
        "parts": {name: f"{part.status}: {part.detail}" for name, part in result.parts.items()},
        "skew": (
            {k: v for k, v in result.skew.to_dict().items() if k != "worst"}
            if result.skew
            else None
        ),
        "age_days": result.age_days,
    }
