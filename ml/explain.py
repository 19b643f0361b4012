"""Why a model gave one record its score, step by step (`mlplat explain`).

The steps are the serving path's, in the handler's own code, so that what is explained is what the
endpoint answers:

1. the validated input: the record goes through the handler's `input_fn` (`ml.inference`), with
   its parsing and `ml.features` validation, so a bad record fails with the message a client gets
   (the field, what is wrong, what is allowed);
2. the derived features: the model's `derive` (`model.features.derive`) on those inputs;
3. the matrix columns: `matrix_columns` with the values the handler feeds the estimator (the
   derived features stacked and one-hot encoded are checked equal to the handler's matrix);
4. each column's contribution, where the estimator allows an exact one:
   * a linear model behind per-column transforms (a scaler + logistic regression, as the
     shipped classifier): coefficient x standardised value; the intercept plus the
     contributions is the logit, whose sigmoid is the score;
   * XGBoost trees (the shipped regressor): path-dependent TreeSHAP, the algorithm of XGBoost's
     `pred_contribs=True`, computed here in float64 from the booster's trees (XGBoost's own is
     float32, off by ~1e-5 of the score) so that the expected value plus the contributions is the
     margin, the trees' float64 sum, to rounding;
   * anything else (histogram gradient boosting): no exact attribution, said so;
5. the score: the handler's `model_fn` + `predict_fn` (the logistic regression folded as the
   endpoint serves it), beside the margin passed through the link.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from ml.model import Model


class ExplainError(ValueError):
    """A record or an artifact that cannot be explained (the reason, and what is allowed)."""


@dataclass(frozen=True, slots=True)
class MatrixColumn:
    """One column of the model matrix: its value and, when the estimator allows, its share."""

    name: str
    value: float
    contribution: float | None = None
    # a linear model: the column's standardisation and coefficient (mean 0 / scale 1: none)
    mean: float | None = None
    scale: float | None = None
    standardised: float | None = None
    coefficient: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "contribution": self.contribution,
            "mean": self.mean,
            "scale": self.scale,
            "standardised": self.standardised,
            "coefficient": self.coefficient,
        }


Method = Literal["linear", "tree_shap", "none"]
Link = Literal["logistic", "identity"]


@dataclass(frozen=True, slots=True)
class Attribution:
    """How the contributions were computed and what they add up to."""

    method: Method
    description: str
    link: Link | None = None
    base_name: str = ""  # "intercept" or "expected value"
    base: float | None = None
    margin: float | None = None  # base + the contributions: the logit or the raw prediction

    @property
    def linked(self) -> float | None:
        """The margin through the link: the probability of a logit, the value of a regression."""
        if self.margin is None:
            return None
        if self.link == "logistic":
            return _sigmoid(self.margin)
        return self.margin


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every step from a record to its score (`to_text`, `to_dict`)."""

    model: str
    task: str
    estimator: str
    inputs: tuple[tuple[str, Any], ...]
    ignored: tuple[str, ...]
    features: tuple[tuple[str, float | str], ...]
    columns: tuple[MatrixColumn, ...]
    attribution: Attribution
    score: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def contributions(self) -> dict[str, float]:
        return {c.name: c.contribution for c in self.columns if c.contribution is not None}

    def to_dict(self) -> dict[str, Any]:
        a = self.attribution
        return {
            "model": self.model,
            "task": self.task,
            "estimator": self.estimator,
            "input": dict(self.inputs),
            "ignored_keys": list(self.ignored),
            "features": dict(self.features),
            "columns": [c.to_dict() for c in self.columns],
            "attribution": {
                "method": a.method,
                "description": a.description,
                "link": a.link,
                "base_name": a.base_name or None,
                "base": a.base,
                "margin": a.margin,
                "linked": a.linked,
            },
            "score": self.score,
            "notes": list(self.notes),
        }

    def to_text(self) -> str:
        a = self.attribution
        out = [f"model {self.model} ({self.task}), estimator {self.estimator}", ""]
        out.append("1. validated input (the handler's checks)")
        out += _table(["column", "value"], [[n, _show(v)] for n, v in self.inputs])
        if self.ignored:
            out.append(f"   ignored keys (not inputs of the model): {', '.join(self.ignored)}")
        out += ["", "2. derived features (model.features.derive)"]
        out += _table(["feature", "value"], [[n, _show(v)] for n, v in self.features])
        out += ["", f"3. matrix columns and contributions: {a.description}"]
        if a.method == "linear":
            header = ["column", "value", "mean", "scale", "standardised", "coefficient", "contrib."]
            rows = [
                [
                    c.name,
                    _num(c.value),
                    _num(c.mean),
                    _num(c.scale),
                    _num(c.standardised),
                    _num(c.coefficient),
                    _num(c.contribution),
                ]
                for c in self.columns
            ]
        elif a.method == "tree_shap":
            header = ["column", "value", "contribution"]
            rows = [[c.name, _num(c.value), _num(c.contribution)] for c in self.columns]
        else:
            header = ["column", "value"]
            rows = [[c.name, _num(c.value)] for c in self.columns]
        out += _table(header, rows)
        out += ["", "4. score"]
        if a.margin is not None and a.base is not None:
            total = "logit" if a.link == "logistic" else "margin"
            out.append(
                f"   {a.base_name} {_num(a.base)} + sum of contributions = {total} {_num(a.margin)}"
            )
            if a.link == "logistic":
                out.append(f"   sigmoid(logit) = {_num(a.linked)}")
        out.append(f"   score (the model's output, as the endpoint answers) = {_num(self.score)}")
        out += [f"   note: {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


def _show(value: Any) -> str:
    if value is None:
        return "null (missing)"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = "".join(f"  {c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True))
        return f"   {first}{rest}".rstrip()

    return [line(header), *(line(r) for r in rows)]


# ---------------------------------------------------------------------------------------------
# The record, the features and the matrix
# ---------------------------------------------------------------------------------------------


def _one_record(body: bytes) -> Mapping[str, Any]:
    """The single record of a JSON body (an object, a list of one, `{"instances": [one]}`)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExplainError(f"the record is not JSON: {exc}") from None
    if isinstance(data, Mapping) and isinstance(data.get("instances"), list):
        data = data["instances"]
    if isinstance(data, list):
        if len(data) != 1:
            raise ExplainError(
                f"the file holds {len(data)} records; explain takes one record (a JSON object)"
            )
        data = data[0]
    if not isinstance(data, Mapping):
        raise ExplainError(
            f"expected a record: a JSON object of the model's inputs, got {type(data).__name__}"
        )
    return data


def _input_codes(model: Model, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The inputs as `derive` takes them (float64; vocabulary indices; NaN for missing), from a
    record the handler has validated."""
    cols: dict[str, np.ndarray] = {}
    for column in model.features.inputs:
        value = record.get(column.name)
        if value is None:
            number = math.nan
        elif column.type == "string":
            number = float((column.allowed or ()).index(value))
        elif column.type == "boolean":
            number = 1.0 if value else 0.0
        else:
            number = float(value)
        cols[column.name] = np.array([number], dtype=np.float64)
    return cols


def _stack(model: Model, derived: Mapping[str, np.ndarray]) -> np.ndarray:
    """The matrix row from derived features: numeric features, then one-hot categoricals."""
    features = model.features
    row = [float(derived[name][0]) for name in features.numeric_features]
    for name in features.categorical_features:
        code = float(derived[name][0])
        row += [1.0 if code == i else 0.0 for i in range(len(features.vocabularies[name]))]
    return np.array(row, dtype=np.float64)


def _feature_values(model: Model, derived: Mapping[str, np.ndarray]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for feature in model.features.features:
        value = float(derived[feature.name][0])
        if feature.kind == "categorical":
            out.append((feature.name, feature.vocabulary[int(value)]))
        else:
            out.append((feature.name, value))
    return out


# ---------------------------------------------------------------------------------------------
# Contributions: linear models
# ---------------------------------------------------------------------------------------------


def linear_contributions(
    estimator: Any, row: np.ndarray, names: Sequence[str]
) -> tuple[list[MatrixColumn], Attribution] | None:
    """Coefficient x standardised value per matrix column of a fitted `Pipeline` of a column
    transformer (scalers and passthroughs only: one output per input column) and a linear model
    with one output, or of such a linear model alone; None for any other estimator."""
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    coef = getattr(final, "coef_", None)
    intercept = getattr(final, "intercept_", None)
    if coef is None or intercept is None:
        return None
    coef = np.asarray(coef, dtype=np.float64).reshape(-1) if np.ndim(coef) <= 1 else coef
    if coef.ndim == 2:
        if coef.shape[0] != 1:
            return None
        coef = coef[0]
    n = len(names)
    mean = np.zeros(n)
    scale = np.ones(n)
    scaled = np.zeros(n, dtype=bool)
    order = list(range(n))  # the transformer's output position of each matrix column
    if steps:
        if len(steps) != 2:
            return None
        columns = steps[0][1]
        if getattr(columns, "remainder", "drop") != "drop":
            return None
        order = []
        for _, transformer, indices in getattr(columns, "transformers_", []):
            if transformer == "drop":
                continue
            cols = list(indices)
            kind = type(transformer).__name__
            if kind == "StandardScaler":
                if transformer.with_mean:
                    mean[cols] = transformer.mean_
                if transformer.with_std:
                    scale[cols] = transformer.scale_
                scaled[cols] = True
            elif not (
                transformer == "passthrough"
                or (kind == "FunctionTransformer" and transformer.func is None)
            ):
                return None
            order += cols
        if sorted(order) != list(range(n)):
            return None
    if coef.shape != (n,):
        return None
    weights = np.zeros(n)
    weights[order] = coef  # coef is in the transformer's output order
    standardised = (row - mean) / scale
    contributions = weights * standardised
    base = float(np.asarray(intercept, dtype=np.float64).reshape(-1)[0])
    margin = base + float(np.sum(contributions))
    classifier = hasattr(final, "predict_proba")
    out = [
        MatrixColumn(
            name=name,
            value=float(row[j]),
            contribution=float(contributions[j]) + 0.0,  # no -0
            mean=float(mean[j]) if scaled[j] else None,
            scale=float(scale[j]) if scaled[j] else None,
            standardised=float(standardised[j]),
            coefficient=float(weights[j]),
        )
        for j, name in enumerate(names)
    ]
    what = "coefficient x standardised value" + (" (logit)" if classifier else "")
    return out, Attribution(
        method="linear",
        description=f"{type(final).__name__}: {what}",
        link="logistic" if classifier else "identity",
        base_name="intercept",
        base=base,
        margin=margin,
    )


# ---------------------------------------------------------------------------------------------
# Contributions: XGBoost trees (path-dependent TreeSHAP, float64)
# ---------------------------------------------------------------------------------------------

_IDENTITY_OBJECTIVES = frozenset(
    {"reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:quantileerror"}
)
_LOGISTIC_OBJECTIVES = frozenset({"binary:logistic", "reg:logistic"})


@dataclass(frozen=True, slots=True)
class _Tree:
    left: list[int]
    right: list[int]
    feature: list[int]
    threshold: list[float]  # float32 values, as XGBoost compares them
    default_left: list[bool]
    value: list[float]  # a leaf's value (split_conditions of a leaf), float32 in float64
    cover: list[float]

    def is_leaf(self, node: int) -> bool:
        return self.left[node] < 0

    def hot(self, node: int, row: np.ndarray) -> tuple[int, int]:
        """(the child `row` follows, the other): x < threshold goes left, missing by default."""
        x = row[self.feature[node]]
        if math.isnan(x):
            go_left = self.default_left[node]
        else:
            go_left = bool(np.float32(x) < np.float32(self.threshold[node]))
        if go_left:
            return self.left[node], self.right[node]
        return self.right[node], self.left[node]

    def predict(self, row: np.ndarray) -> float:
        node = 0
        while not self.is_leaf(node):
            node = self.hot(node, row)[0]
        return self.value[node]

    def expected(self) -> float:
        """The cover-weighted mean of the leaves: the tree's value with no feature known."""
        root = self.cover[0]
        return math.fsum(
            self.cover[n] / root * self.value[n] for n in range(len(self.left)) if self.is_leaf(n)
        )


@dataclass(slots=True)
class _PathElement:
    feature: int
    zero: float  # share of the cover that goes this way when the feature is unknown
    one: float  # 1 when the record goes this way, else 0
    weight: float


def _extend(path: list[_PathElement], zero: float, one: float, feature: int) -> None:
    depth = len(path)
    path.append(_PathElement(feature, zero, one, 1.0 if depth == 0 else 0.0))
    for i in range(depth - 1, -1, -1):
        path[i + 1].weight += one * path[i].weight * (i + 1) / (depth + 1)
        path[i].weight = zero * path[i].weight * (depth - i) / (depth + 1)


def _unwind(path: list[_PathElement], index: int) -> None:
    depth = len(path) - 1
    one, zero = path[index].one, path[index].zero
    carry = path[depth].weight
    for i in range(depth - 1, -1, -1):
        if one != 0:
            held = path[i].weight
            path[i].weight = carry * (depth + 1) / ((i + 1) * one)
            carry = held - path[i].weight * zero * (depth - i) / (depth + 1)
        else:
            path[i].weight = path[i].weight * (depth + 1) / (zero * (depth - i))
    for i in range(index, depth):
        path[i].feature, path[i].zero, path[i].one = (
            path[i + 1].feature,
            path[i + 1].zero,
            path[i + 1].one,
        )
    path.pop()


def _unwound_sum(path: list[_PathElement], index: int) -> float:
    depth = len(path) - 1
    one, zero = path[index].one, path[index].zero
    carry = path[depth].weight
    total = 0.0
    for i in range(depth - 1, -1, -1):
        if one != 0:
            part = carry * (depth + 1) / ((i + 1) * one)
            total += part
            carry = path[i].weight - part * zero * ((depth - i) / (depth + 1))
        elif zero != 0:
            total += (path[i].weight / zero) / ((depth - i) / (depth + 1))
    return total


def _tree_shap(tree: _Tree, row: np.ndarray, phi: np.ndarray) -> None:
    """Add one tree's path-dependent SHAP values for `row` to `phi` (Lundberg et al. 2018,
    algorithm 2, as XGBoost and the shap package implement it)."""

    def recurse(
        node: int, parent: list[_PathElement], zero: float, one: float, feature: int
    ) -> None:
        path = [_PathElement(p.feature, p.zero, p.one, p.weight) for p in parent]
        _extend(path, zero, one, feature)
        if tree.is_leaf(node):
            for i in range(1, len(path)):
                w = _unwound_sum(path, i)
                element = path[i]
                phi[element.feature] += w * (element.one - element.zero) * tree.value[node]
            return
        hot, cold = tree.hot(node, row)
        split = tree.feature[node]
        incoming_zero = incoming_one = 1.0
        for k in range(1, len(path)):
            if path[k].feature == split:
                incoming_zero, incoming_one = path[k].zero, path[k].one
                _unwind(path, k)
                break
        cover = tree.cover[node]
        recurse(hot, path, tree.cover[hot] / cover * incoming_zero, incoming_one, split)
        recurse(cold, path, tree.cover[cold] / cover * incoming_zero, 0.0, split)

    recurse(0, [], 1.0, 1.0, -1)


def _booster_of(estimator: Any) -> Any | None:
    booster = getattr(estimator, "booster", None)
    if booster is None and callable(getattr(estimator, "get_booster", None)):
        booster = estimator.get_booster()
    if booster is None or type(booster).__module__.split(".")[0] != "xgboost":
        return None
    return booster


def xgboost_trees(booster: Any) -> tuple[list[_Tree], float, Link]:
    """The trees of a single-output gbtree booster, its base margin and its link."""
    learner = json.loads(booster.save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree":
        raise ExplainError(f"booster {gbm.get('name')!r}: TreeSHAP here reads gbtree boosters")
    params = learner["learner_model_param"]
    if int(params.get("num_target", "1")) != 1 or int(params.get("num_class", "0")) > 1:
        raise ExplainError("a booster with several outputs: explain reads single-output models")
    base_score = float(str(params["base_score"]).strip("[]"))
    if objective in _IDENTITY_OBJECTIVES:
        link: Link = "identity"
        base_margin = float(np.float32(base_score))
    elif objective in _LOGISTIC_OBJECTIVES:
        link = "logistic"
        base_margin = math.log(base_score / (1.0 - base_score))
    else:
        raise ExplainError(f"objective {objective!r}: explain reads regression and binary models")
    trees = []
    for raw in gbm["model"]["trees"]:
        if any(raw.get("split_type", [])):
            raise ExplainError("categorical splits: explain reads numeric (one-hot) matrices")
        leaf = [child < 0 for child in raw["left_children"]]
        conditions = [float(np.float32(v)) for v in raw["split_conditions"]]
        trees.append(
            _Tree(
                left=list(raw["left_children"]),
                right=list(raw["right_children"]),
                feature=list(raw["split_indices"]),
                threshold=conditions,
                default_left=[bool(d) for d in raw["default_left"]],
                value=[c if is_leaf else 0.0 for c, is_leaf in zip(conditions, leaf, strict=True)],
                cover=[float(c) for c in raw["sum_hessian"]],
            )
        )
    return trees, base_margin, link


def tree_contributions(booster: Any, row: np.ndarray) -> tuple[np.ndarray, float, float, Link]:
    """Per-column SHAP values of `row` (float64), the expected value (base margin plus each
    tree's cover-weighted mean), the margin (base margin plus the leaves `row` reaches, summed
    in float64) and the link."""
    trees, base_margin, link = xgboost_trees(booster)
    phi = np.zeros(len(row), dtype=np.float64)
    for tree in trees:
        _tree_shap(tree, row, phi)
    expected = base_margin + math.fsum(t.expected() for t in trees)
    margin = base_margin + math.fsum(t.predict(row) for t in trees)
    return phi, expected, margin, link


# ---------------------------------------------------------------------------------------------
# The explanation
# ---------------------------------------------------------------------------------------------


def _estimator_name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return "Pipeline(" + " -> ".join(type(s).__name__ for _, s in steps) + ")"
    return type(estimator).__name__


def explain(model: Model, estimator: Any, body: bytes | str) -> Explanation:
    """Explain the score `model`'s fitted `estimator` gives the one record of the JSON `body`.

    Raises `ExplainError` for a body that is not one record, and the handler's
    `InvalidRequestError` (its message names each bad field and what is allowed) for a record
    the endpoint would refuse."""
    from ml.inference import bind, fold_linear

    data = body.encode() if isinstance(body, str) else body
    record = _one_record(data)
    _, input_fn, predict_fn, _ = bind(model)
    matrix = input_fn(data, "application/json")  # the handler's parsing and validation
    classifier = model.spec.task == "binary_classification"
    served = (fold_linear(estimator) or estimator) if classifier else estimator
    score = float(np.asarray(predict_fn(matrix, served), dtype=np.float64)[0])

    features = model.features
    derived = features.derive(_input_codes(model, record))
    row = np.asarray(matrix[0], dtype=np.float64)
    if not np.array_equal(_stack(model, derived), row):
        raise ExplainError(
            "the derived features do not reproduce the handler's matrix: "
            "ml.explain and ml.features disagree on the matrix layout"
        )
    names = features.matrix_columns
    notes: list[str] = []
    linear = linear_contributions(estimator, row, names)
    booster = _booster_of(estimator) if linear is None else None
    if linear is not None:
        columns, attribution = linear
    elif booster is not None:
        phi, expected, margin, link = tree_contributions(booster, row)
        columns = [MatrixColumn(name, float(row[j]), float(phi[j])) for j, name in enumerate(names)]
        attribution = Attribution(
            method="tree_shap",
            description="XGBoost trees: path-dependent TreeSHAP (pred_contribs), in float64",
            link=link,
            base_name="expected value",
            base=expected,
            margin=margin,
        )
    else:
        columns = [MatrixColumn(name, float(row[j])) for j, name in enumerate(names)]
        attribution = Attribution(
            method="none",
            description=f"none: {_estimator_name(estimator)} has no exact per-column attribution",
        )
    linked = attribution.linked
    if linked is not None and not math.isclose(linked, score, rel_tol=1e-5, abs_tol=1e-9):
        notes.append(
            f"the model's output {score:.10g} is not the margin through its link "
            f"({linked:.10g}): the estimator post-processes it (e.g. floors it at 0)"
        )
    elif linked is not None and attribution.method == "tree_shap" and linked != score:
        notes.append(
            f"XGBoost scores in float32: its output differs from the float64 margin by "
            f"{abs(linked - score):.2g}"
        )
    inputs = tuple((c.name, record.get(c.name)) for c in features.inputs)
    ignored = tuple(str(k) for k in record if k not in features.input_names)
    return Explanation(
        model=model.name,
        task=model.spec.task,
        estimator=_estimator_name(estimator),
        inputs=inputs,
        ignored=ignored,
        features=tuple(_feature_values(model, derived)),
        columns=tuple(columns),
        attribution=attribution,
        score=score,
        notes=tuple(notes),
    )


def model_of_artifact(path: Path) -> str:
    """The model an artifact was built for: the package in its `code/`, else its lineage's."""
    from ml.contracts import LINEAGE_FILE
    from ml.package import model_name_of

    found = model_name_of(path)
    lineage = path / LINEAGE_FILE if path.is_dir() else path.parent / LINEAGE_FILE
    if found is None and lineage.is_file():
        try:
            named = json.loads(lineage.read_text()).get("model")
        except (OSError, ValueError, AttributeError):
            named = None
        found = named if isinstance(named, str) else None
    if found is None:
        raise ExplainError(
            f"{path}: cannot tell which model it is (no code/ml/models/<name>/ inside, no "
            f"{LINEAGE_FILE} beside it): pass a model.tar.gz that training wrote"
        )
    return found


def explain_artifact(path: Path, record: Path) -> Explanation:
    """`explain` for a trained artifact (a `model.tar.gz` or its directory) and a record file."""
    from ml.models import load
    from ml.workflow import InputError, load_model

    model = load(model_of_artifact(path))
    try:
        estimator = load_model(model, path)
    except InputError as exc:
        raise ExplainError(str(exc)) from None
    try:
        body = record.read_bytes()
    except OSError as exc:
        raise ExplainError(f"cannot read the record {record}: {exc.strerror or exc}") from None
    return explain(model, estimator, body)
