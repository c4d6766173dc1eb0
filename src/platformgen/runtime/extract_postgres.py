"""Extract one PostgreSQL table into bronze Parquet: ADBC streams Arrow batches, written part by part.

Path: `select <declared columns> from "<schema>"."<table>" [where <cursor> >= <bound>]` runs through the ADBC
PostgreSQL driver, which reads it with binary `COPY ... TO STDOUT` and hands over Arrow record batches of about
16 MB; they are conformed to the dataset's bronze schema and streamed into Parquet parts of at most
ROWS_PER_PART rows, uploaded one at a time, so memory stays bounded by one part whatever the table size.

Incremental tables read from the committed watermark (minus the lag for date/time cursors, strictly after it for
other cursors); the batch carries the highest cursor value seen, which the load commits with the rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from platformgen.runtime import settings, warehouse
from platformgen.runtime.bronze import BronzeBatch, BronzeFile

log = logging.getLogger("platformgen.runtime.extract_postgres")

#: Rows per bronze Parquet part: bounds the memory of an extract (one part is buffered before its upload).
ROWS_PER_PART = 1_000_000
#: Cursor types read with `>= watermark - lag`; any other cursor is read with `> watermark`.
TIME_TYPES = frozenset({"date", "timestamp", "timestamptz"})
_PG_TYPE = re.compile(r"^[a-z][a-z ]*(\(\d+(,\d+)?\))?$")


@dataclass(frozen=True)
class LowerBound:
    """Where an incremental read starts: `cursor >= value - lag` (inclusive) or `cursor > value`.

    `rerun_from` is set when this run id already has rows in raw (a cleared task run again): the load replaces
    them, so the read also takes everything from the earliest of them (`or cursor >= rerun_from`).
    """

    value: str
    inclusive: bool
    lag_seconds: int = 0
    rerun_from: str | None = None


def extract_table(
    platform: dict[str, Any], source: dict[str, Any], table: dict[str, Any], *, run_id: str, ingest_date: str
) -> BronzeBatch:
    """Extract `table` of the PostgreSQL `source` into bronze and log it; returns the batch for the load."""
    started = dt.datetime.now(dt.UTC)
    name = source["name"]
    params = settings.postgres_params(
        source["connection"], override_env=settings.source_url_env(name), what=f"source {name}"
    )
    try:
        with warehouse.connect_warehouse(platform, autocommit=True) as conn:
            warehouse.ensure_platform_schema(conn, platform)
            bound, committed = read_start(conn, platform, source, table, run_id)
        batch = extract_to_bronze(
            platform, table, params, bound, committed, source=name, run_id=run_id, ingest_date=ingest_date
        )
    except Exception as exc:
        _log_failure(platform, source, table, run_id, started, exc, params.password)
        raise
    with warehouse.connect_warehouse(platform, autocommit=True) as conn:
        warehouse.log_ingestion(
            conn,
            platform,
            run_id=run_id,
            source=name,
            dataset=table["dataset"],
            stage="extract",
            status="success",
            rows=batch.rows,
            nbytes=batch.bytes,
            started_at=started,
            file_name=f"s3://{batch.bucket}/{_run_folder(table, run_id, ingest_date)}",
        )
    log.info(
        "%s: %d row(s) in %d bronze part(s), %d bytes", table["dataset"], batch.rows, len(batch.files), batch.bytes
    )
    return batch


# --------------------------------------------------------------------------- where to start


def read_start(
    conn: Any, platform: dict[str, Any], source: dict[str, Any], table: dict[str, Any], run_id: str
) -> tuple[LowerBound | None, str | None]:
    """The lower bound of this run's read and the committed watermark (None for full loads)."""
    inc = table.get("incremental")
    if not inc:
        return None, None
    entry = warehouse.get_watermark_entry(conn, platform, source["name"], table["dataset"])
    committed = None if entry is None else entry[0]
    if committed is not None:
        time_cursor = column_type(table, inc["cursor"]) in TIME_TYPES
        lag = int(inc.get("lag_seconds") or 0) if time_cursor else 0
        bound = LowerBound(committed, inclusive=time_cursor, lag_seconds=lag)
    elif inc.get("initial") is not None:
        bound = LowerBound(str(inc["initial"]), inclusive=True)
    else:
        return None, None  # first run without an initial value: everything
    earliest = earliest_cursor_of_run(conn, platform, table, run_id)
    if earliest is not None:
        bound = LowerBound(bound.value, bound.inclusive, bound.lag_seconds, rerun_from=earliest)
    return bound, committed


