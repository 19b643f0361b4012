"""The Pulumi CLI's project and stack config rules, applied offline (`mlplat.plan.project_config`).

The messages are the CLI's own (sdk/go/common/workspace/project.go and config.go): asserted
verbatim.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlplat.cli.app import app
from mlplat.plan.project_config import (
    GoYamlLoader,
    MergedConfig,
    Project,
    PulumiConfigError,
    StackValue,
    apply_project_config,
    load_project,
    load_stack_config,
    parse_project,
    read_stack_config,
)
from mlplat.plan.project_schema import config_schema, config_section, undeclared, write
from stacks.settings import (
    ENVIRONMENTS,
    SECRET_PLACEHOLDER,
    SPEC,
    SPEC_BY_KEY,
    SettingsError,
    parse_settings,
    read_stack_file,
)
from tests.conftest import ROOT

SHIPPED = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
REQUIRED_LINES = (
    "  aws:region: us-east-1\n  ml-platform:owner: ml-team\n  ml-platform:costCenter: c1\n"
)


def project_from(text: str) -> Project:
    """A project from the text of a Pulumi.yaml (name `test`)."""
    document = yaml.load("name: test\nruntime: python\n" + text, Loader=GoYamlLoader)
    return parse_project(document, "dev")


def project_error(text: str) -> str:
    with pytest.raises(PulumiConfigError) as info:
        project_from(text)
    return info.value.message


def stack_config(tmp_path: Path, text: str, project: str = "test") -> dict[str, StackValue]:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n" + text)
    return read_stack_config(path, "dev", project)


def merge(tmp_path: Path, project_text: str, stack_text: str) -> dict[str, str]:
    project = project_from(project_text)
    return apply_project_config("dev", project, stack_config(tmp_path, stack_text)).config


def merge_error(tmp_path: Path, project_text: str, stack_text: str) -> str:
    with pytest.raises(PulumiConfigError) as info:
        merge(tmp_path, project_text, stack_text)
    return info.value.message


def write_stack(tmp_path: Path, lines: str = "", environment: str = "dev") -> Path:
    """A stack file with the required settings plus `lines`."""
    path = tmp_path / f"Pulumi.{environment}.yaml"
    path.write_text(f"config:\n  ml-platform:environment: {environment}\n" + REQUIRED_LINES + lines)
    return path


def real_merge(tmp_path: Path, lines: str = "", environment: str = "dev") -> MergedConfig:
    """The real project applied to a stack with the required settings plus `lines`."""
    stack = read_stack_config(write_stack(tmp_path, lines, environment), environment)
    return apply_project_config(environment, load_project(ROOT), stack)


def real_stack_error(tmp_path: Path, lines: str) -> str:
    with pytest.raises(PulumiConfigError) as info:
        real_merge(tmp_path, lines)
    return info.value.message


# --- the shipped project and stacks ------------------------------------------------------------


def test_every_shipped_stack_is_found():
    assert set(SHIPPED) >= set(ENVIRONMENTS)


@pytest.mark.parametrize("stack", SHIPPED)
def test_shipped_stack_passes_the_cli_rules_and_parses_as_the_stack_file_alone(stack):
    merged = load_stack_config(ROOT, stack)
    config, secret = read_stack_file(str(ROOT / f"Pulumi.{stack}.yaml"), stack)
    assert parse_settings(stack, merged.config, merged.secret_keys) == parse_settings(
        stack, config, secret
    )
    assert set(merged.config) == set(config) | {f"ml-platform:{k}" for k in config_schema()}
    assert all(isinstance(v, str) for v in merged.config.values())


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_declared_defaults_agree_with_the_parser_in_every_environment(tmp_path, environment):
    merged = real_merge(tmp_path, environment=environment)
    assert len(merged.config) == 4 + len(config_schema()) - 3  # required keys are not defaulted
    config, _ = read_stack_file(str(tmp_path / f"Pulumi.{environment}.yaml"), environment)
    assert parse_settings(environment, merged.config) == parse_settings(environment, config)


def test_declared_defaults_equal_spec_defaults_with_their_python_type():
    project = load_project(ROOT)
    assert set(project.config) == set(config_schema())
    for key, declared in project.config.items():
        spec = SPEC_BY_KEY[key]
        if spec.required:
            assert declared.default is None, key
            continue
        expected = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        assert declared.default == expected, key
        assert type(declared.default) is type(expected), key  # False is not 0


def test_schema_declares_the_expressible_keys_and_names_why_the_others_are_not():
    declared, left_out = set(config_schema()), set(undeclared())
    assert declared.isdisjoint(left_out)
    assert declared | left_out == {s.key for s in SPEC if ":" not in s.key}
    assert "aws:region" not in declared
    reasons = undeclared()
    assert "environment" in reasons["azCount"]
    assert "environment" in reasons["logRetentionDays"]
    assert "decimal" in reasons["driftPsiThreshold"]
    assert "objects" in reasons["gpuNodeGroups"] and "objects" in reasons["alarmSubscriptions"]
    assert "required" in reasons["modelPackageArn"]
    for key, reason in reasons.items():
        assert f"{key}" in config_section(), reason  # the comment in Pulumi.yaml lists it


def test_required_settings_are_declared_without_default():
    schema = config_schema()
    required = {s.key for s in SPEC if s.required and ":" not in s.key}
    assert required == {"environment", "owner", "costCenter"}
    assert {k for k, e in schema.items() if "default" not in e} == required
    assert all(schema[k]["type"] == "string" for k in required)


@pytest.mark.parametrize("stack", SHIPPED)
def test_every_key_declared_without_default_is_set_by_the_shipped_stack(stack):
    without_default = [k for k, e in config_schema().items() if "default" not in e]
    assert without_default
    config = read_stack_config(ROOT / f"Pulumi.{stack}.yaml", stack)
    assert [k for k in without_default if f"ml-platform:{k}" not in config] == []


def test_pulumi_yaml_keeps_the_comment_and_write_is_idempotent(tmp_path):
    for name in ("Pulumi.yaml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    write(str(tmp_path))
    text = (tmp_path / "Pulumi.yaml").read_text()
    assert text == (ROOT / "Pulumi.yaml").read_text()
    assert text.endswith(config_section())
    assert "  # Generated from stacks/settings/spec.py:SPEC by `make docs`" in text
    assert (
        "  # - a decimal (the CLI has no number type): pipelineMaxRejectedShare, driftPsiThreshold"
        in text
    )
    assert yaml.safe_load(text)["config"] == config_schema()


# --- merging: missing keys ---------------------------------------------------------------------

THREE_REQUIRED = """config:
  c:
    type: string
  a:
    type: integer
  b:
    description: untyped, and still required
  aws:region: us-west-2
  d:
    type: string
    default: x
