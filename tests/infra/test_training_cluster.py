"""The EKS GPU training cluster and its in-cluster objects, on the recorded plan (prod settings)."""

from __future__ import annotations

import json
from dataclasses import replace

import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions

from components import cluster_addons
from components.cluster_addons import ClusterAddonsError, cluster_autoscaler_image
from components.cluster_gateway import TALKS_TO_TAG, handler_source_hash
from components.network import Network
from components.training_cluster import (
    CONTROL_PLANE_LOG_TYPES,
    EKS_OIDC_THUMBPRINT,
    TrainingCluster,
    TrainingClusterError,
    check_gpu_groups,
    gpu_capacity,
    gpus_per_instance,
)
from components.training_role import TrainingJobRole
from ml import remote_training
from stacks.settings import GpuNodeGroup

LAKE_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
FEATURES = "arn:aws:s3:::lake-features"
MODELS = "arn:aws:s3:::lake-models"
CHURN_PREFIX = "models/ml-platform-prod-churn"  # churn's artifacts prefix in the prod stack
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"
SUBMITTER = "arn:aws:iam::123456789012:role/ml-engineers"
CLUSTER = "ml-platform-prod-training"
CACHE_PREFIX = "ml-platform-prod/k8s"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def build(settings, **overrides):
    def program() -> None:
        net = Network("net", replace(settings.network.args(kms_key_arn=LAKE_KEY), eks_cluster=True))
        training_data = {
            "lake_kms_key_arn": LAKE_KEY,
            "features_bucket_arn": FEATURES,
            "models_bucket_arn": MODELS,
        }
        args = settings.cluster.args(
            vpc_id=net.vpc_id,
            subnet_ids=net.private_subnet_ids,
            node_security_group_id=net.compute_security_group_id,
            models=[m.info for m in settings.models],
            **training_data,
        )
        fixed = {
            "cluster_name": CLUSTER,
            "image_cache_prefix": CACHE_PREFIX,
            "autoscaler_image_digest": DIGEST,
        }
        args = replace(
            args,
            **{
                **fixed,
                "admin_role_arns": (ADMIN,),
                "job_submitter_arns": (SUBMITTER,),
                **overrides,
            },
        )
        TrainingCluster("gpu", args)
        TrainingJobRole(
            "train",
            settings.training.args(
                **training_data,
                vpc_id=net.vpc_id,
                security_group_ids=[net.compute_security_group_id],
                model=settings.models[0].info,
            ),
        )

    return program


@pytest.fixture(scope="module")
def prod():
    from tests.conftest import make_settings

    return make_settings("prod")


@pytest.fixture(scope="module")
def plan(prod):
    from mlplat.plan import engine
    from tests.conftest import make_config

    return engine.run(prod, make_config("prod"), program=build(prod))


def one(plan, type_, name):
    (match,) = [r for r in plan.of_type(type_) if r.name == name]
    return match


def docs(plan, type_):
    return {
        r.name: json.loads(
            r.inputs["policy"] if "policy" in r.inputs else r.inputs["assumeRolePolicy"]
        )
        for r in plan.of_type(type_)
    }


# --- control plane ---------------------------------------------------------------------------


