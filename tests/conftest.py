"""Shared fixtures: the offline recorder that `mlplat preview` uses, one fresh run per call."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mlplat.plan.engine import Plan, PlanMocks
from mlplat.sandbox.warm import share_service_models
from stacks.settings import Settings, parse_settings

ROOT = Path(__file__).resolve().parent.parent

# moto and boto3 must never find real credentials or reach the network.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
os.environ.pop("AWS_PROFILE", None)
# pytest-xdist runs one worker per core: an OpenMP pool per worker that wants every core (XGBoost,
# scikit-learn's histogram boosting) makes the workers fight over them, 50x slower. Tests need
# one thread each; an explicit setting of the caller's is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")


# botocore parses a service's model (megabytes of JSON for SageMaker) and its endpoints (45 ms)
# once per session, and moto starts every `mock_aws` with a fresh default session: one parsed
# copy per process instead (the sandbox's container fork server does the same).
share_service_models()

BASE_CONFIG: dict[str, Any] = {
    "aws:region": "us-east-1",
    "ml-platform:owner": "ml-team",
    "ml-platform:costCenter": "ml-1234",
}


def make_config(environment: str = "dev", **overrides: Any) -> dict[str, Any]:
    """A full config mapping; overrides use camelCase setting keys (`rawIaDays=60`)."""
    config = {**BASE_CONFIG, "ml-platform:environment": environment}
    for key, value in overrides.items():
        config[key if ":" in key else f"ml-platform:{key}"] = value
    return config


def make_settings(environment: str = "dev", stack: str | None = None, **overrides: Any) -> Settings:
    return parse_settings(stack or environment, make_config(environment, **overrides))


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    return make_settings


@pytest.fixture
def record() -> Callable[..., Plan]:
    """`record(program, settings)` runs `program()` under the recording monitor; returns the plan.

    Without a program it runs the stack's real `__main__`. Every call gets a fresh event loop and
    Pulumi runtime. Invokes the settings cannot answer raise.
    """
    from mlplat.plan import engine

    def run(
        program: Callable[[], None] | None = None,
        settings: Settings | None = None,
        config: Mapping[str, Any] | None = None,
        mocks: PlanMocks | None = None,
    ) -> Plan:
        if settings is None:
            cfg = dict(config) if config is not None else make_config()
            settings = parse_settings(str(cfg["ml-platform:environment"]), cfg)
        cfg = dict(config) if config is not None else _config_of(settings)
        return engine.run(settings, cfg, mocks=mocks, program=program)

    return run


def _config_of(settings: Settings) -> dict[str, Any]:
    return make_config(settings.environment)


def stack_plan(stack: str) -> Plan:
    from mlplat.plan.preview import make_plan

    return make_plan(stack, ROOT)


SHIPPED_STACKS = ("dev", "staging", "prod", "local")


@pytest.fixture(scope="session")
def shipped_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    """The plan of every shipped stack, computed once per run (they are read-only): under
    pytest-xdist the first worker to ask computes them and the others read its pickle (a file
    lock orders them), instead of every worker spending seconds on the same four programs."""
    import fcntl
    import pickle

    if "PYTEST_XDIST_WORKER" not in os.environ:
        return {name: stack_plan(name) for name in SHIPPED_STACKS}
    shared = tmp_path_factory.getbasetemp().parent / "shipped-plans.pickle"
    with (shared.parent / "shipped-plans.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shared.is_file():
            plans: dict[str, Plan] = pickle.loads(shared.read_bytes())
            return plans
        plans = {name: stack_plan(name) for name in SHIPPED_STACKS}
        shared.write_bytes(pickle.dumps(plans))
        return plans


def make_outputs(**values: Any) -> Any:
    """A `PlatformOutputs` with placeholder values for every field a test does not set."""
    from dataclasses import fields

    from ml.outputs import PlatformOutputs

    placeholders: dict[str, Any] = {}
    for f in fields(PlatformOutputs):
        kind = str(f.type)
        if kind.startswith("list"):
            placeholders[f.name] = []
        elif kind.startswith("dict"):
            placeholders[f.name] = {}
        elif "None" in kind:
            placeholders[f.name] = None
        else:
            placeholders[f.name] = f"test-{f.name.replace('_', '-')}"
    return PlatformOutputs(**{**placeholders, **values})
