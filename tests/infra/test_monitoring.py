"""A model's alarms and drift job, the stack's monitoring, on-call and audit trail: the recorded
plan, resource by resource."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from components.audit import AuditTrail, AuditTrailArgs
from components.drift_job import DriftJob, DriftJobArgs, schedule_window_hours
from components.model_alarms import MISSING_DATA, ModelAlarms, ModelAlarmsArgs
from components.monitoring import ModelPanel, Monitoring, MonitoringArgs
from components.on_call import OnCall, OnCallArgs
from ml.backtest import recommended_max_age_days
from ml.contracts import (
    MODEL_AGE_METRIC,
    QUALITY_NAMESPACE,
    QUALITY_SHORTFALL_METRIC,
    SKEW_SHARE_METRIC,
)
from ml.drift import (
    DRIFT_NAMESPACE,
    ENDPOINT_DIMENSION,
    FEATURE_DIMENSION,
    FEATURE_PSI_METRIC,
    PREDICTION_PSI_METRIC,
)
from ml.models import spec
from mlplat.plan.engine import Plan, RecordedResource
from stacks.settings import Settings, Subscription
from tests.conftest import make_config, make_settings

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FEATURE_NAMES = spec("churn").feature_names
# churn, the one model of a stack without `models`: its endpoint is the stack's own name
ENDPOINT = "ml-platform-prod"
SUBNETS = ["subnet-0a", "subnet-0b"]
ACCOUNT = "123456789012"
LAKE_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/lake"
GROUP_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/ml-platform-prod-churn"
BUCKETS = {zone: f"lake-{zone}" for zone in ("raw", "curated", "features", "models", "predictions")}
ARNS = {zone: f"arn:aws:s3:::{b}" for zone, b in BUCKETS.items()}
SUBSCRIPTIONS = [
    {"protocol": "email", "endpoint": "oncall@example.com"},
    {"protocol": "https", "endpoint": "https://pager.example.com/hook"},
]


def platform(settings: Settings, *, endpoint: bool = True, gpu: bool = False) -> Callable[[], None]:
    """What `stacks/composition.py` wires, with the lake/endpoint outputs as plain values."""

    model = settings.models[0]

    def program() -> None:
        on_call = OnCall("on-call", settings.on_call.args(models=[model.info]))
        drift = DriftJob(
            "drift",
            model.drift.args(
                image_uri="img:1",
                image_repository_arn=None,
                endpoint_name="churn-ep",
                predictions_bucket_name=BUCKETS["predictions"],
                predictions_bucket_arn=ARNS["predictions"],
                models_bucket_name=BUCKETS["models"],
                models_bucket_arn=ARNS["models"],
                raw_bucket_name=BUCKETS["raw"],
                raw_bucket_arn=ARNS["raw"],
                model_package_group_arn=GROUP_ARN,
                kms_key_arn=LAKE_KEY,
                topic_arn=on_call.topic_arn,
                vpc_id="vpc-0123",
                subnet_ids=SUBNETS,
                security_group_ids=["sg-0compute"],
            ),
        )
        alarm_arns: dict[str, Any] = {}
        if endpoint:
            args = model.alarms.args(topic_arn=on_call.topic_arn, endpoint_name="churn-ep")
            alarms = ModelAlarms("churn-alarms", dataclasses.replace(args, gpu=gpu))
            alarm_arns = alarms.alarm_arns
        panel = model.alarms.panel(
            endpoint_name="churn-ep" if endpoint else None,
            drift_state_machine_arn=drift.state_machine_arn,
            alarm_arns=alarm_arns,
        )
        Monitoring(
            "monitoring",
            settings.monitoring.args(
                topic_arn=on_call.topic_arn,
                ingest_stream_name="ingest",
                lake_bucket_names=BUCKETS,
                panels=[dataclasses.replace(panel, gpu=gpu)],
            ),
        )
        AuditTrail(
            "audit",
            settings.audit.args(
                lake_bucket_arns=ARNS,
                alarm_topic_arn=on_call.topic_arn,
                watched_bucket_names=list(BUCKETS.values()),
                watched_role_names=drift.role_names,
            ),
        )

    return program


@pytest.fixture(scope="module")
def prod() -> Settings:
    return make_settings("prod", alarmSubscriptions=SUBSCRIPTIONS)


@pytest.fixture(scope="module")
def plan(prod: Settings) -> Plan:
    """The prod plan, recorded once for the module (tests only read it)."""
    from mlplat.plan import engine

    return engine.run(prod, make_config("prod"), program=platform(prod))


def topic_arn(plan: Plan) -> str:
    return str(plan.named("on-call-topic").state["arn"])


def alarm(plan: Plan, role: str) -> RecordedResource:
    """A model alarm (`churn-alarms-<role>`) or the stack's freshness alarm."""
    return plan.named("monitoring-freshness" if role == "freshness" else f"churn-alarms-{role}")


def policy(resource: RecordedResource, key: str = "policy") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resource.inputs[key])
    return doc


def statement(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in doc["Statement"] if s.get("Sid", "").endswith(sid)]
    assert len(found) == 1, [s.get("Sid") for s in doc["Statement"]]
    return found[0]


# --- on-call ---------------------------------------------------------------------------------


def test_topic_is_encrypted_with_its_own_rotating_key(plan: Plan) -> None:
    key = plan.named("on-call-key")
    topic = plan.named("on-call-topic")
    assert topic.inputs["kmsMasterKeyId"] == key.state["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert key.options["protect"] is True
    doc = policy(key)
    services = statement(doc, "AlarmsPublish")
    assert services["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert services["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert services["Effect"] == "Allow"
    assert services["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:*"},
    }
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(set(sids)) == len(sids) and not [s for s in sids if "KeyAdministrationKey" in s]
    admin = statement(doc, "KeyAdministration")
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert not [a for a in admin["Action"] if a in ("kms:Decrypt", "kms:Encrypt", "kms:*")]


def test_topic_policy_lets_only_this_accounts_alarms_publish(plan: Plan) -> None:
    topic = plan.named("on-call-topic")
    doc = policy(plan.named("on-call-topic-policy"))
    assert plan.named("on-call-topic-policy").inputs["arn"] == topic_arn(plan)
    alarms = statement(doc, "CloudWatchAlarmsOfThisAccount")
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == ["sns:Publish"]
    assert alarms["Resource"] == [topic.state["arn"]]
    assert alarms["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:*"},
    }
    # and the model pipeline's failure rule, by its fixed name (tests/infra/test_model_pipeline.py)
    rules = statement(doc, "EventRulesOfThisAccount")
    assert rules["Principal"] == {"Service": "events.amazonaws.com"}
    assert rules["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnEquals": {
            "aws:SourceArn": [
                f"arn:aws:events:us-east-1:{ACCOUNT}:rule/ml-platform-prod-churn-failed"
            ]
        },
    }
    services = {s["Principal"].get("Service") for s in doc["Statement"] if s["Effect"] == "Allow"}
    assert services == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    deny = statement(doc, "DenyInsecureTransport")
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_subscriptions_come_from_settings(plan: Plan) -> None:
    subs = plan.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted((s.inputs["protocol"], s.inputs["endpoint"]) for s in subs) == [
        ("email", "oncall@example.com"),
        ("https", "https://pager.example.com/hook"),
    ]
    assert {s.inputs["topic"] for s in subs} == {topic_arn(plan)}


