"""The Pulumi CLI's project and stack config rules, applied offline.

Before a program runs, the CLI loads `Pulumi.yaml`, validates its `config:` declarations, reads
`Pulumi.<stack>.yaml`, gives the stack every declared `default`/`value` it does not set, refuses a
stack that misses a declared key without one, and checks the stack's values against the declared
types. The offline engines (`mlplat preview`, `mlplat sandbox`) run the program without the CLI, so
this module repeats those rules, with the CLI's own messages, read from its source
(`sdk/go/common/workspace/project.go`, `config.go`, `project.json`; `resource/config/value.go`):

- `parse_project` / `load_project`: the project file (JSON schema of `config:`, shorthand entries,
  `Project.Validate`, `stackConfigDir`).
- `read_stack_config`: a stack file as the CLI reads it: keys without a namespace get the
  project's, top-level scalars are their YAML text (`yes` stays "yes", `20` is "20"), sequences and
  mappings are JSON object values, `{secure: ...}` is a secret.
- `apply_project_config`: `mergeConfig` and `validateStackConfigValues`: the config the program
  receives (every value a string, objects as JSON text) and the secret keys.

Every failure is a `PulumiConfigError` (a `SettingsError`) whose `message` is the CLI's text.

Where the offline rules cannot match the CLI exactly:
- secure values are not decrypted: the program gets `SECRET_PLACEHOLDER`, and the type of a
  secure value is not checked (the CLI checks the decrypted text);
- `Project.Validate` walks a Go map, so with several bad declarations the CLI reports a random one;
  here the first in key order. JSON-schema problems follow the validator's wording for the failing
  attribute, one line each, without the CLI's list of every `oneOf` alternative;
- ESC environments (`environment:` in a stack file) are not evaluated.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stacks.settings import (
    PROJECT,
    SECRET_PLACEHOLDER,
    SettingsError,
    not_valid_yaml,
    read_stack_document,
    stack_file,
)

PROJECT_FILE = "Pulumi.yaml"
CONFIG_TYPES = ("string", "integer", "boolean", "array")
_DECLARATION_ATTRIBUTES = ("type", "items", "description", "secret", "default", "value")
_INT64 = (-(2**63), 2**63 - 1)


class PulumiConfigError(SettingsError):
    """A Pulumi CLI rule the project or stack breaks; `message` (and `str`) is the CLI's text."""

    @property
    def message(self) -> str:
        return "\n".join(self.problems)

    def __str__(self) -> str:
        return self.message


# --- YAML as Go's yaml.v3 decodes it ---------------------------------------------------------


class GoYamlLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with yaml.v3's plain-scalar typing, where it differs from YAML 1.1.

    Only `true`/`false` (in three spellings) are booleans (`yes`, `on` stay strings); no base-60
    numbers; `1e3` is a number; dates stay strings (as yaml.v3 decodes them into `interface{}`).
    """


_REPLACED_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp", "value")
}
GoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
GoYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
GoYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
GoYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)

_NULL_TAG = "tag:yaml.org,2002:null"


def _construct(node: yaml.Node) -> Any:
    return GoYamlLoader("").construct_document(node)


def go_json(value: Any) -> str:
    """`json.Marshal` of a decoded YAML value: compact, map keys sorted, HTML characters escaped."""
    text = json.dumps(_go_plain(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for char, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def _go_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {_go_key(k): _go_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_go_plain(v) for v in value]
    if (
        isinstance(value, float)
        and math.isfinite(value)
        and value.is_integer()
        and abs(value) < 1e21
    ):
        return int(value)  # Go prints a whole float64 without a fraction
    return value


def _go_key(key: Any) -> str:
    """A map key as Go's `fmt.Sprintf("%v", key)` prints it."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "<nil>"
    return str(key)


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if value is None:
        return "<nil>"
    return "map[string]interface {}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


# --- the project file --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemsType:
    """The `items:` of an array declaration."""

    type: str
    items: ItemsType | None = None


@dataclass(frozen=True, slots=True)
class ConfigType:
    """One `config:` declaration of `Pulumi.yaml`; `None` is Go's nil (absent or YAML null)."""

    type: str | None = None
    items: ItemsType | None = None
    description: str | None = None
    default: Any = None
    value: Any = None
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    config: dict[str, ConfigType] = field(default_factory=dict)
    stack_config_dir: str | None = None


def full_type_name(type_name: str, items: ItemsType | None) -> str:
    """`InferFullTypeName`: `array<string>`, `array<array<integer>>`, ..."""
    if items is not None:
        return f"array<{full_type_name(items.type, items.items)}>"
    return type_name


