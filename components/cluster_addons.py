"""What runs inside the training cluster, applied with pulumi-kubernetes.

Every object here is a typed pulumi-kubernetes resource, so each is a registration the engine
records (and the tests validate against the cluster version's OpenAPI schema):

* the NVIDIA device plugin DaemonSet (pinned image), only on GPU nodes and tolerating their taint,
  so that `nvidia.com/gpu` becomes a schedulable resource;
* the `training` namespace with a GPU `ResourceQuota` (what the GPU node groups can hold at most)
  and a `LimitRange` (defaults for containers that state no requests);
* the `trainer` service account, bound through IRSA to a role that may read the features zone and
  write the training prefix of the models bucket (with the lake key);
* the cluster autoscaler (IRSA role, service account, RBAC, Deployment on the system nodes) that
  scales the GPU node groups from zero when a Job asks for a GPU and back to zero when idle.

The Kubernetes provider comes from the parent (`TrainingCluster`) through `providers`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.iam import (
    Statement,
    assume_role_policy,
    policy_document,
    training_data_statements,
)

DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
# The cluster autoscaler's minor version must match the cluster's Kubernetes minor version.
CLUSTER_AUTOSCALER_IMAGES: Mapping[str, str] = {
    "1.33": "registry.k8s.io/autoscaling/cluster-autoscaler:v1.33.0",
}
# Node labels and the GPU taint (the Job builder in `ml.remote_training` uses the same values).
NODE_ROLE_LABEL = "mlplatform.io/node-role"
NODE_GROUP_LABEL = "mlplatform.io/node-group"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
AUTOSCALER_NAMESPACE = "kube-system"
AUTOSCALER_NAME = "cluster-autoscaler"


_R = TypeVar("_R")


def _k8s(kind: Callable[..., _R], name: str, **fields: Any) -> _R:
    """A typed pulumi-kubernetes resource from manifest-shaped (camelCase) dicts.

    The manifests are plain dicts (what `kubectl` would take), so the SDK's TypedDicts do not
    apply; the tests validate every one against the cluster version's OpenAPI schema instead.
    """
    return kind(name, **fields)


class ClusterAddonsError(ValueError):
    """The in-cluster objects cannot be built from these arguments."""


def cluster_autoscaler_image(eks_version: str) -> str:
    try:
        return CLUSTER_AUTOSCALER_IMAGES[eks_version]
    except KeyError:
        raise ClusterAddonsError(
            f"no cluster-autoscaler image pinned for Kubernetes {eks_version}; pinned: "
            f"{', '.join(sorted(CLUSTER_AUTOSCALER_IMAGES))} (the autoscaler's minor version must "
            "match the cluster's: add it to CLUSTER_AUTOSCALER_IMAGES)"
        ) from None


def irsa_trust_policy(
    provider_arn: pulumi.Input[str],
    issuer_url: pulumi.Input[str],
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """Trust for exactly one service account through the cluster's OIDC provider."""
    host = pulumi.Output.from_input(issuer_url).apply(lambda url: url.removeprefix("https://"))
    return host.apply(
        lambda h: assume_role_policy(
            federated=provider_arn,
            conditions={
                "StringEquals": {
                    f"{h}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{h}:aud": "sts.amazonaws.com",
                }
            },
        )
    )


@dataclass(frozen=True, slots=True)
class ClusterAddonsArgs:
    cluster_name: str
    eks_version: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    lake_kms_key_arn: pulumi.Input[str]
    features_bucket_arn: pulumi.Input[str]
    models_bucket_arn: pulumi.Input[str]
    gpu_quota: int  # GPUs all training pods may request together
    max_gpus_per_pod: int
    models_prefix: str = "training"
    namespace: str = "training"
    service_account: str = "trainer"
    tags: Mapping[str, str] | None = None


