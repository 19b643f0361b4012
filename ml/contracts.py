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
# Reports that travel beside the model in `model.tar.gz` when present.
COMPANION_FILES: tuple[str, ...] = (METRICS_FILE, BASELINE_FILE, LINEAGE_FILE, GATE_FILE)
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
