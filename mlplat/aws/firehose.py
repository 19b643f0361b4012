"""Kinesis Data Firehose: delivery streams (the sandbox realizes extended-S3 destinations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    RealizeError,
    Registration,
    drop_empty,
    exists,
    pascal,
    tag_list,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service

# --- the plan engine's fakes


def _fake_stream(f: Fake) -> Outputs:
    arn = f.arn("firehose", f"deliverystream/{f.physical}")
    return arn, {"name": f.physical, "arn": arn}


# --- the sandbox's realizers and readers


_FIREHOSE_RENAMES = {
    "roleArn": "RoleARN",
    "bucketArn": "BucketARN",
    "openXJsonSerDe": "OpenXJsonSerDe",
    "hiveJsonSerDe": "HiveJsonSerDe",
    "parquetSerDe": "ParquetSerDe",
    "orcSerDe": "OrcSerDe",
    "cloudwatchLoggingOptions": "CloudWatchLoggingOptions",
    "blockSizeBytes": "BlockSizeBytes",
}
_FIREHOSE_OPAQUE = frozenset({"columnToJsonKeyMappings"})


def _extended_s3(config: Mapping[str, Any]) -> dict[str, Any]:
    cfg = dict(config)
    hints = drop_empty(
        {
            "SizeInMBs": cfg.pop("bufferingSize", None),
            "IntervalInSeconds": cfg.pop("bufferingInterval", None),
        }
    )
    kms = cfg.pop("kmsKeyArn", None)
    conversion = cfg.pop("dataFormatConversionConfiguration", None)
    processing = cfg.pop("processingConfiguration", None)
    dynamic = cfg.pop("dynamicPartitioningConfiguration", None)
    shaped: dict[str, Any] = pascal(cfg, _FIREHOSE_RENAMES, _FIREHOSE_OPAQUE)
    if hints:
        shaped["BufferingHints"] = hints
    if kms:
        shaped["EncryptionConfiguration"] = {"KMSEncryptionConfig": {"AWSKMSKeyARN": kms}}
    if conversion:
        shaped["DataFormatConversionConfiguration"] = {
            "Enabled": conversion.get("enabled", True),
            **pascal(
                {k: v for k, v in conversion.items() if k != "enabled"},
                _FIREHOSE_RENAMES,
                _FIREHOSE_OPAQUE,
            ),
        }
    if processing:
        shaped["ProcessingConfiguration"] = pascal(processing, _FIREHOSE_RENAMES)
    if dynamic:
        shaped["DynamicPartitioningConfiguration"] = pascal(dynamic)
        retry = dynamic.get("retryDuration")
        shaped["DynamicPartitioningConfiguration"].pop("RetryDuration", None)
        if retry is not None:
            shaped["DynamicPartitioningConfiguration"]["RetryOptions"] = {
                "DurationInSeconds": retry
            }
    return shaped


def _read_stream(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    return ctx.client("firehose").describe_delivery_stream(DeliveryStreamName=state["name"])


def _firehose(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    firehose = ctx.client("firehose")
    name = reg.physical(max_len=64)
    destination = reg.require("destination")
    if destination != "extended_s3":
        raise RealizeError(
            f"{reg.name}: destination {destination!r} is not realized by the "
            "sandbox (only extended_s3)"
        )
    request: dict[str, Any] = {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "KinesisStreamAsSource"
        if reg.get("kinesisSourceConfiguration")
        else "DirectPut",
        "ExtendedS3DestinationConfiguration": _extended_s3(reg.require("extendedS3Configuration")),
    }
    if reg.get("kinesisSourceConfiguration"):
        request["KinesisStreamSourceConfiguration"] = pascal(
            reg.get("kinesisSourceConfiguration"),
            {"kinesisStreamArn": "KinesisStreamARN", "roleArn": "RoleARN"},
        )
    sse = reg.get("serverSideEncryption")
    if sse and sse.get("enabled"):
        request["DeliveryStreamEncryptionConfigurationInput"] = drop_empty(
            {"KeyType": sse.get("keyType", "AWS_OWNED_CMK"), "KeyARN": sse.get("keyArn")}
        )
    if reg.get("tags"):
        request["Tags"] = tag_list(reg.get("tags"))
    found = exists(
        lambda: firehose.describe_delivery_stream(DeliveryStreamName=name),
        "ResourceNotFoundException",
    )
    if found is not None:
        current = found["DeliveryStreamDescription"]
        dests = current.get("Destinations", [])
        stored = dests[0].get("ExtendedS3DestinationDescription", {}) if dests else {}
        wanted = request["ExtendedS3DestinationConfiguration"]
        if all(stored.get(k) == v for k, v in wanted.items()):
            return current["DeliveryStreamARN"], _stream_state(current, name)
        ctx.note(reg, "destination changed: replaced")
        firehose.delete_delivery_stream(DeliveryStreamName=name)
    arn = firehose.create_delivery_stream(**request)["DeliveryStreamARN"]
    current = firehose.describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"
    ]
    return str(arn), _stream_state(current, name)


def _stream_state(description: Mapping[str, Any], name: str) -> dict[str, Any]:
    dests = description.get("Destinations", [])
    return {
        "name": name,
        "arn": description["DeliveryStreamARN"],
        "destinationId": dests[0]["DestinationId"] if dests else "destinationId-000000000001",
        "versionId": description.get("VersionId", "1"),
    }


# --- the registry entries

SERVICE = Service(
    owns=("kinesis",),
    types=(
        AwsType(
            "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
            fake=_fake_stream,
            realize=_firehose,
            read=_read_stream,
        ),
    ),
)