class ClusterAddons(pulumi.ComponentResource):
    trainer_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:training:ClusterAddons", name, None, opts)
        if args.gpu_quota < 1 or args.max_gpus_per_pod < 1:
            raise ClusterAddonsError(
                f"gpu_quota ({args.gpu_quota}) and max_gpus_per_pod ({args.max_gpus_per_pod}) "
                "must be at least 1"
            )
        autoscaler_image = cluster_autoscaler_image(args.eks_version)
        tags = dict(args.tags or {})
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output()
        region = aws.get_region_output()
        account = aws.get_caller_identity_output()
        labels = {"app.kubernetes.io/part-of": "ml-platform"}

        # --- NVIDIA device plugin -------------------------------------------------------------
        plugin_labels = {"app.kubernetes.io/name": "nvidia-device-plugin"}
        _k8s(
            k8s.apps.v1.DaemonSet,
            f"{name}-nvidia-device-plugin",
            metadata={
                "name": "nvidia-device-plugin",
                "namespace": "kube-system",
                "labels": {**labels, **plugin_labels},
            },
            spec={
                "selector": {"matchLabels": plugin_labels},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": {**labels, **plugin_labels}},
                    "spec": {
                        "priorityClassName": "system-node-critical",
                        "nodeSelector": {GPU_LABEL: "true"},
                        "tolerations": [
                            {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
                        ],
                        "containers": [
                            {
                                "name": "nvidia-device-plugin",
                                "image": DEVICE_PLUGIN_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "volumeMounts": [
                                    {
                                        "name": "device-plugin",
                                        "mountPath": "/var/lib/kubelet/device-plugins",
                                    }
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "device-plugin",
                                "hostPath": {
                                    "path": "/var/lib/kubelet/device-plugins",
                                    "type": "Directory",
                                },
                            }
                        ],
                    },
                },
            },
            opts=child,
        )

        # --- the training namespace -----------------------------------------------------------
        ns = _k8s(
            k8s.core.v1.Namespace,
            f"{name}-namespace",
            metadata={
                "name": args.namespace,
                "labels": {**labels, "pod-security.kubernetes.io/enforce": "baseline"},
            },
            opts=child,
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        _k8s(
            k8s.core.v1.ResourceQuota,
            f"{name}-gpu-quota",
            metadata={"name": "gpu-quota", "namespace": args.namespace, "labels": labels},
            spec={"hard": {f"requests.{GPU_RESOURCE}": str(args.gpu_quota)}},
            opts=in_ns,
        )
        _k8s(
            k8s.core.v1.LimitRange,
            f"{name}-limits",
            metadata={"name": "container-defaults", "namespace": args.namespace, "labels": labels},
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": {"cpu": "500m", "memory": "1Gi"},
                        "default": {"cpu": "2", "memory": "4Gi"},
                        "max": {GPU_RESOURCE: str(args.max_gpus_per_pod)},
                    }
                ]
            },
            opts=in_ns,
        )

        # --- the trainer service account (IRSA) -----------------------------------------------
        trainer_role = aws.iam.Role(
            f"{name}-trainer",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer_url, args.namespace, args.service_account
            ),
            description="Training pods: read the features zone, write the training prefix",
            tags=tags,
            opts=child,
        )
        prefix = args.models_prefix.strip("/")
        aws.iam.RolePolicy(
            f"{name}-trainer",
            role=trainer_role.id,
            policy=policy_document(
                [
                    *training_data_statements(
                        args.features_bucket_arn,
                        args.models_bucket_arn,
                        prefix,
                        args.lake_kms_key_arn,
                    ),
                ]
            ),
            opts=child,
        )
        _k8s(
            k8s.core.v1.ServiceAccount,
            f"{name}-trainer",
            metadata={
                "name": args.service_account,
                "namespace": args.namespace,
                "labels": labels,
                "annotations": {"eks.amazonaws.com/role-arn": trainer_role.arn},
            },
            opts=in_ns,
        )

        # --- cluster autoscaler -----------------------------------------------------------------
        cluster_tag_condition = f"aws:ResourceTag/k8s.io/cluster-autoscaler/{args.cluster_name}"
        ca_role = aws.iam.Role(
            f"{name}-autoscaler",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer_url, AUTOSCALER_NAMESPACE, AUTOSCALER_NAME
            ),
            description="Cluster autoscaler: scale this cluster's node groups",
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-autoscaler",
            role=ca_role.id,
            policy=policy_document(
                [
                    Statement(
                        [
                            "autoscaling:SetDesiredCapacity",
                            "autoscaling:TerminateInstanceInAutoScalingGroup",
                        ],
                        ["*"],
                        conditions={"StringEquals": {cluster_tag_condition: "owned"}},
                        wildcard_reason="EKS names the node groups' Auto Scaling groups; only "
                        "those tagged for this cluster",
                    ),
                    Statement(
                        [
                            "autoscaling:DescribeAutoScalingGroups",
                            "autoscaling:DescribeAutoScalingInstances",
                            "autoscaling:DescribeLaunchConfigurations",
                            "autoscaling:DescribeScalingActivities",
                            "autoscaling:DescribeTags",
                            "ec2:DescribeImages",
                            "ec2:DescribeInstanceTypes",
                            "ec2:DescribeLaunchTemplateVersions",
                            "ec2:GetInstanceTypesFromInstanceRequirements",
                        ],
                        ["*"],
                        wildcard_reason="Describe actions support no resource-level permissions",
                    ),
                    Statement(
                        ["eks:DescribeNodegroup"],
                        # labels and taints of managed node groups, for scale from zero
                        [
                            pulumi.Output.format(
                                "arn:{0}:eks:{1}:{2}:nodegroup/{3}/*",
                                partition.partition,
                                region.region,
                                account.account_id,
                                args.cluster_name,
                            )
                        ],
                        sid="ReadNodeGroups",
                    ),
                ]
            ),
            opts=child,
        )
        ca_labels = {"app.kubernetes.io/name": AUTOSCALER_NAME}
        ca_meta: dict[str, Any] = {
            "name": AUTOSCALER_NAME,
            "namespace": AUTOSCALER_NAMESPACE,
            "labels": {**labels, **ca_labels},
        }
        ca_sa = _k8s(
            k8s.core.v1.ServiceAccount,
            f"{name}-autoscaler",
            metadata={**ca_meta, "annotations": {"eks.amazonaws.com/role-arn": ca_role.arn}},
            opts=child,
        )
        cluster_role = _k8s(
            k8s.rbac.v1.ClusterRole,
            f"{name}-autoscaler",
            metadata={"name": AUTOSCALER_NAME, "labels": {**labels, **ca_labels}},
            rules=_AUTOSCALER_CLUSTER_RULES,
            opts=child,
        )
        _k8s(
            k8s.rbac.v1.ClusterRoleBinding,
            f"{name}-autoscaler",
            metadata={"name": AUTOSCALER_NAME, "labels": {**labels, **ca_labels}},
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": cluster_role.metadata.name,
            },
            subjects=[
                {
                    "kind": "ServiceAccount",
                    "name": AUTOSCALER_NAME,
                    "namespace": AUTOSCALER_NAMESPACE,
                }
            ],
            opts=child,
        )
        role = _k8s(
            k8s.rbac.v1.Role,
            f"{name}-autoscaler",
            metadata=ca_meta,
            rules=[
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["create", "list", "watch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [
                        "cluster-autoscaler-status",
                        "cluster-autoscaler-priority-expander",
                    ],
                    "verbs": ["delete", "get", "update", "watch"],
                },
            ],
            opts=child,
        )
        _k8s(
            k8s.rbac.v1.RoleBinding,
            f"{name}-autoscaler",
            metadata=ca_meta,
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role.metadata.name,
            },
            subjects=[
                {
                    "kind": "ServiceAccount",
                    "name": AUTOSCALER_NAME,
                    "namespace": AUTOSCALER_NAMESPACE,
                }
            ],
            opts=child,
        )
        _k8s(
            k8s.apps.v1.Deployment,
            f"{name}-autoscaler",
            metadata=ca_meta,
            spec={
                "replicas": 1,
                "selector": {"matchLabels": ca_labels},
                "template": {
                    "metadata": {"labels": {**labels, **ca_labels}},
                    "spec": {
                        "serviceAccountName": AUTOSCALER_NAME,
                        "priorityClassName": "system-cluster-critical",
                        "nodeSelector": {NODE_ROLE_LABEL: "system"},
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "fsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": AUTOSCALER_NAME,
                                "image": autoscaler_image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": [
                                    "./cluster-autoscaler",
                                    "--cloud-provider=aws",
                                    f"--namespace={AUTOSCALER_NAMESPACE}",
                                    "--node-group-auto-discovery=asg:tag="
                                    "k8s.io/cluster-autoscaler/enabled,"
                                    f"k8s.io/cluster-autoscaler/{args.cluster_name}",
                                    "--balance-similar-node-groups",
                                    "--expander=least-waste",
                                    "--skip-nodes-with-system-pods=false",
                                    "--scale-down-unneeded-time=10m",
                                    "--scale-down-delay-after-add=5m",
                                ],
                                "env": [{"name": "AWS_REGION", "value": region.region}],
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "600Mi"},
                                    "limits": {"memory": "600Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ca_sa]),
        )

        self.trainer_role_arn = trainer_role.arn
        self.namespace = args.namespace
        self.service_account = args.service_account
        self.register_outputs({"trainer_role_arn": self.trainer_role_arn})


# The upstream cluster-autoscaler RBAC (autodiscover example), as data.
_AUTOSCALER_CLUSTER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
    {
        "apiGroups": [""],
        "resources": ["endpoints"],
        "resourceNames": [AUTOSCALER_NAME],
        "verbs": ["get", "update"],
    },
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]},
    {
        "apiGroups": [""],
        "resources": [
            "namespaces",
            "pods",
            "services",
            "replicationcontrollers",
            "persistentvolumeclaims",
            "persistentvolumes",
        ],
        "verbs": ["watch", "list", "get"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["statefulsets", "replicasets", "daemonsets"],
        "verbs": ["watch", "list", "get"],
    },
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["watch", "list"]},
    {
        "apiGroups": ["storage.k8s.io"],
        "resources": [
            "storageclasses",
            "csinodes",
            "csidrivers",
            "csistoragecapacities",
            "volumeattachments",
        ],
        "verbs": ["watch", "list", "get"],
    },
    {
        "apiGroups": ["batch"],
        "resources": ["jobs", "cronjobs"],
        "verbs": ["watch", "list", "get", "patch"],
    },
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [AUTOSCALER_NAME],
        "verbs": ["get", "update"],
    },
]
