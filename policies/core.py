"""The policy model: resources, unknown values, policy specs and the runner.

Policies are pure functions over a resource's type and camelCase properties (resource policies) or
over the list of resources (stack policies). The same `PolicySpec` objects run in two places:

- `mlplat preview`, over the recorded plan (`evaluate_plan`): unknown values arrive as
  `{"unknown": true}`, secrets as `{"secret": true, "value": ...}`, resource options are known;
- the Pulumi CLI (`pulumi preview --policy-pack policies`), through `policies.crossguard`: unknown
  values arrive as pulumi_policy's sentinel strings behind its checking proxies.

Both are normalized here into `Resource` records whose unknowns are the `UNKNOWN` singleton, and
whose type is canonical: a resource declared with an aliased or legacy type token of a service the
pack knows (`aws:s3/bucketV2:BucketV2`, `aws:alb/listener:Listener`) is checked as the type the
policies are written for (`CANONICAL_TYPES`); the token the program used stays in `declared_type`.
Reading one through `Resource.get` raises `UnknownValueError`; the runner turns that into a
*skipped* finding with a note (never a violation), the way the engine treats unknowns in preview.

This module imports neither pulumi nor pulumi_policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Enforcement = Literal["mandatory", "advisory"]
SeverityName = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[SeverityName, ...] = ("critical", "high", "medium", "low")
ENVIRONMENTS = ("dev", "staging", "prod", "local")
DEFAULT_GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "p4d", "p5")
NAME_PATTERN = re.compile(r"^[a-z0-9]+-[a-z0-9]+-[a-z0-9]+(-[a-z0-9]+)*$")

# Resource types whose deletion loses data or a long-lived identity. Shared with `mlplat.plan.diff`.
STATEFUL_TYPES: frozenset[str] = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:glue/catalogDatabase:CatalogDatabase",
        "aws:glue/catalogTable:CatalogTable",
        "aws:eks/cluster:Cluster",
        "aws:sagemaker/endpoint:Endpoint",
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        "aws:ecr/repository:Repository",
        "aws:dynamodb/table:Table",
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:efs/fileSystem:FileSystem",
        "aws:kinesis/stream:Stream",
        "aws:sqs/queue:Queue",
    }
)


def _token(module: str, name: str) -> str:
    return f"aws:{module}/{name}:{name[0].upper()}{name[1:]}"


# S3 configuration resources that pulumi-aws v7 renamed from `<name>V2` (each declares the V2 token
# as its alias); the V2 classes remain, same inputs.
_S3_RENAMED_V2 = (
    "bucketAccelerateConfiguration",
    "bucketAcl",
    "bucketCorsConfiguration",
    "bucketLifecycleConfiguration",
    "bucketLogging",
    "bucketObjectLockConfiguration",
    "bucketRequestPaymentConfiguration",
    "bucketServerSideEncryptionConfiguration",
    "bucketVersioning",
    "bucketWebsiteConfiguration",
)
# `aws.alb.*` are the `aws.lb.*` resources under their older module name (same inputs); both still
# exist, and each declares its pre-v4 token (`applicationloadbalancing`, `elasticloadbalancingv2`).
_LB = (
    "listener",
    "listenerCertificate",
    "listenerRule",
    "loadBalancer",
    "targetGroup",
    "targetGroupAttachment",
)
_ELB = (
    "appCookieStickinessPolicy",
    "attachment",
    "listenerPolicy",
    "loadBalancer",
    "loadBalancerBackendServerPolicy",
    "loadBalancerCookieStickinessPolicy",
    "loadBalancerPolicy",
    "sslNegotiationPolicy",
)

# Aliased and legacy type tokens -> the canonical token the policies are written for. A resource
# declared with a key is checked as the value: every policy, existing or future, sees the canonical
# type. Each pair has the same inputs, or differs only where no policy reads (BucketV2's plural
# inline blocks). Every alias the installed pulumi-aws declares is here, and every token exists in
# it (tests/policies/test_aliases.py).
CANONICAL_TYPES: Mapping[str, str] = {
    "aws:s3/bucketV2:BucketV2": "aws:s3/bucket:Bucket",
    **{_token("s3", f"{name}V2"): _token("s3", name) for name in _S3_RENAMED_V2},
    "aws:s3/BucketObject:BucketObject": "aws:s3/bucketObjectv2:BucketObjectv2",
    **{
        _token(module, name): _token("lb", name)
        for module in ("alb", "applicationloadbalancing", "elasticloadbalancingv2")
        for name in _LB
    },
    **{_token("elasticloadbalancing", name): _token("elb", name) for name in _ELB},
    # OpenSearch Service's pre-2021 name; the domain inputs the policies read are the same
    **{
        _token("elasticsearch", name): _token("opensearch", name)
        for name in ("domain", "domainPolicy", "domainSamlOptions")
    },
    # renamed tokens the SDK keeps as aliases (a typo fixed, a resource moved to its own module)
    "aws:chime/voiceConnectorOrganization:VoiceConnectorOrganization": (
        "aws:chime/voiceConnectorOrigination:VoiceConnectorOrigination"
    ),
    "aws:directoryservice/conditionalForwader:ConditionalForwader": (
        "aws:directoryservice/conditionalForwarder:ConditionalForwarder"
    ),
    "aws:directoryservice/logService:LogService": (
        "aws:directoryservice/logSubscription:LogSubscription"
    ),
    "aws:ec2/encryptionControl:EncryptionControl": (
        "aws:ec2/vpcEncryptionControl:VpcEncryptionControl"
    ),
    "aws:ec2/transitGatewayPeeringAttachmentAccepter:TransitGatewayPeeringAttachmentAccepter": (
        "aws:ec2transitgateway/peeringAttachmentAccepter:PeeringAttachmentAccepter"
    ),
    "aws:lambda/microvmsImage:MicrovmsImage": "aws:lambdamicrovms/image:Image",
    "aws:ses/confgurationSet:ConfgurationSet": "aws:ses/configurationSet:ConfigurationSet",
    "aws:workspaces/webBrowserSettings:WebBrowserSettings": (
        "aws:workspacesweb/browserSettings:BrowserSettings"
    ),
    "aws:workspaces/webNetworkSettings:WebNetworkSettings": (
        "aws:workspacesweb/networkSettings:NetworkSettings"
    ),
    "aws:workspaces/webUserSettings:WebUserSettings": (
        "aws:workspacesweb/userSettings:UserSettings"
    ),
}


def canonical_type(type_: str) -> str:
    """The token the policies are written for: `type_` itself unless it is a known alias."""
    return CANONICAL_TYPES.get(type_, type_)


# pulumi_policy's sentinels for values unknown during preview (pulumi_policy/proxy.py).
_POLICY_SDK_UNKNOWNS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
        "030794c1-ac77-496b-92df-f27374a8bd58",
        "e48ece36-62e2-4504-bad9-02848725956a",
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
    }
)
# pulumi's own unknown marker (pulumi.runtime.rpc.UNKNOWN), in case a raw value slips through.
_ENGINE_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class Unknown:
    """A value the engine cannot know before the update runs (an id, an ARN, ...)."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown()