"""


def test_one_missing_key(tmp_path):
    message = merge_error(tmp_path, THREE_REQUIRED, "  a: 1\n  b: 2\n")
    assert message == "Stack 'dev' is missing configuration value 'c'"


def test_two_missing_keys(tmp_path):
    message = merge_error(tmp_path, THREE_REQUIRED, "  a: 1\n")
    assert message == "Stack 'dev' is missing configuration values 'b' and 'c'"


def test_three_missing_keys_sorted(tmp_path):
    message = merge_error(tmp_path, THREE_REQUIRED, "  other: 1\n")
    assert message == "Stack 'dev' is missing configuration values 'a', 'b' and 'c'"


def test_missing_keys_come_before_type_errors(tmp_path):
    message = merge_error(tmp_path, THREE_REQUIRED, "  a: many\n")
    assert message == "Stack 'dev' is missing configuration values 'b' and 'c'"


def test_the_real_project_demands_the_required_settings(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  aws:region: us-east-1\n")
    with pytest.raises(PulumiConfigError) as info:
        apply_project_config("dev", load_project(ROOT), read_stack_config(path, "dev"))
    assert info.value.message == (
        "Stack 'dev' is missing configuration values 'costCenter', 'environment' and 'owner'"
    )
    assert isinstance(info.value, SettingsError)
    assert info.value.problems == (info.value.message,)


# --- merging: defaults and values --------------------------------------------------------------


def test_defaults_and_values_are_applied_as_the_cli_formats_them(tmp_path):
    config = merge(
        tmp_path,
        """config:
  n:
    type: integer
    default: 30
  big:
    type: integer
    default: 10737418240
  flag:
    type: boolean
    default: false
  names:
    type: array
    items:
      type: string
    default: [b, a]
  none:
    type: array
    items:
      type: string
    default: []
  obj:
    default: {z: 1, a: [x, "<&>"]}
  shorthand: t3.micro
  aws:region: us-west-2
  ratio:
    default: 1.0
