"""Reading a stack's config: the stack file, and (`load`) the running engine's config.

`load()` is the only code that reads `pulumi.Config`-land; everything else hands a mapping of full
config keys to `parse_settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stacks.settings.parsing import SettingsError, parse_settings
from stacks.settings.sections import Settings
from stacks.settings.spec import ENVIRONMENTS, PROJECT, SECRET_PLACEHOLDER


def stack_file(project_dir: str, stack: str) -> str:
    import os

    return os.path.join(project_dir, f"Pulumi.{stack}.yaml")


def read_stack_document(
    path: str, stack: str, load: Callable[[str], Any] | None = None
) -> dict[Any, Any]:
    """The `config:` mapping of `Pulumi.<stack>.yaml` as `load` (`yaml.safe_load`) builds it.

    A missing file, invalid YAML or a document of the wrong shape is a `SettingsError` naming the
    file. `mlplat.plan.project_config` passes its own `load` to read the file as the Pulumi CLI
    does.
    """
    import os

    import yaml

    name = os.path.basename(path)
    if not os.path.exists(path):
        raise SettingsError(
            stack,
            [
                f"no stack file {name} (stacks: {', '.join(ENVIRONMENTS)}; create one with "
                f"`pulumi stack init {stack}`)"
            ],
        )
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        document = (load or yaml.safe_load)(text) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(stack, [not_valid_yaml(path, exc)]) from exc
    if not isinstance(document, dict):
        raise SettingsError(stack, [f"{name}: expected a mapping at the top"])
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise SettingsError(stack, [f"{name}: `config` must be a mapping"])
    return raw


def not_valid_yaml(path: str, exc: Exception) -> str:
    import os

    return f"{os.path.basename(path)} is not valid YAML: {exc}"


def read_stack_file(path: str, stack: str) -> tuple[dict[str, Any], list[str]]:
    """The `config:` map of `Pulumi.<stack>.yaml` with full keys and YAML-typed values.

    Secure values (`{secure: v1:...}`) are not decrypted: they come back as a placeholder and their
    keys are listed as secret. This is the stack file alone: `mlplat.plan.project_config` reads it
    as the Pulumi CLI does (scalars as text) and applies the defaults declared in `Pulumi.yaml`.
    """
    config: dict[str, Any] = {}
    secret: list[str] = []
    for key, value in read_stack_document(path, stack).items():
        full = key if ":" in str(key) else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = SECRET_PLACEHOLDER
            secret.append(full)
        else:
            config[full] = value
    return config, secret


def load() -> Settings:
    """Settings of the running stack, read from the engine's config (the only `pulumi` reader)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    all_config: dict[str, Any] = dict(runtime_config.get_config_env())
    all_config.update(runtime_config.CONFIG.get())
    secrets = list(runtime_config.get_config_secret_keys_env()) + [
        k for k in all_config if runtime_config.is_config_secret(k)
    ]
    return parse_settings(pulumi.get_stack(), all_config, secrets)
