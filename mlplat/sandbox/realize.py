"""Realize the Pulumi program's resources in the sandbox's moto server.

`RealizingMocks` is the recorder's `PlanMocks` with one change: `new_resource` creates the resource
in moto through boto3 and answers with the *real* id and outputs (ARNs, names, URLs), so every
resource that depends on it is registered with real values. Pulumi registers a resource only once
the resources its inputs reference are registered, so a bucket policy always arrives after its
bucket.

Each supported type token has a realizer in `REALIZERS` (create-or-update, keyed by a
deterministic physical name, so a second run against the same server changes nothing) and a
reader in `READERS` (read the resource back for `verify-platform`). Everything else (Kubernetes
objects, EKS, types without a realizer) is listed in `not_emulated` with the reason and gets the
recorder's fake id, so the program still completes; component resources are not realized.
Fields moto does not store are dropped and listed in `notes`; a realizer that fails is listed in
`failed`. Nothing is skipped silently.

Where moto is stricter than AWS or misjudges a valid input, the realizer adapts what moto holds and
says so in `notes`: a bucket policy's conditioned Deny statements are not stored (moto applies them
as if their condition always held, refusing every object request: `moto_effective_policy`), and a
bucket's access logging is put once the whole program is registered (`RealizeContext.defer`, run by
`RealizingMocks.finish`; `realize(...)` does both), judged on the target's declared policy as S3
does (`log_delivery_refusal`), and put past moto's narrower permission check when the policy grants
delivery.

Resources AWS gives no name to (KMS keys, VPC parts) carry one extra tag, `SANDBOX_TAG`, holding
their physical name: that is how a second run finds them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pulumi
from botocore.config import Config

from mlplat.plan.engine import Plan, PlanMocks
from stacks.settings import Settings

SANDBOX_TAG = "mlplat:sandbox-name"


@dataclass
class RealizeContext:
    """What every realizer shares: a boto3 session pointed at the sandbox and where it is."""

    session: boto3.Session
    endpoint_url: str
    region: str
    account_id: str
    notes: list[tuple[str, str, str]] = field(default_factory=list)
    # (type, name, id, action): work that must wait until every resource is registered
    deferred: list[tuple[str, str, str, Callable[[], None]]] = field(default_factory=list)
    # bucket -> the policy the program declared (moto may hold less: `moto_effective_policy`)
    bucket_policies: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str) -> Any:
        # boto3 sessions are not thread-safe; clients are. The mock monitor may call us from
        # several threads, so clients are made once, under a lock.
        with self._lock:
            if service not in self._clients:
                # moto never throttles: a retry only repeats a server error, slowly
                self._clients[service] = self.session.client(  # type: ignore[call-overload]
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=Config(retries={"total_max_attempts": 1}),
                )
            return self._clients[service]

    def note(self, reg: Registration, text: str) -> None:
        with self._lock:
            self.notes.append((reg.type, reg.name, text))

    def defer(self, reg: Registration, ident: str, action: Callable[[], None]) -> None:
        """Run `action` after the program has registered everything (`RealizingMocks.finish`)."""
        with self._lock:
            self.deferred.append((reg.type, reg.name, ident, action))

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:aws:{service}:{where}:{self.account_id}:{resource}"


@dataclass(frozen=True)
class Registration:
    """One registered custom resource, as the realizer sees it (inputs camelCase, no secrets)."""

    type: str
    name: str
    inputs: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        value = self.inputs.get(key)
        return default if value is None else value

    def require(self, key: str) -> Any:
        value = self.inputs.get(key)
        if value is None or value == "":
            raise RealizeError(f"{self.type} {self.name!r}: input {key!r} is required")
        return value

    def physical(
        self,
        *,
        key: str = "name",
        prefix_key: str = "namePrefix",
        max_len: int = 63,
        lower: bool = False,
        sep: str = "-",
        suffix: str = "",
    ) -> str:
        """The explicit name, or `<prefix|logical>-<7 hex>` the way Pulumi autonames (stable here:
        the hex is derived from the type and logical name, as `engine.fake_physical` does)."""
        explicit = self.inputs.get(key)
        if explicit:
            return str(explicit)
        digest = hashlib.sha256(f"{self.type}::{self.name}".encode()).hexdigest()[:7]
        prefix = self.inputs.get(prefix_key)
        if prefix:
            base = f"{prefix}{digest}"
        else:
            stem = self.name[: max_len - len(digest) - len(sep) - len(suffix)]
            base = f"{stem}{sep}{digest}"
        base = base.lower() if lower else base
        if sep != "-":
            base = base.replace("-", sep)
        return f"{base[: max_len - len(suffix)]}{suffix}"


class RealizeError(RuntimeError):
    """A resource could not be realized in the sandbox."""


class NotEmulated(Exception):
    """The resource is valid but moto cannot hold it (the realizer says why)."""


Realizer = Callable[[RealizeContext, Registration], tuple[str, dict[str, Any]]]
Reader = Callable[[RealizeContext, str, Mapping[str, Any]], Any]

REALIZERS: dict[str, Realizer] = {}
READERS: dict[str, Reader] = {}


def realizer(token: str, reader: Reader) -> Callable[[Realizer], Realizer]:
    def register(fn: Realizer) -> Realizer:
        REALIZERS[token] = fn
        READERS[token] = reader
        return fn

    return register


def not_emulated_reason(type_: str) -> str:
    if type_.startswith("kubernetes:"):
        return "a Kubernetes object: the sandbox has no Kubernetes API server to hold it"
    if type_.startswith("aws:eks/"):
        return (
            "EKS: moto records clusters but runs no control plane or nodes, so nothing "
            "scheduled on the cluster could run"
        )
    if type_.startswith("pulumi:providers:"):
        return "a provider instance: configuration, not a cloud resource"
    if not type_.startswith("aws:"):
        return f"package {type_.split(':', 1)[0]!r} is not emulated by the sandbox"
    return "no sandbox realizer for this type (moto may not support it)"


# --- shaping Pulumi inputs into boto3 requests


def plain(value: Any) -> Any:
    """Secrets unwrapped, integral floats back to int (the engine hands numbers over as doubles)."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value.get("value"))
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def pascal(
    value: Any,
    renames: Mapping[str, str] | None = None,
    opaque: frozenset[str] = frozenset(),
) -> Any:
    """camelCase Pulumi shape -> PascalCase boto3 shape, recursively. `renames` overrides a key's
    boto3 name wherever it appears; keys in `opaque` are user maps and copied verbatim. Empty
    values (None, {} where not opaque) are dropped, as the provider would not send them."""
    renames = renames or {}
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            name = renames.get(key, key[:1].upper() + key[1:])
            out[name] = item if key in opaque else pascal(item, renames, opaque)
        return out
    if isinstance(value, list):
        return [pascal(v, renames, opaque) for v in value]
    return value


def drop_empty(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None and v != [] and v != {}}


def tag_list(
    tags: Mapping[str, str] | None, key: str = "Key", value: str = "Value"
) -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in sorted((tags or {}).items())]


def tag_spec(
    resource_type: str, tags: Mapping[str, str] | None, physical: str
) -> list[dict[str, Any]]:
    all_tags = {**(tags or {}), SANDBOX_TAG: physical}
    return [{"ResourceType": resource_type, "Tags": tag_list(all_tags)}]


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def exists(call: Callable[[], Any], *missing_codes: str) -> Any | None:
    """The response of a describe call, or None when the resource is not there."""
    try:
        return call()
    except Exception as exc:
        code = error_code(exc)
        if code and (
            not missing_codes or code in missing_codes or "NotFound" in code or "NoSuch" in code
        ):
            return None
        raise


