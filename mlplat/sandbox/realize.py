"""Realize the Pulumi program's resources in the sandbox's moto server.

`RealizingMocks` is the recorder's `PlanMocks` with one change: `new_resource` creates the resource
in moto through boto3 and answers with the *real* id and outputs (ARNs, names, URLs), so every
resource that depends on it is registered with real values. Pulumi registers a resource only once
the resources its inputs reference are registered, so a bucket policy always arrives after its
bucket.

Each type's realizer (create-or-update, keyed by a deterministic physical name, so a second run
against the same server changes nothing) and reader (read the resource back for
`verify-platform`) are declared with the rest of what is known about the type, in its service's
module of `mlplat.aws`; `REALIZERS` and `READERS` are the registry's views of them. Everything
else (Kubernetes objects, EKS, types without a realizer) is listed in `not_emulated` with the
reason and gets the recorder's fake id, so the program still completes; component resources are
not realized. Fields moto does not store are dropped and listed in `notes`; a realizer that fails
is listed in `failed`. Nothing is skipped silently.

Work that must wait until the whole program is registered (a bucket's access logging, judged on
its target's policy) is deferred by the realizer (`RealizeContext.defer`) and run by
`RealizingMocks.finish`; `realize(...)` does both.

Resources AWS gives no name to (KMS keys, VPC parts) carry one extra tag, `SANDBOX_TAG`, holding
their physical name: that is how a second run finds them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import boto3
import pulumi

from mlplat.aws import REGISTRY
from mlplat.aws.realizing import (
    SANDBOX_TAG,
    NotEmulated,
    Reader,
    RealizeContext,
    RealizeError,
    Realizer,
    Registration,
    plain,
)
from mlplat.plan.engine import Plan, PlanMocks
from stacks.settings import Settings

__all__ = [
    "READERS",
    "REALIZERS",
    "SANDBOX_TAG",
    "NotEmulated",
    "RealizeContext",
    "RealizeError",
    "RealizingMocks",
    "Registration",
    "context_for",
    "not_emulated_reason",
    "realize",
]

REALIZERS: Mapping[str, Realizer] = REGISTRY.realizers
READERS: Mapping[str, Reader] = REGISTRY.readers


def not_emulated_reason(type_: str) -> str:
    if type_.startswith("kubernetes:"):
        return "a Kubernetes object: the sandbox has no Kubernetes API server to hold it"
    service_reason = REGISTRY.not_emulated(type_)  # a whole service moto cannot run (EKS)
    if service_reason is not None:
        return service_reason
    if type_.startswith("pulumi:providers:"):
        return "a provider instance: configuration, not a cloud resource"
    if not type_.startswith("aws:"):
        return f"package {type_.split(':', 1)[0]!r} is not emulated by the sandbox"
    return "no sandbox realizer for this type (moto may not support it)"


# --- the mocks


class RealizingMocks(PlanMocks):
    """`PlanMocks` whose `new_resource` realizes each custom resource in the sandbox's moto.

    After the run: `realized` (type, name, id), `not_emulated` (type, name, reason), `failed`
    (type, name, error) and `notes` (type, name, what was dropped or replaced).
    """

    def __init__(self, settings: Settings, ctx: RealizeContext) -> None:
        super().__init__(settings)
        self.ctx = ctx
        self.realized: list[tuple[str, str, str]] = []
        self.not_emulated: list[tuple[str, str, str]] = []
        self.failed: list[tuple[str, str, str]] = []
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def notes(self) -> list[tuple[str, str, str]]:
        return self.ctx.notes

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        create = REALIZERS.get(args.typ)
        if args.resource_id:
            with self._lock:
                self.not_emulated.append(
                    (
                        args.typ,
                        args.name,
                        "a read of an existing resource "
                        f"({args.resource_id}): the sandbox only creates",
                    )
                )
            return super().new_resource(args)
        if create is None:
            with self._lock:
                self.not_emulated.append((args.typ, args.name, not_emulated_reason(args.typ)))
            return super().new_resource(args)
        inputs = plain(dict(args.inputs))
        try:
            ident, computed = create(self.ctx, Registration(args.typ, args.name, inputs))
        except NotEmulated as exc:
            with self._lock:
                self.not_emulated.append((args.typ, args.name, str(exc)))
            return super().new_resource(args)
        except Exception as exc:  # reported by the realize step, never swallowed
            with self._lock:
                self.failed.append((args.typ, args.name, f"{type(exc).__name__}: {exc}"))
            return super().new_resource(args)
        state = {**dict(args.inputs), **computed}
        if "tags" in args.inputs and "tagsAll" not in state:
            state["tagsAll"] = args.inputs["tags"]
        with self._lock:
            self.realized.append((args.typ, args.name, ident))
            self.states[(args.typ, args.name)] = {**inputs, **computed}
        return ident, state

    def finish(self) -> None:
        """Run the deferred actions, in registration order, one at a time. A resource whose
        action fails moves from `realized` to `failed` (or `not_emulated`, with the reason)."""
        while self.ctx.deferred:
            type_, name, ident, action = self.ctx.deferred.pop(0)
            try:
                action()
            except NotEmulated as exc:
                self._unrealize(type_, name, ident)
                self.not_emulated.append((type_, name, str(exc)))
            except Exception as exc:  # reported by the realize step, never swallowed
                self._unrealize(type_, name, ident)
                self.failed.append((type_, name, f"{type(exc).__name__}: {exc}"))

    def _unrealize(self, type_: str, name: str, ident: str) -> None:
        with self._lock:
            if (type_, name, ident) in self.realized:
                self.realized.remove((type_, name, ident))
            self.states.pop((type_, name), None)

    def verify(self) -> list[tuple[str, str, str]]:
        """Read every realized resource back from moto; the problems found (type, name, error)."""
        problems = []
        for type_, name, ident in self.realized:
            try:
                READERS[type_](self.ctx, ident, self.states[(type_, name)])
            except Exception as exc:
                problems.append((type_, name, f"{type(exc).__name__}: {exc}"))
        return problems


def realize(
    settings: Settings,
    config: Mapping[str, Any],
    mocks: RealizingMocks,
    program: Callable[[], None] | None = None,
) -> Plan:
    """Run the program under `mocks`, then the deferred actions; returns the recorder's `Plan`."""
    from mlplat.plan import engine

    plan = engine.run(settings, config, mocks=mocks, program=program)
    mocks.finish()
    return plan


def context_for(session: boto3.Session, endpoint_url: str, settings: Settings) -> RealizeContext:
    return RealizeContext(
        session=session,
        endpoint_url=endpoint_url,
        region=settings.region,
        account_id=settings.account_id,
    )
