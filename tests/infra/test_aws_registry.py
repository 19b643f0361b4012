"""The per-type registry (`mlplat.aws`): complete for the shipped stacks, one service per module,
and light to import."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import mlplat.aws
from mlplat.aws import REGISTRY, SERVICE_MODULES, AwsType, Fake, Service, generic_fake
from mlplat.aws.registry import name_seed
from mlplat.plan.engine import Plan
from tests.conftest import ROOT

NO_REALIZER = "no sandbox realizer for this type (moto may not support it)"


def aws_types(plan: Plan) -> set[str]:
    return {r.type for r in plan.resources if r.custom and r.type.startswith("aws:")}


def test_every_type_in_the_shipped_plans_has_an_entry_with_a_fake(shipped_plans) -> None:
    for stack, plan in shipped_plans.items():
        missing = sorted(t for t in aws_types(plan) if t not in REGISTRY)
        assert missing == [], f"{stack}: no registry entry for {missing}"
        # nothing but AWS types and components: every custom resource is faked by the registry
        assert {r.type for r in plan.resources if r.custom} == aws_types(plan)


def test_every_fake_answers_an_id_and_outputs() -> None:
    for entry in REGISTRY:
        fake = Fake(
            type=entry.token,
            kind=entry.kind,
            urn=name_seed(entry.token, "x"),
            inputs={},
            physical="x-0123456",
            account="123456789012",
            region="us-east-1",
        )
        ident, outputs = entry.fake(fake)
        assert isinstance(ident, str) and ident, entry.token
        assert isinstance(outputs, dict), entry.token


def test_every_type_of_the_local_stack_is_realized_and_read_back_or_says_why(
    shipped_plans,
) -> None:
    from mlplat.sandbox.realize import READERS, REALIZERS, not_emulated_reason

    assert dict(REALIZERS) == dict(REGISTRY.realizers)
    assert dict(READERS) == dict(REGISTRY.readers)
    for token in sorted(aws_types(shipped_plans["local"])):
        entry = REGISTRY.get(token)
        assert entry is not None, token
        if entry.realize is None:
            assert not_emulated_reason(token) != NO_REALIZER, token
        else:
            assert entry.read is not None, token


def test_eks_says_why_it_is_not_emulated_for_every_eks_type() -> None:
    from mlplat.sandbox.realize import not_emulated_reason

    for token in ("aws:eks/cluster:Cluster", "aws:eks/addon:Addon"):  # listed or not
        assert "no control plane" in not_emulated_reason(token)
    assert not_emulated_reason("aws:sagemaker/domain:Domain") == NO_REALIZER
    assert "no Kubernetes API server" in not_emulated_reason("kubernetes:core/v1:Namespace")
    assert "provider instance" in not_emulated_reason("pulumi:providers:aws")


def test_each_service_module_declares_only_its_own_services() -> None:
    owners: dict[str, str] = {}
    for module in SERVICE_MODULES:
        service = module.SERVICE
        for entry in service.types:
            assert entry.service in service.owns, f"{module.__name__} declares {entry.token}"
        for owned in service.owns:
            assert owned not in owners, f"{owned} owned by {owners[owned]} and {module.__name__}"
            owners[owned] = module.__name__
    declared = [e.token for m in SERVICE_MODULES for e in m.SERVICE.types]
    assert sorted(declared) == sorted(e.token for e in REGISTRY)
    # every module of the package is a service module but the shared two
    found = {m.name for m in pkgutil.iter_modules(mlplat.aws.__path__)}
    listed = {m.__name__.rsplit(".", 1)[-1] for m in SERVICE_MODULES}
    assert found - listed == {"registry", "realizing"}


def test_a_service_refuses_a_foreign_token_and_an_entry_a_half_realizer() -> None:
    with pytest.raises(ValueError, match="declares"):
        Service(owns=("s3",), types=(AwsType("aws:sqs/queue:Queue", fake=generic_fake),))
    with pytest.raises(ValueError, match="needs a reader"):
        AwsType("aws:s3/bucket:Bucket", fake=generic_fake, realize=lambda ctx, reg: ("", {}))


def test_force_new_is_declared_only_on_stateful_types() -> None:
    # `--diff` warns of a replacement only where data is lost: elsewhere force_new is dead data
    for entry in REGISTRY:
        if entry.force_new:
            assert entry.stateful, entry.token
    assert REGISTRY.force_new("aws:s3/bucket:Bucket") == {
        "bucket",
        "bucketPrefix",
        "objectLockEnabled",
    }
    assert REGISTRY.force_new("aws:rds/instance:Instance") == frozenset()


def test_stateful_and_names_come_from_the_policy_pack() -> None:
    from policies import names
    from policies.core import STATEFUL_TYPES

    for entry in REGISTRY:
        assert entry.stateful == (entry.token in STATEFUL_TYPES)
        assert entry.name_rule == names.rule_for(entry.token)
    bucket = REGISTRY.get("aws:s3/bucket:Bucket")
    assert bucket is not None and bucket.stateful and bucket.name_rule is not None
    assert bucket.name_rule.prop == "bucket"
    # a stateful type the registry does not list is still stateful to `--diff`
    assert "aws:rds/instance:Instance" not in REGISTRY
    assert REGISTRY.stateful("aws:rds/instance:Instance")


def test_types_not_listed_fall_back_to_their_service_or_the_generic_fake() -> None:
    assert REGISTRY.fake_for("aws:ec2/networkAcl:NetworkAcl") is REGISTRY.fake_for(
        "aws:ec2/vpc:Vpc"
    )
    assert REGISTRY.fake_for("aws:sagemaker/domain:Domain") is generic_fake
    assert REGISTRY.fake_for("kubernetes:core/v1:Namespace") is generic_fake


@pytest.mark.parametrize("module", ["mlplat.aws", "mlplat.plan.diff"])
def test_the_registry_imports_without_boto3_moto_or_pulumi(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print([m for m in ('boto3', 'botocore', 'moto', 'pulumi', 'pulumi_aws') "
        "if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# The shapes AWS documents for each type's ARN (Service Authorization Reference, "Resource types
# defined by ...") and the id the provider's import section gives; `{A}` is the account, `{R}` the
# region, `{N}` a physical name. A fake that answers another shape lets a policy or a test pass on
# the plan that the real provider's values would fail.
A, R = r"\d{12}", r"[a-z]{2}-[a-z]+-\d"
N = r"[A-Za-z0-9_.\-]+"
HEX17 = r"[0-9a-f]{17}"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
IAM_ROLE_ARN = rf"arn:aws:iam::{A}:role/{N}"
SHAPES: dict[str, tuple[str, str | None]] = {  # every AWS type the shipped stacks declare
    # token: (id, computed arn or None when the type has none)
    "aws:appautoscaling/policy:Policy": (
        N,
        rf"arn:aws:autoscaling:{R}:{A}:scalingPolicy:{UUID}:resource/.+:policyName/{N}",
    ),
    "aws:appautoscaling/target:Target": (
        r"endpoint/[^/]+/variant/[^/]+",
        rf"arn:aws:application-autoscaling:{R}:{A}:scalable-target/[0-9a-z]{{36}}",
    ),
    "aws:athena/workgroup:Workgroup": (N, rf"arn:aws:athena:{R}:{A}:workgroup/{N}"),
    "aws:cloudtrail/trail:Trail": (
        rf"arn:aws:cloudtrail:{R}:{A}:trail/{N}",
        rf"arn:aws:cloudtrail:{R}:{A}:trail/{N}",
    ),
    "aws:cloudwatch/dashboard:Dashboard": (N, None),
    "aws:cloudwatch/eventRule:EventRule": (N, rf"arn:aws:events:{R}:{A}:rule/{N}"),
    "aws:cloudwatch/eventTarget:EventTarget": (rf"{N}-{N}", None),
    "aws:cloudwatch/logGroup:LogGroup": (
        r"[A-Za-z0-9_.\-/#]+",
        rf"arn:aws:logs:{R}:{A}:log-group:[A-Za-z0-9_.\-/#]+",
    ),
    "aws:cloudwatch/logStream:LogStream": (
        N,
        rf"arn:aws:logs:{R}:{A}:log-group:[^:]+:log-stream:{N}",
    ),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": (N, None),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (N, rf"arn:aws:cloudwatch:{R}:{A}:alarm:{N}"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": (
        rf"sg-{HEX17}",
        rf"arn:aws:ec2:{R}:{A}:security-group/sg-{HEX17}",
    ),
    "aws:ec2/flowLog:FlowLog": (rf"fl-{HEX17}", rf"arn:aws:ec2:{R}:{A}:vpc-flow-log/fl-{HEX17}"),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        rf"lt-{HEX17}",
        rf"arn:aws:ec2:{R}:{A}:launch-template/lt-{HEX17}",
    ),
    "aws:ec2/routeTable:RouteTable": (
        rf"rtb-{HEX17}",
        rf"arn:aws:ec2:{R}:{A}:route-table/rtb-{HEX17}",
    ),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (rf"rtbassoc-{HEX17}", None),
    "aws:ec2/securityGroup:SecurityGroup": (
        rf"sg-{HEX17}",
        rf"arn:aws:ec2:{R}:{A}:security-group/sg-{HEX17}",
    ),
    "aws:ec2/subnet:Subnet": (rf"subnet-{HEX17}", rf"arn:aws:ec2:{R}:{A}:subnet/subnet-{HEX17}"),
    "aws:ec2/vpc:Vpc": (rf"vpc-{HEX17}", rf"arn:aws:ec2:{R}:{A}:vpc/vpc-{HEX17}"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (
        rf"vpce-{HEX17}",
        rf"arn:aws:ec2:{R}:{A}:vpc-endpoint/vpce-{HEX17}",
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": (N, None),
    "aws:ecr/pullThroughCacheRule:PullThroughCacheRule": (r"[a-z0-9._\-/]+", None),
    "aws:ecr/repository:Repository": (N, rf"arn:aws:ecr:{R}:{A}:repository/{N}"),
    "aws:eks/accessEntry:AccessEntry": (rf"{N}:{IAM_ROLE_ARN}", None),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": (
        rf"{N}#{IAM_ROLE_ARN}#arn:aws:eks::aws:cluster-access-policy/{N}",
        None,
    ),
    "aws:eks/addon:Addon": (rf"{N}:{N}", rf"arn:aws:eks:{R}:{A}:addon/{N}/{N}/{UUID}"),
    "aws:eks/cluster:Cluster": (N, rf"arn:aws:eks:{R}:{A}:cluster/{N}"),
    "aws:eks/nodeGroup:NodeGroup": (rf"{N}:{N}", rf"arn:aws:eks:{R}:{A}:nodegroup/{N}/{N}/{UUID}"),
    "aws:glue/catalogDatabase:CatalogDatabase": (
        rf"{A}:{N}",
        rf"arn:aws:glue:{R}:{A}:database/{N}",
    ),
    "aws:glue/catalogTable:CatalogTable": (rf"{A}:{N}:{N}", rf"arn:aws:glue:{R}:{A}:table/{N}/{N}"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": (
        rf"arn:aws:iam::{A}:oidc-provider/.+",
        rf"arn:aws:iam::{A}:oidc-provider/.+",
    ),
    "aws:iam/policy:Policy": (rf"arn:aws:iam::{A}:policy/{N}", rf"arn:aws:iam::{A}:policy/{N}"),
    "aws:iam/role:Role": (N, IAM_ROLE_ARN),
    "aws:iam/rolePolicy:RolePolicy": (rf"{N}:{N}", None),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (rf"{N}-\d+", None),
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": (
        rf"arn:aws:firehose:{R}:{A}:deliverystream/{N}",
        rf"arn:aws:firehose:{R}:{A}:deliverystream/{N}",
    ),
    "aws:kms/alias:Alias": (
        r"alias/[A-Za-z0-9/_\-]+",
        rf"arn:aws:kms:{R}:{A}:alias/[A-Za-z0-9/_\-]+",
    ),
    "aws:kms/grant:Grant": (rf"{UUID}:[0-9a-f]{{64}}", None),
    "aws:kms/key:Key": (UUID, rf"arn:aws:kms:{R}:{A}:key/{UUID}"),
    "aws:lambda/function:Function": (N, rf"arn:aws:lambda:{R}:{A}:function:{N}"),
    "aws:lambda/invocation:Invocation": (rf"{N}_\$LATEST_[0-9a-f]{{32}}", None),
    "aws:s3/bucket:Bucket": (r"[a-z0-9.\-]+", r"arn:aws:s3:::[a-z0-9.\-]+"),
    "aws:sagemaker/endpoint:Endpoint": (N, rf"arn:aws:sagemaker:{R}:{A}:endpoint/{N}"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        N,
        rf"arn:aws:sagemaker:{R}:{A}:endpoint-config/{N}",
    ),
    "aws:sagemaker/model:Model": (N, rf"arn:aws:sagemaker:{R}:{A}:model/{N}"),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": (
        N,
        rf"arn:aws:sagemaker:{R}:{A}:model-package-group/{N}",
    ),
    "aws:sagemaker/pipeline:Pipeline": (N, rf"arn:aws:sagemaker:{R}:{A}:pipeline/[a-z0-9\-]+"),
    "aws:sfn/stateMachine:StateMachine": (
        rf"arn:aws:states:{R}:{A}:stateMachine:{N}",
        rf"arn:aws:states:{R}:{A}:stateMachine:{N}",
    ),
    "aws:sns/topic:Topic": (rf"arn:aws:sns:{R}:{A}:{N}", rf"arn:aws:sns:{R}:{A}:{N}"),
    "aws:sns/topicPolicy:TopicPolicy": (rf"arn:aws:sns:{R}:{A}:{N}", None),
    "aws:sns/topicSubscription:TopicSubscription": (
        rf"arn:aws:sns:{R}:{A}:{N}:{UUID}",
        rf"arn:aws:sns:{R}:{A}:{N}:{UUID}",
    ),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        rf"sgr-{HEX17}",
        rf"arn:aws:ec2:{R}:{A}:security-group-rule/sgr-{HEX17}",
    ),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        rf"sgr-{HEX17}",
        rf"arn:aws:ec2:{R}:{A}:security-group-rule/sgr-{HEX17}",
    ),
}
S3_BUCKET_SUBRESOURCE = "aws:s3/bucket"  # BucketPolicy, BucketVersioning, ...: id is the bucket


def _shape(token: str) -> tuple[str, str | None] | None:
    if token in SHAPES:
        return SHAPES[token]
    if token.startswith(S3_BUCKET_SUBRESOURCE):
        return SHAPES["aws:s3/bucket:Bucket"][0], None
    return None


def _pulumi_aws_class(token: str) -> tuple[type, type]:
    import importlib

    module, kind = token.split(":")[1].split("/")[0], token.split(":")[2]
    try:
        mod = importlib.import_module(f"pulumi_aws.{module}")
    except ImportError:  # keywords: `lambda` is `pulumi_aws.lambda_`
        mod = importlib.import_module(f"pulumi_aws.{module}_")
    return getattr(mod, kind), getattr(mod, f"{kind}Args")


def test_fakes_answer_the_ids_and_arns_aws_documents(shipped_plans) -> None:
    import re

    wrong: list[str] = []
    for plan in shipped_plans.values():
        for r in plan.resources:
            if not (r.custom and r.type.startswith("aws:")):
                continue
            shape = _shape(r.type)
            assert shape is not None, f"{r.type}: no documented id/ARN shape in this test"
            id_shape, arn_shape = shape
            if not re.fullmatch(id_shape, r.id):
                wrong.append(f"{r.type} id {r.id!r}")
            arn = r.state.get("arn") if "arn" not in r.inputs else None
            if arn_shape is None and arn is not None:
                wrong.append(f"{r.type} answers an arn it does not have: {arn!r}")
            if arn_shape is not None and not (
                isinstance(arn, str) and re.fullmatch(arn_shape, arn)
            ):
                wrong.append(f"{r.type} arn {arn!r}")
    assert sorted(set(wrong)) == []


def test_a_fake_answers_an_arn_exactly_when_the_provider_computes_one(shipped_plans) -> None:
    import inspect

    tokens = set().union(*(aws_types(p) for p in shipped_plans.values()))
    for token in sorted(tokens):
        cls, args = _pulumi_aws_class(token)
        computed = isinstance(getattr(cls, "arn", None), property)
        an_input = "arn" in inspect.signature(args.__init__).parameters
        shape = _shape(token)
        assert shape is not None, token
        if an_input:
            continue  # optional input the provider fills in when unset (firehose) or a reference
        assert (shape[1] is not None) == computed, token


def test_the_shapes_table_lists_only_types_the_shipped_stacks_declare(shipped_plans) -> None:
    declared = set().union(*(aws_types(p) for p in shipped_plans.values()))
    assert set(SHAPES) <= declared