@pytest.mark.parametrize(
    ("sub", "message"),
    [
        (Subscription("email", "not-an-address"), "is not an address"),
        (Subscription("https", "http://insecure"), "must be https://"),
        (Subscription("sqs", "my-queue"), "must be a queue ARN"),
    ],
)
def test_bad_subscriptions_are_refused(sub: Subscription, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OnCallArgs(subscriptions=[sub])


def test_duplicate_subscription_is_refused() -> None:
    sub = Subscription("email", "a@example.com")
    with pytest.raises(ValueError, match="listed twice"):
        OnCallArgs(subscriptions=[sub, sub])


# --- endpoint alarms --------------------------------------------------------------------------


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(plan: Plan) -> None:
    # The audit alarms (below) page on ALARM only: a security event is not over when its
    # 5-minute count drops to zero.
    alarms = [a for a in plan.of_type(ALARM) if not a.name.startswith("audit-")]
    # 6 endpoint (latency, 5xx, 4xx rate, invocations, cpu, memory) + one per feature +
    # prediction + quality shortfall, skew, model age + freshness + the drift job's failure alarm.
    assert len(alarms) == 6 + len(FEATURE_NAMES) + 1 + 3 + 1 + 1
    for a in alarms:
        assert a.inputs["alarmActions"] == [topic_arn(plan)], a.name
        assert a.inputs["okActions"] == [topic_arn(plan)], a.name
        assert a.inputs["actionsEnabled"] is True
        assert a.inputs["treatMissingData"] in ("breaching", "notBreaching", "ignore")
        assert a.inputs["tags"]["environment"] == "prod"


def test_latency_alarm_is_p99_model_latency_in_microseconds(plan: Plan, prod: Settings) -> None:
    a = alarm(plan, "latency-p99").inputs
    assert (a["namespace"], a["metricName"], a["extendedStatistic"]) == (
        "AWS/SageMaker",
        "ModelLatency",
        "p99",
    )
    assert "statistic" not in a
    assert a["dimensions"] == {"EndpointName": "churn-ep", "VariantName": "primary"}
    assert a["threshold"] == prod.models[0].alarms.latency_p99_ms * 1000 == 250_000
    assert a["comparisonOperator"] == "GreaterThanThreshold"
    assert (a["period"], a["evaluationPeriods"], a["datapointsToAlarm"]) == (60, 5, 3)
    assert a["treatMissingData"] == "notBreaching"


def test_5xx_alarm(plan: Plan, prod: Settings) -> None:
    a = alarm(plan, "5xx").inputs
    assert (a["namespace"], a["metricName"], a["statistic"]) == (
        "AWS/SageMaker",
        "Invocation5XXErrors",
        "Sum",
    )
    assert a["dimensions"] == {"EndpointName": "churn-ep", "VariantName": "primary"}
    assert a["threshold"] == prod.models[0].alarms.error_5xx_threshold
    assert a["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert a["treatMissingData"] == "notBreaching"


def test_4xx_rate_is_metric_math(plan: Plan, prod: Settings) -> None:
    a = alarm(plan, "4xx-rate").inputs
    assert "metricName" not in a and "namespace" not in a
    queries = {q["id"]: q for q in a["metricQueries"]}
    assert queries["rate"]["expression"] == "100 * errors / invocations"
    assert queries["rate"]["returnData"] is True
    for qid, metric in (("errors", "Invocation4XXErrors"), ("invocations", "Invocations")):
        assert queries[qid]["returnData"] is False
        assert queries[qid]["metric"] == {
            "namespace": "AWS/SageMaker",
            "metricName": metric,
            "stat": "Sum",
            "period": 300,
            "dimensions": {"EndpointName": "churn-ep", "VariantName": "primary"},
        }
    assert a["threshold"] == prod.models[0].alarms.error_4xx_rate_percent == 5
    assert a["comparisonOperator"] == "GreaterThanThreshold"


def test_invocations_drop_against_an_anomaly_band(plan: Plan) -> None:
    a = alarm(plan, "invocations-low").inputs
    queries = {q["id"]: q for q in a["metricQueries"]}
    assert queries["band"]["expression"] == "ANOMALY_DETECTION_BAND(invocations, 2)"
    assert queries["invocations"]["metric"]["metricName"] == "Invocations"
    assert queries["invocations"]["metric"]["stat"] == "Sum"
    assert a["thresholdMetricId"] == "band"
    assert a["comparisonOperator"] == "LessThanLowerThreshold"
    assert "threshold" not in a
    assert a["treatMissingData"] == "breaching"  # no datapoint = no traffic at all


def test_cpu_and_memory_on_instance_endpoints(plan: Plan, prod: Settings) -> None:
    for role, metric, threshold in (
        ("cpu", "CPUUtilization", prod.models[0].alarms.cpu_threshold_percent),
        ("memory", "MemoryUtilization", prod.models[0].alarms.memory_threshold_percent),
    ):
        a = alarm(plan, role).inputs
        assert (a["namespace"], a["metricName"], a["statistic"]) == (
            "/aws/sagemaker/Endpoints",
            metric,
            "Average",
        )
        assert a["dimensions"] == {"EndpointName": "churn-ep", "VariantName": "primary"}
        assert a["threshold"] == threshold
        assert a["treatMissingData"] == "ignore"
    names = {r.name for r in plan.of_type(ALARM)}
    assert "churn-alarms-gpu" not in names


def test_gpu_endpoints_add_gpu_alarms(record: Callable[..., Plan], prod: Settings) -> None:
    plan = record(platform(prod, gpu=True), settings=prod)
    for role, metric in (("gpu", "GPUUtilization"), ("gpu-memory", "GPUMemoryUtilization")):
        a = alarm(plan, role).inputs
        assert (a["namespace"], a["metricName"]) == ("/aws/sagemaker/Endpoints", metric)


def test_serverless_endpoints_have_no_instance_alarms(
    record: Callable[..., Plan], settings_for: Callable[..., Settings]
) -> None:
    dev = settings_for("dev")
    assert dev.models[0].alarms.serverless is True
    plan = record(platform(dev), settings=dev)
    names = {r.name for r in plan.of_type(ALARM)}
    assert not names & {"churn-alarms-cpu", "churn-alarms-memory"}
    assert {"churn-alarms-latency-p99", "churn-alarms-5xx", "churn-alarms-4xx-rate"} <= names
    # idle is normal for a serverless dev endpoint
    assert alarm(plan, "invocations-low").inputs["treatMissingData"] == "notBreaching"


def test_no_endpoint_no_endpoint_or_drift_alarms(
    record: Callable[..., Plan], prod: Settings
) -> None:
    plan = record(platform(prod, endpoint=False), settings=prod)
    names = sorted(r.name for r in plan.of_type(ALARM) if not r.name.startswith("audit-"))
    assert names == ["drift-failed", "monitoring-freshness"]


# --- drift and freshness -----------------------------------------------------------------------


def test_one_drift_alarm_per_feature_with_the_jobs_metric_names(plan: Plan, prod: Settings) -> None:
    for feature in FEATURE_NAMES:
        a = alarm(plan, f"drift-{feature}").inputs
        assert (a["namespace"], a["metricName"], a["statistic"]) == (
            "MLPlatform/Drift",
            "FeaturePSI",
            "Maximum",
        )
        assert (DRIFT_NAMESPACE, FEATURE_PSI_METRIC) == ("MLPlatform/Drift", "FeaturePSI")
        assert a["dimensions"] == {ENDPOINT_DIMENSION: "churn-ep", FEATURE_DIMENSION: feature}
        assert a["threshold"] == prod.models[0].alarms.drift_psi_threshold == 0.2
        assert a["comparisonOperator"] == "GreaterThanThreshold"
        assert a["period"] == 3600
        assert a["treatMissingData"] == "ignore"
    a = alarm(plan, "drift-prediction").inputs
    assert (a["namespace"], a["metricName"]) == (DRIFT_NAMESPACE, PREDICTION_PSI_METRIC)
    assert a["dimensions"] == {"EndpointName": "churn-ep"}


@pytest.mark.parametrize(
    ("role", "metric", "threshold"),
    [
        ("quality-shortfall", "QualityShortfall", 0.05),
        ("skew", "SkewShare", 0.01),
        # churn's committed backtest: how long its quality holds
        ("model-age", "ModelAgeDays", recommended_max_age_days("churn")),
    ],
)
def test_online_quality_skew_and_age_alarms_watch_the_jobs_metrics(
    plan: Plan, prod: Settings, role: str, metric: str, threshold: float
) -> None:
    a = alarm(plan, role).inputs
    assert (a["namespace"], a["metricName"], a["statistic"]) == (
        QUALITY_NAMESPACE,
        metric,
        "Maximum",
    )
    assert metric in (QUALITY_SHORTFALL_METRIC, SKEW_SHARE_METRIC, MODEL_AGE_METRIC)
    assert a["dimensions"] == {ENDPOINT_DIMENSION: "churn-ep"}  # what the alarm is per: endpoint
    assert (a["comparisonOperator"], a["threshold"]) == ("GreaterThanThreshold", threshold)
    alarms = prod.models[0].alarms
    assert (
        threshold
        == {
            "quality-shortfall": alarms.quality_margin,
            "skew": alarms.skew_share_threshold,
            "model-age": alarms.max_model_age_days,
        }[role]
    )
    # one datapoint per run of the job: one period of its schedule, judged alone
    assert (a["period"], a["evaluationPeriods"], a["datapointsToAlarm"]) == (3600, 1, 1)
    assert a["treatMissingData"] == "ignore"
    assert "Missing data: ignore (" in a["alarmDescription"]
    assert a["alarmActions"] == a["okActions"] == [topic_arn(plan)]


def test_quality_alarms_follow_the_models_settings(record: Callable[..., Plan]) -> None:
    settings = make_settings(
        "prod",
        qualityMargin=0.02,
        models=[{"name": "churn", "skewShareThreshold": 0.1, "maxModelAgeDays": 40}],
    )
    args = settings.models[0].alarms.args(topic_arn="arn:t", endpoint_name="churn-ep")
    plan = record(lambda: ModelAlarms("churn-alarms", args) and None, settings=settings)
    thresholds = {
        role: plan.named(f"churn-alarms-{role}").inputs["threshold"]
        for role in ("quality-shortfall", "skew", "model-age")
    }
    assert thresholds == {"quality-shortfall": 0.02, "skew": 0.1, "model-age": 40}


def test_freshness_watches_firehose_deliveries_missing_is_breaching(
    plan: Plan, prod: Settings
) -> None:
    a = alarm(plan, "freshness").inputs
    assert (a["namespace"], a["metricName"], a["statistic"]) == (
        "AWS/Firehose",
        "DeliveryToS3.Records",
        "Sum",
    )
    assert a["dimensions"] == {"DeliveryStreamName": "ingest"}
    assert a["period"] == 3600
    assert a["evaluationPeriods"] == a["datapointsToAlarm"] == prod.monitoring.freshness_hours == 24
    assert (a["comparisonOperator"], a["threshold"]) == ("LessThanThreshold", 1)
    assert a["treatMissingData"] == "breaching"


def test_every_missing_data_choice_is_explained() -> None:
    for key, (treat, why) in MISSING_DATA.items():
        assert treat in ("breaching", "notBreaching", "ignore", "missing"), key
        assert len(why) > 20, key


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"features": ()}, "features is empty"),
        ({"features": ("a", "a")}, "repeat a name"),
        ({"drift_period_seconds": 90}, "drift_period_seconds 90"),
        ({"latency_p99_ms": 0}, "latency_p99_ms must be > 0"),
        ({"drift_psi_threshold": 0}, "drift_psi_threshold must be > 0"),
        ({"quality_margin": 0}, "quality_margin must be > 0"),
        ({"skew_share_threshold": 1}, "skew_share_threshold must be >= 0 and < 1"),
        ({"max_model_age_days": 0}, "max_model_age_days must be >= 1"),
        ({"previous_prefix": "monitoring"}, "previous_parent and previous_prefix go together"),
    ],
)
def test_bad_model_alarm_args(overrides: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"topic_arn": "arn", "endpoint_name": "ep", "features": ("x",)}
    with pytest.raises(ValueError, match=message):
        ModelAlarmsArgs(**{**base, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"freshness_hours": 169}, "freshness_hours 169"),
        ({"dashboard_name": ""}, "dashboard_name"),
        ({"models": [ModelPanel("churn"), ModelPanel("churn")]}, "models repeat a name"),
        ({"models": [ModelPanel("Churn")]}, "model 'Churn'"),
        ({"models": [ModelPanel("churn", endpoint_name="ep")]}, "charts its features"),
    ],
)
def test_bad_monitoring_args(overrides: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"topic_arn": "arn", "dashboard_name": "d"}
    with pytest.raises(ValueError, match=message):
        MonitoringArgs(**{**base, **overrides})


