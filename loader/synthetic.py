"""A realistic synthetic JupyterHub: pod lists as `kubectl get pods -o json` would show them every 5 minutes.

Deterministic for a seed and an end time, so a demo re-run on the same day replays the same pods
(and records nothing twice).
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from loader.graph_source import DirectoryEntry

STEP = timedelta(minutes=5)
WAITING_AT_THE_END = timedelta(minutes=25)
NAMESPACE = "jhub"
# Some nodes say what they are, some do not (a cloud node pool): GPU or CPU time follows the pod's request.
GPU_NODES = ["gpu-a100-01", "gpu-a100-02", "gpu-v100-01", "gke-gpu-pool-7f3a", "worker-gpu-2"]
CPU_NODES = [f"cpu-standard-{n:02d}" for n in range(1, 5)] + ["worker-07", "worker-08"]
# (registry/path/name, versions released over time, wants a GPU)
IMAGES = [
    ("quay.io/jupyter/scipy-notebook", ["2026-09-01", "2026-10-13"], False),
    ("quay.io/jupyter/datascience-notebook", ["2026-09-01", "2026-10-13"], False),
    ("quay.io/jupyter/r-notebook", ["2026-08-04"], False),
    ("registry.example.edu:5000/rcs/pytorch-notebook", ["2.4-cuda12", "2.5-cuda12"], True),
    ("registry.example.edu:5000/rcs/tensorflow-notebook", ["2.17-gpu"], True),
    ("ghcr.io/example-univ/courses/cs101-notebook", ["fall2026", "latest"], False),
]
FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chen",
    "Dana",
    "Eli",
    "Fatima",
    "Gabriel",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uma",
    "Victor",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zoë",
    "José",
    "Siobhán",
    "Łukasz",
    "Ngozi",
]
LAST_NAMES = [
    "Garcia",
    "Smith",
    "Nguyen",
    "Okafor",
    "Kowalski",
    "Müller",
    "Patel",
    "Kim",
    "O'Brien",
    "Rossi",
    "Silva",
    "Haddad",
    "Tanaka",
    "Johansson",
    "Novak",
    "Mensah",
    "Ivanova",
    "Dubois",
    "López",
    "Chen",
]
EMAIL_DOMAIN = "example.edu"


@dataclass(frozen=True)
class SyntheticUser:
    email: str
    first_name: str
    last_name: str
    active_days_per_week: float
    mean_session_hours: float
    gpu_share: float
    image_preference: tuple[int, ...]
    uses_named_servers: bool
    pod_shape: str  # "ks7" (annotation, safe slug), "ks6" (escaped name), "env" (no annotation), "none"


@dataclass(frozen=True)
class SyntheticPod:
    user: SyntheticUser
    pod_name: str
    server_name: str
    uid: str
    node_name: str
    image: str
    gpus: int
    created_at: datetime
    ends_at: datetime
    # When Kubernetes bound the pod to a node and when it became ready (None: at creation), and why a start that
    # never runs waits (None: it runs from ready_at).
    scheduled_at: datetime | None = None
    ready_at: datetime | None = None
    fails: str | None = None


# Why the demo's failed starts wait, and how often (a typo in an image tag, no GPU free, a crashing init container,
# a missing secret).
FAILURES = [
    ("ImagePullBackOff", 0.45),
    ("Unschedulable", 0.25),
    ("CrashLoopBackOff", 0.15),
    ("CreateContainerConfigError", 0.15),
]
FAILED_START_SHARE = 0.05


def _ascii(text: str) -> str:
    replacements = {"é": "e", "á": "a", "ó": "o", "ë": "e", "ü": "u", "ł": "l", "Ł": "L", "'": ""}
    return "".join(replacements.get(char, char) for char in text)


def escape_kubespawner6(name: str) -> str:
    """KubeSpawner 6 (escapism): every character outside [a-z0-9] becomes '-' and its hex code."""
    safe = set(string.ascii_lowercase + string.digits)
    return "".join(char if char in safe else "".join(f"-{byte:02x}" for byte in char.encode()) for char in name)


def safe_slug_kubespawner7(name: str) -> str:
    """KubeSpawner 7 safe slug: lower-case [a-z0-9-], with a hash suffix when anything was changed."""
    slug = "".join(char if char in string.ascii_lowercase + string.digits + "-" else "-" for char in name.lower())
    slug = "-".join(filter(None, slug.split("-")))
    if slug == name:
        return slug
    return f"{slug[:40]}---{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def make_users(count: int, rng: random.Random) -> list[SyntheticUser]:
    users = []
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{_ascii(first)}.{_ascii(last)}{index}".lower()
        shape = rng.choices(["ks7", "ks6", "env", "none"], weights=[68, 22, 7, 3])[0]
        users.append(
            SyntheticUser(
                email=f"{local}@{EMAIL_DOMAIN}",
                first_name=first,
                last_name=last,
                active_days_per_week=rng.choice([0.5, 1, 2, 3, 4, 5, 6]),
                mean_session_hours=rng.choice([0.5, 1, 1.5, 2, 3, 5, 8]),
                gpu_share=rng.choice([0.0, 0.0, 0.1, 0.3, 0.7, 1.0]),
                image_preference=tuple(rng.sample(range(len(IMAGES)), 3)),
                uses_named_servers=rng.random() < 0.2,
                pod_shape=shape,
            )
        )
    return users


def _pod_name(user: SyntheticUser, server_name: str) -> str:
    username = user.email
    base = escape_kubespawner6(username) if user.pod_shape == "ks6" else safe_slug_kubespawner7(username)
    return f"jupyter-{base}" + (f"--{server_name}" if server_name else "")


def make_pods(users: list[SyntheticUser], start: datetime, end: datetime, rng: random.Random) -> list[SyntheticPod]:
    pods: list[SyntheticPod] = []
    days = (end - start).days
    for user in users:
        for day in range(days):
            midnight = start + timedelta(days=day)
            weekend = midnight.weekday() >= 5
            if rng.random() > user.active_days_per_week / 7 * (0.4 if weekend else 1.15):
                continue
            for _ in range(rng.choice([1, 1, 1, 2])):
                # Daily rhythm: most sessions start mid-morning to late afternoon (UTC-6 campus).
                hour = min(max(rng.gauss(15, 3.0), 0), 23.5)
                begin = midnight + timedelta(minutes=int(hour * 60) // 5 * 5)
                hours = max(rng.lognormvariate(0, 0.7) * user.mean_session_hours, 5 / 60)
                gpu = rng.random() < user.gpu_share
                if gpu and rng.random() < 0.06:
                    hours = rng.uniform(20, 72)  # a training run held over nights (and sometimes a month end)
                finish = begin + timedelta(minutes=int(hours * 60) // 5 * 5 + 5)
                candidates = [i for i in user.image_preference if IMAGES[i][2] == gpu] or [
                    i for i, image in enumerate(IMAGES) if image[2] == gpu
                ]
                image_name, versions, _ = IMAGES[candidates[0] if rng.random() < 0.7 else rng.choice(candidates)]
                # Newer versions appear half-way through the period.
                version = versions[-1] if begin >= start + (end - start) / 2 else versions[0]
                server_name = (
                    rng.choice(["gpu-lab", "thesis", "course"])
                    if user.uses_named_servers and rng.random() < 0.5
                    else ""
                )
                node = rng.choice(GPU_NODES if gpu else CPU_NODES)
                segments = [(begin, finish)]
                if rng.random() < 0.08 and finish - begin > timedelta(minutes=40):
                    # A restart: the pod is deleted and spawned again 10 minutes later, same name, new uid.
                    middle = begin + (finish - begin) / 2
                    segments = [(begin, middle), (middle + timedelta(minutes=10), finish)]
                for segment_start, segment_end in segments:
                    pod = SyntheticPod(
                        user=user,
                        pod_name=_pod_name(user, server_name),
                        server_name=server_name,
                        uid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        node_name=node,
                        image=f"{image_name}:{version}" if version != "latest" else image_name,
                        gpus=(2 if rng.random() < 0.15 else 1) if gpu else 0,
                        created_at=segment_start - timedelta(seconds=rng.randint(20, 90)),
                        ends_at=segment_end,
                    )
                    pods.append(_with_start(pod, segment_start))
                    if _draw(pod.uid, "failed start") < FAILED_START_SHARE:
                        pods.append(_failed_attempt(pod, segment_start))
    pods.sort(key=lambda pod: pod.created_at)
    return _without_overlaps(pods)


def _with_start(pod: SyntheticPod, first_collection: datetime) -> SyntheticPod:
    """The pod's start: a node at once and the image in under a minute, except a third of GPU pods, which wait for
    a node and pull a large image for 2 to 9 minutes (seen pending at a collection or two). Ready before the
    collection that first sees it running."""
    ready = first_collection - timedelta(seconds=5 + int(10 * _draw(pod.uid, "ready")))
    created = pod.created_at
    if pod.gpus and _draw(pod.uid, "slow start") < 0.33:
        created = first_collection - timedelta(seconds=120 + int(420 * _draw(pod.uid, "pull")))
        scheduled = created + (ready - created) * (0.2 + 0.5 * _draw(pod.uid, "node"))
    else:
        scheduled = created + timedelta(seconds=1 + int(3 * _draw(pod.uid, "node")))
    return replace(pod, created_at=created, scheduled_at=min(scheduled, ready), ready_at=ready)


def _failed_attempt(pod: SyntheticPod, first_collection: datetime) -> SyntheticPod:
    """A start that did not succeed before this pod's: pending 10 to 25 minutes, then gone (the spawn timed out)."""
    draw, reason = _draw(pod.uid, "failure"), FAILURES[-1][0]
    for name, share in FAILURES:
        if draw < share:
            reason = name
            break
        draw -= share
    if reason == "Unschedulable" and not pod.gpus:
        reason = "ImagePullBackOff"
    created = first_collection - timedelta(minutes=30) + timedelta(seconds=int(300 * _draw(pod.uid, "attempt")))
    return replace(
        pod,
        uid=str(uuid.UUID(bytes=hashlib.sha256(f"{pod.uid}/attempt".encode()).digest()[:16], version=4)),
        image=pod.image.rsplit(":", 1)[0] + ":2026-13-01" if reason == "ImagePullBackOff" else pod.image,
        created_at=created,
        ends_at=first_collection - timedelta(minutes=10),
        scheduled_at=None,
        ready_at=None,
        fails=reason,
    )


