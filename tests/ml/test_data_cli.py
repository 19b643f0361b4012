"""`mlplat data list|ingest` against moto (in process, and a moto server via --endpoint-url)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import typer
from moto import mock_aws
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from ml import catalog, lake
from ml.lake_schema import lake_datasets
from ml.outputs import PlatformOutputs
from ml.sample_data import generate_customers
from ml.schema import CUSTOMERS_CURATED, CUSTOMERS_RAW, DATASETS
from mlplat.cli.commands import data as data_commands
from tests.conftest import make_outputs

REGION = "us-east-1"


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    data_commands.register(app)
    return app


APP = make_app()
RUNNER = CliRunner()


def provision(outputs_path: Path, endpoint_url: str | None = None) -> PlatformOutputs:
    """Buckets, KMS key, Glue database and tables as the lake component makes them."""
    kwargs: dict[str, Any] = {"region_name": REGION, "endpoint_url": endpoint_url}
    s3 = boto3.client("s3", **kwargs)
    glue = boto3.client("glue", **kwargs)
    key = boto3.client("kms", **kwargs).create_key()["KeyMetadata"]["Arn"]
    outputs = make_outputs(
        stack="local",
        environment="dev",
        region=REGION,
        account_id="123456789012",
        tags={"project": "ml-platform"},
        lake_kms_key_arn=key,
        raw_bucket="lake-raw",
        curated_bucket="lake-curated",
        features_bucket="lake-features",
        models_bucket="lake-models",
        predictions_bucket="lake-predictions",
        glue_database="lake",
        athena_workgroup="wg",
        ingest_stream_name="ingest",
    )
    for zone in ("raw", "curated", "features", "models", "predictions"):
        s3.create_bucket(Bucket=lake.zone_bucket(outputs, zone))
    glue.create_database(DatabaseInput={"Name": "lake"})
    for dataset in DATASETS.values():
        location = catalog.dataset_location(lake.zone_bucket(outputs, dataset.zone), dataset)
        glue.create_table(
            DatabaseName="lake", TableInput=catalog.glue_table_input(dataset, location)
        )
    outputs_path.write_text(json.dumps(outputs.to_json()))
    return outputs


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, PlatformOutputs, Any]]:
    with mock_aws():
        path = tmp_path / "outputs.json"
        outputs = provision(path)
        yield path, outputs, boto3.client("s3", region_name=REGION)


def all_keys(s3: Any) -> list[str]:
    found: list[str] = []
    for bucket in s3.list_buckets()["Buckets"]:
        found += [o["Key"] for o in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])]
    return found


def test_list_shows_every_shipped_dataset(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    path, _, _ = env
    listing = tmp_path / "list.json"
    result = RUNNER.invoke(APP, ["data", "list", "--outputs", str(path), "--json", str(listing)])
    assert result.exit_code == 0, result.output
    for name in DATASETS:
        assert name in result.stdout
    data = json.loads(listing.read_text())
    assert [d["name"] for d in data] == sorted(DATASETS)
    raw = next(d for d in data if d["name"] == "customers")
    assert raw["location"] == "s3://lake-raw/customers/"
    assert [c["name"] for c in raw["columns"]] == list(CUSTOMERS_RAW.column_names)
    assert raw["partitionKeys"] == ["dt"]
    assert (raw["partitions"], raw["rowCount"]) == ([], None)


def test_ingest_csv_commits_encrypted_partitions_and_catalogs_them(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    path, outputs, s3 = env
    frame = generate_customers(80, seed=1)
    csv = tmp_path / "customers.csv"
    frame.to_csv(csv, index=False)

    result = RUNNER.invoke(
        APP,
        [
            "data",
            "ingest",
            str(csv),
            "--dataset",
            "customers",
            "--outputs",
            str(path),
            "--rows-per-file",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    days = sorted(set(frame["event_time"].dt.strftime("%Y-%m-%d")))
    assert "customers: 80 rows in" in result.stdout
    assert f"{len(days)} partition(s) {days[0]} .. {days[-1]} -> s3://lake-raw/customers/" in (
        result.stdout
    )
    assert f"catalog: {len(days)} new partition(s) in lake.customers" in result.stdout

    back = lake.read_dataset(CUSTOMERS_RAW, "lake-raw", s3=s3)
    assert len(back) == 80
    assert sorted(back["customer_id"]) == sorted(frame["customer_id"])
    for key in all_keys(s3):
        assert key.startswith("customers/dt=")
        head = s3.head_object(Bucket="lake-raw", Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == outputs.lake_kms_key_arn

    listing = RUNNER.invoke(APP, ["data", "list", "--outputs", str(path)])
    assert listing.exit_code == 0
    row = next(line for line in listing.stdout.splitlines() if "│ customers " in line)
    assert f"│ {len(days)} " in row
    assert "│ 80 " in row


def test_ingest_parquet_goes_to_the_dataset_zone_bucket(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    path, _, s3 = env
    file = tmp_path / "curated.parquet"
    generate_customers(30, seed=2).to_parquet(file)
    result = RUNNER.invoke(
        APP,
        [
            "data",
            "ingest",
            str(file),
            "-d",
            "customers_curated",
            "--outputs",
            str(path),
            "--dt",
            "2025-02-01",
            "--no-catalog",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "catalog:" not in result.stdout
    assert [p.dt for p in lake.list_partitions("lake-curated", "customers_curated", s3=s3)] == [
        "2025-02-01"
    ]
    assert len(lake.read_dataset(CUSTOMERS_CURATED, "lake-curated", s3=s3)) == 30
    assert s3.list_objects_v2(Bucket="lake-raw").get("KeyCount") == 0


def bad_ingest(
    env: tuple[Path, PlatformOutputs, Any], file: Path, dataset: str = "customers", *extra: str
) -> str:
    path, _, s3 = env
    result = RUNNER.invoke(
        APP, ["data", "ingest", str(file), "--dataset", dataset, "--outputs", str(path), *extra]
    )
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert all_keys(s3) == []  # nothing written anywhere
    return result.stderr


def test_ingest_rejects_mismatched_columns(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    file = tmp_path / "bad.csv"
    generate_customers(5).drop(columns=["region"]).assign(colour="red").to_csv(file, index=False)
    stderr = bad_ingest(env, file)
    assert "data does not match dataset 'customers'" in stderr
    assert "missing column(s): region" in stderr
    assert "unexpected column(s): colour" in stderr


def test_ingest_rejects_a_wrong_dtype(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    file = tmp_path / "bad.csv"
    frame = generate_customers(5)
    frame["support_tickets"] = ["1", "2", "lots", "3", "4"]
    frame.to_csv(file, index=False)
    stderr = bad_ingest(env, file)
    assert (
        "column 'support_tickets': expected bigint (Int64), got str with non-numeric values 'lots'"
    ) in stderr


def test_ingest_rejects_an_empty_file(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    file = tmp_path / "empty.csv"
    file.write_text("")
    assert "empty.csv is empty: no header and no rows" in bad_ingest(env, file)
    header = tmp_path / "header.csv"
    header.write_text(",".join(CUSTOMERS_RAW.column_names) + "\n")
    assert "no rows: nothing to write" in bad_ingest(env, header)


def test_ingest_rejects_an_unknown_dataset(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    file = tmp_path / "c.csv"
    generate_customers(5).to_csv(file, index=False)
    stderr = bad_ingest(env, file, "customer")
    assert stderr.strip() == (
        "error: unknown dataset 'customer'; did you mean 'customers'? known datasets: "
        + ", ".join(sorted(lake_datasets()))
    )
    assert set(DATASETS) < set(lake_datasets())


def test_ingest_rejects_a_bad_partition_date(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    file = tmp_path / "c.csv"
    generate_customers(5).to_csv(file, index=False)
    assert "dt must be a date YYYY-MM-DD, got '2025-02-30'" in bad_ingest(
        env, file, "customers", "--dt", "2025-02-30"
    )


def test_outputs_source_must_be_given_once(tmp_path: Path) -> None:
    none = RUNNER.invoke(APP, ["data", "list"])
    assert none.exit_code == 2
    assert "pass exactly one of --outputs FILE or --stack NAME" in none.stderr
    both = RUNNER.invoke(APP, ["data", "list", "--outputs", "x.json", "--stack", "dev"])
    assert both.exit_code == 2
    assert "pass exactly one of --outputs FILE or --stack NAME" in both.stderr
    partial = tmp_path / "o.json"
    partial.write_text(json.dumps({"stack": "dev"}))
    incomplete = RUNNER.invoke(APP, ["data", "list", "--outputs", str(partial)])
    assert incomplete.exit_code == 2
    assert "platform outputs lack environment, region" in incomplete.stderr


def test_stack_needs_the_pulumi_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` on it
    result = RUNNER.invoke(APP, ["data", "list", "--stack", "dev"])
    assert result.exit_code == 2
    assert "the Pulumi CLI is not installed" in result.stderr


def test_missing_glue_database_is_a_clear_error(
    env: tuple[Path, PlatformOutputs, Any], tmp_path: Path
) -> None:
    _, outputs, _ = env
    other = tmp_path / "other.json"
    other.write_text(json.dumps(outputs.to_json() | {"glue_database": "nope"}))
    result = RUNNER.invoke(APP, ["data", "list", "--outputs", str(other)])
    assert result.exit_code == 2
    assert "Glue database 'nope' does not exist" in result.stderr


def test_endpoint_url_reaches_a_moto_server(tmp_path: Path) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        path = tmp_path / "outputs.json"
        provision(path, endpoint)
        file = tmp_path / "c.csv"
        generate_customers(20, seed=3).to_csv(file, index=False)
        ingest = RUNNER.invoke(
            APP,
            [
                "data",
                "ingest",
                str(file),
                "--dataset",
                "customers",
                "--outputs",
                str(path),
                "--endpoint-url",
                endpoint,
            ],
        )
        assert ingest.exit_code == 0, ingest.output
        listing = tmp_path / "list.json"
        shown = RUNNER.invoke(
            APP,
            [
                "data",
                "list",
                "--outputs",
                str(path),
                "--endpoint-url",
                endpoint,
                "--json",
                str(listing),
            ],
        )
        assert shown.exit_code == 0, shown.output
        raw = next(d for d in json.loads(listing.read_text()) if d["name"] == "customers")
        assert raw["rowCount"] == 20
        assert raw["rowCountSource"] == "manifests"
        back = lake.read_dataset(CUSTOMERS_RAW, "lake-raw", endpoint_url=endpoint, region=REGION)
        assert isinstance(back, pd.DataFrame)
        assert len(back) == 20
    finally:
        server.stop()
