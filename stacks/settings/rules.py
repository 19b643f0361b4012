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
from stacks.settings.models import ModelSettings, package_group
from stacks.settings.sections import Settings
from stacks.settings.spec import KEY_OF_FIELD, keys_of, schedule_days


def settings_problems(s: Settings) -> list[str]:
    """Every rule between settings; a problem several models share is reported once."""
    lake = Naming(keys_of("lake"))
    network, cluster = Naming(keys_of("network")), Naming(keys_of("cluster"))
    problems = raw_tiering_problems(s.lake.raw_ia_days, s.lake.raw_archive_days, lake)
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
    problems += _names_problems(s)
    problems += _stream_problems(s)
    for model in s.models:
        problems += _model_problems(s, model)
    if s.is_prod:
        problems += _prod_problems(s)
    return list(dict.fromkeys(problems))


def _model_problems(s: Settings, m: ModelSettings) -> list[str]:
    """One model's endpoint, named by the keys its values came from (its entry's or the stack's)."""
    e, naming = m.endpoint, Naming(m.keys_of("endpoint"))
    problems = instance_count_problems(e.min_instances, e.max_instances, naming)
    problems += serverless_problems(
        e.serverless,
        e.data_capture_enabled,
        e.in_vpc,
        e.network_isolation,
        e.instance_type,
        naming,
    )
    if e.in_vpc and s.environment == "local":
        problems.append(
            f"{naming('in_vpc')}: the local stack has no private network to place the endpoint in"
        )
    package = e.model_package_arn
    if package is not None and package_group(package) != m.info.group_name:
        problems.append(
            f"{naming('model_package_arn')}: {package!r} is a version of group "
            f"{package_group(package)!r}, not of model {m.name!r}'s ({m.info.group_name!r})"
        )
    problems += _age_problems(m)
    if s.is_prod:
        problems += _prod_model_problems(m)
    return problems


def _age_problems(m: ModelSettings) -> list[str]:
    """A model retrained no more often than the age that pages would page every cycle."""
    days = schedule_days(m.pipeline.schedule)
    age = m.alarms.max_model_age_days
    if not m.pipeline.enabled or days is None or days < age:
        return []
    return [
        f"{m.keys['pipeline.schedule']}: {m.pipeline.schedule!r} retrains {m.name} every "
        f"{days:g} days, not less than its maximum age ({m.keys['alarms.max_model_age_days']}: "
        f"{age}): its model-age alarm would page before every retraining; retrain more often or "
        "allow an older model"
    ]


def _names_problems(s: Settings) -> list[str]:
    """The stack-wide package ARN names one model's group; models get distinct AWS names."""
    problems = []
    package = s.model_package_arn
    groups = {m.info.group_name: m.name for m in s.models}
    if package is not None and package_group(package) not in groups:
        problems.append(
            f"{KEY_OF_FIELD['model_package_arn']}: {package!r} is a version of group "
            f"{package_group(package)!r}, which no model of the stack has (groups: "
            f"{', '.join(sorted(groups))}); set it in the model's `models` entry"
        )
    for what, named in (
        ("registry group", [m.info.group_name for m in s.models]),
        ("endpoint", [m.info.endpoint_name for m in s.models]),
    ):
        clashes = sorted({n for n in named if named.count(n) > 1})
        if clashes:
            problems.append(
                f"{KEY_OF_FIELD['models']}: two models get the {what} name {clashes[0]!r} "
                "(AWS names are cut to 63 characters: shorten the stack name)"
            )
    return problems


def _stream_problems(s: Settings) -> list[str]:
    """The steady feed is always streamed: the freshness alarm and the platform outputs name it."""
    main = s.ingestion.main_dataset
    if main in s.ingestion.datasets:
        return []
    return [
        f"{KEY_OF_FIELD['ingestion.datasets']}: {list(s.ingestion.datasets)} leaves out {main!r}, "
        "the steady feed the freshness alarm watches; keep it in the list"
    ]


def _training_problems(s: Settings) -> list[str]:
    t, key = s.training, KEY_OF_FIELD
    if t.max_wait_seconds >= t.max_runtime_seconds:
        return []
    return [
        f"{key['training.max_wait_seconds']}: {t.max_wait_seconds} must be >= "
        f"{key['training.max_runtime_seconds']} ({t.max_runtime_seconds})"
    ]


def _prod_model_problems(m: ModelSettings) -> list[str]:
    """What a prod model never runs without: isolated serving with capture, a person's approval."""
    e, p = m.endpoint, m.pipeline
    refused = [
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
        (
            p.auto_approve,
            "pipeline.auto_approve",
            "true",
            "a person approves what prod serves: versions wait in PendingManualApproval",
        ),
    ]
    problems = [
        f"{m.keys[field]}: {shown} is not allowed in prod ({why})"
        for bad, field, shown, why in refused
        if bad
    ]
    if e.min_instances < 2:
        problems.append(
            f"{m.keys['endpoint.min_instances']}: {e.min_instances} is not allowed in prod; "
            "expected >= 2 (one instance per zone at least)"
        )
    return problems


def _prod_problems(s: Settings) -> list[str]:
    """What prod never runs without: protected data, audited access, a private cluster API."""
    key = KEY_OF_FIELD
    refused = [
        (
            s.lake.force_destroy,
            "lake.force_destroy",
            "true",
            "prod lake buckets are never force-destroyed",
        ),
        (not s.audit.data_events, "audit.data_events", "false", "prod audits lake data access"),
        (
            s.audit.object_lock_days == 0,
            "audit.object_lock_days",
            "0",
            "prod audit logs cannot be deleted from inside the account",
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
    if s.network.az_count < 2:
        problems.append(f"{key['network.az_count']}: prod spans at least 2 zones")
    return problems
