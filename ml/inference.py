"""The SageMaker inference handler: `model_fn`, `input_fn`, `predict_fn`, `output_fn`, bound to
one model by `handler(name)`.

It runs in the SageMaker container from the model artifact's `code/` folder, with network
isolation: it imports only what that container ships (numpy, pandas, scikit-learn, joblib,
sagemaker_inference) and the `ml` modules copied beside it (`ml.schema`, `ml.features`,
`ml.model`, `ml.models` and the model's own package). `code/inference.py` is
`model_fn, input_fn, predict_fn, output_fn = handler("<name>")`.

Request bodies (`Content-Type`):

* `application/json`: one record `{"tenure_months": 12, ...}`, a list of records, or
  `{"instances": [records...]}`. A record maps every input column of the model
  (`ModelSpec.inputs`) to a value (null allowed where the schema allows it); extra keys (e.g.
  `customer_id`) are ignored.
* `text/csv`: one record per line. The header row is optional: the first row is taken as a header
  when every field in it is a column name of the model's raw dataset; without a header, each row
  lists the model's input columns in `ModelSpec.inputs` order. An empty field is a missing value;
  booleans are `true`/`false` (or `1`/`0`).

Responses (`Accept`, default JSON): `application/json` gives
`{"predictions": [{"score": p}, ...], "model_version": "<group>/<version>"}`; `text/csv` one score
per line. `score` is the model's prediction (`ModelSpec.score_description`: a classifier's
probability of the positive class, a regressor's value), one per record in request order.
`output_fn` returns `(body, content_type)`.

`model_version` names the registered version that answered, so the data capture (and the
prediction logs made from it, `ml.prediction_logs`) record which version scored each row: the
endpoint's container carries its model package ARN in `MLPLAT_MODEL_VERSION`
(`ml.contracts.MODEL_VERSION_ENV`), read once when the model loads (`model_fn`), never per
request; without it (`mlplat serve` of a local artifact, a version not registered yet) the value is
`"unregistered"`. It is never null. A CSV answer stays one score per line: clients read it as
such, and SageMaker's response has no other place the capture keeps, so the prediction logs of
CSV answers record the version their reader was told (else `"unknown"`).

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
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.contracts import MODEL_VERSION_ENV
from ml.features import FeatureValidationError

if TYPE_CHECKING:
    from ml.model import Model

JSON = "application/json"
CSV = "text/csv"
MAX_RECORDS = 10_000
# The version an endpoint answers with when its container names no registered version.
UNREGISTERED = "unregistered"
# A model package version's ARN (what the container's MLPLAT_MODEL_VERSION holds).
PACKAGE_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/"
    r"(?P<group>[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/(?P<version>\d+)"
)


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


_TRUE = frozenset({"true", "1", "t", "yes"})
_FALSE = frozenset({"false", "0", "f", "no"})

Handler = tuple[
    Callable[[str], Any],
    Callable[[str | bytes, str], np.ndarray],
    Callable[[np.ndarray, Any], np.ndarray],
    Callable[[np.ndarray, str | None], tuple[str, str]],
]


def served_version(env: Mapping[str, str] | None = None) -> str:
    """The version an endpoint answers with: `<group>/<version>` of the model package ARN in
    `MLPLAT_MODEL_VERSION` (of `env`, default the process environment), or `"unregistered"` when
    the variable is unset or empty. Anything else is a `ValueError` naming the variable: a
    container that would mislabel every answer must not start."""
    value = (os.environ if env is None else env).get(MODEL_VERSION_ENV, "").strip()
    if not value:
        return UNREGISTERED
    match = PACKAGE_ARN.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{MODEL_VERSION_ENV}={value!r} is not a model package version ARN; expected "
            "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>, or leave it "
            "unset for an unregistered model"
        )
    return f"{match.group('group')}/{match.group('version')}"


def handler(name: str) -> Handler:
    """`(model_fn, input_fn, predict_fn, output_fn)` of model `name` (`ml.models.load`)."""
    from ml.models import load

    return bind(load(name))


def bind(model: Model) -> Handler:
    """The four handler functions of `model` (plain functions: the toolkit counts their
    parameters)."""
    features = model.features
    requests = _Requests(model)
    classifier = model.spec.task == "binary_classification"
    # Read where the container imports the handler, and again when the model loads (the
    # environment is the container's by then); each answer reuses it.
    version = served_version()

    def model_fn(model_dir: str) -> Any:
        """Load the fitted estimator from the model directory (`model.load`) and the version it
        answers with (`served_version`)."""
        nonlocal version
        version = served_version()
        estimator = model.load(Path(model_dir))
        if classifier:
            if not hasattr(estimator, "predict_proba"):
                raise TypeError(
                    f"{Path(model_dir) / model.artifact_file} holds a "
                    f"{type(estimator).__name__}, not a classifier"
                )
            return fold_linear(estimator) or estimator
        return estimator

    def input_fn(input_data: str | bytes, content_type: str) -> np.ndarray:
        """Parse and validate a request body into the model's feature matrix."""
        records = requests.records(input_data, content_type)
        try:
            return features.records_to_matrix(records)
        except FeatureValidationError as err:
            raise InvalidRequestError(str(err)) from None

    def predict_fn(data: np.ndarray, estimator: Any) -> np.ndarray:
        """The model's score of each row of the feature matrix."""
        return model.predict(estimator, data)

    def output_fn(prediction: np.ndarray, accept: str | None) -> tuple[str, str]:
        """Serialize scores as JSON (default, with the served version) or CSV; returns
        `(body, content_type)`."""
        return serialize(prediction, accept, version)

    return model_fn, input_fn, predict_fn, output_fn


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
    """The folded form of a fitted scikit-learn `Pipeline` of a column transformer (scalers and
    passthroughs) and a binary `LogisticRegression`, else None."""
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