def earliest_cursor_of_run(conn: Any, platform: dict[str, Any], table: dict[str, Any], run_id: str) -> str | None:
    """The lowest cursor value among the raw rows a run loaded (None if none, or no raw table yet)."""
    q = warehouse.quote_ident
    relation = f"{q(platform['schemas']['raw'])}.{q(table['raw_table'])}"
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s) is not null", (relation,))
        row = cur.fetchone()
        if row is None or not row[0]:
            return None
        cur.execute(
            f"select min({q(table['incremental']['cursor'])})::text from {relation} where _run_id = %s", (run_id,)
        )
        row = cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


def column_type(table: dict[str, Any], column: str) -> str:
    """The vocabulary type of a declared column ('string' when undeclared)."""
    for c in table["columns"]:
        if c["name"] == column:
            return str(c.get("type") or "string")
    raise KeyError(f"{table['dataset']}: column {column!r} is not declared")


def _pg_type(table: dict[str, Any], column: str) -> str:
    for c in table["columns"]:
        if c["name"] == column:
            pg_type = str(c.get("pg_type") or "text")
            if not _PG_TYPE.match(pg_type):  # it is pasted into SQL: accept only type names
                raise ValueError(f"{table['dataset']}: unexpected PostgreSQL type {pg_type!r} for {column}")
            return pg_type
    raise KeyError(f"{table['dataset']}: column {column!r} is not declared")


# --------------------------------------------------------------------------- the query


def sql_literal(text: str) -> str:
    """A PostgreSQL string literal (E'' form when backslashes occur, so standard_conforming_strings can't matter)."""
    if "\x00" in text:
        raise ValueError("a watermark cannot contain NUL characters")
    escaped = text.replace("'", "''")
    if "\\" in escaped:
        return "E'" + escaped.replace("\\", "\\\\") + "'"
    return "'" + escaped + "'"


def build_query(table: dict[str, Any], bound: LowerBound | None) -> str:
    """The SELECT of the declared columns, with the incremental condition when there is a bound.

    The bound is inlined as a typed literal rather than bound as a parameter: ADBC streams a parameterless
    query with binary COPY, its fastest path.
    """
    q = warehouse.quote_ident
    columns = ", ".join(q(str(c["name"])) for c in table["columns"])
    query = f"select {columns} from {q(table['source_schema'])}.{q(table['source_table'])}"
    if bound is None:
        return query
    cursor = str(table["incremental"]["cursor"])
    pg_type = _pg_type(table, cursor)
    start = f"{sql_literal(bound.value)}::{pg_type}"
    if bound.lag_seconds:
        start = f"({start} - interval '{int(bound.lag_seconds)} seconds')"
    condition = f"{q(cursor)} {'>=' if bound.inclusive else '>'} {start}"
    if bound.rerun_from is not None:
        condition = f"({condition} or {q(cursor)} >= {sql_literal(bound.rerun_from)}::{pg_type})"
    return f"{query} where {condition}"


# --------------------------------------------------------------------------- streaming into bronze


