"""What the GPU did (spec 3.5): dcgm-exporter's series, as a real Prometheus answers them, give each GPU pod's
utilisation, memory and model; bad answers cost the figures, never the run."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.gpu import (
    ENGINE_ACTIVE,
    FB_USED,
    GPU_UTIL,
    MIB,
    GpuUse,
    answers_from_document,
    gpu_use_by_pod,
    node_models,
    with_gpu_use,
)
from loader.prometheus_source import queries
from stand_ins import prometheus
from stand_ins.http import LocalHttpStub, send_json
from tests.conftest import needs
from tests.dbt_helpers import observation
from tests.pod_factory import KUBESPAWNER_6_POD, KUBESPAWNER_7_POD, pod, pod_list

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
A100 = "NVIDIA A100-SXM4-80GB"
H100 = "NVIDIA H100 80GB HBM3"


def labels(pod_name: str, gpu: int, *, node: str = "gpu-a100-01", model: str = A100, namespace: str = "jhub", **extra):
    """dcgm-exporter's labels for a GPU held by a pod (the kubelet's pod resources say which)."""
    return {
        "gpu": str(gpu),
        "UUID": f"GPU-{node}-{gpu}",
        "device": f"nvidia{gpu}",
        "modelName": model,
        "Hostname": node,
        "container": "notebook",
        "namespace": namespace,
        "pod": pod_name,
        **extra,
    }


def answer(*series: tuple[dict, str]) -> dict:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": m, "value": [AT.timestamp(), v]} for m, v in series]},
    }


# --- per pod, from answers (no network) -------------------------------------------------------------------------


def test_two_gpus_give_the_mean_utilisation_and_the_summed_memory():
    use, skipped = gpu_use_by_pod(
        {
            ENGINE_ACTIVE: answer((labels("p", 0), "0.9"), (labels("p", 1), "0.1")),
            GPU_UTIL: answer((labels("p", 0), "95"), (labels("p", 1), "12")),
            FB_USED: answer((labels("p", 0), "30000"), (labels("p", 1), "1000")),
        }
    )
    assert use == {("jhub", "p"): GpuUse(Decimal("0.5"), 31000 * MIB, A100)} and not skipped


def test_a_gpu_without_the_profiling_metric_uses_gpu_util_over_100():
    """Some H100/H200 set-ups publish no DCGM_FI_PROF_* series: that GPU's DCGM_FI_DEV_GPU_UTIL, as a ratio."""
    use, _ = gpu_use_by_pod(
        {
            ENGINE_ACTIVE: answer((labels("mixed", 0), "0.80")),
            GPU_UTIL: answer(
                (labels("h", 0, node="gke-h100", model=H100), "37"),
                (labels("mixed", 0), "99"),
                (labels("mixed", 1), "20"),
            ),
        }
    )
    assert use[("jhub", "h")] == GpuUse(Decimal("0.37"), None, H100)
    assert use[("jhub", "mixed")].utilization == Decimal("0.50")  # (0.80 + 20/100) / 2


def test_relabelled_series_belong_to_the_exported_pod_and_series_of_no_pod_to_none():
    renamed = labels("nvidia-dcgm-exporter-x7", 0, namespace="gpu-operator")
    renamed.update({"exported_namespace": "jhub", "exported_pod": "p", "exported_container": "notebook"})
    idle_gpu = labels("", 1)  # a GPU no pod holds: an empty pod label
    use, skipped = gpu_use_by_pod({ENGINE_ACTIVE: answer((renamed, "0.25"), (idle_gpu, "0"))})
    assert use == {("jhub", "p"): GpuUse(Decimal("0.25"), None, A100)} and not skipped


@pytest.mark.parametrize(
    ("metric", "value", "reason"),
    [
        (ENGINE_ACTIVE, "NaN", "not a finite value"),
        (ENGINE_ACTIVE, "+Inf", "not a finite value"),
        (ENGINE_ACTIVE, "250", "a percentage where a ratio was expected"),
        (GPU_UTIL, "150", "not a percentage"),
        (FB_USED, "-1", "negative"),
        (FB_USED, "lots", "not a number"),
    ],
)
def test_values_a_metric_cannot_have_are_skipped_and_counted(metric, value, reason):
    use, skipped = gpu_use_by_pod({metric: answer((labels("p", 0), value))})
    assert use[("jhub", "p")] == GpuUse(None, None, A100)  # the value is skipped; the series still names its GPU
    assert sum(skipped.values()) == 1 and reason in next(iter(skipped))


def test_a_malformed_answer_is_counted_not_raised():
    use, skipped = gpu_use_by_pod({ENGINE_ACTIVE: {"status": "error", "error": "bad query"}, GPU_UTIL: [1, 2]})
    assert use == {} and sum(skipped.values()) == 2


def test_rows_without_gpus_stay_as_they_are_and_the_node_names_the_model_where_dcgm_does_not():
    gpu_row = observation("a@x.edu", "jupyter-a", "gke-h100", AT, gpu_count=1)
    cpu_row = observation("b@x.edu", "jupyter-b", "cpu-1", AT, gpu_count=0)
    rows = with_gpu_use([gpu_row, cpu_row], {}, {"gke-h100": H100})
    assert rows[0].gpu_model == H100 and rows[0].gpu_utilization is None and rows[1] == cpu_row


