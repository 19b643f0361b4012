"""Training: a seeded scikit-learn pipeline, locally or as a SageMaker training job.

`make_pipeline(hp)` returns the unfitted `Pipeline` (column transformer + estimator) over the
feature matrix `ml.features` derives. `train(features, hp)` splits a labelled feature table,
fits the model and the baselines, evaluates, and returns a `TrainingResult` holding the model, the
evaluation, the drift baseline and the lineage; `write_outputs` saves them as `model.joblib`,
`metrics.json`, `baseline.json` and `lineage.json`, and `code/` (the inference handler) so the
directory is a servable model as is.

As a SageMaker training entry point (`python -m ml.train`), `main()` follows the container contract:
hyperparameters from `<SM_INPUT_CONFIG_DIR>/hyperparameters.json` (values are strings there), the
feature table from the parquet files under the `train` channel (`SM_CHANNEL_TRAIN`; an optional
`validation` channel; an optional `approved` channel holding the approved model's `metrics.json`
for the gate), and the model written to `SM_MODEL_DIR` by `ml.workflow.train_candidate` (the same
train → evaluate → gate → package `mlplat train --local` runs). A failed gate writes
the reason to `<SM_OUTPUT_DIR>/failure` (what SageMaker shows as the job's failure reason) and exits
non-zero. Every path comes from the environment, with the container's defaults, so tests can point
them at a temporary directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ml.baseline import compute_baseline
from ml.contracts import BASELINE_FILE, LINEAGE_FILE, METRICS_FILE, MODEL_FILE
from ml.evaluate import EvaluationReport, Metrics, evaluate, fit_baselines, labels
from ml.features import MATRIX_COLUMNS, NUMERIC_FEATURES, feature_matrix
from ml.schema import CUSTOMER_FEATURES, FEATURE_NAMES

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODEL_NAME = "customer-churn"

Estimator = Literal["logistic_regression", "hist_gradient_boosting"]


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    """Training knobs. `from_mapping` parses SageMaker's all-strings hyperparameters.json."""

    estimator: Estimator = "logistic_regression"
    c: float = 1.0  # inverse regularization strength (logistic regression)
    max_iter: int = 500
    learning_rate: float = 0.1  # hist gradient boosting
    max_leaf_nodes: int = 31  # hist gradient boosting
    validation_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.estimator not in ("logistic_regression", "hist_gradient_boosting"):
            problems.append(
                f"estimator={self.estimator!r}: use logistic_regression or hist_gradient_boosting"
            )
        if self.c <= 0:
            problems.append(f"c={self.c}: must be > 0")
        if self.max_iter < 1:
            problems.append(f"max_iter={self.max_iter}: must be >= 1")
        if not 0 < self.learning_rate <= 1:
            problems.append(f"learning_rate={self.learning_rate}: must be in (0, 1]")
        if self.max_leaf_nodes < 2:
            problems.append(f"max_leaf_nodes={self.max_leaf_nodes}: must be >= 2")
        if not 0 < self.validation_fraction < 1:
            problems.append(f"validation_fraction={self.validation_fraction}: must be in (0, 1)")
        if problems:
            raise ValueError("invalid hyperparameters: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Hyperparameters:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}; known: {sorted(fields)}")
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            kind = type(getattr(cls(), name))
            try:
                if kind is int and isinstance(raw, str | float) and float(raw).is_integer():
                    parsed[name] = int(float(raw))
                else:
                    parsed[name] = kind(raw)
            except (TypeError, ValueError):
                raise ValueError(
                    f"hyperparameter {name}={raw!r} is not a valid {kind.__name__}"
                ) from None
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def make_pipeline(hp: Hyperparameters | None = None) -> Pipeline:
    """The unfitted model: a column transformer over the feature matrix, then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    hp = hp or Hyperparameters()
    numeric = [MATRIX_COLUMNS.index(n) for n in NUMERIC_FEATURES]
    indicators = [j for j in range(len(MATRIX_COLUMNS)) if j not in numeric]
    if hp.estimator == "hist_gradient_boosting":
        columns = ColumnTransformer(
            [("numeric", "passthrough", numeric), ("indicators", "passthrough", indicators)]
        )
        estimator: Any = HistGradientBoostingClassifier(
            learning_rate=hp.learning_rate,
            max_iter=hp.max_iter,
            max_leaf_nodes=hp.max_leaf_nodes,
            random_state=hp.seed,
        )
    else:
        columns = ColumnTransformer(
            [("numeric", StandardScaler(), numeric), ("indicators", "passthrough", indicators)]
        )
        estimator = LogisticRegression(C=hp.c, max_iter=hp.max_iter, random_state=hp.seed)
    return Pipeline([("columns", columns), ("model", estimator)])


@dataclass(frozen=True)
class TrainingResult:
    model: Pipeline
    evaluation: EvaluationReport
    baseline: dict[str, Any]
    lineage: dict[str, Any]
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)

    @property
    def metrics(self) -> Metrics:
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
    features: pd.DataFrame,
    hp: Hyperparameters | None = None,
    *,
    validation: pd.DataFrame | None = None,
    data_uri: str = "",
) -> TrainingResult:
    """Fit the model on a labelled feature table (`CUSTOMER_FEATURES`) and evaluate it.

    Without `validation`, a `hp.validation_fraction` share of the rows is held out (see `split`).
    The inputs are not modified; the same data and hyperparameters give the same predictions.
    """
    hp = hp or Hyperparameters()
    sources = [features] if validation is None else [features, validation]
    if validation is None:
        train_rows, validation = split(features, hp.validation_fraction, hp.seed)
    else:
        train_rows = features
    for name, table in (("training", train_rows), ("validation", validation)):
        y = labels(table)
        if len(y) < 10 or y.min() == y.max():
            raise ValueError(
                f"the {name} set has {len(y)} rows and {len(set(y.tolist()))} class(es): "
                "need at least 10 rows with both churned and retained customers"
            )
    X = feature_matrix(train_rows)
    y = labels(train_rows)
    model = make_pipeline(hp).fit(X, y)
    baselines = fit_baselines(train_rows, seed=hp.seed)
    report = evaluate(model, validation, baselines=baselines)
    baseline = compute_baseline(train_rows, model.predict_proba(X)[:, 1])
    lineage = build_lineage(
        sources,
        hp,
        data_uri=data_uri,
        n_train=len(train_rows),
        n_validation=len(validation),
    )
    return TrainingResult(model, report, baseline, lineage, hp)


def build_lineage(
    sources: Sequence[pd.DataFrame],
    hp: Hyperparameters,
    *,
    data_uri: str,
    n_train: int,
    n_validation: int,
) -> dict[str, Any]:
    """Where the data came from and which version, which code, which libraries, which knobs."""
    return {
        "model_name": MODEL_NAME,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "dataset": CUSTOMER_FEATURES.name,
            "uri": data_uri,
            "version": data_version(*sources),
            "rows_train": n_train,
            "rows_validation": n_validation,
        },
        "code": code_version(),
        "libraries": library_versions(),
        "hyperparameters": hp.to_dict(),
        "features": list(FEATURE_NAMES),
    }


def data_version(*frames: pd.DataFrame) -> str:
    """Content hash of feature tables (independent of file layout): `sha256:<hex>`."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"


