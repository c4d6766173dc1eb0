"""The spec language as pydantic models: strict (unknown keys are errors), with the reference architecture's defaults."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from platformgen.spec.types import (
    ColumnName,
    Duration,
    Email,
    Name,
    ReadyBy,
    Schedule,
    SecretRef,
    TeamName,
    TypeName,
    ValueOrEnv,
    regex_problem,
)

Severity = Literal["warn", "error"]


def located(message: str, at: str) -> PydanticCustomError:
    """A model-level error reported at one of the model's keys (`at`) rather than at the whole mapping."""
    return PydanticCustomError("located", "{message}", {"message": message, "at": at})


class StrictModel(BaseModel):
    """Base of every spec model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- platform


class Versions(StrictModel):
    """Versions of the tools the platform targets."""

    airflow: Literal["2.9.3"] = Field("2.9.3", description="Airflow version of the generated DAGs and image.")
    postgres: Literal["16"] = Field("16", description="PostgreSQL major version of the warehouse.")
    dbt: str = Field("1.9", pattern=r"^1\.(8|9|10)$", description="dbt-core minor version (1.8-1.10).")
    great_expectations: Literal["0.18"] = Field("0.18", description="Great Expectations version of the suites.")
    superset: str = Field("6.1.0", description="Apache Superset image tag (the bundle format is checked against 6.1).")
    openmetadata: str = Field("1.13.6", description="OpenMetadata server and ingestion version.")
    elasticsearch: str = Field("8.11.4", description="Elasticsearch image tag used by OpenMetadata.")


class Ports(StrictModel):
    """Host ports of the services."""

    airflow: int = Field(8080, ge=1, le=65535, description="Airflow webserver.")
    superset: int = Field(8088, ge=1, le=65535, description="Superset.")
    openmetadata: int = Field(8585, ge=1, le=65535, description="OpenMetadata server.")
    minio_api: int = Field(9000, ge=1, le=65535, description="MinIO S3 API.")
    minio_console: int = Field(9001, ge=1, le=65535, description="MinIO console.")
    postgres: int = Field(5432, ge=1, le=65535, description="PostgreSQL.")
    elasticsearch: int = Field(9200, ge=1, le=65535, description="Elasticsearch.")


class Platform(StrictModel):
    """Identity of the platform."""

    name: Name = Field(description="Platform name; prefixes DAG ids and names the dbt project.")
    description: str = Field("", description="What the platform is for.")
    owner: str = Field("data-platform", description="Default owner (a team or an e-mail) of everything in the spec.")
    timezone: Literal["UTC"] = Field("UTC", description="Time zone of schedules and deadlines.")
    versions: Versions = Field(default_factory=Versions, description="Tool versions.")
    ports: Ports = Field(default_factory=Ports, description="Service ports.")


# --------------------------------------------------------------------------- orchestration


class TaskDefaults(StrictModel):
    """Airflow default_args of every generated DAG."""

    owner: str = Field("data-platform", description="Task owner shown in Airflow.")
    retries: int = Field(2, ge=0, le=20, description="Retries of a failed task.")
    retry_delay: Duration = Field(300, description="Delay between retries, e.g. 5m.")
    retry_exponential_backoff: bool = Field(True, description="Double the delay after each retry.")
    execution_timeout: Duration = Field(3600, description="A task running longer than this fails.")


class AirflowUser(StrictModel):
    """An Airflow RBAC user created at start-up."""

    username: Name = Field(description="Login name.")
    role: Literal["Admin", "Op", "User", "Viewer", "Public"] = Field("Viewer", description="Airflow RBAC role.")
    email: Email = Field(description="E-mail address.")
    first_name: str = Field("", description="First name.")
    last_name: str = Field("", description="Last name.")
    password: SecretRef = Field(description="Initial password, as env:VAR.")


class Orchestration(StrictModel):
    """How Airflow runs the platform."""

    executor: Literal["local", "celery", "kubernetes"] = Field(
        "local", description="local (LocalExecutor); celery or kubernetes to scale out."
    )
    parallelism: int = Field(32, ge=1, le=1024, description="Concurrent tasks across the installation.")
    max_active_runs: int = Field(3, ge=1, le=100, description="Concurrent runs per DAG.")
    dag_scan_interval: Duration = Field(60, description="How often the DAG folder is scanned.")
    celery_workers: int = Field(2, ge=1, le=64, description="Worker replicas with executor: celery.")
    dbt_executable: str = Field(
        "dbt",
        description="dbt command run by the transformation DAG (e.g. /opt/dbt-venv/bin/dbt); env PLATFORMGEN_DBT_EXECUTABLE overrides.",
    )
    project_root: str = Field(
        "/opt/airflow/platform",
        description="Folder where the compiled output (dbt/, great_expectations/, ...) lives at run time; env PLATFORMGEN_PROJECT_ROOT overrides.",
    )
    defaults: TaskDefaults = Field(default_factory=TaskDefaults, description="default_args of every DAG.")
    users: list[AirflowUser] = Field(default_factory=list, description="RBAC users to create.")


# --------------------------------------------------------------------------- storage and warehouse


class Buckets(StrictModel):
    """Object-store bucket per medallion layer."""

    bronze: Name = Field("raw", description="Immutable raw files.")
    silver: Name = Field("staging", description="Cleaned, deduplicated data.")
    gold: Name = Field("curated", description="Business-ready exports.")


class Storage(StrictModel):
    """The S3-compatible object store (MinIO by default)."""

    endpoint: ValueOrEnv = Field("http://minio:9000", description="S3 endpoint URL, or env:VAR.")
    region: str = Field("us-east-1", description="S3 region.")
    access_key: SecretRef = Field("env:MINIO_ROOT_USER", description="Access key id, as env:VAR.")
    secret_key: SecretRef = Field("env:MINIO_ROOT_PASSWORD", description="Secret key, as env:VAR.")
    buckets: Buckets = Field(default_factory=Buckets, description="Bucket per layer.")
    bronze_format: Literal["parquet", "jsonl"] = Field("parquet", description="File format of bronze files.")


class PostgresConnection(StrictModel):
    """A PostgreSQL connection; credentials only as env:VAR references (or an Airflow connection id)."""

    conn_id: Name | None = Field(None, description="Airflow connection id; when set, it supplies every other value.")
    host: ValueOrEnv = Field("postgres", description="Host name, or env:VAR.")
    port: int | ValueOrEnv = Field(5432, description="Port, or env:VAR.")
    database: ValueOrEnv = Field("warehouse", description="Database name, or env:VAR.")
    user: SecretRef = Field("env:WAREHOUSE_USER", description="User, as env:VAR.")
    password: SecretRef = Field("env:WAREHOUSE_PASSWORD", description="Password, as env:VAR.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer", description="libpq sslmode."
    )


class Schemas(StrictModel):
    """Warehouse schema per layer."""

    raw: Name = Field("raw", description="Tables loaded from bronze.")
    staging: Name = Field("staging", description="Silver: dbt staging models.")
    intermediate: Name = Field("intermediate", description="dbt intermediate models.")
    marts: Name = Field("marts", description="Gold: marts.")
    platform: Name = Field("data_platform", description="Ingestion log, watermarks, alerts, quality results.")


class Warehouse(StrictModel):
    """The PostgreSQL data warehouse."""

    connection: PostgresConnection = Field(default_factory=PostgresConnection, description="Connection.")
    schemas: Schemas = Field(default_factory=Schemas, description="Schema names.")

    @model_validator(mode="after")
    def _distinct_schemas(self) -> Warehouse:
        names = list(self.schemas.model_dump().values())
        if len(set(names)) != len(names):
            raise ValueError("warehouse schemas must have distinct names")
        return self


# --------------------------------------------------------------------------- columns and checks


class Range(StrictModel):
    """Inclusive bounds; either may be left out."""

    min: float | int | str | None = Field(None, description="Lowest allowed value.")
    max: float | int | str | None = Field(None, description="Highest allowed value.")
    strict: bool = Field(False, description="Exclude the bounds themselves.")

    @model_validator(mode="after")
    def _some_bound(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("a range needs min, max or both")
        if isinstance(self.min, int | float) and isinstance(self.max, int | float) and self.min > self.max:
            raise located(f"range min ({self.min}) is greater than max ({self.max})", "min")
        return self


class RowCount(StrictModel):
    """Bounds on the number of rows."""

    min: int | None = Field(None, ge=0, description="Fewest rows.")
    max: int | None = Field(None, ge=0, description="Most rows.")

    @model_validator(mode="after")
    def _some_bound(self) -> RowCount:
        if self.min is None and self.max is None:
            raise ValueError("row_count needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise located(f"row_count min ({self.min}) is greater than max ({self.max})", "min")
        return self


class Freshness(StrictModel):
    """The newest value of a timestamp column must be recent."""

    column: ColumnName | None = Field(None, description="Timestamp column; the ingestion time when left out.")
    warn_after: Duration | None = Field(None, description="Warn when the newest row is older than this.")
    error_after: Duration | None = Field(None, description="Fail when the newest row is older than this.")

    @model_validator(mode="after")
    def _some_limit(self) -> Freshness:
        if self.warn_after is None and self.error_after is None:
            raise ValueError("freshness needs warn_after, error_after or both")
        if self.warn_after is not None and self.error_after is not None and self.warn_after > self.error_after:
            raise located("freshness warn_after must not be longer than error_after", "warn_after")
        return self


class Relationship(StrictModel):
    """Every value must exist in another dataset's column."""

    to: str = Field(description="Dataset: a model name or source.table.")
    column: ColumnName | None = Field(None, description="Column in the other dataset (same name when left out).")


