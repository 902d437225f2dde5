"""`jupyterhub-metrics collect`: one observation per running single-user pod."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from loader.cli.common import JSON_HELP, command, print_json, settings


@command
def collect(
    namespace: list[str] = typer.Option([], "--namespace", "-n", help="Namespace to watch (repeat); default all."),
    selector: str | None = typer.Option(None, help="Label selector of single-user pods [component=singleuser-server]."),
    user_from: str | None = typer.Option(
        None,
        help="Comma-separated identity sources in order: annotation:KEY, env:NAME, label:KEY "
        "[annotation:hub.jupyter.org/username,env:JUPYTERHUB_USER,label:hub.jupyter.org/username].",
    ),
    name_from: str | None = typer.Option(
        None,
        help="Comma-separated sources of the person's name for user_name, in order (same forms as --user-from); "
        "the hub username when none has one [env:GIT_AUTHOR_NAME].",
    ),
    email_domain: str | None = typer.Option(None, help="Domain appended to bare usernames to make emails."),
    cluster: str | None = typer.Option(None, help="Cluster name recorded with every row."),
    from_file: Path | None = typer.Option(None, help="Read `kubectl get pods -o json` output instead of the API."),
    metrics_from_file: Path | None = typer.Option(
        None, help="Read `kubectl get --raw /apis/metrics.k8s.io/v1beta1/pods` output instead of the metrics API."
    ),
    gpu_metrics_from_file: Path | None = typer.Option(
        None, help="Read a saved Prometheus answer of dcgm-exporter's series instead of asking PROMETHEUS_URL."
    ),
    nodes_from_file: Path | None = typer.Option(
        None, help="Read `kubectl get nodes -o json` output for the GPU model where DCGM names none."
    ),
    hub_from_file: Path | None = typer.Option(
        None, help='Read saved hub answers ({"users": ..., "groups": ...}) instead of asking HUB_API_URL.'
    ),
    at: str | None = typer.Option(None, help="Collection time, ISO 8601 (UTC when no offset); default now."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Record one observation per running single-user pod."""
    from loader.collect import (
        MetricsSource,
        NodeModelsSource,
        PodSource,
        Sources,
        collection_time,
        node_models_from_file,
        pods_from_file,
    )
    from loader.collect import collect as run_collection
    from loader.collect import metrics_from_file as metrics_file
    from loader.hub_source import HubSource, read_hub
    from loader.hub_source import hub_from_file as hub_file
    from loader.kubernetes_source import api_client, list_claims, list_gpu_node_models, list_pod_metrics, list_pods
    from loader.prometheus_source import (
        GpuUseSource,
        StorageFiguresSource,
        gpu_use_from_file,
        prometheus_gpu_use,
        prometheus_storage_figures,
    )
    from loader.roles import enforce_reader_timeout
    from loader.storage import CLAIM_SELECTOR

    config = settings()
    overrides: dict[str, Any] = {
        "namespaces": tuple(namespace) or None,
        "selector": selector,
        "user_sources": tuple(part.strip() for part in user_from.split(",") if part.strip()) if user_from else None,
        "name_sources": tuple(part.strip() for part in name_from.split(",") if part.strip()) if name_from else None,
        "email_domain": email_domain,
        "cluster": cluster,
    }
    collect_settings = replace(config.collect, **{key: value for key, value in overrides.items() if value is not None})
    config = replace(config, collect=collect_settings)
    observed_at = collection_time(at) or datetime.now(UTC)
    metrics: MetricsSource | None = metrics_file(metrics_from_file) if metrics_from_file else None
    # GPU use: a replayed answer, else Prometheus (also for a replay of pods, at its --at time) where one is set.
    gpu_use: GpuUseSource | None = (
        gpu_use_from_file(gpu_metrics_from_file)
        if gpu_metrics_from_file
        else prometheus_gpu_use(config.prometheus, collect_settings.namespaces)
        if config.prometheus.url
        else None
    )
    node_models: NodeModelsSource | None = node_models_from_file(nodes_from_file) if nodes_from_file else None
    # The hub's view: saved answers, else the hub's API (also for a replay of pods) where one is set.
    hub: HubSource | None = (
        (lambda: hub_file(hub_from_file, observed_at))
        if hub_from_file
        else (lambda: read_hub(config.hub, observed_at))
        if config.hub.api_url
        else None
    )
    # Storage is read live only: a replay of pods is of a past moment, whose volumes the API no longer shows.
    claims: PodSource | None = None
    storage_figures: StorageFiguresSource | None = (
        prometheus_storage_figures(config.prometheus, collect_settings.namespaces)
        if collect_settings.storage and config.prometheus.url and from_file is None
        else None
    )
    if from_file is not None:
        source = pods_from_file(from_file, collect_settings.selector)
    else:
        # One client (one kubeconfig read) for the pod list and the pod metrics of this collection.
        api = functools.cache(functools.partial(api_client, collect_settings.request_timeout_seconds))

        def source():
            return list_pods(
                api(),
                namespaces=collect_settings.namespaces,
                selector=collect_settings.selector,
                request_timeout=collect_settings.request_timeout_seconds,
                attempts=collect_settings.attempts,
            )

        if metrics is None:

            def read_metrics():
                return list_pod_metrics(
                    api(),
                    namespaces=collect_settings.namespaces,
                    selector=collect_settings.selector,
                    request_timeout=collect_settings.request_timeout_seconds,
                    attempts=2,
                )

            metrics = read_metrics

        if node_models is None and collect_settings.read_nodes:

            def read_node_models():
                return list_gpu_node_models(api(), request_timeout=collect_settings.request_timeout_seconds)

            node_models = read_node_models

        if collect_settings.storage:

            def read_claims():
                return list_claims(
                    api(),
                    namespaces=collect_settings.namespaces,
                    selector=CLAIM_SELECTOR,
                    request_timeout=collect_settings.request_timeout_seconds,
                )

            claims = read_claims

    sources = Sources(
        metrics=metrics,
        gpu_use=gpu_use,
        node_models=node_models,
        hub=hub,
        claims=claims,
        storage_figures=storage_figures,
    )
    result = run_collection(config, source, observed_at=observed_at, sources=sources)
    if as_json:
        print_json(result.document())
    else:
        typer.echo(result.summary())
    enforce_reader_timeout(config)
