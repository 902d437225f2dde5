"""Pure functions that turn a Kubernetes pod (as `kubectl get pods -o json` shows it) into an observation row.

No network, no database: every rule about reading a pod lives here and is tested on plain dicts. This is
also the boundary check: a pod is JSON anyone may shape (a hub user chooses their server name), so every
field is read with its expected type and every value is checked against what its column can hold. A pod
that fails is a Skip naming the field, never an exception: it must not cost the other pods their rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

USERNAME_KEY = "hub.jupyter.org/username"
SERVERNAME_ANNOTATION = "hub.jupyter.org/servername"
NOTEBOOK_CONTAINER = "notebook"
GPU_RESOURCE = re.compile(r"^(nvidia\.com/gpu|amd\.com/gpu|gpu\.intel\.com/.+)$")
USER_SOURCE_KINDS = ("annotation", "label", "env")

# What a column can hold, and what is sane: longer text would not fit a btree index row (identity,
# pod name), counts and quantities beyond these are typing accidents, not hardware.
MAX_TEXT = {
    "identity": 320,
    "name": 253,
    "namespace": 63,
    "uid": 128,
    "image": 1024,
    "server_name": 255,
    "person": 512,
    "gpu_model": 128,
    "reason": 128,
    "hub_name": 255,
}
MAX_GPUS = 1024
MAX_CPU_CORES = Decimal(100_000)
MAX_BYTES = 2**63 - 1  # bigint
MAX_AGE_SECONDS = 2**31 - 1  # integer
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)

Pod = Mapping[str, Any]


@dataclass(frozen=True)
class Observation:
    """One row of container_observations (without the run id, which the writer adds)."""

    timestamp: datetime
    user_email: str
    user_name: str
    node_name: str
    container_image: str
    container_base: str
    container_version: str
    age_seconds: int
    pod_name: str
    cluster: str | None
    namespace: str | None
    pod_uid: str | None
    server_name: str
    gpu_count: int | None
    cpu_request: Decimal | None
    memory_request_bytes: int | None
    pod_started_at: datetime | None
    # The notebook container's measured use (metrics API); None where unknown.
    cpu_usage_cores: Decimal | None = None
    memory_usage_bytes: int | None = None
    # What the pod's GPUs did (dcgm-exporter through Prometheus, loader.gpu); None where unknown.
    gpu_utilization: Decimal | None = None
    gpu_memory_used_bytes: int | None = None
    gpu_model: str | None = None
    # The pod's start (spec 3.6): created, scheduled (condition PodScheduled), ready (condition Ready).
    pod_created_at: datetime | None = None
    scheduled_at: datetime | None = None
    ready_at: datetime | None = None
    # Not a column of container_observations: collection keeps users.user_id current with it.
    hub_username: str = field(default="", compare=False)


@dataclass(frozen=True)
class PendingPod:
    """One row of pending_pods: a single-user pod not running at a collection, and why (without the run id)."""

    timestamp: datetime
    cluster: str | None
    namespace: str | None
    pod_name: str
    pod_uid: str | None
    user_email: str
    container_image: str | None
    node_name: str | None
    age_seconds: int
    phase: str
    reason: str | None


@dataclass(frozen=True)
class Skip:
    """A pod that was listed but not recorded, with the reason counted in the run record."""

    pod: str
    reason: str
    detail: str


class Malformed(ValueError):
    """A pod field that is not what Kubernetes would send, or that its column cannot hold."""

    def __init__(self, field_path: str, problem: str):
        super().__init__(f"{field_path}: {problem}")
        self.field_path = field_path


def _mapping(value: Any, field_path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Malformed(field_path, f"expected an object, got {type(value).__name__}")
    return value


def _sequence(value: Any, field_path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(field_path, f"expected a list, got {type(value).__name__}")
    return value


def clean_text(value: Any, field_path: str, limit: str) -> str:
    """Text a PostgreSQL text column and its indexes can hold: a str, no NUL, valid UTF-8, within its limit."""
    if not isinstance(value, str):
        raise Malformed(field_path, f"expected text, got {type(value).__name__}")
    if "\x00" in value:
        raise Malformed(field_path, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed(field_path, "is not valid Unicode (a lone surrogate)") from None
    if len(value) > MAX_TEXT[limit]:
        raise Malformed(field_path, f"is {len(value)} characters long (at most {MAX_TEXT[limit]})")
    return value


def _optional_text(value: Any, field_path: str, limit: str) -> str | None:
    return None if value is None else clean_text(value, field_path, limit)


@dataclass(frozen=True)
class UserSource:
    kind: str
    key: str

    @classmethod
    def parse(cls, text: str) -> UserSource:
        kind, _, key = text.strip().partition(":")
        if kind not in USER_SOURCE_KINDS or not key:
            raise ValueError(f"user source {text!r} is not of the form annotation:KEY, label:KEY or env:NAME")
        return cls(kind, key)

    def read(self, pod: Pod, container: Mapping[str, Any] | None, limit: str = "identity") -> str | None:
        if self.kind == "env":
            value = _env_value(container, self.key)
            where = f"env {self.key}"
        else:
            section = "annotations" if self.kind == "annotation" else "labels"
            values = _mapping(_mapping(pod.get("metadata"), "metadata").get(section), f"metadata.{section}")
            value = values.get(self.key)
            where = f"metadata.{section}[{self.key}]"
        if value is None:
            return None
        text = clean_text(value, where, limit).strip()
        return text or None


@dataclass(frozen=True)
class ImageName:
    image: str
    base: str
    version: str


def parse_image(image: str) -> ImageName:
    """`host:5000/team/img:tag` -> base `img`, version `tag`; a digest when there is no tag; else `latest`.

    The registry and path are dropped from the base. A port in the registry host is not a tag,
    because only the last path component can carry one.
    """
    text = image.strip()
    if not text:
        raise ValueError("empty image name")
    name, _, digest = text.partition("@")
    last_component = name.rsplit("/", 1)[-1]
    base, _, tag = last_component.partition(":")
    if not base or (digest and not digest.startswith("sha256:")):
        raise ValueError(f"cannot parse image name {image!r}")
    version = tag or digest or "latest"
    return ImageName(image=text, base=base, version=version)


def _quantity(value: Any, field_path: str) -> Decimal:
    """A Kubernetes quantity (`500m`, `100u`, `1k`, `16Gi`, `1e9`), finite and not negative."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Malformed(field_path, f"expected a quantity, got {type(value).__name__}")
    try:
        amount = parse_quantity(value)
    except (ValueError, ArithmeticError):
        raise Malformed(field_path, f"{str(value)[:40]!r} is not a Kubernetes quantity") from None
    if not amount.is_finite() or amount < 0:
        raise Malformed(field_path, f"{str(value)[:40]!r} is not a finite, non-negative quantity")
    return amount