CHECK_KEYS = (
    "not_null",
    "unique",
    "accepted_values",
    "range",
    "regex",
    "row_count",
    "freshness",
    "relationships",
    "sql",
)


class Expectation(StrictModel):
    """A data-quality expectation; one item may carry several checks on the same column."""

    name: Name | None = Field(None, description="Name of the check (derived when left out).")
    column: ColumnName | None = Field(None, description="Column the checks apply to.")
    columns: list[ColumnName] | None = Field(None, min_length=2, description="Columns of a compound unique check.")
    severity: Severity = Field("error", description="error fails the pipeline; warn only alerts.")
    description: str = Field("", description="Why this expectation exists.")
    not_null: bool | None = Field(None, description="No NULLs in the column.")
    unique: bool | None = Field(None, description="No duplicate values (of column, or of the columns together).")
    accepted_values: list[str | int | float | bool] | None = Field(None, min_length=1, description="Allowed values.")
    range: Range | None = Field(None, description="Values between min and max.")
    regex: str | None = Field(None, description="Values match this regular expression (PostgreSQL syntax).")
    row_count: RowCount | None = Field(None, description="Bounds on the number of rows.")
    freshness: Freshness | None = Field(None, description="The newest row is recent.")
    relationships: Relationship | None = Field(None, description="Values exist in another dataset.")
    sql: str | None = Field(None, description="A SQL condition that must hold for every row.")

    @model_validator(mode="after")
    def _consistent(self) -> Expectation:
        checks = [k for k in CHECK_KEYS if getattr(self, k) not in (None, False)]
        if not checks:
            raise ValueError(f"an expectation needs at least one check: {', '.join(CHECK_KEYS)}")
        column_checks = {"not_null", "accepted_values", "range", "regex", "relationships"}
        needs_column = [c for c in checks if c in column_checks]
        if needs_column and self.column is None:
            raise located(f"'{needs_column[0]}' needs a column: add column: <name>", needs_column[0])
        if self.unique and self.column is None and self.columns is None:
            raise located("'unique' needs column: <name> or columns: [<name>, ...]", "unique")
        if self.column is not None and self.columns is not None:
            raise located("give either column or columns, not both", "columns")
        if self.columns is not None and checks != ["unique"]:
            raise located("columns: [...] is only for a compound unique check", "columns")
        problem = regex_problem(self.regex) if self.regex is not None else None
        if problem is not None:
            raise located(problem, "regex")
        return self