# --- dashboard -------------------------------------------------------------------------------


def test_dashboard_has_endpoint_drift_lake_and_training_widgets(plan: Plan) -> None:
    dashboard = plan.named("monitoring-dashboard")
    assert dashboard.inputs["dashboardName"] == "ml-platform-prod"
    body = json.loads(dashboard.inputs["dashboardBody"])
    titles = [w["properties"].get("title") for w in body["widgets"]]
    for title in (
        "churn: invocations and errors",
        "churn: latency p99 (microseconds)",
        "churn: instances (%)",
        "churn: feature PSI",
        "churn: prediction PSI and scored rows",
        "churn: drift job runs",
        "churn: online quality per version",
        "churn: quality shortfall vs offline, labelled rows",
        "churn: skew share and model age (days)",
        "churn: alarms",
        "Ingestion: records delivered to the raw zone",
        "Lake size (bytes, daily)",
        "Training jobs (CPU / GPU %)",
        "Platform alarms",
    ):
        assert title in titles, title
    assert {
        "type": "text",
        "width": 24,
        "height": 1,
        "properties": {"markdown": "## Model `churn`"},
    } in body["widgets"]

    def widget(title: str) -> dict[str, Any]:
        found: dict[str, Any] = next(
            w for w in body["widgets"] if w["properties"].get("title") == title
        )
        return found

    psi = widget("churn: feature PSI")
    assert psi["properties"]["region"] == "us-east-1"
    assert [m[5] for m in psi["properties"]["metrics"]] == list(FEATURE_NAMES)
    assert {m[3] for m in psi["properties"]["metrics"]} == {"churn-ep"}
    # the model's alarms in its section, the stack's (freshness) apart
    model_alarms = [a for a in plan.of_type(ALARM) if a.name.startswith("churn-alarms-")]
    assert len(widget("churn: alarms")["properties"]["alarms"]) == len(model_alarms)
    freshness = plan.named("monitoring-freshness").state["arn"]
    assert widget("Platform alarms")["properties"]["alarms"] == [freshness]
    runs = widget("churn: drift job runs")
    assert runs["properties"]["metrics"][1][3] == plan.named("drift-machine").state["arn"]
    # online quality: every version's figures (a search: versions come and go), the shortfall
    # against the margin with the labelled rows behind it, the skew share beside the model's age
    [[online]] = widget("churn: online quality per version")["properties"]["metrics"]
    assert online["expression"] == (
        "SEARCH('{MLPlatform/Quality,EndpointName,ModelVersion} EndpointName=\"churn-ep\"', "
        "'Maximum', 3600)"
    )
    shortfall = widget("churn: quality shortfall vs offline, labelled rows")["properties"]
    assert shortfall["metrics"] == [
        ["MLPlatform/Quality", "QualityShortfall", "EndpointName", "churn-ep"],
        ["MLPlatform/Quality", "LabeledRows", "EndpointName", "churn-ep", {"yAxis": "right"}],
    ]
    assert shortfall["annotations"] == {"horizontal": [{"label": "margin", "value": 0.05}]}
    skew = widget("churn: skew share and model age (days)")["properties"]
    assert [m[1] for m in skew["metrics"]] == ["SkewShare", "ModelAgeDays"]
    assert skew["annotations"]["horizontal"] == [
        {"label": "skew threshold", "value": 0.01},
        {"label": "max age", "value": recommended_max_age_days("churn"), "yAxis": "right"},
    ]


