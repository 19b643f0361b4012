"""An estimated monthly cost of a stack, from its plan and a dated price table.

Prices: `mlplat/plan/data/prices.json` (on-demand list prices per region, with their sources and the
date they were published; verify before relying on a figure). Usage comes from the stack settings:

- endpoint instances: the model's `endpointMinInstances` per instance-backed production variant of
  every endpoint configuration an endpoint uses, for `usage_endpoint_hours` hours (instance type
  from the plan); a serverless variant is billed as if busy `usage_endpoint_hours` hours at its
  memory size (an upper bound: serverless bills per request duration);
- GPU node groups: `usage_gpu_node_hours` in total, split evenly across GPU node groups; other node
  groups run `scalingConfig.desiredSize` nodes all month;
- lake storage: `usage_storage_gb` GB-month of S3 Standard, split evenly across the buckets;
- streams: `usage_stream_gb` GB a month through Firehose (plus format conversion when enabled),
  split evenly across the delivery streams;
- fixed monthly items: EKS control planes, NAT gateways, interface endpoints (per zone), KMS keys,
  CloudWatch alarms.

Everything else (requests, data transfer, logs, Athena scans, training jobs, the runs of the model
pipeline and of the drift job: SageMaker bills their jobs per run, a pipeline itself is free) is
not estimated.

Each item is labelled with the model it serves (the resource's `model` tag; "" for what the models
share), and with the top-level component it belongs to (a model's components sit under its
`ModelGroup`, named after the model): `by_model` and `by_component` total them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stacks.settings.models import MODEL_TAG

if TYPE_CHECKING:
    from stacks.settings import Settings

PRICES = Path(__file__).resolve().parent / "data" / "prices.json"
PRICES_HINT = "mlplat/plan/data/prices.json"
GPU_FAMILY_PREFIXES = ("g", "p")


class CostError(ValueError):
    """The price table is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Usage:
    endpoint_hours: int
    endpoint_instances: int  # an endpoint's instances when its model is not in `model_instances`
    gpu_node_hours: int
    storage_gb: int
    stream_gb: int
    # model -> the instances its endpoint keeps (its `endpointMinInstances`)
    model_instances: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Usage:
        instances = {m.name: m.endpoint.min_instances for m in settings.models}
        return cls(
            endpoint_hours=settings.usage.endpoint_hours,
            endpoint_instances=max(instances.values(), default=1),
            gpu_node_hours=settings.usage.gpu_node_hours,
            storage_gb=settings.usage.storage_gb,
            stream_gb=settings.usage.stream_gb,
            model_instances=instances,
        )

    def instances_of(self, model: str) -> int:
        return self.model_instances.get(model, self.endpoint_instances)