def parse_cpu(quantity: Any, field_path: str = "cpu") -> Decimal | None:
    """Kubernetes CPU quantity in cores."""
    if quantity is None:
        return None
    cores = _quantity(quantity, field_path)
    if cores > MAX_CPU_CORES:
        raise Malformed(field_path, f"{cores} cores is beyond any node")
    return cores


def parse_memory(quantity: Any, field_path: str = "memory") -> int | None:
    """Kubernetes memory quantity in bytes."""
    if quantity is None:
        return None
    amount = int(_quantity(quantity, field_path))
    if amount > MAX_BYTES:
        raise Malformed(field_path, f"{quantity!r} is more bytes than a bigint holds")
    return amount


def parse_timestamp(value: Any, field_path: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(field_path, f"expected an RFC 3339 time, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(field_path, f"{value[:40]!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise Malformed(field_path, f"{value[:40]!r} has no UTC offset")
    return moment


def _containers(pod: Pod) -> list[Mapping[str, Any]]:
    containers = _sequence(_mapping(pod.get("spec"), "spec").get("containers"), "spec.containers")
    return [_mapping(container, f"spec.containers[{index}]") for index, container in enumerate(containers)]


def notebook_container(pod: Pod) -> Mapping[str, Any] | None:
    """KubeSpawner names the user's container `notebook`; older or custom spawners: the first one."""
    containers = _containers(pod)
    for container in containers:
        if container.get("name") == NOTEBOOK_CONTAINER:
            return container
    return containers[0] if containers else None


def _env_value(container: Mapping[str, Any] | None, name: str) -> Any:
    for index, variable in enumerate(_sequence((container or {}).get("env"), "env")):
        variable = _mapping(variable, f"env[{index}]")
        if variable.get("name") == name:
            value = variable.get("value")
            return value if not isinstance(value, str) or value.strip() else None
    return None


def gpu_count(container: Mapping[str, Any]) -> int | None:
    """GPUs the notebook container asks for; extended resources are set as limits (requests equal them)."""
    resources = _mapping(container.get("resources"), "resources")
    for section in ("limits", "requests"):
        amounts = _mapping(resources.get(section), f"resources.{section}")
        matching = [(key, value) for key, value in amounts.items() if isinstance(key, str) and GPU_RESOURCE.match(key)]
        if matching:
            total = Decimal(0)
            for key, value in matching:
                amount = _quantity(value, f"resources.{section}[{key}]")
                if amount != amount.to_integral_value():
                    raise Malformed(f"resources.{section}[{key}]", f"{value!r} is not a whole number of GPUs")
                total += amount
            if total > MAX_GPUS:
                raise Malformed(f"resources.{section}", f"{total} GPUs is beyond any node")
            return int(total)
    return 0 if resources else None


def resolve_identity(
    pod: Pod, container: Mapping[str, Any] | None, sources: Iterable[UserSource], email_domain: str | None
) -> str | None:
    for source in sources:
        value = source.read(pod, container)
        if value:
            if "@" not in value and email_domain:
                value = f"{value}@{email_domain.lstrip('@')}"
            return clean_text(value.lower(), "identity", "identity")
    return None


HUB_USERNAME_SOURCES = (
    UserSource("annotation", USERNAME_KEY),
    UserSource("env", "JUPYTERHUB_USER"),
    UserSource("label", USERNAME_KEY),
)


def first_value(
    pod: Pod, container: Mapping[str, Any] | None, sources: Iterable[UserSource], limit: str = "identity"
) -> str | None:
    for source in sources:
        value = source.read(pod, container, limit)
        if value:
            return value
    return None


def hub_username(pod: Pod, container: Mapping[str, Any] | None) -> str | None:
    """The JupyterHub username: the unescaped annotation, then the env var, then the (escaped) label."""
    return first_value(pod, container, HUB_USERNAME_SOURCES)


def pod_label(pod: Any) -> str:
    """namespace/name for messages, whatever the pod's shape (printable, short)."""
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    metadata = metadata if isinstance(metadata, Mapping) else {}
    parts = [metadata.get("namespace"), metadata.get("name")]
    shown = [part if isinstance(part, str) else None for part in parts]
    return "/".join((part or "?").encode("ascii", "backslashreplace").decode()[:100] for part in shown)


def phase_of(pod: Any) -> str | None:
    status = pod.get("status") if isinstance(pod, Mapping) else None
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return phase if isinstance(phase, str) else None


def is_running(pod: Any) -> bool:
    return phase_of(pod) == "Running"


# The phases of a start that has not (yet) succeeded (spec 3.6).
NOT_RUNNING_PHASES = ("Pending", "Failed")


def is_not_running(pod: Any) -> bool:
    return phase_of(pod) in NOT_RUNNING_PHASES


def condition_time(status: Mapping[str, Any], kind: str, observed_at: datetime) -> datetime | None:
    """When the pod's condition `kind` last became True (its lastTransitionTime), else None."""
    for index, condition in enumerate(_sequence(status.get("conditions"), "status.conditions")):
        condition = _mapping(condition, f"status.conditions[{index}]")
        if condition.get("type") == kind and condition.get("status") == "True":
            where = f"status.conditions[{kind}].lastTransitionTime"
            moment = parse_timestamp(condition.get("lastTransitionTime"), where)
            if moment is not None and not EARLIEST_TIME <= moment <= observed_at + FUTURE_TOLERANCE:
                raise Malformed(where, f"{moment.isoformat()} is outside {EARLIEST_TIME.year} to the collection time")
            return moment
    return None


def waiting_reason(pod: Pod) -> str | None:
    """Why a pod waits (spec 3.6): not scheduled (the PodScheduled condition's reason, e.g. Unschedulable), else a
    failed pod's own reason (Evicted, DeadlineExceeded), else its notebook container's state.waiting.reason
    (ErrImagePull, ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError, ContainerCreating) unless that
    only says it waits for the init containers (PodInitializing): then an init container's (a CrashLoopBackOff of
    z2jh's init containers), else PodInitializing. A failed pod's terminated container gives its reason (OOMKilled,
    Error)."""
    status = _mapping(pod.get("status"), "status")
    for index, condition in enumerate(_sequence(status.get("conditions"), "status.conditions")):
        condition = _mapping(condition, f"status.conditions[{index}]")
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return _reason(condition.get("reason"), "status.conditions[PodScheduled].reason") or "NotScheduled"
    if phase_of(pod) == "Failed" and status.get("reason") is not None:
        return _reason(status.get("reason"), "status.reason")
    container = notebook_container(pod)
    name = container.get("name") if container else None
    waiting_for_init: str | None = None
    for section in ("containerStatuses", "initContainerStatuses"):
        for index, entry in enumerate(_sequence(status.get(section), f"status.{section}")):
            entry = _mapping(entry, f"status.{section}[{index}]")
            if section == "containerStatuses" and name is not None and entry.get("name") != name:
                continue
            state = _mapping(entry.get("state"), f"status.{section}[{index}].state")
            for kind in ("waiting", "terminated"):
                reason = _reason(
                    _mapping(state.get(kind), f"state.{kind}").get("reason"),
                    f"status.{section}[{index}].state.{kind}.reason",
                )
                if reason is None or not (kind == "waiting" or phase_of(pod) == "Failed"):
                    continue
                if reason == "PodInitializing":
                    waiting_for_init = reason
                elif not (kind == "terminated" and reason == "Completed"):  # an init container that finished
                    return reason
    return waiting_for_init


def _reason(value: Any, where: str) -> str | None:
    return None if value is None else clean_text(value, where, "reason").strip() or None


def pending_from_pod(
    pod: Any,
    *,
    observed_at: datetime,
    user_sources: Iterable[UserSource],
    email_domain: str | None = None,
    cluster: str | None = None,
) -> PendingPod | Skip:
    """The pending_pods row for a pod in phase Pending or Failed, or why it cannot be recorded."""
    label = pod_label(pod)
    if not isinstance(pod, Mapping):
        return Skip(label, "malformed", f"pod: expected an object, got {type(pod).__name__}")
    try:
        metadata = _mapping(pod.get("metadata"), "metadata")
        spec = _mapping(pod.get("spec"), "spec")
        pod_name = metadata.get("name")
        if not pod_name:
            return Skip(label, "malformed", "metadata.name: missing")
        container = notebook_container(pod)
        user_email = resolve_identity(pod, container, list(user_sources), email_domain)
        if not user_email:
            return Skip(label, "no_identity", "no user found in any configured source")
        created_at = parse_timestamp(metadata.get("creationTimestamp"), "metadata.creationTimestamp")
        if created_at is None or not EARLIEST_TIME <= created_at <= observed_at + FUTURE_TOLERANCE:
            return Skip(label, "malformed", "metadata.creationTimestamp: missing or outside the collection's time")
        image = container.get("image") if container else None
        node_name = spec.get("nodeName") or None
        return PendingPod(
            timestamp=observed_at,
            cluster=cluster,
            namespace=_optional_text(metadata.get("namespace"), "metadata.namespace", "namespace"),
            pod_name=clean_text(pod_name, "metadata.name", "name"),
            pod_uid=_optional_text(metadata.get("uid"), "metadata.uid", "uid"),
            user_email=user_email,
            container_image=_optional_text(image or None, "image", "image"),
            node_name=_optional_text(node_name, "spec.nodeName", "name"),
            age_seconds=min(MAX_AGE_SECONDS, max(0, int((observed_at - created_at).total_seconds()))),
            phase=clean_text(phase_of(pod) or "", "status.phase", "reason"),
            reason=waiting_reason(pod),
        )
    except Malformed as problem:
        return Skip(label, "malformed", str(problem))
    except RecursionError:
        return Skip(label, "malformed", "pod: nested too deeply")


def observation_from_pod(
    pod: Any,
    *,
    observed_at: datetime,
    user_sources: Iterable[UserSource],
    email_domain: str | None = None,
    cluster: str | None = None,
    name_sources: Iterable[UserSource] = (),
) -> Observation | Skip:
    """The observation row for one running pod, or the reason it cannot be recorded."""
    label = pod_label(pod)
    if not isinstance(pod, Mapping):
        return Skip(label, "malformed", f"pod: expected an object, got {type(pod).__name__}")
    try:
        return _observation(pod, observed_at, list(user_sources), email_domain, cluster, list(name_sources), label)
    except Malformed as problem:
        return Skip(label, "malformed", str(problem))
    except RecursionError:
        return Skip(label, "malformed", "pod: nested too deeply")


def _observation(
    pod: Pod,
    observed_at: datetime,
    user_sources: list[UserSource],
    email_domain: str | None,
    cluster: str | None,
    name_sources: list[UserSource],
    label: str,
) -> Observation | Skip:
    metadata = _mapping(pod.get("metadata"), "metadata")
    spec = _mapping(pod.get("spec"), "spec")
    status = _mapping(pod.get("status"), "status")
    pod_name = metadata.get("name")
    if pod_name is None or pod_name == "":
        return Skip(label, "malformed", "metadata.name: missing")
    pod_name = clean_text(pod_name, "metadata.name", "name")
    container = notebook_container(pod)
    if container is None:
        return Skip(label, "malformed", "spec.containers: the pod has no containers")
    user_email = resolve_identity(pod, container, user_sources, email_domain)
    if not user_email:
        return Skip(label, "no_identity", "no user found in any configured source")
    node_name = spec.get("nodeName")
    if node_name is None or node_name == "":
        return Skip(label, "no_node", "pod is not scheduled on a node")
    node_name = clean_text(node_name, "spec.nodeName", "name")
    image_text = clean_text(container.get("image") or "", "image", "image")
    try:
        image = parse_image(image_text)
    except ValueError as error:
        raise Malformed("image", str(error)) from None
    created_at = parse_timestamp(metadata.get("creationTimestamp"), "metadata.creationTimestamp")
    if created_at is None:
        return Skip(label, "malformed", "metadata.creationTimestamp: missing")
    started_at = parse_timestamp(status.get("startTime"), "status.startTime")
    for moment, where in ((created_at, "metadata.creationTimestamp"), (started_at, "status.startTime")):
        if moment is not None and not EARLIEST_TIME <= moment <= observed_at + FUTURE_TOLERANCE:
            raise Malformed(where, f"{moment.isoformat()} is outside {EARLIEST_TIME.year} to the collection time")
    requests = _mapping(_mapping(container.get("resources"), "resources").get("requests"), "resources.requests")
    username = hub_username(pod, container) or user_email
    annotations = _mapping(metadata.get("annotations"), "metadata.annotations")
    return Observation(
        timestamp=observed_at,
        user_email=user_email,
        # The person's name (spec 3.1): the first configured name source, else the hub username.
        user_name=first_value(pod, container, name_sources, "person") or username,
        node_name=node_name,
        container_image=image.image,
        container_base=image.base,
        container_version=image.version,
        age_seconds=min(MAX_AGE_SECONDS, max(0, int((observed_at - created_at).total_seconds()))),
        pod_name=pod_name,
        cluster=cluster,
        namespace=_optional_text(metadata.get("namespace"), "metadata.namespace", "namespace"),
        pod_uid=_optional_text(metadata.get("uid"), "metadata.uid", "uid"),
        server_name=_optional_text(
            annotations.get(SERVERNAME_ANNOTATION), "metadata.annotations[servername]", "server_name"
        )
        or "",
        gpu_count=gpu_count(container),
        cpu_request=parse_cpu(requests.get("cpu"), "resources.requests.cpu"),
        memory_request_bytes=parse_memory(requests.get("memory"), "resources.requests.memory"),
        pod_started_at=started_at,
        pod_created_at=created_at,
        scheduled_at=condition_time(status, "PodScheduled", observed_at),
        ready_at=condition_time(status, "Ready", observed_at),
        hub_username=username,
    )


def matches_selector(pod: Any, selector: str) -> bool:
    """Equality-based label selector (`a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated), as kubectl applies it."""
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    labels = labels if isinstance(labels, Mapping) else {}
    for requirement in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in requirement:
            key, value = (item.strip() for item in requirement.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in requirement:
            key, value = (item.strip() for item in requirement.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif requirement.startswith("!"):
            if requirement[1:].strip() in labels:
                return False
        elif requirement not in labels:
            return False
    return True


# (namespace, pod name) -> container name -> (CPU cores, memory bytes), from a PodMetricsList.
PodUse = dict[tuple[str, str], dict[str, tuple[Decimal | None, int | None]]]


def pod_use_from_metrics(document: Any) -> tuple[PodUse, int]:
    """Measured use per pod and container from `metrics.k8s.io/v1beta1` PodMetrics (what `kubectl get --raw
    /apis/metrics.k8s.io/v1beta1/pods` prints). Returns the use and how many items were malformed (skipped)."""
    items = document.get("items") if isinstance(document, Mapping) else None
    use: PodUse = {}
    malformed = 0
    for item in items if isinstance(items, list) else []:
        try:
            metadata = _mapping(item, "item").get("metadata")
            metadata = _mapping(metadata, "metadata")
            key = (
                clean_text(metadata.get("namespace") or "", "namespace", "namespace"),
                clean_text(metadata.get("name") or "", "name", "name"),
            )
            containers: dict[str, tuple[Decimal | None, int | None]] = {}
            for index, container in enumerate(_sequence(_mapping(item, "item").get("containers"), "containers")):
                container = _mapping(container, f"containers[{index}]")
                usage = _mapping(container.get("usage"), "usage")
                name = clean_text(container.get("name") or "", "containers.name", "name")
                containers[name] = (
                    parse_cpu(usage.get("cpu"), "usage.cpu"),
                    parse_memory(usage.get("memory"), "usage.memory"),
                )
            use[key] = containers
        except Malformed:
            malformed += 1
    return use, malformed


def with_measured_use(row: Observation, pod: Mapping[str, Any], use: PodUse) -> Observation:
    """The row with its notebook container's measured use, where the metrics API reported the pod."""
    containers = use.get((row.namespace or "", row.pod_name))
    if not containers:
        return row
    container = notebook_container(pod)
    name = container.get("name") if container else None
    measured = containers.get(name) if isinstance(name, str) else None
    if measured is None and len(containers) == 1:
        measured = next(iter(containers.values()))
    if measured is None:
        return row
    cpu, memory = measured
    return replace(row, cpu_usage_cores=cpu, memory_usage_bytes=memory)
