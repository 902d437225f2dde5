"""`report`: the HTML a department head opens. Every figure on the page (its exact value in data-value) is checked
against the marts it summarises (department_usage, department_gpu_usage, term_usage, user_sessions, failed_starts),
queried here on their own; the page is opened in a real Chromium with the network cut off."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from loader.cli import app
from loader.demo import load_synthetic_hub, quiet, with_example_seeds
from loader.migrate import migrate
from loader.raw_store import write_directory_entries
from loader.report import FIGURES, HUB, shown
from loader.synthetic import directory_entries, synthetic_users
from stand_ins import browser
from tests.conftest import needs, settings_for
from tests.dbt_helpers import dbt

pytestmark = pytest.mark.dbt

# Twelve days across a month end: November's report has October to compare with.
END = datetime(2026, 11, 6, tzinfo=UTC)
MONTH, FIRST, LAST = "2026-11", "2026-11-01", "2026-11-30"
needs_chromium = needs(browser.executable() is not None, browser.INSTALL_HINT)


@pytest.fixture(scope="module")
def hub(module_database):
    settings = with_example_seeds(settings_for(module_database))
    with psycopg.connect(autocommit=True, **module_database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
        with quiet("loader.collect"):
            load_synthetic_hub(settings, days=12, users=40, seed=5, end=END)
        write_directory_entries(conn, settings.raw_schema, directory_entries(synthetic_users(40, 5), 5))
        dbt(settings, "build")
        yield settings, conn


class Figures(HTMLParser):
    """data-figure -> data-value of every figure cell; the number of charts and of their drawn shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, float | None] = {}
        self.charts = 0
        self.shapes_per_chart: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "data-figure" in attributes:
            raw = attributes.get("data-value") or ""
            self.values[attributes["data-figure"] or ""] = float(raw) if raw else None
        if tag == "svg" and "chart" in (attributes.get("class") or ""):
            self.charts += 1
            self.shapes_per_chart.append(0)
        if tag in ("path", "rect", "use") and self.shapes_per_chart:
            self.shapes_per_chart[-1] += 1


def figures_of(text: str) -> Figures:
    parser = Figures()
    parser.feed(text)
    return parser


def report(settings, tmp_path: Path, *options: str) -> Path:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", *options, "--out", str(out)], env=settings.database.environment())
    assert result.exit_code == 0, result.output
    return out


def close(value, expected) -> bool:
    if value is None or expected is None:
        return value is None and expected is None
    return float(value) == pytest.approx(float(expected), rel=1e-9, abs=1e-9)


def assert_month_matches_the_marts(values: dict[str, float | None], conn) -> None:
    month = "date '2026-11-01'"
    checked = 0
    names = ["users", "sessions", "total_hours", "gpu_hours", "cpu_hours", "idle_gpu_hours", "active_hours",
             "cpu_efficiency", "cost"]  # fmt: skip
    rows = conn.execute(f"select department, {', '.join(names)} from analytics.department_usage where month = {month}")
    for department, *marts in rows.fetchall():
        for name, expected in zip(names, marts, strict=True):
            assert close(values[f"{department}|{name}"], expected), (department, name)
            checked += 1
    previous = conn.execute(
        "select department, total_hours from analytics.department_usage where month = date '2026-10-01'"
    ).fetchall()
    for department, hours in previous:
        if f"{department}|previous_total_hours" in values:
            assert close(values[f"{department}|previous_total_hours"], hours), department
            checked += 1
    models = conn.execute(
        "select department, gpu_model, gpu_hours, idle_gpu_hours from analytics.department_gpu_usage"
        f" where month = {month}"
    )
    for department, model, hours, idle in models.fetchall():
        assert close(values[f"{department}|gpu_hours:{model}"], hours) and close(
            values[f"{department}|idle_gpu_hours:{model}"], idle
        )
        checked += 2
    # The whole hub, each figure from its own mart.
    hub = conn.execute(
        "select sum(total_hours), sum(gpu_hours), sum(sessions), sum(cost) from analytics.department_usage"
        f" where month = {month}"
    ).fetchone()
    users = conn.execute(
        f"select count(distinct user_email) from analytics.session_days where day between '{FIRST}' and '{LAST}'"
    ).fetchone()[0]
    on_gpu, by_proxy = conn.execute(
        "select sum(idle_gpu_hours_measured_on_gpu), sum(idle_gpu_hours_from_cpu_proxy)"
        f" from analytics.department_gpu_usage where month = {month}"
    ).fetchone()
    p50, p95 = conn.execute(
        "select percentile_cont(0.5) within group (order by startup_seconds),"
        " percentile_cont(0.95) within group (order by startup_seconds) from analytics.user_sessions"
        f" where (session_start at time zone 'UTC')::date between '{FIRST}' and '{LAST}'"
    ).fetchone()
    failed = conn.execute(
        "select count(*) from analytics.failed_starts"
        f" where (first_seen_pending at time zone 'UTC')::date between '{FIRST}' and '{LAST}'"
    ).fetchone()[0]
    expected_hub = {
        "total_hours": hub[0], "gpu_hours": hub[1], "sessions": hub[2], "cost": hub[3], "users": users,
        "idle_gpu_hours_measured_on_gpu": on_gpu, "idle_gpu_hours_from_cpu_proxy": by_proxy,
        "p50_startup_seconds": p50, "p95_startup_seconds": p95, "failed_starts": failed,
    }  # fmt: skip
    for name, expected in expected_hub.items():
        assert close(values[f"{HUB}|{name}"], expected), name
    images = conn.execute(
        "select container_base, sum(runtime_hours) from analytics.user_sessions"
        f" where (session_start at time zone 'UTC')::date between '{FIRST}' and '{LAST}'"
        " group by 1 order by 2 desc limit 5"
    ).fetchall()
    for image, hours in images:
        assert close(values[f"{HUB}|image_hours:{image}"], hours), image
    assert checked > 100 and failed > 0 and p50 is not None and hub[3] is not None


