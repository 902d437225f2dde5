"""Lists single-user pods with the official Kubernetes client; returns them as kubectl-style dicts."""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from loader.errors import KubernetesError
from loader.gpu import NODE_PRODUCT_LABEL, node_models
from loader.pods import PodUse, pod_use_from_metrics

log = logging.getLogger(__name__)

PAGE_SIZE = 500
# Pods that run, are starting, or failed to start (spec 3.6): every phase but finished ones.
NOT_FINISHED = "status.phase!=Succeeded"


def api_client(request_timeout: float) -> client.ApiClient:
    """In-cluster configuration when running in a pod, else KUBECONFIG or ~/.kube/config."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        try:
            config.load_kube_config(
                config_file=os.environ.get("KUBECONFIG") or None, client_configuration=configuration
            )
        except (ConfigException, OSError) as error:
            raise KubernetesError(
                f"no Kubernetes configuration found ({_one_line(error)}); "
                "run inside the cluster with a service account or set KUBECONFIG"
            ) from None
        except Exception as error:  # a malformed kubeconfig: YAML errors, wrong types, bad base64, ...
            raise KubernetesError(
                f"the Kubernetes configuration could not be read ({type(error).__name__}: {_one_line(error)[:200]}); "
                "check the file KUBECONFIG names"
            ) from None
    # Our own loop retries, with backoff and a bound; urllib3's silent retries would hide attempts.
    configuration.retries = False
    return client.ApiClient(configuration)


def list_pods(
    api: client.ApiClient,
    *,
    namespaces: tuple[str, ...],
    selector: str,
    request_timeout: float,
    attempts: int = 4,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    core = client.CoreV1Api(api)
    return _every_page(
        lambda namespace, continue_token: _list_page(core, namespace, selector, continue_token, request_timeout),
        namespaces,
        what="pods",
        attempts=attempts,
        backoff_seconds=backoff_seconds,
        sleep=sleep,
    )


def _every_page(
    page_of: Callable[[str | None, str | None], Any],
    namespaces: tuple[str, ...],
    *,
    what: str,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
    resource: str = "pods",
    refused_hint: str = "check --namespace and --selector",
) -> list[dict[str, Any]]:
    """Every item of a paginated core-API list, per watched namespace (or across all), each page with retries."""
    items: list[dict[str, Any]] = []
    for namespace in namespaces or (None,):
        continue_token = None
        while True:
            page = _with_retries(
                functools.partial(page_of, namespace, continue_token),
                what=f"listing {what} in {'namespace ' + namespace if namespace else 'all namespaces'}",
                attempts=attempts,
                backoff_seconds=backoff_seconds,
                sleep=sleep,
                resource=resource,
                refused_hint=refused_hint,
            )
            found, continue_token = _page_items(page, namespace, what)
            items.extend(found)
            if not continue_token:
                break
    return items


def list_pod_metrics(
    api: client.ApiClient,
    *,
    namespaces: tuple[str, ...],
    selector: str,
    request_timeout: float,
    attempts: int = 4,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> PodUse | None:
    """The measured use of the selected pods from the metrics API (metrics.k8s.io/v1beta1 PodMetrics, read
    as raw JSON); None where the cluster has no metrics API or may not be asked (one log line each time)."""
    metrics = client.CustomObjectsApi(api)
    use: PodUse = {}
    for namespace in namespaces or (None,):
        kwargs: dict[str, Any] = {
            "label_selector": selector,
            "_request_timeout": request_timeout,
            "_preload_content": False,
        }
        try:
            page = _with_retries(
                functools.partial(
                    metrics.list_namespaced_custom_object, "metrics.k8s.io", "v1beta1", namespace, "pods", **kwargs
                )
                if namespace
                else functools.partial(
                    metrics.list_cluster_custom_object, "metrics.k8s.io", "v1beta1", "pods", **kwargs
                ),
                what="listing pod metrics",
                attempts=attempts,
                backoff_seconds=backoff_seconds,
                sleep=sleep,
                resource="pods.metrics.k8s.io",
                refused_hint="the cluster serves no metrics API (install metrics-server) or not for this namespace",
            )
        except KubernetesError as error:
            log.warning("no measured use in this run (%s)", error)
            return None
        try:
            document = json.loads(page.data)
        except (ValueError, RecursionError):
            log.warning("no measured use in this run: the metrics API sent something that is not JSON")
            return None
        found, malformed = pod_use_from_metrics(document)
        if malformed:
            log.warning("skipped %d malformed pod metrics", malformed)
        use.update(found)
    return use


def list_gpu_node_models(api: client.ApiClient, *, request_timeout: float) -> dict[str, str] | None:
    """Node name -> GPU model from GPU feature discovery's label (nvidia.com/gpu.product); None where nodes may not be
    read (403: the chart's rbac.readNodes is off) or the API fails (one log line each time)."""
    core = client.CoreV1Api(api)
    try:
        page = _with_retries(
            functools.partial(
                core.list_node,
                label_selector=NODE_PRODUCT_LABEL,
                _request_timeout=request_timeout,
                _preload_content=False,
            ),
            what="listing nodes",
            attempts=2,
            backoff_seconds=1.0,
            sleep=time.sleep,
            resource="nodes",
            refused_hint="the GPU model stays unknown where DCGM gives none",
        )
        document = json.loads(page.data)
    except KubernetesError as error:
        log.warning("no GPU models from nodes in this run (%s)", error)
        return None
    except (ValueError, RecursionError):
        log.warning("no GPU models from nodes in this run: the API sent a node list that is not JSON")
        return None
    return node_models(document)


def list_claims(
    api: client.ApiClient,
    *,
    namespaces: tuple[str, ...],
    selector: str,
    request_timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """The users' PersistentVolumeClaims (KubeSpawner labels them component=singleuser-storage), as raw JSON;
    KubernetesError in one line where they may not be listed (the chart's Role grants it)."""
    core = client.CoreV1Api(api)

    def page_of(namespace: str | None, continue_token: str | None) -> Any:
        kwargs: dict[str, Any] = {
            "label_selector": selector,
            "limit": PAGE_SIZE,
            "_request_timeout": request_timeout,
            "_preload_content": False,
        }
        if continue_token:
            kwargs["_continue"] = continue_token
        if namespace:
            return core.list_namespaced_persistent_volume_claim(namespace, **kwargs)
        return core.list_persistent_volume_claim_for_all_namespaces(**kwargs)

    return _every_page(
        page_of,
        namespaces,
        what="persistent volume claims",
        attempts=2,
        backoff_seconds=1.0,
        sleep=sleep,
        resource="persistentvolumeclaims",
        refused_hint="per-user volumes stay unknown",
    )


def _page_items(page: Any, namespace: str | None, what: str = "pods") -> tuple[list[Any], str | None]:
    """A page as the API sent it (raw JSON, not the client's models): one malformed pod must not fail the
    list, it is checked and skipped with the others' rows kept (loader.pods)."""
    where = f"namespace {namespace}" if namespace else "all namespaces"
    try:
        document = json.loads(page.data)
    except (ValueError, RecursionError):
        raise KubernetesError(
            f"the Kubernetes API sent a list of {what} for {where} that is not JSON; check the API server"
        ) from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise KubernetesError(
            f"the Kubernetes API sent a list of {what} for {where} without `items`; check the API server"
        )
    metadata = document.get("metadata")
    continue_token = metadata.get("continue") if isinstance(metadata, dict) else None
    return items, continue_token if isinstance(continue_token, str) and continue_token else None


def _list_page(
    core: client.CoreV1Api, namespace: str | None, selector: str, continue_token: str | None, timeout: float
):
    kwargs: dict[str, Any] = {
        "label_selector": selector,
        "field_selector": NOT_FINISHED,
        "limit": PAGE_SIZE,
        "_request_timeout": timeout,
        "_preload_content": False,
    }
    if continue_token:
        kwargs["_continue"] = continue_token
    if namespace:
        return core.list_namespaced_pod(namespace, **kwargs)
    return core.list_pod_for_all_namespaces(**kwargs)


def _with_retries(
    call,
    *,
    what: str,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
    resource: str = "pods",
    refused_hint: str = "check --namespace and --selector",
):
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ApiException as error:
            if error.status in (401, 403):
                kind = "credentials were rejected (401)" if error.status == 401 else "access denied (403)"
                raise KubernetesError(
                    f"Kubernetes API {kind} while {what}; check the service account token or kubeconfig "
                    f"and that RBAC allows get and list on {resource}"
                ) from None
            if error.status is not None and error.status < 500 and error.status != 429:
                raise KubernetesError(
                    f"Kubernetes API answered {error.status} {error.reason} while {what}; {refused_hint}"
                ) from None
            cause = f"HTTP {error.status} {error.reason}"
        except urllib3.exceptions.HTTPError as error:
            cause = _one_line(error)
        if attempt == attempts:
            raise KubernetesError(
                f"Kubernetes API failed {attempts} times while {what} (last: {cause}); "
                "check that the API server is reachable and healthy"
            )
        delay = min(backoff_seconds * 2 ** (attempt - 1), 30.0)
        log.warning("%s failed (%s); retrying in %.1f s (attempt %d of %d)", what, cause, delay, attempt, attempts)
        sleep(delay)
    raise AssertionError("unreachable")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] or type(error).__name__
