"""The cluster gateway handler against a Kubernetes API on loopback (TLS, its own CA only)."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from components.lambdas import cluster_gateway as gw
from tests.fake_k8s import TOKEN, FakeApi, certificate, running_api


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Iterator[tuple[FakeApi, gw.ClusterApi]]:
    with running_api(tmp_path_factory.mktemp("tls")) as (api, endpoint, ca):
        yield api, gw.ClusterApi(endpoint, ca, lambda: TOKEN, timeout=5)


@pytest.fixture
def cluster(server: tuple[FakeApi, gw.ClusterApi]) -> tuple[FakeApi, gw.ClusterApi]:
    """The shared server with an empty cluster for each test."""
    api, _ = server
    with api.lock:
        api.objects.clear()
        api.requests.clear()
        api.refuse.clear()
        api.pods.clear()
    return server


NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "training"}}
QUOTA = {
    "apiVersion": "v1",
    "kind": "ResourceQuota",
    "metadata": {"name": "gpu-quota", "namespace": "training"},
    "spec": {"hard": {"requests.nvidia.com/gpu": "2"}},
}
ACCOUNT = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "trainer", "namespace": "training"},
}
ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "cluster-autoscaler"},
    "rules": [],
}


def event(*objects: dict[str, Any], action: str = "create", prev: Any = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"applySet": "training-cluster", "objects": list(objects)}
    payload["tf"] = {"action": action, "prev_input": prev}
    return payload


# --- the deployer -----------------------------------------------------------------------------


def test_create_applies_every_object_server_side_in_dependency_order(cluster):
    api, client = cluster
    result = gw.apply_objects(client, event(QUOTA, ACCOUNT, ROLE, NAMESPACE))
    assert result["applied"] == [
        "Namespace training",
        "ClusterRole cluster-autoscaler",
        "ServiceAccount training/trainer",
        "ResourceQuota training/gpu-quota",
    ]
    assert [r["path"] for r in api.requests] == [
        "/api/v1/namespaces/training",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-autoscaler",
        "/api/v1/namespaces/training/serviceaccounts/trainer",
        "/api/v1/namespaces/training/resourcequotas/gpu-quota",
    ]
    for request in api.requests:
        assert request["method"] == "PATCH"
        assert request["type"] == "application/apply-patch+yaml"
        assert request["query"] == {"fieldManager": "ml-platform", "force": "true"}
        assert request["auth"] == f"Bearer {TOKEN}"
        labels = request["body"]["metadata"]["labels"]
        assert labels[gw.APPLY_SET_LABEL] == "training-cluster"
    stored = api.objects["/api/v1/namespaces/training/resourcequotas/gpu-quota"]
    assert stored["spec"] == QUOTA["spec"]
    assert "labels" not in QUOTA["metadata"]  # the caller's manifest is not mutated


def test_update_prunes_what_left_the_set(cluster):
    api, client = cluster
    first = event(NAMESPACE, QUOTA, ACCOUNT)
    gw.apply_objects(client, first)
    api.requests.clear()
    result = gw.apply_objects(client, event(NAMESPACE, ACCOUNT, action="update", prev=first))
    assert result["deleted"] == ["ResourceQuota training/gpu-quota"]
    assert "/api/v1/namespaces/training/resourcequotas/gpu-quota" not in api.objects
    assert [(r["method"], r["path"]) for r in api.requests][-1] == (
        "DELETE",
        "/api/v1/namespaces/training/resourcequotas/gpu-quota",
    )
    assert api.requests[-1]["query"] == {"propagationPolicy": "Background"}


def test_delete_removes_the_whole_set_namespace_last(cluster):
    api, client = cluster
    gw.apply_objects(client, event(NAMESPACE, QUOTA, ROLE))
    api.objects.pop("/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-autoscaler")
    result = gw.apply_objects(client, event(NAMESPACE, QUOTA, ROLE, action="delete"))
    # the ClusterRole was already gone: not an error, not reported as deleted
    assert result["deleted"] == ["ResourceQuota training/gpu-quota", "Namespace training"]
    assert api.objects == {}


def test_a_refusal_fails_the_invocation_naming_the_object(cluster):
    api, client = cluster
    api.refuse["/api/v1/namespaces/training/resourcequotas/gpu-quota"] = (
        422,
        'ResourceQuota "gpu-quota" is invalid: spec.hard: Invalid value',
    )
    with pytest.raises(gw.GatewayError, match=r"gpu-quota: HTTP 422 ResourceQuota .* is invalid"):
        gw.apply_objects(client, event(NAMESPACE, QUOTA))


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}], "kind 'Secret'"),
        ([{**QUOTA, "metadata": {"name": "gpu-quota"}}], "needs metadata.namespace"),
        ([{**NAMESPACE, "metadata": {"name": "t", "namespace": "x"}}], "cluster-scoped"),
        ([NAMESPACE, NAMESPACE], "appears twice"),
        ([{**NAMESPACE, "metadata": {"name": "Bad_Name"}}], "not a DNS subdomain"),
        (["not an object"], "expected a Kubernetes object"),
    ],
)
def test_bad_objects_are_refused_before_anything_is_applied(cluster, objects, message):
    api, client = cluster
    with pytest.raises(gw.GatewayError, match=message):
        gw.apply_objects(client, event(*objects))
    assert api.requests == []


def test_unknown_lifecycle_action(cluster):
    _, client = cluster
    with pytest.raises(gw.GatewayError, match="lifecycle action 'replace'"):
        gw.apply_objects(client, event(NAMESPACE, action="replace"))


def test_the_cluster_ca_is_the_only_trust(cluster, tmp_path):
    _, client = cluster
    _, _, other_ca = certificate(tmp_path, "other")
    stranger = gw.ClusterApi(client.endpoint, other_ca, lambda: TOKEN, timeout=5)
    with pytest.raises(gw.GatewayError, match="cannot reach the cluster API"):
        gw.apply_objects(stranger, event(NAMESPACE))


def test_endpoint_must_be_https():
    with pytest.raises(gw.GatewayError, match="expected https://"):
        gw.ClusterApi("http://127.0.0.1:1", "", lambda: TOKEN)


# --- the jobs gateway -------------------------------------------------------------------------

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "churn-1", "namespace": "training"},
    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}},
}


def test_submit_status_logs_list_and_delete(cluster):
    api, client = cluster
    submitted = gw.handle_jobs(client, {"action": "submit", "job": JOB}, "training")
    assert submitted["job"]["name"] == "churn-1" and submitted["job"]["state"] == "Running"
    assert api.requests[-1]["path"] == "/apis/batch/v1/namespaces/training/jobs"
    api.pods["churn-1"] = [
        {
            "metadata": {"name": "churn-1-abc"},
            "spec": {"nodeName": "ip-10-40-0-7"},
            "status": {"phase": "Running", "containerStatuses": [{"name": "train", "state": {}}]},
        }
    ]
    status = gw.handle_jobs(client, {"action": "status", "name": "churn-1"}, "training")
    assert status["pods"] == [
        {
            "name": "churn-1-abc",
            "phase": "Running",
            "node": "ip-10-40-0-7",
            "containers": [{"name": "train", "state": {}}],
        }
    ]
    logs = gw.handle_jobs(
        client, {"action": "logs", "name": "churn-1", "tailLines": 20}, "training"
    )
    assert logs["logs"] == {"churn-1-abc": "log of churn-1-abc (20 lines)"}
    listed = gw.handle_jobs(client, {"action": "list"}, "training")
    assert [j["name"] for j in listed["jobs"]] == ["churn-1"]
    assert api.requests[-1]["query"] == {"labelSelector": "app.kubernetes.io/part-of=ml-platform"}
    done = api.objects["/apis/batch/v1/namespaces/training/jobs/churn-1"]
    done["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    status = gw.handle_jobs(client, {"action": "status", "name": "churn-1"}, "training")
    assert status["job"]["state"] == "Complete" and status["job"]["succeeded"] == 1
    deleted = gw.handle_jobs(client, {"action": "delete", "name": "churn-1"}, "training")
    assert deleted["deleted"] is True


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            {
                "action": "submit",
                "job": {**JOB, "metadata": {"name": "x", "namespace": "kube-system"}},
            },
            "namespace 'kube-system' is not allowed",
        ),
        ({"action": "submit", "job": ACCOUNT}, "only batch/v1 Job"),
        ({"action": "status", "name": "Bad Name"}, "name 'Bad Name'"),
        ({"action": "logs", "name": "churn-1", "tailLines": 5000}, "tailLines 5000"),
        ({"action": "scale"}, "action 'scale'"),
        ({"action": "status", "name": "missing"}, "job training/missing not found"),
    ],
)
def test_jobs_gateway_refuses(cluster, request_, message):
    _, client = cluster
    gw.handle_jobs(client, {"action": "submit", "job": JOB}, "training")
    with pytest.raises(gw.GatewayError, match=message):
        gw.handle_jobs(client, request_, "training")


# --- the entry point and the token --------------------------------------------------------------


def test_handler_dispatches_on_its_role(cluster, monkeypatch):
    _, client = cluster
    monkeypatch.setenv("GATEWAY_ROLE", "deployer")
    assert gw.handler(event(NAMESPACE), api=client)["applied"] == ["Namespace training"]
    monkeypatch.setenv("GATEWAY_ROLE", "jobs")
    monkeypatch.setenv("JOBS_NAMESPACE", "training")
    assert gw.handler({"action": "list"}, api=client)["jobs"] == []
    monkeypatch.setenv("GATEWAY_ROLE", "admin")
    with pytest.raises(gw.GatewayError, match="GATEWAY_ROLE 'admin'"):
        gw.handler({}, api=client)


def test_environment_is_checked():
    with pytest.raises(gw.GatewayError, match="lacks CLUSTER_ENDPOINT, CLUSTER_CA"):
        gw.api_from_env({"CLUSTER_NAME": "c"})


def test_token_is_a_presigned_sts_url_bound_to_the_cluster(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    token = gw.eks_token("ml-platform-prod-training", "eu-west-1")
    assert token.startswith("k8s-aws-v1.")
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parsed = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    assert parsed.netloc == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == "GetCallerIdentity" and query["X-Amz-Expires"] == "60"
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"].split(";")
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
    assert len(query["X-Amz-Signature"]) == 64
