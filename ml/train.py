"""Training any model (`ml.model.Model`), locally or as a SageMaker training job.

`model.make_estimator(hp)` returns the unfitted estimator over the feature matrix the model's
`FeatureSet` derives. `train(model, features, hp)` splits a labelled feature table, fits the
estimator and the baselines, evaluates, and returns a `TrainingResult` holding the fitted
estimator, the evaluation, the drift baseline and the lineage; `write_outputs` saves them as the
model's artifact file (`model.save`: `model.joblib` for a scikit-learn model), `metrics.json`,
`baseline.json` and `lineage.json`, and `code/` (the inference handler bound to the model) so the
directory is a servable model as is.

As a SageMaker training entry point (`python -m ml.train`), `main()` follows the container contract:
the model from `MLPLAT_MODEL` (`ml.contracts.MODEL_ENV`), hyperparameters from
`<SM_INPUT_CONFIG_DIR>/hyperparameters.json` (values are strings there), the
feature table from the parquet files under the `train` channel (`SM_CHANNEL_TRAIN`; an optional
`validation` channel; an optional `approved` channel holding the approved model's `metrics.json`
for the gate), and the model written to `SM_MODEL_DIR` by `ml.workflow.train_candidate` (the same
train → evaluate → gate → package `mlplat train --local` runs). A failed gate writes
the reason to `<SM_OUTPUT_DIR>/failure` (what SageMaker shows as the job's failure reason) and exits
non-zero. Every path comes from the environment, with the container's defaults, so tests can point
them at a temporary directory.

One knob of the training itself, not of the model, rides in hyperparameters.json beside the
model's own: `search` ("true"/"false", default false; `read_search`) runs the hyperparameter
search (`ml.tuning`) before the fit.

A fit that does not converge fails training (`NonConvergenceError`, `fit_estimator`): scikit-learn's
`ConvergenceWarning` is an error here, and every model's predictions on its own training rows must
be finite (what a diverging fit of a model without such a warning, XGBoost's, shows).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.backtest import staleness_path
from ml.baseline import compute_baseline
from ml.contracts import (
    BASELINE_FILE,
    LINEAGE_FILE,
    METRICS_FILE,
    SEARCH_HYPERPARAMETER,
    STALENESS_FILE,
)
from ml.evaluate import AnyMetrics, EvaluationReport, evaluate, fit_baselines, labels
from ml.model import Model

if TYPE_CHECKING:
    from ml.tuning import SearchConfig, SearchResult


class NonConvergenceError(ValueError):
    """A fit that did not converge: its warning or its non-finite predictions, and what to do."""


@dataclass(frozen=True)
class TrainingResult:
    model: Model
    estimator: Any  # fitted by `model.make_estimator(hyperparameters)`
    evaluation: EvaluationReport
    baseline: dict[str, Any]
    lineage: dict[str, Any]
    hyperparameters: Any  # the setting fitted: the search's choice when it ran
    search: SearchResult | None = None

    @property
    def metrics(self) -> AnyMetrics:
        return self.evaluation.overall


def split(
    features: pd.DataFrame, validation_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic train/validation split: by a hash of customer_id when present (a customer is
    always on the same side, whatever the row order), else by a seeded permutation."""
    if "customer_id" in features.columns:
        hashed = pd.util.hash_pandas_object(
            features["customer_id"], index=False, hash_key=f"{seed:016d}"
        )
        bucket = hashed.to_numpy() % np.uint64(10_000)
        is_validation = bucket < np.uint64(round(validation_fraction * 10_000))
    else:
        rng = np.random.default_rng(seed)
        is_validation = rng.random(len(features)) < validation_fraction
    return features.loc[~is_validation], features.loc[is_validation]


