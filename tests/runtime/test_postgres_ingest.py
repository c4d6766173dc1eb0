"""PostgreSQL extraction and the bronze -> raw load against a real PostgreSQL 16 and moto's S3 server."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest

from platformgen.compiler import load_plan
from platformgen.runtime import arrow_io, extract_postgres, load
from platformgen.runtime.bronze import BronzeBatch
from platformgen.runtime.extract_postgres import LowerBound, build_query, extract_table, sql_literal
from platformgen.runtime.load import SchemaChangeError, load_batch
from platformgen.targets.runtime_config import platform_config, source_config, table_config
from tests.support.services import PgServer, S3Server

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SOURCE_PASSWORD = "src-Secret-pw-7731"

ORDERS_V1 = """\
      - name: orders
        primary_key: [order_id]
        incremental: {cursor: updated_at, initial: "2024-01-01T00:00:00+00:00", lag: 1h}
        columns:
          order_id: bigint
          customer: string
          amount: {type: "decimal(12,2)"}
          updated_at: timestamptz
          paid: boolean
          order_date: date
          attrs: json
"""
CUSTOMERS = """\
      - name: customers
        primary_key: [customer_id]
        columns:
          customer_id: bigint
          name: string
          score: float
          visits: integer
          balance: decimal
          prefs: json
