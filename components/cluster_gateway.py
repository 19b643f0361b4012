"""How the private training cluster is reached: a gateway inside the VPC, not a network path in.

The cluster's API endpoint is private (and must be in prod). `pulumi up` runs on a CI runner or a
laptop outside the VPC, and so does `mlplat train --on eks`; neither can open a connection to it.
Instead of a bastion, a VPN or a self-hosted runner with internet egress, the stack provisions two
small Lambda functions in the cluster's private subnets (`components/lambdas/cluster_gateway.py`):

* the **deployer** holds an EKS access entry with cluster admin. An `aws.lambda.Invocation`
  (lifecycle `CRUD`) hands it the in-cluster objects on every `pulumi up` whose objects changed:
  it server-side applies them, deletes those that left the set, and removes the set on destroy.
  The invocation fails the update when an object is refused, as the Kubernetes provider would.
  So the first deploy of a stack is one `pulumi up`, in the order the README gives.
* the **jobs** gateway holds namespace-scoped edit rights in the training namespace only, and
  submits, follows and deletes training Jobs for whoever may invoke it (the submitter role).

Both reach the API over the VPC: their own security group sends HTTPS to the cluster security
group, which admits them on 443; they authenticate with their roles (`aws eks get-token`'s
presigned STS URL) and trust only the cluster's CA. They call no other AWS API, so they need no
VPC endpoint beyond what the cluster has. Their logs go to KMS-encrypted log groups with a
retention; their environment (endpoint, CA, names) is encrypted with the cluster's key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import (
    LAMBDA_ENI_ACTIONS,
    Statement,
    assume_role_policy,
    network_interface_statements,
    policy_document,
)

HANDLER_FILE = Path(__file__).resolve().parent / "lambdas" / "cluster_gateway.py"
HANDLER = "cluster_gateway.handler"
RUNTIME = "python3.13"
HTTPS = 443
# Declares the functions' network path for the policy pack's reachability check
# (`policies.rules.network.TALKS_TO`; a test keeps the two equal).
TALKS_TO_TAG = "mlplatform.io/talks-to"
# (role, EKS access policy, namespace-scoped?, timeout seconds)
_FUNCTIONS: tuple[tuple[str, str, bool, int], ...] = (
    ("deployer", "AmazonEKSClusterAdminPolicy", False, 300),
    ("jobs", "AmazonEKSEditPolicy", True, 60),
)


class ClusterGatewayError(ValueError):
    """The gateway cannot be built from these arguments."""


def handler_source_hash() -> str:
    """Changes when the handler's code changes: the deployer re-applies with new code."""
    return hashlib.sha256(HANDLER_FILE.read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class ClusterGatewayArgs:
    cluster_name: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    cluster_ca_data: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]  # created by EKS for the control plane ENIs
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]  # the cluster's private subnets
    objects: pulumi.Input[Sequence[Any]]  # the in-cluster objects the deployer applies
    apply_set: str  # a DNS label naming the set (objects carry it as a label)
    jobs_namespace: str
    log_kms_key_arn: pulumi.Input[str]  # a key CloudWatch Logs may use (the lake key)
    env_kms_key_arn: pulumi.Input[str]  # encrypts the functions' environment (the cluster key)
    log_retention_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)


