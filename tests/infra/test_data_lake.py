"""The data lake component under the offline recorder: key, buckets, catalog, Athena."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pytest

from components.data_lake import (
    KEY_ADMIN_ACTIONS,
    KEY_USE_ACTIONS,
    LOG_BUCKET,
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
    ZONES,
    DataLake,
    DataLakeArgs,
)
from components.s3 import ABORT_MULTIPART_DAYS
from ml.models import spec
from ml.schema import SHARED_DATASETS, Dataset
from mlplat.plan.engine import Plan, RecordedResource
from stacks.settings import Settings

NAME = "lake"
BUCKETS = (*ZONES, LOG_BUCKET)


def lake_args(settings: Settings, **overrides: Any) -> DataLakeArgs:
    """The args the stack's lake section gives (for the stack's models), with `overrides`."""
    args = settings.lake.args(models=[m.info for m in settings.models])
    return dataclasses.replace(args, **overrides)


def datasets(settings: Settings) -> dict[str, Dataset]:
    """The datasets the stack's lake catalogs, by name."""
    return {d.name: d for d in lake_args(settings).datasets}


# Plans are read-only: one recording per settings serves every test that only inspects it.
_PLANS: dict[Settings, Plan] = {}


def record_lake(record: Any, settings: Settings, seen: dict[str, Any] | None = None) -> Plan:
    if seen is None and settings in _PLANS:
        return _PLANS[settings]

    def program() -> None:
        lake = DataLake(NAME, lake_args(settings))
        if seen is not None:
            pulumi.Output.all(
                key_arn=lake.key_arn,
                key_id=lake.key_id,
                bucket_names=lake.bucket_names,
                bucket_arns=lake.bucket_arns,
                database_name=lake.database_name,
                table_names=lake.table_names,
                workgroup_name=lake.workgroup_name,
                results_location=lake.results_location,
            ).apply(seen.update)

    plan: Plan = record(program, settings=settings)
    if seen is None:
        _PLANS[settings] = plan
    return plan


def bucket(plan: Plan, zone: str) -> RecordedResource:
    return plan.named(f"{NAME}-{zone}")


def key_arn(plan: Plan) -> str:
    arn: str = plan.named(f"{NAME}-key").state["arn"]
    assert arn.startswith("arn:aws:kms:us-east-1:123456789012:key/")
    return arn


def of_bucket(plan: Plan, type_: str) -> dict[str, RecordedResource]:
    """Sub-resources of one type, by the zone of the bucket they configure."""
    zone_of = {bucket(plan, z).id: z for z in BUCKETS}
    found = {zone_of[r.inputs["bucket"]]: r for r in plan.of_type(type_)}
    assert len(found) == len(plan.of_type(type_)), "two resources configure one bucket"
    return found


def statements(document: str) -> dict[str, dict[str, Any]]:
    parsed = json.loads(document)
    assert parsed["Version"] == "2012-10-17"
    by_sid = {s["Sid"]: s for s in parsed["Statement"]}
    assert len(by_sid) == len(parsed["Statement"]), "Sids must be unique"
    return by_sid


# --- inventory -------------------------------------------------------------------------------


def test_dev_inventory_counts_types_and_parents(record, settings_for):
    plan = record_lake(record, settings_for("dev"))
    counts: dict[str, int] = {}
    for r in plan.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    assert counts == {
        "mlplatform:lake:DataLake": 1,
        "aws:kms/key:Key": 1,
        "aws:kms/alias:Alias": 1,
        "aws:s3/bucket:Bucket": 7,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 7,
        "aws:s3/bucketVersioning:BucketVersioning": 7,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 7,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 7,
        "aws:s3/bucketPolicy:BucketPolicy": 7,
        "aws:s3/bucketLogging:BucketLogging": 6,  # every zone logs; the log bucket does not
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 7,
        "aws:glue/catalogDatabase:CatalogDatabase": 1,
        # raw, curated, outcomes; churn's features, predictions
        "aws:glue/catalogTable:CatalogTable": 5,
        "aws:athena/workgroup:Workgroup": 1,
    }
    component = plan.named(NAME)
    assert not component.custom
    assert all(r.parent == component.urn for r in plan.resources if r is not component)