class UnknownValueError(Exception):
    """A policy read a value that is unknown during preview."""

    def __init__(self, path: str, message: str | None = None) -> None:
        super().__init__(message or f"{path} is unknown during preview")
        self.path = path


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


def normalize(value: Any) -> Any:
    """Plan JSON or pulumi_policy values -> plain data with `UNKNOWN` for unknowns.

    - `{"unknown": true}` (the plan's marker) and pulumi_policy's sentinel strings become `UNKNOWN`;
    - `{"secret": true, "value": v}` (the plan's secret marker) becomes `v`;
    - pulumi_policy's proxies are unwrapped (their `__target`), so nothing raises while copying;
    - whole floats become ints: the Pulumi CLI hands every number over as a float (`2.0`), the
      plan engine as the program wrote it, and checks compare with ints.
    """
    target = _proxy_target(value)
    if target is not None:
        return normalize(target)
    if isinstance(value, Mapping):
        if dict(value) == {"unknown": True}:
            return UNKNOWN
        if set(value) == {"secret", "value"} and value.get("secret") is True:
            return normalize(value["value"])
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if isinstance(value, str) and (value in _POLICY_SDK_UNKNOWNS or value == _ENGINE_UNKNOWN):
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _proxy_target(value: Any) -> Any:
    """The raw container behind a pulumi_policy proxy, or None if `value` is not one."""
    kind = type(value).__name__
    if kind in ("_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy"):
        return value["__target"]
    if kind == "Secret" and hasattr(value, "value"):
        return value.value
    return None


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource as a policy sees it: type, names, camelCase properties (normalized)."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    id: Any = None  # the physical id (plan), UNKNOWN, or None when the engine does not say
    parent: str | None = None
    protect: bool | None = None  # None: resource options are not visible here
    # property name -> URNs it depends on (the CLI tells; the plan does not, but knows the ids)
    deps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the type token the program declared, when `type` is its canonical form (else empty)
    declared_type: str = ""

    def __post_init__(self) -> None:
        canonical = canonical_type(self.type)
        if canonical != self.type:
            object.__setattr__(self, "declared_type", self.declared_type or self.type)
            object.__setattr__(self, "type", canonical)

    def get(self, *path: str | int, default: Any = None) -> Any:
        """The value at `path` (keys and list indexes); `default` when absent.

        Raises `UnknownValueError` when the value, or a container on the way, is unknown.
        """
        return dig(self.props, path, default=default)

    def tags(self) -> Mapping[str, Any]:
        tags = self.get("tags", default={})
        return tags if isinstance(tags, Mapping) else {}

    def ref(self, prop: str) -> Any:
        """The raw value of a reference property (`bucket`...), unknown or not."""
        return self.props.get(prop)

    def where(self) -> str:
        return f"{self.declared_type or self.type} {self.name!r}"


