"""The parser: a stack's config (full keys) in, `Settings` or a `SettingsError` listing every
problem out. It is pure: `stacks.settings.loading.load` is what reads the engine's config.

Each value is converted and checked against its `SPEC` row (type, bounds, choices, pattern); when
every value is valid on its own, the rules between values are checked (`rules.settings_problems`).
Config keys are camelCase and `Settings` fields snake_case: the conversion happens here only.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from components.problems import Naming, node_group_problems
from stacks.settings.models import build_models
from stacks.settings.rules import settings_problems
from stacks.settings.sections import SECTIONS, Section, Settings, StackInfo
from stacks.settings.spec import (
    ENVIRONMENTS,
    MODEL_KEY_SPEC,
    MODEL_OVERRIDES,
    MODEL_SECTIONS,
    PROJECT,
    SPEC,
    SPEC_BY_KEY,
    SUBSCRIPTION_PROTOCOLS,
    GpuNodeGroup,
    ModelEntry,
    Spec,
    Subscription,
    full_key,
)

# Provider keys the program does not read but a stack file may set (the local stack points the
# provider at moto). Anything else under `aws:` is passed to the provider untouched.
_NOT_PROJECT_NAMESPACES = ("aws", "kubernetes", "pulumi")
# A `gpuNodeGroups` entry: `GpuNodeGroup` field -> its key in the entry.
GPU_GROUP_KEYS = {
    "name": "name",
    "instance_types": "instanceTypes",
    "capacity_type": "capacityType",
    "max_size": "maxSize",
    "disk_gb": "diskGb",
}
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
# Keys that moved into each `models` entry: the stack-wide key is refused with this hint.
_MOVED = {f"{PROJECT}:modelKey": "set `modelKey` in the model's entry of `models`"}


class SettingsError(ValueError):
    """Every problem found in a stack's configuration, one line each."""

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.stack = stack
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"stack {stack!r}: {len(self.problems)} configuration problem(s):\n{lines}"
        )


def parse_settings(
    stack: str, config: Mapping[str, Any], secret_keys: Sequence[str] = ()
) -> Settings:
    """Parse a stack's config (full keys) into `Settings`.

    Raises `SettingsError` listing every problem, not just the first.
    """
    problems: list[str] = []
    if stack not in ENVIRONMENTS and not re.fullmatch(r"[a-zA-Z0-9_.-]+", stack):
        problems.append(f"stack name {stack!r}: use letters, digits, '-', '_' or '.'")
    problems += _key_problems(config)
    values = _values(config, secret_keys, problems)
    if problems:
        raise SettingsError(stack, problems)
    settings = _settings(stack, values, secret_keys)
    problems = settings_problems(settings)
    if problems:
        raise SettingsError(stack, problems)
    return settings


def _key_problems(config: Mapping[str, Any]) -> list[str]:
    """Unknown keys (with a suggestion) and keys outside the namespaces the stack may use."""
    known = {full_key(s) for s in SPEC}
    problems = []
    for key in config:
        namespace, sep, _ = key.partition(":")
        if not sep:
            problems.append(f"{key}: config keys are namespaced, e.g. '{PROJECT}:{key}'")
        elif key in _MOVED:
            problems.append(f"{key}: no longer a stack-wide setting; {_MOVED[key]}")
        elif namespace == PROJECT and key not in known:
            problems.append(_unknown_key_problem(key))
        elif namespace not in (PROJECT, *_NOT_PROJECT_NAMESPACES):
            problems.append(
                f"{key}: unknown namespace {namespace!r}; settings live under "
                f"'{PROJECT}:' (provider keys under 'aws:')"
            )
    return problems


def _unknown_key_problem(key: str) -> str:
    known = [full_key(s) for s in SPEC if s.key != "aws:region"]
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{key}: unknown setting{suggestion}; see the settings table in README.md"


def _values(
    config: Mapping[str, Any], secret_keys: Sequence[str], problems: list[str]
) -> dict[Spec, Any]:
    """Every setting's value: converted from the config, or its default."""
    # The environment decides defaults, so it is read first.
    env_spec = SPEC_BY_KEY["environment"]
    raw_env = config.get(full_key(env_spec))
    environment = _convert(env_spec, raw_env, problems) if raw_env is not None else None
    if raw_env is None:
        problems.append(f"{full_key(env_spec)}: required; expected {env_spec.allowed}")

    values: dict[Spec, Any] = {}
    for spec in SPEC:
        key = full_key(spec)
        if spec is env_spec:
            values[spec] = environment
            continue
        if key in config and config[key] is not None:
            if key in secret_keys and spec.kind != "str":
                problems.append(f"{key}: is a secret, but only string settings may be secret")
                continue
            values[spec] = _convert(spec, config[key], problems)
        elif spec.required:
            problems.append(f"{key}: required; expected {spec.allowed}")
        else:
            default = spec.default
            values[spec] = default(environment or "dev") if callable(default) else default
    return values