class DatasetExpectation(Expectation):
    """An expectation in the top-level expectations list, naming its dataset."""

    dataset: str = Field(description="A model name or source.table.")


class ColumnSpec(StrictModel):
    """A column: its type plus optional documentation, governance and shorthand checks."""

    type: TypeName | None = Field(None, description="Portable type: string, integer, bigint, decimal(p,s), ...")
    nullable: bool = Field(True, description="false adds a not_null check (severity error).")
    description: str = Field("", description="What the column holds.")
    classification: Name | None = Field(None, description="Classification such as pii (see governance).")
    tags: list[Name] = Field(default_factory=list, description="Tags (see governance).")
    unique: bool = Field(False, description="Adds a unique check.")
    accepted_values: list[str | int | float | bool] | None = Field(None, min_length=1, description="Allowed values.")
    range: Range | None = Field(None, description="Adds a range check.")
    regex: str | None = Field(None, description="Adds a regex check.")
    severity: Severity = Field("error", description="Severity of the shorthand checks of this column.")


def _column_shorthand(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


Column = Annotated[ColumnSpec, BeforeValidator(_column_shorthand, json_schema_input_type=str | ColumnSpec)]


class Sla(StrictModel):
    """Freshness and completion deadline of a dataset."""

    warn_after: Duration | None = Field(None, description="Warn when the data is older than this.")
    error_after: Duration | None = Field(None, description="Alert as an error when older than this.")
    ready_by: ReadyBy | None = Field(None, description="Daily deadline, e.g. '07:00 UTC'.")
    notify: list[str] = Field(default_factory=list, description="Teams, e-mail addresses or channels (email, slack).")

    @model_validator(mode="after")
    def _something(self) -> Sla:
        if self.warn_after is None and self.error_after is None and self.ready_by is None:
            raise ValueError("an SLA needs warn_after, error_after or ready_by")
        if self.warn_after is not None and self.error_after is not None and self.warn_after > self.error_after:
            raise located("SLA warn_after must not be longer than error_after", "warn_after")
        return self


class DatasetSla(Sla):
    """An SLA in the top-level slas list, naming its dataset."""

    dataset: str = Field(description="A model name or source.table.")


# --------------------------------------------------------------------------- silver rules


class Dedup(StrictModel):
    """Keep one row per primary key."""

    by: ColumnName = Field(description="Column that orders the duplicates (e.g. updated_at).")
    keep: Literal["latest", "earliest"] = Field("latest", description="Which row to keep.")


class SchemaChange(StrictModel):
    """What the load does when the source schema changes."""

    new_columns: Literal["add", "ignore", "fail"] = Field("add", description="A column appears.")
    removed_columns: Literal["fail", "keep_null"] = Field("fail", description="A column disappears.")
    changed_types: Literal["fail"] = Field("fail", description="A column's type changes.")


class Silver(StrictModel):
    """Cleaning rules from raw to the silver (staging) model."""

    rename: dict[ColumnName, ColumnName] = Field(default_factory=dict, description="source column -> new name.")
    cast: dict[ColumnName, TypeName] = Field(
        default_factory=dict, description="column -> type, overriding the declared type."
    )
    trim: bool | list[ColumnName] = Field(True, description="Trim whitespace: all string columns, none, or a list.")
    case: dict[ColumnName, Literal["lower", "upper"]] = Field(default_factory=dict, description="Case normalisation.")
    filter: str | None = Field(None, description="SQL condition rows must meet (on source column names).")
    dedup: Dedup | None = Field(None, description="Dedup by primary key; default: by the incremental cursor.")
    materialized: Literal["view", "table", "incremental"] = Field("view", description="dbt materialization.")
    schema_change: SchemaChange = Field(default_factory=SchemaChange, description="Schema-change policy.")


# --------------------------------------------------------------------------- sources


class Incremental(StrictModel):
    """Incremental extraction by a cursor column."""

    cursor: ColumnName = Field(description="Monotonic column, e.g. updated_at or id.")
    initial: str | int | None = Field(None, description="Start value of the first run.")
    lag: Duration = Field(0, description="Re-read this far back on each run to catch late rows.")


class DatasetBase(StrictModel):
    """What every source table, endpoint and file set has."""

    name: Name = Field(description="Name, unique within its source.")
    description: str = Field("", description="What the data is.")
    owner: str | None = Field(None, description="Owner (team or e-mail); defaults to the source's.")
    tags: list[Name] = Field(default_factory=list, description="Tags.")
    primary_key: list[ColumnName] = Field(default_factory=list, description="Primary key columns.")
    columns: dict[ColumnName, Column] = Field(min_length=1, description="Columns: name -> type or column spec.")
    silver: Silver = Field(default_factory=Silver, description="Cleaning rules for the silver layer.")
    expectations: list[Expectation] = Field(default_factory=list, description="Checks on the silver model.")
    sla: Sla | None = Field(None, description="Freshness and deadline.")


class PostgresTable(DatasetBase):
    """A table of a PostgreSQL source."""

    schema_: Name = Field("public", alias="schema", description="Schema of the table in the source database.")
    table: Name | None = Field(None, description="Table name in the source, when it differs from name.")
    incremental: Incremental | None = Field(None, description="Incremental extraction; full reload when left out.")


class SourceBase(StrictModel):
    """What every source has."""

    name: Name = Field(description="Source name, unique in the spec.")
    description: str = Field("", description="What the source is.")
    owner: str | None = Field(None, description="Owner (team or e-mail); defaults to the platform owner.")
    schedule: Schedule | None = Field("@daily", description="Cron expression or preset; null for manual runs.")
    tags: list[Name] = Field(default_factory=list, description="Tags.")
    sample: str | None = Field(
        None, description="Folder of sample data, relative to the spec root, for `platformgen up --local`."
    )


class PostgresSource(SourceBase):
    """Tables of a PostgreSQL database."""

    kind: Literal["postgres"] = Field(description="postgres")
    connection: PostgresConnection = Field(description="Connection to the source database.")
    tables: list[PostgresTable] = Field(min_length=1, description="Tables to ingest.")


class BearerAuth(StrictModel):
    """Authorization: Bearer <token>."""

    type: Literal["bearer"] = Field(description="bearer")
    token: SecretRef = Field(description="Token, as env:VAR.")


class BasicAuth(StrictModel):
    """HTTP basic authentication."""

    type: Literal["basic"] = Field(description="basic")
    username: SecretRef = Field(description="User, as env:VAR.")
    password: SecretRef = Field(description="Password, as env:VAR.")


class ApiKeyAuth(StrictModel):
    """An API key sent in a header."""

    type: Literal["api_key"] = Field(description="api_key")
    header: str = Field("X-API-Key", pattern=r"^[A-Za-z0-9-]+$", description="Header name.")
    key: SecretRef = Field(description="Key, as env:VAR.")


Auth = Annotated[BearerAuth | BasicAuth | ApiKeyAuth, Field(discriminator="type")]


class PageNumberPagination(StrictModel):
    """?page=1, 2, 3 ... until an empty page."""

    type: Literal["page_number"] = Field(description="page_number")
    param: str = Field("page", description="Page parameter.")
    start: int = Field(1, ge=0, description="First page number.")
    size_param: str | None = Field(None, description="Page-size parameter.")
    size: int | None = Field(None, ge=1, description="Page size.")


class OffsetPagination(StrictModel):
    """?offset=0&limit=100 ... until a short page."""

    type: Literal["offset"] = Field(description="offset")
    param: str = Field("offset", description="Offset parameter.")
    limit_param: str = Field("limit", description="Limit parameter.")
    limit: int = Field(100, ge=1, description="Page size.")


class CursorPagination(StrictModel):
    """The response names the next cursor."""

    type: Literal["cursor"] = Field(description="cursor")
    cursor_path: str = Field(description="Dotted path of the next cursor in the response, e.g. meta.next.")
    param: str = Field("cursor", description="Query parameter that carries the cursor.")


class LinkHeaderPagination(StrictModel):
    """RFC 8288 Link: <...>; rel="next"."""

    type: Literal["link_header"] = Field(description="link_header")


Pagination = Annotated[
    PageNumberPagination | OffsetPagination | CursorPagination | LinkHeaderPagination, Field(discriminator="type")
]


class ApiIncremental(StrictModel):
    """Incremental API reads: a query parameter carries the watermark."""

    param: str = Field(description="Query parameter, e.g. since.")
    cursor: ColumnName = Field(description="Column whose maximum becomes the next value.")
    initial: str | int | None = Field(None, description="Value of the first run.")
    lag: Duration = Field(0, description="Re-read this far back to catch late records.")


class RateLimit(StrictModel):
    """At most `requests` calls per `per`."""

    requests: int = Field(ge=1, description="Calls allowed.")
    per: Duration = Field(1, description="Window, e.g. 1s or 1m.")


class ApiEndpoint(DatasetBase):
    """An endpoint of a REST API: one dataset."""

    path: str = Field(pattern=r"^/", description="Path below base_url, starting with /.")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict, description="Fixed query parameters.")
    records: str | None = Field(None, description="Dotted path of the record list in the response (e.g. data.items).")
    pagination: Pagination | None = Field(None, description="Pagination style.")
    incremental: ApiIncremental | None = Field(None, description="Incremental reads.")


