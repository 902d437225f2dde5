"""Realistic single-user pods as KubeSpawner 6 and 7 create them (what `kubectl get pods -o json` shows)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

KUBESPAWNER_7_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "jupyter-jane-doe---2f1a9c3e--thesis",
        "namespace": "jhub",
        "uid": "6f1c2d1e-8c1b-4a8e-9f55-0b7a3c2d9e10",
        "creationTimestamp": "2026-11-02T09:00:00Z",
        "labels": {
            "app": "jupyterhub",
            "chart": "jupyterhub-4.0.0",
            "component": "singleuser-server",
            "heritage": "jupyterhub",
            "hub.jupyter.org/network-access-hub": "true",
            "hub.jupyter.org/servername": "thesis",
            "hub.jupyter.org/username": "jane-doe---2f1a9c3e",
            "release": "jhub",
        },
        "annotations": {
            "hub.jupyter.org/servername": "thesis",
            "hub.jupyter.org/username": "Jane.Doe@Example.edu",
        },
    },
    "spec": {
        "nodeName": "gpu-a100-01",
        "containers": [
            {
                "name": "notebook",
                "image": "registry.example.edu:5000/rcs/pytorch-notebook:2.5-cuda12",
                "env": [
                    {"name": "JUPYTERHUB_USER", "value": "Jane.Doe@Example.edu"},
                    {"name": "GIT_AUTHOR_EMAIL", "value": "jdoe@cs.example.edu"},
                    {"name": "GIT_AUTHOR_NAME", "value": "Jane Doe"},
                    {"name": "MEM_GUARANTEE", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}},
                ],
                "resources": {
                    "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"},
                    "requests": {"cpu": "1500m", "memory": "16Gi", "nvidia.com/gpu": "2"},
                },
            },
            {"name": "proxy", "image": "ghcr.io/example/proxy:1.0"},
        ],
    },
    "status": {"phase": "Running", "startTime": "2026-11-02T09:00:07Z"},
}

KUBESPAWNER_6_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "jupyter-bob-2esmith",
        "namespace": "jhub",
        "uid": "0b0e4f8a-1111-4c1d-8d3a-5a6b7c8d9e0f",
        "creationTimestamp": "2026-11-02T08:30:00Z",
        "labels": {
            "app": "jupyterhub",
            "component": "singleuser-server",
            "hub.jupyter.org/username": "bob-2esmith",
        },
        "annotations": {"hub.jupyter.org/username": "bob.smith"},
    },
    "spec": {
        "nodeName": "cpu-standard-03",
        "containers": [
            {
                "name": "notebook",
                "image": "quay.io/jupyter/scipy-notebook",
                "env": [{"name": "JUPYTERHUB_USER", "value": "bob.smith"}],
                "resources": {"requests": {"cpu": "0.5", "memory": "2G"}, "limits": {"cpu": "2", "memory": "4G"}},
            }
        ],
    },
    "status": {"phase": "Running", "startTime": "2026-11-02T08:30:05Z"},
}


def pod(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A deep copy of `base` (KubeSpawner 7 by default) with dotted-path changes; None deletes the key."""
    document = copy.deepcopy(base or KUBESPAWNER_7_POD)
    for path, value in changes.items():
        keys = path.split("__")
        target = document
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
    return document


def pod_list(*pods: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(pods)}


def pod_metrics(pod_document: dict, usage: dict[str, tuple[str, str]]) -> dict:
    """A PodMetrics item as metrics-server serves it: container name -> (cpu, memory) quantities."""
    metadata = pod_document["metadata"]
    return {
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "creationTimestamp": "2026-11-02T10:00:05Z",
            "labels": metadata.get("labels", {}),
        },
        "timestamp": "2026-11-02T09:59:48Z",
        "window": "15.012s",
        "containers": [
            {"name": name, "usage": {"cpu": cpu, "memory": memory}} for name, (cpu, memory) in usage.items()
        ],
    }