def _settings(stack: str, values: Mapping[Spec, Any], secret_keys: Sequence[str]) -> Settings:
    """Each value into the `Settings` field(s) its `SPEC` row names; the per-model sections once
    per `models` entry (`stacks.settings.models.build_models`)."""
    stack_wide: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in (*SECTIONS, *MODEL_SECTIONS)}
    for spec, value in values.items():
        for path in spec.fields:
            section, dot, field = path.partition(".")
            if dot:
                sections[section][field] = value
            else:
                stack_wide[path] = value
    info = StackInfo(
        stack, stack_wide["environment"], stack_wide["owner"], stack_wide["cost_center"]
    )
    built: dict[str, Any] = {
        name: cls(stack=info, **sections[name])
        if issubclass(cls, Section)
        else cls(**sections[name])
        for name, cls in SECTIONS.items()
    }
    stack_wide["models"] = build_models(
        info,
        stack_wide["models"],
        {name: sections[name] for name in MODEL_SECTIONS},
        legacy_model=stack_wide["legacy_model"],
        model_package_arn=stack_wide["model_package_arn"],
    )
    return Settings(stack=stack, secret_keys=tuple(secret_keys), **stack_wide, **built)


# --- converting one value ----------------------------------------------------------------------


def _maybe_json(value: Any) -> Any:
    """The real engine hands structured values over as JSON strings."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _bad(spec: Spec, value: Any, problems: list[str], why: str = "", where: str = "") -> None:
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    problems.append(
        f"{where or full_key(spec)}: {shown} is not allowed{why}; expected {spec.allowed}"
    )


def _convert(spec: Spec, value: Any, problems: list[str], where: str = "") -> Any:
    """The value as its kind, or None with the problem recorded; `where` names the value in
    problems (default: the spec's key; a `models` entry's override names its place)."""
    if spec.kind == "bool":
        return _to_bool(spec, value, problems, where)
    if spec.kind in ("int", "float"):
        return _to_number(spec, value, problems, where)
    if spec.kind == "str":
        return _to_str(spec, value, problems, where)
    value = _maybe_json(value)
    if spec.kind in ("strlist", "cidrlist"):
        return _to_strings(spec, value, problems)
    if spec.kind == "subscriptions":
        return _to_subscriptions(spec, value, problems)
    if spec.kind == "gpugroups":
        return _to_gpu_groups(spec, value, problems)
    if spec.kind == "models":
        return _to_models(spec, value, problems)
    raise AssertionError(spec.kind)


def _to_bool(spec: Spec, value: Any, problems: list[str], where: str = "") -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    _bad(spec, value, problems, where=where)
    return None


def _to_number(spec: Spec, value: Any, problems: list[str], where: str = "") -> float | None:
    number = _number(spec, value)
    if number is None:
        why = ""
    elif spec.minimum is not None and number < spec.minimum:
        why = " (too small)"
    elif spec.maximum is not None and number > spec.maximum:
        why = " (too large)"
    elif spec.choices is not None and number not in spec.choices:
        why = ""
    else:
        return number
    _bad(spec, value, problems, why, where)
    return None


def _number(spec: Spec, value: Any) -> float | None:
    """An int (or, for a float setting, a float) from a number or its text; None if it is not."""
    if isinstance(value, bool):
        return None
    number: float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value) if spec.kind == "float" else int(value)
        except ValueError:
            return None
    else:
        return None
    if spec.kind == "int" and isinstance(number, float) and not number.is_integer():
        return None
    return int(number) if spec.kind == "int" else float(number)


def _to_str(spec: Spec, value: Any, problems: list[str], where: str = "") -> str | None:
    if value == "" and (spec.default == "" or "" in (spec.choices or ())):
        return ""  # an optional setting left off
    if not isinstance(value, str) or not value.strip():
        _bad(spec, value, problems, where=where)
        return None
    if spec.choices is not None and value not in spec.choices:
        hint = difflib.get_close_matches(value, [str(c) for c in spec.choices], n=1)
        _bad(spec, value, problems, f" (did you mean {hint[0]!r}?)" if hint else "", where)
        return None
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        _bad(spec, value, problems, where=where)
        return None
    return value


def _to_strings(spec: Spec, value: Any, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _bad(spec, value, problems)
        return None
    if spec.choices is not None:
        for v in value:
            if v not in spec.choices:
                hint = difflib.get_close_matches(v, [str(c) for c in spec.choices], n=1)
                shown = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(
                    f"{full_key(spec)}: {v!r} is not allowed{shown}; expected {spec.allowed}"
                )
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            problems.append(f"{full_key(spec)}: {', '.join(repeated)} listed twice; list each once")
    if spec.kind == "cidrlist":
        for v in value:
            try:
                ipaddress.ip_network(v, strict=True)
            except ValueError:
                problems.append(
                    f"{full_key(spec)}: {v!r} is not a CIDR block (e.g. 203.0.113.0/24)"
                )
    return tuple(value)


def _to_subscriptions(
    spec: Spec, value: Any, problems: list[str]
) -> tuple[Subscription, ...] | None:
    if not isinstance(value, list):
        _bad(spec, value, problems)
        return None
    subs = []
    for i, item in enumerate(value):
        if (
            not isinstance(item, dict)
            or set(item) != {"protocol", "endpoint"}
            or item["protocol"] not in SUBSCRIPTION_PROTOCOLS
            or not isinstance(item["endpoint"], str)
            or not item["endpoint"]
        ):
            problems.append(
                f"{full_key(spec)}[{i}]: {json.dumps(item)} is not allowed; expected "
                "{protocol: email|https|sqs, endpoint: <address, URL or queue ARN>}"
            )
            continue
        subs.append(Subscription(item["protocol"], item["endpoint"]))
    return tuple(subs)


def _to_gpu_groups(spec: Spec, value: Any, problems: list[str]) -> tuple[GpuNodeGroup, ...] | None:
    """Each entry checked by the training cluster's own rule for a node group."""
    if not isinstance(value, list):
        _bad(spec, value, problems)
        return None
    key = full_key(spec)
    naming = Naming({"gpu_node_groups": key, **GPU_GROUP_KEYS})
    allowed_keys = set(GPU_GROUP_KEYS.values())
    groups = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object with {sorted(allowed_keys)}")
            continue
        unknown = set(item) - allowed_keys
        if unknown:
            problems.append(
                f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed_keys)}"
            )
        name = item.get("name")
        types = item.get("instanceTypes")
        capacity = item.get("capacityType", "ON_DEMAND")
        max_size = item.get("maxSize", 2)
        disk = item.get("diskGb", 200)
        found = node_group_problems(i, name, types, capacity, max_size, disk, naming)
        problems += found
        if not found:
            groups.append(
                GpuNodeGroup(str(name), tuple(cast(list[str], types)), capacity, max_size, disk)
            )
    return tuple(groups)


