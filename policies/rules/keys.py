"""KMS key policies: a statement that lets an AWS service use the key says for whom.

A key policy statement for a service principal (`logs.<region>.amazonaws.com`,
`cloudwatch.amazonaws.com`...) without a condition lets that service use the key on behalf of any
account's resources that name it (the confused deputy). It should be held to this account's
resources: `aws:SourceAccount` / `aws:SourceArn`, an encryption context naming the resource
(`kms:EncryptionContext:*`, as CloudWatch Logs and CloudTrail send), or `kms:ViaService` /
`kms:CallerAccount`. Advisory: EventBridge does not send source keys to KMS when it delivers to an
encrypted target, so its statement cannot carry them (it is exempt).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, PolicySpec, Resource
from policies.rules.documents import allows, principals, statements

KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
SCOPING_KEYS = ("aws:sourceaccount", "aws:sourcearn", "kms:viaservice", "kms:calleraccount")
SCOPING_PREFIXES = ("kms:encryptioncontext:",)
NO_SOURCE_SERVICES = frozenset({"events.amazonaws.com"})


def _scoped(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    for operator, block in condition.items():
        if not isinstance(block, Mapping) or "Not" in str(operator) or operator == "Null":
            continue
        for key in block:
            k = str(key).lower()
            if k in SCOPING_KEYS or k.startswith(SCOPING_PREFIXES):
                return True
    return False


def check_service_statements(key: Resource, _ctx: Context) -> Iterator[str]:
    for label, statement in statements(key, "policy"):
        if not allows(statement):
            continue
        services = [
            s for s in principals(statement).get("Service", []) if s not in NO_SOURCE_SERVICES
        ]
        if services and not _scoped(statement):
            yield (
                f"key {key.name!r}: {label} lets {', '.join(services)} use the key for any "
                "account's resources; add aws:SourceAccount / aws:SourceArn or an encryption "
                "context condition naming this account's resources"
            )


POLICIES = (
    PolicySpec(
        name="kms-key-service-principal-scoped",
        description="Key policy statements for AWS service principals are held to this "
        "account's resources by a condition.",
        enforcement="advisory",
        severity="medium",
        reference="AWS KMS developer guide: cross-service confused deputy prevention",
        types=(KEY, KEY_POLICY),
        check=check_service_statements,
    ),
)
