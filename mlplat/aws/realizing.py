"""What every realizer shares: the sandbox's context, one registration, and the shaping helpers.

A realizer (`Realizer`) creates or updates one registered resource in the sandbox's moto server
and answers with its real id and outputs; a reader (`Reader`) reads it back. Both are declared in
their service's module (`mlplat/aws/<service>.py`); `mlplat.sandbox.realize` runs them.

Pure at import time: boto3 and botocore are imported by the first client made, pulumi by `plain`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlplat.aws.registry import digest, name_seed

if TYPE_CHECKING:
    import boto3

SANDBOX_TAG = "mlplat:sandbox-name"


@dataclass
class RealizeContext:
    """What every realizer shares: a boto3 session pointed at the sandbox and where it is."""

    session: boto3.Session
    endpoint_url: str
    region: str
    account_id: str
    notes: list[tuple[str, str, str]] = field(default_factory=list)
    # (type, name, id, action): work that must wait until every resource is registered
    deferred: list[tuple[str, str, str, Callable[[], None]]] = field(default_factory=list)
    # bucket -> the policy the program declared (moto may hold less: `moto_effective_policy`)
    bucket_policies: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str) -> Any:
        # boto3 sessions are not thread-safe; clients are. The mock monitor may call us from
        # several threads, so clients are made once, under a lock.
        from botocore.config import Config

        with self._lock:
            if service not in self._clients:
                # moto never throttles: a retry only repeats a server error, slowly
                self._clients[service] = self.session.client(  # type: ignore[call-overload]
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=Config(retries={"total_max_attempts": 1}),
                )
            return self._clients[service]

    def note(self, reg: Registration, text: str) -> None:
        with self._lock:
            self.notes.append((reg.type, reg.name, text))

    def defer(self, reg: Registration, ident: str, action: Callable[[], None]) -> None:
        """Run `action` after the program has registered everything (`RealizingMocks.finish`)."""
        with self._lock:
            self.deferred.append((reg.type, reg.name, ident, action))

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:aws:{service}:{where}:{self.account_id}:{resource}"


@dataclass(frozen=True)
class Registration:
    """One registered custom resource, as the realizer sees it (inputs camelCase, no secrets)."""

    type: str
    name: str
    inputs: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        value = self.inputs.get(key)
        return default if value is None else value

    def require(self, key: str) -> Any:
        value = self.inputs.get(key)
        if value is None or value == "":
            raise RealizeError(f"{self.type} {self.name!r}: input {key!r} is required")
        return value

    def physical(
        self,
        *,
        key: str = "name",
        prefix_key: str = "namePrefix",
        max_len: int = 63,
        lower: bool = False,
        sep: str = "-",
        suffix: str = "",
    ) -> str:
        """The explicit name, or `<prefix|logical>-<7 hex>` the way Pulumi autonames (stable here:
        the hex is derived from `name_seed`, as the plan engine's fakes are)."""
        explicit = self.inputs.get(key)
        if explicit:
            return str(explicit)
        hex7 = digest(name_seed(self.type, self.name), 7)
        prefix = self.inputs.get(prefix_key)
        if prefix:
            base = f"{prefix}{hex7}"
        else:
            stem = self.name[: max_len - len(hex7) - len(sep) - len(suffix)]
            base = f"{stem}{sep}{hex7}"
        base = base.lower() if lower else base
        if sep != "-":
            base = base.replace("-", sep)
        return f"{base[: max_len - len(suffix)]}{suffix}"


class RealizeError(RuntimeError):
    """A resource could not be realized in the sandbox."""


class NotEmulated(Exception):
    """The resource is valid but moto cannot hold it (the realizer says why)."""


Realizer = Callable[[RealizeContext, Registration], tuple[str, dict[str, Any]]]
Reader = Callable[[RealizeContext, str, Mapping[str, Any]], Any]


# --- shaping Pulumi inputs into boto3 requests


def plain(value: Any) -> Any:
    """Secrets unwrapped, integral floats back to int (the engine hands numbers over as doubles)."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value.get("value"))
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def pascal(
    value: Any,
    renames: Mapping[str, str] | None = None,
    opaque: frozenset[str] = frozenset(),
) -> Any:
    """camelCase Pulumi shape -> PascalCase boto3 shape, recursively. `renames` overrides a key's
    boto3 name wherever it appears; keys in `opaque` are user maps and copied verbatim. Empty
    values (None, {} where not opaque) are dropped, as the provider would not send them."""
    renames = renames or {}
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            name = renames.get(key, key[:1].upper() + key[1:])
            out[name] = item if key in opaque else pascal(item, renames, opaque)
        return out
    if isinstance(value, list):
        return [pascal(v, renames, opaque) for v in value]
    return value


def drop_empty(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None and v != [] and v != {}}


def tag_list(
    tags: Mapping[str, str] | None, key: str = "Key", value: str = "Value"
) -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in sorted((tags or {}).items())]


def tag_spec(
    resource_type: str, tags: Mapping[str, str] | None, physical: str
) -> list[dict[str, Any]]:
    all_tags = {**(tags or {}), SANDBOX_TAG: physical}
    return [{"ResourceType": resource_type, "Tags": tag_list(all_tags)}]


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def exists(call: Callable[[], Any], *missing_codes: str) -> Any | None:
    """The response of a describe call, or None when the resource is not there."""
    try:
        return call()
    except Exception as exc:
        code = error_code(exc)
        if code and (
            not missing_codes or code in missing_codes or "NotFound" in code or "NoSuch" in code
        ):
            return None
        raise


def same_json(a: Any, b: Any) -> bool:
    def load(v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v

    try:
        return bool(load(a) == load(b))
    except (TypeError, ValueError):
        return bool(a == b)


def attr(value: Any) -> str:
    """An attribute value as SNS and SQS take it: booleans lower-case, everything a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
