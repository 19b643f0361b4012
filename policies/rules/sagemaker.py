"""SageMaker serving policies: encryption, capture, isolation, autoscaling, alarms.

Endpoints are joined with their configuration through `endpointConfigName` (the configuration's
name or id), with their autoscaling targets through the target's `resourceId`
(`endpoint/<endpoint name>/variant/<variant name>`), and with their alarms through the alarm's
`EndpointName` dimension (top-level `dimensions` or `metricQueries[].metric.dimensions`).

Serverless variants (`serverlessConfig`) scale themselves and take no KMS key, VPC, isolation or
data capture (SageMaker's own limits): the instance-only rules skip them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from policies.core import (
    Context,
    Finding,
    PolicySpec,
    Resource,
    UnknownValueError,
    is_unknown,
    known,
    listify,
    of_type,
    per_resource,
    resolve,
)
from policies.rules.compute import family

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
SCALING_TARGET = "aws:appautoscaling/target:Target"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
LATENCY_METRICS = ("ModelLatency", "OverheadLatency")
ERROR_METRICS = ("Invocation5XXErrors", "Invocation4XXErrors", "InvocationModelErrors")
DRIFT = re.compile(r"drift|psi", re.IGNORECASE)
PROD_MIN_INSTANCES = 2


def variants(config: Resource) -> list[dict[str, Any]]:
    return [v for v in listify(config.get("productionVariants")) if isinstance(v, dict)]


def instance_variants(config: Resource) -> list[dict[str, Any]]:
    return [v for v in variants(config) if not v.get("serverlessConfig")]


def has_local_nvme(instance_type: str) -> bool:
    """Nitro instances with instance storage, where SageMaker refuses a KmsKeyId."""
    fam = family(instance_type)
    return bool(re.search(r"\d[a-z]*d[a-z]?$", fam)) or fam in (
        "g5",
        "g6",
        "g6e",
        "p5",
        "p5e",
        "p5en",
        "trn1",
        "trn1n",
    )


def check_config_kms(resource: Resource, _ctx: Context) -> Iterator[str]:
    instance = instance_variants(resource)
    needs_key = [v for v in instance if not has_local_nvme(str(v.get("instanceType") or ""))]
    if needs_key and not resource.get("kmsKeyArn"):
        yield (
            f"endpoint config {resource.name!r}: kmsKeyArn is not set (instance storage "
            "volumes would use the AWS-managed key)"
        )
    capture = resource.get("dataCaptureConfig", default=None)
    capturing = isinstance(capture, dict) and capture.get("enableCapture") is not False
    if capturing and not known(capture.get("kmsKeyId"), ".dataCaptureConfig.kmsKeyId"):
        yield (
            f"endpoint config {resource.name!r}: captured requests are not encrypted with "
            "a customer-managed key (dataCaptureConfig.kmsKeyId)"
        )


def check_data_capture(resource: Resource, ctx: Context) -> Iterator[str]:
    if not ctx.is_prod(resource) or not instance_variants(resource):
        return
    capture = resource.get("dataCaptureConfig", default=None)
    enabled = isinstance(capture, dict) and capture.get("enableCapture", True) is True
    percent = capture.get("initialSamplingPercentage", 0) if isinstance(capture, dict) else 0
    if not enabled or not isinstance(percent, int) or percent <= 0:
        yield (
            f"endpoint config {resource.name!r}: prod endpoints capture requests and "
            "responses for monitoring (dataCaptureConfig)"
        )


def check_network_isolation(resource: Resource, ctx: Context) -> Iterator[str]:
    if ctx.is_prod(resource) and resource.get("enableNetworkIsolation") is not True:
        yield f"model {resource.name!r}: prod models run with enableNetworkIsolation"


def check_model_vpc(resource: Resource, ctx: Context) -> Iterator[str]:
    if not ctx.is_prod(resource):
        return
    subnets = listify(resource.get("vpcConfig", "subnets"))
    groups = listify(resource.get("vpcConfig", "securityGroupIds"))
    if not subnets or not groups:
        yield (
            f"model {resource.name!r}: prod models run in the VPC (vpcConfig.subnets and "
            "securityGroupIds)"
        )


def endpoint_name(endpoint: Resource) -> str:
    name = endpoint.get("name") or endpoint.id
    return str(known(name, f"the name of {endpoint.where()}"))


def config_of(endpoint: Resource, configs: Sequence[Resource]) -> Resource | None:
    return resolve(
        endpoint.ref("endpointConfigName"), "endpointConfigName", endpoint, configs, "name"
    )


def check_autoscaling(resources: Sequence[Resource], _ctx: Context) -> Iterable[Finding]:
    configs = of_type(resources, ENDPOINT_CONFIG)
    targets = of_type(resources, SCALING_TARGET)

    def check(endpoint: Resource) -> Iterator[str]:
        config = config_of(endpoint, configs)
        if config is None:
            return
        name = endpoint_name(endpoint)
        ids: set[str] = set()
        unknown_ids = False
        for target in targets:
            rid = target.props.get("resourceId")
            unknown_ids = unknown_ids or is_unknown(rid)
            if target.props.get("scalableDimension") == VARIANT_DIMENSION and isinstance(rid, str):
                ids.add(rid)
        for variant in instance_variants(config):
            vname = known(variant.get("variantName"), ".productionVariants[].variantName")
            if f"endpoint/{name}/variant/{vname}" not in ids:
                if unknown_ids:
                    raise UnknownValueError(
                        f"the resourceId of an autoscaling target (variant "
                        f"{vname!r} of {endpoint.where()})"
                    )
                yield (
                    f"endpoint {endpoint.name!r}: variant {vname!r} has no autoscaling target "
                    f"(resourceId endpoint/{name}/variant/{vname})"
                )

    return per_resource(of_type(resources, ENDPOINT), check)


def check_min_capacity(resource: Resource, ctx: Context) -> Iterator[str]:
    if not ctx.is_prod(resource):
        return
    if resource.type == SCALING_TARGET:
        if resource.get("scalableDimension") != VARIANT_DIMENSION:
            return
        low = resource.get("minCapacity")
        if not isinstance(low, int) or low < PROD_MIN_INSTANCES:
            yield (
                f"autoscaling target {resource.name!r}: prod endpoints keep at least "
                f"{PROD_MIN_INSTANCES} instances (minCapacity {low})"
            )
        return
    for variant in instance_variants(resource):
        count = variant.get("initialInstanceCount")
        if not isinstance(count, int) or count < PROD_MIN_INSTANCES:
            yield (
                f"endpoint config {resource.name!r}: variant {variant.get('variantName')!r} "
                f"starts with {count} instance(s); prod needs >= {PROD_MIN_INSTANCES}"
            )


def _alarm_metrics(alarm: Resource) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of every metric the alarm watches."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    if alarm.get("metricName"):
        out.append(
            (
                str(alarm.get("namespace") or ""),
                str(alarm.get("metricName")),
                dict(alarm.get("dimensions") or {}),
            )
        )
    for query in listify(alarm.get("metricQueries")):
        metric = query.get("metric") if isinstance(query, dict) else None
        if isinstance(metric, dict) and metric.get("metricName"):
            out.append(
                (
                    str(metric.get("namespace") or ""),
                    str(metric.get("metricName")),
                    dict(metric.get("dimensions") or {}),
                )
            )
    return out


def check_endpoint_alarms(resources: Sequence[Resource], _ctx: Context) -> Iterable[Finding]:
    alarms = of_type(resources, ALARM)
    watched: dict[str, set[str]] = {}
    notes: list[Finding] = []
    unknown_dimension = False
    for alarm in alarms:
        try:
            metrics = _alarm_metrics(alarm)
        except UnknownValueError as exc:
            notes.append(Finding(alarm.urn, f"skipped {alarm.where()}: {exc}", skipped=True))
            continue
        for namespace, metric, dimensions in metrics:
            endpoint = dimensions.get("EndpointName")
            unknown_dimension = unknown_dimension or is_unknown(endpoint)
            if not isinstance(endpoint, str):
                continue
            kinds = watched.setdefault(endpoint, set())
            if metric in LATENCY_METRICS:
                kinds.add("latency")
            if metric in ERROR_METRICS:
                kinds.add("errors")
            if DRIFT.search(metric) or DRIFT.search(namespace):
                kinds.add("drift")

    def check(endpoint: Resource) -> Iterator[str]:
        name = endpoint_name(endpoint)
        missing = [k for k in ("latency", "errors", "drift") if k not in watched.get(name, set())]
        if missing and unknown_dimension:
            raise UnknownValueError(f"the EndpointName dimension of an alarm ({endpoint.where()})")
        if missing:
            yield (
                f"endpoint {endpoint.name!r}: no {', '.join(missing)} alarm(s) on "
                f"EndpointName={name}"
            )

    yield from notes
    yield from per_resource(of_type(resources, ENDPOINT), check)


POLICIES = (
    PolicySpec(
        name="sagemaker-endpointconfig-kms",
        description="Endpoint configs encrypt instance storage and captured data with a "
        "customer-managed KMS key.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_98",
        types=(ENDPOINT_CONFIG,),
        check=check_config_kms,
    ),
    PolicySpec(
        name="sagemaker-endpointconfig-data-capture",
        description="Prod endpoint configs capture requests and responses (data capture on, "
        "sampling > 0).",
        enforcement="mandatory",
        severity="medium",
        reference="Well-Architected ML Lens, monitoring: capture inference data for drift "
        "detection",
        types=(ENDPOINT_CONFIG,),
        check=check_data_capture,
    ),
    PolicySpec(
        name="sagemaker-model-network-isolation",
        description="Prod models run with network isolation.",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_370; Well-Architected ML Lens, security",
        types=(MODEL,),
        check=check_network_isolation,
    ),
    PolicySpec(
        name="sagemaker-model-vpc",
        description="Prod models run in the VPC (subnets and security groups set).",
        enforcement="mandatory",
        severity="high",
        reference="Well-Architected ML Lens, security: run inference in a private network",
        types=(MODEL,),
        check=check_model_vpc,
    ),
    PolicySpec(
        name="sagemaker-endpoint-autoscaling",
        description="Every instance-backed production variant has an Application Auto Scaling "
        "target (endpoint/<name>/variant/<variant>).",
        enforcement="mandatory",
        severity="medium",
        reference="Well-Architected ML Lens, reliability: automatic scaling of endpoints",
        stack_check=check_autoscaling,
    ),
    PolicySpec(
        name="sagemaker-endpoint-min-capacity",
        description="Prod endpoints start with, and scale down to, at least 2 instances.",
        enforcement="mandatory",
        severity="high",
        reference="AWS Security Hub SageMaker.4",
        types=(SCALING_TARGET, ENDPOINT_CONFIG),
        check=check_min_capacity,
    ),
    PolicySpec(
        name="sagemaker-endpoint-alarms",
        description="Every endpoint has latency, error and drift alarms (EndpointName dimension).",
        enforcement="mandatory",
        severity="high",
        reference="Well-Architected ML Lens, monitoring: monitor model performance and drift",
        stack_check=check_endpoint_alarms,
    ),
)
