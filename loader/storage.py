"""What people keep (spec 3.8), as rows: KubeSpawner's per-user PVCs with kubelet's volume figures, and a shared home
volume's directories with prometheus-dirsize-exporter's. Pure functions of API objects and Prometheus answers; the
owner of a directory is matched in the database, through the names pods have shown (raw.hub_names_seen)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loader.pods import (
    MAX_BYTES,
    SERVERNAME_ANNOTATION,
    USERNAME_KEY,
    Malformed,
    Skip,
    UserSource,
    clean_text,
    hub_username,
    notebook_container,
    parse_memory,
    resolve_identity,
)

VOLUME, DIRECTORY = "volume", "directory"
# KubeSpawner labels the PVCs it makes for users so (z2jh's singleuser.storage.type: dynamic).
CLAIM_SELECTOR = "component=singleuser-storage"

# kubelet's figures of a mounted volume (labels namespace, persistentvolumeclaim).
VOLUME_USED = "kubelet_volume_stats_used_bytes"
VOLUME_CAPACITY = "kubelet_volume_stats_capacity_bytes"
VOLUME_INODES = "kubelet_volume_stats_inodes_used"
VOLUME_METRICS = (VOLUME_USED, VOLUME_CAPACITY, VOLUME_INODES)
# prometheus-dirsize-exporter's figures of each directory of a shared home volume (label directory).
DIRECTORY_SIZE = "dirsize_total_size_bytes"
DIRECTORY_MTIME = "dirsize_latest_mtime"
DIRECTORY_ENTRIES = "dirsize_entries_count"
DIRECTORY_LIMIT = "dirsize_hard_limit_bytes"
DIRECTORY_METRICS = (DIRECTORY_SIZE, DIRECTORY_MTIME, DIRECTORY_ENTRIES, DIRECTORY_LIMIT)


@dataclass(frozen=True)
class Claim:
    """A user's PVC as KubeSpawner makes it."""

    namespace: str
    name: str
    hub_username: str | None
    escaped_name: str | None
    server_name: str | None
    user_email: str | None
    capacity_bytes: int | None


@dataclass(frozen=True)
class Figures:
    used_bytes: int | None = None
    capacity_bytes: int | None = None
    quota_bytes: int | None = None
    file_count: int | None = None
    last_modified_at: datetime | None = None


@dataclass(frozen=True)
class StorageRow:
    """A volume's or directory's figures at one collection (raw.storage_observations keeps one row per day)."""

    layout: str
    cluster: str | None
    namespace: str | None
    volume_name: str
    owner_name: str | None
    user_email: str | None
    server_name: str | None
    used_bytes: int | None
    capacity_bytes: int | None
    quota_bytes: int | None
    file_count: int | None
    last_modified_at: datetime | None


STORAGE_COLUMNS = list(StorageRow.__dataclass_fields__)


@dataclass(frozen=True)
class StorageSnapshot:
    """What one collection read: claims (None: not listed), volume and directory figures (None: Prometheus not
    read or failed)."""

    claims: list[Claim] | None
    volume_figures: dict[tuple[str, str], Figures] | None
    directory_figures: dict[tuple[str | None, str], Figures] | None


@dataclass(frozen=True)
class NameShown:
    user_email: str
    hub_username: str
    escaped_name: str


def _metadata(item: Any) -> Mapping[str, Any]:
    if not isinstance(item, Mapping) or not isinstance(item.get("metadata"), Mapping):
        raise Malformed("metadata", "expected an object with metadata")
    return item["metadata"]