def valid_config_value(type_name: str, items: ItemsType | None, value: Any) -> bool:
    """`ValidateConfigValue`, on a value typed as Go decodes YAML or JSON."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return _INT64[0] <= value <= _INT64[1]
        if isinstance(value, float):
            return math.isinf(value) or value.is_integer()
        if isinstance(value, str):
            # strconv.Atoi: an optional sign and decimal digits, within int64
            return bool(re.fullmatch(r"[+-]?[0-9]+", value)) and (
                _INT64[0] <= int(value) <= _INT64[1]
            )
        return False
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if not isinstance(value, list) or items is None:
        return False
    return all(valid_config_value(items.type, items.items, item) for item in value)


def is_project_namespaced(project_name: str, key: str) -> bool:
    return ":" not in key or key.startswith(f"{project_name}:")


def parse_key(key: str) -> str:
    """`config.ParseKey`: `<namespace>:<name>`, or the old `<namespace>:config:<name>`."""
    parts = key.split(":")
    if len(parts) == 2 or (len(parts) == 3 and parts[1] == "config"):
        return f"{parts[0]}:{parts[-1]}"
    raise ValueError(
        f"could not parse {key} as a configuration key "
        "(configuration keys should be of the form `<namespace>:<name>`)"
    )


def project_key(project_name: str, key: str) -> str:
    """`parseConfigKey`: a declared key in full; unnamespaced keys are the project's."""
    return parse_key(key) if ":" in key else f"{project_name}:{key}"


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _items_problems(items: Any, where: tuple[str, ...]) -> list[str]:
    """`configItemsType` of project.json."""
    at = _pointer(*where)
    if not isinstance(items, dict):
        return [f"{at}: expected object, but got {_json_type(items)}"]
    problems: list[str] = []
    if "type" not in items:
        problems.append(f"{at}: missing properties: 'type'")
    else:
        type_name = items["type"]
        if isinstance(type_name, dict):
            # The schema allows it; the Go struct (`Type string`) cannot hold it.
            problems.append(f"{_pointer(*where, 'type')}: cannot unmarshal !!map into string")
        elif type_name not in CONFIG_TYPES:
            problems.append(_enum_problem(_pointer(*where, "type")))
        elif type_name == "array" and "items" not in items:
            problems.append(f"{at}: missing properties: 'items'")
    if "items" in items:
        problems += _items_problems(items["items"], (*where, "items"))
    return problems


def _enum_problem(at: str) -> str:
    return f"{at}: value must be one of " + ", ".join(f'"{t}"' for t in CONFIG_TYPES)


def _schema_problems(config: Mapping[Any, Any]) -> list[str]:
    """The `config:` part of project.json, for every declaration."""
    problems: list[str] = []
    for key, entry in config.items():
        where = ("config", str(key))
        at = _pointer(*where)
        if isinstance(entry, str | int | bool | list):  # shorthand: a default, or a value
            continue
        if not isinstance(entry, dict):
            problems.append(
                f"{at}: expected string, integer, boolean, array or object, "
                f"but got {_json_type(entry)}"
            )
            continue
        for attribute in entry:
            if attribute not in _DECLARATION_ATTRIBUTES:
                problems.append(f"{at}: additionalProperties '{attribute}' not allowed")
        if "type" in entry and entry["type"] not in CONFIG_TYPES:
            problems.append(_enum_problem(_pointer(*where, "type")))
        if "items" in entry:
            problems += _items_problems(entry["items"], (*where, "items"))
        if "description" in entry and not isinstance(entry["description"], str):
            problems.append(
                f"{_pointer(*where, 'description')}: expected string, "
                f"but got {_json_type(entry['description'])}"
            )
        if "secret" in entry and not isinstance(entry["secret"], bool):
            problems.append(
                f"{_pointer(*where, 'secret')}: expected boolean, "
                f"but got {_json_type(entry['secret'])}"
            )
    return problems


def _items(raw: Any) -> ItemsType | None:
    if raw is None:
        return None
    return ItemsType(str(raw["type"]), _items(raw.get("items")))


def _declaration(project_name: str, key: str, entry: Any) -> ConfigType:
    if not isinstance(entry, dict):  # RewriteShorthandConfigValues
        if is_project_namespaced(project_name, key):
            return ConfigType(default=entry)
        return ConfigType(value=entry)
    return ConfigType(
        type=entry.get("type"),
        items=_items(entry.get("items")),
        description=entry.get("description"),
        default=entry.get("default"),
        value=entry.get("value"),
        secret=bool(entry.get("secret", False)),
    )


