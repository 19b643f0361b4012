"""Isolation: workloads cannot borrow the node's identity or each other's network.

* `ec2-launchtemplate-imds-hop-limit`: a container behind the node's network namespace reaches the
  instance metadata service only when the hop limit is above 1, and with it the node role's
  credentials; IRSA gives every pod its own role, so nodes keep the limit at 1.
* `iam-policy-eni-scoped`: a role that creates, deletes or shares network interfaces does so in one
  VPC (an `ec2:Vpc` / `ec2:Subnet` condition, or named interfaces), never account-wide.
* `kubernetes-namespace-isolated`: every namespace the stack creates enforces Pod Security
  `restricted` and denies traffic by default (a NetworkPolicy selecting every pod, with no rule),
  and the cluster enforces NetworkPolicies at all (the VPC CNI add-on with its policy agent on).
* `kubernetes-pod-restricted`: every pod template in such a namespace meets the `restricted`
  profile, so admission would not refuse it at run time.
* `kubernetes-image-digest-pinned` (advisory): every image a Kubernetes object runs is pinned by
  digest (`@sha256:`), so a re-pushed tag cannot change what runs.
* `sagemaker-job-private`: every SageMaker job a state machine or a pipeline starts runs in the
  VPC with its volumes (and its outputs, when SageMaker uploads them) encrypted with a KMS key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policies.core import (
    Context,
    Finding,
    PolicySpec,
    Resource,
    UnknownValueError,
    json_document,
    listify,
    of_type,
)
from policies.rules.network import CLUSTER, images, kubernetes_objects

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
ADDON = "aws:eks/addon:Addon"
POLICY_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/role:Role",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ENI_ACTIONS = frozenset(
    {
        "ec2:createnetworkinterface",
        "ec2:deletenetworkinterface",
        "ec2:createnetworkinterfacepermission",
        "ec2:deletenetworkinterfacepermission",
    }
)
ENI_CONDITION_KEYS = frozenset({"ec2:vpc", "ec2:subnet", "aws:sourcevpc"})
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
# Pod Security Standards, `restricted` profile (Kubernetes 1.33).
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
WORKLOAD_KINDS = ("Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob")


# --- nodes ------------------------------------------------------------------------------------


def check_hop_limit(resource: Resource, _ctx: Context) -> Iterator[str]:
    if resource.get("metadataOptions", "httpEndpoint") == "disabled":
        return
    limit = resource.get("metadataOptions", "httpPutResponseHopLimit", default=1)
    if not isinstance(limit, int) or limit > 1:
        yield (
            f"{resource.where()}: metadataOptions.httpPutResponseHopLimit is {limit!r}; a "
            "container can then read the node role's credentials: keep it at 1 and give "
            "workloads their own roles (IRSA)"
        )


# --- IAM: network interfaces ------------------------------------------------------------------


def _documents(resource: Resource) -> Iterator[Any]:
    if resource.type == "aws:iam/role:Role":
        for inline in listify(resource.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                yield json_document(inline.get("policy"), f".inlinePolicies of {resource.where()}")
        return
    yield json_document(resource.get("policy"), f".policy of {resource.where()}")


def _lower(values: Any) -> set[str]:
    return {str(v).lower() for v in listify(values)}


def check_eni_scoped(resource: Resource, _ctx: Context) -> Iterator[str]:
    for document in _documents(resource):
        if not isinstance(document, Mapping):
            continue
        for statement in listify(document.get("Statement")):
            if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
                continue
            actions = _lower(statement.get("Action"))
            eni = sorted(a for a in actions if a in ENI_ACTIONS or a in ("ec2:*", "*"))
            if not eni:
                continue
            resources = [str(r) for r in listify(statement.get("Resource"))]
            keys = {
                k.lower()
                for block in (statement.get("Condition") or {}).values()
                if isinstance(block, Mapping)
                for k in block
            }
            if "*" in resources and not keys & ENI_CONDITION_KEYS:
                yield (
                    f"{resource.where()}: {', '.join(eni)} on any network interface in the "
                    "account: scope to the VPC (resources network-interface/*, subnet/*, "
                    "security-group/<id> with an ec2:Vpc condition)"
                )


# --- Kubernetes -------------------------------------------------------------------------------


def _namespaces(resources: Sequence[Resource]) -> list[tuple[Resource, Mapping[str, Any]]]:
    return [(r, o) for r, o in kubernetes_objects(resources) if o.get("kind") == "Namespace"]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _denies_by_default(policy: Mapping[str, Any]) -> bool:
    spec = policy.get("spec")
    if not isinstance(spec, Mapping):
        return False
    return (
        spec.get("podSelector") == {}
        and set(listify(spec.get("policyTypes"))) >= {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def _enforces_network_policy(resources: Sequence[Resource]) -> bool:
    for addon in of_type(resources, ADDON):
        if addon.get("addonName") != "vpc-cni":
            continue
        values = addon.get("configurationValues")
        try:
            config = json.loads(values) if isinstance(values, str) else values
        except json.JSONDecodeError:
            continue
        if isinstance(config, Mapping) and str(config.get("enableNetworkPolicy")) == "true":
            return True
    return False


def check_namespaces(resources: Sequence[Resource], _ctx: Context) -> Iterator[Finding]:
    try:
        namespaces = _namespaces(resources)
        objects = list(kubernetes_objects(resources))
        enforced = _enforces_network_policy(resources)
    except UnknownValueError as exc:
        yield Finding("", f"skipped: the cluster's objects are not known yet ({exc})", True)
        return
    denying = {
        _meta(o).get("namespace")
        for _, o in objects
        if o.get("kind") == "NetworkPolicy" and _denies_by_default(o)
    }
    for source, ns in namespaces:
        name = _meta(ns).get("name")
        labels = _meta(ns).get("labels") or {}
        if labels.get(PSA_ENFORCE) != "restricted":
            yield Finding(
                source.urn,
                f"namespace {name!r}: Pod Security {PSA_ENFORCE} is "
                f"{labels.get(PSA_ENFORCE)!r}; enforce 'restricted'",
            )
        if name not in denying:
            yield Finding(
                source.urn,
                f"namespace {name!r}: no default-deny NetworkPolicy (podSelector {{}}, policyTypes "
                "Ingress and Egress, no rules): every pod may talk to any other",
            )
    if namespaces and of_type(resources, CLUSTER) and not enforced:
        yield Finding(
            namespaces[0][0].urn,
            "the cluster does not enforce NetworkPolicies: add the vpc-cni add-on with "
            'configurationValues {"enableNetworkPolicy": "true"}',
        )


def restricted_problems(pod: Mapping[str, Any]) -> list[str]:
    """Where a pod spec breaks the Pod Security `restricted` profile (empty: it meets it)."""
    problems = []
    security = pod.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            problems.append(f"{host} is set")
    for volume in listify(pod.get("volumes")):
        kinds = set(volume) - {"name"} if isinstance(volume, Mapping) else set()
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume.get('name')!r} is {', '.join(sorted(kinds))}")
    containers = [
        *listify(pod.get("initContainers")),
        *listify(pod.get("containers")),
    ]
    for c in containers:
        if not isinstance(c, Mapping):
            continue
        who = f"container {c.get('name')!r}"
        own = c.get("securityContext") or {}
        if own.get("privileged"):
            problems.append(f"{who} is privileged")
        if own.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{who}: allowPrivilegeEscalation must be false")
        caps = own.get("capabilities") or {}
        if "ALL" not in listify(caps.get("drop")):
            problems.append(f"{who}: capabilities must drop ALL")
        added = set(listify(caps.get("add"))) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{who} adds capabilities {sorted(added)}")
        non_root = own.get("runAsNonRoot", security.get("runAsNonRoot"))
        if non_root is not True or own.get("runAsUser", security.get("runAsUser")) == 0:
            problems.append(f"{who} may run as root (runAsNonRoot true, runAsUser not 0)")
        seccomp = (own.get("seccompProfile") or security.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{who}: seccompProfile must be RuntimeDefault or Localhost")
        if c.get("ports") and any(
            isinstance(p, Mapping) and p.get("hostPort") for p in listify(c.get("ports"))
        ):
            problems.append(f"{who} uses a host port")
    return problems


def pod_template(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a workload object (a CronJob's through its job template)."""
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return None
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") if isinstance(spec, Mapping) else None
    pod = template.get("spec") if isinstance(template, Mapping) else None
    return pod if isinstance(pod, Mapping) else None


