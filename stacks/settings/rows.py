"""What a row of the settings table (`stacks.settings.spec.SPEC`) is: a config key, its kind, its
default and where its value goes, and the values a structured setting parses to. Standard library
only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# --- the values a structured setting parses to ------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuNodeGroup:
    name: str
    instance_types: tuple[str, ...]
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    max_size: int = 2
    disk_gb: int = 200


@dataclass(frozen=True, slots=True)
class Subscription:
    protocol: Literal["email", "https", "sqs"]
    endpoint: str


# --- a row of the table ------------------------------------------------------------------------

Kind = Literal[
    "str", "int", "float", "bool", "strlist", "cidrlist", "gpugroups", "subscriptions", "models"
]
Default = Any | Callable[[str], Any]  # a value, or a function of the environment


@dataclass(frozen=True, slots=True)
class Spec:
    key: str  # camelCase config key under `ml-platform:` (or the full key, for `aws:region`)
    # Where the value goes: a stack-wide `Settings` field, or `section.field`; several when more
    # than one component reads the value (each section holds what its component needs).
    field: str | tuple[str, ...]
    kind: Kind
    description: str
    default: Default = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None
    # What is allowed, when the kind, choices and bounds do not say it well.
    allowed_text: str | None = None
    # The default, when it is not one value (e.g. each model's own): shown in the settings table.
    default_text: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,) if isinstance(self.field, str) else self.field

    @property
    def allowed(self) -> str:
        if self.allowed_text is not None:
            return self.allowed_text
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.pattern is not None:
            return f"a string matching {self.pattern}"
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        noun = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "str": "a string",
            "strlist": "a list of strings",
            "cidrlist": "a list of CIDR blocks",
            "gpugroups": "a list of {name, instanceTypes, capacityType, maxSize, diskGb}",
            "subscriptions": "a list of {protocol: email|https|sqs, endpoint}",
            "models": "a list of {name, ...}",
        }[self.kind]
        return noun + (" " + " and ".join(bounds) if bounds else "")


def by_env(**values: Any) -> Callable[[str], Any]:
    """A default that depends on the environment: `by_env(prod=3, other=2)`."""

    def pick(env: str) -> Any:
        return values.get(env, values.get("other"))

    return pick
