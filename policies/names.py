"""Physical names per AWS type: what pulumi-aws auto-names, and what AWS accepts.

One table (`RULES`) keyed by type token, pure data plus the provider's naming rule. The plan
engine (`mlplat.plan.engine`) reads it to give an auto-named resource exactly the name the provider
would, and the `aws-names-within-limits` policy reads it to hold every name to its AWS limit.

Autonaming, as pulumi-aws does it (a Terraform-bridged provider; pulumi-terraform-bridge
`pkg/tfbridge/info/autonaming.go`): in its Check step, when the program leaves the name property
unset, the provider fills it with `transform(<logical name>) + separator + <randlen random
chars>` (`ComputeAutoNameDefault` -> `resource.NewUniqueName`), then applies a post-transform.
When `len(transform(<logical name>) + separator) + randlen > maxlen` it fails preview with
`could not make instance of '<type>': name '<prefix>' plus <randlen> random chars is longer than
maximum length <maxlen>`. A default is skipped when a property that conflicts with it is set
(`namePrefix`, `bucketPrefix`...: tfbridge drops defaults named in a set property's
ConflictsWith).

Where the provider values come from (pulumi-aws v7, the major version this project pins):
`provider/autonaming.go` `setAutonaming` gives every resource whose Terraform schema has an input
`name` and no override `AutoName("name", 255, "-")`; `provider/resource_overrides.go` and
`provider/aliases.go` override it per resource. Whether a property is auto-named at all was
cross-checked against the installed SDK: a Terraform-required name the provider auto-names is
optional in `pulumi_aws`, one it does not (model package group, pipeline, dashboard) stays
required. AWS limits come from the AWS API models (botocore's service definitions: min, max,
pattern) where they carry them, else from the AWS documentation page given as `reference`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

HEX = "0123456789abcdef"  # NewUniqueName's default charset
LOWERCASE = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
# With `<prop>Prefix` set, the upstream Terraform provider names the resource at create time with
# terraform-plugin-sdk's id.PrefixedUniqueId: the prefix, an 18-digit UTC timestamp
# (20060102150405.0000 without the dot) and an 8-hex-digit counter.
PREFIXED_SUFFIX_LEN = 26

# Where the provider's autonaming of a type is configured, in pulumi/pulumi-aws (v7).
_DEFAULT = 'provider/autonaming.go setAutonaming: AutoName("name", 255, "-")'
_OVERRIDES = "provider/resource_overrides.go"
_ALIASES = "provider/aliases.go"

_IAM = r"[A-Za-z0-9_+=,.@-]"  # the API models' [\w+=,.@-], ASCII \w
_IAM_TEXT = "letters, digits and _+=,.@-"
_SAGEMAKER = r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"
_SAGEMAKER_TEXT = "letters, digits and '-', starting and ending with a letter or digit"
_ELB = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ELB_TEXT = "letters, digits and '-', not starting or ending with '-'"
_RDS = r"[A-Za-z](?:-?[A-Za-z0-9])*"
_RDS_TEXT = "letters, digits and '-', starting with a letter, no '--', not ending with '-'"
_GLUE_TEXT = (
    "lower-case letters, digits and '_' (what Athena accepts; the Glue API alone takes any "
    "single-line string)"
)


@dataclass(frozen=True, slots=True)
class AutoName:
    """How pulumi-aws fills the name property when the program leaves it unset (tfbridge
    `AutoNameOptions`): `transform(logical) + separator + randlen random chars`, refused when
    longer than `maxlen` (None: no limit), then post-transformed."""

    maxlen: int | None
    source: str  # where pulumi-aws configures it
    separator: str = "-"
    randlen: int = 7
    charset: str = HEX
    lowercase: bool = False  # Transform: strings.ToLower
    prefix: str = ""  # PostTransform: prepended unless the name already starts with it
    fifo_flag: str | None = None  # PostTransform: ".fifo" appended when this input is true
    # (substring of the `engine` input, randlen, maxlen): RDS SQL Server identifiers
    engine_overrides: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class NameRule:
    """The physical name of one AWS type: its property, AWS's limits, the provider's autonaming."""

    prop: str  # camelCase property holding the name
    max_len: int
    chars: str  # one allowed character (a regex class)
    pattern: str  # the whole name (re.fullmatch): order, first/last character, reserved forms
    allowed: str  # the rule in words, for messages
    reference: str
    min_len: int = 1
    autoname: AutoName | None = None  # None: pulumi-aws leaves the name to the program (or AWS)
    note: str = ""

    @property
    def prefix_prop(self) -> str:
        """The `<prop>Prefix` input that conflicts with the name: set, autonaming is skipped."""
        return f"{self.prop}Prefix"


def _rule(
    prop: str,
    max_len: int,
    chars: str,
    allowed: str,
    reference: str,
    *,
    pattern: str | None = None,
    min_len: int = 1,
    autoname: AutoName | None = None,
    note: str = "",
) -> NameRule:
    return NameRule(
        prop=prop,
        max_len=max_len,
        chars=chars,
        pattern=pattern if pattern is not None else f"{chars}+",
        allowed=allowed,
        reference=reference,
        min_len=min_len,
        autoname=autoname,
        note=note,
    )


_DOCS = "https://docs.aws.amazon.com"


# Glue databases and tables: lower case, auto-named with "_" and 8 random letters.
_GLUE_NAME = _rule(
    "name",
    255,
    r"[a-z0-9_]",
    _GLUE_TEXT,
    f"{_DOCS}/athena/latest/ug/tables-databases-columns-names.html",
    autoname=AutoName(
        None,
        f'{_OVERRIDES}: FromName(Separator "_", Charset a-z, Randlen 8, '
        "Transform strings.ToLower), no Maxlen",
        separator="_",
        randlen=8,
        charset=LOWERCASE,
        lowercase=True,
    ),
)


def _sagemaker_name(api: str) -> NameRule:
    """A SageMaker resource's `name`: 63 characters, auto-named up to 255 by the provider."""
    return _rule(
        "name",
        63,
        r"[A-Za-z0-9-]",
        _SAGEMAKER_TEXT,
        f"{_DOCS}/sagemaker/latest/APIReference/API_{api}.html",
        pattern=_SAGEMAKER,
        autoname=AutoName(255, _DEFAULT),
    )


