"""Network paths: who talks to what, and whether the plan gives each path a route.

A private network fails quietly: a node that cannot reach ECR never pulls its image, a controller
that cannot reach the EKS API never applies anything, and every offline check is green. This stack
policy models the paths the platform depends on and fails the preview when one has no route:

* **EKS nodes** (managed node groups) reach the cluster's API (private endpoint, same VPC), the AWS
  APIs every node uses (EC2 for the VPC CNI, ECR api/dkr and S3 for image layers, STS for IRSA),
  the APIs of the controllers that run on them (the cluster autoscaler: Auto Scaling, EC2, EKS),
  and the registry of every image a Kubernetes object of the stack names. An ECR registry is
  reached through the ECR endpoints and S3; any other registry only through a NAT route.
* **Kubernetes objects applied by the Pulumi engine** (`kubernetes:*` resources) need the API
  reachable from wherever `pulumi up` runs: a cluster whose endpoint is private only cannot be
  configured that way (its objects must be applied from inside the VPC).
* **Declared callers**: a resource tagged `mlplatform.io/talks-to` (comma-separated targets:
  `eks-api:<cluster name>`, `aws:<service>`) reaches each target from its subnets; for the EKS API
  its security groups must also send HTTPS out and something must admit them on 443.
* **SageMaker models in a VPC** reach S3 (their artifacts).

A route for an AWS service is an interface endpoint with private DNS in the VPC (for S3 also a
gateway endpoint on the subnet's route table), or a NAT gateway route in the subnet's route table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.core import (
    Context,
    Finding,
    PolicySpec,
    Resource,
    UnknownValueError,
    json_document,
    listify,
    of_type,
)

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
NAT = "aws:ec2/natGateway:NatGateway"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
LAMBDA = "aws:lambda/function:Function"
INVOCATION = "aws:lambda/invocation:Invocation"
SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
TALKS_TO = "mlplatform.io/talks-to"
HTTPS = 443
INTERNET = "internet"
# What every EKS node calls: the VPC CNI (EC2), image pulls (ECR, S3), IRSA (STS).
NODE_SERVICES = ("ec2", "ecr.api", "ecr.dkr", "s3", "sts")
# AWS APIs of controllers the platform runs on its nodes, by the image's repository name.
CONTROLLER_SERVICES: Mapping[str, tuple[str, ...]] = {
    "cluster-autoscaler": ("autoscaling", "ec2", "eks"),
}
ECR_SERVICES = ("ecr.api", "ecr.dkr", "s3")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class Network:
    """The routing facts of a plan, by id."""

    subnet_vpc: dict[str, str] = field(default_factory=dict)
    subnet_table: dict[str, str] = field(default_factory=dict)
    nat_tables: set[str] = field(default_factory=set)  # route tables with a NAT default route
    interface: dict[str, set[str]] = field(default_factory=dict)  # vpc -> services (private DNS)
    gateway_tables: dict[str, set[str]] = field(default_factory=dict)  # service -> route tables

    @classmethod
    def of(cls, resources: Sequence[Resource]) -> Network:
        net = cls()
        for s in of_type(resources, SUBNET):
            if _str(s.id) and _str(s.get("vpcId")):
                net.subnet_vpc[s.id] = s.get("vpcId")
        for a in of_type(resources, ASSOCIATION):
            subnet, table = _str(a.get("subnetId")), _str(a.get("routeTableId"))
            if subnet and table:
                net.subnet_table[subnet] = table
        for t in of_type(resources, ROUTE_TABLE):
            for route in listify(t.get("routes")):
                if isinstance(route, Mapping) and _is_nat_default(route) and _str(t.id):
                    net.nat_tables.add(t.id)
        for r in of_type(resources, ROUTE):
            if _is_nat_default(r.props) and _str(r.get("routeTableId")):
                net.nat_tables.add(r.get("routeTableId"))
        for e in of_type(resources, ENDPOINT):
            service = _service_of(e.get("serviceName"))
            if service is None:
                continue
            kind = e.get("vpcEndpointType", default="Gateway")
            if kind == "Interface" and e.get("privateDnsEnabled") is True:
                net.interface.setdefault(e.get("vpcId"), set()).add(service)
            elif kind == "Gateway":
                tables = {t for t in listify(e.get("routeTableIds")) if _str(t)}
                net.gateway_tables.setdefault(service, set()).update(tables)
        return net

    def route(self, subnet: str, service: str) -> bool:
        """Whether `subnet` reaches `service` (an AWS service name, or `internet`)."""
        table = self.subnet_table.get(subnet)
        if table in self.nat_tables:
            return True
        if service == INTERNET:
            return False
        if service in self.interface.get(self.subnet_vpc.get(subnet, ""), set()):
            return True
        return table is not None and table in self.gateway_tables.get(service, set())


def _is_nat_default(route: Mapping[str, Any]) -> bool:
    return route.get("destinationCidrBlock", route.get("cidrBlock")) == "0.0.0.0/0" and bool(
        _str(route.get("natGatewayId"))
    )


def _service_of(service_name: Any) -> str | None:
    """`com.amazonaws.us-east-1.ecr.dkr` -> `ecr.dkr` (any partition prefix)."""
    name = _str(service_name)
    if name is None:
        return None
    parts = name.split(".")
    return ".".join(parts[3:]) if len(parts) > 3 else None


# --- what runs in the cluster ------------------------------------------------------------------


def kubernetes_objects(
    resources: Sequence[Resource],
) -> Iterator[tuple[Resource, Mapping[str, Any]]]:
    """Every Kubernetes object the stack applies: `kubernetes:*` resources, and the objects an
    `aws.lambda.Invocation` hands a deployer (`{"objects": [...]}`)."""
    for r in resources:
        if r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:providers"):
            yield r, r.props
        elif r.type == INVOCATION:
            payload = json_document(r.get("input"), f".input of {r.where()}")
            objects = payload.get("objects") if isinstance(payload, Mapping) else None
            for obj in listify(objects):
                if isinstance(obj, Mapping) and "kind" in obj and "apiVersion" in obj:
                    yield r, obj


def images(obj: Mapping[str, Any]) -> Iterator[str]:
    """Container images a Kubernetes object (or its pod template) names."""
    spec: Any = obj.get("spec")
    if not isinstance(spec, Mapping):
        return
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, Mapping) else spec
    if not isinstance(pod, Mapping):
        return
    for key in ("initContainers", "containers"):
        for container in listify(pod.get(key)):
            if isinstance(container, Mapping) and _str(container.get("image")):
                yield container["image"]


def registry_of(image: str) -> str:
    """The registry host of an image reference (Docker Hub when there is none)."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def is_ecr(registry: str) -> bool:
    return ".dkr.ecr." in registry and registry.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def needs_of_image(image: str) -> tuple[str, ...]:
    return ECR_SERVICES if is_ecr(registry_of(image)) else (INTERNET,)


