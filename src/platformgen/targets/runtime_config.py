"""The plain-data configuration that generated DAGs pass to the runtime (no secrets: env:VAR references only)."""

from __future__ import annotations

from typing import Any

from platformgen.plan.build import Plan, SourcePlan, SourceTablePlan
from platformgen.spec.models import (
    ApiEndpoint,
    ApiSource,
    FileSource,
    FileTable,
    PostgresConnection,
    PostgresSource,
    PostgresTable,
)


def connection_config(connection: PostgresConnection) -> dict[str, Any]:
    """A PostgreSQL connection as the runtime reads it: values, env:VAR references or an Airflow conn_id."""
    return connection.model_dump(include={"conn_id", "host", "port", "database", "user", "password", "sslmode"})


def platform_config(plan: Plan) -> dict[str, Any]:
    """Warehouse, schemas, storage and alerting settings shared by every task."""
    wh = plan.warehouse.connection
    alerting = plan.alerting
    return {
        "name": plan.name,
        "warehouse": connection_config(wh),
        "schemas": plan.warehouse.schemas.model_dump(),
        "storage": {
            "endpoint": plan.storage.endpoint,
            "region": plan.storage.region,
            "access_key": plan.storage.access_key,
            "secret_key": plan.storage.secret_key,
            "buckets": plan.storage.buckets.model_dump(),
            "bronze_format": plan.storage.bronze_format,
        },
        "alerting": {
            "email": None if alerting.email is None else {"to": list(alerting.email.to), "from": alerting.email.sender},
            "slack": None
            if alerting.slack is None
            else {"channel": alerting.slack.channel, "webhook": alerting.slack.webhook},
            "routes": [{"severity": r.severity, "owner": r.owner, "notify": list(r.notify)} for r in plan.routes],
        },
    }


def source_config(source: SourcePlan) -> dict[str, Any]:
    """How to reach a source."""
    spec = source.spec
    base: dict[str, Any] = {"name": source.name, "kind": source.kind, "owner": source.owner}
    if isinstance(spec, PostgresSource):
        c = spec.connection
        base["connection"] = connection_config(c)
    elif isinstance(spec, ApiSource):
        base.update(
            {
                "base_url": spec.base_url,
                "auth": None if spec.auth is None else spec.auth.model_dump(),
                "headers": dict(spec.headers),
                "rate_limit": None
                if spec.rate_limit is None
                else {"requests": spec.rate_limit.requests, "per_seconds": spec.rate_limit.per},
                "timeout_seconds": spec.timeout,
            }
        )
    elif isinstance(spec, FileSource):
        base.update(
            {
                "location": spec.location,
                "format": spec.format,
                "delimiter": spec.delimiter,
                "header": spec.header,
                "encoding": spec.encoding,
            }
        )
    return base


def table_config(plan: Plan, table: SourceTablePlan) -> dict[str, Any]:
    """What to extract and how to load it into raw."""
    spec = table.spec
    config: dict[str, Any] = {
        "name": table.name,
        "dataset": table.key,
        "raw_table": table.raw_table,
        "bronze_prefix": table.bronze_prefix,
        "columns": [{"name": c.name, "type": c.type, "pg_type": c.postgres_type} for c in table.columns],
        "primary_key": list(spec.primary_key),
        "incremental": None,
        "schema_change": spec.silver.schema_change.model_dump(),
    }
    if isinstance(spec, PostgresTable):
        config["source_schema"] = spec.schema_
        config["source_table"] = spec.table or spec.name
        if spec.incremental is not None:
            inc = spec.incremental
            config["incremental"] = {"cursor": inc.cursor, "initial": inc.initial, "lag_seconds": inc.lag}
    elif isinstance(spec, ApiEndpoint):
        config.update(
            {
                "path": spec.path,
                "params": dict(spec.params),
                "records": spec.records,
                "pagination": None if spec.pagination is None else spec.pagination.model_dump(),
            }
        )
        if spec.incremental is not None:
            inc_api = spec.incremental
            config["incremental"] = {
                "param": inc_api.param,
                "cursor": inc_api.cursor,
                "initial": inc_api.initial,
                "lag_seconds": inc_api.lag,
            }
    elif isinstance(spec, FileTable):
        config.update({"pattern": spec.pattern, "format": spec.format, "delimiter": spec.delimiter})
    # how the load treats raw: the latest snapshot, cursor increments, or every landing file once
    if isinstance(spec, FileTable):
        config["load_mode"] = "append"
    else:
        config["load_mode"] = "incremental" if config["incremental"] else "snapshot"
    return config
