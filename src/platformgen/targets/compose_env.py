"""The variables of the Docker Compose stack's `.env`: the stack's own secrets plus every env:VAR of the spec.

One inventory feeds three consumers: docker-compose.yml (which interpolates `${VAR:?...}`),
`.env.example` (placeholders and comments) and `platformgen up` (which fills a fresh `.env`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from platformgen.plan.build import Plan
from platformgen.spec.models import ApiKeyAuth, ApiSource, BasicAuth, BearerAuth, PostgresConnection, PostgresSource
from platformgen.spec.types import ENV_REF_RE

#: how `platformgen up` fills a variable: random password, Fernet key, secret key, a fixed stack value,
#: or nothing (an external system's setting that only the user knows)
Kind = Literal["password", "fernet", "secret_key", "value", "external"]

#: the fixed host names and ports of the stack, as containers see them
POSTGRES_HOST = "postgres"
POSTGRES_PORT = 5432
MINIO_ENDPOINT = "http://minio:9000"
WAREHOUSE_DEFAULT_USER = "warehouse"
MINIO_DEFAULT_USER = "platform-admin"

# The stack's own secrets, independent of the spec.
POSTGRES_PASSWORD = "POSTGRES_PASSWORD"
AIRFLOW_DB_PASSWORD = "AIRFLOW_DB_PASSWORD"
AIRFLOW_FERNET_KEY = "AIRFLOW_FERNET_KEY"
AIRFLOW_SECRET_KEY = "AIRFLOW_SECRET_KEY"
AIRFLOW_ADMIN_PASSWORD = "AIRFLOW_ADMIN_PASSWORD"
FLOWER_PASSWORD = "FLOWER_PASSWORD"
SUPERSET_DB_PASSWORD = "SUPERSET_DB_PASSWORD"
SUPERSET_SECRET_KEY = "SUPERSET_SECRET_KEY"
SUPERSET_ADMIN_PASSWORD = "SUPERSET_ADMIN_PASSWORD"
OPENMETADATA_DB_PASSWORD = "OPENMETADATA_DB_PASSWORD"
OPENMETADATA_FERNET_KEY = "OPENMETADATA_FERNET_KEY"
#: read by the generated ingestion workflows (targets/openmetadata.py); known only once the server runs
OPENMETADATA_JWT_TOKEN = "OPENMETADATA_JWT_TOKEN"
# Used for the warehouse when the spec names an Airflow connection (conn_id) instead of env: references.
WAREHOUSE_USER = "WAREHOUSE_USER"
WAREHOUSE_PASSWORD = "WAREHOUSE_PASSWORD"
#: read by the runtime's e-mail alerts (see docs/runtime.md); optional
SMTP_VARIABLES = ("SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_STARTTLS")


@dataclass(frozen=True)
class EnvVar:
    """One variable of `.env`."""

    name: str
    kind: Kind
    description: str
    value: str = ""  # the stack value that `platformgen up` writes, for kind "value"

    @property
    def reference(self) -> str:
        """How docker-compose.yml reads it: required and non-empty, or (external) required but maybe empty."""
        if self.kind == "external":
            return "${" + self.name + "?set it in .env}"
        return "${" + self.name + ":?set it in .env}"


def env_name(value: object) -> str | None:
    """VAR of an `env:VAR` reference, else None."""
    if isinstance(value, str) and (m := ENV_REF_RE.match(value)):
        return m.group(1)
    return None


@dataclass(frozen=True)
class WarehouseVars:
    """How the stack's PostgreSQL serves the warehouse: database name and credentials, literal or ${VAR}."""

    database: str
    user_var: str
    password_var: str
    conn_id: str | None


def warehouse_vars(plan: Plan) -> WarehouseVars:
    """The warehouse database and the variables holding its credentials."""
    conn = plan.warehouse.connection
    if conn.conn_id is not None:
        return WarehouseVars("warehouse", WAREHOUSE_USER, WAREHOUSE_PASSWORD, conn.conn_id)
    db_var = env_name(conn.database)
    database = "${" + db_var + ":?set it in .env}" if db_var else conn.database
    return WarehouseVars(database, env_name(conn.user) or WAREHOUSE_USER, env_name(conn.password) or "", None)


def airflow_admin_needed(plan: Plan) -> bool:
    """The stack adds an `admin` user when the spec declares no Airflow Admin."""
    return not any(u.role == "Admin" for u in plan.orchestration.users)


