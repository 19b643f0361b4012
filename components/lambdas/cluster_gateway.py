"""The cluster gateway: the only caller of the training cluster's private Kubernetes API.

It runs as two Lambda functions in the cluster's private subnets (`components.cluster_gateway`),
so neither `pulumi up` on a CI runner nor a laptop needs a network path into the VPC:

* `deployer`: applies the platform's in-cluster objects. `pulumi up` invokes it through an
  `aws.lambda.Invocation` with `lifecycle_scope="CRUD"`, whose payload is
  `{"applySet": ..., "objects": [...]}` plus the provider's lifecycle key
  `{"tf": {"action": "create"|"update"|"delete", "prev_input": {...}}}`. Every object is
  server-side applied (field manager `ml-platform`), objects that left the set are deleted, and on
  delete the whole set is removed; an error fails the invocation, and so the update.
* `jobs`: submits and follows training Jobs in one namespace (`mlplat train --on eks`):
  `{"action": "submit", "job": {...}}`, `status`, `logs`, `list`, `delete`.

It authenticates with its execution role exactly as `aws eks get-token` does (a presigned STS
`GetCallerIdentity` URL bound to the cluster name) and trusts only the cluster's CA. Standard
library and botocore only: what the Lambda Python runtime ships.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIELD_MANAGER = "ml-platform"
APPLY_SET_LABEL = "mlplatform.io/apply-set"
LIFECYCLE_KEY = "tf"
TOKEN_PREFIX = "k8s-aws-v1."
# A presigned URL EKS accepts: X-Amz-Expires 60 (the token itself is valid for 15 minutes).
TOKEN_EXPIRES = 60
MAX_LOG_LINES = 1000
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class GatewayError(RuntimeError):
    """A request the gateway refuses, or an answer from the cluster that fails it."""


@dataclass(frozen=True, slots=True)
class Kind:
    api: str  # "/api/v1" or "/apis/<group>/<version>"
    plural: str
    namespaced: bool
    order: int  # apply order (lowest first); deletes run in reverse


# The kinds the platform applies, in the order they can be created: a namespace before what lives
# in it, RBAC and service accounts before the workloads that use them.
KINDS: Mapping[tuple[str, str], Kind] = {
    ("v1", "Namespace"): Kind("/api/v1", "namespaces", False, 0),
    ("scheduling.k8s.io/v1", "PriorityClass"): Kind(
        "/apis/scheduling.k8s.io/v1", "priorityclasses", False, 1
    ),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): Kind(
        "/apis/rbac.authorization.k8s.io/v1", "clusterroles", False, 2
    ),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): Kind(
        "/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False, 3
    ),
    ("v1", "ServiceAccount"): Kind("/api/v1", "serviceaccounts", True, 4),
    ("rbac.authorization.k8s.io/v1", "Role"): Kind(
        "/apis/rbac.authorization.k8s.io/v1", "roles", True, 5
    ),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): Kind(
        "/apis/rbac.authorization.k8s.io/v1", "rolebindings", True, 6
    ),
    ("v1", "ConfigMap"): Kind("/api/v1", "configmaps", True, 7),
    ("v1", "ResourceQuota"): Kind("/api/v1", "resourcequotas", True, 8),
    ("v1", "LimitRange"): Kind("/api/v1", "limitranges", True, 9),
    ("networking.k8s.io/v1", "NetworkPolicy"): Kind(
        "/apis/networking.k8s.io/v1", "networkpolicies", True, 10
    ),
    ("policy/v1", "PodDisruptionBudget"): Kind("/apis/policy/v1", "poddisruptionbudgets", True, 11),
    ("apps/v1", "DaemonSet"): Kind("/apis/apps/v1", "daemonsets", True, 12),
    ("apps/v1", "Deployment"): Kind("/apis/apps/v1", "deployments", True, 13),
    ("batch/v1", "Job"): Kind("/apis/batch/v1", "jobs", True, 14),
}


@dataclass(frozen=True, slots=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @property
    def spec(self) -> Kind:
        return KINDS[(self.api_version, self.kind)]

    def path(self) -> str:
        kind = self.spec
        ns = f"/namespaces/{self.namespace}" if kind.namespaced else ""
        return f"{kind.api}{ns}/{kind.plural}/{self.name}"


def object_ref(obj: Any, where: str = "object") -> ObjectRef:
    """The identity of a manifest; a `GatewayError` names what is wrong and what is allowed."""
    if not isinstance(obj, Mapping):
        raise GatewayError(f"{where}: expected a Kubernetes object (a mapping), got {obj!r:.80}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    metadata = obj.get("metadata")
    if (api_version, kind) not in KINDS:
        known = ", ".join(f"{k} ({v})" for v, k in sorted(KINDS, key=lambda vk: vk[1]))
        raise GatewayError(
            f"{where}: kind {kind!r} of {api_version!r} is not handled; known: {known}"
        )
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        raise GatewayError(f"{where}: {kind} without metadata.name")
    name = metadata["name"]
    if not _DNS_SUBDOMAIN.match(name):
        raise GatewayError(f"{where}: {kind} name {name!r} is not a DNS subdomain")
    spec = KINDS[(str(api_version), str(kind))]
    namespace = metadata.get("namespace")
    if spec.namespaced:
        if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace):
            raise GatewayError(f"{where}: {kind} {name!r} needs metadata.namespace (a DNS label)")
    elif namespace is not None:
        raise GatewayError(f"{where}: {kind} {name!r} is cluster-scoped; drop metadata.namespace")
    return ObjectRef(str(api_version), str(kind), namespace if spec.namespaced else None, name)


# --- talking to the cluster ---------------------------------------------------------------------


def eks_token(cluster_name: str, region: str, session: Any = None) -> str:
    """A bearer token for the EKS API, as `aws eks get-token` makes it."""
    import botocore.session
    from botocore.signers import RequestSigner

    session = session or botocore.session.get_session()
    client = session.create_client("sts", region_name=region)
    signer = RequestSigner(
        client.meta.service_model.service_id,
        region,
        "sts",
        "v4",
        session.get_credentials(),
        session.get_component("event_emitter"),
    )
    url = signer.generate_presigned_url(
        {
            "method": "GET",
            "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
            "body": {},
            "headers": {"x-k8s-aws-id": cluster_name},
            "context": {},
        },
        region_name=region,
        expires_in=TOKEN_EXPIRES,
        operation_name="",
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


@dataclass(slots=True)
class ClusterApi:
    """A minimal HTTPS client for the Kubernetes API: bearer token, the cluster's CA only."""

    endpoint: str
    ca_data: str  # base64 PEM, as EKS returns `certificateAuthority.data`
    token: Callable[[], str]
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.endpoint.startswith("https://"):
            raise GatewayError(f"cluster endpoint {self.endpoint!r}: expected https://")
        self.endpoint = self.endpoint.rstrip("/")

    def _context(self) -> ssl.SSLContext:
        try:
            pem = base64.b64decode(self.ca_data).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise GatewayError(f"cluster CA is not base64 PEM: {exc}") from exc
        return ssl.create_default_context(cadata=pem)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        """One call; returns the decoded JSON (or text when `raw`), None for 404 on GET/DELETE."""
        url = self.endpoint + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._context()) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method in ("GET", "DELETE"):
                return None
            raise GatewayError(f"{method} {path}: HTTP {exc.code} {_status_message(exc)}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise GatewayError(
                f"{method} {path}: cannot reach the cluster API at {self.endpoint} ({exc}); the "
                "gateway must run in the cluster's subnets, and the cluster security group must "
                "admit it on 443"
            ) from exc
        if raw:
            return text
        return json.loads(text) if text else {}