@dataclass(frozen=True, slots=True)
class CostItem:
    component: str
    name: str
    type: str
    urn: str
    description: str
    quantity: float
    unit: str
    unit_usd: float | None
    monthly_usd: float
    note: str = ""
    model: str = ""  # the model it serves ("" : shared by every model)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "component": self.component,
            "model": self.model,
            "name": self.name,
            "type": self.type,
            "urn": self.urn,
            "description": self.description,
            "quantity": self.quantity,
            "unit": self.unit,
            "unitUsd": self.unit_usd,
            "monthlyUsd": self.monthly_usd,
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class CostReport:
    region: str
    published: str
    items: tuple[CostItem, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def monthly_usd(self) -> float:
        return round(sum(i.monthly_usd for i in self.items), 2)

    def by_component(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for item in self.items:
            totals[item.component] = totals.get(item.component, 0.0) + item.monthly_usd
        return {k: round(v, 2) for k, v in sorted(totals.items())}

    def by_model(self) -> dict[str, float]:
        """Monthly USD per model; "" is what the models share (lake, network, cluster...)."""
        totals: dict[str, float] = {}
        for item in self.items:
            totals[item.model] = totals.get(item.model, 0.0) + item.monthly_usd
        return {k: round(v, 2) for k, v in sorted(totals.items())}

    def to_json(self) -> dict[str, Any]:
        return {"monthlyUsd": self.monthly_usd, "items": [i.to_json() for i in self.items]}


@cache
def _load(path: str) -> dict[str, Any]:
    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CostError(f"price table {path}: {exc}") from exc
    if not isinstance(table, dict) or not isinstance(table.get("regions"), dict):
        raise CostError(f"price table {path}: expected an object with `regions`")
    for key in ("published", "sources", "hoursPerMonth"):
        if key not in table:
            raise CostError(f"price table {path}: missing `{key}`")
    return table


def load_prices(path: str | Path | None = None) -> dict[str, Any]:
    return _load(str(path or PRICES))


def _plain(value: Any) -> Any:
    return None if isinstance(value, dict) and value.get("unknown") is True else value


def _inputs(resource: Mapping[str, Any]) -> dict[str, Any]:
    inputs = resource.get("inputs") or {}
    return {k: _plain(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {}


def model_of(resource: Mapping[str, Any]) -> str:
    """The model a resource serves: its `model` tag ("" when it has none)."""
    tags = _inputs(resource).get("tags")
    model = tags.get(MODEL_TAG) if isinstance(tags, dict) else None
    return model if isinstance(model, str) else ""


def _is_gpu(instance_type: str) -> bool:
    family = instance_type.removeprefix("ml.").split(".")[0]
    return family[:1] in GPU_FAMILY_PREFIXES and family[1:2].isdigit()


def top_components(resources: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """URN -> logical name of the top-level component it belongs to ('-' for none)."""
    by_urn = {str(r["urn"]): r for r in resources}
    out: dict[str, str] = {}
    for urn in by_urn:
        top, node, seen = "-", by_urn[urn], set()
        while node.get("parent") in by_urn and node["parent"] not in seen:
            seen.add(node["parent"])
            node = by_urn[node["parent"]]
            top = str(node["name"])
        out[urn] = top
    return out


def estimate(
    resources: Sequence[Mapping[str, Any]],
    region: str,
    usage: Usage,
    prices: Mapping[str, Any] | None = None,
) -> CostReport:
    """The monthly cost items of a plan's resources in `region`."""
    table = prices if prices is not None else load_prices()
    regional = table["regions"].get(region)
    published = str(table["published"])
    if regional is None:
        known = ", ".join(sorted(table["regions"]))
        return CostReport(
            region,
            published,
            (),
            (
                f"no prices for region {region} in the price table (regions: {known}); "
                f"add them to {PRICES_HINT}",
            ),
        )
    pricer = _Pricer(resources, region, regional, float(table["hoursPerMonth"]), usage)
    for price in (pricer.endpoints, pricer.eks, pricer.network, pricer.storage, pricer.fixed):
        price()
    items = sorted(pricer.items, key=lambda i: (i.component, i.type, i.name, i.description))
    return CostReport(region, published, tuple(items))


class _Pricer:
    """Cost items of one plan, one method per group of resource types."""

    def __init__(
        self,
        resources: Sequence[Mapping[str, Any]],
        region: str,
        regional: Mapping[str, Any],
        hours: float,
        usage: Usage,
    ) -> None:
        self.resources = resources
        self.region = region
        self.regional = regional
        self.hours = hours
        self.usage = usage
        self.components = top_components(resources)
        self.items: list[CostItem] = []

    def add(
        self,
        res: Mapping[str, Any],
        description: str,
        quantity: float,
        unit: str,
        unit_usd: float | None,
        what: str = "",
    ) -> None:
        monthly = round(quantity * unit_usd, 2) if unit_usd is not None else 0.0
        note = (
            ""
            if unit_usd is not None
            else f"no list price for {what} in {self.region}; add it to {PRICES_HINT}"
        )
        self.items.append(
            CostItem(
                self.components.get(str(res["urn"]), "-"),
                str(res["name"]),
                str(res["type"]),
                str(res["urn"]),
                description,
                round(quantity, 4),
                unit,
                unit_usd,
                monthly,
                note,
                model_of(res),
            )
        )

    def of_type(self, token: str) -> list[Mapping[str, Any]]:
        return [r for r in self.resources if r.get("type") == token]

    def endpoints(self) -> None:
        """SageMaker endpoints: the configurations an endpoint uses."""
        usage, regional = self.usage, self.regional
        used_configs = {
            _inputs(e).get("endpointConfigName")
            for e in self.of_type("aws:sagemaker/endpoint:Endpoint")
        }
        hosting = regional.get("sagemakerHostingHour", {})
        for config in self.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
            inputs = _inputs(config)
            if not ({config.get("id"), inputs.get("name")} & (used_configs - {None})):
                continue
            for variant in inputs.get("productionVariants") or []:
                vname = variant.get("variantName") or "variant"
                serverless = variant.get("serverlessConfig")
                if isinstance(serverless, dict):
                    gb = float(serverless.get("memorySizeInMb") or 0) / 1024
                    self.add(
                        config,
                        f"serverless variant {vname} ({gb:g} GB) busy {usage.endpoint_hours} h",
                        gb * 3600 * usage.endpoint_hours,
                        "GB-second",
                        regional.get("sagemakerServerlessGbSecond"),
                        "serverless inference",
                    )
                    continue
                instance = str(variant.get("instanceType") or "")
                count = usage.instances_of(model_of(config))
                self.add(
                    config,
                    f"variant {vname}: {count} x {instance} for {usage.endpoint_hours} h",
                    float(count * usage.endpoint_hours),
                    "instance-hour",
                    hosting.get(instance),
                    instance,
                )

    def eks(self) -> None:
        """The control plane, always-on system nodes, and GPU node-hours from the usage."""
        for cluster in self.of_type("aws:eks/cluster:Cluster"):
            self.add(
                cluster,
                "EKS control plane",
                self.hours,
                "cluster-hour",
                self.regional.get("eksClusterHour"),
                "EKS",
            )
        groups = self.of_type("aws:eks/nodeGroup:NodeGroup")
        ec2 = self.regional.get("ec2Hour", {})

        def group_type(group: Mapping[str, Any]) -> str:
            types = _inputs(group).get("instanceTypes") or ["t3.medium"]  # the EKS default
            return str(types[0])

        gpu_groups = [g for g in groups if _is_gpu(group_type(g))]
        for group in groups:
            instance = group_type(group)
            if group in gpu_groups:
                node_hours = self.usage.gpu_node_hours / len(gpu_groups)
                description = f"GPU nodes {instance}: {node_hours:g} node-hours (on-demand price)"
            else:
                desired = (_inputs(group).get("scalingConfig") or {}).get("desiredSize") or 0
                node_hours = float(desired) * self.hours
                description = f"{desired} x {instance} all month"
            self.add(group, description, node_hours, "node-hour", ec2.get(instance), instance)

    def network(self) -> None:
        """NAT gateways and interface endpoints (per zone); gateway endpoints are free."""
        for nat in self.of_type("aws:ec2/natGateway:NatGateway"):
            self.add(
                nat,
                "NAT gateway",
                self.hours,
                "gateway-hour",
                self.regional.get("natGatewayHour"),
                "NAT",
            )
        for endpoint in self.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
            inputs = _inputs(endpoint)
            if inputs.get("vpcEndpointType") != "Interface":
                continue  # gateway endpoints (S3, DynamoDB) are free
            zones = len(inputs.get("subnetIds") or [])
            self.add(
                endpoint,
                f"interface endpoint in {zones} zone(s)",
                zones * self.hours,
                "endpoint-zone-hour",
                self.regional.get("interfaceEndpointAzHour"),
                "interface endpoints",
            )

    def storage(self) -> None:
        """Storage and streams: the usage split evenly over the buckets and streams."""
        usage, regional = self.usage, self.regional
        buckets = self.of_type("aws:s3/bucket:Bucket")
        for bucket in buckets:
            self.add(
                bucket,
                f"S3 Standard share of {usage.storage_gb} GB",
                usage.storage_gb / len(buckets),
                "GB-month",
                regional.get("s3StandardGbMonth"),
                "S3 Standard",
            )
        streams = self.of_type("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
        for stream in streams:
            inputs = _inputs(stream)
            per_gb = regional.get("firehoseIngestGb")
            conversion = (inputs.get("extendedS3Configuration") or {}).get(
                "dataFormatConversionConfiguration"
            )
            converting = isinstance(conversion, dict) and conversion.get("enabled") is not False
            if converting and per_gb is not None:
                extra = regional.get("firehoseFormatConversionGb")
                per_gb = None if extra is None else per_gb + extra
            self.add(
                stream,
                f"Firehose share of {usage.stream_gb} GB"
                + (" with format conversion" if converting else ""),
                usage.stream_gb / len(streams),
                "GB",
                per_gb,
                "Firehose",
            )

    def fixed(self) -> None:
        """Fixed monthly prices: keys and alarms."""
        for key in self.of_type("aws:kms/key:Key"):
            self.add(key, "KMS key", 1, "key-month", self.regional.get("kmsKeyMonth"), "KMS")
        for alarm in self.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            self.add(
                alarm,
                "CloudWatch alarm",
                1,
                "alarm-month",
                self.regional.get("cloudwatchAlarmMonth"),
                "alarms",
            )


def estimate_plan(plan_json: Mapping[str, Any], settings: Settings) -> CostReport:
    return estimate(plan_json["resources"], settings.region, Usage.from_settings(settings))