# --- the check ----------------------------------------------------------------------------------


def _cluster_vpc(cluster: Resource, net: Network) -> set[str]:
    return {
        net.subnet_vpc[s]
        for s in listify(cluster.get("vpcConfig", "subnetIds"))
        if s in net.subnet_vpc
    }


def _missing(net: Network, subnets: Sequence[str], services: Sequence[str]) -> list[str]:
    return [svc for svc in services if not all(net.route(s, svc) for s in subnets)]


def _describe(service: str) -> str:
    return "the internet (a NAT route)" if service == INTERNET else f"the {service} API"


def _sg_rules(resources: Sequence[Resource]) -> list[tuple[str, Mapping[str, Any]]]:
    """(direction, rule) for every security group rule, standalone or inline."""
    rules: list[tuple[str, Mapping[str, Any]]] = []
    for r in of_type(resources, INGRESS_RULE):
        rules.append(("ingress", r.props))
    for r in of_type(resources, EGRESS_RULE):
        rules.append(("egress", r.props))
    for r in of_type(resources, SG_RULE):
        rule = {
            **r.props,
            "ipProtocol": r.get("protocol"),
            "referencedSecurityGroupId": r.get("sourceSecurityGroupId"),
        }
        rules.append((str(r.get("type")), rule))
    for g in of_type(resources, SECURITY_GROUP):
        for direction in ("ingress", "egress"):
            for rule in listify(g.get(direction)):
                if isinstance(rule, Mapping):
                    groups = listify(rule.get("securityGroups"))
                    rules.append(
                        (
                            direction,
                            {
                                "securityGroupId": g.id,
                                "ipProtocol": rule.get("protocol"),
                                "fromPort": rule.get("fromPort"),
                                "toPort": rule.get("toPort"),
                                "referencedSecurityGroupId": groups[0] if groups else None,
                                "cidrIpv4": (listify(rule.get("cidrBlocks")) or [None])[0],
                            },
                        )
                    )
    return rules


