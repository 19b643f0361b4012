"""The offline plan engine: run the Pulumi program under a recording mock monitor.

Every registration is captured as the engine would see it (type token, logical name, parent URN,
custom or component, camelCase inputs, resource options) without the Pulumi CLI, a cloud account
or a network. Aliases are recorded as the engine resolves them (`aliases`, full URNs): the
resource's own, and those it inherits from an aliased parent, so that `mlplat.plan.diff` can tell a
moved resource from a replaced one. Invokes are answered only when the engine was told how (account
id, region, partition, availability zones come from the stack settings); any other invoke raises,
so a program never silently depends on a data source the offline engines cannot answer.

The same recorder backs the test fixture (`tests/conftest.py`) and `mlplat preview`; the sandbox
subclasses it to realize resources in a moto server instead of inventing ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import runpy
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func, wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from mlplat.aws import REGISTRY
from mlplat.aws.registry import Fake, digest, name_seed
from policies import names
from stacks.settings import PROJECT, Settings

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
    # The name property pulumi-aws fills in its Check when the program left it unset (the name
    # the resource will get); kept apart from `inputs`, which are what the program registered.
    autonamed: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "urn": self.urn,
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
            "options": self.options,
        }
        if self.autonamed:
            out["autonamed"] = self.autonamed
        return out


@dataclass(slots=True)
class Plan:
    project: str
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str, type_: str | None = None) -> RecordedResource:
        """The one resource of that logical name (and type, when a role and its policy share it)."""
        matches = [
            r for r in self.resources if r.name == name and (type_ is None or r.type == type_)
        ]
        if len(matches) != 1:
            raise KeyError(
                f"{len(matches)} resources named {name!r}" + (f" of {type_}" if type_ else "")
            )
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
#
# Each type's fake sits with the rest of what is known about it, in its service's module of
# `mlplat.aws` (types it does not know get `generic_fake`). A fake is given the resource's physical
# name: the one the program set, else the one pulumi-aws would generate (`policies.names`), else
# `<logical>-<7 hex>`. The random part of a generated name is derived from the type and logical
# name (`name_seed`), so ids are stable from run to run.


def autonamed(type_: str, name: str, inputs: Mapping[str, Any]) -> dict[str, str]:
    """`{<name property>: <name>}` when pulumi-aws would auto-name the resource in its Check.

    Empty when the program set the name, the provider does not auto-name the type, or it would
    refuse (the logical name is too long: the `aws-names-within-limits` policy says so).
    """
    try:
        generated = names.provider_autoname(type_, name, inputs, name_seed(type_, name))
    except names.AutonameError:
        return {}
    rule = names.rule_for(type_)
    return {rule.prop: generated} if rule is not None and generated is not None else {}


def physical_name(type_: str, name: str, urn: str, inputs: Mapping[str, Any]) -> str:
    """The resource's name: set by the program, auto-named as pulumi-aws would, made from its
    `<prop>Prefix` as the upstream provider does, or (types without a name property, and names
    the provider would refuse) `<logical>-<7 hex>`."""
    rule = names.rule_for(type_)
    if rule is not None:
        explicit = inputs.get(rule.prop)
        if isinstance(explicit, str) and explicit:
            return explicit
        prefix = inputs.get(rule.prefix_prop)
        if isinstance(prefix, str) and prefix:
            return names.prefixed_unique_id(prefix, urn)
        generated = autonamed(type_, name, inputs).get(rule.prop)
        if generated:
            return generated
    return f"{name}-{digest(urn, 7)}"[:63].lower()


def fake_physical(
    type_: str, name: str, urn: str, inputs: Mapping[str, Any], s: Settings
) -> tuple[str, dict[str, Any]]:
    """An id and the computed outputs a provider would return, derived from the URN (stable).

    An auto-named resource's outputs carry the name pulumi-aws would generate, as its state does.
    """
    fake = Fake(
        type=type_,
        kind=type_.rsplit(":", 1)[-1],
        urn=urn,
        inputs=inputs,
        physical=physical_name(type_, name, urn, inputs),
        account=s.account_id,
        region=s.region,
    )
    ident, computed = REGISTRY.fake_for(type_)(fake)
    for prop, generated in autonamed(type_, name, inputs).items():
        computed.setdefault(prop, generated)
    return ident, computed


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
        urn = name_seed(args.typ, args.name)
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
        self.stack_urn = ""  # the root stack resource: the parent of the program's top level

    def RegisterResource(self, request: Any) -> Any:
        from pulumi.runtime import rpc

        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            return response
        inputs = _sync_await(_deserialize(rpc, request.object))
        registration = self.resources[response.urn]
        implied = _struct_deps(request)
        options = {
            "aliases": self._aliases(request),
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
            autonamed=autonamed(request.type, request.name, inputs) if request.custom else {},
        )
        return response

    def _aliases(self, request: Any) -> list[str]:
        """The URNs the engine matches this registration against besides its own: its alias
        specs resolved (name, type, parent defaulting to its own; no parent: the stack's root),
        and for each alias of its parent the inherited one (`<former parent name>-<suffix>` for a
        child named `<parent name>-<suffix>`), as the engine computes them for an SDK that sends
        alias specs. URNs are spelled as this recorder spells them (`make_urn`), so that they
        compare with recorded URNs."""
        own: list[str] = []
        for alias in request.aliases:
            if alias.urn:
                own.append(alias.urn)
                continue
            spec = alias.spec
            parent = self.stack_urn if spec.noParent else (spec.parentUrn or request.parent)
            own.append(self.make_urn(parent, spec.type or request.type, spec.name or request.name))
        found = list(own)
        parent = self.records.get(request.parent)
        if parent is not None:
            for parent_alias in parent.options.get("aliases", []):
                for name, type_ in [
                    (request.name, request.type),
                    *((urn_name(a), urn_type(a)) for a in own),
                ]:
                    if name.startswith(parent.name):
                        name = urn_name(parent_alias) + name[len(parent.name) :]
                    found.append(self.make_urn(parent_alias, type_, name))
        urn = self.make_urn(request.parent, request.type, request.name)
        return sorted(set(found) - {urn})


def urn_name(urn: str) -> str:
    return urn[urn.rfind("::") + 2 :]


def urn_type(urn: str) -> str:
    """The resource's own type (the last of the qualified type's `$`-separated parts)."""
    return urn.split("::")[2].split("$")[-1]


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
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return _asset(value)
    if isinstance(value, float) and value.is_integer():
        # The wire format (protobuf Struct) carries every number as a double; show whole ones
        # as integers, as they were written in the program.
        return int(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _asset(value: pulumi.Asset | pulumi.Archive) -> dict[str, Any]:
    """An asset or archive as the plan shows it: what it holds, with a content hash for files."""
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {name: _plain(item) for name, item in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        path = os.path.abspath(str(value.path))
        shown = os.path.relpath(path, PROJECT_DIR) if path.startswith(PROJECT_DIR) else path
        entry: dict[str, Any] = {"path": shown}
        if os.path.isfile(path):
            with open(path, "rb") as f:
                entry["sha256"] = hashlib.sha256(f.read()).hexdigest()
        return {"asset" if isinstance(value, pulumi.FileAsset) else "archive": entry}
    if isinstance(value, pulumi.StringAsset):
        return {"asset": {"sha256": hashlib.sha256(value.text.encode()).hexdigest()}}
    if isinstance(value, pulumi.RemoteAsset | pulumi.RemoteArchive):
        return {"asset" if isinstance(value, pulumi.RemoteAsset) else "archive": {"uri": value.uri}}
    return {"asset": {"kind": type(value).__name__}}


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
    The SDK sends each registration and invoke to the loop's executor, and its mocks give every
    executor thread without an event loop a new one that nothing closes (a socket pair each, whose
    finalizer can fail at garbage collection): here each thread starts with a loop of the run's
    own, and the run closes them with the executor.
    """
    mocks = mocks or PlanMocks(settings)
    monitor = RecordingMonitor(mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    thread_loops: list[asyncio.AbstractEventLoop] = []
    lock = threading.Lock()

    def give_thread_a_loop() -> None:
        own = asyncio.new_event_loop()
        asyncio.set_event_loop(own)
        with lock:
            thread_loops.append(own)

    executor = ThreadPoolExecutor(thread_name_prefix="pulumi-rpc", initializer=give_thread_a_loop)
    loop.set_default_executor(executor)
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
        executor.shutdown(wait=True, cancel_futures=True)  # waits for the calls in flight only
        for own in thread_loops:
            own.close()
