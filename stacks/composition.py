"""The composition root: `build(settings)` wires the components into the platform.

It returns the platform outputs (the keys of `ml.outputs.PlatformOutputs`) as Pulumi inputs;
`__main__` exports them. No config is read here: everything arrives through `settings`.
"""

from __future__ import annotations

from typing import Any

import pulumi

from stacks.settings import Settings


def build(settings: Settings) -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "stack": settings.stack,
        "environment": settings.environment,
        "region": settings.region,
        "account_id": settings.account_id,
        "tags": settings.tags,
    }
    return outputs


def export(outputs: dict[str, Any]) -> None:
    for key, value in outputs.items():
        pulumi.export(key, value)