def extract_to_bronze(
    platform: dict[str, Any],
    table: dict[str, Any],
    params: settings.PgParams,
    bound: LowerBound | None,
    committed: str | None,
    *,
    source: str,
    run_id: str,
    ingest_date: str,
) -> BronzeBatch:
    """Run the query on the source and write its result as bronze parts; stale parts of the run are removed."""
    from platformgen.runtime import arrow_io

    inc = table.get("incremental")
    schema = arrow_io.arrow_schema(table)
    tracker = MaxTracker(str(inc["cursor"])) if inc else None
    query = build_query(table, bound)
    log.info("%s: reading %s", table["dataset"], "everything" if bound is None else f"from {bound}")
    conn = warehouse.connect_adbc(params, autocommit=True)
    try:
        cur = conn.cursor()
        try:
            cur.execute(query)
            batches: Iterable[Any] = (arrow_io.conform(b, schema) for b in cur.fetch_record_batch())
            if tracker is not None:
                batches = tracker.observe(batches)
            # The next batches are read from PostgreSQL while the current part is encoded and uploaded.
            files = write_parts(platform, table, arrow_io.prefetch(batches), run_id=run_id, ingest_date=ingest_date)
        finally:
            cur.close()
    finally:
        conn.close()
    client = arrow_io.s3_client(platform)
    bucket = arrow_io.bronze_bucket(platform)
    arrow_io.remove_stale_parts(client, bucket, _run_folder(table, run_id, ingest_date), [f.key for f in files])
    seen = None if tracker is None else tracker.text()
    return BronzeBatch(
        source=source,
        dataset=table["dataset"],
        run_id=run_id,
        bucket=bucket,
        files=files,
        cursor=None if not inc else str(inc["cursor"]),
        watermark=seen if seen is not None else committed,
    )


def write_parts(
    platform: dict[str, Any], table: dict[str, Any], batches: Iterable[Any], *, run_id: str, ingest_date: str
) -> list[BronzeFile]:
    """Write a stream of batches as consecutive bronze parts of about ROWS_PER_PART rows (at least one part)."""
    from platformgen.runtime.arrow_io import write_bronze_parquet

    splitter = PartSplitter(batches, ROWS_PER_PART)
    files = [write_bronze_parquet(platform, table, splitter.part(), run_id=run_id, ingest_date=ingest_date, part=0)]
    while splitter.has_more():
        files.append(
            write_bronze_parquet(
                platform, table, splitter.part(), run_id=run_id, ingest_date=ingest_date, part=len(files)
            )
        )
    return files


class PartSplitter:
    """Cuts one stream of record batches into consecutive, lazily read parts of about `rows` rows each."""

    def __init__(self, batches: Iterable[Any], rows: int) -> None:
        self._batches = iter(batches)
        self._rows = rows
        self._next: Any = next(self._batches, None)

    def has_more(self) -> bool:
        return self._next is not None

    def part(self) -> Iterator[Any]:
        taken = 0
        while self._next is not None and taken < self._rows:
            batch, self._next = self._next, None
            taken += batch.num_rows
            yield batch
            self._next = next(self._batches, None)


class MaxTracker:
    """The highest value of one column over the batches that pass through (the new watermark)."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.value: Any = None

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow.compute as pc

        for batch in batches:
            if batch.num_rows:
                candidate = pc.max(batch.column(self.column)).as_py()
                if candidate is not None and (self.value is None or candidate > self.value):
                    self.value = candidate
            yield batch

    def text(self) -> str | None:
        """The value as stored in the watermarks table (ISO 8601 for dates and times)."""
        if self.value is None:
            return None
        if isinstance(self.value, dt.date | dt.datetime):
            return self.value.isoformat()
        return str(self.value)


def _run_folder(table: dict[str, Any], run_id: str, ingest_date: str) -> str:
    from platformgen.runtime.arrow_io import run_prefix

    return run_prefix(table, run_id, ingest_date)


def _log_failure(
    platform: dict[str, Any],
    source: dict[str, Any],
    table: dict[str, Any],
    run_id: str,
    started: dt.datetime,
    exc: BaseException,
    *secrets: str,
) -> None:
    """Record a failed extract (best effort: the warehouse may be what failed)."""
    message = settings.scrub(f"{type(exc).__name__}: {exc}", *secrets)
    try:
        with warehouse.connect_warehouse(platform, autocommit=True) as conn:
            warehouse.ensure_platform_schema(conn, platform)
            warehouse.log_ingestion(
                conn,
                platform,
                run_id=run_id,
                source=source["name"],
                dataset=table["dataset"],
                stage="extract",
                status="failed",
                started_at=started,
                error=message[:4000],
            )
    except Exception as log_exc:
        log.warning("could not record the failed extract in ingestion_log: %s", type(log_exc).__name__)
