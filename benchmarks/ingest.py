"""Ingestion benchmark: platformgen's PostgreSQL -> bronze -> raw path beside pandas, a bare COPY pipe and dlt.

Starts its own PostgreSQL (pgserver) and S3 (moto's server, in a separate process like MinIO would be),
creates a 10-column table of N rows with generate_series (ids, text, numeric(12,2), float, boolean, two
timestamptz, a date) and measures, in the same run, the median rows/s of:

1. platformgen end to end: extract_table (ADBC -> Parquet -> S3) then load_batch (S3 -> ADBC COPY -> raw);
2. pandas: read_sql + DataFrame.to_sql (SQLAlchemy engine on psycopg2, method=None, chunksize=10,000);
3. a bare COPY pipe: `COPY (select ...) TO STDOUT` streamed block by block into `COPY ... FROM STDIN` on a
   second connection (text and binary formats; the faster one is the reference);
4. the load stage alone (bronze Parquet in S3 -> raw) beside dlt loading the same Arrow table into PostgreSQL
   (parquet via ADBC, its fastest loader here; `--dlt-csv` adds the csv loader, which uses COPY).

Run: .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--reps 3] [--pandas-reps N] [--dlt-csv]

Prints rows/s per path and the ratios against the goals (e2e/pandas >= 5, e2e/COPY pipe >= 0.5,
load/dlt >= 1.0). All paths write into logged tables of the same server (same WAL cost), each rep replacing
the previous rep's rows. Timings are wall-clock on a shared machine: compare the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import psycopg

COLUMNS = {
    "id": "bigint",
    "customer_id": "bigint",
    "status": "string",
    "note": "string",
    "amount": "decimal(12,2)",
    "score": "float",
    "flag": "boolean",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "day": "date",
}
GENERATE = """
create table public.events as
select g::bigint                                                as id,
       (g % 50000)::bigint                                      as customer_id,
       (array['new', 'paid', 'shipped', 'cancelled'])[g % 4 + 1] as status,
       md5(g::text)                                             as note,
       ((g * 7919) % 10000000)::numeric(12,2) / 100             as amount,
       (g % 1000) * 0.001::float8                               as score,
       g % 3 = 0                                                as flag,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' as created_at,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '2 second' as updated_at,
       date '2024-01-01' + (g % 365)::int                       as day
from generate_series(1::bigint, {rows}) g
"""
SELECT = "select " + ", ".join(COLUMNS) + " from public.events"
GOALS = {"e2e / pandas": 5.0, "e2e / COPY pipe": 0.5, "load / dlt load": 1.0}


def spec_yaml() -> str:
    columns = "\n".join(f'          {name}: "{kind}"' for name, kind in COLUMNS.items())
    return f"""\
platform:
  name: bench
  owner: bench@example.com
storage:
  buckets: {{bronze: benchbronze, silver: benchsilver, gold: benchgold}}