def _covers_https(rule: Mapping[str, Any]) -> bool:
    protocol = str(rule.get("ipProtocol"))
    if protocol in ("-1", "all"):
        return True
    low, high = rule.get("fromPort"), rule.get("toPort")
    return (
        protocol in ("tcp", "6")
        and isinstance(low, int)
        and isinstance(high, int)
        and (low <= HTTPS <= high)
    )


def _api_security_path(
    who: str, groups: Sequence[str], rules: Sequence[tuple[str, Mapping[str, Any]]]
) -> Iterator[str]:
    out = [
        r
        for d, r in rules
        if d == "egress" and r.get("securityGroupId") in groups and _covers_https(r)
    ]
    if not out:
        yield f"{who}: its security groups {list(groups)} send no HTTPS (443) out"
    admitted = [
        r
        for d, r in rules
        if d == "ingress" and r.get("referencedSecurityGroupId") in groups and _covers_https(r)
    ]
    if not admitted:
        yield (
            f"{who}: no security group rule admits its groups {list(groups)} on 443 (the "
            "cluster security group must admit it)"
        )


def _node_group_paths(
    group: Resource,
    clusters: Mapping[str, Resource],
    net: Network,
    workload_needs: Mapping[str, tuple[str, ...]],
) -> Iterator[str]:
    subnets = [s for s in listify(group.get("subnetIds")) if _str(s)]
    who = f"node group {group.name!r}"
    cluster = clusters.get(str(group.get("clusterName")))
    private = cluster is None or cluster.get("vpcConfig", "endpointPrivateAccess") is True
    if not private and _missing(net, subnets, (INTERNET,)):
        yield (
            f"{who}: no route to the EKS API: the cluster's private endpoint is off and "
            "the nodes' subnets have no NAT route to its public one"
        )
    missing = _missing(net, subnets, NODE_SERVICES)
    if missing:
        yield (
            f"{who}: no route from its subnets to {', '.join(_describe(m) for m in missing)} "
            "(every node needs EC2, ECR, S3 and STS): add the VPC endpoints or a NAT gateway"
        )
    for what, services in sorted(workload_needs.items()):
        lacking = _missing(net, subnets, services)
        if lacking:
            yield (
                f"{who}: cannot run {what}: no route from its subnets to "
                f"{', '.join(_describe(m) for m in lacking)}"
            )


def _declared_paths(
    caller: Resource,
    targets: Sequence[str],
    subnets: Sequence[str],
    groups: Sequence[str],
    clusters: Mapping[str, Resource],
    net: Network,
    rules: Sequence[tuple[str, Mapping[str, Any]]],
) -> Iterator[str]:
    who = caller.where()
    for target in targets:
        kind, _, name = target.partition(":")
        if kind == "aws":
            if not subnets:
                continue  # outside a VPC: AWS APIs are public endpoints
            lacking = _missing(net, subnets, (name,))
            if lacking:
                yield f"{who}: no route from its subnets to the {name} API"
        elif kind == "eks-api":
            cluster = clusters.get(name)
            if cluster is None:
                yield f"{who}: talks to the API of cluster {name!r}, which the stack does not have"
                continue
            private = cluster.get("vpcConfig", "endpointPrivateAccess") is True
            if not subnets:
                yield (
                    f"{who}: runs outside the VPC, so it cannot reach the private API of cluster "
                    f"{name!r}: give it the cluster's subnets"
                )
                continue
            same_vpc = {net.subnet_vpc.get(s) for s in subnets} <= _cluster_vpc(cluster, net)
            if not (private and same_vpc):
                yield (
                    f"{who}: no route to the API of cluster {name!r}: it needs the cluster's "
                    "private endpoint and subnets in the cluster's VPC"
                )
                continue
            yield from _api_security_path(who, groups, rules)
        else:
            yield f"{who}: {TALKS_TO} target {target!r} is not eks-api:<cluster> or aws:<service>"


