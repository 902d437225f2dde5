"""Realistic single-user pods as KubeSpawner 6 and 7 create them (what `kubectl get pods -o json` shows)."""

from __future__ import annotations

import copy
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
