"""Fixtures of the ML tests: small deterministic data, one trained model per session."""

from __future__ import annotations

import os
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
def raw() -> pd.DataFrame:
    from ml.sample_data import generate_customers

    return generate_customers(4_000, seed=11)


@pytest.fixture(scope="session")
def features(raw: pd.DataFrame) -> pd.DataFrame:
    from ml.features import build_features

    return build_features(raw)


@pytest.fixture(scope="session")
def trained(features: pd.DataFrame) -> Any:
    from ml.train import Hyperparameters, train

    return train(features, Hyperparameters(seed=3))


@pytest.fixture(scope="session")
def model_dir(trained: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.train import write_outputs

    return write_outputs(trained, tmp_path_factory.mktemp("model"))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a raw frame as JSON-typed request records (None for missing)."""
    from ml.features import INPUT_NAMES

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