RULES: Mapping[str, NameRule] = MappingProxyType(
    {
        # --- S3
        "aws:s3/bucket:Bucket": _rule(
            "bucket",
            63,
            r"[a-z0-9.-]",
            "lower-case letters, digits, '.' and '-', starting and ending with a letter or "
            "digit, no '..', not an IP address, no 'xn--'/'sthree-' prefix, no "
            "'-s3alias'/'--ol-s3' suffix",
            f"{_DOCS}/AmazonS3/latest/userguide/bucketnamingrules.html",
            pattern=(
                r"(?!xn--|sthree-)(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)"
                r"[a-z0-9][a-z0-9.-]*[a-z0-9](?<!-s3alias)(?<!--ol-s3)"
            ),
            min_len=3,
            autoname=AutoName(
                63,
                f'{_OVERRIDES}: AutoNameTransform("bucket", 63, strings.ToLower)',
                lowercase=True,
            ),
        ),
        # --- IAM
        "aws:iam/role:Role": _rule(
            "name",
            64,
            _IAM,
            _IAM_TEXT,
            f"{_DOCS}/IAM/latest/APIReference/API_CreateRole.html",
            autoname=AutoName(64, f'{_OVERRIDES}: AutoName("name", 64, "-")'),
        ),
        "aws:iam/policy:Policy": _rule(
            "name",
            128,
            _IAM,
            _IAM_TEXT,
            f"{_DOCS}/IAM/latest/APIReference/API_CreatePolicy.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:iam/user:User": _rule(
            "name",
            64,
            _IAM,
            _IAM_TEXT,
            f"{_DOCS}/IAM/latest/APIReference/API_CreateUser.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:iam/instanceProfile:InstanceProfile": _rule(
            "name",
            128,
            _IAM,
            _IAM_TEXT,
            f"{_DOCS}/IAM/latest/APIReference/API_CreateInstanceProfile.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:iam/rolePolicy:RolePolicy": _rule(
            "name",
            128,
            _IAM,
            _IAM_TEXT,
            f"{_DOCS}/IAM/latest/APIReference/API_PutRolePolicy.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        # --- SageMaker
        "aws:sagemaker/model:Model": _sagemaker_name("CreateModel"),
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _sagemaker_name(
            "CreateEndpointConfig"
        ),
        "aws:sagemaker/endpoint:Endpoint": _sagemaker_name("CreateEndpoint"),
        "aws:sagemaker/notebookInstance:NotebookInstance": _sagemaker_name(
            "CreateNotebookInstance"
        ),
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup": _rule(
            "modelPackageGroupName",
            63,
            r"[A-Za-z0-9-]",
            _SAGEMAKER_TEXT,
            f"{_DOCS}/sagemaker/latest/APIReference/API_CreateModelPackageGroup.html",
            pattern=_SAGEMAKER,
            note="required input: the Terraform schema has no `name`, so nothing auto-names it",
        ),
        "aws:sagemaker/pipeline:Pipeline": _rule(
            "pipelineName",
            256,
            r"[A-Za-z0-9-]",
            _SAGEMAKER_TEXT,
            f"{_DOCS}/sagemaker/latest/APIReference/API_CreatePipeline.html",
            pattern=_SAGEMAKER,
            note="required input: the Terraform schema has no `name`, so nothing auto-names it",
        ),
        # --- EKS
        "aws:eks/cluster:Cluster": _rule(
            "name",
            100,
            r"[A-Za-z0-9_-]",
            "letters, digits, '-' and '_', starting with a letter or digit",
            f"{_DOCS}/eks/latest/APIReference/API_CreateCluster.html",
            pattern=r"[0-9A-Za-z][A-Za-z0-9_-]*",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:eks/nodeGroup:NodeGroup": _rule(
            "nodeGroupName",
            63,
            r"[A-Za-z0-9_-]",
            "letters, digits, '-' and '_', starting with a letter or digit",
            f"{_DOCS}/eks/latest/APIReference/API_CreateNodegroup.html",
            pattern=r"[0-9A-Za-z][A-Za-z0-9_-]*",
            autoname=AutoName(255, f'{_OVERRIDES}: AutoName("nodeGroupName", 255, "-")'),
        ),
        # --- messaging and workflows
        "aws:sqs/queue:Queue": _rule(
            "name",
            80,
            r"[A-Za-z0-9_.-]",
            "letters, digits, '-' and '_' ('.' only in the '.fifo' suffix of a FIFO queue)",
            f"{_DOCS}/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html",
            pattern=r"[A-Za-z0-9_-]+(?:\.fifo)?",
            autoname=AutoName(
                80,
                f'{_OVERRIDES}: AutoNameWithCustomOptions("name", Maxlen 80, "-", '
                'PostTransform ".fifo" when fifoQueue)',
                fifo_flag="fifoQueue",
            ),
        ),
        "aws:sns/topic:Topic": _rule(
            "name",
            256,
            r"[A-Za-z0-9_.-]",
            "letters, digits, '-' and '_' ('.' only in the '.fifo' suffix of a FIFO topic)",
            f"{_DOCS}/sns/latest/api/API_CreateTopic.html",
            pattern=r"[A-Za-z0-9_-]+(?:\.fifo)?",
            autoname=AutoName(
                80,
                f'{_OVERRIDES}: AutoNameWithCustomOptions("name", Maxlen 80, "-", '
                'PostTransform ".fifo" when fifoTopic)',
                fifo_flag="fifoTopic",
            ),
        ),
        "aws:sfn/stateMachine:StateMachine": _rule(
            "name",
            80,
            r"[A-Za-z0-9_-]",
            "letters, digits, '-' and '_' (AWS takes more, but only these keep CloudWatch "
            "logging possible)",
            f"{_DOCS}/step-functions/latest/apireference/API_CreateStateMachine.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:lambda/function:Function": _rule(
            "name",
            64,
            r"[A-Za-z0-9_-]",
            "letters, digits, '-' and '_'",
            f"{_DOCS}/lambda/latest/api/API_CreateFunction.html",
            autoname=AutoName(64, f'{_OVERRIDES}: AutoName("name", 64, "-") on function_name'),
        ),
        # --- load balancing: the 32-character target group cap is set only for aws_lb_*;
        # aws_alb_target_group and both load balancers keep the 255 default.
        "aws:lb/targetGroup:TargetGroup": _rule(
            "name",
            32,
            r"[A-Za-z0-9-]",
            _ELB_TEXT,
            f"{_DOCS}/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html",
            pattern=_ELB,
            autoname=AutoName(32, f'{_ALIASES}: AutoName("name", 32, "-")'),
        ),
        "aws:alb/targetGroup:TargetGroup": _rule(
            "name",
            32,
            r"[A-Za-z0-9-]",
            _ELB_TEXT,
            f"{_DOCS}/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html",
            pattern=_ELB,
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:lb/loadBalancer:LoadBalancer": _rule(
            "name",
            32,
            r"[A-Za-z0-9-]",
            f"{_ELB_TEXT}, not starting with 'internal-'",
            f"{_DOCS}/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html",
            pattern=f"(?!internal-){_ELB}",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:alb/loadBalancer:LoadBalancer": _rule(
            "name",
            32,
            r"[A-Za-z0-9-]",
            f"{_ELB_TEXT}, not starting with 'internal-'",
            f"{_DOCS}/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html",
            pattern=f"(?!internal-){_ELB}",
            autoname=AutoName(255, _DEFAULT),
        ),
        # --- CloudWatch and EventBridge
        "aws:cloudwatch/logGroup:LogGroup": _rule(
            "name",
            512,
            r"[A-Za-z0-9._/#-]",
            "letters, digits and ._/#-",
            f"{_DOCS}/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:cloudwatch/logStream:LogStream": _rule(
            "name",
            512,
            r"[^:*]",
            "any character but ':' and '*'",
            f"{_DOCS}/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogStream.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:cloudwatch/metricAlarm:MetricAlarm": _rule(
            "name",
            255,
            r"[^\x00-\x1f\x7f]",
            "UTF-8 without ASCII control characters",
            f"{_DOCS}/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
            autoname=AutoName(255, f'{_OVERRIDES}: AutoName("name", 255, "-") on alarm_name'),
        ),
        "aws:cloudwatch/eventRule:EventRule": _rule(
            "name",
            64,
            r"[A-Za-z0-9._-]",
            "letters, digits and ._-",
            f"{_DOCS}/eventbridge/latest/APIReference/API_PutRule.html",
            autoname=AutoName(64, f'{_OVERRIDES}: AutoName("name", 64, "-")'),
        ),
        "aws:cloudwatch/eventTarget:EventTarget": _rule(
            "targetId",
            64,
            r"[A-Za-z0-9._-]",
            "letters, digits and ._-",
            f"{_DOCS}/eventbridge/latest/APIReference/API_Target.html",
            autoname=AutoName(255, f'{_OVERRIDES}: AutoName("targetId", 255, "-")'),
        ),
        "aws:cloudwatch/dashboard:Dashboard": _rule(
            "dashboardName",
            255,
            r"[A-Za-z0-9_-]",
            "letters, digits, '-' and '_'",
            f"{_DOCS}/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html",
            note="required input: the Terraform schema has no `name`, so nothing auto-names it",
        ),
        # --- data lake and analytics
        "aws:glue/catalogDatabase:CatalogDatabase": _GLUE_NAME,
        "aws:glue/catalogTable:CatalogTable": _GLUE_NAME,
        "aws:athena/workgroup:Workgroup": _rule(
            "name",
            128,
            r"[A-Za-z0-9._-]",
            "letters, digits and ._-",
            f"{_DOCS}/athena/latest/APIReference/API_CreateWorkGroup.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": _rule(
            "name",
            64,
            r"[A-Za-z0-9_.-]",
            "letters, digits and ._-",
            f"{_DOCS}/firehose/latest/APIReference/API_CreateDeliveryStream.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:ecr/repository:Repository": _rule(
            "name",
            256,
            r"[a-z0-9._/-]",
            "lower-case letters and digits, separated by '.', '_', '__' or '-' and grouped by '/'",
            f"{_DOCS}/AmazonECR/latest/APIReference/API_CreateRepository.html",
            pattern=r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*",
            min_len=2,
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:ecr/pullThroughCacheRule:PullThroughCacheRule": _rule(
            "ecrRepositoryPrefix",
            30,
            r"[a-z0-9._/-]",
            "lower-case letters and digits, separated by '.', '_' or '-' and grouped by '/'",
            f"{_DOCS}/AmazonECR/latest/APIReference/API_CreatePullThroughCacheRule.html",
            pattern=r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*",
            min_len=2,
            note="required input; a registry-wide prefix, one rule per prefix and account",
        ),
        # --- keys, audit, secrets
        "aws:kms/alias:Alias": _rule(
            "name",
            256,
            r"[A-Za-z0-9/_-]",
            "'alias/' then letters, digits and /_- (not 'alias/aws/')",
            f"{_DOCS}/kms/latest/APIReference/API_CreateAlias.html",
            pattern=r"alias/(?!aws/)[A-Za-z0-9/_-]+",
            autoname=AutoName(
                238,
                f'{_OVERRIDES}: AutoNameWithCustomOptions("name", Maxlen 238, "-", '
                'PostTransform "alias/" prefix)',
                prefix="alias/",
            ),
        ),
        "aws:kms/grant:Grant": _rule(
            "name",
            256,
            r"[A-Za-z0-9:/_-]",
            "letters, digits and :/_-",
            f"{_DOCS}/kms/latest/APIReference/API_CreateGrant.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:cloudtrail/trail:Trail": _rule(
            "name",
            128,
            r"[A-Za-z0-9._-]",
            "letters, digits and ._-, starting and ending with a letter or digit, no two of "
            "._- in a row, not an IP address",
            f"{_DOCS}/awscloudtrail/latest/APIReference/API_CreateTrail.html",
            pattern=r"(?!\d+\.\d+\.\d+\.\d+$)[A-Za-z0-9](?:[A-Za-z0-9]|[._-](?![._-]))*[A-Za-z0-9]",
            min_len=3,
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:secretsmanager/secret:Secret": _rule(
            "name",
            512,
            r"[A-Za-z0-9/_+=.@-]",
            "letters, digits and /_+=.@-",
            f"{_DOCS}/secretsmanager/latest/apireference/API_CreateSecret.html",
            autoname=AutoName(255, _DEFAULT),
        ),
        # --- databases
        "aws:dynamodb/table:Table": _rule(
            "name",
            255,
            r"[A-Za-z0-9_.-]",
            "letters, digits and ._-",
            f"{_DOCS}/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html",
            min_len=3,
            autoname=AutoName(255, _DEFAULT),
        ),
        "aws:rds/instance:Instance": _rule(
            "identifier",
            63,
            r"[A-Za-z0-9-]",
            _RDS_TEXT,
            f"{_DOCS}/AmazonRDS/latest/APIReference/API_CreateDBInstance.html",
            pattern=_RDS,
            autoname=AutoName(
                255,
                f"{_OVERRIDES}: ComputeAutoNameDefault(Randlen 7, Maxlen 255, no separator; "
                "Randlen 3, Maxlen 15 for SQL Server)",
                separator="",
                engine_overrides=(("sqlserver", 3, 15),),
            ),
            note="SQL Server identifiers are capped at 15 characters by AWS too",
        ),
        "aws:rds/cluster:Cluster": _rule(
            "clusterIdentifier",
            63,
            r"[A-Za-z0-9-]",
            _RDS_TEXT,
            f"{_DOCS}/AmazonRDS/latest/APIReference/API_CreateDBCluster.html",
            pattern=_RDS,
            note="left unset, the upstream Terraform provider picks a unique 'tf-...' "
            "identifier at create time (no Pulumi autonaming, unknown in preview)",
        ),
    }
)


def rule_for(type_: str) -> NameRule | None:
    return RULES.get(type_)


class AutonameError(ValueError):
    """pulumi-aws would refuse to auto-name the resource (its Check fails preview)."""


def autoname_applies(rule: NameRule, inputs: Mapping[str, Any]) -> bool:
    """The provider fills `rule.prop`: it auto-names the type and the program set neither the
    property nor its conflicting `<prop>Prefix`."""
    return (
        rule.autoname is not None
        and inputs.get(rule.prop) is None
        and inputs.get(rule.prefix_prop) is None
    )


def autoname_shape(auto: AutoName, inputs: Mapping[str, Any]) -> tuple[int, int | None]:
    """(randlen, maxlen) for these inputs: RDS SQL Server engines get shorter identifiers."""
    engine = inputs.get("engine")
    for needle, randlen, maxlen in auto.engine_overrides:
        if isinstance(engine, str) and needle in engine.lower():
            return randlen, maxlen
    return auto.randlen, auto.maxlen


def random_chars(seed: str, length: int, charset: str = HEX) -> str:
    """Stand-in for the provider's random suffix, stable per `seed`: with hex, the first
    `length` hex digits of sha256(seed) (the plan's ids have always been derived this way)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    if charset == HEX:
        return digest[:length]
    while len(digest) < 2 * length:
        digest += hashlib.sha256(digest.encode()).hexdigest()
    picks = (int(digest[2 * i : 2 * i + 2], 16) for i in range(length))
    return "".join(charset[p % len(charset)] for p in picks)


def prefixed_unique_id(prefix: str, seed: str) -> str:
    """What the upstream provider makes of `<prop>Prefix` (id.PrefixedUniqueId), stable per seed."""
    return prefix + random_chars(seed, 18, DIGITS) + random_chars(seed + "#", 8)


def refusal(type_: str, prefix: str, randlen: int, maxlen: int) -> str:
    """The provider's own message (tfbridge ComputeAutoNameDefault wrapping NewUniqueName)."""
    return (
        f"could not make instance of '{type_}': name '{prefix}' plus {randlen} random chars "
        f"is longer than maximum length {maxlen}"
    )


def provider_autoname(type_: str, logical: str, inputs: Mapping[str, Any], seed: str) -> str | None:
    """The name pulumi-aws gives the resource in Check, or None when it does not auto-name it.

    `seed` stands in for the provider's randomness. Raises `AutonameError` with the provider's
    message when the logical name is too long for the provider's maxlen.
    """
    rule = RULES.get(type_)
    if rule is None or rule.autoname is None or not autoname_applies(rule, inputs):
        return None
    auto = rule.autoname
    randlen, maxlen = autoname_shape(auto, inputs)
    prefix = (logical.lower() if auto.lowercase else logical) + auto.separator
    if maxlen is not None and len(prefix) + randlen > maxlen:
        raise AutonameError(refusal(type_, prefix, randlen, maxlen))
    name = prefix + random_chars(seed, randlen, auto.charset)
    if auto.prefix and not name.startswith(auto.prefix):
        name = auto.prefix + name
    if auto.fifo_flag is not None and inputs.get(auto.fifo_flag) is True:
        name += ".fifo"
    return name


def looks_autonamed(rule: NameRule, logical: str, name: str) -> bool:
    """`name` has the shape the provider's autonaming gives this logical name."""
    auto = rule.autoname
    if auto is None:
        return False
    stem = auto.prefix + (logical.lower() if auto.lowercase else logical) + auto.separator
    rest = name.removeprefix(stem).removesuffix(".fifo") if name.startswith(stem) else None
    return rest is not None and re.fullmatch(f"[{re.escape(auto.charset)}]+", rest) is not None