class ApiSource(SourceBase):
    """A REST API."""

    kind: Literal["api"] = Field(description="api")
    base_url: str = Field(pattern=r"^https?://[^\s@]+$", description="Base URL, http(s)://host/prefix.")
    auth: Auth | None = Field(None, description="Authentication: bearer, basic or api_key.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra non-secret headers.")
    rate_limit: RateLimit | None = Field(None, description="Client-side rate limit.")
    timeout: Duration = Field(30, description="Request timeout.")
    endpoints: list[ApiEndpoint] = Field(min_length=1, description="Endpoints to ingest.")


class FileTable(DatasetBase):
    """A set of files of one shape."""

    pattern: str = Field(description="Glob of the files below the source location, e.g. spend_*.csv.")
    format: Literal["csv", "json", "jsonl"] | None = Field(None, description="Overrides the source's format.")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="Overrides the source's delimiter.")


class FileSource(SourceBase):
    """CSV, JSON or JSON-lines files from a local directory or an S3 prefix."""

    kind: Literal["file"] = Field(description="file")
    location: str = Field(description="A local directory or s3://bucket/prefix.")
    format: Literal["csv", "json", "jsonl"] = Field("csv", description="File format.")
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV delimiter.")
    header: bool = Field(True, description="CSV files start with a header row.")
    encoding: str = Field("utf-8", description="Text encoding.")
    tables: list[FileTable] = Field(min_length=1, description="File sets to ingest.")