# --- the drift job -----------------------------------------------------------------------------


def test_drift_job_is_scheduled_through_step_functions(plan: Plan, prod: Settings) -> None:
    rule = plan.named("drift-schedule")
    assert rule.inputs["scheduleExpression"] == prod.models[0].drift.schedule == "rate(1 hour)"
    machine = plan.named("drift-machine")
    target = plan.named("drift-target")
    assert target.inputs["arn"] == machine.state["arn"]
    assert target.inputs["roleArn"] == plan.named("drift-schedule-role").state["arn"]
    start = policy(plan.named("drift-schedule-policy"))
    assert start["Statement"] == [
        {
            "Sid": "StartDriftRuns",
            "Effect": "Allow",
            "Action": ["states:StartExecution"],
            "Resource": [machine.state["arn"]],
        }
    ]
    definition = json.loads(machine.inputs["definition"])
    task = definition["States"]["Drift"]
    assert task["Resource"] == "arn:aws:states:::sagemaker:createProcessingJob.sync"
    params = task["Parameters"]
    assert params["ProcessingJobName.$"] == "States.Format('drift-{}', $$.Execution.Name)"
    assert params["RoleArn"] == plan.named("drift-job-role").state["arn"]
    assert params["AppSpecification"] == {
        "ImageUri": "img:1",
        "ContainerEntrypoint": ["python3", "-m", "ml.drift"],
    }
    assert params["Environment"] == {
        "MLPLAT_DRIFT_PREDICTIONS_BUCKET": "lake-predictions",
        "MLPLAT_DRIFT_MODELS_BUCKET": "lake-models",
        "MLPLAT_DRIFT_BASELINE_KEY": "churn/current/baseline.json",
        "MLPLAT_DRIFT_ENDPOINT_NAME": "churn-ep",
        "MLPLAT_DRIFT_VARIANT_NAME": "primary",
        "MLPLAT_DRIFT_THRESHOLD": "0.2",
        "MLPLAT_DRIFT_WINDOW_HOURS": "1",
        "MLPLAT_DRIFT_KMS_KEY_ARN": LAKE_KEY,
        "MLPLAT_DRIFT_CAPTURE_ROOT": "capture",
        "MLPLAT_MODEL": "churn",
        # online quality, skew and age: the served artifact, the labels, the package group
        "MLPLAT_DRIFT_MODEL_KEY": "churn/current/model.tar.gz",
        "MLPLAT_DRIFT_LABELS_BUCKET": "lake-raw",
        "MLPLAT_DRIFT_MODEL_PACKAGE_GROUP_ARN": GROUP_ARN,
        "MLPLAT_DRIFT_QUALITY_MARGIN": "0.05",
        "MLPLAT_DRIFT_QUALITY_LOOKBACK_DAYS": "7",
        "MLPLAT_DRIFT_SKEW_TOLERANCE": "1e-06",
        "MLPLAT_DRIFT_SKEW_SAMPLE": "1000",
    }
    assert params["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == LAKE_KEY
    # in the private subnets, in the compute group
    assert params["NetworkConfig"] == {
        "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"Subnets": SUBNETS, "SecurityGroupIds": ["sg-0compute"]},
    }
    enis = {s["Sid"]: s for s in policy(plan.named("drift-job-policy"))["Statement"]}
    assert enis["JobNetworkInterfaces"]["Condition"] == {
        "ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0123"}
    }
    log_group = plan.named("drift-log-group")
    assert machine.inputs["loggingConfiguration"]["logDestination"] == (
        log_group.state["arn"] + ":*"
    )


