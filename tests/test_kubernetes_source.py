"""The real `kubernetes` client against a local server that answers like the Kubernetes API."""

import pytest

from loader.errors import KubernetesError
from loader.kubernetes_source import api_client, list_pods
from stand_ins.kubernetes import KubeApiStub
from tests.pod_factory import KUBESPAWNER_6_POD, KUBESPAWNER_7_POD, pod

SELECTOR = "component=singleuser-server"


def cluster_pods():
    return [
        KUBESPAWNER_7_POD,
        pod(KUBESPAWNER_6_POD),
        pod(metadata__name="jupyter-other", metadata__namespace="teaching"),
        pod(metadata__name="hub-7d9f", metadata__labels={"component": "hub"}),
        pod(metadata__name="jupyter-pending", status__phase="Pending"),
        pod(metadata__name="jupyter-finished", status__phase="Succeeded"),
    ]


@pytest.fixture
def stub(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with KubeApiStub(cluster_pods()) as server:
        monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        yield server


def listing(namespaces=(), attempts=3, timeout=5.0, sleeps=None):
    return list_pods(
        api_client(timeout),
        namespaces=namespaces,
        selector=SELECTOR,
        request_timeout=timeout,
        attempts=attempts,
        backoff_seconds=0.01,
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )


def names(pods):
    return sorted(p["metadata"]["name"] for p in pods)


def test_cluster_wide_list_honours_selector_and_phase(stub):
    """Running pods, and pods starting or failed to (spec 3.6); never finished ones."""
    pods = listing()
    assert names(pods) == [
        "jupyter-bob-2esmith",
        "jupyter-jane-doe---2f1a9c3e--thesis",
        "jupyter-other",
        "jupyter-pending",
    ]
    path, query = stub.requests[0]
    assert path == "/api/v1/pods"
    assert query["labelSelector"] == [SELECTOR]
    assert query["fieldSelector"] == ["status.phase!=Succeeded"]
    assert stub.authorization[0] == "Bearer stub-token-not-secret"
    # The pods exactly as the API sent them (raw JSON, as kubectl shows them), not the client's models.
    jane = next(p for p in pods if p["metadata"]["name"].startswith("jupyter-jane"))
    assert jane["metadata"]["annotations"]["hub.jupyter.org/username"] == "Jane.Doe@Example.edu"
    assert jane["spec"]["nodeName"] == "gpu-a100-01"
    assert jane == KUBESPAWNER_7_POD


def test_namespaced_lists(stub):
    pods = listing(namespaces=("jhub", "teaching"))
    assert names(pods) == [
        "jupyter-bob-2esmith",
        "jupyter-jane-doe---2f1a9c3e--thesis",
        "jupyter-other",
        "jupyter-pending",
    ]
    assert [path for path, _ in stub.requests] == ["/api/v1/namespaces/jhub/pods", "/api/v1/namespaces/teaching/pods"]


def test_pagination_follows_continue_tokens(stub, monkeypatch):
    monkeypatch.setattr("loader.kubernetes_source.PAGE_SIZE", 1)
    assert len(listing()) == 4
    assert len(stub.requests) == 4


def test_server_error_then_success_is_retried(stub):
    stub.faults = [500, 503]
    sleeps = []
    assert len(listing(sleeps=sleeps)) == 4
    assert len(stub.requests) == 3
    assert sleeps == [0.01, 0.02]


def test_persistent_server_errors_give_up_after_bounded_attempts(stub):
    stub.faults = [500] * 10
    with pytest.raises(KubernetesError, match="failed 3 times"):
        listing(attempts=3)
    assert len(stub.requests) == 3


def test_forbidden_fails_at_once_with_rbac_message(stub):
    stub.faults = [403]
    with pytest.raises(KubernetesError, match="RBAC") as raised:
        listing()
    assert len(stub.requests) == 1
    assert "\n" not in str(raised.value)
    assert "stub-token" not in str(raised.value)


def test_unauthorized_fails_at_once(stub):
    stub.faults = [401]
    with pytest.raises(KubernetesError, match="credentials"):
        listing()


def test_timeout_is_retried(stub):
    stub.faults = ["timeout"]
    assert len(listing(timeout=0.3)) == 4
    assert len(stub.requests) == 2


def test_no_configuration_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubernetesError, match="KUBECONFIG"):
        api_client(1.0)


def test_gpu_models_from_node_labels_and_a_forbidden_node_list_is_one_line(stub, caplog):
    import logging

    from loader.kubernetes_source import list_gpu_node_models

    assert list_gpu_node_models(api_client(5.0), request_timeout=5.0) is None  # nodes may not be listed (403)
    assert "access denied (403) while listing nodes" in caplog.text and "get and list on nodes" in caplog.text
    stub.nodes = [
        {"metadata": {"name": "gpu-a100-01", "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}}},
        {"metadata": {"name": "cpu-1", "labels": {"kubernetes.io/os": "linux"}}},
    ]
    with caplog.at_level(logging.WARNING):
        assert list_gpu_node_models(api_client(5.0), request_timeout=5.0) == {"gpu-a100-01": "NVIDIA-A100-SXM4-80GB"}
