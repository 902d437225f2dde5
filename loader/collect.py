"""One collection: list pods (API or file), turn them into rows, write them and the run record in one transaction."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from loader.config import CollectSettings, Settings
from loader.db import connect
from loader.errors import ConfigurationError, LoaderError, one_line_failure
from loader.gpu import GpuUse, node_models, with_gpu_use
from loader.hub_source import HubSource
from loader.pods import (
    EARLIEST_TIME,
    FUTURE_TOLERANCE,
    Observation,
    PendingPod,
    PodUse,
    Skip,
    UserSource,
    is_not_running,
    is_running,
    matches_selector,
    observation_from_pod,
    pending_from_pod,
    pod_use_from_metrics,
    with_measured_use,
)
from loader.prometheus_source import GpuUseSource, StorageFiguresSource
from loader.raw_store import (
    RunKind,
    RunRecord,
    StorageWrite,
    last_storage_reading,
    record_collection,
    record_failed_run,
)
from loader.storage import NameShown, StorageSnapshot, claim_from_pvc, names_shown, storage_rows

log = logging.getLogger(__name__)

PodSource = Callable[[], list[dict[str, Any]]]
MetricsSource = Callable[[], "PodUse | None"]
NodeModelsSource = Callable[[], "dict[str, str] | None"]
METRICS_PATH = "/apis/metrics.k8s.io/v1beta1/pods"


@dataclass(frozen=True)
class CollectionResult:
    run_id: int
    observed_at: datetime
    pods_listed: int
    rows_recorded: int
    rows_already_recorded: int
    skip_reasons: dict[str, int]
    gpu_pods: int = 0
    gpu_pods_measured: int = 0
    pending_pods: int = 0
    hub_servers: int | None = None
    hub_memberships_recorded: bool | None = None
    storage_volumes: int | None = None
    storage_rows_written: int | None = None

    def summary(self) -> str:
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skip_reasons.items())) or "none"
        gpus = f", GPU use of {self.gpu_pods_measured} of {self.gpu_pods} GPU pods" if self.gpu_pods else ""
        pending = f", {self.pending_pods} pods not running" if self.pending_pods else ""
        hub = f", {self.hub_servers} hub servers" if self.hub_servers is not None else ""
        storage = (
            f", storage of {self.storage_volumes} volumes ({self.storage_rows_written} rows written)"
            if self.storage_volumes is not None
            else ""
        )
        return (
            f"run {self.run_id} at {self.observed_at.isoformat()}: {self.pods_listed} pods listed, "
            f"{self.rows_recorded} rows recorded, {self.rows_already_recorded} already recorded, skipped: {skipped}"
            f"{gpus}{pending}{hub}{storage}"
        )

    def document(self) -> dict[str, object]:
        return {
            "command": "collect",
            "status": "succeeded",
            "run_id": self.run_id,
            "observed_at": self.observed_at.isoformat(),
            "pods_listed": self.pods_listed,
            "rows_recorded": self.rows_recorded,
            "rows_already_recorded": self.rows_already_recorded,
            "skipped": dict(sorted(self.skip_reasons.items())),
            "gpu_pods": self.gpu_pods,
            "gpu_pods_measured": self.gpu_pods_measured,
            "pending_pods": self.pending_pods,
            "hub_servers": self.hub_servers,
            "hub_memberships_recorded": self.hub_memberships_recorded,
            "storage_volumes": self.storage_volumes,
            "storage_rows_written": self.storage_rows_written,
        }


def collection_time(text: str | None) -> datetime | None:
    """`--at`: an ISO 8601 time (UTC where it has no offset) within the range a collection can have."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"--at {text!r} is not an ISO 8601 time such as 2026-01-31T14:05:00+00:00") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    latest = datetime.now(UTC) + FUTURE_TOLERANCE
    if not EARLIEST_TIME <= moment <= latest:
        raise ConfigurationError(
            f"--at {text!r} is outside {EARLIEST_TIME:%Y-%m-%d} to one day from now; give the collection's real time"
        )
    return moment


def parse_user_sources(texts: Iterable[str], setting: str = "--user-from or COLLECT_USER_FROM") -> list[UserSource]:
    try:
        return [UserSource.parse(text) for text in texts]
    except ValueError as error:
        raise ConfigurationError(f"{error}; fix {setting}") from None


