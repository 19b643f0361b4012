"""Every policy of the pack, in listing order. The single list both engines run."""

from __future__ import annotations

from policies.core import PolicySpec
from policies.rules import (
    athena,
    cloudtrail,
    compute,
    encryption,
    exposure,
    governance,
    iam,
    isolation,
    keys,
    naming,
    network,
    observability,
    pipeline,
    s3,
    sagemaker,
    trust,
)

POLICIES: tuple[PolicySpec, ...] = (
    *s3.POLICIES,
    *iam.POLICIES,
    *compute.POLICIES,
    *network.POLICIES,
    *sagemaker.POLICIES,
    *pipeline.POLICIES,
    *observability.POLICIES,
    *governance.POLICIES,
    *naming.POLICIES,
    *isolation.POLICIES,
    *trust.POLICIES,
    *exposure.POLICIES,
    *encryption.POLICIES,
    *cloudtrail.POLICIES,
    *athena.POLICIES,
    *keys.POLICIES,
)

BY_NAME: dict[str, PolicySpec] = {p.name: p for p in POLICIES}
if len(BY_NAME) != len(POLICIES):  # pragma: no cover - a programming error caught on import
    raise RuntimeError("duplicate policy names in the pack")