def dig(value: Any, path: Sequence[str | int], default: Any = None) -> Any:
    walked: list[str] = []
    for step in path:
        if is_unknown(value):
            raise UnknownValueError("." + ".".join(walked))
        walked.append(str(step))
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return default
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                return default
            value = value[step]
    if is_unknown(value):
        raise UnknownValueError("." + ".".join(walked))
    return value


def known(value: Any, what: str) -> Any:
    """`value`, or raise `UnknownValueError` naming `what` if it is unknown."""
    if is_unknown(value):
        raise UnknownValueError(what)
    return value


def contains_unknown(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def json_document(value: Any, what: str) -> Any:
    """A JSON document property (IAM policy, pipeline definition) as data; `None` if absent."""
    value = known(value, what)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return {"__invalid_json__": value}
    return value


def listify(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


# --- context (pack configuration) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """Pack configuration: the default environment and the GPU allow-list."""

    environment: str | None = None
    allowed_gpu_families: tuple[str, ...] = DEFAULT_GPU_FAMILIES

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Context:
        """Parse pack configuration (`environment`, `allowedGpuFamilies`); raises ValueError."""
        config = dict(config or {})
        problems: list[str] = []
        unknown_keys = sorted(set(config) - {"environment", "allowedGpuFamilies"})
        if unknown_keys:
            problems.append(
                f"unknown policy config key(s) {unknown_keys}; allowed: "
                "environment, allowedGpuFamilies"
            )
        env = config.get("environment")
        if env is not None and env not in ENVIRONMENTS:
            problems.append(
                f"environment: {env!r} is not allowed; expected one of {', '.join(ENVIRONMENTS)}"
            )
        families = config.get("allowedGpuFamilies", list(DEFAULT_GPU_FAMILIES))
        if not isinstance(families, list | tuple) or not all(
            isinstance(f, str) and re.fullmatch(r"[a-z0-9]+", f) for f in families
        ):
            problems.append(
                f"allowedGpuFamilies: {families!r} is not allowed; expected a list of "
                "instance families such as ['g5', 'p4d']"
            )
            families = list(DEFAULT_GPU_FAMILIES)
        if problems:
            raise ValueError("policy pack config: " + "; ".join(problems))
        return cls(environment=env, allowed_gpu_families=tuple(families))

    def environment_of(self, resource: Resource) -> str | None:
        """The resource's `environment` tag when known, else the pack's configured environment."""
        tags = resource.props.get("tags")
        if isinstance(tags, Mapping):
            env = tags.get("environment")
            if isinstance(env, str) and env:
                return env
        return self.environment

    def is_prod(self, resource: Resource) -> bool:
        return self.environment_of(resource) == "prod"


# --- policy specs and findings ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """A violation (`skipped=False`) or a note that a check could not run (`skipped=True`)."""

    urn: str
    message: str
    skipped: bool = False


ResourceCheck = Callable[[Resource, Context], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], Context], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """One policy: metadata plus a pure check (exactly one of `check` / `stack_check`)."""

    name: str
    description: str
    enforcement: Enforcement
    severity: SeverityName
    reference: str
    types: tuple[str, ...] = ()  # resource types a resource check applies to (empty: all)
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    config_keys: tuple[str, ...] = ("environment",)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"policy name {self.name!r} must be <service>-<resource>-<rule>")
        if (self.check is None) == (self.stack_check is None):
            raise ValueError(f"policy {self.name}: give exactly one of check or stack_check")
        if self.enforcement not in ("mandatory", "advisory"):
            raise ValueError(f"policy {self.name}: enforcement {self.enforcement!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"policy {self.name}: severity {self.severity!r}")
        if not self.description or "\n" in self.description or not self.reference:
            raise ValueError(f"policy {self.name}: one-line description and reference required")

    @property
    def kind(self) -> Literal["resource", "stack"]:
        return "resource" if self.check is not None else "stack"

    def applies_to(self, resource: Resource) -> bool:
        return not self.types or resource.type in self.types

    def run(self, resources: Sequence[Resource], ctx: Context) -> list[Finding]:
        """Violations and skip notes over `resources` (all of a stack, or one resource)."""
        if self.stack_check is not None:
            return list(self.stack_check(resources, ctx))
        assert self.check is not None
        findings: list[Finding] = []
        for resource in resources:
            if self.applies_to(resource):
                findings.extend(check_one(self.check, resource, ctx))
        return findings

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "enforcement": self.enforcement,
            "severity": self.severity,
            "description": self.description,
            "reference": self.reference,
        }