def check_paths(resources: Sequence[Resource], _ctx: Context) -> Iterator[Finding]:
    try:
        net = Network.of(resources)
        clusters = {str(c.get("name")): c for c in of_type(resources, CLUSTER)}
        rules = _sg_rules(resources)
        objects = list(kubernetes_objects(resources))
    except UnknownValueError as exc:
        yield Finding("", f"skipped: the network is not known yet ({exc})", skipped=True)
        return

    workload_needs: dict[str, tuple[str, ...]] = {}
    for _, obj in objects:
        for image in images(obj):
            workload_needs[f"image {image}"] = needs_of_image(image)
            repository = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
            if repository in CONTROLLER_SERVICES:
                workload_needs[f"{repository} (its AWS APIs)"] = CONTROLLER_SERVICES[repository]

    engine_applied = [r for r, _ in objects if r.type.startswith("kubernetes:")]
    private_only = [
        c
        for c in clusters.values()
        if c.get("vpcConfig", "endpointPublicAccess", default=True) is False
    ]
    if engine_applied and clusters and len(private_only) == len(clusters):
        for r in engine_applied:
            yield Finding(
                r.urn,
                f"{r.where()}: applied by the Pulumi engine, which runs outside the VPC, but "
                "the cluster API is private only: apply in-cluster objects from inside the VPC "
                "(the cluster gateway)",
            )

    for group in of_type(resources, NODE_GROUP):
        try:
            for message in _node_group_paths(group, clusters, net, workload_needs):
                yield Finding(group.urn, message)
        except UnknownValueError as exc:
            yield Finding(group.urn, f"skipped {group.where()}: {exc}", skipped=True)

    for caller in resources:
        try:
            declared = caller.tags().get(TALKS_TO)
            if not _str(declared):
                continue
            vpc = caller.get("vpcConfig", default={}) or {}
            subnets = [s for s in listify(vpc.get("subnetIds")) if _str(s)]
            groups = [g for g in listify(vpc.get("securityGroupIds")) if _str(g)]
            targets = [t.strip() for t in str(declared).split(",") if t.strip()]
            for message in _declared_paths(caller, targets, subnets, groups, clusters, net, rules):
                yield Finding(caller.urn, message)
        except UnknownValueError as exc:
            yield Finding(caller.urn, f"skipped {caller.where()}: {exc}", skipped=True)

    for model in of_type(resources, SAGEMAKER_MODEL):
        try:
            subnets = [s for s in listify(model.get("vpcConfig", "subnets")) if _str(s)]
            if subnets and _missing(net, subnets, ("s3",)):
                yield Finding(
                    model.urn,
                    f"{model.where()}: runs in a VPC without a route to S3 for its model "
                    "artifacts (an S3 gateway endpoint on its subnets' route tables)",
                )
        except UnknownValueError as exc:
            yield Finding(model.urn, f"skipped {model.where()}: {exc}", skipped=True)


POLICIES = (
    PolicySpec(
        name="vpc-network-paths-reachable",
        description="Every path the platform depends on has a route: nodes to the EKS API, AWS "
        "APIs and image registries; in-cluster objects applied from where the API is reachable; "
        "declared callers to their targets.",
        enforcement="mandatory",
        severity="high",
        reference="Amazon EKS user guide: private cluster requirements (VPC endpoints, "
        "cluster endpoint access)",
        stack_check=check_paths,
    ),
)
