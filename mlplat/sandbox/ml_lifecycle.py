"""The ML lifecycle, end to end, on the realized platform: the `ML_STEPS` of `mlplat sandbox`, in
order (the steps themselves are in `mlplat.sandbox.steps`, one module per part), and the figures
of the end-of-run summary (`summary_rows`).

Every step finds the infrastructure through the platform outputs the program exported
(`ml.outputs.PlatformOutputs`) or through what the program realized in moto (the endpoint's capture
configuration, the drift job's environment in its state machine, the alarms), and runs the `ml/`
code a real deployment runs. What AWS would do by itself and moto does not is done by the sandbox,
in the open, in one place each: Firehose's delivery (`mlplat.sandbox.firehose`), the endpoint's
serving, data capture and metrics (here: `ml.serve.ModelServer` answers on loopback, the sandbox
writes what SageMaker writes), CloudWatch's alarm evaluation (`mlplat.sandbox.alarms`).

The model: `pipeline` executes the stack's SageMaker Pipeline from the definition the program
realized (`mlplat.sandbox.pipeline`): curate, features, train, evaluate against the serving version,
register — the `ml.pipeline` commands in containers, each as its step role. `retrain-refused` runs
it again, after the deployment, with a deliberately worse model that its gate must refuse.

The clock: the endpoint's traffic is stamped over the two hours before the current hour, `[H-2h,
H-1h)` without drift and `[H-1h, H)` with drift injected (`generate_customers(drift=...)`), so
the drift job (hourly windows, as scheduled) sees one clean and one drifted window, and the drift
alarms (one hourly period) go OK, then ALARM.

Least privilege: the steps that a role of the stack performs in AWS run with that role's
credentials (STS AssumeRole) while the moto server enforces IAM (`SandboxServer.iam_enforced`):
every pipeline step reads and writes the lake as its own step role; data capture is written as the
endpoint's execution role. The `least-privilege` step then shows what those roles
cannot do (write the raw zone, write outside their prefixes): an AccessDenied each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.sandbox.context import Step
from mlplat.sandbox.steps.data import generate_data, ingest
from mlplat.sandbox.steps.least_privilege import least_privilege
from mlplat.sandbox.steps.monitoring import alarms, drift, notifications, prediction_logs
from mlplat.sandbox.steps.pipeline import approve, pipeline, retrain_refused
from mlplat.sandbox.steps.serving import capture, deploy, send_traffic

ML_STEPS: tuple[Step, ...] = (
    Step("generate-data", generate_data, "synthetic customers with the churn label"),
    Step("ingest", ingest, "batch upload to raw; a slice through the Firehose stream"),
    Step("pipeline", pipeline, "the stack's pipeline, executed: curate ... register"),
    Step("approve", approve, "approve the registered version"),
    Step("deploy", deploy, "the endpoint moved to the version; served on loopback"),
    Step("send-traffic", send_traffic, "two hours of requests, drift in the second"),
    Step("capture", capture, "data capture to the predictions zone (as the endpoint role)"),
    Step("least-privilege", least_privilege, "what the roles may not do is refused"),
    Step("drift", drift, "the drift job per hour: logs, report, metrics"),
    Step("alarms", alarms, "the stack's alarms evaluated, notifications published"),
    Step("notifications", notifications, "the on-call queue receives the drift alarm"),
    Step("prediction-logs", prediction_logs, "prediction logs read back from the lake"),
    Step("retrain-refused", retrain_refused, "a worse model refused against the deployed one"),
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
