"""What the infrastructure and the ML code share, by name: standard library only.

Components, the stack and the model artifact's `code/` import this module; it never imports numpy,
pandas or anything else, so that reading a name does not load the ML stack.

* the model artifact's files (`model.tar.gz` and the training output directory);
* the drift job's contract with the alarms: metric namespace, metric and dimension names, the
  report prefix, its environment variables, where the served model's baseline lives;
* the data capture prefix of the endpoint.
"""

from __future__ import annotations

import posixpath

# --- the model artifact ----------------------------------------------------------------------
MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
BASELINE_FILE = "baseline.json"
LINEAGE_FILE = "lineage.json"
GATE_FILE = "gate.json"
# How the model goes stale (`ml.backtest`): committed in its package, copied beside each model.
STALENESS_FILE = "staleness.json"
# Reports that travel beside the model in `model.tar.gz` when present.
COMPANION_FILES: tuple[str, ...] = (
    METRICS_FILE,
    BASELINE_FILE,
    LINEAGE_FILE,
    GATE_FILE,
    STALENESS_FILE,
)
BASELINE_FORMAT = "mlplat-baseline/1"
OTHER_CATEGORY = "__other__"  # a categorical value the baseline did not see

# --- data capture ------------------------------------------------------------------------------
CAPTURE_ROOT = "capture"

# --- the drift job and its alarms ------------------------------------------------------------
DRIFT_NAMESPACE = "MLPlatform/Drift"
FEATURE_PSI_METRIC = "FeaturePSI"
PREDICTION_PSI_METRIC = "PredictionPSI"
SCORED_ROWS_METRIC = "ScoredRows"
ENDPOINT_DIMENSION = "EndpointName"
FEATURE_DIMENSION = "Feature"
REPORT_PREFIX = "drift-reports"
DRIFT_ENV_PREFIX = "MLPLAT_DRIFT_"


def baseline_key_for(model_key: str) -> str:
    """Where the drift job reads the served model's baseline: beside the served artifact."""
    return posixpath.join(posixpath.dirname(model_key), BASELINE_FILE)


# --- online quality, training-serving skew and model age (the same scheduled job, per model) ---
# The endpoint's container carries the registered version it serves (`<group>/<version>`) in
# MODEL_VERSION_ENV; the handler returns it in every response as "model_version", so the capture
# and the prediction logs record which version scored each row.
MODEL_VERSION_ENV = "MLPLAT_MODEL_VERSION"
QUALITY_NAMESPACE = "MLPlatform/Quality"
MODEL_VERSION_DIMENSION = "ModelVersion"
# How far online quality falls short of the version's registered offline figure, in the metric's
# own unit, signed so that > 0 is worse (AUC: offline - online; RMSE: online - offline, relative).
QUALITY_SHORTFALL_METRIC = "QualityShortfall"
LABELED_ROWS_METRIC = "LabeledRows"  # predictions joined with a label in the run
SKEW_SHARE_METRIC = "SkewShare"  # share of re-scored captured rows whose score differs
MODEL_AGE_METRIC = "ModelAgeDays"  # days since the serving version was trained
QUALITY_PREFIX = "quality-reports"  # online quality reports, beside the drift reports


# --- the model pipeline ------------------------------------------------------------------------
# `components.model_pipeline` writes the SageMaker Pipeline definition; `python -m ml.pipeline
# <step>` runs each of its Processing and Training steps in the platform image; the sandbox
# executes the definition as SageMaker would. These names are what the three share.
PIPELINE_MODULE = "ml.pipeline"
PIPELINE_ENTRYPOINT: tuple[str, ...] = ("python3", "-m", PIPELINE_MODULE)  # + the step command
PIPELINE_DEFINITION_VERSION = "2020-12-01"

# The model a step runs for: every Processing and Training step of a model's pipeline carries it in
# its environment (`ml.model.model_from_env`), as does a training job `mlplat train` starts.
MODEL_ENV = "MLPLAT_MODEL"

# Step names in the definition (what `mlplat pipeline status` shows, what a Fail names).
STEP_WINDOW = "Window"  # Processing: the raw partitions of the window, one work item each
STEP_CURATE = "Curate"  # Processing, sharded: raw -> curated zone (+ rejected rows)
STEP_FEATURES = "Features"  # Processing, sharded: curated -> features zone
STEP_TRAIN = "Train"  # Training: the features zone's partitions of the window -> model.tar.gz
STEP_EVALUATE = "Evaluate"  # Processing: the gate against baselines and the serving version
STEP_GATE = "GatePassed"  # Condition on the evaluate step's property file
STEP_REGISTER = "Register"  # RegisterModel
STEP_REFUSED = "GateRefused"  # Fail, its message the failed gate rules

# The step commands (`python -m ml.pipeline <command> ...`).
COMMAND_WINDOW = "window"
COMMAND_CURATE = "curate"
COMMAND_FEATURES = "features"
COMMAND_TRAIN = "train"
COMMAND_EVALUATE = "evaluate"