""",
        "  kept: here\n  n: 45\n",
    )
    assert config == {
        "test:kept": "here",
        "test:n": "45",  # the stack's value wins
        "test:big": "10737418240",
        "test:flag": "false",
        "test:names": '["b","a"]',
        "test:none": "[]",
        "test:obj": '{"a":["x","\\u003c\\u0026\\u003e"],"z":1}',
        "test:shorthand": "t3.micro",
        "aws:region": "us-west-2",
        "test:ratio": "1",
    }


def test_a_stack_without_raw_ia_days_receives_30(tmp_path):
    config = real_merge(tmp_path, "  ml-platform:kmsDeletionWindowDays: 7\n").config
    assert config["ml-platform:rawIaDays"] == "30"
    assert config["ml-platform:kmsDeletionWindowDays"] == "7"
    assert config["ml-platform:forceDestroy"] == "false"
    assert config["ml-platform:trainingUseSpot"] == "true"
    assert config["ml-platform:athenaBytesScannedCutoff"] == str(10 * 1024**3)
    assert config["ml-platform:eksPublicAccessCidrs"] == "[]"
    assert config["ml-platform:gpuInstanceFamilies"] == '["g4dn","g5","g6","g6e","p4d","p5"]'
    assert "ml-platform:azCount" not in config  # the parser's default: by environment


# --- merging: types and secrets ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ml-platform:rawIaDays: later", "key 'rawIaDays' must be of type 'integer'"),
        ("ml-platform:rawIaDays: 45.5", "key 'rawIaDays' must be of type 'integer'"),
        ("ml-platform:rawIaDays: 0x20", "key 'rawIaDays' must be of type 'integer'"),
        ("ml-platform:rawIaDays: [45]", "key 'rawIaDays' must be of type 'integer'"),
        ("ml-platform:forceDestroy: yes", "key 'forceDestroy' must be of type 'boolean'"),
        ("ml-platform:forceDestroy: True", "key 'forceDestroy' must be of type 'boolean'"),
        ("ml-platform:forceDestroy: 1", "key 'forceDestroy' must be of type 'boolean'"),
        (
            "ml-platform:gpuInstanceFamilies: g5",
            "key 'gpuInstanceFamilies' must be of type 'array<string>'",
        ),
        (
            "ml-platform:gpuInstanceFamilies: [g5, 5]",
            "key 'gpuInstanceFamilies' must be of type 'array<string>'",
        ),
        (
            'ml-platform:eksPublicAccessCidrs: "[]"',
            "key 'eksPublicAccessCidrs' must be of type 'array<string>'",
        ),
        ("ml-platform:vpcCidr: [10.0.0.0/16]", "key 'vpcCidr' must be of type 'string'"),
        ("environment: {name: dev}", "key 'environment' must be of type 'string'"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(tmp_path, line, message):
    assert real_stack_error(tmp_path, f"  {line}\n") == f"Stack 'dev' with configuration {message}"


@pytest.mark.parametrize(
    ("line", "received"),
    [
        ("ml-platform:rawIaDays: 45", "45"),
        ('ml-platform:rawIaDays: "45"', "45"),
        ("ml-platform:rawIaDays: -45", "-45"),  # the type passes; the parser checks the range
        ("ml-platform:forceDestroy: true", "true"),
        ("ml-platform:forceDestroy: 'false'", "false"),
        ("ml-platform:gpuInstanceFamilies: [g5, on]", '["g5","on"]'),  # yaml.v3: `on` is text
        ("ml-platform:gpuInstanceFamilies: []", "[]"),
        ("ml-platform:vpcCidr: 20", "20"),  # a scalar is its text: a valid string
        ("ml-platform:eksVersion: 1.30", "1.30"),
    ],
)
def test_a_value_of_the_right_type_passes(tmp_path, line, received):
    key = line.partition(": ")[0]
    assert real_merge(tmp_path, f"  {line}\n").config[key] == received


def test_only_the_first_bad_value_in_key_order_is_reported(tmp_path):
    message = real_stack_error(
        tmp_path, "  ml-platform:rawIaDays: later\n  ml-platform:forceDestroy: yes\n"
    )
    assert message == "Stack 'dev' with configuration key 'forceDestroy' must be of type 'boolean'"


def test_nested_arrays_name_their_full_type(tmp_path):
    project = """config:
  grid:
    type: array
    items:
      type: array
      items:
        type: integer
