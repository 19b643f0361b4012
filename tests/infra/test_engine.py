"""The recorder: options captured, ids given, unmocked invokes refused."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading

import pulumi
import pulumi_aws as aws
import pytest

from mlplat.plan.engine import UnmockedInvokeError


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


def test_a_run_closes_every_event_loop_it_made(record, monkeypatch):
    """The SDK's mocks make an event loop in each executor thread that has none; a run must close
    every loop made while it ran (their sockets would stay open until garbage collection, whose
    finalizer can then fail on an already-closed socket)."""
    made: list[asyncio.AbstractEventLoop] = []
    real_new = asyncio.new_event_loop

    def new_event_loop() -> asyncio.AbstractEventLoop:
        loop = real_new()
        made.append(loop)
        return loop

    monkeypatch.setattr(asyncio, "new_event_loop", new_event_loop)

    def program() -> None:
        for i in range(8):  # registrations and invokes on several executor threads
            aws.s3.Bucket(f"bucket-{i}")
            aws.get_caller_identity_output()

    record(program)
    threads = {t.name for t in threading.enumerate()}
    assert len(made) > 1  # the run's own loop and its executor threads' loops
    assert [loop for loop in made if not loop.is_closed()] == []
    assert not any(name.startswith("pulumi-rpc") for name in threads)


# --- autonaming as pulumi-aws does it -----------------------------------------------------------


def hex7(type_: str, name: str) -> str:
    """The stand-in for the provider's 7 random hex chars: derived from type and logical name."""
    return hashlib.sha256(f"{type_}::{name}".encode()).hexdigest()[:7]


BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
QUEUE = "aws:sqs/queue:Queue"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
TRUST = '{"Version": "2012-10-17", "Statement": []}'


def test_autonamed_resources_get_the_name_pulumi_aws_gives(record):
    def program() -> None:
        aws.s3.Bucket("Lake-Raw")  # S3 lower-cases the logical name first
        aws.iam.Role("svc-exec", assume_role_policy=TRUST)
        aws.sqs.Queue("jobs", fifo_queue=True)  # post-transform: ".fifo"
        aws.lb.TargetGroup("api", port=80, protocol="HTTP", vpc_id="vpc-1")
        aws.kms.Alias("lake-key", target_key_id="key-1")  # post-transform: "alias/"
        aws.glue.CatalogDatabase("Lake-DB")  # "_" and 8 random lower-case letters
        aws.rds.Instance(  # no separator; SQL Server: 3 random chars
            "orders",
            engine="sqlserver-ex",
            instance_class="db.t3.micro",
            allocated_storage=20,
        )

    plan = record(program)
    bucket = plan.named("Lake-Raw")
    assert bucket.autonamed == {"bucket": f"lake-raw-{hex7(BUCKET, 'Lake-Raw')}"}
    assert "bucket" not in bucket.inputs  # the program left it to autonaming
    assert bucket.id == bucket.state["bucket"] == bucket.autonamed["bucket"]
    assert bucket.state["arn"] == f"arn:aws:s3:::{bucket.id}"

    role = plan.named("svc-exec")
    expected = f"svc-exec-{hex7(ROLE, 'svc-exec')}"
    assert role.autonamed == {"name": expected} and "name" not in role.inputs
    assert role.id == role.state["name"] == expected
    assert role.state["arn"] == f"arn:aws:iam::123456789012:role/{expected}"

    queue = plan.named("jobs")
    assert queue.autonamed == {"name": f"jobs-{hex7(QUEUE, 'jobs')}.fifo"}
    assert queue.id.endswith(f"/jobs-{hex7(QUEUE, 'jobs')}.fifo")

    group = plan.named("api")
    assert group.autonamed == {"name": f"api-{hex7(TARGET_GROUP, 'api')}"}
    alias = plan.named("lake-key")
    assert alias.autonamed["name"] == f"alias/lake-key-{hex7('aws:kms/alias:Alias', 'lake-key')}"
    assert alias.id == alias.autonamed["name"]
    database = plan.named("Lake-DB")
    assert re.fullmatch(r"lake-db_[a-z]{8}", database.autonamed["name"])
    assert database.state["name"] == database.autonamed["name"]
    instance = plan.named("orders")
    assert instance.autonamed == {
        "identifier": f"orders{hex7('aws:rds/instance:Instance', 'orders')[:3]}"
    }

    # the generated name travels in the plan JSON next to the inputs, never inside them
    as_json = role.to_json()
    assert as_json["autonamed"] == {"name": expected} and "name" not in as_json["inputs"]


def test_a_name_the_program_sets_or_prefixes_is_not_autonamed(record):
    def program() -> None:
        aws.iam.Role("named", name="ml-platform-exec", assume_role_policy=TRUST)
        aws.s3.Bucket("logs", bucket_prefix="logs-")  # the upstream provider names it at create

    plan = record(program)
    named, prefixed = plan.named("named"), plan.named("logs")
    assert named.autonamed == {} and "autonamed" not in named.to_json()
    assert named.id == named.state["name"] == "ml-platform-exec"
    assert prefixed.autonamed == {}
    # terraform-plugin-sdk's id.PrefixedUniqueId: prefix + 26 characters
    assert re.fullmatch(r"logs-\d{18}[0-9a-f]{8}", prefixed.id)


def test_generated_names_hold_the_provider_maxlen_and_refusals_get_no_name(record):
    fits, too_long = "r" * (64 - 8), "r" * (64 - 7)  # IAM roles: maxlen 64, "-" + 7 hex
    bucket_fits, bucket_too_long = "B" * (63 - 8), "B" * (63 - 7)  # S3: maxlen 63

    def program() -> None:
        aws.iam.Role(fits, assume_role_policy=TRUST)
        aws.iam.Role(too_long, assume_role_policy=TRUST)
        aws.s3.Bucket(bucket_fits)
        aws.s3.Bucket(bucket_too_long)
        aws.lb.TargetGroup("t" * 24, port=80, protocol="HTTP", vpc_id="vpc-1")  # 32 exactly
        aws.lb.TargetGroup("t" * 25, port=80, protocol="HTTP", vpc_id="vpc-1")
        aws.sqs.Queue("q" * 72)  # 80 exactly
        aws.sqs.Queue("q" * 73)

    plan = record(program)
    assert len(plan.named(fits).autonamed["name"]) == 64
    assert len(plan.named(bucket_fits).autonamed["bucket"]) == 63
    assert plan.named(bucket_fits).autonamed["bucket"].startswith("b" * 55 + "-")
    assert len(plan.named("t" * 24).autonamed["name"]) == 32
    assert len(plan.named("q" * 72).autonamed["name"]) == 80
    # pulumi-aws would fail preview on these: no generated name is recorded (the
    # aws-names-within-limits policy reports the provider's message), the id is a stand-in
    for refused in (too_long, bucket_too_long, "t" * 25, "q" * 73):
        resource = plan.named(refused)
        assert resource.autonamed == {} and "autonamed" not in resource.to_json()
        assert resource.id
