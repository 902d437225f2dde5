"""A local HTTP server that answers pod lists like the Kubernetes API, with scripted faults."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from loader.pods import is_running, matches_selector


class KubeApiStub:
    def __init__(self, pods: list[dict]):
        self.pods = pods
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
                    return self._json(500, {"kind": "Status", "message": "late"})
                if isinstance(fault, int):
                    return self._json(fault, {"kind": "Status", "apiVersion": "v1", "code": fault, "message": "scripted"})
                parts = url.path.strip("/").split("/")
                if parts[:2] != ["api", "v1"] or parts[-1] != "pods":
                    return self._json(404, {"kind": "Status", "code": 404})
                namespace = parts[3] if len(parts) == 5 and parts[2] == "namespaces" else None
                selector = query.get("labelSelector", [""])[0]
                field = query.get("fieldSelector", [""])[0]
                items = [
                    pod
                    for pod in stub.pods
                    if (namespace is None or pod["metadata"].get("namespace") == namespace)
                    and matches_selector(pod, selector)
                    and (field != "status.phase=Running" or is_running(pod))
                ]
                limit = int(query.get("limit", ["0"])[0] or 0)
                offset = int(query.get("continue", ["0"])[0] or 0)
                page = items[offset : offset + limit] if limit else items
                more = limit and offset + limit < len(items)
                self._json(
                    200,
                    {
                        "kind": "PodList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "1", **({"continue": str(offset + limit)} if more else {})},
                        "items": page,
                    },
                )

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

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
