"""The one configuration object, read from the environment (and a `.env` file if present)."""

from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

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


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


@dataclass(frozen=True)
class DatabaseSettings:
    host: str = "127.0.0.1"
    port: int = 5432
    name: str = "jupyterhub_metrics"
    user: str = "postgres"
    password: str = field(default="", repr=False)
    sslmode: str = "prefer"

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
    namespaces: tuple[str, ...] = ()
    selector: str = "component=singleuser-server"
    user_sources: tuple[str, ...] = DEFAULT_USER_SOURCES
    name_sources: tuple[str, ...] = DEFAULT_NAME_SOURCES
    email_domain: str | None = None
    cluster: str | None = None
    request_timeout_seconds: float = 30.0
    attempts: int = 4


@dataclass(frozen=True)
class GraphSettings:
    base_url: str = "https://graph.microsoft.com"
    authority_host: str = "https://login.microsoftonline.com"
    access_token: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    max_retry_wait_seconds: float = 300.0


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = DatabaseSettings()
    raw_schema: str = "raw"
    analytics_schema: str = "analytics"
    collect: CollectSettings = CollectSettings()
    graph: GraphSettings = GraphSettings()
    export_hmac_key: str | None = field(default=None, repr=False)
    readonly_role: str = "grafana_reader"
    readonly_password: str = field(default="", repr=False)
    build_lock_wait_seconds: float = 240.0
    # The business rules, as the environment gives them to dbt (see RULE_SETTINGS).
    rules: tuple[tuple[str, str], ...] = ()
    readonly_statement_timeout_seconds: int = 60
    bootstrap_sql_dir: Path = PROJECT_ROOT / "bootstrap_sql"
    dbt_project_dir: Path = PROJECT_ROOT / "dbt_project"

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


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default (as text), what it means, and its group in .env.example."""

    name: str
    default: str
    help: str
    group: str
    secret: bool = False


# Every setting, once. load_settings reads these; .env.example is rendered from them (`python -m loader.config`,
# a test keeps them equal) and the README's table names each of them (a test checks).
SETTINGS: tuple[Setting, ...] = (
    Setting("DB_HOST", "127.0.0.1", "Database host: a name, an address, or a socket folder.", "Database"),
    Setting("DB_PORT", "5432", "Database port.", "Database"),
    Setting("DB_NAME", "jupyterhub_metrics", "Database name.", "Database"),
    Setting("DB_USER", "postgres", "Database user (owner of the raw and analytics schemas).", "Database"),
    Setting("DB_PASSWORD", "", "Database password; never logged.", "Database", secret=True),
    Setting("DB_SSLMODE", "prefer", "libpq sslmode: disable, prefer, require, verify-full.", "Database"),
    Setting(
        "RAW_SCHEMA", "raw", "Schema of the raw tables (`public` adopts a predecessor database in place).", "Database"
    ),
    Setting("DBT_SCHEMA", "analytics", "Schema dbt builds its models into; never the raw schema.", "Database"),
    Setting("DBT_THREADS", "4", "dbt threads.", "Database"),
    Setting("DBT_LOCK_WAIT_SECONDS", "240", "How long a build or check waits for another one to finish.", "Database"),
    Setting("SESSION_GAP_MINUTES", "60", "A gap longer than this between observations ends a session.", "Rules"),
    Setting("CPU_NODE_PATTERN", "cpu", "Where a pod's GPU request is unknown: a node named with this is CPU.", "Rules"),
    Setting(
        "GPU_NODE_PATTERNS", "", "Comma-separated: where set, only nodes named with one of these are GPU.", "Rules"
    ),
    Setting(
        "IDLE_CPU_CORES",
        "0.05",
        "A notebook using less CPU than this (cores) at two observations idles between.",
        "Rules",
    ),
    Setting("EXAMPLE_COST_RATES", "false", "The demo's example cost rates instead of seeds/cost_rates.csv.", "Rules"),
    Setting("COLLECT_NAMESPACES", "", "Comma-separated namespaces to watch; empty watches all.", "Collection"),
    Setting("COLLECT_SELECTOR", "component=singleuser-server", "Label selector of single-user pods.", "Collection"),
    Setting(
        "COLLECT_USER_FROM",
        ",".join(DEFAULT_USER_SOURCES),
        "Identity sources in order: annotation:KEY, env:NAME, label:KEY.",
        "Collection",
    ),
    Setting(
        "COLLECT_NAME_FROM",
        ",".join(DEFAULT_NAME_SOURCES),
        "Sources of the person's name stored as user_name (same forms); else the hub username.",
        "Collection",
    ),
    Setting("COLLECT_EMAIL_DOMAIN", "", "Appended to bare usernames to make emails (e.g. example.edu).", "Collection"),
    Setting(
        "CLUSTER_NAME",
        "",
        "Recorded with every row; name each cluster when several report into one database.",
        "Collection",
    ),
    Setting(
        "KUBE_REQUEST_TIMEOUT",
        "30",
        "Seconds per Kubernetes API request (outside a cluster, KUBECONFIG is read).",
        "Collection",
    ),
    Setting(
        "ACCESS_TOKEN",
        "",
        "A ready Microsoft Graph token (else the app registration below).",
        "Microsoft Graph",
        secret=True,
    ),
    Setting(
        "AZURE_TENANT_ID", "", "App registration's tenant (client credentials, for the CronJob).", "Microsoft Graph"
    ),
    Setting("AZURE_CLIENT_ID", "", "App registration's client id (also for --device-code).", "Microsoft Graph"),
    Setting("AZURE_CLIENT_SECRET", "", "App registration's client secret.", "Microsoft Graph", secret=True),
    Setting(
        "GRAPH_BASE_URL",
        GraphSettings.base_url,
        "Microsoft Graph endpoint (national clouds differ).",
        "Microsoft Graph",
    ),
    Setting("AZURE_AUTHORITY_HOST", GraphSettings.authority_host, "Microsoft sign-in endpoint.", "Microsoft Graph"),
    Setting(
        "EXPORT_HMAC_KEY",
        "",
        "Key for `export usage --pseudonymize`: secret and stable (same key, same pseudonyms).",
        "Export",
        secret=True,
    ),
    Setting(
        "READONLY_DB_USER", "grafana_reader", "The dashboards' read-only role (`db readonly-role`).", "Read-only role"
    ),
    Setting("READONLY_DB_PASSWORD", "", "Its password.", "Read-only role", secret=True),
    Setting(
        "READONLY_STATEMENT_TIMEOUT",
        "60",
        "Seconds a dashboard query may run (enforced at every collection).",
        "Read-only role",
    ),
    Setting(
        "BOOTSTRAP_SQL_DIR", "", "Where bootstrap_sql/ is, when not beside the loader (the image sets it).", "Paths"
    ),
    Setting("DBT_PROJECT_DIR", "", "Where dbt_project/ is, when not beside the loader.", "Paths"),
)
DECLARED = {setting.name: setting for setting in SETTINGS}
RULE_SETTINGS = tuple(setting.name for setting in SETTINGS if setting.group == "Rules")
CHECKED_PREFIXES = ("DB_", "COLLECT_", "GRAPH_", "AZURE_", "EXPORT_", "READONLY_", "DBT_")
# Read by the tools this project runs, not by the loader: never reported as unknown.
OTHER_TOOLS = {"DBT_PROFILES_DIR", "DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_USE_COLORS", "DB_ADMIN_DATABASE"}


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
        lines += [f"# {setting.help}", f"{setting.name}={'' if setting.secret else setting.default}"]
    return "\n".join(lines) + "\n"


def _dotenv() -> dict[str, str]:
    path = Path.cwd() / ".env"
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from the process environment; a `.env` file in the working directory fills gaps."""
    env = {**_dotenv(), **(os.environ if environ is None else environ)}
    for warning in unknown_variable_warnings(set(env)):
        log.warning(warning)

    def get(name: str, default: str | None = None) -> str:
        """The variable's value, else `default`, else its declared default ('' when it has none)."""
        value = env.get(name)
        if value:
            return value
        return default if default is not None else DECLARED[name].default

    def optional(name: str) -> str | None:
        return get(name) or None

    database = DatabaseSettings(
        host=get("DB_HOST"),
        port=_int("DB_PORT", get("DB_PORT")),
        name=get("DB_NAME"),
        user=get("DB_USER"),
        password=get("DB_PASSWORD", ""),
        sslmode=get("DB_SSLMODE"),
    )
    raw_schema = _schema_name("RAW_SCHEMA", get("RAW_SCHEMA"))
    analytics_schema = _schema_name("DBT_SCHEMA", get("DBT_SCHEMA"))
    if raw_schema == analytics_schema:
        raise ConfigurationError(
            f"DBT_SCHEMA and RAW_SCHEMA are both {raw_schema!r}: dbt models must build into their own schema"
        )
    collect = CollectSettings(
        namespaces=_list(get("COLLECT_NAMESPACES")),
        selector=get("COLLECT_SELECTOR"),
        user_sources=_list(get("COLLECT_USER_FROM")),
        name_sources=_list(get("COLLECT_NAME_FROM")),
        email_domain=optional("COLLECT_EMAIL_DOMAIN"),
        cluster=optional("CLUSTER_NAME"),
        request_timeout_seconds=float(_int("KUBE_REQUEST_TIMEOUT", get("KUBE_REQUEST_TIMEOUT"))),
    )
    graph = GraphSettings(
        base_url=get("GRAPH_BASE_URL").rstrip("/"),
        authority_host=get("AZURE_AUTHORITY_HOST").rstrip("/"),
        access_token=optional("ACCESS_TOKEN"),
        tenant_id=optional("AZURE_TENANT_ID"),
        client_id=optional("AZURE_CLIENT_ID"),
        client_secret=optional("AZURE_CLIENT_SECRET"),
    )
    return Settings(
        database=database,
        raw_schema=raw_schema,
        analytics_schema=analytics_schema,
        collect=collect,
        graph=graph,
        export_hmac_key=optional("EXPORT_HMAC_KEY"),
        readonly_role=get("READONLY_DB_USER"),
        readonly_password=get("READONLY_DB_PASSWORD", ""),
        build_lock_wait_seconds=float(_int("DBT_LOCK_WAIT_SECONDS", get("DBT_LOCK_WAIT_SECONDS"))),
        readonly_statement_timeout_seconds=_int("READONLY_STATEMENT_TIMEOUT", get("READONLY_STATEMENT_TIMEOUT")),
        rules=tuple((name, get(name)) for name in RULE_SETTINGS),
        bootstrap_sql_dir=Path(get("BOOTSTRAP_SQL_DIR", str(PROJECT_ROOT / "bootstrap_sql"))),
        dbt_project_dir=Path(get("DBT_PROJECT_DIR", str(PROJECT_ROOT / "dbt_project"))),
    )


if __name__ == "__main__":
    Path(PROJECT_ROOT / ".env.example").write_text(render_env_example())
