"""Public exposure: resource policies open to everyone, security groups open to the internet, and
resources reachable from outside the VPC (notebooks, databases, load balancers, search domains,
function URLs, instances with public addresses).

The platform runs in private subnets and is reached through IAM; each policy here catches a way an
added resource would step outside that. What a public load balancer or web port needs is a
deliberate exception, so those two are advisory; the rest is mandatory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.core import Context, PolicySpec, Resource, dig, known, listify
from policies.rules.documents import actions, grants_everyone, narrowing_keys, statements

# --- resource policies ---------------------------------------------------------------------------

# type -> the property holding its resource policy (inline ones included)
RESOURCE_POLICIES: Mapping[str, str] = {
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:s3/bucket:Bucket": "policy",
    "aws:s3/accessPoint:AccessPoint": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sqs/queue:Queue": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:sns/topic:Topic": "policy",
    "aws:kms/key:Key": "policy",
    "aws:kms/keyPolicy:KeyPolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
    "aws:ecr/registryPolicy:RegistryPolicy": "policy",
    "aws:secretsmanager/secret:Secret": "policy",
    "aws:secretsmanager/secretPolicy:SecretPolicy": "policy",
    "aws:opensearch/domain:Domain": "accessPolicies",
    "aws:opensearch/domainPolicy:DomainPolicy": "accessPolicies",
    "aws:efs/fileSystemPolicy:FileSystemPolicy": "policy",
    "aws:glue/resourcePolicy:ResourcePolicy": "policy",
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy": "policy",
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": "policyDocument",
    "aws:dynamodb/resourcePolicy:ResourcePolicy": "policy",
    "aws:kinesis/resourcePolicy:ResourcePolicy": "policy",
    "aws:backup/vaultPolicy:VaultPolicy": "policy",
}
LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
# conditions that narrow "everyone" to an account, organization, principal or network path
NARROWING_KEYS = (
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceOwner",
    "aws:SourceOrgID",
    "aws:SourceOrgPaths",
    "aws:SourceVpce",
    "aws:SourceVpc",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:userid",
    "kms:CallerAccount",
)


def check_resource_policy(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.type == LAMBDA_PERMISSION:
        yield from _lambda_permission(resource)
        return
    for label, statement in statements(resource, RESOURCE_POLICIES[resource.type]):
        if grants_everyone(statement) and not narrowing_keys(statement, NARROWING_KEYS):
            yield (
                f"{resource.where()}: policy {label} allows {actions(statement)} to everyone "
                "(Principal '*') with no condition narrowing it to an account, organization or "
                "VPC endpoint (aws:SourceAccount, aws:SourceArn, aws:PrincipalOrgID, "
                "aws:SourceVpce...)"
            )


def _lambda_permission(resource: Resource) -> Iterator[str]:
    if resource.get("principal") != "*":
        return
    narrowed = [p for p in ("sourceAccount", "sourceArn", "principalOrgId") if resource.get(p)]
    if not narrowed:
        yield (
            f"{resource.where()}: lets anyone ('*') invoke function {resource.get('function')!r}; "
            "name the principal, or set sourceAccount / sourceArn / principalOrgId"
        )


# --- security groups -------------------------------------------------------------------------

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_TYPES = (SECURITY_GROUP, DEFAULT_SECURITY_GROUP, SG_RULE, INGRESS_RULE)
WORLD = ("0.0.0.0/0", "::/0")
WEB_PORTS = (80, 443)
ALL_PROTOCOLS = ("-1", "all")
PORTED_PROTOCOLS = ("tcp", "6", "udp", "17")
# the ports scanners try first: remote administration, databases and caches, cluster control
ADMIN_PORTS: Mapping[int, str] = {
    21: "FTP",
    22: "SSH",
    23: "Telnet",
    445: "SMB",
    1433: "SQL Server",
    1521: "Oracle",
    2049: "NFS",
    2375: "Docker",
    2376: "Docker",
    3306: "MySQL",
    3389: "RDP",
    5432: "PostgreSQL",
    5439: "Redshift",
    5601: "Kibana",
    6379: "Redis",
    6443: "Kubernetes API",
    8888: "Jupyter",
    9092: "Kafka",
    9200: "OpenSearch",
    11211: "Memcached",
    27017: "MongoDB",
}


@dataclass(frozen=True, slots=True)
class Opening:
    """One ingress rule open to the internet."""

    label: str
    cidrs: tuple[str, ...]
    protocol: str
    low: int
    high: int

    @property
    def all_traffic(self) -> bool:
        return self.protocol in ALL_PROTOCOLS

    @property
    def web_only(self) -> bool:
        return self.protocol in ("tcp", "6") and self.low == self.high and self.low in WEB_PORTS

    def admin_ports(self) -> list[str]:
        if not (self.all_traffic or self.protocol in PORTED_PROTOCOLS):
            return []
        return [
            f"{name} ({port})"
            for port, name in ADMIN_PORTS.items()
            if self.all_traffic or self.low <= port <= self.high
        ]

    def what(self) -> str:
        if self.all_traffic:
            return "all traffic"
        ports = str(self.low) if self.low == self.high else f"{self.low}-{self.high}"
        return f"{self.protocol} {ports}"


def _rules(resource: Resource) -> list[tuple[str, Mapping[str, Any], str, str, str]]:
    """(label, rule, protocol key, IPv4 key, IPv6 key) for the resource's ingress rules."""
    if resource.type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        return [
            (f"ingress[{i}]", rule, "protocol", "cidrBlocks", "ipv6CidrBlocks")
            for i, rule in enumerate(listify(resource.get("ingress")))
            if isinstance(rule, Mapping)
        ]
    if resource.type == SG_RULE:
        if resource.get("type") != "ingress":
            return []
        return [("ingress", resource.props, "protocol", "cidrBlocks", "ipv6CidrBlocks")]
    return [("ingress", resource.props, "ipProtocol", "cidrIpv4", "cidrIpv6")]


