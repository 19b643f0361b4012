"""The settings parser: every bad input named, every problem at once."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import yaml

from mlplat.plan.project_schema import config_schema, config_section, settings_table, undeclared
from stacks.settings import (
    SECRET_PLACEHOLDER,
    SPEC,
    SettingsError,
    parse_settings,
    read_stack_file,
)
from stacks.settings.models import SECTION_CLASSES
from stacks.settings.sections import SECTIONS, Settings
from stacks.settings.spec import MODEL_KEY_SPEC
from tests.conftest import ROOT, make_config


def problems(config: dict[str, object], stack: str = "dev") -> tuple[str, ...]:
    with pytest.raises(SettingsError) as info:
        parse_settings(stack, config)
    return info.value.problems


def test_defaults_follow_the_environment():
    dev = parse_settings("dev", make_config("dev"))
    prod = parse_settings("prod", make_config("prod"))
    (dev_churn,), (prod_churn,) = dev.models, prod.models  # no `models`: the default list
    assert dev_churn.name == prod_churn.name == "churn"
    assert dev_churn.endpoint.serverless is True and prod_churn.endpoint.serverless is False
    assert dev.cluster.enabled is False and prod.cluster.enabled is True
    assert (dev_churn.endpoint.network_isolation, prod_churn.endpoint.network_isolation) == (
        False,
        True,
    )
    assert prod_churn.endpoint.min_instances == 2 and prod.network.az_count == 3
    assert prod.network.log_retention_days == 365 and dev.network.log_retention_days == 30
    assert dev.tags == {
        "owner": "ml-team",
        "environment": "dev",
        "cost-center": "ml-1234",
        "project": "ml-platform",
        "stack": "dev",
    }


def test_strings_from_the_engine_are_converted():
    # The real engine hands every value over as a string, objects as JSON.
    s = parse_settings(
        "dev",
        make_config(
            "dev",
            rawIaDays="45",
            rawArchiveDays="120",
            forceDestroy="true",
            driftPsiThreshold="0.3",
            gpuNodeGroups='[{"name": "gpu", "instanceTypes": ["g6.xlarge"], "maxSize": 3}]',
        ),
    )
    assert (s.lake.raw_ia_days, s.lake.raw_archive_days, s.lake.force_destroy) == (45, 120, True)
    assert s.models[0].alarms.drift_psi_threshold == s.models[0].drift.drift_psi_threshold == 0.3
    assert s.cluster.gpu_node_groups[0].instance_types == ("g6.xlarge",)
    assert s.cluster.gpu_node_groups[0].max_size == 3


def test_unknown_key_is_an_error_with_a_suggestion():
    found = problems(make_config(rawIADays=40))
    assert found == (
        "ml-platform:rawIADays: unknown setting (did you mean "
        "'ml-platform:rawIaDays'?); see the settings table in README.md",
    )


def test_unknown_namespace_and_unnamespaced_key():
    found = problems({**make_config(), "ml-platfrom:owner": "x", "owner2": "y"})
    assert any(p.startswith("ml-platfrom:owner: unknown namespace 'ml-platfrom'") for p in found)
    assert any(p.startswith("owner2: config keys are namespaced") for p in found)


def test_wrong_type_names_key_value_and_expectation():
    assert problems(make_config(rawIaDays="soon")) == (
        "ml-platform:rawIaDays: 'soon' is not allowed; expected an integer >= 30 and <= 3650",
    )
    assert problems(make_config(forceDestroy="maybe")) == (
        "ml-platform:forceDestroy: 'maybe' is not allowed; expected true or false",
    )


def test_out_of_range_number():
    assert problems(make_config(kmsDeletionWindowDays=3)) == (
        "ml-platform:kmsDeletionWindowDays: 3 is not allowed (too small); expected an integer "
        ">= 7 and <= 30",
    )


def test_bad_choice_suggests_the_closest():
    (p,) = problems(make_config(deploymentStrategy="canery"))
    assert p.startswith(
        "ml-platform:deploymentStrategy: 'canery' is not allowed (did you mean 'canary'?)"
    )
    assert "one of canary, linear, all-at-once" in p


def test_min_greater_than_max():
    (p,) = problems(make_config(endpointMinInstances=4, endpointMaxInstances=2))
    assert p == (
        "ml-platform:endpointMinInstances: 4 is greater than "
        "ml-platform:endpointMaxInstances (2); min must be <= max"
    )


def test_prod_refuses_force_destroy_and_unsafe_serving():
    found = problems(
        make_config("prod", forceDestroy=True, networkIsolation=False, endpointMinInstances=1),
        stack="prod",
    )
    assert (
        "ml-platform:forceDestroy: true is not allowed in prod (prod lake buckets are never "
        "force-destroyed)" in found
    )
    assert (
        "ml-platform:networkIsolation: false is not allowed in prod (prod models run isolated)"
        in found
    )
    assert any(
        p.startswith("ml-platform:endpointMinInstances: 1 is not allowed in prod") for p in found
    )


def test_serverless_refuses_capture_vpc_and_isolation():
    found = problems(make_config("staging", endpointServerless=True), stack="staging")
    # staging defaults capture on: serverless cannot honour it
    assert found == (
        "ml-platform:endpointServerless: serverless endpoints support no data capture; set "
        "ml-platform:dataCaptureEnabled: false or ml-platform:endpointServerless: false",
    )


def test_every_problem_is_reported_at_once():
    found = problems(
        {
            "aws:region": "mars-1",
            "ml-platform:environment": "qa",
            "ml-platform:rawIaDays": 1,
            "ml-platform:bogus": 1,
        }
    )
    text = "\n".join(found)
    for key in (
        "aws:region",
        "ml-platform:environment",
        "ml-platform:owner",
        "ml-platform:costCenter",
        "ml-platform:rawIaDays",
        "ml-platform:bogus",
    ):
        assert key in text, key
    assert len(found) == 6


def test_gpu_groups_checked_against_the_allow_list():
    (p,) = problems(make_config(gpuNodeGroups=[{"name": "big", "instanceTypes": ["m5.large"]}]))
    assert p.startswith(
        "ml-platform:gpuNodeGroups: node group 'big' instance type 'm5.large' is not a GPU family"
    )


def test_open_cluster_api_is_refused():
    (p,) = problems(make_config(eksPublicAccessCidrs=["0.0.0.0/0"]))
    assert "opens the cluster API to the internet" in p


def test_secure_values_are_shown_as_secret_not_decrypted(tmp_path: Path):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(
        yaml.safe_dump(
            {"config": {**make_config("dev"), "ml-platform:owner": {"secure": "v1:abc:def"}}}
        )
    )
    config, secret = read_stack_file(str(stack_file), "dev")
    assert config["ml-platform:owner"] == SECRET_PLACEHOLDER
    assert secret == ["ml-platform:owner"]
    settings = parse_settings("dev", config, secret)
    assert settings.owner == SECRET_PLACEHOLDER
    assert settings.secret_keys == ("ml-platform:owner",)


def test_missing_stack_file_names_the_file(tmp_path: Path):
    with pytest.raises(SettingsError, match=r"no stack file Pulumi.qa.yaml"):
        read_stack_file(str(tmp_path / "Pulumi.qa.yaml"), "qa")


def test_pulumi_yaml_declares_the_settings_schema():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "ml-platform"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}
    assert project["main"] == "stacks/"
    assert project["config"] == config_schema()
    assert (ROOT / "Pulumi.yaml").read_text().endswith(config_section()), "run `make docs`"
    declared, left_out = set(project["config"]), set(undeclared())
    assert declared.isdisjoint(left_out)
    assert declared | left_out == {s.key for s in SPEC if ":" not in s.key}
    assert left_out == {
        s.key
        for s in SPEC
        if ":" not in s.key
        and not s.required
        and (
            s.kind in ("gpugroups", "subscriptions", "models", "float")
            or s.default is None
            or callable(s.default)
        )
    }


def test_shipped_stack_files_parse():
    for stack in ("dev", "staging", "prod", "local"):
        config, secret = read_stack_file(str(ROOT / f"Pulumi.{stack}.yaml"), stack)
        settings = parse_settings(stack, config, secret)
        assert settings.environment == stack


def test_readme_settings_table_is_current():
    readme = (ROOT / "README.md").read_text()
    assert settings_table() in readme, "regenerate with `make docs`"
    assert all(f"`{s.key}`" in readme for s in SPEC)


def test_no_module_in_stacks_shadows_the_standard_library():
    # The engine runs stacks/ with runpy.run_path, which puts the folder first on sys.path.
    names = {p.stem for p in (ROOT / "stacks").glob("*.py")}
    names |= {p.parent.name for p in (ROOT / "stacks").glob("*/__init__.py")}
    assert "settings" in names  # the settings package is looked at too
    assert names & set(sys.stdlib_module_names) == set()


def test_every_settings_field_is_filled_from_the_spec():
    """Each section holds what its component reads; SPEC names every field once per section
    (a model's sections: SPEC, and `modelKey` of its `models` entry)."""
    filled = [path for spec in (*SPEC, MODEL_KEY_SPEC) for path in spec.fields]
    # the stack-wide `modelPackageArn` goes to the model whose group it names (or its entry's)
    filled.append("endpoint.model_package_arn")
    sections = {
        f"{name}.{f.name}"
        for name, cls in (*SECTIONS.items(), *SECTION_CLASSES.items())
        for f in dataclasses.fields(cls)
        if f.name not in ("stack", "model")
    }
    stack_wide = (
        {f.name for f in dataclasses.fields(Settings)}
        - set(SECTIONS)
        - {
            "stack",
            "secret_keys",
        }
    )
    assert len(filled) == len(set(filled))
    assert set(filled) == sections | stack_wide
    assert set(SECTIONS) < {f.name for f in dataclasses.fields(Settings)}


# --- online quality, skew and age: per model, and the retraining that follows the age --------


def test_each_model_gets_its_backtests_age_and_a_retraining_at_half_of_it() -> None:
    from ml.backtest import recommended_max_age_days
    from stacks.settings.spec import retraining_schedule

    settings = parse_settings(
        "prod", make_config("prod", models=[{"name": "churn"}, {"name": "spend"}])
    )
    for model in settings.models:
        age = recommended_max_age_days(model.name)  # its committed staleness.json
        assert model.alarms.max_model_age_days == age
        assert model.pipeline.schedule == f"rate({age // 2} days)"
        assert (model.alarms.quality_margin, model.drift.quality_margin) == (0.05, 0.05)
        assert model.alarms.skew_share_threshold == 0.01
    assert retraining_schedule(14) == "rate(7 days)"
    assert retraining_schedule(3) == "rate(1 day)" == retraining_schedule(1)


def test_a_set_age_moves_the_default_retraining_and_an_explicit_schedule_stays() -> None:
    settings = parse_settings(
        "prod",
        make_config(
            "prod",
            maxModelAgeDays=30,
            qualityMargin=0.02,
            models=[
                {"name": "churn", "skewShareThreshold": 0.05},
                {"name": "spend", "maxModelAgeDays": 10, "pipelineSchedule": "rate(2 days)"},
            ],
        ),
    )
    churn, spend = settings.models
    assert (churn.alarms.max_model_age_days, churn.pipeline.schedule) == (30, "rate(15 days)")
    assert (spend.alarms.max_model_age_days, spend.pipeline.schedule) == (10, "rate(2 days)")
    assert churn.alarms.skew_share_threshold == 0.05 and spend.alarms.skew_share_threshold == 0.01
    assert churn.drift.quality_margin == spend.alarms.quality_margin == 0.02


def test_bad_quality_settings_are_all_named_with_what_is_allowed() -> None:
    found = problems(
        make_config(
            "prod",
            qualityMargin=0,
            models=[
                {"name": "churn", "skewShareThreshold": 0.9},
                {"name": "spend", "maxModelAgeDays": 0},
            ],
        )
    )
    assert sorted(found) == [
        "ml-platform:models[0].skewShareThreshold: 0.9 is not allowed (too large); expected a "
        "number >= 0 and <= 0.5",
        "ml-platform:models[1].maxModelAgeDays: 0 is not allowed (too small); expected an "
        "integer >= 1 and <= 3650",
        "ml-platform:qualityMargin: 0 is not allowed (too small); expected a number >= 0.001 "
        "and <= 1",
    ]


def test_a_retraining_no_more_frequent_than_the_age_alarm_is_refused() -> None:
    found = problems(
        make_config(
            "prod",
            pipelineSchedule="rate(14 days)",
            models=[{"name": "churn", "maxModelAgeDays": 14}, {"name": "spend"}],
        )
    )
    assert found[0] == (
        "ml-platform:pipelineSchedule: 'rate(14 days)' retrains churn every 14 days, not less "
        "than its maximum age (ml-platform:models[0].maxModelAgeDays: 14): its model-age alarm "
        "would page before every retraining; retrain more often or allow an older model"
    )
    # a cron schedule has no single period: not judged
    parse_settings("prod", make_config("prod", pipelineSchedule="cron(0 3 ? * MON *)"))


def test_a_model_without_a_backtest_keeps_the_weekly_retraining(monkeypatch) -> None:
    """A model just scaffolded has no committed staleness: two weeks of age, retrained weekly."""
    import ml.backtest
    from stacks.settings.spec import default_max_model_age_days

    def missing(name: str) -> int:
        raise FileNotFoundError(f"ml/models/{name}/staleness.json")

    monkeypatch.setattr(ml.backtest, "recommended_max_age_days", missing)
    assert default_max_model_age_days("churn") == 14
    (churn,) = parse_settings("dev", make_config("dev")).models
    assert (churn.alarms.max_model_age_days, churn.pipeline.schedule) == (14, "rate(7 days)")
