"""What the GPU did, per pod: dcgm-exporter's series as Prometheus answers them, turned into one figure per pod (spec
3.5). Pure functions on plain dicts, tested without a network; the queries themselves are in prometheus_source.

dcgm-exporter labels each GPU's series with `gpu`, `UUID`, `device`, `modelName`, `Hostname` and, where the kubelet
says which pod holds the GPU, `namespace`, `pod` and `container`. A Prometheus that scrapes it with
`honor_labels: false` renames those three to `exported_namespace`, `exported_pod` and `exported_container` (its own
`namespace` and `pod` then name the exporter): the exported ones win. A series with an empty pod label belongs to no
pod. A pod with two GPUs has two series of each metric: its utilisation is their mean, its memory their sum.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from loader.pods import MAX_BYTES, Malformed, Observation, clean_text

log = logging.getLogger(__name__)

ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"  # a ratio, 0..1: the profiling metric OpenCost and Kubecost use
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # a percentage, 0..100: where a GPU has no profiling metric (some H100/H200)
FB_USED = "DCGM_FI_DEV_FB_USED"  # framebuffer memory used, MiB
METRICS = (ENGINE_ACTIVE, GPU_UTIL, FB_USED)
MIB = 2**20
# The node label GPU feature discovery sets, where DCGM gives no model.
NODE_PRODUCT_LABEL = "nvidia.com/gpu.product"

PodKey = tuple[str, str]  # (namespace, pod)


@dataclass(frozen=True)
class GpuUse:
    """A pod's GPUs at one collection; None where unknown."""

    utilization: Decimal | None = None
    memory_used_bytes: int | None = None
    model: str | None = None


@dataclass
class GpuReading:
    """Per pod, per GPU: the figures of the three metrics."""

    engine_active: dict[str, Decimal]
    gpu_util: dict[str, Decimal]
    memory_mib: dict[str, Decimal]
    models: Counter[str]


def _owner(labels: Mapping[str, Any]) -> PodKey | None:
    """The pod that holds the GPU: exported_* where Prometheus renamed the labels, else namespace/pod."""
    for namespace_label, pod_label in (("exported_namespace", "exported_pod"), ("namespace", "pod")):
        pod = labels.get(pod_label)
        if isinstance(pod, str) and pod:
            namespace = labels.get(namespace_label)
            return (namespace if isinstance(namespace, str) else "", pod)
    return None


def _gpu_id(labels: Mapping[str, Any]) -> str:
    uuid = labels.get("UUID")
    if isinstance(uuid, str) and uuid:
        return uuid
    return f"{labels.get('Hostname', '')}/{labels.get('gpu', labels.get('device', ''))}"


def _value(sample: Any, metric: str) -> Decimal:
    """A sample's value as Prometheus sends it (`[time, "text"]`), checked against what the metric can be."""
    if not (isinstance(sample, list) and len(sample) == 2 and isinstance(sample[1], str)):
        raise Malformed(metric, "a sample is not [time, value]")
    try:
        value = Decimal(sample[1])
    except InvalidOperation:
        raise Malformed(metric, f"{sample[1][:20]!r} is not a number") from None
    if not value.is_finite():
        raise Malformed(metric, f"{sample[1]} is not a finite value")
    if value < 0:
        raise Malformed(metric, f"{value} is negative")
    if metric == ENGINE_ACTIVE and value > 1:
        raise Malformed(metric, f"{value} is not a ratio (0..1); a percentage where a ratio was expected?")
    if metric == GPU_UTIL and value > 100:
        raise Malformed(metric, f"{value} is not a percentage (0..100)")
    if metric == FB_USED and value * MIB > MAX_BYTES:
        raise Malformed(metric, f"{value} MiB is more than a bigint holds")
    return value


