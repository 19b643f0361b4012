"""Many models on one platform: the stack's `models` list, and what each model gets in the plan.

The settings: every entry checked (a known model, listed once, overriding only what a model may,
each override checked by its stack-wide key's rules), every problem at once. The plan: each model
its own group of components (registry group, training role, pipeline, endpoint, drift job,
alarms), and least privilege between models: a model's roles name its own prefixes, never
another model's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ml.models import names, spec
from ml.outputs import ModelOutputs
from mlplat.plan.engine import Plan, urn_type
from stacks.settings import SettingsError, parse_settings
from tests.conftest import make_config, make_settings

TWO = [{"name": "churn"}, {"name": "spend"}]


def problems(environment: str = "dev", **overrides: Any) -> tuple[str, ...]:
    with pytest.raises(SettingsError) as info:
        parse_settings(environment, make_config(environment, **overrides))
    return info.value.problems


# --- the `models` list ----------------------------------------------------------------------------


def test_without_models_a_stack_hosts_the_default_model_with_its_names() -> None:
    settings = make_settings("staging")
    (churn,) = settings.models
    assert churn.name == "churn" and churn.legacy
    assert churn.info.endpoint_name == "ml-platform-staging"  # the single-model stack's
    assert churn.info.group_name == churn.info.pipeline_name == "ml-platform-staging-churn"
    assert churn.endpoint.model_key == "churn/current/model.tar.gz"
    assert churn.info.tags["model"] == "churn"


def test_each_model_gets_the_stack_settings_and_its_own_overrides() -> None:
    settings = make_settings(
        "prod",
        endpointMaxInstances=8,
        driftPsiThreshold=0.25,
        models=[
            {"name": "churn"},
            {
                "name": "spend",
                "endpointInstanceType": "ml.c5.xlarge",
                "endpointMinInstances": 3,
                "dataCapturePercent": 20,
                "latencyP99Ms": 500,
                "error5xxThreshold": 5,
                "driftPsiThreshold": 0.3,
                "driftSchedule": "rate(6 hours)",
                "pipelineSchedule": "rate(1 day)",
                "pipelineInstanceType": "ml.m5.2xlarge",
                "pipelineInstanceCount": 4,
                "modelKey": "spend/v2/model.tar.gz",
            },
        ],
    )
    churn, spend = settings.models
    assert (churn.endpoint.instance_type, churn.endpoint.min_instances) == ("ml.m5.large", 2)
    assert churn.endpoint.max_instances == spend.endpoint.max_instances == 8  # stack-wide
    assert churn.alarms.drift_psi_threshold == churn.drift.drift_psi_threshold == 0.25
    assert (spend.endpoint.instance_type, spend.alarms.endpoint_instance_type) == (
        "ml.c5.xlarge",
        "ml.c5.xlarge",
    )
    assert spend.endpoint.min_instances == 3 and spend.endpoint.data_capture_percent == 20
    assert (spend.endpoint.latency_p99_ms, spend.alarms.latency_p99_ms) == (500, 500)
    assert (spend.alarms.error_5xx_threshold, spend.endpoint.error_5xx_threshold) == (5, 5)
    assert spend.drift.drift_psi_threshold == spend.alarms.drift_psi_threshold == 0.3
    assert spend.drift.schedule == "rate(6 hours)" and spend.alarms.drift_period_seconds == 21600
    assert (spend.pipeline.schedule, spend.pipeline.instance_type) == (
        "rate(1 day)",
        "ml.m5.2xlarge",
    )
    assert spend.pipeline.instance_count == 4 and churn.pipeline.instance_count == 2
    assert spend.endpoint.model_key == spend.drift.model_key == "spend/v2/model.tar.gz"
    # where each value came from: problems name the key to change
    assert spend.keys["endpoint.min_instances"] == "ml-platform:models[1].endpointMinInstances"
    assert churn.keys["endpoint.min_instances"] == "ml-platform:endpointMinInstances"
    assert not spend.legacy and spend.info.endpoint_name == "ml-platform-prod-spend"


def test_an_unknown_model_names_the_known_ones() -> None:
    (problem,) = problems(models=[{"name": "chrun"}])
    assert problem == (
        "ml-platform:models[0].name: \"chrun\" is not a model (did you mean 'churn'?); known "
        f"models (packages under ml/models/): {', '.join(names())}"
    )


def test_a_model_listed_twice_is_refused() -> None:
    assert problems(models=[*TWO, {"name": "churn"}]) == (
        "ml-platform:models[2].name: 'churn' is listed twice; list each model once",
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "spend", "endpointMinInstances": 0},
            "ml-platform:models[0].endpointMinInstances: 0 is not allowed (too small); expected "
            "an integer >= 1 and <= 100",
        ),
        (
            {"name": "spend", "pipelineSchedule": "weekly"},
            "ml-platform:models[0].pipelineSchedule: 'weekly' is not allowed; expected a string "
            "matching",
        ),
        (
            {"name": "spend", "endpointServerless": "maybe"},
            "ml-platform:models[0].endpointServerless: 'maybe' is not allowed; expected true or "
            "false",
        ),
        (
            {"name": "spend", "modelKey": "spend/model.zip"},
            "ml-platform:models[0].modelKey: 'spend/model.zip' is not allowed",
        ),
        (
            {"name": "spend", "vpcCidr": "10.0.0.0/16"},
            "ml-platform:models[0].vpcCidr: not a setting a model may override; allowed: name, "
            "modelKey, endpointInstanceType",
        ),
        (
            {"name": "spend", "latencyP99m": 300},
            "ml-platform:models[0].latencyP99m: not a setting a model may override (did you mean "
            "'latencyP99Ms'?)",
        ),
    ],
)
def test_a_bad_override_names_its_entry_and_key(entry: dict[str, Any], message: str) -> None:
    (problem,) = problems(models=[entry])
    assert problem.startswith(message), problem


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "ml-platform:models: [] is not allowed (at least one model)"),
        ("churn", "ml-platform:models: 'churn' is not allowed; expected a list of {name"),
        (["churn"], 'ml-platform:models[0]: "churn" is not an object'),
        ([{"endpointMinInstances": 2}], "ml-platform:models[0].name: null is not a model"),
    ],
)
def test_a_models_value_of_the_wrong_shape(value: Any, message: str) -> None:
    (problem,) = problems(models=value)
    assert problem.startswith(message), problem


def test_the_engine_hands_models_over_as_json() -> None:
    settings = parse_settings(
        "dev", make_config("dev", models='[{"name": "spend", "endpointMaxInstances": "3"}]')
    )
    (spend,) = settings.models
    assert spend.name == "spend" and spend.endpoint.max_instances == 3


def test_every_problem_of_every_entry_at_once() -> None:
    found = problems(
        models=[
            {"name": "chrun", "endpointMinInstances": 0},
            {"name": "spend", "dataCapturePercent": 101, "bogus": True},
            {"name": "spend"},
        ],
        rawIaDays=1,
    )
    text = "\n".join(found)
    for fragment in (
        "ml-platform:rawIaDays: 1 is not allowed (too small)",
        'ml-platform:models[0].name: "chrun" is not a model',
        "ml-platform:models[0].endpointMinInstances: 0 is not allowed (too small)",
        "ml-platform:models[1].dataCapturePercent: 101 is not allowed (too large)",
        "ml-platform:models[1].bogus: not a setting a model may override",
        "ml-platform:models[2].name: 'spend' is listed twice",
    ):
        assert fragment in text, fragment
    assert len(found) == 6


def test_rules_between_settings_name_the_entry_or_the_stack_key() -> None:
    found = problems(
        "prod",
        models=[
            {"name": "churn"},
            {"name": "spend", "endpointMinInstances": 1, "pipelineAutoApprove": True},
        ],
        endpointMaxInstances=1,
    )
    assert found == (
        # churn: 2 (prod's default) > the stack's max; spend: its own min is fine against it
        "ml-platform:endpointMinInstances: 2 is greater than ml-platform:endpointMaxInstances "
        "(1); min must be <= max",
        "ml-platform:models[1].pipelineAutoApprove: true is not allowed in prod (a person "
        "approves what prod serves: versions wait in PendingManualApproval)",
        "ml-platform:models[1].endpointMinInstances: 1 is not allowed in prod; expected >= 2 "
        "(one instance per zone at least)",
    )


def test_a_problem_every_model_shares_is_reported_once() -> None:
    found = problems("prod", models=TWO, networkIsolation=False)
    assert found == (
        "ml-platform:networkIsolation: false is not allowed in prod (prod models run isolated)",
    )


def test_the_stack_model_package_goes_to_the_model_whose_group_it_names() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/ml-platform-dev-spend/4"
    churn, spend = make_settings("dev", models=TWO, modelPackageArn=arn).models
    assert (churn.endpoint.model_package_arn, spend.endpoint.model_package_arn) == (None, arn)
    other = "arn:aws:sagemaker:us-east-1:123456789012:model-package/ml-platform-qa-spend/1"
    (problem,) = problems(models=TWO, modelPackageArn=other)
    assert problem.startswith(
        f"ml-platform:modelPackageArn: '{other}' is a version of group 'ml-platform-qa-spend', "
        "which no model of the stack has (groups: ml-platform-dev-churn, ml-platform-dev-spend)"
    )


def test_an_entry_serves_only_its_own_groups_packages() -> None:
    churns = "arn:aws:sagemaker:us-east-1:123456789012:model-package/ml-platform-dev-churn/2"
    (problem,) = problems(models=[{"name": "spend", "modelPackageArn": churns}])
    assert problem == (
        f"ml-platform:models[0].modelPackageArn: '{churns}' is a version of group "
        "'ml-platform-dev-churn', not of model 'spend''s ('ml-platform-dev-spend')"
    )


def test_model_key_is_set_per_model_now() -> None:
    assert problems(modelKey="churn/v2/model.tar.gz") == (
        "ml-platform:modelKey: no longer a stack-wide setting; set `modelKey` in the model's "
        "entry of `models`",
    )


def test_legacy_model_is_a_model_or_none() -> None:
    assert not make_settings("dev", models=TWO, legacyModel="").models[0].legacy
    (problem,) = problems(legacyModel="churm")
    assert problem.startswith("ml-platform:legacyModel: 'churm' is not allowed (did you mean")
    # the legacy model need not be listed: a stack that dropped it names nothing after it
    (spend,) = make_settings("dev", models=[{"name": "spend"}]).models
    assert not spend.legacy and spend.info.endpoint_name == "ml-platform-dev-spend"


def test_models_whose_names_aws_would_cut_to_one_are_refused() -> None:
    stack = "x" * 60
    with pytest.raises(SettingsError) as info:
        parse_settings(stack, make_config("dev", models=TWO, legacyModel=""))
    assert any("two models get the registry group name" in p for p in info.value.problems)


# --- the plan: each model its own -----------------------------------------------------------------

PER_MODEL = {
    "mlplatform:models:Model": 1,
    "mlplatform:serving:ModelRegistry": 1,
    "mlplatform:training:TrainingJobRole": 1,
    "mlplatform:training:ModelPipeline": 1,
    "mlplatform:serving:ModelEndpoint": 1,
    "mlplatform:monitoring:DriftJob": 1,
    "mlplatform:monitoring:ModelAlarms": 1,
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": 1,
    "aws:sagemaker/pipeline:Pipeline": 1,
    "aws:sagemaker/endpoint:Endpoint": 1,
    "aws:sfn/stateMachine:StateMachine": 1,
}


def model_of(plan: Plan, urn: str) -> str:
    """The model a resource belongs to: the `ModelGroup` above it ("" for shared ones)."""
    by_urn = plan.by_urn()
    node = by_urn.get(urn)
    while node is not None:
        if node.type == "mlplatform:models:Model":
            return node.name
        node = by_urn.get(node.parent)
    return ""


@pytest.fixture(scope="module")
def prod(shipped_plans: Mapping[str, Plan]) -> Plan:
    return shipped_plans["prod"]


def test_two_models_get_two_of_each_of_their_resources(prod: Plan) -> None:
    for model in ("churn", "spend"):
        counts: dict[str, int] = {}
        for r in prod.resources:
            if r.type in PER_MODEL and model_of(prod, r.urn) == model:
                counts[r.type] = counts.get(r.type, 0) + 1
        assert counts == PER_MODEL, model
    # and the stack's own once: lake, network, cluster, on-call, audit, monitoring
    for shared in ("lake", "network", "gpu", "on-call", "audit", "monitoring", "platform-image"):
        assert model_of(prod, prod.named(shared).urn) == ""


def test_each_model_gets_its_own_names_tables_and_alarms(prod: Plan) -> None:
    groups = {r.inputs["modelPackageGroupName"] for r in prod.of_type(PACKAGE_GROUP)}
    assert groups == {"ml-platform-prod-churn", "ml-platform-prod-spend"}
    tables = {r.inputs["name"] for r in prod.of_type("aws:glue/catalogTable:CatalogTable")}
    for model in ("churn", "spend"):
        assert {d.name for d in spec(model).datasets} <= tables
        # one drift alarm per feature of THAT model, and one for its predictions
        drift = {
            r.inputs["dimensions"].get("Feature")
            for r in prod.of_type(ALARM)
            if r.name.startswith(f"{model}-alarms-drift-")
        }
        assert drift == {*spec(model).feature_names, None}
        for r in prod.resources:
            if model_of(prod, r.urn) == model and r.custom and "tags" in r.inputs:
                assert r.inputs["tags"]["model"] == model, r.name


def test_the_outputs_have_one_entry_per_model(prod: Plan) -> None:
    models = prod.outputs["models"]
    assert set(models) == {"churn", "spend"}
    for name, outputs in models.items():
        assert set(outputs) == set(ModelOutputs.__dataclass_fields__)
        assert outputs["model_artifacts_prefix"] == f"models/ml-platform-prod-{name}"
        assert outputs["capture_prefix"] == f"capture/{outputs['endpoint_name']}"
    assert models["churn"]["endpoint_name"] == "ml-platform-prod"
    assert models["spend"]["endpoint_name"] == "ml-platform-prod-spend"


def test_preview_costs_each_model_apart(shipped_plans: Mapping[str, Plan]) -> None:
    from mlplat.plan.preview import analyse, load_stack
    from tests.conftest import ROOT

    settings, _ = load_stack("prod", ROOT)
    cost = analyse(shipped_plans["prod"], settings).cost
    by_model = cost.by_model()
    assert set(by_model) == {"", "churn", "spend"}
    assert by_model["churn"] > 0 and by_model["spend"] > 0
    by_component = cost.by_component()
    assert (by_component["churn"], by_component["spend"]) == (by_model["churn"], by_model["spend"])
    endpoints = [i for i in cost.items if i.type == CONFIG]
    assert sorted(i.model for i in endpoints) == ["churn", "spend"]
    assert all(i.description.startswith("variant primary: 2 x ml.m5.large") for i in endpoints)


# --- least privilege between models ---------------------------------------------------------------

PACKAGE_GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


def own_strings(plan: Plan, model: str) -> list[str]:
    """What names a model's own data in a policy: its artifacts prefix and served key, its
    features and predictions tables, its endpoint's capture and drift reports."""
    s, outputs = spec(model), plan.outputs["models"][model]
    endpoint = outputs["endpoint_name"]
    return [
        f"{outputs['model_artifacts_prefix']}/",
        f"/{model}/current/",
        f"/{s.features.prefix}/",
        f"/{s.predictions.prefix}/",
        f"capture/{endpoint}/",
        f"drift-reports/{endpoint}/",
        outputs["model_package_group_name"],
    ]