class ClusterGateway(pulumi.ComponentResource):
    """The deployer and jobs functions, their network path to the API and their access."""

    deployer_function_name: pulumi.Output[str]
    jobs_function_name: pulumi.Output[str]
    jobs_function_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ClusterGatewayArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:training:ClusterGateway", name, None, opts)
        self.role_names: list[pulumi.Output[str]] = []  # every role made here (audited)
        if not args.apply_set or len(args.apply_set) > 63:
            raise ClusterGatewayError(f"apply_set {args.apply_set!r}: a DNS label is expected")
        self._tags = dict(args.tags)
        self._partition = aws.get_partition_output().partition
        self._region = aws.get_region_output().region
        self._account = aws.get_caller_identity_output().account_id
        sg = self._network_path(name, args)
        functions = {
            role: self._function(name, args, sg, role, policy, scoped, timeout)
            for role, policy, scoped, timeout in _FUNCTIONS
        }
        deployer, deployer_access = functions["deployer"]
        jobs, _ = functions["jobs"]
        aws.lambda_.Invocation(
            f"{name}-apply",
            function_name=deployer.name,
            input=pulumi.Output.json_dumps({"applySet": args.apply_set, "objects": args.objects}),
            lifecycle_scope="CRUD",
            triggers={"handler": handler_source_hash()},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[deployer_access]),
        )
        self.deployer_function_name = deployer.name
        self.jobs_function_name = jobs.name
        self.jobs_function_arn = jobs.arn
        self.security_group_id = sg.id
        self.register_outputs(
            {
                "deployer_function_name": self.deployer_function_name,
                "jobs_function_name": self.jobs_function_name,
                "jobs_function_arn": self.jobs_function_arn,
            }
        )

    # --- builders -------------------------------------------------------------------------------

    def _network_path(self, name: str, args: ClusterGatewayArgs) -> aws.ec2.SecurityGroup:
        """The functions' group: HTTPS to the cluster security group, which admits it on 443."""
        child = pulumi.ResourceOptions(parent=self)
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="Cluster gateway functions: HTTPS to the EKS API only",
            tags={**self._tags, "Name": f"{name}-sg"},
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-api-out",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            referenced_security_group_id=args.cluster_security_group_id,
            description="HTTPS to the EKS API (cluster security group)",
            tags=self._tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-in",
            security_group_id=args.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            referenced_security_group_id=sg.id,
            description="The cluster gateway functions reach the EKS API",
            tags=self._tags,
            opts=child,
        )
        return sg

    def _function(
        self,
        name: str,
        args: ClusterGatewayArgs,
        sg: aws.ec2.SecurityGroup,
        role_name: str,
        access_policy: str,
        namespace_scoped: bool,
        timeout: int,
    ) -> tuple[aws.lambda_.Function, aws.eks.AccessPolicyAssociation]:
        prefix = f"{name}-{role_name}"
        logs = aws.cloudwatch.LogGroup(
            f"{prefix}-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_kms_key_arn,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        role, role_policy = self._function_role(prefix, args, sg, role_name, logs)
        access = self._cluster_access(prefix, args, role, access_policy, namespace_scoped)
        variables: dict[str, pulumi.Input[str]] = {
            "GATEWAY_ROLE": role_name,
            "CLUSTER_NAME": args.cluster_name,
            "CLUSTER_ENDPOINT": args.cluster_endpoint,
            "CLUSTER_CA": args.cluster_ca_data,
            "JOBS_NAMESPACE": args.jobs_namespace,
        }
        function = aws.lambda_.Function(
            f"{prefix}-fn",
            description=f"ml-platform cluster gateway ({role_name})",
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            code=pulumi.AssetArchive({HANDLER_FILE.name: pulumi.FileAsset(str(HANDLER_FILE))}),
            timeout=timeout,
            # no reserved concurrency: a new account may not reserve any (its unreserved pool
            # has a floor), and Pulumi's stack lock already serialises the deployer's applies
            memory_size=256,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.subnet_ids, security_group_ids=[sg.id]
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
            kms_key_arn=args.env_kms_key_arn,
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=logs.name
            ),
            tags={**self._tags, TALKS_TO_TAG: pulumi.Output.concat("eks-api:", args.cluster_name)},
            # the role must be able to create the function's network interfaces first
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        return function, access

    def _function_role(
        self,
        prefix: str,
        args: ClusterGatewayArgs,
        sg: aws.ec2.SecurityGroup,
        role_name: str,
        logs: aws.cloudwatch.LogGroup,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """Its own log group, its environment key, its network interfaces in the VPC."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{prefix}-role",
            assume_role_policy=assume_role_policy(
                "lambda.amazonaws.com", source_account=self._account
            ),
            description=f"Cluster gateway ({role_name}): reaches the EKS API from the VPC",
            tags=self._tags,
            opts=child,
        )
        self.role_names.append(role.name)
        role_policy = aws.iam.RolePolicy(
            f"{prefix}-policy",
            role=role.id,
            policy=policy_document(
                [
                    Statement(
                        ["logs:CreateLogStream", "logs:PutLogEvents"],
                        [pulumi.Output.concat(logs.arn, ":*")],
                        sid="OwnLogGroup",
                    ),
                    Statement(["kms:Decrypt"], [args.env_kms_key_arn], sid="DecryptEnvironment"),
                    # the function's interfaces, in this VPC only
                    *network_interface_statements(
                        "FunctionNetworkInterfaces",
                        LAMBDA_ENI_ACTIONS,
                        partition=self._partition,
                        region=self._region,
                        account=self._account,
                        vpc_id=args.vpc_id,
                        security_group_ids=[sg.id],
                        describe=("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"),
                    ),
                ]
            ),
            opts=child,
        )
        return role, role_policy

    def _cluster_access(
        self,
        prefix: str,
        args: ClusterGatewayArgs,
        role: aws.iam.Role,
        access_policy: str,
        namespace_scoped: bool,
    ) -> aws.eks.AccessPolicyAssociation:
        """The function's role in the cluster: an access entry and its one access policy."""
        child = pulumi.ResourceOptions(parent=self)
        entry = aws.eks.AccessEntry(
            f"{prefix}-access",
            cluster_name=args.cluster_name,
            principal_arn=role.arn,
            type="STANDARD",
            tags=self._tags,
            opts=child,
        )
        return aws.eks.AccessPolicyAssociation(
            f"{prefix}-access",
            cluster_name=args.cluster_name,
            principal_arn=entry.principal_arn,
            policy_arn=pulumi.Output.concat(
                "arn:", self._partition, ":eks::aws:cluster-access-policy/", access_policy
            ),
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                type="namespace" if namespace_scoped else "cluster",
                namespaces=[args.jobs_namespace] if namespace_scoped else None,
            ),
            opts=child,
        )