def claim_from_pvc(pvc: Any, *, user_sources: Iterable[UserSource], email_domain: str | None) -> Claim | Skip:
    """A PVC of KubeSpawner's: its owner by the hub.jupyter.org/username annotation (unescaped) or label (escaped),
    its email by the identity rules where they can be read off a PVC (annotations and labels, not env)."""
    try:
        metadata = _metadata(pvc)
        name = clean_text(metadata.get("name"), "metadata.name", "name")
        namespace = clean_text(metadata.get("namespace") or "default", "metadata.namespace", "namespace")
        annotations = metadata.get("annotations") or {}
        labels = metadata.get("labels") or {}
        if not isinstance(annotations, Mapping) or not isinstance(labels, Mapping):
            raise Malformed("metadata", "annotations and labels must be objects")
        hub_username = annotations.get(USERNAME_KEY)
        escaped = labels.get(USERNAME_KEY)
        if not hub_username and not escaped:
            return Skip(f"{namespace}/{name}", "storage_no_owner", f"no {USERNAME_KEY} annotation or label")
        status = pvc.get("status") if isinstance(pvc.get("status"), Mapping) else {}
        spec = pvc.get("spec") if isinstance(pvc.get("spec"), Mapping) else {}
        capacity = (status.get("capacity") or {}).get("storage") or (
            (spec.get("resources") or {}).get("requests") or {}
        ).get("storage")
        capacity_bytes = parse_memory(capacity, "status.capacity.storage")
        readable = [source for source in user_sources if source.kind != "env"]
        return Claim(
            namespace=namespace,
            name=name,
            hub_username=clean_text(hub_username, "annotation username", "identity") if hub_username else None,
            escaped_name=clean_text(escaped, "label username", "identity") if escaped else None,
            server_name=clean_text(annotations.get(SERVERNAME_ANNOTATION) or "", "annotation servername", "server_name")
            or None,
            user_email=resolve_identity(pvc, None, readable, email_domain),
            capacity_bytes=capacity_bytes or None,
        )
    except (Malformed, AttributeError, TypeError) as error:
        return Skip(str(_name_for_log(pvc)), "storage_malformed_claim", str(error)[:200])


def _name_for_log(item: Any) -> str:
    metadata = item.get("metadata") if isinstance(item, Mapping) else None
    if isinstance(metadata, Mapping):
        return f"{metadata.get('namespace')}/{metadata.get('name')}"
    return "?"


def _sample(series: Any) -> tuple[Mapping[str, str], float] | None:
    if not isinstance(series, Mapping) or not isinstance(series.get("metric"), Mapping):
        return None
    value = series.get("value")
    if not isinstance(value, list) or len(value) != 2:
        return None
    try:
        return series["metric"], float(value[1])
    except (TypeError, ValueError):
        return None


def _results(answer: Any) -> list[Any]:
    data = answer.get("data") if isinstance(answer, Mapping) else None
    result = data.get("result") if isinstance(data, Mapping) else None
    return result if isinstance(result, list) else []


def _amount(value: float) -> int | None:
    """A count or byte figure: finite, not negative, within a bigint; else None (a skip)."""
    if not math.isfinite(value) or value < 0 or value > MAX_BYTES:
        return None
    return int(value)


def _figures_by(
    answers: Mapping[str, Any], fields: Mapping[str, str], name_label: str, namespace_default: str | None
) -> tuple[dict[tuple[Any, str], Figures], Counter[str]]:
    """Each metric's series as one Figures field per (namespace, the `name_label` label); a series without that
    label is malformed, a value a figure cannot have (NaN, infinite, negative, beyond a bigint; 0 for a capacity or a
    limit) is skipped, each counted by reason."""
    found: dict[tuple[Any, str], dict[str, Any]] = {}
    skipped: Counter[str] = Counter()
    for metric, field in fields.items():
        for series in _results(answers.get(metric)):
            sample = _sample(series)
            name = sample[0].get(name_label) if sample else None
            if sample is None or not isinstance(name, str) or not name:
                skipped["storage_malformed_series"] += 1
                continue
            amount = _amount(sample[1])
            if amount is None or (field in ("capacity_bytes", "quota_bytes") and amount == 0):
                skipped["storage_bad_value"] += 1
                continue
            value: Any = datetime.fromtimestamp(amount, UTC) if field == "last_modified_at" else amount
            found.setdefault((sample[0].get("namespace") or namespace_default, name), {})[field] = value
    return {key: Figures(**values) for key, values in found.items()}, skipped


