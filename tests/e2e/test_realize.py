"""The realizing mocks: each registered resource created in moto, read back through boto3."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from botocore.exceptions import ClientError

from mlplat.aws.realizing import pascal, plain
from mlplat.aws.s3 import log_delivery_refusal, moto_effective_policy
from mlplat.plan.engine import Plan
from mlplat.sandbox.realize import (
    READERS,
    REALIZERS,
    SANDBOX_TAG,
    RealizeError,
    RealizingMocks,
    Registration,
    context_for,
)
from mlplat.sandbox.realize import (
    realize as realize_program,
)
from mlplat.sandbox.server import SandboxServer
from tests.conftest import make_config, make_settings
from tests.e2e.programs import (
    DASHBOARD,
    KEY_ALIAS,
    PACKAGE_GROUP,
    PIPELINE,
    PIPELINE_DEFINITION,
    TRUST,
    VPC_CIDR,
    platform_program,
)

SETTINGS = make_settings("local")
Run = Callable[[Callable[[], None]], tuple[Plan, RealizingMocks]]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SETTINGS.region) as running:
        yield running


@pytest.fixture(scope="module")
def realize(server: SandboxServer) -> Run:
    def run(program: Callable[[], None]) -> tuple[Plan, RealizingMocks]:
        mocks = RealizingMocks(SETTINGS, context_for(server.session(), server.url, SETTINGS))
        plan = realize_program(SETTINGS, make_config("local"), mocks, program)
        return plan, mocks

    return run


@pytest.fixture(scope="module")
def platform(realize: Run) -> tuple[Plan, RealizingMocks]:
    return realize(platform_program)


@pytest.fixture(scope="module")
def aws_client(server: SandboxServer) -> Callable[[str], Any]:
    clients: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in clients:
            clients[service] = server.client(service)
        return clients[service]

    return get


def ident(plan: Plan, name: str) -> str:
    return plan.named(name).id


def state(plan: Plan, name: str, key: str) -> Any:
    return plan.named(name).state[key]


# --- the report


def test_every_realizer_is_exercised_and_nothing_failed(platform):
    plan, mocks = platform
    assert mocks.failed == []
    assert {t for t, _, _ in mocks.realized} == set(REALIZERS) == set(READERS)
    custom = [r for r in plan.resources if r.custom]
    assert len(mocks.realized) + len(mocks.not_emulated) == len(custom) == 84
    assert mocks.verify() == []


def test_kubernetes_eks_and_providers_are_listed_not_emulated_with_reasons(platform):
    _, mocks = platform
    reasons = {(t, n): r for t, n, r in mocks.not_emulated}
    assert set(reasons) == {
        ("aws:eks/cluster:Cluster", "gpu"),
        ("pulumi:providers:kubernetes", "gpu-k8s"),
        ("kubernetes:core/v1:Namespace", "training"),
    }
    assert "no control plane" in reasons[("aws:eks/cluster:Cluster", "gpu")]
    assert "no Kubernetes API server" in reasons[("kubernetes:core/v1:Namespace", "training")]
    assert "provider instance" in reasons[("pulumi:providers:kubernetes", "gpu-k8s")]


def test_components_are_recorded_but_not_realized(platform):
    plan, mocks = platform
    lake = plan.named("lake")
    assert not lake.custom and lake.id == ""
    assert "lake" not in {n for _, n, _ in mocks.realized + mocks.not_emulated}
    assert plan.named("lake-raw").parent == lake.urn


def test_dropped_fields_are_noted(platform):
    _, mocks = platform
    notes = {(t.rsplit(":", 1)[-1], n): x for t, n, x in mocks.notes}
    assert notes[("BucketPolicy", "lake-raw-policy")] == (
        "conditioned Deny statement(s) DenyInsecureTransport not stored in moto: moto ignores "
        "a statement's Condition and would deny every object request (the sandbox's loopback "
        "HTTP stands in for TLS; its writers send SSE-KMS with the lake key)"
    )
    logging_notes = [x for t, n, x in mocks.notes if n == "lake-raw-logging"]
    assert len(logging_notes) == 2
    assert "targetObjectKeyFormat is sent, but moto neither stores" in logging_notes[0]
    assert "moto's PutBucketLogging check cannot read it" in logging_notes[1]
    assert "enableNetworkIsolation dropped" in notes[("Model", "churn-model")]
    assert "deploymentConfig" in notes[("Endpoint", "churn-endpoint")]
    assert (
        "moto's PutBucketLogging check cannot read it"
        in notes[("BucketLogging", "lake-raw-logging")]
    )


def test_outputs_carry_the_real_ids(platform, aws_client):
    plan, _ = platform
    out = plan.outputs
    key = aws_client("kms").describe_key(KeyId=out["lake_kms_key_arn"])["KeyMetadata"]
    assert key["Arn"] == out["lake_kms_key_arn"] == state(plan, "lake-key", "arn")
    assert out["raw_bucket"] == ident(plan, "lake-raw")
    assert out["raw_bucket"].startswith("lake-raw-") and len(out["raw_bucket"]) == 16
    assert out["oncall_queue_url"].startswith(aws_client("sqs").meta.endpoint_url)
    assert (
        out["alarm_topic_arn"]
        == f"arn:aws:sns:us-east-1:123456789012:{ident(plan, 'oncall').split(':')[-1]}"
    )


# --- S3


def test_bucket_and_its_split_resources(platform, aws_client):
    plan, _ = platform
    s3 = aws_client("s3")
    bucket = ident(plan, "lake-raw")
    key_arn = state(plan, "lake-key", "arn")
    [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    assert rule["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert ownership["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    # the policy's only statement is a conditioned Deny, which moto would apply to everything:
    # not stored (noted), so objects can be read and written
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=bucket)
    logging = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert logging["TargetBucket"] == ident(plan, "lake-access-logs")
    assert logging["TargetPrefix"] == "raw/"
    # the target keeps its policy (the scoped delivery grant; the TLS-only Deny is not stored)
    logs_policy = json.loads(s3.get_bucket_policy(Bucket=ident(plan, "lake-access-logs"))["Policy"])
    assert [st["Sid"] for st in logs_policy["Statement"]] == ["S3ServerAccessLogDelivery"]
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE"
    assert lock["Rule"]["DefaultRetention"]["Days"] == 30
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags["environment"] == "local" and tags["cost-center"] == "local"


def test_lifecycle_rules_keep_their_nested_shape(platform, aws_client):
    plan, _ = platform
    rules = aws_client("s3").get_bucket_lifecycle_configuration(Bucket=ident(plan, "lake-raw"))[
        "Rules"
    ]
    by_id = {r["ID"]: r for r in rules}
    assert set(by_id) == {"tiering", "multipart"}
    tiering = by_id["tiering"]
    assert tiering["Status"] == "Enabled"
    assert tiering["Filter"] == {"Prefix": "events/"}
    assert tiering["Transitions"] == [
        {"Days": 30, "StorageClass": "STANDARD_IA"},
        {"Days": 90, "StorageClass": "GLACIER"},
    ]
    assert tiering["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    assert by_id["multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


# --- KMS and IAM


def test_kms_key_alias_policy_and_grant(platform, aws_client):
    plan, _ = platform
    kms = aws_client("kms")
    key_id = ident(plan, "lake-key")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "lake key"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases[KEY_ALIAS] == key_id
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Sid"] == "Root"
    grants = kms.list_grants(KeyId=key_id)["Grants"]
    assert [(g["GranteePrincipal"], sorted(g["Operations"])) for g in grants] == [
        (state(plan, "serving-exec", "arn"), ["Decrypt", "Encrypt", "GenerateDataKey"])
    ]
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
    assert tags[SANDBOX_TAG] == "lake-key-" + tags[SANDBOX_TAG][-7:]
    assert tags["owner"] == "ml-team"


def test_iam_roles_policies_and_attachments(platform, aws_client):
    plan, _ = platform
    iam = aws_client("iam")
    role = iam.get_role(RoleName=ident(plan, "ingest-role"))["Role"]
    assert role["Arn"] == state(plan, "ingest-role", "arn")
    assert role["AssumeRolePolicyDocument"] == json.loads(TRUST["firehose"])
    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ident(plan, "ingest-policy")]
    policy = iam.get_policy(PolicyArn=ident(plan, "ingest-policy"))["Policy"]
    document = iam.get_policy_version(
        PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"]
    )["PolicyVersion"]
    raw_arn = state(plan, "lake-raw", "arn")
    assert document["Document"]["Statement"][0]["Resource"] == [raw_arn, f"{raw_arn}/*"]
    inline_role, inline_name = ident(plan, "ingest-glue").split(":")
    assert inline_role == role["RoleName"]
    inline = iam.get_role_policy(RoleName=inline_role, PolicyName=inline_name)
    assert inline["PolicyDocument"]["Statement"][0]["Action"] == ["glue:GetTableVersions"]


# --- Glue, Athena, Firehose


def test_glue_database_and_table(platform, aws_client):
    plan, _ = platform
    glue = aws_client("glue")
    database = state(plan, "lake-db", "name")
    assert ident(plan, "lake-db") == f"123456789012:{database}"
    assert "-" not in database and database.startswith("lake_db_")
    table = glue.get_table(DatabaseName=database, Name=state(plan, "lake-events", "name"))["Table"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"] == {"classification": "parquet", "parquet.compression": "SNAPPY"}
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    sd = table["StorageDescriptor"]
    assert sd["Location"] == f"s3://{ident(plan, 'lake-raw')}/events/"
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [
        ("customer_id", "string"),
        ("tenure_months", "int"),
        ("monthly_charges", "double"),
    ]
    assert sd["SerdeInfo"]["Parameters"] == {"serialization.format": "1"}


def test_athena_workgroup(platform, aws_client):
    plan, _ = platform
    group = aws_client("athena").get_work_group(WorkGroup=ident(plan, "lake-analytics"))
    config = group["WorkGroup"]["Configuration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    assert config["ResultConfiguration"] == {
        "OutputLocation": f"s3://{ident(plan, 'lake-raw')}/athena/",
        "EncryptionConfiguration": {
            "EncryptionOption": "SSE_KMS",
            "KmsKey": state(plan, "lake-key", "arn"),
        },
    }


def test_firehose_stream(platform, aws_client):
    plan, _ = platform
    stream = aws_client("firehose").describe_delivery_stream(
        DeliveryStreamName=state(plan, "ingest", "name")
    )["DeliveryStreamDescription"]
    assert stream["DeliveryStreamARN"] == ident(plan, "ingest")
    s3 = stream["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert s3["RoleARN"] == state(plan, "ingest-role", "arn")
    assert s3["BucketARN"] == state(plan, "lake-raw", "arn")
    assert s3["BufferingHints"] == {"SizeInMBs": 128, "IntervalInSeconds": 300}
    assert s3["EncryptionConfiguration"] == {
        "KMSEncryptionConfig": {"AWSKMSKeyARN": state(plan, "lake-key", "arn")}
    }
    conversion = s3["DataFormatConversionConfiguration"]
    assert conversion["SchemaConfiguration"]["DatabaseName"] == state(plan, "lake-db", "name")
    assert conversion["OutputFormatConfiguration"] == {
        "Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}
    }
    assert s3["CloudWatchLoggingOptions"]["LogGroupName"] == ident(plan, "ingest-logs")


# --- SNS, SQS, CloudWatch, EventBridge, Step Functions


def test_topic_queue_policies_and_subscription(platform, aws_client):
    plan, _ = platform
    topic = ident(plan, "oncall")
    attributes = aws_client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"] == ident(plan, "lake-key")
    assert json.loads(attributes["Policy"])["Statement"][0]["Principal"] == {
        "Service": "cloudwatch.amazonaws.com"
    }
    [sub] = aws_client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (sub["Protocol"], sub["Endpoint"]) == ("sqs", state(plan, "oncall-queue", "arn"))
    assert sub["SubscriptionArn"] == ident(plan, "oncall-sqs")
    queue = aws_client("sqs").get_queue_attributes(
        QueueUrl=ident(plan, "oncall-queue"), AttributeNames=["All"]
    )["Attributes"]
    assert queue["MessageRetentionPeriod"] == "86400"
    condition = json.loads(queue["Policy"])["Statement"][0]["Condition"]
    assert condition == {"ArnEquals": {"aws:SourceArn": topic}}


def test_alarms_dashboard_logs_and_schedule(platform, aws_client):
    plan, _ = platform
    cw = aws_client("cloudwatch")
    endpoint = ident(plan, "churn-endpoint")
    [p99] = cw.describe_alarms(AlarmNames=[ident(plan, "latency-p99")])["MetricAlarms"]
    assert p99["ExtendedStatistic"] == "p99" and "Statistic" not in p99
    assert p99["EvaluationPeriods"] == 3 and p99["DatapointsToAlarm"] == 2
    assert p99["Threshold"] == 250_000 and p99["TreatMissingData"] == "notBreaching"
    assert sorted((d["Name"], d["Value"]) for d in p99["Dimensions"]) == [
        ("EndpointName", endpoint),
        ("VariantName", "AllTraffic"),
    ]
    assert p99["AlarmActions"] == p99["OKActions"] == [ident(plan, "oncall")]
    assert p99["StateValue"] == "INSUFFICIENT_DATA"
    body = json.loads(cw.get_dashboard(DashboardName=DASHBOARD)["DashboardBody"])
    assert body["widgets"][0]["properties"] == {"markdown": "ml-platform"}
    logs = aws_client("logs")
    [group] = logs.describe_log_groups(logGroupNamePrefix=ident(plan, "ingest-logs"))["logGroups"]
    assert group["retentionInDays"] == 30
    streams = logs.describe_log_streams(logGroupName=group["logGroupName"])["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["delivery"]
    events = aws_client("events")
    rule = events.describe_rule(Name=ident(plan, "drift-schedule"))
    assert rule["ScheduleExpression"] == "rate(1 hour)" and rule["State"] == "ENABLED"
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == state(plan, "oncall-queue", "arn")
    assert json.loads(target["Input"]) == {"job": "drift"}
    machine = aws_client("stepfunctions").describe_state_machine(
        stateMachineArn=ident(plan, "drift-machine")
    )
    assert machine["roleArn"] == state(plan, "serving-exec", "arn")
    assert json.loads(machine["definition"])["StartAt"] == "Done"


# --- SageMaker and autoscaling


def test_sagemaker_chain(platform, aws_client):
    plan, _ = platform
    sm = aws_client("sagemaker")
    group = sm.describe_model_package_group(ModelPackageGroupName=PACKAGE_GROUP)
    assert group["ModelPackageGroupArn"] == state(plan, "registry", "arn")
    model = sm.describe_model(ModelName=ident(plan, "churn-model"))
    assert model["ExecutionRoleArn"] == state(plan, "serving-exec", "arn")
    container = model["PrimaryContainer"]
    assert container["ModelDataUrl"] == f"s3://{ident(plan, 'models')}/churn/model.tar.gz"
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}
    config = sm.describe_endpoint_config(EndpointConfigName=ident(plan, "churn-config"))
    [variant] = config["ProductionVariants"]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        ident(plan, "churn-model"),
        "ml.m5.large",
        1,
    )
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert capture["DestinationS3Uri"] == f"s3://{ident(plan, 'models')}/capture/"
    endpoint = sm.describe_endpoint(EndpointName=ident(plan, "churn-endpoint"))
    assert endpoint["EndpointConfigName"] == ident(plan, "churn-config")
    assert endpoint["EndpointStatus"] == "InService"


def test_pipeline_with_its_definition_and_its_schedule(platform, aws_client):
    plan, _ = platform
    described = aws_client("sagemaker").describe_pipeline(PipelineName=PIPELINE)
    assert ident(plan, "retrain") == PIPELINE
    assert described["PipelineArn"] == state(plan, "retrain", "arn")
    assert described["PipelineArn"].endswith(f":pipeline/{PIPELINE}")
    assert json.loads(described["PipelineDefinition"]) == json.loads(PIPELINE_DEFINITION)
    assert described["RoleArn"] == state(plan, "serving-exec", "arn")
    assert described["PipelineDescription"] == "retrains the churn model"
    events = aws_client("events")
    [target] = events.list_targets_by_rule(Rule=ident(plan, "retrain-schedule"))["Targets"]
    assert target["Arn"] == described["PipelineArn"]
    assert target["RoleArn"] == state(plan, "serving-exec", "arn")
    assert target["SageMakerPipelineParameters"] == {
        "PipelineParameterList": [{"Name": "WindowDays", "Value": "14"}]
    }


def test_a_changed_pipeline_definition_is_updated_in_place(realize, aws_client):
    changed = json.loads(PIPELINE_DEFINITION)
    changed["Parameters"][0]["DefaultValue"] = "60"

    def program() -> None:
        role = aws.iam.Role("update-exec", assume_role_policy=TRUST["sagemaker"])
        aws.sagemaker.Pipeline(
            "update",
            pipeline_name="churn-sandbox-update",
            pipeline_display_name="churn-sandbox-update",
            role_arn=role.arn,
            pipeline_definition=json.dumps(definition),
        )

    definition = json.loads(PIPELINE_DEFINITION)
    _, first = realize(program)
    definition = changed
    _, second = realize(program)
    assert first.failed == second.failed == []
    described = aws_client("sagemaker").describe_pipeline(PipelineName="churn-sandbox-update")
    assert json.loads(described["PipelineDefinition"]) == changed


def test_autoscaling_target_and_policy(platform, aws_client):
    plan, _ = platform
    scaling = aws_client("application-autoscaling")
    resource = f"endpoint/{ident(plan, 'churn-endpoint')}/variant/AllTraffic"
    assert ident(plan, "churn-scaling") == resource
    [target] = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource]
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    [policy] = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)[
        "ScalingPolicies"
    ]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 200
    assert (
        config["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )


# --- the network


def test_vpc_subnets_and_routes(platform, aws_client):
    plan, _ = platform
    ec2 = aws_client("ec2")
    vpc_id = ident(plan, "net")
    [vpc] = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    assert vpc["CidrBlock"] == VPC_CIDR
    assert (
        ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")[
            "EnableDnsHostnames"
        ]["Value"]
        is True
    )
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert sorted((s["CidrBlock"], s["AvailabilityZone"]) for s in subnets) == [
        ("10.40.0.0/24", "us-east-1a"),
        ("10.40.1.0/24", "us-east-1b"),
        ("10.40.100.0/24", "us-east-1a"),
    ]
    [private] = ec2.describe_route_tables(RouteTableIds=[ident(plan, "net-private")])["RouteTables"]
    assert sorted(a["SubnetId"] for a in private["Associations"] if a.get("SubnetId")) == sorted(
        [ident(plan, "net-private-0"), ident(plan, "net-private-1")]
    )
    default = [r for r in private["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert [r["NatGatewayId"] for r in default] == [ident(plan, "net-nat")]
    [public] = ec2.describe_route_tables(RouteTableIds=[ident(plan, "net-public")])["RouteTables"]
    assert [
        r["GatewayId"] for r in public["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"
    ] == [ident(plan, "net-igw")]
    [nat] = ec2.describe_nat_gateways(NatGatewayIds=[ident(plan, "net-nat")])["NatGateways"]
    assert nat["SubnetId"] == ident(plan, "net-public-0")
    assert nat["NatGatewayAddresses"][0]["AllocationId"] == ident(plan, "net-nat-ip")


def test_security_groups_hold_exactly_the_declared_rules(platform, aws_client):
    plan, _ = platform
    ec2 = aws_client("ec2")
    [inline] = ec2.describe_security_groups(GroupIds=[ident(plan, "net-endpoints")])[
        "SecurityGroups"
    ]
    assert [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], p["IpRanges"][0]["CidrIp"])
        for p in inline["IpPermissions"]
    ] == [("tcp", 443, 443, VPC_CIDR)]
    assert inline["IpPermissionsEgress"] == []  # `egress=[]`: AWS's default allow-all removed
    workers_id = ident(plan, "net-workers")
    [workers] = ec2.describe_security_groups(GroupIds=[workers_id])["SecurityGroups"]
    # without inline rules the group holds exactly its rule resources (default egress removed)
    assert sorted((p["IpProtocol"], p.get("FromPort")) for p in workers["IpPermissions"]) == [
        ("-1", None),
        ("tcp", 8443),
    ]
    # egress to the VPC and to S3's prefix list (the gateway endpoint's, as the provider reads it)
    [egress] = workers["IpPermissionsEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    assert [r["CidrIp"] for r in egress["IpRanges"]] == [VPC_CIDR]
    [s3_list] = ec2.describe_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}]
    )["PrefixLists"]
    assert state(plan, "net-s3", "prefixListId") == s3_list["PrefixListId"]
    assert [p["PrefixListId"] for p in egress["PrefixListIds"]] == [s3_list["PrefixListId"]]
    rule = ec2.describe_security_group_rules(
        SecurityGroupRuleIds=[ident(plan, "net-workers-self")]
    )["SecurityGroupRules"][0]
    assert (rule["IpProtocol"], rule["IsEgress"]) == ("-1", False)
    assert rule["ReferencedGroupInfo"]["GroupId"] == workers_id
    [default] = ec2.describe_security_groups(GroupIds=[ident(plan, "net-default-sg")])[
        "SecurityGroups"
    ]
    assert default["GroupName"] == "default" and default["VpcId"] == ident(plan, "net")
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []


def test_vpc_endpoints_flow_log_and_launch_template(platform, aws_client):
    plan, _ = platform
    ec2 = aws_client("ec2")
    [s3] = ec2.describe_vpc_endpoints(VpcEndpointIds=[ident(plan, "net-s3")])["VpcEndpoints"]
    assert s3["VpcEndpointType"] == "Gateway"
    assert s3["RouteTableIds"] == [ident(plan, "net-private")]
    [runtime] = ec2.describe_vpc_endpoints(VpcEndpointIds=[ident(plan, "net-sagemaker-runtime")])[
        "VpcEndpoints"
    ]
    assert runtime["ServiceName"] == "com.amazonaws.us-east-1.sagemaker.runtime"
    assert [g["GroupId"] for g in runtime["Groups"]] == [ident(plan, "net-endpoints")]
    assert sorted(runtime["SubnetIds"]) == sorted(
        [ident(plan, "net-private-0"), ident(plan, "net-private-1")]
    )
    [flow] = ec2.describe_flow_logs(FlowLogIds=[ident(plan, "net-flow")])["FlowLogs"]
    assert flow["ResourceId"] == ident(plan, "net")
    assert flow["DeliverLogsPermissionArn"] == state(plan, "net-flow-role", "arn")
    [template] = ec2.describe_launch_templates(LaunchTemplateIds=[ident(plan, "gpu-nodes")])[
        "LaunchTemplates"
    ]
    version = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])
    data = version["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["InstanceType"] == "g5.xlarge"
    assert data["MetadataOptions"]["HttpTokens"] == "required"


# --- ECR and CloudTrail


def test_ecr_repository_and_policies(platform, aws_client):
    plan, _ = platform
    ecr = aws_client("ecr")
    [repo] = ecr.describe_repositories(repositoryNames=[ident(plan, "trainer")])["repositories"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["repositoryUri"] == state(plan, "trainer", "repositoryUrl")
    lifecycle = json.loads(
        ecr.get_lifecycle_policy(repositoryName=repo["repositoryName"])["lifecyclePolicyText"]
    )
    assert lifecycle["rules"][0]["action"] == {"type": "expire"}
    policy = json.loads(
        ecr.get_repository_policy(repositoryName=repo["repositoryName"])["policyText"]
    )
    assert policy["Statement"][0]["Sid"] == "Pull"


def test_cloudtrail_trail(platform, aws_client):
    plan, _ = platform
    cloudtrail = aws_client("cloudtrail")
    trail = cloudtrail.get_trail(Name=state(plan, "audit", "name"))["Trail"]
    assert trail["TrailARN"] == ident(plan, "audit")
    assert trail["S3BucketName"] == ident(plan, "audit-trail")
    assert trail["LogFileValidationEnabled"] is True
    assert cloudtrail.get_trail_status(Name=trail["Name"])["IsLogging"] is True
    [selector] = cloudtrail.get_event_selectors(TrailName=trail["Name"])["EventSelectors"]
    assert selector["DataResources"] == [
        {"Type": "AWS::S3::Object", "Values": [f"{state(plan, 'lake-raw', 'arn')}/"]}
    ]


# --- idempotency


def _inventory(client: Callable[[str], Any]) -> dict[str, int]:
    ec2 = client("ec2")
    return {
        "buckets": len(client("s3").list_buckets()["Buckets"]),
        "keys": len(client("kms").list_keys()["Keys"]),
        "aliases": len(client("kms").list_aliases()["Aliases"]),
        "roles": len(client("iam").list_roles()["Roles"]),
        "policies": len(client("iam").list_policies(Scope="Local")["Policies"]),
        "tables": sum(
            len(client("glue").get_tables(DatabaseName=d["Name"])["TableList"])
            for d in client("glue").get_databases()["DatabaseList"]
        ),
        "workgroups": len(client("athena").list_work_groups()["WorkGroups"]),
        "streams": len(client("firehose").list_delivery_streams()["DeliveryStreamNames"]),
        "topics": len(client("sns").list_topics()["Topics"]),
        "subscriptions": len(client("sns").list_subscriptions()["Subscriptions"]),
        "queues": len(client("sqs").list_queues().get("QueueUrls", [])),
        "alarms": len(client("cloudwatch").describe_alarms()["MetricAlarms"]),
        "log_groups": len(client("logs").describe_log_groups()["logGroups"]),
        "rules": len(client("events").list_rules()["Rules"]),
        "models": len(client("sagemaker").list_models()["Models"]),
        "endpoint_configs": len(client("sagemaker").list_endpoint_configs()["EndpointConfigs"]),
        "endpoints": len(client("sagemaker").list_endpoints()["Endpoints"]),
        "vpcs": len(ec2.describe_vpcs()["Vpcs"]),
        "subnets": len(ec2.describe_subnets()["Subnets"]),
        "route_tables": len(ec2.describe_route_tables()["RouteTables"]),
        "security_groups": len(ec2.describe_security_groups()["SecurityGroups"]),
        "sg_rules": len(ec2.describe_security_group_rules()["SecurityGroupRules"]),
        "vpc_endpoints": len(ec2.describe_vpc_endpoints()["VpcEndpoints"]),
        "flow_logs": len(ec2.describe_flow_logs()["FlowLogs"]),
        "nat_gateways": len(ec2.describe_nat_gateways()["NatGateways"]),
        "addresses": len(ec2.describe_addresses()["Addresses"]),
        "repositories": len(client("ecr").describe_repositories()["repositories"]),
        "trails": len(client("cloudtrail").describe_trails()["trailList"]),
        "state_machines": len(client("stepfunctions").list_state_machines()["stateMachines"]),
    }


def test_a_second_run_changes_nothing(platform, realize, aws_client):
    plan, first = platform
    before = _inventory(aws_client)
    alarm_state = aws_client("cloudwatch").describe_alarms()["MetricAlarms"]
    replan, second = realize(platform_program)
    assert _inventory(aws_client) == before
    assert sorted(second.realized) == sorted(first.realized)
    assert replan.outputs == plan.outputs
    assert second.failed == []
    assert [
        a["StateUpdatedTimestamp"]
        for a in aws_client("cloudwatch").describe_alarms()["MetricAlarms"]
    ] == [a["StateUpdatedTimestamp"] for a in alarm_state]
    assert before["buckets"] >= 4 and before["vpcs"] >= 2  # moto's default VPC plus ours


# --- unknown types, failures, moto's stricter checks, secrets


def test_unknown_types_failures_and_secrets_are_reported(realize, aws_client):
    def program() -> None:
        bucket = aws.s3.Bucket("odd-bucket", force_destroy=True)
        aws.s3.BucketPolicy(
            "odd-policy",
            bucket=bucket.id,
            policy=pulumi.Output.secret(
                json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "Secretly",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": "arn:aws:s3:::odd/*",
                            }
                        ],
                    }
                )
            ),
        )
        aws.sagemaker.ModelPackageGroupPolicy(
            "odd-group-policy", model_package_group_name="x", resource_policy="{}"
        )
        aws.kinesis.FirehoseDeliveryStream(
            "odd-stream",
            destination="http_endpoint",
            http_endpoint_configuration={
                "url": "https://example.com",
                "role_arn": "r",
                "s3_configuration": {"role_arn": "r", "bucket_arn": "b"},
            },
        )

    plan, mocks = realize(program)
    assert mocks.not_emulated == [
        (
            "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy",
            "odd-group-policy",
            "no sandbox realizer for this type (moto may not support it)",
        )
    ]
    [(type_, name, error)] = mocks.failed
    assert (type_, name) == (
        "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
        "odd-stream",
    )
    assert "destination 'http_endpoint' is not realized" in error
    # the failed one still gets a recorder id so the program completes
    assert plan.named("odd-stream").id.startswith("arn:aws:firehose:")
    policy = aws_client("s3").get_bucket_policy(Bucket=plan.named("odd-bucket").id)["Policy"]
    assert json.loads(policy)["Statement"][0]["Sid"] == "Secretly"


def test_a_serverless_variant_is_realized_without_instances(realize, aws_client):
    def program() -> None:
        role = aws.iam.Role("sls-exec", assume_role_policy=TRUST["sagemaker"])
        model = aws.sagemaker.Model(
            "sls-model", execution_role_arn=role.arn, primary_container={"image": "img:1"}
        )
        aws.sagemaker.EndpointConfiguration(
            "sls-config",
            production_variants=[
                {
                    "variant_name": "AllTraffic",
                    "model_name": model.name,
                    "serverless_config": {"memory_size_in_mb": 2048, "max_concurrency": 5},
                }
            ],
        )

    plan, mocks = realize(program)
    assert mocks.failed == []
    config = aws_client("sagemaker").describe_endpoint_config(
        EndpointConfigName=plan.named("sls-config").id
    )
    [variant] = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant


def test_logging_without_a_delivery_grant_is_listed_not_emulated(realize):
    def program() -> None:
        logs = aws.s3.Bucket("strict-logs", force_destroy=True)
        source = aws.s3.Bucket("strict-source", force_destroy=True)
        aws.s3.BucketLogging(
            "strict-logging", bucket=source.id, target_bucket=logs.id, target_prefix="source/"
        )

    _, mocks = realize(program)
    assert mocks.failed == [] and mocks.realized[-1][1] != "strict-logging"
    [(type_, name, reason)] = mocks.not_emulated
    assert (type_, name) == ("aws:s3/bucketLogging:BucketLogging", "strict-logging")
    assert "has no policy letting logging.s3.amazonaws.com write" in reason
    assert "S3 would accept it and deliver nothing" in reason

    def star_principal() -> None:
        logs = aws.s3.Bucket("star-logs", force_destroy=True)
        policy = aws.s3.BucketPolicy(
            "star-logs-policy",
            bucket=logs.id,
            policy=logs.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": f"{arn}/*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    }
                )
            ),
        )
        source = aws.s3.Bucket("star-source", force_destroy=True)
        aws.s3.BucketLogging(
            "star-logging",
            bucket=source.id,
            target_bucket=logs.id,
            target_prefix="source/",
            opts=pulumi.ResourceOptions(depends_on=[policy]),
        )

    _, mocks = realize(star_principal)
    assert mocks.failed == []
    [(_, name, reason)] = mocks.not_emulated
    assert name == "star-logging"
    assert "no statement of star-logs-" in reason and "allows logging.s3.amazonaws.com" in reason


def _logs_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


DELIVERY = {
    "Effect": "Allow",
    "Principal": {"Service": "logging.s3.amazonaws.com"},
    "Action": "s3:PutObject",
    "Resource": ["arn:aws:s3:::logs/raw/*"],
    "Condition": {
        "ArnLike": {"aws:SourceArn": ["arn:aws:s3:::raw-*"]},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    },
}


@pytest.mark.parametrize(
    ("statements", "prefix", "source", "refusal"),
    [
        ([DELIVERY], "raw/", "raw-1", None),
        ([{**DELIVERY, "Condition": {}}], "raw/", "other", None),
        ([DELIVERY], "curated/", "raw-1", "no statement of logs's policy allows"),
        ([DELIVERY], "raw/", "curated-1", "no statement of logs's policy allows"),
        (
            [{**DELIVERY, "Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}}}],
            "raw/",
            "raw-1",
            "no statement of logs's policy allows",
        ),
        (
            [
                DELIVERY,
                {
                    "Sid": "NoLogs",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": "arn:aws:s3:::logs/*",
                },
            ],
            "raw/",
            "raw-1",
            "statement 'NoLogs' of logs's policy denies it",
        ),
        (  # a condition the sandbox cannot evaluate: the Allow does not count
            [{**DELIVERY, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}],
            "raw/",
            "raw-1",
            "no statement of logs's policy allows",
        ),
    ],
)
def test_log_delivery_is_judged_like_s3(statements, prefix, source, refusal):
    found = log_delivery_refusal(_logs_policy(*statements), "logs", prefix, source, "123456789012")
    if refusal is None:
        assert found is None
    else:
        assert found is not None and found.startswith(refusal)


def test_moto_keeps_every_statement_but_conditioned_denies():
    allow = {"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"}
    deny = {"Sid": "Plain", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject"}
    tls = {**deny, "Sid": "Tls", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    sse = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
    }
    kept, dropped = moto_effective_policy(_logs_policy(allow, deny, tls, sse))
    assert kept is not None and json.loads(kept)["Statement"] == [allow, deny]
    assert dropped == ["Tls", "#3"]
    assert moto_effective_policy(_logs_policy(allow)) == (_logs_policy(allow), [])
    assert moto_effective_policy(_logs_policy(tls)) == (None, ["Tls"])


def test_no_target_policy_refuses_log_delivery():
    assert log_delivery_refusal(None, "logs", "raw/", "raw-1", "123456789012") == (
        "the target bucket logs has no policy letting logging.s3.amazonaws.com write"
    )


# --- shaping helpers (no server)


def test_pascal_renames_keeps_user_maps_and_drops_nones():
    shaped = pascal(
        {
            "serDeInfo": {"serializationLibrary": "lib", "parameters": {"a.b": "1"}},
            "columns": [{"name": "c", "type": "int", "comment": None}],
        },
        {"serDeInfo": "SerdeInfo"},
        frozenset({"parameters"}),
    )
    assert shaped == {
        "SerdeInfo": {"SerializationLibrary": "lib", "Parameters": {"a.b": "1"}},
        "Columns": [{"Name": "c", "Type": "int"}],
    }


def test_plain_unwraps_secrets_and_restores_integers():
    from pulumi.runtime import rpc

    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": "s3cr3t"}
    assert plain({"a": 3.0, "b": 2.5, "c": [1.0, secret]}) == {"a": 3, "b": 2.5, "c": [1, "s3cr3t"]}
    assert isinstance(plain(3.0), int)


def test_physical_names_are_stable_and_fit_the_limits():
    reg = Registration("aws:s3/bucket:Bucket", "lake-raw", {})
    assert reg.physical(lower=True) == reg.physical(lower=True) == "lake-raw-458cba8"
    assert Registration("aws:iam/role:Role", "r", {"name": "exact"}).physical() == "exact"
    assert Registration("aws:iam/role:Role", "r", {"namePrefix": "p-"}).physical().startswith("p-")
    long = Registration("aws:iam/role:Role", "x" * 100, {}).physical(max_len=64)
    assert len(long) == 64
    glue = Registration("aws:glue/catalogDatabase:CatalogDatabase", "Lake-DB", {})
    assert glue.physical(lower=True, sep="_").startswith("lake_db_")
    fifo = Registration("aws:sqs/queue:Queue", "q", {}).physical(max_len=80, suffix=".fifo")
    assert fifo.endswith(".fifo") and fifo.startswith("q-")


def test_a_required_input_missing_is_a_clear_error():
    with pytest.raises(RealizeError, match=r"aws:s3/bucketPolicy:BucketPolicy 'p': input 'policy'"):
        Registration("aws:s3/bucketPolicy:BucketPolicy", "p", {"bucket": "b"}).require("policy")


def test_a_metric_filter_is_put_on_its_log_group(platform, aws_client):
    plan, _ = platform
    group = state(plan, "ingest-logs", "name")
    (found,) = aws_client("logs").describe_metric_filters(logGroupName=group)["metricFilters"]
    assert found["filterName"] == ident(plan, "ingest-errors")
    assert found["filterPattern"] == '{ $.errorCode = "*" }'
    (metric,) = found["metricTransformations"]
    assert (metric["metricNamespace"], metric["metricName"]) == (
        "MLPlatform/Ingest",
        "DeliveryErrors",
    )
