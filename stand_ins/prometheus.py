"""A real Prometheus (Debian's `prometheus` and `promtool`) on a free loopback port, filled with past series from
OpenMetrics text by `promtool tsdb create-blocks-from openmetrics`: what the tests and the bench ask for GPU use."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import requests

from stand_ins.processes import stop, wait_until_ready

INSTALL_HINT = "install Debian's prometheus package (apt-get install prometheus); .ci/run does"


def available() -> bool:
    return bool(shutil.which("prometheus") and shutil.which("promtool"))


def openmetrics(series: Iterable[tuple[str, Mapping[str, str], Iterable[tuple[float, str]]]]) -> str:
    """OpenMetrics text of gauges: (metric, labels, [(unix time, value)]) each."""
    by_metric: dict[str, list[str]] = {}
    for metric, labels, samples in series:
        rendered = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        lines = by_metric.setdefault(metric, [f"# TYPE {metric} gauge"])
        # promtool wants each series' samples in time order.
        lines += [f"{metric}{{{rendered}}} {value} {stamp:.3f}" for stamp, value in sorted(samples)]
    return "\n".join(line for lines in by_metric.values() for line in lines) + "\n# EOF\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RealPrometheus:
    """`with RealPrometheus(text) as prometheus:` serves the series at prometheus.url until the block ends."""

    def __init__(self, text: str) -> None:
        if not available():
            raise RuntimeError(f"no prometheus and promtool on PATH; {INSTALL_HINT}")
        self.folder = Path(tempfile.mkdtemp(prefix="jhm-prometheus-"))
        (self.folder / "series.om").write_text(text)
        (self.folder / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
        data = self.folder / "data"
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(self.folder / "series.om"), str(data)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RealPrometheus:
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "prometheus.log").open("w"),
        )
        if wait_until_ready(self.process, lambda: requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200):
            return self
        log = (self.folder / "prometheus.log").read_text()
        self.__exit__()
        raise RuntimeError(f"prometheus did not start: {log[-500:]}")

    def __exit__(self, *exc: object) -> None:
        stop(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)