def test_node_models_come_from_gpu_feature_discovery_labels():
    nodes = {
        "items": [
            {"metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}}},
            {"metadata": {"name": "cpu-1", "labels": {"kubernetes.io/os": "linux"}}},
            {"metadata": {"name": "odd", "labels": {"nvidia.com/gpu.product": "x" * 500}}},
            "not a node",
        ]
    }
    assert node_models(nodes) == {"gpu-1": "NVIDIA-A100-SXM4-80GB"}


def test_a_replay_file_is_one_answer_by_name_or_answers_by_metric():
    series = [
        {"metric": {"__name__": ENGINE_ACTIVE, **labels("p", 0)}, "value": [0, "0.5"]},
        {"metric": {"__name__": "up"}, "value": [0, "1"]},
    ]
    split = answers_from_document({"status": "success", "data": {"resultType": "vector", "result": series}})
    assert list(split) == [ENGINE_ACTIVE] and len(split[ENGINE_ACTIVE]["data"]["result"]) == 1
    assert answers_from_document({GPU_UTIL: answer()}) == {GPU_UTIL: answer()}
    with pytest.raises(ValueError):
        answers_from_document({"kind": "PodList"})


def test_one_query_per_metric_filtered_by_the_watched_namespaces():
    built = queries(["jhub", "jhub-staging"])
    assert set(built) == {ENGINE_ACTIVE, GPU_UTIL, FB_USED}
    assert built[ENGINE_ACTIVE] == (
        'avg_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{pod!="",namespace=~"jhub|jhub\\\\-staging"}[5m]) or '
        'avg_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{exported_pod!="",exported_namespace=~"jhub|jhub\\\\-staging"}[5m])'
    )
    assert "namespace" not in queries([])[FB_USED]


# --- a collection against a real Prometheus ---------------------------------------------------------------------

needs_prometheus = needs(prometheus.available(), prometheus.INSTALL_HINT)


def history(metric: str, series_labels: dict, value: str | float) -> tuple[str, dict, list[tuple[float, str]]]:
    """A series sampled every 30 s for the 10 minutes before the collection."""
    return metric, series_labels, [((AT - timedelta(seconds=30 * step)).timestamp(), str(value)) for step in range(20)]


GPU_POD = KUBESPAWNER_7_POD  # two GPUs on gpu-a100-01
H100_POD = pod(
    KUBESPAWNER_7_POD,
    metadata__name="jupyter-h100-user",
    metadata__uid="h100-uid",
    metadata__annotations={"hub.jupyter.org/username": "h.user@example.edu"},
    spec__nodeName="gke-gpu-pool-7f3a",
    spec__containers=[
        {
            "name": "notebook",
            "image": "quay.io/jupyter/pytorch-notebook:cuda12",
            "resources": {"limits": {"nvidia.com/gpu": "1"}},
        }
    ],
)
UNMEASURED_POD = pod(
    KUBESPAWNER_7_POD,
    metadata__name="jupyter-dark-gpu",
    metadata__uid="dark-uid",
    metadata__annotations={"hub.jupyter.org/username": "dark@example.edu"},
    spec__nodeName="gpu-l40s-03",
)
BAD_VALUE_POD = pod(
    KUBESPAWNER_7_POD,
    metadata__name="jupyter-percent",
    metadata__uid="percent-uid",
    metadata__annotations={"hub.jupyter.org/username": "percent@example.edu"},
)


def dcgm_series() -> str:
    jane = GPU_POD["metadata"]["name"]
    renamed = labels("nvidia-dcgm-exporter-q", 1, namespace="gpu-operator")
    renamed.update({"exported_namespace": "jhub", "exported_pod": jane, "exported_container": "notebook"})
    h100 = labels("jupyter-h100-user", 0, node="gke-gpu-pool-7f3a", model=H100)
    return prometheus.openmetrics(
        [
            history(ENGINE_ACTIVE, labels(jane, 0), 0.92),
            history(ENGINE_ACTIVE, renamed, 0.02),
            history(GPU_UTIL, labels(jane, 0), 95),
            history(GPU_UTIL, renamed, 3),
            history(FB_USED, labels(jane, 0), 40000),
            history(FB_USED, renamed, 500),
            history(GPU_UTIL, h100, 61),  # no profiling metric on this H100
            history(FB_USED, h100, 12000),
            history(ENGINE_ACTIVE, labels("", 3), 0),  # a GPU of no pod
            history(ENGINE_ACTIVE, labels("jupyter-percent", 0), 250),  # a percentage where a ratio belongs
            history(FB_USED, labels("jupyter-percent", 0), "NaN"),
        ]
    )


@pytest.fixture(scope="module")
def real_prometheus():
    with prometheus.RealPrometheus(dcgm_series()) as server:
        yield server


@needs_prometheus
def test_a_collection_takes_each_gpu_pods_use_from_a_real_prometheus(
    real_prometheus, migrated, database, tmp_path, monkeypatch, caplog
):
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps(pod_list(GPU_POD, H100_POD, UNMEASURED_POD, BAD_VALUE_POD, KUBESPAWNER_6_POD)))
    environment = {**database.environment(), "PROMETHEUS_URL": real_prometheus.url}
    with caplog.at_level(logging.INFO):
        result = CliRunner().invoke(
            app, ["collect", "--from-file", str(pods), "--at", AT.isoformat(), "--json"], env=environment
        )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["gpu_pods"], summary["gpu_pods_measured"]) == (4, 2)
    with psycopg.connect(**database.connect_kwargs()) as conn:
        rows = dict(
            (row[0], row[1:])
            for row in conn.execute(
                "select pod_name, gpu_utilization, gpu_memory_used_bytes, gpu_model from raw.container_observations"
            )
        )
    assert rows[GPU_POD["metadata"]["name"]] == (Decimal("0.47"), 40500 * MIB, A100)  # (0.92 + 0.02) / 2
    assert rows["jupyter-h100-user"] == (Decimal("0.61"), 12000 * MIB, H100)
    assert rows["jupyter-dark-gpu"] == (None, None, None)
    assert rows["jupyter-percent"] == (None, None, A100)  # the model of a skipped value's series still counts
    assert rows["jupyter-bob-2esmith"] == (None, None, None)  # no GPUs asked for
    assert "a percentage where a ratio was expected" in caplog.text and "not a finite value" in caplog.text


