"""Connection settings at run time: env:VAR references and Airflow connections, resolved without logging secrets."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

_ENV_REF = re.compile(r"^env:([A-Z_][A-Z0-9_]*)$")
#: Overrides used by local mode and tests: a full URL for the warehouse, an endpoint for S3.
WAREHOUSE_URL_ENV = "PLATFORMGEN_WAREHOUSE_URL"
S3_ENDPOINT_ENV = "PLATFORMGEN_S3_ENDPOINT_URL"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which variable or connection to set."""


def resolve(value: Any, what: str) -> Any:
    """The value of a setting: env:VAR is read from the environment, anything else is returned as is."""
    if isinstance(value, str):
        match = _ENV_REF.match(value)
        if match:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{what}: environment variable {name} is not set")
            return os.environ[name]
    return value


def source_url_env(source: str) -> str:
    """The variable that overrides a PostgreSQL source's connection with a full URL."""
    return f"PLATFORMGEN_SOURCE_{source.upper()}_URL"


@dataclass(frozen=True)
class PgParams:
    """libpq connection parameters; `__repr__` hides the password."""

    host: str
    port: int
    dbname: str
    user: str
    password: str
    sslmode: str = "prefer"

    def conninfo(self) -> str:
        """A libpq key/value connection string."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
            "sslmode": self.sslmode,
        }
        return " ".join(f"{k}='{_escape(v)}'" for k, v in parts.items() if v != "")

    def url(self) -> str:
        """A SQLAlchemy/psycopg URL (contains the password: never log it)."""
        auth = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        if self.host.startswith("/"):
            return f"postgresql://{auth}@/{quote(self.dbname)}?host={quote(self.host)}&port={self.port}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.dbname)}?sslmode={self.sslmode}"

    def __repr__(self) -> str:
        return f"PgParams(host={self.host!r}, port={self.port}, dbname={self.dbname!r}, user={self.user!r})"

    __str__ = __repr__


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _from_url(url: str) -> PgParams:
    from urllib.parse import parse_qs, unquote

    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = query.get("host") or parts.hostname or "localhost"
    return PgParams(
        host=unquote(host),
        port=int(query.get("port") or parts.port or 5432),
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        sslmode=query.get("sslmode", "prefer"),
    )


def _from_airflow(conn_id: str) -> PgParams:
    try:
        from airflow.hooks.base import BaseHook
    except ImportError as exc:  # pragma: no cover - only without Airflow
        raise ConfigError(f"connection '{conn_id}' is an Airflow connection, but Airflow is not installed") from exc
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise ConfigError(
            f"Airflow connection '{conn_id}' is not defined: add it (or AIRFLOW_CONN_{conn_id.upper()})"
        ) from exc
    extra = conn.extra_dejson or {}
    return PgParams(
        host=conn.host or "localhost",
        port=int(conn.port or 5432),
        dbname=conn.schema or "postgres",
        user=conn.login or "",
        password=conn.password or "",
        sslmode=str(extra.get("sslmode", "prefer")),
    )


def postgres_params(
    connection: dict[str, Any], *, override_env: str | None = None, what: str = "warehouse"
) -> PgParams:
    """Resolve a connection block of the spec (as embedded in a DAG) into libpq parameters.

    Order: the override variable (a full URL), then an Airflow connection id, then the fields.
    """
    if override_env and os.environ.get(override_env):
        return _from_url(os.environ[override_env])
    if connection.get("conn_id"):
        return _from_airflow(str(connection["conn_id"]))
    return PgParams(
        host=str(resolve(connection.get("host", "localhost"), f"{what} host")),
        port=int(resolve(connection.get("port", 5432), f"{what} port")),
        dbname=str(resolve(connection.get("database", "postgres"), f"{what} database")),
        user=str(resolve(connection.get("user", ""), f"{what} user")),
        password=str(resolve(connection.get("password", ""), f"{what} password")),
        sslmode=str(connection.get("sslmode", "prefer")),
    )


def warehouse_params(platform: dict[str, Any]) -> PgParams:
    """The warehouse connection of a platform config."""
    return postgres_params(platform["warehouse"], override_env=WAREHOUSE_URL_ENV, what="warehouse")


@dataclass(frozen=True)
class S3Params:
    """Where the object store is; `__repr__` hides the secret key."""

    endpoint_url: str
    region: str
    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"S3Params(endpoint_url={self.endpoint_url!r}, region={self.region!r})"

    __str__ = __repr__


def s3_params(platform: dict[str, Any]) -> S3Params:
    """The object-store settings of a platform config."""
    storage = platform["storage"]
    endpoint = os.environ.get(S3_ENDPOINT_ENV) or resolve(storage["endpoint"], "storage endpoint")
    return S3Params(
        endpoint_url=str(endpoint),
        region=str(storage.get("region", "us-east-1")),
        access_key=str(resolve(storage["access_key"], "storage access key")),
        secret_key=str(resolve(storage["secret_key"], "storage secret key")),
    )


def s3_client(params: S3Params) -> Any:
    """A boto3 S3 client for the object store."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=params.endpoint_url,
        region_name=params.region,
        aws_access_key_id=params.access_key,
        aws_secret_access_key=params.secret_key,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


def scrub(text: str, *secrets: str) -> str:
    """Remove secrets (and any URL password) from a message before it is logged or stored."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return re.sub(r"(://[^/\s:@]+:)[^@\s/]+@", r"\1***@", text)
