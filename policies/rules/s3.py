"""S3 bucket policies, as stack policies.

In pulumi-aws v7 a bucket's encryption, public access block, versioning, policy, logging and
lifecycle are separate resources that name the bucket through their `bucket` input (the bucket's
id). Each policy joins every `aws:s3/bucket:Bucket` with those resources.

Access-log buckets: a bucket that is the `targetBucket` of *another* bucket's logging is an
access-log bucket. S3 server access logging delivers only to buckets encrypted with SSE-S3, so such
a bucket must use AES256 (not KMS), and it is not required to log to itself. That is the only
exemption.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.core import (
    Context,
    Finding,
    PolicySpec,
    Resource,
    UnknownValueError,
    dig,
    json_document,
    known,
    listify,
    of_type,
    per_resource,
    resolve,
)

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
SUB_TYPES = (SSE, PUBLIC_ACCESS_BLOCK, VERSIONING, BUCKET_POLICY, LOGGING, LIFECYCLE)
AWS_MANAGED_S3_KEY = "alias/aws/s3"


@dataclass(slots=True)
class BucketView:
    bucket: Resource
    parts: dict[str, list[Resource]] = field(default_factory=dict)
    log_targets: list[Resource | None] = field(default_factory=list)  # None: outside this stack

    def of(self, type_: str) -> list[Resource]:
        return self.parts.get(type_, [])


@dataclass(slots=True)
class S3Index:
    buckets: dict[str, BucketView]
    unresolved: dict[str, list[str]]  # sub-resource type -> notes (bucket reference unknown)
    access_log_buckets: set[str]  # URNs of buckets that receive other buckets' access logs
    skipped: list[Finding]

    def missing(self, view: BucketView, type_: str, what: str) -> Iterator[str]:
        """A violation, unless a resource of that type could not be matched (then: unknown)."""
        if view.of(type_):
            return
        if self.unresolved.get(type_):
            raise UnknownValueError(f"the bucket of {self.unresolved[type_][0]}")
        yield f"bucket {view.bucket.name!r} has no {what} ({type_.rsplit(':', 1)[-1]})"


def index(resources: Sequence[Resource]) -> S3Index:
    buckets = of_type(resources, BUCKET)
    views = {b.urn: BucketView(b) for b in buckets}
    unresolved: dict[str, list[str]] = {}
    skipped: list[Finding] = []
    logs_of_others: set[str] = set()
    for part in of_type(resources, *SUB_TYPES):
        try:
            owner = resolve(part.ref("bucket"), "bucket", part, buckets, "bucket")
        except UnknownValueError:
            unresolved.setdefault(part.type, []).append(part.where())
            continue
        if owner is None:
            continue  # a bucket managed outside this stack
        views[owner.urn].parts.setdefault(part.type, []).append(part)
        if part.type == LOGGING:
            try:
                target = resolve(part.ref("targetBucket"), "targetBucket", part, buckets, "bucket")
            except UnknownValueError as exc:
                skipped.append(Finding(part.urn, f"skipped {part.where()}: {exc}", skipped=True))
                continue
            views[owner.urn].log_targets.append(target)
            if target is not None and target.urn != owner.urn:
                logs_of_others.add(target.urn)
    return S3Index(views, unresolved, logs_of_others, skipped)


def _run(resources: Sequence[Resource], check: Any) -> Iterator[Finding]:
    idx = index(resources)
    views = list(idx.buckets.values())
    by_urn = {v.bucket.urn: v for v in views}
    yield from per_resource((v.bucket for v in views), lambda b: check(idx, by_urn[b.urn]))


# --- the checks ---------------------------------------------------------------------------


def _sse_defaults(view: BucketView) -> list[Any]:
    rules: list[Any] = []
    for part in view.of(SSE):
        for rule in listify(part.get("rules")):
            rules.append(dig(rule, ("applyServerSideEncryptionByDefault",), default={}))
    return rules


def check_kms_encryption(idx: S3Index, view: BucketView) -> Iterator[str]:
    yield from idx.missing(view, SSE, "default encryption")
    if not view.of(SSE):
        return
    defaults = _sse_defaults(view)
    algorithms = [known(dig(d, ("sseAlgorithm",)), ".sseAlgorithm") for d in defaults]
    name = view.bucket.name
    if view.bucket.urn in idx.access_log_buckets:
        if algorithms != ["AES256"]:
            yield (
                f"access-log bucket {name!r} must use SSE-S3 (AES256): S3 server access "
                f"logging does not deliver to KMS-encrypted buckets (got {algorithms})"
            )
        return
    for d, algorithm in zip(defaults, algorithms, strict=True):
        if algorithm not in ("aws:kms", "aws:kms:dsse"):
            yield f"bucket {name!r} is encrypted with {algorithm!r}, not a customer-managed KMS key"
            continue
        key = dig(d, ("kmsMasterKeyId",))
        if not key or key == AWS_MANAGED_S3_KEY:
            yield (
                f"bucket {name!r} uses the AWS-managed key; set kmsMasterKeyId to a "
                "customer-managed key"
            )
    if not defaults:
        yield f"bucket {name!r}: encryption configuration has no default rule"


def check_public_access_block(idx: S3Index, view: BucketView) -> Iterator[str]:
    yield from idx.missing(view, PUBLIC_ACCESS_BLOCK, "public access block")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for part in view.of(PUBLIC_ACCESS_BLOCK):
        off = [f for f in flags if part.get(f) is not True]
        if off:
            yield f"bucket {view.bucket.name!r}: public access block leaves {', '.join(off)} off"


def check_versioning(idx: S3Index, view: BucketView) -> Iterator[str]:
    yield from idx.missing(view, VERSIONING, "versioning")
    for part in view.of(VERSIONING):
        status = part.get("versioningConfiguration", "status")
        if status != "Enabled":
            yield f"bucket {view.bucket.name!r}: versioning status is {status!r}, not 'Enabled'"


def _denies_insecure_transport(statement: Any) -> bool:
    if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (
        isinstance(principal, dict) and principal.get("AWS") in ("*", ["*"])
    ):
        return False
    if not {"s3:*", "*"} & set(listify(statement.get("Action"))):
        return False
    condition = statement.get("Condition") or {}
    secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
    if str(secure).lower() != "false":
        return False
    resources = [r for r in listify(statement.get("Resource")) if isinstance(r, str)]
    return any(r.endswith("/*") for r in resources) and any(not r.endswith("/*") for r in resources)


def check_tls_only(idx: S3Index, view: BucketView) -> Iterator[str]:
    yield from idx.missing(view, BUCKET_POLICY, "bucket policy")
    for part in view.of(BUCKET_POLICY):
        document = json_document(part.get("policy"), f".policy of {part.where()}")
        statements = listify((document or {}).get("Statement"))
        if any(_denies_insecure_transport(s) for s in statements):
            return
    if view.of(BUCKET_POLICY):
        yield (
            f"bucket {view.bucket.name!r}: no policy statement denies s3:* to everyone when "
            "aws:SecureTransport is false (on the bucket and bucket/*)"
        )


def check_access_logging(idx: S3Index, view: BucketView) -> Iterator[str]:
    if view.bucket.urn in idx.access_log_buckets:
        return  # the access-log bucket itself: exempt from logging (to itself)
    yield from idx.missing(view, LOGGING, "access logging")
    for target in view.log_targets:
        if target is not None and target.urn == view.bucket.urn:
            yield (
                f"bucket {view.bucket.name!r} logs to itself; send access logs to a "
                "dedicated access-log bucket"
            )


def check_lifecycle(idx: S3Index, view: BucketView) -> Iterator[str]:
    yield from idx.missing(view, LIFECYCLE, "lifecycle configuration")
    for part in view.of(LIFECYCLE):
        rules = listify(part.get("rules"))
        if not any(isinstance(r, dict) and r.get("status") == "Enabled" for r in rules):
            yield f"bucket {view.bucket.name!r}: lifecycle configuration has no enabled rule"


def _stack(check: Any) -> Any:
    def run(resources: Sequence[Resource], _ctx: Context) -> Iterable[Finding]:
        idx = index(resources)
        yield from idx.skipped
        yield from _run(resources, check)

    run.__name__ = check.__name__
    return run


POLICIES = (
    PolicySpec(
        name="s3-bucket-kms-encryption",
        description="Buckets are encrypted by default with a customer-managed KMS key "
        "(access-log buckets: SSE-S3, as S3 log delivery requires).",
        enforcement="mandatory",
        severity="high",
        reference="CKV_AWS_145; CIS AWS Foundations v1.4.0 2.1.1",
        stack_check=_stack(check_kms_encryption),
    ),
    PolicySpec(
        name="s3-bucket-public-access-block",
        description="Every bucket has a public access block with all four settings on.",
        enforcement="mandatory",
        severity="critical",
        reference="CKV2_AWS_6; CIS AWS Foundations v3.0.0 2.1.4",
        stack_check=_stack(check_public_access_block),
    ),
    PolicySpec(
        name="s3-bucket-versioning",
        description="Every bucket has versioning enabled.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_21",
        stack_check=_stack(check_versioning),
    ),
    PolicySpec(
        name="s3-bucket-tls-only",
        description="Every bucket policy denies requests that do not use TLS "
        "(aws:SecureTransport false).",
        enforcement="mandatory",
        severity="high",
        reference="CIS AWS Foundations v3.0.0 2.1.1; AWS Security Hub S3.5",
        stack_check=_stack(check_tls_only),
    ),
    PolicySpec(
        name="s3-bucket-access-logging",
        description="Every bucket except the access-log bucket sends server access logs to "
        "another bucket.",
        enforcement="mandatory",
        severity="medium",
        reference="CKV_AWS_18; AWS Security Hub S3.9",
        stack_check=_stack(check_access_logging),
    ),
    PolicySpec(
        name="s3-bucket-lifecycle",
        description="Every bucket has a lifecycle configuration with an enabled rule.",
        enforcement="advisory",
        severity="low",
        reference="CKV2_AWS_61",
        stack_check=_stack(check_lifecycle),
    ),
)
