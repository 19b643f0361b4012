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
    assert not_emulated_reason("aws:sagemaker/pipeline:Pipeline") == NO_REALIZER
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
    assert REGISTRY.fake_for("aws:sagemaker/pipeline:Pipeline") is generic_fake
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
