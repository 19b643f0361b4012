"""Shared fixtures: the offline recorder that `mlplat preview` uses, one fresh run per call."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
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


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist, each module goes to one worker whole (`--dist loadfile`, which `make
    test` asks for; the default `--dist load` is made the same): the end-to-end modules share one
    sandbox per module, and a module dealt out to every worker would build it on each. Modules are
    handed out in the collection's order (`tests/e2e/conftest.py` puts the whole-sandbox modules
    first), not xdist's default of the modules with the most tests first: that order started the
    longest module, a five-test one, last, and the suite waited for it alone."""
    if config.getoption("dist", None) not in ("load", "loadfile"):
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False
    return LoadFileScheduling(config, log)


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


class SharedPlans(Mapping[str, Plan]):
    """The plans of the shipped stacks, each computed once per run and only when a test asks for
    it (many need only prod). Under pytest-xdist the first worker to ask for a stack computes it
    and writes a pickle that the others read; each stack has its own file lock, so two workers
    that need different stacks compute them side by side, and one that needs a stack another
    worker is computing waits for that stack alone."""

    def __init__(self, shared: Path | None) -> None:
        self._shared = shared
        self._plans: dict[str, Plan] = {}

    def __getitem__(self, stack: str) -> Plan:
        if stack not in SHIPPED_STACKS:
            raise KeyError(stack)
        if stack not in self._plans:
            self._plans[stack] = self._load(stack)
        return self._plans[stack]

    def __iter__(self) -> Iterator[str]:
        return iter(SHIPPED_STACKS)

    def __len__(self) -> int:
        return len(SHIPPED_STACKS)

    def _load(self, stack: str) -> Plan:
        import fcntl
        import pickle

        if self._shared is None:
            return stack_plan(stack)
        pickled = self._shared / f"shipped-plan-{stack}.pickle"
        with (self._shared / f"shipped-plan-{stack}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if pickled.is_file():
                plan: Plan = pickle.loads(pickled.read_bytes())
                return plan
            plan = stack_plan(stack)
            pickled.write_bytes(pickle.dumps(plan))
            return plan


@pytest.fixture(scope="session")
def shipped_plans(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Plan]:
    """The plan of every shipped stack by name (`SharedPlans`: computed on first use, once per
    run across pytest-xdist's workers)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return SharedPlans(None)
    return SharedPlans(tmp_path_factory.getbasetemp().parent)


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