def test_object_lock_adds_a_governance_configuration_on_raw_only(record, settings_for):
    plan = record_lake(record, settings_for("dev", rawObjectLock=True))
    locks = plan.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert len(locks) == 1
    assert locks[0].name == f"{NAME}-raw-object-lock"
    assert locks[0].inputs["bucket"] == bucket(plan, "raw").id
    assert locks[0].inputs["rule"] == {"defaultRetention": {"mode": "GOVERNANCE", "days": 365}}
    assert bucket(plan, "raw").inputs["objectLockEnabled"] is True
    versioning = plan.named(f"{NAME}-raw-versioning")
    assert locks[0].options["dependsOn"] == [versioning.urn]
    for zone in BUCKETS:
        if zone != "raw":
            assert "objectLockEnabled" not in bucket(plan, zone).inputs


def test_no_object_lock_when_off(record, settings_for):
    plan = record_lake(record, settings_for("dev"))
    assert plan.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration") == []
    assert all("objectLockEnabled" not in bucket(plan, z).inputs for z in BUCKETS)


def test_prod_has_object_lock_by_default(record, settings_for):
    plan = record_lake(record, settings_for("prod"))
    assert bucket(plan, "raw").inputs["objectLockEnabled"] is True
    assert (
        len(plan.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")) == 1
    )


def test_stateful_logical_names_stay_put(record, settings_for):
    plan = record_lake(record, settings_for("prod"))
    stateful = {
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:glue/catalogDatabase:CatalogDatabase",
        "aws:glue/catalogTable:CatalogTable",
        "aws:athena/workgroup:Workgroup",
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    }
    assert sorted(r.name for r in plan.resources if r.type in stateful) == sorted(
        [
            "lake-key",
            "lake-raw",
            "lake-curated",
            "lake-features",
            "lake-models",
            "lake-predictions",
            "lake-results",
            "lake-logs",
            "lake-raw-object-lock",
            "lake-db",
            "lake-table-customers",
            "lake-table-customer-outcomes",
            "lake-table-customers-curated",
            "lake-table-predictions",
            "lake-table-customer-features",
            "lake-athena",
        ]
    )


def test_every_taggable_resource_carries_the_stack_tags(record, settings_for):
    settings = settings_for("staging")
    plan = record_lake(record, settings)
    taggable = [
        r
        for r in plan.resources
        if r.custom
        and r.type
        in {
            "aws:kms/key:Key",
            "aws:s3/bucket:Bucket",
            "aws:glue/catalogDatabase:CatalogDatabase",
            "aws:athena/workgroup:Workgroup",
        }
    ]
    assert len(taggable) == 10
    for r in taggable:
        expected = dict(settings.tags)
        if r.type == "aws:s3/bucket:Bucket":
            expected["zone"] = r.name.removeprefix(f"{NAME}-")
        assert r.inputs["tags"] == expected, r.name


# --- key -------------------------------------------------------------------------------------


def test_key_rotation_deletion_window_and_alias(record, settings_for):
    plan = record_lake(record, settings_for("dev", kmsDeletionWindowDays=7))
    key = plan.named(f"{NAME}-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 7
    alias = plan.named(f"{NAME}-key-alias")
    assert alias.inputs["targetKeyId"] == key.state["keyId"]
    assert alias.inputs["namePrefix"] == "alias/lake-"


def test_key_policy_lets_only_the_lake_services_use_the_key(record, settings_for):
    plan = record_lake(record, settings_for("dev"))
    policy = statements(plan.named(f"{NAME}-key").inputs["policy"])
    root = {"AWS": "arn:aws:iam::123456789012:root"}
    reason = "WildcardOnlyAKeyPolicyNamesItsOwnKeyAsStar"
    assert set(policy) == {
        reason + s
        for s in (
            "KeyAdministration",
            "UseThroughLakeServices",
            "GrantsForAwsResources",
            "CloudWatchLogsOfThisAccount",
        )
    }
    for statement in policy.values():
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == ["*"]  # in a key policy: this key
        assert not any(a == "*" or a.endswith(":*") for a in statement["Action"])

    admin = policy[reason + "KeyAdministration"]
    assert admin["Principal"] == root
    assert admin["Action"] == sorted(KEY_ADMIN_ACTIONS)
    assert "kms:PutKeyPolicy" in admin["Action"]  # the account can always fix the policy
    assert not set(admin["Action"]) & {
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:CreateGrant",
        "kms:ReEncryptFrom",
    }
    assert "Condition" not in admin

    use = policy[reason + "UseThroughLakeServices"]
    assert use["Principal"] == root
    assert use["Action"] == sorted(KEY_USE_ACTIONS)
    assert use["Condition"] == {
        "StringEquals": {
            "kms:CallerAccount": "123456789012",
            "kms:ViaService": [
                "s3.us-east-1.amazonaws.com",
                "firehose.us-east-1.amazonaws.com",
                "sagemaker.us-east-1.amazonaws.com",
                "ecr.us-east-1.amazonaws.com",
            ],
        }
    }

    grants = policy[reason + "GrantsForAwsResources"]
    assert grants["Principal"] == root
    assert grants["Action"] == ["kms:CreateGrant"]
    assert grants["Condition"] == {
        "StringEquals": {
            "kms:CallerAccount": "123456789012",
            "kms:ViaService": [
                "firehose.us-east-1.amazonaws.com",
                "sagemaker.us-east-1.amazonaws.com",
                "ecr.us-east-1.amazonaws.com",
            ],
        },
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }

    logs = policy[reason + "CloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert logs["Action"] == sorted(KEY_USE_ACTIONS)
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"
        }
    }


def test_key_policy_follows_account_and_region(record, settings_for):
    settings = settings_for("staging", accountId="210987654321", **{"aws:region": "eu-west-1"})
    plan = record_lake(record, settings)
    document = plan.named(f"{NAME}-key").inputs["policy"]
    assert "us-east-1" not in document and "123456789012" not in document
    policy = statements(document)
    logs = policy["WildcardOnlyAKeyPolicyNamesItsOwnKeyAsStarCloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}


# --- buckets ---------------------------------------------------------------------------------


def test_zone_buckets_use_the_lake_key_with_bucket_keys(record, settings_for):
    plan = record_lake(record, settings_for("dev"))
    encryption = of_bucket(
        plan,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    assert set(encryption) == set(BUCKETS)
    for zone in ZONES:
        assert encryption[zone].inputs["rules"] == [
            {
                "applyServerSideEncryptionByDefault": {
                    "sseAlgorithm": "aws:kms",
                    "kmsMasterKeyId": key_arn(plan),
                },
                "bucketKeyEnabled": True,
            }
        ], zone
    # Server access log targets support SSE-S3 only.
    assert encryption[LOG_BUCKET].inputs["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]


def test_every_bucket_is_versioned_private_and_acl_free(record, settings_for):
    plan = record_lake(record, settings_for("dev"))
    versioning = of_bucket(plan, "aws:s3/bucketVersioning:BucketVersioning")
    public = of_bucket(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    ownership = of_bucket(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    for zone in BUCKETS:
        assert versioning[zone].inputs["versioningConfiguration"] == {"status": "Enabled"}
        assert {k: v for k, v in public[zone].inputs.items() if k != "bucket"} == {
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        }
        assert ownership[zone].inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
        assert "acl" not in bucket(plan, zone).inputs


def test_zone_bucket_policies_deny_plain_http_and_foreign_encryption(record, settings_for):
    plan = record_lake(record, settings_for("dev"))
    policies = of_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy")
    lake_key = key_arn(plan)
    for zone in ZONES:
        arn = bucket(plan, zone).state["arn"]
        policy = statements(policies[zone].inputs["policy"])
        assert set(policy) == {
            "DenyInsecureTransport",
            "DenyNonKmsEncryption",
            "DenyOtherKmsKeys",
            "DenyKmsWithoutLakeKey",
        }
        assert all(s["Effect"] == "Deny" and s["Principal"] == "*" for s in policy.values())
        assert policy["DenyInsecureTransport"]["Action"] == "s3:*"
        assert policy["DenyInsecureTransport"]["Resource"] == [arn, f"{arn}/*"]
        assert policy["DenyInsecureTransport"]["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }
        for sid in ("DenyNonKmsEncryption", "DenyOtherKmsKeys", "DenyKmsWithoutLakeKey"):
            assert policy[sid]["Action"] == ["s3:PutObject"]
            assert policy[sid]["Resource"] == [f"{arn}/*"]
        assert policy["DenyNonKmsEncryption"]["Condition"] == {
            "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}
        }
        assert policy["DenyOtherKmsKeys"]["Condition"] == {
            "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": lake_key}
        }
        assert policy["DenyKmsWithoutLakeKey"]["Condition"] == {
            "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
            "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
        }
        # Written after the public access block, never racing it.
        assert policies[zone].options["dependsOn"] == [
            plan.named(f"{NAME}-{zone}-public-access").urn
        ]


def test_zone_buckets_log_to_the_log_bucket_under_their_own_prefix(record, settings_for):
    plan = record_lake(record, settings_for("dev"))
    logging = of_bucket(plan, "aws:s3/bucketLogging:BucketLogging")
    assert set(logging) == set(ZONES)
    for zone in ZONES:
        assert logging[zone].inputs["targetBucket"] == bucket(plan, LOG_BUCKET).id
        assert logging[zone].inputs["targetPrefix"] == f"{zone}/"


def test_log_bucket_policy_admits_only_s3_log_delivery_for_the_zones(record, settings_for):
    plan = record_lake(record, settings_for("dev"))
    policy = statements(
        of_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy")[LOG_BUCKET].inputs["policy"]
    )
    logs_arn = bucket(plan, LOG_BUCKET).state["arn"]
    assert set(policy) == {"DenyInsecureTransport", "S3ServerAccessLogDelivery"}
    assert policy["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    delivery = policy["S3ServerAccessLogDelivery"]
    assert delivery["Effect"] == "Allow"
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == ["s3:PutObject"]
    assert delivery["Resource"] == [f"{logs_arn}/{zone}/*" for zone in ZONES]
    assert delivery["Condition"] == {
        "ArnLike": {"aws:SourceArn": [bucket(plan, z).state["arn"] for z in ZONES]},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }


def test_lifecycle_days_come_from_settings(record, settings_for):
    plan = record_lake(
        record, settings_for("dev", rawIaDays=45, rawArchiveDays=200, noncurrentVersionDays=14)
    )
    lifecycle = of_bucket(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert set(lifecycle) == set(BUCKETS)
    housekeeping = {
        "id": "housekeeping",
        "status": "Enabled",
        "filter": {},
        "abortIncompleteMultipartUpload": {"daysAfterInitiation": ABORT_MULTIPART_DAYS},
        "noncurrentVersionExpiration": {"noncurrentDays": 14},
    }
    for zone in BUCKETS:
        rules = {r["id"]: r for r in lifecycle[zone].inputs["rules"]}
        assert rules["housekeeping"] == housekeeping, zone
        assert lifecycle[zone].options["dependsOn"] == [plan.named(f"{NAME}-{zone}-versioning").urn]
        expected = {"housekeeping"} | {
            "raw": {"raw-tiering"},
            "results": {"expire-query-results"},
        }.get(zone, set())
        assert set(rules) == expected, zone
    raw = {r["id"]: r for r in lifecycle["raw"].inputs["rules"]}
    assert raw["raw-tiering"] == {
        "id": "raw-tiering",
        "status": "Enabled",
        "filter": {},
        "transitions": [
            {"days": 45, "storageClass": "STANDARD_IA"},
            {"days": 200, "storageClass": "GLACIER"},
        ],
    }
    results = {r["id"]: r for r in lifecycle["results"].inputs["rules"]}
    assert results["expire-query-results"]["expiration"] == {"days": 30}


def test_prod_protects_and_retains_key_buckets_and_catalog(record, settings_for):
    plan = record_lake(record, settings_for("prod"))
    protected = sorted(r.name for r in plan.resources if r.options["protect"])
    retained = sorted(r.name for r in plan.resources if r.options["retainOnDelete"])
    expected = sorted(
        [
            f"{NAME}-key",
            *(f"{NAME}-{z}" for z in BUCKETS),
            f"{NAME}-db",
            *(f"{NAME}-table-{d.replace('_', '-')}" for d in datasets(settings_for("prod"))),
        ]
    )
    assert protected == expected
    assert retained == expected
    assert all(bucket(plan, z).inputs["forceDestroy"] is False for z in BUCKETS)


@pytest.mark.parametrize("environment", ["dev", "staging", "local"])
def test_non_prod_protects_nothing(record, settings_for, environment):
    plan = record_lake(record, settings_for(environment))
    assert [r.name for r in plan.resources if r.options["protect"]] == []
    assert [r.name for r in plan.resources if r.options["retainOnDelete"]] == []


def test_force_destroy_comes_from_settings(record, settings_for):
    plan = record_lake(record, settings_for("dev", forceDestroy=True))
    assert all(bucket(plan, z).inputs["forceDestroy"] is True for z in BUCKETS)
    assert plan.named(f"{NAME}-athena").inputs["forceDestroy"] is True


# --- catalog and query -----------------------------------------------------------------------


def test_glue_tables_are_the_schema_datasets(record, settings_for):
    plan = record_lake(record, settings_for("staging"))
    database = plan.named(f"{NAME}-db")
    assert database.inputs["name"] == "ml_platform_staging"
    tables = {r.inputs["name"]: r for r in plan.of_type("aws:glue/catalogTable:CatalogTable")}
    expected = datasets(settings_for("staging"))
    assert set(tables) == set(expected)
    for name, dataset in expected.items():
        table = tables[name].inputs
        assert table["databaseName"] == "ml_platform_staging"
        assert table["tableType"] == "EXTERNAL_TABLE"
        descriptor = table["storageDescriptor"]
        assert [(c["name"], c["type"]) for c in descriptor["columns"]] == [
            (c.name, c.type) for c in dataset.columns
        ]
        assert table["partitionKeys"] == [
            {"name": "dt", "type": "string", "comment": "Partition day, YYYY-MM-DD (UTC)"}
        ]
        zone_bucket = bucket(plan, dataset.zone).id
        assert descriptor["location"] == f"s3://{zone_bucket}/{dataset.prefix}/"
        assert descriptor["inputFormat"] == PARQUET_INPUT_FORMAT
        assert descriptor["outputFormat"] == PARQUET_OUTPUT_FORMAT
        assert descriptor["serDeInfo"]["serializationLibrary"] == PARQUET_SERDE
        params = table["parameters"]
        assert params["classification"] == "parquet"
        assert params["projection.enabled"] == "true"
        assert params["projection.dt.type"] == "date"
        assert params["projection.dt.format"] == "yyyy-MM-dd"
        assert params["storage.location.template"] == (
            f"s3://{zone_bucket}/{dataset.prefix}/dt=${{dt}}/"
        )


def test_athena_workgroup_enforces_kms_results_and_a_scan_cap(record, settings_for):
    seen: dict[str, Any] = {}
    plan = record_lake(record, settings_for("dev", athenaBytesScannedCutoff=50_000_000), seen)
    workgroup = plan.named(f"{NAME}-athena").inputs
    results = bucket(plan, "results").id
    assert workgroup["configuration"] == {
        "enforceWorkgroupConfiguration": True,
        "publishCloudwatchMetricsEnabled": True,
        "bytesScannedCutoffPerQuery": 50_000_000,
        "resultConfiguration": {
            "outputLocation": f"s3://{results}/query-results/",
            "encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKeyArn": key_arn(plan)},
        },
    }
    assert seen["results_location"] == f"s3://{results}/query-results/"


def test_outputs_name_the_key_buckets_catalog_and_workgroup(record, settings_for):
    seen: dict[str, Any] = {}
    plan = record_lake(record, settings_for("dev"), seen)
    key = plan.named(f"{NAME}-key")
    assert seen["key_arn"] == key.state["arn"]
    assert seen["key_id"] == key.state["keyId"] == key.id
    assert seen["bucket_names"] == {z: bucket(plan, z).id for z in BUCKETS}
    assert seen["bucket_arns"] == {z: f"arn:aws:s3:::{bucket(plan, z).id}" for z in BUCKETS}
    assert seen["database_name"] == "ml_platform_dev"
    assert seen["table_names"] == {name: name for name in datasets(settings_for("dev"))}
    assert seen["workgroup_name"] == plan.named(f"{NAME}-athena").state["name"]


# --- bad inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"database_name": "ml-platform"}, "database_name 'ml-platform': use lowercase letters"),
        ({"database_name": ""}, "database_name '': use lowercase letters"),
        ({"kms_deletion_window_days": 6}, "kms_deletion_window_days 6: KMS accepts 7 to 30 days"),
        ({"kms_deletion_window_days": 31}, "kms_deletion_window_days 31: KMS accepts 7 to 30 days"),
        (
            {"raw_ia_days": 29, "raw_archive_days": 90},
            "raw_ia_days 29: S3 moves objects to Standard-IA after 30 days at the earliest",
        ),
        (
            {"raw_ia_days": 60, "raw_archive_days": 89},
            r"raw_archive_days 89: must be at least raw_ia_days \+ 30 = 90",
        ),
        ({"noncurrent_version_days": 0}, "noncurrent_version_days 0: must be >= 1"),
        ({"raw_object_lock_days": 0}, "raw_object_lock_days 0: must be >= 1"),
        (
            {"athena_bytes_scanned_cutoff": 9_999_999},
            "athena_bytes_scanned_cutoff 9999999: Athena accepts 10000000 bytes",
        ),
        ({"results_expiration_days": 0}, "results_expiration_days 0: must be >= 1"),
        (
            {"protect": True, "force_destroy": True},
            "force_destroy with protect: protected lake buckets are never force-destroyed",
        ),
    ],
)
def test_bad_args_are_refused_with_the_reason(settings_for, overrides, message):
    with pytest.raises(ValueError, match="invalid DataLakeArgs: .*" + message):
        lake_args(settings_for("dev"), **overrides)


def test_every_problem_is_reported_at_once(settings_for):
    with pytest.raises(ValueError, match="invalid DataLakeArgs") as info:
        lake_args(settings_for("dev"), kms_deletion_window_days=3, noncurrent_version_days=0)
    assert "kms_deletion_window_days 3" in str(info.value)
    assert "noncurrent_version_days 0" in str(info.value)


def test_a_dataset_partitioned_otherwise_is_refused_before_any_resource(settings_for):
    customers = SHARED_DATASETS[0]
    odd = Dataset("hourly", "raw", "partitioned by hour", customers.columns, ("hour",))
    with pytest.raises(ValueError) as info:
        lake_args(settings_for("dev"), datasets=(*SHARED_DATASETS, odd))
    assert str(info.value) == (
        "invalid DataLakeArgs: dataset 'hourly': the lake catalogs datasets partitioned by "
        "('dt',) only, not ('hour',)"
    )


def test_two_datasets_of_one_name_are_refused(settings_for):
    customers = SHARED_DATASETS[0]
    twin = Dataset(customers.name, "curated", "another table of that name", customers.columns)
    with pytest.raises(ValueError, match=r"datasets: \['customers'\] named twice"):
        lake_args(settings_for("dev"), datasets=(*SHARED_DATASETS, twin))


def test_every_model_gets_its_own_tables_on_the_shared_ones(record, settings_for):
    settings = settings_for("dev", models=[{"name": "churn"}, {"name": "spend"}])
    plan = record_lake(record, settings)
    tables = {r.inputs["name"] for r in plan.of_type("aws:glue/catalogTable:CatalogTable")}
    own = {d.name for m in ("churn", "spend") for d in spec(m).datasets}
    assert tables == {d.name for d in SHARED_DATASETS} | own
    assert len(own) == 4  # each model's features and predictions: none shared between them
    # the shared tables and churn's keep the logical names a one-model stack gave them
    names = {r.name for r in plan.of_type("aws:glue/catalogTable:CatalogTable")}
    single = {r.name for r in record_lake(record, settings_for("dev")).resources}
    assert single & names == {
        f"{NAME}-table-{n.replace('_', '-')}" for n in datasets(settings_for("dev"))
    }
