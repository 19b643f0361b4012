"""ModelEndpoint: model, config, blue/green endpoint, rollback alarms, autoscaling, role."""

from __future__ import annotations

import dataclasses
import json
import sys

import pulumi
import pytest

from components.model_endpoint import (
    VARIANT_NAME,
    ModelEndpoint,
    ModelEndpointArgs,
    default_endpoint_name,
    deployment_timeout_seconds,
    has_local_storage,
)
from ml.contracts import MODEL_VERSION_ENV
from ml.images import ImageUriError, sklearn_image_uri, sklearn_registry_account
from stacks.settings import Settings

MODELS_ARN = "arn:aws:s3:::models-bucket"
PREDICTIONS_ARN = "arn:aws:s3:::predictions-bucket"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
SUBNETS = ("subnet-aaa", "subnet-bbb")
SG = "sg-endpoint"
VPC = "vpc-0123"
TOPIC = "arn:aws:sns:us-east-1:123456789012:on-call"
PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/ml-platform-prod-churn/3"
SKLEARN_US_EAST_1 = (
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
)

T_MODEL = "aws:sagemaker/model:Model"
T_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
T_ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
T_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
T_TARGET = "aws:appautoscaling/target:Target"
T_POLICY = "aws:appautoscaling/policy:Policy"


def args_from(settings: Settings, **overrides) -> ModelEndpointArgs:
    """The args the stack's endpoint section gives, with plain values for the other components'
    outputs, and `overrides`."""
    args = settings.models[0].endpoint.args(
        models_bucket_name="models-bucket",
        models_bucket_arn=MODELS_ARN,
        predictions_bucket_name="predictions-bucket",
        predictions_bucket_arn=PREDICTIONS_ARN,
        kms_key_arn=KEY_ARN,
        model_prefix=f"models/ml-platform-{settings.stack}-churn",
        alarm_topic_arn=TOPIC,
        vpc_id=VPC,
        subnet_ids=list(SUBNETS),
        security_group_id=SG,
    )
    return dataclasses.replace(args, **overrides)


def plan_for(record, settings: Settings, **overrides):
    args = args_from(settings, **overrides)
    return record(lambda: ModelEndpoint("serving", args) and None, settings=settings)


def one(plan, type_):
    found = plan.of_type(type_)
    assert len(found) == 1, f"{len(found)} {type_}"
    return found[0]


def statements(plan) -> dict[str, dict]:
    doc = json.loads(plan.named("serving-exec-policy").inputs["policy"])
    return {s["Sid"]: s for s in doc["Statement"]}


# --- prod-like: instances, VPC, isolation, capture, blue/green, autoscaling ---------------------


@pytest.fixture
def prod_plan(record, settings_for):
    return plan_for(record, settings_for("prod"))


def test_prod_logical_names_and_types_stay_put(prod_plan):
    component = prod_plan.named("serving")
    assert component.type == "mlplatform:serving:ModelEndpoint"
    children = sorted((r.name, r.type) for r in prod_plan.resources if r.parent == component.urn)
    assert children == [
        ("serving-5xx", T_ALARM),
        ("serving-config", T_CONFIG),
        ("serving-endpoint", T_ENDPOINT),
        ("serving-exec", "aws:iam/role:Role"),
        ("serving-exec-policy", "aws:iam/rolePolicy:RolePolicy"),
        ("serving-latency", T_ALARM),
        ("serving-logs", "aws:cloudwatch/logGroup:LogGroup"),
        ("serving-model", T_MODEL),
        ("serving-scaling", T_TARGET),
        ("serving-scaling-policy", T_POLICY),
    ]
    tags = {
        "owner": "ml-team",
        "environment": "prod",
        "cost-center": "ml-1234",
        "project": "ml-platform",
        "stack": "prod",
        "model": "churn",
    }
    for r in prod_plan.resources:
        if r.custom and r.type not in ("aws:iam/rolePolicy:RolePolicy", T_POLICY):
            assert r.inputs["tags"] == tags, r.name