def test_drift_job_role_reads_predictions_and_baseline_puts_only_its_metrics(plan: Plan) -> None:
    doc = policy(plan.named("drift-job-policy"))
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    pred = ARNS["predictions"]
    # its own endpoint's capture and its own prediction logs (churn's predictions table)
    assert by_sid["ReadCaptureAndPredictionLogs"]["Resource"] == [
        f"{pred}/capture/{ENDPOINT}/*",
        f"{pred}/predictions/*",
    ]
    assert by_sid["ListPredictionsZone"]["Condition"] == {
        "StringLike": {
            "s3:prefix": [
                f"capture/{ENDPOINT}/*",
                "predictions/*",
                f"quality-reports/{ENDPOINT}/*",
            ]
        }
    }
    assert by_sid["ReadTrainingBaseline"]["Resource"] == [
        f"{ARNS['models']}/churn/current/baseline.json"
    ]
    assert by_sid["WritePredictionLogs"]["Resource"] == [f"{pred}/predictions/*"]
    assert by_sid["WriteDriftReports"]["Action"] == ["s3:PutObject"]
    assert by_sid["WriteDriftReports"]["Resource"] == [f"{pred}/drift-reports/{ENDPOINT}/*"]
    assert by_sid["LakeKey"]["Resource"] == [LAKE_KEY]
    metrics = next(s for s in doc["Statement"] if s["Action"] == ["cloudwatch:PutMetricData"])
    assert metrics["Resource"] == ["*"]
    assert metrics["Sid"].startswith("WildcardOnly")
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": ["MLPlatform/Drift", "MLPlatform/Quality"]}
    }
    # nothing else of the lake: no curated/features bucket, of raw only the labels
    text = json.dumps(doc)
    for zone in ("curated", "features"):
        assert ARNS[zone] not in text
    assert [r for s in doc["Statement"] for r in s["Resource"] if ARNS["raw"] in r] == [
        ARNS["raw"],  # ListBucket, with the labels prefix as its condition
        f"{ARNS['raw']}/customer_outcomes/*",
    ]
    assert all(not a.endswith("*") for s in doc["Statement"] for a in s["Action"])


