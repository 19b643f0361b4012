"""The rules a component's Args and the settings parser share, each written once.

A rule that both enforce is a function here that returns the list of problems it finds. The
component raises them; the parser collects them with every other problem of the stack's config.
The two readers name things differently: the component names an Args field and its value
(`raw_archive_days 89: must be ...`), the parser names the config key
(`ml-platform:rawArchiveDays: 89 must be ...`). A `Naming` carries that difference.

Standard library only: the settings parser imports this module without loading Pulumi.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# Zones a network spans.
MIN_ZONES, MAX_ZONES = 2, 6
# What the on-call topic subscribes.
PROTOCOLS = ("email", "https", "sqs")
# GPU node groups: capacity types, size (instances) and data volume (GB) bounds.
CAPACITY_TYPES = ("ON_DEMAND", "SPOT")
MAX_SIZE_RANGE, DISK_GB_RANGE = (1, 100), (20, 16384)


@dataclass(frozen=True, slots=True)
class Naming:
    # Args field -> the name the reader knows it by (a config key); None: the Args field names.
    keys: Mapping[str, str] | None = None

    @property
    def for_settings(self) -> bool:
        """The reader edits the stack's config (a few rules word their advice for it)."""
        return self.keys is not None

    def __call__(self, field: str) -> str:
        return field if self.keys is None else self.keys[field]

    def problem(self, name: str, text: str, value: object = None) -> str:
        """One problem about `name` (already named), with the offending value when there is one."""
        if value is None:
            return f"{name}: {text}"
        return f"{name}: {value} {text}" if self.for_settings else f"{name} {value}: {text}"


# The components' own naming: Args fields.
ARGS = Naming()


def instance_family(instance_type: str) -> str:
    """`ml.m5d.large` -> `m5d`."""
    return instance_type.split(".")[1] if instance_type.count(".") == 2 else instance_type


# --- the data lake ----------------------------------------------------------------------------


def raw_tiering_problems(
    raw_ia_days: int, raw_archive_days: int, naming: Naming = ARGS
) -> list[str]:
    """Raw objects reach Glacier at least 30 days after Standard-IA (S3 refuses the rule else)."""
    if raw_archive_days >= raw_ia_days + 30:
        return []
    return [
        naming.problem(
            naming("raw_archive_days"),
            f"must be at least {naming('raw_ia_days')} + 30 = {raw_ia_days + 30} (S3 keeps "
            "objects in Standard-IA for 30 days before archiving)",
            raw_archive_days,
        )
    ]


# --- the model endpoint -----------------------------------------------------------------------


def serverless_problems(
    serverless: bool,
    data_capture_enabled: bool,
    in_vpc: bool,
    network_isolation: bool,
    instance_type: str,
    naming: Naming = ARGS,
) -> list[str]:
    """A serverless variant has no data capture, VPC config or network isolation, and runs on no
    GPU or accelerator instance."""
    if not serverless:
        return []
    flag = naming("serverless")
    # The stack's config turns on a serverless endpoint; the component a serverless variant.
    served = "serverless endpoints" if naming.for_settings else "serverless variants"
    problems = [
        naming.problem(
            flag, f"{served} support no {what}; set {naming(knob)}: false or {flag}: false"
        )
        for on, knob, what in (
            (data_capture_enabled, "data_capture_enabled", "data capture"),
            (in_vpc, "in_vpc", "VPC config"),
            (network_isolation, "network_isolation", "network isolation"),
        )
        if on
    ]
    if instance_family(instance_type).startswith(("g", "p", "inf", "trn")):
        problems.append(
            naming.problem(
                flag, f"{served} support no GPU or accelerator instances ({instance_type})"
            )
        )
    return problems


def instance_count_problems(
    min_instances: int, max_instances: int, naming: Naming = ARGS
) -> list[str]:
    """Autoscaling keeps 1 <= min <= max instances."""
    if 1 <= min_instances <= max_instances:
        return []
    if naming.for_settings:  # the config's bounds already hold min >= 1
        return [
            naming.problem(
                naming("min_instances"),
                f"is greater than {naming('max_instances')} ({max_instances}); min must be <= max",
                min_instances,
            )
        ]
    return [
        f"min_instances {min_instances} / max_instances {max_instances}: expected 1 <= min <= max"
    ]


# --- the network ------------------------------------------------------------------------------


def vpc_cidr_problems(vpc_cidr: str, naming: Naming = ARGS) -> list[str]:
    """A private IPv4 block from /16 to /20: room for the subnet plan, never a public range."""
    try:
        net = ipaddress.ip_network(vpc_cidr, strict=True)
    except ValueError:
        allowed = False
    else:
        allowed = net.version == 4 and 16 <= net.prefixlen <= 20 and net.is_private
    if allowed:
        return []
    return [
        naming.problem(
            naming("vpc_cidr"),
            "is not allowed; expected a private IPv4 CIDR from /16 to /20, e.g. 10.40.0.0/16",
            repr(vpc_cidr),
        )
    ]


