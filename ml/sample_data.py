"""The sample problem's data: synthetic customer snapshots with a churn label.

`generate_customers(n, seed=...)` returns a frame with exactly `CUSTOMERS_RAW`'s columns and dtypes.
It is deterministic for a given (n, seed, drift, drift_columns, as_of) and vectorized (1,000,000
rows in about a second) and realistic enough to exercise the whole platform: numeric and categorical
columns, missing values that mean something (new customers have no lifetime bill yet), and a
label drawn from a known logistic process (`true_churn_probability`), so tests can compare a
trained model against the oracle.

`drift` (0 = none, 1 = strong) shifts the distribution of the chosen `drift_columns` to simulate
what production data does to a model over time; the label keeps following the same process
(covariate shift), so a drifted sample is still correctly labelled.

`concept_drift` (0 = none) changes the process itself: the same customer churns and spends
differently (price sensitivity and the usage effect turn, payment methods and regions trade
places; overage and month-to-month plans cost more, loyalty discounts and ticket credits shrink),
so a model trained before it decays while one retrained on recent data does not.
`generate_history(months, rows_per_month, ...)` strings months of snapshots together with the
concept drifting a little each month: the data `ml.backtest` measures a model's staleness on. At 0
(the default) concept drift changes no random draw and no value: the output is the one this module
always gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.models.churn.spec import LABEL
from ml.schema import (
    CONTRACT_TYPES,
    CUSTOMER_OUTCOMES,
    CUSTOMERS_RAW,
    PAYMENT_METHODS,
    REGIONS,
    SPEND_LABEL,
)

DRIFTABLE_COLUMNS: tuple[str, ...] = (
    "tenure_months",
    "monthly_charges",
    "contract_type",
    "support_tickets",
    "data_usage_gb",
    "region",
)
DEFAULT_DRIFT_COLUMNS: tuple[str, ...] = ("monthly_charges", "contract_type", "support_tickets")
DEFAULT_AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
MAX_DRIFT = 5.0
# A month of `generate_history`: snapshots span the 30 days before each month's end.
MONTH_DAYS = 30

# The generating process, as data: effects on the churn log-odds.
_INTERCEPT = -1.6
_CONTRACT_EFFECT = {"month-to-month": 1.0, "one-year": -0.3, "two-year": -1.4}
_PAYMENT_EFFECT = {"card": -0.2, "bank-transfer": -0.35, "invoice": 0.3, "wallet": 0.15}
_PAYMENT_MISSING_EFFECT = 0.45
_REGION_EFFECT = {"north": 0.0, "south": 0.15, "east": -0.1, "west": 0.05}


def generate_customers(
    n_rows: int,
    *,
    seed: int = 0,
    drift: float = 0.0,
    drift_columns: tuple[str, ...] = DEFAULT_DRIFT_COLUMNS,
    as_of: datetime = DEFAULT_AS_OF,
    id_offset: int = 0,
    concept_drift: float = 0.0,
) -> pd.DataFrame:
    """`n_rows` customer snapshots taken in the 30 days before `as_of`, with the churn label
    (and the next month's spend) drawn from the process at `concept_drift` (0: the original)."""
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    if not 0.0 <= drift <= MAX_DRIFT:
        raise ValueError(f"drift must be between 0 and {MAX_DRIFT:g}, got {drift}")
    if not 0.0 <= concept_drift <= MAX_DRIFT:
        raise ValueError(f"concept_drift must be between 0 and {MAX_DRIFT:g}, got {concept_drift}")
    unknown = sorted(set(drift_columns) - set(DRIFTABLE_COLUMNS))
    if unknown:
        raise ValueError(
            f"cannot drift {unknown}: drift_columns must be among {list(DRIFTABLE_COLUMNS)}"
        )
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")

    rng = np.random.default_rng(seed)
    n = n_rows

    def d(column: str) -> float:
        return drift if column in drift_columns else 0.0

    contract_p = np.array([0.55, 0.25, 0.20]) + d("contract_type") * np.array([0.25, -0.1, -0.15])
    contract = _choice(rng, n, np.clip(contract_p, 0.01, None))

    tenure_mean = np.array([14.0, 30.0, 48.0])[contract] * (1.0 - 0.5 * min(d("tenure_months"), 1))
    tenure = np.minimum(np.floor(rng.gamma(1.3, tenure_mean / 1.3)), 600).astype(np.int64)

    monthly = rng.lognormal(np.log(62.0), 0.35, n) + 8.0 * (contract == 2)
    monthly = monthly * (1.0 + 0.3 * d("monthly_charges"))
    monthly = np.round(np.clip(monthly, 5.0, 10_000.0), 2)

    # The lifetime bill reflects past prices: a ratio below 1 means the price went up lately.
    total = np.round(tenure * monthly * rng.uniform(0.75, 1.1, n), 2)
    total = np.minimum(total, 1_000_000.0)
    total_missing = (tenure == 0) | (rng.random(n) < 0.02)

    payment = _choice(rng, n, np.array([0.4, 0.25, 0.2, 0.15]))
    payment_missing = rng.random(n) < 0.05

    ticket_rate = (0.6 + 0.9 * (contract == 0)) * (1.0 + d("support_tickets"))
    tickets = np.minimum(rng.poisson(ticket_rate), 1_000).astype(np.int64)

    usage: np.ndarray = rng.lognormal(np.log(18.0), 0.9, n)
    usage = usage * (1.0 - 0.4 * min(d("data_usage_gb"), 1))
    usage = np.round(np.minimum(usage, 100_000.0), 3)
    usage_missing = rng.random(n) < 0.08

    region_p = np.array([0.3, 0.25, 0.25, 0.2]) + d("region") * np.array([-0.1, -0.05, -0.05, 0.2])
    region = _choice(rng, n, np.clip(region_p, 0.01, None))
    senior = rng.random(n) < 0.16

    seconds = rng.integers(0, 30 * 24 * 3600, n)
    start = pd.Timestamp(as_of - timedelta(days=30)).as_unit("ns")
    event_time = pd.DatetimeIndex(start + pd.to_timedelta(seconds, unit="s"))

    logit = _logit(
        tenure=tenure.astype(np.float64),
        monthly=monthly,
        total=np.where(total_missing, np.nan, total),
        contract=contract,
        payment=np.where(payment_missing, -1, payment),
        tickets=tickets.astype(np.float64),
        usage=np.where(usage_missing, np.nan, usage),
        region=region,
        senior=senior,
        concept=concept_drift,
    )
    churned = (rng.random(n) < _sigmoid(logit)).astype(np.int64)
    spend = next_month_spend(
        np.random.default_rng([seed, 1]),
        monthly=monthly,
        usage=np.where(usage_missing, np.nan, usage),
        contract=contract,
        tickets=tickets.astype(np.float64),
        churned=churned,
        concept=concept_drift,
    )

    ids = pc.binary_join_element_wise(
        "C",
        pc.utf8_lpad(pa.array(np.arange(id_offset, id_offset + n)).cast(pa.string()), 9, "0"),
        "",
    )
    columns: dict[str, object] = {
        "customer_id": _strings(ids),
        "event_time": event_time,
        "tenure_months": pd.array(tenure, dtype="Int64"),
        "monthly_charges": monthly,
        "total_charges": np.where(total_missing, np.nan, total),
        "contract_type": _strings(pa.array(CONTRACT_TYPES).take(pa.array(contract))),
        "payment_method": _strings(
            pa.array(PAYMENT_METHODS).take(pa.array(payment, mask=payment_missing))
        ),
        "support_tickets": pd.array(tickets, dtype="Int64"),
        "data_usage_gb": np.where(usage_missing, np.nan, usage),
        "region": _strings(pa.array(REGIONS).take(pa.array(region))),
        "is_senior": pd.array(senior, dtype="boolean"),
        LABEL: pd.array(churned, dtype="Int64"),
        SPEND_LABEL: spend,
    }
    frame = pd.DataFrame(columns)
    return frame.astype({c.name: c.pandas_dtype for c in CUSTOMERS_RAW.columns})


def next_month_spend(
    rng: np.random.Generator,
    *,
    monthly: np.ndarray,
    usage: np.ndarray,
    contract: np.ndarray,
    tickets: np.ndarray,
    churned: np.ndarray,
    concept: float = 0.0,
) -> np.ndarray:
    """What each customer is billed in the next 30 days: the plan, metered overage above 30 GB,
    a loyalty discount on two-year contracts, credits after many support tickets; a churned
    customer pays only part of a month. Its own random stream: the churn columns are the same
    with or without it. `concept` > 0: overage costs more, the discount and the credits shrink,
    month-to-month plans cost more and the others less (the same draws, other prices)."""
    n = len(monthly)
    overage_price, discount_rate, credit_rate, plan = 0.45, 0.92, 0.85, monthly
    if concept:
        overage_price = 0.45 * (1.0 + 2.0 * concept)
        discount_rate = min(0.92 + 0.08 * concept, 1.0)
        credit_rate = min(0.85 + 0.15 * concept, 1.0)
        plan = monthly * np.where(contract == 0, 1.0 + 0.4 * concept, 1.0 - 0.1 * concept)
    overage = overage_price * np.maximum(np.nan_to_num(usage, nan=0.0) - 30.0, 0.0)
    discount = np.where(contract == 2, discount_rate, 1.0)
    credits = np.where(tickets >= 3, credit_rate, 1.0)
    spend = (plan + overage) * discount * credits * rng.lognormal(0.0, 0.08, n)
    spend = np.where(churned == 1, monthly * rng.uniform(0.0, 0.4, n), spend)
    return np.round(np.clip(spend, 0.0, 1_000_000.0), 2)


def true_churn_probability(frame: pd.DataFrame, *, concept_drift: float = 0.0) -> np.ndarray:
    """The probability of churn under the generating process (at `concept_drift`), for each row
    of a raw frame."""

    def codes(column: str, vocabulary: tuple[str, ...]) -> np.ndarray:
        idx = pc.index_in(pa.array(frame[column]), value_set=pa.array(vocabulary))
        return np.asarray(idx.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)

    def floats(column: str) -> np.ndarray:
        values: np.ndarray = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        return values

    return _sigmoid(
        _logit(
            tenure=floats("tenure_months"),
            monthly=floats("monthly_charges"),
            total=floats("total_charges"),
            contract=codes("contract_type", CONTRACT_TYPES),
            payment=codes("payment_method", PAYMENT_METHODS),
            tickets=floats("support_tickets"),
            usage=floats("data_usage_gb"),
            region=codes("region", REGIONS),
            senior=frame["is_senior"].to_numpy(dtype=bool, na_value=False),
            concept=concept_drift,
        )
    )


def _logit(
    *,
    tenure: np.ndarray,
    monthly: np.ndarray,
    total: np.ndarray,
    contract: np.ndarray,
    payment: np.ndarray,
    tickets: np.ndarray,
    usage: np.ndarray,
    region: np.ndarray,
    senior: np.ndarray,
    concept: float = 0.0,
) -> np.ndarray:
    """Churn log-odds. Category arrays hold vocabulary indices; -1 is a missing payment method.
    `concept` > 0 moves the effects towards another process (`_concept_shift`)."""
    avg_spend = np.where(np.isnan(total), monthly, total / np.maximum(tenure, 1.0))
    trend = np.clip(monthly / np.maximum(avg_spend, 1.0) - 1.0, -0.5, 1.0)
    payment_effect = np.append(np.array(list(_PAYMENT_EFFECT.values())), _PAYMENT_MISSING_EFFECT)
    log_usage = np.log1p(np.nan_to_num(usage, nan=0.0))
    result: np.ndarray = (
        _INTERCEPT
        + np.array(list(_CONTRACT_EFFECT.values()))[contract]
        + 0.9 * (tenure < 6)
        - 0.02 * np.minimum(tenure, 72.0)
        + 0.012 * (monthly - 65.0)
        + 1.2 * trend
        + 0.3 * tickets
        + payment_effect[payment]
        + 0.35 * senior
        - 0.15 * log_usage
        + 0.2 * np.isnan(usage)
        + np.array(list(_REGION_EFFECT.values()))[region]
    )
    if concept:
        result = result + concept * _concept_shift(
            monthly=monthly, payment=payment, usage=log_usage, region=region
        )
    return result


def _concept_shift(
    *,
    monthly: np.ndarray,
    payment: np.ndarray,
    usage: np.ndarray,
    region: np.ndarray,
) -> np.ndarray:
    """How the churn log-odds move per unit of concept drift: the signal keeps its strength but
    turns (at 1, cheap plans lose customers to a competitor where dear ones did, heavy users
    leave, invoice payers stay and wallet payers go, the regions trade places), so a model
    retrained on recent data recovers what a stale one loses."""
    payment_shift = np.array([0.0, 0.0, -0.6, 0.5, 0.0])  # card, bank, invoice, wallet, missing
    shift: np.ndarray = (
        -0.024 * (monthly - 65.0)
        + 0.3 * usage
        + payment_shift[payment]
        + np.array([0.3, -0.35, 0.3, -0.35])[region]
    )
    return shift


def generate_history(
    months: int,
    rows_per_month: int,
    *,
    seed: int = 0,
    start: datetime = DEFAULT_AS_OF,
    concept_drift_per_month: float = 0.0,
) -> pd.DataFrame:
    """`months` consecutive 30-day months of snapshots from `start` (`rows_per_month` new customers
    each, ids unique across months), month m drawn at concept drift `m * concept_drift_per_month`
    (`generate_customers(..., concept_drift=...)`), oldest first."""
    if months < 1 or rows_per_month < 1:
        raise ValueError(
            f"months ({months}) and rows_per_month ({rows_per_month}) must be at least 1"
        )
    if concept_drift_per_month < 0 or (months - 1) * concept_drift_per_month > MAX_DRIFT:
        raise ValueError(
            f"concept_drift_per_month {concept_drift_per_month} must be >= 0, and the concept "
            f"drift of the last of {months} months "
            f"({(months - 1) * concept_drift_per_month:g}) at most {MAX_DRIFT:g}"
        )
    frames = [
        generate_customers(
            rows_per_month,
            seed=seed * 10_000 + m,
            as_of=start + timedelta(days=MONTH_DAYS * (m + 1)),
            id_offset=m * rows_per_month,
            concept_drift=m * concept_drift_per_month,
        )
        for m in range(months)
    ]
    return pd.concat(frames, ignore_index=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _choice(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    """Indices 0..len(p)-1 drawn with probabilities p (normalized), vectorized."""
    cdf = np.cumsum(p / p.sum())
    out: np.ndarray = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(p) - 1)
    return out


def _strings(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(values.cast(pa.string())), dtype="string")


# --- outcomes that come back (the labels of captured predictions) ----------------------------

# The raw inputs the generating process needs that a prediction row must carry; the others it
# draws as `generate_customers` does (`is_senior`, `total_charges`) when a model does not read them.
_PROCESS_INPUTS: tuple[str, ...] = (
    "tenure_months",
    "monthly_charges",
    "contract_type",
    "payment_method",
    "support_tickets",
    "data_usage_gb",
    "region",
)
_SENIOR_SHARE = 0.16  # share of customers 65 or older, as generate_customers draws them


def simulate_outcomes(
    predictions: pd.DataFrame,
    *,
    seed: int,
    observed_at: datetime,
    concept_drift: float = 0.0,
) -> pd.DataFrame:
    """Outcomes for captured predictions, drawn from the sample data's generating process: one
    row per prediction row (`customer_id`, `event_time` = its `inference_time`), observed at
    `observed_at`, with `churned` drawn from the true churn probability of its inputs and
    `next_month_spend` from the process's spend given that outcome. `concept_drift` > 0 draws
    them from the process as it has changed since (as `true_churn_probability` does): the world
    a model trained before it no longer fits, so its online quality falls short.

    The rows must carry the process's inputs (`_PROCESS_INPUTS`: every model of the sample data
    reads them); `is_senior` and `total_charges`, when a model does not read them, are drawn as
    the sample data draws them. Deterministic for a given (rows, seed). Columns and dtypes are
    exactly `CUSTOMER_OUTCOMES`'.
    """
    from ml.labels import PARTITION_COLUMN, LabelsError

    if observed_at.tzinfo is None:
        raise LabelsError(f"observed_at {observed_at.isoformat()} has no timezone; use UTC")
    when = pd.Timestamp(observed_at).tz_convert(UTC)
    missing = [
        c for c in ("customer_id", "inference_time", *_PROCESS_INPUTS) if c not in predictions
    ]
    if missing:
        raise LabelsError(
            f"cannot simulate outcomes: the predictions lack {missing} (the generating process "
            f"of ml.sample_data reads {list(_PROCESS_INPUTS)})"
        )
    rows = predictions.reset_index(drop=True)
    n = len(rows)
    event_time = rows["inference_time"].astype("datetime64[ns, UTC]")
    if n and (event_time > when).any():
        latest = event_time.max().isoformat()
        raise LabelsError(
            f"observed_at {when.isoformat()} is before the latest prediction ({latest}): an "
            "outcome is observed after its snapshot"
        )
    rng = np.random.default_rng([seed, 17])
    raw = rows[list(_PROCESS_INPUTS)].copy()
    tenure = raw["tenure_months"].to_numpy(dtype=np.float64, na_value=np.nan)
    monthly = raw["monthly_charges"].to_numpy(dtype=np.float64, na_value=np.nan)
    drawn_senior = rng.random(n) < _SENIOR_SHARE
    drawn_ratio = rng.uniform(0.75, 1.1, n)
    if "is_senior" in rows:
        senior = rows["is_senior"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    else:
        senior = drawn_senior
    raw["is_senior"] = pd.array(senior, dtype="boolean")
    if "total_charges" in rows:
        raw["total_charges"] = rows["total_charges"].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        total = np.round(tenure * monthly * drawn_ratio, 2)
        raw["total_charges"] = np.where(tenure == 0, np.nan, total)
    probability = true_churn_probability(raw, concept_drift=concept_drift) if n else np.zeros(0)
    churned = (rng.random(n) < probability).astype(np.int64)
    contract = _codes(raw["contract_type"], CONTRACT_TYPES)
    if n and (contract < 0).any():
        raise LabelsError(f"contract_type outside {list(CONTRACT_TYPES)}: cannot simulate spend")
    spend = next_month_spend(
        np.random.default_rng([seed, 18]),
        monthly=monthly,
        usage=raw["data_usage_gb"].to_numpy(dtype=np.float64, na_value=np.nan),
        contract=contract,
        tickets=raw["support_tickets"].to_numpy(dtype=np.float64, na_value=np.nan),
        churned=churned,
        concept=concept_drift,
    )
    frame = pd.DataFrame(
        {
            "customer_id": rows["customer_id"].astype("string").to_numpy(),
            "event_time": event_time.to_numpy(),
            PARTITION_COLUMN: pd.Series([when] * n, dtype="datetime64[ns, UTC]").to_numpy(),
            LABEL: pd.array(churned, dtype="Int64"),
            SPEND_LABEL: spend,
        }
    )
    return frame.astype({c.name: c.pandas_dtype for c in CUSTOMER_OUTCOMES.columns})


def _codes(values: pd.Series, vocabulary: Sequence[str]) -> np.ndarray:
    index = {v: i for i, v in enumerate(vocabulary)}
    codes = [index.get(v, -1) if isinstance(v, str) else -1 for v in values.astype(object)]
    return np.asarray(codes, dtype=np.int64)
