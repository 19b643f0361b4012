"""ModelPipeline: the model's SageMaker Pipeline, its step roles, schedule and failure page."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from components import pipeline_definition as definition_module
from components.model_pipeline import (
    ModelPipeline,
    ModelPipelineArgs,
    default_pipeline_name,
    failure_rule_name,
)
from components.pipeline_definition import STEP_KINDS, pipeline_definition, steps_of
from ml.backtest import recommended_max_age_days
from ml.contracts import (
    EVALUATION_OUTPUT_PATH,
    GATE_PROPERTY_FILE,
    MODEL_ENV,
    MODEL_INPUT_PATH,
    PIPELINE_ENTRYPOINT,
    WORK_INPUT_PATH,
    WORK_OUTPUT_PATH,
    register_metadata,
)
from ml.images import sklearn_image_uri
from mlplat.plan.engine import Plan, RecordedResource
from stacks.settings import Settings, SettingsError
from tests.conftest import make_config, make_settings

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/platform:0.1.0"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/platform"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:on-call"
VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0aaa", "subnet-0bbb"]
SG = "sg-0123456789abcdef0"
GROUP = "ml-platform-prod-churn"
PREFIX = "models/ml-platform-prod-churn"
NAMES = {z: f"lake-{z}" for z in ("raw", "curated", "features", "models", "predictions")}
ARNS = {z: f"arn:aws:s3:::{n}" for z, n in NAMES.items()}
WORK = f"{ARNS['models']}/{PREFIX}/pipeline/*"
ROLE_KINDS = (*STEP_KINDS, "pipeline", "schedule")

# churn's default retraining: every half of the maximum age its committed backtest recommends
CHURN_RETRAINING = f"rate({recommended_max_age_days('churn') // 2} days)"


def args_for(settings: Settings, **overrides: Any) -> ModelPipelineArgs:
    args = settings.models[0].pipeline.args(
        image_uri=IMAGE,
        image_repository_arn=REPO,
        lake_bucket_names=NAMES,
        lake_bucket_arns=ARNS,
        kms_key_arn=KEY,
        vpc_id=VPC,
        subnet_ids=SUBNETS,
        security_group_ids=[SG],
        group_name=GROUP,
        artifacts_prefix=PREFIX,
        topic_arn=TOPIC,
    )
    return replace(args, **overrides)


def program(settings: Settings, **overrides: Any) -> Callable[[], None]:
    def run() -> None:
        ModelPipeline("churn", args_for(settings, **overrides))

    return run


@pytest.fixture(scope="module")
def prod_settings() -> Settings:
    return make_settings("prod")


@pytest.fixture(scope="module")
def plan(prod_settings: Settings) -> Plan:
    """Recorded once for the module (a fresh runtime of its own): the tests only read it."""
    from mlplat.plan import engine

    return engine.run(prod_settings, make_config("prod"), program=program(prod_settings))


def definition_of(plan: Plan) -> dict[str, Any]:
    (pipeline,) = plan.of_type("aws:sagemaker/pipeline:Pipeline")
    loaded: dict[str, Any] = json.loads(pipeline.inputs["pipelineDefinition"])
    return loaded


def steps(plan: Plan) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in steps_of(definition_of(plan))}


def role_arn(plan: Plan, kind: str) -> str:
    arn: str = plan.named(f"churn-{kind}-role").state["arn"]
    return arn


def statements(resource: RecordedResource, key: str = "policy") -> dict[str, dict[str, Any]]:
    doc = json.loads(resource.inputs[key])
    return {s.get("Sid", "?"): s for s in doc["Statement"]}


def policy_of(plan: Plan, kind: str) -> dict[str, dict[str, Any]]:
    return statements(plan.named(f"churn-{kind}-policy"))


# --- the component ------------------------------------------------------------------------------


def test_children_and_their_logical_names_stay_put(plan: Plan) -> None:
    component = plan.named("churn")
    assert component.type == "mlplatform:training:ModelPipeline"
    children = sorted((r.name, r.type) for r in plan.resources if r.parent == component.urn)
    roles = [(f"churn-{k}-role", "aws:iam/role:Role") for k in ROLE_KINDS]
    policies = [(f"churn-{k}-policy", "aws:iam/rolePolicy:RolePolicy") for k in ROLE_KINDS]
    assert children == sorted(
        [
            *roles,
            *policies,
            ("churn-pipeline", "aws:sagemaker/pipeline:Pipeline"),
            ("churn-schedule", "aws:cloudwatch/eventRule:EventRule"),
            ("churn-schedule-target", "aws:cloudwatch/eventTarget:EventTarget"),
            ("churn-failed", "aws:cloudwatch/eventRule:EventRule"),
            ("churn-failed-target", "aws:cloudwatch/eventTarget:EventTarget"),
        ]
    )


def test_the_pipeline_resource(plan: Plan, prod_settings: Settings) -> None:
    pipeline = plan.named("churn-pipeline")
    assert pipeline.inputs["pipelineName"] == "ml-platform-prod-churn"
    assert pipeline.inputs["pipelineDisplayName"] == "ml-platform-prod-churn"
    assert pipeline.inputs["roleArn"] == role_arn(plan, "pipeline")
    assert pipeline.inputs["tags"] == {**prod_settings.tags, "model": "churn"}
    assert pipeline.state["arn"] == (
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/ml-platform-prod-churn"
    )
    # created once its roles may act
    policies = {plan.named(f"churn-{k}-policy").urn for k in (*STEP_KINDS, "pipeline")}
    assert set(pipeline.options["dependsOn"]) == policies


def test_the_definition_is_the_pure_function_of_the_args(plan: Plan, prod_settings) -> None:
    roles = {k: role_arn(plan, k) for k in STEP_KINDS}
    built = pipeline_definition(args_for(prod_settings), roles)
    assert json.loads(json.dumps(built)) == definition_of(plan)
    with pytest.raises(ValueError, match=r"no role for step kind\(s\) \['evaluate'\]"):
        pipeline_definition(args_for(prod_settings), {k: "r" for k in STEP_KINDS[:-1]})


def test_step_names_and_order(plan: Plan) -> None:
    definition = definition_of(plan)
    assert definition["Version"] == "2020-12-01"
    assert [s["Name"] for s in definition["Steps"]] == [
        "Window",
        "Curate",
        "Features",
        "Train",
        "Evaluate",
        "GatePassed",
    ]
    assert [(s["Name"], s["Type"]) for s in steps_of(definition)] == [
        ("Window", "Processing"),
        ("Curate", "Processing"),
        ("Features", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("GatePassed", "Condition"),
        ("Register", "RegisterModel"),
        ("GateRefused", "Fail"),
    ]
    # no experiment per pipeline: the pipeline role would need experiment and trial rights
    assert "PipelineExperimentConfig" not in definition
    assert definition["Parameters"] == [
        {"Name": "WindowStart", "Type": "String", "DefaultValue": ""},
        {"Name": "WindowEnd", "Type": "String", "DefaultValue": ""},
        {"Name": "WindowDays", "Type": "String", "DefaultValue": "30"},
        {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
        # the Train step tunes over the model's search space unless an execution says "false"
        {"Name": "Search", "Type": "String", "DefaultValue": "true"},
        {"Name": "Estimator", "Type": "String", "DefaultValue": "logistic_regression"},
        {"Name": "C", "Type": "String", "DefaultValue": "1.0"},
        {"Name": "MaxIter", "Type": "String", "DefaultValue": "500"},
    ]


def work_uri(*kind: str) -> dict[str, Any]:
    values = [
        "s3:/",
        NAMES["models"],
        f"{PREFIX}/pipeline",
        {"Get": "Execution.PipelineExecutionId"},
        *kind,
    ]
    return {"Std:Join": {"On": "/", "Values": values}}


def output_of(step: str, name: str) -> dict[str, str]:
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}


def test_curate_and_features_shard_their_work_across_the_instances(plan: Plan) -> None:
    by_name = steps(plan)
    for name, source in (("Curate", "Window"), ("Features", "Curate")):
        args = by_name[name]["Arguments"]
        assert args["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2  # prod
        (work,) = args["ProcessingInputs"]
        assert work == {
            "InputName": "work",
            "S3Input": {
                "S3Uri": output_of(source, "work"),
                "LocalPath": WORK_INPUT_PATH,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "ShardedByS3Key",
            },
        }
    for name in ("Window", "Evaluate"):
        args = by_name[name]["Arguments"]
        assert args["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert "ProcessingInputs" not in by_name["Window"]["Arguments"]
    (model,) = by_name["Evaluate"]["Arguments"]["ProcessingInputs"]
    assert model["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert model["S3Input"]["LocalPath"] == MODEL_INPUT_PATH
    assert model["S3Input"]["S3DataDistributionType"] == "FullyReplicated"


def test_dev_runs_one_instance_and_approves_what_passes(record) -> None:
    dev = make_settings("dev")
    plan = record(program(dev), settings=dev)
    by_name = steps(plan)
    for name in ("Curate", "Features"):
        config = by_name[name]["Arguments"]["ProcessingResources"]["ClusterConfig"]
        assert config["InstanceCount"] == 1
    params = {p["Name"]: p["DefaultValue"] for p in definition_of(plan)["Parameters"]}
    assert params["ModelApprovalStatus"] == "Approved"


def test_every_job_step_has_its_role_the_vpc_and_the_lake_key(plan: Plan) -> None:
    by_name = steps(plan)
    kinds = {
        "Window": "window",
        "Curate": "curate",
        "Features": "features",
        "Evaluate": "evaluate",
    }
    for name, kind in kinds.items():
        args = by_name[name]["Arguments"]
        assert args["RoleArn"] == role_arn(plan, kind), name
        assert args["AppSpecification"] == {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": [*PIPELINE_ENTRYPOINT, kind],
            "ContainerArguments": args["AppSpecification"]["ContainerArguments"],
        }
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY
        assert args["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.xlarge"
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == KEY
        (output,) = args["ProcessingOutputConfig"]["Outputs"]
        assert output["S3Output"]["S3Uri"] == work_uri(kind)
        assert output["S3Output"]["S3UploadMode"] == "EndOfJob"
        assert args["NetworkConfig"] == {
            "EnableNetworkIsolation": False,
            "EnableInterContainerTrafficEncryption": True,
            "VpcConfig": {"Subnets": SUBNETS, "SecurityGroupIds": [SG]},
        }
        assert args["Environment"] == {
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONUNBUFFERED": "1",
            MODEL_ENV: "churn",  # which model the step runs (`ml.model.model_from_env`)
        }
    train = by_name["Train"]["Arguments"]
    assert train["RoleArn"] == role_arn(plan, "train")
    assert train["AlgorithmSpecification"] == {
        "TrainingImage": IMAGE,
        "TrainingInputMode": "File",
        "ContainerEntrypoint": [*PIPELINE_ENTRYPOINT, "train"],
    }
    assert train["VpcConfig"] == {"Subnets": SUBNETS, "SecurityGroupIds": [SG]}
    assert train["ResourceConfig"] == {
        "InstanceCount": 1,
        "InstanceType": "ml.m5.xlarge",
        "VolumeSizeInGB": 30,
        "VolumeKmsKeyId": KEY,
    }
    assert train["OutputDataConfig"] == {"S3OutputPath": work_uri("train"), "KmsKeyId": KEY}
    assert train["EnableNetworkIsolation"] is True


def test_container_arguments_follow_the_design(plan: Plan) -> None:
    by_name = steps(plan)

    def arguments(name: str) -> dict[str, Any]:
        flat = by_name[name]["Arguments"]["AppSpecification"]["ContainerArguments"]
        return dict(zip(flat[::2], flat[1::2], strict=True))

    assert arguments("Window") == {
        "--raw-bucket": NAMES["raw"],
        "--dataset": "customers",
        "--start": {"Get": "Parameters.WindowStart"},
        "--end": {"Get": "Parameters.WindowEnd"},
        "--days": {"Get": "Parameters.WindowDays"},
        "--as-of": {"Get": "Execution.StartDateTime"},
        "--out": WORK_OUTPUT_PATH,
    }
    assert arguments("Curate") == {
        "--raw-bucket": NAMES["raw"],
        "--curated-bucket": NAMES["curated"],
        "--kms-key-arn": KEY,
        "--region": "us-east-1",
        "--pipeline": "ml-platform-prod-churn",
        "--max-rejected-share": "0.05",
        "--work": WORK_INPUT_PATH,
        "--out": WORK_OUTPUT_PATH,
    }
    assert arguments("Features") == {
        "--curated-bucket": NAMES["curated"],
        "--features-bucket": NAMES["features"],
        "--kms-key-arn": KEY,
        "--region": "us-east-1",
        "--work": WORK_INPUT_PATH,
        "--out": WORK_OUTPUT_PATH,
    }
    assert arguments("Evaluate") == {
        "--group": GROUP,
        "--stack": "prod",
        "--region": "us-east-1",
        "--model": MODEL_INPUT_PATH,
        "--out": EVALUATION_OUTPUT_PATH,
    }


def test_training_reads_the_windows_partitions_and_checkpoints_on_spot(plan: Plan) -> None:
    train = steps(plan)["Train"]["Arguments"]
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"]}
    assert channels["partitions"]["InputMode"] == "File"
    assert channels["partitions"]["DataSource"]["S3DataSource"]["S3Uri"] == output_of(
        "Features", "work"
    )
    features = channels["features"]
    assert features["InputMode"] == "FastFile"
    assert features["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Std:Join": {"On": "/", "Values": ["s3:/", NAMES["features"], "customer_features/"]}
    }
    assert train["HyperParameters"] == {
        "estimator": {"Get": "Parameters.Estimator"},
        "c": {"Get": "Parameters.C"},
        "max_iter": {"Get": "Parameters.MaxIter"},
        "seed": "0",
        "search": {"Get": "Parameters.Search"},
    }
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 4 * 3600,
        "MaxWaitTimeInSeconds": 8 * 3600,
    }
    assert train["CheckpointConfig"] == {
        "S3Uri": work_uri("train", "checkpoints"),
        "LocalPath": "/opt/ml/checkpoints",
    }


def test_on_demand_training_has_no_wait_or_checkpoints(record) -> None:
    settings = make_settings("prod", trainingUseSpot=False, trainingMaxRuntimeSeconds=7200)
    train = steps(record(program(settings), settings=settings))["Train"]["Arguments"]
    assert train["EnableManagedSpotTraining"] is False
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert "CheckpointConfig" not in train


def test_the_gate_decides_between_register_and_a_failure_naming_the_rule(plan: Plan) -> None:
    by_name = steps(plan)
    report = {"Get": f"Steps.Evaluate.PropertyFiles.{GATE_PROPERTY_FILE}"}
    assert by_name["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "GateReport", "OutputName": "evaluation", "FilePath": "gate.json"}
    ]
    gate = by_name["GatePassed"]["Arguments"]
    assert gate["Conditions"] == [
        {
            "Type": "Equals",
            "LeftValue": {"Std:JsonGet": {"PropertyFile": report, "Path": "passed"}},
            "RightValue": True,
        }
    ]
    assert [s["Name"] for s in gate["IfSteps"]] == ["Register"]
    assert gate["ElseSteps"] == [
        {
            "Name": "GateRefused",
            "Type": "Fail",
            "Arguments": {
                "ErrorMessage": {"Std:JsonGet": {"PropertyFile": report, "Path": "message"}}
            },
        }
    ]


def test_register_attaches_the_reports_and_the_gate_metadata(plan: Plan) -> None:
    register = steps(plan)["Register"]["Arguments"]
    report = {"Get": "Steps.Evaluate.PropertyFiles.GateReport"}
    evaluation = output_of("Evaluate", "evaluation")

    def uri(name: str) -> dict[str, Any]:
        joined = {"Std:Join": {"On": "/", "Values": [evaluation, name]}}
        return {"ContentType": "application/json", "S3Uri": joined}

    assert register["ModelPackageGroupName"] == GROUP
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container == {
        "Image": sklearn_image_uri("us-east-1"),
        "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
    }
    assert register["ModelMetrics"] == {
        "ModelQuality": {"Statistics": uri("metrics.json"), "Constraints": uri("gate.json")},
        "ModelDataQuality": {"Statistics": uri("baseline.json")},
    }
    metadata = register["CustomerMetadataProperties"]
    assert metadata == {
        "metric.roc_auc": {"Std:JsonGet": {"PropertyFile": report, "Path": "metadata.roc_auc"}},
        "metric.pr_auc": {"Std:JsonGet": {"PropertyFile": report, "Path": "metadata.pr_auc"}},
        "metric.log_loss": {"Std:JsonGet": {"PropertyFile": report, "Path": "metadata.log_loss"}},
        "metric.ece": {"Std:JsonGet": {"PropertyFile": report, "Path": "metadata.ece"}},
        "data.version": {"Std:JsonGet": {"PropertyFile": report, "Path": "metadata.data_version"}},
        "pipeline-execution": {"Get": "Execution.PipelineExecutionArn"},
        "lineage": uri("lineage.json")["S3Uri"],
        "gate": "passed",
    }


@pytest.mark.parametrize("name", ["churn", "spend"])
def test_what_the_definition_repeats_of_ml_is_what_ml_says(name: str) -> None:
    from ml import registry
    from ml.models import load, pipeline_parameter, spec

    model = load(name)
    defaults = model.hyperparameters()
    assert int(definition_module.TRAINING_SEED) == defaults.seed
    # the hyperparameters the pipeline exposes default to the model's own defaults
    exposed = spec(name).pipeline_hyperparameters
    assert exposed and model.hyperparameters.from_mapping(exposed) == defaults
    assert all(pipeline_parameter(h)[0].isupper() for h in exposed)
    assert list(definition_module.SUPPORTED_CONTENT_TYPES) == registry.SUPPORTED_CONTENT_TYPES
    # the registered metrics are the properties `ml.registry` reads back as metrics
    metadata = register_metadata(spec(name).metrics)
    metrics = [n for n in metadata if n.startswith(registry.METRIC_PREFIX)]
    assert len(metrics) == len(metadata) - 1  # and data.version


# --- the roles ----------------------------------------------------------------------------------


def test_every_role_trusts_its_service_for_this_account_only(plan: Plan) -> None:
    for kind in ROLE_KINDS:
        role = plan.named(f"churn-{kind}-role")
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        service = "events.amazonaws.com" if kind == "schedule" else "sagemaker.amazonaws.com"
        assert trust == {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }, kind
        assert plan.named(f"churn-{kind}-policy").inputs["role"] == role.id


def listing(*prefixes: str) -> list[str]:
    return sorted({p for prefix in prefixes for p in (prefix, f"{prefix}/*")})


def data_sids(doc: dict[str, dict[str, Any]]) -> dict[str, tuple[list[str], list[str]]]:
    """Sid -> (actions, resources) of the statements that are not the common job ones."""
    common = {"LakeKey", "VolumeKeyGrant", "JobLogGroup", "JobLogStreams", "PullPlatformImage"}
    return {
        sid: (s["Action"], s["Resource"])
        for sid, s in doc.items()
        if sid not in common and not sid.startswith(("WildcardOnly", "JobNetworkInterfaces"))
    }


def test_the_window_role_lists_raw_and_writes_its_work_only(plan: Plan) -> None:
    doc = policy_of(plan, "window")
    assert data_sids(doc) == {
        "ListRawDataset": (["s3:ListBucket"], [ARNS["raw"]]),
        "ReadRawDataset": (["s3:GetObject"], [f"{ARNS['raw']}/customers/*"]),
        "WriteWindowWork": (
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            [f"{WORK}/window/*"],
        ),
    }
    assert doc["ListRawDataset"]["Condition"] == {
        "StringLike": {"s3:prefix": ["customers", "customers/*"]}
    }


def test_the_curate_role_reads_raw_and_the_window_and_writes_curated(plan: Plan) -> None:
    doc = policy_of(plan, "curate")
    assert data_sids(doc) == {
        "ListWindowWork": (["s3:ListBucket"], [ARNS["models"]]),
        "ReadWindowWork": (["s3:GetObject"], [f"{WORK}/window/*"]),
        "ListRawDataset": (["s3:ListBucket"], [ARNS["raw"]]),
        "ReadRawDataset": (["s3:GetObject"], [f"{ARNS['raw']}/customers/*"]),
        "ListCuratedZone": (["s3:ListBucket"], [ARNS["curated"]]),
        "WriteCuratedDataset": (
            ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            [f"{ARNS['curated']}/customers_curated/*"],
        ),
        "WriteRejectedRows": (
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            [f"{ARNS['curated']}/rejected/customers/*"],
        ),
        "WriteCurateWork": (["s3:AbortMultipartUpload", "s3:PutObject"], [f"{WORK}/curate/*"]),
    }
    assert doc["ListWindowWork"]["Condition"] == {
        "StringLike": {"s3:prefix": listing(f"{PREFIX}/pipeline/*/window")}
    }
    assert doc["ListCuratedZone"]["Condition"] == {
        "StringLike": {"s3:prefix": listing("customers_curated", "rejected/customers")}
    }
    metrics = next(s for sid, s in doc.items() if sid.endswith("RejectedRowMetrics"))
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MLPlatform/Pipeline"}}


def test_the_features_role_reads_curated_and_writes_features(plan: Plan) -> None:
    assert data_sids(policy_of(plan, "features")) == {
        "ListCurateWork": (["s3:ListBucket"], [ARNS["models"]]),
        "ReadCurateWork": (["s3:GetObject"], [f"{WORK}/curate/*"]),
        "ListCuratedDataset": (["s3:ListBucket"], [ARNS["curated"]]),
        "ReadCuratedDataset": (["s3:GetObject"], [f"{ARNS['curated']}/customers_curated/*"]),
        "ListFeaturesDataset": (["s3:ListBucket"], [ARNS["features"]]),
        "WriteFeaturesDataset": (
            ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            [f"{ARNS['features']}/customer_features/*"],
        ),
        "WriteFeaturesWork": (
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            [f"{WORK}/features/*"],
        ),
    }


def test_the_train_role_reads_features_and_writes_the_model(plan: Plan) -> None:
    doc = policy_of(plan, "train")
    assert data_sids(doc) == {
        "ListFeaturesWork": (["s3:ListBucket"], [ARNS["models"]]),
        "ReadFeaturesWork": (["s3:GetObject"], [f"{WORK}/features/*"]),
        "ListFeaturesDataset": (["s3:ListBucket"], [ARNS["features"]]),
        "ReadFeaturesDataset": (["s3:GetObject"], [f"{ARNS['features']}/customer_features/*"]),
        "ListTrainWork": (["s3:ListBucket"], [ARNS["models"]]),
        "WriteTrainWork": (
            ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            [f"{WORK}/train/*"],
        ),
    }
    logs = doc["JobLogStreams"]["Resource"]
    assert logs == [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs:"
        "log-stream:pipelines-*"
    ]


def test_the_evaluate_role_reads_the_registry_and_writes_the_evaluation(plan: Plan) -> None:
    versions = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/{GROUP}/*"
    assert data_sids(policy_of(plan, "evaluate")) == {
        "ListTrainWork": (["s3:ListBucket"], [ARNS["models"]]),
        "ReadTrainWork": (["s3:GetObject"], [f"{WORK}/train/*"]),
        "ReadServingMetrics": (["s3:GetObject"], [f"{ARNS['models']}/*/metrics.json"]),
        "ReadGroup": (
            ["sagemaker:DescribeModelPackageGroup"],
            [f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/{GROUP}"],
        ),
        "ReadVersions": (
            ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            [versions],
        ),
        "WriteEvaluateWork": (
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            [f"{WORK}/evaluate/*"],
        ),
    }


def test_every_step_role_has_the_job_basics_scoped(plan: Plan) -> None:
    eni = f"arn:aws:ec2:us-east-1:{ACCOUNT}:"
    for kind in STEP_KINDS:
        doc = policy_of(plan, kind)
        assert doc["LakeKey"]["Resource"] == [KEY]
        assert doc["VolumeKeyGrant"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        assert doc["PullPlatformImage"]["Resource"] == [REPO]
        network = doc["JobNetworkInterfaces"]
        assert network["Resource"] == [
            f"{eni}network-interface/*",
            f"{eni}subnet/*",
            f"{eni}security-group/{SG}",
        ]
        assert network["Condition"] == {"ArnEquals": {"ec2:Vpc": f"{eni}vpc/{VPC}"}}
        group = "TrainingJobs" if kind == "train" else "ProcessingJobs"
        assert doc["JobLogGroup"]["Resource"] == [
            f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/{group}"
        ]


def test_the_pipeline_role_runs_its_jobs_registers_and_passes_the_step_roles(plan: Plan) -> None:
    doc = policy_of(plan, "pipeline")
    sm = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
    assert {sid: (s["Action"], s["Resource"]) for sid, s in doc.items()} == {
        "RunProcessingSteps": (
            [
                "sagemaker:AddTags",
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
            ],
            [f"{sm}:processing-job/pipelines-*"],
        ),
        "RunTrainingSteps": (
            [
                "sagemaker:AddTags",
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
            ],
            [f"{sm}:training-job/pipelines-*"],
        ),
        "RegisterVersions": (
            [
                "sagemaker:AddTags",
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
            ],
            [f"{sm}:model-package/{GROUP}/*"],
        ),
        "ReadGroup": (
            ["sagemaker:DescribeModelPackageGroup"],
            [f"{sm}:model-package-group/{GROUP}"],
        ),
        # the service reads the gate's property file (JsonGet) as the pipeline's role
        "ReadPropertyFiles": (["s3:GetObject"], [f"{WORK}/evaluate/gate.json"]),
        "PropertyFilesKey": (["kms:Decrypt"], [KEY]),
        "PassStepRoles": (["iam:PassRole"], [role_arn(plan, k) for k in STEP_KINDS]),
    }
    assert doc["PassStepRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


# --- the schedule and the failure page --------------------------------------------------------


def test_the_schedule_starts_this_pipeline_only(plan: Plan) -> None:
    pipeline = plan.named("churn-pipeline")
    rule = plan.named("churn-schedule")
    # the model's retraining: every half of the age its backtest recommends
    assert rule.inputs["scheduleExpression"] == CHURN_RETRAINING
    target = plan.named("churn-schedule-target")
    assert target.inputs["rule"] == rule.state["name"]
    assert target.inputs["arn"] == pipeline.state["arn"]
    assert target.inputs["roleArn"] == role_arn(plan, "schedule")
    assert target.inputs["sagemakerPipelineTarget"] == {
        "pipelineParameterLists": [{"name": "WindowDays", "value": "30"}]
    }
    assert policy_of(plan, "schedule") == {
        "StartPipeline": {
            "Effect": "Allow",
            "Action": ["sagemaker:StartPipelineExecution"],
            "Resource": [pipeline.state["arn"]],
            "Sid": "StartPipeline",
        }
    }


def test_a_failed_execution_of_this_pipeline_pages_on_call(plan: Plan) -> None:
    rule = plan.named("churn-failed")
    assert rule.inputs["name"] == "ml-platform-prod-churn-failed"
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {
            "currentPipelineExecutionStatus": ["Failed"],
            "pipelineArn": [plan.named("churn-pipeline").state["arn"]],
        },
    }
    target = plan.named("churn-failed-target")
    assert target.inputs["rule"] == rule.state["name"]
    assert target.inputs["arn"] == TOPIC
    transformer = target.inputs["inputTransformer"]
    assert transformer["inputPaths"] == {"execution": "$.detail.pipelineExecutionArn"}
    assert "<execution>" in transformer["inputTemplate"]
    assert "ml-platform-prod-churn" in transformer["inputTemplate"]


def test_rule_and_pipeline_names() -> None:
    assert default_pipeline_name("prod", "churn") == "ml-platform-prod-churn"
    assert default_pipeline_name("Team_A.dev", "churn") == "ml-platform-team-a-dev-churn"
    assert default_pipeline_name("prod", "spend") == "ml-platform-prod-spend"
    assert failure_rule_name("ml-platform-prod-churn") == "ml-platform-prod-churn-failed"
    long = failure_rule_name("x" * 63)
    assert len(long) == 64 and long.endswith("-failed")


# --- bad input ----------------------------------------------------------------------------------


def test_every_bad_argument_is_reported_at_once(prod_settings: Settings) -> None:
    with pytest.raises(ValueError) as info:
        args_for(
            prod_settings,
            pipeline_name="Churn_Pipeline",
            region="mars",
            schedule="weekly",
            artifacts_prefix="/models/x/",
            security_group_ids=[],
            window_days=0,
            approval_status="Rejected",
            max_rejected_share=1.5,
            processing_instance_type="m5.large",
            processing_instance_count=0,
            training_max_wait_seconds=60,
        )
    message = str(info.value)
    for fragment in (
        "pipeline_name 'Churn_Pipeline': 1-256 lower-case letters",
        "region 'mars'",
        "schedule 'weekly': expected rate(N unit) or cron(...)",
        "artifacts_prefix '/models/x/'",
        "security_group_ids: at least one group",
        "window_days 0: 1 to 3650",
        "approval_status 'Rejected'",
        "max_rejected_share 1.5: a share from 0 to 1",
        "processing_instance_type 'm5.large': expected ml.<family>.<size>",
        "processing_instance_count 0: 1 to 100",
        "training_max_wait_seconds 60: at least training_max_runtime_seconds (14400)",
    ):
        assert fragment in message, fragment


def test_settings_report_every_pipeline_problem() -> None:
    with pytest.raises(SettingsError) as info:
        make_settings(
            "staging",
            pipelineSchedule="weekly",
            pipelineWindowDays=0,
            pipelineInstanceCount=101,
            pipelineMaxRejectedShare=1.5,
            pipelineInstanceType="m5.xlarge",
            pipelineEnabld=True,
        )
    problems = info.value.problems
    assert len(problems) == 6
    joined = "\n".join(problems)
    for fragment in (
        "ml-platform:pipelineSchedule: 'weekly' is not allowed",
        "ml-platform:pipelineWindowDays: 0 is not allowed (too small)",
        "ml-platform:pipelineInstanceCount: 101 is not allowed (too large)",
        "ml-platform:pipelineMaxRejectedShare: 1.5 is not allowed (too large)",
        "ml-platform:pipelineInstanceType: 'm5.xlarge' is not allowed",
        "did you mean 'ml-platform:pipelineEnabled'?",
    ):
        assert fragment in joined, fragment


def test_prod_refuses_auto_approval() -> None:
    with pytest.raises(SettingsError, match="pipelineAutoApprove: true is not allowed in prod"):
        make_settings("prod", pipelineAutoApprove=True)


@pytest.mark.parametrize(
    ("environment", "count", "status"),
    [
        ("dev", 1, "Approved"),
        ("local", 1, "Approved"),
        ("staging", 2, "PendingManualApproval"),
        ("prod", 2, "PendingManualApproval"),
    ],
)
def test_defaults_follow_the_environment(environment: str, count: int, status: str) -> None:
    pipeline = make_settings(environment).models[0].pipeline
    assert pipeline.enabled is True
    assert pipeline.schedule == CHURN_RETRAINING
    assert pipeline.window_days == 30
    assert pipeline.instance_type == "ml.m5.xlarge"
    assert pipeline.instance_count == count
    assert pipeline.approval_status == status
    assert pipeline.max_rejected_share == 0.05


def test_the_training_step_follows_the_training_settings() -> None:
    settings = make_settings(
        "staging",
        trainingInstanceType="ml.c5.2xlarge",
        trainingMaxRuntimeSeconds=3600,
        trainingMaxWaitSeconds=7200,
    )
    args = args_for(settings)
    assert (args.training_instance_type, args.training_use_spot) == ("ml.c5.2xlarge", True)
    assert (args.training_max_runtime_seconds, args.training_max_wait_seconds) == (3600, 7200)


# --- the shipped stacks -------------------------------------------------------------------------


def test_the_prod_plan_has_the_pipeline_its_schedule_failure_rule_and_step_roles(
    shipped_plans,
) -> None:
    plan = shipped_plans["prod"]
    component = plan.named("churn", "mlplatform:training:ModelPipeline")
    assert component.parent == plan.named("churn", "mlplatform:models:Model").urn
    children = {r.name: r for r in plan.resources if r.parent == component.urn}
    assert children["churn-pipeline"].type == "aws:sagemaker/pipeline:Pipeline"
    assert children["churn-schedule"].inputs["scheduleExpression"] == CHURN_RETRAINING
    assert children["churn-failed"].inputs["name"] == "ml-platform-prod-churn-failed"
    assert children["churn-failed-target"].inputs["arn"] == plan.named("on-call-topic").state["arn"]
    for kind in ROLE_KINDS:
        assert children[f"churn-{kind}-role"].type == "aws:iam/role:Role"
    assert plan.outputs["models"]["churn"]["pipeline_name"] == "ml-platform-prod-churn"
    assert plan.outputs["models"]["spend"]["pipeline_name"] == "ml-platform-prod-spend"
    definition = json.loads(children["churn-pipeline"].inputs["pipelineDefinition"])
    train = next(s for s in steps_of(definition) if s["Name"] == "Train")["Arguments"]
    assert train["VpcConfig"]["Subnets"] == plan.outputs["training_subnet_ids"]
    assert train["VpcConfig"]["SecurityGroupIds"] == plan.outputs["training_security_group_ids"]
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == plan.outputs["lake_kms_key_arn"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == plan.outputs["platform_image_uri"]


def test_the_on_call_topic_lets_exactly_the_failure_rules_publish(shipped_plans) -> None:
    plan = shipped_plans["prod"]
    rule_arns = sorted(plan.named(f"{m}-failed").state["arn"] for m in ("churn", "spend"))
    topic_policy = statements(plan.named("on-call-topic-policy"))
    assert topic_policy["EventRulesOfThisAccount"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnEquals": {"aws:SourceArn": rule_arns},
    }
    key = statements(plan.named("on-call-key"))
    (rules,) = [s for sid, s in key.items() if sid.endswith("EventRulesPublish")]
    assert rules["Principal"] == {"Service": "events.amazonaws.com"}
    assert rules["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_without_the_pipeline_nothing_of_it_is_made_and_eventbridge_may_not_publish(
    record,
) -> None:
    from stacks.composition import build

    settings = make_settings("dev", pipelineEnabled=False)
    exported: dict[str, Any] = {}

    def program() -> None:
        exported.update(build(settings))

    plan = record(program, settings=settings)
    assert plan.of_type("aws:sagemaker/pipeline:Pipeline") == []
    assert plan.of_type("mlplatform:training:ModelPipeline") == []
    assert "EventRulesOfThisAccount" not in statements(plan.named("on-call-topic-policy"))
    assert not [s for s in statements(plan.named("on-call-key")) if "EventRules" in s]
    # exported as None, not left out (`ml.outputs.ModelOutputs` has the field)
    assert exported["models"]["churn"]["pipeline_name"] is None


# --- every step's request is one the SageMaker API accepts ---------------------------------------

_SAMPLES = {  # what SageMaker substitutes for an expression at run time, by where it stands
    "S3Uri": "s3://lake-models/models/ml-platform-prod-churn/pipeline/abc123/window",
    "S3ModelArtifacts": "s3://lake-models/pipeline/abc123/train/job/output/model.tar.gz",
}


def _concrete(value: Any, key: str = "") -> Any:
    """The request as SageMaker sends it: every expression replaced by a value of its place."""
    if isinstance(value, list):
        return [_concrete(v, key) for v in value]
    if isinstance(value, dict):
        if set(value) & {"Get", "Std:Join", "Std:JsonGet"}:
            return _SAMPLES.get(key, "PendingManualApproval" if "Approval" in key else "0.83")
        return {k: _concrete(v, k) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("step_type", "operation", "name_field"),
    [
        ("Processing", "CreateProcessingJob", "ProcessingJobName"),
        ("Training", "CreateTrainingJob", "TrainingJobName"),
        ("RegisterModel", "CreateModelPackage", None),
    ],
)
def test_every_request_validates_against_the_sagemaker_api_model(
    plan: Plan, step_type: str, operation: str, name_field: str | None
) -> None:
    """botocore's model of the SageMaker API (types, required members, lengths, list sizes,
    enums): what the service validates when the pipeline starts each job."""
    import boto3
    from botocore.validate import ParamValidator

    model = boto3.session.Session().client("sagemaker", region_name="us-east-1").meta.service_model
    shape = model.operation_model(operation).input_shape
    found = [s for s in steps(plan).values() if s["Type"] == step_type]
    assert found
    for step in found:
        request = _concrete(step["Arguments"])
        if name_field is not None:
            request[name_field] = f"pipelines-abc123-{step['Name'].lower()}"
        report = ParamValidator().validate(request, shape)
        assert not report.has_errors(), f"{step['Name']}: {report.generate_report()}"
