"""The platform image repository: where the image with this package's `ml` code lives.

Jobs that run the platform's own code beyond what the scikit-learn container ships — the scheduled
drift job first — pull `<repository>:<tag>`. The image is built from the repository's `Dockerfile`
and pushed by the deploy workflow (`docker build`, `docker push`); the stack only owns the
repository: KMS-encrypted with the lake key, immutable tags, scan on push, old untagged images
expired.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

LIFECYCLE_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire untagged images after 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            }
        ]
    },
    sort_keys=True,
)


@dataclass(frozen=True, slots=True)
class PlatformImageArgs:
    kms_key_arn: pulumi.Input[str]
    tag: str
    force_delete: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False

    def __post_init__(self) -> None:
        if not self.tag or len(self.tag) > 128 or not set(self.tag) <= _TAG_CHARS:
            raise ValueError(
                f"image tag {self.tag!r}: 1-128 letters, digits, '.', '_' or '-' (e.g. 0.1.0)"
            )


class PlatformImage(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: PlatformImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:images:PlatformImage", name, None, opts)
        repository = aws.ecr.Repository(
            f"{name}-repository",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=args.kms_key_arn
                )
            ],
            force_delete=args.force_delete,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=LIFECYCLE_POLICY,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repository_arn = repository.arn
        self.repository_url = repository.repository_url
        self.image_uri = pulumi.Output.concat(repository.repository_url, ":", args.tag)
        self.register_outputs(
            {
                "repository_arn": self.repository_arn,
                "repository_url": self.repository_url,
                "image_uri": self.image_uri,
            }
        )
