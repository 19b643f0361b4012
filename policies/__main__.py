"""The CrossGuard policy pack: `pulumi preview --policy-pack policies`.

Builds the `PolicyPack` only; the policies live in `policies/rules/` as pure functions that
`mlplat preview` runs over the recorded plan too.
"""

import os
import sys

# The CLI runs this file from `policies/`; make the repository root importable either way.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.crossguard import PACK_NAME, crossguard_policies

PolicyPack(
    name=PACK_NAME,
    policies=crossguard_policies(),
    enforcement_level=EnforcementLevel.ADVISORY,
    description="ml-platform guardrails: S3, KMS, IAM, EKS, EC2, SageMaker, monitoring, tags.",
)