def test_prod_model_in_vpc_isolated_serving_the_artifact(prod_plan):
    model = one(prod_plan, T_MODEL)
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["vpcConfig"] == {"subnets": list(SUBNETS), "securityGroupIds": [SG]}
    assert model.inputs["executionRoleArn"] == prod_plan.named("serving-exec").state["arn"]
    container = model.inputs["primaryContainer"]
    assert container["image"] == SKLEARN_US_EAST_1
    assert container["modelDataUrl"] == "s3://models-bucket/churn/current/model.tar.gz"
    assert "modelPackageName" not in container
    assert container["environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_REGION": "us-east-1",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    }
    # SageMaker validates the role on create: the policy must exist first.
    assert model.options["dependsOn"] == [prod_plan.named("serving-exec-policy").urn]


def test_model_from_an_approved_package(record, settings_for):
    plan = plan_for(record, settings_for("prod", modelPackageArn=PACKAGE_ARN))
    container = one(plan, T_MODEL).inputs["primaryContainer"]
    assert container["modelPackageName"] == PACKAGE_ARN
    assert "image" not in container and "modelDataUrl" not in container
    assert container["environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    # the handler answers with the version it serves (`ml.contracts.MODEL_VERSION_ENV`)
    assert container["environment"][MODEL_VERSION_ENV] == PACKAGE_ARN


def test_an_artifact_outside_the_registry_names_no_version(prod_plan):
    environment = one(prod_plan, T_MODEL).inputs["primaryContainer"]["environment"]
    assert MODEL_VERSION_ENV not in environment  # the handler then says "unregistered"


def test_each_models_endpoint_names_the_version_it_serves(record, settings_for):
    """Two models, each serving its own package: each container names its own version, and a new
    version is a new container environment (a new Model, deployed blue/green)."""
    spend_v1 = PACKAGE_ARN.replace("churn/3", "spend/1")
    settings = settings_for(
        "prod",
        models=[
            {"name": "churn", "modelPackageArn": PACKAGE_ARN},
            {"name": "spend", "modelPackageArn": spend_v1},
        ],
    )
    for model, served in zip(settings.models, (PACKAGE_ARN, spend_v1), strict=True):
        args = dataclasses.replace(
            args_from(settings), model_package_arn=model.endpoint.model_package_arn
        )
        plan = record(lambda args=args: ModelEndpoint("serving", args) and None, settings=settings)
        environment = one(plan, T_MODEL).inputs["primaryContainer"]["environment"]
        assert environment[MODEL_VERSION_ENV] == served == model.endpoint.model_package_arn
    newer = PACKAGE_ARN.replace("churn/3", "churn/4")
    before = plan_for(record, settings_for("prod", modelPackageArn=PACKAGE_ARN))
    after = plan_for(record, settings_for("prod", modelPackageArn=newer))
    env_before = one(before, T_MODEL).inputs["primaryContainer"]["environment"]
    env_after = one(after, T_MODEL).inputs["primaryContainer"]["environment"]
    assert (env_before[MODEL_VERSION_ENV], env_after[MODEL_VERSION_ENV]) == (PACKAGE_ARN, newer)
    assert {k: v for k, v in env_before.items() if k != MODEL_VERSION_ENV} == {
        k: v for k, v in env_after.items() if k != MODEL_VERSION_ENV
    }


def test_prod_config_encrypted_with_capture_to_predictions_zone(prod_plan):
    config = one(prod_plan, T_CONFIG)
    assert "name" not in config.inputs and "namePrefix" not in config.inputs  # autonamed
    assert config.inputs["kmsKeyArn"] == KEY_ARN
    assert config.inputs["productionVariants"] == [
        {
            "variantName": VARIANT_NAME,
            "modelName": one(prod_plan, T_MODEL).state["name"],
            "instanceType": "ml.m5.large",
            "initialInstanceCount": 2,
            "initialVariantWeight": 1.0,
        }
    ]
    assert config.inputs["dataCaptureConfig"] == {
        "enableCapture": True,
        "initialSamplingPercentage": 100,
        "destinationS3Uri": "s3://predictions-bucket/capture/",
        "kmsKeyId": KEY_ARN,
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
        "captureContentTypeHeader": {
            "jsonContentTypes": ["application/json"],
            "csvContentTypes": ["text/csv"],
        },
    }


def test_config_replacement_never_deletes_the_live_config_first(prod_plan):
    for type_ in (T_MODEL, T_CONFIG, T_ENDPOINT):
        resource = one(prod_plan, type_)
        assert resource.options["deleteBeforeReplace"] is False, type_
    assert "name" not in one(prod_plan, T_MODEL).inputs
    # The endpoint follows its config by reference: a new config is an update of the endpoint.
    assert (
        one(prod_plan, T_ENDPOINT).inputs["endpointConfigName"]
        == one(prod_plan, T_CONFIG).state["name"]
    )


def test_a_new_model_changes_inputs_never_logical_names(record, settings_for):
    before = plan_for(record, settings_for("prod"))
    after = plan_for(record, settings_for("prod", modelPackageArn=PACKAGE_ARN))

    def names(plan):
        return sorted((r.name, r.type) for r in plan.resources)

    assert names(before) == names(after)
    model_before, model_after = one(before, T_MODEL), one(after, T_MODEL)
    assert model_before.inputs["primaryContainer"] != model_after.inputs["primaryContainer"]
    # the endpoint's own identity (its explicit name) does not move with the model
    assert one(before, T_ENDPOINT).inputs["name"] == one(after, T_ENDPOINT).inputs["name"]


def test_default_endpoint_name():
    assert default_endpoint_name("prod") == "ml-platform-prod"
    assert default_endpoint_name("team_a.dev") == "ml-platform-team-a-dev"
    assert default_endpoint_name("prod", "spend") == "ml-platform-prod-spend"
    assert len(default_endpoint_name("x" * 80)) == 63


def test_prod_endpoint_blue_green_canary_with_auto_rollback_on_own_alarms(prod_plan):
    endpoint = one(prod_plan, T_ENDPOINT)
    assert endpoint.inputs["name"] == "ml-platform-prod"
    assert endpoint.options["protect"] is True
    deployment = endpoint.inputs["deploymentConfig"]
    assert deployment["blueGreenUpdatePolicy"] == {
        "trafficRoutingConfiguration": {
            "type": "CANARY",
            "waitIntervalInSeconds": 600,
            "canarySize": {"type": "CAPACITY_PERCENT", "value": 10},
        },
        "terminationWaitInSeconds": 300,
        "maximumExecutionTimeoutInSeconds": 2 * 600 + 300 + 1800,
    }
    alarm_names = sorted(a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"])
    assert alarm_names == sorted(
        prod_plan.named(n).state["name"] for n in ("serving-5xx", "serving-latency")
    )


def test_rollback_alarms_watch_this_endpoint_and_variant(prod_plan):
    dims = {"EndpointName": "ml-platform-prod", "VariantName": VARIANT_NAME}
    errors = prod_plan.named("serving-5xx").inputs
    assert (errors["namespace"], errors["metricName"], errors["statistic"]) == (
        "AWS/SageMaker",
        "Invocation5XXErrors",
        "Sum",
    )
    assert errors["dimensions"] == dims
    assert errors["threshold"] == 1
    assert errors["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    latency = prod_plan.named("serving-latency").inputs
    assert (latency["metricName"], latency["extendedStatistic"]) == ("ModelLatency", "p99")
    assert "statistic" not in latency
    assert latency["dimensions"] == dims
    assert latency["threshold"] == 250_000  # 250 ms in microseconds
    for alarm in (errors, latency):
        assert alarm["alarmActions"] == [TOPIC]
        assert alarm["okActions"] == [TOPIC]


def test_prod_autoscaling_min_two_target_tracking_invocations(prod_plan):
    target = one(prod_plan, T_TARGET)
    assert target.inputs["serviceNamespace"] == "sagemaker"
    assert target.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target.inputs["resourceId"] == "endpoint/ml-platform-prod/variant/primary"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 6)
    policy = one(prod_plan, T_POLICY)
    assert policy.inputs["policyType"] == "TargetTrackingScaling"
    assert policy.inputs["resourceId"] == "endpoint/ml-platform-prod/variant/primary"
    assert policy.inputs["targetTrackingScalingPolicyConfiguration"] == {
        "targetValue": 200.0,
        "predefinedMetricSpecification": {
            "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        },
        "scaleInCooldown": 300,
        "scaleOutCooldown": 60,
    }


def test_prod_log_group_named_for_the_endpoint_with_retention_and_the_lake_key(prod_plan):
    logs = prod_plan.named("serving-logs").inputs
    assert logs["name"] == "/aws/sagemaker/Endpoints/ml-platform-prod"
    assert logs["retentionInDays"] == 365
    assert logs["kmsKeyId"] == KEY_ARN


# --- the execution role ---------------------------------------------------------------------


def test_role_trusts_sagemaker_of_this_account_only(prod_plan):
    trust = json.loads(prod_plan.named("serving-exec").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ]


def test_role_reads_model_prefix_writes_capture_prefix_only(prod_plan):
    s = statements(prod_plan)
    assert s["ReadModel"]["Action"] == ["s3:GetObject"]
    # the model key lies outside the registry prefix: that one object, nothing more
    assert s["ReadModel"]["Resource"] == [
        f"{MODELS_ARN}/models/ml-platform-prod-churn/*",
        f"{MODELS_ARN}/churn/current/model.tar.gz",
    ]
    assert s["ListModelPrefix"]["Condition"] == {
        "StringLike": {"s3:prefix": ["models/ml-platform-prod-churn/*"]}
    }
    assert s["WriteCapture"] == {
        "Effect": "Allow",
        "Sid": "WriteCapture",
        "Action": ["s3:PutObject"],
        "Resource": [f"{PREDICTIONS_ARN}/capture/ml-platform-prod/*"],
    }
    assert s["LakeKeyViaS3"]["Resource"] == [KEY_ARN]
    assert s["LakeKeyViaS3"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    }
    assert s["WriteOwnLogs"]["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ml-platform-prod:*"
    ]
    assert s["PullImage"]["Resource"] == [
        "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"
    ]


def test_role_wildcards_only_where_aws_forces_them(prod_plan):
    s = statements(prod_plan)
    star = {sid: st for sid, st in s.items() if "*" in st["Resource"]}
    assert {sid: st["Action"] for sid, st in star.items()} == {
        "WildcardOnlyPutmetricdataSupportsNoResourceLevelPermissions": ["cloudwatch:PutMetricData"],
        "WildcardOnlyGetauthorizationtokenSupportsNoResourceLevelPermissions": [
            "ecr:GetAuthorizationToken"
        ],
        "WildcardOnlyEc2DescribeActionsSupportNoResourceLevelPermissions": [
            "ec2:DescribeDhcpOptions",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcs",
        ],
    }
    metrics = star["WildcardOnlyPutmetricdataSupportsNoResourceLevelPermissions"]
    assert metrics["Condition"] == {
        "StringLike": {
            "cloudwatch:namespace": ["/aws/sagemaker/Endpoints", "/aws/sagemaker/Endpoints/*"]
        }
    }
    enis = s["EndpointNetworkInterfaces"]
    assert enis["Resource"] == [
        "arn:aws:ec2:us-east-1:123456789012:network-interface/*",
        "arn:aws:ec2:us-east-1:123456789012:subnet/*",
        "arn:aws:ec2:us-east-1:123456789012:security-group/sg-endpoint",
    ]
    assert enis["Condition"] == {
        "ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0123"}
    }
    for st in s.values():
        assert all(not a.endswith("*") for a in st["Action"])


def test_subnets_may_be_an_output_of_a_list(record, settings_for):
    """The network exposes its private subnets as one Output[list[str]]."""
    settings = settings_for("prod")

    def program() -> None:
        subnets = pulumi.Output.all(*[pulumi.Output.from_input(s) for s in SUBNETS])
        ModelEndpoint("serving", args_from(settings, subnet_ids=subnets))

    model = one(record(program, settings=settings), T_MODEL)
    assert model.inputs["vpcConfig"] == {"subnets": list(SUBNETS), "securityGroupIds": [SG]}


def test_model_key_under_prefix_needs_no_extra_object(record, settings_for):
    key = "models/ml-platform-prod-churn/v7/model.tar.gz"
    settings = settings_for("prod", models=[{"name": "churn", "modelKey": key}])
    s = statements(plan_for(record, settings))
    assert s["ReadModel"]["Resource"] == [f"{MODELS_ARN}/models/ml-platform-prod-churn/*"]


# --- dev: serverless -------------------------------------------------------------------------


def test_dev_serverless_variant_without_autoscaling_capture_or_vpc(record, settings_for):
    plan = plan_for(record, settings_for("dev"))
    assert plan.of_type(T_TARGET) == [] and plan.of_type(T_POLICY) == []
    config = one(plan, T_CONFIG)
    assert config.inputs["productionVariants"] == [
        {
            "variantName": VARIANT_NAME,
            "modelName": one(plan, T_MODEL).state["name"],
            "serverlessConfig": {"memorySizeInMb": 2048, "maxConcurrency": 5},
        }
    ]
    assert "dataCaptureConfig" not in config.inputs
    model = one(plan, T_MODEL)
    assert "vpcConfig" not in model.inputs
    assert model.inputs["enableNetworkIsolation"] is False
    assert "EndpointNetworkInterfaces" not in statements(plan)
    assert one(plan, T_ENDPOINT).options["protect"] is False
    # the endpoint keeps its rollback alarms
    assert len(plan.of_type(T_ALARM)) == 2


@pytest.mark.parametrize(
    ("strategy", "step", "expected"),
    [
        (
            "linear",
            20,
            {
                "type": "LINEAR",
                "waitIntervalInSeconds": 120,
                "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 20},
            },
        ),
        ("all-at-once", 20, {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 120}),
    ],
)
def test_linear_and_all_at_once_routing(record, settings_for, strategy, step, expected):
    settings = settings_for(
        "staging", deploymentStrategy=strategy, trafficStepPercent=step, trafficWaitSeconds=120
    )
    policy = one(plan_for(record, settings), T_ENDPOINT).inputs["deploymentConfig"][
        "blueGreenUpdatePolicy"
    ]
    assert policy["trafficRoutingConfiguration"] == expected


def test_deployment_timeout_within_sagemaker_bounds(settings_for):
    short = args_from(
        settings_for("staging", trafficWaitSeconds=0, terminationWaitSeconds=0),
        deployment_strategy="all-at-once",
    )
    assert deployment_timeout_seconds(short) == 1800
    linear = args_from(
        settings_for("staging"),
        deployment_strategy="linear",
        traffic_step_percent=10,
        traffic_wait_seconds=600,
    )
    assert deployment_timeout_seconds(linear) == 10 * 600 + 300 + 1800


# --- bad input: clear errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data_capture_enabled": True}, "serverless variants support no data capture"),
        (
            {"in_vpc": True, "vpc_id": VPC, "subnet_ids": SUBNETS, "security_group_ids": (SG,)},
            "serverless variants support no VPC config",
        ),
        ({"network_isolation": True}, "serverless variants support no network isolation"),
    ],
)
def test_serverless_clashes_are_refused(record, settings_for, overrides, message):
    with pytest.raises(Exception, match=message):
        plan_for(record, settings_for("dev"), **overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"subnet_ids": ()}, "in_vpc needs vpc_id, subnet_ids and security_group_ids"),
        ({"subnet_ids": None}, "in_vpc needs vpc_id, subnet_ids and security_group_ids"),
        ({"vpc_id": None}, "in_vpc needs vpc_id, subnet_ids and security_group_ids"),
        ({"security_group_ids": ()}, "in_vpc needs vpc_id, subnet_ids and security_group_ids"),
        ({"instance_type": "ml.m5d.large"}, "has local NVMe storage"),
        ({"min_instances": 3, "max_instances": 2}, "expected 1 <= min <= max"),
        (
            {"deployment_strategy": "linear", "traffic_step_percent": 5},
            "a linear step must be 10-50%",
        ),
        (
            {
                "deployment_strategy": "linear",
                "traffic_step_percent": 10,
                "traffic_wait_seconds": 3600,
            },
            "more than SageMaker's 28800 s",
        ),
        ({"endpoint_name": "ml_platform"}, "endpoint_name 'ml_platform'"),
        ({"model_prefix": "/models/x/"}, "model_prefix '/models/x/'"),
        ({"model_key": "model.pkl"}, "model_key 'model.pkl'"),
        ({"data_capture_percent": 0}, "data_capture_percent 0"),
    ],
)
def test_bad_args_are_refused(record, settings_for, overrides, message):
    with pytest.raises(ValueError, match=message):
        plan_for(record, settings_for("prod"), **overrides)