# Pods that are not running, as `kubectl get pod -o json` shows KubeSpawner's pods in each documented state
# (Kubernetes' pod lifecycle: phase, conditions, container states). Times: created 10:00:00, observed later.
NOT_READY = {
    "type": "Ready",
    "status": "False",
    "reason": "ContainersNotReady",
    "lastTransitionTime": "2026-11-02T10:00:00Z",
}
SCHEDULED = {
    "type": "PodScheduled",
    "status": "True",
    "lastProbeTime": None,
    "lastTransitionTime": "2026-11-02T10:00:01Z",
}


def _waiting_status(reason: str, message: str) -> dict[str, Any]:
    return {
        "phase": "Pending",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-02T10:00:01Z"},
            NOT_READY,
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            SCHEDULED,
        ],
        "containerStatuses": [
            {
                "name": "notebook",
                "image": "registry.example.edu:5000/rcs/pytorch-notebook:2.5-cuda12",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": reason, "message": message}},
                "lastState": {},
            }
        ],
        "qosClass": "Burstable",
        "startTime": "2026-11-02T10:00:01Z",
    }


def not_running_pod(shape: str, name: str = "jupyter-jane-doe---2f1a9c3e--thesis", uid: str | None = None) -> dict:
    """KubeSpawner 7's pod in `shape`: Unschedulable, ErrImagePull, ImagePullBackOff, ContainerCreating,
    CrashLoopBackOff (of an init container, z2jh's block-cloud-metadata), Evicted or OOMKilled (phase Failed)."""
    document = pod(
        metadata__name=name,
        metadata__uid=uid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{shape}/{name}")),
        metadata__creationTimestamp="2026-11-02T10:00:00Z",
    )
    image = "registry.example.edu:5000/rcs/pytorch-notebook:2.5-cuda12"
    if shape == "Unschedulable":
        document["spec"].pop("nodeName")
        document["status"] = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are "
                    "available: 3 No preemption victims found for incoming pod.",
                    "lastProbeTime": None,
                    "lastTransitionTime": "2026-11-02T10:00:00Z",
                }
            ],
            "qosClass": "Burstable",
        }
    elif shape == "ErrImagePull":
        document["status"] = _waiting_status(
            "ErrImagePull", f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found'
        )
    elif shape == "ImagePullBackOff":
        document["status"] = _waiting_status("ImagePullBackOff", f'Back-off pulling image "{image}"')
    elif shape == "ContainerCreating":
        document["status"] = _waiting_status("ContainerCreating", "")
        del document["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    elif shape == "CrashLoopBackOff":
        document["spec"]["initContainers"] = [{"name": "block-cloud-metadata", "image": "busybox:1.36"}]
        document["status"] = _waiting_status("PodInitializing", "")
        document["status"]["conditions"][0] = {
            "type": "Initialized",
            "status": "False",
            "reason": "ContainersNotInitialized",
            "message": "containers with incomplete status: [block-cloud-metadata]",
        }
        document["status"]["initContainerStatuses"] = [
            {
                "name": "block-cloud-metadata",
                "image": "busybox:1.36",
                "ready": False,
                "restartCount": 4,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 1m20s restarting failed container=block-cloud-metadata",
                    }
                },
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2026-11-02T10:01:40Z"}},
            }
        ]
    elif shape == "Evicted":
        document["status"] = {
            "phase": "Failed",
            "reason": "Evicted",
            "message": "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91Mi.",
            "startTime": "2026-11-02T10:00:01Z",
        }
    elif shape == "OOMKilled":
        document["status"] = _waiting_status("ContainerCreating", "")
        document["status"]["phase"] = "Failed"
        document["status"]["containerStatuses"][0]["state"] = {
            "terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-11-02T10:03:00Z"}
        }
    else:
        raise ValueError(shape)
    return document


def running_pod_with_conditions(name: str, uid: str, created: str, scheduled: str, ready: str, **changes: Any) -> dict:
    """KubeSpawner 7's pod, running, with the conditions Kubernetes sets as it starts (PodScheduled, Initialized,
    ContainersReady, Ready, each with its lastTransitionTime)."""
    document = pod(metadata__name=name, metadata__uid=uid, metadata__creationTimestamp=created, **changes)
    document["status"] = {
        "phase": "Running",
        "startTime": scheduled,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": scheduled},
            {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": ready},
            {"type": "ContainersReady", "status": "True", "lastProbeTime": None, "lastTransitionTime": ready},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": scheduled},
        ],
    }
    return document