# Pipeline parameters (all String: values reach containers as arguments and hyperparameters).
PARAM_WINDOW_START = "WindowStart"  # YYYY-MM-DD, or "" (WindowDays up to WindowEnd)
PARAM_WINDOW_END = "WindowEnd"  # YYYY-MM-DD, or "" (the UTC date the execution started)
PARAM_WINDOW_DAYS = "WindowDays"  # days of data when WindowStart is ""
PARAM_APPROVAL_STATUS = "ModelApprovalStatus"  # PendingManualApproval | Approved
PARAM_SEARCH = "Search"  # "true" | "false": the Train step searches the model's space first
# ... and one per hyperparameter a model exposes (`ModelSpec.pipeline_hyperparameters`), named by
# `ml.models.pipeline_parameter`: `max_iter` -> `MaxIter`.
PIPELINE_PARAMETERS: tuple[str, ...] = (
    PARAM_WINDOW_START,
    PARAM_WINDOW_END,
    PARAM_WINDOW_DAYS,
    PARAM_APPROVAL_STATUS,
    PARAM_SEARCH,
)
# The training knob (hyperparameters.json key, not a model hyperparameter) that PARAM_SEARCH sets:
# "true" runs `ml.tuning`'s cross-validated search over the model's space before the fit.
SEARCH_HYPERPARAMETER = "search"

# Container paths of the Processing steps (LocalPath in the definition, arguments of the commands).
WORK_INPUT_PATH = "/opt/ml/processing/input/work"  # work items, sharded by S3 key
MODEL_INPUT_PATH = "/opt/ml/processing/input/model"  # the training step's model.tar.gz
WORK_OUTPUT_PATH = "/opt/ml/processing/output/work"  # one work item per partition handled
EVALUATION_OUTPUT_PATH = "/opt/ml/processing/output/evaluation"
WORK_OUTPUT = "work"  # ProcessingOutput OutputName of WORK_OUTPUT_PATH
EVALUATION_OUTPUT = "evaluation"  # ProcessingOutput OutputName of EVALUATION_OUTPUT_PATH
# The evaluate step's property file: GATE_FILE in the evaluation output. JSON:
# {"passed": bool, "message": str (the failed rules, or "gate passed ..."), "failed": [rule],
#  "servingVersion": arn | null, "metadata": {REGISTER_METADATA_KEYS: str}}
GATE_PROPERTY_FILE = "GateReport"
# The registered version's metadata property (as `ml.registry.metadata_properties` names it) ->
# its key in the property file's "metadata": `metric.<name>` for each of the task's metrics
# (`ml.models.TASK_METRICS`), and the data version.
DATA_VERSION_PROPERTY = "data.version"
DATA_VERSION_KEY = "data_version"


def register_metadata(metrics: tuple[str, ...]) -> dict[str, str]:
    return {**{f"metric.{m}": m for m in metrics}, DATA_VERSION_PROPERTY: DATA_VERSION_KEY}


# Training channels (under /opt/ml/input/data/): the features step's work items name the
# partitions; the features zone itself is mounted (FastFile) and read through its manifests.
PARTITIONS_CHANNEL = "partitions"
FEATURES_CHANNEL = "features"
# A work item: one partition of one dataset, a JSON file named `<dataset>-dt=<YYYY-MM-DD>.json`:
# {"format": WORK_ITEM_FORMAT, "dataset": name, "bucket": b, "prefix": p, "dt": d,
#  "window": {"start": d, "end": d}, "rows": int | null}
WORK_ITEM_FORMAT = "mlplat-pipeline-work/1"

# Where a pipeline's files go: under the model's registry prefix in the models bucket,
# `<artifacts prefix>/PIPELINE_ROOT/<execution id>/<step>/...` (work items, the model, the
# evaluation), so the endpoint that serves a registered version can read it.
PIPELINE_ROOT = "pipeline"
# Rows the curate step refuses: in the curated bucket, `REJECTED_ROOT/<dataset>/dt=<d>/...parquet`.
REJECTED_ROOT = "rejected"

# What the curate step puts (dimension PIPELINE_DIMENSION = the pipeline's name).
PIPELINE_NAMESPACE = "MLPlatform/Pipeline"
PIPELINE_DIMENSION = "Pipeline"
REJECTED_ROWS_METRIC = "RejectedRows"
REJECTED_SHARE_METRIC = "RejectedShare"
CURATED_ROWS_METRIC = "CuratedRows"
# Where a failing step says why, in the container's output directory (`SM_OUTPUT_DIR`, default
# CONTAINER_OUTPUT_DIR): a Processing job shows `message` as its ExitMessage, a Training job
# `failure` as its FailureReason (the first 1 KB). `python -m ml.pipeline` also prints it on stderr.
CONTAINER_OUTPUT_DIR = "/opt/ml/output"
OUTPUT_DIR_ENV = "SM_OUTPUT_DIR"
PROCESSING_MESSAGE_FILE = "message"
TRAINING_FAILURE_FILE = "failure"
