"""The container image's layout, without a Docker engine: the project files where the Dockerfile puts
them (JHM_PROJECT_DIR), dbt writing only where DBT_TARGET_PATH and DBT_LOG_PATH say, and the image's declared
user and command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from loader.config import PROJECT_ROOT

pytestmark = pytest.mark.dbt

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()


def test_dockerfile_runs_as_non_root_with_the_cycle_as_default_command():
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.MULTILINE)
    assert 'CMD ["sh", "-c", "jupyterhub-metrics collect && jupyterhub-metrics build"]' in DOCKERFILE
    for copied in ("bootstrap_sql", "dbt_project", "profiles.example.yml"):
        assert f"COPY {copied} " in DOCKERFILE


def test_the_image_layout_migrates_and_builds(database, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    for copied in ("bootstrap_sql", "dbt_project"):
        shutil.copytree(
            PROJECT_ROOT / copied, app / copied, symlinks=True, ignore=shutil.ignore_patterns("target", "logs")
        )
    shutil.copy(PROJECT_ROOT / "profiles.example.yml", app / "profiles.example.yml")
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DB_", "DBT_"))},
        **database.environment(),
        "JHM_PROJECT_DIR": str(app),
        "DBT_TARGET_PATH": str(tmp_path / "dbt" / "target"),
        "DBT_LOG_PATH": str(tmp_path / "dbt" / "logs"),
    }
    for command in (["db", "migrate"], ["build"]):
        result = subprocess.run(
            [sys.executable, "-m", "loader", *command],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "dbt" / "target" / "manifest.json").exists()
    # The image's root filesystem is read-only: nothing may be written inside the project.
    assert sorted(path.name for path in (app / "dbt_project").iterdir()) == sorted(
        path.name for path in (PROJECT_ROOT / "dbt_project").iterdir() if path.name not in ("target", "logs")
    )
