"""IAM: roles, managed and inline policies, attachments, identities."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    RealizeError,
    Registration,
    drop_empty,
    exists,
    same_json,
    tag_list,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service, no_arn_fake

# --- the plan engine's fakes


_IAM_NOUNS = {
    "Role": "role",
    "Policy": "policy",
    "User": "user",
    "InstanceProfile": "instance-profile",
}


def _fake_identity(f: Fake) -> Outputs:
    path = f.inputs.get("path") or "/"
    arn = f"arn:aws:iam::{f.account}:{_IAM_NOUNS[f.kind]}{path}{f.physical}"
    ident = arn if f.kind == "Policy" else f.physical
    return ident, {"name": f.physical, "arn": arn, "uniqueId": f"AROA{f.digest(16).upper()}"}


def _fake_oidc_provider(f: Fake) -> Outputs:
    url = str(f.inputs.get("url", "oidc.example")).removeprefix("https://")
    arn = f"arn:aws:iam::{f.account}:oidc-provider/{url}"
    return arn, {"arn": arn}


def _fake_role_policy(f: Fake) -> Outputs:
    """Id `<role>:<policy name>`; no ARN of its own."""
    name = f.input("name") or f.physical
    return f"{f.input('role')}:{name}", {"name": name}


def _fake_attachment(f: Fake) -> Outputs:
    """Id `<role>-<20 digits>` (the provider's unique id); no ARN of its own."""
    return f"{f.input('role')}-{int(f.digest(16), 16) % 10**20:020d}", {}


# --- the sandbox's realizers and readers


def _read_role(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("iam").get_role(RoleName=ident)


def _iam_role(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    iam = ctx.client("iam")
    name = reg.physical(max_len=64)
    trust = str(reg.require("assumeRolePolicy"))
    found = exists(lambda: iam.get_role(RoleName=name), "NoSuchEntity")
    if found is None:
        role = iam.create_role(
            **drop_empty(
                {
                    "RoleName": name,
                    "Path": reg.get("path", "/"),
                    "AssumeRolePolicyDocument": trust,
                    "Description": reg.get("description"),
                    "MaxSessionDuration": reg.get("maxSessionDuration"),
                    "PermissionsBoundary": reg.get("permissionsBoundary"),
                    "Tags": tag_list(reg.get("tags")),
                }
            )
        )["Role"]
    else:
        role = found["Role"]
        if not same_json(role.get("AssumeRolePolicyDocument"), trust):
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    for inline in reg.get("inlinePolicies", []):
        if inline.get("name") and inline.get("policy"):
            iam.put_role_policy(
                RoleName=name, PolicyName=inline["name"], PolicyDocument=inline["policy"]
            )
    for arn in reg.get("managedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    return name, {
        "name": name,
        "arn": role["Arn"],
        "uniqueId": role["RoleId"],
        "createDate": str(role.get("CreateDate", "")),
    }


def _read_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("iam").get_policy(PolicyArn=ident)


def _iam_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    iam = ctx.client("iam")
    name = reg.physical(max_len=128)
    path = reg.get("path", "/")
    document = str(reg.require("policy"))
    arn = f"arn:aws:iam::{ctx.account_id}:policy{path}{name}"
    found = exists(lambda: iam.get_policy(PolicyArn=arn), "NoSuchEntity")
    if found is None:
        policy = iam.create_policy(
            **drop_empty(
                {
                    "PolicyName": name,
                    "Path": path,
                    "PolicyDocument": document,
                    "Description": reg.get("description"),
                    "Tags": tag_list(reg.get("tags")),
                }
            )
        )["Policy"]
    else:
        policy = found["Policy"]
        version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        if not same_json(version["PolicyVersion"]["Document"], document):
            versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
            if len(versions) >= 5:  # IAM keeps five versions
                oldest = min(
                    (v for v in versions if not v["IsDefaultVersion"]),
                    key=lambda v: v["CreateDate"],
                )
                iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
            iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    return arn, {
        "arn": arn,
        "name": name,
        "path": path,
        "policyId": policy["PolicyId"],
        "attachmentCount": policy.get("AttachmentCount", 0),
    }


def _read_role_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    role, name = ident.split(":", 1)
    return ctx.client("iam").get_role_policy(RoleName=role, PolicyName=name)


def _iam_role_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    role = str(reg.require("role"))
    name = reg.physical(max_len=128)
    ctx.client("iam").put_role_policy(
        RoleName=role, PolicyName=name, PolicyDocument=str(reg.require("policy"))
    )
    return f"{role}:{name}", {"name": name}


def _read_attachment(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    role, arn = str(state["role"]), str(state["policyArn"])
    attached = ctx.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    if not any(p["PolicyArn"] == arn for p in attached):
        raise RealizeError(f"{arn} is not attached to role {role}")
    return attached


def _iam_attachment(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    role, arn = str(reg.require("role")), str(reg.require("policyArn"))
    ctx.client("iam").attach_role_policy(RoleName=role, PolicyArn=arn)
    digest = hashlib.sha256(arn.encode()).hexdigest()[:12]
    return f"{role}-{digest}", {}


# --- the registry entries

SERVICE = Service(
    owns=("iam",),
    types=(
        AwsType("aws:iam/role:Role", fake=_fake_identity, realize=_iam_role, read=_read_role),
        AwsType(
            "aws:iam/policy:Policy", fake=_fake_identity, realize=_iam_policy, read=_read_policy
        ),
        AwsType("aws:iam/user:User", fake=_fake_identity),
        AwsType("aws:iam/instanceProfile:InstanceProfile", fake=_fake_identity),
        AwsType("aws:iam/openIdConnectProvider:OpenIdConnectProvider", fake=_fake_oidc_provider),
        AwsType(
            "aws:iam/rolePolicy:RolePolicy",
            fake=_fake_role_policy,
            realize=_iam_role_policy,
            read=_read_role_policy,
        ),
        AwsType(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            fake=_fake_attachment,
            realize=_iam_attachment,
            read=_read_attachment,
        ),
    ),
    # IAM's other types (attachments, memberships...) are named by what they join: no ARN
    default_fakes={"iam": no_arn_fake},
)