def train(
    model: Model,
    features: pd.DataFrame,
    hp: Any = None,
    *,
    validation: pd.DataFrame | None = None,
    data_uri: str = "",
    search: bool | SearchConfig = False,
) -> TrainingResult:
    """Fit `model` on a labelled feature table (its spec's `features` dataset) and evaluate it.

    `hp`: an instance of `model.hyperparameters` (default: its defaults); its `seed` and
    `validation_fraction` seed the fit and size the held-out share. Without
    `validation`, that share of the rows is held out (see `split`). The inputs are not modified;
    the same data and hyperparameters give the same predictions.

    `search` (True, or an `ml.tuning.SearchConfig`): first cross-validate the points of
    `model.search_space` around `hp` on the training rows (`ml.tuning.search`) and fit the best;
    the lineage records the space, every trial's score and the choice under "search". Raises
    `NonConvergenceError` (a `ValueError`) when the fit does not converge.
    """
    hp = model.hyperparameters() if hp is None else hp
    seed = hp.seed
    sources = [features] if validation is None else [features, validation]
    if validation is None:
        train_rows, validation = split(features, hp.validation_fraction, seed)
    else:
        train_rows = features
    for name, table in (("training", train_rows), ("validation", validation)):
        y = labels(model, table)
        if model.spec.task == "regression":
            if len(y) < 10:
                raise ValueError(
                    f"the {name} set has {len(y)} rows: need at least 10 labelled rows"
                )
        elif len(y) < 10 or y.min() == y.max():
            raise ValueError(
                f"the {name} set has {len(y)} rows and {len(set(y.tolist()))} class(es): "
                f"need at least 10 rows with both values of {model.spec.label!r}"
            )
    searched = None
    if search is not False:
        from ml.tuning import SearchConfig
        from ml.tuning import search as run_search

        config = SearchConfig() if search is True else search
        searched = run_search(model, train_rows, hp, config)
        hp = searched.chosen
    X = model.features.feature_matrix(train_rows)
    y = labels(model, train_rows)
    estimator = fit_estimator(model, hp, X, y)
    baselines = fit_baselines(model, train_rows, seed=seed)
    report = evaluate(model, estimator, validation, baselines=baselines)
    baseline = compute_baseline(model, train_rows, model.predict(estimator, X))
    lineage = build_lineage(
        model,
        sources,
        hp,
        data_uri=data_uri,
        n_train=len(train_rows),
        n_validation=len(validation),
    )
    lineage.update(model.training_info(estimator))
    if searched is not None:
        lineage["search"] = searched.to_dict()
    return TrainingResult(model, estimator, report, baseline, lineage, hp, searched)