def _status_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read().decode() or "{}")
    except (ValueError, OSError):
        return exc.reason or ""
    return str(body.get("message") or exc.reason or "")


def api_from_env(environ: Mapping[str, str] | None = None) -> ClusterApi:
    env = os.environ if environ is None else environ
    missing = [k for k in ("CLUSTER_NAME", "CLUSTER_ENDPOINT", "CLUSTER_CA") if not env.get(k)]
    if missing:
        raise GatewayError(f"the function's environment lacks {', '.join(missing)}")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    name = env["CLUSTER_NAME"]
    return ClusterApi(env["CLUSTER_ENDPOINT"], env["CLUSTER_CA"], lambda: eks_token(name, region))


# --- the deployer: apply a set of objects --------------------------------------------------------


def labelled(obj: Mapping[str, Any], apply_set: str) -> dict[str, Any]:
    """A copy of `obj` carrying the apply-set label (how a later run finds what it owns)."""
    out: dict[str, Any] = json.loads(json.dumps(obj))
    out["metadata"].setdefault("labels", {})[APPLY_SET_LABEL] = apply_set
    return out


def _objects(payload: Any, where: str) -> tuple[str, list[tuple[ObjectRef, dict[str, Any]]]]:
    if not isinstance(payload, Mapping):
        raise GatewayError(f"{where}: expected {{'applySet': ..., 'objects': [...]}}")
    apply_set = payload.get("applySet")
    objects = payload.get("objects")
    if not isinstance(apply_set, str) or not _DNS_LABEL.match(apply_set):
        raise GatewayError(f"{where}: applySet {apply_set!r} must be a DNS label")
    if not isinstance(objects, list):
        raise GatewayError(f"{where}: objects must be a list of Kubernetes objects")
    refs = [(object_ref(o, f"{where}.objects[{i}]"), o) for i, o in enumerate(objects)]
    seen: set[ObjectRef] = set()
    for ref, _ in refs:
        if ref in seen:
            raise GatewayError(f"{where}: {ref} appears twice")
        seen.add(ref)
    return apply_set, refs