def test_every_problem_is_reported_at_once(record, settings_for):
    with pytest.raises(ValueError, match="2 problem") as info:
        plan_for(record, settings_for("prod"), subnet_ids=(), instance_type="ml.c5d.xlarge")
    assert "in_vpc" in str(info.value) and "ml.c5d.xlarge" in str(info.value)


# --- the image table -------------------------------------------------------------------------


def test_image_uri_from_the_sdk_table_without_importing_sagemaker():
    before = set(sys.modules)
    assert sklearn_image_uri("us-east-1") == SKLEARN_US_EAST_1
    assert sklearn_image_uri("eu-west-1") == (
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
    )
    assert sklearn_image_uri("cn-north-1", "amazonaws.com.cn").endswith(
        ".dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-scikit-learn:1.9-0-cpu-py3"
    )
    assert sklearn_registry_account("us-west-2") == "246618743249"
    assert not any(
        m == "sagemaker" or m.startswith("sagemaker.") for m in set(sys.modules) - before
    )


def test_image_for_the_stack_region(record, settings_for):
    plan = plan_for(record, settings_for("staging", **{"aws:region": "eu-west-1"}))
    assert one(plan, T_MODEL).inputs["primaryContainer"]["image"] == (
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
    )


def test_unknown_region_or_version_is_a_clear_error():
    with pytest.raises(ImageUriError, match=r"no scikit-learn 1\.9-0 inference image in region"):
        sklearn_image_uri("xx-nowhere-1")
    with pytest.raises(ImageUriError, match=r"'0\.1-0' is not in the SDK's image table"):
        sklearn_image_uri("us-east-1", version="0.1-0")


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [
        ("ml.m5.large", False),
        ("ml.c6i.xlarge", False),
        ("ml.t2.medium", False),
        ("ml.m5d.large", True),
        ("ml.g4dn.xlarge", True),
        ("ml.r6gd.large", True),
        ("ml.g5.xlarge", True),
    ],
)
def test_local_storage_families(instance_type, local):
    assert has_local_storage(instance_type) is local


def test_outputs_are_exposed(record, settings_for):
    seen: dict[str, object] = {}
    settings = settings_for("prod")

    def program() -> None:
        endpoint = ModelEndpoint("serving", args_from(settings))
        pulumi.Output.all(endpoint.endpoint_name, endpoint.execution_role_arn).apply(
            lambda v: seen.update(name=v[0], role=v[1])
        )
        seen["variant"] = endpoint.variant_name

    record(program, settings=settings)
    assert seen["name"] == "ml-platform-prod"
    assert str(seen["role"]).startswith("arn:aws:iam::123456789012:role/serving-exec")
    assert seen["variant"] == "primary"