def test_cluster_is_private_encrypted_and_logs_everything(plan, prod):
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    inputs = cluster.inputs
    assert inputs["name"] == CLUSTER and inputs["version"] == prod.cluster.eks_version == "1.33"
    vpc = inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True and vpc["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc
    assert set(vpc["subnetIds"]) == {s.id for s in plan.of_type("aws:ec2/subnet:Subnet")}
    key = one(plan, "aws:kms/key:Key", "gpu-key")
    assert key.inputs["enableKeyRotation"] is True and key.options["protect"] is True
    assert inputs["encryptionConfig"] == {
        "provider": {"keyArn": key.state["arn"]},
        "resources": ["secrets"],
    }
    assert (
        inputs["enabledClusterLogTypes"]
        == list(CONTROL_PLANE_LOG_TYPES)
        == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )
    assert inputs["accessConfig"]["authenticationMode"] == "API"
    log_group = one(plan, "aws:cloudwatch/logGroup:LogGroup", "gpu-control-plane")
    assert log_group.inputs["name"] == f"/aws/eks/{CLUSTER}/cluster"
    assert log_group.inputs["retentionInDays"] == 365
    assert log_group.inputs["kmsKeyId"] == LAKE_KEY
    assert log_group.urn in cluster.options["dependsOn"]
    assert cluster.options["protect"] is True


def test_cluster_key_has_an_explicit_least_use_policy(plan):
    key = one(plan, "aws:kms/key:Key", "gpu-key")
    doc = json.loads(key.inputs["policy"])
    by_sid = {
        s["Sid"].removeprefix("WildcardOnlyAKeyPolicyNamesItsOwnKeyAsStar"): s
        for s in doc["Statement"]
    }
    assert sorted(by_sid) == [
        "AutoScalingVolumeGrant",
        "ClusterRoleEnvelopeEncryption",
        "GrantsForAwsResources",
        "KeyAdministration",
        "UseThroughClusterServices",
    ]
    root = {"AWS": "arn:aws:iam::123456789012:root"}
    assert all(s["Principal"] == root for s in doc["Statement"])
    # nobody holds kms:* (the default policy's), administration never decrypts
    assert not [s for s in doc["Statement"] if "kms:*" in s["Action"]]
    assert "kms:Decrypt" not in by_sid["KeyAdministration"]["Action"]
    cluster_role = one(plan, "aws:iam/role:Role", "gpu-cluster")
    envelope = by_sid["ClusterRoleEnvelopeEncryption"]
    assert envelope["Condition"] == {"ArnEquals": {"aws:PrincipalArn": cluster_role.state["arn"]}}
    via = [f"{s}.us-east-1.amazonaws.com" for s in ("ec2", "lambda", "eks")]
    use = by_sid["UseThroughClusterServices"]["Condition"]["StringEquals"]
    assert use == {"kms:CallerAccount": "123456789012", "kms:ViaService": via}
    grants = by_sid["GrantsForAwsResources"]["Condition"]
    assert grants["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    grant = one(plan, "aws:kms/grant:Grant", "gpu-volume-grant").inputs
    assert (
        by_sid["AutoScalingVolumeGrant"]["Condition"]["StringEquals"]["kms:GranteePrincipal"]
        == grant["granteePrincipal"]
    )


def test_public_endpoint_only_for_listed_cidrs(record, settings_for):
    staging = settings_for("staging", eksPublicAccessCidrs=["203.0.113.0/24"])
    plan = record(build(staging), settings=staging)
    vpc = plan.of_type("aws:eks/cluster:Cluster")[0].inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_oidc_provider_from_the_cluster_issuer(plan):
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    (oidc,) = plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    issuer = cluster.state["identities"][0]["oidcs"][0]["issuer"]
    assert oidc.inputs["url"] == issuer
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert oidc.inputs["thumbprintLists"] == [EKS_OIDC_THUMBPRINT]


def test_access_entries(plan):
    entries = {r.name: r.inputs for r in plan.of_type("aws:eks/accessEntry:AccessEntry")}
    assocs = {
        r.name: r.inputs
        for r in plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert set(entries) == set(assocs) and len(entries) == 3
    admin = next(n for n, e in entries.items() if e["principalArn"] == ADMIN)
    assert (
        assocs[admin]["policyArn"]
        == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    )
    assert assocs[admin]["accessScope"] == {"type": "cluster"}
    deployer = one(plan, "aws:iam/role:Role", "gpu-gateway-deployer-role")
    jobs = one(plan, "aws:iam/role:Role", "gpu-gateway-jobs-role")
    assert entries["gpu-gateway-deployer-access"]["principalArn"] == deployer.state["arn"]
    assert assocs["gpu-gateway-deployer-access"]["policyArn"].endswith(
        "/AmazonEKSClusterAdminPolicy"
    )
    assert assocs["gpu-gateway-deployer-access"]["accessScope"] == {"type": "cluster"}
    assert entries["gpu-gateway-jobs-access"]["principalArn"] == jobs.state["arn"]
    assert assocs["gpu-gateway-jobs-access"]["policyArn"].endswith("/AmazonEKSEditPolicy")
    assert assocs["gpu-gateway-jobs-access"]["accessScope"] == {
        "type": "namespace",
        "namespaces": ["training"],
    }


# --- nodes -----------------------------------------------------------------------------------


def test_gpu_node_group_scales_from_zero_on_bottlerocket_nvidia(plan, prod):
    (group_settings,) = prod.cluster.gpu_node_groups
    ng = one(plan, "aws:eks/nodeGroup:NodeGroup", f"gpu-gpu-{group_settings.name}")
    inputs = ng.inputs
    # the variant whose image carries the NVIDIA driver and device plugin: no nvcr.io pull
    assert inputs["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA"
    assert inputs["capacityType"] == group_settings.capacity_type == "SPOT"
    assert inputs["instanceTypes"] == list(group_settings.instance_types)
    assert inputs["scalingConfig"] == {
        "minSize": 0,
        "desiredSize": 0,
        "maxSize": group_settings.max_size,
    }
    assert inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert inputs["labels"]["nvidia.com/gpu"] == "true"
    assert ng.options["ignoreChanges"] == ["scalingConfig.desiredSize"]
    tags = inputs["tags"]
    assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert tags[f"k8s.io/cluster-autoscaler/{CLUSTER}"] == "owned"
    assert tags["k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu"] == "true"
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert "diskSize" not in inputs  # the launch template sizes the disk


def test_system_node_group(plan, prod):
    ng = one(plan, "aws:eks/nodeGroup:NodeGroup", "gpu-system")
    assert ng.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert ng.inputs["instanceTypes"] == [prod.cluster.system_node_instance_type]
    assert ng.inputs["capacityType"] == "ON_DEMAND"
    assert ng.inputs["scalingConfig"]["minSize"] == 1
    assert "taints" not in ng.inputs
    assert len(plan.of_type("aws:eks/nodeGroup:NodeGroup")) == 1 + len(prod.cluster.gpu_node_groups)


def test_launch_templates_require_imdsv2_and_encrypt_volumes(plan, prod):
    key = one(plan, "aws:kms/key:Key", "gpu-key")
    templates = {r.name: r for r in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    assert set(templates) == {"gpu-system", "gpu-gpu-gpu"}
    for lt in templates.values():
        meta = lt.inputs["metadataOptions"]
        assert meta == {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            # 1: no pod can read the node role's credentials from the metadata service
            "httpPutResponseHopLimit": 1,
        }
        for device in lt.inputs["blockDeviceMappings"]:
            ebs = device["ebs"]
            assert (ebs["encrypted"], ebs["volumeType"], ebs["kmsKeyId"]) == (
                "true",
                "gp3",
                key.state["arn"],
            )
        assert plan.named("net-compute-sg").id in lt.inputs["vpcSecurityGroupIds"]
    volumes = {
        d["deviceName"]: d["ebs"]["volumeSize"]
        for d in templates["gpu-gpu-gpu"].inputs["blockDeviceMappings"]
    }
    # Bottlerocket: a small OS volume, the data volume sized as the node group says
    assert volumes == {"/dev/xvda": 4, "/dev/xvdb": prod.cluster.gpu_node_groups[0].disk_gb}
    (root,) = templates["gpu-system"].inputs["blockDeviceMappings"]
    assert (root["deviceName"], root["ebs"]["volumeSize"]) == ("/dev/xvda", 50)
    for ng in plan.of_type("aws:eks/nodeGroup:NodeGroup"):
        lt = templates[ng.name]
        assert ng.inputs["launchTemplate"] == {"id": lt.id, "version": "1"}
    grant = plan.of_type("aws:kms/grant:Grant")[0].inputs
    assert grant["granteePrincipal"].endswith(
        ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )


def test_capacity_types_and_several_groups(record, settings_for):
    s = settings_for(
        "staging",
        gpuNodeGroups=[
            {
                "name": "a10",
                "instanceTypes": ["g5.12xlarge"],
                "capacityType": "ON_DEMAND",
                "maxSize": 2,
            },
            {"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 3, "diskGb": 100},
        ],
    )
    plan = record(build(s), settings=s)
    groups = {r.name: r.inputs for r in plan.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups["gpu-gpu-a10"]["capacityType"] == "ON_DEMAND"
    assert groups["gpu-gpu-l4"]["capacityType"] == "ON_DEMAND"
    quota = k8s_object(plan, "ResourceQuota", "gpu-quota")
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": str(4 * 2 + 1 * 3)}


# --- in-cluster ------------------------------------------------------------------------------


def k8s_objects(plan):
    """The objects the cluster gateway's deployer is handed (its Invocation's input)."""
    (invocation,) = plan.of_type("aws:lambda/invocation:Invocation")
    payload = json.loads(invocation.inputs["input"])
    assert payload["applySet"] == "training-cluster"
    return payload["objects"]


def k8s_object(plan, kind, name):
    (found,) = [o for o in k8s_objects(plan) if (o["kind"], o["metadata"]["name"]) == (kind, name)]
    return found


def test_in_cluster_objects_are_applied_from_inside_the_vpc(plan):
    # nothing in the program talks to the private API itself: no Kubernetes provider, no
    # kubernetes:* resources; the deployer function gets the objects
    assert [
        r for r in plan.resources if r.type.startswith(("kubernetes:", "pulumi:providers:k"))
    ] == []
    assert sorted((o["kind"], o["metadata"]["name"]) for o in k8s_objects(plan)) == sorted(
        [
            ("Namespace", "training"),
            ("ResourceQuota", "gpu-quota"),
            ("LimitRange", "container-defaults"),
            ("ServiceAccount", "trainer"),
            ("ServiceAccount", "cluster-autoscaler"),
            ("ClusterRole", "cluster-autoscaler"),
            ("ClusterRoleBinding", "cluster-autoscaler"),
            ("Role", "cluster-autoscaler"),
            ("RoleBinding", "cluster-autoscaler"),
            ("Deployment", "cluster-autoscaler"),
            ("NetworkPolicy", "default-deny"),
            ("NetworkPolicy", "allow-dns-and-https"),
        ]
    )
    (invocation,) = plan.of_type("aws:lambda/invocation:Invocation")
    deployer = one(plan, "aws:lambda/function:Function", "gpu-gateway-deployer-fn")
    assert invocation.inputs["functionName"] == deployer.state["name"]
    assert invocation.inputs["lifecycleScope"] == "CRUD"
    assert invocation.inputs["triggers"] == {"handler": handler_source_hash()}
    access = one(
        plan,
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "gpu-gateway-deployer-access",
    )
    assert access.urn in invocation.options["dependsOn"]


def test_gateway_functions_run_in_the_private_subnets(plan):
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    key = one(plan, "aws:kms/key:Key", "gpu-key")
    sg = one(plan, "aws:ec2/securityGroup:SecurityGroup", "gpu-gateway-sg")
    for role in ("deployer", "jobs"):
        fn = one(plan, "aws:lambda/function:Function", f"gpu-gateway-{role}-fn")
        inputs = fn.inputs
        assert inputs["runtime"] == "python3.13"
        assert inputs["handler"] == "cluster_gateway.handler"
        assert inputs["vpcConfig"] == {
            "subnetIds": cluster.inputs["vpcConfig"]["subnetIds"],
            "securityGroupIds": [sg.id],
        }
        assert inputs["kmsKeyArn"] == key.state["arn"]
        env = inputs["environment"]["variables"]
        assert env["GATEWAY_ROLE"] == role and env["CLUSTER_NAME"] == CLUSTER
        assert env["CLUSTER_ENDPOINT"] == cluster.state["endpoint"]
        assert env["JOBS_NAMESPACE"] == "training"
        assert inputs["tags"][TALKS_TO_TAG] == f"eks-api:{CLUSTER}"
        logs = one(plan, "aws:cloudwatch/logGroup:LogGroup", f"gpu-gateway-{role}-logs")
        assert inputs["loggingConfig"]["logGroup"] == logs.state["name"]
        assert logs.inputs["kmsKeyId"] == LAKE_KEY and logs.inputs["retentionInDays"] == 365
        policy = json.loads(
            one(plan, "aws:iam/rolePolicy:RolePolicy", f"gpu-gateway-{role}-policy").inputs[
                "policy"
            ]
        )
        by_sid = {s["Sid"]: s for s in policy["Statement"]}
        assert by_sid["OwnLogGroup"]["Resource"] == [logs.state["arn"] + ":*"]
        assert by_sid["DecryptEnvironment"]["Resource"] == [key.state["arn"]]
        assert "Condition" in by_sid["FunctionNetworkInterfaces"]
    out = one(
        plan, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "gpu-gateway-api-out"
    )
    into = one(
        plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "gpu-gateway-api-in"
    )
    assert (out.inputs["securityGroupId"], out.inputs["fromPort"], out.inputs["toPort"]) == (
        sg.id,
        443,
        443,
    )
    assert into.inputs["referencedSecurityGroupId"] == sg.id
    assert (into.inputs["fromPort"], into.inputs["toPort"]) == (443, 443)
    cluster_sg = cluster.state["vpcConfig"]["clusterSecurityGroupId"]
    assert into.inputs["securityGroupId"] == cluster_sg == out.inputs["referencedSecurityGroupId"]


def test_training_pods_reach_dns_and_https_only_never_the_metadata_service(plan):
    deny = k8s_object(plan, "NetworkPolicy", "default-deny")
    assert deny["metadata"]["namespace"] == "training"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allow = k8s_object(plan, "NetworkPolicy", "allow-dns-and-https")
    assert allow["spec"]["policyTypes"] == ["Egress"] and "ingress" not in allow["spec"]
    dns, https = allow["spec"]["egress"]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert {p["port"] for p in dns["ports"]} == {53}
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    assert https["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]
    # the VPC CNI enforces network policies only with its agent on
    (addon,) = plan.of_type("aws:eks/addon:Addon")
    assert addon.inputs["addonName"] == "vpc-cni"
    assert json.loads(addon.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"


def test_submitters_are_exactly_the_principals_named(plan, record, prod):
    role = one(plan, "aws:iam/role:Role", "gpu-submitter")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"AWS": [SUBMITTER]}  # not the whole account
    assert statement["Action"] == "sts:AssumeRole"
    # nobody named: no submitter role at all
    bare = record(build(prod, job_submitter_arns=()), settings=prod)
    assert [r for r in bare.of_type("aws:iam/role:Role") if r.name == "gpu-submitter"] == []


@pytest.mark.parametrize(
    "arn", ["arn:aws:iam::123456789012:root", "123456789012", "arn:aws:iam::123456789012:group/x"]
)
def test_a_submitter_must_be_a_role_or_user(record, prod, arn):
    with pytest.raises(Exception, match="is not an IAM role or user ARN"):
        record(build(prod, job_submitter_arns=(arn,)), settings=prod)


def test_submitter_may_only_invoke_the_jobs_gateway(plan):
    jobs = one(plan, "aws:lambda/function:Function", "gpu-gateway-jobs-fn")
    policy = json.loads(
        one(plan, "aws:iam/rolePolicy:RolePolicy", "gpu-submitter").inputs["policy"]
    )
    assert policy["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": [jobs.state["arn"]],
            "Sid": "JobsGateway",
        }
    ]


def test_every_kubernetes_object_validates_against_the_cluster_schema(plan, prod):
    version = closest_schema_version(prod.cluster.eks_version)
    assert version == "1.33.0"
    for manifest in k8s_objects(plan):
        assert manifest["apiVersion"] and manifest["kind"], manifest
        kubernetes_validate.validate(manifest, version, strict=True)


def closest_schema_version(eks_version: str) -> str:
    major, minor = (int(p) for p in eks_version.split("."))
    shipped = [v for v in all_versions() if v.count(".") == 2]
    same = [v for v in shipped if v.startswith(f"{major}.{minor}.")]
    if same:
        return same[0]
    return min(shipped, key=lambda v: abs(int(v.split(".")[1]) - minor))


def test_no_image_comes_from_the_internet(plan):
    # the device plugin ships on the Bottlerocket NVIDIA image; the autoscaler comes through ECR
    kinds = {o["kind"] for o in k8s_objects(plan)}
    assert "DaemonSet" not in kinds
    images = [
        c["image"]
        for o in k8s_objects(plan)
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    ]
    assert images and all(i.startswith(f"{REGISTRY}/{CACHE_PREFIX}/") for i in images)


def test_registry_k8s_io_is_cached_in_the_account(plan):
    (rule,) = plan.of_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    assert rule.inputs == {
        "ecrRepositoryPrefix": CACHE_PREFIX,
        "upstreamRegistryUrl": "registry.k8s.io",
    }
    node = one(plan, "aws:iam/role:Role", "gpu-node")
    cache = one(plan, "aws:iam/rolePolicy:RolePolicy", "gpu-node-image-cache")
    assert cache.inputs["role"] == node.id
    (statement,) = json.loads(cache.inputs["policy"])["Statement"]
    assert statement["Action"] == ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
    assert statement["Resource"] == [
        f"arn:aws:ecr:us-east-1:123456789012:repository/{CACHE_PREFIX}/*"
    ]


def test_training_namespace_quota_and_limits(plan):
    ns = k8s_object(plan, "Namespace", "training")
    for mode in ("enforce", "warn", "audit"):
        assert ns["metadata"]["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted"
    quota = k8s_object(plan, "ResourceQuota", "gpu-quota")
    assert quota["metadata"]["namespace"] == "training"
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "2"}  # 2 x g5.(2)xlarge
    limits = k8s_object(plan, "LimitRange", "container-defaults")
    assert limits["metadata"]["namespace"] == "training"
    assert limits["spec"]["limits"][0]["max"] == {"nvidia.com/gpu": "1"}


def test_trainer_service_account_bound_through_irsa(plan):
    sa = k8s_object(plan, "ServiceAccount", "trainer")
    role = one(plan, "aws:iam/role:Role", "gpu-addons-trainer")
    assert sa["metadata"]["namespace"] == "training" and sa["metadata"]["name"] == "trainer"
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role.state["arn"]}
    (oidc,) = plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    host = oidc.inputs["url"].removeprefix("https://")
    assert statement["Principal"] == {"Federated": oidc.state["arn"]}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{host}:sub": "system:serviceaccount:training:trainer",
            f"{host}:aud": "sts.amazonaws.com",
        }
    }
    policy = json.loads(
        one(plan, "aws:iam/rolePolicy:RolePolicy", "gpu-addons-trainer").inputs["policy"]
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    # every model's features table and artifacts prefix (the stack hosts churn only here)
    assert by_sid["ReadFeatures"]["Resource"] == [f"{FEATURES}/customer_features/*"]
    assert by_sid["ReadFeatures"]["Action"] == ["s3:GetObject"]
    assert by_sid["ListFeatures"]["Condition"] == {
        "StringLike": {"s3:prefix": ["customer_features", "customer_features/*"]}
    }
    assert by_sid["WriteTrainingPrefix"]["Resource"] == [f"{MODELS}/{CHURN_PREFIX}/*"]
    assert by_sid["UseLakeKey"]["Resource"] == [LAKE_KEY]


def test_cluster_autoscaler(plan, prod):
    sa = k8s_object(plan, "ServiceAccount", "cluster-autoscaler")
    role = one(plan, "aws:iam/role:Role", "gpu-addons-autoscaler")
    assert sa["metadata"] == {
        **sa["metadata"],
        "name": "cluster-autoscaler",
        "namespace": "kube-system",
    }
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role.state["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]
    assert any(
        v == "system:serviceaccount:kube-system:cluster-autoscaler"
        for v in trust["StringEquals"].values()
    )
    policy = json.loads(
        one(plan, "aws:iam/rolePolicy:RolePolicy", "gpu-addons-autoscaler").inputs["policy"]
    )
    scale = next(s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"])
    assert scale["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{CLUSTER}": "owned"}
    }
    assert scale["Sid"].startswith("WildcardOnly")
    deployment = k8s_object(plan, "Deployment", "cluster-autoscaler")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    path = cluster_autoscaler_image(prod.cluster.eks_version)
    assert container["image"] == f"{REGISTRY}/{CACHE_PREFIX}/{path}@{DIGEST}"
    assert path.startswith("autoscaling/cluster-autoscaler:v1.33.")
    assert (
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
        f"k8s.io/cluster-autoscaler/{CLUSTER}"
    ) in container["command"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "cluster-autoscaler"


def test_no_iam_document_has_a_wildcard_action(plan):
    documents = list(docs(plan, "aws:iam/rolePolicy:RolePolicy").values()) + list(
        docs(plan, "aws:iam/role:Role").values()
    )
    assert len(documents) >= 12
    for doc in documents:
        for statement in doc["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert action != "*" and not action.endswith(":*"), action
            resources = statement.get("Resource", [])
            if "*" in resources:
                assert statement["Sid"].startswith("WildcardOnly"), statement


def test_training_job_role(plan):
    role = one(plan, "aws:iam/role:Role", "train-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    policy = json.loads(one(plan, "aws:iam/rolePolicy:RolePolicy", "train-policy").inputs["policy"])
    by_sid = {s.get("Sid"): s for s in policy["Statement"]}
    assert by_sid["WriteTrainingPrefix"]["Resource"] == [f"{MODELS}/{CHURN_PREFIX}/*"]
    assert by_sid["ReadFeatures"]["Resource"] == [f"{FEATURES}/customer_features/*"]
    assert by_sid["VolumeKeyGrant"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    # network interfaces only in the platform's VPC, in its compute group (never `*`)
    enis = by_sid["JobNetworkInterfaces"]
    vpc, sg = plan.named("net-vpc"), plan.named("net-compute-sg")
    assert enis["Action"] == [
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
    ]
    ec2 = "arn:aws:ec2:us-east-1:123456789012:"
    assert enis["Resource"] == [
        f"{ec2}network-interface/*",
        f"{ec2}subnet/*",
        f"{ec2}security-group/{sg.id}",
    ]
    assert enis["Condition"] == {"ArnEquals": {"ec2:Vpc": f"{ec2}vpc/{vpc.id}"}}
    for statement in policy["Statement"]:
        if "*" in statement["Resource"]:
            assert all(
                a.startswith("ec2:Describe") or a == "cloudwatch:PutMetricData"
                for a in statement["Action"]
            ), statement


def test_shared_constants_match_the_job_builder_and_the_policy_pack():
    from policies.rules.network import TALKS_TO

    assert TALKS_TO_TAG == TALKS_TO
    assert cluster_addons.GPU_LABEL == remote_training.GPU_LABEL
    assert cluster_addons.GPU_TAINT_KEY == remote_training.GPU_TAINT_KEY
    assert cluster_addons.GPU_RESOURCE == remote_training.GPU_RESOURCE


# --- bad input -------------------------------------------------------------------------------


def test_gpu_counts():
    assert [
        gpus_per_instance(t)
        for t in ("g5.xlarge", "g5.12xlarge", "g6e.48xlarge", "p4d.24xlarge", "g4dn.metal")
    ] == [1, 4, 8, 8, 8]
    with pytest.raises(TrainingClusterError, match="GPU count unknown"):
        gpus_per_instance("p3.2xlarge")
    assert gpu_capacity([GpuNodeGroup("a", ("g5.xlarge", "g5.12xlarge"), "SPOT", 3)]) == (12, 4)


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([GpuNodeGroup("cpu", ("m5.xlarge",))], "'m5.xlarge' is not in an allowed GPU family"),
        ([GpuNodeGroup("a", ("g5.xlarge",)), GpuNodeGroup("a", ("g5.xlarge",))], "unique"),
        ([GpuNodeGroup("a", ("g5.xlarge",), "RESERVED")], "capacity_type 'RESERVED'"),
        ([GpuNodeGroup("a", ("g5.xlarge",), max_size=0)], "max_size 0"),
        ([GpuNodeGroup("Bad_Name", ("g5.xlarge",))], "lowercase"),
        ([], "needs one GPU node group"),
    ],
)
def test_bad_gpu_groups_are_refused(groups, message):
    with pytest.raises(TrainingClusterError, match=message):
        check_gpu_groups(groups, ("g5", "g6"))


def test_component_rechecks_families(record, prod):
    program = build(prod, gpu_node_groups=(GpuNodeGroup("x", ("p3.2xlarge",)),))
    with pytest.raises(Exception, match="not in an allowed GPU family"):
        record(program, settings=prod)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"cluster_name": "bad name"}, "cluster_name 'bad name'"),
        ({"public_access_cidrs": ("0.0.0.0/0",)}, "opens the cluster API"),
        ({"eks_version": "1.29"}, "no cluster-autoscaler image pinned for Kubernetes 1.29"),
    ],
)
def test_component_refuses_bad_arguments(record, prod, override, message):
    with pytest.raises(Exception, match=message):
        record(build(prod, **override), settings=prod)


def test_unpinned_autoscaler_version():
    with pytest.raises(ClusterAddonsError, match=r"pinned: 1\.33"):
        cluster_autoscaler_image("1.35")


def test_a_bad_autoscaler_digest_is_refused(record, prod):
    with pytest.raises(Exception, match="autoscaler_image_digest 'latest': expected sha256:"):
        record(build(prod, autoscaler_image_digest="latest"), settings=prod)


def test_policy_pack_finds_no_violation(plan):
    from policies.core import evaluate_plan

    report = evaluate_plan([r.to_json() for r in plan.resources], {"environment": "prod"})
    assert [(v.policy, v.name, v.message) for v in report.violations] == []
    assert report.skipped == ()
