"""Every policy has a passing and a failing case; the edge cases each rule is about."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from policies.core import Resource
from policies.rules import BY_NAME, POLICIES
from tests.policies.helpers import (
    BUCKET,
    KEY_ARN,
    LIFECYCLE,
    LOGGING,
    PAB,
    POLICY,
    PROD_TAGS,
    SSE,
    TAGS,
    VERSIONING,
    Case,
    bucket_set,
    check_case,
    doc,
    log_bucket,
    res,
    skipped,
    violations,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/ml-platform-sagemaker-exec"
SUBNETS = ["subnet-0aaa", "subnet-0bbb"]


def gateway_to_cluster(in_vpc: bool) -> list[Resource]:
    """A function that declares it talks to a private cluster's API, in its VPC or not."""
    fn_vpc = {"subnetIds": ["subnet-0aaa"], "securityGroupIds": ["sg-0fn"]}
    return [
        res("aws:ec2/subnet:Subnet", "a", {"vpcId": "vpc-01"}, ident="subnet-0aaa"),
        res(
            "aws:eks/cluster:Cluster",
            "training",
            {
                "name": "training",
                "vpcConfig": {
                    "subnetIds": ["subnet-0aaa"],
                    "endpointPrivateAccess": True,
                    "endpointPublicAccess": False,
                },
            },
        ),
        res(
            "aws:lambda/function:Function",
            "deployer",
            {
                "tags": {**TAGS, "mlplatform.io/talks-to": "eks-api:training"},
                **({"vpcConfig": fn_vpc} if in_vpc else {}),
            },
        ),
        res(
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
            "out",
            {"securityGroupId": "sg-0fn", "ipProtocol": "tcp", "fromPort": 443, "toPort": 443},
        ),
        res(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "in",
            {
                "securityGroupId": "sg-0cluster",
                "referencedSecurityGroupId": "sg-0fn",
                "ipProtocol": "tcp",
                "fromPort": 443,
                "toPort": 443,
            },
        ),
    ]


def s3(skip: tuple[str, ...] = (), **kw: Any) -> list[Resource]:
    return [*bucket_set("data", skip=skip, **kw), *log_bucket()]


def cluster(**over: Any) -> Resource:
    props: dict[str, Any] = {
        "roleArn": ROLE_ARN,
        "tags": TAGS,
        "vpcConfig": {
            "subnetIds": SUBNETS,
            "endpointPrivateAccess": True,
            "endpointPublicAccess": False,
        },
        "encryptionConfig": {"provider": {"keyArn": KEY_ARN}, "resources": ["secrets"]},
        "enabledClusterLogTypes": [
            "api",
            "audit",
            "authenticator",
            "controllerManager",
            "scheduler",
        ],
    }
    props.update(over)
    return res("aws:eks/cluster:Cluster", "training", props)


def endpoint_config(
    name: str = "churn-config", tags: dict[str, str] = TAGS, **over: Any
) -> Resource:
    props: dict[str, Any] = {
        "name": name,
        "tags": tags,
        "kmsKeyArn": KEY_ARN,
        "productionVariants": [
            {
                "variantName": "primary",
                "modelName": "churn-model",
                "instanceType": "ml.m5.large",
                "initialInstanceCount": 2,
            }
        ],
        "dataCaptureConfig": {
            "enableCapture": True,
            "initialSamplingPercentage": 100,
            "destinationS3Uri": "s3://predictions/capture",
            "kmsKeyId": KEY_ARN,
            "captureOptions": [{"captureMode": "Input"}],
        },
    }
    props.update(over)
    return res("aws:sagemaker/endpointConfiguration:EndpointConfiguration", name, props, ident=name)


def endpoint(
    name: str = "churn", config: str = "churn-config", tags: dict[str, str] = TAGS
) -> Resource:
    return res(
        "aws:sagemaker/endpoint:Endpoint",
        name,
        {"name": name, "endpointConfigName": config, "tags": tags},
        ident=name,
    )


def target(
    endpoint_name: str = "churn",
    variant: str = "primary",
    low: int = 2,
    tags: dict[str, str] = TAGS,
) -> Resource:
    return res(
        "aws:appautoscaling/target:Target",
        f"{endpoint_name}-{variant}-scaling",
        {
            "serviceNamespace": "sagemaker",
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "resourceId": f"endpoint/{endpoint_name}/variant/{variant}",
            "minCapacity": low,
            "maxCapacity": 6,
            "tags": tags,
        },
    )