def pods_from_document(document: Any, selector: str, origin: str = "pod list") -> list[dict[str, Any]]:
    """The pods matching `selector` that run or are starting (or failed to) in `kubectl get pods -o json` output (a
    List, or one Pod)."""
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        items = document["items"]
    elif isinstance(document, dict) and document.get("kind") == "Pod":
        items = [document]
    else:
        raise LoaderError(f"{origin} holds no `items` list; pass `kubectl get pods -o json` output")
    return [
        pod
        for pod in items
        if not isinstance(pod, dict) or ((is_running(pod) or is_not_running(pod)) and matches_selector(pod, selector))
    ]


def pods_from_file(path: Path, selector: str) -> PodSource:
    def read() -> list[dict[str, Any]]:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise LoaderError(f"cannot read pod list {path}: {error.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise LoaderError(
                f"pod list {path} is not valid JSON ({error}); pass `kubectl get pods -o json` output"
            ) from None
        except RecursionError:
            raise LoaderError(
                f"pod list {path} is nested too deeply to be a pod list; pass `kubectl get pods -o json` output"
            ) from None
        return pods_from_document(document, selector, origin=f"pod list {path}")

    return read


def build_rows(
    pods: list[dict[str, Any]], settings: CollectSettings, observed_at: datetime, use: PodUse | None = None
) -> tuple[list[Observation], Counter[str]]:
    sources = parse_user_sources(settings.user_sources)
    name_sources = parse_user_sources(settings.name_sources, "--name-from or COLLECT_NAME_FROM")
    rows: list[Observation] = []
    skipped: Counter[str] = Counter()
    # Two hubs may run the same user's pod under the same name: namespace and cluster tell them apart.
    seen: set[tuple[str | None, str | None, str, str]] = set()
    for pod in pods:
        outcome = observation_from_pod(
            pod,
            observed_at=observed_at,
            user_sources=sources,
            email_domain=settings.email_domain,
            cluster=settings.cluster,
            name_sources=name_sources,
        )
        if isinstance(outcome, Observation):
            key = (outcome.cluster, outcome.namespace, outcome.user_email, outcome.pod_name)
            if key not in seen:
                seen.add(key)
                rows.append(with_measured_use(outcome, pod, use) if use else outcome)
                continue
            outcome = Skip(
                f"{outcome.namespace}/{outcome.pod_name}", "duplicate_pod", "the same pod was listed twice in one run"
            )
        skipped[outcome.reason] += 1
        log.warning("skipped pod %s: %s (%s)", outcome.pod, outcome.reason, outcome.detail)
    return rows, skipped


@dataclass(frozen=True)
class Sources:
    """Where a collection's figures come from besides the pods: each optional (None: not read)."""

    metrics: MetricsSource | None = None
    gpu_use: GpuUseSource | None = None
    node_models: NodeModelsSource | None = None
    hub: HubSource | None = None
    # Storage (spec 3.8): the users' PVCs, and the figures of volumes and home directories from Prometheus.
    claims: PodSource | None = None
    storage_figures: StorageFiguresSource | None = None


def build_pending(
    pods: list[dict[str, Any]], settings: CollectSettings, observed_at: datetime
) -> tuple[list[PendingPod], Counter[str]]:
    """The pending_pods rows of the pods not running; skips counted by reason (`pending_` prefixed)."""
    sources = parse_user_sources(settings.user_sources)
    rows: list[PendingPod] = []
    skipped: Counter[str] = Counter()
    seen: set[tuple[str | None, str | None, str]] = set()
    for pod in pods:
        outcome = pending_from_pod(
            pod,
            observed_at=observed_at,
            user_sources=sources,
            email_domain=settings.email_domain,
            cluster=settings.cluster,
        )
        if isinstance(outcome, PendingPod) and (outcome.cluster, outcome.namespace, outcome.pod_name) not in seen:
            seen.add((outcome.cluster, outcome.namespace, outcome.pod_name))
            rows.append(outcome)
            continue
        if isinstance(outcome, PendingPod):
            outcome = Skip(f"{outcome.namespace}/{outcome.pod_name}", "duplicate_pod", "listed twice in one run")
        skipped[f"pending_{outcome.reason}"] += 1
        log.warning("skipped pod %s (not running): %s (%s)", outcome.pod, outcome.reason, outcome.detail)
    return rows, skipped


