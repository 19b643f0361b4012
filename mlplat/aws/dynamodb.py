"""DynamoDB: tables (known to `mlplat preview --diff`: a renamed table is replaced)."""

from __future__ import annotations

from mlplat.aws.registry import AwsType, Service, generic_fake

# --- the registry entries

SERVICE = Service(
    owns=("dynamodb",),
    types=(AwsType("aws:dynamodb/table:Table", fake=generic_fake, force_new=frozenset({"name"})),),
)