def alarm(
    name: str,
    metric: str,
    namespace: str = "AWS/SageMaker",
    endpoint_name: str = "churn",
    **over: Any,
) -> Resource:
    props: dict[str, Any] = {
        "metricName": metric,
        "namespace": namespace,
        "comparisonOperator": "GreaterThanThreshold",
        "evaluationPeriods": 3,
        "threshold": 1,
        "period": 60,
        "statistic": "Average",
        "dimensions": {"EndpointName": endpoint_name, "VariantName": "primary"},
        "alarmActions": ["arn:aws:sns:us-east-1:123456789012:oncall"],
        "tags": TAGS,
    }
    props.update(over)
    return res("aws:cloudwatch/metricAlarm:MetricAlarm", name, props)


def endpoint_alarms(endpoint_name: str = "churn") -> list[Resource]:
    return [
        alarm(f"{endpoint_name}-latency", "ModelLatency", endpoint_name=endpoint_name),
        alarm(f"{endpoint_name}-5xx", "Invocation5XXErrors", endpoint_name=endpoint_name),
        alarm(
            f"{endpoint_name}-drift",
            "feature_psi",
            namespace="MLPlatform/Drift",
            endpoint_name=endpoint_name,
        ),
    ]


def model(tags: dict[str, str] = PROD_TAGS, **over: Any) -> Resource:
    props: dict[str, Any] = {
        "executionRoleArn": ROLE_ARN,
        "tags": tags,
        "enableNetworkIsolation": True,
        "primaryContainer": {"image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sklearn"},
        "vpcConfig": {"subnets": SUBNETS, "securityGroupIds": ["sg-0abc"]},
    }
    props.update(over)
    return res("aws:sagemaker/model:Model", "churn-model", props)


def iam_policy(*statements: dict[str, Any]) -> Resource:
    return res("aws:iam/policy:Policy", "lake-read", {"policy": doc(*statements), "tags": TAGS})