"""


def spec_text(bucket: str, tables: str) -> str:
    return (
        textwrap.dedent(f"""\
        platform:
          name: testplat
          owner: data@example.com
        storage:
          endpoint: http://minio.invalid:9000
          buckets: {{bronze: {bucket}, silver: {bucket}s, gold: {bucket}g}}
        sources:
          - name: shop
            kind: postgres
            connection:
              host: env:SHOP_HOST
              port: env:SHOP_PORT
              database: env:SHOP_DATABASE
              user: env:SHOP_USER
              password: env:SHOP_PASSWORD
              sslmode: disable
            tables:
        """)
        + tables
    )


@dataclass
class Env:
    """A source database, a warehouse database, a bronze bucket and the configs the DAG would pass."""

    tmp: Path
    bucket: str
    source_url: str
    warehouse_url: str
    s3: S3Server

    def configs(self, tables: str, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Compile an inline spec and return (platform, source, table) exactly as targets/runtime_config builds them."""
        folder = self.tmp / f"spec_{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        (folder / "platform.yaml").write_text(spec_text(self.bucket, tables))
        plan = load_plan(folder)
        source_plan = plan.sources[0]
        table_plan = next(t for t in source_plan.tables if t.name == name)
        return platform_config(plan), source_config(source_plan), table_config(plan, table_plan)

    def source(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.source_url, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def warehouse(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.warehouse_url, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def bronze(self, key: str) -> Any:
        body = self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return pq.read_table(io.BytesIO(body))

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for obj in listing.get("Contents", []))


@pytest.fixture(scope="module")
def databases(pg_server: PgServer) -> Iterator[tuple[str, str]]:
    """A source and a warehouse database for the module (creating and dropping one costs a checkpoint)."""
    names = (pg_server.create_database("src"), pg_server.create_database("wh"))
    try:
        yield names
    finally:
        for name in names:
            pg_server.drop_database(name)


@pytest.fixture
def env(
    pg_server: PgServer, s3: S3Server, databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Env:
    """Empty source and warehouse databases, a new bronze bucket, and the variables the configs reference."""
    source_db, warehouse_db = databases
    source_url, warehouse_url = pg_server.database_url(source_db), pg_server.database_url(warehouse_db)
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("drop schema public cascade")
        conn.execute("create schema public")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("drop schema if exists raw, data_platform cascade")
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("PLATFORMGEN_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("MINIO_ROOT_USER", s3.access_key)
    monkeypatch.setenv("MINIO_ROOT_PASSWORD", s3.secret_key)
    monkeypatch.setenv("SHOP_HOST", pg_server.host)
    monkeypatch.setenv("SHOP_PORT", str(pg_server.port))
    monkeypatch.setenv("SHOP_DATABASE", source_db)
    monkeypatch.setenv("SHOP_USER", pg_server.user)
    monkeypatch.setenv("SHOP_PASSWORD", pg_server.password)
    monkeypatch.delenv("PLATFORMGEN_SOURCE_SHOP_URL", raising=False)
    return Env(tmp_path, f"bronze{uuid.uuid4().hex[:8]}", source_url, warehouse_url, s3)


def create_orders(env: Env, count: int = 5) -> None:
    env.source(
        "create table public.orders (order_id bigint primary key, customer text, amount numeric(12,2), "
        "updated_at timestamptz not null, paid boolean, order_date date, attrs jsonb, channel text)"
    )
    for i in range(1, count + 1):
        insert_order(env, i, T0 + dt.timedelta(minutes=i))


def insert_order(env: Env, order_id: int, updated_at: dt.datetime, amount: str | None = None) -> None:
    env.source(
        "insert into public.orders values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            order_id,
            f"customer {order_id} 'quoted'",
            decimal.Decimal(amount or f"{order_id * 1000}.{order_id:02d}"),
            updated_at,
            order_id % 2 == 0,
            dt.date(2024, 1, order_id % 28 + 1),
            json.dumps({"items": order_id, "tags": ["a", "b"]}),
            "web",
        ),
    )


def source_orders(env: Env) -> list[tuple[Any, ...]]:
    return env.source(
        "select order_id, customer, amount, updated_at, paid, order_date, attrs from public.orders order by order_id"
    )


def raw_orders(env: Env) -> list[tuple[Any, ...]]:
    return env.warehouse(
        "select order_id, customer, amount, updated_at, paid, order_date, attrs from raw.shop__orders order by order_id, updated_at"
    )


def run(env: Env, tables: str, name: str, run_id: str) -> tuple[BronzeBatch, dict[str, Any]]:
    platform, source, table = env.configs(tables, name)
    batch = extract_table(platform, source, table, run_id=run_id, ingest_date="2024-03-01")
    # The DAG passes the batch through XCom as JSON: do the same.
    batch = BronzeBatch.from_dict(json.loads(json.dumps(batch.to_dict())))
    return batch, load_batch(platform, source, table, batch)


def watermark(env: Env, dataset: str = "shop.orders") -> str | None:
    rows = env.warehouse("select value from data_platform.watermarks where dataset = %s", (dataset,))
    return rows[0][0] if rows else None


def log_rows(env: Env, dataset: str) -> list[tuple[Any, ...]]:
    return env.warehouse(
        "select run_id, stage, status, rows, error from data_platform.ingestion_log where dataset = %s order by id",
        (dataset,),
    )


# --------------------------------------------------------------------------- full loads


def test_full_table_lands_in_bronze_and_raw_with_exact_values(env: Env) -> None:
    env.source(
        "create table public.customers (customer_id bigint primary key, name text, score float8, visits int, "
        "balance numeric, prefs jsonb)"
    )
    env.source(
        "insert into public.customers values (1, 'Ann', 1.5, 3, 12345678901234567890.123456789, '{\"vip\": true}'), "
        "(2, null, null, null, null, null), (3, 'Zoë \"z\" O''Hara', -0.25, 0, -0.5, '[1, 2.50]')"
    )
    batch, result = run(env, CUSTOMERS, "customers", "scheduled__2024-03-01T00:00:00+00:00")

    key = "shop/customers/ingest_date=2024-03-01/run_id=scheduled__2024-03-01T00_00_00_00_00/part-00000.parquet"
    assert [f.key for f in batch.files] == [key]
    assert env.keys("shop/customers/") == [key]
    bronze = env.bronze(key)
    assert bronze.schema.names == ["customer_id", "name", "score", "visits", "balance", "prefs"]
    source_rows = env.source("select customer_id, name, score, visits, balance, prefs from public.customers order by 1")
    bronze_rows = sorted(tuple(r.values()) for r in bronze.to_pylist())
    # Bronze keeps a numeric without precision, and json, as PostgreSQL's exact text.
    as_text = "select customer_id, name, score, visits, balance::text, prefs::text from public.customers order by 1"
    assert bronze_rows == env.source(as_text)
    assert result == {"rows": 3, "bytes": batch.bytes, "files": 1, "status": "success", "skipped": 0}
    raw = env.warehouse(
        "select customer_id, name, score, visits, balance, prefs, _run_id from raw.shop__customers order by 1"
    )
    assert [r[:6] for r in raw] == source_rows
    assert raw[0][4] == decimal.Decimal("12345678901234567890.123456789")
    assert {r[6] for r in raw} == {"scheduled__2024-03-01T00:00:00+00:00"}
    assert [(r[1], r[2], r[3]) for r in log_rows(env, "shop.customers")] == [
        ("extract", "success", 3),
        ("load", "success", 3),
    ]


def test_full_refresh_replaces_raw(env: Env) -> None:
    env.source(
        "create table public.customers (customer_id bigint, name text, score float8, visits int, balance numeric, prefs jsonb)"
    )
    env.source("insert into public.customers values (1, 'Ann', 1, 1, 1, null), (2, 'Bob', 2, 2, 2, null)")
    run(env, CUSTOMERS, "customers", "run1")
    env.source("delete from public.customers where customer_id = 1")
    env.source("update public.customers set name = 'Bobby' where customer_id = 2")
    env.source("insert into public.customers values (3, 'Cy', 3, 3, 3, '{}')")
    _, result = run(env, CUSTOMERS, "customers", "run2")

    assert result["rows"] == 2
    assert env.warehouse("select customer_id, name, _run_id from raw.shop__customers order by 1") == [
        (2, "Bobby", "run2"),
        (3, "Cy", "run2"),
    ]
    assert len(env.keys("shop/customers/")) == 2  # bronze keeps both snapshots


# --------------------------------------------------------------------------- incremental loads


def test_incremental_loads_only_new_and_changed_rows(env: Env) -> None:
    create_orders(env)
    batch, result = run(env, ORDERS_V1, "orders", "run1")

    assert result["rows"] == 5
    assert raw_orders(env) == source_orders(env)  # decimals, timestamps, dates and json exactly
    assert raw_orders(env)[0][2] == decimal.Decimal("1000.01")
    first_watermark = watermark(env)
    assert first_watermark == (T0 + dt.timedelta(minutes=5)).isoformat()
    assert batch.watermark == first_watermark

    # Nothing new: the 1h lag re-reads every row, the boundary dedup adds none of them.
    batch, result = run(env, ORDERS_V1, "orders", "run2")
    assert batch.rows == 5
    assert result["rows"] == 0
    assert len(raw_orders(env)) == 5
    assert watermark(env) == first_watermark

    # One insert, one update: exactly those two rows arrive (the update as a new version of its key).
    insert_order(env, 6, T0 + dt.timedelta(minutes=10))
    env.source(
        "update public.orders set amount = 99.99, updated_at = %s where order_id = 2", (T0 + dt.timedelta(minutes=11),)
    )
    _, result = run(env, ORDERS_V1, "orders", "run3")
    assert result["rows"] == 2
    added = env.warehouse("select order_id, amount from raw.shop__orders where _run_id = 'run3' order by 1")
    assert added == [(2, decimal.Decimal("99.99")), (6, decimal.Decimal("6000.06"))]
    assert watermark(env) == (T0 + dt.timedelta(minutes=11)).isoformat()
    assert [(r[1], r[2]) for r in log_rows(env, "shop.orders")].count(("load", "success")) == 3


def test_incremental_reads_from_the_watermark_minus_the_lag(env: Env) -> None:
    create_orders(env, count=3)
    run(env, ORDERS_V1, "orders", "run1")
    insert_order(env, 10, T0 - dt.timedelta(hours=3))  # older than watermark - lag: a late row the lag cannot catch
    insert_order(env, 11, T0 + dt.timedelta(minutes=1) - dt.timedelta(minutes=30))  # inside the lag window
    batch, result = run(env, ORDERS_V1, "orders", "run2")
    assert result["rows"] == 1
    assert env.warehouse("select order_id from raw.shop__orders where _run_id = 'run2'") == [(11,)]
    assert batch.rows == 4  # the 3 re-read rows and the late one


def test_numeric_cursor_reads_strictly_after_the_watermark() -> None:
    table = {
        "columns": [{"name": "id", "type": "bigint", "pg_type": "bigint"}],
        "incremental": {"cursor": "id"},
        "source_schema": "public",
        "source_table": "t",
        "dataset": "s.t",
    }
    assert build_query(table, LowerBound("41", inclusive=False)) == (
        'select "id" from "public"."t" where "id" > \'41\'::bigint'
    )
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal("a\\b") == "E'a\\\\b'"


def test_failure_during_load_rolls_back_and_the_rerun_completes(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    create_orders(env, count=3)
    run(env, ORDERS_V1, "orders", "run1")
    before_rows, before_watermark = raw_orders(env), watermark(env)
    insert_order(env, 4, T0 + dt.timedelta(hours=1))

    platform, source, table = env.configs(ORDERS_V1, "orders")
    batch = extract_table(platform, source, table, run_id="run2", ingest_date="2024-03-01")

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected failure after the rows were inserted")

    with monkeypatch.context() as patched:
        patched.setattr(load, "_advance_watermark", explode)
        with pytest.raises(RuntimeError, match="injected failure"):
            load_batch(platform, source, table, batch)
    assert raw_orders(env) == before_rows
    assert watermark(env) == before_watermark
    failed = [r for r in log_rows(env, "shop.orders") if r[2] == "failed"]
    assert len(failed) == 1
    assert "injected failure" in failed[0][4]

    result = load_batch(platform, source, table, batch)
    assert result["rows"] == 1
    assert raw_orders(env) == source_orders(env)
    assert watermark(env) == (T0 + dt.timedelta(hours=1)).isoformat()


def test_rerunning_a_run_id_is_deterministic(env: Env) -> None:
    create_orders(env, count=3)
    run(env, ORDERS_V1, "orders", "run1")
    insert_order(env, 4, T0 + dt.timedelta(hours=5))
    run(env, ORDERS_V1, "orders", "run2")  # the watermark moves 5h on: run1's rows are outside the lag window
    folder = "shop/orders/ingest_date=2024-03-01/run_id=run1/"
    env.s3.client().put_object(Bucket=env.bucket, Key=folder + "part-00001.parquet", Body=b"left by a bigger attempt")

    rerun, result = run(env, ORDERS_V1, "orders", "run1")  # a cleared run1, extract and load again
    assert env.keys(folder) == [folder + "part-00000.parquet"]  # same key overwritten, the stale part removed
    # Its load replaces what run1 loaded before, so the extract re-read run1's rows although the watermark had
    # moved past them; run2's row comes again with the lag and is skipped.
    assert rerun.rows == 4
    assert result["rows"] == 3
    assert raw_orders(env) == source_orders(env)
    assert env.warehouse("select _run_id, count(*) from raw.shop__orders group by 1 order by 1") == [
        ("run1", 3),
        ("run2", 1),
    ]


def test_parts_split_the_stream_and_all_parts_load(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    env.source(
        "create table public.customers (customer_id bigint, name text, score float8, visits int, balance numeric, prefs jsonb)"
    )
    platform, source, table = env.configs(CUSTOMERS, "customers")
    schema = arrow_io.arrow_schema(table)
    batches = [
        pa.RecordBatch.from_pylist([{"customer_id": i, "name": f"c{i}", "balance": f"{i}.{i:030d}"}], schema=schema)
        for i in range(5)
    ]
    monkeypatch.setattr(extract_postgres, "ROWS_PER_PART", 2)
    files = extract_postgres.write_parts(platform, table, batches, run_id="parts", ingest_date="2024-03-01")
    assert [(f.key.rsplit("/", 1)[1], f.rows) for f in files] == [
        ("part-00000.parquet", 2),
        ("part-00001.parquet", 2),
        ("part-00002.parquet", 1),
    ]
    batch = BronzeBatch(source="shop", dataset="shop.customers", run_id="parts", bucket=env.bucket, files=files)
    assert load_batch(platform, source, table, batch)["rows"] == 5
    raw = env.warehouse("select customer_id, balance from raw.shop__customers order by 1")
    assert raw[4] == (4, decimal.Decimal("4.000000000000000000000000000004"))  # unbounded numeric, exact


# --------------------------------------------------------------------------- schema changes


def test_new_declared_column_is_added_to_raw(env: Env) -> None:
    create_orders(env, count=2)
    run(env, ORDERS_V1, "orders", "run1")
    insert_order(env, 3, T0 + dt.timedelta(hours=2))
    run(env, ORDERS_V1 + "          channel: string\n", "orders", "run2")

    columns = env.warehouse(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = 'shop__orders'"
    )
    assert ("channel",) in columns
    assert env.warehouse("select order_id, channel from raw.shop__orders order by 1") == [
        (1, None),
        (2, None),
        (3, "web"),
    ]


def test_changed_type_stops_the_load_with_a_clear_error_and_an_alert(env: Env) -> None:
    create_orders(env, count=2)
    run(env, ORDERS_V1, "orders", "run1")
    before = raw_orders(env)
    changed = ORDERS_V1.replace('amount: {type: "decimal(12,2)"}', "amount: float")

    with pytest.raises(SchemaChangeError) as info:
        run(env, changed, "orders", "run2")
    message = str(info.value)
    assert '"raw"."shop__orders"' in message
    assert "column amount changed type from numeric(12,2) to double precision" in message
    assert "alter table" in message
    assert SOURCE_PASSWORD not in message
    assert raw_orders(env) == before
    alerts = env.warehouse("select kind, severity, dataset, message from data_platform.alerts")
    assert len(alerts) == 1
    assert alerts[0][:3] == ("schema_change", "error", "shop.orders")
    assert "amount" in alerts[0][3]


def test_removed_column_fails_or_loads_nulls_by_policy(env: Env) -> None:
    create_orders(env, count=2)
    run(env, ORDERS_V1, "orders", "run1")
    without_attrs = ORDERS_V1.replace("          attrs: json\n", "")
    with pytest.raises(SchemaChangeError, match="column attrs \\(jsonb\\) of the raw table is no longer delivered"):
        run(env, without_attrs, "orders", "run2")

    keep_null = without_attrs + "        silver: {schema_change: {removed_columns: keep_null}}\n"
    insert_order(env, 3, T0 + dt.timedelta(hours=2))
    run(env, keep_null, "orders", "run3")
    assert env.warehouse("select order_id, attrs from raw.shop__orders where _run_id = 'run3'") == [(3, None)]


# --------------------------------------------------------------------------- secrets


def test_wrong_password_is_not_in_the_error(env: Env, monkeypatch: pytest.MonkeyPatch, pg_server: PgServer) -> None:
    create_orders(env, count=1)
    # An unknown role fails under any authentication method (the embedded server trusts local connections).
    bad_url = env.source_url.replace(f"//{pg_server.user}", f"//intruder:{SOURCE_PASSWORD}", 1)
    assert SOURCE_PASSWORD in bad_url
    monkeypatch.setenv("PLATFORMGEN_SOURCE_SHOP_URL", bad_url)
    platform, source, table = env.configs(ORDERS_V1, "orders")

    with pytest.raises(ConnectionError) as info:
        extract_table(platform, source, table, run_id="run1", ingest_date="2024-03-01")
    message = str(info.value)
    assert SOURCE_PASSWORD not in message
    assert message.startswith(f"cannot connect to PostgreSQL at {pg_server.host}:{pg_server.port}/")
    errors = [r[4] for r in log_rows(env, "shop.orders") if r[2] == "failed"]
    assert len(errors) == 1
    assert SOURCE_PASSWORD not in errors[0]


# --------------------------------------------------------------------------- bronze helpers


def test_arrow_schema_covers_the_vocabulary() -> None:
    import pyarrow as pa

    table = {
        "columns": [
            {"name": n, "type": t}
            for n, t in [
                ("s", "string"),
                ("i", "integer"),
                ("b", "bigint"),
                ("d", "decimal(12,2)"),
                ("w", "decimal(50,10)"),
                ("f", "float"),
                ("o", "boolean"),
                ("day", "date"),
                ("ts", "timestamp"),
                ("tz", "timestamptz"),
                ("j", "json"),
            ]
        ]
    }
    assert arrow_io.arrow_schema(table).types == [
        pa.string(),
        pa.int32(),
        pa.int64(),
        pa.decimal128(12, 2),
        pa.decimal256(50, 10),
        pa.float64(),
        pa.bool_(),
        pa.date32(),
        pa.timestamp("us"),
        pa.timestamp("us", tz="UTC"),
        pa.json_(),
    ]


def test_write_bronze_parquet_conforms_batches(env: Env) -> None:
    import pyarrow as pa

    platform, _, table = env.configs(CUSTOMERS, "customers")
    data = pa.table({"name": ["x", None], "customer_id": pa.array([1, 2], pa.int32()), "extra": [1, 2]})
    written = arrow_io.write_bronze_parquet(platform, table, data, run_id="r:1", ingest_date="2024-03-02", part=3)
    assert written.key == "shop/customers/ingest_date=2024-03-02/run_id=r_1/part-00003.parquet"
    assert written.rows == 2
    back = env.bronze(written.key)
    assert back.schema == arrow_io.arrow_schema(table)
    assert back.to_pylist()[0] == {
        "customer_id": 1,
        "name": "x",
        "score": None,
        "visits": None,
        "balance": None,
        "prefs": None,
    }
