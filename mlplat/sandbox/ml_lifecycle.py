"""The ML lifecycle, end to end, on the realized platform: the `ML_STEPS` of `mlplat sandbox`, in
order (the steps themselves are in `mlplat.sandbox.steps`, one module per part), and the figures
of the end-of-run summary (`summary_rows`).

Every model of the stack's `models` list (or those `--models` names) goes through the lifecycle
side by side: the `ModelStep`s run once per model, listed in the list's order, as `<step>:<model>`
(`pipeline:churn`, `pipeline:spend`, then `approve:churn`, ...), each on the model's own
pipeline, registry group, endpoint, capture prefix and drift job; the shared steps (the data, the
least-privilege checks, the alarms, the on-call queue) run once, for all of them. The models'
pipelines run at the same time (`together`), and so do the refused retrains and the slice case:
each works on its own model's state and reads the shared state only.

Every step finds the infrastructure through the platform outputs the program exported
(`ml.outputs.PlatformOutputs`, a model's in `models[name]`) or through what the program realized
in moto (the endpoint's capture configuration, the drift job's environment in its state machine,
the alarms), and runs the `ml/` code a real deployment runs. What AWS would do by itself and moto
does not is done by the sandbox, in the open, in one place each: Firehose's delivery
(`mlplat.sandbox.firehose`), the endpoints' serving, data capture and metrics (here: one
`ml.serve.ModelServer` per model answers on loopback, the sandbox writes what SageMaker writes),
CloudWatch's alarm evaluation (`mlplat.sandbox.alarms`).

A model: `pipeline` executes its SageMaker Pipeline from the definition the program realized
(`mlplat.sandbox.pipeline`): curate, features, train, evaluate against the serving version,
register — the `ml.pipeline` commands in containers, each as its step role. `retrain-refused` runs
it again, after the deployment, with the model's weak hyperparameters: its gate must refuse them;
`slice-refused` trains each classifier on its own data with one slice's labels shuffled: the
slice gate must refuse it while the overall figures pass. The monitor job (`drift`, per hour)
also re-scores the captured rows through the training path (skew: none for the deployed
handler) and reports the model's age; `skewed-handler` deploys the model with a hand-edited
handler, whose hour of traffic fires the skew alarm, and rolls it back; `labels` brings the
outcomes of every prediction back, a label horizon later, by batch and through the outcomes
stream; `quality` runs the monitor job then: online quality per version, its shortfall against
each version's offline figures, the age, and their alarms (`mlplat.sandbox.steps.quality`).

The clock: the endpoints' traffic is stamped over the two hours before the current hour, `[H-2h,
H-1h)` without drift and `[H-1h, H)` with drift injected (`generate_customers(drift=...)`), so
each drift job (hourly windows, as scheduled) sees one clean and one drifted window, and each
model's drift alarms (one hourly period) go OK, then ALARM. The skewed handler serves `[H,
H+1h)`; the labels come back on day `H + horizon`, when the quality run and its alarms are stamped.

Least privilege: the steps that a role of the stack performs in AWS run with that role's
credentials (STS AssumeRole) while the moto server enforces IAM (`SandboxServer.iam_enforced`):
every pipeline step reads and writes the lake as its own step role; data capture is written as the
endpoint's execution role. The `least-privilege` step, last, then shows what those roles cannot
do (write the raw zone, write outside their prefixes, reach another model's artifacts, features,
capture, served model or quality reports, update another model's registry versions): an
AccessDenied each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mlplat.sandbox.context import HEADLINE_METRICS, ModelStep, Step
from mlplat.sandbox.steps.data import generate_data, ingest
from mlplat.sandbox.steps.least_privilege import least_privilege
from mlplat.sandbox.steps.monitoring import alarms, drift, notifications, prediction_logs
from mlplat.sandbox.steps.pipeline import (
    approve,
    pipeline,
    retrain_refused,
    slice_refused,
)
from mlplat.sandbox.steps.quality import labels, quality, skewed_handler
from mlplat.sandbox.steps.serving import capture, deploy, send_traffic

ML_STEPS: tuple[Step | ModelStep, ...] = (
    Step("generate-data", generate_data, "synthetic customers with every model's label"),
    Step("ingest", ingest, "batch upload to raw; a slice through the Firehose stream"),
    ModelStep(
        "pipeline",
        pipeline,
        "the model's pipeline, executed: curate ... register",
        together="pipelines",
    ),
    ModelStep("approve", approve, "approve the registered version"),
    ModelStep("deploy", deploy, "the model's endpoint moved to the version; served on loopback"),
    ModelStep("send-traffic", send_traffic, "two hours of requests, drift in the second"),
    ModelStep("capture", capture, "data capture to its prefix (as the endpoint role)"),
    ModelStep("drift", drift, "the model's monitor job per hour: logs, drift, skew, age"),
    Step("alarms", alarms, "the stack's alarms evaluated, notifications published"),
    Step("notifications", notifications, "the on-call queue receives each model's drift alarm"),
    ModelStep("prediction-logs", prediction_logs, "prediction logs read back from the lake"),
    ModelStep(
        "retrain-refused",
        retrain_refused,
        "a worse model refused against the deployed",
        together="refused",
    ),
    Step(
        "slice-refused",
        slice_refused,
        "one slice's labels noise: the slice gate refuses",
        together="refused",
    ),
    ModelStep("skewed-handler", skewed_handler, "a hand-edited handler: skew alarm, rollback"),
    Step("labels", labels, "the outcomes come back a label horizon later (batch and stream)"),
    ModelStep("quality", quality, "online quality per version, shortfall, age, their alarms"),
    Step("least-privilege", least_privilege, "what the roles may not do is refused"),
)


def _metric(metrics: Mapping[str, Any], name: str) -> str:
    value = metrics.get(name)
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def _role(alarm: str) -> str:
    """`churn-alarms-model-age-1a2b3c4` -> `model-age`."""
    return re.sub(r"-[0-9a-f]{7}$", "", alarm.split("-alarms-")[-1])


def _monitoring_rows(name: str, model: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A model's online quality per version, its skew (faithful, then the skewed handler) and its
    age, with the alarms on them."""
    rows: list[tuple[str, str]] = []
    heads = HEADLINE_METRICS.get(model.get("task", ""), ())
    for version, figures in model.get("onlineQuality", {}).get("versions", {}).items():
        metrics = figures.get("metrics", {})
        shown = ", ".join(f"{label} {_metric(metrics, key)}" for key, label in heads)
        rows.append(
            (
                f"{name}: online v{version.rsplit('/', 1)[-1]}",
                f"{shown} on {figures['n']:,} labelled (offline short by "
                f"{_metric(figures, 'shortfall')})",
            )
        )
    skew = model.get("skew", {})
    if skew:
        faithful = sum(w["n_differ"] for w in skew.get("faithful", []) if w)
        checked = sum(w["n"] for w in skew.get("faithful", []) if w)
        skewed, alarm = skew.get("skewed", {}), skew.get("alarm", {})
        rows.append(
            (
                f"{name}: skew",
                f"deployed {faithful}/{checked} rows differ; hand-edited handler "
                f"{skewed.get('n_differ')}/{skewed.get('n')} (share "
                f"{_metric(skewed, 'share')}) -> {alarm.get('to')}, rolled back",
            )
        )
    if model.get("modelAgeDays") is not None:
        alarms = model.get("qualityAlarms", {})
        rows.append(
            (
                f"{name}: model age",
                f"{model['modelAgeDays']:.1f} days at the quality run; alarms: "
                + ", ".join(f"{_role(a)} {s}" for a, s in sorted(alarms.items())),
            )
        )
    return rows


