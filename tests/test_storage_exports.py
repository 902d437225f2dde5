"""The storage and allocation exports as their readers open them: the stale homes list and the allocations (with
ColdFront's usage attributes) as CSV a spreadsheet reads, and the Open XDMoD Storage-realm file, validated against
the schema written from XDMoD's documentation; every figure equal to the marts."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import jsonschema
import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.config import PROJECT_ROOT
from loader.demo import EXAMPLE_SEEDS, load_synthetic_hub, quiet, with_example_seeds
from loader.export import ALLOCATION_COLUMNS, COLDFRONT_ATTRIBUTES, STALE_HOME_COLUMNS
from loader.migrate import migrate
from tests.conftest import settings_for
from tests.dbt_helpers import dbt

pytestmark = pytest.mark.dbt

SCHEMA = json.loads((PROJECT_ROOT / "tests" / "schemas" / "xdmod_storage.schema.json").read_text())
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def built(module_database):
    settings = with_example_seeds(settings_for(module_database))
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        with quiet("loader.collect"):
            load_synthetic_hub(settings, days=4, users=30, seed=9, end=END)
        dbt(settings, "build")
        yield {**module_database.environment(), **EXAMPLE_SEEDS}, conn


def export(environment, *arguments: str) -> str:
    result = CliRunner().invoke(app, ["export", *arguments], env=environment)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_stale_homes_csv_is_the_list_largest_first(built, tmp_path):
    environment, conn = built
    out = tmp_path / "stale_homes.csv"
    assert "stale homes" in export(environment, "stale-homes", "--out", str(out))
    with out.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == STALE_HOME_COLUMNS
    marts = conn.execute("select volume_name, used_bytes, stale_reason from analytics.stale_homes").fetchall()
    assert len(rows) == len(marts) > 0
    assert {(row["volume_name"], row["stale_reason"]) for row in rows} == {(name, reason) for name, _, reason in marts}
    sizes = [int(row["used_bytes"]) if row["used_bytes"] else -1 for row in rows]
    assert sizes == sorted(sizes, reverse=True)
    assert {"owner unknown", "no session recorded"} <= {row["stale_reason"] for row in rows}
    modified = [row["last_modified_at"] for row in rows if row["last_modified_at"]]
    assert modified and all(datetime.fromisoformat(value).utcoffset() == timedelta(0) for value in modified)


def test_the_allocations_csv_gives_coldfront_its_usage_attributes(built, tmp_path):
    environment, conn = built
    out = tmp_path / "allocations.csv"
    export(environment, "allocations", "--out", str(out))
    with out.open(encoding="utf-8", newline="") as stream:
        rows = {row["allocation_name"]: row for row in csv.DictReader(stream)}
    assert tuple(next(iter(rows.values()))) == ALLOCATION_COLUMNS
    marts = conn.execute("select allocation_name, resource, used, status from analytics.allocation_status").fetchall()
    assert set(rows) == {name for name, *_ in marts}
    for name, resource, used, status in marts:
        row = rows[name]
        assert float(row["used"]) == pytest.approx(float(used), abs=0.005) and row["status"] == status
        if resource in COLDFRONT_ATTRIBUTES:
            assert row["coldfront_attribute"] == COLDFRONT_ATTRIBUTES[resource]
            assert row["coldfront_usage"] == row["used"]
        else:
            assert row["coldfront_attribute"] == row["coldfront_usage"] == ""
    assert {"Accelerator Usage (Hours)", "Core Usage (Hours)"} <= {row["coldfront_attribute"] for row in rows.values()}


def test_the_xdmod_storage_file_validates_and_holds_each_users_complete_days(built, tmp_path):
    environment, conn = built
    out = tmp_path / "xdmod_storage.json"
    since = (END - timedelta(days=3)).date()
    message = export(environment, "xdmod-storage", "--since", since.isoformat(), "--out", str(out))
    records = json.loads(out.read_text())
    jsonschema.validate(records, SCHEMA)
    expected = conn.execute(
        "select count(*), sum(used_bytes) from analytics.storage_days"
        " where storage_day >= %s and storage_day < (now() at time zone 'UTC')::date and used_bytes is not null",
        (since,),
    ).fetchone()
    assert len(records) == expected[0] > 0
    assert sum(record["logical_usage"] for record in records) == expected[1]
    assert "left out" in message  # the home directories no user's pods showed
    keyed = {**environment, "EXPORT_HMAC_KEY": "3b9f0c6e2a7d41e8b5c09f6a1d2e7b4c8a3f5e6d7c9b0a1f2e3d4c5b6a7f8e9d"}
    latest = export(keyed, "xdmod-storage", "--out", str(out), "--pseudonymize", "--resource", "hub-homes")
    assert "storage records" in latest
    pseudonymous = json.loads(out.read_text())
    jsonschema.validate(pseudonymous, SCHEMA)
    assert {record["dt"][:10] for record in pseudonymous} == {(END - timedelta(days=1)).date().isoformat()}
    assert all("@" not in record["user"] and record["resource"] == "hub-homes" for record in pseudonymous)


def test_a_day_that_is_no_day_is_one_line_and_exit_2(built, tmp_path):
    environment, _ = built
    result = CliRunner().invoke(app, ["export", "xdmod-storage", "--since", "yesterday"], env=environment)
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
