"""The recorder: options captured, ids given, unmocked invokes refused."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from stacks.engine import UnmockedInvokeError


def test_registration_records_type_name_inputs_and_options(record):
    def program() -> None:
        class Box(pulumi.ComponentResource):
            def __init__(self, name: str) -> None:
                super().__init__("mlplatform:test:Box", name, None, None)
                key = aws.kms.Key(
                    f"{name}-key",
                    enable_key_rotation=True,
                    opts=pulumi.ResourceOptions(parent=self),
                )
                bucket = aws.s3.Bucket(
                    f"{name}-bucket",
                    force_destroy=False,
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        protect=True,
                        retain_on_delete=True,
                        ignore_changes=["tags"],
                        depends_on=[key],
                    ),
                )
                aws.s3.BucketPolicy(
                    f"{name}-policy",
                    bucket=bucket.id,
                    policy="{}",
                    opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
                )
                self.register_outputs({})

        Box("box")

    plan = record(program)
    assert sorted(r.type for r in plan.resources) == [
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketPolicy:BucketPolicy",
        "mlplatform:test:Box",
    ]
    box = plan.named("box")
    bucket = plan.named("box-bucket")
    key = plan.named("box-key")
    policy = plan.named("box-policy")
    assert not box.custom and bucket.custom
    assert bucket.parent == box.urn == policy.parent
    # camelCase inputs, as policies see them
    assert bucket.inputs["forceDestroy"] is False
    assert key.inputs["enableKeyRotation"] is True
    assert bucket.options["protect"] is True
    assert bucket.options["retainOnDelete"] is True
    assert bucket.options["ignoreChanges"] == ["tags"]
    assert bucket.options["dependsOn"] == [key.urn]
    assert policy.options["deleteBeforeReplace"] is True
    assert policy.options["dependsOn"] == []  # its dependency on the bucket is implied by `bucket`
    assert policy.options["protect"] is False
    # the id a bucket got is what a reference to it carries
    assert policy.inputs["bucket"] == bucket.id
    assert bucket.id.startswith("box-bucket-")


def test_invokes_answered_from_settings(record, settings_for):
    settings = settings_for("staging", accountId="210987654321", **{"aws:region": "eu-west-1"})
    seen: dict[str, object] = {}

    def program() -> None:
        ident = aws.get_caller_identity_output()
        region = aws.get_region_output()
        zones = aws.get_availability_zones_output()
        pulumi.Output.all(ident.account_id, region.region, zones.names).apply(
            lambda v: seen.update(account=v[0], region=v[1], zones=v[2])
        )

    record(program, settings=settings)
    assert seen == {
        "account": "210987654321",
        "region": "eu-west-1",
        "zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
    }


def test_unmocked_invoke_raises(record):
    def program() -> None:
        aws.ec2.get_vpc(default=True)

    with pytest.raises(Exception, match="is not answered offline") as info:
        record(program)
    assert (
        isinstance(info.value, UnmockedInvokeError)
        or "UnmockedInvokeError" in repr(info.value)
        or "not answered offline" in str(info.value)
    )


def test_runs_do_not_leak_into_each_other(record):
    def one() -> None:
        aws.s3.Bucket("only-here")

    first = record(one)
    second = record(lambda: None)
    assert [r.name for r in first.resources] == ["only-here"]
    assert second.resources == []
