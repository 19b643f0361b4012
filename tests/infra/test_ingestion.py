"""The Firehose ingestion component, wired to the lake as the platform wires it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pytest

from components.data_lake import DataLake
from components.ingestion import LOG_STREAM_NAME, Ingestion, IngestionArgs
from mlplat.plan.engine import Plan, RecordedResource
from stacks.settings import Settings
from tests.infra.test_data_lake import lake_args

NAME = "ingest"
STREAM = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
# Plans are read-only: one recording per settings serves every test that only inspects it.
_PLANS: dict[tuple[Settings, tuple[tuple[str, Any], ...]], Plan] = {}


def record_ingestion(
    record: Any, settings: Settings, seen: dict[str, Any] | None = None, **overrides: Any
) -> Plan:
    cache_key = (settings, tuple(sorted(overrides.items())))
    if seen is None and cache_key in _PLANS:
        return _PLANS[cache_key]

    def program() -> None:
        lake = DataLake("lake", lake_args(settings))
        args = settings.ingestion.args(
            raw_bucket_arn=lake.bucket_arns["raw"],
            kms_key_arn=lake.key_arn,
            glue_database_name=lake.database_name,
            glue_table_names=lake.table_names,
        )
        ingestion = Ingestion(NAME, dataclasses.replace(args, **overrides))
        if seen is not None:
            pulumi.Output.all(
                stream_name=ingestion.stream_name,
                stream_arn=ingestion.stream_arn,
                log_group_name=ingestion.log_group_name,
                role_arn=ingestion.role_arn,
            ).apply(seen.update)
            seen["raw_prefix"] = ingestion.raw_prefix
            seen["error_prefix"] = ingestion.error_prefix

    plan: Plan = record(program, settings=settings)
    if seen is None:
        _PLANS[cache_key] = plan
    return plan


def mine(plan: Plan) -> list[RecordedResource]:
    component = plan.named(NAME)
    return [component, *(r for r in plan.resources if r.parent == component.urn)]


def raw_arn(plan: Plan) -> str:
    arn: str = plan.named("lake-raw").state["arn"]
    return arn


def key_arn(plan: Plan) -> str:
    arn: str = plan.named("lake-key").state["arn"]
    return arn


def stream(plan: Plan) -> dict[str, Any]:
    inputs: dict[str, Any] = plan.named(f"{NAME}-stream").inputs
    return inputs


def test_inventory_counts_types_parents_and_names(record, settings_for):
    plan = record_ingestion(record, settings_for("dev"))
    assert sorted((r.type, r.name) for r in mine(plan)) == sorted(
        [
            ("mlplatform:ingestion:Ingestion", "ingest"),
            ("aws:cloudwatch/logGroup:LogGroup", "ingest-logs"),
            ("aws:cloudwatch/logStream:LogStream", "ingest-log-stream"),
            ("aws:iam/role:Role", "ingest-role"),
            ("aws:iam/rolePolicy:RolePolicy", "ingest-role-policy"),
            (STREAM, "ingest-stream"),
        ]
    )
    assert len(plan.of_type(STREAM)) == 1
    assert not plan.named(NAME).custom


def test_stream_delivers_into_the_raw_zone_by_day_with_kms(record, settings_for):
    plan = record_ingestion(record, settings_for("dev"))
    inputs = stream(plan)
    assert inputs["destination"] == "extended_s3"
    assert inputs["tags"] == settings_for("dev").tags
    assert inputs["serverSideEncryption"] == {
        "enabled": True,
        "keyType": "CUSTOMER_MANAGED_CMK",
        "keyArn": key_arn(plan),
    }
    s3 = inputs["extendedS3Configuration"]
    assert s3["bucketArn"] == raw_arn(plan)
    assert s3["kmsKeyArn"] == key_arn(plan)
    assert s3["roleArn"] == plan.named(f"{NAME}-role").state["arn"]
    assert s3["prefix"] == "customers/dt=!{timestamp:yyyy-MM-dd}/"
    assert s3["errorOutputPrefix"] == (
        "errors/customers/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    )
    assert s3["compressionFormat"] == "UNCOMPRESSED"
    assert s3["bufferingInterval"] == 300
    assert s3["bufferingSize"] == 128
    # The role's policy is in place before Firehose first assumes the role.
    assert plan.named(f"{NAME}-stream").options["dependsOn"] == [
        plan.named(f"{NAME}-role-policy").urn
    ]


def test_delivery_prefix_is_the_glue_tables_partition_layout(record, settings_for):
    plan = record_ingestion(record, settings_for("dev"))
    table = plan.named("lake-table-customers").inputs
    template = table["parameters"]["storage.location.template"]
    delivered = "s3://{}/{}".format(
        plan.named("lake-raw").id, stream(plan)["extendedS3Configuration"]["prefix"]
    )
    assert template.replace("${dt}", "!{timestamp:yyyy-MM-dd}") == delivered
    assert [k["name"] for k in table["partitionKeys"]] == ["dt"]


def test_buffering_comes_from_settings(record, settings_for):
    plan = record_ingestion(
        record, settings_for("dev", firehoseBufferSeconds=120, firehoseBufferMb=64)
    )
    s3 = stream(plan)["extendedS3Configuration"]
    assert (s3["bufferingInterval"], s3["bufferingSize"]) == (120, 64)


def test_records_become_parquet_through_the_glue_table(record, settings_for):
    plan = record_ingestion(record, settings_for("staging"))
    conversion = stream(plan)["extendedS3Configuration"]["dataFormatConversionConfiguration"]
    assert conversion == {
        "enabled": True,
        "inputFormatConfiguration": {"deserializer": {"openXJsonSerDe": {}}},
        "outputFormatConfiguration": {"serializer": {"parquetSerDe": {"compression": "SNAPPY"}}},
        "schemaConfiguration": {
            "databaseName": plan.named("lake-db").inputs["name"],
            "tableName": plan.named("lake-table-customers").inputs["name"],
            "roleArn": plan.named(f"{NAME}-role").state["arn"],
            "region": "us-east-1",
            "versionId": "LATEST",
        },
    }
    assert conversion["schemaConfiguration"]["databaseName"] == "ml_platform_staging"
    assert conversion["schemaConfiguration"]["tableName"] == "customers"


def test_delivery_log_group_has_retention_and_the_lake_key(record, settings_for):
    plan = record_ingestion(record, settings_for("staging"))
    group = plan.named(f"{NAME}-logs")
    assert group.inputs["retentionInDays"] == 90  # staging's default
    assert group.inputs["kmsKeyId"] == key_arn(plan)
    assert group.inputs["tags"] == settings_for("staging").tags
    log_stream = plan.named(f"{NAME}-log-stream")
    assert log_stream.inputs == {"logGroupName": group.state["name"], "name": LOG_STREAM_NAME}
    assert stream(plan)["extendedS3Configuration"]["cloudwatchLoggingOptions"] == {
        "enabled": True,
        "logGroupName": group.state["name"],
        "logStreamName": LOG_STREAM_NAME,
    }

    custom = record_ingestion(record, settings_for("dev", logRetentionDays=14))
    assert custom.named(f"{NAME}-logs").inputs["retentionInDays"] == 14


def test_role_is_assumable_by_firehose_of_this_account_only(record, settings_for):
    plan = record_ingestion(record, settings_for("dev"))
    trust = json.loads(plan.named(f"{NAME}-role").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "firehose.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ]


def test_role_policy_is_exact(record, settings_for):
    plan = record_ingestion(record, settings_for("dev"))
    role_policy = plan.named(f"{NAME}-role-policy")
    assert role_policy.inputs["role"] == plan.named(f"{NAME}-role").id
    document = json.loads(role_policy.inputs["policy"])
    found = {s["Sid"]: s for s in document["Statement"]}
    assert len(found) == len(document["Statement"]) == 5
    raw = raw_arn(plan)
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all(
            a != "*" and not a.endswith(":*") and "*" not in a for a in statement["Action"]
        ), statement
        assert "*" not in statement["Resource"]

    # S3: objects only under the stream's own prefixes; the bucket itself only for upload calls.
    s3_resources = sorted(
        r for s in document["Statement"] for r in s["Resource"] if r.startswith("arn:aws:s3:")
    )
    assert s3_resources == sorted([raw, f"{raw}/customers/*", f"{raw}/errors/customers/*"])
    assert found["WriteOwnPrefixes"]["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert found["WriteOwnPrefixes"]["Resource"] == [
        f"{raw}/customers/*",
        f"{raw}/errors/customers/*",
    ]
    assert found["RawBucketUploads"]["Action"] == [
        "s3:GetBucketLocation",
        "s3:ListBucketMultipartUploads",
    ]
    assert found["RawBucketUploads"]["Resource"] == [raw]

    kms = found["LakeKeyThroughS3"]
    assert kms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms["Resource"] == [key_arn(plan)]
    assert kms["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": [
                raw,
                f"{raw}/customers/*",
                f"{raw}/errors/customers/*",
            ]
        },
    }

    glue = found["ReadOwnTableSchema"]
    assert glue["Action"] == ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"]
    assert glue["Resource"] == [
        "arn:aws:glue:us-east-1:123456789012:catalog",
        "arn:aws:glue:us-east-1:123456789012:database/ml_platform_dev",
        "arn:aws:glue:us-east-1:123456789012:table/ml_platform_dev/customers",
    ]

    group = plan.named(f"{NAME}-logs").state["name"]
    assert found["WriteOwnLogStream"] == {
        "Sid": "WriteOwnLogStream",
        "Effect": "Allow",
        "Action": ["logs:PutLogEvents"],
        "Resource": [
            f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:log-stream:{LOG_STREAM_NAME}"
        ],
    }


def test_outputs(record, settings_for):
    seen: dict[str, Any] = {}
    plan = record_ingestion(record, settings_for("dev"), seen)
    firehose = plan.named(f"{NAME}-stream")
    assert seen["stream_arn"] == firehose.state["arn"] == firehose.id
    assert seen["stream_name"] == firehose.state["name"]
    assert seen["stream_arn"].endswith(f":deliverystream/{seen['stream_name']}")
    assert seen["raw_prefix"] == "customers"
    assert seen["error_prefix"] == (
        "errors/customers/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    )
    assert seen["log_group_name"] == plan.named(f"{NAME}-logs").state["name"]
    assert seen["role_arn"] == plan.named(f"{NAME}-role").state["arn"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"dataset": "orders"},
            r"dataset 'orders': not in ml.schema.DATASETS "
            r"\(customer_outcomes, customers, customers_curated\)",
        ),
        (
            {"dataset": "customers_curated"},
            "dataset 'customers_curated': lives in the curated zone; the stream delivers into",
        ),
        ({"buffer_seconds": 59}, "buffer_seconds 59: Firehose accepts 60 to 900"),
        ({"buffer_seconds": 901}, "buffer_seconds 901: Firehose accepts 60 to 900"),
        ({"buffer_mb": 63}, "buffer_mb 63: Parquet conversion needs 64 to 128 MB"),
        ({"buffer_mb": 129}, "buffer_mb 129: Parquet conversion needs 64 to 128 MB"),
        ({"log_retention_days": 2}, "log_retention_days 2: CloudWatch Logs accepts 1, 3, 5"),
    ],
)
def test_bad_args_are_refused_with_the_reason(overrides, message):
    values: dict[str, Any] = {
        "raw_bucket_arn": "arn:aws:s3:::raw",
        "kms_key_arn": "k",
        "glue_database_name": "db",
        "glue_table_name": "t",
        **overrides,
    }
    with pytest.raises(ValueError, match="invalid IngestionArgs: " + message):
        IngestionArgs(**values)


def test_defaults_are_valid():
    args = IngestionArgs(
        raw_bucket_arn="arn:aws:s3:::raw",
        kms_key_arn="k",
        glue_database_name="db",
        glue_table_name="t",
    )
    assert (args.dataset, args.raw_prefix, args.error_root) == (
        "customers",
        "customers",
        "errors/customers",
    )


# --- the labels: the outcomes stream, beside the steady feed --------------------------------

OUTCOMES = "customer_outcomes"


def test_the_outcomes_are_streamed_into_their_own_prefix_through_their_table(record, settings_for):
    """The labels come back as events: a stream of their own, converted through the outcomes
    table, delivered into that dataset's partitions; its role writes there and nowhere else."""
    settings = settings_for("staging")
    assert settings.ingestion.datasets == ("customers", OUTCOMES)

    def program() -> None:
        lake = DataLake("lake", lake_args(settings))
        Ingestion(
            settings.ingestion.component_name(OUTCOMES),
            settings.ingestion.args(
                raw_bucket_arn=lake.bucket_arns["raw"],
                kms_key_arn=lake.key_arn,
                glue_database_name=lake.database_name,
                glue_table_names=lake.table_names,
                dataset=OUTCOMES,
            ),
        )

    plan = record(program, settings=settings)
    name = "ingest-customer-outcomes"
    s3 = plan.named(f"{name}-stream").inputs["extendedS3Configuration"]
    assert s3["prefix"] == "customer_outcomes/dt=!{timestamp:yyyy-MM-dd}/"
    assert s3["errorOutputPrefix"].startswith("errors/customer_outcomes/")
    table = plan.named("lake-table-customer-outcomes")
    schema = s3["dataFormatConversionConfiguration"]["schemaConfiguration"]
    assert schema["tableName"] == table.inputs["name"] == OUTCOMES
    template = table.inputs["parameters"]["storage.location.template"]
    assert template.replace("${dt}", "!{timestamp:yyyy-MM-dd}") == (
        f"s3://{plan.named('lake-raw').id}/{s3['prefix']}"
    )
    policy = json.loads(plan.named(f"{name}-role-policy").inputs["policy"])
    write = next(s for s in policy["Statement"] if s["Sid"] == "WriteOwnPrefixes")
    assert write["Resource"] == [
        f"{raw_arn(plan)}/customer_outcomes/*",
        f"{raw_arn(plan)}/errors/customer_outcomes/*",
    ]


