"""Load one extract's bronze Parquet files into the raw table, atomically with its watermark and log row.

Everything that changes raw happens in one transaction on one ADBC connection: the schema-change check (and
`alter table add column` when allowed), removing the rows this run id loaded before, the rows themselves, the
watermark and the `load` row of ingestion_log. The rows go in with ADBC's binary COPY:

- snapshot tables (database tables and endpoints without an incremental cursor): raw holds the latest
  snapshot, so it is truncated and the files are copied straight into it (bronze keeps the history);
- append tables (file sources: every landing file is extracted once): the files are appended after removing
  what this run id loaded before;
- incremental tables: the files are copied into a temporary table, then appended with one insert-select that
  skips rows whose primary key and cursor value raw already has, so the lag re-read adds nothing.

On failure the transaction rolls back (raw and the watermark are untouched), a `failed` row with a scrubbed
message is written in a separate transaction (plus an alert for a schema change), and the error is re-raised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from platformgen.runtime import settings, warehouse
from platformgen.runtime.bronze import BronzeBatch

log = logging.getLogger("platformgen.runtime.load")

#: Columns the load adds to every raw table.
META_COLUMNS = ("_ingested_at", "_run_id", "_source_file")
_STAGE = "platformgen_stage"
#: format_type() spelling of the PostgreSQL types the vocabulary produces.
_CANONICAL_PG = {
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "float": "double precision",
    "float8": "double precision",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "bool": "boolean",
    "decimal": "numeric",
}


class SchemaChangeError(RuntimeError):
    """The incoming data does not fit the raw table under the dataset's schema-change policy."""

    def __init__(self, dataset: str, relation: str, changes: list[ColumnChange]) -> None:
        self.dataset = dataset
        self.relation = relation
        self.changes = changes
        lines = "\n".join(f"  - {c.describe(relation)}" for c in changes)
        super().__init__(f"schema change in {dataset}, the load into {relation} stopped:\n{lines}")


@dataclass(frozen=True)
class ColumnChange:
    """One difference between the incoming columns and the raw table that the policy does not allow."""

    kind: str  # new | removed | changed
    column: str
    old_type: str | None
    new_type: str | None

    def describe(self, relation: str) -> str:
        col = warehouse.quote_ident(self.column)
        if self.kind == "changed":
            return (
                f"column {self.column} changed type from {self.old_type} to {self.new_type} "
                f"(schema_change.changed_types: fail): migrate it (alter table {relation} alter column {col} "
                f"type {self.new_type}) or change the declared type back, then re-run the load"
            )
        if self.kind == "new":
            return (
                f"new column {self.column} ({self.new_type}) is not in the raw table "
                f"(schema_change.new_columns: fail): add it (alter table {relation} add column {col} "
                f"{self.new_type}) or set new_columns to add or ignore, then re-run the load"
            )
        return (
            f"column {self.column} ({self.old_type}) of the raw table is no longer delivered "
            f"(schema_change.removed_columns: fail): set removed_columns: keep_null to load NULLs, "
            f"or drop the column from {relation}, then re-run the load"
        )


@dataclass
class ColumnPlan:
    """How the incoming columns map onto the raw table."""

    load: list[str] = field(default_factory=list)  # incoming columns written to raw, in file order
    add: list[tuple[str, str]] = field(default_factory=list)  # (column, pg type) to add to raw first
    types: dict[str, str] = field(default_factory=dict)  # pg type of each loaded column
    arrow: dict[str, Any] = field(default_factory=dict)  # Arrow type of each loaded column in the files


def load_batch(
    platform: dict[str, Any], source: dict[str, Any], table: dict[str, Any], batch: BronzeBatch
) -> dict[str, Any]:
    """Load the bronze files of `batch` into raw in one transaction; returns rows, bytes, files and status."""
    started = dt.datetime.now(dt.UTC)
    params = settings.warehouse_params(platform)
    try:
        result = _load(platform, table, batch, params, started)
    except Exception as exc:
        _record_failure(platform, table, batch, exc, started, params.password)
        raise
    log.info(
        "%s: %d row(s) loaded into %s (%d already there)",
        table["dataset"],
        result["rows"],
        raw_relation(platform, table),
        result["skipped"],
    )
    return result


