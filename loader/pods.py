"""Pure functions that turn a Kubernetes pod (as `kubectl get pods -o json` shows it) into an observation row.

No network, no database: every rule about reading a pod lives here and is tested on plain dicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

USERNAME_KEY = "hub.jupyter.org/username"
SERVERNAME_ANNOTATION = "hub.jupyter.org/servername"
NOTEBOOK_CONTAINER = "notebook"
GPU_RESOURCE = re.compile(r"^(nvidia\.com/gpu|amd\.com/gpu|gpu\.intel\.com/.+)$")
USER_SOURCE_KINDS = ("annotation", "label", "env")

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
    # Not a column of container_observations: collection keeps users.user_id current with it.
    hub_username: str = field(default="", compare=False)


@dataclass(frozen=True)
class Skip:
    """A pod that was listed but not recorded, with the reason counted in the run record."""

    pod: str
    reason: str
    detail: str


@dataclass(frozen=True)
class UserSource:
    kind: str
    key: str

    @classmethod
    def parse(cls, text: str) -> UserSource:
        kind, _, key = text.strip().partition(":")
        if kind not in USER_SOURCE_KINDS or not key:
            raise ValueError(
                f"user source {text!r} is not of the form annotation:KEY, label:KEY or env:NAME"
            )
        return cls(kind, key)

    def read(self, pod: Pod, container: Mapping[str, Any] | None) -> str | None:
        if self.kind == "env":
            return _env_value(container, self.key)
        metadata = pod.get("metadata") or {}
        values = metadata.get("annotations" if self.kind == "annotation" else "labels") or {}
        value = values.get(self.key)
        return value.strip() if isinstance(value, str) and value.strip() else None


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


def parse_cpu(quantity: str | int | float | None) -> Decimal | None:
    """Kubernetes CPU quantity (`500m`, `2`, `1.5`) in cores."""
    if quantity is None:
        return None
    text = str(quantity).strip()
    try:
        if text.endswith("m"):
            return Decimal(text[:-1]) / 1000
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"cannot parse CPU quantity {quantity!r}") from None


_MEMORY_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?(?:[eE][0-9]+)?)([KMGTPE]i|[kKMGTPE])?$")


def parse_memory(quantity: str | int | float | None) -> int | None:
    """Kubernetes memory quantity (`1Gi`, `512M`, `1e9`) in bytes."""
    if quantity is None:
        return None
    match = _MEMORY.match(str(quantity).strip())
    if not match:
        raise ValueError(f"cannot parse memory quantity {quantity!r}")
    number, suffix = match.groups()
    return int(Decimal(number) * _MEMORY_SUFFIXES.get(suffix or "", 1))


def parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot parse timestamp {text!r}") from None
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return value


def notebook_container(pod: Pod) -> Mapping[str, Any] | None:
    """KubeSpawner names the user's container `notebook`; older or custom spawners: the first one."""
    containers = (pod.get("spec") or {}).get("containers") or []
    for container in containers:
        if container.get("name") == NOTEBOOK_CONTAINER:
            return container
    return containers[0] if containers else None


def _env_value(container: Mapping[str, Any] | None, name: str) -> str | None:
    for variable in (container or {}).get("env") or []:
        if variable.get("name") == name and isinstance(variable.get("value"), str) and variable["value"].strip():
            return variable["value"].strip()
    return None


def gpu_count(container: Mapping[str, Any]) -> int | None:
    """GPUs the notebook container asks for; extended resources are set as limits (requests equal them)."""
    resources = container.get("resources") or {}
    total = None
    for section in ("limits", "requests"):
        amounts = resources.get(section) or {}
        matching = [value for key, value in amounts.items() if GPU_RESOURCE.match(key)]
        if matching:
            total = sum(int(str(value)) for value in matching)
            break
    return total if total is not None else (0 if resources else None)


def resolve_identity(
    pod: Pod, container: Mapping[str, Any] | None, sources: Iterable[UserSource], email_domain: str | None
) -> str | None:
    for source in sources:
        value = source.read(pod, container)
        if value:
            if "@" not in value and email_domain:
                value = f"{value}@{email_domain.lstrip('@')}"
            return value.lower()
    return None


HUB_USERNAME_SOURCES = (
    UserSource("annotation", USERNAME_KEY),
    UserSource("env", "JUPYTERHUB_USER"),
    UserSource("label", USERNAME_KEY),
)


def first_value(pod: Pod, container: Mapping[str, Any] | None, sources: Iterable[UserSource]) -> str | None:
    for source in sources:
        value = source.read(pod, container)
        if value:
            return value
    return None


def hub_username(pod: Pod, container: Mapping[str, Any] | None) -> str | None:
    """The JupyterHub username: the unescaped annotation, then the env var, then the (escaped) label."""
    return first_value(pod, container, HUB_USERNAME_SOURCES)


def pod_label(pod: Pod) -> str:
    metadata = pod.get("metadata") or {}
    return f"{metadata.get('namespace') or '-'}/{metadata.get('name') or '?'}"


def is_running(pod: Pod) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def observation_from_pod(
    pod: Pod,
    *,
    observed_at: datetime,
    user_sources: Iterable[UserSource],
    email_domain: str | None = None,
    cluster: str | None = None,
    name_sources: Iterable[UserSource] = (),
) -> Observation | Skip:
    """The observation row for one running pod, or the reason it cannot be recorded."""
    label = pod_label(pod)
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    pod_name = metadata.get("name")
    if not isinstance(pod_name, str) or not pod_name:
        return Skip(label, "malformed", "pod has no metadata.name")
    container = notebook_container(pod)
    if container is None:
        return Skip(label, "malformed", "pod has no containers")
    user_email = resolve_identity(pod, container, user_sources, email_domain)
    if not user_email:
        return Skip(label, "no_identity", "no user found in any configured source")
    node_name = spec.get("nodeName")
    if not isinstance(node_name, str) or not node_name:
        return Skip(label, "no_node", "pod is not scheduled on a node")
    try:
        image = parse_image(str(container.get("image") or ""))
        created_at = parse_timestamp(metadata.get("creationTimestamp"))
        if created_at is None:
            raise ValueError("pod has no creationTimestamp")
        started_at = parse_timestamp(status.get("startTime"))
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu = parse_cpu(requests.get("cpu"))
        memory = parse_memory(requests.get("memory"))
        gpus = gpu_count(container)
    except (ValueError, TypeError, AttributeError) as error:
        return Skip(label, "malformed", str(error))
    annotations = metadata.get("annotations") or {}
    username = hub_username(pod, container) or user_email
    return Observation(
        timestamp=observed_at,
        user_email=user_email,
        # The person's name (spec 3.1): the first configured name source, else the hub username.
        user_name=first_value(pod, container, name_sources) or username,
        node_name=node_name,
        container_image=image.image,
        container_base=image.base,
        container_version=image.version,
        age_seconds=max(0, int((observed_at - created_at).total_seconds())),
        pod_name=pod_name,
        cluster=cluster,
        namespace=metadata.get("namespace"),
        pod_uid=metadata.get("uid"),
        server_name=annotations.get(SERVERNAME_ANNOTATION) or "",
        gpu_count=gpus,
        cpu_request=cpu,
        memory_request_bytes=memory,
        pod_started_at=started_at,
        hub_username=username,
    )


def matches_selector(pod: Pod, selector: str) -> bool:
    """Equality-based label selector (`a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated), as kubectl applies it."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
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