def apply_objects(api: ClusterApi, event: Mapping[str, Any]) -> dict[str, Any]:
    """Handle one lifecycle event of the deployer's `Invocation`."""
    lifecycle = event.get(LIFECYCLE_KEY) or {}
    action = lifecycle.get("action", "create") if isinstance(lifecycle, Mapping) else None
    if action not in ("create", "update", "delete"):
        raise GatewayError(f"lifecycle action {action!r}: expected create, update or delete")
    apply_set, wanted = _objects(event, "input")
    previous: list[tuple[ObjectRef, dict[str, Any]]] = []
    prev_input = lifecycle.get("prev_input") if isinstance(lifecycle, Mapping) else None
    if prev_input:
        _, previous = _objects(prev_input, "prev_input")

    if action == "delete":
        gone = [ref for ref, _ in wanted]
        return {"action": action, "applied": [], "deleted": _delete(api, gone)}
    applied = []
    for ref, obj in sorted(wanted, key=lambda ro: ro[0].spec.order):
        api.request(
            "PATCH",
            ref.path(),
            labelled(obj, apply_set),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type="application/apply-patch+yaml",
        )
        applied.append(str(ref))
    keep = {ref for ref, _ in wanted}
    stale = [ref for ref, _ in previous if ref not in keep]
    return {"action": action, "applied": applied, "deleted": _delete(api, stale)}


def _delete(api: ClusterApi, refs: Iterable[ObjectRef]) -> list[str]:
    deleted = []
    for ref in sorted(refs, key=lambda r: r.spec.order, reverse=True):
        found = api.request("DELETE", ref.path(), query={"propagationPolicy": "Background"})
        if found is not None:
            deleted.append(str(ref))
    return deleted


# --- the jobs gateway: submit and follow training Jobs ------------------------------------------

JOB_ACTIONS = ("submit", "status", "logs", "list", "delete")


def _job_name(event: Mapping[str, Any]) -> str:
    name = event.get("name")
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        raise GatewayError(f"name {name!r}: expected the Job's name (a DNS label)")
    return name


def _job_summary(job: Mapping[str, Any]) -> dict[str, Any]:
    status = job.get("status") or {}
    meta = job.get("metadata") or {}
    conditions = [
        {k: c.get(k) for k in ("type", "status", "reason", "message")}
        for c in status.get("conditions") or []
    ]
    done = {c["type"] for c in conditions if c.get("status") == "True"}
    state = "Complete" if "Complete" in done else "Failed" if "Failed" in done else "Running"
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "created": meta.get("creationTimestamp"),
        "state": state,
        "active": status.get("active", 0),
        "succeeded": status.get("succeeded", 0),
        "failed": status.get("failed", 0),
        "startTime": status.get("startTime"),
        "completionTime": status.get("completionTime"),
        "conditions": conditions,
    }