def _without_overlaps(pods: list[SyntheticPod]) -> list[SyntheticPod]:
    """A user cannot run two pods of the same name at once: keep the first."""
    busy_until: dict[str, datetime] = {}
    kept = []
    for pod in pods:
        if busy_until.get(pod.pod_name, datetime.min.replace(tzinfo=UTC)) >= pod.created_at:
            continue
        busy_until[pod.pod_name] = pod.ends_at
        kept.append(pod)
    return kept


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_document(pod: SyntheticPod, moment: datetime | None = None) -> dict[str, Any]:
    """The pod as `kubectl get pod -o json` shows it at `moment` (running, with its conditions, once ready; before
    that, or for a failed start, pending and why)."""
    user = pod.user
    labels = {
        "app": "jupyterhub",
        "component": "singleuser-server",
        "heritage": "jupyterhub",
        "release": "jhub",
        "chart": "jupyterhub-4.1.0",
        "hub.jupyter.org/network-access-hub": "true",
        "hub.jupyter.org/servername": pod.server_name,
    }
    annotations: dict[str, str] = {"hub.jupyter.org/servername": pod.server_name}
    env = [{"name": "JUPYTERHUB_SERVICE_PREFIX", "value": f"/user/{user.email}/{pod.server_name}"}]
    if user.pod_shape in ("ks7", "ks6"):
        labels["hub.jupyter.org/username"] = (
            escape_kubespawner6(user.email) if user.pod_shape == "ks6" else safe_slug_kubespawner7(user.email)
        )
        annotations["hub.jupyter.org/username"] = user.email
        env.append({"name": "JUPYTERHUB_USER", "value": user.email})
    elif user.pod_shape == "env":
        env.append({"name": "JUPYTERHUB_USER", "value": user.email})
    resources: dict[str, Any] = {
        "requests": {"cpu": "2" if pod.gpus else "500m", "memory": "16Gi" if pod.gpus else "2G"},
        "limits": {"cpu": "8" if pod.gpus else "2", "memory": "32Gi" if pod.gpus else "4G"},
    }
    if pod.gpus:
        resources["limits"]["nvidia.com/gpu"] = str(pod.gpus)
        resources["requests"]["nvidia.com/gpu"] = str(pod.gpus)
    status = _status(pod, moment)
    spec: dict[str, Any] = {
        "containers": [
            {"name": "notebook", "image": pod.image, "env": env, "resources": resources},
            {"name": "sidecar-proxy", "image": "ghcr.io/example-univ/proxy:1.0"},
        ],
    }
    if status["phase"] == "Running" or status.get("startTime"):  # bound to a node
        spec = {"nodeName": pod.node_name, **spec}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.pod_name,
            "namespace": NAMESPACE,
            "uid": pod.uid,
            "creationTimestamp": _iso(pod.created_at),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
        "status": status,
    }