def fit_estimator(model: Model, hp: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """`model.make_estimator(hp).fit(X, y)`, refusing a fit that did not converge: a
    scikit-learn `ConvergenceWarning` (other warnings pass through), or predictions on the
    training rows that are not finite. Raises `NonConvergenceError` naming the knobs."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator = model.make_estimator(hp).fit(X, y)
    unconverged = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    knobs = ", ".join(f"{k}={v}" for k, v in hp.to_dict().items() if k != "validation_fraction")
    if unconverged:
        first = str(unconverged[0].message).strip().splitlines()[0]
        raise NonConvergenceError(
            f"training {model.name!r} did not converge ({first}) with {knobs}: raise the "
            "iteration limit (max_iter) or regularize more, and train again"
        )
    scores = model.predict(estimator, X)
    bad = int((~np.isfinite(scores)).sum())
    if bad:
        raise NonConvergenceError(
            f"training {model.name!r} diverged: {bad} of {len(scores)} predictions on its own "
            f"training rows are not finite with {knobs}: lower the learning rate and train again"
        )
    return estimator


def build_lineage(
    model: Model,
    sources: Sequence[pd.DataFrame],
    hp: Any,
    *,
    data_uri: str,
    n_train: int,
    n_validation: int,
) -> dict[str, Any]:
    """Which model, where the data came from and which version, which code, which libraries,
    which knobs."""
    return {
        "model": model.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "dataset": model.spec.features.name,
            "uri": data_uri,
            "version": data_version(*sources),
            "rows_train": n_train,
            "rows_validation": n_validation,
        },
        "code": code_version(model.name),
        "libraries": library_versions(),
        "hyperparameters": hp.to_dict(),
        "features": list(model.spec.feature_names),
    }


def data_version(*frames: pd.DataFrame) -> str:
    """Content hash of feature tables (independent of file layout): `sha256:<hex>`."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"


def code_version(model: str | None = None) -> dict[str, str | None]:
    """The git commit (env `GIT_COMMIT`, else `git rev-parse`) and a hash of the `ml` sources:
    its modules, and with `model` the model contract and that model's package."""
    package = Path(__file__).resolve().parent
    sources = list(package.glob("*.py"))
    if model is not None:
        own = package / "models" / model
        sources += [package / "models" / "__init__.py"]
        sources += [p for p in own.rglob("*.py") if "__pycache__" not in p.parts]
    digest = hashlib.sha256()
    for path in sorted(sources):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    commit = os.environ.get("GIT_COMMIT")
    if commit is None:
        try:
            done = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=package,
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            commit = done.stdout.strip() or None if done.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"git_commit": commit, "ml_sources_sha256": digest.hexdigest()}


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("scikit-learn", "pandas", "numpy", "joblib", "pyarrow"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


def write_outputs(result: TrainingResult, model_dir: Path, *, with_code: bool = True) -> Path:
    """Save the fitted estimator (`model.save`) and its JSON companions in `model_dir`: the
    reports, the model's committed staleness (`ml.backtest`, when it has one), and `code/`, the
    handler bound to the model, for serving."""
    model_dir.mkdir(parents=True, exist_ok=True)
    result.model.save(result.estimator, model_dir)
    write_report(model_dir / METRICS_FILE, result.evaluation.to_dict())
    write_report(model_dir / BASELINE_FILE, result.baseline)
    write_report(model_dir / LINEAGE_FILE, result.lineage)
    staleness = staleness_path(result.model.name)
    if staleness.is_file():  # the model's committed backtest travels with every trained model
        (model_dir / STALENESS_FILE).write_bytes(staleness.read_bytes())
    if with_code:
        from ml.package import write_code_dir

        write_code_dir(result.model, model_dir / "code")
    return model_dir


def write_report(path: Path, data: Any) -> None:
    """A JSON report of the model directory: sorted keys, no NaN (strict JSON readers)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


# ---------------------------------------------------------------------------------------------
# The SageMaker training container contract.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerPaths:
    model_dir: Path
    output_dir: Path
    config_dir: Path
    channels: dict[str, Path]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ContainerPaths:
        env = os.environ if env is None else env
        input_dir = Path(env.get("SM_INPUT_DIR", "/opt/ml/input"))
        channels = {
            key.removeprefix("SM_CHANNEL_").lower(): Path(value)
            for key, value in env.items()
            if key.startswith("SM_CHANNEL_")
        }
        data_dir = input_dir / "data"
        if not channels and data_dir.is_dir():
            channels = {p.name: p for p in sorted(data_dir.iterdir()) if p.is_dir()}
        return cls(
            model_dir=Path(env.get("SM_MODEL_DIR", "/opt/ml/model")),
            output_dir=Path(env.get("SM_OUTPUT_DIR", "/opt/ml/output")),
            config_dir=Path(env.get("SM_INPUT_CONFIG_DIR", str(input_dir / "config"))),
            channels=channels,
        )


def read_hyperparameters(model: Model, config_dir: Path) -> Any:
    """`model`'s hyperparameters from `<config_dir>/hyperparameters.json` (its defaults when
    there is none)."""
    path = config_dir / "hyperparameters.json"
    if not path.exists():
        return model.hyperparameters()
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object of hyperparameters")
    # SageMaker adds its own keys (sagemaker_program, ...) in script mode: not ours; `search` is
    # training's own knob (`read_search`).
    return model.hyperparameters.from_mapping(
        {
            k: v
            for k, v in values.items()
            if not k.startswith("sagemaker_") and k != SEARCH_HYPERPARAMETER
        }
    )


def read_search(config_dir: Path) -> bool:
    """Whether `<config_dir>/hyperparameters.json` turns the hyperparameter search on (its
    `search` key: "true" or "false", as SageMaker passes strings; false when absent)."""
    path = config_dir / "hyperparameters.json"
    if not path.exists():
        return False
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    raw = values.get(SEARCH_HYPERPARAMETER, "false") if isinstance(values, dict) else "false"
    text = str(raw).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"hyperparameter {SEARCH_HYPERPARAMETER}={raw!r}: use true or false")
    return text == "true"


def read_feature_table(path: Path) -> pd.DataFrame:
    """Every parquet file under `path` (Hive partitions `dt=...` included), in a stable order."""
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file()) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise FileNotFoundError(f"no parquet files under {path}")
    frames = [pd.read_parquet(f) for f in files]
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return table.drop(columns=[c for c in ("dt",) if c in table.columns])


def run_training_job(
    env: Mapping[str, str] | None = None,
) -> TrainingResult:
    """The training job: the model named by `MLPLAT_MODEL`, channels and hyperparameters, then
    `ml.workflow.train_candidate` into the model directory (which SageMaker archives: `code/` goes
    in it). A refused model raises `GateFailed`; every failure is also written to
    `<SM_OUTPUT_DIR>/failure`."""
    from ml.evaluate import GateFailed
    from ml.model import model_from_env
    from ml.workflow import train_candidate

    env = os.environ if env is None else env
    paths = ContainerPaths.from_env(env)
    try:
        model = model_from_env(env)
        hp = read_hyperparameters(model, paths.config_dir)
        search = read_search(paths.config_dir)
        if "train" not in paths.channels:
            raise ValueError(
                f"no 'train' channel (SM_CHANNEL_TRAIN); channels: {sorted(paths.channels)}"
            )
        train_dir = paths.channels["train"]
        features = read_feature_table(train_dir)
        validation = None
        if "validation" in paths.channels:
            validation = read_feature_table(paths.channels["validation"])
        approved = None
        if "approved" in paths.channels:
            metrics = json.loads((paths.channels["approved"] / METRICS_FILE).read_text())
            approved = EvaluationReport.from_dict(metrics)  # its slices gate too
        candidate = train_candidate(
            model,
            features,
            hp,
            model_dir=paths.model_dir,
            approved=approved,
            validation=validation,
            data_uri=str(train_dir),
            search=search,
        )
        if not candidate.passed:
            raise GateFailed(candidate.gate)
        return candidate.training
    except (GateFailed, ValueError, FileNotFoundError) as err:
        paths.output_dir.mkdir(parents=True, exist_ok=True)
        (paths.output_dir / "failure").write_text(str(err)[:1000])
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ml.train`: the SageMaker entry point. Script-mode CLI arguments are ignored:
    the hyperparameters come from hyperparameters.json."""
    from ml.evaluate import GateFailed

    try:
        result = run_training_job()
    except (GateFailed, ValueError, FileNotFoundError) as err:
        print(f"training failed: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"metrics": result.metrics.to_dict()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
