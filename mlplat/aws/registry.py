"""The registry's shape: one `AwsType` per type token, grouped by the `Service` that declares it.

An entry carries what the tools know about one type: `fake` (the plan engine's id and computed
outputs), `realize` and `read` (the sandbox's create-or-update in moto, and its read-back for
`verify-platform`) and `force_new` (the inputs whose change replaces the resource, for `mlplat
preview --diff`). Whether a type is stateful and how it is named are the policy pack's
(`policies.core.STATEFUL_TYPES`, `policies.names`): the pack runs under the Pulumi CLI without
`mlplat`, so the registry reads them from there (`AwsType.stateful`, `AwsType.name_rule`) and never
repeats them.

Pure: no boto3, moto or pulumi at import time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from policies import names
from policies.core import STATEFUL_TYPES, canonical_type

if TYPE_CHECKING:
    from mlplat.aws.realizing import Reader, Realizer


def digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def service_of(token: str) -> str:
    # "aws:s3/bucket:Bucket" -> "s3"
    return token.split(":")[1].split("/")[0] if ":" in token else "unknown"


def name_seed(token: str, name: str) -> str:
    """What a generated name's random part is derived from: the plan engine's fakes and the
    sandbox's physical names both derive it from the type and the logical name, so ids are stable
    from run to run and the two agree."""
    return f"{token}::{name}"


class Arns(Protocol):
    """Something that knows the account and region ARNs are made in (a `Fake`, the sandbox's
    `RealizeContext`), so an output shape both return is written once."""

    def arn(self, service: str, resource: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Fake:
    """One registration as the plan engine's fake provider sees it."""

    type: str
    kind: str  # "Bucket"
    urn: str
    inputs: Mapping[str, Any]
    physical: str  # `mlplat.plan.engine.physical_name`
    account: str
    region: str

    def digest(self, n: int, salt: str = "") -> str:
        return digest(self.urn + salt, n)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def uuid(self, salt: str = "") -> str:
        """A stable UUID-shaped value (the form AWS gives ids it generates)."""
        h = digest(self.urn + "uuid" + salt, 32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def input(self, name: str) -> str:
        """An input as text ('' when absent or unknown): ids built from inputs use it."""
        value = self.inputs.get(name)
        return value if isinstance(value, str) else ""


# (id, computed outputs): what a provider answers a create with
Outputs = tuple[str, dict[str, Any]]
Faker = Callable[[Fake], Outputs]


def generic_fake(f: Fake) -> Outputs:
    """For a type the tools do not know: the physical name as id and, for an AWS type, an ARN
    shaped `<service>:<kind>/<name>` (a guess: known types give their documented shape)."""
    if not f.type.startswith("aws:"):
        return f.physical, {}
    return f.physical, {"arn": f.arn(service_of(f.type), f"{f.kind.lower()}/{f.physical}")}


def no_arn_fake(f: Fake) -> Outputs:
    """A type whose provider state has no ARN of its own: the physical name as id."""
    return f.physical, {}


def id_of_input(name: str) -> Faker:
    """A type whose id is one of its inputs (S3 bucket settings: the bucket; an ECR lifecycle
    policy: the repository), with no ARN of its own."""

    def fake(f: Fake) -> Outputs:
        return f.input(name) or f.physical, {}

    return fake


@dataclass(frozen=True, slots=True)
class AwsType:
    """What the tools know about one AWS type token."""

    token: str
    fake: Faker
    realize: Realizer | None = None
    read: Reader | None = None
    force_new: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.token.startswith("aws:") or self.token.count(":") != 2:
            raise ValueError(f"{self.token!r} is not an AWS type token (aws:<service>/<x>:<X>)")
        if (self.realize is None) != (self.read is None):
            raise ValueError(f"{self.token}: a realizer needs a reader, and a reader a realizer")

    @property
    def service(self) -> str:
        return service_of(self.token)

    @property
    def kind(self) -> str:
        return self.token.rsplit(":", 1)[-1]

    @property
    def stateful(self) -> bool:
        """Deleting it loses data or a long-lived identity (the policy pack's list)."""
        return self.token in STATEFUL_TYPES

    @property
    def name_rule(self) -> names.NameRule | None:
        """Its physical name's property, AWS limits and autonaming (the policy pack's table)."""
        return names.rule_for(self.token)


@dataclass(frozen=True, slots=True)
class Service:
    """What one service module (`mlplat/aws/<service>.py`) declares."""

    owns: tuple[str, ...]  # token services: "ec2" for `aws:ec2/...`
    types: tuple[AwsType, ...]
    # per owned token service: the fake of its types not in `types` (else `generic_fake`)
    default_fakes: Mapping[str, Faker] = field(default_factory=dict)
    # why the sandbox realizes none of this service's types (None: it realizes those it can)
    not_emulated: str | None = None

    def __post_init__(self) -> None:
        foreign = [t.token for t in self.types if t.service not in self.owns]
        foreign += [s for s in self.default_fakes if s not in self.owns]
        if foreign:
            raise ValueError(f"a service owning {self.owns} declares {foreign}")


class Registry:
    """Every service's types, looked up by token."""

    def __init__(self, services: Iterable[Service]) -> None:
        types: dict[str, AwsType] = {}
        default_fakes: dict[str, Faker] = {}
        reasons: dict[str, str] = {}
        for service in services:
            for entry in service.types:
                if entry.token in types:
                    raise ValueError(f"{entry.token} is declared twice")
                types[entry.token] = entry
            default_fakes.update(service.default_fakes)
            if service.not_emulated is not None:
                reasons.update(dict.fromkeys(service.owns, service.not_emulated))
        self._types = MappingProxyType(types)
        self._default_fakes = MappingProxyType(default_fakes)
        self._reasons = MappingProxyType(reasons)
        self.realizers: Mapping[str, Realizer] = MappingProxyType(
            {t: e.realize for t, e in types.items() if e.realize is not None}
        )
        self.readers: Mapping[str, Reader] = MappingProxyType(
            {t: e.read for t, e in types.items() if e.read is not None}
        )

    def __contains__(self, token: object) -> bool:
        return token in self._types

    def __iter__(self) -> Iterator[AwsType]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def get(self, token: str) -> AwsType | None:
        return self._types.get(token)

    def fake_for(self, token: str) -> Faker:
        """The type's fake, else its service's default, else `generic_fake` (any token)."""
        entry = self._types.get(token)
        if entry is not None:
            return entry.fake
        return self._default_fakes.get(service_of(token), generic_fake)

    def force_new(self, token: str) -> frozenset[str]:
        entry = self._types.get(token)
        return entry.force_new if entry is not None else frozenset()

    def stateful(self, token: str) -> bool:
        """Any token, registered or not, aliases as their canonical type (`BucketV2` is a bucket;
        the policy pack's list is the authority)."""
        return canonical_type(token) in STATEFUL_TYPES

    def not_emulated(self, token: str) -> str | None:
        """Why the sandbox realizes no type of the token's service, if its module says so."""
        return self._reasons.get(service_of(token)) if token.startswith("aws:") else None
