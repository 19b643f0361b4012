"""Trust policies: who may assume a role (`aws:iam/role:Role`, `assumeRolePolicy`).

Three mistakes, by how sure the pack can be:

* **anyone**: an Allow to `*` / `{"AWS": "*"}` (or `NotPrincipal`) that no condition narrows to an
  organization, account or principal; or an OIDC provider trusted for any of its identities (no
  `<provider>:sub` condition: for GitHub's, any repository's workflow). Mandatory.
* **another account, wholesale**: an account (`arn:aws:iam::<id>:root` or the bare id) other than
  the stack's own, without `sts:ExternalId` or `aws:PrincipalArn`. Every principal of that account
  with `sts:AssumeRole` could assume the role. Mandatory; a stack policy, as the stack's own
  account is found in the stack: the accounts of its ARNs and of its `aws:SourceAccount` /
  `kms:CallerAccount` conditions (never those of principals). When the stack names no account at
  all, the check is skipped with a note; an account the stack references elsewhere counts as its
  own (a miss, never a false alarm).
* **a service for anyone's resources**: a service principal without `aws:SourceAccount`,
  `aws:SourceArn` or `aws:SourceOrgID` (the confused deputy). Advisory: some services do not send
  them. EC2 is exempt: it assumes an instance profile's role only for instances of the role's own
  account (and the EKS node role AWS documents has no condition). So is CloudTrail: its role for
  CloudWatch Logs delivery does not support `aws:SourceArn` / `aws:SourceAccount` (AWS CloudTrail
  User Guide, "Role policy document for CloudTrail to use CloudWatch Logs for monitoring").
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from policies.core import (
    Context,
    Finding,
    PolicySpec,
    Resource,
    UnknownValueError,
    of_type,
    per_resource,
)
from policies.rules.documents import (
    allows,
    grants_everyone,
    narrowing_keys,
    principals,
    statements,
)

ROLE = "aws:iam/role:Role"
TRUST = "assumeRolePolicy"
# conditions that narrow "anyone" to an organization, account or principal
WHO_KEYS = (
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:userid",
)
CROSS_ACCOUNT_KEYS = ("sts:ExternalId", "aws:PrincipalArn")
SOURCE_KEYS = ("aws:SourceAccount", "aws:SourceArn", "aws:SourceOrgID", "aws:SourceOrgPaths")
NO_SOURCE_SERVICES = frozenset({"ec2.amazonaws.com", "cloudtrail.amazonaws.com"})
ACCOUNT_ROOT = re.compile(r"^(?:arn:aws[a-z-]*:iam::(\d{12}):root|(\d{12}))$")
ARN_ACCOUNT = re.compile(r"\barn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")
ACCOUNT_CONDITION_KEYS = frozenset(
    {"aws:sourceaccount", "kms:calleraccount", "aws:resourceaccount"}
)
PRINCIPAL_KEYS = frozenset({"Principal", "NotPrincipal", "principal"})


def _trust(role: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for label, statement in statements(role, TRUST):
        if allows(statement):
            yield label, statement


def check_not_public(role: Resource, _ctx: Context) -> Iterator[str]:
    for label, statement in _trust(role):
        if grants_everyone(statement) and not narrowing_keys(statement, WHO_KEYS):
            yield (
                f"role {role.name!r}: trust {label} lets any AWS principal assume it "
                "(Principal '*'); name the principals, or narrow it with aws:PrincipalOrgID / "
                "aws:PrincipalAccount / aws:PrincipalArn"
            )
        for provider in principals(statement).get("Federated", []):
            host = _oidc_host(provider)
            if host is None:
                continue
            if not narrowing_keys(statement, (f"{host}:sub",)):
                yield (
                    f"role {role.name!r}: trust {label} lets every identity of the OIDC provider "
                    f"{host} assume it; require {host}:sub (the service account, or the "
                    "repository and branch)"
                )


def _oidc_host(provider: str) -> str | None:
    """`arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com` -> the host part."""
    if provider == "cognito-identity.amazonaws.com":
        return None  # Cognito identity pools: audience and amr conditions, not sub
    _, sep, host = provider.partition(":oidc-provider/")
    return host if sep and host else None


# --- the stack's own account ----------------------------------------------------------------


def stack_accounts(resources: Sequence[Resource]) -> set[str]:
    """The accounts the stack's resources name outside principals (unknown values name none)."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                if k not in PRINCIPAL_KEYS:
                    walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            document = _json_object(value)
            if document is not None:
                walk(document, key)  # a policy document: its principals are skipped
            elif key.lower() in ACCOUNT_CONDITION_KEYS and re.fullmatch(r"\d{12}", value):
                found.add(value)
            else:
                found.update(ARN_ACCOUNT.findall(value))

    for resource in resources:
        walk(resource.props)
    return found


def _json_object(value: str) -> Any:
    if not value.lstrip().startswith("{"):
        return None
    with contextlib.suppress(json.JSONDecodeError):
        return json.loads(value)
    return None


def _account_of(principal: str) -> str | None:
    match = ACCOUNT_ROOT.match(principal)
    return (match.group(1) or match.group(2)) if match else None


def check_cross_account(resources: Sequence[Resource], _ctx: Context) -> Iterable[Finding]:
    home = stack_accounts(resources)

    def check(role: Resource) -> Iterator[str]:
        for label, statement in _trust(role):
            if narrowing_keys(statement, CROSS_ACCOUNT_KEYS):
                continue
            roots = [p for p in principals(statement).get("AWS", []) if _account_of(p)]
            if roots and not home:
                raise UnknownValueError(
                    "account",
                    f"no ARN of the stack names its account, so whether {roots} is another "
                    f"account cannot be told ({role.where()})",
                )
            foreign = [p for p in roots if _account_of(p) not in home]
            if foreign:
                yield (
                    f"role {role.name!r}: trust {label} lets every principal of account(s) "
                    f"{foreign} assume it; require sts:ExternalId (a third party) or "
                    "aws:PrincipalArn (named roles), or trust the exact role ARNs"
                )

    return per_resource(of_type(resources, ROLE), check)


def check_service_source(role: Resource, _ctx: Context) -> Iterator[str]:
    for label, statement in _trust(role):
        services = [
            s for s in principals(statement).get("Service", []) if s not in NO_SOURCE_SERVICES
        ]
        if services and not narrowing_keys(statement, SOURCE_KEYS):
            yield (
                f"role {role.name!r}: trust {label} lets {', '.join(services)} assume it for any "
                "account's resources; add aws:SourceAccount or aws:SourceArn (confused deputy)"
            )


POLICIES = (
    PolicySpec(
        name="iam-role-trust-not-public",
        description="No role is assumable by any AWS principal ('*' without an org/account/"
        "principal condition) or by every identity of an OIDC provider (no :sub condition).",
        enforcement="mandatory",
        severity="critical",
        reference="CKV_AWS_60; CKV_AWS_358",
        types=(ROLE,),
        check=check_not_public,
    ),
    PolicySpec(
        name="iam-role-trust-cross-account",
        description="A role trusting another account as a whole requires sts:ExternalId or "
        "aws:PrincipalArn.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_61; IAM user guide: access for third parties (external ID)",
        stack_check=check_cross_account,
    ),
    PolicySpec(
        name="iam-role-trust-confused-deputy",
        description="A role trusting an AWS service limits it to this account's resources "
        "(aws:SourceAccount / aws:SourceArn); EC2 exempt.",
        enforcement="advisory",
        severity="medium",
        reference="IAM user guide: the confused deputy problem (cross-service)",
        types=(ROLE,),
        check=check_service_source,
    ),
)