def test_the_stack_streams_each_listed_dataset_and_charts_the_labels(shipped_plans) -> None:
    plan = shipped_plans["prod"]
    streams = {r.name for r in plan.of_type(STREAM)}
    assert streams == {"ingest-stream", "ingest-customer-outcomes-stream"}
    # the steady feed keeps its name, its freshness alarm and the platform output
    feed = plan.named("ingest-stream")
    assert plan.outputs["ingest_stream_name"] == feed.state["name"]
    freshness = plan.named("monitoring-freshness").inputs
    assert freshness["dimensions"] == {"DeliveryStreamName": feed.state["name"]}
    body = json.loads(plan.named("monitoring-dashboard").inputs["dashboardBody"])
    title = f"Ingestion: {OUTCOMES} records delivered to the raw zone"
    [labels] = [w for w in body["widgets"] if w["properties"].get("title") == title]
    outcomes = plan.named("ingest-customer-outcomes-stream").state["name"]
    assert {m[3] for m in labels["properties"]["metrics"]} == {outcomes}


@pytest.mark.parametrize(
    ("datasets", "message"),
    [
        (
            ["customer_outcomes"],
            "ml-platform:streamDatasets: ['customer_outcomes'] leaves out 'customers', the steady "
            "feed the freshness alarm watches; keep it in the list",
        ),
        (
            ["customers", "customer_outcome"],
            "ml-platform:streamDatasets: 'customer_outcome' is not allowed (did you mean "
            "'customer_outcomes'?); expected a list of raw datasets (customers, "
            "customer_outcomes), with customers",
        ),
        (
            ["customers", "customers"],
            "ml-platform:streamDatasets: customers listed twice; list each once",
        ),
    ],
)
def test_bad_stream_datasets_are_named(datasets, message) -> None:
    from stacks.settings import SettingsError, parse_settings
    from tests.conftest import make_config

    with pytest.raises(SettingsError) as info:
        parse_settings("dev", make_config("dev", streamDatasets=datasets))
    assert info.value.problems == (message,)


def test_a_stack_may_stream_the_steady_feed_only(settings_for) -> None:
    assert settings_for("dev", streamDatasets=["customers"]).ingestion.datasets == ("customers",)