def code_version() -> dict[str, str | None]:
    """The git commit (env `GIT_COMMIT`, else `git rev-parse`) and a hash of the `ml` sources."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode())
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
    """Save the model and its JSON companions in `model_dir` (and `code/` for serving)."""
    import joblib

    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(result.model, model_dir / MODEL_FILE)
    write_report(model_dir / METRICS_FILE, result.evaluation.to_dict())
    write_report(model_dir / BASELINE_FILE, result.baseline)
    write_report(model_dir / LINEAGE_FILE, result.lineage)
    if with_code:
        from ml.package import write_code_dir

        write_code_dir(model_dir / "code")
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


def read_hyperparameters(config_dir: Path) -> Hyperparameters:
    path = config_dir / "hyperparameters.json"
    if not path.exists():
        return Hyperparameters()
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object of hyperparameters")
    # SageMaker adds its own keys (sagemaker_program, ...) in script mode: not ours.
    return Hyperparameters.from_mapping(
        {k: v for k, v in values.items() if not k.startswith("sagemaker_")}
    )


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
    """The training job: read channels and hyperparameters, then `ml.workflow.train_candidate`
    into the model directory (which SageMaker archives: `code/` goes in it). A refused model
    raises `GateFailed`; every failure is also written to `<SM_OUTPUT_DIR>/failure`."""
    from ml.evaluate import GateFailed
    from ml.workflow import train_candidate

    paths = ContainerPaths.from_env(env)
    try:
        hp = read_hyperparameters(paths.config_dir)
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
            approved = EvaluationReport.from_dict(metrics).overall
        candidate = train_candidate(
            features,
            hp,
            model_dir=paths.model_dir,
            approved=approved,
            validation=validation,
            data_uri=str(train_dir),
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