"""
    assert merge(tmp_path, project, "  grid: [[1, 2], [3]]\n") == {"test:grid": "[[1,2],[3]]"}
    message = merge_error(tmp_path, project, "  grid: [[1, a]]\n")
    assert (
        message
        == "Stack 'dev' with configuration key 'grid' must be of type 'array<array<integer>>'"
    )


def test_a_secret_key_must_be_encrypted(tmp_path):
    project = "config:\n  apiKey:\n    type: string\n    secret: true\n"
    message = merge_error(tmp_path, project, "  apiKey: plain\n")
    assert message == "Stack 'dev' with configuration key 'apiKey' must be encrypted as it's secret"
    stack = stack_config(tmp_path, "  apiKey:\n    secure: v1:abc:def\n")
    merged = apply_project_config("dev", project_from(project), stack)
    assert merged.config == {"test:apiKey": SECRET_PLACEHOLDER}
    assert merged.secret_keys == ("test:apiKey",)


def test_a_secret_default_is_not_encrypted(tmp_path):
    project = "config:\n  apiKey:\n    type: string\n    secret: true\n    default: open\n"
    message = merge_error(tmp_path, project, "")
    assert message == "Stack 'dev' with configuration key 'apiKey' must be encrypted as it's secret"


# --- the project file --------------------------------------------------------------------------


def test_default_and_value_together_are_refused():
    message = project_error("config:\n  size:\n    type: string\n    default: a\n    value: b\n")
    assert message == "project config 'size' cannot have both a 'default' and 'value' attribute"


def test_an_array_needs_items():
    message = project_error("config:\n  sizes:\n    type: array\n    default: [a]\n")
    assert message == (
        "The configuration key 'sizes' declares an array but does not specify the underlying "
        "type via the 'items' attribute"
    )


@pytest.mark.parametrize(
    ("declaration", "type_name"),
    [
        ("type: integer\n    default: many", "integer"),
        ("type: integer\n    default: 1.5", "integer"),
        ("type: boolean\n    default: yes", "boolean"),
        ("type: string\n    default: 1.33", "string"),
        ("type: array\n    items:\n      type: string\n    default: [a, 1]", "array<string>"),
        ("type: array\n    items:\n      type: string\n    default: a", "array<string>"),
    ],
)
def test_a_default_of_the_wrong_type_is_refused(declaration, type_name):
    message = project_error(f"config:\n  key:\n    {declaration}\n")
    assert message == (
        f"The default value specified for configuration key 'key' is not of the expected "
        f"type '{type_name}'"
    )


def test_defaults_of_the_right_type_pass():
    project = project_from(
        "config:\n  n:\n    type: integer\n    default: 7\n"
        "  s:\n    type: string\n    default: '1.33'\n"
        "  b:\n    type: boolean\n    default: true\n"
    )
    assert {k: v.default for k, v in project.config.items()} == {"n": 7, "s": "1.33", "b": True}


def test_a_provider_key_may_not_declare_a_type():
    message = project_error("config:\n  aws:region:\n    type: string\n    value: us-west-2\n")
    assert message == (
        "Configuration key 'aws:region' is not namespaced by the project and should not define "
        "a type"
    )


def test_a_provider_key_may_not_declare_a_default():
    message = project_error("config:\n  aws:region:\n    default: us-west-2\n")
    assert message == (
        "Configuration key 'aws:region' is not namespaced by the project and should not define "
        "a default value. Did you mean to use the 'value' attribute instead of 'default'?"
    )


def test_a_provider_key_must_provide_a_value():
    message = project_error("config:\n  aws:region:\n    description: where\n")
    assert (
        message
        == "Configuration key 'aws:region' is namespaced and must provide an attribute 'value'"
    )


def test_shorthand_is_a_default_for_project_keys_and_a_value_for_others():
    project = project_from("config:\n  size: t3.micro\n  test:count: 3\n  aws:region: us-west-2\n")
    assert project.config["size"].default == "t3.micro" and project.config["size"].value is None
    assert project.config["test:count"].default == 3
    assert project.config["aws:region"].value == "us-west-2"
    assert project.config["aws:region"].default is None


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            "type: number",
            '#/config/key/type: value must be one of "string", "integer", "boolean", "array"',
        ),
        (
            "type: array\n    items:\n      type: array",
            "#/config/key/items: missing properties: 'items'",
        ),
        (
            "type: string\n    requried: true",
            "#/config/key: additionalProperties 'requried' not allowed",
        ),
    ],
)
def test_the_json_schema_of_a_declaration(declaration, message):
    assert project_error(f"config:\n  key:\n    {declaration}\n") == message


def test_a_float_shorthand_is_refused():
    message = project_error("config:\n  ratio: 0.2\n")
    assert (
        message
        == "#/config/ratio: expected string, integer, boolean, array or object, but got number"
    )


def test_a_project_needs_a_name_and_a_runtime():
    for document, message in [
        ({"runtime": "python"}, "project is missing a 'name' attribute"),
        (
            {"name": "", "runtime": "python"},
            "project is missing a non-empty string 'name' attribute",
        ),
        ({"name": "test"}, "project is missing a 'runtime' attribute"),
    ]:
        with pytest.raises(PulumiConfigError) as info:
            parse_project(document, "dev")
        assert info.value.message == message


def test_a_missing_project_file_is_named(tmp_path):
    with pytest.raises(PulumiConfigError, match=r"no Pulumi.yaml in"):
        load_project(tmp_path, "dev")


# --- reading a stack file ----------------------------------------------------------------------


def test_a_stack_file_is_read_as_the_cli_reads_it(tmp_path):
    config = stack_config(
        tmp_path,
        "  flag: yes\n"
        "  count: 020\n"
        '  quoted: "0123"\n'
        "  empty: ~\n"
        "  test:config:old: form\n"
        "  aws:region: us-east-1\n"
        "  list: [g5, on, 1e3, 2.0, yes]\n"
        "  token:\n    secure: v1:abc\n"
        "  nested:\n    inner:\n      secure: v1:def\n",
    )
    assert config == {
        "test:flag": StackValue("yes"),
        "test:count": StackValue("020"),
        "test:quoted": StackValue("0123"),
        "test:empty": StackValue(""),
        "test:old": StackValue("form"),
        "aws:region": StackValue("us-east-1"),
        "test:list": StackValue('["g5","on",1000,2,"yes"]', object=True),
        "test:token": StackValue("v1:abc", secure=True),
        "test:nested": StackValue('{"inner":{"secure":"v1:def"}}', secure=True, object=True),
    }
    merged = apply_project_config("dev", Project("test"), config)
    assert merged.config["test:nested"] == '{"inner":"[secret]"}'
    assert merged.secret_keys == ("test:nested", "test:token")


def test_a_key_with_two_namespaces_is_refused(tmp_path):
    with pytest.raises(PulumiConfigError) as info:
        stack_config(tmp_path, "  a:b:c: 1\n")
    assert info.value.message == (
        "could not unmarshal map: could not parse a:b:c as a configuration key "
        "(configuration keys should be of the form `<namespace>:<name>`)"
    )


def test_missing_stack_file_and_bad_yaml_keep_their_messages(tmp_path):
    with pytest.raises(SettingsError, match=r"no stack file Pulumi.qa.yaml"):
        read_stack_config(tmp_path / "Pulumi.qa.yaml", "qa")
    (tmp_path / "Pulumi.qa.yaml").write_text("config: [unclosed\n")
    with pytest.raises(SettingsError, match=r"Pulumi.qa.yaml is not valid YAML"):
        read_stack_config(tmp_path / "Pulumi.qa.yaml", "qa")
    (tmp_path / "Pulumi.qa.yaml").write_text("config: [a]\n")
    with pytest.raises(SettingsError, match=r"Pulumi.qa.yaml: `config` must be a mapping"):
        read_stack_config(tmp_path / "Pulumi.qa.yaml", "qa")


# --- `mlplat preview` ---------------------------------------------------------------------------


def test_preview_stops_where_the_cli_would(tmp_path):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    del document["config"]["ml-platform:owner"]
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(
        app, ["preview", "--stack", "dev", "--json", str(out), "--project-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "Stack 'dev' is missing configuration value 'owner'" in result.stderr
    assert result.stdout == ""
    assert not out.exists()


def test_stack_files_are_read_from_the_stack_config_dir(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text(
        "name: test\nruntime: python\nstackConfigDir: stacks\nconfig:\n  size:\n    type: string\n"
    )
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text("config:\n  size: large\n")
    assert load_stack_config(tmp_path, "dev").config == {"test:size": "large"}
    (tmp_path / "Pulumi.yaml").write_text("name: test\nruntime: python\nconfig: stacks\n")
    assert load_stack_config(tmp_path, "dev").config == {"test:size": "large"}
