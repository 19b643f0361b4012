"""S3: buckets and the split resources that configure them (versioning, encryption, policy,
logging, lifecycle, object lock, public access block, ownership).

moto is stricter than S3 in two places, and the realizers adapt what moto holds and say so in the
sandbox's notes: a bucket policy's conditioned Deny statements are not stored (moto applies them
as if their condition always held, refusing every object request: `moto_effective_policy`), and a
bucket's access logging is put once the whole program is registered (`RealizeContext.defer`),
judged on the target's declared policy as S3 does (`log_delivery_refusal`), and put past moto's
narrower permission check when the policy grants delivery.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    NotEmulated,
    Reader,
    RealizeContext,
    RealizeError,
    Registration,
    exists,
    pascal,
    same_json,
    tag_list,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service, id_of_input

# --- the plan engine's fakes


# The outputs the plan engine's fake and the sandbox's realizer both answer.
def _bucket_state(bucket: str, region: str) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
        "region": region,
    }


def _fake_bucket(f: Fake) -> Outputs:
    return f.physical, _bucket_state(f.physical, f.region)


# --- the sandbox's realizers and readers


def _read_bucket(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("s3").head_bucket(Bucket=ident)


def _bucket(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    s3 = ctx.client("s3")
    name = reg.physical(key="bucket", prefix_key="bucketPrefix", lower=True)
    if exists(lambda: s3.head_bucket(Bucket=name), "404", "NoSuchBucket") is None:
        request: dict[str, Any] = {"Bucket": name}
        if ctx.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        if reg.get("objectLockEnabled"):
            request["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**request)
    if reg.get("tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(reg.get("tags"))})
    for legacy in (
        "versioning",
        "serverSideEncryptionConfiguration",
        "lifecycleRules",
        "logging",
        "policy",
        "objectLockConfiguration",
        "website",
        "corsRules",
    ):
        if reg.get(legacy):
            ctx.note(
                reg,
                f"inline `{legacy}` (deprecated in pulumi-aws v7) is not realized; "
                "use the separate bucket resource",
            )
    return name, {**_bucket_state(name, ctx.region), "hostedZoneId": "Z3AQBSTGFYJSTF"}


def _bucket_of(reg: Registration) -> str:
    return str(reg.require("bucket"))


def _reader(method: str, **fixed: Any) -> Reader:
    def read(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
        return getattr(ctx.client("s3"), method)(Bucket=state.get("bucket") or ident, **fixed)

    return read


def _bucket_sse(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    rules = pascal(
        reg.require("rules"), {"sseAlgorithm": "SSEAlgorithm", "kmsMasterKeyId": "KMSMasterKeyID"}
    )
    ctx.client("s3").put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules}
    )
    return bucket, {}


def _bucket_versioning(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    config = reg.require("versioningConfiguration")
    status = config.get("status")
    if config.get("mfaDelete"):
        ctx.note(reg, "mfaDelete dropped: it needs an MFA device serial, which the sandbox lacks")
    if status == "Disabled":  # only valid on a bucket that was never versioned: nothing to do
        return bucket, {}
    ctx.client("s3").put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": status}
    )
    return bucket, {}


def _bucket_pab(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    ctx.client("s3").put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": bool(reg.get("blockPublicAcls", False)),
            "IgnorePublicAcls": bool(reg.get("ignorePublicAcls", False)),
            "BlockPublicPolicy": bool(reg.get("blockPublicPolicy", False)),
            "RestrictPublicBuckets": bool(reg.get("restrictPublicBuckets", False)),
        },
    )
    return bucket, {}


def _bucket_ownership(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    rule = reg.require("rule")
    ctx.client("s3").put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": rule["objectOwnership"]}]}
    )
    return bucket, {}


def moto_effective_policy(policy: str) -> tuple[str | None, list[str]]:
    """The bucket policy to store in moto, and the statements left out (by Sid or index).

    moto enforces bucket policies on object reads and writes, but evaluates no condition key of the
    request: it applies a conditioned statement as if its condition held. A conditioned Deny (TLS
    only, SSE-KMS only, ...) would then refuse every request. Those statements are left out of
    moto's copy; the rest is stored as written. None: nothing is left to store."""
    document = json.loads(policy)
    kept, dropped = [], []
    for i, statement in enumerate(_listed(document.get("Statement", []))):
        if statement.get("Effect") == "Deny" and statement.get("Condition"):
            dropped.append(str(statement.get("Sid", f"#{i}")))
        else:
            kept.append(statement)
    if not dropped:
        return policy, []
    if not kept:
        return None, dropped
    return json.dumps({**document, "Statement": kept}), dropped


