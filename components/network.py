"""The private network: a VPC where training and serving run without the internet.

* Private subnets for compute, one per zone (`az_count` zones, names from
  `aws.get_availability_zones_output`). Public subnets exist only when `nat_gateway` is on, to hold
  one NAT gateway per zone; nothing else is ever placed in them.
* VPC endpoints replace the internet for AWS APIs: an S3 gateway endpoint on every private route
  table, and interface endpoints with private DNS for ECR (api, dkr), STS, SageMaker (api, runtime)
  and CloudWatch (logs, monitoring); with `eks_cluster` also EC2, Auto Scaling and EKS, which the
  nodes and the cluster autoscaler call.
* Flow logs of all traffic to a KMS-encrypted log group with a retention; the delivery role may
  write to that log group only.
* Security groups allow only what is needed: the endpoint group takes HTTPS from the VPC CIDR; the
  compute group (SageMaker training jobs, EKS nodes) talks to itself (distributed training,
  node-to-node) and sends HTTPS to the VPC (endpoints) and the S3 prefix list (and to the internet
  only when a NAT exists). No rule admits `0.0.0.0/0`; the default security group is managed to
  hold no rules at all.

Subnet CIDRs are a pure function of the VPC CIDR (`subnet_plan`), so they never move between runs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import Statement, assume_role_policy, policy_document

# Interface endpoints every stack gets (SageMaker training and serving, image pulls, logs, metrics).
INTERFACE_ENDPOINTS: tuple[str, ...] = (
    "ecr.api",
    "ecr.dkr",
    "sts",
    "sagemaker.api",
    "sagemaker.runtime",
    "logs",
    "monitoring",
)
# What EKS nodes and the cluster autoscaler call besides the above.
EKS_INTERFACE_ENDPOINTS: tuple[str, ...] = ("ec2", "autoscaling", "eks")
HTTPS = 443
MIN_ZONES, MAX_ZONES = 2, 6


class NetworkError(ValueError):
    """The network's arguments cannot make a valid VPC."""


@dataclass(frozen=True, slots=True)
class SubnetPlan:
    private: tuple[str, ...]
    public: tuple[str, ...]


def subnet_plan(vpc_cidr: str, az_count: int) -> SubnetPlan:
    """Deterministic subnet CIDRs: private subnets are the first `az_count` eighths of the VPC;
    the (small) public subnets are carved from the last eighth.

    A /16 gives /19 private subnets (8,190 addresses each: EKS pods take VPC addresses) and /22
    public ones.
    """
    try:
        net = ipaddress.ip_network(vpc_cidr, strict=True)
    except ValueError as exc:
        raise NetworkError(f"vpc_cidr {vpc_cidr!r} is not a CIDR block: {exc}") from exc
    if net.version != 4 or not 16 <= net.prefixlen <= 20 or not net.is_private:
        raise NetworkError(
            f"vpc_cidr {vpc_cidr!r}: expected a private IPv4 CIDR from /16 to /20, "
            "e.g. 10.40.0.0/16"
        )
    if not MIN_ZONES <= az_count <= MAX_ZONES:
        raise NetworkError(f"az_count {az_count}: expected {MIN_ZONES} to {MAX_ZONES} zones")
    eighths = list(net.subnets(new_prefix=net.prefixlen + 3))
    public = list(eighths[-1].subnets(new_prefix=net.prefixlen + 6))
    return SubnetPlan(
        private=tuple(str(b) for b in eighths[:az_count]),
        public=tuple(str(b) for b in public[:az_count]),
    )


def _zone(names: Sequence[str], index: int, wanted: int) -> str:
    if len(names) < wanted:
        raise NetworkError(
            f"az_count {wanted}: the region has only {len(names)} available zones "
            f"({', '.join(names)})"
        )
    return names[index]