class _Requests:
    """How request bodies name a model's inputs: its raw dataset's columns (a CSV header), its
    inputs in order (a header-less CSV row) and their types."""

    def __init__(self, model: Model) -> None:
        inputs = model.features.inputs
        self.known_columns = frozenset(model.spec.raw.column_names)
        self.input_names = model.features.input_names
        self.numeric = frozenset(c.name for c in inputs if c.type in ("double", "bigint"))
        self.boolean = frozenset(c.name for c in inputs if c.type == "boolean")

    def records(self, input_data: str | bytes, content_type: str) -> Sequence[Mapping[str, Any]]:
        """The records of a request body (`InferenceError` for a body that is not one)."""
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
        records = _json_records(text) if media == JSON else self.csv_records(text)
        if len(records) > MAX_RECORDS:
            raise InvalidRequestError(
                f"{len(records)} records in one request; send at most {MAX_RECORDS} per request"
            )
        return records

    def csv_records(self, text: str) -> list[dict[str, Any]]:
        try:
            rows = [
                row for row in csv.reader(io.StringIO(text)) if row and any(f.strip() for f in row)
            ]
        except csv.Error as err:
            raise InvalidRequestError(f"the body is not valid CSV: {err}") from None
        if not rows:
            raise InvalidRequestError("the CSV body has no rows: send at least one record")
        header = [f.strip() for f in rows[0]]
        if all(name in self.known_columns for name in header):
            names, body, first_line = header, rows[1:], 2
            if len(set(names)) != len(names):
                raise InvalidRequestError(f"the CSV header repeats a column: {header}")
            if not body:
                raise InvalidRequestError("the CSV body has a header but no records")
        else:
            names, body, first_line = list(self.input_names), rows, 1
        records = []
        for offset, row in enumerate(body):
            if len(row) != len(names):
                raise InvalidRequestError(
                    f"CSV line {first_line + offset} has {len(row)} fields; expected "
                    f"{len(names)}: {','.join(names)} (or send a header row naming the columns)"
                )
            records.append(
                {name: self.csv_value(name, field) for name, field in zip(names, row, strict=True)}
            )
        return records

    def csv_value(self, name: str, field: str) -> Any:
        text = field.strip()
        if text == "":
            return None
        if name in self.numeric:
            try:
                value = float(text)
            except ValueError:
                return text  # the feature validator reports "must be a number; got str ..."
            return None if math.isnan(value) else value
        if name in self.boolean:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            return text
        return text


def serialize(prediction: np.ndarray, accept: str | None, model_version: str) -> tuple[str, str]:
    """Scores as JSON (default: `{"predictions": [{"score": s}, ...], "model_version": v}`) or
    CSV (one score per line); returns `(body, content_type)`."""
    media = _accepted(accept)
    scores = [float(s) for s in prediction]
    if media == CSV:
        return "".join(f"{s!r}\n" for s in scores), CSV
    body = {"predictions": [{"score": s} for s in scores], "model_version": model_version}
    return json.dumps(body), JSON


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
    except RecursionError:  # json's decoder recurses once per level of nesting
        raise InvalidRequestError(
            "the body nests arrays or objects too deeply: send records, "
            'a list of records, or {"instances": [records]}'
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