def test_the_month_report_shows_what_the_marts_hold(hub, tmp_path):
    settings, conn = hub
    page = figures_of(report(settings, tmp_path, "--month", MONTH).read_text(encoding="utf-8"))
    assert {f"{HUB}|{figure.name}" for figure in FIGURES} <= set(page.values)
    assert_month_matches_the_marts(page.values, conn)


def test_the_report_shows_storage_and_each_departments_allocations_as_the_marts_hold_them(hub, tmp_path):
    settings, conn = hub
    values = figures_of(report(settings, tmp_path, "--month", MONTH).read_text(encoding="utf-8")).values
    storage = conn.execute(
        "select department, gb_months, storage_cost from analytics.department_storage_usage where month = %s",
        (FIRST,),
    ).fetchall()
    assert storage
    for department, gb_months, cost in storage:
        assert close(values[f"{department}|storage_gb_months"], gb_months), department
        assert close(values[f"{department}|storage_cost"], cost), department
    hub_storage = sum(gb_months for _, gb_months, _ in storage)
    assert close(values[f"{HUB}|storage_gb_months"], hub_storage)
    allocations = conn.execute(
        "select allocation_name, grantee_kind, grantee, amount, used, percent_used from analytics.allocation_days"
        " where starts_on <= %s and ends_on >= %s and day = least(ends_on, %s, (now() at time zone 'UTC')::date)",
        (LAST, FIRST, LAST),
    ).fetchall()
    assert allocations  # the demo's examples, dated from today
    for name, kind, grantee, amount, used, percent in allocations:
        for scope in [HUB] + ([grantee] if kind == "department" and f"{grantee}|users" in values else []):
            assert close(values[f"{scope}|allocation_amount:{name}"], amount), (scope, name)
            assert close(values[f"{scope}|allocation_used:{name}"], used), (scope, name)
            assert close(values[f"{scope}|allocation_percent_used:{name}"], percent), (scope, name)


def test_a_term_report_adds_up_the_terms_days_as_term_usage_does(hub, tmp_path):
    settings, conn = hub
    page = figures_of(report(settings, tmp_path, "--term", "Fall 2026").read_text(encoding="utf-8"))
    names = ["users", "sessions", "total_hours", "gpu_hours", "cpu_hours", "idle_gpu_hours", "active_hours", "cost"]
    rows = conn.execute(f"select department, {', '.join(names)} from analytics.term_usage where term = 'Fall 2026'")
    checked = 0
    for department, *marts in rows.fetchall():
        for name, expected in zip(names, marts, strict=True):
            assert close(page.values[f"{department}|{name}"], expected), (department, name)
            checked += 1
    assert checked >= 40
    assert page.values[f"{HUB}|previous_total_hours"] is None  # Summer 2026, the term before, had no sessions


def test_pseudonymised_reports_show_no_department_with_fewer_users_than_asked(hub, tmp_path):
    settings, conn = hub
    text = report(settings, tmp_path, "--month", MONTH, "--pseudonymize", "--min-users", "5").read_text()
    page = figures_of(text)
    shown = {key.split("|")[0] for key in page.values} - {HUB}
    small = {
        department
        for department, users in conn.execute(
            "select department, users from analytics.department_usage where month = date '2026-11-01'"
        ).fetchall()
        if users < 5
    }
    assert small and not small & shown and "Other" in shown
    assert all(page.values[f"{name}|users"] >= 5 for name in shown)
    assert sum(page.values[f"{name}|total_hours"] for name in shown) == pytest.approx(page.values[f"{HUB}|total_hours"])


def test_how_these_are_counted_comes_from_the_docs_blocks_with_the_rules_in_force(hub, tmp_path):
    settings, _ = hub
    text = report(settings, tmp_path, "--month", MONTH).read_text()
    how = text[text.index("How these are counted") :]
    assert "<strong>Sessions.</strong>" in how and "<strong>Active time.</strong>" in how
    assert "<code>session_gap_minutes</code> (now <strong>60</strong>)" in how
    assert "{% docs" not in how


