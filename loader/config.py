"""The one configuration object, read from the environment (and a `.env` file if present)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import dotenv_values

from loader.errors import ConfigurationError

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
        }


def _dotenv() -> dict[str, str]:
    path = Path.cwd() / ".env"
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from the process environment; a `.env` file in the working directory fills gaps."""
    env = {**_dotenv(), **(os.environ if environ is None else environ)}

    def get(name: str, default: str | None = None) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else default

    database = DatabaseSettings(
        host=get("DB_HOST", "127.0.0.1"),
        port=_int("DB_PORT", get("DB_PORT", "5432")),
        name=get("DB_NAME", "jupyterhub_metrics"),
        user=get("DB_USER", "postgres"),
        password=get("DB_PASSWORD", ""),
        sslmode=get("DB_SSLMODE", "prefer"),
    )
    raw_schema = _schema_name("RAW_SCHEMA", get("RAW_SCHEMA", "raw"))
    analytics_schema = _schema_name("DBT_SCHEMA", get("DBT_SCHEMA", "analytics"))
    if raw_schema == analytics_schema:
        raise ConfigurationError(
            f"DBT_SCHEMA and RAW_SCHEMA are both {raw_schema!r}: dbt models must build into their own schema"
        )
    collect = CollectSettings(
        namespaces=_list(get("COLLECT_NAMESPACES")),
        selector=get("COLLECT_SELECTOR", CollectSettings.selector),
        user_sources=_list(get("COLLECT_USER_FROM")) or DEFAULT_USER_SOURCES,
        name_sources=_list(get("COLLECT_NAME_FROM")) or DEFAULT_NAME_SOURCES,
        email_domain=get("COLLECT_EMAIL_DOMAIN"),
        cluster=get("CLUSTER_NAME"),
        request_timeout_seconds=float(_int("KUBE_REQUEST_TIMEOUT", get("KUBE_REQUEST_TIMEOUT", "30"))),
    )
    graph = GraphSettings(
        base_url=get("GRAPH_BASE_URL", GraphSettings.base_url).rstrip("/"),
        authority_host=get("AZURE_AUTHORITY_HOST", GraphSettings.authority_host).rstrip("/"),
        access_token=get("ACCESS_TOKEN"),
        tenant_id=get("AZURE_TENANT_ID"),
        client_id=get("AZURE_CLIENT_ID"),
        client_secret=get("AZURE_CLIENT_SECRET"),
    )
    return Settings(
        database=database,
        raw_schema=raw_schema,
        analytics_schema=analytics_schema,
        collect=collect,
        graph=graph,
        export_hmac_key=get("EXPORT_HMAC_KEY"),
        readonly_role=get("READONLY_DB_USER", Settings.readonly_role),
        readonly_password=get("READONLY_DB_PASSWORD", ""),
        bootstrap_sql_dir=Path(get("BOOTSTRAP_SQL_DIR", str(PROJECT_ROOT / "bootstrap_sql"))),
        dbt_project_dir=Path(get("DBT_PROJECT_DIR", str(PROJECT_ROOT / "dbt_project"))),
    )