def _read_bucket_policy(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    s3 = ctx.client("s3")
    stored = exists(lambda: s3.get_bucket_policy(Bucket=ident), "NoSuchBucketPolicy")
    wanted, _ = moto_effective_policy(str(state["policy"]))
    if wanted is None and stored is None:
        return None
    if stored is None or wanted is None or not same_json(stored["Policy"], wanted):
        raise RealizeError(f"the policy of bucket {ident} is not the one realized")
    return stored


def _bucket_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    s3 = ctx.client("s3")
    declared = str(reg.require("policy"))
    effective, dropped = moto_effective_policy(declared)
    with ctx._lock:
        ctx.bucket_policies[bucket] = declared
    if effective is None:
        exists(lambda: s3.delete_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")
    else:
        s3.put_bucket_policy(Bucket=bucket, Policy=effective)
    if dropped:
        ctx.note(
            reg,
            f"conditioned Deny statement(s) {', '.join(dropped)} not stored in moto: moto ignores "
            "a statement's Condition and would deny every object request (the sandbox's "
            "loopback HTTP stands in for TLS; its writers send SSE-KMS with the lake key)",
        )
    return bucket, {}


LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _condition_holds(operator: str, values: Any, actual: str | None) -> bool | None:
    """One condition key's test, as IAM evaluates it; None when the sandbox cannot evaluate it."""
    import fnmatch

    base = operator.removesuffix("IfExists")
    if actual is None:
        return operator.endswith("IfExists")
    wanted = [str(v) for v in _listed(values)]
    if base in ("StringEquals", "ArnEquals"):
        return actual in wanted
    if base in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, w) for w in wanted)
    if base == "Bool":
        return actual.lower() in (w.lower() for w in wanted)
    return None


def _statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool | None:
    """Whether a bucket-policy statement covers the log-delivery request (None: cannot tell)."""
    import fnmatch

    principal = statement.get("Principal")
    if principal != "*" and not (
        isinstance(principal, dict)
        and (
            principal.get("AWS") == "*" or LOG_DELIVERY_SERVICE in _listed(principal.get("Service"))
        )
    ):
        return False
    actions = [str(a).lower() for a in _listed(statement.get("Action", []))]
    if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
        return False
    if not any(fnmatch.fnmatchcase(resource, str(r)) for r in _listed(statement.get("Resource"))):
        return False
    for operator, tests in (statement.get("Condition") or {}).items():
        for key, values in tests.items():
            held = _condition_holds(str(operator), values, context.get(str(key)))
            if held is not True:
                return held
    return True


def log_delivery_refusal(
    policy: str | None, target: str, prefix: str, source_bucket: str, account_id: str
) -> str | None:
    """Why S3 could not deliver `source_bucket`'s access logs under `target/prefix` given the
    target's bucket policy (None: it can). Evaluated like IAM: an explicit Deny wins, an Allow to
    the logging service is needed; the request carries the source bucket's ARN and account and
    TLS. A condition the sandbox cannot evaluate makes an Allow not count and a Deny count."""
    if not policy:
        return f"the target bucket {target} has no policy letting {LOG_DELIVERY_SERVICE} write"
    resource = f"arn:aws:s3:::{target}/{prefix}example-log-object"
    context = {
        "aws:SourceArn": f"arn:aws:s3:::{source_bucket}",
        "aws:SourceAccount": account_id,
        "aws:SecureTransport": "true",
    }
    allowed = False
    for statement in _listed(json.loads(policy).get("Statement", [])):
        applies = _statement_applies(statement, "s3:PutObject", resource, context)
        if statement.get("Effect") == "Deny" and applies is not False:
            return f"statement {statement.get('Sid', '(no Sid)')!r} of {target}'s policy denies it"
        if statement.get("Effect") == "Allow" and applies:
            allowed = True
    if not allowed:
        return (
            f"no statement of {target}'s policy allows {LOG_DELIVERY_SERVICE} s3:PutObject on "
            f"arn:aws:s3:::{target}/{prefix}* from arn:aws:s3:::{source_bucket}"
        )
    return None


