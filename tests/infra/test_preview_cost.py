"""Cost estimate: hand-computed figures from tiny plans, the price table's provenance."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from mlplat.plan.cost import PRICES, CostError, Usage, estimate, load_prices

USAGE = Usage(
    endpoint_hours=100, endpoint_instances=2, gpu_node_hours=40, storage_gb=100, stream_gb=10
)


def r(
    type_: str,
    name: str,
    inputs: dict[str, Any],
    parent: str = "",
    ident: str | None = None,
    custom: bool = True,
) -> dict[str, Any]:
    return {
        "urn": f"urn:test::{type_}::{name}",
        "id": ident or f"{name}-1a2b3c4",
        "type": type_,
        "name": name,
        "parent": parent,
        "custom": custom,
        "inputs": inputs,
        "options": {},
    }


def component(name: str) -> dict[str, Any]:
    return r(f"mlplatform:test:{name.title()}", name, {}, custom=False, ident="")


def tiny_plan() -> list[dict[str, Any]]:
    serving, cluster, network, lake = (
        component(n) for n in ("serving", "cluster", "network", "lake")
    )
    variant = {"variantName": "primary", "instanceType": "ml.m5.large", "initialInstanceCount": 1}
    return [
        serving,
        cluster,
        network,
        lake,
        r(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "cfg",
            {"productionVariants": [variant]},
            serving["urn"],
            ident="cfg",
        ),
        r("aws:sagemaker/endpoint:Endpoint", "ep", {"endpointConfigName": "cfg"}, serving["urn"]),
        r(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "old",
            {"productionVariants": [{**variant, "instanceType": "ml.c5.large"}]},
            serving["urn"],
            ident="old",
        ),
        r(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "sl",
            {
                "name": "sl-config",
                "productionVariants": [
                    {"variantName": "primary", "serverlessConfig": {"memorySizeInMb": 2048}}
                ],
            },
            serving["urn"],
            ident="sl-config",
        ),
        r(
            "aws:sagemaker/endpoint:Endpoint",
            "ep2",
            {"endpointConfigName": "sl-config"},
            serving["urn"],
        ),
        r("aws:cloudwatch/metricAlarm:MetricAlarm", "latency", {}, serving["urn"]),
        r("aws:eks/cluster:Cluster", "eks", {}, cluster["urn"]),
        r(
            "aws:eks/nodeGroup:NodeGroup",
            "system",
            {
                "instanceTypes": ["m6i.large"],
                "scalingConfig": {"desiredSize": 2, "minSize": 1, "maxSize": 3},
            },
            cluster["urn"],
        ),
        r(
            "aws:eks/nodeGroup:NodeGroup",
            "gpu",
            {
                "instanceTypes": ["g5.xlarge"],
                "scalingConfig": {"desiredSize": 0, "minSize": 0, "maxSize": 2},
            },
            cluster["urn"],
        ),
        r("aws:ec2/natGateway:NatGateway", "nat", {}, network["urn"]),
        r(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "ecr",
            {"vpcEndpointType": "Interface", "subnetIds": ["subnet-a", "subnet-b"]},
            network["urn"],
        ),
        r("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"}, network["urn"]),
        r("aws:s3/bucket:Bucket", "raw", {}, lake["urn"]),
        r("aws:s3/bucket:Bucket", "curated", {}, lake["urn"]),
        r(
            "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
            "stream",
            {"extendedS3Configuration": {"dataFormatConversionConfiguration": {"enabled": True}}},
            lake["urn"],
        ),
        r("aws:kms/key:Key", "key", {}, lake["urn"]),
    ]


def test_tiny_plan_matches_hand_computed_figures() -> None:
    report = estimate(tiny_plan(), "us-east-1", USAGE)
    by_name = {(i.name, i.description): i.monthly_usd for i in report.items}
    assert by_name == {
        ("cfg", "variant primary: 2 x ml.m5.large for 100 h"): 23.00,  # 2 * 100 h * 0.115
        ("sl", "serverless variant primary (2 GB) busy 100 h"): 14.40,  # 2 GB * 360000 s * 2e-5
        ("latency", "CloudWatch alarm"): 0.10,
        ("eks", "EKS control plane"): 73.00,  # 730 h * 0.10
        ("system", "2 x m6i.large all month"): 140.16,  # 2 * 730 h * 0.096
        ("gpu", "GPU nodes g5.xlarge: 40 node-hours (on-demand price)"): 40.24,  # 40 h * 1.006
        ("nat", "NAT gateway"): 32.85,  # 730 h * 0.045
        ("ecr", "interface endpoint in 2 zone(s)"): 14.60,  # 2 zones * 730 h * 0.01
        ("raw", "S3 Standard share of 100 GB"): 1.15,  # 50 GB * 0.023
        ("curated", "S3 Standard share of 100 GB"): 1.15,
        ("stream", "Firehose share of 10 GB with format conversion"): 0.47,  # 10 * (0.029+0.018)
        ("key", "KMS key"): 1.00,
    }
    assert report.monthly_usd == 342.12
    assert report.by_component() == {
        "cluster": 253.40,
        "lake": 3.77,
        "network": 47.45,
        "serving": 37.50,
    }
    assert "old" not in {i.name for i in report.items}  # no endpoint uses it
    as_json = report.to_json()
    assert set(as_json) == {"monthlyUsd", "items"}
    assert as_json["monthlyUsd"] == 342.12
    assert {
        "component",
        "name",
        "type",
        "urn",
        "description",
        "quantity",
        "unit",
        "unitUsd",
        "monthlyUsd",
    } <= set(as_json["items"][0])


def test_region_prices_differ() -> None:
    config = [i for i in estimate(tiny_plan(), "eu-west-1", USAGE).items if i.name == "cfg"]
    assert [i.monthly_usd for i in config] == [25.60]  # 2 * 100 h * 0.128


def test_unpriced_instance_and_region_are_reported_not_guessed() -> None:
    plan = [
        r(
            "aws:eks/nodeGroup:NodeGroup",
            "odd",
            {"instanceTypes": ["x9z.large"], "scalingConfig": {"desiredSize": 1}},
        )
    ]
    item = estimate(plan, "us-east-1", USAGE).items[0]
    assert item.monthly_usd == 0.0 and item.unit_usd is None
    assert (
        item.note
        == "no list price for x9z.large in us-east-1; add it to mlplat/plan/data/prices.json"
    )
    elsewhere = estimate(tiny_plan(), "ap-south-1", USAGE)
    assert elsewhere.items == () and elsewhere.monthly_usd == 0.0
    assert "no prices for region ap-south-1" in elsewhere.notes[0]


def test_price_table_is_dated_and_sourced() -> None:
    table = load_prices()
    assert table["published"] == "2025-06-01"
    assert "verify" in table["note"]
    assert len(table["sources"]) >= 5 and all(
        s.startswith("https://aws.amazon.com/") for s in table["sources"]
    )
    assert {"us-east-1", "eu-west-1"} <= set(table["regions"])
    for region in ("us-east-1", "eu-west-1"):
        prices = table["regions"][region]
        assert prices["sagemakerHostingHour"]["ml.m5.large"] > 0
        assert set(prices["ec2Hour"]) >= {"m6i.large", "g5.xlarge", "g5.2xlarge"}


def test_bad_price_table_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text('{"regions": {}}')
    with pytest.raises(CostError, match="missing `published`"):
        load_prices(bad)
    bad.write_text("not json")
    with pytest.raises(CostError, match="price table"):
        load_prices(bad)
    assert PRICES.name == "prices.json"


def test_usage_comes_from_settings(settings_for) -> None:
    settings = settings_for(
        "staging",
        usageEndpointHours=200,
        usageGpuNodeHours=10,
        usageStorageGb=50,
        usageStreamGb=5,
        endpointMinInstances=3,
        endpointMaxInstances=4,
        models=[{"name": "churn"}, {"name": "spend", "endpointMinInstances": 2}],
    )
    usage = Usage.from_settings(settings)
    assert usage == Usage(200, 3, 10, 50, 5, {"churn": 3, "spend": 2})
    assert (usage.instances_of("churn"), usage.instances_of("spend")) == (3, 2)
    assert usage.instances_of("other") == 3  # an endpoint of no model: the most any keeps


def test_recorded_program_is_priced(record, settings_for) -> None:
    def program() -> None:
        config = aws.sagemaker.EndpointConfiguration(
            "cfg",
            production_variants=[
                aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                    variant_name="primary",
                    model_name="m",
                    instance_type="ml.m5.xlarge",
                    initial_instance_count=1,
                )
            ],
        )
        aws.sagemaker.Endpoint("ep", endpoint_config_name=config.name)
        aws.kms.Key("key", enable_key_rotation=True)
        pulumi.export("x", 1)

    settings = settings_for("dev", usageEndpointHours=730, endpointServerless=False)
    plan = record(program, settings=settings)
    report = estimate(
        [x.to_json() for x in plan.resources], settings.region, Usage.from_settings(settings)
    )
    # 1 instance (dev min) * 730 h * 0.23 + one key
    assert sorted((i.name, i.monthly_usd) for i in report.items) == [("cfg", 167.90), ("key", 1.00)]
    assert report.monthly_usd == 168.90