def test_drift_job_role_reads_labels_and_the_served_model_writes_its_quality(plan: Plan) -> None:
    """What online quality, skew and age add, each to exact ARNs: the labels' prefix of the raw
    bucket, the served artifact, the model's quality reports, its own versions."""
    doc = policy(plan.named("drift-job-policy"))
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ListLabels"] == {
        "Sid": "ListLabels",
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [ARNS["raw"]],
        "Condition": {"StringLike": {"s3:prefix": ["customer_outcomes/*"]}},
    }
    assert by_sid["ReadLabels"]["Action"] == ["s3:GetObject"]
    assert by_sid["ReadLabels"]["Resource"] == [f"{ARNS['raw']}/customer_outcomes/*"]
    # the served artifact, one key (its lineage, the model's age, travels inside it)
    assert by_sid["ReadServedModel"]["Action"] == ["s3:GetObject"]
    assert by_sid["ReadServedModel"]["Resource"] == [f"{ARNS['models']}/churn/current/model.tar.gz"]
    # its quality reports are a lake dataset: the day's partition is rewritten whole (put, then
    # delete the old files) and read back for the page's history
    assert by_sid["QualityReports"]["Action"] == [
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:PutObject",
    ]
    assert by_sid["QualityReports"]["Resource"] == [
        f"{ARNS['predictions']}/quality-reports/{ENDPOINT}/*"
    ]
    assert by_sid["OwnVersionsOnlineMetadata"]["Action"] == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:UpdateModelPackage",
    ]
    assert by_sid["OwnVersionsOnlineMetadata"]["Resource"] == [
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/ml-platform-prod-churn/*"
    ]
    # no other SageMaker action, and nothing of another group
    sagemaker = [a for s in doc["Statement"] for a in s["Action"] if a.startswith("sagemaker:")]
    assert sorted(sagemaker) == ["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"]


def test_a_drift_job_without_labels_or_served_model_gets_no_quality_grant(
    record: Callable[..., Plan], prod: Settings
) -> None:
    """Each input of online quality, skew and age is optional: without them the role and the
    environment are drift's alone (the job skips what is not configured and says so)."""
    args = dataclasses.replace(
        prod.models[0].drift.args(
            image_uri="img:1",
            image_repository_arn=None,
            endpoint_name="churn-ep",
            predictions_bucket_name=BUCKETS["predictions"],
            predictions_bucket_arn=ARNS["predictions"],
            models_bucket_name=BUCKETS["models"],
            models_bucket_arn=ARNS["models"],
            raw_bucket_name=BUCKETS["raw"],
            raw_bucket_arn=ARNS["raw"],
            model_package_group_arn=GROUP_ARN,
            kms_key_arn=LAKE_KEY,
            topic_arn="arn:aws:sns:us-east-1:123456789012:t",
            vpc_id="vpc-0123",
            subnet_ids=SUBNETS,
            security_group_ids=["sg-0compute"],
        ),
        model_key=None,
        labels_bucket_name=None,
        labels_bucket_arn=None,
        model_package_group_arn=None,
    )
    plan = record(lambda: DriftJob("drift", args) and None, settings=prod)
    doc = policy(plan.named("drift-job-policy"))
    sids = {s["Sid"] for s in doc["Statement"]}
    assert not sids & {"ListLabels", "ReadLabels", "ReadServedModel"}
    assert not sids & {"QualityReports", "OwnVersionsOnlineMetadata"}
    metrics = next(s for s in doc["Statement"] if s["Action"] == ["cloudwatch:PutMetricData"])
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MLPlatform/Drift"}}
    definition = json.loads(plan.named("drift-machine").inputs["definition"])
    env = definition["States"]["Drift"]["Parameters"]["Environment"]
    assert not [k for k in env if "QUALITY" in k or "SKEW" in k or "LABELS" in k]


def test_state_machine_passes_only_the_job_role(plan: Plan) -> None:
    doc = policy(plan.named("drift-machine-policy"))
    by_sid = {s.get("Sid"): s for s in doc["Statement"]}
    assert by_sid["PassJobRole"]["Resource"] == [plan.named("drift-job-role").state["arn"]]
    assert by_sid["PassJobRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert by_sid["RunDriftProcessingJobs"]["Resource"] == [
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:processing-job/drift-*"
    ]


def test_drift_job_failure_pages(plan: Plan) -> None:
    a = plan.named("drift-failed").inputs
    assert (a["namespace"], a["metricName"], a["statistic"]) == (
        "AWS/States",
        "ExecutionsFailed",
        "Sum",
    )
    assert a["dimensions"] == {"StateMachineArn": plan.named("drift-machine").state["arn"]}
    assert a["alarmActions"] == [topic_arn(plan)]


@pytest.mark.parametrize(
    ("schedule", "hours"),
    [
        ("rate(1 hour)", 1),
        ("rate(30 minutes)", 1),
        ("rate(90 minutes)", 2),
        ("rate(6 hours)", 6),
        ("rate(1 day)", 24),
        ("cron(0 3 * * ? *)", 24),
    ],
)
def test_window_is_one_schedule_period(schedule: str, hours: int) -> None:
    assert schedule_window_hours(schedule) == hours


def test_bad_quality_args_of_the_drift_job() -> None:
    base: dict[str, Any] = dict(
        schedule="rate(1 hour)",
        image_uri="i",
        model="churn",
        endpoint_name="e",
        capture_prefix="capture/e",
        predictions_prefix="predictions",
        report_prefix="drift-reports/e",
        predictions_bucket_name="p",
        predictions_bucket_arn="a",
        models_bucket_name="m",
        models_bucket_arn="a",
        baseline_key="churn/current/baseline.json",
        kms_key_arn="k",
        topic_arn="t",
        drift_psi_threshold=0.2,
        log_retention_days=30,
    )
    with pytest.raises(ValueError) as info:
        DriftJobArgs(
            **base,
            model_key="churn/current/model.joblib",
            labels_bucket_name="raw",
            quality_margin=0,
            quality_lookback_days=0,
            skew_tolerance=-1,
            skew_sample=0,
        )
    for part in (
        "labels_bucket_name and labels_bucket_arn go together",
        "quality_prefix: online quality writes its reports there",
        "model_key 'churn/current/model.joblib'",
        "quality_margin must be > 0",
        "quality_lookback_days 0",
        "skew_tolerance must be >= 0",
        "skew_sample 0",
    ):
        assert part in str(info.value)
    with pytest.raises(ValueError, match="quality_prefix '/quality-reports/e'"):
        DriftJobArgs(
            **base,
            labels_bucket_name="raw",
            labels_bucket_arn="arn:aws:s3:::raw",
            quality_prefix="/quality-reports/e",
        )


def test_bad_drift_job_args() -> None:
    with pytest.raises(ValueError, match="expected rate") as info:
        DriftJobArgs(
            schedule="every hour",
            image_uri="i",
            model="churn",
            endpoint_name="e",
            capture_prefix="capture/e",
            predictions_prefix="predictions",
            report_prefix="/drift-reports/e",
            predictions_bucket_name="p",
            predictions_bucket_arn="a",
            models_bucket_name="m",
            models_bucket_arn="a",
            baseline_key="/abs",
            kms_key_arn="k",
            topic_arn="t",
            drift_psi_threshold=0,
            log_retention_days=0,
            instance_type="m5.large",
        )
    for part in (
        "baseline_key '/abs'",
        "drift_psi_threshold must be > 0",
        "instance_type 'm5.large'",
        "log_retention_days must be > 0",
        "report_prefix '/drift-reports/e'",
    ):
        assert part in str(info.value)


# --- logs and audit ----------------------------------------------------------------------------


def test_every_log_group_has_retention_and_a_customer_key(plan: Plan, prod: Settings) -> None:
    groups = {g.name: g.inputs for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert sorted(groups) == ["audit-logs", "drift-log-group"]
    assert (
        groups["drift-log-group"]["retentionInDays"]
        == prod.models[0].drift.log_retention_days
        == 365
    )
    assert groups["drift-log-group"]["kmsKeyId"] == LAKE_KEY
    assert groups["audit-logs"]["retentionInDays"] == prod.audit.log_retention_days == 365
    assert groups["audit-logs"]["kmsKeyId"] == plan.named("audit-key").state["arn"]


def test_trail_validates_encrypts_and_records_lake_data_events(plan: Plan) -> None:
    trail = plan.named("audit-trail")
    key = plan.named("audit-key")
    t = trail.inputs
    assert t["name"] == "ml-platform-prod"
    assert t["enableLogFileValidation"] is True
    assert t["isMultiRegionTrail"] is True
    assert t["includeGlobalServiceEvents"] is True
    assert t["kmsKeyId"] == key.state["arn"]
    assert t["s3BucketName"] == plan.named("audit-bucket").state["bucket"]
    assert "eventSelectors" not in t
    management, data = t["advancedEventSelectors"]
    assert management["fieldSelectors"] == [{"field": "eventCategory", "equals": ["Management"]}]
    fields = {f["field"]: f for f in data["fieldSelectors"]}
    assert fields["eventCategory"]["equals"] == ["Data"]
    assert fields["resources.type"]["equals"] == ["AWS::S3::Object"]
    assert fields["resources.ARN"]["startsWiths"] == [f"{a}/" for a in ARNS.values()]
    # CloudTrail checks the bucket policy and the delivery role when the trail is created (the
    # key is implied by kmsKeyId)
    assert set(trail.options["dependsOn"]) == {
        plan.named("audit-bucket-policy").urn,
        plan.named("audit-delivery", "aws:iam/rolePolicy:RolePolicy").urn,
    }


def test_no_data_events_outside_prod(
    record: Callable[..., Plan], settings_for: Callable[..., Settings]
) -> None:
    dev = settings_for("dev")
    plan = record(platform(dev), settings=dev)
    selectors = plan.named("audit-trail").inputs["advancedEventSelectors"]
    assert [s["name"] for s in selectors] == ["Management events"]


def test_audit_key_lets_cloudtrail_encrypt_for_this_trail_only(plan: Plan) -> None:
    key = plan.named("audit-key")
    assert key.inputs["enableKeyRotation"] is True
    doc = policy(key)
    trail_arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/ml-platform-prod"
    encrypt = statement(doc, "CloudTrailEncryptsThisTrail")
    assert encrypt["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert encrypt["Action"] == ["kms:GenerateDataKey"]
    assert encrypt["Condition"] == {
        "StringEquals": {"aws:SourceArn": trail_arn},
        "StringLike": {
            "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"
        },
    }
    assert statement(doc, "CloudTrailDescribesKey")["Action"] == ["kms:DescribeKey"]


def test_trail_bucket_is_hardened_and_grants_cloudtrail_by_source_arn(plan: Plan) -> None:
    bucket = plan.named("audit-bucket")
    key = plan.named("audit-key")
    assert bucket.options["protect"] is True
    assert bucket.inputs["forceDestroy"] is False
    sse = plan.named("audit-bucket-encryption").inputs["rules"][0]
    assert sse["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key.state["arn"],
    }
    assert sse["bucketKeyEnabled"] is True
    assert plan.named("audit-bucket-versioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }
    block = plan.named("audit-bucket-public-access").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    assert plan.named("audit-bucket-ownership").inputs["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"
    }
    logging = plan.named("audit-bucket-logging").inputs
    assert logging["targetBucket"] == plan.named("audit-access-logs").state["bucket"]
    doc = policy(plan.named("audit-bucket-policy"))
    trail_arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/ml-platform-prod"
    acl = statement(doc, "CloudTrailAclCheck")
    assert acl["Action"] == ["s3:GetBucketAcl"]
    assert acl["Resource"] == [bucket.state["arn"]]
    assert acl["Condition"] == {"StringEquals": {"aws:SourceArn": trail_arn}}
    write = statement(doc, "CloudTrailWrite")
    assert write["Action"] == ["s3:PutObject"]
    assert write["Resource"] == [f"{bucket.state['arn']}/AWSLogs/{ACCOUNT}/*"]
    assert write["Condition"] == {
        "StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}
    }
    tls = statement(doc, "DenyInsecureTransport")
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_trail_delivers_to_its_encrypted_log_group_through_a_stream_scoped_role(
    plan: Plan,
) -> None:
    trail = plan.named("audit-trail").inputs
    group = plan.named("audit-logs")
    group_arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/mlplatform/audit/ml-platform-prod"
    assert group.state["arn"] == group_arn
    assert trail["cloudWatchLogsGroupArn"] == f"{group_arn}:*"
    role = plan.named("audit-delivery", "aws:iam/role:Role")
    assert trail["cloudWatchLogsRoleArn"] == role.state["arn"]
    trust = policy(role, "assumeRolePolicy")["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "cloudtrail.amazonaws.com"}]
    (deliver,) = policy(plan.named("audit-delivery", "aws:iam/rolePolicy:RolePolicy"))["Statement"]
    assert deliver["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert deliver["Resource"] == [f"{group_arn}:log-stream:{ACCOUNT}_CloudTrail_*"]
    logs = statement(policy(plan.named("audit-key")), "CloudWatchLogsEncryptsTrailLogGroup")
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert logs["Condition"] == {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}}
    assert "kms:CreateGrant" not in logs["Action"]


def watch_patterns(plan: Plan, metric: str) -> list[str]:
    return [
        f.inputs["pattern"]
        for f in plan.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
        if f.inputs["metricTransformation"]["name"] == metric
    ]


def test_security_events_page_on_call(plan: Plan) -> None:
    alarms = {a.name: a.inputs for a in plan.of_type(ALARM) if a.name.startswith("audit-")}
    assert sorted(alarms) == [
        "audit-watch-bucketcontrolschanged",
        "audit-watch-consolesigninfailures",
        "audit-watch-keydisabledordeleted",
        "audit-watch-lakebulkdeletes",
        "audit-watch-rolepermissionschanged",
        "audit-watch-rootused",
        "audit-watch-trailchanged",
    ]
    for alarm_inputs in alarms.values():
        assert alarm_inputs["alarmActions"] == [topic_arn(plan)]
        assert "okActions" not in alarm_inputs
        assert alarm_inputs["namespace"] == "MLPlatform/Audit/ml-platform-prod"
        assert alarm_inputs["treatMissingData"] == "notBreaching"
        # every alarm watches a metric some filter on the trail's log group publishes
        assert watch_patterns(plan, alarm_inputs["metricName"])
    filters = plan.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    group = plan.named("audit-logs").state["name"]
    assert {f.inputs["logGroupName"] for f in filters} == {group}
    assert all(len(f.inputs["pattern"]) <= 1024 for f in filters)
    assert alarms["audit-watch-consolesigninfailures"]["threshold"] == 3
    assert alarms["audit-watch-lakebulkdeletes"]["threshold"] == 100
    (trail_changes,) = watch_patterns(plan, "TrailChanged")
    assert '($.eventName = "StopLogging")' in trail_changes
    assert '($.eventName = "DeleteTrail")' in trail_changes
    (keys,) = watch_patterns(plan, "KeyDisabledOrDeleted")
    assert '"ScheduleKeyDeletion"' in keys and '"DisableKey"' in keys
    (root,) = watch_patterns(plan, "RootUsed")
    assert '($.userIdentity.type = "Root")' in root


def test_the_platforms_buckets_and_roles_are_watched_by_name(plan: Plan) -> None:
    buckets = " ".join(watch_patterns(plan, "BucketControlsChanged"))
    for name in [
        *BUCKETS.values(),
        *(plan.named(b).state["bucket"] for b in ("audit-bucket", "audit-access-logs")),
    ]:
        assert f'($.requestParameters.bucketName = "{name}")' in buckets, name
    assert '"PutBucketPolicy"' in buckets and '"DeleteBucketPolicy"' in buckets
    roles = " ".join(watch_patterns(plan, "RolePermissionsChanged"))
    for role in plan.of_type("aws:iam/role:Role"):
        assert f'($.requestParameters.roleName = "{role.id}")' in roles, role.name
    assert '"PutRolePolicy"' in roles and '"UpdateAssumeRolePolicy"' in roles
    deletes = " ".join(watch_patterns(plan, "LakeBulkDeletes"))
    assert sorted(re.findall(r'bucketName = "([^"]+)"', deletes)) == sorted(BUCKETS.values())


def test_long_name_lists_are_split_over_filters_that_fit() -> None:
    from components.audit_watch import (
        ROLE_PERMISSION_EVENTS,
        any_of,
        chunk_size,
        events_of,
        pattern,
    )

    names = [f"{i:02d}" + "r" * 62 for i in range(20)]  # the longest role names IAM allows
    size = chunk_size("iam.amazonaws.com", ROLE_PERMISSION_EVENTS, "requestParameters.roleName")
    chunks = [names[i : i + size] for i in range(0, len(names), size)]
    patterns = [
        pattern(
            *events_of("iam.amazonaws.com", ROLE_PERMISSION_EVENTS),
            any_of("requestParameters.roleName", chunk),
        )
        for chunk in chunks
    ]
    assert len(patterns) > 1
    assert all(len(p) <= 1024 for p in patterns)
    # one more name would not fit
    longer = pattern(
        *events_of("iam.amazonaws.com", ROLE_PERMISSION_EVENTS),
        any_of("requestParameters.roleName", names[: size + 1]),
    )
    assert len(longer) > 1024


def test_no_lake_deletes_watch_without_data_events(
    record: Callable[..., Plan], settings_for: Callable[..., Settings]
) -> None:
    dev = settings_for("dev")
    plan = record(platform(dev), settings=dev)
    metrics = {a.inputs["metricName"] for a in plan.of_type(ALARM) if a.name.startswith("audit-")}
    assert "LakeBulkDeletes" not in metrics and "RolePermissionsChanged" in metrics
    # nor Object Lock on the trail bucket outside prod (by default)
    assert not plan.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")


def test_prod_trail_bucket_is_locked_without_replacing_the_bucket(plan: Plan) -> None:
    lock = plan.named("audit-bucket-object-lock").inputs
    assert lock["bucket"] == plan.named("audit-bucket").state["bucket"]
    assert lock["objectLockEnabled"] == "Enabled"
    assert lock["rule"] == {"defaultRetention": {"mode": "GOVERNANCE", "days": 365}}
    # enabled on the versioned bucket, not at creation: an existing trail bucket stays
    assert "objectLockEnabled" not in plan.named("audit-bucket").inputs
    assert plan.named("audit-bucket-object-lock").options["dependsOn"] == [
        plan.named("audit-bucket-versioning").urn
    ]


ARCHIVE_BUCKET = "arn:aws:s3:::org-log-archive"
ARCHIVE_KEY = "arn:aws:kms:eu-west-1:210987654321:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"


def test_log_files_replicate_to_the_archive_account(
    record: Callable[..., Plan], settings_for: Callable[..., Settings]
) -> None:
    dev = settings_for(
        "dev", auditArchiveBucketArn=ARCHIVE_BUCKET, auditArchiveKmsKeyArn=ARCHIVE_KEY
    )
    plan = record(platform(dev), settings=dev)
    bucket = plan.named("audit-bucket")
    config = plan.named("audit-archive", "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (rule,) = config.inputs["rules"]
    assert config.inputs["bucket"] == bucket.state["bucket"]
    assert rule["destination"] == {
        "bucket": ARCHIVE_BUCKET,
        "account": "210987654321",
        "accessControlTranslation": {"owner": "Destination"},
        "encryptionConfiguration": {"replicaKmsKeyId": ARCHIVE_KEY},
    }
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}
    assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
    role = plan.named("audit-archive", "aws:iam/role:Role")
    assert config.inputs["role"] == role.state["arn"]
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnEquals": {"aws:SourceArn": bucket.state["arn"]},
    }
    doc = policy(plan.named("audit-archive", "aws:iam/rolePolicy:RolePolicy"))
    write = statement(doc, "WriteReplicas")
    assert write["Resource"] == [f"{ARCHIVE_BUCKET}/*"]
    assert "s3:ReplicateDelete" not in write["Action"]
    encrypt = statement(doc, "EncryptReplicasThroughS3")
    assert encrypt["Resource"] == [ARCHIVE_KEY]
    assert encrypt["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    decrypt = statement(doc, "DecryptLogFilesThroughS3")
    assert decrypt["Resource"] == [plan.named("audit-key").state["arn"]]
    # the replication role is watched like every other
    roles = " ".join(watch_patterns(plan, "RolePermissionsChanged"))
    assert role.id in roles


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"auditArchiveBucketArn": ARCHIVE_BUCKET},
            "auditArchiveBucketArn and ml-platform:auditArchiveKmsKeyArn go together",
        ),
        ({"auditArchiveKmsKeyArn": "arn:aws:kms:eu-west-1:1:key/x"}, "auditArchiveKmsKeyArn"),
        ({"auditObjectLockDays": 0}, "auditObjectLockDays: 0 is not allowed in prod"),
    ],
)
def test_bad_audit_settings_name_the_key(overrides: dict[str, Any], expected: str) -> None:
    from stacks.settings import SettingsError

    with pytest.raises(SettingsError) as info:
        make_settings("prod", **overrides)
    assert expected in str(info.value)


def test_bad_audit_args() -> None:
    with pytest.raises(ValueError, match="trail_name") as info:
        AuditTrailArgs(
            trail_name="-bad name",
            data_events=True,
            protect=True,
            force_destroy=True,
            log_retention_days=42,
            object_lock_days=-1,
            archive_kms_key_arn=ARCHIVE_KEY,
        )
    for part in (
        "lake_bucket_arns is empty",
        "force_destroy cannot be on",
        "log_retention_days 42",
        "object_lock_days -1",
        "archive_bucket_arn and archive_kms_key_arn go together",
    ):
        assert part in str(info.value)


# --- the whole thing under the policy pack ------------------------------------------------------


def test_policy_pack_finds_no_mandatory_violation(plan: Plan) -> None:
    from policies.core import evaluate_plan

    report = evaluate_plan([r.to_json() for r in plan.resources], {"environment": "prod"})
    mandatory = [v for v in report.violations if v.enforcement == "mandatory"]
    assert mandatory == []
    assert report.skipped == ()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_role_and_bucket_of_a_shipped_stack_is_watched(shipped_plans, stack) -> None:
    plan = shipped_plans[stack]
    roles = " ".join(watch_patterns(plan, "RolePermissionsChanged"))
    unwatched = [r.name for r in plan.of_type("aws:iam/role:Role") if f'"{r.id}"' not in roles]
    assert unwatched == []
    buckets = " ".join(watch_patterns(plan, "BucketControlsChanged"))
    names = [b.id for b in plan.of_type("aws:s3/bucket:Bucket")]
    assert names and [n for n in names if f'"{n}"' not in buckets] == []
