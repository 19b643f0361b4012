"""The private network: subnets, endpoints, flow logs and security groups, on the recorded plan."""

from __future__ import annotations

import dataclasses
import json

import pytest

from components.network import (
    EKS_INTERFACE_ENDPOINTS,
    INTERFACE_ENDPOINTS,
    Network,
    NetworkError,
    _zone,
    subnet_plan,
)

LAKE_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def one(plan, type_, name):
    (match,) = [r for r in plan.of_type(type_) if r.name == name]
    return match


def build(settings, **overrides):
    def program() -> None:
        args = settings.network.args(kms_key_arn=LAKE_KEY)
        Network("net", dataclasses.replace(args, **overrides))

    return program


@pytest.fixture(scope="module")
def prod():
    from tests.conftest import make_settings

    return make_settings("prod")


@pytest.fixture(scope="module")
def prod_plan(prod):
    # One recording for the read-only assertions (each run gets a fresh event loop and runtime).
    from mlplat.plan import engine
    from tests.conftest import make_config

    return engine.run(prod, make_config("prod"), program=build(prod))


def test_subnet_plan_is_deterministic_and_disjoint():
    plan = subnet_plan("10.40.0.0/16", 3)
    assert plan.private == ("10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19")
    assert plan.public == ("10.40.224.0/22", "10.40.228.0/22", "10.40.232.0/22")
    assert subnet_plan("10.40.0.0/16", 3) == plan
    small = subnet_plan("172.16.0.0/20", 6)
    assert small.private[-1] == "172.16.10.0/23" and small.public[0] == "172.16.14.0/26"


@pytest.mark.parametrize(
    ("cidr", "zones", "message"),
    [
        ("10.40.0.0/24", 2, "from /16 to /20"),
        ("8.8.0.0/16", 2, "private IPv4"),
        ("10.40.0.1/16", 2, "not a CIDR block"),
        ("banana", 2, "not a CIDR block"),
        ("10.40.0.0/16", 1, "az_count 1: expected 2 to 6"),
        ("10.40.0.0/16", 7, "az_count 7: expected 2 to 6"),
    ],
)
def test_subnet_plan_refuses_bad_input(cidr, zones, message):
    with pytest.raises(NetworkError, match=message):
        subnet_plan(cidr, zones)


def test_too_few_zones_in_region_is_a_clear_error():
    with pytest.raises(NetworkError, match="only 2 available zones"):
        _zone(["us-east-1a", "us-east-1b"], 2, 3)


def test_private_subnets_span_the_zones_with_derived_cidrs(prod_plan, prod):
    subnets = prod_plan.of_type("aws:ec2/subnet:Subnet")
    assert sorted(s.name for s in subnets) == ["net-private-0", "net-private-1", "net-private-2"]
    by_name = {s.name: s.inputs for s in subnets}
    expected = subnet_plan(prod.network.vpc_cidr, prod.network.az_count).private
    for i in range(3):
        inputs = by_name[f"net-private-{i}"]
        assert inputs["cidrBlock"] == expected[i]
        assert inputs["availabilityZone"] == prod.availability_zones[i]
        assert inputs["mapPublicIpOnLaunch"] is False
        assert inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
    vpc = prod_plan.named("net-vpc")
    assert vpc.inputs["cidrBlock"] == "10.40.0.0/16"
    assert vpc.inputs["enableDnsHostnames"] is True and vpc.inputs["enableDnsSupport"] is True


def test_no_public_subnets_without_nat(prod_plan):
    for type_ in (
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/route:Route",
    ):
        assert prod_plan.of_type(type_) == []


def test_nat_gateway_per_zone_when_asked(record, prod):
    plan = record(build(prod, nat_gateway=True), settings=prod)
    public = [s for s in plan.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("net-public")]
    assert sorted(s.inputs["cidrBlock"] for s in public) == list(
        subnet_plan(prod.network.vpc_cidr, 3).public
    )
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in public)
    nats = plan.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == 3 and len(plan.of_type("aws:ec2/eip:Eip")) == 3
    public_ids = {s.id for s in public}
    assert {n.inputs["subnetId"] for n in nats} == public_ids
    routes = plan.of_type("aws:ec2/route:Route")
    private_defaults = [r for r in routes if r.name.startswith("net-private-default-")]
    assert {r.inputs["natGatewayId"] for r in private_defaults} == {n.id for n in nats}
    assert plan.named("net-public-default").inputs["gatewayId"] == plan.named("net-igw").id
    # egress to the internet over HTTPS only, never ingress
    internet = plan.named("net-compute-internet-out").inputs
    assert (internet["cidrIpv4"], internet["fromPort"], internet["toPort"]) == (
        "0.0.0.0/0",
        443,
        443,
    )


