"""KMS: keys, aliases, key policies and grants.

AWS gives a key no name: the sandbox finds a key again by the `SANDBOX_TAG` tag holding its
physical name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    SANDBOX_TAG,
    RealizeContext,
    RealizeError,
    Registration,
    drop_empty,
    pascal,
    tag_list,
)
from mlplat.aws.registry import Arns, AwsType, Fake, Outputs, Service, id_of_input

# --- the plan engine's fakes


# The outputs the plan engine's fake and the sandbox's realizer both answer.
def _key_state(at: Arns, key_id: str) -> dict[str, Any]:
    return {"keyId": key_id, "arn": at.arn("kms", f"key/{key_id}")}


def _fake_key(f: Fake) -> Outputs:
    key_id = (
        f"{f.digest(8)}-{f.digest(4, '1')}-{f.digest(4, '2')}-{f.digest(4, '3')}-"
        f"{f.digest(12, '4')}"
    )
    return key_id, _key_state(f, key_id)


def _fake_alias(f: Fake) -> Outputs:
    return f.physical, {"arn": f.arn("kms", f.physical)}


# --- the sandbox's realizers and readers


def _find_key(ctx: RealizeContext, physical: str) -> str | None:
    kms = ctx.client("kms")
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            if any(t["TagKey"] == SANDBOX_TAG and t["TagValue"] == physical for t in tags):
                return str(key["KeyId"])
    return None


def _read_key(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("kms").describe_key(KeyId=ident)


def _kms_key(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    kms = ctx.client("kms")
    physical = reg.physical(key="__none__")
    key_id = _find_key(ctx, physical)
    if key_id is None:
        request = drop_empty(
            {
                "Description": reg.get("description"),
                "KeyUsage": reg.get("keyUsage"),
                "KeySpec": reg.get("customerMasterKeySpec"),
                "Policy": reg.get("policy"),
                "MultiRegion": reg.get("multiRegion"),
                "Tags": tag_list(
                    {**(reg.get("tags") or {}), SANDBOX_TAG: physical}, "TagKey", "TagValue"
                ),
            }
        )
        key_id = str(kms.create_key(**request)["KeyMetadata"]["KeyId"])
    elif reg.get("policy"):
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=reg.get("policy"))
    if reg.get("enableKeyRotation"):
        rotation = (
            {"RotationPeriodInDays": reg.get("rotationPeriodInDays")}
            if reg.get("rotationPeriodInDays")
            else {}
        )
        kms.enable_key_rotation(KeyId=key_id, **rotation)
    if reg.get("deletionWindowInDays"):
        ctx.note(
            reg,
            "deletionWindowInDays applies when the key is deleted; the sandbox never deletes keys",
        )
    return key_id, _key_state(ctx, key_id)


def _read_alias(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    aliases = ctx.client("kms").list_aliases()["Aliases"]
    found = [a for a in aliases if a["AliasName"] == ident]
    if not found:
        raise RealizeError(f"KMS alias {ident} not found")
    return found[0]


def _kms_alias(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    kms = ctx.client("kms")
    name = reg.physical() if reg.get("name") or reg.get("namePrefix") else f"alias/{reg.physical()}"
    target = str(reg.require("targetKeyId"))
    target_id = kms.describe_key(KeyId=target)["KeyMetadata"]["KeyId"]
    current = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == name]
    if not current:
        kms.create_alias(AliasName=name, TargetKeyId=target_id)
    elif current[0].get("TargetKeyId") != target_id:
        kms.update_alias(AliasName=name, TargetKeyId=target_id)
    return name, {
        "name": name,
        "arn": ctx.arn("kms", name),
        "targetKeyArn": ctx.arn("kms", f"key/{target_id}"),
    }


def _read_key_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("kms").get_key_policy(KeyId=ident, PolicyName="default")


def _kms_key_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    key_id = str(reg.require("keyId"))
    ctx.client("kms").put_key_policy(
        KeyId=key_id, PolicyName="default", Policy=str(reg.require("policy"))
    )
    return key_id, {}


def _read_grant(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    key_id, grant_id = ident.split(":", 1)
    grants = ctx.client("kms").list_grants(KeyId=key_id)["Grants"]
    if not any(g["GrantId"] == grant_id for g in grants):
        raise RealizeError(f"grant {grant_id} not on key {key_id}")
    return grants


def _kms_grant(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    kms = ctx.client("kms")
    key_id = str(reg.require("keyId"))
    name = reg.physical(max_len=256)
    current = [g for g in kms.list_grants(KeyId=key_id)["Grants"] if g.get("Name") == name]
    if current:
        grant_id, token = current[0]["GrantId"], ""
    else:
        constraints = reg.get("constraints") or []
        response = kms.create_grant(
            **drop_empty(
                {
                    "KeyId": key_id,
                    "Name": name,
                    "GranteePrincipal": reg.require("granteePrincipal"),
                    "RetiringPrincipal": reg.get("retiringPrincipal"),
                    "Operations": reg.require("operations"),
                    "GrantTokens": reg.get("grantCreationTokens"),
                    "Constraints": pascal(
                        constraints[0],
                        opaque=frozenset({"encryptionContextEquals", "encryptionContextSubset"}),
                    )
                    if constraints
                    else None,
                }
            )
        )
        grant_id, token = response["GrantId"], response.get("GrantToken", "")
    return f"{key_id}:{grant_id}", {"grantId": grant_id, "grantToken": token}


def _fake_grant(f: Fake) -> Outputs:
    """Id `<key id>:<grant id>`; no ARN of its own."""
    grant = f.digest(64, "grant")
    return f"{f.input('keyId')}:{grant}", {"grantId": grant, "grantToken": f.digest(64, "token")}


# --- the registry entries

SERVICE = Service(
    owns=("kms",),
    types=(
        AwsType(
            "aws:kms/key:Key",
            fake=_fake_key,
            realize=_kms_key,
            read=_read_key,
            force_new=frozenset({"customerMasterKeySpec", "keyUsage", "multiRegion"}),
        ),
        AwsType("aws:kms/alias:Alias", fake=_fake_alias, realize=_kms_alias, read=_read_alias),
        AwsType(
            "aws:kms/keyPolicy:KeyPolicy",
            fake=id_of_input("keyId"),
            realize=_kms_key_policy,
            read=_read_key_policy,
        ),
        AwsType("aws:kms/grant:Grant", fake=_fake_grant, realize=_kms_grant, read=_read_grant),
    ),
)
