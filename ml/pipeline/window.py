"""The window step: which raw partitions this execution trains on, one work item each.

`--start`/`--end` are the pipeline's WindowStart/WindowEnd (dates, or "" for the default): the
end defaults to the UTC date the execution started (`--as-of`, SageMaker's
Execution.StartDateTime), the start to `--days` days of data up to and including the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ml.lake import list_partitions
from ml.pipeline.common import StepError, WorkItem, dataset_named, write_work_items


@dataclass(frozen=True, slots=True)
class Window:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise StepError(f"{option} {value!r} is not a date YYYY-MM-DD") from None


def _as_of(value: str) -> date:
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StepError(
            f"--as-of {value!r} is not an ISO-8601 date or time (the execution's start)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def select_window(start: str, end: str, days: str, as_of: str) -> Window:
    """The inclusive window the parameters ask for (see the module docstring)."""
    last = _date(end, "--end") if end.strip() else _as_of(as_of)
    if start.strip():
        first = _date(start, "--start")
    else:
        try:
            count = int(days)
        except ValueError:
            raise StepError(f"--days {days!r} is not a whole number of days") from None
        if count < 1:
            raise StepError(f"--days {count}: the window needs at least 1 day")
        first = last - timedelta(days=count - 1)
    if first > last:
        raise StepError(f"empty window: --start {first} is after --end {last}")
    return Window(first, last)


def run_window(
    *,
    raw_bucket: str,
    dataset: str,
    start: str,
    end: str,
    days: str,
    as_of: str,
    out: Path,
    s3: Any,
) -> list[WorkItem]:
    """List the visible raw partitions of the window and write one work item each to `out`.

    Raises `StepError` when the window holds no partition: there is nothing to train on.
    """
    window = select_window(start, end, days, as_of)
    schema = dataset_named(dataset, "--dataset")
    partitions = list_partitions(
        raw_bucket, schema.prefix, start=window.start, end=window.end, s3=s3
    )
    if not partitions:
        raise StepError(
            f"no partition of {schema.name!r} in s3://{raw_bucket}/{schema.prefix}/ between "
            f"{window.start} and {window.end} ({window.days} days): nothing to train on"
        )
    items = [
        WorkItem(
            dataset=schema.name,
            bucket=raw_bucket,
            prefix=schema.prefix,
            dt=p.dt,
            window_start=window.start.isoformat(),
            window_end=window.end.isoformat(),
            # streamed files have no row count until they are read
            rows=None if p.streamed else p.rows,
        )
        for p in partitions
    ]
    write_work_items(out, items)
    return items