def _status(pod: SyntheticPod, moment: datetime | None) -> dict[str, Any]:
    """Kubernetes' pod status: conditions with their transition times, the notebook container's state."""
    scheduled = pod.scheduled_at or pod.created_at + timedelta(seconds=2)
    ready = pod.ready_at or pod.created_at + timedelta(seconds=8)
    if pod.fails is None and (moment is None or moment >= ready):
        return {
            "phase": "Running",
            "startTime": _iso(scheduled),
            "conditions": [
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": _iso(scheduled)},
                {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": _iso(ready)},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": None, "lastTransitionTime": _iso(ready)},
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": _iso(scheduled),
                },
            ],
        }
    reason = pod.fails or ("Unschedulable" if moment is not None and moment < scheduled else "ContainerCreating")
    if reason == "Unschedulable":
        return {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/5 nodes are available: 5 Insufficient nvidia.com/gpu.",
                    "lastProbeTime": None,
                    "lastTransitionTime": _iso(pod.created_at),
                }
            ],
        }
    waiting = {"reason": reason}
    if reason == "ImagePullBackOff":
        waiting["message"] = f'Back-off pulling image "{pod.image}"'
    notebook = {"name": "notebook", "image": pod.image, "ready": False, "restartCount": 0}
    status: dict[str, Any] = {
        "phase": "Pending",
        "startTime": _iso(scheduled),
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": _iso(scheduled)},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": _iso(scheduled)},
        ],
        "containerStatuses": [{**notebook, "state": {"waiting": waiting}}],
    }
    if reason == "CrashLoopBackOff":  # z2jh's init container, crashing: the notebook waits for it
        status["containerStatuses"][0]["state"] = {"waiting": {"reason": "PodInitializing"}}
        status["initContainerStatuses"] = [
            {"name": "block-cloud-metadata", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ]
    return status


def _pending_pod(moment: datetime) -> dict[str, Any]:
    """A pod still waiting for a node: listed only when the selector matches and dropped as not Running."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-waiting", "namespace": NAMESPACE, "labels": {"component": "singleuser-server"}},
        "spec": {"containers": [{"name": "notebook", "image": "quay.io/jupyter/scipy-notebook:2026-09-01"}]},
        "status": {"phase": "Pending"},
    }


def snapshots(users: int, days: int, seed: int, end: datetime) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """(collection time, pod list) every 5 minutes over `days` days ending at `end`."""
    rng = random.Random(seed)
    start = end - timedelta(days=days)
    people = make_users(users, rng)
    pods = make_pods(people, start, end, rng)
    # Someone is waiting for a GPU at the end: what "servers waiting now" shows after the demo.
    someone = next((person for person in people if person.pod_shape == "ks7"), people[0])
    waiting = SyntheticPod(
        user=someone,
        pod_name=_pod_name(someone, "gpu-lab"),
        server_name="gpu-lab",
        uid=str(uuid.UUID(bytes=hashlib.sha256(f"{seed}/waiting".encode()).digest()[:16], version=4)),
        node_name=GPU_NODES[0],
        image=f"{IMAGES[3][0]}:{IMAGES[3][1][-1]}",
        gpus=4,
        created_at=end - WAITING_AT_THE_END - timedelta(seconds=40),
        ends_at=end + STEP,
        fails="Unschedulable",
    )
    active: list[SyntheticPod] = []
    index = 0
    moment = start
    while moment < end:
        while index < len(pods) and pods[index].created_at <= moment:
            active.append(pods[index])
            index += 1
        active = [pod for pod in active if pod.ends_at > moment]
        items = [pod_document(pod, moment) for pod in active]
        if moment.hour == 15 and moment.minute == 0:
            items.append(_pending_pod(moment))
        if end - moment <= WAITING_AT_THE_END:
            items.append(pod_document(waiting, moment))
        yield moment, {"apiVersion": "v1", "kind": "List", "items": items}
        moment += STEP


def _draw(*parts: object) -> float:
    """A number in [0, 1) fixed by its inputs: the same pod at the same time always uses the same."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def metrics_document(pods: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """What metrics-server reports for the running pods (`kubectl get --raw /apis/metrics.k8s.io/v1beta1/pods`):
    a third of GPU notebooks and a fifth of CPU ones sit idle (a few millicores); the others compute."""
    items = []
    for pod in pods["items"]:
        if pod.get("status", {}).get("phase") != "Running":
            continue
        uid = pod["metadata"]["uid"]
        notebook = pod["spec"]["containers"][0]
        gpu = "nvidia.com/gpu" in notebook.get("resources", {}).get("limits", {})
        idle = _draw(uid, "idle") < (0.33 if gpu else 0.2)
        load = _draw(uid, moment.isoformat())
        cpu = f"{int(2 + 8 * load)}m" if idle else f"{int(300 + (5500 if gpu else 1200) * load)}m"
        memory = f"{int(400 + (12000 if gpu else 1500) * _draw(uid, 'memory'))}Mi"
        items.append(
            {
                "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]},
                "timestamp": _iso(moment - timedelta(seconds=12)),
                "window": "15s",
                "containers": [
                    {"name": notebook["name"], "usage": {"cpu": cpu, "memory": memory}},
                    {"name": "sidecar-proxy", "usage": {"cpu": "1m", "memory": "24Mi"}},
                ],
            }
        )
    return {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}


def synthetic_users(users: int, seed: int) -> list[SyntheticUser]:
    """The same users `snapshots` uses for this seed (it draws them first)."""
    return make_users(users, random.Random(seed))


DEPARTMENTS = [
    "Siebel School Comp & Data Sci",
    "Physics",
    "Chemistry",
    "Electrical & Computer Eng",
    "Mathematics",
    "Statistics",
    "Molecular & Cellular Biology",
    "Economics",
    "Civil & Environmental Eng",
]
JOB_TITLES = [
    "GRAD RESEARCH ASST",
    "GRAD TEACHING ASST",
    "PROFESSOR",
    "ASST PROFESSOR",
    "POSTDOC RES ASSOC",
    "UNDERGRAD STUDENT",
    "RESEARCH SCIENTIST",
]


def directory_entries(users: list[SyntheticUser], seed: int) -> list[DirectoryEntry]:
    """What Graph would say about the synthetic users: most found, some Fellowships rows, some unknown."""
    rng = random.Random(seed + 1)
    entries = []
    for user in users:
        draw = rng.random()
        if draw < 0.08:
            entries.append(DirectoryEntry(user.email, "not_found"))
            continue
        department, title = rng.choice(DEPARTMENTS), rng.choice(JOB_TITLES)
        if draw < 0.2:  # listed the way the Fellowships fix-up repairs
            department, title = "Fellowships", f"{title}, {department}"
        entries.append(
            DirectoryEntry(
                email=user.email,
                status="found",
                graph_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                full_name=f"{user.first_name} {user.last_name}",
                department=department,
                job_title=title,
            )
        )
    return entries


# The GPU each synthetic GPU node holds, as DCGM names it (modelName); the H100 pool's exporter publishes no
# profiling metrics, only DCGM_FI_DEV_GPU_UTIL (as on some H100/H200 set-ups); worker-gpu-2's Prometheus scrapes with
# honor_labels: false, so the pod's labels arrive as exported_namespace and exported_pod.
GPU_MODELS = {
    "gpu-a100-01": "NVIDIA A100-SXM4-80GB",
    "gpu-a100-02": "NVIDIA A100-SXM4-80GB",
    "gpu-v100-01": "Tesla V100-SXM2-32GB",
    "gke-gpu-pool-7f3a": "NVIDIA H100 80GB HBM3",
    "worker-gpu-2": "NVIDIA L40S",
}
PROFILING_LESS_NODES = {"gke-gpu-pool-7f3a"}
RELABELLED_NODES = {"worker-gpu-2"}


def dcgm_answers(pods: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """What Prometheus answers a collection's three queries about dcgm-exporter's series for the running GPU pods:
    a third of them hold their GPUs idle, the others compute; a pod with two GPUs has two series of each metric."""
    from loader.gpu import ENGINE_ACTIVE, FB_USED, GPU_UTIL

    results: dict[str, list[dict[str, Any]]] = {ENGINE_ACTIVE: [], GPU_UTIL: [], FB_USED: []}
    stamp = moment.timestamp()
    for pod in pods["items"]:
        notebook = pod["spec"]["containers"][0]
        gpus = int(notebook.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
        node = pod["spec"].get("nodeName", "")
        if not gpus or pod.get("status", {}).get("phase") != "Running":
            continue
        uid = pod["metadata"]["uid"]
        idle = _draw(uid, "gpu-idle") < 0.33
        for index in range(gpus):
            gpu_uuid = (
                f"GPU-{uuid.UUID(int=int.from_bytes(hashlib.sha256(f'{node}/{index}'.encode()).digest()[:16], 'big'))}"
            )
            labels = {
                "gpu": str(index),
                "UUID": gpu_uuid,
                "device": f"nvidia{index}",
                "modelName": GPU_MODELS.get(node, "NVIDIA A100-SXM4-80GB"),
                "Hostname": node,
                "instance": f"{node}:9400",
                "job": "nvidia-dcgm-exporter",
            }
            owner = {
                "container": notebook["name"],
                "namespace": pod["metadata"]["namespace"],
                "pod": pod["metadata"]["name"],
            }
            if node in RELABELLED_NODES:
                labels.update({f"exported_{key}": value for key, value in owner.items()})
                labels.update({"namespace": "gpu-operator", "pod": f"nvidia-dcgm-exporter-{node[-4:]}"})
            else:
                labels.update(owner)
            load = _draw(uid, index, moment.isoformat())
            busy = 0.004 + 0.02 * load if idle else 0.35 + 0.6 * load
            if node not in PROFILING_LESS_NODES:
                results[ENGINE_ACTIVE].append({"metric": labels, "value": [stamp, f"{busy:.6f}"]})
            results[GPU_UTIL].append({"metric": labels, "value": [stamp, f"{min(100.0, busy * 100 + 3):.1f}"]})
            memory = 420 + (300 if idle else 18000 + 40000 * _draw(uid, index, "memory"))
            results[FB_USED].append({"metric": labels, "value": [stamp, str(int(memory))]})
    return {
        metric: {"status": "success", "data": {"resultType": "vector", "result": series}}
        for metric, series in results.items()
    }


# The hub's groups: two courses, a lab and a research group; a user is in at most one, so per group figures add up to
# the department totals. Hub usernames are the users' emails (as the pods' annotations say).
HUB_GROUPS = [("cs101", 0.30), ("stat200", 0.15), ("phys-lab", 0.10), ("ml-research", 0.15)]


def hub_group_of(user: SyntheticUser) -> str | None:
    draw = _draw(user.email, "group")
    for name, share in HUB_GROUPS:
        if draw < share:
            return name
        draw -= share
    return None


def _last_activity(uid: str, engaged: float, since: datetime, moment: datetime) -> datetime:
    """When the hub last heard of activity on the server at `moment`: within the latest 5-minute stretch in which the
    user worked (each stretch drawn with probability `engaged`), else when the server started."""
    stretch_end = moment
    for _ in range(288):
        if stretch_end <= since:
            break
        if _draw(uid, "active", stretch_end.isoformat()) < engaged:
            return max(since, stretch_end - STEP * _draw(uid, "when", stretch_end.isoformat()))
        stretch_end -= STEP
    return since


def hub_answers(pods: dict[str, Any], moment: datetime, people: list[SyntheticUser]) -> dict[str, Any]:
    """What the hub's REST API answers at `moment` (GET /hub/api/users?state=active and GET /hub/api/groups, as
    JupyterHub 5+ pages them): a server per pod with its activity (idle notebooks barely touched, the others used
    in 35-95% of the stretches), and the groups."""
    users: dict[str, dict[str, Any]] = {}
    for pod in pods["items"]:
        notebook = pod["spec"]["containers"][0]
        prefix = next((e["value"] for e in notebook.get("env", []) if e["name"] == "JUPYTERHUB_SERVICE_PREFIX"), None)
        if prefix is None:
            continue
        name, server_name = prefix.split("/")[2], pod["metadata"]["annotations"]["hub.jupyter.org/servername"]
        uid, status = pod["metadata"]["uid"], pod["status"]
        running = status["phase"] == "Running"
        gpu = "nvidia.com/gpu" in notebook["resources"]["limits"]
        created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        ready = next(
            (c["lastTransitionTime"] for c in status.get("conditions", []) if c["type"] == "Ready" and running), None
        )
        since = datetime.fromisoformat(ready.replace("Z", "+00:00")) if ready else created
        idle = _draw(uid, "idle") < (0.33 if gpu else 0.2)  # as metrics_document has it
        engaged = 0.03 if idle else 0.35 + 0.6 * _draw(uid, "engaged")
        last = _last_activity(uid, engaged, since, moment) if running else created
        user = users.setdefault(name, {"kind": "user", "name": name, "admin": False, "servers": {}})
        user["servers"][server_name] = {
            "name": server_name,
            "last_activity": _iso_precise(last),
            "started": _iso(created),
            "pending": None if running else "spawn",
            "ready": running,
            "stopped": False,
            "url": f"/user/{name}/{server_name}",
        }
    groups: dict[str, list[str]] = {}
    for person in people:
        group = hub_group_of(person)
        if group:
            groups.setdefault(group, []).append(person.email)
    return {
        "users": {"items": list(users.values()), "_pagination": {"offset": 0, "limit": 200, "next": None}},
        "groups": {
            "items": [
                {"kind": "group", "name": name, "users": members, "properties": {}} for name, members in groups.items()
            ],
            "_pagination": {"offset": 0, "limit": 200, "next": None},
        },
    }


def _iso_precise(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# What people keep (spec 3.8): KubeSpawner 7 users have a per-user volume (z2jh's dynamic storage), KubeSpawner 6
# users a directory on a shared home volume (prometheus-dirsize-exporter); the rest keep nothing the hub shows.
# People who left keep theirs: volumes whose owner the directory knows but who had no session here, and home
# directories no pod ever showed the name of (owner unknown): the stale homes list.
ALUMNI_VOLUMES = 3
UNKNOWN_HOME_DIRECTORIES = ("former-2dta-2d2019", "visiting-2dscholar")
GIB = 2**30


def _volume_name(user: SyntheticUser) -> str:
    return f"claim-{safe_slug_kubespawner7(user.email)}"


def _alumnus(number: int) -> str:
    return f"alumnus{number}@{EMAIL_DOMAIN}"


def _size_bytes(owner: str, moment: datetime) -> int:
    """Grows a little every hour it is used, from a size drawn per owner (up to 60 GiB)."""
    hours = int(moment.timestamp() // 3600)
    base = int(_draw(owner, "home") ** 2 * 60 * GIB)
    return base + int(hours % 10_000 * _draw(owner, "growth") * 2**22)


def claims_document(people: list[SyntheticUser], moment: datetime) -> list[dict[str, Any]]:
    """The PVCs KubeSpawner made for users (`kubectl get pvc -l component=singleuser-storage -o json` items)."""

    def claim(name: str, username: str, escaped: str, capacity: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "labels": {"component": "singleuser-storage", "hub.jupyter.org/username": escaped},
                "annotations": {"hub.jupyter.org/username": username, "hub.jupyter.org/servername": ""},
            },
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": capacity}}},
            "status": {"phase": "Bound", "capacity": {"storage": capacity}},
        }

    items = [
        claim(_volume_name(user), user.email, safe_slug_kubespawner7(user.email), "100Gi")
        for user in people
        if user.pod_shape == "ks7"
    ]
    for number in range(ALUMNI_VOLUMES):
        email = _alumnus(number)
        items.append(claim(f"claim-{safe_slug_kubespawner7(email)}", email, safe_slug_kubespawner7(email), "50Gi"))
    return items


def storage_answers(people: list[SyntheticUser], moment: datetime, running: set[str]) -> dict[str, Any]:
    """What Prometheus answers for kubelet's volume figures (only for volumes a running pod mounts) and the
    exporter's home directory figures (all of them), one answer per metric, at `moment` (sizes change hourly)."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    series: dict[str, list[dict[str, Any]]] = {}

    def add(metric: str, labels: dict[str, str], value: float) -> None:
        series.setdefault(metric, []).append(
            {"metric": {"__name__": metric, **labels}, "value": [moment.timestamp(), str(value)]}
        )

    for user in people:
        size = _size_bytes(user.email, hour)
        if user.pod_shape == "ks7" and user.email in running:
            labels = {"namespace": NAMESPACE, "persistentvolumeclaim": _volume_name(user)}
            add("kubelet_volume_stats_used_bytes", labels, size)
            add("kubelet_volume_stats_capacity_bytes", labels, 100 * GIB)
            add("kubelet_volume_stats_inodes_used", labels, size // 2**20)
        elif user.pod_shape == "ks6":
            directory = {"namespace": NAMESPACE, "directory": escape_kubespawner6(user.email)}
            add("dirsize_total_size_bytes", directory, size)
            add("dirsize_entries_count", directory, size // 2**20)
            add("dirsize_latest_mtime", directory, int(hour.timestamp()) - int(_draw(user.email, "mtime") * 86400))
            add("dirsize_hard_limit_bytes", directory, 50 * GIB)
    for name in UNKNOWN_HOME_DIRECTORIES:
        directory = {"namespace": NAMESPACE, "directory": name}
        add("dirsize_total_size_bytes", directory, _size_bytes(name, datetime(2024, 1, 1, tzinfo=UTC)))
        add("dirsize_latest_mtime", directory, int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()))
        add("dirsize_hard_limit_bytes", directory, 50 * GIB)
    return {metric: {"status": "success", "data": {"resultType": "vector", "result": found}} for metric, found in
            series.items()}  # fmt: skip
