"""A real JupyterHub (PyPI `jupyterhub`, pinned in the dev extras) on free loopback ports: its REST API, database,
roles and activity bookkeeping are JupyterHub's own; only the spawner and the proxy are stand-ins (stand_ins.hub_parts)
because there is no Kubernetes here. Two service tokens: `driver` acts as an admin would (users, groups, servers,
activity), `reader` holds exactly the scopes the README asks HUB_API_TOKEN to have."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from stand_ins.processes import stop, wait_until_ready
from stand_ins.prometheus import free_port

INSTALL_HINT = "install the dev extras (pip install -e '.[dev]'): they pin jupyterhub"
READER_SCOPES = ["list:users", "read:users", "read:users:activity", "read:servers", "list:groups", "read:groups"]
DRIVER_SCOPES = ["admin:users", "admin:groups", "admin:servers", "users:activity", "servers"]
REPOSITORY = Path(__file__).resolve().parent.parent


def available() -> bool:
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return False
    return True


def _configuration(folder: Path, hub_port: int, proxy_port: int, tokens: dict[str, str], reader: list[str]) -> str:
    settings: dict[str, Any] = {
        "services": [{"name": name, "api_token": token} for name, token in tokens.items()],
        "roles": [
            {"name": "driver", "scopes": DRIVER_SCOPES, "services": ["driver"]},
            {"name": "reader", "scopes": reader, "services": ["reader"]},
        ],
    }
    return "\n".join(
        [
            "from stand_ins.hub_parts import NoProcessSpawner, NoProxy",
            f"settings = {json.dumps(settings)}",
            "c.JupyterHub.spawner_class = NoProcessSpawner",
            "c.JupyterHub.proxy_class = NoProxy",
            "c.JupyterHub.authenticator_class = 'dummy'",
            "c.Authenticator.allow_all = True",
            "c.JupyterHub.hub_ip = '127.0.0.1'",
            f"c.JupyterHub.hub_port = {hub_port}",
            "c.JupyterHub.ip = '127.0.0.1'",
            f"c.JupyterHub.port = {proxy_port}",
            f"c.JupyterHub.db_url = 'sqlite:///{folder / 'hub.sqlite'}'",
            f"c.JupyterHub.cookie_secret_file = '{folder / 'cookie_secret'}'",
            "c.JupyterHub.allow_named_servers = True",
            "c.JupyterHub.services = settings['services']",
            "c.JupyterHub.load_roles = settings['roles']",
        ]
    )


class RealJupyterHub:
    """`with RealJupyterHub() as hub:` runs a hub until the block ends; hub.api_url and hub.reader_token are what
    HUB_API_URL and HUB_API_TOKEN would hold."""

    def __init__(self, reader_scopes: list[str] | None = None) -> None:
        if not available():
            raise RuntimeError(f"no jupyterhub package; {INSTALL_HINT}")
        self.folder = Path(tempfile.mkdtemp(prefix="jhm-jupyterhub-"))
        self.hub_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.hub_port}/hub/api"
        self.driver_token = secrets.token_hex(16)
        self.reader_token = secrets.token_hex(16)
        tokens = {"driver": self.driver_token, "reader": self.reader_token}
        scopes = READER_SCOPES if reader_scopes is None else reader_scopes
        (self.folder / "jupyterhub_config.py").write_text(
            _configuration(self.folder, self.hub_port, free_port(), tokens, scopes)
        )
        self.process: subprocess.Popen | None = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.driver_token}"

    def __enter__(self) -> RealJupyterHub:
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.folder / "jupyterhub_config.py")],
            cwd=self.folder,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "hub.log").open("w"),
        )
        if wait_until_ready(self.process, lambda: self.session.get(f"{self.api_url}/", timeout=1).status_code == 200):
            return self
        log = self.log()
        self.__exit__()
        raise RuntimeError(f"jupyterhub did not start: {log[-800:]}")

    def __exit__(self, *exc: object) -> None:
        stop(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "hub.log"
        return path.read_text() if path.exists() else ""

    def api(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
        """One REST call as the driver (an admin); raises with the hub's answer when the status is not expected."""
        response = self.session.request(method, f"{self.api_url}/{path.lstrip('/')}", json=body, timeout=30)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def create_users(self, *names: str) -> None:
        self.api("POST", "users", {"usernames": list(names)})

    def create_group(self, name: str, *members: str) -> None:
        self.api("POST", f"groups/{name}", expect=(201, 409))
        if members:
            self.api("POST", f"groups/{name}/users", {"users": list(members)})

    def remove_from_group(self, name: str, *members: str) -> None:
        self.api("DELETE", f"groups/{name}/users", {"users": list(members)})

    def start_server(self, user: str, server: str = "") -> None:
        path = f"users/{user}/servers/{server}" if server else f"users/{user}/server"
        self.api("POST", path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = self.api("GET", f"users/{user}")["servers"].get(server, {})
            if state.get("ready"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{user}'s server {server!r} did not become ready")

    def stop_server(self, user: str, server: str = "") -> None:
        path = f"users/{user}/servers/{server}" if server else f"users/{user}/server"
        self.api("DELETE", path)

    def post_activity(self, user: str, when: datetime, server: str = "") -> None:
        """What jupyterhub-singleuser reports while someone works: the server's last activity (the hub keeps the
        latest it is told)."""
        stamp = when.isoformat().replace("+00:00", "Z")
        self.api(
            "POST", f"users/{user}/activity", {"last_activity": stamp, "servers": {server: {"last_activity": stamp}}}
        )

    def answers(self) -> dict[str, Any]:
        """What `--hub-from-file` replays: the hub's users and groups answers as the reader sees them."""
        reader = {"Authorization": f"token {self.reader_token}", "Accept": "application/jupyterhub-pagination+json"}
        return {
            name: requests.get(f"{self.api_url}/{path}", headers=reader, timeout=30).json()
            for name, path in (("users", "users?state=active"), ("groups", "groups"))
        }