def same_json(a: Any, b: Any) -> bool:
    def load(v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v

    try:
        return bool(load(a) == load(b))
    except (TypeError, ValueError):
        return bool(a == b)


# --- S3


def _read_bucket(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("s3").head_bucket(Bucket=ident)


@realizer("aws:s3/bucket:Bucket", _read_bucket)
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
    return name, {
        "bucket": name,
        "arn": f"arn:aws:s3:::{name}",
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
        "hostedZoneId": "Z3AQBSTGFYJSTF",
        "region": ctx.region,
    }


def _bucket_of(reg: Registration) -> str:
    return str(reg.require("bucket"))


def _reader(method: str, **fixed: Any) -> Reader:
    def read(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
        return getattr(ctx.client("s3"), method)(Bucket=state.get("bucket") or ident, **fixed)

    return read


@realizer(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    _reader("get_bucket_encryption"),
)
def _bucket_sse(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    rules = pascal(
        reg.require("rules"), {"sseAlgorithm": "SSEAlgorithm", "kmsMasterKeyId": "KMSMasterKeyID"}
    )
    ctx.client("s3").put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules}
    )
    return bucket, {}


@realizer("aws:s3/bucketVersioning:BucketVersioning", _reader("get_bucket_versioning"))
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


@realizer(
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", _reader("get_public_access_block")
)
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


@realizer(
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    _reader("get_bucket_ownership_controls"),
)
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


@realizer("aws:s3/bucketPolicy:BucketPolicy", _read_bucket_policy)
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


@realizer("aws:s3/bucketLogging:BucketLogging", _reader("get_bucket_logging"))
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


@realizer(
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    _reader("get_bucket_lifecycle_configuration"),
)
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


@realizer(
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    _reader("get_object_lock_configuration"),
)
def _bucket_object_lock(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    bucket = _bucket_of(reg)
    config: dict[str, Any] = {"ObjectLockEnabled": reg.get("objectLockEnabled", "Enabled")}
    if reg.get("rule"):
        config["Rule"] = pascal(reg.get("rule"))
    ctx.client("s3").put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=config)
    return bucket, {}


# --- KMS


def _find_key(ctx: RealizeContext, physical: str) -> str | None:
    kms = ctx.client("kms")
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            if any(t["TagKey"] == SANDBOX_TAG and t["TagValue"] == physical for t in tags):
                return str(key["KeyId"])
    return None


def _read_key(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("kms").describe_key(KeyId=ident)


@realizer("aws:kms/key:Key", _read_key)
def _kms_key(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    kms = ctx.client("kms")
    physical = reg.physical(key="__none__")
    key_id = _find_key(ctx, physical)
    if key_id is None:
        request = drop_empty(
            {
                "Description": reg.get("description"),
                "KeyUsage": reg.get("keyUsage"),
                "KeySpec": reg.get("customerMasterKeySpec"),
                "Policy": reg.get("policy"),
                "MultiRegion": reg.get("multiRegion"),
                "Tags": tag_list(
                    {**(reg.get("tags") or {}), SANDBOX_TAG: physical}, "TagKey", "TagValue"
                ),
            }
        )
        key_id = str(kms.create_key(**request)["KeyMetadata"]["KeyId"])
    elif reg.get("policy"):
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=reg.get("policy"))
    if reg.get("enableKeyRotation"):
        rotation = (
            {"RotationPeriodInDays": reg.get("rotationPeriodInDays")}
            if reg.get("rotationPeriodInDays")
            else {}
        )
        kms.enable_key_rotation(KeyId=key_id, **rotation)
    if reg.get("deletionWindowInDays"):
        ctx.note(
            reg,
            "deletionWindowInDays applies when the key is deleted; the sandbox never deletes keys",
        )
    return key_id, {"keyId": key_id, "arn": ctx.arn("kms", f"key/{key_id}")}


def _read_alias(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    aliases = ctx.client("kms").list_aliases()["Aliases"]
    found = [a for a in aliases if a["AliasName"] == ident]
    if not found:
        raise RealizeError(f"KMS alias {ident} not found")
    return found[0]


@realizer("aws:kms/alias:Alias", _read_alias)
def _kms_alias(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    kms = ctx.client("kms")
    name = reg.physical() if reg.get("name") or reg.get("namePrefix") else f"alias/{reg.physical()}"
    target = str(reg.require("targetKeyId"))
    target_id = kms.describe_key(KeyId=target)["KeyMetadata"]["KeyId"]
    current = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == name]
    if not current:
        kms.create_alias(AliasName=name, TargetKeyId=target_id)
    elif current[0].get("TargetKeyId") != target_id:
        kms.update_alias(AliasName=name, TargetKeyId=target_id)
    return name, {
        "name": name,
        "arn": ctx.arn("kms", name),
        "targetKeyArn": ctx.arn("kms", f"key/{target_id}"),
    }


def _read_key_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("kms").get_key_policy(KeyId=ident, PolicyName="default")


@realizer("aws:kms/keyPolicy:KeyPolicy", _read_key_policy)
def _kms_key_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    key_id = str(reg.require("keyId"))
    ctx.client("kms").put_key_policy(
        KeyId=key_id, PolicyName="default", Policy=str(reg.require("policy"))
    )
    return key_id, {}


def _read_grant(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    key_id, grant_id = ident.split(":", 1)
    grants = ctx.client("kms").list_grants(KeyId=key_id)["Grants"]
    if not any(g["GrantId"] == grant_id for g in grants):
        raise RealizeError(f"grant {grant_id} not on key {key_id}")
    return grants


@realizer("aws:kms/grant:Grant", _read_grant)
def _kms_grant(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    kms = ctx.client("kms")
    key_id = str(reg.require("keyId"))
    name = reg.physical(max_len=256)
    current = [g for g in kms.list_grants(KeyId=key_id)["Grants"] if g.get("Name") == name]
    if current:
        grant_id, token = current[0]["GrantId"], ""
    else:
        constraints = reg.get("constraints") or []
        response = kms.create_grant(
            **drop_empty(
                {
                    "KeyId": key_id,
                    "Name": name,
                    "GranteePrincipal": reg.require("granteePrincipal"),
                    "RetiringPrincipal": reg.get("retiringPrincipal"),
                    "Operations": reg.require("operations"),
                    "GrantTokens": reg.get("grantCreationTokens"),
                    "Constraints": pascal(
                        constraints[0],
                        opaque=frozenset({"encryptionContextEquals", "encryptionContextSubset"}),
                    )
                    if constraints
                    else None,
                }
            )
        )
        grant_id, token = response["GrantId"], response.get("GrantToken", "")
    return f"{key_id}:{grant_id}", {"grantId": grant_id, "grantToken": token}


# --- IAM


def _read_role(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("iam").get_role(RoleName=ident)


@realizer("aws:iam/role:Role", _read_role)
def _iam_role(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    iam = ctx.client("iam")
    name = reg.physical(max_len=64)
    trust = str(reg.require("assumeRolePolicy"))
    found = exists(lambda: iam.get_role(RoleName=name), "NoSuchEntity")
    if found is None:
        role = iam.create_role(
            **drop_empty(
                {
                    "RoleName": name,
                    "Path": reg.get("path", "/"),
                    "AssumeRolePolicyDocument": trust,
                    "Description": reg.get("description"),
                    "MaxSessionDuration": reg.get("maxSessionDuration"),
                    "PermissionsBoundary": reg.get("permissionsBoundary"),
                    "Tags": tag_list(reg.get("tags")),
                }
            )
        )["Role"]
    else:
        role = found["Role"]
        if not same_json(role.get("AssumeRolePolicyDocument"), trust):
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    for inline in reg.get("inlinePolicies", []):
        if inline.get("name") and inline.get("policy"):
            iam.put_role_policy(
                RoleName=name, PolicyName=inline["name"], PolicyDocument=inline["policy"]
            )
    for arn in reg.get("managedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    return name, {
        "name": name,
        "arn": role["Arn"],
        "uniqueId": role["RoleId"],
        "createDate": str(role.get("CreateDate", "")),
    }


def _read_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("iam").get_policy(PolicyArn=ident)


@realizer("aws:iam/policy:Policy", _read_policy)
def _iam_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    iam = ctx.client("iam")
    name = reg.physical(max_len=128)
    path = reg.get("path", "/")
    document = str(reg.require("policy"))
    arn = f"arn:aws:iam::{ctx.account_id}:policy{path}{name}"
    found = exists(lambda: iam.get_policy(PolicyArn=arn), "NoSuchEntity")
    if found is None:
        policy = iam.create_policy(
            **drop_empty(
                {
                    "PolicyName": name,
                    "Path": path,
                    "PolicyDocument": document,
                    "Description": reg.get("description"),
                    "Tags": tag_list(reg.get("tags")),
                }
            )
        )["Policy"]
    else:
        policy = found["Policy"]
        version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        if not same_json(version["PolicyVersion"]["Document"], document):
            versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
            if len(versions) >= 5:  # IAM keeps five versions
                oldest = min(
                    (v for v in versions if not v["IsDefaultVersion"]),
                    key=lambda v: v["CreateDate"],
                )
                iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
            iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    return arn, {
        "arn": arn,
        "name": name,
        "path": path,
        "policyId": policy["PolicyId"],
        "attachmentCount": policy.get("AttachmentCount", 0),
    }


def _read_role_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    role, name = ident.split(":", 1)
    return ctx.client("iam").get_role_policy(RoleName=role, PolicyName=name)


@realizer("aws:iam/rolePolicy:RolePolicy", _read_role_policy)
def _iam_role_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    role = str(reg.require("role"))
    name = reg.physical(max_len=128)
    ctx.client("iam").put_role_policy(
        RoleName=role, PolicyName=name, PolicyDocument=str(reg.require("policy"))
    )
    return f"{role}:{name}", {"name": name}


def _read_attachment(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    role, arn = str(state["role"]), str(state["policyArn"])
    attached = ctx.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    if not any(p["PolicyArn"] == arn for p in attached):
        raise RealizeError(f"{arn} is not attached to role {role}")
    return attached


@realizer("aws:iam/rolePolicyAttachment:RolePolicyAttachment", _read_attachment)
def _iam_attachment(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    role, arn = str(reg.require("role")), str(reg.require("policyArn"))
    ctx.client("iam").attach_role_policy(RoleName=role, PolicyArn=arn)
    digest = hashlib.sha256(arn.encode()).hexdigest()[:12]
    return f"{role}-{digest}", {}


# --- Glue and Athena


def _read_database(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    return ctx.client("glue").get_database(Name=state["name"])


@realizer("aws:glue/catalogDatabase:CatalogDatabase", _read_database)
def _glue_database(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    glue = ctx.client("glue")
    name = reg.physical(lower=True, sep="_", max_len=255)
    catalog = str(reg.get("catalogId", ctx.account_id))
    database = drop_empty(
        {
            "Name": name,
            "Description": reg.get("description"),
            "LocationUri": reg.get("locationUri"),
            "Parameters": reg.get("parameters"),
        }
    )
    found = exists(lambda: glue.get_database(Name=name), "EntityNotFoundException")
    if found is None:
        request: dict[str, Any] = {"DatabaseInput": database}
        if reg.get("tags"):
            request["Tags"] = dict(reg.get("tags"))
        glue.create_database(**request)
    elif any(found["Database"].get(k) != v for k, v in database.items()):
        glue.update_database(Name=name, DatabaseInput=database)
    return f"{catalog}:{name}", {
        "name": name,
        "catalogId": catalog,
        "arn": ctx.arn("glue", f"database/{name}"),
    }


_TABLE_RENAMES = {
    "serDeInfo": "SerdeInfo",
    "skewedColumnValueLocationMaps": "SkewedColumnValueLocationMaps",
}
_TABLE_OPAQUE = frozenset({"parameters", "skewedColumnValueLocationMaps"})


def _table_input(reg: Registration, name: str) -> dict[str, Any]:
    table = drop_empty(
        {
            "Name": name,
            "Description": reg.get("description"),
            "Owner": reg.get("owner"),
            "Retention": reg.get("retention"),
            "TableType": reg.get("tableType"),
            "Parameters": reg.get("parameters"),
            "PartitionKeys": pascal(reg.get("partitionKeys"), _TABLE_RENAMES, _TABLE_OPAQUE),
            "StorageDescriptor": pascal(
                reg.get("storageDescriptor"), _TABLE_RENAMES, _TABLE_OPAQUE
            ),
            "ViewOriginalText": reg.get("viewOriginalText"),
            "ViewExpandedText": reg.get("viewExpandedText"),
        }
    )
    for dropped in ("partitionIndices", "openTableFormatInput", "targetTable"):
        if reg.get(dropped):
            raise RealizeError(f"{reg.name}: `{dropped}` is not supported by the sandbox")
    return table


def _read_table(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    return ctx.client("glue").get_table(DatabaseName=state["databaseName"], Name=state["name"])


@realizer("aws:glue/catalogTable:CatalogTable", _read_table)
def _glue_table(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    glue = ctx.client("glue")
    name = reg.physical(lower=True, sep="_", max_len=255)
    database = str(reg.require("databaseName"))
    catalog = str(reg.get("catalogId", ctx.account_id))
    table = _table_input(reg, name)
    found = exists(
        lambda: glue.get_table(DatabaseName=database, Name=name), "EntityNotFoundException"
    )
    if found is None:
        glue.create_table(DatabaseName=database, TableInput=table)
    elif any(found["Table"].get(k) != v for k, v in table.items()):
        glue.update_table(DatabaseName=database, TableInput=table)
    return f"{catalog}:{database}:{name}", {
        "name": name,
        "databaseName": database,
        "catalogId": catalog,
        "arn": ctx.arn("glue", f"table/{database}/{name}"),
    }


_WORKGROUP_RENAMES = {
    "enforceWorkgroupConfiguration": "EnforceWorkGroupConfiguration",
    "publishCloudwatchMetricsEnabled": "PublishCloudWatchMetricsEnabled",
    "kmsKeyArn": "KmsKey",
}


def _read_workgroup(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("athena").get_work_group(WorkGroup=ident)


@realizer("aws:athena/workgroup:Workgroup", _read_workgroup)
def _athena_workgroup(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    athena = ctx.client("athena")
    name = reg.physical(max_len=128)
    config = pascal(reg.get("configuration", {}), _WORKGROUP_RENAMES)
    engine = config.get("EngineVersion")
    if isinstance(engine, dict):
        config["EngineVersion"] = {
            "SelectedEngineVersion": engine.get("SelectedEngineVersion", "AUTO")
        }
    request = drop_empty(
        {
            "Name": name,
            "Description": reg.get("description"),
            "Configuration": config,
            "Tags": tag_list(reg.get("tags")),
        }
    )
    found = exists(lambda: athena.get_work_group(WorkGroup=name), "InvalidRequestException")
    if found is not None and found.get("WorkGroup"):
        current = found["WorkGroup"]
        if current.get("Configuration") == config and current.get("Description") == reg.get(
            "description"
        ):
            return name, _workgroup_state(ctx, name)
        # moto has no UpdateWorkGroup: replace it (the provider would update in place)
        ctx.note(reg, "configuration changed: replaced (moto has no UpdateWorkGroup)")
        athena.delete_work_group(WorkGroup=name, RecursiveDeleteOption=True)
    if reg.get("state") == "DISABLED":
        ctx.note(reg, "state DISABLED dropped: moto keeps every workgroup enabled")
    athena.create_work_group(**request)
    return name, _workgroup_state(ctx, name)


def _workgroup_state(ctx: RealizeContext, name: str) -> dict[str, Any]:
    return {"name": name, "arn": ctx.arn("athena", f"workgroup/{name}")}


# --- Firehose

_FIREHOSE_RENAMES = {
    "roleArn": "RoleARN",
    "bucketArn": "BucketARN",
    "openXJsonSerDe": "OpenXJsonSerDe",
    "hiveJsonSerDe": "HiveJsonSerDe",
    "parquetSerDe": "ParquetSerDe",
    "orcSerDe": "OrcSerDe",
    "cloudwatchLoggingOptions": "CloudWatchLoggingOptions",
    "blockSizeBytes": "BlockSizeBytes",
}
_FIREHOSE_OPAQUE = frozenset({"columnToJsonKeyMappings"})


def _extended_s3(config: Mapping[str, Any]) -> dict[str, Any]:
    cfg = dict(config)
    hints = drop_empty(
        {
            "SizeInMBs": cfg.pop("bufferingSize", None),
            "IntervalInSeconds": cfg.pop("bufferingInterval", None),
        }
    )
    kms = cfg.pop("kmsKeyArn", None)
    conversion = cfg.pop("dataFormatConversionConfiguration", None)
    processing = cfg.pop("processingConfiguration", None)
    dynamic = cfg.pop("dynamicPartitioningConfiguration", None)
    shaped: dict[str, Any] = pascal(cfg, _FIREHOSE_RENAMES, _FIREHOSE_OPAQUE)
    if hints:
        shaped["BufferingHints"] = hints
    if kms:
        shaped["EncryptionConfiguration"] = {"KMSEncryptionConfig": {"AWSKMSKeyARN": kms}}
    if conversion:
        shaped["DataFormatConversionConfiguration"] = {
            "Enabled": conversion.get("enabled", True),
            **pascal(
                {k: v for k, v in conversion.items() if k != "enabled"},
                _FIREHOSE_RENAMES,
                _FIREHOSE_OPAQUE,
            ),
        }
    if processing:
        shaped["ProcessingConfiguration"] = pascal(processing, _FIREHOSE_RENAMES)
    if dynamic:
        shaped["DynamicPartitioningConfiguration"] = pascal(dynamic)
        retry = dynamic.get("retryDuration")
        shaped["DynamicPartitioningConfiguration"].pop("RetryDuration", None)
        if retry is not None:
            shaped["DynamicPartitioningConfiguration"]["RetryOptions"] = {
                "DurationInSeconds": retry
            }
    return shaped


def _read_stream(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    return ctx.client("firehose").describe_delivery_stream(DeliveryStreamName=state["name"])


@realizer("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", _read_stream)
def _firehose(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    firehose = ctx.client("firehose")
    name = reg.physical(max_len=64)
    destination = reg.require("destination")
    if destination != "extended_s3":
        raise RealizeError(
            f"{reg.name}: destination {destination!r} is not realized by the "
            "sandbox (only extended_s3)"
        )
    request: dict[str, Any] = {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "KinesisStreamAsSource"
        if reg.get("kinesisSourceConfiguration")
        else "DirectPut",
        "ExtendedS3DestinationConfiguration": _extended_s3(reg.require("extendedS3Configuration")),
    }
    if reg.get("kinesisSourceConfiguration"):
        request["KinesisStreamSourceConfiguration"] = pascal(
            reg.get("kinesisSourceConfiguration"),
            {"kinesisStreamArn": "KinesisStreamARN", "roleArn": "RoleARN"},
        )
    sse = reg.get("serverSideEncryption")
    if sse and sse.get("enabled"):
        request["DeliveryStreamEncryptionConfigurationInput"] = drop_empty(
            {"KeyType": sse.get("keyType", "AWS_OWNED_CMK"), "KeyARN": sse.get("keyArn")}
        )
    if reg.get("tags"):
        request["Tags"] = tag_list(reg.get("tags"))
    found = exists(
        lambda: firehose.describe_delivery_stream(DeliveryStreamName=name),
        "ResourceNotFoundException",
    )
    if found is not None:
        current = found["DeliveryStreamDescription"]
        dests = current.get("Destinations", [])
        stored = dests[0].get("ExtendedS3DestinationDescription", {}) if dests else {}
        wanted = request["ExtendedS3DestinationConfiguration"]
        if all(stored.get(k) == v for k, v in wanted.items()):
            return current["DeliveryStreamARN"], _stream_state(current, name)
        ctx.note(reg, "destination changed: replaced")
        firehose.delete_delivery_stream(DeliveryStreamName=name)
    arn = firehose.create_delivery_stream(**request)["DeliveryStreamARN"]
    current = firehose.describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"
    ]
    return str(arn), _stream_state(current, name)


def _stream_state(description: Mapping[str, Any], name: str) -> dict[str, Any]:
    dests = description.get("Destinations", [])
    return {
        "name": name,
        "arn": description["DeliveryStreamARN"],
        "destinationId": dests[0]["DestinationId"] if dests else "destinationId-000000000001",
        "versionId": description.get("VersionId", "1"),
    }


# --- SNS and SQS

_TOPIC_ATTRIBUTES = {
    "displayName": "DisplayName",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "policy": "Policy",
    "deliveryPolicy": "DeliveryPolicy",
    "signatureVersion": "SignatureVersion",
    "tracingConfig": "TracingConfig",
    "contentBasedDeduplication": "ContentBasedDeduplication",
    "archivePolicy": "ArchivePolicy",
}


def _attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_topic(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sns").get_topic_attributes(TopicArn=ident)


@realizer("aws:sns/topic:Topic", _read_topic)
def _sns_topic(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sns = ctx.client("sns")
    fifo = bool(reg.get("fifoTopic"))
    name = reg.physical(max_len=256, suffix=".fifo" if fifo and not reg.get("name") else "")
    arn = ctx.arn("sns", name)
    wanted = {
        boto: _attr(reg.get(key))
        for key, boto in _TOPIC_ATTRIBUTES.items()
        if reg.get(key) is not None
    }
    found = exists(lambda: sns.get_topic_attributes(TopicArn=arn), "NotFound")
    if found is None:
        attributes = {**wanted, **({"FifoTopic": "true"} if fifo else {})}
        arn = sns.create_topic(Name=name, Attributes=attributes, Tags=tag_list(reg.get("tags")))[
            "TopicArn"
        ]
    else:
        current = found["Attributes"]
        for key, value in wanted.items():
            if not same_json(current.get(key), value):
                sns.set_topic_attributes(TopicArn=arn, AttributeName=key, AttributeValue=value)
    return str(arn), {"arn": arn, "name": name, "owner": ctx.account_id}


def _read_topic_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    attributes = ctx.client("sns").get_topic_attributes(TopicArn=ident)["Attributes"]
    return json.loads(attributes["Policy"])


@realizer("aws:sns/topicPolicy:TopicPolicy", _read_topic_policy)
def _sns_topic_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    arn = str(reg.require("arn"))
    ctx.client("sns").set_topic_attributes(
        TopicArn=arn, AttributeName="Policy", AttributeValue=str(reg.require("policy"))
    )
    return arn, {"owner": ctx.account_id}


_SUBSCRIPTION_ATTRIBUTES = {
    "rawMessageDelivery": "RawMessageDelivery",
    "filterPolicy": "FilterPolicy",
    "filterPolicyScope": "FilterPolicyScope",
    "deliveryPolicy": "DeliveryPolicy",
    "redrivePolicy": "RedrivePolicy",
    "subscriptionRoleArn": "SubscriptionRoleArn",
}


def _read_subscription(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sns").get_subscription_attributes(SubscriptionArn=ident)


@realizer("aws:sns/topicSubscription:TopicSubscription", _read_subscription)
def _sns_subscription(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sns = ctx.client("sns")
    topic, protocol = str(reg.require("topic")), str(reg.require("protocol"))
    endpoint = str(reg.require("endpoint"))
    attributes = {
        boto: _attr(reg.get(key))
        for key, boto in _SUBSCRIPTION_ATTRIBUTES.items()
        if reg.get(key) is not None
    }
    existing = [
        s
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        for s in page["Subscriptions"]
        if s["Protocol"] == protocol and s["Endpoint"] == endpoint
    ]
    if existing:
        arn = existing[0]["SubscriptionArn"]
        for key, value in attributes.items():
            sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName=key, AttributeValue=value
            )
    else:
        arn = sns.subscribe(
            TopicArn=topic,
            Protocol=protocol,
            Endpoint=endpoint,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
    if protocol in ("email", "email-json", "https", "http"):
        ctx.note(
            reg,
            f"{protocol} subscription to {endpoint}: moto confirms it but delivers "
            "nothing outside the sandbox",
        )
    return str(arn), {
        "arn": arn,
        "ownerId": ctx.account_id,
        "pendingConfirmation": False,
        "confirmationWasAuthenticated": True,
    }


_QUEUE_ATTRIBUTES = {
    "delaySeconds": "DelaySeconds",
    "maxMessageSize": "MaximumMessageSize",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "policy": "Policy",
    "redrivePolicy": "RedrivePolicy",
    "redriveAllowPolicy": "RedriveAllowPolicy",
    "contentBasedDeduplication": "ContentBasedDeduplication",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "kmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
    "deduplicationScope": "DeduplicationScope",
    "fifoThroughputLimit": "FifoThroughputLimit",
}


def _read_queue(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sqs").get_queue_attributes(QueueUrl=ident, AttributeNames=["All"])


@realizer("aws:sqs/queue:Queue", _read_queue)
def _sqs_queue(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sqs = ctx.client("sqs")
    fifo = bool(reg.get("fifoQueue"))
    name = reg.physical(max_len=80, suffix=".fifo" if fifo and not reg.get("name") else "")
    wanted = {
        boto: _attr(reg.get(key))
        for key, boto in _QUEUE_ATTRIBUTES.items()
        if reg.get(key) is not None
    }
    found = exists(
        lambda: sqs.get_queue_url(QueueName=name),
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    )
    if found is None:
        request: dict[str, Any] = {
            "QueueName": name,
            "Attributes": {**wanted, **({"FifoQueue": "true"} if fifo else {})},
        }
        if reg.get("tags"):
            request["tags"] = dict(reg.get("tags"))
        url = sqs.create_queue(**request)["QueueUrl"]
    else:
        url = found["QueueUrl"]
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        changed = {k: v for k, v in wanted.items() if not same_json(current.get(k), v)}
        if changed:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=changed)
    return str(url), {"arn": ctx.arn("sqs", name), "url": url, "name": name}


def _read_queue_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    attributes = ctx.client("sqs").get_queue_attributes(QueueUrl=ident, AttributeNames=["Policy"])
    return json.loads(attributes["Attributes"]["Policy"])


@realizer("aws:sqs/queuePolicy:QueuePolicy", _read_queue_policy)
def _sqs_queue_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    url = str(reg.require("queueUrl"))
    ctx.client("sqs").set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": str(reg.require("policy"))}
    )
    return url, {}


# --- CloudWatch, Logs, EventBridge


def _alarm_request(reg: Registration, name: str) -> dict[str, Any]:
    dimensions = [{"Name": k, "Value": v} for k, v in sorted((reg.get("dimensions") or {}).items())]
    queries = []
    for query in reg.get("metricQueries", []):
        shaped: dict[str, Any] = drop_empty(
            {
                "Id": query.get("id"),
                "Expression": query.get("expression"),
                "Label": query.get("label"),
                "ReturnData": query.get("returnData"),
                "Period": query.get("period"),
                "AccountId": query.get("accountId"),
            }
        )
        metric = query.get("metric")
        if metric:
            shaped["MetricStat"] = drop_empty(
                {
                    "Metric": drop_empty(
                        {
                            "MetricName": metric.get("metricName"),
                            "Namespace": metric.get("namespace"),
                            "Dimensions": [
                                {"Name": k, "Value": v}
                                for k, v in sorted((metric.get("dimensions") or {}).items())
                            ],
                        }
                    ),
                    "Period": metric.get("period"),
                    "Stat": metric.get("stat"),
                    "Unit": metric.get("unit"),
                }
            )
        queries.append(shaped)
    return drop_empty(
        {
            "AlarmName": name,
            "AlarmDescription": reg.get("alarmDescription"),
            "ActionsEnabled": reg.get("actionsEnabled", True),
            "OKActions": reg.get("okActions"),
            "AlarmActions": reg.get("alarmActions"),
            "InsufficientDataActions": reg.get("insufficientDataActions"),
            "MetricName": reg.get("metricName"),
            "Namespace": reg.get("namespace"),
            "Statistic": reg.get("statistic"),
            "ExtendedStatistic": reg.get("extendedStatistic"),
            "Dimensions": dimensions,
            "Period": reg.get("period"),
            "Unit": reg.get("unit"),
            "EvaluationPeriods": reg.require("evaluationPeriods"),
            "DatapointsToAlarm": reg.get("datapointsToAlarm"),
            "Threshold": reg.get("threshold"),
            "ComparisonOperator": reg.require("comparisonOperator"),
            "TreatMissingData": reg.get("treatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": reg.get("evaluateLowSampleCountPercentiles"),
            "Metrics": queries,
            "ThresholdMetricId": reg.get("thresholdMetricId"),
            "Tags": tag_list(reg.get("tags")),
        }
    )


def _alarm_matches(current: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    for key, value in request.items():
        if key == "Tags":
            continue
        have = current.get(key)
        if isinstance(value, float | int) and not isinstance(value, bool) and have is not None:
            if float(have) != float(value):
                return False
        elif key == "Dimensions":
            if sorted((d["Name"], d["Value"]) for d in have or []) != sorted(
                (d["Name"], d["Value"]) for d in value
            ):
                return False
        elif have != value:
            return False
    return True


def _read_alarm(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    alarms = ctx.client("cloudwatch").describe_alarms(AlarmNames=[ident])["MetricAlarms"]
    if not alarms:
        raise RealizeError(f"alarm {ident} not found")
    return alarms[0]


@realizer("aws:cloudwatch/metricAlarm:MetricAlarm", _read_alarm)
def _metric_alarm(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    cloudwatch = ctx.client("cloudwatch")
    name = reg.physical(max_len=255)
    request = _alarm_request(reg, name)
    current = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    # moto resets an alarm's state when it is put again: only put what changed.
    if not current or not _alarm_matches(current[0], request):
        cloudwatch.put_metric_alarm(**request)
        # moto starts alarms in OK; CloudWatch starts them with no data to judge
        cloudwatch.set_alarm_state(
            AlarmName=name,
            StateValue="INSUFFICIENT_DATA",
            StateReason="Unchecked: Initial alarm creation",
        )
    return name, {"name": name, "arn": ctx.arn("cloudwatch", f"alarm:{name}")}


def _read_dashboard(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("cloudwatch").get_dashboard(DashboardName=ident)


@realizer("aws:cloudwatch/dashboard:Dashboard", _read_dashboard)
def _dashboard(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    name = str(reg.require("dashboardName"))
    ctx.client("cloudwatch").put_dashboard(
        DashboardName=name, DashboardBody=str(reg.require("dashboardBody"))
    )
    return name, {"dashboardArn": ctx.arn("cloudwatch", f"dashboard/{name}", region=False)}


def _read_log_group(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    groups = ctx.client("logs").describe_log_groups(logGroupNamePrefix=ident)["logGroups"]
    found = [g for g in groups if g["logGroupName"] == ident]
    if not found:
        raise RealizeError(f"log group {ident} not found")
    return found[0]


@realizer("aws:cloudwatch/logGroup:LogGroup", _read_log_group)
def _log_group(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    logs = ctx.client("logs")
    name = reg.physical(max_len=512)
    groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    current = next((g for g in groups if g["logGroupName"] == name), None)
    if current is None:
        logs.create_log_group(
            **drop_empty(
                {
                    "logGroupName": name,
                    "kmsKeyId": reg.get("kmsKeyId"),
                    "logGroupClass": reg.get("logGroupClass"),
                    "tags": reg.get("tags"),
                }
            )
        )
    retention = reg.get("retentionInDays")
    if retention and (current is None or current.get("retentionInDays") != retention):
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
    return name, {"name": name, "arn": ctx.arn("logs", f"log-group:{name}")}


def _read_log_stream(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    streams = ctx.client("logs").describe_log_streams(
        logGroupName=state["logGroupName"], logStreamNamePrefix=ident
    )["logStreams"]
    if not any(s["logStreamName"] == ident for s in streams):
        raise RealizeError(f"log stream {ident} not found")
    return streams


@realizer("aws:cloudwatch/logStream:LogStream", _read_log_stream)
def _log_stream(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    logs = ctx.client("logs")
    group = str(reg.require("logGroupName"))
    name = reg.physical(max_len=512)
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=name)["logStreams"]
    if not any(s["logStreamName"] == name for s in streams):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    return name, {"name": name, "arn": ctx.arn("logs", f"log-group:{group}:log-stream:{name}")}


def _read_state_machine(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("stepfunctions").describe_state_machine(stateMachineArn=ident)


@realizer("aws:sfn/stateMachine:StateMachine", _read_state_machine)
def _state_machine(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sfn = ctx.client("stepfunctions")
    name = reg.physical(max_len=80)
    arn = ctx.arn("states", f"stateMachine:{name}")
    definition = str(reg.require("definition"))
    logging_config = reg.get("loggingConfiguration")
    extra = drop_empty(
        {
            "loggingConfiguration": drop_empty(
                {
                    "level": logging_config.get("level"),
                    "includeExecutionData": logging_config.get("includeExecutionData"),
                    "destinations": [
                        {
                            "cloudWatchLogsLogGroup": {
                                "logGroupArn": logging_config["logDestination"]
                            }
                        }
                    ]
                    if logging_config.get("logDestination")
                    else None,
                }
            )
            if logging_config
            else None,
            "tracingConfiguration": reg.get("tracingConfiguration"),
        }
    )
    found = exists(
        lambda: sfn.describe_state_machine(stateMachineArn=arn), "StateMachineDoesNotExist"
    )
    if found is None:
        arn = sfn.create_state_machine(
            name=name,
            definition=definition,
            roleArn=reg.require("roleArn"),
            type=reg.get("type", "STANDARD"),
            tags=[{"key": k, "value": v} for k, v in sorted((reg.get("tags") or {}).items())],
            **extra,
        )["stateMachineArn"]
    elif not same_json(found["definition"], definition) or found["roleArn"] != reg.get("roleArn"):
        sfn.update_state_machine(
            stateMachineArn=arn, definition=definition, roleArn=reg.require("roleArn"), **extra
        )
    return str(arn), {"name": name, "arn": arn, "status": "ACTIVE"}


def _read_rule(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    return ctx.client("events").describe_rule(
        Name=state["name"], EventBusName=state.get("eventBusName") or "default"
    )


@realizer("aws:cloudwatch/eventRule:EventRule", _read_rule)
def _event_rule(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    name = reg.physical(max_len=64)
    bus = reg.get("eventBusName", "default")
    state = reg.get("state") or ("DISABLED" if reg.get("isEnabled") is False else "ENABLED")
    arn = ctx.client("events").put_rule(
        **drop_empty(
            {
                "Name": name,
                "ScheduleExpression": reg.get("scheduleExpression"),
                "EventPattern": reg.get("eventPattern"),
                "State": state,
                "Description": reg.get("description"),
                "RoleArn": reg.get("roleArn"),
                "EventBusName": bus,
                "Tags": tag_list(reg.get("tags")),
            }
        )
    )["RuleArn"]
    ident = name if bus == "default" else f"{bus}/{name}"
    return ident, {"name": name, "arn": arn, "eventBusName": bus}


_TARGET_RENAMES = {
    "sqsTarget": "SqsParameters",
    "kinesisTarget": "KinesisParameters",
    "sagemakerPipelineTarget": "SageMakerPipelineParameters",
    "ecsTarget": "EcsParameters",
    "batchTarget": "BatchParameters",
    "httpTarget": "HttpParameters",
}
_TARGET_OPAQUE = frozenset({"inputPaths", "headerParameters", "queryStringParameters"})


def _read_target(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    targets = ctx.client("events").list_targets_by_rule(
        Rule=state["rule"], EventBusName=state.get("eventBusName") or "default"
    )["Targets"]
    found = [t for t in targets if t["Id"] == state["targetId"]]
    if not found:
        raise RealizeError(f"target {state['targetId']} not on rule {state['rule']}")
    return found[0]


@realizer("aws:cloudwatch/eventTarget:EventTarget", _read_target)
def _event_target(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    rule = str(reg.require("rule"))
    bus = reg.get("eventBusName", "default")
    target_id = reg.physical(key="targetId", max_len=64)
    target: dict[str, Any] = drop_empty(
        {
            "Id": target_id,
            "Arn": reg.require("arn"),
            "RoleArn": reg.get("roleArn"),
            "Input": reg.get("input"),
            "InputPath": reg.get("inputPath"),
            "RetryPolicy": pascal(reg.get("retryPolicy")),
            "DeadLetterConfig": pascal(reg.get("deadLetterConfig")),
        }
    )
    transformer = reg.get("inputTransformer")
    if transformer:
        target["InputTransformer"] = drop_empty(
            {
                "InputPathsMap": transformer.get("inputPaths"),
                "InputTemplate": transformer.get("inputTemplate"),
            }
        )
    for key, boto in _TARGET_RENAMES.items():
        if reg.get(key):
            target[boto] = pascal(reg.get(key), opaque=_TARGET_OPAQUE)
    result = ctx.client("events").put_targets(Rule=rule, EventBusName=bus, Targets=[target])
    if result.get("FailedEntryCount"):
        raise RealizeError(f"put_targets failed: {result['FailedEntries']}")
    return f"{rule}-{target_id}", {"targetId": target_id, "rule": rule, "eventBusName": bus}


# --- SageMaker


def _read_package_group(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_model_package_group(ModelPackageGroupName=ident)


@realizer("aws:sagemaker/modelPackageGroup:ModelPackageGroup", _read_package_group)
def _package_group(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = reg.physical(key="modelPackageGroupName", max_len=63)
    found = exists(
        lambda: sagemaker.describe_model_package_group(ModelPackageGroupName=name),
        "ValidationException",
    )
    if found is None:
        sagemaker.create_model_package_group(
            **drop_empty(
                {
                    "ModelPackageGroupName": name,
                    "ModelPackageGroupDescription": reg.get("modelPackageGroupDescription"),
                    "Tags": tag_list(reg.get("tags")),
                }
            )
        )
        found = sagemaker.describe_model_package_group(ModelPackageGroupName=name)
    return name, {"modelPackageGroupName": name, "arn": found["ModelPackageGroupArn"]}


_MODEL_OPAQUE = frozenset({"environment"})
_MODEL_RENAMES = {
    "securityGroupIds": "SecurityGroupIds",
    "s3Uri": "S3Uri",
    "s3DataType": "S3DataType",
    "s3DataSources": "S3DataSource",
}


def _container(container: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = pascal(dict(container), _MODEL_RENAMES, _MODEL_OPAQUE)
    source = shaped.get("ModelDataSource")
    if isinstance(source, dict) and isinstance(source.get("S3DataSource"), list):
        source["S3DataSource"] = source["S3DataSource"][0]  # the API takes one
    return shaped


def _read_model(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_model(ModelName=ident)


@realizer("aws:sagemaker/model:Model", _read_model)
def _sm_model(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = reg.physical(max_len=63)
    request = drop_empty(
        {
            "ModelName": name,
            "ExecutionRoleArn": reg.require("executionRoleArn"),
            "PrimaryContainer": _container(reg.get("primaryContainer"))
            if reg.get("primaryContainer")
            else None,
            "Containers": [_container(c) for c in reg.get("containers", [])],
            "VpcConfig": pascal(reg.get("vpcConfig"), _MODEL_RENAMES),
            "Tags": tag_list(reg.get("tags")),
        }
    )
    if reg.get("enableNetworkIsolation"):
        ctx.note(
            reg,
            "enableNetworkIsolation dropped: moto does not store it (the sandbox runs "
            "no containers)",
        )
    if reg.get("inferenceExecutionConfig"):
        ctx.note(reg, "inferenceExecutionConfig dropped: moto does not store it")
    found = exists(lambda: sagemaker.describe_model(ModelName=name), "ValidationException")
    if found is not None:
        same = all(found.get(k) == v for k, v in request.items() if k not in ("Tags",))
        if same:
            return name, {"name": name, "arn": found["ModelArn"]}
        ctx.note(reg, "model changed: replaced (SageMaker models are immutable)")
        sagemaker.delete_model(ModelName=name)
    arn = sagemaker.create_model(**request)["ModelArn"]
    return name, {"name": name, "arn": arn}


_VARIANT_RENAMES = {
    "memorySizeInMb": "MemorySizeInMB",
    "volumeSizeInGb": "VolumeSizeInGB",
    "s3OutputPath": "S3OutputPath",
    "s3FailurePath": "S3FailurePath",
}
_VARIANT_DROPPED = (
    "coreDumpConfig",
    "enableSsmAccess",
    "inferenceAmiVersion",
    "managedInstanceScaling",
    "routingConfigs",
    "acceleratorType",
)


def _variant(ctx: RealizeContext, reg: Registration, variant: Mapping[str, Any]) -> dict[str, Any]:
    kept = dict(variant)
    for key in _VARIANT_DROPPED:
        if kept.pop(key, None) is not None:
            ctx.note(
                reg, f"variant {variant.get('variantName')}: {key} dropped (moto does not store it)"
            )
    shaped: dict[str, Any] = pascal(kept, _VARIANT_RENAMES)
    if "ServerlessConfig" in shaped:  # a serverless variant has no instances
        shaped.pop("InstanceType", None)
        shaped.pop("InitialInstanceCount", None)
    return shaped


def _read_endpoint_config(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_endpoint_config(EndpointConfigName=ident)


@realizer("aws:sagemaker/endpointConfiguration:EndpointConfiguration", _read_endpoint_config)
def _sm_endpoint_config(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = reg.physical(max_len=63)
    capture = reg.get("dataCaptureConfig")
    request = drop_empty(
        {
            "EndpointConfigName": name,
            "ProductionVariants": [
                _variant(ctx, reg, v) for v in reg.require("productionVariants")
            ],
            "DataCaptureConfig": pascal(capture) if capture else None,
            "AsyncInferenceConfig": pascal(reg.get("asyncInferenceConfig"), _VARIANT_RENAMES)
            if reg.get("asyncInferenceConfig")
            else None,
            "KmsKeyId": reg.get("kmsKeyArn"),
            "Tags": tag_list(reg.get("tags")),
        }
    )
    if capture and "EnableCapture" not in request["DataCaptureConfig"]:
        request["DataCaptureConfig"]["EnableCapture"] = True  # the provider's default
    for dropped in ("shadowProductionVariants", "executionRoleArn"):
        if reg.get(dropped):
            ctx.note(reg, f"{dropped} dropped: moto does not store it")
    found = exists(
        lambda: sagemaker.describe_endpoint_config(EndpointConfigName=name), "ValidationException"
    )
    if found is not None:
        if found.get("ProductionVariants") == request["ProductionVariants"]:
            return name, {"name": name, "arn": found["EndpointConfigArn"]}
        ctx.note(reg, "endpoint configuration changed: replaced (they are immutable)")
        sagemaker.delete_endpoint_config(EndpointConfigName=name)
    arn = sagemaker.create_endpoint_config(**request)["EndpointConfigArn"]
    return name, {"name": name, "arn": arn}


def _read_endpoint(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("sagemaker").describe_endpoint(EndpointName=ident)


@realizer("aws:sagemaker/endpoint:Endpoint", _read_endpoint)
def _sm_endpoint(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    sagemaker = ctx.client("sagemaker")
    name = reg.physical(max_len=63)
    config = str(reg.require("endpointConfigName"))
    if reg.get("deploymentConfig"):
        ctx.note(
            reg,
            "deploymentConfig (blue/green, auto-rollback alarms) dropped: moto has no "
            "UpdateEndpoint, so there is no deployment to guard (the lifecycle's deploy "
            "re-creates the endpoint on the new configuration)",
        )
    found = exists(lambda: sagemaker.describe_endpoint(EndpointName=name), "ValidationException")
    if found is not None:
        if found.get("EndpointConfigName") == config:
            return name, {"name": name, "arn": found["EndpointArn"]}
        ctx.note(
            reg, "endpoint configuration changed: endpoint recreated (moto has no UpdateEndpoint)"
        )
        sagemaker.delete_endpoint(EndpointName=name)
    arn = sagemaker.create_endpoint(
        EndpointName=name, EndpointConfigName=config, Tags=tag_list(reg.get("tags"))
    )["EndpointArn"]
    return name, {"name": name, "arn": arn}


# --- Application Auto Scaling


def _read_scalable_target(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    found = ctx.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=state["serviceNamespace"],
        ResourceIds=[ident],
        ScalableDimension=state["scalableDimension"],
    )["ScalableTargets"]
    if not found:
        raise RealizeError(f"scalable target {ident} not found")
    return found[0]


@realizer("aws:appautoscaling/target:Target", _read_scalable_target)
def _scalable_target(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    resource_id = str(reg.require("resourceId"))
    response = ctx.client("application-autoscaling").register_scalable_target(
        **drop_empty(
            {
                "ServiceNamespace": reg.require("serviceNamespace"),
                "ResourceId": resource_id,
                "ScalableDimension": reg.require("scalableDimension"),
                "MinCapacity": reg.require("minCapacity"),
                "MaxCapacity": reg.require("maxCapacity"),
                "RoleARN": reg.get("roleArn"),
                "SuspendedState": pascal(reg.get("suspendedState")),
                "Tags": reg.get("tags"),
            }
        )
    )
    arn = response.get("ScalableTargetARN") or ctx.arn(
        "application-autoscaling", f"scalable-target/{resource_id}"
    )
    return resource_id, {"arn": arn}


def _step_configuration(config: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = pascal(dict(config))
    for step in shaped.get("StepAdjustments", []):
        for bound in ("MetricIntervalLowerBound", "MetricIntervalUpperBound"):
            if step.get(bound) not in (None, ""):
                step[bound] = float(step[bound])  # the provider carries them as strings
            else:
                step.pop(bound, None)
    return shaped


def _read_scaling_policy(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    found = ctx.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace=state["serviceNamespace"],
        PolicyNames=[ident],
        ResourceId=state["resourceId"],
    )["ScalingPolicies"]
    if not found:
        raise RealizeError(f"scaling policy {ident} not found")
    return found[0]


@realizer("aws:appautoscaling/policy:Policy", _read_scaling_policy)
def _scaling_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    name = reg.physical(max_len=256)
    target = reg.get("targetTrackingScalingPolicyConfiguration")
    step = reg.get("stepScalingPolicyConfiguration")
    if reg.get("predictiveScalingPolicyConfiguration"):
        raise RealizeError(f"{reg.name}: predictive scaling is not realized by the sandbox")
    response = ctx.client("application-autoscaling").put_scaling_policy(
        **drop_empty(
            {
                "PolicyName": name,
                "ServiceNamespace": reg.require("serviceNamespace"),
                "ResourceId": reg.require("resourceId"),
                "ScalableDimension": reg.require("scalableDimension"),
                "PolicyType": reg.get("policyType", "StepScaling"),
                "TargetTrackingScalingPolicyConfiguration": pascal(target) if target else None,
                "StepScalingPolicyConfiguration": _step_configuration(step) if step else None,
            }
        )
    )
    return name, {
        "name": name,
        "arn": response["PolicyARN"],
        "alarmArns": [a["AlarmARN"] for a in response.get("Alarms", [])],
    }


# --- EC2 / VPC


def _find_tagged(
    ctx: RealizeContext, method: str, key: str, physical: str
) -> dict[str, Any] | None:
    response = getattr(ctx.client("ec2"), method)(
        Filters=[{"Name": f"tag:{SANDBOX_TAG}", "Values": [physical]}]
    )
    items = response[key]
    return dict(items[0]) if items else None


def _ec2_reader(method: str, ids_key: str, key: str) -> Reader:
    def read(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
        items = getattr(ctx.client("ec2"), method)(**{ids_key: [ident]})[key]
        if not items:
            raise RealizeError(f"{ident} not found")
        return items[0]

    return read


@realizer("aws:ec2/vpc:Vpc", _ec2_reader("describe_vpcs", "VpcIds", "Vpcs"))
def _vpc(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    physical = reg.physical(key="__none__")
    vpc = _find_tagged(ctx, "describe_vpcs", "Vpcs", physical)
    if vpc is None:
        vpc = ec2.create_vpc(
            CidrBlock=reg.require("cidrBlock"),
            InstanceTenancy=reg.get("instanceTenancy", "default"),
            TagSpecifications=tag_spec("vpc", reg.get("tags"), physical),
        )["Vpc"]
    vpc_id = vpc["VpcId"]
    for key, attribute in (
        ("enableDnsHostnames", "EnableDnsHostnames"),
        ("enableDnsSupport", "EnableDnsSupport"),
    ):
        if reg.get(key) is not None:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": bool(reg.get(key))}})
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )
    tables = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )
    acls = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}]
    )
    main_table = tables["RouteTables"][0]["RouteTableId"] if tables["RouteTables"] else ""
    return vpc_id, {
        "arn": ctx.arn("ec2", f"vpc/{vpc_id}"),
        "cidrBlock": vpc["CidrBlock"],
        "ownerId": ctx.account_id,
        "defaultSecurityGroupId": groups["SecurityGroups"][0]["GroupId"]
        if groups["SecurityGroups"]
        else "",
        "mainRouteTableId": main_table,
        "defaultRouteTableId": main_table,
        "defaultNetworkAclId": acls["NetworkAcls"][0]["NetworkAclId"]
        if acls["NetworkAcls"]
        else "",
    }


@realizer("aws:ec2/subnet:Subnet", _ec2_reader("describe_subnets", "SubnetIds", "Subnets"))
def _subnet(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    physical = reg.physical(key="__none__")
    subnet = _find_tagged(ctx, "describe_subnets", "Subnets", physical)
    if subnet is None:
        subnet = ec2.create_subnet(
            **drop_empty(
                {
                    "VpcId": reg.require("vpcId"),
                    "CidrBlock": reg.require("cidrBlock"),
                    "AvailabilityZone": reg.get("availabilityZone"),
                    "AvailabilityZoneId": reg.get("availabilityZoneId"),
                    "TagSpecifications": tag_spec("subnet", reg.get("tags"), physical),
                }
            )
        )["Subnet"]
    if reg.get("mapPublicIpOnLaunch") is not None:
        ec2.modify_subnet_attribute(
            SubnetId=subnet["SubnetId"],
            MapPublicIpOnLaunch={"Value": bool(reg.get("mapPublicIpOnLaunch"))},
        )
    return subnet["SubnetId"], {
        "arn": ctx.arn("ec2", f"subnet/{subnet['SubnetId']}"),
        "availabilityZone": subnet["AvailabilityZone"],
        "availabilityZoneId": subnet.get("AvailabilityZoneId", ""),
        "ownerId": ctx.account_id,
    }


_ROUTE_TARGETS = {
    "gatewayId": "GatewayId",
    "natGatewayId": "NatGatewayId",
    "vpcEndpointId": "VpcEndpointId",
    "networkInterfaceId": "NetworkInterfaceId",
    "transitGatewayId": "TransitGatewayId",
    "vpcPeeringConnectionId": "VpcPeeringConnectionId",
    "egressOnlyGatewayId": "EgressOnlyInternetGatewayId",
}


def _ensure_route(ctx: RealizeContext, table_id: str, route: Mapping[str, Any]) -> str:
    ec2 = ctx.client("ec2")
    destination = route.get("cidrBlock") or route.get("destinationCidrBlock")
    if not destination:
        raise RealizeError(f"route in {table_id}: only IPv4 CIDR destinations are realized")
    table = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    if not any(r.get("DestinationCidrBlock") == destination for r in table.get("Routes", [])):
        targets = {boto: route[key] for key, boto in _ROUTE_TARGETS.items() if route.get(key)}
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock=destination, **targets)
    return str(destination)


@realizer(
    "aws:ec2/routeTable:RouteTable",
    _ec2_reader("describe_route_tables", "RouteTableIds", "RouteTables"),
)
def _route_table(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    table = _find_tagged(ctx, "describe_route_tables", "RouteTables", physical)
    if table is None:
        table = ctx.client("ec2").create_route_table(
            VpcId=reg.require("vpcId"),
            TagSpecifications=tag_spec("route-table", reg.get("tags"), physical),
        )["RouteTable"]
    for route in reg.get("routes", []):
        _ensure_route(ctx, table["RouteTableId"], route)
    return table["RouteTableId"], {
        "arn": ctx.arn("ec2", f"route-table/{table['RouteTableId']}"),
        "ownerId": ctx.account_id,
    }


def _read_route(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    table = ctx.client("ec2").describe_route_tables(RouteTableIds=[state["routeTableId"]])[
        "RouteTables"
    ][0]
    found = [
        r for r in table["Routes"] if r.get("DestinationCidrBlock") == state["destinationCidrBlock"]
    ]
    if not found:
        raise RealizeError(f"route {ident} not found")
    return found[0]


@realizer("aws:ec2/route:Route", _read_route)
def _route(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    table_id = str(reg.require("routeTableId"))
    destination = _ensure_route(ctx, table_id, reg.inputs)
    digest = int(hashlib.sha256(destination.encode()).hexdigest()[:8], 16)
    return f"r-{table_id}{digest}", {"state": "active", "origin": "CreateRoute"}


def _read_association(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    tables = ctx.client("ec2").describe_route_tables(
        Filters=[{"Name": "association.route-table-association-id", "Values": [ident]}]
    )["RouteTables"]
    if not tables:
        raise RealizeError(f"route table association {ident} not found")
    return tables[0]


@realizer("aws:ec2/routeTableAssociation:RouteTableAssociation", _read_association)
def _route_table_association(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    table_id = str(reg.require("routeTableId"))
    subnet = reg.get("subnetId")
    if not subnet:
        raise RealizeError(f"{reg.name}: only subnet associations are realized")
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )["RouteTables"]
    for table in tables:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId") == subnet:
                if table["RouteTableId"] == table_id:
                    return str(assoc["RouteTableAssociationId"]), {}
                new = ec2.replace_route_table_association(
                    AssociationId=assoc["RouteTableAssociationId"], RouteTableId=table_id
                )
                return str(new["NewAssociationId"]), {}
    assoc_id = ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet)["AssociationId"]
    return str(assoc_id), {}


def _permission(rule: Mapping[str, Any], own_group: str | None = None) -> dict[str, Any]:
    protocol = str(rule.get("protocol") or rule.get("ipProtocol") or "-1")
    protocol = "-1" if protocol in ("all", "-1") else protocol
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol != "-1":
        permission["FromPort"] = rule.get("fromPort")
        permission["ToPort"] = rule.get("toPort")
    description = rule.get("description")
    extra = {"Description": description} if description else {}
    cidrs = rule.get("cidrBlocks") or ([rule["cidrIpv4"]] if rule.get("cidrIpv4") else [])
    if cidrs:
        permission["IpRanges"] = [{"CidrIp": c, **extra} for c in cidrs]
    v6 = rule.get("ipv6CidrBlocks") or ([rule["cidrIpv6"]] if rule.get("cidrIpv6") else [])
    if v6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": c, **extra} for c in v6]
    groups = list(rule.get("securityGroups") or [])
    if rule.get("referencedSecurityGroupId"):
        groups.append(rule["referencedSecurityGroupId"])
    if rule.get("self") and own_group:
        groups.append(own_group)
    if groups:
        permission["UserIdGroupPairs"] = [{"GroupId": g, **extra} for g in groups]
    prefixes = rule.get("prefixListIds") or (
        [rule["prefixListId"]] if rule.get("prefixListId") else []
    )
    if prefixes:
        permission["PrefixListIds"] = [{"PrefixListId": p, **extra} for p in prefixes]
    return permission


def _rule_keys(permission: Mapping[str, Any]) -> set[tuple[Any, ...]]:
    """Each (protocol, from, to, source) a permission grants: how rules are compared."""
    base = (permission.get("IpProtocol"), permission.get("FromPort"), permission.get("ToPort"))
    keys = set()
    for r in permission.get("IpRanges", []):
        keys.add((*base, r["CidrIp"]))
    for r in permission.get("Ipv6Ranges", []):
        keys.add((*base, r["CidrIpv6"]))
    for r in permission.get("UserIdGroupPairs", []):
        keys.add((*base, r["GroupId"]))
    for r in permission.get("PrefixListIds", []):
        keys.add((*base, r["PrefixListId"]))
    return keys


def _normalize_permission(permission: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(permission)
    if out.get("IpProtocol") == "-1":
        out.pop("FromPort", None)
        out.pop("ToPort", None)
    return out


def _reconcile_rules(
    ctx: RealizeContext,
    group_id: str,
    direction: str,
    wanted: list[dict[str, Any]],
    current: list[dict[str, Any]],
) -> None:
    ec2 = ctx.client("ec2")
    have = (
        set().union(*(_rule_keys(_normalize_permission(p)) for p in current)) if current else set()
    )
    want = set().union(*(_rule_keys(p) for p in wanted)) if wanted else set()
    authorize = [p for p in wanted if not _rule_keys(p) <= have]
    revoke = [
        _normalize_permission(p)
        for p in current
        if not _rule_keys(_normalize_permission(p)) <= want
    ]
    call = "ingress" if direction == "ingress" else "egress"
    if revoke:
        getattr(ec2, f"revoke_security_group_{call}")(GroupId=group_id, IpPermissions=revoke)
    if authorize:
        getattr(ec2, f"authorize_security_group_{call}")(GroupId=group_id, IpPermissions=authorize)


@realizer(
    "aws:ec2/securityGroup:SecurityGroup",
    _ec2_reader("describe_security_groups", "GroupIds", "SecurityGroups"),
)
def _security_group(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    name = reg.physical(max_len=255)
    vpc_id = reg.require("vpcId")
    found = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
    )
    if found["SecurityGroups"]:
        group = found["SecurityGroups"][0]
    else:
        group_id = ec2.create_security_group(
            GroupName=name,
            VpcId=vpc_id,
            Description=reg.get("description", "Managed by Pulumi"),
            TagSpecifications=[
                {"ResourceType": "security-group", "Tags": tag_list(reg.get("tags"))}
            ]
            if reg.get("tags")
            else [],
        )["GroupId"]
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    group_id = group["GroupId"]
    # Like the provider: the rules are exactly the ones declared (AWS's default allow-all egress
    # is removed unless declared).
    if reg.inputs.get("ingress") is not None:
        _reconcile_rules(
            ctx,
            group_id,
            "ingress",
            [_permission(r, group_id) for r in reg.get("ingress", [])],
            group.get("IpPermissions", []),
        )
    if reg.inputs.get("egress") is not None or not found["SecurityGroups"]:
        _reconcile_rules(
            ctx,
            group_id,
            "egress",
            [_permission(r, group_id) for r in reg.get("egress", [])],
            group.get("IpPermissionsEgress", []),
        )
    return group_id, {
        "arn": ctx.arn("ec2", f"security-group/{group_id}"),
        "name": name,
        "ownerId": ctx.account_id,
    }


@realizer(
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    _ec2_reader("describe_security_groups", "GroupIds", "SecurityGroups"),
)
def _default_security_group(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    """Adopt the VPC's default group; like the provider, leave exactly the declared rules."""
    ec2 = ctx.client("ec2")
    vpc_id = reg.require("vpcId")
    group = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"][0]
    group_id = group["GroupId"]
    _reconcile_rules(
        ctx,
        group_id,
        "ingress",
        [_permission(r, group_id) for r in reg.get("ingress", [])],
        group.get("IpPermissions", []),
    )
    _reconcile_rules(
        ctx,
        group_id,
        "egress",
        [_permission(r, group_id) for r in reg.get("egress", [])],
        group.get("IpPermissionsEgress", []),
    )
    if reg.get("tags"):
        ec2.create_tags(Resources=[group_id], Tags=tag_list(reg.get("tags")))
    return group_id, {
        "arn": ctx.arn("ec2", f"security-group/{group_id}"),
        "name": "default",
        "ownerId": ctx.account_id,
    }


@realizer(
    "aws:ec2/launchTemplate:LaunchTemplate",
    _ec2_reader("describe_launch_templates", "LaunchTemplateIds", "LaunchTemplates"),
)
def _launch_template(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    name = reg.physical(max_len=128)
    found = exists(
        lambda: ec2.describe_launch_templates(LaunchTemplateNames=[name]),
        "InvalidLaunchTemplateName.NotFoundException",
    )
    if found and found["LaunchTemplates"]:
        template = found["LaunchTemplates"][0]
    else:
        data = {
            k: v
            for k, v in reg.inputs.items()
            if k
            not in (
                "name",
                "namePrefix",
                "tags",
                "description",
                "defaultVersion",
                "updateDefaultVersion",
                "region",
            )
        }
        template = ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData=pascal(
                data, {"ebs": "Ebs", "httpPutResponseHopLimit": "HttpPutResponseHopLimit"}
            ),
            TagSpecifications=[
                {"ResourceType": "launch-template", "Tags": tag_list(reg.get("tags"))}
            ]
            if reg.get("tags")
            else [],
        )["LaunchTemplate"]
    ident = template["LaunchTemplateId"]
    return ident, {
        "name": name,
        "arn": ctx.arn("ec2", f"launch-template/{ident}"),
        "latestVersion": template.get("LatestVersionNumber", 1),
        "defaultVersion": template.get("DefaultVersionNumber", 1),
    }


def _read_sg_rule(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    found = ctx.client("ec2").describe_security_group_rules(SecurityGroupRuleIds=[ident])
    if not found["SecurityGroupRules"]:
        raise RealizeError(f"security group rule {ident} not found")
    return found["SecurityGroupRules"][0]


def _sg_rule(ctx: RealizeContext, reg: Registration, egress: bool) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    group_id = str(reg.require("securityGroupId"))
    permission = _permission(reg.inputs)
    wanted = _rule_keys(permission)
    if len(wanted) != 1:  # the provider requires exactly one of them
        raise RealizeError(
            f"{reg.name}: a security group rule needs exactly one non-empty cidrIpv4, cidrIpv6, "
            f"prefixListId or referencedSecurityGroupId; got {len(wanted)}"
        )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "SecurityGroupRules"
    ]
    for rule in rules:
        if bool(rule.get("IsEgress")) != egress:
            continue
        source = (
            rule.get("CidrIpv4")
            or rule.get("CidrIpv6")
            or rule.get("PrefixListId")
            or (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
        )
        protocol = rule.get("IpProtocol")
        ports = (None, None) if protocol == "-1" else (rule.get("FromPort"), rule.get("ToPort"))
        if {(protocol, *ports, source)} == wanted:
            rule_id = str(rule["SecurityGroupRuleId"])
            break
    else:
        call = (
            ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
        )
        response = call(
            GroupId=group_id,
            IpPermissions=[permission],
            **(
                {
                    "TagSpecifications": [
                        {"ResourceType": "security-group-rule", "Tags": tag_list(reg.get("tags"))}
                    ]
                }
                if reg.get("tags")
                else {}
            ),
        )
        rule_id = str(response["SecurityGroupRules"][0]["SecurityGroupRuleId"])
    return rule_id, {
        "securityGroupRuleId": rule_id,
        "arn": ctx.arn("ec2", f"security-group-rule/{rule_id}"),
    }


@realizer("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", _read_sg_rule)
def _sg_ingress(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    return _sg_rule(ctx, reg, egress=False)


@realizer("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", _read_sg_rule)
def _sg_egress(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    return _sg_rule(ctx, reg, egress=True)


@realizer(
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    _ec2_reader("describe_vpc_endpoints", "VpcEndpointIds", "VpcEndpoints"),
)
def _vpc_endpoint(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    endpoint = _find_tagged(ctx, "describe_vpc_endpoints", "VpcEndpoints", physical)
    if endpoint is None:
        endpoint = ctx.client("ec2").create_vpc_endpoint(
            **drop_empty(
                {
                    "VpcId": reg.require("vpcId"),
                    "ServiceName": reg.require("serviceName"),
                    "VpcEndpointType": reg.get("vpcEndpointType", "Gateway"),
                    "RouteTableIds": reg.get("routeTableIds"),
                    "SubnetIds": reg.get("subnetIds"),
                    "SecurityGroupIds": reg.get("securityGroupIds"),
                    "PrivateDnsEnabled": reg.get("privateDnsEnabled"),
                    "PolicyDocument": reg.get("policy"),
                    "TagSpecifications": tag_spec("vpc-endpoint", reg.get("tags"), physical),
                }
            )
        )["VpcEndpoint"]
    ident = endpoint["VpcEndpointId"]
    return ident, {
        "arn": ctx.arn("ec2", f"vpc-endpoint/{ident}"),
        "ownerId": ctx.account_id,
        "state": endpoint.get("State", "available"),
        "networkInterfaceIds": endpoint.get("NetworkInterfaceIds", []),
        "prefixListId": _service_prefix_list(ctx, endpoint),
    }


def _service_prefix_list(ctx: RealizeContext, endpoint: Mapping[str, Any]) -> str:
    """A gateway endpoint's `prefixListId`: the AWS-managed prefix list of its service (what the
    provider reads; moto's DescribeVpcEndpoints does not return it). Interface endpoints have
    none."""
    if endpoint.get("VpcEndpointType", "Gateway") != "Gateway":
        return ""
    if endpoint.get("PrefixListId"):
        return str(endpoint["PrefixListId"])
    service = str(endpoint["ServiceName"])
    lists = ctx.client("ec2").describe_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [service]}]
    )["PrefixLists"]
    if not lists:
        raise RealizeError(f"no AWS-managed prefix list for gateway endpoint service {service}")
    return str(lists[0]["PrefixListId"])


@realizer("aws:ec2/flowLog:FlowLog", _ec2_reader("describe_flow_logs", "FlowLogIds", "FlowLogs"))
def _flow_log(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    flow = _find_tagged(ctx, "describe_flow_logs", "FlowLogs", physical)
    if flow is not None:
        ident = str(flow["FlowLogId"])
    else:
        for key, kind in (("vpcId", "VPC"), ("subnetId", "Subnet"), ("eniId", "NetworkInterface")):
            if reg.get(key):
                resource_type, resource_id = kind, reg.get(key)
                break
        else:
            raise RealizeError(f"{reg.name}: only VPC, subnet and ENI flow logs are realized")
        response = ctx.client("ec2").create_flow_logs(
            **drop_empty(
                {
                    "ResourceType": resource_type,
                    "ResourceIds": [resource_id],
                    "TrafficType": reg.get("trafficType", "ALL"),
                    "LogDestinationType": reg.get("logDestinationType", "cloud-watch-logs"),
                    "LogDestination": reg.get("logDestination"),
                    "DeliverLogsPermissionArn": reg.get("iamRoleArn"),
                    "LogFormat": reg.get("logFormat"),
                    "MaxAggregationInterval": reg.get("maxAggregationInterval", 600),
                    "TagSpecifications": tag_spec("vpc-flow-log", reg.get("tags"), physical),
                }
            )
        )
        if response.get("Unsuccessful"):
            raise RealizeError(f"create_flow_logs: {response['Unsuccessful']}")
        ident = str(response["FlowLogIds"][0])
    return ident, {"arn": ctx.arn("ec2", f"vpc-flow-log/{ident}")}


@realizer(
    "aws:ec2/internetGateway:InternetGateway",
    _ec2_reader("describe_internet_gateways", "InternetGatewayIds", "InternetGateways"),
)
def _internet_gateway(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ec2 = ctx.client("ec2")
    physical = reg.physical(key="__none__")
    gateway = _find_tagged(ctx, "describe_internet_gateways", "InternetGateways", physical)
    if gateway is None:
        gateway = ec2.create_internet_gateway(
            TagSpecifications=tag_spec("internet-gateway", reg.get("tags"), physical)
        )["InternetGateway"]
    ident = gateway["InternetGatewayId"]
    vpc_id = reg.get("vpcId")
    if vpc_id and not any(a.get("VpcId") == vpc_id for a in gateway.get("Attachments", [])):
        ec2.attach_internet_gateway(InternetGatewayId=ident, VpcId=vpc_id)
    return ident, {"arn": ctx.arn("ec2", f"internet-gateway/{ident}"), "ownerId": ctx.account_id}


def _read_eip(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("ec2").describe_addresses(AllocationIds=[ident])["Addresses"][0]


@realizer("aws:ec2/eip:Eip", _read_eip)
def _eip(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    address = _find_tagged(ctx, "describe_addresses", "Addresses", physical)
    if address is None:
        address = ctx.client("ec2").allocate_address(
            Domain="vpc", TagSpecifications=tag_spec("elastic-ip", reg.get("tags"), physical)
        )
    ident = address["AllocationId"]
    return ident, {
        "allocationId": ident,
        "publicIp": address.get("PublicIp", ""),
        "domain": "vpc",
        "arn": ctx.arn("ec2", f"elastic-ip/{ident}"),
    }


@realizer(
    "aws:ec2/natGateway:NatGateway",
    _ec2_reader("describe_nat_gateways", "NatGatewayIds", "NatGateways"),
)
def _nat_gateway(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    physical = reg.physical(key="__none__")
    gateway = _find_tagged(ctx, "describe_nat_gateways", "NatGateways", physical)
    if gateway is None:
        gateway = ctx.client("ec2").create_nat_gateway(
            **drop_empty(
                {
                    "SubnetId": reg.require("subnetId"),
                    "AllocationId": reg.get("allocationId"),
                    "ConnectivityType": reg.get("connectivityType", "public"),
                    "TagSpecifications": tag_spec("natgateway", reg.get("tags"), physical),
                }
            )
        )["NatGateway"]
    ident = gateway["NatGatewayId"]
    return ident, {"arn": ctx.arn("ec2", f"natgateway/{ident}")}


# --- ECR and CloudTrail


def _read_repository(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("ecr").describe_repositories(repositoryNames=[ident])["repositories"][0]


@realizer("aws:ecr/repository:Repository", _read_repository)
def _ecr_repository(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    ecr = ctx.client("ecr")
    name = reg.physical(max_len=256, lower=True)
    found = exists(
        lambda: ecr.describe_repositories(repositoryNames=[name]), "RepositoryNotFoundException"
    )
    if found is None:
        request: dict[str, Any] = drop_empty(
            {
                "repositoryName": name,
                "imageTagMutability": reg.get("imageTagMutability"),
                "imageScanningConfiguration": reg.get("imageScanningConfiguration"),
                "tags": tag_list(reg.get("tags")),
            }
        )
        encryption = reg.get("encryptionConfigurations", [])
        if encryption:
            request["encryptionConfiguration"] = drop_empty(
                {
                    "encryptionType": encryption[0].get("encryptionType", "AES256"),
                    "kmsKey": encryption[0].get("kmsKey"),
                }
            )
        repo = ecr.create_repository(**request)["repository"]
    else:
        repo = found["repositories"][0]
    return name, {
        "name": name,
        "arn": repo["repositoryArn"],
        "registryId": repo["registryId"],
        "repositoryUrl": repo["repositoryUri"],
    }


def _read_lifecycle(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("ecr").get_lifecycle_policy(repositoryName=ident)


@realizer("aws:ecr/lifecyclePolicy:LifecyclePolicy", _read_lifecycle)
def _ecr_lifecycle(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    repo = str(reg.require("repository"))
    ctx.client("ecr").put_lifecycle_policy(
        repositoryName=repo, lifecyclePolicyText=str(reg.require("policy"))
    )
    return repo, {"registryId": ctx.account_id}


def _read_repository_policy(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("ecr").get_repository_policy(repositoryName=ident)


@realizer("aws:ecr/repositoryPolicy:RepositoryPolicy", _read_repository_policy)
def _ecr_repository_policy(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    repo = str(reg.require("repository"))
    ctx.client("ecr").set_repository_policy(
        repositoryName=repo, policyText=str(reg.require("policy"))
    )
    return repo, {"registryId": ctx.account_id}


def _read_trail(ctx: RealizeContext, ident: str, _: Mapping[str, Any]) -> Any:
    return ctx.client("cloudtrail").get_trail(Name=ident)


@realizer("aws:cloudtrail/trail:Trail", _read_trail)
def _trail(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    cloudtrail = ctx.client("cloudtrail")
    name = reg.physical(max_len=128)
    settings = drop_empty(
        {
            "Name": name,
            "S3BucketName": reg.require("s3BucketName"),
            "S3KeyPrefix": reg.get("s3KeyPrefix"),
            "SnsTopicName": reg.get("snsTopicName"),
            "IncludeGlobalServiceEvents": reg.get("includeGlobalServiceEvents", True),
            "IsMultiRegionTrail": reg.get("isMultiRegionTrail", False),
            "EnableLogFileValidation": reg.get("enableLogFileValidation", False),
            "CloudWatchLogsLogGroupArn": reg.get("cloudWatchLogsGroupArn"),
            "CloudWatchLogsRoleArn": reg.get("cloudWatchLogsRoleArn"),
            "KmsKeyId": reg.get("kmsKeyId"),
            "IsOrganizationTrail": reg.get("isOrganizationTrail"),
        }
    )
    found = exists(lambda: cloudtrail.get_trail(Name=name), "TrailNotFoundException")
    if found is None:
        arn = cloudtrail.create_trail(**settings, TagsList=tag_list(reg.get("tags")))["TrailARN"]
    else:
        arn = found["Trail"]["TrailARN"]
        current = found["Trail"]
        if any(
            current.get(k) != v
            for k, v in settings.items()
            if k not in ("Name", "CloudWatchLogsLogGroupArn")
        ):
            cloudtrail.update_trail(**settings)
    if reg.get("advancedEventSelectors"):
        cloudtrail.put_event_selectors(
            TrailName=name, AdvancedEventSelectors=pascal(reg.get("advancedEventSelectors"))
        )
    elif reg.get("eventSelectors"):
        cloudtrail.put_event_selectors(
            TrailName=name, EventSelectors=pascal(reg.get("eventSelectors"))
        )
    if reg.get("insightSelectors"):
        cloudtrail.put_insight_selectors(
            TrailName=name, InsightSelectors=pascal(reg.get("insightSelectors"))
        )
    if reg.get("enableLogging", True):
        cloudtrail.start_logging(Name=name)
    else:
        cloudtrail.stop_logging(Name=name)
    return str(arn), {"name": name, "arn": arn, "homeRegion": ctx.region}


# --- the mocks


class RealizingMocks(PlanMocks):
    """`PlanMocks` whose `new_resource` realizes each custom resource in the sandbox's moto.

    After the run: `realized` (type, name, id), `not_emulated` (type, name, reason), `failed`
    (type, name, error) and `notes` (type, name, what was dropped or replaced).
    """

    def __init__(self, settings: Settings, ctx: RealizeContext) -> None:
        super().__init__(settings)
        self.ctx = ctx
        self.realized: list[tuple[str, str, str]] = []
        self.not_emulated: list[tuple[str, str, str]] = []
        self.failed: list[tuple[str, str, str]] = []
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def notes(self) -> list[tuple[str, str, str]]:
        return self.ctx.notes

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        create = REALIZERS.get(args.typ)
        if args.resource_id:
            with self._lock:
                self.not_emulated.append(
                    (
                        args.typ,
                        args.name,
                        "a read of an existing resource "
                        f"({args.resource_id}): the sandbox only creates",
                    )
                )
            return super().new_resource(args)
        if create is None:
            with self._lock:
                self.not_emulated.append((args.typ, args.name, not_emulated_reason(args.typ)))
            return super().new_resource(args)
        inputs = plain(dict(args.inputs))
        try:
            ident, computed = create(self.ctx, Registration(args.typ, args.name, inputs))
        except NotEmulated as exc:
            with self._lock:
                self.not_emulated.append((args.typ, args.name, str(exc)))
            return super().new_resource(args)
        except Exception as exc:  # reported by the realize step, never swallowed
            with self._lock:
                self.failed.append((args.typ, args.name, f"{type(exc).__name__}: {exc}"))
            return super().new_resource(args)
        state = {**dict(args.inputs), **computed}
        if "tags" in args.inputs and "tagsAll" not in state:
            state["tagsAll"] = args.inputs["tags"]
        with self._lock:
            self.realized.append((args.typ, args.name, ident))
            self.states[(args.typ, args.name)] = {**inputs, **computed}
        return ident, state

    def finish(self) -> None:
        """Run the deferred actions, in registration order, one at a time. A resource whose
        action fails moves from `realized` to `failed` (or `not_emulated`, with the reason)."""
        while self.ctx.deferred:
            type_, name, ident, action = self.ctx.deferred.pop(0)
            try:
                action()
            except NotEmulated as exc:
                self._unrealize(type_, name, ident)
                self.not_emulated.append((type_, name, str(exc)))
            except Exception as exc:  # reported by the realize step, never swallowed
                self._unrealize(type_, name, ident)
                self.failed.append((type_, name, f"{type(exc).__name__}: {exc}"))

    def _unrealize(self, type_: str, name: str, ident: str) -> None:
        with self._lock:
            if (type_, name, ident) in self.realized:
                self.realized.remove((type_, name, ident))
            self.states.pop((type_, name), None)

    def verify(self) -> list[tuple[str, str, str]]:
        """Read every realized resource back from moto; the problems found (type, name, error)."""
        problems = []
        for type_, name, ident in self.realized:
            try:
                READERS[type_](self.ctx, ident, self.states[(type_, name)])
            except Exception as exc:
                problems.append((type_, name, f"{type(exc).__name__}: {exc}"))
        return problems


def realize(
    settings: Settings,
    config: Mapping[str, Any],
    mocks: RealizingMocks,
    program: Callable[[], None] | None = None,
) -> Plan:
    """Run the program under `mocks`, then the deferred actions; returns the recorder's `Plan`."""
    from mlplat.plan import engine

    plan = engine.run(settings, config, mocks=mocks, program=program)
    mocks.finish()
    return plan


def context_for(session: boto3.Session, endpoint_url: str, settings: Settings) -> RealizeContext:
    return RealizeContext(
        session=session,
        endpoint_url=endpoint_url,
        region=settings.region,
        account_id=settings.account_id,
    )
