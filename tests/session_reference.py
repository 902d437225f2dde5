"""An independent reference of the session rules (spec 4), in plain Python: not the models' SQL, so a mistake there
shows up as a difference. Takes observations as the raw tables hold them (with their collector run ids) and gives
every column of user_sessions and of session_days' day parts."""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from loader.pods import Observation

GAP = timedelta(minutes=60)
IDLE_CPU_CORES = Decimal("0.05")
IDLE_GPU_UTILIZATION = Decimal("0.05")
GPU_CLASSES = ("v100", "a100", "h100", "h200")


@dataclass(frozen=True)
class Rules:
    gap: timedelta = GAP
    idle_cpu_cores: Decimal = IDLE_CPU_CORES
    idle_gpu_utilization: Decimal = IDLE_GPU_UTILIZATION
    cpu_node_pattern: str = "cpu"


@dataclass(frozen=True)
class Row:
    """An observation as the session models read it (staged: server_name '' and container_version 'latest' where
    unknown), with the run that wrote it and what the hub said of its server at that run."""

    observation: Observation
    run_id: int | None
    hub_last_activity: datetime | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.observation, name)


def key_of(row: Row) -> tuple:
    return (row.cluster, row.namespace, row.user_email, row.pod_name, row.node_name)


def seconds(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / Decimal(10**6)


def hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600.0


def split_sessions(rows: Iterable[Row], rules: Rules) -> list[list[Row]]:
    by_key: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        by_key[key_of(row)].append(row)
    sessions = []
    for key_rows in by_key.values():
        key_rows.sort(key=lambda row: row.timestamp)
        current: list[Row] = []
        for row in key_rows:
            if current:
                previous = current[-1]
                uids = (row.pod_uid, previous.pod_uid)
                uid_changed = None not in uids and uids[0] != uids[1]
                if row.timestamp - previous.timestamp > rules.gap or uid_changed:
                    sessions.append(current)
                    current = []
            current.append(row)
        sessions.append(current)
    return sessions


def idle(before: Decimal | None, after: Decimal | None, length: timedelta, below: Decimal) -> Decimal | None:
    """The idle rule for a stretch (or a part of one)."""
    if before is None or after is None:
        return None
    return seconds(length) if before < below and after < below else Decimal(0)


def known_sum(values: Iterable[Decimal | None]) -> Decimal | None:
    known = [value for value in values if value is not None]
    return sum(known, Decimal(0)) if known else None


def known_max(values: Iterable[Any]) -> Any:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def mode(values: Iterable[Any]) -> Any:
    counts = Counter(value for value in values if value is not None)
    if not counts:
        return None
    most = max(counts.values())
    return min(value for value, count in counts.items() if count == most)


def last_known(values: Sequence[Any]) -> Any:
    return next((value for value in reversed(values) if value is not None), None)


def node_type(gpu_count: int | None, node_name: str, rules: Rules) -> str:
    if gpu_count is not None:
        return "gpu" if gpu_count > 0 else "cpu"
    return "cpu" if rules.cpu_node_pattern.lower() in node_name.lower() else "gpu"


def session_id(row: Row, start: datetime) -> str:
    parts = [row.user_email, row.pod_name, row.node_name, start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")]
    for name, value in (("cluster", row.cluster), ("namespace", row.namespace)):
        if value is not None:  # concat_ws skips nulls
            parts.append(f"{name}={value}")
    return hashlib.md5("|".join(parts).encode()).hexdigest()


def times(value: Any, factor: float | Decimal | None) -> Any:
    return None if value is None or factor is None else value * factor


def model_label(model: str | None, node_name: str) -> str:
    if model is not None:
        return model
    return next((f"{cls.upper()} (node name)" for cls in GPU_CLASSES if cls in node_name.lower()), "unknown")


def advanced(before: datetime | None, after: datetime | None, length: timedelta) -> Decimal | None:
    """The activity rule for a stretch: active when the hub's last activity advanced across it."""
    if before is None or after is None:
        return None
    return seconds(length) if after > before else Decimal(0)


def start_seconds(
    start: datetime, ready: datetime | None, begin: datetime | None, end: datetime | None, gap: timedelta
):
    """Seconds between two moments of the pod's start, for the session that began with it."""
    if ready is None or begin is None or end is None or start > ready + gap or end < begin:
        return None
    return seconds(end - begin)


def session_row(session: list[Row], rules: Rules) -> dict[str, Any]:
    first, last = session[0], session[-1]
    start, end = first.timestamp, last.timestamp
    runtime = hours(end - start)
    cpu = [row.cpu_usage_cores for row in session]
    measured = sum(value is not None for value in cpu)
    cpu_sum = known_sum(cpu)
    average = cpu_sum / measured if measured else None
    stretches = [
        idle(before.cpu_usage_cores, after.cpu_usage_cores, after.timestamp - before.timestamp, rules.idle_cpu_cores)
        for before, after in zip(session, session[1:], strict=False)
    ]
    idle_seconds = known_sum(stretches)
    gpu = [row.gpu_utilization for row in session]
    gpu_measured = sum(value is not None for value in gpu)
    gpu_sum = known_sum(gpu)
    gpu_average = gpu_sum / gpu_measured if gpu_measured else None
    gpu_idle_seconds = known_sum(
        idle(
            before.gpu_utilization,
            after.gpu_utilization,
            after.timestamp - before.timestamp,
            rules.idle_gpu_utilization,
        )
        for before, after in zip(session, session[1:], strict=False)
    )
    signal = "gpu" if gpu_measured else "cpu" if measured else None
    hub_measured = sum(row.hub_last_activity is not None for row in session)
    active_seconds = known_sum(
        advanced(before.hub_last_activity, after.hub_last_activity, after.timestamp - before.timestamp)
        for before, after in zip(session, session[1:], strict=False)
    )
    created = min((row.pod_created_at for row in session if row.pod_created_at), default=None)
    scheduled = min((row.scheduled_at for row in session if row.scheduled_at), default=None)
    ready = min((row.ready_at for row in session if row.ready_at), default=None)
    gpu_count = known_max(row.gpu_count for row in session)
    kind = node_type(gpu_count, first.node_name, rules)
    cpu_request = known_max(row.cpu_request for row in session)
    return {
        "session_id": session_id(first, start),
        "cluster": first.cluster,
        "namespace": first.namespace,
        "user_email": first.user_email,
        "pod_name": first.pod_name,
        "node_name": first.node_name,
        "session_start": start,
        "session_end": end,
        "user_name": last_known([row.user_name for row in session]),
        "server_name": last.server_name or "",
        "pod_uid": last_known([row.pod_uid for row in session]),
        "node_type": kind,
        "runtime_hours": runtime,
        "gpu_hours": runtime if kind == "gpu" else 0.0,
        "cpu_hours": runtime if kind == "cpu" else 0.0,
        "gpu_device_hours": times(gpu_count, runtime),
        "container_base": mode(row.container_base for row in session),
        "container_version": mode(row.container_version or "latest" for row in session),
        "gpu_count": gpu_count,
        "cpu_request_cores": cpu_request,
        "memory_request_bytes": known_max(row.memory_request_bytes for row in session),
        "observation_count": len(session),
        "measured_observation_count": measured,
        "cpu_usage_cores_sum": cpu_sum,
        "avg_cpu_usage_cores": average,
        "cpu_requested_core_hours": times(cpu_request, Decimal(repr(runtime))),
        "cpu_used_core_hours": times(average, Decimal(repr(runtime))),
        # Counted in CPU efficiency only where both are known (and something was requested).
        "efficiency_cpu_used_core_hours": times(average, Decimal(repr(runtime))) if measured and cpu_request else None,
        "efficiency_cpu_requested_core_hours": times(cpu_request, Decimal(repr(runtime)))
        if measured and cpu_request
        else None,
        "max_memory_usage_bytes": known_max(row.memory_usage_bytes for row in session),
        "idle_seconds": idle_seconds,
        "idle_hours": float((idle_seconds or 0) / 3600) if measured else None,
        "gpu_model": mode(row.gpu_model for row in session),
        "gpu_model_label": model_label(mode(row.gpu_model for row in session), first.node_name)
        if kind == "gpu"
        else None,
        "gpu_measured_observation_count": gpu_measured,
        "gpu_utilization_sum": gpu_sum,
        "avg_gpu_utilization": gpu_average,
        "max_gpu_memory_used_bytes": known_max(row.gpu_memory_used_bytes for row in session),
        "gpu_idle_seconds": gpu_idle_seconds,
        "gpu_idle_hours": float((gpu_idle_seconds or 0) / 3600) if gpu_measured else None,
        "idle_signal": signal,
        "idle_gpu_hours": (
            float(((gpu_idle_seconds if signal == "gpu" else idle_seconds) or 0) / 3600)
            if signal and kind == "gpu"
            else None
        ),
        "efficiency_gpu_used_device_hours": (
            gpu_average * gpu_count * Decimal(repr(runtime)) if gpu_measured and gpu_count else None
        ),
        "efficiency_gpu_held_device_hours": gpu_count * Decimal(repr(runtime)) if gpu_measured and gpu_count else None,
        "last_collector_run_id": known_max(row.run_id for row in session),
        "last_cpu_usage_cores": last.cpu_usage_cores,
        "last_gpu_utilization": last.gpu_utilization,
        "last_hub_last_activity": last.hub_last_activity,
        "pod_created_at": created,
        "scheduled_at": scheduled,
        "ready_at": ready,
        "startup_seconds": start_seconds(start, ready, created, ready, rules.gap),
        "scheduling_seconds": start_seconds(start, ready, created, scheduled, rules.gap),
        "start_seconds": start_seconds(start, ready, scheduled, ready, rules.gap),
        "hub_observation_count": hub_measured,
        "active_seconds": active_seconds,
        "active_hours": float((active_seconds or 0) / 3600) if hub_measured else None,
    }


def utc_midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time(0), tzinfo=moment.tzinfo)


def day_parts(session: list[Row], rules: Rules) -> list[dict[str, Any]]:
    """The session cut at UTC midnight: per day, its first and last moment, observations and idle seconds."""
    start = session[0].timestamp
    parts: dict[Any, dict[str, Any]] = {}

    def part(day) -> dict[str, Any]:
        return parts.setdefault(
            day,
            {"part_start": None, "part_end": None, "observation_count": 0, "idle": [], "gpu_idle": [], "active": []}
            | {"runs": []},
        )

    def widen(entry: dict[str, Any], begin: datetime, end: datetime) -> None:
        entry["part_start"] = begin if entry["part_start"] is None else min(entry["part_start"], begin)
        entry["part_end"] = end if entry["part_end"] is None else max(entry["part_end"], end)

    for row in session:
        entry = part(row.timestamp.date())
        widen(entry, row.timestamp, row.timestamp)
        entry["observation_count"] += 1
        entry["runs"].append(row.run_id)
    for before, after in zip(session, session[1:], strict=False):
        midnight = utc_midnight(before.timestamp)
        while midnight <= after.timestamp:
            begin, end = max(before.timestamp, midnight), min(after.timestamp, midnight + timedelta(days=1))
            entry = part(midnight.date())
            widen(entry, begin, end)
            entry["idle"].append(idle(before.cpu_usage_cores, after.cpu_usage_cores, end - begin, rules.idle_cpu_cores))
            entry["gpu_idle"].append(
                idle(before.gpu_utilization, after.gpu_utilization, end - begin, rules.idle_gpu_utilization)
            )
            entry["active"].append(advanced(before.hub_last_activity, after.hub_last_activity, end - begin))
            entry["runs"].append(after.run_id)
            midnight += timedelta(days=1)
    first = session[0]
    return [
        {
            "session_id": session_id(first, start),
            "cluster": first.cluster,
            "namespace": first.namespace,
            "user_email": first.user_email,
            "pod_name": first.pod_name,
            "node_name": first.node_name,
            "session_start": start,
            "day": day,
            "part_start": entry["part_start"],
            "part_end": entry["part_end"],
            "observation_count": entry["observation_count"],
            "idle_seconds": known_sum(entry["idle"]),
            "gpu_idle_seconds": known_sum(entry["gpu_idle"]),
            "active_seconds": known_sum(entry["active"]),
            "last_collector_run_id": known_max(entry["runs"]),
        }
        for day, entry in sorted(parts.items())
    ]


def reference(rows: Iterable[Row], rules: Rules = Rules()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sessions, day parts) for the rows."""
    sessions = split_sessions(rows, rules)
    return [session_row(session, rules) for session in sessions], [
        part for session in sessions for part in day_parts(session, rules)
    ]


def differences(actual: Iterable[Mapping[str, Any]], expected: Iterable[Mapping[str, Any]], key: Sequence[str]) -> list:
    """Where the rows differ, keyed by `key`: rows missing on either side, and per column values that differ (numbers
    within 1e-9, relative or absolute: hours are double precision, conversions to numeric round)."""
    found = {tuple(row[name] for name in key): row for row in actual}
    wanted = {tuple(row[name] for name in key): row for row in expected}
    problems: list = [("missing", k) for k in wanted.keys() - found.keys()]
    problems += [("unexpected", k) for k in found.keys() - wanted.keys()]
    for k in wanted.keys() & found.keys():
        for name, value in wanted[k].items():
            other = found[k][name]
            if isinstance(value, (int, float, Decimal)) and isinstance(other, (int, float, Decimal)):
                if not math.isclose(float(value), float(other), rel_tol=1e-9, abs_tol=1e-9):
                    problems.append((k, name, other, value))
            elif value != other:
                problems.append((k, name, other, value))
    return problems