def summary_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(what, figure) lines for the end-of-run summary, from the JSON report: each model's, then
    the shared ones."""
    rows: list[tuple[str, str]] = []
    for name, model in report.get("models", {}).items():
        if model.get("modelVersion"):
            metrics = model.get("metrics", {})
            figures = ", ".join(
                f"{label} {_metric(metrics, key)}"
                for key, label in HEADLINE_METRICS.get(model.get("task", ""), ())
            )
            rows.append((f"{name}: model", f"{model['modelVersion']}: {figures}"))
        serving = model.get("lifecycle", {}).get("deploy")
        if serving:
            rows.append((f"{name}: endpoint", f"{serving['endpoint']} served at {serving['url']}"))
        if model.get("predictionsServed") is not None:
            rows.append((f"{name}: predictions served", f"{model['predictionsServed']:,}"))
        for window in model.get("drift", {}).get("windows", []):
            drifted = ", ".join(window["driftedFeatures"]) or "none"
            rows.append(
                (
                    f"{name}: drift ({window['window']} hour)",
                    f"max feature PSI {window['maxFeaturePsi']:.3f}, prediction PSI "
                    f"{window['predictionPsi']}, drifted: {drifted}",
                )
            )
        logs = model.get("predictionLogs", {})
        if logs:
            rows.append((f"{name}: prediction logs", f"{logs['rows']:,} rows in the lake"))
        rows += _monitoring_rows(name, model)
        refused = model.get("lifecycle", {}).get("retrain-refused")
        if refused:
            gate = refused.get("gate", {})
            verdict = "refused" if refused.get("status") == "Failed" else "NOT refused"
            rows.append(
                (
                    f"{name}: worse retrain",
                    f"{verdict} ({len(gate.get('failed', []))} gate rule(s) failed: "
                    f"{', '.join(gate.get('failed', [])[:3]) or 'none'}"
                    f"{', ...' if len(gate.get('failed', [])) > 3 else ''})",
                )
            )
    for name, model in report.get("models", {}).items():
        sliced = model.get("lifecycle", {}).get("slice-refused")
        if sliced:
            where = f"{sliced['slice']['column']}={sliced['slice']['value']}"
            verdict = "refused" if sliced.get("status") == "Failed" else "NOT refused"
            failed = [str(r) for r in sliced.get("gate", {}).get("failed", [])]
            rows.append(
                (
                    f"{name}: slice-noise retrain",
                    f"{verdict} by the slice gate ({where} labels shuffled: "
                    f"{', '.join(failed[:2]) or 'no rule'}{', ...' if len(failed) > 2 else ''})",
                )
            )
    labelled = report.get("lifecycle", {}).get("labels")
    if labelled:
        rows.append(
            (
                "labels",
                f"{labelled['outcomes']:,} outcomes back on {labelled['observedAt'][:10]} "
                f"({labelled['horizonDays']} days on; {labelled['streamedRecords']} streamed)",
            )
        )
    states = report.get("alarmStates", {})
    if states:
        firing = sorted(n for n, s in states.items() if s == "ALARM")
        rows.append(("alarms", f"{len(states)}; in ALARM: {', '.join(firing) or 'none'}"))
    notes = report.get("notifications", [])
    if notes:
        pages = [n for n in notes if n["newState"] == "ALARM"]
        by_model = {m: sum(1 for n in pages if n.get("driftOf") == m) for m in report["models"]}
        drift_pages = ", ".join(f"{m} {k}" for m, k in by_model.items())
        rows.append(
            (
                "on-call messages",
                f"{len(notes)} received, {len(pages)} ALARM (drift: {drift_pages})",
            )
        )
    checks = report.get("leastPrivilege", {}).get("checks", [])
    if checks:
        good = sum(1 for c in checks if c["ok"])
        denied = sum(1 for c in checks if c["actual"] == "AccessDenied")
        crossing = sum(1 for c in checks if c.get("otherModel") and c["actual"] == "AccessDenied")
        rows.append(
            (
                "least privilege",
                f"{good}/{len(checks)} as expected, {denied} denied ({crossing} across models)",
            )
        )
    return rows
