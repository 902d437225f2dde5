"""The real servers the tests start as processes (Prometheus, JupyterHub): wait until one answers, stop it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import requests


def wait_until_ready(process: subprocess.Popen, ready: Callable[[], bool], seconds: float = 60) -> bool:
    """True once `ready()` holds; False when the process exits first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return True
        except requests.RequestException:
            pass
        if process.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def stop(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