# --- the training cluster -----------------------------------------------------------------------


class GpuNodeGroupSpec(Protocol):
    """What a GPU node group declares (`stacks.settings.GpuNodeGroup` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def instance_types(self) -> tuple[str, ...]: ...
    @property
    def capacity_type(self) -> str: ...
    @property
    def max_size(self) -> int: ...
    @property
    def disk_gb(self) -> int: ...


def node_group_problems(
    index: int,
    name: object,
    instance_types: object,
    capacity_type: object,
    max_size: object,
    disk_gb: object,
    naming: Naming = ARGS,
) -> list[str]:
    """One GPU node group's fields (taken as given: the parser checks JSON values with it)."""
    where = f"{naming('gpu_node_groups')}[{index}]"
    problems = []
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", name):
        problems.append(
            naming.problem(
                f"{where}.{naming('name')}", "must be lowercase letters, digits, '-'", repr(name)
            )
        )
    if (
        not isinstance(instance_types, list | tuple)
        or not instance_types
        or not all(isinstance(t, str) for t in instance_types)
    ):
        problems.append(
            naming.problem(
                f"{where}.{naming('instance_types')}", "expected a non-empty list of strings"
            )
        )
    if capacity_type not in CAPACITY_TYPES:
        problems.append(
            naming.problem(
                f"{where}.{naming('capacity_type')}",
                f"is not one of {', '.join(CAPACITY_TYPES)}",
                repr(capacity_type),
            )
        )
    for field_name, value, (low, high) in (
        ("max_size", max_size, MAX_SIZE_RANGE),
        ("disk_gb", disk_gb, DISK_GB_RANGE),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(
                naming.problem(
                    f"{where}.{naming(field_name)}",
                    f"must be an integer from {low} to {high}",
                    repr(value),
                )
            )
    return problems


def gpu_family_problems(
    groups: Sequence[GpuNodeGroupSpec], families: Sequence[str], naming: Naming = ARGS
) -> list[str]:
    """Every instance type of every group is of an allowed GPU family; group names are unique."""
    allowed = ", ".join(sorted(families))
    outside = (
        f"a GPU family in {naming('gpu_instance_families')}"
        if naming.for_settings
        else "in an allowed GPU family"
    )
    problems = [
        naming.problem(
            naming("gpu_node_groups"),
            f"node group {g.name!r} instance type {itype!r} is not {outside} ({allowed})",
        )
        for g in groups
        for itype in g.instance_types
        if itype.split(".")[0] not in families
    ]
    if len({g.name for g in groups}) != len(groups):
        problems.append(
            naming.problem(naming("gpu_node_groups"), "node group names must be unique")
        )
    return problems


def public_access_problems(cidrs: Sequence[str], naming: Naming = ARGS) -> list[str]:
    """The cluster API is never public to the whole internet."""
    return [
        naming.problem(
            naming("public_access_cidrs"),
            "opens the cluster API to the internet; list your own CIDRs",
            cidr,
        )
        for cidr in cidrs
        if cidr in ("0.0.0.0/0", "::/0")
    ]


_PRINCIPAL = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}")


def job_submitter_problems(arns: Sequence[str], naming: Naming = ARGS) -> list[str]:
    """Who may submit training Jobs: named IAM roles or users, never a whole account."""
    return [
        naming.problem(
            naming("job_submitter_arns"),
            "is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>); an account "
            "root would let every principal of the account submit",
            repr(arn),
        )
        for arn in arns
        if not _PRINCIPAL.fullmatch(arn)
    ]


# A log archive: an S3 bucket ARN and the KMS key ARN (its account and region) of the replicas.
ARCHIVE_BUCKET = re.compile(r"arn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")
ARCHIVE_KEY = re.compile(
    r"arn:aws[a-z-]*:kms:([a-z]{2}(?:-gov)?-[a-z]+-\d):(\d{12}):key/[0-9a-f-]{36}"
)


def archive_problems(bucket_arn: str, key_arn: str, naming: Naming = ARGS) -> list[str]:
    """The audit log archive: both the bucket and its key or neither, each an ARN."""
    bucket, key = naming("archive_bucket_arn"), naming("archive_kms_key_arn")
    problems = []
    if bool(bucket_arn) != bool(key_arn):
        problems.append(
            f"{bucket} and {key} go together: the replicas are encrypted with the archive's key"
        )
    if bucket_arn and not ARCHIVE_BUCKET.fullmatch(bucket_arn):
        problems.append(naming.problem(bucket, "is not arn:aws:s3:::<bucket>", repr(bucket_arn)))
    if key_arn and not ARCHIVE_KEY.fullmatch(key_arn):
        problems.append(
            naming.problem(key, "is not arn:aws:kms:<region>:<account>:key/<id>", repr(key_arn))
        )
    return problems
