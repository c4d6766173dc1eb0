"""Warehouse access for the runtime: connections and the data_platform bookkeeping tables."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from platformgen.runtime.ddl import platform_tables_sql
from platformgen.runtime.settings import PgParams, warehouse_params


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, always quoted."""
    return '"' + name.replace('"', '""') + '"'


def connect(params: PgParams, *, autocommit: bool = False) -> Any:
    """A psycopg 3 connection; the error message never contains the password."""
    import psycopg

    from platformgen.runtime.settings import scrub

    try:
        return psycopg.connect(params.conninfo(), autocommit=autocommit, application_name="platformgen")
    except psycopg.OperationalError as exc:
        message = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, params.password)
        raise ConnectionError(
            f"cannot connect to PostgreSQL at {params.host}:{params.port}/{params.dbname}: {message}"
        ) from None


def connect_warehouse(platform: dict[str, Any], *, autocommit: bool = False) -> Any:
    """A connection to the platform's warehouse."""
    return connect(warehouse_params(platform), autocommit=autocommit)


def ensure_platform_schema(conn: Any, platform: dict[str, Any]) -> None:
    """Create the data_platform tables if they are missing (idempotent; the bootstrap SQL does the same)."""
    schema = platform["schemas"]["platform"]
    with conn.cursor() as cur:
        cur.execute(
            "select count(*) from information_schema.tables where table_schema = %s and table_name in "
            "('ingestion_log', 'watermarks', 'alerts', 'quality_results', 'sla_misses')",
            (schema,),
        )
        row = cur.fetchone()
        if row is not None and row[0] == 5:
            return
        cur.execute(platform_tables_sql(schema))


def get_watermark(conn: Any, platform: dict[str, Any], source: str, dataset: str) -> str | None:
    """The committed watermark of a dataset, or None before its first successful load."""
    schema = quote_ident(platform["schemas"]["platform"])
    with conn.cursor() as cur:
        cur.execute(f"select value from {schema}.watermarks where source = %s and dataset = %s", (source, dataset))
        row = cur.fetchone()
    return None if row is None else row[0]


def set_watermark(
    conn: Any, platform: dict[str, Any], source: str, dataset: str, cursor: str, value: str, run_id: str
) -> None:
    """Advance a watermark; call inside the transaction that loads the rows."""
    schema = quote_ident(platform["schemas"]["platform"])
    with conn.cursor() as cur:
        cur.execute(
            f"insert into {schema}.watermarks (source, dataset, cursor, value, run_id, updated_at) "
            "values (%s, %s, %s, %s, %s, now()) on conflict (source, dataset) do update set "
            "cursor = excluded.cursor, value = excluded.value, run_id = excluded.run_id, updated_at = now()",
            (source, dataset, cursor, value, run_id),
        )


def log_ingestion(
    conn: Any,
    platform: dict[str, Any],
    *,
    run_id: str,
    source: str,
    dataset: str,
    stage: str,
    status: str,
    rows: int | None = None,
    nbytes: int | None = None,
    started_at: dt.datetime | None = None,
    error: str | None = None,
    file_name: str | None = None,
    file_checksum: str | None = None,
) -> None:
    """Append a row to ingestion_log."""
    schema = quote_ident(platform["schemas"]["platform"])
    with conn.cursor() as cur:
        cur.execute(
            f"insert into {schema}.ingestion_log (run_id, source, dataset, stage, status, rows, bytes, file_name, "
            "file_checksum, started_at, finished_at, error) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()), now(), %s)",
            (run_id, source, dataset, stage, status, rows, nbytes, file_name, file_checksum, started_at, error),
        )


def get_watermark_entry(
    conn: Any, platform: dict[str, Any], source: str, dataset: str
) -> tuple[str | None, str] | None:
    """The committed watermark of a dataset and the run that set it, or None before its first load."""
    schema = quote_ident(platform["schemas"]["platform"])
    with conn.cursor() as cur:
        cur.execute(
            f"select value, coalesce(run_id, '') from {schema}.watermarks where source = %s and dataset = %s",
            (source, dataset),
        )
        row = cur.fetchone()
    return None if row is None else (row[0], str(row[1]))


def connect_adbc(params: PgParams, *, autocommit: bool = False) -> Any:
    """An ADBC PostgreSQL DB-API connection (Arrow-native bulk reads and COPY ingest); errors hide the password."""
    import adbc_driver_postgresql.dbapi as adbc

    from platformgen.runtime.settings import scrub

    try:
        return adbc.connect(params.url(), autocommit=autocommit)
    except Exception as exc:
        text = str(exc).strip()
        message = scrub(text.splitlines()[0] if text else type(exc).__name__, params.password, params.url())
        raise ConnectionError(
            f"cannot connect to PostgreSQL at {params.host}:{params.port}/{params.dbname}: {message}"
        ) from None


class PyformatConnection:
    """Lets the psycopg-style helpers of this module (`%s` placeholders) run on an ADBC connection.

    The load writes its rows with ADBC and must advance the watermark and log in the same transaction, so the
    bookkeeping has to run on that connection; ADBC's PostgreSQL driver wants `$1, $2, ...` placeholders.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def cursor(self) -> _PyformatCursor:
        return _PyformatCursor(self.conn.cursor())


class _PyformatCursor:
    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def execute(self, query: str, params: tuple[Any, ...] | list[Any] | None = None) -> None:
        self.cursor.execute(numeric_placeholders(query), tuple(params) if params else None)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> Any:
        return self.cursor.fetchall()

    def __enter__(self) -> _PyformatCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cursor.close()


def numeric_placeholders(query: str) -> str:
    """`%s` -> `$1, $2, ...` and `%%` -> `%` (the placeholders of PostgreSQL's extended protocol)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"%[s%]", lambda m: "%" if m.group(0) == "%%" else f"${next(counter)}", query)
