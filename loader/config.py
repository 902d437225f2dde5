"""The one configuration object, read from the environment (and a `.env` file if present).

Every setting is declared once, in SETTINGS: its variable, default, meaning, and the field of Settings it fills
with which parser. load_settings reads them all from that table, the dataclasses take their defaults from it,
.env.example is rendered from it, and the chart's values, the dbt project's fallbacks and the README are tested
against it.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from loader.errors import ConfigurationError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(os.environ.get("JHM_PROJECT_DIR", Path(__file__).resolve().parent.parent))
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DEFAULT_USER_SOURCES = (
    "annotation:hub.jupyter.org/username",
    "env:JUPYTERHUB_USER",
    "label:hub.jupyter.org/username",
)
# The person's name for user_name (spec 3.1); when no source has one, the hub username.
DEFAULT_NAME_SOURCES = ("env:GIT_AUTHOR_NAME",)

Parser = Callable[[str, str], Any]


def _text(variable: str, value: str) -> str:
    return value


def _optional(variable: str, value: str) -> str | None:
    return value or None


def _url(variable: str, value: str) -> str:
    return value.rstrip("/")


def _optional_url(variable: str, value: str) -> str | None:
    return value.rstrip("/") or None


def _schema_name(variable: str, value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ConfigurationError(
            f"{variable}={value!r} is not a valid schema name: use lower-case letters, digits and underscores"
        )
    return value


def _int(variable: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{variable}={value!r} is not a whole number") from None


def _minutes(variable: str, value: str) -> int:
    minutes = _int(variable, value)
    if minutes < 0 or (minutes and 1440 % minutes):
        raise ConfigurationError(f"{variable}={value!r} must be 0 or divide a day (5, 15, 60, 1440, ...) in minutes")
    return minutes


def _seconds(variable: str, value: str) -> float:
    return float(_int(variable, value))


def _whole_days(variable: str, value: str) -> str:
    """A count of days (at least one), kept as text like the other rules."""
    if _int(variable, value) < 1:
        raise ConfigurationError(f"{variable}={value!r} is not a number of days (1 or more)")
    return value


def _number(variable: str, value: str) -> str:
    """A decimal number, kept as text (dbt receives it as it was given)."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ConfigurationError(f"{variable}={value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ConfigurationError(f"{variable}={value!r} is not a finite, non-negative number")
    return value


def _list(variable: str, value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _boolean(variable: str, value: str) -> str:
    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigurationError(f"{variable}={value!r} is not true or false")
    return value


def _flag(variable: str, value: str) -> bool:
    return _boolean(variable, value).lower() in ("true", "1", "yes")


def _path(variable: str, value: str) -> Path:
    return Path(value)


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default (as text), what it means, its group in .env.example, and the
    Settings field it fills (`database.host`; a rule when the group is Rules) with its parser."""

    name: str
    default: str
    help: str
    group: str
    target: str | None = None
    parse: Parser = _text
    secret: bool = False


# Every setting, once. .env.example is rendered from these (`python -m loader.config`, a test keeps them equal) and
# the README's table names each of them (a test checks).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DB_HOST", "127.0.0.1", "Database host: a name, an address, or a socket folder.", "Database", "database.host"
    ),
    Setting("DB_PORT", "5432", "Database port.", "Database", "database.port", _int),
    Setting("DB_NAME", "jupyterhub_metrics", "Database name.", "Database", "database.name"),
    Setting(
        "DB_USER", "postgres", "Database user (owner of the raw and analytics schemas).", "Database", "database.user"
    ),
    Setting("DB_PASSWORD", "", "Database password; never logged.", "Database", "database.password", secret=True),
    Setting(
        "DB_SSLMODE", "prefer", "libpq sslmode: disable, prefer, require, verify-full.", "Database", "database.sslmode"
    ),
    Setting(
        "RAW_SCHEMA",
        "raw",
        "Schema of the raw tables (`public` adopts a predecessor database in place).",
        "Database",
        "raw_schema",
        _schema_name,
    ),
    Setting(
        "DBT_SCHEMA",
        "analytics",
        "Schema dbt builds its models into; never the raw schema.",
        "Database",
        "analytics_schema",
        _schema_name,
    ),
    Setting("DBT_THREADS", "4", "dbt threads.", "Database"),
    Setting(
        "DBT_LOCK_WAIT_SECONDS",
        "240",
        "How long a build or check waits for another one to finish.",
        "Database",
        "build_lock_wait_seconds",
        _seconds,
    ),
    Setting(
        "SESSION_GAP_MINUTES", "60", "A gap longer than this between observations ends a session.", "Rules", parse=_int
    ),
    Setting("CPU_NODE_PATTERN", "cpu", "Where a pod's GPU request is unknown: a node named with this is CPU.", "Rules"),
    Setting(
        "GPU_NODE_PATTERNS", "", "Comma-separated: where set, only nodes named with one of these are GPU.", "Rules"
    ),
    Setting(
        "IDLE_CPU_CORES",
        "0.05",
        "A notebook using less CPU than this (cores) at two observations idles between.",
        "Rules",
        parse=_number,
    ),
    Setting(
        "IDLE_GPU_UTILIZATION",
        "0.05",
        "A GPU busy less than this (0..1, DCGM) at two observations idles between.",
        "Rules",
        parse=_number,
    ),
    Setting(
        "STALE_HOME_DAYS",
        "180",
        "Stale homes: volumes whose owner's last session ended more than this many days ago.",
        "Rules",
        parse=_whole_days,
    ),
    Setting(
        "EXAMPLE_COST_RATES",
        "false",
        "The demo's example cost rates instead of seeds/cost_rates.csv.",
        "Rules",
        parse=_boolean,
    ),
    Setting(
        "EXAMPLE_ALLOCATIONS",
        "false",
        "The demo's example allocations (dated from today) instead of seeds/allocations.csv.",
        "Rules",
        parse=_boolean,
    ),
    Setting(
        "COLLECT_NAMESPACES",
        "",
        "Comma-separated namespaces to watch; empty watches all.",
        "Collection",
        "collect.namespaces",
        _list,
    ),
    Setting(
        "COLLECT_SELECTOR",
        "component=singleuser-server",
        "Label selector of single-user pods.",
        "Collection",
        "collect.selector",
    ),
    Setting(
        "COLLECT_USER_FROM",
        ",".join(DEFAULT_USER_SOURCES),
        "Identity sources in order: annotation:KEY, env:NAME, label:KEY.",
        "Collection",
        "collect.user_sources",
        _list,
    ),
    Setting(
        "COLLECT_NAME_FROM",
        ",".join(DEFAULT_NAME_SOURCES),
        "Sources of the person's name stored as user_name (same forms); else the hub username.",
        "Collection",
        "collect.name_sources",
        _list,
    ),
    Setting(
        "COLLECT_EMAIL_DOMAIN",
        "",
        "Appended to bare usernames to make emails (e.g. example.edu).",
        "Collection",
        "collect.email_domain",
        _optional,
    ),
    Setting(
        "CLUSTER_NAME",
        "",
        "Recorded with every row; name each cluster when several report into one database.",
        "Collection",
        "collect.cluster",
        _optional,
    ),
    Setting(
        "KUBE_REQUEST_TIMEOUT",
        "30",
        "Seconds per Kubernetes API request (outside a cluster, KUBECONFIG is read).",
        "Collection",
        "collect.request_timeout_seconds",
        _seconds,
    ),
    Setting(
        "COLLECT_READ_NODES",
        "false",
        "Read the nodes' nvidia.com/gpu.product label for the GPU model where DCGM gives none (needs RBAC on nodes).",
        "Collection",
        "collect.read_nodes",
        _flag,
    ),
    Setting(
        "COLLECT_STORAGE",
        "true",
        "Read users' storage at each collection: KubeSpawner's PVCs (needs get and list on persistentvolumeclaims) and,"
        " where PROMETHEUS_URL is set, kubelet's volume figures and prometheus-dirsize-exporter's home directories.",
        "Collection",
        "collect.storage",
        _flag,
    ),
    Setting(
        "COLLECT_STORAGE_EVERY_MINUTES",
        "60",
        "Read storage at the first collection of each period this long (storage changes slowly; 0: every collection).",
        "Collection",
        "collect.storage_every_minutes",
        _minutes,
    ),
    Setting(
        "PROMETHEUS_URL",
        "",
        "Prometheus that scrapes dcgm-exporter (e.g. http://prometheus.monitoring:9090); empty: no GPU use.",
        "GPU metrics (Prometheus)",
        "prometheus.url",
        _optional_url,
    ),
    Setting(
        "PROMETHEUS_TOKEN",
        "",
        "Bearer token for Prometheus; never logged.",
        "GPU metrics (Prometheus)",
        "prometheus.token",
        _optional,
        secret=True,
    ),
    Setting(
        "PROMETHEUS_USERNAME",
        "",
        "Basic-auth user for Prometheus (with PROMETHEUS_PASSWORD).",
        "GPU metrics (Prometheus)",
        "prometheus.username",
        _optional,
    ),
    Setting(
        "PROMETHEUS_PASSWORD",
        "",
        "Basic-auth password for Prometheus; never logged.",
        "GPU metrics (Prometheus)",
        "prometheus.password",
        _optional,
        secret=True,
    ),
    Setting(
        "PROMETHEUS_CA_FILE",
        "",
        "CA bundle that signs Prometheus's TLS certificate (else the system's).",
        "GPU metrics (Prometheus)",
        "prometheus.ca_file",
        _optional,
    ),
    Setting(
        "PROMETHEUS_TIMEOUT",
        "10",
        "Seconds per Prometheus query.",
        "GPU metrics (Prometheus)",
        "prometheus.timeout_seconds",
        _seconds,
    ),
    Setting(
        "HUB_API_URL",
        "",
        "JupyterHub's API, as its JUPYTERHUB_API_URL (e.g. http://hub:8081/hub/api); empty: the hub is not read.",
        "JupyterHub",
        "hub.api_url",
        _optional_url,
    ),
    Setting(
        "HUB_API_TOKEN",
        "",
        "A hub token with list:users, read:users, read:users:activity, read:servers, list:groups, read:groups.",
        "JupyterHub",
        "hub.api_token",
        _optional,
        secret=True,
    ),
    Setting("HUB_TIMEOUT", "10", "Seconds per hub API request.", "JupyterHub", "hub.timeout_seconds", _seconds),
    Setting(
        "ACCESS_TOKEN",
        "",
        "A ready Microsoft Graph token (else the app registration below).",
        "Microsoft Graph",
        "graph.access_token",
        _optional,
        secret=True,
    ),
    Setting(
        "AZURE_TENANT_ID",
        "",
        "App registration's tenant (client credentials, for the CronJob).",
        "Microsoft Graph",
        "graph.tenant_id",
        _optional,
    ),
    Setting(
        "AZURE_CLIENT_ID",
        "",
        "App registration's client id (also for --device-code).",
        "Microsoft Graph",
        "graph.client_id",
        _optional,
    ),
    Setting(
        "AZURE_CLIENT_SECRET",
        "",
        "App registration's client secret.",
        "Microsoft Graph",
        "graph.client_secret",
        _optional,
        secret=True,
    ),
    Setting(
        "GRAPH_BASE_URL",
        "https://graph.microsoft.com",
        "Microsoft Graph endpoint (national clouds differ).",
        "Microsoft Graph",
        "graph.base_url",
        _url,
    ),
    Setting(
        "AZURE_AUTHORITY_HOST",
        "https://login.microsoftonline.com",
        "Microsoft sign-in endpoint.",
        "Microsoft Graph",
        "graph.authority_host",
        _url,
    ),
    Setting(
        "EXPORT_HMAC_KEY",
        "",
        "Key for `export usage --pseudonymize`: secret and stable (same key, same pseudonyms).",
        "Export",
        "export_hmac_key",
        _optional,
        secret=True,
    ),
    Setting(
        "READONLY_DB_USER",
        "grafana_reader",
        "The dashboards' read-only role (`db readonly-role`).",
        "Read-only role",
        "readonly_role",
    ),
    Setting("READONLY_DB_PASSWORD", "", "Its password.", "Read-only role", "readonly_password", secret=True),
    Setting(
        "READONLY_STATEMENT_TIMEOUT",
        "60",
        "Seconds a dashboard query may run (enforced at every collection).",
        "Read-only role",
        "readonly_statement_timeout_seconds",
        _int,
    ),
    Setting(
        "BOOTSTRAP_SQL_DIR",
        str(PROJECT_ROOT / "bootstrap_sql"),
        "Where bootstrap_sql/ is, when not beside the loader (the image sets it).",
        "Paths",
        "bootstrap_sql_dir",
        _path,
    ),
    Setting(
        "DBT_PROJECT_DIR",
        str(PROJECT_ROOT / "dbt_project"),
        "Where dbt_project/ is, when not beside the loader.",
        "Paths",
        "dbt_project_dir",
        _path,
    ),
)
DECLARED = {setting.name: setting for setting in SETTINGS}
RULE_SETTINGS = tuple(setting.name for setting in SETTINGS if setting.group == "Rules")
CHECKED_PREFIXES = ("DB_", "COLLECT_", "GRAPH_", "AZURE_", "EXPORT_", "READONLY_", "DBT_", "PROMETHEUS_", "HUB_")
# Read by the tools this project runs, not by the loader: never reported as unknown.
OTHER_TOOLS = {"DBT_PROFILES_DIR", "DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_USE_COLORS", "DB_ADMIN_DATABASE"}
# Defaults that depend on where the project is: rendered in .env.example as empty (meaning "beside the loader").
LOCATION_DEPENDENT = {"BOOTSTRAP_SQL_DIR", "DBT_PROJECT_DIR"}


def declared_default(target: str) -> Any:
    """The parsed default of the setting that fills `target`."""
    setting = next(setting for setting in SETTINGS if setting.target == target)
    return setting.parse(setting.name, setting.default)


@dataclass(frozen=True)
class DatabaseSettings:
    host: str = declared_default("database.host")
    port: int = declared_default("database.port")
    name: str = declared_default("database.name")
    user: str = declared_default("database.user")
    password: str = field(default=declared_default("database.password"), repr=False)
    sslmode: str = declared_default("database.sslmode")

    def connect_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.name,
            "user": self.user,
            "sslmode": self.sslmode,
            "connect_timeout": 10,
            "application_name": "jupyterhub-metrics",
        }
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def describe(self) -> str:
        """Where the database is, for messages: never includes the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.name}"

    def environment(self) -> dict[str, str]:
        """The DB_* variables that point dbt (profiles.example.yml) at this database."""
        return {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_NAME": self.name,
            "DB_USER": self.user,
            "DB_PASSWORD": self.password,
            "DB_SSLMODE": self.sslmode,
        }


@dataclass(frozen=True)
class CollectSettings:
    namespaces: tuple[str, ...] = declared_default("collect.namespaces")
    selector: str = declared_default("collect.selector")
    user_sources: tuple[str, ...] = declared_default("collect.user_sources")
    name_sources: tuple[str, ...] = declared_default("collect.name_sources")
    email_domain: str | None = declared_default("collect.email_domain")
    cluster: str | None = declared_default("collect.cluster")
    request_timeout_seconds: float = declared_default("collect.request_timeout_seconds")
    read_nodes: bool = declared_default("collect.read_nodes")
    storage: bool = declared_default("collect.storage")
    storage_every_minutes: int = declared_default("collect.storage_every_minutes")
    attempts: int = 4


@dataclass(frozen=True)
class PrometheusSettings:
    url: str | None = declared_default("prometheus.url")
    token: str | None = field(default=declared_default("prometheus.token"), repr=False)
    username: str | None = declared_default("prometheus.username")
    password: str | None = field(default=declared_default("prometheus.password"), repr=False)
    ca_file: str | None = declared_default("prometheus.ca_file")
    timeout_seconds: float = declared_default("prometheus.timeout_seconds")


@dataclass(frozen=True)
class HubSettings:
    api_url: str | None = declared_default("hub.api_url")
    api_token: str | None = field(default=declared_default("hub.api_token"), repr=False)
    timeout_seconds: float = declared_default("hub.timeout_seconds")


@dataclass(frozen=True)
class GraphSettings:
    base_url: str = declared_default("graph.base_url")
    authority_host: str = declared_default("graph.authority_host")
    access_token: str | None = field(default=declared_default("graph.access_token"), repr=False)
    tenant_id: str | None = declared_default("graph.tenant_id")
    client_id: str | None = declared_default("graph.client_id")
    client_secret: str | None = field(default=declared_default("graph.client_secret"), repr=False)
    max_retry_wait_seconds: float = 300.0


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = DatabaseSettings()
    raw_schema: str = declared_default("raw_schema")
    analytics_schema: str = declared_default("analytics_schema")
    collect: CollectSettings = CollectSettings()
    graph: GraphSettings = GraphSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    hub: HubSettings = HubSettings()
    export_hmac_key: str | None = field(default=declared_default("export_hmac_key"), repr=False)
    readonly_role: str = declared_default("readonly_role")
    readonly_password: str = field(default=declared_default("readonly_password"), repr=False)
    build_lock_wait_seconds: float = declared_default("build_lock_wait_seconds")
    # The business rules, as the environment gives them to dbt (the settings of group Rules).
    rules: tuple[tuple[str, str], ...] = ()
    readonly_statement_timeout_seconds: int = declared_default("readonly_statement_timeout_seconds")
    bootstrap_sql_dir: Path = declared_default("bootstrap_sql_dir")
    dbt_project_dir: Path = declared_default("dbt_project_dir")

    @property
    def database_configured(self) -> bool:
        return bool(os.environ.get("DB_HOST") or _dotenv().get("DB_HOST"))

    def with_database(self, database: DatabaseSettings) -> Settings:
        return replace(self, database=database)

    def dbt_environment(self) -> dict[str, str]:
        return {
            **self.database.environment(),
            "RAW_SCHEMA": self.raw_schema,
            "DBT_SCHEMA": self.analytics_schema,
            "READONLY_DB_USER": self.readonly_role,
            **dict(self.rules),
        }


def unknown_variable_warnings(names: set[str]) -> list[str]:
    """A warning for each variable with one of this project's prefixes that no setting declares: a typo
    (`DB_HSOT`) would otherwise be ignored in silence. Other DBT_ variables are dbt's own unless close to ours."""
    warnings = []
    for name in sorted(names):
        if name in DECLARED or name in OTHER_TOOLS or not name.startswith(CHECKED_PREFIXES):
            continue
        close = difflib.get_close_matches(name, DECLARED, n=1, cutoff=0.75)
        if name.startswith("DBT_") and not close:
            continue
        hint = f"did you mean {close[0]}?" if close else "no setting has that name"
        warnings.append(f"unknown setting {name} is ignored; {hint}")
    return warnings


def render_env_example() -> str:
    lines = [
        "# Copy to .env (never committed) or set in the environment. Every variable is optional;",
        "# generated from loader/config.py SETTINGS (`python -m loader.config`).",
    ]
    group = None
    for setting in SETTINGS:
        if setting.group != group:
            group = setting.group
            lines += ["", f"# --- {group} ---"]
        shown = "" if setting.secret or setting.name in LOCATION_DEPENDENT else setting.default
        lines += [f"# {setting.help}", f"{setting.name}={shown}"]
    return "\n".join(lines) + "\n"


def _dotenv() -> dict[str, str]:
    path = Path.cwd() / ".env"
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from the process environment; a `.env` file in the working directory fills gaps. Each declared
    setting is parsed into the field it names; an empty variable means its default."""
    env = {**_dotenv(), **(os.environ if environ is None else environ)}
    for warning in unknown_variable_warnings(set(env)):
        log.warning(warning)
    values: dict[str, dict[str, Any]] = {
        "": {},
        "database": {},
        "collect": {},
        "graph": {},
        "prometheus": {},
        "hub": {},
    }
    rules = []
    for setting in SETTINGS:
        text = env.get(setting.name) or setting.default
        value = setting.parse(setting.name, text)
        if setting.group == "Rules":
            rules.append((setting.name, text))
        if setting.target:
            section, _, name = setting.target.rpartition(".")
            values[section][name] = value
    settings = Settings(
        database=DatabaseSettings(**values["database"]),
        collect=CollectSettings(**values["collect"]),
        graph=GraphSettings(**values["graph"]),
        prometheus=PrometheusSettings(**values["prometheus"]),
        hub=HubSettings(**values["hub"]),
        rules=tuple(rules),
        **values[""],
    )
    if settings.raw_schema == settings.analytics_schema:
        raise ConfigurationError(
            f"DBT_SCHEMA and RAW_SCHEMA are both {settings.raw_schema!r}: dbt models must build into their own schema"
        )
    return settings


if __name__ == "__main__":
    Path(PROJECT_ROOT / ".env.example").write_text(render_env_example())