@dataclass(frozen=True, slots=True)
class NetworkArgs:
    kms_key_arn: pulumi.Input[str]  # the lake key: encrypts the flow-log group
    vpc_cidr: str = "10.40.0.0/16"
    az_count: int = 2
    nat_gateway: bool = False
    log_retention_days: int = 30
    eks_cluster: bool = False  # subnets tagged for internal load balancers; EKS endpoints
    tags: Mapping[str, str] | None = None
    protect: bool = False  # the flow-log group (audit data)


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    compute_security_group_id: pulumi.Output[str]
    endpoint_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:network:Network", name, None, opts)
        plan = subnet_plan(args.vpc_cidr, args.az_count)
        tags = dict(args.tags or {})
        child = pulumi.ResourceOptions(parent=self)

        def named(role: str) -> dict[str, str]:
            return {**tags, "Name": f"{name}-{role}"}

        partition = aws.get_partition_output()
        region = aws.get_region_output()
        account = aws.get_caller_identity_output()
        zones = aws.get_availability_zones_output(state="available")

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # private DNS of interface endpoints needs both
            tags=named("vpc"),
            opts=child,
        )
        # The default security group is managed so that it holds no rules: nothing can use it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=named("default-sg"),
            opts=child,
        )

        def zone_at(index: int) -> pulumi.Output[str]:
            return zones.names.apply(lambda names: _zone(names, index, args.az_count))

        zone_names = [zone_at(i) for i in range(args.az_count)]
        subnet_tags = {"kubernetes.io/role/internal-elb": "1"} if args.eks_cluster else {}
        private_subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone_names[i],
                map_public_ip_on_launch=False,
                tags={**named(f"private-{i}"), "tier": "private", **subnet_tags},
                opts=child,
            )
            for i, cidr in enumerate(plan.private)
        ]

        nat_ids: list[pulumi.Output[str]] = []
        if args.nat_gateway:
            igw = aws.ec2.InternetGateway(
                f"{name}-igw", vpc_id=vpc.id, tags=named("igw"), opts=child
            )
            public_rt = aws.ec2.RouteTable(
                f"{name}-public-rt", vpc_id=vpc.id, tags=named("public-rt"), opts=child
            )
            aws.ec2.Route(
                f"{name}-public-default",
                route_table_id=public_rt.id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=igw.id,
                opts=child,
            )
            for i, cidr in enumerate(plan.public):
                public = aws.ec2.Subnet(
                    f"{name}-public-{i}",
                    vpc_id=vpc.id,
                    cidr_block=cidr,
                    availability_zone=zone_names[i],
                    map_public_ip_on_launch=False,  # only the NAT's Elastic IP is public
                    tags={**named(f"public-{i}"), "tier": "public"},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(
                    f"{name}-public-{i}",
                    subnet_id=public.id,
                    route_table_id=public_rt.id,
                    opts=child,
                )
                eip = aws.ec2.Eip(
                    f"{name}-nat-{i}", domain="vpc", tags=named(f"nat-{i}"), opts=child
                )
                nat = aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    subnet_id=public.id,
                    allocation_id=eip.id,
                    connectivity_type="public",
                    tags=named(f"nat-{i}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
                nat_ids.append(nat.id)

        private_rts = []
        for i, subnet in enumerate(private_subnets):
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}", vpc_id=vpc.id, tags=named(f"private-rt-{i}"), opts=child
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=rt.id, opts=child
            )
            if nat_ids:
                aws.ec2.Route(
                    f"{name}-private-default-{i}",
                    route_table_id=rt.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat_ids[i],
                    opts=child,
                )
            private_rts.append(rt)

        def service(svc: str) -> pulumi.Output[str]:
            # com.amazonaws.<region>.<service> (the partition's reverse DNS prefix: cn., gov...)
            return pulumi.Output.concat(partition.reverse_dns_prefix, ".", region.region, ".", svc)

        s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-endpoint-s3",
            vpc_id=vpc.id,
            service_name=service("s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            tags=named("endpoint-s3"),
            opts=child,
        )

        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoint-sg",
            vpc_id=vpc.id,
            description="VPC interface endpoints: HTTPS from inside the VPC only",
            tags=named("endpoint-sg"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoint-https-in",
            security_group_id=endpoint_sg.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            cidr_ipv4=args.vpc_cidr,
            description="HTTPS from the VPC",
            tags=tags,
            opts=child,
        )

        compute_sg = aws.ec2.SecurityGroup(
            f"{name}-compute-sg",
            vpc_id=vpc.id,
            description="Training jobs and EKS nodes: each other, the endpoints, S3",
            tags=named("compute-sg"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-compute-self-in",
            security_group_id=compute_sg.id,
            ip_protocol="-1",
            referenced_security_group_id=compute_sg.id,
            description="Distributed training and node-to-node traffic inside the group",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-compute-self-out",
            security_group_id=compute_sg.id,
            ip_protocol="-1",
            referenced_security_group_id=compute_sg.id,
            description="Distributed training and node-to-node traffic inside the group",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-compute-endpoints-out",
            security_group_id=compute_sg.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            cidr_ipv4=args.vpc_cidr,
            description="HTTPS to the VPC interface endpoints",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-compute-s3-out",
            security_group_id=compute_sg.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            prefix_list_id=s3_endpoint.prefix_list_id,
            description="HTTPS to S3 through the gateway endpoint",
            tags=tags,
            opts=child,
        )
        if args.nat_gateway:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-compute-internet-out",
                security_group_id=compute_sg.id,
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                cidr_ipv4="0.0.0.0/0",
                description="HTTPS to the internet through the NAT gateways",
                tags=tags,
                opts=child,
            )

        services = INTERFACE_ENDPOINTS + (EKS_INTERFACE_ENDPOINTS if args.eks_cluster else ())
        for svc in services:
            role = "endpoint-" + svc.replace(".", "-")
            aws.ec2.VpcEndpoint(
                f"{name}-{role}",
                vpc_id=vpc.id,
                service_name=service(svc),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in private_subnets],
                security_group_ids=[endpoint_sg.id],
                tags=named(role),
                opts=child,
            )

        # Flow logs: every accepted and rejected flow, encrypted, kept `log_retention_days`.
        flow_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=named("flow-logs"),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        flow_role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=assume_role_policy(
                "vpc-flow-logs.amazonaws.com", source_account=account.account_id
            ),
            description="VPC flow logs delivery to its own log group",
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=flow_role.id,
            policy=policy_document(
                [
                    Statement(
                        actions=[
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogStreams",
                        ],
                        # the group and its streams (`<group arn>:*` is the streams' ARN form)
                        resources=[flow_group.arn, pulumi.Output.concat(flow_group.arn, ":*")],
                        sid="WriteFlowLogGroup",
                    )
                ]
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=flow_group.arn,
            iam_role_arn=flow_role.arn,
            max_aggregation_interval=60,
            tags=named("flow-log"),
            opts=child,
        )

        self.vpc_id = vpc.id
        self.vpc_cidr = args.vpc_cidr
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.compute_security_group_id = compute_sg.id
        self.endpoint_security_group_id = endpoint_sg.id
        self.flow_log_group_name = flow_group.name
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "compute_security_group_id": self.compute_security_group_id,
                "endpoint_security_group_id": self.endpoint_security_group_id,
            }
        )