def collect(
    settings: Settings, pod_source: PodSource, *, observed_at: datetime | None = None, sources: Sources = Sources()
) -> CollectionResult:
    """Runs one collection. On failure writes a failed run record (when the database is reachable) and raises."""
    with connect(settings.database) as conn:
        return collect_into(conn, settings, pod_source, observed_at=observed_at, sources=sources)


def optional(what: str, source: Callable[[], Any] | None) -> Any:
    """What an optional source says, or None: a cluster without the metrics API, a Prometheus that is down, nodes
    that may not be read cost the run those figures and one log line, never the run."""
    if source is None:
        return None
    try:
        return source()
    except LoaderError as error:
        log.warning("no %s in this run: %s", what, error)
    except Exception as error:
        log.warning("no %s in this run: %s", what, one_line_failure(f"reading {what}", error))
    return None


def metrics_from_file(path: Path) -> MetricsSource:
    """`kubectl get --raw /apis/metrics.k8s.io/v1beta1/pods` output, for replays."""

    def read() -> PodUse:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise LoaderError(f"cannot read pod metrics {path}: {error.strerror}") from None
        except (ValueError, RecursionError):
            raise LoaderError(
                f"pod metrics {path} is not JSON; pass `kubectl get --raw {METRICS_PATH}` output"
            ) from None
        use, malformed = pod_use_from_metrics(document)
        if malformed:
            log.warning("skipped %d malformed pod metrics in %s", malformed, path)
        return use

    return read


def with_gpus(rows: list[Observation], observed_at: datetime, sources: Sources) -> tuple[list[Observation], int, int]:
    """The rows with their GPUs' figures; how many rows have GPUs, and how many of them Prometheus measured."""
    gpu_pods = {(row.namespace or "", row.pod_name) for row in rows if row.gpu_count}
    if not gpu_pods:
        return rows, 0, 0
    gpu_source = sources.gpu_use
    use = optional("GPU use", (lambda: gpu_source(observed_at, gpu_pods)) if gpu_source else None)
    unnamed = any(
        row.gpu_count and not (use or {}).get((row.namespace or "", row.pod_name), GpuUse()).model for row in rows
    )
    models = optional("GPU models from nodes", sources.node_models) if unnamed else None
    measured = sum(figure.utilization is not None for figure in (use or {}).values())
    return with_gpu_use(rows, use, models), len(gpu_pods), measured


def node_models_from_file(path: Path) -> NodeModelsSource:
    """`kubectl get nodes -o json` output, for replays: node name -> nvidia.com/gpu.product."""

    def read() -> dict[str, str]:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise LoaderError(f"cannot read node list {path}: {error.strerror}") from None
        except (ValueError, RecursionError):
            raise LoaderError(f"node list {path} is not JSON; pass `kubectl get nodes -o json` output") from None
        return node_models(document)

    return read


def storage_of(
    running: list[Any], settings: CollectSettings, observed_at: datetime, sources: Sources
) -> tuple[StorageWrite, Counter[str]]:
    """The names the pods and PVCs show, and the storage rows where anything of storage was read: the PVCs and
    the figures are each optional (a Role without PVCs, a Prometheus that is down cost those figures, never the run);
    skips counted by reason, each reason logged once."""
    user_sources = parse_user_sources(settings.user_sources)
    listed = optional("per-user volumes", sources.claims)
    figures_source = sources.storage_figures
    figures = optional("storage figures", (lambda: figures_source(observed_at)) if figures_source else None)
    skipped: Counter[str] = Counter()
    claims = None
    if listed is not None:
        claims = []
        for pvc in listed:
            outcome = claim_from_pvc(pvc, user_sources=user_sources, email_domain=settings.email_domain)
            if isinstance(outcome, Skip):
                skipped[outcome.reason] += 1
                log.warning("skipped volume %s: %s (%s)", outcome.pod, outcome.reason, outcome.detail)
            else:
                claims.append(outcome)
    if figures is not None:
        skipped.update(figures[2])
        for reason, count in sorted(figures[2].items()):
            log.warning("skipped %d storage series from Prometheus: %s", count, reason)
    # A PVC's names are those its claim already holds (read once, not parsed again).
    shown = names_shown(running, user_sources=user_sources, email_domain=settings.email_domain) | {
        NameShown(claim.user_email, claim.hub_username, claim.escaped_name)
        for claim in claims or []
        if claim.user_email and claim.hub_username and claim.escaped_name
    }
    if listed is None and figures is None:
        return StorageWrite(frozenset(shown), None), skipped
    snapshot = StorageSnapshot(
        claims=claims,
        volume_figures=figures[0] if figures else None,
        directory_figures=figures[1] if figures else None,
    )
    return StorageWrite(frozenset(shown), storage_rows(snapshot, settings.cluster)), skipped


