"""ml.lake's local reader: a directory that mirrors a dataset's prefix, read by the lake's rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from ml import lake
from ml.lake import LakeError
from ml.sample_data import generate_customers
from ml.schema import CUSTOMERS_RAW
from tests.ml.test_lake import firehose_parquet

BUCKET = "raw-bucket"
UNCOMMITTED = "part-20250101T000000000000Z-0badf00d-00000.parquet"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def mirror(s3: Any, root: Path, prefix: str = "customers") -> Path:
    """Every object under `prefix/`, as a FastFile channel of it shows them."""
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", []):
        path = root / obj["Key"][len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
    return root


@pytest.fixture
def lake_copy(s3: Any, tmp_path: Path) -> Path:
    """Three partitions: batch + a streamed file + an uncommitted lake file; batch only; and one
    holding only a streamed file. A fourth directory holds only an uncommitted file."""
    lake.write_dataset(
        generate_customers(40, seed=1), CUSTOMERS_RAW, BUCKET, dt="2025-01-01", s3=s3
    )
    lake.write_dataset(
        generate_customers(30, seed=2), CUSTOMERS_RAW, BUCKET, dt="2025-01-02", s3=s3
    )
    extra = firehose_parquet(generate_customers(6, seed=3, id_offset=500))
    for key in (
        "customers/dt=2025-01-01/ingest-1-2025-01-01",
        "customers/dt=2025-01-03/ingest-1-2025-01-03",
        f"customers/dt=2025-01-01/{UNCOMMITTED}",
        f"customers/dt=2025-01-04/{UNCOMMITTED}",
    ):
        s3.put_object(Bucket=BUCKET, Key=key, Body=extra)
    return mirror(s3, tmp_path / "channel")


def test_the_local_reader_sees_what_the_bucket_reader_sees(s3: Any, lake_copy: Path) -> None:
    days = ["2025-01-01", "2025-01-02", "2025-01-03"]
    local = lake.read_local_dataset(CUSTOMERS_RAW, lake_copy, days)
    remote = lake.read_dataset(CUSTOMERS_RAW, BUCKET, s3=s3)
    pd.testing.assert_frame_equal(local, remote)
    assert len(local) == 40 + 6 + 30 + 6  # the uncommitted copies are not read

    with_dt = lake.read_local_dataset(
        CUSTOMERS_RAW, lake_copy, ["2025-01-03", "2025-01-02"], columns=["dt", "customer_id"]
    )
    assert list(with_dt.columns) == ["dt", "customer_id"]
    assert with_dt["dt"].tolist() == ["2025-01-02"] * 30 + ["2025-01-03"] * 6
    assert str(with_dt["dt"].dtype) == "string"


def test_local_partitions_follow_the_visibility_rules(lake_copy: Path) -> None:
    first = lake.local_partition(lake_copy, "customers", "2025-01-01")
    assert first is not None and first.write_id is not None and first.rows == 40
    assert [f.key for f in first.streamed] == ["customers/dt=2025-01-01/ingest-1-2025-01-01"]
    only_streamed = lake.local_partition(lake_copy, "customers", "2025-01-03")
    assert only_streamed is not None and only_streamed.write_id is None
    assert lake.local_partition(lake_copy, "customers", "2025-01-04") is None  # uncommitted
    assert lake.local_partition(lake_copy, "customers", "2025-01-05") is None  # absent
    assert lake.local_path(lake_copy, "customers", first.files[0].key).is_file()


def test_an_invisible_partition_or_a_missing_file_is_named(lake_copy: Path) -> None:
    with pytest.raises(
        LakeError,
        match=r"partition dt=2025-01-04 of 'customers' is not visible under .*: no "
        r"_manifest\.json and no streamed file in dt=2025-01-04/",
    ):
        lake.read_local_dataset(CUSTOMERS_RAW, lake_copy, ["2025-01-02", "2025-01-04"])
    listed = lake.local_partition(lake_copy, "customers", "2025-01-02")
    assert listed is not None
    lake.local_path(lake_copy, "customers", listed.files[0].key).unlink()
    with pytest.raises(LakeError, match=r"partition dt=2025-01-02 of 'customers' lists customers/"):
        lake.read_local_dataset(CUSTOMERS_RAW, lake_copy, ["2025-01-02"])
    with pytest.raises(LakeError, match=r"not under the prefix 'features'"):
        lake.local_path(lake_copy, "features", listed.files[0].key)
    with pytest.raises(LakeError, match="dt must be a date YYYY-MM-DD"):
        lake.read_local_dataset(CUSTOMERS_RAW, lake_copy, ["yesterday"])
