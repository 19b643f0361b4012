"""The pack for the Pulumi CLI: every `PolicySpec` wrapped as a pulumi_policy policy.

The only module that imports pulumi_policy. `policies/__main__.py` hands `crossguard_policies()` to
`PolicyPack`. Values the engine cannot know during preview arrive behind pulumi_policy's checking
proxies; they are unwrapped (`policies.core.normalize`) so one unknown never aborts a whole policy.
What a check could not decide is reported with `not_applicable(<note>)` when nothing was violated;
violations are reported as usual.

Pack configuration (`pulumi preview --policy-pack policies --policy-pack-config config.json`), per
policy: `environment` (dev, staging, prod, local: used when a resource has no `environment` tag)
and, for `ec2-instance-gpu-allowlist`, `allowedGpuFamilies`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.core import DEFAULT_GPU_FAMILIES as GPU_FAMILIES
from policies.core import ENVIRONMENTS, Context, Finding, PolicySpec, Resource, normalize

PACK_NAME = "ml-platform"
ENFORCEMENT = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}
SEVERITY = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
}
CONFIG_PROPERTIES: dict[str, dict[str, Any]] = {
    "environment": {
        "type": "string",
        "enum": list(ENVIRONMENTS),
        "description": "Environment of resources without an `environment` tag",
    },
    "allowedGpuFamilies": {
        "type": "array",
        "items": {"type": "string"},
        "default": list(GPU_FAMILIES),
        "description": "GPU instance families allowed",
    },
}


def context_of(config: Mapping[str, Any] | None) -> Context:
    plain = {k: normalize(v) for k, v in (config or {}).items() if k != "enforcementLevel"}
    return Context.from_config(plain)


def _options(opts: Any) -> tuple[str | None, bool | None]:
    if opts is None:
        return None, None
    protect = getattr(opts, "protect", None)
    return getattr(opts, "parent", None) or None, protect if isinstance(protect, bool) else None


def resource_of(args: ResourceValidationArgs) -> Resource:
    parent, protect = _options(args.opts)
    return Resource(
        type=args.resource_type,
        name=args.name,
        urn=args.urn,
        props=normalize(args.props),
        parent=parent,
        protect=protect,
    )


def stack_resource_of(resource: PolicyResource) -> Resource:
    _, protect = _options(resource.opts)
    deps = {
        prop: tuple(d.urn for d in on)
        for prop, on in (resource.property_dependencies or {}).items()
    }
    return Resource(
        type=resource.resource_type,
        name=resource.name,
        urn=resource.urn,
        props=normalize(resource.props),
        parent=resource.parent.urn if resource.parent is not None else None,
        protect=protect,
        deps=deps,
    )


def report(
    findings: Sequence[Finding],
    report_violation: ReportViolation,
    not_applicable: Callable[[str | None], None],
    stack: bool,
) -> None:
    violations = [f for f in findings if not f.skipped]
    for finding in violations:
        report_violation(finding.message, finding.urn if stack else None)
    notes = [f.message for f in findings if f.skipped]
    if notes and not violations:
        shown = "; ".join(notes[:5]) + (f" (+{len(notes) - 5} more)" if len(notes) > 5 else "")
        not_applicable(shown)


def _metadata(spec: PolicySpec) -> dict[str, Any]:
    schema = {k: CONFIG_PROPERTIES[k] for k in spec.config_keys}
    return {
        "name": spec.name,
        "description": spec.description,
        "enforcement_level": ENFORCEMENT[spec.enforcement],
        "severity": SEVERITY[spec.severity],
        "config_schema": PolicyConfigSchema(properties=schema),
        "framework": PolicyComplianceFramework(name=PACK_NAME, reference=spec.reference),
        "tags": [spec.name.split("-", 1)[0]],
    }


def wrap(spec: PolicySpec) -> Policy:
    if spec.kind == "stack":

        def validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            resources = [stack_resource_of(r) for r in args.resources]
            findings = spec.run(resources, context_of(args.get_config()))
            report(findings, report_violation, args.not_applicable, stack=True)

        return StackValidationPolicy(validate=validate_stack, **_metadata(spec))

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = resource_of(args)
        if not spec.applies_to(resource):
            return
        findings = spec.run([resource], context_of(args.get_config()))
        report(findings, report_violation, args.not_applicable, stack=False)

    return ResourceValidationPolicy(validate=validate, **_metadata(spec))


def crossguard_policies(specs: Sequence[PolicySpec] | None = None) -> list[Policy]:
    if specs is None:
        from policies.rules import POLICIES

        specs = POLICIES
    return [wrap(spec) for spec in specs]