Source = Annotated[PostgresSource | ApiSource | FileSource, Field(discriminator="kind")]


# --------------------------------------------------------------------------- models


class Dimension(StrictModel):
    """A group-by expression with a name."""

    name: ColumnName = Field(description="Output column.")
    expr: str = Field(description="SQL expression over the input dataset.")


def _dimension_shorthand(value: Any) -> Any:
    return {"name": value, "expr": value} if isinstance(value, str) else value


class TimeDimension(StrictModel):
    """Truncate a timestamp to a grain and group by it."""

    column: ColumnName = Field(description="Timestamp or date column of the input.")
    grain: Literal["hour", "day", "week", "month", "quarter", "year"] = Field("day", description="Time grain.")
    name: ColumnName | None = Field(None, description="Output column (default <grain>).")


class Aggregate(StrictModel):
    """A declarative aggregation: group by dimensions, compute measures."""

    from_: str = Field(alias="from", description="Input dataset: model name or source.table.")
    time: TimeDimension | None = Field(None, description="Time dimension.")
    dimensions: list[
        Annotated[Dimension, BeforeValidator(_dimension_shorthand, json_schema_input_type=str | Dimension)]
    ] = Field(default_factory=list, description="Group-by columns or named expressions.")
    measures: dict[ColumnName, str] = Field(
        min_length=1, description="Output column -> aggregate SQL, e.g. sum(amount)."
    )
    filter: str | None = Field(None, description="SQL condition applied before aggregating.")


