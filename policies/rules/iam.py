"""IAM and KMS policies: least-privilege documents, scoped PassRole, key rotation.

Documents are read from `aws:iam/policy:Policy`, `aws:iam/rolePolicy:RolePolicy`,
`aws:iam/userPolicy:UserPolicy`, `aws:iam/groupPolicy:GroupPolicy` (`policy`) and the inline
policies of `aws:iam/role:Role` (`inlinePolicies[].policy`). Trust policies and key policies are not
identity policies and are not checked here. Only `Allow` statements are checked.

A `*` resource is accepted when the statement's `Sid` carries the reason, as `components/iam.py`
writes it: `WildcardOnly<Reason>` (e.g. `WildcardOnlyEcrGetAuthorizationTokenHasNoResource`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import Any

from policies.core import Context, PolicySpec, Resource, json_document, listify

POLICY_TYPES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ROLE = "aws:iam/role:Role"
DOCUMENT_TYPES = (*POLICY_TYPES, ROLE)
WILDCARD_SID_PREFIX = "WildcardOnly"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


def statements(resource: Resource) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every Allow statement of the resource's identity policies."""
    documents: list[tuple[str, Any]] = []
    if resource.type == ROLE:
        for i, inline in enumerate(listify(resource.get("inlinePolicies"))):
            where = f"inline policy {i}"
            documents.append(
                (
                    where,
                    json_document(
                        inline.get("policy") if isinstance(inline, dict) else None,
                        f".inlinePolicies[{i}].policy of {resource.where()}",
                    ),
                )
            )
    else:
        documents.append(
            ("policy", json_document(resource.get("policy"), f".policy of {resource.where()}"))
        )
    for where, document in documents:
        if not isinstance(document, dict):
            continue
        for j, statement in enumerate(listify(document.get("Statement"))):
            if isinstance(statement, dict) and statement.get("Effect") == "Allow":
                sid = statement.get("Sid")
                yield (f"{where} statement {sid or j}", statement)


def _wildcard_action(action: Any) -> bool:
    return isinstance(action, str) and (action == "*" or action.endswith(":*"))


def check_no_wildcard_actions(resource: Resource, _ctx: Context) -> Iterator[str]:
    for where, statement in statements(resource):
        if "NotAction" in statement:
            yield f"{resource.name}: {where} allows NotAction (everything but a list)"
        wild = [a for a in listify(statement.get("Action")) if _wildcard_action(a)]
        if wild:
            yield f"{resource.name}: {where} allows wildcard action(s) {wild}; name each action"


def check_no_wildcard_resources(resource: Resource, _ctx: Context) -> Iterator[str]:
    for where, statement in statements(resource):
        if "NotResource" in statement:
            yield f"{resource.name}: {where} allows NotResource (everything but a list)"
        if "*" not in listify(statement.get("Resource")):
            continue
        sid = statement.get("Sid")
        if (
            isinstance(sid, str)
            and sid.startswith(WILDCARD_SID_PREFIX)
            and len(sid) > len(WILDCARD_SID_PREFIX)
        ):
            continue
        yield (
            f"{resource.name}: {where} allows resource '*' without a reason; use "
            f"Statement(wildcard_reason=...) (Sid {WILDCARD_SID_PREFIX}<Reason>)"
        )


def _grants_pass_role(statement: dict[str, Any]) -> bool:
    return any(
        isinstance(a, str) and fnmatch.fnmatchcase("iam:passrole", a.lower())
        for a in listify(statement.get("Action"))
    )


def check_pass_role_scoped(resource: Resource, _ctx: Context) -> Iterator[str]:
    for where, statement in statements(resource):
        if not _grants_pass_role(statement):
            continue
        loose = [
            r
            for r in listify(statement.get("Resource"))
            if not (isinstance(r, str) and ROLE_ARN.match(r) and "*" not in r)
        ]
        if loose or not listify(statement.get("Resource")):
            yield (
                f"{resource.name}: {where} grants iam:PassRole on {loose or 'nothing'}; "
                "scope it to exact role ARNs"
            )


_NAMESPACE_OPERATORS = ("StringEquals", "StringLike")


def _grants_put_metric_data(statement: dict[str, Any]) -> bool:
    return any(
        isinstance(a, str) and fnmatch.fnmatchcase("cloudwatch:putmetricdata", a.lower())
        for a in listify(statement.get("Action"))
    )


def check_metric_namespace_scoped(resource: Resource, _ctx: Context) -> Iterator[str]:
    """PutMetricData has no resource-level permissions: without a `cloudwatch:namespace`
    condition a role may put any metric, e.g. a zero `QualityShortfall` or `SkewShare` that keeps
    another job's alarm quiet."""
    for where, statement in statements(resource):
        if not _grants_put_metric_data(statement):
            continue
        conditions = statement.get("Condition")
        scoped = isinstance(conditions, dict) and any(
            isinstance(conditions.get(op), dict)
            and listify(conditions[op].get("cloudwatch:namespace"))
            and "*" not in listify(conditions[op].get("cloudwatch:namespace"))
            for op in _NAMESPACE_OPERATORS
        )
        if not scoped:
            yield (
                f"{resource.name}: {where} grants cloudwatch:PutMetricData in any namespace; "
                "add a cloudwatch:namespace condition (StringEquals) naming the metrics' namespaces"
            )


KEY = "aws:kms/key:Key"


def check_key_rotation(resource: Resource, _ctx: Context) -> Iterator[str]:
    spec = resource.get("customerMasterKeySpec", default="SYMMETRIC_DEFAULT")
    usage = resource.get("keyUsage", default="ENCRYPT_DECRYPT")
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        return  # AWS rotates only symmetric encryption keys
    if resource.get("enableKeyRotation") is not True:
        yield f"KMS key {resource.name!r} does not enable automatic rotation"


POLICIES = (
    PolicySpec(
        name="kms-key-rotation",
        description="Symmetric customer-managed KMS keys rotate automatically.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_7; CIS AWS Foundations v1.4.0 3.8",
        types=(KEY,),
        check=check_key_rotation,
    ),
    PolicySpec(
        name="iam-policy-no-wildcard-actions",
        description="IAM identity policies name every action: no '*', no 'service:*', "
        "no NotAction.",
        enforcement="mandatory",
        severity="critical",
        reference="CKV_AWS_63; CKV_AWS_62; CIS AWS Foundations v1.4.0 1.16",
        types=DOCUMENT_TYPES,
        check=check_no_wildcard_actions,
    ),
    PolicySpec(
        name="iam-policy-no-wildcard-resources",
        description="IAM identity policies use '*' resources only with a WildcardOnly<Reason> "
        "Sid naming the AWS limitation.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_355",
        types=DOCUMENT_TYPES,
        check=check_no_wildcard_resources,
    ),
    PolicySpec(
        name="iam-policy-metric-namespace-scoped",
        description="cloudwatch:PutMetricData is granted only with a cloudwatch:namespace "
        "condition naming the namespaces (the alarms' metrics cannot be forged from elsewhere).",
        enforcement="mandatory",
        severity="high",
        reference="AWS CloudWatch: condition keys (cloudwatch:namespace)",
        types=DOCUMENT_TYPES,
        check=check_metric_namespace_scoped,
    ),
    PolicySpec(
        name="iam-policy-passrole-scoped",
        description="iam:PassRole is granted only on exact role ARNs.",
        enforcement="mandatory",
        severity="critical",
        reference="CKV_AWS_286 (privilege escalation)",
        types=DOCUMENT_TYPES,
        check=check_pass_role_scoped,
    ),
)