sources:
  - name: src
    kind: postgres
    connection: {{host: env:BENCH_SRC_HOST, database: bench_src, user: env:BENCH_SRC_USER, password: env:BENCH_SRC_PASSWORD}}
    tables:
      - name: events
        primary_key: [id]
        columns:
{columns}
"""


# --------------------------------------------------------------------------- services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """moto's S3 server in its own process (so it does not compete for this process's GIL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    import pgserver

    with tempfile.TemporaryDirectory(prefix="bench-pg-") as folder:
        server: Any = pgserver.get_server(folder, cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


def database_url(admin_url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


# --------------------------------------------------------------------------- measuring


def timed(label: str, reps: int, run: Callable[[int], Any]) -> list[float]:
    seconds = []
    for rep in range(reps):
        start = time.perf_counter()
        run(rep)
        seconds.append(time.perf_counter() - start)
        print(f"  {label} rep {rep + 1}/{reps}: {seconds[-1]:.2f}s", flush=True)
    return seconds


def count(url: str, relation: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"select count(*) from {relation}").fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- the contenders


class Platformgen:
    """extract_table + load_batch on the compiled configs."""

    def __init__(self, spec_dir: Path) -> None:
        from platformgen.compiler import load_plan
        from platformgen.targets.runtime_config import platform_config, source_config, table_config

        (spec_dir / "platform.yaml").write_text(spec_yaml())
        plan = load_plan(spec_dir)
        self.platform = platform_config(plan)
        self.source = source_config(plan.sources[0])
        self.table = table_config(plan, plan.sources[0].tables[0])
        self.batch: Any = None
        self.stages: dict[str, list[float]] = {"extract": [], "load": []}

    def end_to_end(self, rep: int) -> None:
        from platformgen.runtime.extract_postgres import extract_table
        from platformgen.runtime.load import load_batch

        start = time.perf_counter()
        self.batch = extract_table(
            self.platform, self.source, self.table, run_id=f"e2e-{rep}", ingest_date="2024-06-01"
        )
        middle = time.perf_counter()
        load_batch(self.platform, self.source, self.table, self.batch)
        self.stages["extract"].append(middle - start)
        self.stages["load"].append(time.perf_counter() - middle)

    def load_only(self, rep: int) -> None:
        from platformgen.runtime.load import load_batch

        load_batch(self.platform, self.source, self.table, self.batch)

    def arrow_table(self) -> Any:
        """The bronze file of the last extract, as the Arrow table dlt gets."""
        from platformgen.runtime import arrow_io

        client = arrow_io.s3_client(self.platform)
        tables = [arrow_io.open_bronze_parquet(client, self.batch.bucket, f.key).read() for f in self.batch.files]
        import pyarrow as pa

        return pa.concat_tables(tables)


def pandas_round_trip(source_url: str, warehouse_url: str) -> Callable[[int], None]:
    import pandas as pd
    import sqlalchemy as sa  # type: ignore[import-untyped]
    from pandas.compat import _optional

    # pandas 3 asks for SQLAlchemy >= 2.0.36, Airflow 2.9 pins 1.4; the engine paths used here work on 1.4.
    _optional.VERSIONS["sqlalchemy"] = "1.4.0"
    read = sa.create_engine(source_url.replace("postgresql://", "postgresql+psycopg2://", 1), future=True)
    write = sa.create_engine(warehouse_url.replace("postgresql://", "postgresql+psycopg2://", 1), future=True)

    def run(rep: int) -> None:
        frame = pd.read_sql(SELECT, read)
        frame.to_sql(
            "pandas_events", write, schema="bench", if_exists="replace", index=False, chunksize=10_000, method=None
        )

    return run


def copy_pipe(source_url: str, warehouse_url: str, fmt: str) -> Callable[[int], None]:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("drop table if exists bench.copy_events")
        conn.execute("create table bench.copy_events as select * from raw.src__events where false")
        conn.execute(
            "alter table bench.copy_events drop column _ingested_at, drop column _run_id, drop column _source_file"
        )

    def run(rep: int) -> None:
        with psycopg.connect(source_url) as src, psycopg.connect(warehouse_url) as dst:
            dst.execute("truncate bench.copy_events")
            with (
                src.cursor().copy(f"copy ({SELECT}) to stdout (format {fmt})") as out,
                dst.cursor().copy(f"copy bench.copy_events ({', '.join(COLUMNS)}) from stdin (format {fmt})") as into,
            ):
                for block in out:
                    into.write(block)
            dst.commit()

    return run


def dlt_credentials(url: str) -> str:
    """dlt wants a host name and a password: name localhost and let libpq's `host` query parameter (the socket
    folder of the embedded server) override it; the server trusts local connections, so any password does."""
    from urllib.parse import parse_qs, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if "host" not in query:
        return url
    port = query.get("port", ["5432"])[0]
    return urlunsplit(
        (parts.scheme, f"{parts.username or 'postgres'}:unused@localhost:{port}", parts.path, parts.query, "")
    )


def dlt_load(
    warehouse_url: str, table: Any, file_format: Literal["parquet", "csv"], work: Path
) -> Callable[[int], None]:
    import dlt

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    destination = dlt.destinations.postgres(credentials=dlt_credentials(warehouse_url))

    def run(rep: int) -> None:
        pipeline = dlt.pipeline(
            pipeline_name=f"bench_{file_format}_{rep}",
            destination=destination,
            dataset_name=f"dlt_{file_format}",
            pipelines_dir=str(work / "dlt"),
        )
        pipeline.run(table, table_name="events", write_disposition="replace", loader_file_format=file_format)

    return run


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pandas-reps", type=int, default=None, help="default: --reps, 1 above 200,000 rows")
    parser.add_argument(
        "--dlt-csv", action="store_true", help="also measure dlt's csv loader (3x slower than parquet here)"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # pgserver and dlt log every command at INFO
    pandas_reps = args.pandas_reps or (args.reps if args.rows <= 200_000 else 1)
    rows = args.rows

    with postgres() as admin_url, moto_process() as s3_url, tempfile.TemporaryDirectory(prefix="bench-") as work:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("create database bench_src")
            conn.execute("create database bench_wh")
        source_url, warehouse_url = database_url(admin_url, "bench_src"), database_url(admin_url, "bench_wh")
        os.environ.update(
            {
                "PLATFORMGEN_WAREHOUSE_URL": warehouse_url,
                "PLATFORMGEN_SOURCE_SRC_URL": source_url,
                "PLATFORMGEN_S3_ENDPOINT_URL": s3_url,
                "MINIO_ROOT_USER": "bench",
                "MINIO_ROOT_PASSWORD": "bench-secret",
            }
        )
        print(f"generating {rows:,} rows ...", flush=True)
        with psycopg.connect(source_url, autocommit=True) as conn:
            conn.execute(GENERATE.format(rows=int(rows)))
            conn.execute("vacuum analyze public.events")
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            conn.execute("create schema bench")

        results: dict[str, list[float]] = {}
        pg = Platformgen(Path(work))
        print("platformgen end to end", flush=True)
        results["platformgen e2e"] = timed("e2e", args.reps, pg.end_to_end)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert count(warehouse_url, "raw.src__events") == rows
        results["  extract stage"] = pg.stages["extract"]
        results["  load stage"] = pg.stages["load"]

        print("bare COPY pipe", flush=True)
        for fmt in ("text", "binary"):
            results[f"COPY pipe ({fmt})"] = timed(fmt, args.reps, copy_pipe(source_url, warehouse_url, fmt))
        assert count(warehouse_url, "bench.copy_events") == rows

        print("load stage alone and dlt", flush=True)
        results["platformgen load"] = timed("load", args.reps, pg.load_only)
        arrow_table = pg.arrow_table()
        formats: tuple[Literal["parquet", "csv"], ...] = ("parquet", "csv") if args.dlt_csv else ("parquet",)
        for fmt in formats:
            try:
                results[f"dlt load ({fmt})"] = timed(
                    f"dlt {fmt}", args.reps, dlt_load(warehouse_url, arrow_table, fmt, Path(work))
                )
                assert count(warehouse_url, f"dlt_{fmt}.events") == rows
            except Exception as exc:  # report a configuration that does not run here, keep the others
                print(f"  dlt with {fmt} failed: {type(exc).__name__}: {str(exc)[:300]}")
        del arrow_table

        print("pandas read_sql + to_sql", flush=True)
        results["pandas"] = timed("pandas", pandas_reps, pandas_round_trip(source_url, warehouse_url))
        assert count(warehouse_url, "bench.pandas_events") == rows

    report(rows, results, peak_rss_mb)
    return 0


def report(rows: int, results: dict[str, list[float]], peak_rss_mb: float) -> None:
    rate = {name: rows / statistics.median(seconds) for name, seconds in results.items()}
    print(f"\n{rows:,} rows, median of the reps (Python {sys.version.split()[0]})")
    print(f"{'path':28s} {'median s':>9s} {'rows/s':>11s}  reps")
    for name, seconds in results.items():
        print(f"{name:28s} {statistics.median(seconds):9.2f} {rate[name]:11,.0f}  {len(seconds)}")
    best_copy = max(rate.get("COPY pipe (text)", 0.0), rate.get("COPY pipe (binary)", 0.0))
    dlt_rates = [rate[n] for n in ("dlt load (parquet)", "dlt load (csv)") if n in rate]
    ratios = {
        "e2e / pandas": rate["platformgen e2e"] / rate["pandas"],
        "e2e / COPY pipe": rate["platformgen e2e"] / best_copy,
    }
    if dlt_rates:
        ratios["load / dlt load"] = rate["platformgen load"] / max(dlt_rates)
    print()
    for name, value in ratios.items():
        verdict = "meets" if value >= GOALS[name] else "MISSES"
        print(f"{name:18s} {value:6.2f}x   goal >= {GOALS[name]:.1f}x: {verdict}")
    print(f"\npeak RSS of the benchmark process after the e2e reps: {peak_rss_mb:,.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
