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

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import Statement, assume_role_policy, policy_document
from components.problems import MAX_ZONES, MIN_ZONES, vpc_cidr_problems

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
        ipaddress.ip_network(vpc_cidr, strict=True)
    except ValueError as exc:
        raise NetworkError(f"vpc_cidr {vpc_cidr!r} is not a CIDR block: {exc}") from exc
    problems = vpc_cidr_problems(vpc_cidr)
    if not MIN_ZONES <= az_count <= MAX_ZONES:
        problems.append(f"az_count {az_count}: expected {MIN_ZONES} to {MAX_ZONES} zones")
    if problems:
        raise NetworkError("; ".join(problems))
    net = ipaddress.IPv4Network(vpc_cidr)  # the rule above holds it to IPv4
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
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        plan = subnet_plan(args.vpc_cidr, args.az_count)
        self._name = name
        self._tags = dict(args.tags or {})
        self._partition = aws.get_partition_output()
        self._region = aws.get_region_output()
        account = aws.get_caller_identity_output()
        zones = aws.get_availability_zones_output(state="available")
        zone_names = [
            zones.names.apply(functools.partial(_zone, index=i, wanted=args.az_count))
            for i in range(args.az_count)
        ]
        vpc = self._vpc(args)
        private_subnets = self._private_subnets(args, vpc, plan, zone_names)
        nat_ids = self._nat_gateways(vpc, plan, zone_names) if args.nat_gateway else []
        private_rts = self._private_routes(vpc, private_subnets, nat_ids)
        s3_endpoint = self._s3_endpoint(vpc, private_rts)
        endpoint_sg = self._endpoint_security_group(args, vpc)
        compute_sg = self._compute_security_group(args, vpc, s3_endpoint)
        self._interface_endpoints(args, vpc, private_subnets, endpoint_sg)
        flow_group = self._flow_logs(args, vpc, account.account_id)

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

    # --- builders -------------------------------------------------------------------------------

    def _named(self, role: str) -> dict[str, str]:
        return {**self._tags, "Name": f"{self._name}-{role}"}

    def _vpc(self, args: NetworkArgs) -> aws.ec2.Vpc:
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # private DNS of interface endpoints needs both
            tags=self._named("vpc"),
            opts=child,
        )
        # The default security group is managed so that it holds no rules: nothing can use it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=self._named("default-sg"),
            opts=child,
        )
        return vpc

    def _private_subnets(
        self,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        plan: SubnetPlan,
        zone_names: Sequence[pulumi.Output[str]],
    ) -> list[aws.ec2.Subnet]:
        subnet_tags = {"kubernetes.io/role/internal-elb": "1"} if args.eks_cluster else {}
        return [
            aws.ec2.Subnet(
                f"{self._name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone_names[i],
                map_public_ip_on_launch=False,
                tags={**self._named(f"private-{i}"), "tier": "private", **subnet_tags},
                opts=pulumi.ResourceOptions(parent=self),
            )
            for i, cidr in enumerate(plan.private)
        ]

    def _nat_gateways(
        self, vpc: aws.ec2.Vpc, plan: SubnetPlan, zone_names: Sequence[pulumi.Output[str]]
    ) -> list[pulumi.Output[str]]:
        """One public subnet and NAT gateway per zone, behind one internet gateway."""
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=self._named("igw"), opts=child
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags=self._named("public-rt"), opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )
        nat_ids: list[pulumi.Output[str]] = []
        for i, cidr in enumerate(plan.public):
            public = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone_names[i],
                map_public_ip_on_launch=False,  # only the NAT's Elastic IP is public
                tags={**self._named(f"public-{i}"), "tier": "public"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}",
                subnet_id=public.id,
                route_table_id=public_rt.id,
                opts=child,
            )
            eip = aws.ec2.Eip(
                f"{name}-nat-{i}", domain="vpc", tags=self._named(f"nat-{i}"), opts=child
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{i}",
                subnet_id=public.id,
                allocation_id=eip.id,
                connectivity_type="public",
                tags=self._named(f"nat-{i}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            nat_ids.append(nat.id)
        return nat_ids

    def _private_routes(
        self,
        vpc: aws.ec2.Vpc,
        private_subnets: Sequence[aws.ec2.Subnet],
        nat_ids: Sequence[pulumi.Output[str]],
    ) -> list[aws.ec2.RouteTable]:
        """A route table per private subnet; a default route only through that zone's NAT."""
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        private_rts = []
        for i, subnet in enumerate(private_subnets):
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}",
                vpc_id=vpc.id,
                tags=self._named(f"private-rt-{i}"),
                opts=child,
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
        return private_rts

    def _service(self, svc: str) -> pulumi.Output[str]:
        # com.amazonaws.<region>.<service> (the partition's reverse DNS prefix: cn., gov...)
        return pulumi.Output.concat(
            self._partition.reverse_dns_prefix, ".", self._region.region, ".", svc
        )

    def _s3_endpoint(
        self, vpc: aws.ec2.Vpc, private_rts: Sequence[aws.ec2.RouteTable]
    ) -> aws.ec2.VpcEndpoint:
        return aws.ec2.VpcEndpoint(
            f"{self._name}-endpoint-s3",
            vpc_id=vpc.id,
            service_name=self._service("s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            tags=self._named("endpoint-s3"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _endpoint_security_group(
        self, args: NetworkArgs, vpc: aws.ec2.Vpc
    ) -> aws.ec2.SecurityGroup:
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoint-sg",
            vpc_id=vpc.id,
            description="VPC interface endpoints: HTTPS from inside the VPC only",
            tags=self._named("endpoint-sg"),
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
            tags=self._tags,
            opts=child,
        )
        return endpoint_sg

    def _compute_security_group(
        self, args: NetworkArgs, vpc: aws.ec2.Vpc, s3_endpoint: aws.ec2.VpcEndpoint
    ) -> aws.ec2.SecurityGroup:
        """Itself, the endpoints and S3; the internet over HTTPS only through a NAT."""
        name, tags, child = self._name, self._tags, pulumi.ResourceOptions(parent=self)
        compute_sg = aws.ec2.SecurityGroup(
            f"{name}-compute-sg",
            vpc_id=vpc.id,
            description="Training jobs and EKS nodes: each other, the endpoints, S3",
            tags=self._named("compute-sg"),
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
        return compute_sg

    def _interface_endpoints(
        self,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        private_subnets: Sequence[aws.ec2.Subnet],
        endpoint_sg: aws.ec2.SecurityGroup,
    ) -> None:
        services = INTERFACE_ENDPOINTS + (EKS_INTERFACE_ENDPOINTS if args.eks_cluster else ())
        for svc in services:
            role = "endpoint-" + svc.replace(".", "-")
            aws.ec2.VpcEndpoint(
                f"{self._name}-{role}",
                vpc_id=vpc.id,
                service_name=self._service(svc),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in private_subnets],
                security_group_ids=[endpoint_sg.id],
                tags=self._named(role),
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _flow_logs(
        self, args: NetworkArgs, vpc: aws.ec2.Vpc, account_id: pulumi.Output[str]
    ) -> aws.cloudwatch.LogGroup:
        """Every accepted and rejected flow, encrypted, kept `log_retention_days`."""
        name, child = self._name, pulumi.ResourceOptions(parent=self)
        flow_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=self._named("flow-logs"),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        flow_role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=assume_role_policy(
                "vpc-flow-logs.amazonaws.com", source_account=account_id
            ),
            description="VPC flow logs delivery to its own log group",
            tags=self._tags,
            opts=child,
        )
        self.role_names.append(flow_role.name)
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
            tags=self._named("flow-log"),
            opts=child,
        )
        return flow_group