class FaultyPrometheus(LocalHttpStub):
    """Answers every query with a scripted status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        from http.server import BaseHTTPRequestHandler

        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.authorization = self.headers.get("Authorization")
                if body.startswith(b"{"):
                    return send_json(self, status, json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.authorization: str | None = None
        self.start_server(Handler)


@pytest.mark.parametrize(
    ("status", "body", "logged"),
    [
        (500, b"<html>oops</html>", "not JSON"),
        (503, b'{"status": "error", "errorType": "unavailable", "error": "too busy"}', "too busy"),
        (403, b'{"status": "error"}', "check PROMETHEUS_TOKEN"),
    ],
)
def test_a_failing_prometheus_costs_the_figures_and_one_line_never_the_run(
    migrated, database, tmp_path, caplog, status, body, logged
):
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps(pod_list(GPU_POD)))
    with FaultyPrometheus(status, body) as stub:
        environment = {**database.environment(), "PROMETHEUS_URL": stub.url, "PROMETHEUS_TOKEN": "prom-secret-token"}
        with caplog.at_level(logging.WARNING):
            result = CliRunner().invoke(
                app, ["collect", "--from-file", str(pods), "--at", AT.isoformat()], env=environment
            )
    assert result.exit_code == 0, result.output
    assert "1 rows recorded" in result.output and "GPU use of 0 of 1 GPU pods" in result.output
    warnings = [record.getMessage() for record in caplog.records if "GPU use" in record.getMessage()]
    assert len(warnings) == 1 and logged in warnings[0]
    assert stub.authorization == "Bearer prom-secret-token"
    assert "prom-secret-token" not in caplog.text + result.output


def test_no_prometheus_listening_costs_one_line(migrated, database, tmp_path, caplog):
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps(pod_list(GPU_POD)))
    environment = {**database.environment(), "PROMETHEUS_URL": f"http://127.0.0.1:{prometheus.free_port()}"}
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(app, ["collect", "--from-file", str(pods), "--at", AT.isoformat()], env=environment)
    assert result.exit_code == 0 and "cannot reach Prometheus" in caplog.text


def test_replays_read_a_saved_answer_and_a_saved_node_list(migrated, database, tmp_path):
    saved = {ENGINE_ACTIVE: answer((labels(GPU_POD["metadata"]["name"], 0), "0.3"))}
    (tmp_path / "gpu.json").write_text(json.dumps(saved))
    nodes = {"items": [{"metadata": {"name": "gke-gpu-pool-7f3a", "labels": {"nvidia.com/gpu.product": H100}}}]}
    (tmp_path / "nodes.json").write_text(json.dumps(nodes))
    (tmp_path / "pods.json").write_text(json.dumps(pod_list(GPU_POD, H100_POD)))
    result = CliRunner().invoke(
        app,
        [
            "collect",
            "--from-file",
            str(tmp_path / "pods.json"),
            "--gpu-metrics-from-file",
            str(tmp_path / "gpu.json"),
            "--nodes-from-file",
            str(tmp_path / "nodes.json"),
            "--at",
            AT.isoformat(),
        ],
        env=database.environment(),
    )
    assert result.exit_code == 0, result.output
    with psycopg.connect(**database.connect_kwargs()) as conn:
        rows = dict(
            (row[0], row[1:])
            for row in conn.execute("select pod_name, gpu_utilization, gpu_model from raw.container_observations")
        )
    assert rows[GPU_POD["metadata"]["name"]] == (Decimal("0.3"), A100)
    assert rows["jupyter-h100-user"] == (None, H100)  # no DCGM series: the node's label names the model
