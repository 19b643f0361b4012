"""Fixtures of the ML tests: small deterministic data, one trained model per session."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

# Fake credentials and region before any boto3 client exists (moto; never the network).
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


@pytest.fixture(scope="session")
def churn() -> Any:
    """The churn model (`ml.models.load("churn")`): what most ML tests train and serve."""
    from ml.models import load

    return load("churn")


@pytest.fixture(scope="session")
def raw() -> pd.DataFrame:
    from ml.sample_data import generate_customers

    return generate_customers(4_000, seed=11)


@pytest.fixture(scope="session")
def features(churn: Any, raw: pd.DataFrame) -> pd.DataFrame:
    return churn.features.build_features(raw)


@pytest.fixture(scope="session")
def trained(churn: Any, features: pd.DataFrame) -> Any:
    from ml.train import train

    return train(churn, features, churn.hyperparameters(seed=3))


@pytest.fixture(scope="session")
def model_dir(trained: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.train import write_outputs

    return write_outputs(trained, tmp_path_factory.mktemp("model"))


def records(frame: pd.DataFrame, model: str = "churn") -> list[dict[str, Any]]:
    """Rows of a raw frame as JSON-typed request records of `model` (None for missing)."""
    from ml.models import spec

    INPUT_NAMES = spec(model).inputs
    out = []
    for row in frame[list(INPUT_NAMES)].astype(object).itertuples(index=False):
        out.append(
            {
                name: (None if pd.isna(v) else _plain(v))
                for name, v in zip(INPUT_NAMES, row, strict=True)
            }
        )
    return out


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def model_outputs(**values: Any) -> Any:
    """A `ModelOutputs` with placeholder values for every field a test does not set."""
    from ml.outputs import ModelOutputs

    placeholders: dict[str, Any] = {}
    for f in fields(ModelOutputs):
        placeholders[f.name] = None if "None" in str(f.type) else f"test-{f.name.replace('_', '-')}"
    return ModelOutputs(**{**placeholders, **values})


def platform_with(
    model: str = "churn", outputs: dict[str, Any] | None = None, **values: Any
) -> Any:
    """`make_outputs(**outputs)` hosting one model whose `ModelOutputs` hold `values`."""
    from tests.conftest import make_outputs

    return make_outputs(**(outputs or {}), models={model: model_outputs(**values)})