def volume_figures(answers: Mapping[str, Any]) -> tuple[dict[tuple[str, str], Figures], Counter[str]]:
    """kubelet's figures per (namespace, PVC name)."""
    fields = {VOLUME_USED: "used_bytes", VOLUME_CAPACITY: "capacity_bytes", VOLUME_INODES: "file_count"}
    return _figures_by(answers, fields, "persistentvolumeclaim", "default")


def directory_figures(answers: Mapping[str, Any]) -> tuple[dict[tuple[str | None, str], Figures], Counter[str]]:
    """prometheus-dirsize-exporter's figures per (exporter's namespace, directory)."""
    fields = {
        DIRECTORY_SIZE: "used_bytes",
        DIRECTORY_ENTRIES: "file_count",
        DIRECTORY_LIMIT: "quota_bytes",
        DIRECTORY_MTIME: "last_modified_at",
    }
    return _figures_by(answers, fields, "directory", None)


def storage_figures_of(
    answers: Mapping[str, Any],
) -> tuple[dict[tuple[str, str], Figures], dict[tuple[str | None, str], Figures], Counter[str]]:
    """Prometheus's answers (one per metric) as volume figures, directory figures and the skips of both."""
    volumes, volume_skips = volume_figures(answers)
    directories, directory_skips = directory_figures(answers)
    return volumes, directories, volume_skips + directory_skips


def storage_rows(snapshot: StorageSnapshot, cluster: str | None) -> list[StorageRow]:
    """One row per claim (with kubelet's figures where a pod mounts it: the capacity from the PVC otherwise) and per
    directory. Volume figures of PVCs that are not users' (a hub database's) are not rows; without the claims
    listed, no volume is (which PVC is whose is unknown)."""
    rows = []
    for claim in snapshot.claims or []:
        figures = (snapshot.volume_figures or {}).get((claim.namespace, claim.name), Figures())
        rows.append(
            StorageRow(
                layout=VOLUME,
                cluster=cluster,
                namespace=claim.namespace,
                volume_name=claim.name,
                owner_name=claim.hub_username or claim.escaped_name,
                user_email=claim.user_email,
                server_name=claim.server_name,
                used_bytes=figures.used_bytes,
                capacity_bytes=figures.capacity_bytes or claim.capacity_bytes,
                quota_bytes=None,
                file_count=figures.file_count,
                last_modified_at=None,
            )
        )
    for (namespace, directory), figures in sorted((snapshot.directory_figures or {}).items(), key=str):
        rows.append(
            StorageRow(
                layout=DIRECTORY,
                cluster=cluster,
                namespace=namespace,
                volume_name=directory,
                owner_name=directory,
                user_email=None,
                server_name=None,
                used_bytes=figures.used_bytes,
                capacity_bytes=None,
                quota_bytes=figures.quota_bytes,
                file_count=figures.file_count,
                last_modified_at=figures.last_modified_at,
            )
        )
    return rows


def names_shown(
    items: Iterable[Any], *, user_sources: Iterable[UserSource], email_domain: str | None
) -> set[NameShown]:
    """The (email, hub username, escaped name) each pod or PVC shows: the unescaped annotation (or the notebook's
    JUPYTERHUB_USER) beside the escaped label, the email by the identity rules. Items missing any of them show
    nothing."""
    sources = list(user_sources)
    shown = set()
    for item in items:
        try:
            labels = _metadata(item).get("labels") or {}
            escaped = labels.get(USERNAME_KEY) if isinstance(labels, Mapping) else None
            is_pod = isinstance(item.get("spec"), Mapping) and "containers" in item["spec"]
            container = notebook_container(item) if is_pod else None
            readable = sources if is_pod else [source for source in sources if source.kind != "env"]
            email = resolve_identity(item, container, readable, email_domain)
            username = hub_username(item, container)
        except (Malformed, AttributeError, TypeError):
            continue
        if email and username and escaped and isinstance(escaped, str):
            shown.add(NameShown(email, username, escaped))
    return shown