def policy_text(plan: Plan, name: str) -> str:
    return str(plan.named(name, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])


@pytest.mark.parametrize(("model", "other"), [("churn", "spend"), ("spend", "churn")])
def test_a_models_roles_name_none_of_another_models_data(
    prod: Plan, model: str, other: str
) -> None:
    roles = [
        r.name
        for r in prod.of_type("aws:iam/rolePolicy:RolePolicy")
        if model_of(prod, r.urn) == model
    ]
    assert len(roles) == 12  # training, endpoint, 3 drift job, 7 pipeline (5 steps, run, schedule)
    theirs = own_strings(prod, other)
    for role in roles:
        text = policy_text(prod, role)
        assert [t for t in theirs if t in text] == [], role
    policy = prod.named(f"{model}-registry-artifacts", "aws:iam/policy:Policy").inputs["policy"]
    assert [t for t in theirs if t in str(policy)] == []


def test_a_models_training_role_reads_its_features_and_writes_its_artifacts(prod: Plan) -> None:
    for model in ("churn", "spend"):
        doc = json.loads(policy_text(prod, f"{model}-training-policy"))
        by_sid = {s.get("Sid"): s for s in doc["Statement"]}
        features = spec(model).features.prefix
        assert by_sid["ReadFeatures"]["Resource"] == [
            f"arn:aws:s3:::{prod.named('lake-features').id}/{features}/*"
        ]
        assert by_sid["ListFeatures"]["Condition"] == {
            "StringLike": {"s3:prefix": [features, f"{features}/*"]}
        }
        models = prod.named("lake-models").id
        assert by_sid["WriteTrainingPrefix"]["Resource"] == [
            f"arn:aws:s3:::{models}/models/ml-platform-prod-{model}/*"
        ]
        # its jobs run the platform image (`ml.remote_training.platform_image`): it pulls that
        # repository's images and no other's
        repository = prod.named("platform-image-repository").state["arn"]
        assert by_sid["PlatformImage"]["Action"] == [
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        ]
        assert by_sid["PlatformImage"]["Resource"] == [repository]
        # and its registry group's policy is attached to it, none other's
        attachment = prod.named(f"{model}-registry-artifacts-training")
        policy = prod.named(f"{model}-registry-artifacts", "aws:iam/policy:Policy")
        assert attachment.inputs["policyArn"] == policy.state["arn"]