def check_pods(resources: Sequence[Resource], _ctx: Context) -> Iterator[Finding]:
    try:
        objects = list(kubernetes_objects(resources))
    except UnknownValueError as exc:
        yield Finding("", f"skipped: the cluster's objects are not known yet ({exc})", True)
        return
    restricted = {
        _meta(o).get("name")
        for _, o in objects
        if o.get("kind") == "Namespace"
        and (_meta(o).get("labels") or {}).get(PSA_ENFORCE) == "restricted"
    }
    for source, obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS or _meta(obj).get("namespace") not in restricted:
            continue
        pod = pod_template(obj)
        for problem in restricted_problems(pod or {}):
            yield Finding(
                source.urn,
                f"{obj.get('kind')} {_meta(obj).get('namespace')}/{_meta(obj).get('name')}: "
                f"{problem} (Pod Security 'restricted' would refuse its pods)",
            )


def check_digests(resources: Sequence[Resource], _ctx: Context) -> Iterator[Finding]:
    try:
        objects = list(kubernetes_objects(resources))
    except UnknownValueError as exc:
        yield Finding("", f"skipped: the cluster's objects are not known yet ({exc})", True)
        return
    for source, obj in objects:
        for image in images(obj):
            if not isinstance(image, str) or "@sha256:" in image:
                continue
            yield Finding(
                source.urn,
                f"{obj.get('kind')} {_meta(obj).get('namespace')}/{_meta(obj).get('name')}: "
                f"image {image!r} is pulled by tag: pin it by digest (<image>@sha256:<digest>)",
            )