def _to_models(spec: Spec, value: Any, problems: list[str]) -> tuple[ModelEntry, ...] | None:
    """Each entry: a known model, listed once, overriding only what a model may override, each
    override checked by its stack-wide key's rules. Every problem of every entry is reported."""
    from ml.models import ModelSpecError
    from ml.models import names as model_names
    from ml.models import spec as model_spec

    key = full_key(spec)
    if not isinstance(value, list) or not value:
        _bad(spec, value, problems, " (at least one model)" if value == [] else "")
        return None
    known = model_names()
    allowed = ("name", MODEL_KEY_SPEC.key, *MODEL_OVERRIDES)
    entries, seen = [], set()
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            problems.append(
                f"{where}: {json.dumps(item)} is not an object; expected {spec.allowed}"
            )
            continue
        name = item.get("name")
        if not isinstance(name, str) or name not in known:
            hint = difflib.get_close_matches(str(name), known, n=1) if name else []
            problems.append(
                f"{where}.name: {json.dumps(name)} is not a model"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; known models (packages under ml/models/): {', '.join(known) or 'none'}"
            )
            name = None
        elif name in seen:
            problems.append(f"{where}.name: {name!r} is listed twice; list each model once")
        else:
            seen.add(name)
            try:
                model_spec(name)
            except ModelSpecError as exc:
                problems.append(f"{where}.name: ml/models/{name} breaks the model contract: {exc}")
        overrides: dict[str, Any] = {}
        for field, raw in item.items():
            if field == "name":
                continue
            if field not in allowed:
                hint = difflib.get_close_matches(str(field), allowed, n=1)
                problems.append(
                    f"{where}.{field}: not a setting a model may override"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; allowed: {', '.join(allowed)}"
                )
                continue
            row = MODEL_KEY_SPEC if field == MODEL_KEY_SPEC.key else SPEC_BY_KEY[field]
            converted = _convert(row, raw, problems, where=f"{where}.{field}")
            if converted is not None:
                overrides[field] = converted
        if name is not None:
            entries.append(ModelEntry(name, overrides, i))
    return tuple(entries)