def test_vpc_endpoints(prod_plan):
    endpoints = {r.name: r.inputs for r in prod_plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    services = INTERFACE_ENDPOINTS + EKS_INTERFACE_ENDPOINTS
    assert set(endpoints) == {"net-endpoint-s3"} | {
        "net-endpoint-" + s.replace(".", "-") for s in services
    }
    s3 = endpoints["net-endpoint-s3"]
    assert s3["vpcEndpointType"] == "Gateway"
    assert s3["serviceName"] == "com.amazonaws.us-east-1.s3"
    private_rts = {r.id for r in prod_plan.of_type("aws:ec2/routeTable:RouteTable")}
    assert len(private_rts) == 3 and set(s3["routeTableIds"]) == private_rts
    endpoint_sg = prod_plan.named("net-endpoint-sg").id
    private_subnets = {s.id for s in prod_plan.of_type("aws:ec2/subnet:Subnet")}
    for svc in services:
        inputs = endpoints["net-endpoint-" + svc.replace(".", "-")]
        assert inputs["serviceName"] == f"com.amazonaws.us-east-1.{svc}"
        assert inputs["vpcEndpointType"] == "Interface"
        assert inputs["privateDnsEnabled"] is True
        assert inputs["securityGroupIds"] == [endpoint_sg]
        assert set(inputs["subnetIds"]) == private_subnets


def test_endpoints_without_eks_skip_cluster_services(record, settings_for):
    dev = settings_for("dev")
    assert dev.network.eks_cluster is False
    plan = record(build(dev), settings=dev)
    names = {r.name for r in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert "net-endpoint-eks" not in names and "net-endpoint-ecr-dkr" in names
    assert len(names) == 1 + len(INTERFACE_ENDPOINTS)
    assert all(
        "kubernetes.io/role/internal-elb" not in s.inputs["tags"]
        for s in plan.of_type("aws:ec2/subnet:Subnet")
    )


def test_security_groups_allow_only_what_is_needed(prod_plan):
    ingress = prod_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    egress = prod_plan.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert all(r.inputs.get("cidrIpv4") != "0.0.0.0/0" for r in ingress)
    endpoint_sg, compute_sg = prod_plan.named("net-endpoint-sg"), prod_plan.named("net-compute-sg")
    https_in = prod_plan.named("net-endpoint-https-in").inputs
    assert https_in == {
        **https_in,
        "securityGroupId": endpoint_sg.id,
        "ipProtocol": "tcp",
        "fromPort": 443,
        "toPort": 443,
        "cidrIpv4": "10.40.0.0/16",
    }
    assert sorted(r.name for r in ingress) == ["net-compute-self-in", "net-endpoint-https-in"]
    assert (
        prod_plan.named("net-compute-self-in").inputs["referencedSecurityGroupId"] == compute_sg.id
    )
    assert sorted(r.name for r in egress) == [
        "net-compute-endpoints-out",
        "net-compute-s3-out",
        "net-compute-self-out",
    ]
    assert all(r.inputs["securityGroupId"] == compute_sg.id for r in egress)
    # no inline rules anywhere; the default group is emptied
    for sg in (endpoint_sg, compute_sg):
        assert "ingress" not in sg.inputs and "egress" not in sg.inputs
    default = prod_plan.named("net-default-sg").inputs
    assert default["ingress"] == [] and default["egress"] == []
    assert default["vpcId"] == prod_plan.named("net-vpc").id


def test_flow_logs_encrypted_retained_and_scoped(prod_plan, prod):
    (group,) = prod_plan.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert group.name == "net-flow-logs"
    assert group.inputs["retentionInDays"] == prod.network.log_retention_days == 365
    assert group.inputs["kmsKeyId"] == LAKE_KEY
    assert group.options["protect"] is True
    flow = prod_plan.named("net-flow-log").inputs
    assert flow["trafficType"] == "ALL"
    assert flow["logDestinationType"] == "cloud-watch-logs"
    assert flow["logDestination"] == group.state["arn"]
    assert flow["vpcId"] == prod_plan.named("net-vpc").id
    role = one(prod_plan, "aws:iam/role:Role", "net-flow-logs")
    assert flow["iamRoleArn"] == role.state["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    role_policy = one(prod_plan, "aws:iam/rolePolicy:RolePolicy", "net-flow-logs")
    assert role_policy.inputs["role"] == role.id
    policy = json.loads(role_policy.inputs["policy"])
    (statement,) = policy["Statement"]
    arn = group.state["arn"]
    assert statement["Resource"] == [arn, f"{arn}:*"]
    assert statement["Action"] == [
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]


def test_every_taggable_resource_carries_the_stack_tags(prod_plan, prod):
    tagged = [r for r in prod_plan.resources if r.custom and "tags" in r.inputs]
    assert len(tagged) >= 20
    for r in tagged:
        assert r.inputs["tags"].items() >= prod.tags.items(), r.name
    untagged_taggable = [
        r.name
        for r in prod_plan.resources
        if r.custom
        and "tags" not in r.inputs
        and r.type.split("/")[-1].split(":")[-1]
        in {
            "Vpc",
            "Subnet",
            "RouteTable",
            "VpcEndpoint",
            "SecurityGroup",
            "LogGroup",
            "Role",
            "FlowLog",
            "NatGateway",
            "Eip",
            "InternetGateway",
        }
    ]
    assert untagged_taggable == []


def test_logical_names_stay_put(prod_plan):
    # Renaming replaces: these names are API.
    for type_, name in (
        ("aws:ec2/vpc:Vpc", "net-vpc"),
        ("aws:ec2/subnet:Subnet", "net-private-0"),
        ("aws:ec2/routeTable:RouteTable", "net-private-rt-0"),
        ("aws:ec2/vpcEndpoint:VpcEndpoint", "net-endpoint-s3"),
        ("aws:ec2/securityGroup:SecurityGroup", "net-compute-sg"),
        ("aws:ec2/securityGroup:SecurityGroup", "net-endpoint-sg"),
        ("aws:ec2/flowLog:FlowLog", "net-flow-log"),
        ("aws:cloudwatch/logGroup:LogGroup", "net-flow-logs"),
        ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "net-default-sg"),
    ):
        one(prod_plan, type_, name)