def storage_due(conn: psycopg.Connection, settings: Settings, observed_at: datetime) -> bool:
    """Storage changes slowly: it is read at the first collection of each period of COLLECT_STORAGE_EVERY_MINUTES
    (periods aligned to UTC midnight, so every day has a reading from its first collection), else only the names the
    pods show are recorded."""
    every = settings.collect.storage_every_minutes * 60
    if not every:
        return True
    latest = last_storage_reading(conn, settings.raw_schema, settings.collect.cluster)
    conn.rollback()  # the read leaves no transaction open before the collection's own
    return latest is None or int(latest.timestamp()) // every != int(observed_at.timestamp()) // every


def collect_into(
    conn: psycopg.Connection,
    settings: Settings,
    pod_source: PodSource,
    *,
    observed_at: datetime | None = None,
    sources: Sources = Sources(),
) -> CollectionResult:
    started_at = datetime.now(UTC)
    observed_at = observed_at or started_at
    run = RunRecord(
        kind=RunKind.COLLECT, started_at=started_at, cluster=settings.collect.cluster, observed_at=observed_at
    )
    try:
        pods = pod_source()
        waiting = [pod for pod in pods if isinstance(pod, dict) and is_not_running(pod)]
        running = [pod for pod in pods if not (isinstance(pod, dict) and is_not_running(pod))]
        run.pods_listed = len(running)
        rows, skipped = build_rows(running, settings.collect, observed_at, optional("measured use", sources.metrics))
        rows, gpu_pods, gpu_pods_measured = with_gpus(rows, observed_at, sources)
        pending, pending_skipped = build_pending(waiting, settings.collect, observed_at)
        hub = optional("view of the hub", sources.hub)
        if hub is not None:
            for reason, count in sorted(hub.skipped.items()):
                log.warning("skipped %d %s", count, reason)
        storage_sources = sources if storage_due(conn, settings, observed_at) else Sources()
        storage, storage_skipped = storage_of(running, settings.collect, observed_at, storage_sources)
        run.skip_reasons = dict(skipped + pending_skipped + storage_skipped)
        run_id = record_collection(conn, settings.raw_schema, run, rows, pending, hub, storage)
    except Exception as error:  # every run that starts leaves a run record, whatever ended it
        if isinstance(error, LoaderError):
            message = str(error)
        elif isinstance(error, psycopg.Error):
            message = _database_failure(error)
        else:
            message = one_line_failure("collection", error)
        run.error = message
        run.rows_recorded = run.rows_already_recorded = 0
        _record_failure(conn, settings.raw_schema, run)
        if isinstance(error, LoaderError):
            raise
        raise LoaderError(message) from error
    return CollectionResult(
        run_id=run_id,
        observed_at=observed_at,
        pods_listed=run.pods_listed,
        rows_recorded=run.rows_recorded,
        rows_already_recorded=run.rows_already_recorded,
        skip_reasons=dict(run.skip_reasons),
        gpu_pods=gpu_pods,
        gpu_pods_measured=gpu_pods_measured,
        pending_pods=run.pending_pods_recorded,
        hub_servers=run.hub_servers_listed,
        hub_memberships_recorded=run.hub_memberships_recorded,
        storage_volumes=run.storage_volumes_listed,
        storage_rows_written=run.storage_rows_written,
    )


def _database_failure(error: psycopg.Error) -> str:
    detail = (getattr(error.diag, "message_primary", None) or str(error)).strip().splitlines()[0]
    schema_missing = (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedColumn)
    hint = "run `jupyterhub-metrics db migrate` first" if isinstance(error, schema_missing) else "check the database"
    return f"writing the collection failed and nothing was written: {detail}; {hint}"


def _record_failure(conn: psycopg.Connection, schema: str, run: RunRecord) -> None:
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        record_failed_run(conn, schema, run)
    except psycopg.Error as error:
        log.error("could not record the failed run either: %s", str(error).strip().splitlines()[0])