@pytest.mark.parametrize(
    ("options", "message", "code"),
    [
        (["--month", MONTH, "--term", "Fall 2026"], "exactly one of --month", 2),
        ([], "exactly one of --month", 2),
        (["--month", "November"], "YYYY-MM", 2),
        (["--term", "Winter 1999"], "known: Fall 2025", 2),
        (["--month", MONTH, "--department", "Astrology"], "no department 'Astrology'", 2),
    ],
)
def test_a_wrong_period_or_department_is_one_line_and_exit_2(hub, tmp_path, options, message, code):
    settings, _ = hub
    result = CliRunner().invoke(
        app, ["report", *options, "--out", str(tmp_path / "r.html")], env=settings.database.environment()
    )
    assert result.exit_code == code and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_without_built_marts_the_report_says_to_build(database, tmp_path):
    settings = settings_for(database)
    with psycopg.connect(autocommit=True, **database.connect_kwargs()) as conn:
        migrate(conn, settings.raw_schema, settings.bootstrap_sql_dir)
    result = CliRunner().invoke(
        app, ["report", "--month", MONTH, "--out", str(tmp_path / "r.html")], env=settings.database.environment()
    )
    assert result.exit_code == 1 and "jupyterhub-metrics build" in result.output


def colours_in(path: Path) -> int:
    """How many colours the screenshot holds (a page that drew nothing has one)."""
    from PIL import Image

    with Image.open(path) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])


@needs_chromium
def test_opened_in_chromium_offline_every_chart_draws_and_the_numbers_are_the_marts(hub, tmp_path):
    settings, conn = hub
    page = report(settings, tmp_path, "--month", MONTH)
    with browser.HeadlessChromium() as chromium:
        dom = chromium.dom(page)
        shot = chromium.screenshot(page, tmp_path / "report.png")
        requests = chromium.requests
    assert requests == []
    rendered = figures_of(dom)
    written = figures_of(page.read_text(encoding="utf-8"))
    assert rendered.values == written.values
    assert_month_matches_the_marts(rendered.values, conn)
    departments = len({key.split("|")[0] for key in rendered.values}) - 1
    assert rendered.charts == departments + 3  # per department and the hub a daily chart; departments; GPU models
    assert all(shapes > 5 for shapes in rendered.shapes_per_chart)
    assert colours_in(shot) > 50  # text, rules and the charts' colours


@needs_chromium
def test_printed_to_pdf_each_department_starts_a_page_and_keeps_its_figures_as_text(hub, tmp_path):
    """Department heads print it: Chromium's own print to PDF, read back with pypdf. The charts stay vectors (no
    image in the PDF), each scope begins a page, and its name and figures are text that can be searched."""
    from pypdf import PdfReader

    settings, conn = hub
    page = report(settings, tmp_path, "--month", MONTH)
    with browser.HeadlessChromium() as chromium:
        printed = PdfReader(chromium.pdf(page, tmp_path / "report.pdf"))
        requests = chromium.requests
    assert requests == []
    texts = [" ".join(sheet.extract_text().split()) for sheet in printed.pages]
    assert all(not sheet.images for sheet in printed.pages)
    departments = [
        name
        for (name,) in conn.execute(
            "select distinct department from analytics.department_usage where month = date '2026-11-01'"
        ).fetchall()
    ]
    assert HUB in texts[0]  # under the title
    for scope in [*departments, "How these are counted"]:
        assert any(text.startswith(scope) for text in texts[1:]), scope
    hours = figures_of(page.read_text(encoding="utf-8")).values[f"{HUB}|total_hours"]
    total_hours = next(figure for figure in FIGURES if figure.name == "total_hours")
    assert shown(total_hours, hours) in " ".join(texts)
    assert len(printed.pages) >= len(departments) + 2


@needs_chromium
def test_the_offline_check_does_see_a_page_that_calls_out(tmp_path):
    """The control for the test above: a page with a web font and a remote image is caught making requests."""
    page = tmp_path / "leaky.html"
    page.write_text(
        "<html><head><link rel='stylesheet' href='https://fonts.googleapis.com/css2?family=Roboto'></head>"
        "<body><img src='http://cdn.example.com/chart.png'><p>figures</p></body></html>"
    )
    with browser.HeadlessChromium() as chromium:
        chromium.dom(page)
        requests = chromium.requests
    assert {browser.host_of(request) for request in requests} == {"fonts.googleapis.com", "cdn.example.com"}


def test_the_report_of_a_department_holds_the_hub_and_that_department_only(hub, tmp_path):
    settings, conn = hub
    department = conn.execute(
        "select department from analytics.department_usage where month = date '2026-11-01' order by users desc limit 1"
    ).fetchone()[0]
    page = figures_of(report(settings, tmp_path, "--month", MONTH, "--department", department).read_text())
    assert {key.split("|")[0] for key in page.values} == {HUB, department}