def _moto_accepts_logging_policy(policy: str, target: str, prefix: str) -> bool:
    """moto's own (stricter) PutBucketLogging check, so the sandbox never sends what crashes it:
    every statement's Principal a map (a "*" makes moto fail with HTTP 500), and one Allow to the
    logging service with `s3:PutObject` whose single Resource is exactly `target/prefix*`."""
    statements = _listed(json.loads(policy).get("Statement", []))
    if any(not isinstance(st.get("Principal", {}), dict) for st in statements):
        return False
    exact = {f"arn:aws:s3:::{target}/{prefix}*", f"arn:aws:s3:::{target}/*"}
    return any(
        st.get("Principal", {}).get("Service") == LOG_DELIVERY_SERVICE
        and st.get("Effect") == "Allow"
        and "s3:PutObject" in _listed(st.get("Action", []))
        and isinstance(st.get("Resource"), str)
        and st["Resource"] in exact
        for st in statements
    )


def _put_logging(
    ctx: RealizeContext, reg: Registration, bucket: str, enabled: Mapping[str, Any]
) -> None:
    """Runs once the whole program is registered (so the target's policy is in place)."""
    s3 = ctx.client("s3")
    target, prefix = str(enabled["TargetBucket"]), str(enabled["TargetPrefix"])
    found = exists(lambda: s3.get_bucket_policy(Bucket=target), "NoSuchBucketPolicy")
    stored = str(found["Policy"]) if found else None
    # judged on the policy as declared (moto's copy may lack conditioned Deny statements)
    declared = ctx.bucket_policies.get(target, stored)
    refusal = log_delivery_refusal(declared, target, prefix, bucket, ctx.account_id)
    if refusal is not None:
        raise NotEmulated(
            f"{refusal}; moto refuses such logging (S3 would accept it and deliver nothing)"
        )
    status = {"LoggingEnabled": dict(enabled)}
    if stored is not None and _moto_accepts_logging_policy(stored, target, prefix):
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=status)
        return
    # The policy grants delivery (checked above, as S3 evaluates it) but moto's check cannot read
    # it: put the logging while the target holds only the grant moto recognizes, then put the
    # program's policy back. Nothing else runs meanwhile (deferred actions run one by one).
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY_SERVICE},
                "Action": ["s3:PutObject"],
                "Resource": f"arn:aws:s3:::{target}/{prefix}*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=target, Policy=json.dumps(grant))
    try:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=status)
    finally:
        if stored is None:
            s3.delete_bucket_policy(Bucket=target)
        else:
            s3.put_bucket_policy(Bucket=target, Policy=stored)
    ctx.note(
        reg,
        "the target's policy grants log delivery (checked by the sandbox as S3 evaluates it), "
        'but moto\'s PutBucketLogging check cannot read it (a Principal "*" statement, a '
        "Resource list, conditions): the logging was put while the target held only the plain "
        "grant, and its policy was put back",
    )


