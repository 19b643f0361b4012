"""The SageMaker inference handler: `model_fn`, `input_fn`, `predict_fn`, `output_fn`.

It runs in the SageMaker scikit-learn container (1.9-0) from the model artifact's `code/` folder,
with network isolation: it imports only what that container ships (numpy, pandas, scikit-learn,
joblib, sagemaker_inference) and `ml.schema` / `ml.features`, copied beside it.

Request bodies (`Content-Type`):

* `application/json`: one record `{"tenure_months": 12, ...}`, a list of records, or
  `{"instances": [records...]}`. A record maps every input column of `ml.features.INPUTS` to a
  value (null allowed where the schema allows it); extra keys (e.g. `customer_id`) are ignored.
* `text/csv`: one record per line. The header row is optional: the first row is taken as a header
  when every field in it is a column name of the raw customer schema; without a header, each row
  lists the input columns in `ml.features.INPUT_NAMES` order. An empty field is a missing value;
  booleans are `true`/`false` (or `1`/`0`).

Responses (`Accept`, default JSON): `application/json` gives `{"predictions": [{"score": p}, ...]}`;
`text/csv` one score per line. `score` is the predicted probability of churn, one per record in
request order. `output_fn` returns `(body, content_type)`.

Errors: a bad request raises `InvalidRequestError` (HTTP 400), an unsupported content type
`UnsupportedMediaTypeError` (415), an unsupported `Accept` `NotAcceptableError` (406); each message
says what to fix. In the container they subclass sagemaker_inference's
`GenericInferenceToolkitError`, which the toolkit turns into that HTTP status; anything else would
be a 500.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.contracts import MODEL_FILE
from ml.features import INPUT_NAMES, INPUTS, FeatureValidationError, records_to_matrix
from ml.schema import CUSTOMERS_RAW

JSON = "application/json"
CSV = "text/csv"
MAX_RECORDS = 10_000


class _FallbackToolkitError(Exception):
    """Stand-in with the toolkit's shape when sagemaker_inference is not installed."""

    def __init__(
        self, status_code: int, message: str | None = None, phrase: str | None = None
    ) -> None:
        self.status_code = status_code
        self.message = message or "Invalid Request"
        self.phrase = phrase or self.message
        super().__init__(status_code, self.message, self.phrase)


if TYPE_CHECKING:
    _ToolkitError = _FallbackToolkitError
else:
    try:
        from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
    except ImportError:  # exercised by the packaging test, in a subprocess
        _ToolkitError = _FallbackToolkitError