# --- SageMaker jobs started by workflows --------------------------------------------------------

STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
# (what marks a job request, where its volume key is, where its outputs' key is)
_JOB_SHAPES = (
    (
        "ProcessingResources",
        ("ProcessingResources", "ClusterConfig", "VolumeKmsKeyId"),
        ("ProcessingOutputConfig", "KmsKeyId"),
        "ProcessingOutputConfig",
    ),
    (
        "ResourceConfig",
        ("ResourceConfig", "VolumeKmsKeyId"),
        ("OutputDataConfig", "KmsKeyId"),
        "OutputDataConfig",
    ),
    (
        "TransformResources",
        ("TransformResources", "VolumeKmsKeyId"),
        ("TransformOutput", "KmsKeyId"),
        "TransformOutput",
    ),
)


def _walk(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


def _at(value: Any, path: Sequence[str]) -> Any:
    for step in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step, value.get(f"{step}.$"))
    return value


def job_problems(request: Mapping[str, Any]) -> list[str]:
    """What a SageMaker job request (processing, training, transform) lacks to run privately."""
    for marker, volume_key, output_key, output in _JOB_SHAPES:
        if marker not in request:
            continue
        problems = []
        vpc = _at(request, ("NetworkConfig", "VpcConfig")) or request.get("VpcConfig")
        if not (isinstance(vpc, Mapping) and (vpc.get("Subnets") or vpc.get("Subnets.$"))):
            problems.append("runs outside the VPC (no VpcConfig with subnets)")
        if not _at(request, volume_key):
            problems.append(f"its volume has no KMS key ({'.'.join(volume_key)})")
        if output in request and not _at(request, output_key):
            problems.append(f"its outputs have no KMS key ({'.'.join(output_key)})")
        return problems
    return []


def check_workflow_jobs(resource: Resource, _ctx: Context) -> Iterator[str]:
    prop = "pipelineDefinition" if resource.type == PIPELINE else "definition"
    definition = json_document(resource.get(prop), f".{prop} of {resource.where()}")
    for request in _walk(definition):
        problems = job_problems(request)
        if problems:
            name = request.get("ProcessingJobName.$") or request.get("TrainingJobName") or "a job"
            yield f"{resource.where()}: SageMaker job {name!r} " + "; ".join(problems)


POLICIES = (
    PolicySpec(
        name="ec2-launchtemplate-imds-hop-limit",
        description="Instances and launch templates keep the metadata hop limit at 1, so no "
        "container reads the node role's credentials.",
        enforcement="mandatory",
        severity="medium",
        reference="AWS EKS best practices: restrict access to the instance profile; CKV_AWS_341",
        types=(LAUNCH_TEMPLATE, INSTANCE),
        check=check_hop_limit,
    ),
    PolicySpec(
        name="iam-policy-eni-scoped",
        description="Creating, deleting or sharing network interfaces is scoped to one VPC, "
        "never allowed on every interface of the account.",
        enforcement="mandatory",
        severity="medium",
        reference="IAM Access Analyzer policy checks; SageMaker developer guide: VPC permissions",
        types=POLICY_TYPES,
        check=check_eni_scoped,
    ),
    PolicySpec(
        name="kubernetes-namespace-isolated",
        description="Every namespace the stack creates enforces Pod Security 'restricted' and "
        "denies traffic by default, and the cluster enforces NetworkPolicies.",
        enforcement="mandatory",
        severity="medium",
        reference="Kubernetes Pod Security Standards; EKS best practices: network policies",
        stack_check=check_namespaces,
    ),
    PolicySpec(
        name="sagemaker-job-private",
        description="Every SageMaker job a state machine or pipeline starts runs in the VPC with "
        "KMS-encrypted volumes and outputs.",
        enforcement="mandatory",
        severity="medium",
        reference="AWS Security Hub SageMaker controls; CKV_AWS_367 (processing in VPC)",
        types=(STATE_MACHINE, PIPELINE),
        check=check_workflow_jobs,
    ),
    PolicySpec(
        name="kubernetes-pod-restricted",
        description="Every pod template in a 'restricted' namespace meets the restricted "
        "profile (non-root, no escalation, drop ALL, seccomp, safe volumes).",
        enforcement="mandatory",
        severity="medium",
        reference="Kubernetes Pod Security Standards: restricted",
        stack_check=check_pods,
    ),
    PolicySpec(
        name="kubernetes-image-digest-pinned",
        description="Every container image a Kubernetes object runs is pinned by digest.",
        enforcement="advisory",
        severity="low",
        reference="CKV_K8S_43; NIST SP 800-190 4.1.2",
        stack_check=check_digests,
    ),
)
