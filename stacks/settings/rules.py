"""The rules between settings, checked once every value is valid on its own.

A rule a component also enforces is the component's own check function (in its module), called
here with the config keys as names; the rules only the stack's config has (the training job's
waits, the local stack, prod) are written here.
"""

from __future__ import annotations

from components.problems import (
    Naming,
    archive_problems,
    gpu_family_problems,
    instance_count_problems,
    job_submitter_problems,
    public_access_problems,
    raw_tiering_problems,
    serverless_problems,
    vpc_cidr_problems,
)
from stacks.settings.sections import Settings
from stacks.settings.spec import KEY_OF_FIELD, keys_of


def settings_problems(s: Settings) -> list[str]:
    endpoint, lake = Naming(keys_of("endpoint")), Naming(keys_of("lake"))
    network, cluster = Naming(keys_of("network")), Naming(keys_of("cluster"))
    e = s.endpoint
    problems = instance_count_problems(e.min_instances, e.max_instances, endpoint)
    problems += raw_tiering_problems(s.lake.raw_ia_days, s.lake.raw_archive_days, lake)
    problems += _training_problems(s)
    problems += vpc_cidr_problems(s.network.vpc_cidr, network)
    problems += gpu_family_problems(
        s.cluster.gpu_node_groups, s.cluster.gpu_instance_families, cluster
    )
    problems += public_access_problems(s.cluster.public_access_cidrs, cluster)
    problems += job_submitter_problems(s.cluster.job_submitter_arns, cluster)
    problems += archive_problems(
        s.audit.archive_bucket_arn, s.audit.archive_kms_key_arn, Naming(keys_of("audit"))
    )
    problems += serverless_problems(
        e.serverless,
        e.data_capture_enabled,
        e.in_vpc,
        e.network_isolation,
        e.instance_type,
        endpoint,
    )
    if e.in_vpc and s.environment == "local":
        problems.append(
            f"{KEY_OF_FIELD['endpoint.in_vpc']}: the local stack has no private network to "
            "place the endpoint in"
        )
    if s.is_prod:
        problems += _prod_problems(s)
    return problems


def _training_problems(s: Settings) -> list[str]:
    t, key = s.training, KEY_OF_FIELD
    if t.max_wait_seconds >= t.max_runtime_seconds:
        return []
    return [
        f"{key['training.max_wait_seconds']}: {t.max_wait_seconds} must be >= "
        f"{key['training.max_runtime_seconds']} ({t.max_runtime_seconds})"
    ]


def _prod_problems(s: Settings) -> list[str]:
    """What prod never runs without: protected data, isolated serving, audited access."""
    key, e = KEY_OF_FIELD, s.endpoint
    refused = [
        (
            s.lake.force_destroy,
            "lake.force_destroy",
            "true",
            "prod lake buckets are never force-destroyed",
        ),
        (
            e.serverless,
            "endpoint.serverless",
            "true",
            "prod endpoints run on instances with data capture",
        ),
        (
            not e.network_isolation,
            "endpoint.network_isolation",
            "false",
            "prod models run isolated",
        ),
        (not e.in_vpc, "endpoint.in_vpc", "false", "prod models run in the VPC"),
        (
            not e.data_capture_enabled,
            "endpoint.data_capture_enabled",
            "false",
            "prod endpoints capture their traffic for monitoring",
        ),
        (not s.audit.data_events, "audit.data_events", "false", "prod audits lake data access"),
        (
            s.audit.object_lock_days == 0,
            "audit.object_lock_days",
            "0",
            "prod audit logs cannot be deleted from inside the account",
        ),
        (
            s.pipeline.auto_approve,
            "pipeline.auto_approve",
            "true",
            "a person approves what prod serves: versions wait in PendingManualApproval",
        ),
        (
            bool(s.cluster.public_access_cidrs),
            "cluster.public_access_cidrs",
            "non-empty",
            "the prod cluster API is private only",
        ),
    ]
    problems = [
        f"{key[field]}: {shown} is not allowed in prod ({why})"
        for bad, field, shown, why in refused
        if bad
    ]
    if e.min_instances < 2:
        problems.append(
            f"{key['endpoint.min_instances']}: {e.min_instances} is not allowed in prod; "
            "expected >= 2 (one instance per zone at least)"
        )
    if s.network.az_count < 2:
        problems.append(f"{key['network.az_count']}: prod spans at least 2 zones")
    return problems
