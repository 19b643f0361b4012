"""ECR: repositories, their lifecycle and repository policies, pull-through cache rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    Registration,
    drop_empty,
    exists,
    tag_list,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service, id_of_input

# --- the plan engine's fakes


def _fake_repository(f: Fake) -> Outputs:
    return f.physical, {
        "name": f.physical,
        "arn": f.arn("ecr", f"repository/{f.physical}"),
        "repositoryUrl": f"{f.account}.dkr.ecr.{f.region}.amazonaws.com/{f.physical}",
    }


# --- the sandbox's realizers and readers


def _read_repository(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("ecr").describe_repositories(repositoryNames=[ident])["repositories"][0]


def _ecr_repository(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ecr = ctx.client("ecr")
    name = reg.physical(max_len=256, lower=True)
    found = exists(
        lambda: ecr.describe_repositories(repositoryNames=[name]), "RepositoryNotFoundException"
    )
    if found is None:
        request: dict[str, Any] = drop_empty(
            {
                "repositoryName": name,
                "imageTagMutability": reg.get("imageTagMutability"),
                "imageScanningConfiguration": reg.get("imageScanningConfiguration"),
                "tags": tag_list(reg.get("tags")),
            }
        )
        encryption = reg.get("encryptionConfigurations", [])
        if encryption:
            request["encryptionConfiguration"] = drop_empty(
                {
                    "encryptionType": encryption[0].get("encryptionType", "AES256"),
                    "kmsKey": encryption[0].get("kmsKey"),
                }
            )
        repo = ecr.create_repository(**request)["repository"]
    else:
        repo = found["repositories"][0]
    return name, {
        "name": name,
        "arn": repo["repositoryArn"],
        "registryId": repo["registryId"],
        "repositoryUrl": repo["repositoryUri"],
    }


def _read_lifecycle(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("ecr").get_lifecycle_policy(repositoryName=ident)


def _ecr_lifecycle(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    repo = str(reg.require("repository"))
    ctx.client("ecr").put_lifecycle_policy(
        repositoryName=repo, lifecyclePolicyText=str(reg.require("policy"))
    )
    return repo, {"registryId": ctx.account_id}


def _read_repository_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("ecr").get_repository_policy(repositoryName=ident)


def _ecr_repository_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    repo = str(reg.require("repository"))
    ctx.client("ecr").set_repository_policy(
        repositoryName=repo, policyText=str(reg.require("policy"))
    )
    return repo, {"registryId": ctx.account_id}


# --- the registry entries

SERVICE = Service(
    owns=("ecr",),
    types=(
        AwsType(
            "aws:ecr/repository:Repository",
            fake=_fake_repository,
            realize=_ecr_repository,
            read=_read_repository,
            force_new=frozenset({"name"}),
        ),
        AwsType(
            "aws:ecr/lifecyclePolicy:LifecyclePolicy",
            fake=id_of_input("repository"),
            realize=_ecr_lifecycle,
            read=_read_lifecycle,
        ),
        AwsType(
            "aws:ecr/repositoryPolicy:RepositoryPolicy",
            fake=id_of_input("repository"),
            realize=_ecr_repository_policy,
            read=_read_repository_policy,
        ),
        AwsType(
            "aws:ecr/pullThroughCacheRule:PullThroughCacheRule",
            fake=id_of_input("ecrRepositoryPrefix"),
        ),
    ),
)
