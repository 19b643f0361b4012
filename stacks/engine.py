"""The offline plan engine: run the Pulumi program under a recording mock monitor.

Every registration is captured as the engine would see it (type token, logical name, parent URN,
custom or component, camelCase inputs, resource options) without the Pulumi CLI, a cloud account
or a network. Invokes are answered only when the engine was told how (account id, region,
partition, availability zones come from the stack settings); any other invoke raises, so a program
never silently depends on a data source the offline engines cannot answer.

The same recorder backs the test fixture (`tests/conftest.py`) and `mlplat preview`; the sandbox
subclasses it to realize resources in a moto server instead of inventing ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func, wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from stacks.settings import PROJECT, Settings

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(PROJECT_DIR, "stacks", "__main__.py")


class UnmockedInvokeError(RuntimeError):
    """The program called a data source the offline engine was not told how to answer."""


@dataclass(slots=True)
class RecordedResource:
    urn: str
    id: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    state: dict[str, Any]
    options: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
            "options": self.options,
        }


@dataclass(slots=True)
class Plan:
    project: str
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_urn(self) -> dict[str, RecordedResource]:
        return {r.urn: r for r in self.resources}

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [r.to_json() for r in sorted(self.resources, key=lambda r: r.urn)],
            "outputs": self.outputs,
            **self.extra,
        }


# --- fake but realistic ids and ARNs ---------------------------------------------------------


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _service(type_: str) -> str:
    # "aws:s3/bucket:Bucket" -> "s3"
    return type_.split(":")[1].split("/")[0] if ":" in type_ else "unknown"


def fake_physical(
    type_: str, name: str, urn: str, inputs: Mapping[str, Any], s: Settings
) -> tuple[str, dict[str, Any]]:
    """An id and the computed outputs a provider would return, derived from the URN (stable)."""
    service = _service(type_)
    suffix = _digest(urn, 7)
    physical = f"{name}-{suffix}"[:63].lower()
    account, region = s.account_id, s.region
    computed: dict[str, Any] = {}
    kind = type_.rsplit(":", 1)[-1]
    if service == "s3" and kind == "Bucket":
        bucket = inputs.get("bucket") or physical
        computed = {
            "bucket": bucket,
            "arn": f"arn:aws:s3:::{bucket}",
            "bucketDomainName": f"{bucket}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
            "region": region,
        }
        return bucket, computed
    if service == "kms" and kind == "Key":
        key_id = (
            f"{_digest(urn, 8)}-{_digest(urn + '1', 4)}-{_digest(urn + '2', 4)}-"
            f"{_digest(urn + '3', 4)}-{_digest(urn + '4', 12)}"
        )
        return key_id, {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{account}:key/{key_id}"}
    if service == "kms" and kind == "Alias":
        alias = inputs.get("name") or f"alias/{physical}"
        return alias, {"arn": f"arn:aws:kms:{region}:{account}:{alias}"}
    if service == "iam":
        if kind in ("Role", "Policy", "User", "InstanceProfile"):
            iam_name = inputs.get("name") or physical
            path = inputs.get("path") or "/"
            noun = {
                "Role": "role",
                "Policy": "policy",
                "User": "user",
                "InstanceProfile": "instance-profile",
            }[kind]
            arn = f"arn:aws:iam::{account}:{noun}{path}{iam_name}"
            ident = arn if kind == "Policy" else iam_name
            return ident, {
                "name": iam_name,
                "arn": arn,
                "uniqueId": f"AROA{_digest(urn, 16).upper()}",
            }
        if kind == "OpenIdConnectProvider":
            url = str(inputs.get("url", "oidc.example")).removeprefix("https://")
            arn = f"arn:aws:iam::{account}:oidc-provider/{url}"
            return arn, {"arn": arn}
        return f"{physical}", {}
    if service == "sagemaker":
        nouns = {
            "ModelPackageGroup": "model-package-group",
            "Model": "model",
            "EndpointConfiguration": "endpoint-config",
            "Endpoint": "endpoint",
        }
        if kind in nouns:
            sm_name = inputs.get("name") or inputs.get("modelPackageGroupName") or physical
            arn = f"arn:aws:sagemaker:{region}:{account}:{nouns[kind]}/{sm_name}".lower()
            out: dict[str, Any] = {"arn": arn, "name": sm_name}
            if kind == "ModelPackageGroup":
                out["modelPackageGroupName"] = sm_name
            return sm_name, out
    if service == "sns" and kind == "Topic":
        topic = inputs.get("name") or physical
        arn = f"arn:aws:sns:{region}:{account}:{topic}"
        return arn, {"arn": arn, "name": topic}
    if service == "sqs" and kind == "Queue":
        queue = inputs.get("name") or physical
        url = f"https://sqs.{region}.amazonaws.com/{account}/{queue}"
        return url, {"arn": f"arn:aws:sqs:{region}:{account}:{queue}", "name": queue, "url": url}
    if service == "cloudwatch" and kind == "LogGroup":
        group = inputs.get("name") or f"/{PROJECT}/{physical}"
        return group, {"name": group, "arn": f"arn:aws:logs:{region}:{account}:log-group:{group}"}
    if service == "ec2":
        prefixes = {
            "Vpc": "vpc",
            "Subnet": "subnet",
            "SecurityGroup": "sg",
            "RouteTable": "rtb",
            "InternetGateway": "igw",
            "NatGateway": "nat",
            "Eip": "eipalloc",
            "VpcEndpoint": "vpce",
            "LaunchTemplate": "lt",
            "FlowLog": "fl",
        }
        ident = f"{prefixes.get(kind, kind.lower())}-{_digest(urn, 17)}"
        arn = f"arn:aws:ec2:{region}:{account}:{prefixes.get(kind, kind.lower())}/{ident}"
        out = {"arn": arn}
        if kind == "LaunchTemplate":
            out["latestVersion"] = 1
        if kind == "Vpc":
            out["defaultSecurityGroupId"] = f"sg-{_digest(urn + 'sg', 17)}"
            out["mainRouteTableId"] = f"rtb-{_digest(urn + 'rt', 17)}"
        return ident, out
    if service == "eks" and kind == "Cluster":
        cluster = inputs.get("name") or physical
        oidc = f"https://oidc.eks.{region}.amazonaws.com/id/{_digest(urn, 32).upper()}"
        return cluster, {
            "name": cluster,
            "arn": f"arn:aws:eks:{region}:{account}:cluster/{cluster}",
            "endpoint": f"https://{_digest(urn, 32).upper()}.gr7.{region}.eks.amazonaws.com",
            "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"},
            "identities": [{"oidcs": [{"issuer": oidc}]}],
            "version": inputs.get("version", "1.33"),
        }
    if service == "glue" and kind == "CatalogDatabase":
        db = inputs.get("name") or physical.replace("-", "_")
        return f"{account}:{db}", {
            "name": db,
            "arn": f"arn:aws:glue:{region}:{account}:database/{db}",
        }
    if service == "glue" and kind == "CatalogTable":
        table = inputs.get("name") or physical.replace("-", "_")
        db = inputs.get("databaseName", "db")
        return f"{account}:{db}:{table}", {
            "name": table,
            "arn": f"arn:aws:glue:{region}:{account}:table/{db}/{table}",
        }
    if service == "kinesis" and kind == "FirehoseDeliveryStream":
        stream = inputs.get("name") or physical
        arn = f"arn:aws:firehose:{region}:{account}:deliverystream/{stream}"
        return arn, {"name": stream, "arn": arn}
    if service == "athena" and kind == "Workgroup":
        wg = inputs.get("name") or physical
        return wg, {"name": wg, "arn": f"arn:aws:athena:{region}:{account}:workgroup/{wg}"}
    if service == "ecr" and kind == "Repository":
        repo = inputs.get("name") or physical
        return repo, {
            "name": repo,
            "arn": f"arn:aws:ecr:{region}:{account}:repository/{repo}",
            "repositoryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com/{repo}",
        }
    if service == "cloudtrail" and kind == "Trail":
        trail = inputs.get("name") or physical
        arn = f"arn:aws:cloudtrail:{region}:{account}:trail/{trail}"
        return arn, {"name": trail, "arn": arn}
    if service == "cloudwatch" and kind == "EventRule":
        rule = inputs.get("name") or physical
        return rule, {"name": rule, "arn": f"arn:aws:events:{region}:{account}:rule/{rule}"}
    if service == "cloudwatch" and kind == "MetricAlarm":
        alarm = inputs.get("name") or physical
        return alarm, {"name": alarm, "arn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}"}
    arn = f"arn:aws:{service}:{region}:{account}:{kind.lower()}/{physical}"
    return physical, {"arn": arn} if type_.startswith("aws:") else {}


# --- the mocks ------------------------------------------------------------------------------


class PlanMocks(pulumi.runtime.Mocks):
    """Answers registrations with stable fake ids and the invokes the settings can answer."""

    def __init__(
        self,
        settings: Settings,
        extra_invokes: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
    ) -> None:
        self.settings = settings
        self.invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": self._caller_identity,
            "aws:index/getRegion:getRegion": self._region,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
            **(extra_invokes or {}),
        }

    def _caller_identity(self, _: dict[str, Any]) -> dict[str, Any]:
        account = self.settings.account_id
        return {
            "accountId": account,
            "arn": f"arn:aws:iam::{account}:user/offline",
            "userId": "AIDAOFFLINE",
            "id": account,
        }

    def _region(self, _: dict[str, Any]) -> dict[str, Any]:
        r = self.settings.region
        return {
            "name": r,
            "region": r,
            "id": r,
            "description": r,
            "endpoint": f"ec2.{r}.amazonaws.com",
        }

    def _partition(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "partition": "aws",
            "dnsSuffix": "amazonaws.com",
            "id": "aws",
            "reverseDnsPrefix": "com.amazonaws",
        }

    def _zones(self, _: dict[str, Any]) -> dict[str, Any]:
        names = list(self.settings.availability_zones)
        return {
            "names": names,
            "zoneIds": [f"use1-az{i + 1}" for i in range(len(names))],
            "id": self.settings.region,
            "state": "available",
        }

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        handler = self.invokes.get(args.token)
        if handler is None:
            raise UnmockedInvokeError(
                f"invoke {args.token} is not answered offline; "
                f"known: {', '.join(sorted(self.invokes))}"
            )
        return handler(dict(args.args)), []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        urn = f"{args.typ}::{args.name}"
        ident, computed = fake_physical(args.typ, args.name, urn, args.inputs, self.settings)
        state = {**dict(args.inputs), **computed}
        if "tags" in args.inputs and "tagsAll" not in state:
            state["tagsAll"] = args.inputs["tags"]
        return ident, state


def _struct_deps(request: Any) -> set[str]:
    implied: set[str] = set()
    for deps in request.propertyDependencies.values():
        implied.update(deps.urns)
    return implied


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that keeps every registration with its resource options."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.records: dict[str, RecordedResource] = {}

    def RegisterResource(self, request: Any) -> Any:
        from pulumi.runtime import rpc

        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = _sync_await(_deserialize(rpc, request.object))
        registration = self.resources[response.urn]
        implied = _struct_deps(request)
        options = {
            "protect": bool(request.protect) if request.HasField("protect") else False,
            "retainOnDelete": bool(request.retainOnDelete)
            if request.HasField("retainOnDelete")
            else False,
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "ignoreChanges": sorted(request.ignoreChanges),
            # Explicit `depends_on`: the dependencies no input property implies.
            "dependsOn": sorted(set(request.dependencies) - implied),
            "provider": request.provider or None,
        }
        self.records[response.urn] = RecordedResource(
            urn=response.urn,
            id=registration.id or "",
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=_plain(inputs),
            state=_plain(registration.state),
            options=options,
        )
        return response


async def _deserialize(rpc: Any, struct: Any) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))


def _plain(value: Any) -> Any:
    """JSON-ready: secrets stay marked, unknowns become a marker, resources become their URN."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return {"secret": True, "value": _plain(value.get("value"))}
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is rpc.UNKNOWN or (isinstance(value, str) and value == rpc.UNKNOWN):
        return {"unknown": True}
    if isinstance(value, pulumi.Resource):
        return {"resource": True}
    if isinstance(value, float) and value.is_integer():
        # The wire format (protobuf Struct) carries every number as a double; show whole ones
        # as integers, as they were written in the program.
        return int(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


# --- running the program -----------------------------------------------------------------------


def config_for(settings: Settings, raw_config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the engine hands it to a program: every value a string, objects as JSON."""
    out = {}
    for key, value in raw_config.items():
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def run(
    settings: Settings,
    raw_config: Mapping[str, Any],
    mocks: PlanMocks | None = None,
    program: Callable[[], None] | None = None,
) -> Plan:
    """Run the Pulumi program (`stacks/__main__.py` by default) under the recording monitor.

    Each call gets its own event loop and a fresh Pulumi runtime: runs do not leak into each other.
    """
    mocks = mocks or PlanMocks(settings)
    monitor = RecordingMonitor(mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        runtime_settings.reset_options(project=PROJECT, stack=settings.stack, preview=False)
        set_all_config(config_for(settings, raw_config), list(settings.secret_keys))
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=settings.stack, preview=False, monitor=monitor
        )
        root = runtime_settings.get_root_resource()
        body = program or (lambda: runpy.run_path(MAIN, run_name="__main__") and None)

        async def main() -> dict[str, Any]:
            body()
            await wait_for_rpcs()
            outputs: dict[str, Any] = {}
            for key, value in getattr(root, "outputs", {}).items():
                outputs[key] = _plain(await pulumi.Output.from_input(value).future())
            await wait_for_rpcs()
            return outputs

        result: dict[str, Any] = {}

        async def wrapped() -> None:
            result.update(await main())

        loop.run_until_complete(run_pulumi_func(wrapped))
        return Plan(PROJECT, settings.stack, list(monitor.records.values()), result)
    finally:
        runtime_settings.reset_options()
        set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(None)