class Model(StrictModel):
    """An intermediate or gold model: SQL or a declarative aggregation."""

    name: Name = Field(description="Model name, unique in the spec.")
    layer: Literal["intermediate", "gold"] = Field("gold", description="intermediate or gold (the marts schema).")
    description: str = Field("", description="What the model is.")
    owner: str | None = Field(None, description="Owner (team or e-mail).")
    tags: list[Name] = Field(default_factory=list, description="Tags.")
    materialized: Literal["view", "table", "incremental"] | None = Field(
        None, description="Default: view for intermediate, table for gold."
    )
    unique_key: list[ColumnName] = Field(default_factory=list, description="Key of an incremental model.")
    sql: str | None = Field(None, description="A SELECT over models (by name) and silver tables (source.table).")
    aggregate: Aggregate | None = Field(None, description="Declarative aggregation instead of sql.")
    columns: dict[ColumnName, Column] = Field(
        default_factory=dict, description="Documentation and checks of output columns."
    )
    expectations: list[Expectation] = Field(default_factory=list, description="Checks on the model.")
    sla: Sla | None = Field(None, description="Freshness and deadline.")

    @model_validator(mode="after")
    def _one_body(self) -> Model:
        if self.sql is not None and self.aggregate is not None:
            raise located("a model has both sql and aggregate: keep exactly one of them", "aggregate")
        if self.sql is None and self.aggregate is None:
            raise ValueError("a model needs sql: <SELECT ...> or aggregate: {from: ..., measures: ...}")
        if self.materialized == "incremental" and not self.unique_key:
            raise located("an incremental model needs unique_key: [<column>, ...]", "materialized")
        return self


