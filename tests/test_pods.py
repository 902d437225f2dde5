"""Row extraction from realistic pods: pure functions, no network, no database."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from loader.config import DEFAULT_NAME_SOURCES, DEFAULT_USER_SOURCES
from loader.pods import (
    Observation,
    Skip,
    UserSource,
    matches_selector,
    observation_from_pod,
    parse_image,
    parse_memory,
)
from loader.synthetic import escape_kubespawner6, safe_slug_kubespawner7
from tests.pod_factory import KUBESPAWNER_6_POD, KUBESPAWNER_7_POD, pod

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DEFAULT_SOURCES = [UserSource.parse(text) for text in DEFAULT_USER_SOURCES]
DEFAULT_NAMES = [UserSource.parse(text) for text in DEFAULT_NAME_SOURCES]


def extract(document, sources=DEFAULT_SOURCES, **kwargs):
    kwargs.setdefault("name_sources", DEFAULT_NAMES)
    return observation_from_pod(document, observed_at=AT, user_sources=sources, **kwargs)


@pytest.mark.parametrize(
    ("image", "base", "version"),
    [
        ("registry.example.edu:5000/team/img:2.1", "img", "2.1"),
        ("host:5000/team/img", "img", "latest"),
        ("img", "img", "latest"),
        ("img:tag", "img", "tag"),
        ("quay.io/jupyter/scipy-notebook:2026-09-01", "scipy-notebook", "2026-09-01"),
        ("ghcr.io/org/a/b/c/deep-nested:v1", "deep-nested", "v1"),
        ("img@sha256:" + "a" * 64, "img", "sha256:" + "a" * 64),
        ("localhost:5000/img@sha256:" + "b" * 64, "img", "sha256:" + "b" * 64),
        ("docker.io/library/python:3.11@sha256:" + "c" * 64, "python", "3.11"),
    ],
)
def test_image_forms(image, base, version):
    parsed = parse_image(image)
    assert (parsed.base, parsed.version, parsed.image) == (base, version, image)


@pytest.mark.parametrize("image", ["", "   ", "host:5000/", "img@md5:abc"])
def test_bad_images_are_errors(image):
    with pytest.raises(ValueError):
        parse_image(image)


def test_kubespawner7_named_server_with_gpus():
    row = extract(KUBESPAWNER_7_POD, cluster="campus")
    assert isinstance(row, Observation)
    assert row.user_email == "jane.doe@example.edu"
    # user_name is the person's name (GIT_AUTHOR_NAME), as in the predecessor's rows.
    assert (row.user_name, row.hub_username) == ("Jane Doe", "Jane.Doe@Example.edu")
    assert row.pod_name == "jupyter-jane-doe---2f1a9c3e--thesis"
    assert row.server_name == "thesis"
    assert row.node_name == "gpu-a100-01"
    assert (row.container_base, row.container_version) == ("pytorch-notebook", "2.5-cuda12")
    assert row.gpu_count == 2
    assert row.cpu_request == Decimal("1.5")
    assert row.memory_request_bytes == 16 * 2**30
    assert row.age_seconds == 3600
    assert row.pod_started_at == datetime(2026, 11, 2, 9, 0, 7, tzinfo=UTC)
    assert (row.cluster, row.namespace, row.pod_uid) == ("campus", "jhub", "6f1c2d1e-8c1b-4a8e-9f55-0b7a3c2d9e10")


def test_kubespawner6_escaped_name_default_server_and_email_domain():
    row = extract(KUBESPAWNER_6_POD, email_domain="example.edu")
    assert isinstance(row, Observation)
    assert row.user_email == "bob.smith@example.edu"
    # No GIT_AUTHOR_NAME on this pod: the hub username.
    assert row.user_name == row.hub_username == "bob.smith"
    assert row.pod_name == "jupyter-bob-2esmith"
    assert row.server_name == ""
    assert (row.container_base, row.container_version) == ("scipy-notebook", "latest")
    assert row.gpu_count == 0
    assert row.cpu_request == Decimal("0.5")
    assert row.memory_request_bytes == 2 * 10**9


def test_identity_from_env_when_configured_first():
    sources = [UserSource.parse("env:GIT_AUTHOR_EMAIL"), UserSource.parse("annotation:hub.jupyter.org/username")]
    assert extract(KUBESPAWNER_7_POD, sources).user_email == "jdoe@cs.example.edu"


def test_identity_falls_back_to_env_then_label():
    no_annotation = pod(metadata__annotations={})
    assert extract(no_annotation).user_email == "jane.doe@example.edu"
    label_only = pod(KUBESPAWNER_6_POD, metadata__annotations=None)
    label_only["spec"]["containers"][0]["env"] = []
    row = extract(label_only)
    assert row.user_email == "bob-2esmith"
    assert extract(label_only, email_domain="example.edu").user_email == "bob-2esmith@example.edu"


def test_pod_without_identity_is_skipped_with_reason():
    anonymous = pod(KUBESPAWNER_6_POD, metadata__annotations=None, metadata__labels={"component": "singleuser-server"})
    anonymous["spec"]["containers"][0]["env"] = []
    result = extract(anonymous)
    assert isinstance(result, Skip) and result.reason == "no_identity"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"spec__nodeName": None}, "no_node"),
        ({"metadata__name": None}, "malformed"),
        ({"metadata__creationTimestamp": "yesterday"}, "malformed"),
        ({"metadata__creationTimestamp": None}, "malformed"),
        ({"spec__containers": []}, "malformed"),
    ],
)
def test_broken_pods_are_skipped_with_reason(changes, reason):
    result = extract(pod(**changes))
    assert isinstance(result, Skip) and result.reason == reason


def test_malformed_resources_are_skipped():
    broken = pod()
    broken["spec"]["containers"][0]["resources"]["requests"]["memory"] = "lots"
    result = extract(broken)
    assert isinstance(result, Skip) and result.reason == "malformed" and "lots" in result.detail


def test_amd_and_intel_gpus_and_limits_only():
    amd = pod()
    amd["spec"]["containers"][0]["resources"] = {"limits": {"amd.com/gpu": "1", "gpu.intel.com/i915": "1"}}
    assert extract(amd).gpu_count == 2
    no_resources = pod()
    del no_resources["spec"]["containers"][0]["resources"]
    assert extract(no_resources).gpu_count is None


def test_first_container_when_none_is_called_notebook():
    renamed = pod()
    renamed["spec"]["containers"][0]["name"] = "jupyter"
    assert extract(renamed).container_base == "pytorch-notebook"


def test_unicode_and_sql_looking_names_are_kept_verbatim():
    tricky = pod(metadata__annotations={"hub.jupyter.org/username": "Zoë.O'Brien'); drop table users;--@example.edu"})
    row = extract(tricky)
    assert row.user_email == "zoë.o'brien'); drop table users;--@example.edu"


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("1Gi", 2**30), ("512Mi", 512 * 2**20), ("1e9", 10**9), ("2G", 2 * 10**9), ("1.5Gi", 3 * 2**29), (1024, 1024)],
)
def test_memory_quantities(quantity, expected):
    assert parse_memory(quantity) == expected


def test_selector_matching():
    assert matches_selector(KUBESPAWNER_7_POD, "component=singleuser-server")
    assert matches_selector(KUBESPAWNER_7_POD, "component==singleuser-server,app=jupyterhub")
    assert not matches_selector(KUBESPAWNER_7_POD, "component=hub")
    assert not matches_selector(KUBESPAWNER_7_POD, "app!=jupyterhub")
    assert matches_selector(KUBESPAWNER_7_POD, "release")
    assert not matches_selector(KUBESPAWNER_7_POD, "!release")


def test_user_source_syntax_is_checked():
    with pytest.raises(ValueError):
        UserSource.parse("header:x-user")


def test_kubespawner_name_escaping_shapes():
    assert escape_kubespawner6("bob.smith") == "bob-2esmith"
    assert safe_slug_kubespawner7("alice") == "alice"
    slug = safe_slug_kubespawner7("Jane.Doe@Example.edu")
    assert slug.startswith("jane-doe-example-edu---") and len(slug.rsplit("-", 1)[-1]) == 8


def test_name_sources_are_configurable_like_identity_sources():
    row = extract(KUBESPAWNER_7_POD, name_sources=[UserSource.parse("env:JUPYTERHUB_USER")])
    assert row.user_name == "Jane.Doe@Example.edu"
    row = extract(KUBESPAWNER_7_POD, name_sources=[UserSource.parse("annotation:example.edu/display-name")])
    assert row.user_name == "Jane.Doe@Example.edu"  # no such annotation: the hub username
