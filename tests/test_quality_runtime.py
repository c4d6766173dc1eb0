"""The quality runtime with real GX 0.18, PostgreSQL and Parquet on moto S3: results, alerts and failing the task."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from platformgen.compiler import load_plan
from platformgen.plan.build import Plan
from platformgen.runtime import tasks
from platformgen.runtime.quality import (
    QualityCheckFailed,
    QualityConfigError,
    freshness_cutoffs,
    latest_bronze_run,
    sqlalchemy_url,
)
from platformgen.runtime.settings import PgParams
from platformgen.targets.great_expectations import GreatExpectationsTarget, quality_config
from platformgen.targets.runtime_config import platform_config
from tests.support.services import S3Server

SPEC = """\
platform:
  name: qa_shop
  owner: data@qa.example

sources:
  - name: shop
    kind: postgres
    connection: {host: env:SHOP_HOST, database: shop, user: env:SHOP_USER, password: env:SHOP_PASSWORD}
    tables:
      - name: customers
        primary_key: [customer_id]
        columns:
          customer_id: bigint
          email: {type: string, nullable: false, classification: pii}
          country_code: {type: string, nullable: false, regex: "^[A-Z]{2}$"}
          updated_at: {type: timestamptz, nullable: false}
        silver:
          rename: {country_code: country}
        expectations:
          - freshness: {column: updated_at, warn_after: 1h, error_after: 1d}
      - name: orders
        primary_key: [order_id]
        columns:
          order_id: bigint
          customer_id: {type: bigint, nullable: false}
          status: {type: string, nullable: false, accepted_values: [placed, shipped]}
          amount: {type: "decimal(12,2)", nullable: false, range: {min: 0, max: 1000}}
          ordered_at: {type: timestamptz, nullable: false}
        expectations:
          - column: customer_id
            relationships: {to: shop.customers}
          - name: shipped_orders_have_amount
            sql: "status <> 'shipped' or amount > 0"
            severity: warn
          - row_count: {min: 1}

models:
  - name: daily_orders
    sql: |
      select (ordered_at at time zone 'UTC')::date as day, count(*) as orders, sum(amount) as revenue
      from shop.orders
      group by 1
    columns:
      day: {type: date, nullable: false, unique: true}
      revenue: {type: "decimal(14,2)", range: {min: 0, max: 100000, strict: true}}
    expectations:
      - {column: orders, range: {min: 1}, severity: warn}
      - {columns: [day, orders], unique: true}
"""

SILVER_DDL = """
create schema src;
create schema staging;
create schema marts;
create table src.customers (customer_id bigint, email text, country text, updated_at timestamptz);
create table src.orders (order_id bigint, customer_id bigint, status text, amount numeric(12,2), ordered_at timestamptz);
-- staging models are dbt views
create view staging.stg_shop__customers as select * from src.customers;
create view staging.stg_shop__orders as select * from src.orders;
create table marts.daily_orders (day date, orders bigint, revenue numeric(14,2));
insert into src.customers values
  (1, 'ann@example.com', 'DE', now() - interval '5 minutes'),
  (2, 'bob@example.com', 'FR', now() - interval '10 minutes');
insert into src.orders values
  (10, 1, 'placed', 20.00, now() - interval '1 day'),
  (11, 2, 'shipped', 35.50, now() - interval '1 day'),
  (12, 1, 'shipped', 999.99, now());
insert into marts.daily_orders values (current_date - 1, 2, 55.50), (current_date, 1, 999.99);
"""


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    folder = tmp_path_factory.mktemp("spec")
    (folder / "platform.yaml").write_text(SPEC, encoding="utf-8")
    return load_plan(folder / "platform.yaml")


@pytest.fixture
def project(plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The compiled great_expectations/ folder in a project root that PLATFORMGEN_PROJECT_ROOT points to."""
    for rel, text in GreatExpectationsTarget().render(plan).items():
        path = tmp_path / "project" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("PLATFORMGEN_PROJECT_ROOT", str(tmp_path / "project"))
    monkeypatch.delenv("PLATFORMGEN_DATA_DOCS_DIR", raising=False)
    return tmp_path / "project"