READ = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::raw/*"]}
PUT_METRICS = {
    "Sid": "WildcardOnlyPutMetricDataHasNoResourceLevelPermissions",
    "Effect": "Allow",
    "Action": ["cloudwatch:PutMetricData"],
    "Resource": ["*"],
}
QUALITY_ONLY = {"StringEquals": {"cloudwatch:namespace": ["MLPlatform/Quality"]}}


def pipeline(step_args: dict[str, Any], type_: str = "aws:sagemaker/pipeline:Pipeline") -> Resource:
    import json

    definition = json.dumps(
        {
            "Version": "2020-12-01",
            "Steps": [{"Name": "Train", "Type": "Training", "Arguments": step_args}],
        }
    )
    prop = "pipelineDefinition" if type_.endswith("Pipeline") else "definition"
    return res(type_, "training-pipeline", {prop: definition, "tags": TAGS})


def kube(kind: str, name: str, namespace: str | None = None, **body: Any) -> Resource:
    """A Kubernetes object applied by the engine (`kubernetes:*`)."""
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    labels = body.pop("labels", None)
    if labels:
        meta["labels"] = labels
    api = "v1" if kind == "Namespace" else "batch/v1" if kind == "Job" else "networking.k8s.io/v1"
    obj = {"apiVersion": api, "kind": kind, "metadata": meta, **body}
    return res(f"kubernetes:{api.split('/')[0]}:{kind}", f"{kind.lower()}-{name}", obj)


RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
SAFE_CONTAINER: dict[str, Any] = {
    "name": "train",
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


DIGEST = "sha256:" + "0" * 64


def training_job(container: dict[str, Any]) -> list[Resource]:
    return [
        kube("Namespace", "training", labels=RESTRICTED),
        kube(
            "Job",
            "train",
            "training",
            spec={"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
        ),
    ]


ENI = {
    "Effect": "Allow",
    "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
    "Resource": "*",
}
PRIVATE_JOB = {
    "ResourceConfig": {
        "InstanceType": "ml.m5.large",
        "InstanceCount": 1,
        "VolumeKmsKeyId": KEY_ARN,
    },
    "VpcConfig": {"Subnets": SUBNETS, "SecurityGroupIds": ["sg-0abc"]},
    "OutputDataConfig": {"S3OutputPath": "s3://models/", "KmsKeyId": KEY_ARN},
}

SPOT = {
    "EnableManagedSpotTraining": True,
    "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
}

# name -> (compliant resources, violating resources, fragment of the violation message)
CASES: dict[str, Case] = {
    "s3-bucket-kms-encryption": (
        s3,
        lambda: s3(algorithm="AES256"),
        "not a customer-managed KMS key",
    ),
    "s3-bucket-public-access-block": (
        s3,
        lambda: [
            r if r.name != "data-pab" else res(PAB, r.name, {**r.props, "ignorePublicAcls": False})
            for r in s3()
        ],
        "leaves ignorePublicAcls off",
    ),
    "s3-bucket-versioning": (s3, lambda: s3(skip=(VERSIONING,)), "has no versioning"),
    "s3-bucket-tls-only": (
        s3,
        lambda: [
            r
            if r.name != "data-policy"
            else res(
                POLICY,
                r.name,
                {
                    "bucket": r.props["bucket"],
                    "policy": doc(
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:DeleteBucket",
                            "Resource": "arn:aws:s3:::data",
                        }
                    ),
                },
            )
            for r in s3()
        ],
        "no policy statement denies s3:*",
    ),
    "s3-bucket-access-logging": (
        s3,
        lambda: [*bucket_set("data", skip=(LOGGING,)), *bucket_set("other"), *log_bucket()],
        "bucket 'data' has no access logging",
    ),
    "s3-bucket-lifecycle": (s3, lambda: s3(skip=(LIFECYCLE,)), "has no lifecycle configuration"),
    "kms-key-rotation": (
        lambda: [res("aws:kms/key:Key", "lake", {"enableKeyRotation": True, "tags": TAGS})],
        lambda: [res("aws:kms/key:Key", "lake", {"enableKeyRotation": False, "tags": TAGS})],
        "does not enable automatic rotation",
    ),
    "iam-policy-no-wildcard-actions": (
        lambda: [iam_policy(READ)],
        lambda: [iam_policy({**READ, "Action": ["s3:*"]})],
        "wildcard action(s) ['s3:*']",
    ),
    "iam-policy-no-wildcard-resources": (
        lambda: [
            iam_policy(
                READ,
                {
                    "Sid": "WildcardOnlyEcrGetAuthorizationTokenHasNoResource",
                    "Effect": "Allow",
                    "Action": ["ecr:GetAuthorizationToken"],
                    "Resource": ["*"],
                },
            )
        ],
        lambda: [iam_policy({**READ, "Resource": "*"})],
        "allows resource '*' without a reason",
    ),
    "iam-policy-metric-namespace-scoped": (
        lambda: [iam_policy(READ, {**PUT_METRICS, "Condition": QUALITY_ONLY})],
        lambda: [iam_policy(READ, PUT_METRICS)],
        "grants cloudwatch:PutMetricData in any namespace",
    ),
    "iam-policy-passrole-scoped": (
        lambda: [iam_policy({"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE_ARN})],
        lambda: [
            iam_policy(
                {
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": "arn:aws:iam::123456789012:role/*",
                }
            )
        ],
        "grants iam:PassRole on ['arn:aws:iam::123456789012:role/*']",
    ),
    "eks-cluster-private-endpoint": (
        lambda: [cluster()],
        lambda: [
            cluster(
                vpcConfig={
                    "subnetIds": SUBNETS,
                    "endpointPrivateAccess": False,
                    "endpointPublicAccess": False,
                }
            )
        ],
        "endpointPrivateAccess is not true",
    ),
    "eks-cluster-secrets-encryption": (
        lambda: [cluster()],
        lambda: [cluster(encryptionConfig=None)],
        "secrets are not envelope-encrypted",
    ),
    "eks-cluster-control-plane-logging": (
        lambda: [cluster()],
        lambda: [cluster(enabledClusterLogTypes=["api", "audit"])],
        "missing: authenticator, controllerManager, scheduler",
    ),
    "ec2-launchtemplate-imdsv2": (
        lambda: [
            res(
                "aws:ec2/launchTemplate:LaunchTemplate",
                "gpu-lt",
                {
                    "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
                    "tags": TAGS,
                },
            )
        ],
        lambda: [
            res(
                "aws:ec2/launchTemplate:LaunchTemplate",
                "gpu-lt",
                {"metadataOptions": {"httpTokens": "optional"}, "tags": TAGS},
            )
        ],
        "httpTokens is 'optional'",
    ),
    "ec2-instance-gpu-allowlist": (
        lambda: [
            res(
                "aws:eks/nodeGroup:NodeGroup",
                "gpu",
                {"instanceTypes": ["g5.xlarge", "m6i.large"], "tags": TAGS},
            )
        ],
        lambda: [
            res(
                "aws:eks/nodeGroup:NodeGroup",
                "gpu",
                {"instanceTypes": ["p3.2xlarge"], "tags": TAGS},
            )
        ],
        "GPU instance type p3.2xlarge is not in the allow-list",
    ),
    "sagemaker-training-spot-checkpoints": (
        lambda: [pipeline({**SPOT, "CheckpointConfig": {"S3Uri": "s3://models/checkpoints/"}})],
        lambda: [pipeline(SPOT)],
        "has no CheckpointConfig.S3Uri",
    ),
    "sagemaker-endpointconfig-kms": (
        lambda: [endpoint_config()],
        lambda: [endpoint_config(kmsKeyArn=None)],
        "kmsKeyArn is not set",
    ),
    "sagemaker-endpointconfig-data-capture": (
        lambda: [endpoint_config(tags=PROD_TAGS)],
        lambda: [endpoint_config(tags=PROD_TAGS, dataCaptureConfig=None)],
        "prod endpoints capture requests",
    ),
    "sagemaker-model-network-isolation": (
        lambda: [model()],
        lambda: [model(enableNetworkIsolation=False)],
        "prod models run with enableNetworkIsolation",
    ),
    "sagemaker-model-vpc": (
        lambda: [model()],
        lambda: [model(vpcConfig=None)],
        "prod models run in the VPC",
    ),
    "sagemaker-endpoint-autoscaling": (
        lambda: [endpoint_config(), endpoint(), target()],
        lambda: [endpoint_config(), endpoint(), target(variant="other")],
        "variant 'primary' has no autoscaling target (resourceId endpoint/churn/variant/primary)",
    ),
    "sagemaker-endpoint-min-capacity": (
        lambda: [endpoint_config(tags=PROD_TAGS), target(tags=PROD_TAGS)],
        lambda: [target(low=1, tags=PROD_TAGS)],
        "prod endpoints keep at least 2 instances (minCapacity 1)",
    ),
    "sagemaker-endpoint-alarms": (
        lambda: [endpoint(), *endpoint_alarms()],
        lambda: [endpoint(), *endpoint_alarms()[:2]],
        "no drift alarm(s) on EndpointName=churn",
    ),
    "cloudwatch-alarm-actions": (
        lambda: [alarm("latency", "ModelLatency")],
        lambda: [alarm("latency", "ModelLatency", alarmActions=[])],
        "has no alarmActions",
    ),
    "cloudwatch-loggroup-retention": (
        lambda: [
            res("aws:cloudwatch/logGroup:LogGroup", "eks", {"retentionInDays": 30, "tags": TAGS})
        ],
        lambda: [res("aws:cloudwatch/logGroup:LogGroup", "eks", {"tags": TAGS})],
        "retentionInDays is None",
    ),
    "sns-topic-encrypted": (
        lambda: [res("aws:sns/topic:Topic", "oncall", {"kmsMasterKeyId": KEY_ARN, "tags": TAGS})],
        lambda: [res("aws:sns/topic:Topic", "oncall", {"tags": TAGS})],
        "is not encrypted",
    ),
    "aws-resource-required-tags": (
        lambda: [
            res("aws:sqs/queue:Queue", "dlq", {"tags": TAGS}),
            res("aws:s3/bucketPolicy:BucketPolicy", "p", {"policy": "{}"}),
        ],
        lambda: [res("aws:sqs/queue:Queue", "dlq", {"tags": {"owner": "ml-team"}})],
        "lacks required tag(s): environment, cost-center",
    ),
    "aws-names-within-limits": (
        lambda: [res("aws:iam/role:Role", "exec", {"name": "ml-platform-exec"})],
        lambda: [res("aws:iam/role:Role", "exec", {"name": "r" * 65})],
        "is 65 characters; AWS allows at most 64",
    ),
    "vpc-network-paths-reachable": (
        lambda: gateway_to_cluster(in_vpc=True),
        lambda: gateway_to_cluster(in_vpc=False),
        "runs outside the VPC, so it cannot reach the private API of cluster 'training'",
    ),
    "ec2-launchtemplate-imds-hop-limit": (
        lambda: [
            res(
                "aws:ec2/launchTemplate:LaunchTemplate",
                "nodes",
                {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}},
            )
        ],
        lambda: [
            res(
                "aws:ec2/launchTemplate:LaunchTemplate",
                "nodes",
                {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2}},
            )
        ],
        "metadataOptions.httpPutResponseHopLimit is 2",
    ),
    "iam-policy-eni-scoped": (
        lambda: [
            iam_policy(
                {**ENI, "Condition": {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:1:vpc/v"}}}
            )
        ],
        lambda: [iam_policy(ENI)],
        "on any network interface in the account",
    ),
    "sagemaker-job-private": (
        lambda: [pipeline(PRIVATE_JOB)],
        lambda: [pipeline({k: v for k, v in PRIVATE_JOB.items() if k != "VpcConfig"})],
        "runs outside the VPC (no VpcConfig with subnets)",
    ),
    "kubernetes-namespace-isolated": (
        lambda: [
            kube("Namespace", "training", labels=RESTRICTED),
            kube("NetworkPolicy", "deny-all", "training", spec=DENY_ALL),
        ],
        lambda: [kube("Namespace", "training", labels=RESTRICTED)],
        "namespace 'training': no default-deny NetworkPolicy",
    ),
    "kubernetes-pod-restricted": (
        lambda: training_job(SAFE_CONTAINER),
        lambda: training_job(
            {
                **SAFE_CONTAINER,
                "securityContext": {
                    **SAFE_CONTAINER["securityContext"],
                    "allowPrivilegeEscalation": True,
                },
            }
        ),
        "container 'train': allowPrivilegeEscalation must be false",
    ),
    "kubernetes-image-digest-pinned": (
        lambda: training_job({**SAFE_CONTAINER, "image": f"{SAFE_CONTAINER['image']}@{DIGEST}"}),
        lambda: training_job(SAFE_CONTAINER),
        "image '123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1' is pulled by tag",
    ),
    "aws-stateful-protected": (
        lambda: [
            res(BUCKET, "raw", {"tags": PROD_TAGS}, protect=True),
            res(BUCKET, "scratch", {"tags": TAGS}, protect=False),
        ],
        lambda: [res(BUCKET, "raw", {"tags": PROD_TAGS}, protect=False)],
        "holds state in prod but is not protected",
    ),
}


def all_cases() -> dict[str, Case]:
    """The `CASES` of this module and the `POLICY_CASES` of every other test module here."""
    cases = dict(CASES)
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.policies.{path.stem}")
        for name, case in getattr(module, "POLICY_CASES", {}).items():
            assert name not in cases, f"{name} has a case in two modules ({path.name})"
            cases[name] = case
    return cases


def test_every_policy_has_a_case() -> None:
    assert sorted(all_cases()) == sorted(p.name for p in POLICIES)
    assert len(POLICIES) >= 20


@pytest.mark.parametrize("name", sorted(CASES))
def test_policy_passes_and_fails(name: str) -> None:
    check_case(name, CASES[name])


def test_metadata_is_complete_and_named_by_service_resource_rule() -> None:
    for p in POLICIES:
        assert p.enforcement in ("mandatory", "advisory")
        assert p.severity in ("critical", "high", "medium", "low")
        assert p.description and "\n" not in p.description and p.reference
        service, resource, rule = p.name.split("-", 2)
        assert service and resource and rule
    assert BY_NAME["s3-bucket-lifecycle"].enforcement == "advisory"
    assert {p.name for p in POLICIES if p.kind == "stack"} == {
        "s3-bucket-kms-encryption",
        "s3-bucket-public-access-block",
        "s3-bucket-versioning",
        "s3-bucket-tls-only",
        "s3-bucket-access-logging",
        "s3-bucket-lifecycle",
        "sagemaker-endpoint-autoscaling",
        "sagemaker-endpoint-alarms",
        "vpc-network-paths-reachable",
        "iam-role-trust-cross-account",
        "kubernetes-namespace-isolated",
        "kubernetes-pod-restricted",
        "cloudtrail-trail-watched",
        "cloudtrail-trail-bucket-locked",
        "kubernetes-image-digest-pinned",
    }


# --- S3 joins and the access-log exemption ----------------------------------------------------


def test_access_log_bucket_is_exempt_from_logging_and_must_use_sse_s3() -> None:
    resources = s3()
    assert violations("s3-bucket-access-logging", resources) == []
    assert violations("s3-bucket-kms-encryption", resources) == []
    # the log bucket with KMS: S3 would not deliver logs there
    kms_logs = [*bucket_set("data"), *bucket_set("logs", log_target=None)]
    found = violations("s3-bucket-kms-encryption", kms_logs)
    assert len(found) == 1 and "access-log bucket 'logs' must use SSE-S3" in found[0]


def test_exemption_is_narrow() -> None:
    # a bucket nobody logs to is not a log bucket: AES256 and no logging both fail
    lonely = bucket_set("lonely", log_target=None, algorithm="AES256")
    assert violations("s3-bucket-access-logging", lonely) == [
        "bucket 'lonely' has no access logging (BucketLogging)"
    ]
    assert len(violations("s3-bucket-kms-encryption", lonely)) == 1
    # a bucket logging to itself is neither exempt nor compliant
    selfish = bucket_set("selfish", log_target="selfish")
    assert violations("s3-bucket-access-logging", selfish) == [
        "bucket 'selfish' logs to itself; send access logs to a dedicated access-log bucket"
    ]
    assert violations("s3-bucket-kms-encryption", selfish) == []


def test_aws_managed_s3_key_is_not_customer_managed() -> None:
    resources = [
        r
        if r.name != "data-sse"
        else res(
            SSE,
            r.name,
            {
                "bucket": r.props["bucket"],
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": "alias/aws/s3",
                        }
                    }
                ],
            },
        )
        for r in s3()
    ]
    assert violations("s3-bucket-kms-encryption", resources) == [
        "bucket 'data' uses the AWS-managed key; set kmsMasterKeyId to a customer-managed key"
    ]


def test_sub_resources_of_buckets_outside_the_stack_are_ignored() -> None:
    stray = res(
        VERSIONING,
        "elsewhere",
        {"bucket": "not-in-this-stack", "versioningConfiguration": {"status": "Suspended"}},
    )
    assert violations("s3-bucket-versioning", [*s3(), stray]) == []


# --- unknown values: skipped with a note, never failed -------------------------------------


def test_plan_unknown_marker_skips_instead_of_failing() -> None:
    resources = [
        r
        if r.name != "data-policy"
        else res(POLICY, r.name, {"bucket": r.props["bucket"], "policy": {"unknown": True}})
        for r in s3()
    ]
    assert violations("s3-bucket-tls-only", resources) == []
    notes = skipped("s3-bucket-tls-only", resources)
    assert len(notes) == 1 and "is unknown during preview" in notes[0]


def test_unknown_bucket_reference_skips_the_join_but_dependencies_resolve_it() -> None:
    bucket = res(BUCKET, "data", {"tags": TAGS}, ident={"unknown": True})
    versioning = res(
        VERSIONING,
        "data-versioning",
        {"bucket": {"unknown": True}, "versioningConfiguration": {"status": "Enabled"}},
    )
    assert violations("s3-bucket-versioning", [bucket, versioning]) == []
    assert len(skipped("s3-bucket-versioning", [bucket, versioning])) == 1
    # the CLI tells which resource an unknown input came from
    linked = res(
        VERSIONING,
        "data-versioning",
        {"bucket": {"unknown": True}, "versioningConfiguration": {"status": "Suspended"}},
        deps={"bucket": (bucket.urn,)},
    )
    assert violations("s3-bucket-versioning", [bucket, linked]) == [
        "bucket 'data': versioning status is 'Suspended', not 'Enabled'"
    ]


def test_policy_sdk_sentinels_are_unknowns_too() -> None:
    unknown_string = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    key = res(
        "aws:kms/key:Key", "lake", {"enableKeyRotation": "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"}
    )
    assert violations("kms-key-rotation", [key]) == []
    assert skipped("kms-key-rotation", [key]) == [
        "skipped aws:kms/key:Key 'lake': .enableKeyRotation is unknown during preview"
    ]
    topic = res("aws:sns/topic:Topic", "t", {"kmsMasterKeyId": unknown_string})
    assert violations("sns-topic-encrypted", [topic]) == []


# --- environment, configuration --------------------------------------------------------------


def test_environment_comes_from_the_tag_then_the_pack_config() -> None:
    untagged = res(BUCKET, "raw", {}, protect=False)
    assert violations("aws-stateful-protected", [untagged]) == []
    assert len(violations("aws-stateful-protected", [untagged], environment="prod")) == 1
    dev_tagged = res(BUCKET, "raw", {"tags": TAGS}, protect=False)
    assert violations("aws-stateful-protected", [dev_tagged], environment="prod") == []


def test_protect_not_visible_is_a_skip() -> None:
    hidden = res(BUCKET, "raw", {"tags": PROD_TAGS}, protect=None)
    assert violations("aws-stateful-protected", [hidden]) == []
    assert skipped("aws-stateful-protected", [hidden]) == [
        "skipped aws:s3/bucket:Bucket 'raw': the resource options of aws:s3/bucket:Bucket 'raw' "
        "are not visible here"
    ]


def test_gpu_allowlist_is_configurable_and_covers_endpoints_and_pipelines() -> None:
    group = res("aws:eks/nodeGroup:NodeGroup", "gpu", {"instanceTypes": ["g5.xlarge"]})
    assert violations("ec2-instance-gpu-allowlist", [group], allowedGpuFamilies=["p5"]) == [
        "aws:eks/nodeGroup:NodeGroup 'gpu': GPU instance type g5.xlarge is not in the allow-list "
        "(p5)"
    ]
    config = endpoint_config(
        productionVariants=[{"variantName": "primary", "instanceType": "ml.p3.2xlarge"}]
    )
    assert len(violations("ec2-instance-gpu-allowlist", [config])) == 1
    assert (
        len(
            violations(
                "ec2-instance-gpu-allowlist",
                [pipeline({"ResourceConfig": {"InstanceType": "ml.g4.xlarge"}})],
            )
        )
        == 1
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"environment": "production"}, "environment: 'production' is not allowed"),
        ({"allowedGpuFamilies": "g5"}, "allowedGpuFamilies: 'g5' is not allowed"),
        ({"envrionment": "prod"}, "unknown policy config key(s) ['envrionment']"),
    ],
)
def test_bad_pack_config_is_a_clear_error(config: dict[str, Any], message: str) -> None:
    from policies.core import Context

    with pytest.raises(ValueError, match="policy pack config") as info:
        Context.from_config(config)
    assert message in str(info.value)


# --- IAM details --------------------------------------------------------------------------


def test_iam_role_inline_policies_and_not_action_are_checked() -> None:
    role = res(
        "aws:iam/role:Role",
        "exec",
        {
            "assumeRolePolicy": doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
            "inlinePolicies": [
                {
                    "name": "all",
                    "policy": doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
                }
            ],
            "tags": TAGS,
        },
    )
    assert violations("iam-policy-no-wildcard-actions", [role]) == [
        "exec: inline policy 0 statement 0 allows NotAction (everything but a list)"
    ]
    assert violations("iam-policy-no-wildcard-resources", [role]) == [
        "exec: inline policy 0 statement 0 allows resource '*' without a reason; use "
        "Statement(wildcard_reason=...) (Sid WildcardOnly<Reason>)"
    ]


def test_wildcard_sid_without_reason_and_deny_statements() -> None:
    bare = iam_policy(
        {"Sid": "WildcardOnly", "Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}
    )
    assert len(violations("iam-policy-no-wildcard-resources", [bare])) == 1
    deny = iam_policy(READ, {"Effect": "Deny", "Action": "*", "Resource": "*"})
    assert violations("iam-policy-no-wildcard-actions", [deny]) == []
    assert violations("iam-policy-no-wildcard-resources", [deny]) == []


@pytest.mark.parametrize("action", ["iam:PassRole", "iam:Pass*", "IAM:passrole"])
def test_pass_role_patterns_must_name_exact_roles(action: str) -> None:
    assert (
        len(
            violations(
                "iam-policy-passrole-scoped",
                [iam_policy({"Effect": "Allow", "Action": action, "Resource": "*"})],
            )
        )
        == 1
    )


@pytest.mark.parametrize(
    ("condition", "scoped"),
    [
        ({"StringEquals": {"cloudwatch:namespace": "MLPlatform/Drift"}}, True),
        ({"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints/*"]}}, True),
        ({"StringLike": {"cloudwatch:namespace": "*"}}, False),
        ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, False),
        ({"StringEquals": {"cloudwatch:namespace": []}}, False),
    ],
)
def test_put_metric_data_needs_a_namespace_condition(
    condition: dict[str, Any], scoped: bool
) -> None:
    found = violations(
        "iam-policy-metric-namespace-scoped",
        [iam_policy({**PUT_METRICS, "Action": "CloudWatch:Put*", "Condition": condition})],
    )
    assert len(found) == (0 if scoped else 1)


def test_asymmetric_keys_are_not_required_to_rotate() -> None:
    key = res(
        "aws:kms/key:Key",
        "signing",
        {"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"},
    )
    assert violations("kms-key-rotation", [key]) == []


# --- EKS, SageMaker details -------------------------------------------------------------------


def test_public_eks_endpoint_is_restricted_outside_prod_and_refused_in_prod() -> None:
    restricted = cluster(
        vpcConfig={
            "subnetIds": SUBNETS,
            "endpointPrivateAccess": True,
            "endpointPublicAccess": True,
            "publicAccessCidrs": ["203.0.113.0/24"],
        }
    )
    assert violations("eks-cluster-private-endpoint", [restricted]) == []
    open_default = cluster(vpcConfig={"subnetIds": SUBNETS, "endpointPrivateAccess": True})
    assert violations("eks-cluster-private-endpoint", [open_default]) == [
        "cluster 'training': public API endpoint open to the internet (['0.0.0.0/0'])"
    ]
    prod = cluster(tags=PROD_TAGS, vpcConfig=restricted.props["vpcConfig"])
    assert violations("eks-cluster-private-endpoint", [prod]) == [
        "cluster 'training': the prod cluster API must not be public (endpointPublicAccess)"
    ]


def test_serverless_and_local_nvme_variants_need_no_kms_key() -> None:
    serverless = endpoint_config(
        kmsKeyArn=None,
        dataCaptureConfig=None,
        productionVariants=[
            {
                "variantName": "primary",
                "serverlessConfig": {"memorySizeInMb": 2048, "maxConcurrency": 5},
            }
        ],
    )
    nvme = endpoint_config(
        kmsKeyArn=None,
        productionVariants=[
            {"variantName": "primary", "instanceType": "ml.g5.xlarge", "initialInstanceCount": 1}
        ],
    )
    assert violations("sagemaker-endpointconfig-kms", [serverless, nvme]) == []
    plain_capture = endpoint_config(
        dataCaptureConfig={"enableCapture": True, "initialSamplingPercentage": 10}
    )
    assert violations("sagemaker-endpointconfig-kms", [plain_capture]) == [
        "endpoint config 'churn-config': captured requests are not encrypted with a "
        "customer-managed key (dataCaptureConfig.kmsKeyId)"
    ]


def test_prod_only_rules_pass_outside_prod() -> None:
    dev_model = model(tags=TAGS, enableNetworkIsolation=False, vpcConfig=None)
    assert violations("sagemaker-model-network-isolation", [dev_model]) == []
    assert violations("sagemaker-model-vpc", [dev_model]) == []
    assert (
        violations(
            "sagemaker-endpointconfig-data-capture", [endpoint_config(dataCaptureConfig=None)]
        )
        == []
    )
    assert violations("sagemaker-endpoint-min-capacity", [target(low=1)]) == []


def test_prod_initial_instance_count_and_serverless_autoscaling() -> None:
    single = endpoint_config(
        tags=PROD_TAGS,
        productionVariants=[
            {"variantName": "primary", "instanceType": "ml.m5.large", "initialInstanceCount": 1}
        ],
    )
    assert violations("sagemaker-endpoint-min-capacity", [single]) == [
        "endpoint config 'churn-config': variant 'primary' starts with 1 instance(s); prod "
        "needs >= 2"
    ]
    serverless = endpoint_config(
        productionVariants=[
            {"variantName": "primary", "serverlessConfig": {"memorySizeInMb": 2048}}
        ]
    )
    assert violations("sagemaker-endpoint-autoscaling", [serverless, endpoint()]) == []


def test_alarms_found_through_metric_queries() -> None:
    latency = res(
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "p99",
        {
            "alarmActions": ["arn:aws:sns:us-east-1:123456789012:oncall"],
            "metricQueries": [
                {
                    "id": "m1",
                    "returnData": True,
                    "metric": {
                        "metricName": "ModelLatency",
                        "namespace": "AWS/SageMaker",
                        "period": 60,
                        "stat": "p99",
                        "dimensions": {"EndpointName": "churn", "VariantName": "primary"},
                    },
                }
            ],
        },
    )
    resources = [endpoint(), latency, *endpoint_alarms()[1:]]
    assert violations("sagemaker-endpoint-alarms", resources) == []
    other = [endpoint(), *endpoint_alarms("another-endpoint")]
    assert violations("sagemaker-endpoint-alarms", other) == [
        "endpoint 'churn': no latency, errors, drift alarm(s) on EndpointName=churn"
    ]


def test_state_machine_spot_training_and_disabled_alarm_actions() -> None:
    machine = pipeline(SPOT, type_="aws:sfn/stateMachine:StateMachine")
    assert len(violations("sagemaker-training-spot-checkpoints", [machine])) == 1
    off = alarm("latency", "ModelLatency", actionsEnabled=False)
    assert violations("cloudwatch-alarm-actions", [off]) == [
        "alarm 'latency': actionsEnabled is false"
    ]


def test_untaggable_and_non_aws_resources_need_no_tags() -> None:
    resources = [
        res(PAB, "pab", {"bucket": "b"}),
        res("mlplatform:lake:DataLake", "lake", {}),
        res("kubernetes:core/v1:Namespace", "ns", {}),
    ]
    assert violations("aws-resource-required-tags", resources) == []
    assert violations("aws-resource-required-tags", [res(BUCKET, "b", {})]) == [
        "aws:s3/bucket:Bucket 'b' lacks required tag(s): owner, environment, cost-center"
    ]