def _pods(api: ClusterApi, namespace: str, job: str) -> list[dict[str, Any]]:
    found = api.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": f"job-name={job}"}
    )
    pods = []
    for pod in (found or {}).get("items") or []:
        status = pod.get("status") or {}
        pods.append(
            {
                "name": pod["metadata"]["name"],
                "phase": status.get("phase"),
                "node": (pod.get("spec") or {}).get("nodeName"),
                "containers": [
                    {"name": c.get("name"), "state": c.get("state")}
                    for c in status.get("containerStatuses") or []
                ],
            }
        )
    return pods


def check_job(job: Any, namespace: str) -> dict[str, Any]:
    """The Job to submit: a `batch/v1` Job for exactly the gateway's namespace."""
    ref = object_ref(job, "job")
    if (ref.api_version, ref.kind) != ("batch/v1", "Job"):
        raise GatewayError(f"job: only batch/v1 Job may be submitted, not {ref.kind}")
    if ref.namespace != namespace:
        raise GatewayError(
            f"job: namespace {ref.namespace!r} is not allowed; this gateway submits to "
            f"{namespace!r} only"
        )
    if not _DNS_LABEL.match(ref.name):
        raise GatewayError(f"job: name {ref.name!r} must be a DNS label")
    return dict(job)


def handle_jobs(api: ClusterApi, event: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    action = event.get("action")
    base = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    if action == "submit":
        job = check_job(event.get("job"), namespace)
        created = api.request("POST", base, job)
        return {"action": action, "job": _job_summary(created)}
    if action == "list":
        found = api.request(
            "GET", base, query={"labelSelector": "app.kubernetes.io/part-of=ml-platform"}
        )
        jobs = [_job_summary(j) for j in (found or {}).get("items") or []]
        return {"action": action, "jobs": jobs}
    if action not in JOB_ACTIONS:
        raise GatewayError(f"action {action!r}: expected one of {', '.join(JOB_ACTIONS)}")
    name = _job_name(event)
    if action == "delete":
        found = api.request("DELETE", f"{base}/{name}", query={"propagationPolicy": "Background"})
        return {"action": action, "name": name, "deleted": found is not None}
    job = api.request("GET", f"{base}/{name}")
    if job is None:
        raise GatewayError(f"job {namespace}/{name} not found")
    pods = _pods(api, namespace, name)
    if action == "status":
        return {"action": action, "job": _job_summary(job), "pods": pods}
    lines = event.get("tailLines", 100)
    if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= MAX_LOG_LINES:
        raise GatewayError(f"tailLines {lines!r}: expected 1 to {MAX_LOG_LINES}")
    logs = {}
    for pod in pods:
        logs[pod["name"]] = api.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod['name']}/log",
            query={"tailLines": str(lines)},
            raw=True,
        )
    return {"action": action, "job": _job_summary(job), "logs": logs}


# --- the entry point ----------------------------------------------------------------------------

ROLES: Sequence[str] = ("deployer", "jobs")


def handler(event: Any, context: Any = None, *, api: ClusterApi | None = None) -> dict[str, Any]:
    """Lambda entry point; `GATEWAY_ROLE` says which of the two functions this is."""
    role = os.environ.get("GATEWAY_ROLE")
    if role not in ROLES:
        raise GatewayError(f"GATEWAY_ROLE {role!r}: expected one of {', '.join(ROLES)}")
    if not isinstance(event, Mapping):
        raise GatewayError(f"event: expected a JSON object, got {type(event).__name__}")
    api = api or api_from_env()
    if role == "deployer":
        return apply_objects(api, event)
    namespace = os.environ.get("JOBS_NAMESPACE", "")
    if not _DNS_LABEL.match(namespace):
        raise GatewayError(f"JOBS_NAMESPACE {namespace!r} must be a DNS label")
    return handle_jobs(api, event, namespace)