# --------------------------------------------------------------------------- alerting, dashboards, governance


class EmailChannel(StrictModel):
    """E-mail alerts; SMTP settings come from the environment (SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD)."""

    to: list[Email] = Field(min_length=1, description="Recipients.")
    sender: Email | None = Field(None, alias="from", description="Sender address.")


class SlackChannel(StrictModel):
    """Slack alerts through an incoming webhook."""

    channel: str = Field(pattern=r"^#[a-z0-9][a-z0-9_-]{0,79}$", description="Channel, e.g. #data-alerts.")
    webhook: SecretRef = Field(description="Webhook URL, as env:VAR.")


class Route(StrictModel):
    """Which channels get which alerts."""

    severity: Literal["warn", "error", "any"] = Field("any", description="Alerts of this severity.")
    owner: str | None = Field(None, description="Only alerts on datasets of this owner.")
    notify: list[str] = Field(min_length=1, description="Channels (email, slack) or e-mail addresses.")


class Alerting(StrictModel):
    """Where alerts go."""

    email: EmailChannel | None = Field(None, description="E-mail channel.")
    slack: SlackChannel | None = Field(None, description="Slack channel.")
    routes: list[Route] = Field(
        default_factory=list,
        description="Routing by severity and owner; default: errors to every channel, warnings to slack (else email).",
    )


class Chart(StrictModel):
    """A chart over a gold model."""

    title: str = Field(min_length=1, description="Chart title.")
    type: Literal["line", "bar", "area", "big_number", "table", "pie"] = Field(description="Chart type.")
    model: Name = Field(description="Gold model the chart reads.")
    metric: str | None = Field(None, description="Aggregate, e.g. sum(revenue_eur) or count(*).")
    x: ColumnName | None = Field(None, description="Time column of line, bar and area charts.")
    dimension: ColumnName | None = Field(None, description="Group-by column (pie slices, bar series).")
    time_grain: Literal["hour", "day", "week", "month", "quarter", "year"] | None = Field(
        None, description="Time grain."
    )
    columns: list[ColumnName] = Field(default_factory=list, description="Columns of a table chart.")
    filters: list[str] = Field(default_factory=list, description="SQL conditions.")
    limit: int | None = Field(None, ge=1, le=100000, description="Row limit.")
    width: int = Field(6, ge=1, le=12, description="Width in the 12-column grid.")

    @model_validator(mode="after")
    def _fields_for_type(self) -> Chart:
        if self.type in ("line", "bar", "area", "big_number", "pie") and not self.metric:
            raise located(f"a {self.type} chart needs a metric", "type")
        if self.type in ("line", "area") and not self.x:
            raise located(f"a {self.type} chart needs x: <time column>", "type")
        if self.type == "pie" and not self.dimension:
            raise located("a pie chart needs a dimension: <column>", "type")
        if self.type == "table" and not self.columns:
            raise located("a table chart needs columns: [...]", "type")
        return self


