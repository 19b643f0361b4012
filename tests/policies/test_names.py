"""aws-names-within-limits: names fit AWS, auto-named ones as pulumi-aws generates them."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from policies.core import evaluate_plan, from_plan
from policies.names import RULES, AutonameError, provider_autoname, refusal
from policies.rules import BY_NAME
from tests.conftest import make_settings
from tests.policies.helpers import res, skipped, violations

POLICY = "aws-names-within-limits"
ROLE = "aws:iam/role:Role"
BUCKET = "aws:s3/bucket:Bucket"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TRUST = '{"Version": "2012-10-17", "Statement": []}'


# --- the table ------------------------------------------------------------------------------------


def sdk_class(token: str) -> Any:
    """`aws:s3/bucket:Bucket` -> `pulumi_aws.s3.Bucket`."""
    module = token.split(":")[1].split("/")[0]
    package = importlib.import_module(
        f"pulumi_aws.{module}_" if module == "lambda" else f"pulumi_aws.{module}"
    )
    return getattr(package, token.rsplit(":", 1)[1])


def snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def test_every_rule_is_well_formed() -> None:
    for token, rule in RULES.items():
        re.compile(rule.pattern)
        assert re.fullmatch(r"\[.+\]", rule.chars), token
        assert rule.reference.startswith("https://docs.aws.amazon.com/"), token
        assert 1 <= rule.min_len <= rule.max_len, token
        assert rule.allowed, token
        if rule.autoname is not None:
            assert rule.autoname.source, token


@pytest.mark.parametrize("token", sorted(RULES))
def test_the_table_agrees_with_the_installed_sdk(token: str) -> None:
    """The token exists, the property is an input, and what the provider auto-names is optional
    (a Terraform-required name the provider auto-names becomes optional in the SDK)."""
    rule = RULES[token]
    init = sdk_class(token)._internal_init
    source = inspect.getsource(init)
    assert f"'{token}'" in source
    prop = snake(rule.prop)
    assert prop in inspect.signature(init).parameters
    required = f"if {prop} is None and not opts.urn" in source
    assert required == ("required input" in rule.note)
    if rule.autoname is not None:
        assert not required


@pytest.mark.parametrize("token", sorted(t for t, r in RULES.items() if r.autoname is not None))
def test_a_short_logical_name_auto_names_into_a_valid_name(token: str) -> None:
    name = provider_autoname(token, "svc", {}, seed=f"{token}::svc")
    assert name is not None
    prop = RULES[token].prop
    assert violations(POLICY, [res(token, "svc", {prop: name})]) == []


def test_the_provider_refusal_is_its_own_message() -> None:
    with pytest.raises(AutonameError) as info:
        provider_autoname(TARGET_GROUP, "t" * 25, {}, seed="x")
    assert str(info.value) == (
        f"could not make instance of '{TARGET_GROUP}': name '{'t' * 25}-' plus 7 random chars "
        "is longer than maximum length 32"
    )
    assert str(info.value) == refusal(TARGET_GROUP, "t" * 25 + "-", 7, 32)


def test_only_what_the_provider_auto_names_gets_a_name() -> None:
    assert provider_autoname(ROLE, "exec", {"name": "set"}, seed="x") is None
    assert provider_autoname(ROLE, "exec", {"namePrefix": "exec-"}, seed="x") is None
    dashboard = "aws:cloudwatch/dashboard:Dashboard"
    assert provider_autoname(dashboard, "board", {}, seed="x") is None
    assert provider_autoname("aws:ec2/vpc:Vpc", "vpc", {}, seed="x") is None
    assert provider_autoname(ROLE, "exec", {}, seed="x") == provider_autoname(
        ROLE, "exec", {}, seed="x"
    )


# --- one passing and one failing case per kind of limit ------------------------------------------

CASES: dict[str, tuple[Callable[[], list[Any]], Callable[[], list[Any]], str]] = {
    "explicit name too long": (
        lambda: [res(ROLE, "exec", {"name": "r" * 64})],
        lambda: [res(ROLE, "exec", {"name": "r" * 65})],
        f"{ROLE} 'exec': name '{'r' * 65}' is 65 characters; AWS allows at most 64 "
        "(https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html)",
    ),
    "explicit name too short": (
        lambda: [res(BUCKET, "lake", {"bucket": "abc"})],
        lambda: [res(BUCKET, "lake", {"bucket": "ab"})],
        "bucket 'ab' is 2 characters; AWS requires at least 3",
    ),
    "logical name too long for the provider's autonaming": (
        lambda: [res(TARGET_GROUP, "t" * 24, {"port": 80})],
        lambda: [res(TARGET_GROUP, "t" * 25, {"port": 80})],
        f"{TARGET_GROUP} '{'t' * 25}': name is left to autonaming and pulumi-aws fails preview: "
        f"could not make instance of '{TARGET_GROUP}': name '{'t' * 25}-' plus 7 random chars "
        "is longer than maximum length 32 (the generated name would be 33 characters, "
        "limit 32)",
    ),
    "characters AWS does not allow": (
        lambda: [res(BUCKET, "lake", {"bucket": "data-lake.raw"})],
        lambda: [res(BUCKET, "lake", {"bucket": "Data_Lake"})],
        "bucket 'Data_Lake' is 9 characters (limit 63) and has characters AWS does not allow: "
        "'D', 'L', '_'; allowed: lower-case letters, digits, '.' and '-'",
    ),
    "allowed characters in a form AWS refuses": (
        lambda: [res(ENDPOINT, "serving", {"name": "ml-platform-dev"})],
        lambda: [res(ENDPOINT, "serving", {"name": "-ml-platform-dev"})],
        "name '-ml-platform-dev' is 16 characters (limit 63) and is not of the form AWS requires",
    ),
    "prefix leaves no room for the upstream provider's unique suffix": (
        lambda: [res(LOAD_BALANCER, "api", {"namePrefix": "p" * 6})],
        lambda: [res(LOAD_BALANCER, "api", {"namePrefix": "p" * 7})],
        "namePrefix 'ppppppp' is 7 characters and the upstream provider appends 26 "
        "(id.PrefixedUniqueId): the name would be 33 characters; AWS allows at most 32",
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_policy_passes_and_fails(kind: str) -> None:
    good, bad, fragment = CASES[kind]
    assert violations(POLICY, good()) == []
    assert skipped(POLICY, good()) == []
    found = violations(POLICY, bad())
    assert len(found) == 1, found
    assert fragment in found[0]


def test_every_message_names_the_resource_property_name_length_and_limit() -> None:
    for kind, (_, bad, _) in CASES.items():
        (message,) = violations(POLICY, bad())
        assert re.search(r"aws:\S+ '[^']+'", message), kind
        assert re.search(r"\d+ characters", message), kind
        assert "https://docs.aws.amazon.com/" in message, kind


def test_unknown_names_are_skipped_and_other_types_ignored() -> None:
    unknown = res(ROLE, "exec", {"name": {"unknown": True}})
    assert violations(POLICY, [unknown]) == []
    assert skipped(POLICY, [unknown]) == [f"skipped {ROLE} 'exec': .name is unknown during preview"]
    assert violations(POLICY, [res("aws:ec2/vpc:Vpc", "a" * 300, {})]) == []


def test_registered_mandatory_and_high() -> None:
    spec = BY_NAME[POLICY]
    assert (spec.enforcement, spec.severity, spec.kind) == ("mandatory", "high", "resource")
    assert set(spec.types) == set(RULES)


# --- over recorded plans ----------------------------------------------------------------------


def names_report(plan_resources: list[dict[str, Any]], environment: str = "dev") -> list[str]:
    report = evaluate_plan(plan_resources, {"environment": environment}, [BY_NAME[POLICY]])
    assert report.skipped == ()
    return [v.message for v in report.violations]


def test_the_plan_shows_policies_the_generated_name(record) -> None:
    """pulumi-aws auto-names a load balancer up to 255 characters, but AWS takes 32."""

    def program() -> None:
        aws.lb.LoadBalancer("public-inference-balancer", internal=False)
        aws.lb.LoadBalancer("api", internal=False)

    plan = record(program)
    balancer = plan.named("public-inference-balancer")
    generated = balancer.autonamed["name"]
    assert "name" not in balancer.inputs
    assert from_plan(balancer.to_json()).props["name"] == generated
    assert names_report([r.to_json() for r in plan.resources]) == [
        f"{LOAD_BALANCER} 'public-inference-balancer': name '{generated}' is 33 characters; "
        "AWS allows at most 32 (auto-named from the logical name 'public-inference-balancer': "
        "shorten it or set name) (https://docs.aws.amazon.com/elasticloadbalancing/latest/"
        "APIReference/API_CreateLoadBalancer.html)"
    ]


def test_a_fifo_suffix_can_push_a_generated_name_over_the_aws_limit(record) -> None:
    def program() -> None:
        aws.sqs.Queue("q" * 72, fifo_queue=True)  # the provider's 80 holds; ".fifo" follows

    plan = record(program)
    (message,) = names_report([r.to_json() for r in plan.resources])
    assert "is 85 characters; AWS allows at most 80" in message


def test_a_long_stack_name_fails_preview_naming_the_resource_and_the_limit(record) -> None:
    """Names derived from the stack, as a component an engineer adds would derive them."""
    stack = "-".join(["a-very-long-stack-name"] * 3)
    settings = make_settings("dev", stack=stack)  # the settings parser accepts it

    def program() -> None:
        here = pulumi.get_stack()
        aws.iam.Role(f"{here}-exec", assume_role_policy=TRUST)  # auto-named: 64 at most
        aws.sagemaker.Model("model", name=f"ml-platform-{here}-model", execution_role_arn="r")
        aws.sagemaker.Model("short", execution_role_arn="r")

    plan = record(program, settings=settings)
    found = names_report([r.to_json() for r in plan.resources])
    assert len(found) == 2, found
    role = next(m for m in found if m.startswith(ROLE))
    assert f"{ROLE} '{stack}-exec': name is left to autonaming" in role
    assert f"name '{stack}-exec-' plus 7 random chars is longer than maximum length 64" in role
    assert "the generated name would be 81 characters, limit 64" in role
    model = next(m for m in found if m.startswith("aws:sagemaker/model:Model"))
    assert f"name 'ml-platform-{stack}-model' is 86 characters; AWS allows at most 63" in model


def test_the_real_program_with_a_stack_name_aws_refuses_fails_preview(record) -> None:
    """The settings parser takes '.' in a stack name; a CloudWatch dashboard name does not."""
    plan = record(settings=make_settings("dev", stack="dev.blue"))
    assert names_report([r.to_json() for r in plan.resources]) == [
        "aws:cloudwatch/dashboard:Dashboard 'monitoring-dashboard': dashboardName "
        "'ml-platform-dev.blue' is 20 characters (limit 255) and has characters AWS does not "
        "allow: '.'; allowed: letters, digits, '-' and '_' "
        "(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html)"
    ]


def test_mlplat_preview_of_a_long_stack_name_exits_1_naming_resource_and_limit(tmp_path) -> None:
    """The real program and CLI: a stack file named so that the registry cache prefix, which
    carries the stack name, outgrows ECR's 30 characters."""
    import shutil

    from typer.testing import CliRunner

    from mlplat.cli.app import app
    from tests.conftest import ROOT

    stack = "team-experiments-gpu-west"
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(ROOT / "Pulumi.staging.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    result = CliRunner().invoke(app, ["preview", "--stack", stack, "--project-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "mandatory policies violated: aws-names-within-limits" in result.stderr
    printed = " ".join(result.stdout.split())  # the console wraps long lines
    assert (
        "aws:ecr/pullThroughCacheRule:PullThroughCacheRule 'gpu-k8s-cache': ecrRepositoryPrefix "
        f"'mlp-{stack}/k8s' is 33 characters; AWS allows at most 30"
    ) in printed


def test_every_shipped_stack_passes(shipped_plans) -> None:
    for stack, plan in shipped_plans.items():
        environment = "dev" if stack == "local" else stack
        assert names_report([r.to_json() for r in plan.resources], environment) == [], stack
        assert any(r.autonamed for r in plan.resources), stack
