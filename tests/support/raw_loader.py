"""Load a spec's sample data straight into its raw tables, independently of the runtime, so dbt tests isolate dbt.

postgres sources: `<sample>/<table>.csv`; api sources: `<sample>/<endpoint>/page-*.json`, records at the
endpoint's `records` path; file sources: the files matching the table's pattern in `<sample>/` (csv with
the table's delimiter and header, json arrays, json lines). `<sample>` is the source's `sample:` folder,
`data/<source>` by default. Every row gets `_run_id = 'sample'`; `_ingested_at` takes its default, now().
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from platformgen.plan.build import Plan, SourcePlan, SourceTablePlan
from platformgen.spec.models import ApiEndpoint, FileSource, FileTable

Row = dict[str, Any]


def sample_folder(spec_root: Path, source: SourcePlan) -> Path:
    """The folder of a source's sample files."""
    sample = getattr(source.spec, "sample", None)
    return spec_root / (sample or f"data/{source.name}")


def _records(document: Any, path: str | None) -> list[Row]:
    node = document
    for part in (path or "").split("."):
        if part:
            node = node[part]
    if not isinstance(node, list):
        raise ValueError(f"no record list at {path!r}")
    return [r for r in node if isinstance(r, dict)]


def _csv_rows(file: Path, table: SourceTablePlan, delimiter: str, header: bool, encoding: str) -> list[Row]:
    names = [c.name for c in table.columns]
    with file.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        rows = list(reader)
    fields = rows.pop(0) if header and rows else names
    return [dict(zip(fields, (None if v == "" else v for v in row), strict=False)) for row in rows if row]


def sample_files(spec_root: Path, source: SourcePlan, table: SourceTablePlan) -> list[Path]:
    """The sample files of one dataset, sorted."""
    folder = sample_folder(spec_root, source)
    if source.kind == "postgres":
        return [folder / f"{table.name}.csv"]
    if source.kind == "api":
        return sorted((folder / table.name).glob("page-*.json"))
    assert isinstance(table.spec, FileTable)
    return sorted(folder.glob(table.spec.pattern))


def sample_rows(spec_root: Path, source: SourcePlan, table: SourceTablePlan) -> list[tuple[str, Row]]:
    """(file name, record) of every sample record of a dataset, in file order."""
    out: list[tuple[str, Row]] = []
    for file in sample_files(spec_root, source, table):
        if source.kind == "postgres":
            rows = _csv_rows(file, table, ",", True, "utf-8")
        elif source.kind == "api":
            assert isinstance(table.spec, ApiEndpoint)
            rows = _records(json.loads(file.read_text(encoding="utf-8")), table.spec.records)
        else:
            spec = source.spec
            assert isinstance(spec, FileSource)
            assert isinstance(table.spec, FileTable)
            fmt = table.spec.format or spec.format
            if fmt == "csv":
                rows = _csv_rows(file, table, table.spec.delimiter or spec.delimiter, spec.header, spec.encoding)
            elif fmt == "jsonl":
                lines = file.read_text(encoding=spec.encoding).splitlines()
                rows = [json.loads(line) for line in lines if line.strip()]
            else:
                rows = _records(json.loads(file.read_text(encoding=spec.encoding)), None)
        out.extend((file.name, row) for row in rows)
    return out


def _text(value: Any) -> str | None:
    """A value as PostgreSQL input text (the column type parses it), JSON for objects."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def load_raw(conn: Any, plan: Plan, spec_root: Path, bootstrap_sql: str) -> dict[str, int]:
    """Run the bootstrap SQL, then insert every dataset's sample rows; returns rows per raw table."""
    from psycopg import sql

    counts: dict[str, int] = {}
    with conn.cursor() as cur:
        cur.execute(bootstrap_sql)
        for source in plan.sources:
            for table in source.tables:
                names = [c.name for c in table.columns]
                columns = [*names, "_run_id", "_source_file"]
                statement = sql.SQL("insert into {}.{} ({}) values ({})").format(
                    sql.Identifier(plan.warehouse.schemas.raw),
                    sql.Identifier(table.raw_table),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                )
                rows = sample_rows(spec_root, source, table)
                values = [[_text(row.get(n)) for n in names] + ["sample", file] for file, row in rows]
                if values:
                    cur.executemany(statement, values)
                counts[table.raw_table] = len(values)
    conn.commit()
    return counts