@pytest.fixture
def warehouse(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection[Any]]:
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", pg_database)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(SILVER_DDL)
        yield conn


def _failed(conn: psycopg.Connection[Any], layer: str) -> set[str]:
    rows = conn.execute(
        "select check_id from data_platform.quality_results where layer = %s and not success", (layer,)
    ).fetchall()
    return {r[0] for r in rows}


def _run(
    plan: Plan, layer: str, run_id: str = "scheduled__2024-05-01T00:00:00+00:00", **context: Any
) -> dict[str, Any]:
    return tasks.run_quality(platform_config(plan), quality_config(plan), layer, run_id=run_id, **context)


def test_silver_and_gold_pass_on_good_data(plan: Plan, project: Path, warehouse: psycopg.Connection[Any]) -> None:
    silver = _run(plan, "silver")
    gold = _run(plan, "gold")
    assert silver["failed"] == []
    assert gold["failed"] == []
    expected = sum(len(e["checks"]) for layer in ("silver", "gold") for e in quality_config(plan)["layers"][layer])
    rows = warehouse.execute(
        "select run_id, layer, check_kind, bool_and(success), count(*) from data_platform.quality_results "
        "group by 1, 2, 3 order by 2, 3"
    ).fetchall()
    assert sum(r[4] for r in rows) == expected == silver["checks"] + gold["checks"]
    assert all(r[0] == "scheduled__2024-05-01T00:00:00+00:00" and r[3] for r in rows)
    kinds = {(r[1], r[2]) for r in rows}
    assert {
        ("silver", k) for k in ("not_null", "unique", "regex", "freshness", "relationships", "sql", "row_count")
    } <= kinds
    assert {("gold", k) for k in ("not_null", "unique", "range")} <= kinds
    assert warehouse.execute("select count(*) from data_platform.alerts").fetchone() == (0,)
    index = project / "great_expectations/uncommitted/data_docs/local_site/index.html"
    assert index.is_file()
    assert silver["data_docs"] == gold["data_docs"] == str(index)
    assert "silver.shop__orders" in index.read_text(encoding="utf-8")


def test_bad_rows_fail_exactly_the_expected_checks(
    plan: Plan, project: Path, warehouse: psycopg.Connection[Any]
) -> None:
    warehouse.execute(
        """
        insert into src.orders values
          (10, 1, 'placed', 5.00, now()),        -- duplicate key
          (13, 2, null, 10.00, now()),           -- NULL in a not-null column
          (14, 2, 'placed', 5000.00, now())      -- out of range
        """
    )
    with pytest.raises(QualityCheckFailed) as raised:
        _run(plan, "silver", ti=SimpleNamespace(dag_id="qa_shop__quality", task_id="silver"))
    expected = {"shop__orders__unique__order_id", "shop__orders__not_null__status", "shop__orders__range__amount"}
    assert _failed(warehouse, "silver") == expected
    assert all(check in str(raised.value) for check in expected)
    assert raised.value.already_alerted
    row = warehouse.execute(
        "select observed_value, unexpected, details from data_platform.quality_results "
        "where check_id = 'shop__orders__range__amount'"
    ).fetchone()
    assert row is not None
    assert row[:2] == ("1 unexpected of 6 rows", 1)
    assert row[2]["result"]["partial_unexpected_list"] == [5000.0]
    alerts = warehouse.execute(
        "select kind, severity, dataset, dag_id, task_id, message from data_platform.alerts"
    ).fetchall()
    assert len(alerts) == 1
    kind, severity, dataset, dag_id, task_id, message = alerts[0]
    assert (kind, severity, dataset, dag_id, task_id) == (
        "quality",
        "error",
        "shop.orders",
        "qa_shop__quality",
        "silver",
    )
    assert all(check in message for check in expected)