def load_mode(table: dict[str, Any]) -> str:
    """snapshot, incremental or append (see the module docstring); set by the compiler per dataset."""
    return str(table.get("load_mode") or ("incremental" if table.get("incremental") else "snapshot"))


def raw_relation(platform: dict[str, Any], table: dict[str, Any]) -> str:
    """`"<raw schema>"."<raw_table>"`."""
    q = warehouse.quote_ident
    return f"{q(platform['schemas']['raw'])}.{q(table['raw_table'])}"


def _load(
    platform: dict[str, Any], table: dict[str, Any], batch: BronzeBatch, params: settings.PgParams, started: dt.datetime
) -> dict[str, Any]:
    from platformgen.runtime import arrow_io

    with warehouse.connect(params, autocommit=True) as conn:
        warehouse.ensure_platform_schema(conn, platform)
        conn.execute(f"create schema if not exists {warehouse.quote_ident(platform['schemas']['raw'])}")
    files = BronzeFiles(arrow_io.s3_client(platform), batch)
    conn = warehouse.connect_adbc(params, autocommit=False)
    try:
        cur = conn.cursor()
        try:
            result = _load_in_transaction(conn, cur, platform, table, batch, files, started)
        finally:
            cur.close()
        conn.commit()
    except BaseException:
        _rollback(conn)
        raise
    finally:
        conn.close()
    return result


def _load_in_transaction(
    conn: Any,
    cur: Any,
    platform: dict[str, Any],
    table: dict[str, Any],
    batch: BronzeBatch,
    files: BronzeFiles,
    started: dt.datetime,
) -> dict[str, Any]:
    incoming = files.schema(table)
    relation = raw_relation(platform, table)
    mode = load_mode(table)
    incremental = mode == "incremental"
    # Loads of one dataset queue behind each other (Airflow may run several runs of a DAG at once).
    cur.execute("select pg_advisory_xact_lock(hashtext($1))", (f"platformgen.load:{table['dataset']}",))
    _create_raw_table(cur, platform, table, incoming)
    plan = plan_columns(table, relation, incoming, _raw_columns(cur, relation))
    for column, pg_type in plan.add:
        cur.execute(f"alter table {relation} add column {warehouse.quote_ident(column)} {pg_type}")
        log.info("%s: added column %s %s to %s", table["dataset"], column, pg_type, relation)
    if mode == "snapshot":
        cur.execute(f"truncate {relation}")
    else:
        cur.execute(f"delete from {relation} where _run_id = $1", (batch.run_id,))
    rows = _write_rows(cur, platform, table, batch, plan, files)
    # The bookkeeping runs on the same ADBC connection, hence in the same transaction as the rows.
    book = warehouse.PyformatConnection(conn)
    if incremental:
        _advance_watermark(book, platform, table, batch)
    _log_success(book, platform, table, batch, rows, started)
    return {
        "rows": rows,
        "bytes": batch.bytes,
        "files": len(batch.files),
        "status": "success",
        "skipped": batch.rows - rows,
    }


# --------------------------------------------------------------------------- schema


class BronzeFiles:
    """The batch's bronze files, downloaded one at a time; the first stays open after its schema is read."""

    def __init__(self, client: Any, batch: BronzeBatch) -> None:
        self.client = client
        self.batch = batch
        self._opened: dict[str, Any] = {}

    def open(self, key: str) -> Any:
        from platformgen.runtime import arrow_io

        cached = self._opened.pop(key, None)
        return cached if cached is not None else arrow_io.open_bronze_parquet(self.client, self.batch.bucket, key)

    def each(self) -> Iterator[tuple[str, Any]]:
        """(key, ParquetFile) of every file, the next one downloading while the current one is loaded."""
        from platformgen.runtime import arrow_io

        return arrow_io.prefetch(((f.key, self.open(f.key)) for f in self.batch.files), depth=1)

    def schema(self, table: dict[str, Any]) -> Any:
        """The Arrow schema of the files (every part of a run shares it); the declared one if there are none."""
        from platformgen.runtime import arrow_io

        if not self.batch.files:
            return arrow_io.arrow_schema(table)
        key = self.batch.files[0].key
        self._opened[key] = self.open(key)
        return self._opened[key].schema_arrow


