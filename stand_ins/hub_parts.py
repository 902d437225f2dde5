"""Loaded by the real JupyterHub that stand_ins.jupyterhub starts (its configuration imports this module): a spawner
that starts no process and a proxy that routes nothing, so the hub runs on a machine without Kubernetes or
configurable-http-proxy while its REST API, its database and its activity bookkeeping are JupyterHub's own."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jupyterhub.proxy import Proxy
from jupyterhub.spawner import Spawner
from traitlets import Dict


class _Answer(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


# The hub waits for a started server to answer HTTP; every "server" is this one listener.
_listener = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
_listener.daemon_threads = True
threading.Thread(target=_listener.serve_forever, daemon=True).start()
SERVER_URL = f"http://127.0.0.1:{_listener.server_address[1]}"


class NoProcessSpawner(Spawner):
    """A server that is up as soon as it is asked for, until it is stopped."""

    async def start(self) -> str:
        return SERVER_URL

    async def poll(self) -> int | None:
        return None

    async def stop(self, now: bool = False) -> None:
        return None


class NoProxy(Proxy):
    """Keeps the hub's routes in memory."""

    should_start = False
    routes = Dict()

    async def add_route(self, routespec: str, target: str, data: dict[str, Any]) -> None:
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec: str) -> None:
        self.routes.pop(routespec, None)

    async def get_all_routes(self) -> dict[str, Any]:
        return dict(self.routes)