class InferenceError(_ToolkitError):
    """A request the handler refuses; `status_code` is the HTTP status, `message` the reason."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(self.status, message, message)

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


class InvalidRequestError(InferenceError):
    status = 400


class UnsupportedMediaTypeError(InferenceError):
    status = 415


class NotAcceptableError(InferenceError):
    status = 406


_KNOWN_COLUMNS = frozenset(CUSTOMERS_RAW.column_names)
_NUMERIC = frozenset(c.name for c in INPUTS if c.type in ("double", "bigint"))
_BOOLEAN = frozenset(c.name for c in INPUTS if c.type == "boolean")
_TRUE = frozenset({"true", "1", "t", "yes"})
_FALSE = frozenset({"false", "0", "f", "no"})


def model_fn(model_dir: str) -> Any:
    """Load the fitted pipeline from `<model_dir>/model.joblib`."""
    import joblib

    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {MODEL_FILE} in {model_dir}: is this a model artifact?")
    model = joblib.load(path)
    if not hasattr(model, "predict_proba"):
        raise TypeError(f"{path} holds a {type(model).__name__}, not a classifier")
    return fold_linear(model) or model


class LinearScorer:
    """A fitted scaler + logistic-regression pipeline folded into one dot product.

    `StandardScaler` then `LogisticRegression` is `sigmoid(((x - mean) / scale) . coef + b)`, which
    is `sigmoid(x . w + c)` with `w = coef / scale` and `c = b - mean . w`: the same probabilities
    (to float rounding) without the pipeline's per-call validation, which costs about 1 ms for a
    single record. The fitted pipeline stays on `.pipeline`.
    """

    def __init__(self, weights: np.ndarray, bias: float, pipeline: Any) -> None:
        self.weights = weights
        self.bias = bias
        self.pipeline = pipeline
        self.classes_ = pipeline.classes_

    def predict_proba(self, data: np.ndarray) -> np.ndarray:
        matrix = np.asarray(data, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"expected a matrix of {self.weights.shape[0]} feature columns, got {matrix.shape}"
            )
        logits = matrix @ self.weights + self.bias
        if not np.isfinite(logits).all():
            raise ValueError("the feature matrix holds NaN or infinite values")
        positive = 1.0 / (1.0 + np.exp(-logits))
        return np.column_stack([1.0 - positive, positive])


def fold_linear(model: Any) -> LinearScorer | None:
    """The folded form of a `make_pipeline()` logistic-regression model, else None."""
    steps = getattr(model, "named_steps", None)
    if steps is None or set(steps) != {"columns", "model"}:
        return None
    columns, estimator = steps["columns"], steps["model"]
    coef = getattr(estimator, "coef_", None)
    if type(estimator).__name__ != "LogisticRegression" or coef is None or coef.shape[0] != 1:
        return None
    n_inputs = getattr(columns, "n_features_in_", None)
    if n_inputs is None or getattr(columns, "remainder", "drop") != "drop":
        return None
    weights = np.zeros(n_inputs, dtype=np.float64)
    bias = float(estimator.intercept_[0])
    position = 0
    for _, transformer, indices in columns.transformers_:
        if transformer == "drop":
            continue
        cols = list(indices)
        part = coef[0, position : position + len(cols)]
        position += len(cols)
        kind = type(transformer).__name__
        if kind == "StandardScaler":
            mean = transformer.mean_ if transformer.with_mean else np.zeros(len(cols))
            scale = transformer.scale_ if transformer.with_std else np.ones(len(cols))
            weights[cols] += part / scale
            bias -= float(np.dot(part / scale, mean))
        elif transformer == "passthrough" or (
            kind == "FunctionTransformer" and (transformer.func is None)
        ):
            weights[cols] += part
        else:
            return None
    if position != coef.shape[1]:
        return None
    return LinearScorer(weights, bias, model)


def input_fn(input_data: str | bytes, content_type: str) -> np.ndarray:
    """Parse and validate a request body into the model's feature matrix."""
    media = _media_type(content_type) or JSON
    if media not in (JSON, CSV):
        raise UnsupportedMediaTypeError(
            f"content type {content_type!r} is not supported; send {JSON} or {CSV}"
        )
    if isinstance(input_data, bytes | bytearray):
        try:
            text = bytes(input_data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidRequestError(f"the body is not UTF-8 text: {err}") from None
    elif isinstance(input_data, str):
        text = input_data
    else:
        raise InvalidRequestError(f"the body must be text, got {type(input_data).__name__}")
    if not text.strip():
        raise InvalidRequestError("the body is empty: send at least one record")
    records = _json_records(text) if media == JSON else _csv_records(text)
    if len(records) > MAX_RECORDS:
        raise InvalidRequestError(
            f"{len(records)} records in one request; send at most {MAX_RECORDS} per request"
        )
    try:
        return records_to_matrix(records)
    except FeatureValidationError as err:
        raise InvalidRequestError(str(err)) from None


def predict_fn(data: np.ndarray, model: Any) -> np.ndarray:
    """Churn probability of each row of the feature matrix."""
    scores: np.ndarray = model.predict_proba(data)[:, 1]
    return scores


def output_fn(prediction: np.ndarray, accept: str | None) -> tuple[str, str]:
    """Serialize scores as JSON (default) or CSV; returns `(body, content_type)`."""
    media = _accepted(accept)
    scores = [float(s) for s in prediction]
    if media == CSV:
        return "".join(f"{s!r}\n" for s in scores), CSV
    return json.dumps({"predictions": [{"score": s} for s in scores]}), JSON


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _accepted(accept: str | None) -> str:
    if not accept or not accept.strip():
        return JSON
    for part in accept.split(","):
        media = _media_type(part)
        if media in (JSON, CSV):
            return media
        if media in ("*/*", "application/*"):
            return JSON
        if media == "text/*":
            return CSV
    raise NotAcceptableError(f"cannot answer with {accept!r}; accept {JSON} or {CSV}")


def _json_records(text: str) -> Sequence[Mapping[str, Any]]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidRequestError(
            f"the body is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    if isinstance(body, dict):
        if "instances" in body:
            instances = body["instances"]
            if not isinstance(instances, list):
                raise InvalidRequestError(
                    '"instances" must be a list of records, got ' + type(instances).__name__
                )
            return instances
        return [body]
    if isinstance(body, list):
        return body
    raise InvalidRequestError(
        'send a JSON object (one record), a list of objects, or {"instances": [objects]}; '
        f"got a JSON {type(body).__name__}"
    )


def _csv_records(text: str) -> list[dict[str, Any]]:
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row and any(f.strip() for f in row)]
    except csv.Error as err:
        raise InvalidRequestError(f"the body is not valid CSV: {err}") from None
    if not rows:
        raise InvalidRequestError("the CSV body has no rows: send at least one record")
    header = [f.strip() for f in rows[0]]
    if all(name in _KNOWN_COLUMNS for name in header):
        names, body, first_line = header, rows[1:], 2
        if len(set(names)) != len(names):
            raise InvalidRequestError(f"the CSV header repeats a column: {header}")
        if not body:
            raise InvalidRequestError("the CSV body has a header but no records")
    else:
        names, body, first_line = list(INPUT_NAMES), rows, 1
    records = []
    for offset, row in enumerate(body):
        if len(row) != len(names):
            raise InvalidRequestError(
                f"CSV line {first_line + offset} has {len(row)} fields; expected {len(names)}: "
                f"{','.join(names)} (or send a header row naming the columns)"
            )
        records.append(
            {name: _csv_value(name, field) for name, field in zip(names, row, strict=True)}
        )
    return records


def _csv_value(name: str, field: str) -> Any:
    text = field.strip()
    if text == "":
        return None
    if name in _NUMERIC:
        try:
            value = float(text)
        except ValueError:
            return text  # the feature validator reports "must be a number; got str ..."
        return None if math.isnan(value) else value
    if name in _BOOLEAN:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return text
    return text