def pg_type_of(table: dict[str, Any], column: str, arrow_type: Any) -> str:
    """The PostgreSQL type of an incoming column: as declared, else derived from its Arrow type."""
    for c in table["columns"]:
        if c["name"] == column and c.get("pg_type"):
            return str(c["pg_type"])
    return _pg_type_for_arrow(arrow_type)


def _pg_type_for_arrow(arrow_type: Any) -> str:
    import pyarrow as pa

    t = arrow_type
    if isinstance(t, pa.BaseExtensionType):
        return "jsonb" if t.extension_name == "arrow.json" else "text"
    if pa.types.is_int32(t) or pa.types.is_int16(t) or pa.types.is_int8(t):
        return "integer"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    return "text"


def canonical_pg_type(pg_type: str) -> str:
    """A type as format_type() spells it, so a declared type compares with the raw table's."""
    text = " ".join(pg_type.strip().lower().split()).replace(", ", ",")
    return _CANONICAL_PG.get(text, text)


def plan_columns(table: dict[str, Any], relation: str, incoming: Any, existing: dict[str, str]) -> ColumnPlan:
    """Compare the incoming columns with the raw table under the schema-change policy (raises on a violation)."""
    policy = {
        "new_columns": "add",
        "removed_columns": "fail",
        "changed_types": "fail",
        **(table.get("schema_change") or {}),
    }
    plan = ColumnPlan()
    changes: list[ColumnChange] = []
    names = set(incoming.names)
    for f in incoming:
        new_type = pg_type_of(table, f.name, f.type)
        old_type = existing.get(f.name)
        if old_type is None:
            if policy["new_columns"] == "fail":
                changes.append(ColumnChange("new", f.name, None, new_type))
                continue
            if policy["new_columns"] == "ignore":
                continue
            plan.add.append((f.name, new_type))
        elif canonical_pg_type(old_type) != canonical_pg_type(new_type):
            changes.append(ColumnChange("changed", f.name, old_type, new_type))
            continue
        plan.load.append(f.name)
        plan.types[f.name] = new_type
        plan.arrow[f.name] = f.type
    if policy["removed_columns"] == "fail":
        for column, old_type in existing.items():
            if column not in names and column not in META_COLUMNS:
                changes.append(ColumnChange("removed", column, old_type, None))
    if changes:
        raise SchemaChangeError(str(table["dataset"]), relation, changes)
    return plan


def _create_raw_table(cur: Any, platform: dict[str, Any], table: dict[str, Any], incoming: Any) -> None:
    """Create the raw table from the incoming columns if missing; incremental tables get their lookup indexes."""
    q = warehouse.quote_ident
    relation = raw_relation(platform, table)
    columns = [f"{q(f.name)} {pg_type_of(table, f.name, f.type)}" for f in incoming]
    columns += ["_ingested_at timestamptz not null default now()", "_run_id text not null", "_source_file text"]
    cur.execute(f"create table if not exists {relation} ({', '.join(columns)})")
    inc = table.get("incremental")
    if not inc:
        return
    # The boundary dedup looks rows up by primary key and cursor; re-runs delete (and extracts look up) by run id.
    key = [*table.get("primary_key", []), inc["cursor"]]
    if table.get("primary_key"):
        cur.execute(
            f"create index if not exists {q(_index_name(table, 'key'))} on {relation} ({', '.join(q(c) for c in key)})"
        )
    cur.execute(f"create index if not exists {q(_index_name(table, 'run'))} on {relation} (_run_id)")


def _index_name(table: dict[str, Any], suffix: str) -> str:
    # Identifiers are cut at 63 bytes; a hash keeps two long table names from colliding.
    digest = hashlib.sha1(str(table["raw_table"]).encode()).hexdigest()[:8]
    return f"{str(table['raw_table'])[:40]}_{digest}_{suffix}"