def test_warn_only_failures_alert_without_failing(
    plan: Plan, project: Path, warehouse: psycopg.Connection[Any]
) -> None:
    warehouse.execute(
        """
        update src.customers set updated_at = now() - interval '2 hours';   -- past warn_after, within error_after
        insert into src.orders values (15, 1, 'shipped', 0.00, now());       -- violates the warn-severity sql check
        """
    )
    report = _run(plan, "silver")
    assert set(report["failed"]) == {"shop__customers__freshness", "shipped_orders_have_amount"}
    assert report["failed_error"] == []
    rows = warehouse.execute(
        "select check_id, severity, details->>'threshold', observed_value, details->'unexpected_rows' "
        "from data_platform.quality_results where not success order by check_id"
    ).fetchall()
    assert rows[0][:3] == ("shipped_orders_have_amount", "warn", None)
    assert rows[0][3] == "1 unexpected row"
    assert rows[0][4] == [{"order_id": 15, "status": "shipped", "amount": 0.0}]
    assert rows[1][:3] == ("shop__customers__freshness", "warn", "warn_after")
    passed = warehouse.execute(
        "select details->>'threshold' from data_platform.quality_results "
        "where check_id = 'shop__customers__freshness' and success"
    ).fetchall()
    assert passed == [("error_after",)]
    alerts = warehouse.execute("select severity, dataset from data_platform.alerts order by dataset").fetchall()
    assert alerts == [("warn", "shop.customers"), ("warn", "shop.orders")]


def test_orphans_and_stale_data_fail_as_errors(plan: Plan, project: Path, warehouse: psycopg.Connection[Any]) -> None:
    warehouse.execute(
        """
        update src.customers set updated_at = now() - interval '3 days';
        insert into src.orders values (16, 99, 'placed', 1.00, now()), (17, 98, 'placed', 1.00, now());
        """
    )
    with pytest.raises(QualityCheckFailed):
        _run(plan, "silver")
    assert _failed(warehouse, "silver") == {"shop__orders__relationships__customer_id", "shop__customers__freshness"}
    relationship = warehouse.execute(
        "select unexpected, details->'unexpected_rows' from data_platform.quality_results "
        "where check_id = 'shop__orders__relationships__customer_id'"
    ).fetchone()
    assert relationship is not None
    assert relationship[0] == 2
    assert sorted(r["customer_id"] for r in relationship[1]) == [98, 99]
    freshness = warehouse.execute(
        "select severity from data_platform.quality_results where check_id = 'shop__customers__freshness' "
        "and not success order by severity"
    ).fetchall()
    assert freshness == [("error",), ("warn",)]


def test_pii_values_stay_out_of_results(plan: Plan, project: Path, warehouse: psycopg.Connection[Any]) -> None:
    warehouse.execute("insert into src.customers values (3, null, 'DE', now()), (4, 'x', 'de', now())")
    with pytest.raises(QualityCheckFailed):
        _run(plan, "silver")
    assert _failed(warehouse, "silver") == {"shop__customers__not_null__email", "shop__customers__regex__country"}
    email, country = warehouse.execute(
        "select details->'result' from data_platform.quality_results where not success order by check_id"
    ).fetchall()
    assert "partial_unexpected_list" not in email[0]
    assert country[0]["partial_unexpected_list"] == ["de"]


