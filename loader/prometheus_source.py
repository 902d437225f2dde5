"""Asks Prometheus (its HTTP API, `/api/v1/query`) for dcgm-exporter's series of the GPU pods a collection observed:
one query per metric, at the collection's time, filtered by the watched namespaces (loader.gpu turns the answers
into per-pod figures). Any failure costs the run its GPU figures and one log line, never the run."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from loader.config import PrometheusSettings
from loader.errors import LoaderError
from loader.gpu import ENGINE_ACTIVE, FB_USED, GPU_UTIL, METRICS, GpuUse, PodKey, answers_from_document, gpu_use_by_pod

if TYPE_CHECKING:
    from collections import Counter

    from loader.storage import Figures

    StorageFigures = tuple[dict[tuple[str, str], Figures], dict[tuple[str | None, str], Figures], Counter[str]]

log = logging.getLogger(__name__)

# The window DCGM's utilisation is averaged over: one collection interval.
WINDOW = "5m"
GpuUseSource = Callable[[datetime, set[PodKey]], "dict[PodKey, GpuUse] | None"]


class PrometheusError(LoaderError):
    pass


def _matcher(label: str, values: Iterable[str]) -> str:
    escaped = "|".join(re.escape(value).replace("\\", "\\\\").replace('"', '\\"') for value in sorted(values))
    return f'{label}=~"{escaped}"'


def queries(namespaces: Iterable[str]) -> dict[str, str]:
    """The PromQL of each metric: series of a pod (by its own labels, or the exported_* ones where Prometheus renamed
    them), in the watched namespaces when some are named; utilisation averaged over the last 5 minutes."""
    watched = sorted(set(namespaces))

    def selector(metric: str, prefix: str) -> str:
        matchers = [f'{prefix}pod!=""'] + ([_matcher(f"{prefix}namespace", watched)] if watched else [])
        return f"{metric}{{{','.join(matchers)}}}"

    def both(metric: str, template: str) -> str:
        return " or ".join(template.format(selector(metric, prefix)) for prefix in ("", "exported_"))

    return {
        ENGINE_ACTIVE: both(ENGINE_ACTIVE, f"avg_over_time({{}}[{WINDOW}])"),
        GPU_UTIL: both(GPU_UTIL, f"avg_over_time({{}}[{WINDOW}])"),
        FB_USED: both(FB_USED, "{}"),
    }


class PrometheusClient:
    def __init__(self, settings: PrometheusSettings, session: requests.Session | None = None) -> None:
        if not settings.url:
            raise PrometheusError("no PROMETHEUS_URL is set")
        self.settings = settings
        self.session = session or requests.Session()
        if settings.token:
            self.session.headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.username:
            self.session.auth = (settings.username, settings.password or "")
        self.session.verify = settings.ca_file or True
        self.requests_made = 0

    def query(self, expression: str, at: datetime) -> dict[str, Any]:
        """One instant query; its answer, or PrometheusError in one line (never the token)."""
        url = f"{self.settings.url}/api/v1/query"
        self.requests_made += 1
        try:
            response = self.session.post(
                url, data={"query": expression, "time": f"{at.timestamp():.3f}"}, timeout=self.settings.timeout_seconds
            )
        except requests.RequestException as error:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.settings.url} ({type(error).__name__}); check PROMETHEUS_URL"
            ) from None
        if response.status_code in (401, 403):
            raise PrometheusError(
                f"Prometheus refused the query ({response.status_code}); check PROMETHEUS_TOKEN or the basic-auth user"
            )
        try:
            answer = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus answered {response.status_code} with something that is not JSON; check PROMETHEUS_URL"
            ) from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            detail = str(answer.get("error", "")) if isinstance(answer, dict) else ""
            raise PrometheusError(
                f"Prometheus answered {response.status_code} without a result ({' '.join(detail.split())[:200]})"
            )
        return answer


def prometheus_gpu_use(settings: PrometheusSettings, namespaces: Iterable[str]) -> GpuUseSource:
    """The GPU figures of a collection from Prometheus: three queries at the collection's time."""
    watched = tuple(namespaces)

    def read(at: datetime, pods: set[PodKey]) -> dict[PodKey, GpuUse] | None:
        client = PrometheusClient(settings)
        answers = {metric: client.query(expression, at) for metric, expression in queries(watched).items()}
        return _figures(answers, pods)

    return read


def storage_queries(namespaces: Iterable[str]) -> dict[str, str]:
    """Two queries: kubelet's figures of PVCs in the watched namespaces, and every home directory
    prometheus-dirsize-exporter reports (its own namespace, where Prometheus labels one, among the watched); each
    selects its metrics by name, so one answer holds them all."""
    from loader.storage import DIRECTORY_METRICS, VOLUME_METRICS

    watched = sorted(set(namespaces))

    def by_name(metrics: Iterable[str], matchers: list[str]) -> str:
        return "{" + ",".join([_matcher("__name__", metrics), *matchers]) + "}"

    return {
        "volumes": by_name(
            VOLUME_METRICS, ['persistentvolumeclaim!=""'] + ([_matcher("namespace", watched)] if watched else [])
        ),
        "directories": by_name(
            DIRECTORY_METRICS, ['directory!=""'] + ([_matcher("namespace", [*watched, ""])] if watched else [])
        ),
    }


def answers_by_metric(answers: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Answers whose series are of several metrics, split into one answer per metric (by the series' __name__)."""
    split: dict[str, list[Any]] = {}
    for answer in answers:
        data = answer.get("data") if isinstance(answer, dict) else None
        for series in (data or {}).get("result") or []:
            name = series.get("metric", {}).get("__name__") if isinstance(series, dict) else None
            split.setdefault(str(name), []).append(series)
    return {name: {"status": "success", "data": {"result": series}} for name, series in split.items()}


StorageFiguresSource = Callable[[datetime], "StorageFigures"]


def prometheus_storage_figures(settings: PrometheusSettings, namespaces: Iterable[str]) -> StorageFiguresSource:
    """The storage figures at a collection's time (kubelet reports a volume only while a pod mounts it; the last
    figure stored stands meanwhile)."""
    from loader.storage import storage_figures_of

    watched = tuple(namespaces)

    def read(at: datetime) -> StorageFigures:
        client = PrometheusClient(settings)
        return storage_figures_of(
            answers_by_metric(client.query(expression, at) for expression in storage_queries(watched).values())
        )

    return read


def gpu_use_from_file(path: Path) -> GpuUseSource:
    """A replay: a saved Prometheus answer (`--gpu-metrics-from-file`)."""

    def read(at: datetime, pods: set[PodKey]) -> dict[PodKey, GpuUse] | None:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            answers = answers_from_document(document)
        except OSError as error:
            raise PrometheusError(f"cannot read GPU metrics {path}: {error.strerror}") from None
        except (ValueError, RecursionError) as error:
            raise PrometheusError(
                f"GPU metrics {path} is not a Prometheus query answer ({str(error)[:100]}); save the answer of "
                f"/api/v1/query for {', '.join(METRICS)}"
            ) from None
        return _figures(answers, pods)

    return read


def _figures(answers: dict[str, Any], pods: set[PodKey]) -> dict[PodKey, GpuUse]:
    use, skipped = gpu_use_by_pod(answers)
    for reason, count in sorted(skipped.items()):
        log.warning("skipped %d GPU series: %s", count, reason)
    found = {key: figure for key, figure in use.items() if key in pods}
    missing = len(pods) - len(found)
    if missing:
        log.info(
            "%d of %d GPU pods have no DCGM series in Prometheus (their GPU use stays unknown)", missing, len(pods)
        )
    return found