def _validate(project: Project) -> str | None:
    """`Project.Validate`: the first broken rule, in key order."""
    for key in sorted(project.config):
        declared = project.config[key]
        if declared.default is not None and declared.value is not None:
            return f"project config '{key}' cannot have both a 'default' and 'value' attribute"
        if is_project_namespaced(project.name, key):
            if declared.type == "array" and declared.items is None:
                return (
                    f"The configuration key '{key}' declares an array but does not specify "
                    "the underlying type via the 'items' attribute"
                )
            if (
                declared.type is not None
                and declared.default is not None
                and not valid_config_value(declared.type, declared.items, declared.default)
            ):
                return (
                    f"The default value specified for configuration key '{key}' is not of "
                    f"the expected type '{full_type_name(declared.type, declared.items)}'"
                )
        else:
            if declared.type is not None:
                return (
                    f"Configuration key '{key}' is not namespaced by the project and should "
                    "not define a type"
                )
            if declared.default is not None:
                return (
                    f"Configuration key '{key}' is not namespaced by the project and should "
                    "not define a default value. Did you mean to use the 'value' attribute "
                    "instead of 'default'?"
                )
            if declared.value is None:
                return (
                    f"Configuration key '{key}' is namespaced and must provide an attribute 'value'"
                )
    return None


def parse_project(document: Any, stack: str = "") -> Project:
    """A `Pulumi.yaml` document (decoded by `GoYamlLoader`) as the CLI loads and validates it.

    `stack` only names the stack in the raised `PulumiConfigError`.
    """
    if not isinstance(document, dict):
        raise PulumiConfigError(
            stack, [f"expected project to be an object, was '{_go_type(document)}'"]
        )
    if "name" not in document:
        raise PulumiConfigError(stack, ["project is missing a 'name' attribute"])
    name = document["name"]
    if not isinstance(name, str) or not name:
        raise PulumiConfigError(stack, ["project is missing a non-empty string 'name' attribute"])
    if "runtime" not in document:
        raise PulumiConfigError(stack, ["project is missing a 'runtime' attribute"])
    config = document.get("config")
    stack_config_dir = document.get("stackConfigDir")
    if isinstance(config, str):  # RewriteConfigPathIntoStackConfigDir
        if "stackConfigDir" in document:
            raise PulumiConfigError(
                stack,
                [
                    "Should not use both config and stackConfigDir to define the stack "
                    "directory. Use only stackConfigDir instead."
                ],
            )
        config, stack_config_dir = None, config
    if config is not None and not isinstance(config, dict):
        raise PulumiConfigError(
            stack, [f"#/config: expected object, string or null, but got {_json_type(config)}"]
        )
    declarations = config or {}
    problems = _schema_problems(declarations)
    if problems:
        raise PulumiConfigError(stack, problems)
    project = Project(
        name,
        {str(k): _declaration(name, str(k), v) for k, v in declarations.items()},
        stack_config_dir if isinstance(stack_config_dir, str) else None,
    )
    problem = _validate(project)
    if problem is not None:
        raise PulumiConfigError(stack, [problem])
    return project


def load_project(project_dir: str | Path, stack: str = "") -> Project:
    """`<project_dir>/Pulumi.yaml`, loaded and validated as the CLI does."""
    path = os.path.join(str(project_dir), PROJECT_FILE)
    if not os.path.isfile(path):
        raise PulumiConfigError(
            stack,
            [f"no {PROJECT_FILE} in {project_dir} (run from the project, or pass --project-dir)"],
        )
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        document = yaml.load(text, Loader=GoYamlLoader)
    except yaml.YAMLError as exc:
        raise PulumiConfigError(stack, [not_valid_yaml(path, exc)]) from exc
    return parse_project(document, stack)


# --- the stack file ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StackValue:
    """A config value as the CLI holds it (`config.Value`).

    `text` is a scalar's YAML text, an object's JSON, or a secret's ciphertext. `secure` marks a
    secret, or an object holding one.
    """

    text: str
    secure: bool = False
    object: bool = False

    def for_program(self) -> str:
        """What the program receives: the text, with secrets shown as the placeholder."""
        if not self.secure:
            return self.text
        if not self.object:
            return SECRET_PLACEHOLDER
        return go_json(_hide_secrets(json.loads(self.text)))