def test_a_models_endpoint_writes_only_its_own_capture(prod: Plan) -> None:
    for model in ("churn", "spend"):
        doc = json.loads(policy_text(prod, f"{model}-serving-exec-policy"))
        by_sid = {s.get("Sid"): s for s in doc["Statement"]}
        endpoint = prod.outputs["models"][model]["endpoint_name"]
        predictions = prod.named("lake-predictions").id
        assert by_sid["WriteCapture"]["Resource"] == [
            f"arn:aws:s3:::{predictions}/capture/{endpoint}/*"
        ]
        models = prod.named("lake-models").id
        assert by_sid["ReadModel"]["Resource"] == [
            f"arn:aws:s3:::{models}/models/ml-platform-prod-{model}/*",
            f"arn:aws:s3:::{models}/{model}/current/model.tar.gz",
        ]


def test_the_gpu_cluster_trains_every_model_and_nothing_else(prod: Plan) -> None:
    doc = json.loads(policy_text(prod, "gpu-addons-trainer"))
    by_sid = {s.get("Sid"): s for s in doc["Statement"]}
    features, models = prod.named("lake-features").id, prod.named("lake-models").id
    assert by_sid["ReadFeatures"]["Resource"] == [
        f"arn:aws:s3:::{features}/{p}/*" for p in sorted(spec(m).features.prefix for m in TWO_NAMES)
    ]
    assert by_sid["WriteTrainingPrefix"]["Resource"] == [
        f"arn:aws:s3:::{models}/models/ml-platform-prod-{m}/*" for m in TWO_NAMES
    ]


TWO_NAMES = ("churn", "spend")


# --- a stack with models other than the default ---------------------------------------------------


def test_a_stack_of_one_other_model_names_nothing_after_the_default(
    record: Callable[..., Plan],
) -> None:
    from stacks import composition

    settings = make_settings("dev", models=[{"name": "spend"}])
    plan = record(lambda: composition.export(composition.build(settings)), settings=settings)
    assert not [r.name for r in plan.resources if "churn" in r.name]
    # spend was never elsewhere: no alias but the provider's own type renames (BucketV2...)
    moves = [a for r in plan.resources for a in r.options["aliases"] if urn_type(a) == r.type]
    assert moves == []
    (endpoint,) = plan.of_type("aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["name"] == "ml-platform-dev-spend"
    assert set(plan.outputs["models"]) == {"spend"}