def _port(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def public_ingress(resource: Resource) -> list[Opening]:
    openings = []
    for label, rule, protocol_key, v4, v6 in _rules(resource):
        where = f".{label} of {resource.where()}"
        cidrs = [*listify(dig(rule, (v4,))), *listify(dig(rule, (v6,)))]
        world = tuple(c for c in cidrs if known(c, where) in WORLD)
        if not world:
            continue
        protocol = str(known(dig(rule, (protocol_key,)), where)).lower()
        low, high = 0, 65535
        if protocol not in ALL_PROTOCOLS:  # the CLI hands numbers over as floats
            low = _port(known(dig(rule, ("fromPort",)), where), low)
            high = _port(known(dig(rule, ("toPort",)), where), high)
        openings.append(Opening(label, world, protocol, low, high))
    return openings


def check_public_ingress(resource: Resource, _ctx: Context) -> Iterator[str]:
    for opening in public_ingress(resource):
        if opening.web_only:
            continue
        head = (
            f"{resource.where()}: {opening.label} opens {opening.what()} to the internet "
            f"({', '.join(opening.cidrs)})"
        )
        admin = opening.admin_ports()
        if admin:
            yield (
                f"{head}, including {', '.join(admin[:4])}{' ...' if len(admin) > 4 else ''}: "
                "the ports scanners try first; reach hosts through SSM Session Manager or a VPN "
                "and databases from inside the VPC"
            )
        else:
            yield f"{head}; admit the callers' security group or CIDRs instead"


def check_public_web_ingress(resource: Resource, _ctx: Context) -> Iterator[str]:
    for opening in public_ingress(resource):
        if opening.web_only:
            yield (
                f"{resource.where()}: {opening.label} admits {opening.what()} from anywhere "
                f"({', '.join(opening.cidrs)}): only a public load balancer should"
            )


def check_default_group_empty(resource: Resource, _ctx: Context) -> Iterator[str]:
    kept = [d for d in ("ingress", "egress") if listify(resource.get(d))]
    if kept:
        yield (
            f"{resource.where()}: the VPC's default security group keeps {' and '.join(kept)} "
            "rules; leave it empty so nothing lands in it by accident"
        )


# --- resources reachable from outside the VPC ------------------------------------------------

NOTEBOOK = "aws:sagemaker/notebookInstance:NotebookInstance"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
CLASSIC_LOAD_BALANCER = "aws:elb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
OPENSEARCH = "aws:opensearch/domain:Domain"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
INSTANCE = "aws:ec2/instance:Instance"
SPOT_INSTANCE = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def check_notebook_network(resource: Resource, _ctx: Context) -> Iterator[str]:
    access = resource.get("directInternetAccess") or "Enabled"  # SageMaker's default
    if access != "Disabled":
        yield (
            f"notebook {resource.name!r}: directInternetAccess is {access!r}; set 'Disabled' so "
            "its traffic goes through the VPC (its endpoints, its NAT)"
        )
    if not resource.get("subnetId"):
        yield f"notebook {resource.name!r} has no subnetId: it runs outside the VPC"


def check_notebook_root(resource: Resource, _ctx: Context) -> Iterator[str]:
    root = resource.get("rootAccess") or "Enabled"  # SageMaker's default
    if root != "Disabled":
        yield (
            f"notebook {resource.name!r}: rootAccess is {root!r}; users with root can change the "
            "instance and read other users' data: set 'Disabled'"
        )


def check_db_not_public(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.get("publiclyAccessible") is True:
        yield (
            f"{resource.where()}: publiclyAccessible is true: the database gets a public address "
            "and DNS name; reach it from inside the VPC"
        )


def check_load_balancer_internal(resource: Resource, ctx: Context) -> Iterator[str]:
    if not ctx.is_prod(resource) or resource.get("loadBalancerType") == "gateway":
        return
    if resource.get("internal") is not True:
        yield (
            f"{resource.where()}: a prod load balancer is internet-facing (internal is not "
            "true); keep it internal unless the service is meant to be public (then with WAF "
            "and authentication)"
        )


def _redirects_to_https(action: Any) -> bool:
    if not isinstance(action, Mapping) or action.get("type") != "redirect":
        return False
    redirect = action.get("redirect")
    return isinstance(redirect, Mapping) and redirect.get("protocol") == "HTTPS"


def check_http_redirect(resource: Resource, _ctx: Context) -> Iterator[str]:
    protocol = resource.get("protocol")
    if not (protocol == "HTTP" or (protocol is None and resource.get("port") == 80)):
        return  # HTTPS, TCP/TLS/UDP, or a gateway load balancer's listener
    defaults = listify(resource.get("defaultActions"))
    if not any(_redirects_to_https(a) for a in defaults):
        yield (
            f"{resource.where()}: an HTTP listener serves plain HTTP; its default action must "
            "redirect to HTTPS (type 'redirect', redirect.protocol 'HTTPS')"
        )


def check_opensearch_vpc(resource: Resource, _ctx: Context) -> Iterator[str]:
    if not [s for s in listify(resource.get("vpcOptions", "subnetIds")) if s]:
        yield (
            f"{resource.where()} has no vpcOptions.subnetIds: the domain gets a public endpoint; "
            "put it in the VPC"
        )


def check_function_url_auth(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.get("authorizationType") == "NONE":
        yield (
            f"{resource.where()}: authorizationType is 'NONE': anyone on the internet can "
            "invoke the function; use 'AWS_IAM'"
        )


def check_no_public_ip(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.type == LAUNCH_TEMPLATE:
        for i, nic in enumerate(listify(resource.get("networkInterfaces"))):
            value = dig(nic, ("associatePublicIpAddress",)) if isinstance(nic, Mapping) else None
            if value is True or str(value).lower() == "true":
                yield (
                    f"{resource.where()}: networkInterfaces[{i}] associates a public IP address; "
                    "instances stay in private subnets"
                )
        return
    if resource.get("associatePublicIpAddress") is True:
        yield (
            f"{resource.where()}: associatePublicIpAddress is true; instances stay in private "
            "subnets (reach them through SSM Session Manager)"
        )


POLICIES = (
    PolicySpec(
        name="aws-resourcepolicy-not-public",
        description="No resource policy (S3, SQS, SNS, KMS, ECR, Secrets Manager, OpenSearch, "
        "Lambda...) allows '*' without an account, organization or VPC endpoint condition.",
        enforcement="mandatory",
        severity="critical",
        reference="CKV_AWS_70; CKV_AWS_168; CKV_AWS_169; CKV_AWS_33; CKV_AWS_32; CKV_AWS_301; "
        "AWS Security Hub S3.2, S3.3, Lambda.1",
        types=(*RESOURCE_POLICIES, LAMBDA_PERMISSION),
        check=check_resource_policy,
    ),
    PolicySpec(
        name="ec2-securitygroup-no-public-ingress",
        description="No security group admits the internet (0.0.0.0/0, ::/0) except on "
        "TCP 80/443; SSH, RDP and database ports never.",
        enforcement="mandatory",
        severity="critical",
        reference="CKV_AWS_24; CKV_AWS_25; CKV_AWS_277; AWS Security Hub EC2.13, EC2.14, "
        "EC2.18, EC2.19",
        types=SG_TYPES,
        check=check_public_ingress,
    ),
    PolicySpec(
        name="ec2-securitygroup-public-web-ingress",
        description="Ingress from the internet on TCP 80/443 is for a public load balancer only.",
        enforcement="advisory",
        severity="medium",
        reference="CKV_AWS_260; AWS Security Hub EC2.18",
        types=SG_TYPES,
        check=check_public_web_ingress,
    ),
    PolicySpec(
        name="ec2-defaultsecuritygroup-no-rules",
        description="The VPC's default security group has no ingress or egress rules.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV2_AWS_12; AWS Security Hub EC2.2",
        types=(DEFAULT_SECURITY_GROUP,),
        check=check_default_group_empty,
    ),
    PolicySpec(
        name="sagemaker-notebook-no-direct-internet",
        description="Notebook instances run in a VPC subnet with direct internet access disabled.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_122; AWS Security Hub SageMaker.1, SageMaker.2",
        types=(NOTEBOOK,),
        check=check_notebook_network,
    ),
    PolicySpec(
        name="sagemaker-notebook-no-root-access",
        description="Notebook instances disable root access.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_307; AWS Security Hub SageMaker.3",
        types=(NOTEBOOK,),
        check=check_notebook_root,
    ),
    PolicySpec(
        name="rds-db-not-public",
        description="RDS instances and clusters are not publicly accessible.",
        enforcement="mandatory",
        severity="critical",
        reference="CKV_AWS_17; AWS Security Hub RDS.2",
        types=(RDS_INSTANCE, RDS_CLUSTER, RDS_CLUSTER_INSTANCE),
        check=check_db_not_public,
    ),
    PolicySpec(
        name="lb-loadbalancer-internal",
        description="Prod load balancers are internal; an internet-facing one is a reviewed "
        "exception.",
        enforcement="advisory",
        severity="high",
        reference="Well-Architected Security Pillar SEC05-BP01 (create network layers)",
        types=(LOAD_BALANCER, CLASSIC_LOAD_BALANCER),
        check=check_load_balancer_internal,
    ),
    PolicySpec(
        name="lb-listener-https-redirect",
        description="HTTP load balancer listeners redirect to HTTPS by default.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV2_AWS_20; AWS Security Hub ELB.1",
        types=(LISTENER,),
        check=check_http_redirect,
    ),
    PolicySpec(
        name="opensearch-domain-in-vpc",
        description="OpenSearch (and Elasticsearch) domains run in the VPC (vpcOptions).",
        enforcement="mandatory",
        severity="high",
        reference="AWS Security Hub Opensearch.2, ES.2",
        types=(OPENSEARCH,),
        check=check_opensearch_vpc,
    ),
    PolicySpec(
        name="lambda-functionurl-auth",
        description="Lambda function URLs require IAM authorization (not 'NONE').",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_258",
        types=(FUNCTION_URL,),
        check=check_function_url_auth,
    ),
    PolicySpec(
        name="ec2-instance-no-public-ip",
        description="Instances, spot requests and launch templates do not associate public IP "
        "addresses.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_88; AWS Security Hub EC2.9",
        types=(INSTANCE, SPOT_INSTANCE, LAUNCH_TEMPLATE),
        check=check_no_public_ip,
    ),
)