def _secure_text(value: Any) -> str | None:
    """`isSecureValue`: the ciphertext of `{secure: "..."}`, else None."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str):
        return str(value["secure"])
    return None


def _has_secret(value: Any) -> bool:
    if _secure_text(value) is not None:
        return True
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


def _hide_secrets(value: Any) -> Any:
    if _secure_text(value) is not None:
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _hide_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_secrets(v) for v in value]
    return value


def stack_value(node: yaml.Node) -> StackValue:
    """`Value.UnmarshalYAML`: a scalar as its text (null as ""), anything else as an object."""
    if isinstance(node, yaml.ScalarNode):
        return StackValue("" if node.tag == _NULL_TAG else str(node.value))
    obj = _construct(node)
    secure = _secure_text(obj)
    if secure is not None:
        return StackValue(secure, secure=True)
    return StackValue(go_json(obj), secure=_has_secret(obj), object=True)


def _config_nodes(text: str) -> Any:
    """The stack document with `config:` as {key text: value node} (what `read_stack_document`
    checks the shape of)."""
    root = yaml.compose(text, Loader=GoYamlLoader)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL_TAG):
        return None
    if not isinstance(root, yaml.MappingNode):
        return root
    document: dict[str, Any] = {}
    for key, value in root.value:
        if key.value != "config":
            document[str(key.value)] = value
        elif isinstance(value, yaml.MappingNode):
            document["config"] = {str(k.value): v for k, v in value.value}
        elif isinstance(value, yaml.ScalarNode) and value.tag == _NULL_TAG:
            document["config"] = None
        else:
            document["config"] = value
    return document


def read_stack_config(
    path: str | Path, stack: str, project_name: str = PROJECT
) -> dict[str, StackValue]:
    """`Pulumi.<stack>.yaml` as the CLI reads it, by full key (`ml-platform:owner`)."""
    config: dict[str, StackValue] = {}
    for key, node in read_stack_document(str(path), stack, _config_nodes).items():
        try:
            full = parse_key(key) if ":" in key else f"{project_name}:{key}"
        except ValueError as exc:
            raise PulumiConfigError(stack, [f"could not unmarshal map: {exc}"]) from None
        config[full] = stack_value(node)
    return config


# --- merging -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MergedConfig:
    """The config a program receives: every value a string, and the keys that are secrets."""

    config: dict[str, str]
    secret_keys: tuple[str, ...]


def config_value(raw: Any) -> StackValue:
    """`createConfigValue`: a declared default or value as the stack receives it."""
    if isinstance(raw, bool):
        return StackValue("true" if raw else "false")
    if isinstance(raw, str):
        return StackValue(raw)
    if isinstance(raw, int) and _INT64[0] <= raw <= _INT64[1]:
        return StackValue(str(raw))
    return StackValue(go_json(raw), object=True)


def missing_keys_message(stack: str, keys: Sequence[str]) -> str:
    """`missingStackConfigurationKeysError`."""
    names = sorted(keys)
    if len(names) == 1:
        listed = f"'{names[0]}'"
    else:
        listed = "".join(f"'{k}', " for k in names[:-2]) + f"'{names[-2]}' and '{names[-1]}'"
    noun = "value" if len(names) == 1 else "values"
    return f"Stack '{stack}' is missing configuration {noun} {listed}"


def apply_project_config(
    stack: str, project: Project, stack_config: Mapping[str, StackValue]
) -> MergedConfig:
    """`mergeConfig` with validation: the stack's config plus the project's defaults and values.

    Raises `PulumiConfigError` with the CLI's message: every missing key at once, else the first
    value (in key order) that is not encrypted as declared or not of its declared type.
    """
    config = dict(stack_config)
    missing: list[str] = []
    try:
        keys = {key: project_key(project.name, key) for key in project.config}
    except ValueError as exc:
        raise PulumiConfigError(stack, [str(exc)]) from None
    for key in sorted(project.config):
        declared, full = project.config[key], keys[key]
        if full in config:
            continue
        if declared.default is None and declared.value is None:
            if full.partition(":")[0] == project.name:
                missing.append(key)
            continue
        config[full] = config_value(
            declared.default if declared.default is not None else declared.value
        )
    if missing:
        raise PulumiConfigError(stack, [missing_keys_message(stack, missing)])
    for key in sorted(project.config):
        declared = project.config[key]
        if declared.type is None:
            continue
        value = config.get(keys[key], StackValue(""))
        if declared.secret and not value.secure:
            problem = f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's"
            raise PulumiConfigError(stack, [f"{problem} secret"])
        if value.secure:
            continue  # the CLI checks the decrypted text; offline there is none
        content = json.loads(value.text) if value.object else value.text
        if not valid_config_value(declared.type, declared.items, content):
            type_name = full_type_name(declared.type, declared.items)
            raise PulumiConfigError(
                stack,
                [f"Stack '{stack}' with configuration key '{key}' must be of type '{type_name}'"],
            )
    return MergedConfig(
        {key: value.for_program() for key, value in config.items()},
        tuple(sorted(key for key, value in config.items() if value.secure)),
    )


def load_stack_config(project_dir: str | Path, stack: str) -> MergedConfig:
    """What `pulumi preview -s <stack>` hands the program, or the CLI's error."""
    project = load_project(project_dir, stack)
    stack_dir = os.path.join(str(project_dir), project.stack_config_dir or "")
    stack_config = read_stack_config(stack_file(stack_dir, stack), stack, project.name)
    return apply_project_config(stack, project, stack_config)