def _raw_columns(cur: Any, relation: str) -> dict[str, str]:
    """Column -> format_type() of the raw table, in table order."""
    cur.execute(
        "select attname::text, format_type(atttypid, atttypmod) from pg_attribute "
        "where attrelid = $1::regclass and attnum > 0 and not attisdropped order by attnum",
        (relation,),
    )
    return {str(name): str(pg_type) for name, pg_type in cur.fetchall()}


# --------------------------------------------------------------------------- rows


def _write_rows(
    cur: Any, platform: dict[str, Any], table: dict[str, Any], batch: BronzeBatch, plan: ColumnPlan, files: BronzeFiles
) -> int:
    """Copy the batch's rows into raw; returns the rows added."""
    if load_mode(table) != "incremental" and all(_copies_as_is(plan.arrow[c], plan.types[c]) for c in plan.load):
        return _copy_into_raw(cur, platform, table, batch, plan, files)
    return _stage_and_insert(cur, platform, table, batch, plan, files)


def _copies_as_is(arrow_type: Any, pg_type: str) -> bool:
    # Binary COPY writes each Arrow type as one PostgreSQL type; anything else (a numeric without precision,
    # which bronze keeps as text) goes through the staging table and a cast.
    natural, target = canonical_pg_type(_pg_type_for_arrow(arrow_type)), canonical_pg_type(pg_type)
    return natural == target or (natural.startswith("numeric(") and target.startswith("numeric("))


def _copy_into_raw(
    cur: Any, platform: dict[str, Any], table: dict[str, Any], batch: BronzeBatch, plan: ColumnPlan, files: BronzeFiles
) -> int:
    """Full tables: COPY every file straight into the (just truncated) raw table."""
    rows = 0
    with_origin = _with_origin(batch)
    for key, parquet in files.each():
        reader = _file_reader(batch, key, parquet, plan.load, with_origin)
        cur.adbc_ingest(str(table["raw_table"]), reader, mode="append", db_schema_name=platform["schemas"]["raw"])
        rows += int(parquet.metadata.num_rows)
    return rows


def _stage_and_insert(
    cur: Any, platform: dict[str, Any], table: dict[str, Any], batch: BronzeBatch, plan: ColumnPlan, files: BronzeFiles
) -> int:
    """COPY the files into a temporary table, then append them to raw, skipping rows raw already has."""
    q = warehouse.quote_ident
    relation = raw_relation(platform, table)
    cur.execute(f"drop table if exists pg_temp.{_STAGE}")
    with_origin = _with_origin(batch)
    for index, (key, parquet) in enumerate(files.each()):
        reader = _file_reader(batch, key, parquet, plan.load, with_origin)
        cur.adbc_ingest(_STAGE, reader, mode="create" if index == 0 else "append", temporary=True)
    if not batch.files:
        return 0
    meta = ["_run_id", "_source_file"] if with_origin else ["_run_id"]
    targets = [*plan.load, *meta]
    values = [f"s.{q(c)}::{plan.types[c]}" for c in plan.load] + [f"s.{c}" for c in meta]
    query = f"insert into {relation} ({', '.join(q(c) for c in targets)}) select {', '.join(values)} from pg_temp.{_STAGE} s"
    inc = table.get("incremental")
    lookup = [*table.get("primary_key", [])]
    if inc and lookup:
        lookup.append(str(inc["cursor"]))
        match = " and ".join(f"r.{q(c)} = s.{q(c)}::{plan.types.get(c, 'text')}" for c in lookup if c in plan.types)
        query += f" where not exists (select 1 from {relation} r where {match})"
    cur.execute(f"with added as ({query} returning 1) select count(*) from added")
    row = cur.fetchone()
    cur.execute(f"drop table pg_temp.{_STAGE}")
    return int(row[0]) if row else 0