def _bucket_logging(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    enabled: dict[str, Any] = {
        "TargetBucket": reg.require("targetBucket"),
        "TargetPrefix": reg.get("targetPrefix", ""),
    }
    key_format = reg.get("targetObjectKeyFormat")
    if key_format:
        enabled["TargetObjectKeyFormat"] = pascal(key_format)
        if "simplePrefix" in key_format:
            enabled["TargetObjectKeyFormat"]["SimplePrefix"] = {}
        ctx.note(reg, "targetObjectKeyFormat is sent, but moto neither stores nor returns it")
    if reg.get("targetGrants"):
        ctx.note(reg, "targetGrants dropped: the sandbox realizes logging without ACL grants")
    # Nothing in a program orders a bucket's logging after its *target's* policy, and moto (unlike
    # S3 with ACLs disabled) checks the delivery permission on PutBucketLogging: put it once every
    # resource is registered.
    ctx.defer(reg, bucket, lambda: _put_logging(ctx, reg, bucket, enabled))
    return bucket, {}


_LIFECYCLE_RENAMES = {"id": "ID", "and": "And"}


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = pascal(dict(rule), _LIFECYCLE_RENAMES)
    flt = rule.get("filter")
    if flt is None:  # the provider sends an empty filter: the rule applies to the whole bucket
        shaped["Filter"] = {}
    else:
        shaped["Filter"] = pascal(flt, _LIFECYCLE_RENAMES)
        tag = shaped["Filter"].get("Tag")
        if isinstance(tag, dict):
            shaped["Filter"]["Tag"] = {"Key": tag.get("Key"), "Value": tag.get("Value")}
        conj = shaped["Filter"].get("And")
        if isinstance(conj, dict) and isinstance(conj.get("Tags"), dict):
            conj["Tags"] = tag_list(conj["Tags"])
    return shaped


def _bucket_lifecycle(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    request: dict[str, Any] = {
        "Bucket": bucket,
        "LifecycleConfiguration": {"Rules": [_lifecycle_rule(r) for r in reg.require("rules")]},
    }
    if reg.get("transitionDefaultMinimumObjectSize"):
        request["TransitionDefaultMinimumObjectSize"] = reg.get(
            "transitionDefaultMinimumObjectSize"
        )
    ctx.client("s3").put_bucket_lifecycle_configuration(**request)
    return bucket, {}


def _bucket_object_lock(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    config: dict[str, Any] = {"ObjectLockEnabled": reg.get("objectLockEnabled", "Enabled")}
    if reg.get("rule"):
        config["Rule"] = pascal(reg.get("rule"))
    ctx.client("s3").put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=config)
    return bucket, {}


# --- the registry entries

SERVICE = Service(
    owns=("s3",),
    types=(
        AwsType(
            "aws:s3/bucket:Bucket",
            fake=_fake_bucket,
            realize=_bucket,
            read=_read_bucket,
            force_new=frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
        ),
        AwsType(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            fake=id_of_input("bucket"),
            realize=_bucket_sse,
            read=_reader("get_bucket_encryption"),
        ),
        AwsType(
            "aws:s3/bucketVersioning:BucketVersioning",
            fake=id_of_input("bucket"),
            realize=_bucket_versioning,
            read=_reader("get_bucket_versioning"),
        ),
        AwsType(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            fake=id_of_input("bucket"),
            realize=_bucket_pab,
            read=_reader("get_public_access_block"),
        ),
        AwsType(
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            fake=id_of_input("bucket"),
            realize=_bucket_ownership,
            read=_reader("get_bucket_ownership_controls"),
        ),
        AwsType(
            "aws:s3/bucketPolicy:BucketPolicy",
            fake=id_of_input("bucket"),
            realize=_bucket_policy,
            read=_read_bucket_policy,
        ),
        AwsType(
            "aws:s3/bucketLogging:BucketLogging",
            fake=id_of_input("bucket"),
            realize=_bucket_logging,
            read=_reader("get_bucket_logging"),
        ),
        AwsType(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            fake=id_of_input("bucket"),
            realize=_bucket_lifecycle,
            read=_reader("get_bucket_lifecycle_configuration"),
        ),
        AwsType(
            "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
            fake=id_of_input("bucket"),
            realize=_bucket_object_lock,
            read=_reader("get_object_lock_configuration"),
        ),
    ),
)
