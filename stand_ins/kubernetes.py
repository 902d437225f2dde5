"""A local HTTP server that answers pod lists like the Kubernetes API, with scripted faults."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from loader.pods import matches_selector
from stand_ins.http import LocalHttpStub, send_json


def _namespace(pod: object) -> object:
    metadata = pod.get("metadata") if isinstance(pod, dict) else None
    return metadata.get("namespace") if isinstance(metadata, dict) else None


def _phase_matches(pod: object, field: str) -> bool:
    """The API server's field selector on status.phase (`=` or `!=`), the only one collect uses."""
    if not field:
        return True
    phase = pod.get("status", {}).get("phase") if isinstance(pod, dict) else None
    if field.startswith("status.phase!="):
        return phase != field.removeprefix("status.phase!=")
    if field.startswith("status.phase="):
        return phase == field.removeprefix("status.phase=")
    raise ValueError(f"unsupported field selector {field}")


class KubeApiStub(LocalHttpStub):
    def __init__(self, pods: list[dict]):
        self.pods = pods
        # PodMetrics items the metrics API (metrics.k8s.io/v1beta1) serves; None: no metrics API (404).
        self.pod_metrics: list[dict] | None = None
        # Nodes the core API lists; None: the service account may not list nodes (403).
        self.nodes: list[dict] | None = None
        # PersistentVolumeClaims the core API lists; None: the service account may not list them (403).
        self.claims: list[dict] | None = []
        self.faults: list[object] = []  # per request, in order: an HTTP status, or "timeout"
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.authorization: list[str | None] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                stub.requests.append((url.path, query))
                stub.authorization.append(self.headers.get("Authorization"))
                fault = stub.faults.pop(0) if stub.faults else None
                if fault == "timeout":
                    time.sleep(1.0)
                    return send_json(self, 500, {"kind": "Status", "message": "late"})
                if isinstance(fault, int):
                    return send_json(
                        self, fault, {"kind": "Status", "apiVersion": "v1", "code": fault, "message": "scripted"}
                    )
                parts = url.path.strip("/").split("/")
                if parts[:3] == ["apis", "metrics.k8s.io", "v1beta1"] and parts[-1] == "pods":
                    if stub.pod_metrics is None:
                        return send_json(self, 404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                    wanted = parts[4] if len(parts) == 6 and parts[3] == "namespaces" else None
                    items = [m for m in stub.pod_metrics if wanted is None or _namespace(m) == wanted]
                    return send_json(
                        self,
                        200,
                        {
                            "kind": "PodMetricsList",
                            "apiVersion": "metrics.k8s.io/v1beta1",
                            "metadata": {},
                            "items": items,
                        },
                    )
                if parts == ["api", "v1", "nodes"]:
                    if stub.nodes is None:
                        return send_json(self, 403, {"kind": "Status", "code": 403, "reason": "Forbidden"})
                    selector = query.get("labelSelector", [""])[0]
                    listed = [node for node in stub.nodes if matches_selector(node, selector)]
                    return send_json(self, 200, {"kind": "NodeList", "apiVersion": "v1", "items": listed})
                if parts[:2] == ["api", "v1"] and parts[-1] == "persistentvolumeclaims":
                    if stub.claims is None:
                        return send_json(self, 403, {"kind": "Status", "code": 403, "reason": "Forbidden"})
                    wanted = parts[3] if len(parts) == 5 and parts[2] == "namespaces" else None
                    selector = query.get("labelSelector", [""])[0]
                    listed = [
                        claim
                        for claim in stub.claims
                        if (wanted is None or _namespace(claim) == wanted) and matches_selector(claim, selector)
                    ]
                    return send_json(
                        self,
                        200,
                        {"kind": "PersistentVolumeClaimList", "apiVersion": "v1", "metadata": {}, "items": listed},
                    )
                if parts[:2] != ["api", "v1"] or parts[-1] != "pods":
                    return send_json(self, 404, {"kind": "Status", "code": 404})
                namespace = parts[3] if len(parts) == 5 and parts[2] == "namespaces" else None
                selector = query.get("labelSelector", [""])[0]
                field = query.get("fieldSelector", [""])[0]
                items = [
                    pod
                    for pod in stub.pods
                    if (namespace is None or _namespace(pod) == namespace)
                    and matches_selector(pod, selector)
                    and _phase_matches(pod, field)
                ]
                limit = int(query.get("limit", ["0"])[0] or 0)
                offset = int(query.get("continue", ["0"])[0] or 0)
                page = items[offset : offset + limit] if limit else items
                more = limit and offset + limit < len(items)
                send_json(
                    self,
                    200,
                    {
                        "kind": "PodList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "1", **({"continue": str(offset + limit)} if more else {})},
                        "items": page,
                    },
                )

        self.start_server(Handler)

    def write_kubeconfig(self, path: Path, token: str = "stub-token-not-secret") -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
                    "users": [{"name": "stub", "user": {"token": token}}],
                    "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
                    "current-context": "stub",
                }
            )
        )
        return path