def env_variables(plan: Plan) -> list[EnvVar]:
    """Every variable the stack reads, the stack's own first, then the spec's, each name once."""
    found: dict[str, EnvVar] = {}

    def add(name: str | None, kind: Kind, description: str, value: str = "") -> None:
        if name is not None and name not in found:
            found[name] = EnvVar(name, kind, description, value)

    add(POSTGRES_PASSWORD, "password", "PostgreSQL superuser (user postgres)")
    add(AIRFLOW_DB_PASSWORD, "password", "Airflow metadata database (user airflow)")
    add(AIRFLOW_FERNET_KEY, "fernet", "Airflow Fernet key: encrypts connections and variables")
    add(AIRFLOW_SECRET_KEY, "secret_key", "Airflow webserver secret key (signs session cookies)")
    if airflow_admin_needed(plan):
        add(AIRFLOW_ADMIN_PASSWORD, "password", "Airflow user admin (role Admin)")
    if plan.orchestration.executor == "celery":
        add(FLOWER_PASSWORD, "password", "Flower UI (user admin)")
    add(SUPERSET_DB_PASSWORD, "password", "Superset metadata database (user superset)")
    add(SUPERSET_SECRET_KEY, "secret_key", "Superset SECRET_KEY (signs sessions, encrypts database passwords)")
    add(SUPERSET_ADMIN_PASSWORD, "password", "Superset user admin (role Admin)")
    add(OPENMETADATA_DB_PASSWORD, "password", "OpenMetadata database (user openmetadata)")
    add(OPENMETADATA_FERNET_KEY, "fernet", "OpenMetadata Fernet key: encrypts service connections")
    add(
        OPENMETADATA_JWT_TOKEN,
        "external",
        "OpenMetadata ingestion-bot token (Settings > Bots > ingestion-bot, after the first start)",
    )

    conn = plan.warehouse.connection
    if conn.conn_id is not None:
        add(WAREHOUSE_USER, "value", f"warehouse user (Airflow connection {conn.conn_id})", WAREHOUSE_DEFAULT_USER)
        add(WAREHOUSE_PASSWORD, "password", f"warehouse password (Airflow connection {conn.conn_id})")
        if plan.orchestration.executor == "kubernetes":  # compose builds the URI; the Helm chart's pods need it whole
            add(airflow_conn_var(conn.conn_id), "external", "warehouse connection URI for the Airflow pods")
    else:
        add(env_name(conn.host), "value", "warehouse.connection.host", POSTGRES_HOST)
        add(env_name(conn.port), "value", "warehouse.connection.port", str(POSTGRES_PORT))
        add(env_name(conn.database), "value", "warehouse.connection.database", "warehouse")
        add(env_name(conn.user), "value", "warehouse.connection.user", WAREHOUSE_DEFAULT_USER)
        add(env_name(conn.password), "password", "warehouse.connection.password")

    storage = plan.storage
    add(env_name(storage.endpoint), "value", "storage.endpoint", MINIO_ENDPOINT)
    add(env_name(storage.access_key), "value", "storage.access_key (the MinIO root user)", MINIO_DEFAULT_USER)
    add(env_name(storage.secret_key), "password", "storage.secret_key (the MinIO root password)")

    for user in plan.orchestration.users:
        add(env_name(user.password), "password", f"Airflow user {user.username} (role {user.role})")

    for name, where in external_references(plan):
        add(name, "external", where)
    return list(found.values())


def external_references(plan: Plan) -> list[tuple[str, str]]:
    """(VAR, where) of the settings of systems outside the stack: sources, alert channels, SMTP."""
    refs: list[tuple[str, str]] = []
    for source in plan.sources:
        spec = source.spec
        where = f"source {source.name}"
        if isinstance(spec, PostgresSource):
            refs.extend(_connection_refs(spec.connection, where))
        elif isinstance(spec, ApiSource) and spec.auth is not None:
            auth = spec.auth
            if isinstance(auth, BearerAuth):
                refs.append((env_name(auth.token) or "", f"{where}: bearer token"))
            elif isinstance(auth, BasicAuth):
                refs.append((env_name(auth.username) or "", f"{where}: user"))
                refs.append((env_name(auth.password) or "", f"{where}: password"))
            elif isinstance(auth, ApiKeyAuth):
                refs.append((env_name(auth.key) or "", f"{where}: API key"))
    if plan.alerting.slack is not None:
        refs.append((env_name(plan.alerting.slack.webhook) or "", "alerting.slack.webhook"))
    if plan.alerting.email is not None:
        refs.extend((name, "e-mail alerts (optional)") for name in SMTP_VARIABLES)
    return [(name, where) for name, where in refs if name]


def _connection_refs(conn: PostgresConnection, where: str) -> list[tuple[str, str]]:
    if conn.conn_id is not None:
        return [(airflow_conn_var(conn.conn_id), f"{where}: Airflow connection URI")]
    fields = (("host", conn.host), ("port", conn.port), ("database", conn.database))
    refs = [(env_name(value) or "", f"{where}: {field}") for field, value in fields]
    refs += [(env_name(conn.user) or "", f"{where}: user"), (env_name(conn.password) or "", f"{where}: password")]
    return refs


def airflow_conn_var(conn_id: str) -> str:
    """The environment variable Airflow reads a connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def runtime_variables(plan: Plan) -> list[str]:
    """Names of the variables the generated DAGs read (spec references), passed to every Airflow container."""
    names: list[str] = []
    conn = plan.warehouse.connection
    if conn.conn_id is None:
        for value in (conn.host, conn.port, conn.database, conn.user, conn.password):
            names.append(env_name(value) or "")
    for value in (plan.storage.endpoint, plan.storage.access_key, plan.storage.secret_key):
        names.append(env_name(value) or "")
    names.extend(name for name, _ in external_references(plan))
    return list(dict.fromkeys(n for n in names if n))