def test_gold_failures(
    plan: Plan, project: Path, warehouse: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATFORMGEN_DATA_DOCS_DIR", str(tmp_path / "docs"))
    warehouse.execute("insert into marts.daily_orders values (current_date, 7, 0)")  # duplicate day, revenue not > 0
    with pytest.raises(QualityCheckFailed):
        _run(plan, "gold")
    assert _failed(warehouse, "gold") == {"daily_orders__unique__day", "daily_orders__range__revenue"}
    assert (tmp_path / "docs/index.html").is_file()
    assert list((tmp_path / "docs/.validation_results/gold").rglob("*.json"))


def test_a_check_gx_cannot_evaluate_fails_with_its_error(
    plan: Plan, project: Path, warehouse: psycopg.Connection[Any]
) -> None:
    warehouse.execute(
        "create or replace view staging.stg_shop__orders as "
        "select order_id, customer_id, 'placed'::text as status, amount, ordered_at from src.orders;"
        "drop view staging.stg_shop__customers;"
        "create view staging.stg_shop__customers as select customer_id, email, updated_at from src.customers"
    )
    with pytest.raises(QualityCheckFailed):
        _run(plan, "silver")
    rows = warehouse.execute(
        "select check_id, observed_value, details->>'error' from data_platform.quality_results "
        "where not success order by check_id"
    ).fetchall()
    assert [r[0] for r in rows] == ["shop__customers__not_null__country", "shop__customers__regex__country"]
    assert all(r[1] is None and "country" in r[2] for r in rows)


def test_configuration_errors_name_the_setting(plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORMGEN_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(QualityConfigError, match=r"no Great Expectations project at .*PLATFORMGEN_PROJECT_ROOT"):
        _run(plan, "silver")
    with pytest.raises(QualityConfigError, match="unknown quality layer 'raw'"):
        _run(plan, "raw")


def test_missing_relation_fails_its_checks(plan: Plan, project: Path, warehouse: psycopg.Connection[Any]) -> None:
    warehouse.execute("drop table marts.daily_orders")
    with pytest.raises(QualityCheckFailed, match="does not exist"):
        _run(plan, "gold")
    checks = {c["id"] for c in quality_config(plan)["layers"]["gold"][0]["checks"]}
    assert _failed(warehouse, "gold") == checks


def test_file_backed_project_runs_in_plain_gx(
    plan: Plan, project: Path, warehouse: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """great_expectations.yml alone (no platformgen runtime) runs the silver checkpoint against the warehouse."""
    from great_expectations.data_context.data_context.context_factory import get_context

    monkeypatch.setenv("PGTZ", "UTC")  # GX's own now() is the worker's local time: keep both sides in UTC
    context = get_context(context_root_dir=str(project / "great_expectations"))
    assert context.run_checkpoint(checkpoint_name="silver").success
    warehouse.execute("insert into src.orders values (10, 1, 'placed', 5.00, now())")
    result = context.run_checkpoint(checkpoint_name="silver")
    failed = {
        r.expectation_config.meta["check_id"]
        for v in result.list_validation_results()
        for r in v.results
        if not r.success
    }
    assert failed == {"shop__orders__unique__order_id"}
    assert (project / "great_expectations/uncommitted/data_docs/local_site/index.html").is_file()


# --------------------------------------------------------------------------- bronze


@pytest.fixture
def bronze(s3: S3Server, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", pg_database)
    monkeypatch.setenv("PLATFORMGEN_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("MINIO_ROOT_USER", s3.access_key)
    monkeypatch.setenv("MINIO_ROOT_PASSWORD", s3.secret_key)
    client = s3.client()
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if "raw" in existing:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="raw"):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket="raw", Key=obj["Key"])
    else:
        client.create_bucket(Bucket="raw")
    return client


def _put_parquet(client: Any, key: str, columns: dict[str, list[Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    client.put_object(Bucket="raw", Key=key, Body=buffer.getvalue())


ORDERS = {
    "order_id": [1, 2],
    "customer_id": [1, 2],
    "status": ["PLACED", "shipped"],
    "amount": [1.5, 2.5],
    "ordered_at": [dt.datetime(2024, 5, 1, tzinfo=dt.UTC)] * 2,
}
CUSTOMERS = {"customer_id": [], "email": [], "country_code": [], "updated_at": []}


def test_bronze_validates_this_runs_files(plan: Plan, project: Path, bronze: Any, pg_database: str) -> None:
    run = "scheduled__2024-05-01T00:00:00+00:00"
    safe = "scheduled__2024-05-01T00_00_00_00_00"
    _put_parquet(bronze, f"shop/orders/ingest_date=2024-05-01/run_id={safe}/part-00000.parquet", ORDERS)
    # an empty incremental batch still has its columns: it passes
    _put_parquet(bronze, f"shop/customers/ingest_date=2024-05-01/run_id={safe}/part-00000.parquet", CUSTOMERS)
    report = _run(plan, "bronze", run_id=run, data_interval_end=dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    assert report["failed"] == []
    assert report["skipped"] == []
    with psycopg.connect(pg_database) as conn:
        rows = conn.execute(
            "select dataset, check_kind, details->'bronze_files' from data_platform.quality_results"
        ).fetchall()
    assert len(rows) == 9
    assert {r[1] for r in rows} == {"column_exists"}
    assert {r[2][0] for r in rows if r[0] == "shop.orders"} == {
        f"s3://raw/shop/orders/ingest_date=2024-05-01/run_id={safe}/part-00000.parquet"
    }


def test_bronze_missing_column_fails(plan: Plan, project: Path, bronze: Any, pg_database: str) -> None:
    old = "shop/orders/ingest_date=2024-05-01/run_id=scheduled__2024-05-01T00_00_00_00_00/part-00000.parquet"
    _put_parquet(bronze, old, ORDERS)
    without_status = {k: v for k, v in ORDERS.items() if k != "status"}
    new = "shop/orders/ingest_date=2024-05-02/run_id=manual__2024-05-02T09_00_00_00_00/part-00000.parquet"
    _put_parquet(bronze, new, without_status)
    # Another DAG's run: no folder of its own, so the newest run of the newest partition is validated.
    with pytest.raises(QualityCheckFailed, match="shop__orders__column_exists__status"):
        _run(plan, "bronze", run_id="dataset_triggered__2024-05-02T10:00:00+00:00")
    with psycopg.connect(pg_database) as conn:
        failed = conn.execute("select check_id from data_platform.quality_results where not success").fetchall()
        alerts = conn.execute("select severity, dataset from data_platform.alerts").fetchall()
    assert failed == [("shop__orders__column_exists__status",)]
    assert alerts == [("error", "shop.orders")]


# --------------------------------------------------------------------------- pure helpers


def test_latest_bronze_run_picks_the_newest_folder() -> None:
    t = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    objects = [
        ("p/ingest_date=2024-05-01/run_id=a/part-00000.parquet", t),
        ("p/ingest_date=2024-05-01/run_id=a/part-00001.parquet", t + dt.timedelta(minutes=1)),
        ("p/ingest_date=2024-05-01/run_id=b/part-00000.parquet", t + dt.timedelta(minutes=5)),
        ("p/ingest_date=2024-05-01/run_id=b/_manifest.json", t + dt.timedelta(minutes=9)),
    ]
    assert latest_bronze_run(objects, ".parquet") == ["p/ingest_date=2024-05-01/run_id=b/part-00000.parquet"]
    assert latest_bronze_run([], ".parquet") == []


def test_freshness_cutoffs_are_utc_strings() -> None:
    expression = "now() - timedelta(seconds=3600)"
    suite = {"expectations": [{"kwargs": {"column": "t", "min_value": {"$PARAMETER": expression}}}]}
    now = dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert freshness_cutoffs(suite, now) == 1
    assert suite["expectations"][0]["kwargs"]["min_value"][f"$PARAMETER.{expression}"] == "2024-05-01T11:30:00"


def test_sqlalchemy_url_handles_sockets_and_secrets() -> None:
    socket = sqlalchemy_url(PgParams("/tmp/pg sock", 5433, "wh", "postgres", ""))
    assert socket.startswith("postgresql+psycopg2://postgres@localhost/wh?host=%2Ftmp%2Fpg%20sock&port=5433")
    tcp = sqlalchemy_url(PgParams("db.example", 5432, "wh", "etl", "p@ss/word", "require"))
    assert tcp.startswith("postgresql+psycopg2://etl:p%40ss%2Fword@db.example:5432/wh?sslmode=require")
    assert "options=-c%20timezone%3DUTC" in tcp


def test_quality_config_is_plain_data(plan: Plan) -> None:
    config = quality_config(plan)
    assert json.loads(json.dumps(config)) == config
    assert config["gx_dir"] == "great_expectations"
    assert [e["suite"] for e in config["layers"]["bronze"]] == ["bronze.shop__customers", "bronze.shop__orders"]
    orders = next(e for e in config["layers"]["silver"] if e["dataset"] == "shop.orders")
    assert (orders["schema"], orders["relation"], orders["checkpoint"]) == ("staging", "stg_shop__orders", "silver")
    assert {
        "id": "shop__orders__relationships__customer_id",
        "kind": "relationships",
        "column": "customer_id",
        "severity": "error",
    } in orders["checks"]