def _file_reader(batch: BronzeBatch, key: str, parquet: Any, columns: list[str], with_origin: bool) -> Any:
    """A RecordBatchReader over one bronze file's `columns`, plus `_run_id` and (if `with_origin`) `_source_file`.

    Parquet is decoded in a background thread while ADBC encodes and sends the previous batch.
    """
    import pyarrow as pa

    from platformgen.runtime import arrow_io

    origin = next((f.source_file for f in batch.files if f.key == key), None)
    extra = [pa.field("_run_id", pa.string())] + ([pa.field("_source_file", pa.string())] if with_origin else [])
    schema = pa.schema([parquet.schema_arrow.field(c) for c in columns] + extra)

    def batches() -> Iterator[Any]:
        for part in arrow_io.prefetch(arrow_io.iter_parquet_batches(parquet, columns)):
            constants = [pa.repeat(pa.scalar(batch.run_id, pa.string()), part.num_rows)]
            if with_origin:
                constants.append(pa.repeat(pa.scalar(origin, pa.string()), part.num_rows))
            yield pa.RecordBatch.from_arrays([*part.columns, *constants], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _with_origin(batch: BronzeBatch) -> bool:
    # Only file sources have a landing file; leaving the column out of the COPY keeps raw rows narrow.
    return any(f.source_file for f in batch.files)


# --------------------------------------------------------------------------- bookkeeping


def _advance_watermark(book: Any, platform: dict[str, Any], table: dict[str, Any], batch: BronzeBatch) -> None:
    """Commit the batch's watermark with the rows; never move it backwards (runs may load out of order)."""
    if batch.watermark is None or batch.cursor is None:
        return
    current = warehouse.get_watermark(book, platform, batch.source, batch.dataset)
    if current is not None and current != batch.watermark:
        pg_type = _declared_pg_type(table, batch.cursor)
        with book.cursor() as cur:
            cur.execute(f"select %s::{pg_type} > %s::{pg_type}", (current, batch.watermark))
            row = cur.fetchone()
        if row is not None and row[0]:
            log.info("%s: watermark stays at %s (this batch reached %s)", batch.dataset, current, batch.watermark)
            return
    warehouse.set_watermark(book, platform, batch.source, batch.dataset, batch.cursor, batch.watermark, batch.run_id)


def _declared_pg_type(table: dict[str, Any], column: str) -> str:
    return next((str(c["pg_type"]) for c in table["columns"] if c["name"] == column and c.get("pg_type")), "text")


def _log_success(
    book: Any, platform: dict[str, Any], table: dict[str, Any], batch: BronzeBatch, rows: int, started: dt.datetime
) -> None:
    warehouse.log_ingestion(
        book,
        platform,
        run_id=batch.run_id,
        source=batch.source,
        dataset=batch.dataset,
        stage="load",
        status="success",
        rows=rows,
        nbytes=batch.bytes,
        started_at=started,
    )


def _rollback(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception as exc:  # the connection may be gone: the server rolls back on its own
        log.warning("rollback failed: %s", type(exc).__name__)


def _record_failure(
    platform: dict[str, Any],
    table: dict[str, Any],
    batch: BronzeBatch,
    exc: BaseException,
    started: dt.datetime,
    *secrets: str,
) -> None:
    """Write the `failed` load row (and an alert for a schema change) in their own transaction; best effort."""
    message = settings.scrub(f"{type(exc).__name__}: {exc}", *secrets)[:4000]
    try:
        with warehouse.connect_warehouse(platform, autocommit=True) as conn:
            warehouse.ensure_platform_schema(conn, platform)
            warehouse.log_ingestion(
                conn,
                platform,
                run_id=batch.run_id,
                source=batch.source,
                dataset=batch.dataset,
                stage="load",
                status="failed",
                nbytes=batch.bytes,
                started_at=started,
                error=message,
            )
            if isinstance(exc, SchemaChangeError):
                record_alert(
                    conn, platform, kind="schema_change", severity="error", dataset=batch.dataset, message=message
                )
    except Exception as log_exc:
        log.warning("could not record the failed load in ingestion_log: %s", type(log_exc).__name__)


def record_alert(conn: Any, platform: dict[str, Any], *, kind: str, severity: str, dataset: str, message: str) -> None:
    """Insert a row into data_platform.alerts (delivery is the alerting module's job)."""
    schema = warehouse.quote_ident(platform["schemas"]["platform"])
    with conn.cursor() as cur:
        cur.execute(
            f"insert into {schema}.alerts (kind, severity, dataset, message) values (%s, %s, %s, %s)",
            (kind, severity, dataset, message),
        )
