"""What the tools know about each AWS resource type, keyed by type token: one module per service.

`REGISTRY` holds one `AwsType` per token the tools know (`registry.py` gives the shape):

- `fake`: the id and computed outputs the plan engine (`mlplat.plan.engine.fake_physical`) answers
  a registration with, given the physical name the provider would use;
- `realize` and `read`: the sandbox's create-or-update of the resource in moto through boto3 and
  its read-back (`mlplat.sandbox.realize`), with each service's quirks where moto and AWS differ;
- `force_new`: the inputs whose change replaces the resource (`mlplat.plan.diff`);
- `stateful` and `name_rule`: read from the policy pack (`policies.core.STATEFUL_TYPES`,
  `policies.names`), which must run without `mlplat`, so they are never written twice.

Adding a resource type touches one module, its service's: write its fake (or use `generic_fake`),
its realizer and reader if moto can hold it, and add its `AwsType` to the module's `SERVICE`. A new
service is a new module declaring `SERVICE = Service(owns=(...), types=(...))`, listed below. A
module declares only tokens of the services it owns (`Service` refuses others).

Import rules: these modules import `policies`' pure modules and nothing heavy. boto3, botocore,
moto and pulumi are imported lazily inside realizers, so the plan engine and the diff stay fast to
import.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mlplat.aws.registry import AwsType, Fake, Registry, Service, generic_fake

# One module per service; a new service is a new module and a name here.
SERVICE_NAMES = (
    "appautoscaling",
    "athena",
    "cloudtrail",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecr",
    "eks",
    "firehose",
    "glue",
    "iam",
    "kms",
    "lambda_",
    "s3",
    "sagemaker",
    "sfn",
    "sns",
    "sqs",
)
SERVICE_MODULES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"mlplat.aws.{name}") for name in SERVICE_NAMES
)
REGISTRY = Registry(module.SERVICE for module in SERVICE_MODULES)

__all__ = ["REGISTRY", "SERVICE_MODULES", "AwsType", "Fake", "Registry", "Service", "generic_fake"]
