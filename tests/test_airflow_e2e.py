"""Generated ingestion DAGs run end to end with Airflow's dag.test() on real PostgreSQL, moto S3 and a real HTTP API."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from platformgen.compiler import compile_spec
from platformgen.writer import write_files
from tests.support.http_server import HttpTestServer, Reply, Request, http_server
from tests.support.services import PgServer, S3Server

pytestmark = pytest.mark.slow

RATES = [
    {"day": f"2024-03-{d:02d}", "currency": c, "rate": f"{1 + d / 100 + i / 10:.4f}"}
    for d in range(1, 8)
    for i, c in enumerate(["USD", "GBP"])
]


def _spec(api_url: str) -> str:
    return textwrap.dedent(
        f"""\
        platform: {{name: e2e_shop}}
        orchestration: {{defaults: {{retries: 0}}}}
        warehouse:
          connection: {{host: localhost, database: warehouse, user: env:E2E_WH_USER, password: env:E2E_WH_PASSWORD}}
        storage: {{endpoint: http://minio:9000, access_key: env:E2E_S3_KEY, secret_key: env:E2E_S3_SECRET}}
        sources:
          - name: shop
            kind: postgres
            schedule: "@hourly"
            connection: {{host: localhost, database: shop, user: env:E2E_SHOP_USER, password: env:E2E_SHOP_PASSWORD}}
            tables:
              - name: orders
                primary_key: [order_id]
                incremental: {{cursor: updated_at, initial: "2024-01-01T00:00:00+00:00", lag: 1h}}
                columns:
                  order_id: bigint
                  status: string
                  amount: "decimal(12,2)"
                  updated_at: timestamptz
              - name: customers
                primary_key: [customer_id]
                columns: {{customer_id: bigint, email: string}}
          - name: fx
            kind: api
            base_url: {api_url}
            auth: {{type: bearer, token: env:E2E_FX_TOKEN}}
            schedule: "@daily"
            endpoints:
              - name: rates
                path: /rates
                records: data
                pagination: {{type: page_number, param: page, size_param: per_page, size: 4}}
                primary_key: [day, currency]
                columns: {{day: date, currency: string, rate: "decimal(10,4)"}}
        """
    )


def _rates_handler(request: Request) -> Reply:
    assert request.header("authorization") == "Bearer fx-secret-token"
    page, size = int(request.query["page"]), int(request.query["per_page"])
    return Reply(200, {"data": RATES[(page - 1) * size : page * size]})


class Env:
    """The world one test runs in: source and warehouse databases, the S3 bucket, the API, the compiled DAGs."""

    def __init__(self, pg: PgServer, s3: S3Server, api: HttpTestServer, dags: Path, shop: str, warehouse: str) -> None:
        self.pg, self.s3, self.api, self.dags = pg, s3, api, dags
        self.shop_url, self.warehouse_url = pg.database_url(shop), pg.database_url(warehouse)

    def dag(self, dag_id: str) -> Any:
        from airflow.models.dagbag import DagBag

        bag = DagBag(dag_folder=str(self.dags), include_examples=False, safe_mode=False)
        assert bag.import_errors == {}
        return bag.get_dag(dag_id)

    def run(self, dag_id: str, when: dt.datetime) -> Any:
        # A failed task makes Airflow 2.9 load DagRunNote, whose foreign key needs FAB's user table mapped.
        import airflow.providers.fab.auth_manager.models  # noqa: F401

        return self.dag(dag_id).test(execution_date=when)

    def warehouse(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.warehouse_url) as conn:
            return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]

    def shop(self, sql: str) -> None:
        with psycopg.connect(self.shop_url) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def bronze_keys(self) -> list[str]:
        listing = self.s3.client().list_objects_v2(Bucket="raw")
        return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture
def env(
    pg_server: PgServer, s3: S3Server, airflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    shop, warehouse = pg_server.create_database("shop"), pg_server.create_database("wh")
    with psycopg.connect(pg_server.database_url(shop), autocommit=True) as conn:
        conn.execute(
            "create table orders (order_id bigint primary key, status text, amount numeric(12,2), updated_at timestamptz);"
            "create table customers (customer_id bigint primary key, email text);"
            "insert into orders select g, case when g % 3 = 0 then 'paid' else 'placed' end, (g * 1.25)::numeric(12,2),"
            " timestamptz '2024-03-01 00:00+00' + g * interval '1 minute' from generate_series(1, 250) g;"
            "insert into customers select g, 'c' || g || '@example.com' from generate_series(1, 40) g;"
        )
    try:
        s3.client().create_bucket(Bucket="raw")
    except Exception:  # the session's S3 server is shared: the bucket may exist
        for key in [o["Key"] for o in s3.client().list_objects_v2(Bucket="raw").get("Contents", [])]:
            s3.client().delete_object(Bucket="raw", Key=key)
    monkeypatch.setenv("PLATFORMGEN_WAREHOUSE_URL", pg_server.database_url(warehouse))
    monkeypatch.setenv("PLATFORMGEN_SOURCE_SHOP_URL", pg_server.database_url(shop))
    monkeypatch.setenv("PLATFORMGEN_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("E2E_S3_KEY", s3.access_key)
    monkeypatch.setenv("E2E_S3_SECRET", s3.secret_key)
    monkeypatch.setenv("E2E_FX_TOKEN", "fx-secret-token")
    monkeypatch.setenv("PLATFORMGEN_HTTP_BACKOFF_BASE", "0.05")
    with http_server() as api:
        api.route("/rates", _rates_handler)
        spec = tmp_path / "spec.yaml"
        spec.write_text(_spec(api.url))
        compiled = compile_spec(spec)
        write_files(tmp_path / "out", compiled.files, compiled.plan.spec_label)
        yield Env(pg_server, s3, api, tmp_path / "out" / "airflow" / "dags", shop, warehouse)
    pg_server.drop_database(shop)
    pg_server.drop_database(warehouse)


T0 = dt.datetime(2024, 3, 10, 6, tzinfo=dt.UTC)


def test_postgres_ingestion_is_incremental_and_idempotent(env: Env) -> None:
    run = env.run("e2e_shop__ingest__shop", T0)
    assert run.state == "success"
    keys = env.bronze_keys()
    run_part = f"run_id={run.run_id}".replace(":", "_").replace("+", "_")
    assert f"shop/orders/ingest_date=2024-03-10/{run_part}/part-00000.parquet" in keys
    assert f"shop/customers/ingest_date=2024-03-10/{run_part}/part-00000.parquet" in keys
    assert env.warehouse("select count(*), sum(amount) from raw.shop__orders") == [
        (250, sum(g * 125 for g in range(1, 251)) / 100)
    ]
    assert env.warehouse("select count(*) from raw.shop__customers") == [(40,)]
    logged = env.warehouse(
        "select dataset, stage, status, rows from data_platform.ingestion_log where run_id = %s order by dataset, stage",
        run.run_id,
    )
    assert logged == [
        ("shop.customers", "extract", "success", 40),
        ("shop.customers", "load", "success", 40),
        ("shop.orders", "extract", "success", 250),
        ("shop.orders", "load", "success", 250),
    ]
    [(watermark,)] = env.warehouse("select value from data_platform.watermarks where dataset = 'shop.orders'")
    assert watermark.startswith("2024-03-01T04:10:00")  # minute 250 after midnight

    # nothing new at the source: a second run adds nothing (the lag re-read is deduplicated at the boundary)
    assert env.run("e2e_shop__ingest__shop", T0 + dt.timedelta(hours=1)).state == "success"
    assert env.warehouse("select count(*) from raw.shop__orders") == [(250,)]
    assert env.warehouse("select count(*) from raw.shop__customers") == [(40,)]

    # three new orders and two updates: exactly those five rows arrive
    env.shop(
        "insert into orders select g, 'placed', 10, timestamptz '2024-03-02 00:00+00' + g * interval '1 second' from generate_series(251, 253) g;"
        "update orders set status = 'shipped', updated_at = timestamptz '2024-03-02 01:00+00' where order_id in (3, 6);"
    )
    third = env.run("e2e_shop__ingest__shop", T0 + dt.timedelta(hours=2))
    assert third.state == "success"
    arrived = env.warehouse(
        "select order_id, status from raw.shop__orders where _run_id = %s order by order_id", third.run_id
    )
    assert arrived == [(3, "shipped"), (6, "shipped"), (251, "placed"), (252, "placed"), (253, "placed")]


def test_failed_load_leaves_no_partial_rows_and_rerun_completes(env: Env) -> None:
    from platformgen.runtime import load as load_module

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected failure after the rows were written")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(load_module, "_advance_watermark", explode)
        failed = env.run("e2e_shop__ingest__shop", T0)
    assert failed.state == "failed"
    # the raw table was created inside the failed transaction, so it is gone with the partial rows
    [(relation,)] = env.warehouse("select to_regclass('raw.shop__orders')::text")
    if relation is not None:
        assert env.warehouse("select count(*) from raw.shop__orders") == [(0,)]
    assert env.warehouse("select count(*) from data_platform.watermarks") == [(0,)]
    [(status, error)] = env.warehouse(
        "select status, error from data_platform.ingestion_log where dataset = 'shop.orders' and stage = 'load'"
    )
    assert status == "failed"
    assert "injected failure" in error
    assert env.run("e2e_shop__ingest__shop", T0 + dt.timedelta(minutes=5)).state == "success"
    assert env.warehouse("select count(*), count(distinct order_id) from raw.shop__orders") == [(250, 250)]


def test_rest_source_paginates_and_survives_429_and_500(env: Env) -> None:
    env.api.fail("/rates", 429, headers={"Retry-After": "0"})
    env.api.fail("/rates", 500)
    run = env.run("e2e_shop__ingest__fx", T0)
    assert run.state == "success"
    rows = env.warehouse("select day::text, currency, rate::text from raw.fx__rates order by day, currency")
    assert rows == sorted((r["day"], r["currency"], r["rate"]) for r in RATES)
    statuses = [r.query.get("page") for r in env.api.requests_to("/rates")]
    assert statuses[:3] == ["1", "1", "1"], "the 429 and the 500 were retried on the same page"
    assert len(env.api.requests_to("/rates")) == 2 + 5  # 2 failures, pages 1-4 with data, page 5 empty
    assert any(k.startswith("fx/rates/ingest_date=2024-03-10/") for k in env.bronze_keys())