def check_one(check: ResourceCheck, resource: Resource, ctx: Context) -> list[Finding]:
    try:
        return [Finding(resource.urn, message) for message in check(resource, ctx)]
    except UnknownValueError as exc:
        return [Finding(resource.urn, f"skipped {resource.where()}: {exc}", skipped=True)]


def per_resource(
    resources: Iterable[Resource], check: Callable[[Resource], Iterable[str]]
) -> Iterator[Finding]:
    """Run a per-item check inside a stack policy, one unknown skipping only that item."""
    for resource in resources:
        try:
            for message in check(resource):
                yield Finding(resource.urn, message)
        except UnknownValueError as exc:
            yield Finding(resource.urn, f"skipped {resource.where()}: {exc}", skipped=True)


def of_type(resources: Iterable[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.type in types]


def resolve(
    ref: Any, prop: str, source: Resource, targets: Sequence[Resource], *fields: str
) -> Resource | None:
    """The resource in `targets` that `source.<prop>` references, or None if it is not in the stack.

    Matched through the engine's property dependencies when it gives them (the CLI), else by the
    target's `id` or one of its name `fields` when the value is known (the plan); raises
    `UnknownValueError` when neither can tell.
    """
    urns = source.deps.get(prop, ())
    for target in targets:
        if target.urn in urns:
            return target
    if isinstance(ref, str):
        for target in targets:
            if isinstance(target.id, str) and target.id == ref:
                return target
            if any(target.props.get(f) == ref for f in fields):
                return target
        return None
    if is_unknown(ref) or contains_unknown(ref):
        raise UnknownValueError(f".{prop} of {source.where()}")
    return None


# --- running over a recorded plan -------------------------------------------------------------


def from_plan(resource: Mapping[str, Any]) -> Resource:
    """A plan JSON resource (`mlplat.plan.engine.RecordedResource.to_json`) as a policy `Resource`.

    The name the provider generates for an auto-named resource (`autonamed`) is merged into the
    properties: under the CLI, analyzers see the provider-checked inputs, which hold it too.
    """
    options = resource.get("options") or {}
    protect = options.get("protect") if isinstance(options, Mapping) else None
    autonamed = resource.get("autonamed") or {}
    return Resource(
        type=str(resource["type"]),
        name=str(resource["name"]),
        urn=str(resource["urn"]),
        props=normalize({**(resource.get("inputs") or {}), **autonamed}),
        id=normalize(resource.get("id")) or None,
        parent=resource.get("parent") or None,
        protect=bool(protect) if isinstance(protect, bool) else None,
    )


@dataclass(frozen=True, slots=True)
class Violation:
    policy: str
    enforcement: Enforcement
    severity: SeverityName
    urn: str
    name: str
    type: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "enforcement": self.enforcement,
            "severity": self.severity,
            "urn": self.urn,
            "name": self.name,
            "type": self.type,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class PolicyReport:
    violations: tuple[Violation, ...]
    skipped: tuple[Violation, ...]  # the same shape; `message` is the note

    @property
    def mandatory_failed(self) -> bool:
        return any(v.enforcement == "mandatory" for v in self.violations)

    def by_severity(self) -> dict[SeverityName, list[Violation]]:
        return {s: [v for v in self.violations if v.severity == s] for s in SEVERITIES}

    def to_json(self) -> dict[str, Any]:
        return {"violations": [v.to_json() for v in self.violations]}


def evaluate(
    resources: Sequence[Resource],
    config: Mapping[str, Any] | None = None,
    policies: Sequence[PolicySpec] | None = None,
) -> PolicyReport:
    """Run every policy over the resources of one stack."""
    if policies is None:
        from policies.rules import POLICIES

        policies = POLICIES
    ctx = Context.from_config(config)
    by_urn = {r.urn: r for r in resources}
    violations: list[Violation] = []
    skipped: list[Violation] = []
    for spec in policies:
        for finding in spec.run(resources, ctx):
            res = by_urn.get(finding.urn)
            entry = Violation(
                spec.name,
                spec.enforcement,
                spec.severity,
                finding.urn,
                res.name if res else "",
                (res.declared_type or res.type) if res else "",
                finding.message,
            )
            (skipped if finding.skipped else violations).append(entry)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    violations.sort(key=lambda v: (order[v.severity], v.policy, v.urn, v.message))
    skipped.sort(key=lambda v: (v.policy, v.urn, v.message))
    return PolicyReport(tuple(violations), tuple(skipped))


def evaluate_plan(
    plan_resources: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any] | None = None,
    policies: Sequence[PolicySpec] | None = None,
) -> PolicyReport:
    """`evaluate` over the `resources` list of a plan JSON."""
    return evaluate([from_plan(r) for r in plan_resources], config, policies)