def readings_from_answers(answers: Mapping[str, Any]) -> tuple[dict[PodKey, GpuReading], Counter[str]]:
    """Each metric's Prometheus answer (`/api/v1/query`, resultType vector) by pod and GPU, and the series skipped
    by reason (malformed answers, values a metric cannot have; series of no pod are not counted: they are idle
    GPUs, not errors)."""
    readings: dict[PodKey, GpuReading] = defaultdict(lambda: GpuReading({}, {}, {}, Counter()))
    skipped: Counter[str] = Counter()
    for metric, answer in answers.items():
        data = answer.get("data") if isinstance(answer, Mapping) else None
        result = data.get("result") if isinstance(data, Mapping) else None
        if not (isinstance(answer, Mapping) and answer.get("status") == "success" and isinstance(result, list)):
            skipped[f"{metric}: not a successful vector answer"] += 1
            continue
        for series in result:
            labels = series.get("metric") if isinstance(series, Mapping) else None
            if not isinstance(labels, Mapping):
                skipped[f"{metric}: a series without labels"] += 1
                continue
            owner = _owner(labels)
            if owner is None:
                continue
            try:
                key = (clean_text(owner[0], "namespace", "namespace"), clean_text(owner[1], "pod", "name"))
                model = labels.get("modelName")
                model = clean_text(model, "modelName", "gpu_model").strip() if model else None
            except Malformed as problem:
                skipped[f"{metric}: {problem}"] += 1
                continue
            reading = readings[key]
            if model:  # the series names its GPU whatever its value
                reading.models[model] += 1
            try:
                value = _value(series.get("value"), metric)
            except Malformed as problem:
                skipped[f"{metric}: {problem}"] += 1
                continue
            values = {ENGINE_ACTIVE: reading.engine_active, GPU_UTIL: reading.gpu_util, FB_USED: reading.memory_mib}
            values.get(metric, {})[_gpu_id(labels)] = value
    return dict(readings), skipped


def gpu_use(reading: GpuReading) -> GpuUse:
    """One pod's figure: per GPU the profiling ratio, else the utilisation percentage / 100; their mean; the memory
    of its GPUs summed; the model its series name most."""
    gpus = set(reading.engine_active) | set(reading.gpu_util)
    ratios = [reading.engine_active.get(gpu, reading.gpu_util.get(gpu, Decimal(0)) / 100) for gpu in sorted(gpus)]
    utilization = sum(ratios, Decimal(0)) / len(ratios) if ratios else None
    memory = int(sum(reading.memory_mib.values(), Decimal(0)) * MIB) if reading.memory_mib else None
    model = min(reading.models, key=lambda name: (-reading.models[name], name)) if reading.models else None
    return GpuUse(utilization=utilization, memory_used_bytes=memory, model=model)


def gpu_use_by_pod(answers: Mapping[str, Any]) -> tuple[dict[PodKey, GpuUse], Counter[str]]:
    readings, skipped = readings_from_answers(answers)
    return {key: gpu_use(reading) for key, reading in readings.items()}, skipped


def answers_from_document(document: Any) -> dict[str, Any]:
    """A replay file (`--gpu-metrics-from-file`): either an object of answers by metric name, or one Prometheus answer
    whose series carry `__name__` (as `curl .../api/v1/query?query={__name__=~"DCGM_FI_..."}` prints), split by
    metric. Anything else is not a replay of GPU metrics (ValueError)."""
    if isinstance(document, Mapping) and set(document) & set(METRICS):
        return {metric: document[metric] for metric in METRICS if metric in document}
    data = document.get("data") if isinstance(document, Mapping) else None
    result = data.get("result") if isinstance(data, Mapping) else None
    if not isinstance(result, list):
        raise ValueError("neither a Prometheus query answer nor answers by metric name")
    by_metric: dict[str, list[Any]] = defaultdict(list)
    for series in result:
        name = series.get("metric", {}).get("__name__") if isinstance(series, Mapping) else None
        if name in METRICS:
            by_metric[name].append(series)
    return {
        metric: {"status": document.get("status"), "data": {"resultType": "vector", "result": series}}
        for metric, series in by_metric.items()
    }


def node_models(document: Any) -> dict[str, str]:
    """Node name -> GPU model, from the nodes' nvidia.com/gpu.product label (`kubectl get nodes -o json`)."""
    items = document.get("items") if isinstance(document, Mapping) else None
    models = {}
    for node in items if isinstance(items, list) else []:
        metadata = node.get("metadata") if isinstance(node, Mapping) else None
        labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        product = labels.get(NODE_PRODUCT_LABEL) if isinstance(labels, Mapping) else None
        if isinstance(name, str) and isinstance(product, str) and product.strip():
            try:
                models[name] = clean_text(product, NODE_PRODUCT_LABEL, "gpu_model").strip()
            except Malformed:
                continue
    return models


def with_gpu_use(
    rows: Iterable[Observation], use: Mapping[PodKey, GpuUse] | None, models: Mapping[str, str] | None
) -> list[Observation]:
    """The rows of pods given GPUs, with what their GPUs did: DCGM's figures where Prometheus had them, the node's
    GPU model where DCGM named none. Rows of pods without GPUs are left as they are."""
    result = []
    for row in rows:
        if not row.gpu_count:
            result.append(row)
            continue
        found = (use or {}).get((row.namespace or "", row.pod_name), GpuUse())
        model = found.model or (models or {}).get(row.node_name)
        result.append(
            replace(
                row,
                gpu_utilization=found.utilization,
                gpu_memory_used_bytes=found.memory_used_bytes,
                gpu_model=model,
            )
        )
    return result