class Dashboard(StrictModel):
    """Charts grouped into a dashboard."""

    name: Name = Field(description="Dashboard name (slug).")
    title: str | None = Field(None, description="Title; derived from name when left out.")
    description: str = Field("", description="What the dashboard shows.")
    owner: str | None = Field(None, description="Owner (team or e-mail).")
    charts: list[Chart] = Field(min_length=1, description="Charts, laid out in rows of 12 columns.")


class Team(StrictModel):
    """A team: owner of datasets, an OpenMetadata team."""

    description: str = Field("", description="What the team does.")
    email: Email | None = Field(None, description="Team e-mail.")
    members: list[Email] = Field(default_factory=list, description="Members.")


class GlossaryTerm(StrictModel):
    """A business term."""

    description: str = Field(min_length=1, description="Definition.")
    synonyms: list[str] = Field(default_factory=list, description="Other names.")
    datasets: list[str] = Field(default_factory=list, description="Datasets that embody the term.")


def _term_shorthand(value: Any) -> Any:
    return {"description": value} if isinstance(value, str) else value


class Role(StrictModel):
    """An access role in Superset and OpenMetadata."""

    superset: Literal["Admin", "Alpha", "Gamma", "Analyst", "Viewer"] = Field(description="Superset role.")
    schemas: list[Name] = Field(default_factory=list, description="Warehouse schemas usable in SQL Lab.")
    sql_lab: bool = Field(False, description="May use SQL Lab.")
    members: list[Email] = Field(default_factory=list, description="Users with this role.")


def _default_roles() -> dict[str, Role]:
    return {
        "admin": Role(superset="Admin", sql_lab=True, schemas=[]),
        "analyst": Role(superset="Analyst", sql_lab=True, schemas=["marts"]),
        "viewer": Role(superset="Viewer"),
    }


def _default_classifications() -> dict[str, str]:
    return {
        "pii": "Personally identifiable information",
        "confidential": "Business-confidential data",
        "public": "Safe to share",
    }


class Governance(StrictModel):
    """Teams, tags, glossary, classifications and roles."""

    teams: dict[TeamName, Team] = Field(default_factory=dict, description="Teams by name.")
    tags: dict[Name, str] = Field(default_factory=dict, description="Allowed tags -> description (any tag when empty).")
    glossary: dict[
        str, Annotated[GlossaryTerm, BeforeValidator(_term_shorthand, json_schema_input_type=str | GlossaryTerm)]
    ] = Field(default_factory=dict, description="Term -> definition.")
    classifications: dict[Name, str] = Field(
        default_factory=_default_classifications, description="Classifications -> description."
    )
    roles: dict[Name, Role] = Field(default_factory=_default_roles, description="Access roles.")


# --------------------------------------------------------------------------- the whole spec


class Spec(StrictModel):
    """A platformgen spec: one file, or the merge of a directory's files."""

    platform: Platform = Field(description="Identity and versions.")
    orchestration: Orchestration = Field(default_factory=Orchestration, description="Airflow settings.")
    storage: Storage = Field(default_factory=Storage, description="Object store.")
    warehouse: Warehouse = Field(default_factory=Warehouse, description="PostgreSQL warehouse.")
    sources: list[Source] = Field(default_factory=list, description="Data sources.")
    models: list[Model] = Field(default_factory=list, description="Intermediate and gold models.")
    expectations: list[DatasetExpectation] = Field(default_factory=list, description="Expectations by dataset.")
    slas: list[DatasetSla] = Field(default_factory=list, description="SLAs by dataset.")
    alerting: Alerting = Field(default_factory=Alerting, description="Alert channels and routes.")
    dashboards: list[Dashboard] = Field(default_factory=list, description="Superset dashboards.")
    governance: Governance = Field(default_factory=Governance, description="Ownership and classification.")
